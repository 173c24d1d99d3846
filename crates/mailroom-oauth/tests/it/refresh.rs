//! The refresh token grant and the token session against the simulator.

use std::sync::Arc;

use mailroom_core::{ConnectorError, RefreshToken};
use mailroom_oauth::{ClientApplication, ErrorKind, Resource, Tenant, TokenSession};
use mailroom_sim::{RefreshFailure, SimConfig};

use crate::support::{ALICE, APP, CONF_APP, CONF_SECRET, Harness, config, secs};

#[tokio::test]
async fn rotation_across_three_expiries_in_strict_mode() {
    let h = Harness::start(config().strict_refresh_rotation(true)).await;
    let mut stored = h.issued_credentials(ALICE, APP, Resource::Graph);
    let first_rt = stored.refresh_token.clone().unwrap();
    stored
        .extra
        .insert("mailbox".into(), serde_json::json!(ALICE));
    let session = TokenSession::new(
        h.public_app(APP, Tenant::Common),
        stored.clone(),
        Resource::Graph,
    );

    let mut seen_rts = vec![first_rt.secret().to_owned()];
    for round in 1..=3u64 {
        // Still valid 5 minutes and 1 second before expiry: cached.
        h.advance(secs(3600 - 301));
        let cached = session.access_token().await.unwrap();
        assert_eq!(cached.secret(), stored.token.as_ref().unwrap().secret());
        assert!(session.take_refreshed().is_none());
        // One second later it counts as expired: refreshed.
        h.advance(secs(1));
        let fresh = session.access_token().await.unwrap();
        assert_ne!(fresh.secret(), cached.secret());
        assert_eq!(h.graph_me(&fresh).await, 200);
        let rotated = session
            .take_refreshed()
            .expect("new credentials to persist");
        let rt = rotated.refresh_token.as_ref().unwrap().secret().to_owned();
        assert!(
            !seen_rts.contains(&rt),
            "round {round}: the refresh token rotated"
        );
        seen_rts.push(rt);
        assert_eq!(rotated.token.as_ref().unwrap().secret(), fresh.secret());
        assert_eq!(
            rotated.expiry,
            Some(h.now() + chrono::TimeDelta::seconds(3600))
        );
        assert_eq!(rotated.extra["mailbox"], ALICE, "unknown fields kept");
        assert_eq!(Resource::of_scopes(&rotated.scopes), Some(Resource::Graph));
        assert_eq!(h.sim.counters().refreshes(ALICE), round);
        stored = rotated;
    }
    let c = h.sim.counters();
    assert_eq!(
        c.refresh_token_replays_total, 0,
        "no refresh token was used twice"
    );

    // The first refresh token is spent: strict mode refuses it.
    let app = h.public_app(APP, Tenant::Common);
    let err = app
        .acquire_token_by_refresh_token(&first_rt, Resource::Graph.default_scopes())
        .await
        .unwrap_err();
    assert!(err.is_reauth_required(), "{err}");
    assert_eq!(err.aadsts_code(), Some("AADSTS70000"));
    // The last one persisted still works, and rotates again.
    let last = stored.refresh_token.clone().unwrap();
    let result = app
        .acquire_token_by_refresh_token(&last, Resource::Graph.default_scopes())
        .await
        .unwrap();
    assert_ne!(result.refresh_token().unwrap().secret(), last.secret());
}

