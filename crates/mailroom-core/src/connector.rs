//! The connector trait that Graph and IMAP both implement, and its value types.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::credentials::Credentials;
use crate::error::ConnectorError;
use crate::folder::{Folder, FolderRef};
use crate::message::Message;

/// The protocol a connector speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Microsoft Graph v1.0.
    Graph,
    /// IMAP4rev1.
    Imap,
}

/// Who the connector signed in as.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// The mailbox address, when the server tells it.
    pub address: Option<String>,
    /// The user's display name, when the server tells it.
    pub display_name: Option<String>,
}

/// Which messages [`Connector::fetch_page`] lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchQuery {
    /// Only messages received at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Stop after this many messages in total (across pages); `None` for all.
    pub limit: Option<usize>,
    /// Messages per page; `None` lets the connector choose.
    pub page_size: Option<u32>,
}

/// An opaque position in a message listing, returned by one page for the next.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageToken(pub String);

impl fmt::Debug for PageToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PageToken(..)")
    }
}

/// One page of a message listing, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessagePage {
    /// The messages of this page.
    pub messages: Vec<Message>,
    /// Where the next page starts; `None` on the last page or when `limit` is reached.
    pub next: Option<PageToken>,
}

/// How to delete a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeleteMode {
    /// Move to Deleted Items / Trash (recoverable).
    #[default]
    Soft,
    /// Remove for good (Graph `permanentDelete`, IMAP `\Deleted` + `UID EXPUNGE`).
    Hard,
}

/// An opaque incremental-sync position for one folder, persisted by the caller.
///
/// Graph: a delta `@odata.nextLink` or `@odata.deltaLink`. IMAP: UIDVALIDITY, the
/// highest UID seen and HIGHESTMODSEQ. Only the connector that made it understands it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SyncCursor(pub String);

impl SyncCursor {
    /// The cursor's serialized form, to store.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SyncCursor {
    // Delta links carry opaque server state; keep them out of logs by default.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SyncCursor({} bytes)", self.0.len())
    }
}

/// One change to a folder's content.
// Nearly every change is an upsert: boxing the message would add an allocation per
// message and save no memory.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new message, or a new version of a known one: insert or replace.
    Upsert(Message),
    /// The message left the folder (deleted, expunged or moved away).
    Remove {
        /// The `remote_id` of the message.
        remote_id: String,
    },
    /// Only the read state changed (IMAP CONDSTORE flag updates).
    ReadState {
        /// The `remote_id` of the message.
        remote_id: String,
        /// The new read state.
        is_read: bool,
    },
}

/// One page of an incremental sync, to be stored together with its cursor.
///
/// The caller writes `changes` and `cursor` in ONE transaction: if it crashes in between
/// it resumes from the previous cursor and sees the same changes again, which upserts
/// make harmless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPage {
    /// Changes to apply, in order.
    pub changes: Vec<Change>,
    /// Where the next call resumes.
    pub cursor: SyncCursor,
    /// This page starts a full enumeration of the folder (first sync, expired delta
    /// token, changed UIDVALIDITY): whatever the caller holds for this folder may be
    /// stale, and every message that still exists will be sent again before `complete`.
    pub reset: bool,
    /// The folder is up to date as of this page; `false` means call again at once
    /// with `cursor`. When a `reset` enumeration completes, messages of the folder that
    /// were not sent since the reset are gone from the server.
    pub complete: bool,
}

