//! Mailbox content: folders, messages, and the change log behind delta.
//!
//! Every mutation takes a new value of a per-mailbox sequence number. Each
//! folder keeps a change log keyed by that number: one `Live` entry per
//! message it holds (at the message's last change) and a `Removed` tombstone
//! per message that left it. Delta rounds page through that log with a
//! keyset cursor, so a change made during a round moves the entry past the
//! cursor and is still seen, and nothing is ever skipped.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::ids::{self, IdKind};
use super::synth::{self, AttSpec, Content, Person, Role};
use crate::config::{FolderLayout, MailboxSpec};
use crate::rng::Rng;

/// Newest generated message time: fixed, so runs are reproducible.
const GENERATED_UNTIL_MS: i64 = 1_748_736_000_000; // 2025-06-01T00:00:00Z
/// Spacing of generated messages (jitter stays below it, so order is stable).
const STEP_MS: i64 = 23 * 60 * 1000;

/// One entry of a folder's change log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Live(u32),
    Removed { key: u32, incarnation: u32 },
}

#[derive(Debug)]
pub(crate) struct Folder {
    pub(crate) key: u32,
    pub(crate) display_name: String,
    pub(crate) parent: Option<u32>,
    pub(crate) well_known: Option<&'static str>,
    pub(crate) by_received: BTreeSet<(i64, u32)>,
    pub(crate) changes: BTreeMap<u64, Change>,
    pub(crate) unread: usize,
    /// Deleted by [`Store::delete_folder`]: its id is not found any more.
    pub(crate) deleted: bool,
}

/// Overrides of a message that is not (only) generated.
#[derive(Clone, Debug, Default)]
pub(crate) struct Custom {
    pub(crate) subject: Option<String>,
    pub(crate) content: Option<Content>,
}

#[derive(Debug)]
pub(crate) struct Msg {
    pub(crate) key: u32,
    pub(crate) folder: u32,
    pub(crate) ordinal: u64,
    pub(crate) role: Role,
    pub(crate) incarnation: u32,
    pub(crate) version: u32,
    pub(crate) received_ms: i64,
    pub(crate) modified_ms: i64,
    pub(crate) read: bool,
    pub(crate) change_seq: u64,
    /// Sequence number at which it entered its current folder.
    pub(crate) entered_seq: u64,
    pub(crate) custom: Option<Box<Custom>>,
}

/// Why an id does not name a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    Malformed,
    NotFound,
}

/// The content of one mailbox (its `Debug` is a summary).
pub(crate) struct Store {
    pub(crate) seed: u64,
    /// [`MailboxSpec::attachment_percent`].
    pub(crate) attachment_percent: u8,
    pub(crate) tag: u64,
    pub(crate) owner: Person,
    pub(crate) folders: Vec<Folder>,
    pub(crate) messages: Vec<Option<Msg>>,
    pub(crate) all: BTreeSet<(i64, u32)>,
    pub(crate) seq: u64,
    pub(crate) delta_epoch: u64,
    next_ordinal: u64,
    folder_ids: Vec<String>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("owner", &self.owner.address)
            .field("folders", &self.folders.len())
            .field("messages", &self.all.len())
            .field("seq", &self.seq)
            .field("delta_epoch", &self.delta_epoch)
            .finish_non_exhaustive()
    }
}

/// Folders of a generated mailbox: (display name, parent index, well-known
/// name, weight in a spread layout). Index 0 is the root.
const FOLDERS: &[(&str, Option<u32>, Option<&str>, u32)] = &[
    ("Top of Information Store", None, Some("msgfolderroot"), 0),
    ("Inbox", Some(0), Some("inbox"), 50),
    ("Sent Items", Some(0), Some("sentitems"), 12),
    ("Drafts", Some(0), Some("drafts"), 4),
    ("Deleted Items", Some(0), Some("deleteditems"), 4),
    ("Junk Email", Some(0), Some("junkemail"), 3),
    ("Archive", Some(0), Some("archive"), 6),
    ("Outbox", Some(0), Some("outbox"), 0),
    (
        "Conversation History",
        Some(0),
        Some("conversationhistory"),
        0,
    ),
    ("Newsletters", Some(1), None, 5),
    ("Bob's \"mail\" & more", Some(0), None, 4),
    ("2025", Some(10), None, 3),
    ("Entwürfe", Some(0), None, 3),
    ("日本語", Some(0), None, 2),
    ("Projects", Some(0), None, 0),
    ("Alpha", Some(14), None, 3),
    ("Beta", Some(14), None, 1),
];

