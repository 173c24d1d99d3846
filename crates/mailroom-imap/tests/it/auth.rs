use mailroom_core::{Connector, ErrorKind, ImapAuth, ImapTls, Password};
use mailroom_imap::ImapConnector;

use crate::support::*;

#[tokio::test]
async fn password_login_and_wrong_password() {
    let d = dovecot();
    let c = connector(&d, "bob");
    c.connect().await.expect("right password");
    assert!(c.take_refreshed_credentials().is_none());

    let mut creds = d.password_credentials("bob", ImapTls::Implicit);
    creds.auth = ImapAuth::Password(Password::new("wrong password"));
    let c = ImapConnector::new(creds, "bob@example.test", options(&d)).unwrap();
    let err = c.connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReauthRequired, "{err}");
    assert_eq!(err.code(), Some("AUTHENTICATIONFAILED"));
    assert!(
        err.to_string()
            .starts_with("cannot log in to imap as bob@localhost"),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong password"), "{err}");
    assert!(!format!("{c:?}").contains("wrong password"));

    // A non-ASCII password goes through AUTHENTICATE PLAIN (LOGIN cannot quote it).
    let mut creds = d.password_credentials("bob", ImapTls::Implicit);
    creds.auth = ImapAuth::Password(Password::new("pässwörd"));
    let c = ImapConnector::new(creds, "bob@example.test", options(&d)).unwrap();
    assert_eq!(
        c.connect().await.unwrap_err().kind(),
        ErrorKind::ReauthRequired
    );
}

#[tokio::test]
async fn username_defaults_to_the_account_email() {
    let d = dovecot();
    let mut creds = d.password_credentials("x", ImapTls::Implicit);
    creds.username = None;
    let c = ImapConnector::new(creds, "carol@example.test", options(&d)).unwrap();
    c.connect().await.unwrap();
    let log = d.log_until(|l| l.contains("Login: user=<carol@example.test>"));
    assert!(log.contains("Login: user=<carol@example.test>"), "{log}");
}
