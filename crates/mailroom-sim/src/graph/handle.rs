//! The library handle of one mailbox: ground truth for tests, and
//! mutations (also while a client is mid-sync).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::odata::format_ms;
use super::store::{Lookup, Store};
use super::synth::{self, Person, Role};
use crate::state::{MailboxCell, Shared, lock};
use crate::{Error, Result};

/// Ground truth of one mailbox, readable and mutable from tests.
///
/// Every mutation is visible to Graph at once (new ids, changed read
/// state, delta changes), exactly as if another client had made it.
#[derive(Clone, Debug)]
pub struct Mailbox {
    shared: Arc<Shared>,
    cell: Arc<MailboxCell>,
}

/// One folder as the ground truth sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FolderInfo {
    /// Graph id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// `Parent/Child` display path.
    pub path: String,
    /// Well-known name (`inbox`, `sentitems`, …), if any.
    pub well_known: Option<String>,
    /// Messages in the folder.
    pub total: usize,
    /// Unread messages in the folder.
    pub unread: usize,
}

/// One message as the ground truth sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessageInfo {
    /// Current Graph id (changes when the message moves).
    pub id: String,
    /// Immutable id (never changes).
    pub immutable_id: String,
    /// `internetMessageId` (Message-ID header).
    pub internet_message_id: String,
    /// Subject.
    pub subject: String,
    /// Sender; `None` for drafts.
    pub from: Option<Person>,
    /// Graph id of the folder.
    pub folder_id: String,
    /// Display path of the folder.
    pub folder: String,
    /// Read state.
    pub is_read: bool,
    /// Draft?
    pub is_draft: bool,
    /// `receivedDateTime`.
    pub received: DateTime<Utc>,
    /// `hasAttachments` (inline attachments do not count, as in Graph).
    pub has_attachments: bool,
    /// All attachments, inline ones included.
    pub attachment_count: usize,
    /// `changeKey`.
    pub change_key: String,
}

/// A message to add to a mailbox with [`Mailbox::add_message`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewMessage {
    /// Subject.
    pub subject: String,
    /// Sender; `None` makes a draft-like message without `from`.
    pub from: Option<Person>,
    /// Recipients (the mailbox owner when empty).
    pub to: Vec<Person>,
    /// HTML body (plain text is wrapped in `<p>`).
    pub body: String,
    /// Read state.
    pub is_read: bool,
    /// `receivedDateTime`; now when `None`.
    pub received: Option<DateTime<Utc>>,
}

impl Mailbox {
    pub(crate) fn new(shared: Arc<Shared>, cell: Arc<MailboxCell>) -> Mailbox {
        Mailbox { shared, cell }
    }

    fn now_ms(&self) -> i64 {
        self.shared.clock.now_utc().timestamp_millis()
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        lock(&self.cell.store)
    }

    /// The mailbox address (lowercase).
    pub fn address(&self) -> &str {
        &self.cell.address
    }

    /// The owner's display name.
    pub fn display_name(&self) -> &str {
        &self.cell.display_name
    }

    /// The owner's user id (`/me` `id`).
    pub fn user_id(&self) -> &str {
        &self.cell.user_id
    }

    /// All folders (the root excluded), in tree order of creation.
    pub fn folders(&self) -> Vec<FolderInfo> {
        let st = self.store();
        st.folders
            .iter()
            .filter(|f| f.key != 0 && !f.deleted)
            .map(|f| FolderInfo {
                id: st.folder_id(f.key),
                display_name: f.display_name.clone(),
                path: st.folder_path(f.key),
                well_known: f.well_known.map(str::to_owned),
                total: f.by_received.len(),
                unread: f.unread,
            })
            .collect()
    }

    fn folder_key(st: &Store, folder: &str) -> Result<u32> {
        st.resolve_folder_path(folder)
            .ok_or_else(|| Error::UnknownFolder(folder.to_owned()))
    }

    fn message_key(st: &Store, id: &str) -> Result<u32> {
        st.resolve_message(id)
            .map_err(|_: Lookup| Error::UnknownMessage(id.to_owned()))
    }

    /// The Graph id of a folder given by well-known name, path or id.
    pub fn folder_id(&self, folder: &str) -> Result<String> {
        let st = self.store();
        Self::folder_key(&st, folder).map(|k| st.folder_id(k))
    }

    fn info(st: &Store, key: u32) -> Option<MessageInfo> {
        let m = st.msg(key)?;
        let atts = st.attachments(m);
        let content = st.content_for(m, synth::BodyNeed::None);
        Some(MessageInfo {
            id: st.message_id(m, false),
            immutable_id: st.message_id(m, true),
            internet_message_id: content.internet_message_id,
            subject: content.subject,
            from: content.from,
            folder_id: st.folder_id(m.folder),
            folder: st.folder_path(m.folder),
            is_read: m.read,
            is_draft: m.role == Role::Draft,
            received: DateTime::from_timestamp_millis(m.received_ms).unwrap_or_default(),
            has_attachments: atts.iter().any(|a| !a.inline),
            attachment_count: atts.len(),
            change_key: super::ids::change_key(m.key, m.version),
        })
    }

    /// Messages of a folder, newest first (the default Graph order).
    pub fn folder_messages(&self, folder: &str) -> Result<Vec<MessageInfo>> {
        let st = self.store();
        let k = Self::folder_key(&st, folder)?;
        Ok(st.folders[k as usize]
            .by_received
            .iter()
            .rev()
            .filter_map(|(_, key)| Self::info(&st, *key))
            .collect())
    }

