//! The device code flow against the simulator, with test time.

use chrono::TimeDelta;
use mailroom_oauth::{ErrorKind, Resource, Tenant};
use mailroom_sim::SimConfig;

use crate::support::{ALICE, APP, CONF_APP, CONF_SECRET, Harness, Wait, config, secs};

#[tokio::test]
async fn happy_path_personal_account() {
    let h = Harness::start(config()).await;
    let app = h.public_app(APP, Tenant::Consumers);
    let started = h.now();
    let flow = app
        .start_device_flow(Resource::Graph.default_scopes())
        .await
        .unwrap();
    assert_eq!(flow.verification_uri, h.sim.verification_uri());
    assert!(!flow.user_code.is_empty());
    assert!(flow.message.contains(&flow.user_code), "{}", flow.message);
    assert!(
        flow.message.contains(&flow.verification_uri),
        "{}",
        flow.message
    );
    assert_eq!(flow.expires_at, started + TimeDelta::seconds(900));
    assert_eq!(flow.interval, secs(5));

    let result = app
        .wait_for_device_flow(&flow, std::future::pending())
        .await
        .unwrap();
    // Approved automatically on the 2nd poll: one wait of `interval` in between.
    assert_eq!(h.waits(), [secs(5)]);
    let c = h.sim.counters();
    assert_eq!((c.device_code_polls, c.slow_downs), (2, 0));
    assert_eq!(c.device_code_grants(ALICE), 1);

    assert_eq!(result.resource(), Some(Resource::Graph));
    assert_eq!(result.expires_at(), h.now() + TimeDelta::seconds(3600));
    let creds = result.into_credentials();
    assert_eq!(creds.client_id, APP);
    assert_eq!(creds.tenant_id, "consumers");
    assert!(creds.client_secret.is_none());
    assert!(creds.refresh_token.is_some());
    assert!(
        creds
            .scopes
            .iter()
            .any(|s| s == "https://graph.microsoft.com/Mail.ReadWrite")
    );
    assert!(creds.scopes.iter().any(|s| s == "offline_access"));
    assert_eq!(h.graph_me(creds.token.as_ref().unwrap()).await, 200);
}

#[tokio::test]
async fn explicit_approval_after_some_polls() {
    let h = Harness::start(config().auto_approve_after_polls(None)).await;
    let app = h.public_app(APP, Tenant::Organizations);
    let flow = app
        .start_device_flow(Resource::OutlookImap.default_scopes())
        .await
        .unwrap();
    let (sim, code) = (h.sim.clone(), flow.user_code.clone());
    h.on_wait(move |i, wait| {
        if i == 2 {
            sim.approve_device_code(&code, ALICE).unwrap();
        }
        Wait::Advance(wait)
    });
    let result = app
        .wait_for_device_flow(&flow, std::future::pending())
        .await
        .unwrap();
    assert_eq!(h.waits(), [secs(5), secs(5), secs(5)]);
    assert_eq!(h.sim.counters().device_code_polls, 4);
    assert_eq!(result.resource(), Some(Resource::OutlookImap));
    assert!(h.outlook_accepts(result.access_token()).await);
}

#[tokio::test]
async fn pending_then_slow_down_then_approved_with_the_right_waits() {
    // Approved on the 3rd well-paced poll.
    let h = Harness::start(config().auto_approve_after_polls(Some(3))).await;
    let app = h.public_app(APP, Tenant::Common);
    let flow = app
        .start_device_flow(Resource::Graph.default_scopes())
        .await
        .unwrap();
    // The simulator answers `slow_down` only to a poll that comes too early. To see
    // one, the server's clock moves 3 s (not 5) during the first wait, as if that
    // poll had been delayed on the way: the next poll reaches it 3 s after the first.
    h.on_wait(|i, wait| Wait::Advance(if i == 0 { secs(3) } else { wait }));
    app.wait_for_device_flow(&flow, std::future::pending())
        .await
        .unwrap();
    // poll 1 pending, wait 5; poll 2 slow_down, wait 5 + 5; poll 3 pending, wait 10;
    // poll 4 approved. The increased interval is kept.
    assert_eq!(h.waits(), [secs(5), secs(10), secs(10)]);
    let c = h.sim.counters();
    assert_eq!((c.device_code_polls, c.slow_downs), (4, 1));
    assert_eq!(c.device_code_grants(ALICE), 1);
}

#[tokio::test]
async fn declined() {
    let h = Harness::start(config().auto_approve_after_polls(None)).await;
    let app = h.public_app(APP, Tenant::Common);
    let flow = app
        .start_device_flow(Resource::Graph.default_scopes())
        .await
        .unwrap();
    let (sim, code) = (h.sim.clone(), flow.user_code.clone());
    h.on_wait(move |_, wait| {
        sim.deny_device_code(&code).unwrap();
        Wait::Advance(wait)
    });
    let err = app
        .wait_for_device_flow(&flow, std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Declined, "{err}");
    assert!(err.is_sign_in_abandoned());
    assert_eq!(err.error_code(), Some("authorization_declined"));
    assert_eq!(err.aadsts_code(), Some("AADSTS65004"));
    assert!(err.body().unwrap().contains("\"authorization_declined\""));
    assert!(
        err.to_string().starts_with(&format!(
            "cannot complete the device code flow for client {APP}: AADSTS65004: "
        )),
        "{err}"
    );
    // Polling stopped at the refusal.
    assert_eq!(h.waits(), [secs(5)]);
    assert_eq!(h.sim.counters().device_code_polls, 2);
}

