//! What Microsoft's own client libraries (msal, msgraph-sdk, azure-identity)
//! need and rely on: `$batch` URLs, annotations in PATCH bodies, action
//! parameter case, request ids on the identity endpoints, instance discovery,
//! JWKS, tenants, HTTPS and a public base URL.

use mailroom_sim::{Faults, MailboxSpec, SimConfig, Simulator, Tls};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{Graph, client, enc, start};

const DEMO: &str = "demo@mailroom.test";

fn quiet() -> SimConfig {
    SimConfig {
        faults: Faults::none(),
        ..SimConfig::default()
    }
}

fn first_inbox_id(sim: &Simulator) -> String {
    sim.mailbox(DEMO)
        .unwrap()
        .folder_message_ids("inbox")
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn batch_item_urls_with_the_version_segment_fail_like_graph() {
    let sim = start(quiet()).await;
    let g = Graph::new(&sim, DEMO);
    let (status, body) = g
        .post(
            "/$batch",
            json!({"requests": [
                {"id": "1", "method": "GET", "url": "/v1.0/me"},
                {"id": "2", "method": "GET", "url": "v1.0/me/mailFolders"},
                {"id": "3", "method": "GET", "url": "/me"},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let items = body["responses"].as_array().unwrap();
    let item = |id: &str| items.iter().find(|r| r["id"] == id).unwrap().clone();
    for id in ["1", "2"] {
        let r = item(id);
        assert_eq!(r["status"], 400, "{r}");
        assert_eq!(r["body"]["error"]["code"], "BadRequest");
        assert_eq!(
            r["body"]["error"]["message"],
            "Resource not found for the segment 'v1.0'."
        );
    }
    assert_eq!(item("3")["status"], 200);
}

#[tokio::test]
async fn patch_ignores_odata_annotations() {
    let sim = start(quiet()).await;
    let g = Graph::new(&sim, DEMO);
    let id = first_inbox_id(&sim);
    let path = format!("/me/messages/{}", enc(&id));
    // What every Kiota-based SDK sends.
    let (status, _, body) = g
        .send(
            Method::PATCH,
            &path,
            &[],
            Some(json!({"@odata.type": "#microsoft.graph.message", "isRead": true})),
        )
        .await;
    assert_eq!((status, &body["isRead"]), (200, &json!(true)), "{body}");
    assert!(sim.mailbox(DEMO).unwrap().message(&id).unwrap().is_read);
    let (status, _, body) = g
        .send(
            Method::PATCH,
            &path,
            &[],
            Some(json!({"@odata.etag": "W/\"x\"", "subject@odata.type": "#String", "subject": "Renamed"})),
        )
        .await;
    assert_eq!(
        (status, &body["subject"]),
        (200, &json!("Renamed")),
        "{body}"
    );
    // Properties that are not annotations are still checked.
    let (status, _, body) = g
        .send(
            Method::PATCH,
            &path,
            &[],
            Some(json!({"categories": ["x"]})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("ErrorInvalidProperty"))
    );
}

#[tokio::test]
async fn move_parameters_are_matched_without_regard_to_case() {
    let sim = start(quiet()).await;
    let g = Graph::new(&sim, DEMO);
    let mb = sim.mailbox(DEMO).unwrap();
    let ids = mb.folder_message_ids("inbox").unwrap();
    for (i, name) in ["DestinationId", "DESTINATIONID", "destinationId"]
        .into_iter()
        .enumerate()
    {
        let (status, body) = g
            .post(
                &format!("/me/messages/{}/move", enc(&ids[i])),
                json!({ name: "archive" }),
            )
            .await;
        assert_eq!(status, 201, "{name}: {body}");
    }
    assert!(mb.folder_messages("archive").unwrap().len() >= 3);
    let (status, body) = g
        .post(
            &format!("/me/messages/{}/move", enc(&ids[3])),
            json!({"destination": "archive"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("ErrorInvalidRequest"))
    );
}

#[tokio::test]
async fn identity_answers_carry_request_ids_and_echo_client_request_id() {
    let sim = start(quiet()).await;
    let url = format!("{}/common/oauth2/v2.0/devicecode", sim.base_url());
    let resp = client()
        .post(&url)
        .header("client-request-id", "5e0b2c3a-1111-4a4a-9c9c-000000000001")
        .form(&[("client_id", "app"), ("scope", "Mail.Read")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["client-request-id"],
        "5e0b2c3a-1111-4a4a-9c9c-000000000001"
    );
    assert!(resp.headers().contains_key("x-ms-request-id"));
    let dc: Value = resp.json().await.unwrap();

    let token = format!("{}/common/oauth2/v2.0/token", sim.base_url());
    let resp = client()
        .post(&token)
        .header("client-request-id", "5e0b2c3a-1111-4a4a-9c9c-000000000002")
        .form(&[
            ("client_id", "app"),
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", dc["device_code"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.headers()["client-request-id"],
        "5e0b2c3a-1111-4a4a-9c9c-000000000002"
    );
    let trace = resp.headers()["x-ms-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "authorization_pending");
    assert_eq!(
        body["correlation_id"],
        "5e0b2c3a-1111-4a4a-9c9c-000000000002"
    );
    assert_eq!(body["trace_id"], trace.as_str());

    // Without the header: no echo, a request id all the same.
    let resp = client()
        .post(&token)
        .form(&[("client_id", "app")])
        .send()
        .await
        .unwrap();
    assert!(!resp.headers().contains_key("client-request-id"));
    assert!(resp.headers().contains_key("x-ms-request-id"));
}

#[tokio::test]
async fn graph_answers_carry_request_id_and_echo_client_request_id() {
    let sim = start(quiet()).await;
    let graph = Graph::new(&sim, DEMO);
    let ours = "5e0b2c3a-2222-4a4a-9c9c-000000000003";
    let header = |h: &reqwest::header::HeaderMap, name: &str| {
        h.get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no {name} header"))
    };
    // A success, an error and a throttling answer: each names itself and echoes ours.
    sim.script_faults(DEMO, &[429]).unwrap();
    for expected in [429, 200, 400] {
        let path = if expected == 400 {
            "/me/messages/AAMkAGNoSuchMessage"
        } else {
            "/me"
        };
        let (status, h, body) = graph.get_with(path, &[("client-request-id", ours)]).await;
        assert_eq!(status, expected, "{body}");
        assert_eq!(header(&h, "client-request-id"), ours, "{expected}");
        let request_id = header(&h, "request-id");
        assert_ne!(request_id, ours);
        if expected != 200 {
            assert_eq!(
                body["error"]["innerError"]["request-id"],
                request_id.as_str()
            );
            assert_eq!(body["error"]["innerError"]["client-request-id"], ours);
        }
    }
    // Without ours, Graph's request id stands in for it.
    let (_, h, _) = graph.get_with("/me", &[]).await;
    assert_eq!(header(&h, "client-request-id"), header(&h, "request-id"));
}

#[tokio::test]
async fn instance_discovery_openid_configuration_and_jwks() {
    let sim = start(quiet()).await;
    let base = sim.base_url();
    let host = "127.0.0.1";
    let http = client();
    let resp = http
        .get(with_query(
            &format!("{base}/common/discovery/instance"),
            &[
                ("api-version", "1.1"),
                (
                    "authorization_endpoint",
                    &format!("{base}/organizations/oauth2/v2.0/authorize"),
                ),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "tenant_discovery_endpoint": format!("{base}/organizations/v2.0/.well-known/openid-configuration"),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        })
    );
    // msal leaves the port out.
    let resp = http
        .get(with_query(
            &format!("{base}/common/discovery/instance"),
            &[
                ("api-version", "1.0"),
                (
                    "authorization_endpoint",
                    "https://127.0.0.1/consumers/oauth2/v2.0/authorize",
                ),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["tenant_discovery_endpoint"],
        format!("{base}/consumers/v2.0/.well-known/openid-configuration")
    );
    let resp = http
        .get(with_query(
            &format!("{base}/common/discovery/instance"),
            &[
                ("api-version", "1.1"),
                (
                    "authorization_endpoint",
                    "https://login.example.invalid/common/oauth2/v2.0/authorize",
                ),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_instance");
    assert_eq!(body["error_codes"], json!([50049]));

    let config: Value = http
        .get(format!(
            "{base}/common/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks_uri = config["jwks_uri"].as_str().unwrap();
    assert_eq!(jwks_uri, format!("{base}/common/discovery/v2.0/keys"));
    let jwks: Value = http
        .get(jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks, json!({"keys": []}));
}

#[tokio::test]
async fn only_known_domains_are_tenants() {
    let sim = start(
        quiet()
            .tenant_domain("contoso.onmicrosoft.com")
            .mailbox(MailboxSpec::new("bob@fabrikam.test", 1)),
    )
    .await;
    let check = |tenant: &'static str| {
        let url = format!(
            "{}/{tenant}/v2.0/.well-known/openid-configuration",
            sim.base_url()
        );
        async move {
            let resp = client().get(url).send().await.unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            (status, body["error_codes"][0].as_u64())
        }
    };
    for ok in [
        "common",
        "organizations",
        "consumers",
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "contoso.onmicrosoft.com",
        "CONTOSO.onmicrosoft.com",
        "mailroom.test",
        "fabrikam.test",
    ] {
        assert_eq!(check(ok).await.0, 200, "{ok}");
    }
    for bad in ["unknown.onmicrosoft.com", "example.com", "contoso"] {
        assert_eq!(check(bad).await, (400, Some(90002)), "{bad}");
    }
}

/// `url` with these query parameters, form-encoded.
fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(url).unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

/// A client that trusts `pem` only (an empty `pem`: nothing).
fn trusting(pem: &str) -> reqwest::Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap()
}

#[tokio::test]
async fn tls_with_a_certificate_made_at_start() {
    let sim = start(quiet().tls(Some(Tls::SelfSigned))).await;
    assert!(
        sim.base_url().starts_with("https://127.0.0.1:"),
        "{}",
        sim.base_url()
    );
    let pem = sim.ca_certificate_pem().unwrap().to_owned();
    let file = sim.ca_file().unwrap().to_owned();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), pem);

    let tokens = sim.issue_tokens(DEMO, "app", &["Mail.Read"]).unwrap();
    let https = trusting(&pem);
    let me: Value = https
        .get(format!("{}/me", sim.graph_url()))
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["mail"], DEMO);
    let localhost = sim.base_url().replace("127.0.0.1", "localhost");
    let status = https
        .get(format!(
            "{localhost}/common/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    // Plain HTTP is not served, and a client that does not trust the CA fails.
    let plain = format!("http://{}/v1.0/me", sim.addr());
    assert!(client().get(&plain).send().await.is_err());
    let untrusting = trusting("");
    assert!(untrusting.get(sim.graph_url()).send().await.is_err());

    sim.shutdown().await;
    assert!(!file.exists(), "the CA file is removed at shutdown");
}

#[tokio::test]
async fn tls_with_certificate_files() {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("mailroom-sim-it-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();

    let sim = start(quiet().tls(Some(Tls::Files {
        cert: cert_path.clone(),
        key: key_path.clone(),
    })))
    .await;
    assert!(sim.ca_certificate_pem().is_none() && sim.ca_file().is_none());
    let url = format!(
        "https://localhost:{}/common/v2.0/.well-known/openid-configuration",
        sim.addr().port()
    );
    let resp = trusting(&cert.pem()).get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    let missing = Simulator::start(quiet().tls(Some(Tls::Files {
        cert: dir.join("nope.pem"),
        key: key_path,
    })))
    .await
    .unwrap_err();
    assert!(missing.to_string().contains("nope.pem"), "{missing}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn every_generated_url_uses_the_public_url() {
    let public = "https://mail.example.test:8443";
    let sim = start(
        quiet()
            .public_url(format!("{public}/"))
            .mailboxes(vec![MailboxSpec::new(DEMO, 30).all_in("inbox")]),
    )
    .await;
    assert_eq!(sim.base_url(), public);
    assert_eq!(sim.graph_url(), format!("{public}/v1.0"));
    assert_eq!(sim.verification_uri(), format!("{public}/devicelogin"));
    // The client reaches the socket; the simulator speaks of the public URL.
    let local = format!("http://{}", sim.addr());
    let http = client();
    let config: Value = http
        .get(format!(
            "{local}/common/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for key in [
        "token_endpoint",
        "device_authorization_endpoint",
        "jwks_uri",
        "issuer",
    ] {
        assert!(
            config[key].as_str().unwrap().starts_with(public),
            "{key}: {config}"
        );
    }
    let (_, dc) = crate::post_form(
        &format!("{local}/common/oauth2/v2.0/devicecode"),
        &[("client_id", "app"), ("scope", "Mail.Read")],
    )
    .await;
    assert_eq!(dc["verification_uri"], format!("{public}/devicelogin"));
    assert!(dc["message"].as_str().unwrap().contains(public));

    let mut g = Graph::new(&sim, DEMO);
    g.base = format!("{local}/v1.0");
    let (_, page) = g.get("/me/mailFolders/inbox/messages?$top=10").await;
    assert!(page["@odata.context"].as_str().unwrap().starts_with(public));
    let next = page["@odata.nextLink"].as_str().unwrap();
    assert!(next.starts_with(&format!("{public}/v1.0/me/")), "{next}");
    let mut link = g
        .get_with(
            "/me/mailFolders/inbox/messages/delta",
            &[("Prefer", "odata.maxpagesize=50")],
        )
        .await
        .2;
    while let Some(n) = link["@odata.nextLink"].as_str() {
        assert!(n.starts_with(public), "{n}");
        let local_next = n.replacen(public, &local, 1);
        link = g.get(&local_next).await.1;
    }
    let delta = link["@odata.deltaLink"].as_str().unwrap();
    assert!(delta.starts_with(&format!("{public}/v1.0/")), "{delta}");

    for bad in [
        "ftp://example.test",
        "https://example.test/prefix",
        "https://example.test/?q=1",
        "not a url",
    ] {
        let err = Simulator::start(quiet().public_url(bad)).await.unwrap_err();
        assert!(
            matches!(err, mailroom_sim::Error::InvalidPublicUrl(_)),
            "{bad}: {err}"
        );
    }
}