impl Store {
    pub(crate) fn generate(spec: &MailboxSpec, _now: DateTime<Utc>) -> crate::Result<Store> {
        let tag = Rng::derive(spec.seed, &[0x0074_6167]).next_u64();
        let mut store = Store {
            seed: spec.seed,
            attachment_percent: spec.attachment_percent.min(100),
            tag,
            owner: Person::new(&spec.display_name, &spec.address.to_ascii_lowercase()),
            folders: FOLDERS
                .iter()
                .enumerate()
                .map(|(i, (name, parent, wk, _))| Folder {
                    key: i as u32,
                    display_name: (*name).to_owned(),
                    parent: *parent,
                    well_known: *wk,
                    by_received: BTreeSet::new(),
                    changes: BTreeMap::new(),
                    unread: 0,
                    deleted: false,
                })
                .collect(),
            messages: Vec::with_capacity(spec.messages),
            all: BTreeSet::new(),
            seq: 0,
            delta_epoch: 0,
            next_ordinal: spec.messages as u64,
            folder_ids: (0..FOLDERS.len() as u32)
                .map(|k| ids::encode(tag, IdKind::Folder(k)))
                .collect(),
        };
        let fixed = match &spec.layout {
            FolderLayout::Spread => None,
            FolderLayout::AllIn(name) => Some(
                store
                    .resolve_folder_path(name)
                    .ok_or_else(|| crate::Error::UnknownFolder(name.clone()))?,
            ),
        };
        let total_weight: u32 = FOLDERS.iter().map(|f| f.3).sum();
        let n = spec.messages as i64;
        for i in 0..spec.messages as u64 {
            let mut r = Rng::derive(spec.seed, &[i, 0x006d_7367]);
            let folder = fixed.unwrap_or_else(|| {
                let mut pick = r.below(u64::from(total_weight)) as u32;
                FOLDERS
                    .iter()
                    .position(|f| {
                        if pick < f.3 {
                            true
                        } else {
                            pick -= f.3;
                            false
                        }
                    })
                    .unwrap_or(1) as u32
            });
            // Whole seconds, like Exchange's timestamps.
            let received =
                GENERATED_UNTIL_MS - (n - i as i64) * STEP_MS + r.below(20 * 60) as i64 * 1000;
            let role = store.role_for(folder);
            let read = role != Role::Received || r.chance(0.6);
            store.insert(folder, i, role, received, read, None);
        }
        Ok(store)
    }

