//! Unit-testing your own code against `MockConnector`, with nothing but `mailroom-core`
//! (feature `mock`) and tokio.
//!
//! `unread_senders` below is the kind of code an application writes over
//! `&dyn Connector`: it works the same with `mailroom-graph`'s `GraphConnector`, with
//! `mailroom-imap`'s `ImapConnector` and, in its tests, with the mockall mock of the
//! trait. The tests at the bottom script the mock page by page.
//!
//! ```sh
//! cargo run -p mailroom-core --features mock --example mock_connector
//! cargo test -p mailroom-core --features mock --example mock_connector
//! ```

use mailroom_core::chrono::{TimeZone, Utc};
use mailroom_core::{
    Connector, ConnectorError, EmailAddress, FetchQuery, FolderRef, Message, MessagePage,
    MockConnector, PageToken, fetch_all,
};

/// What `unread_senders` found in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    /// Messages read (at most the query's limit).
    pub scanned: usize,
    /// Unread messages among them.
    pub unread: usize,
    /// Senders of the unread messages, newest first, each once.
    pub senders: Vec<String>,
}

/// The user code under test: counts the unread messages among the newest `limit` of a
/// folder, and who sent them.
pub async fn unread_senders(
    connector: &dyn Connector,
    folder: &FolderRef,
    limit: usize,
) -> Result<Unread, ConnectorError> {
    let query = FetchQuery {
        limit: Some(limit),
        page_size: Some(50),
        ..FetchQuery::default()
    };
    let messages = fetch_all(connector, folder, &query).await?;
    let mut senders: Vec<String> = Vec::new();
    let mut unread = 0;
    for message in messages.iter().filter(|m| !m.is_read) {
        unread += 1;
        let from = message
            .sender
            .as_ref()
            .and_then(|s| s.address.clone())
            .unwrap_or_else(|| "(unknown)".to_owned());
        if !senders.contains(&from) {
            senders.push(from);
        }
    }
    Ok(Unread {
        scanned: messages.len(),
        unread,
        senders,
    })
}

/// A message as a connector would return it.
pub fn message(n: u32, from: &str, is_read: bool) -> Message {
    Message {
        remote_id: format!("m{n}"),
        subject: Some(format!("message {n}")),
        sender: Some(EmailAddress::new(None, Some(from.to_owned()))),
        date_received: Utc
            .timestamp_opt(1_700_000_000 - i64::from(n) * 60, 0)
            .single(),
        is_read,
        ..Message::default()
    }
}

/// A mock Inbox of two pages: the first ends with a page token, the second does not.
pub fn two_page_inbox() -> MockConnector {
    let mut mock = MockConnector::new();
    let mut seq = mailroom_core::mockall::Sequence::new();
    mock.expect_fetch_page()
        .withf(|folder, _, page| *folder == FolderRef::INBOX && page.is_none())
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| {
            Ok(MessagePage {
                messages: vec![
                    message(1, "ada@contoso.test", false),
                    message(2, "bob@contoso.test", true),
                    message(3, "ada@contoso.test", false),
                ],
                next: Some(PageToken("page-2".to_owned())),
            })
        });
    mock.expect_fetch_page()
        .withf(|_, _, page| page.as_ref().is_some_and(|p| p.0 == "page-2"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| {
            Ok(MessagePage {
                messages: vec![message(4, "eve@contoso.test", false)],
                next: None,
            })
        });
    mock
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let inbox = two_page_inbox();
    let found = unread_senders(&inbox, &FolderRef::INBOX, 100).await?;
    println!(
        "{} unread of {} scanned, from {}",
        found.unread,
        found.scanned,
        found.senders.join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use mailroom_core::ErrorKind;

    use super::*;

    #[tokio::test]
    async fn counts_unread_messages_across_pages_and_lists_each_sender_once() {
        let inbox = two_page_inbox();
        let found = unread_senders(&inbox, &FolderRef::INBOX, 100)
            .await
            .unwrap();
        assert_eq!(
            found,
            Unread {
                scanned: 4,
                unread: 3,
                senders: vec!["ada@contoso.test".into(), "eve@contoso.test".into()],
            }
        );
    }

    #[tokio::test]
    async fn asks_for_no_more_than_the_limit() {
        let mut mock = MockConnector::new();
        mock.expect_fetch_page()
            .withf(|_, query, _| query.limit == Some(2))
            .times(1)
            .returning(|_, _, _| {
                Ok(MessagePage {
                    messages: vec![
                        message(1, "ada@contoso.test", true),
                        message(2, "bob@contoso.test", false),
                    ],
                    next: Some(PageToken("more".to_owned())),
                })
            });
        let found = unread_senders(&mock, &FolderRef::INBOX, 2).await.unwrap();
        assert_eq!((found.scanned, found.unread), (2, 1));
        assert_eq!(found.senders, ["bob@contoso.test"]);
    }

    #[tokio::test]
    async fn passes_connector_errors_through() {
        let mut mock = MockConnector::new();
        mock.expect_fetch_page().returning(|_, _, _| {
            Err(ConnectorError::new(
                ErrorKind::ReauthRequired,
                "token revoked",
            ))
        });
        let err = unread_senders(&mock, &FolderRef::INBOX, 10)
            .await
            .unwrap_err();
        assert!(err.is_reauth_required(), "{err}");
    }
}