/// A mail protocol connection for one account.
///
/// Implemented by `mailroom-graph` (`GraphConnector`) and `mailroom-imap`
/// (`ImapConnector`). All methods take `&self`: a connector is shared behind an `Arc`
/// and used concurrently; implementations bound their own concurrency.
///
/// Tokens may be refreshed during any call. A caller that installed a [`StateSink`]
/// ([`set_state_sink`]) gets the new credential set in the sink the moment the token
/// answer is parsed, before the new token is used; otherwise
/// [`take_refreshed_credentials`] hands it back after the call so the caller persists
/// it (encrypted) right away, even if a later call fails.
///
/// [`take_refreshed_credentials`]: Connector::take_refreshed_credentials
/// [`set_state_sink`]: Connector::set_state_sink
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Connector: Send + Sync {
    /// The protocol this connector speaks.
    fn protocol(&self) -> Protocol;

    /// Signs in (refreshing the token if needed) and checks the account is reachable.
    async fn connect(&self) -> Result<AccountInfo, ConnectorError>;

    /// Lists every folder of the mailbox, nested ones included.
    async fn list_folders(&self) -> Result<Vec<Folder>, ConnectorError>;

    /// Finds one folder by role, path or id.
    async fn resolve_folder(&self, folder: &FolderRef) -> Result<Folder, ConnectorError>;

    /// Lists messages of a folder, newest first, one page at a time. Pass the previous
    /// page's `next` to continue; `None` starts from the newest message.
    async fn fetch_page(
        &self,
        folder: &FolderRef,
        query: &FetchQuery,
        page: Option<PageToken>,
    ) -> Result<MessagePage, ConnectorError>;

    /// Reads one message by `remote_id`.
    async fn get_message(&self, remote_id: &str) -> Result<Message, ConnectorError>;

    /// Moves a message; returns its `remote_id` in the destination, which may differ
    /// from the old one (Graph without immutable ids, IMAP).
    async fn move_message(
        &self,
        remote_id: &str,
        destination: &FolderRef,
    ) -> Result<String, ConnectorError>;

    /// Deletes a message, softly (to Deleted Items / Trash) or for good.
    async fn delete_message(&self, remote_id: &str, mode: DeleteMode)
    -> Result<(), ConnectorError>;

    /// Returns the next page of changes of `folder` after `cursor` (`None`: first sync).
    async fn sync_folder(
        &self,
        folder: &FolderRef,
        cursor: Option<SyncCursor>,
    ) -> Result<SyncPage, ConnectorError>;

    /// Starts a first sync of `folder` that only enumerates messages received at or
    /// after `since` (`--since`); later calls continue with [`sync_folder`] and the
    /// returned cursor. When that enumeration completes, the caller's older messages of
    /// the folder are reconciled away like any others not re-sent. The default ignores
    /// `since` and enumerates the whole folder, for servers that cannot filter.
    ///
    /// [`sync_folder`]: Connector::sync_folder
    async fn start_sync_since(
        &self,
        folder: &FolderRef,
        since: DateTime<Utc>,
    ) -> Result<SyncPage, ConnectorError> {
        let _ = since;
        self.sync_folder(folder, None).await
    }

    /// The credentials as refreshed since the last call, if a refresh happened (and
    /// no [`StateSink`] stored them).
    fn take_refreshed_credentials(&self) -> Option<Credentials>;

    /// Hands state that must outlive the process to `sink` as soon as it exists:
    /// refreshed credentials (before the new token is used) and throttling
    /// deadlines. Applies to every later call (and to clones of the connector).
    /// The default ignores the sink: such a connector has nothing of the kind.
    fn set_state_sink(&self, sink: std::sync::Arc<dyn StateSink>) {
        let _ = sink;
    }

    /// Closes connections. Calls after this fail or reconnect, as the implementation
    /// documents.
    async fn disconnect(&self) -> Result<(), ConnectorError>;
}

/// Where a connector puts state that must survive a crash, the moment it exists
/// (see [`Connector::set_state_sink`]).
#[async_trait]
pub trait StateSink: Send + Sync {
    /// A refresh rotated the tokens: store `credentials` (the complete set) durably.
    /// Awaited before the new token is used; an error fails the call that needed the
    /// token (the connector keeps the credentials and offers them again first thing
    /// on its next call).
    async fn credentials_refreshed(&self, credentials: Credentials) -> Result<(), ConnectorError>;

    /// The server asked to wait (`Retry-After`) before the next request to this
    /// mailbox, until `until`. The default does nothing.
    async fn throttled(&self, until: DateTime<Utc>) {
        let _ = until;
    }
}

/// Fetches messages page by page until `query.limit` or the end of the folder.
pub async fn fetch_all(
    connector: &dyn Connector,
    folder: &FolderRef,
    query: &FetchQuery,
) -> Result<Vec<Message>, ConnectorError> {
    let mut out = Vec::new();
    let mut page = None;
    loop {
        let mut q = query.clone();
        q.limit = query.limit.map(|l| l.saturating_sub(out.len()));
        let result = connector.fetch_page(folder, &q, page).await?;
        out.extend(result.messages);
        if let Some(limit) = query.limit
            && out.len() >= limit
        {
            out.truncate(limit);
            return Ok(out);
        }
        match result.next {
            Some(next) => page = Some(next),
            None => return Ok(out),
        }
    }
}

#[cfg(all(test, feature = "mock"))]
mod tests {
    use super::*;

    fn message(n: usize) -> Message {
        Message {
            remote_id: format!("m{n}"),
            ..Message::default()
        }
    }

    #[tokio::test]
    async fn fetch_all_follows_pages_until_the_limit() {
        let mut mock = MockConnector::new();
        let mut seq = mockall::Sequence::new();
        mock.expect_fetch_page()
            .withf(|_, q, page| q.limit == Some(5) && page.is_none())
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| {
                Ok(MessagePage {
                    messages: (0..3).map(message).collect(),
                    next: Some(PageToken("p2".into())),
                })
            });
        mock.expect_fetch_page()
            .withf(|_, q, page| q.limit == Some(2) && page.as_ref().is_some_and(|p| p.0 == "p2"))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| {
                Ok(MessagePage {
                    messages: (3..6).map(message).collect(),
                    next: Some(PageToken("p3".into())),
                })
            });
        let query = FetchQuery {
            limit: Some(5),
            ..FetchQuery::default()
        };
        let got = fetch_all(&mock, &FolderRef::INBOX, &query).await.unwrap();
        let ids: Vec<_> = got.iter().map(|m| m.remote_id.as_str()).collect();
        assert_eq!(ids, ["m0", "m1", "m2", "m3", "m4"]);
    }
}
