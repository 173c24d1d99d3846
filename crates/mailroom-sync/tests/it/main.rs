//! Tests of the sync engine and worker with a scripted in-memory connector and a real
//! store (in-memory SQLite and PostgreSQL); `vanished` also runs the real connectors
//! against mailroom-sim and Dovecot. End-to-end tests against mailroom-sim,
//! Dovecot and the real binary live in the workspace's `tests/` crate.

mod engine;
mod examples;
mod fake;
mod idle;
mod vanished;
mod worker;

/// OAuth2 credentials as a device-code sign-in of `user` would have produced them,
/// issued by the simulator for `client_id`.
fn sim_credentials(
    sim: &mailroom_sim::Simulator,
    user: &str,
    client_id: &str,
) -> mailroom_core::OAuthCredentials {
    use mailroom_core::{AccessToken, RefreshToken};
    let tokens = sim
        .issue_tokens(
            user,
            client_id,
            &["Mail.ReadWrite", "User.Read", "offline_access"],
        )
        .unwrap();
    let mut oauth = mailroom_core::OAuthCredentials::new(client_id);
    oauth.token = Some(AccessToken::new(tokens.access_token));
    oauth.refresh_token = tokens.refresh_token.map(RefreshToken::new);
    oauth.scopes = tokens.scope.split(' ').map(str::to_owned).collect();
    oauth.expiry = Some(chrono::Utc::now() + chrono::Duration::seconds(tokens.expires_in as i64));
    oauth
}

/// The programs in `examples/`, compiled into this binary so that CI runs them.
#[allow(dead_code)]
#[path = "../../examples/custom_factory.rs"]
mod example_custom_factory;