/// One scripted failure: the kind, AADSTS code and suberror it must give.
async fn check_failure(
    failure: RefreshFailure,
    kind: ErrorKind,
    aadsts: &str,
    suberror: Option<&str>,
) {
    let h = Harness::start(config()).await;
    let creds = h.issued_credentials(ALICE, APP, Resource::Graph);
    h.sim.script_refresh_failure(ALICE, failure).unwrap();
    let app = h.public_app(APP, Tenant::Common);
    let err = app
        .acquire_token_by_refresh_token(
            creds.refresh_token.as_ref().unwrap(),
            Resource::Graph.default_scopes(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), kind, "{failure:?}: {err}");
    assert_eq!(err.aadsts_code(), Some(aadsts), "{failure:?}");
    assert_eq!(err.suberror(), suberror, "{failure:?}");
    let description = err.description().expect("Microsoft's description");
    assert!(
        description.starts_with(&format!("{aadsts}: ")),
        "{description}"
    );
    assert!(!description.contains("Trace ID"), "{description}");
    assert!(
        err.body().unwrap().contains("\"error_codes\""),
        "raw body kept"
    );
    // The ids Microsoft support asks for, kept and quoted in the message.
    let trace = err.trace_id().expect("the trace_id");
    let correlation = err.correlation_id().expect("the correlation_id");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot refresh token for client {APP}: {description} ({}, trace_id {trace}, correlation_id {correlation})",
            err.error_code().unwrap()
        )
    );
    let conn = ConnectorError::from(err);
    assert_eq!(conn.code(), Some(aadsts));

    // Through a session: the same error, and a re-auth is remembered (no retry loop).
    let session = TokenSession::new(app, creds_expired(creds), Resource::Graph);
    let e1 = session.access_token().await.unwrap_err();
    assert_eq!((e1.kind(), e1.aadsts_code()), (kind, Some(aadsts)));
    let _ = session.access_token().await.unwrap_err();
    let failures = h
        .sim
        .counters()
        .refresh_failures
        .get(ALICE)
        .copied()
        .unwrap_or(0);
    let expected = if kind == ErrorKind::ReauthRequired {
        2
    } else {
        3
    };
    assert_eq!(failures, expected, "{failure:?}");
}

fn creds_expired(mut creds: mailroom_core::OAuthCredentials) -> mailroom_core::OAuthCredentials {
    creds.expiry = None;
    creds
}

#[tokio::test]
async fn every_scripted_failure_maps_to_its_kind() {
    use ErrorKind::*;
    check_failure(
        RefreshFailure::Expired,
        ReauthRequired,
        "AADSTS700082",
        None,
    )
    .await;
    check_failure(RefreshFailure::Revoked, ReauthRequired, "AADSTS50173", None).await;
    check_failure(
        RefreshFailure::ConsentRequired,
        ReauthRequired,
        "AADSTS65001",
        Some("consent_required"),
    )
    .await;
    check_failure(
        RefreshFailure::MfaRequired,
        ReauthRequired,
        "AADSTS50076",
        Some("basic_action"),
    )
    .await;
    check_failure(
        RefreshFailure::SignInFrequency,
        ReauthRequired,
        "AADSTS70043",
        None,
    )
    .await;
    check_failure(RefreshFailure::ServerError, Transient, "AADSTS50000", None).await;
}

#[tokio::test]
async fn unknown_and_inactive_refresh_tokens_need_reauth() {
    let config = SimConfig {
        refresh_token_lifetime: secs(24 * 3600),
        ..config()
    };
    let h = Harness::start(config).await;
    let app = h.public_app(APP, Tenant::Common);
    let err = app
        .acquire_token_by_refresh_token(
            &RefreshToken::new("not-a-refresh-token"),
            Resource::Graph.default_scopes(),
        )
        .await
        .unwrap_err();
    assert!(err.is_reauth_required(), "{err}");
    assert_eq!(err.error_code(), Some("invalid_grant"));

    let creds = h.issued_credentials(ALICE, APP, Resource::Graph);
    h.advance(secs(24 * 3600));
    let err = app
        .acquire_token_by_refresh_token(
            creds.refresh_token.as_ref().unwrap(),
            Resource::Graph.default_scopes(),
        )
        .await
        .unwrap_err();
    assert!(err.is_reauth_required(), "{err}");
    assert_eq!(err.aadsts_code(), Some("AADSTS700082"));
    assert_eq!(
        err.reason(),
        Some("the refresh token expired after a period of inactivity")
    );
}

