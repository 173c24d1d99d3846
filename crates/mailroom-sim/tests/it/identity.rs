//! Identity platform: device code flow, refresh, clients, tenants, introspection.

use std::time::Duration;

use mailroom_sim::{Faults, RefreshFailure, SimConfig, Simulator};
use serde_json::Value;

use crate::{assert_shape, client, post_form, start};

const DEMO: &str = "demo@mailroom.test";
const APP: &str = "11111111-2222-3333-4444-555555555555";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn quiet() -> SimConfig {
    SimConfig {
        faults: Faults::none(),
        ..SimConfig::default()
    }
}

async fn device_code(sim: &Simulator, scope: &str) -> (u16, Value) {
    post_form(
        &format!("{}/common/oauth2/v2.0/devicecode", sim.base_url()),
        &[("client_id", APP), ("scope", scope)],
    )
    .await
}

async fn poll(sim: &Simulator, code: &str) -> (u16, Value) {
    post_form(
        &format!("{}/common/oauth2/v2.0/token", sim.base_url()),
        &[
            ("grant_type", GRANT),
            ("client_id", APP),
            ("device_code", code),
        ],
    )
    .await
}

async fn refresh(sim: &Simulator, rt: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", APP),
        ("refresh_token", rt),
    ];
    form.extend_from_slice(extra);
    post_form(
        &format!("{}/organizations/oauth2/v2.0/token", sim.base_url()),
        &form,
    )
    .await
}

fn code_of(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn device_flow_auto_approves_on_the_second_poll() {
    let sim = start(quiet()).await;
    let (status, dc) = device_code(&sim, "Mail.ReadWrite offline_access openid profile").await;
    assert_shape("identity/device_code_response.json", status, &dc);
    let user_code = dc["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 8);
    assert!(
        user_code
            .bytes()
            .all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b))
    );
    assert_eq!(dc["interval"], 5);
    assert_eq!(dc["expires_in"], 900);
    assert_eq!(
        dc["message"].as_str().unwrap(),
        format!(
            "To sign in, use a web browser to open the page {} and enter the code {user_code} to authenticate.",
            sim.verification_uri()
        )
    );
    let device_code = dc["device_code"].as_str().unwrap();
    assert!(device_code.starts_with("sim-dc-"));

    let (status, pending) = poll(&sim, device_code).await;
    assert_shape("identity/authorization_pending.json", status, &pending);
    assert_eq!(pending["error"], "authorization_pending");
    assert!(
        pending["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS70016:")
    );

    sim.advance_clock(Duration::from_secs(5));
    let (status, tokens) = poll(&sim, device_code).await;
    assert_shape("identity/token_success.json", status, &tokens);
    assert!(
        tokens["access_token"]
            .as_str()
            .unwrap()
            .starts_with("sim-at-")
    );
    assert!(
        tokens["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("sim-rt-")
    );
    assert_eq!(tokens["expires_in"], 3600);

    // The code is spent.
    sim.advance_clock(Duration::from_secs(5));
    let (status, again) = poll(&sim, device_code).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let c = sim.counters();
    assert_eq!(c.device_code_grants(DEMO), 1);
    assert_eq!(c.device_codes_issued, 1);
    assert_eq!(c.requests("POST /{tenant}/oauth2/v2.0/token"), 3);
}

#[tokio::test]
async fn slow_down_grows_the_interval_by_five_seconds() {
    let sim = start(SimConfig {
        auto_approve_after_polls: None,
        ..quiet()
    })
    .await;
    let (_, dc) = device_code(&sim, "Mail.Read").await;
    let code = dc["device_code"].as_str().unwrap();
    assert_eq!(poll(&sim, code).await.1["error"], "authorization_pending");
    // Immediately again: too fast.
    let (status, slow) = poll(&sim, code).await;
    assert_eq!((status, slow["error"].as_str()), (400, Some("slow_down")));
    // 5 s later is now too fast as well: the interval became 10 s.
    sim.advance_clock(Duration::from_secs(5));
    assert_eq!(poll(&sim, code).await.1["error"], "slow_down");
    // The interval is now 15 s.
    sim.advance_clock(Duration::from_secs(14));
    assert_eq!(poll(&sim, code).await.1["error"], "slow_down");
    sim.advance_clock(Duration::from_secs(20));
    assert_eq!(poll(&sim, code).await.1["error"], "authorization_pending");
    assert_eq!(sim.counters().slow_downs, 3);
}

#[tokio::test]
async fn device_code_expires_after_expires_in() {
    let sim = start(SimConfig {
        auto_approve_after_polls: None,
        ..quiet()
    })
    .await;
    let (_, dc) = device_code(&sim, "Mail.Read").await;
    let code = dc["device_code"].as_str().unwrap();
    sim.advance_clock(Duration::from_secs(899));
    assert_eq!(poll(&sim, code).await.1["error"], "authorization_pending");
    sim.advance_clock(Duration::from_secs(1));
    let (status, body) = poll(&sim, code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("expired_token"))
    );
    // An expired code can no longer be approved either.
    assert!(
        sim.approve_device_code(dc["user_code"].as_str().unwrap(), DEMO)
            .is_err()
    );
}

