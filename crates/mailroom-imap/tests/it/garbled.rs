//! A scripted fake server: garbled replies are `Protocol` errors, never panics.

use mailroom_core::{Connector, ErrorKind, ImapAuth, ImapCredentials, ImapTls, Password};
use mailroom_imap::{ImapConnector, ImapOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Serves one connection: sends `greeting`, then answers the n-th command line with
/// `replies[n]` (`{tag}` is replaced by the command's tag).
async fn fake_server(greeting: &'static str, replies: Vec<&'static str>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let _ = write.write_all(greeting.as_bytes()).await;
        for reply in replies {
            let Ok(Some(line)) = lines.next_line().await else {
                return;
            };
            let tag = line.split(' ').next().unwrap_or("*").to_owned();
            let _ = write
                .write_all(reply.replace("{tag}", &tag).as_bytes())
                .await;
        }
        // Keep the socket open until the client gives up.
        let _ = lines.next_line().await;
    });
    port
}

fn connector(port: u16) -> ImapConnector {
    let creds = ImapCredentials {
        host: "127.0.0.1".into(),
        port,
        tls: ImapTls::None,
        username: Some("alice".into()),
        auth: ImapAuth::Password(Password::new("secret")),
        extra: Default::default(),
    };
    let options = ImapOptions::default().timeouts(
        std::time::Duration::from_secs(5),
        std::time::Duration::from_secs(5),
    );
    ImapConnector::new(creds, "alice@example.test", options).unwrap()
}

#[tokio::test]
async fn garbled_greeting_is_a_protocol_error() {
    let port = fake_server("\u{1}\u{2} garbage \r\n", vec![]).await;
    let err = connector(port).connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
}

#[tokio::test]
async fn garbled_answer_to_login_is_a_protocol_error() {
    let port = fake_server("* OK fake ready\r\n", vec!["{tag} ??? what\r\n"]).await;
    let err = connector(port).connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
}

#[tokio::test]
async fn garbled_answer_after_login_is_a_protocol_error() {
    let port = fake_server(
        "* OK fake ready\r\n",
        vec![
            "{tag} OK LOGIN completed\r\n",
            "* CAPABILITY IMAP4rev1\r\n{tag} OK done\r\n",
            // Unbalanced parentheses. (imap-proto 0.17 reads an unknown attribute
            // value such as `UID notanumber` as `Unknown`: no longer garbled.)
            "* 1 FETCH (UID 12 FLAGS (\\Seen)\r\n{tag} OK done\r\n",
        ],
    )
    .await;
    let err = connector(port).connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
}

#[tokio::test]
async fn refused_login_is_reauth_and_bye_is_transient() {
    let port = fake_server(
        "* OK fake ready\r\n",
        vec!["{tag} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n"],
    )
    .await;
    let err = connector(port).connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReauthRequired, "{err}");

    let port = fake_server("* BYE too many connections\r\n", vec![]).await;
    let err = connector(port).connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(err.to_string().contains("too many connections"), "{err}");
}

/// Greeting, LOGIN, CAPABILITY, then `reply` to the next command.
async fn after_login(reply: &'static str) -> u16 {
    fake_server(
        "* OK fake ready\r\n",
        vec![
            "{tag} OK LOGIN completed\r\n",
            "* CAPABILITY IMAP4rev1\r\n{tag} OK done\r\n",
            reply,
        ],
    )
    .await
}

#[tokio::test]
async fn a_literal_over_the_budget_is_refused_when_announced() {
    // 2 GB is over async-imap's own 512 MiB; 300 MB is under it, and was allocated
    // (then waited for) before.
    for (announced, reply) in [
        (2_000_000_000u64, "* 1 FETCH (UID 1 BODY[] {2000000000}\r\n"),
        (300_000_000, "* 1 FETCH (UID 1 BODY[] {300000000}\r\n"),
    ] {
        let port = after_login(reply).await;
        let err = connector(port).connect().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
        assert!(
            err.to_string().contains(&format!(
                "the server announced a literal of {announced} bytes, more than the limit of 67108864 bytes per response"
            )),
            "{err}"
        );
    }
}

#[tokio::test]
async fn raw_utf8_in_a_status_text_is_read_as_text() {
    let port = after_login("{tag} NO [NONEXISTENT] Mailbox doesn't exist: 日本語 100%\r\n").await;
    let err = connector(port).connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string()
            .ends_with("Mailbox doesn't exist: 日本語 100%"),
        "{err}"
    );
    let port = fake_server("* BYE überlastet\r\n", vec![]).await;
    let err = connector(port).connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert!(err.to_string().contains("überlastet"), "{err}");
}
