//! No token ever shows: not in `Debug`, not in error messages, not in logs.

use mailroom_core::ConnectorError;
use mailroom_oauth::{Resource, Tenant, TokenSession};
use mailroom_sim::{ACCESS_TOKEN_PREFIX, DEVICE_CODE_PREFIX, REFRESH_TOKEN_PREFIX, RefreshFailure};

use crate::support::{ALICE, APP, CONF_APP, CONF_SECRET, Harness, config, logs};

#[tokio::test]
async fn tokens_never_appear_in_debug_errors_or_logs() {
    let h = Harness::start(config()).await;
    let mut out: Vec<String> = Vec::new();
    let mut secrets: Vec<String> = vec![CONF_SECRET.to_owned()];

    // Sign in.
    let app = h.public_app(APP, Tenant::Consumers);
    let flow = app
        .start_device_flow(Resource::Graph.default_scopes())
        .await
        .unwrap();
    let result = app
        .wait_for_device_flow(&flow, std::future::pending())
        .await
        .unwrap();
    secrets.push(result.access_token().secret().to_owned());
    secrets.push(result.refresh_token().unwrap().secret().to_owned());
    out.push(format!("{app:?} {flow:?} {result:?} {:?}", app.authority()));
    let creds = result.into_credentials();
    out.push(format!("{creds:?}"));

    // Refresh in a session.
    let mut expired = creds.clone();
    expired.expiry = None;
    let session = TokenSession::new(app.clone(), expired, Resource::Graph);
    let token = session.access_token().await.unwrap();
    secrets.push(token.secret().to_owned());
    let rotated = session.take_refreshed().unwrap();
    secrets.push(rotated.refresh_token.as_ref().unwrap().secret().to_owned());
    out.push(format!("{session:?} {token:?} {rotated:?}"));

    // A confidential client, and errors of every sort.
    let conf = h.confidential_app(CONF_APP, CONF_SECRET, Tenant::Organizations);
    out.push(format!("{conf:?}"));
    let rt = rotated.refresh_token.clone().unwrap();
    let errors = vec![
        conf.acquire_token_by_refresh_token(&rt, Resource::Graph.default_scopes())
            .await
            .unwrap_err(),
        h.confidential_app(APP, CONF_SECRET, Tenant::Common)
            .acquire_token_by_refresh_token(&rt, Resource::Graph.default_scopes())
            .await
            .unwrap_err(),
        {
            h.sim
                .script_refresh_failure(ALICE, RefreshFailure::Revoked)
                .unwrap();
            app.acquire_token_by_refresh_token(&rt, Resource::Graph.default_scopes())
                .await
                .unwrap_err()
        },
        {
            let mut dead = rotated.clone();
            dead.expiry = None;
            TokenSession::new(app.clone(), dead, Resource::OutlookImap)
                .access_token()
                .await
                .unwrap_err()
        },
    ];
    for err in errors {
        out.push(format!("{err} {err:?} {:?}", err.body()));
        let conn = ConnectorError::from(err);
        out.push(format!("{conn} {conn:?}"));
    }

    // The whole binary's logs: this test's and every other test's so far.
    let logs = logs().text();
    assert!(logs.contains("device code flow completed"), "{logs}");
    assert!(logs.contains("access token refreshed"), "{logs}");
    assert!(logs.contains("refresh failed"), "{logs}");
    out.push(logs);
    let all = out.join("\n");
    for needle in [
        ACCESS_TOKEN_PREFIX,
        REFRESH_TOKEN_PREFIX,
        DEVICE_CODE_PREFIX,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(secrets)
    {
        assert!(!all.contains(&needle), "{needle:.12}… leaked in:\n{all}");
    }
}