    fn role_for(&self, folder: u32) -> Role {
        match self.folders[folder as usize].well_known {
            Some("drafts") => Role::Draft,
            Some("sentitems" | "outbox") => Role::Sent,
            _ => Role::Received,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn insert(
        &mut self,
        folder: u32,
        ordinal: u64,
        role: Role,
        received_ms: i64,
        read: bool,
        custom: Option<Box<Custom>>,
    ) -> u32 {
        let key = self.messages.len() as u32;
        let seq = self.next_seq();
        let f = &mut self.folders[folder as usize];
        f.by_received.insert((received_ms, key));
        f.changes.insert(seq, Change::Live(key));
        if !read {
            f.unread += 1;
        }
        self.all.insert((received_ms, key));
        self.messages.push(Some(Msg {
            key,
            folder,
            ordinal,
            role,
            incarnation: 0,
            version: 0,
            received_ms,
            modified_ms: received_ms,
            read,
            change_seq: seq,
            entered_seq: seq,
            custom,
        }));
        key
    }

    pub(crate) fn msg(&self, key: u32) -> Option<&Msg> {
        self.messages.get(key as usize).and_then(Option::as_ref)
    }

    // ----- ids -------------------------------------------------------------

    pub(crate) fn folder_id(&self, key: u32) -> String {
        match self.folder_ids.get(key as usize) {
            Some(id) => id.clone(),
            None => ids::encode(self.tag, IdKind::Folder(key)),
        }
    }

    /// The cached id of an existing folder.
    pub(crate) fn folder_id_ref(&self, key: u32) -> &str {
        self.folder_ids.get(key as usize).map_or("", String::as_str)
    }

    pub(crate) fn message_id(&self, m: &Msg, immutable: bool) -> String {
        if immutable {
            ids::encode(self.tag, IdKind::Immutable(m.key))
        } else {
            ids::encode(
                self.tag,
                IdKind::Message {
                    key: m.key,
                    incarnation: m.incarnation,
                },
            )
        }
    }

    pub(crate) fn removed_id(&self, key: u32, incarnation: u32, immutable: bool) -> String {
        if immutable {
            ids::encode(self.tag, IdKind::Immutable(key))
        } else {
            ids::encode(self.tag, IdKind::Message { key, incarnation })
        }
    }

    pub(crate) fn attachment_id(&self, key: u32, index: u16) -> String {
        ids::encode(self.tag, IdKind::Attachment { key, index })
    }

    /// A folder by id or well-known name (case-insensitive).
    pub(crate) fn resolve_folder(&self, id: &str) -> Result<u32, Lookup> {
        if let Some(f) = self
            .folders
            .iter()
            .find(|f| !f.deleted && f.well_known.is_some_and(|w| w.eq_ignore_ascii_case(id)))
        {
            return Ok(f.key);
        }
        match ids::decode(id) {
            Some((tag, IdKind::Folder(k)))
                if tag == self.tag && self.folders.get(k as usize).is_some_and(|f| !f.deleted) =>
            {
                Ok(k)
            }
            Some(_) => Err(Lookup::NotFound),
            None => Err(Lookup::Malformed),
        }
    }

    /// A folder by id, well-known name, display name or `Parent/Child` path.
    pub(crate) fn resolve_folder_path(&self, name: &str) -> Option<u32> {
        if let Ok(k) = self.resolve_folder(name) {
            return Some(k);
        }
        let mut parent = 0u32;
        let mut found = None;
        for part in name.split('/') {
            let f = self
                .folders
                .iter()
                .find(|f| {
                    !f.deleted
                        && f.parent == Some(parent)
                        && f.display_name.eq_ignore_ascii_case(part)
                })
                .or_else(|| {
                    // A bare display name anywhere in the tree.
                    (found.is_none() && !name.contains('/'))
                        .then(|| {
                            self.folders.iter().find(|f| {
                                f.key != 0
                                    && !f.deleted
                                    && f.display_name.eq_ignore_ascii_case(part)
                            })
                        })
                        .flatten()
                })?;
            parent = f.key;
            found = Some(f.key);
        }
        found
    }

    /// `Parent/Child` display path of a folder.
    pub(crate) fn folder_path(&self, key: u32) -> String {
        let mut parts = Vec::new();
        let mut cur = Some(key);
        while let Some(k) = cur {
            if k == 0 {
                break;
            }
            let f = &self.folders[k as usize];
            parts.push(f.display_name.as_str());
            cur = f.parent;
        }
        parts.reverse();
        parts.join("/")
    }

    /// A message by (regular or immutable) id.
    pub(crate) fn resolve_message(&self, id: &str) -> Result<u32, Lookup> {
        match ids::decode(id) {
            Some((tag, _)) if tag != self.tag => Err(Lookup::NotFound),
            Some((_, IdKind::Message { key, incarnation })) => match self.msg(key) {
                Some(m) if m.incarnation == incarnation => Ok(key),
                _ => Err(Lookup::NotFound),
            },
            Some((_, IdKind::Immutable(key))) => {
                self.msg(key).map(|m| m.key).ok_or(Lookup::NotFound)
            }
            Some(_) => Err(Lookup::NotFound),
            None => Err(Lookup::Malformed),
        }
    }

    /// An attachment id: (message key, attachment index).
    pub(crate) fn resolve_attachment(&self, id: &str) -> Result<(u32, u16), Lookup> {
        match ids::decode(id) {
            Some((tag, IdKind::Attachment { key, index })) if tag == self.tag => Ok((key, index)),
            Some(_) => Err(Lookup::NotFound),
            None => Err(Lookup::Malformed),
        }
    }

    // ----- content ---------------------------------------------------------

    pub(crate) fn content(&self, m: &Msg) -> Content {
        self.content_for(m, synth::BodyNeed::Full)
    }

    /// The content with only as much body as needed.
    pub(crate) fn content_for(&self, m: &Msg, need: synth::BodyNeed) -> Content {
        let mut c = match m.custom.as_ref().and_then(|c| c.content.clone()) {
            Some(c) => c,
            None => synth::content_with(
                self.seed,
                m.ordinal,
                m.role,
                &self.owner,
                need,
                self.attachment_percent,
            ),
        };
        if let Some(s) = m.custom.as_ref().and_then(|c| c.subject.clone()) {
            c.subject = s;
        }
        c
    }

    pub(crate) fn subject(&self, m: &Msg) -> String {
        match &m.custom {
            Some(c) if c.subject.is_some() || c.content.is_some() => self.content(m).subject,
            _ => synth::subject(self.seed, m.ordinal),
        }
    }

    pub(crate) fn attachments(&self, m: &Msg) -> Vec<AttSpec> {
        match &m.custom {
            Some(c) if c.content.is_some() => Vec::new(),
            _ => synth::attachments(self.seed, m.ordinal, m.role, self.attachment_percent),
        }
    }

    pub(crate) fn attachment_bytes(&self, m: &Msg, index: u16, spec: &AttSpec) -> Vec<u8> {
        synth::attachment_bytes(self.seed, m.ordinal, index, spec)
    }

    pub(crate) fn child_count(&self, key: u32) -> usize {
        self.folders
            .iter()
            .filter(|f| f.parent == Some(key) && !f.deleted)
            .count()
    }

    // ----- mutations -------------------------------------------------------

    fn touch(&mut self, key: u32, now_ms: i64) {
        let seq = self.next_seq();
        let Some(m) = self.messages.get_mut(key as usize).and_then(Option::as_mut) else {
            return;
        };
        let f = &mut self.folders[m.folder as usize];
        f.changes.remove(&m.change_seq);
        f.changes.insert(seq, Change::Live(key));
        m.change_seq = seq;
        m.version += 1;
        m.modified_ms = m.modified_ms.max(now_ms);
    }

    pub(crate) fn set_read(&mut self, key: u32, read: bool, now_ms: i64) {
        let Some(m) = self.messages.get_mut(key as usize).and_then(Option::as_mut) else {
            return;
        };
        if m.read == read {
            return;
        }
        m.read = read;
        let f = &mut self.folders[m.folder as usize];
        if read {
            f.unread = f.unread.saturating_sub(1);
        } else {
            f.unread += 1;
        }
        self.touch(key, now_ms);
    }

    pub(crate) fn set_subject(&mut self, key: u32, subject: &str, now_ms: i64) {
        let Some(m) = self.messages.get_mut(key as usize).and_then(Option::as_mut) else {
            return;
        };
        m.custom.get_or_insert_with(Box::default).subject = Some(subject.to_owned());
        self.touch(key, now_ms);
    }

    /// Takes a message out of its folder, leaving a tombstone.
    fn unlink(&mut self, key: u32) -> Option<u32> {
        let seq = self.next_seq();
        let m = self
            .messages
            .get_mut(key as usize)
            .and_then(Option::as_mut)?;
        let f = &mut self.folders[m.folder as usize];
        f.by_received.remove(&(m.received_ms, key));
        f.changes.remove(&m.change_seq);
        f.changes.insert(
            seq,
            Change::Removed {
                key,
                incarnation: m.incarnation,
            },
        );
        if !m.read {
            f.unread = f.unread.saturating_sub(1);
        }
        Some(m.folder)
    }

    /// Moves a message; its regular id changes (a new incarnation).
    pub(crate) fn move_to(&mut self, key: u32, dest: u32, now_ms: i64) {
        let Some(m) = self.msg(key) else { return };
        if m.folder == dest {
            return;
        }
        self.unlink(key);
        let seq = self.next_seq();
        let Some(m) = self.messages.get_mut(key as usize).and_then(Option::as_mut) else {
            return;
        };
        m.incarnation += 1;
        m.version += 1;
        m.folder = dest;
        m.change_seq = seq;
        m.entered_seq = seq;
        m.modified_ms = m.modified_ms.max(now_ms);
        let f = &mut self.folders[dest as usize];
        f.by_received.insert((m.received_ms, key));
        f.changes.insert(seq, Change::Live(key));
        if !m.read {
            f.unread += 1;
        }
    }

    /// Deletes a message for good.
    pub(crate) fn permanent_delete(&mut self, key: u32) {
        if self.unlink(key).is_some()
            && let Some(m) = self.messages[key as usize].take()
        {
            self.all.remove(&(m.received_ms, key));
        }
    }

    /// Adds `n` generated messages received now (newest last).
    pub(crate) fn add_generated(&mut self, folder: u32, n: usize, now_ms: i64) -> Vec<u32> {
        let role = self.role_for(folder);
        (0..n)
            .map(|_| {
                let ordinal = self.next_ordinal;
                self.next_ordinal += 1;
                let received = now_ms.div_euclid(1000) * 1000;
                self.insert(
                    folder,
                    ordinal,
                    role,
                    received,
                    role != Role::Received,
                    None,
                )
            })
            .collect()
    }

    /// Adds one message with the given content.
    pub(crate) fn add_custom(
        &mut self,
        folder: u32,
        content: Content,
        read: bool,
        received_ms: Option<i64>,
        now_ms: i64,
    ) -> u32 {
        let role = if content.from.is_none() {
            Role::Draft
        } else {
            self.role_for(folder)
        };
        let ordinal = self.next_ordinal;
        self.next_ordinal += 1;
        let received = received_ms.unwrap_or(now_ms).div_euclid(1000) * 1000;
        let custom = Box::new(Custom {
            subject: None,
            content: Some(content),
        });
        self.insert(folder, ordinal, role, received, read, Some(custom))
    }

    /// Deletes a folder and its subfolders for good, with their messages (as a
    /// hard delete from Deleted Items would): their ids are not found any more.
    pub(crate) fn delete_folder(&mut self, folder: u32) {
        let mut doomed = vec![folder];
        let mut i = 0;
        while i < doomed.len() {
            let parent = doomed[i];
            doomed.extend(
                self.folders
                    .iter()
                    .filter(|f| f.parent == Some(parent) && !f.deleted)
                    .map(|f| f.key),
            );
            i += 1;
        }
        for key in doomed {
            let messages: Vec<u32> = self.folders[key as usize]
                .by_received
                .iter()
                .map(|(_, m)| *m)
                .collect();
            for m in messages {
                self.permanent_delete(m);
            }
            self.folders[key as usize].deleted = true;
        }
    }

    /// Creates a folder (with a new id) under `parent`; returns its key.
    pub(crate) fn create_folder(&mut self, parent: u32, display_name: &str) -> u32 {
        let key = self.folders.len() as u32;
        self.folders.push(Folder {
            key,
            display_name: display_name.to_owned(),
            parent: Some(parent),
            well_known: None,
            by_received: BTreeSet::new(),
            changes: BTreeMap::new(),
            unread: 0,
            deleted: false,
        });
        key
    }

    pub(crate) fn expire_delta_tokens(&mut self) {
        self.delta_epoch += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(n: usize) -> Store {
        Store::generate(&MailboxSpec::new("t@x.test", n), Utc::now()).unwrap()
    }

    fn live(s: &Store, folder: u32) -> Vec<u32> {
        s.folders[folder as usize]
            .changes
            .values()
            .filter_map(|c| match c {
                Change::Live(k) => Some(*k),
                Change::Removed { .. } => None,
            })
            .collect()
    }

    #[test]
    fn a_deleted_folder_and_its_children_are_not_found_and_a_recreated_one_has_a_new_id() {
        let mut s = store(500);
        let projects = s.resolve_folder_path("Projects").unwrap();
        let alpha = s.resolve_folder_path("Projects/Alpha").unwrap();
        let (old_id, in_alpha) = (
            s.folder_id(alpha),
            s.folders[alpha as usize].by_received.len(),
        );
        assert!(in_alpha > 0);
        let before = s.all.len();
        s.delete_folder(projects);
        assert_eq!(s.resolve_folder(&old_id), Err(Lookup::NotFound));
        assert_eq!(s.resolve_folder_path("Projects/Alpha"), None);
        assert_eq!(s.resolve_folder_path("Alpha"), None);
        assert_eq!(
            s.child_count(0),
            11,
            "Projects is no longer a child of the root"
        );
        assert!(s.all.len() <= before - in_alpha, "its messages are gone");

        let again = s.create_folder(0, "Projects");
        assert_ne!(s.folder_id(again), s.folder_id(projects));
        assert_eq!(s.resolve_folder_path("Projects"), Some(again));
        assert_eq!(s.resolve_folder(&s.folder_id(again)), Ok(again));
    }

    #[test]
    fn generation_spreads_messages_and_is_deterministic() {
        let a = store(500);
        let b = store(500);
        let counts: Vec<usize> = a.folders.iter().map(|f| f.by_received.len()).collect();
        assert_eq!(
            counts,
            b.folders
                .iter()
                .map(|f| f.by_received.len())
                .collect::<Vec<_>>()
        );
        assert_eq!(counts.iter().sum::<usize>(), 500);
        assert!(counts[1] > 150, "{counts:?}");
        assert!(counts[11] > 0 && counts[12] > 0 && counts[13] > 0);
        assert_eq!(
            a.message_id(a.msg(3).unwrap(), false),
            b.message_id(b.msg(3).unwrap(), false)
        );
        let drafts = a.folders[3]
            .by_received
            .iter()
            .map(|(_, k)| a.msg(*k).unwrap());
        assert!(drafts.clone().count() > 0);
        assert!(drafts.clone().all(|m| a.content(m).from.is_none()));
    }

    #[test]
    fn moving_changes_the_id_but_not_the_immutable_id() {
        let mut s = store(20);
        let key = s.folders[1].by_received.iter().next().unwrap().1;
        let old = s.message_id(s.msg(key).unwrap(), false);
        let imm = s.message_id(s.msg(key).unwrap(), true);
        s.move_to(key, 6, 0);
        assert_eq!(s.resolve_message(&old), Err(Lookup::NotFound));
        assert_eq!(s.resolve_message(&imm), Ok(key));
        let new = s.message_id(s.msg(key).unwrap(), false);
        assert_ne!(new, old);
        assert_eq!(s.resolve_message(&new), Ok(key));
        assert!(live(&s, 6).contains(&key));
        assert!(!live(&s, 1).contains(&key));
        assert_eq!(s.resolve_message("garbage!"), Err(Lookup::Malformed));
    }

    #[test]
    fn folders_resolve_by_name_path_and_id() {
        let s = store(0);
        assert_eq!(s.resolve_folder("Inbox"), Ok(1));
        assert_eq!(s.resolve_folder("DeletedItems"), Ok(4));
        assert_eq!(
            s.resolve_folder_path("Bob's \"mail\" & more/2025"),
            Some(11)
        );
        assert_eq!(s.resolve_folder_path("日本語"), Some(13));
        assert_eq!(s.resolve_folder_path("Projects/Alpha"), Some(15));
        assert_eq!(s.resolve_folder_path("alpha"), Some(15));
        assert_eq!(s.resolve_folder(&s.folder_id(12)), Ok(12));
        assert_eq!(s.folder_path(11), "Bob's \"mail\" & more/2025");
        assert_eq!(s.resolve_folder("nope"), Err(Lookup::Malformed));
    }

    #[test]
    fn changes_move_entries_past_the_cursor() {
        let mut s = store(30);
        let inbox = live(&s, 1);
        let first = inbox[0];
        let before = s.msg(first).unwrap().change_seq;
        s.set_read(first, !s.msg(first).unwrap().read, 1);
        let after = s.msg(first).unwrap().change_seq;
        assert!(after > before);
        assert_eq!(*live(&s, 1).last().unwrap(), first);
        let unread_before = s.folders[1].unread;
        s.permanent_delete(first);
        assert!(s.msg(first).is_none());
        assert!(s.folders[1].unread <= unread_before);
        assert!(matches!(
            s.folders[1].changes.values().last(),
            Some(Change::Removed { .. })
        ));
    }
}