#[tokio::test]
async fn confidential_and_public_clients() {
    let h = Harness::start(config()).await;
    let conf_creds = h.issued_credentials(ALICE, CONF_APP, Resource::Graph);
    let rt = conf_creds.refresh_token.clone().unwrap();
    let scopes = Resource::Graph.default_scopes();

    // The confidential client with its secret: accepted.
    let conf = h.confidential_app(CONF_APP, CONF_SECRET, Tenant::Organizations);
    let result = conf
        .acquire_token_by_refresh_token(&rt, scopes)
        .await
        .unwrap();
    let creds = result.into_credentials();
    assert_eq!(creds.client_secret.as_ref().unwrap().secret(), CONF_SECRET);
    let rt = creds.refresh_token.clone().unwrap();

    // A wrong secret: invalid configuration, AADSTS7000215.
    let wrong = h.confidential_app(CONF_APP, "not-the-secret", Tenant::Organizations);
    let err = wrong
        .acquire_token_by_refresh_token(&rt, scopes)
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.aadsts_code()),
        (ErrorKind::InvalidConfig, Some("AADSTS7000215")),
        "{err}"
    );
    assert_eq!(err.status(), Some(401));

    // No secret for a confidential registration: AADSTS7000218.
    let public = h.public_app(CONF_APP, Tenant::Organizations);
    let err = public
        .acquire_token_by_refresh_token(&rt, scopes)
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.aadsts_code()),
        (ErrorKind::InvalidConfig, Some("AADSTS7000218")),
        "{err}"
    );

    // A public registration: the public client sends no secret and is accepted...
    let pub_creds = h.issued_credentials(ALICE, APP, Resource::Graph);
    let public = h.public_app(APP, Tenant::Common);
    let result = public
        .acquire_token_by_refresh_token(pub_creds.refresh_token.as_ref().unwrap(), scopes)
        .await
        .unwrap();
    assert!(result.clone().into_credentials().client_secret.is_none());
    // ...while a secret sent for it is refused (AADSTS700025).
    let err = h
        .confidential_app(APP, "a-secret", Tenant::Common)
        .acquire_token_by_refresh_token(result.refresh_token().unwrap(), scopes)
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.aadsts_code()),
        (ErrorKind::InvalidConfig, Some("AADSTS700025")),
        "{err}"
    );

    // From stored credentials: a secret makes a confidential client.
    let app = h
        .wire(
            ClientApplication::builder_from_credentials(&creds, &h.sim.base_url()).unwrap(),
            Tenant::Organizations,
        )
        .build()
        .unwrap();
    assert!(app.is_confidential());
    let session = TokenSession::new(app, creds_expired(creds), Resource::Graph);
    let token = session.access_token().await.unwrap();
    assert_eq!(h.graph_me(&token).await, 200);
    let mut no_secret = pub_creds;
    no_secret.refresh_token = result.refresh_token().cloned();
    let app = ClientApplication::from_credentials(&no_secret, &h.sim.base_url()).unwrap();
    assert!(!app.is_confidential());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_flight_refresh_under_50_concurrent_callers() {
    let h = Harness::start(config().strict_refresh_rotation(true)).await;
    let creds = h.issued_credentials(ALICE, APP, Resource::Graph);
    let session = Arc::new(TokenSession::new(
        h.public_app(APP, Tenant::Common),
        creds_expired(creds),
        Resource::Graph,
    ));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let s = session.clone();
            tokio::spawn(async move { s.access_token().await })
        })
        .collect();
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap().unwrap().secret().to_owned());
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "everyone got the same token");
    let c = h.sim.counters();
    assert_eq!(c.refreshes(ALICE), 1, "exactly one refresh");
    assert_eq!(c.refresh_failures.get(ALICE), None);
    assert_eq!(
        c.requests("POST /{tenant}/oauth2/v2.0/token"),
        1,
        "{:?}",
        c.requests_by_route
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_parallel_401s_cause_one_refresh() {
    let h = Arc::new(Harness::start(config().strict_refresh_rotation(true)).await);
    let creds = h.issued_credentials(ALICE, APP, Resource::Graph);
    let session = Arc::new(TokenSession::new(
        h.public_app(APP, Tenant::Common),
        creds,
        Resource::Graph,
    ));
    let token = session.access_token().await.unwrap();
    assert_eq!(h.graph_me(&token).await, 200);
    // The server revokes the token before its expiry.
    h.sim.expire_access_tokens(ALICE).unwrap();
    // 16 requests in flight with that token all get 401.
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (s, h, token) = (session.clone(), h.clone(), token.clone());
            tokio::spawn(async move {
                assert_eq!(h.graph_me(&token).await, 401);
                let fresh = s.refresh_after_unauthorized(&token).await.unwrap();
                h.graph_me(&fresh).await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(h.sim.counters().refreshes(ALICE), 1);
    assert!(session.take_refreshed().is_some());
}

#[tokio::test]
async fn a_token_for_one_audience_is_not_used_for_the_other() {
    let h = Harness::start(config()).await;
    // Valid Graph credentials, used for IMAP.
    let creds = h.issued_credentials(ALICE, APP, Resource::Graph);
    let graph_token = creds.token.clone().unwrap();
    assert!(!h.outlook_accepts(&graph_token).await);
    let imap = TokenSession::new(
        h.public_app(APP, Tenant::Common),
        creds,
        Resource::OutlookImap,
    );
    let token = imap.access_token().await.unwrap();
    assert_ne!(token.secret(), graph_token.secret());
    assert!(h.outlook_accepts(&token).await, "an Outlook-audience token");
    assert_eq!(h.graph_me(&token).await, 401, "not a Graph token");
    let saved = imap.take_refreshed().unwrap();
    assert_eq!(
        Resource::of_scopes(&saved.scopes),
        Some(Resource::OutlookImap)
    );
    // Cached for IMAP from now on.
    assert_eq!(imap.access_token().await.unwrap().secret(), token.secret());
    assert_eq!(h.sim.counters().refreshes(ALICE), 1);

    // And back: the IMAP credentials in a Graph session refresh for Graph.
    let graph = TokenSession::new(h.public_app(APP, Tenant::Common), saved, Resource::Graph);
    let token = graph.access_token().await.unwrap();
    assert_eq!(h.graph_me(&token).await, 200);
    assert_eq!(h.sim.counters().refreshes(ALICE), 2);
}

#[tokio::test]
async fn an_unreachable_authority_is_transient() {
    // A port nobody listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = mailroom_oauth::PublicClientApplication::builder(APP)
        .authority(
            mailroom_oauth::Authority::new(&format!("http://127.0.0.1:{port}"), Tenant::Common)
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = app
        .acquire_token_by_refresh_token(&RefreshToken::new("rt"), Resource::Graph.default_scopes())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(err.is_transient() && err.status().is_none());
    assert!(
        err.to_string()
            .starts_with(&format!("cannot refresh token for client {APP}: cannot reach http://127.0.0.1:{port}/common/oauth2/v2.0/token")),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());
    let err = app
        .start_device_flow(Resource::Graph.default_scopes())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert_eq!(
        ConnectorError::from(err).kind(),
        mailroom_core::ErrorKind::Transient
    );
}

/// A token endpoint that answers `len` bytes of JSON whitespace (with
/// `Content-Length` when `announce`), on a loopback port.
async fn endless_token_endpoint(len: usize, announce: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let length = if announce {
                    format!("content-length: {len}\r\n")
                } else {
                    String::new()
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{length}connection: close\r\n\r\n"
                );
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b' '; 64 * 1024];
                let mut sent = 0;
                while sent < len {
                    if stream.write_all(&chunk).await.is_err() {
                        return;
                    }
                    sent += chunk.len();
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn a_token_answer_is_read_up_to_a_limit() {
    for announce in [true, false] {
        // 50 MB would be read whole before; the default limit is 1 MiB.
        let url = endless_token_endpoint(50_000_000, announce).await;
        let app = mailroom_oauth::PublicClientApplication::builder(APP)
            .authority(mailroom_oauth::Authority::new(&url, Tenant::Common).unwrap())
            .build()
            .unwrap();
        let err = app
            .acquire_token_by_refresh_token(
                &RefreshToken::new("rt"),
                Resource::Graph.default_scopes(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
        assert!(
            err.to_string()
                .contains("is larger than the limit of 1048576 bytes"),
            "{err}"
        );
    }
}