#[tokio::test]
async fn explicit_approval_and_decline() {
    let sim = start(
        SimConfig {
            auto_approve_after_polls: None,
            ..quiet()
        }
        .mailbox(mailroom_sim::MailboxSpec::new("alice@contoso.test", 3)),
    )
    .await;
    let (_, dc) = device_code(&sim, "openid Mail.Read offline_access").await;
    let code = dc["device_code"].as_str().unwrap();
    // Users type codes in any case and with separators.
    let typed = dc["user_code"].as_str().unwrap().to_lowercase();
    sim.approve_device_code(&typed, "alice@contoso.test")
        .unwrap();
    let (status, t) = poll(&sim, code).await;
    assert_eq!(status, 200, "{t}");
    let claims = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(claims["preferred_username"], "alice@contoso.test");
    assert_eq!(sim.counters().device_code_grants("alice@contoso.test"), 1);

    let (_, dc) = device_code(&sim, "Mail.Read").await;
    sim.deny_device_code(dc["user_code"].as_str().unwrap())
        .unwrap();
    let (status, body) = poll(&sim, dc["device_code"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("authorization_declined"))
    );

    let (status, body) = poll(&sim, "sim-dc-nonsense").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("bad_verification_code"))
    );
    assert!(sim.approve_device_code("BBBBBBBB", DEMO).is_err());
}

fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn verification_page_approves_a_code() {
    let sim = start(SimConfig {
        auto_approve_after_polls: None,
        ..quiet()
    })
    .await;
    let (_, dc) = device_code(&sim, "Mail.Read").await;
    let page = client()
        .get(sim.verification_uri())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<form") && page.contains(DEMO), "{page}");
    let user_code = dc["user_code"].as_str().unwrap();
    let done = client()
        .post(sim.verification_uri())
        .form(&[
            ("user_code", user_code),
            ("mailbox", DEMO),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(done.contains("Approved"), "{done}");
    let (status, _) = poll(&sim, dc["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn refresh_rotates_and_counts_replays() {
    let sim = start(quiet()).await;
    let t = sim
        .issue_tokens(DEMO, APP, &["Mail.ReadWrite", "offline_access"])
        .unwrap();
    let rt1 = t.refresh_token.clone().unwrap();
    let (status, r) = refresh(&sim, &rt1, &[]).await;
    assert_eq!(status, 200, "{r}");
    let rt2 = r["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    assert_ne!(r["access_token"].as_str().unwrap(), t.access_token);
    // Lenient mode (like Entra ID): the old one still works but is counted.
    let (status, _) = refresh(&sim, &rt1, &[]).await;
    assert_eq!(status, 200);
    let c = sim.counters();
    assert_eq!(c.refreshes(DEMO), 2);
    assert_eq!(c.refresh_token_replays_total, 1);
    assert_eq!(c.test_issued_tokens.get(DEMO), Some(&1));
    assert_eq!(c.device_code_grants(DEMO), 0);
}

#[tokio::test]
async fn each_access_token_counts_once_at_its_first_accepted_use() {
    let sim = start(quiet()).await;
    let t = sim
        .issue_tokens(DEMO, APP, &["Mail.ReadWrite", "offline_access"])
        .unwrap();
    let me = |token: String| {
        let url = format!("{}/me", sim.graph_url());
        async move {
            client()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(sim.counters().access_tokens_used(DEMO), 0);
    assert_eq!(me("not-a-token".into()).await, 401);
    assert_eq!(
        sim.counters().access_tokens_used(DEMO),
        0,
        "refused: not a use"
    );
    assert_eq!(me(t.access_token.clone()).await, 200);
    assert_eq!(me(t.access_token.clone()).await, 200);
    assert_eq!(
        sim.counters().access_tokens_used(DEMO),
        1,
        "the same token twice"
    );
    let (_, r) = refresh(&sim, t.refresh_token.as_deref().unwrap(), &[]).await;
    assert_eq!(
        sim.counters().access_tokens_used(DEMO),
        1,
        "issued, not used"
    );
    assert_eq!(
        me(r["access_token"].as_str().unwrap().to_owned()).await,
        200
    );
    assert_eq!(sim.counters().access_tokens_used(DEMO), 2);
}

#[tokio::test]
async fn strict_rotation_rejects_a_used_refresh_token() {
    let sim = start(SimConfig {
        strict_refresh_rotation: true,
        ..quiet()
    })
    .await;
    let t = sim
        .issue_tokens(DEMO, APP, &["Mail.ReadWrite", "offline_access"])
        .unwrap();
    let rt1 = t.refresh_token.unwrap();
    let (_, r) = refresh(&sim, &rt1, &[]).await;
    let rt2 = r["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = refresh(&sim, &rt1, &[]).await;
    assert_eq!(
        (status, body["error"].as_str(), code_of(&body)),
        (400, Some("invalid_grant"), 70000)
    );
    assert_eq!(refresh(&sim, &rt2, &[]).await.0, 200);
    assert_eq!(sim.counters().refresh_token_replays.get(DEMO), Some(&1));
}

#[tokio::test]
async fn scripted_refresh_failures() {
    let sim = start(quiet()).await;
    let rt = sim
        .issue_tokens(DEMO, APP, &["Mail.ReadWrite", "offline_access"])
        .unwrap()
        .refresh_token
        .unwrap();
    let cases = [
        (
            RefreshFailure::Expired,
            700082,
            None,
            "identity/invalid_grant_expired.json",
        ),
        (
            RefreshFailure::Revoked,
            50173,
            None,
            "identity/invalid_grant_expired.json",
        ),
        (
            RefreshFailure::ConsentRequired,
            65001,
            Some("consent_required"),
            "identity/consent_required.json",
        ),
        (
            RefreshFailure::MfaRequired,
            50076,
            Some("basic_action"),
            "identity/consent_required.json",
        ),
        (
            RefreshFailure::SignInFrequency,
            70043,
            None,
            "identity/invalid_grant_expired.json",
        ),
    ];
    for (failure, code, suberror, fx) in cases {
        sim.script_refresh_failure(DEMO, failure).unwrap();
        let (status, body) = refresh(&sim, &rt, &[]).await;
        assert_shape(fx, status, &body);
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(code_of(&body), code, "{failure:?}");
        assert_eq!(body["suberror"].as_str(), suberror);
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with(&format!("AADSTS{code}:"))
        );
    }
    sim.script_refresh_failure(DEMO, RefreshFailure::ServerError)
        .unwrap();
    assert_eq!(refresh(&sim, &rt, &[]).await.0, 500);
    sim.script_refresh_failure(DEMO, RefreshFailure::None)
        .unwrap();
    assert_eq!(refresh(&sim, &rt, &[]).await.0, 200);
    assert_eq!(sim.counters().refresh_failures.get(DEMO), Some(&6));
}

#[tokio::test]
async fn refresh_tokens_expire_by_inactivity() {
    let sim = start(quiet()).await;
    let rt = sim
        .issue_tokens(DEMO, APP, &["Mail.Read", "offline_access"])
        .unwrap()
        .refresh_token
        .unwrap();
    sim.advance_clock(Duration::from_secs(90 * 24 * 3600));
    let (status, body) = refresh(&sim, &rt, &[]).await;
    assert_shape("identity/invalid_grant_expired.json", status, &body);
    assert_eq!(code_of(&body), 700082);
    let (status, body) = refresh(&sim, "sim-rt-garbage", &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn public_and_confidential_clients() {
    let sim = start(quiet().confidential_client("conf-app", "s3cret")).await;
    let rt = sim
        .issue_tokens(DEMO, APP, &["Mail.Read", "offline_access"])
        .unwrap()
        .refresh_token
        .unwrap();
    let (status, body) = refresh(&sim, &rt, &[("client_secret", "x")]).await;
    assert_shape("identity/invalid_client_public.json", status, &body);
    assert_eq!(code_of(&body), 700025);

    let rt = sim
        .issue_tokens(DEMO, "conf-app", &["Mail.Read", "offline_access"])
        .unwrap()
        .refresh_token
        .unwrap();
    let url = format!("{}/common/oauth2/v2.0/token", sim.base_url());
    let base = [
        ("grant_type", "refresh_token"),
        ("client_id", "conf-app"),
        ("refresh_token", rt.as_str()),
    ];
    let (status, body) =
        post_form(&url, &[&base[..], &[("client_secret", "wrong")]].concat()).await;
    assert_eq!(
        (status, body["error"].as_str(), code_of(&body)),
        (401, Some("invalid_client"), 7000215)
    );
    let (status, body) = post_form(&url, &base).await;
    assert_eq!(
        (status, body["error"].as_str(), code_of(&body)),
        (401, Some("invalid_client"), 7000218)
    );
    let (status, body) =
        post_form(&url, &[&base[..], &[("client_secret", "s3cret")]].concat()).await;
    assert_eq!(status, 200, "{body}");
    // A token issued to one client cannot be redeemed by another.
    let rt2 = body["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(&sim, rt2, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn tenants_and_malformed_requests() {
    let sim = start(quiet().tenant_domain("contoso.onmicrosoft.com")).await;
    for tenant in [
        "common",
        "organizations",
        "consumers",
        "contoso.onmicrosoft.com",
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
    ] {
        let (status, _) = post_form(
            &format!("{}/{tenant}/oauth2/v2.0/devicecode", sim.base_url()),
            &[("client_id", APP), ("scope", "Mail.Read")],
        )
        .await;
        assert_eq!(status, 200, "{tenant}");
    }
    let (status, body) = post_form(
        &format!("{}/contoso/oauth2/v2.0/devicecode", sim.base_url()),
        &[("client_id", APP), ("scope", "Mail.Read")],
    )
    .await;
    assert_shape("identity/tenant_not_found.json", status, &body);
    assert_eq!(code_of(&body), 90002);

    let url = format!("{}/common/oauth2/v2.0/token", sim.base_url());
    let (status, body) = post_form(&url, &[("client_id", APP)]).await;
    assert_eq!(
        (status, body["error"].as_str(), code_of(&body)),
        (400, Some("invalid_request"), 900144)
    );
    let (status, body) = post_form(&url, &[("client_id", APP), ("grant_type", "password")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) = post_form(&url, &[("grant_type", "refresh_token")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let resp = client().get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);

    let (status, body) = device_code(
        &sim,
        "Mail.Read https://outlook.office.com/IMAP.AccessAsUser.All",
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str(), code_of(&body)),
        (400, Some("invalid_scope"), 28000)
    );
    let (status, body) = post_form(
        &format!("{}/common/oauth2/v2.0/devicecode", sim.base_url()),
        &[("scope", "Mail.Read")],
    )
    .await;
    assert_eq!((status, code_of(&body)), (400, 900144));
}

async fn introspect(sim: &Simulator, token: &str) -> Value {
    let (status, body) = post_form(&sim.introspection_url(), &[("token", token)]).await;
    assert_eq!(status, 200);
    body
}

#[tokio::test]
async fn introspection_accepts_only_live_outlook_tokens() {
    let sim = start(quiet()).await;
    let imap = sim
        .issue_tokens(
            DEMO,
            APP,
            &[
                "https://outlook.office.com/IMAP.AccessAsUser.All",
                "offline_access",
            ],
        )
        .unwrap();
    let body = introspect(&sim, &imap.access_token).await;
    assert_shape("identity/introspection_active.json", 200, &body);
    assert_eq!(body["username"], DEMO);
    assert_eq!(body["aud"], "https://outlook.office.com");

    // Dovecot's `introspection_mode = auth` and `get`.
    let auth: Value = client()
        .get(sim.introspection_url())
        .bearer_auth(&imap.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(auth["active"], true);
    let get: Value = client()
        .get(format!(
            "{}?token={}",
            sim.introspection_url(),
            imap.access_token
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(get["active"], true);

    let graph = sim.issue_tokens(DEMO, APP, &["Mail.Read"]).unwrap();
    assert_eq!(
        introspect(&sim, &graph.access_token).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(introspect(&sim, "sim-at-unknown").await["active"], false);

    // The refresh token of a Graph grant can be redeemed for Outlook.
    let g = sim
        .issue_tokens(DEMO, APP, &["Mail.Read", "offline_access"])
        .unwrap();
    let (status, r) = refresh(
        &sim,
        &g.refresh_token.unwrap(),
        &[(
            "scope",
            "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
        )],
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        introspect(&sim, r["access_token"].as_str().unwrap()).await["active"],
        true
    );

    assert_eq!(sim.expire_access_tokens(DEMO).unwrap(), 4);
    assert_eq!(introspect(&sim, &imap.access_token).await["active"], false);

    // Access tokens also expire with time.
    let fresh = sim
        .issue_tokens(
            DEMO,
            APP,
            &["https://outlook.office.com/IMAP.AccessAsUser.All"],
        )
        .unwrap();
    assert!(fresh.refresh_token.is_none());
    sim.advance_clock(Duration::from_secs(3600));
    assert_eq!(introspect(&sim, &fresh.access_token).await["active"], false);
}

#[tokio::test]
async fn control_endpoints_drive_the_flow() {
    let sim = start(SimConfig {
        auto_approve_after_polls: None,
        ..quiet()
    })
    .await;
    let (_, dc) = device_code(&sim, "Mail.Read").await;
    let ctl = |p: &str| format!("{}/_sim/{p}", sim.base_url());
    let r = client()
        .post(ctl("device/approve"))
        .json(&serde_json::json!({"user_code": dc["user_code"], "user": DEMO}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(poll(&sim, dc["device_code"].as_str().unwrap()).await.0, 200);

    let r: Value = client()
        .post(ctl("tokens"))
        .json(&serde_json::json!({"user": DEMO, "client_id": APP, "scopes": ["Mail.Read", "offline_access"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["refresh_token"].as_str().unwrap().starts_with("sim-rt-"));
    let r = client()
        .post(ctl("refresh-failure"))
        .json(&serde_json::json!({"user": DEMO, "failure": "revoked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, body) = refresh(&sim, r_token(&r_json(&sim).await), &[]).await;
    assert_eq!(code_of(&body), 50173);
    let r = client()
        .post(ctl("clock/advance"))
        .json(&serde_json::json!({"seconds": 4000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let counters: Value = client()
        .get(ctl("counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["device_code_grants"][DEMO], 1);
    assert_eq!(counters["test_issued_tokens"][DEMO], 2);
}

async fn r_json(sim: &Simulator) -> Value {
    client()
        .post(format!("{}/_sim/tokens", sim.base_url()))
        .json(&serde_json::json!({"user": DEMO, "client_id": APP, "scopes": ["Mail.Read", "offline_access"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn r_token(v: &Value) -> &str {
    v["refresh_token"].as_str().unwrap()
}

#[tokio::test]
async fn confidential_clients_may_use_basic_auth() {
    let sim = start(quiet().confidential_client("conf-app", "s3cr:t+")).await;
    let rt = sim
        .issue_tokens(DEMO, "conf-app", &["Mail.Read", "offline_access"])
        .unwrap()
        .refresh_token
        .unwrap();
    let url = format!("{}/common/oauth2/v2.0/token", sim.base_url());
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
    let resp = client()
        .post(&url)
        .basic_auth("conf-app", Some("s3cr%3At%2B"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    let resp = client()
        .post(&url)
        .basic_auth("conf-app", Some("wrong"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // Printing the simulator never prints a token.
    let t = sim
        .issue_tokens(DEMO, APP, &["Mail.Read", "offline_access"])
        .unwrap();
    let dump = format!("{sim:?} {t:?}");
    assert!(!dump.contains(&t.access_token) && !dump.contains(t.refresh_token.as_deref().unwrap()));
    assert!(
        !dump.contains("sim-at-") && !dump.contains("sim-rt-"),
        "{dump:.2000}"
    );
}

#[tokio::test]
async fn issued_secrets_lists_every_token_and_device_code() {
    let sim = start(quiet()).await;
    let t = sim
        .issue_tokens(DEMO, APP, &["Mail.Read", "offline_access"])
        .unwrap();
    let (_, dc) = device_code(&sim, "Mail.Read").await;
    let secrets = sim.issued_secrets();
    assert!(secrets.contains(&t.access_token));
    assert!(secrets.contains(t.refresh_token.as_ref().unwrap()));
    assert!(secrets.contains(&dc["device_code"].as_str().unwrap().to_owned()));
    assert_eq!(secrets.len(), 3);
    // A zero interval lets a client poll back to back.
    let sim = start(SimConfig {
        device_code_interval: Duration::ZERO,
        ..quiet()
    })
    .await;
    let (_, dc) = device_code(&sim, "Mail.Read").await;
    assert_eq!(dc["interval"], 0);
    let code = dc["device_code"].as_str().unwrap();
    assert_eq!(poll(&sim, code).await.1["error"], "authorization_pending");
    assert_eq!(poll(&sim, code).await.0, 200);
}

#[tokio::test]
async fn a_failure_scripted_for_n_refreshes_then_clears() {
    let sim = start(quiet()).await;
    let rt = sim
        .issue_tokens(DEMO, APP, &["Mail.Read", "offline_access"])
        .unwrap()
        .refresh_token
        .unwrap();
    sim.script_refresh_failure_times(DEMO, RefreshFailure::ServerError, 2)
        .unwrap();
    assert_eq!(refresh(&sim, &rt, &[]).await.0, 500);
    assert_eq!(refresh(&sim, &rt, &[]).await.0, 500);
    let (status, body) = refresh(&sim, &rt, &[]).await;
    assert_eq!(status, 200, "{body}");
    // Over the control API too.
    let r = client()
        .post(format!("{}/_sim/refresh-failure", sim.base_url()))
        .json(&serde_json::json!({"user": DEMO, "failure": "revoked", "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let rt = body["refresh_token"].as_str().unwrap();
    assert_eq!(code_of(&refresh(&sim, rt, &[]).await.1), 50173);
    assert_eq!(refresh(&sim, rt, &[]).await.0, 200);
    assert_eq!(sim.counters().refresh_failures.get(DEMO), Some(&3));
}

#[tokio::test]
async fn client_info_for_msal_style_clients() {
    let sim = start(quiet()).await;
    let rt = sim
        .issue_tokens(DEMO, APP, &["Mail.Read", "offline_access"])
        .unwrap()
        .refresh_token
        .unwrap();
    let (status, body) = refresh(&sim, &rt, &[("client_info", "1")]).await;
    assert_eq!(status, 200);
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body["client_info"].as_str().unwrap())
        .unwrap();
    let info: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(info["uid"], sim.mailbox(DEMO).unwrap().user_id());
    let (_, body) = refresh(&sim, body["refresh_token"].as_str().unwrap(), &[]).await;
    assert!(body.get("client_info").is_none());
}