    /// Ids of a folder's messages, newest first (cheaper than
    /// [`folder_messages`](Self::folder_messages) for big folders).
    pub fn folder_message_ids(&self, folder: &str) -> Result<Vec<String>> {
        let st = self.store();
        let k = Self::folder_key(&st, folder)?;
        Ok(st.folders[k as usize]
            .by_received
            .iter()
            .rev()
            .filter_map(|(_, key)| st.msg(*key).map(|m| st.message_id(m, false)))
            .collect())
    }

    /// Number of messages in the whole mailbox.
    pub fn message_count(&self) -> usize {
        self.store().all.len()
    }

    /// One message by (regular or immutable) id.
    pub fn message(&self, id: &str) -> Result<MessageInfo> {
        let st = self.store();
        let k = Self::message_key(&st, id)?;
        Self::info(&st, k).ok_or_else(|| Error::UnknownMessage(id.to_owned()))
    }

    /// Adds `n` generated messages received now; returns their ids.
    pub fn add_messages(&self, folder: &str, n: usize) -> Result<Vec<String>> {
        let now = self.now_ms();
        let mut st = self.store();
        let k = Self::folder_key(&st, folder)?;
        let keys = st.add_generated(k, n, now);
        Ok(keys
            .iter()
            .filter_map(|key| st.msg(*key).map(|m| st.message_id(m, false)))
            .collect())
    }

    /// Adds one message with the given content; returns its id.
    pub fn add_message(&self, folder: &str, msg: NewMessage) -> Result<String> {
        let now = self.now_ms();
        let mut st = self.store();
        let k = Self::folder_key(&st, folder)?;
        let owner = st.owner.clone();
        let body = if msg.body.trim_start().starts_with('<') {
            msg.body.clone()
        } else {
            format!(
                "<html><body><p>{}</p></body></html>",
                msg.body.replace('&', "&amp;").replace('<', "&lt;")
            )
        };
        let thread = u64::MAX / 2 + st.messages.len() as u64;
        let domain = msg
            .from
            .as_ref()
            .and_then(|p| p.address.rsplit('@').next().map(str::to_owned))
            .unwrap_or_else(|| "mailroom.test".to_owned());
        let content = synth::Content {
            subject: msg.subject,
            from: msg.from,
            to: if msg.to.is_empty() {
                vec![owner]
            } else {
                msg.to
            },
            cc: Vec::new(),
            preview: synth::preview_html(&body),
            body_html: body,
            transit_ms: 2_000,
            importance: "normal",
            thread,
            internet_message_id: format!("<custom.{}.{}@{domain}>", st.messages.len(), now),
            categories: Vec::new(),
        };
        let received = msg.received.map(|d| d.timestamp_millis());
        let key = st.add_custom(k, content, msg.is_read, received, now);
        Ok(st
            .msg(key)
            .map(|m| st.message_id(m, false))
            .unwrap_or_default())
    }

    /// Moves a message (as another client would); returns its new id.
    pub fn move_message(&self, id: &str, folder: &str) -> Result<String> {
        let now = self.now_ms();
        let mut st = self.store();
        let key = Self::message_key(&st, id)?;
        let dest = Self::folder_key(&st, folder)?;
        st.move_to(key, dest, now);
        Ok(st
            .msg(key)
            .map(|m| st.message_id(m, false))
            .unwrap_or_default())
    }

    /// Deletes a message for good (delta reports it `@removed`).
    pub fn delete_message(&self, id: &str) -> Result<()> {
        let mut st = self.store();
        let key = Self::message_key(&st, id)?;
        st.permanent_delete(key);
        Ok(())
    }

    /// Deletes a folder (by well-known name, path or id) with its subfolders and
    /// their messages, for good: its id answers 404 from then on, and its path is free
    /// for [`create_folder`](Self::create_folder).
    pub fn delete_folder(&self, folder: &str) -> Result<()> {
        let mut st = self.store();
        let k = Self::folder_key(&st, folder)?;
        if k == 0 || st.folders[k as usize].well_known.is_some() {
            return Err(Error::UnknownFolder(format!(
                "{folder} (a well-known folder cannot be deleted)"
            )));
        }
        st.delete_folder(k);
        Ok(())
    }

    /// Creates a folder at `path` (`Parent/Child`; the parent must exist, a top-level
    /// name goes under the root); returns its new Graph id.
    pub fn create_folder(&self, path: &str) -> Result<String> {
        let mut st = self.store();
        let (parent, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (Self::folder_key(&st, parent)?, name),
            None => (0, path),
        };
        let k = st.create_folder(parent, name);
        Ok(st.folder_id(k))
    }

    /// Marks a message read or unread.
    pub fn set_read(&self, id: &str, read: bool) -> Result<()> {
        let now = self.now_ms();
        let mut st = self.store();
        let key = Self::message_key(&st, id)?;
        st.set_read(key, read, now);
        Ok(())
    }

    /// Changes a message's subject.
    pub fn set_subject(&self, id: &str, subject: &str) -> Result<()> {
        let now = self.now_ms();
        let mut st = self.store();
        let key = Self::message_key(&st, id)?;
        st.set_subject(key, subject, now);
        Ok(())
    }

    /// Answers the next Graph requests for this mailbox with these
    /// statuses (see [`Simulator::script_faults`](crate::Simulator::script_faults)).
    pub fn script_faults(&self, statuses: &[u16]) {
        lock(&self.cell.throttle)
            .scripted
            .extend(statuses.iter().copied());
    }

    /// `receivedDateTime` of the newest message, in Graph's format.
    pub fn newest_received(&self) -> Option<String> {
        self.store().all.last().map(|(t, _)| format_ms(*t))
    }
}