#[tokio::test]
async fn expired_by_the_server() {
    let config = SimConfig {
        device_code_lifetime: secs(10),
        ..config().auto_approve_after_polls(None)
    };
    let h = Harness::start(config).await;
    let app = h.public_app(APP, Tenant::Common);
    let flow = app
        .start_device_flow(Resource::Graph.default_scopes())
        .await
        .unwrap();
    let err = app
        .wait_for_device_flow(&flow, std::future::pending())
        .await
        .unwrap_err();
    // Polls at 0, 5 and 10 s; the third finds the code expired.
    assert_eq!(err.kind(), ErrorKind::Expired, "{err}");
    assert_eq!(err.error_code(), Some("expired_token"));
    assert_eq!(err.aadsts_code(), Some("AADSTS70019"));
    assert_eq!(h.waits(), [secs(5), secs(5)]);
    assert_eq!(h.sim.counters().device_code_polls, 3);
}

#[tokio::test]
async fn expired_by_the_local_deadline() {
    let config = SimConfig {
        device_code_lifetime: secs(12),
        ..config().auto_approve_after_polls(None)
    };
    let h = Harness::start(config).await;
    let app = h.public_app(APP, Tenant::Common);
    let flow = app
        .start_device_flow(Resource::Graph.default_scopes())
        .await
        .unwrap();
    let err = app
        .wait_for_device_flow(&flow, std::future::pending())
        .await
        .unwrap_err();
    // Polls at 0, 5, 10 s; at 15 s the code is past its 12 s: no fourth poll.
    assert_eq!(err.kind(), ErrorKind::Expired, "{err}");
    assert_eq!(err.aadsts_code(), None);
    assert!(
        err.to_string()
            .ends_with("the device code expired before the user signed in"),
        "{err}"
    );
    assert_eq!(h.sim.counters().device_code_polls, 3);

    // Waiting again on the same, expired flow does not poll at all.
    let again = app
        .wait_for_device_flow(&flow, std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Expired);
    assert_eq!(h.sim.counters().device_code_polls, 3);
}

#[tokio::test]
async fn bad_verification_code() {
    // A device code the server does not know: one issued by another simulator.
    let h = Harness::start(config()).await;
    let other = Harness::start(config()).await;
    let flow = other
        .public_app(APP, Tenant::Common)
        .start_device_flow(Resource::Graph.default_scopes())
        .await
        .unwrap();
    let err = h
        .public_app(APP, Tenant::Common)
        .wait_for_device_flow(&flow, std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Expired, "{err}");
    assert_eq!(err.error_code(), Some("bad_verification_code"));
    assert_eq!(err.aadsts_code(), Some("AADSTS70018"));
    assert_eq!(h.sim.counters().device_code_polls, 1);
}

#[tokio::test]
async fn cancelled_by_the_caller() {
    let h = Harness::start(config().auto_approve_after_polls(None)).await;
    let app = h.public_app(APP, Tenant::Common);
    let flow = app
        .start_device_flow(Resource::Graph.default_scopes())
        .await
        .unwrap();
    let (cancel, cancelled) = futures::channel::oneshot::channel::<()>();
    let mut cancel = Some(cancel);
    // The user gives up during the second wait.
    h.on_wait(move |i, wait| {
        if i == 1 {
            cancel.take().unwrap().send(()).unwrap();
            Wait::Hang
        } else {
            Wait::Advance(wait)
        }
    });
    let err = app
        .wait_for_device_flow(&flow, async {
            let _ = cancelled.await;
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert!(err.is_cancelled());
    assert_eq!(h.sim.counters().device_code_polls, 2);
}

#[tokio::test]
async fn confidential_client_sends_its_secret() {
    let h = Harness::start(config()).await;
    let tenant: Tenant = "9188040d-6c67-4c5b-b112-36a304b66dad".parse().unwrap();
    let app = h.confidential_app(CONF_APP, CONF_SECRET, tenant.clone());
    let flow = app
        .start_device_flow(Resource::Graph.default_scopes())
        .await
        .unwrap();
    let creds = app
        .wait_for_device_flow(&flow, std::future::pending())
        .await
        .unwrap()
        .into_credentials();
    assert_eq!(creds.client_secret.as_ref().unwrap().secret(), CONF_SECRET);
    assert_eq!(creds.tenant_id, tenant.to_string());

    // The same registration used as a public client: refused at the first poll.
    let public = h.public_app(CONF_APP, Tenant::Organizations);
    let flow = public
        .start_device_flow(Resource::Graph.default_scopes())
        .await
        .unwrap();
    let err = public
        .wait_for_device_flow(&flow, std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert_eq!(err.aadsts_code(), Some("AADSTS7000218"));
}

#[tokio::test]
async fn start_refuses_scopes_of_two_resources() {
    let h = Harness::start(config()).await;
    let app = h.public_app(APP, Tenant::Common);
    let err = app
        .start_device_flow(&[
            "Mail.Read",
            "https://outlook.office.com/IMAP.AccessAsUser.All",
        ])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert_eq!(err.error_code(), Some("invalid_scope"));
    assert_eq!(err.aadsts_code(), Some("AADSTS28000"));
    assert!(
        err.to_string()
            .starts_with("cannot start the device code flow"),
        "{err}"
    );
}
