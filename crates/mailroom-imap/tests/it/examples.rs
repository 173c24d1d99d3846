//! The crate's examples, run against a private Dovecot (and `mailroom-sim` for
//! XOAUTH2 tokens) as a user would run them.

use mailroom_core::{Credentials, ImapAuth, ImapTls};
use mailroom_imap::testing::{Dovecot, DovecotConfig};
use mailroom_sim::{MailboxSpec, SimConfig, Simulator};

use crate::example_imap_read::{self, Server};
use crate::support::*;

fn server(d: &Dovecot, user: &str) -> Server {
    Server {
        host: d.host().to_owned(),
        port: d.imaps_port(),
        tls: ImapTls::Implicit,
        user: user.to_owned(),
    }
}

#[tokio::test]
async fn imap_read_with_a_password_lists_reads_and_syncs_the_inbox() {
    let d = dovecot();
    let mut a = admin(&d, "bob").await;
    seed(&mut a, "INBOX", 1..=12).await;

    let credentials = example_imap_read::with_password(&server(&d, "bob"), Dovecot::PASSWORD);
    let summary = example_imap_read::run(credentials, "bob", options(&d).page_size(5))
        .await
        .unwrap();

    for path in ["INBOX", "Sent", "Trash", "Archive"] {
        assert!(summary.folders.iter().any(|f| f == path), "{summary:?}");
    }
    let newest: Vec<String> = (8..=12).rev().map(|n| format!("Message {n}")).collect();
    assert_eq!(summary.newest, newest, "{summary:?}");
    assert_eq!(summary.first_sync_messages, 12, "{summary:?}");
    assert_eq!(summary.first_sync_pages, 3, "{summary:?}");
    assert_eq!(summary.second_sync_changes, 0, "{summary:?}");
    assert!(summary.refreshed.is_none(), "passwords are not refreshed");
    let log = d.log_until(|l| l.contains("Login: user=<bob>"));
    assert!(log.contains("Login: user=<bob>"), "{log}");
}

#[tokio::test]
async fn imap_read_with_xoauth2_refreshes_logs_in_and_hands_back_the_new_tokens() {
    const USER: &str = "alice@contoso.test";
    let sim = Simulator::start(SimConfig::default().mailboxes(vec![MailboxSpec::new(USER, 0)]))
        .await
        .unwrap();
    let d =
        dovecot_with(&DovecotConfig::default().oauth2_introspection_url(sim.introspection_url()));
    let mut a = admin(&d, USER).await;
    seed(&mut a, "INBOX", 1..=3).await;
    let tokens = sim
        .issue_tokens(
            USER,
            "imap-app",
            &[example_imap_read::IMAP_SCOPE, "offline_access"],
        )
        .unwrap();
    let refresh_token = tokens.refresh_token.clone().unwrap();

    // What `main` does: only a refresh token, so the connector refreshes first.
    let credentials =
        example_imap_read::with_xoauth2(&server(&d, USER), "imap-app", None, &refresh_token, None);
    let summary =
        example_imap_read::run(credentials, USER, options(&d).authority_url(sim.base_url()))
            .await
            .unwrap();

    assert_eq!(
        summary.newest,
        ["Message 3", "Message 2", "Message 1"],
        "{summary:?}"
    );
    assert_eq!(summary.first_sync_messages, 3, "{summary:?}");
    assert_eq!(summary.second_sync_changes, 0, "{summary:?}");
    let Some(Credentials::Imap(creds)) = &summary.refreshed else {
        panic!("refreshed credentials expected: {summary:?}");
    };
    let ImapAuth::OAuth(oauth) = &creds.auth else {
        panic!("oauth expected");
    };
    assert!(oauth.token.is_some());
    let rotated = oauth.refresh_token.as_ref().unwrap().secret();
    assert_ne!(rotated, refresh_token, "the refresh token rotates");
    let log = d.log_until(|l| l.contains("method=XOAUTH2"));
    assert!(
        log.contains(&format!("user=<{USER}>, method=XOAUTH2")),
        "{log}"
    );
    sim.shutdown().await;
}
