use chrono::{TimeDelta, Utc};
use mailroom_core::{
    AccessToken, Connector, Credentials, ErrorKind, ImapAuth, ImapCredentials, ImapTls,
    OAuthCredentials, RefreshToken,
};
use mailroom_imap::ImapConnector;
use mailroom_imap::testing::{Dovecot, DovecotConfig};
use mailroom_sim::{MailboxSpec, RefreshFailure, SimConfig, Simulator};

use crate::support::*;

const USER: &str = "alice@contoso.test";
const IMAP_SCOPE: &str = "https://outlook.office.com/IMAP.AccessAsUser.All";

async fn setup() -> (Simulator, Dovecot, ImapConnector, String) {
    setup_with_expiry(None).await
}

/// `expiry`: what the stored credentials say (default: the real token lifetime).
async fn setup_with_expiry(
    expiry: Option<chrono::DateTime<Utc>>,
) -> (Simulator, Dovecot, ImapConnector, String) {
    let sim = Simulator::start(SimConfig::default().mailboxes(vec![MailboxSpec::new(USER, 0)]))
        .await
        .expect("start simulator");
    let d =
        dovecot_with(&DovecotConfig::default().oauth2_introspection_url(sim.introspection_url()));
    let tokens = sim
        .issue_tokens(USER, "imap-app", &[IMAP_SCOPE, "offline_access"])
        .expect("issue tokens");
    let mut oauth = OAuthCredentials::new("imap-app");
    oauth.token = Some(AccessToken::new(tokens.access_token.clone()));
    oauth.refresh_token = tokens.refresh_token.clone().map(RefreshToken::new);
    oauth.scopes = vec![IMAP_SCOPE.to_owned(), "offline_access".to_owned()];
    oauth.expiry =
        Some(expiry.unwrap_or_else(|| Utc::now() + TimeDelta::seconds(tokens.expires_in as i64)));
    let creds = ImapCredentials {
        host: d.host().to_owned(),
        port: d.imaps_port(),
        tls: ImapTls::Implicit,
        username: Some(USER.to_owned()),
        auth: ImapAuth::OAuth(oauth),
        extra: Default::default(),
    };
    let c = ImapConnector::new(creds, USER, options(&d).authority_url(sim.base_url()))
        .expect("build connector");
    (sim, d, c, tokens.access_token)
}

#[tokio::test]
async fn sim_issued_token_logs_in() {
    let (sim, d, c, token) = setup().await;
    c.connect().await.expect("xoauth2 login with a sim token");
    assert!(
        c.take_refreshed_credentials().is_none(),
        "no refresh needed"
    );
    let log = d.log_until(|l| l.contains("method=XOAUTH2"));
    assert!(
        log.contains(&format!("user=<{USER}>, method=XOAUTH2")),
        "{log}"
    );
    assert!(!log.contains(&token), "the token must not reach the log");
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_token_is_refreshed_through_the_sim() {
    let (sim, d, c, old_token) = setup().await;
    assert_eq!(sim.expire_access_tokens(USER).unwrap(), 1);
    c.connect().await.expect("refresh and log in again");
    let Some(Credentials::Imap(creds)) = c.take_refreshed_credentials() else {
        panic!("refreshed credentials expected");
    };
    let ImapAuth::OAuth(oauth) = &creds.auth else {
        panic!("oauth expected")
    };
    let new_token = oauth.token.as_ref().unwrap().secret();
    assert_ne!(new_token, old_token);
    assert_eq!(creds.host, d.host());
    assert!(c.take_refreshed_credentials().is_none(), "handed back once");
    assert_eq!(
        d.log_until(|l| l.contains("method=XOAUTH2"))
            .matches("method=XOAUTH2")
            .count(),
        1,
        "one successful login, after one refused one"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn revoked_refresh_token_requires_reauth() {
    let (sim, _d, c, _) = setup().await;
    sim.expire_access_tokens(USER).unwrap();
    sim.script_refresh_failure(USER, RefreshFailure::Revoked)
        .unwrap();
    let err = c.connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReauthRequired, "{err}");
    assert!(err.to_string().contains("cannot log in to imap"), "{err}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_token_past_its_expiry_is_refreshed_before_login() {
    let (sim, d, c, old_token) = setup_with_expiry(Some(Utc::now() - TimeDelta::minutes(1))).await;
    c.connect().await.expect("refresh first, then log in");
    let Some(Credentials::Imap(creds)) = c.take_refreshed_credentials() else {
        panic!("refreshed credentials expected");
    };
    let ImapAuth::OAuth(oauth) = &creds.auth else {
        panic!("oauth expected")
    };
    assert_ne!(oauth.token.as_ref().unwrap().secret(), old_token);
    assert!(oauth.expiry.unwrap() > Utc::now());
    let log = d.log_until(|l| l.contains("method=XOAUTH2"));
    assert_eq!(log.matches("method=XOAUTH2").count(), 1, "{log}");
    sim.shutdown().await;
}

#[tokio::test]
async fn an_idle_connection_reopened_after_the_token_expired_refreshes_it() {
    let (sim, d, c, old_token) = setup().await;
    let mut idle = c
        .idle(&mailroom_core::FolderRef::INBOX)
        .await
        .expect("idle");
    assert!(c.take_refreshed_credentials().is_none());
    // The server drops the connection; meanwhile the access token expired.
    let waiting = tokio::spawn(async move { idle.wait(std::time::Duration::from_secs(60)).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(d.kick_all().unwrap() >= 1);
    let err = waiting.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert_eq!(sim.expire_access_tokens(USER).unwrap(), 1);
    // Reconnecting logs in with a refreshed token, handed back to be stored.
    let mut idle = c
        .idle(&mailroom_core::FolderRef::INBOX)
        .await
        .expect("idle again");
    let Some(Credentials::Imap(creds)) = c.take_refreshed_credentials() else {
        panic!("refreshed credentials expected");
    };
    let ImapAuth::OAuth(oauth) = &creds.auth else {
        panic!("oauth expected")
    };
    assert_ne!(oauth.token.as_ref().unwrap().secret(), old_token);
    assert_eq!(
        idle.wait(std::time::Duration::from_millis(100))
            .await
            .unwrap(),
        mailroom_imap::IdleEvent::Renew
    );
    sim.shutdown().await;
}
