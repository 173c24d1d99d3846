use mailroom_core::{Connector, ErrorKind, ImapTls};
use mailroom_imap::{ImapConnector, ImapOptions};

use crate::support::*;

#[tokio::test]
async fn implicit_tls_with_the_custom_ca() {
    let d = dovecot();
    let c = connector(&d, "alice");
    let info = c.connect().await.expect("connect over implicit tls");
    assert_eq!(info.address.as_deref(), Some("alice@example.test"));
    let log = d.log_until(|l| l.contains("Login: user=<alice>"));
    assert!(log.contains("secured"), "{log}");
    c.disconnect().await.unwrap();
    // Calls after disconnect open a new connection.
    c.connect().await.expect("reconnect");
}

#[tokio::test]
async fn starttls_with_the_custom_ca() {
    let d = dovecot();
    let c = ImapConnector::new(
        d.password_credentials("alice", ImapTls::Starttls),
        "alice@example.test",
        options(&d),
    )
    .unwrap();
    c.connect().await.expect("connect with starttls");
    let folders = c.list_folders().await.unwrap();
    assert!(folders.iter().any(|f| f.remote_id == "INBOX"));
    let log = d.log_until(|l| l.contains("Login: user=<alice>"));
    assert!(
        log.lines()
            .any(|l| l.contains("Login: user=<alice>") && l.contains("TLS")),
        "login was not over TLS:\n{log}"
    );
}

#[tokio::test]
async fn unknown_ca_is_a_config_error_not_a_retry() {
    let d = dovecot();
    for tls in [ImapTls::Implicit, ImapTls::Starttls] {
        let c = ImapConnector::new(
            d.password_credentials("alice", tls),
            "alice@example.test",
            ImapOptions::default(),
        )
        .unwrap();
        let err = c.connect().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{tls:?}: {err}");
        assert!(err.to_string().contains("tls handshake"), "{err}");
    }
}

#[tokio::test]
async fn plain_text_to_loopback_only() {
    let d = dovecot();
    let c = ImapConnector::new(
        d.password_credentials("alice", ImapTls::None),
        "alice@example.test",
        ImapOptions::default(),
    )
    .unwrap();
    c.connect().await.expect("plain text to localhost");

    let mut creds = d.password_credentials("alice", ImapTls::None);
    creds.host = "imap.example.com".into();
    let err = ImapConnector::new(creds, "alice@example.test", ImapOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}

#[tokio::test]
async fn nothing_listening_is_transient() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let creds = mailroom_core::ImapCredentials {
        host: "127.0.0.1".into(),
        port,
        tls: ImapTls::None,
        username: Some("alice".into()),
        auth: mailroom_core::ImapAuth::Password(mailroom_core::Password::new("x")),
        extra: Default::default(),
    };
    let c = ImapConnector::new(creds, "alice@example.test", ImapOptions::default()).unwrap();
    let err = c.connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
}

#[tokio::test]
async fn a_dropped_connection_is_replaced_on_the_next_call() {
    let d = dovecot();
    let c = connector(&d, "alice");
    c.list_folders().await.unwrap();
    assert_eq!(
        d.kick_all().unwrap(),
        1,
        "one imap process serves the connector"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let folders = c.list_folders().await.expect("reconnects once and retries");
    assert!(folders.iter().any(|f| f.remote_id == "INBOX"));
    let log = d.log_until(|l| l.matches("Login: user=<alice>").count() >= 2);
    assert_eq!(log.matches("Login: user=<alice>").count(), 2, "{log}");
}
