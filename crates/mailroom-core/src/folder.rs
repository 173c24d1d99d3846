//! Folder names: the well-known roles shared by Graph and IMAP, and custom paths.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A folder role every mailbox has, whatever it is called on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WellKnownFolder {
    /// `INBOX`.
    Inbox,
    /// `SENT` — Graph `sentitems`, IMAP `\Sent`.
    Sent,
    /// `DRAFTS` — Graph `drafts`, IMAP `\Drafts`.
    Drafts,
    /// `DELETED` or `TRASH` — Graph `deleteditems`, IMAP `\Trash`.
    Deleted,
    /// `JUNK` or `SPAM` — Graph `junkemail`, IMAP `\Junk`.
    Junk,
    /// `ARCHIVE` — Graph `archive`, IMAP `\Archive`.
    Archive,
    /// `OUTBOX` — Graph `outbox`; IMAP has no such role.
    Outbox,
}

impl WellKnownFolder {
    /// Every role, in display order.
    pub const ALL: [WellKnownFolder; 7] = [
        Self::Inbox,
        Self::Sent,
        Self::Drafts,
        Self::Deleted,
        Self::Junk,
        Self::Archive,
        Self::Outbox,
    ];

    /// Recognises a role name in any case: the Python names (`INBOX`, `SENT`, `DRAFTS`,
    /// `DELETED`, `TRASH`, `JUNK`, `SPAM`, `ARCHIVE`, `OUTBOX`) and the Graph well-known
    /// names (`sentitems`, `deleteditems`, `junkemail`).
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        let found = match name.to_ascii_lowercase().as_str() {
            "inbox" => Self::Inbox,
            "sent" | "sentitems" => Self::Sent,
            "drafts" => Self::Drafts,
            "deleted" | "trash" | "deleteditems" => Self::Deleted,
            "junk" | "spam" | "junkemail" => Self::Junk,
            "archive" => Self::Archive,
            "outbox" => Self::Outbox,
            _ => return None,
        };
        Some(found)
    }

    /// The canonical upper-case name (`INBOX`, `SENT`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbox => "INBOX",
            Self::Sent => "SENT",
            Self::Drafts => "DRAFTS",
            Self::Deleted => "DELETED",
            Self::Junk => "JUNK",
            Self::Archive => "ARCHIVE",
            Self::Outbox => "OUTBOX",
        }
    }

    /// The Graph well-known folder name, usable as a folder id.
    pub fn graph_name(self) -> &'static str {
        match self {
            Self::Inbox => "inbox",
            Self::Sent => "sentitems",
            Self::Drafts => "drafts",
            Self::Deleted => "deleteditems",
            Self::Junk => "junkemail",
            Self::Archive => "archive",
            Self::Outbox => "outbox",
        }
    }

    /// The IMAP SPECIAL-USE attribute (RFC 6154) of this role, if IMAP has one.
    /// The inbox is found by its reserved name `INBOX` instead.
    pub fn imap_special_use(self) -> Option<&'static str> {
        match self {
            Self::Sent => Some("\\Sent"),
            Self::Drafts => Some("\\Drafts"),
            Self::Deleted => Some("\\Trash"),
            Self::Junk => Some("\\Junk"),
            Self::Archive => Some("\\Archive"),
            Self::Inbox | Self::Outbox => None,
        }
    }

    /// The role of an IMAP SPECIAL-USE attribute (any case), e.g. `\Trash`.
    pub fn from_imap_special_use(attribute: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| {
            role.imap_special_use()
                .is_some_and(|flag| flag.eq_ignore_ascii_case(attribute))
        })
    }
}

impl fmt::Display for WellKnownFolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A custom folder given as display names from the top: `Parent/Child`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FolderPath(Vec<String>);

impl FolderPath {
    /// Builds a path from its segments; every segment must be non-empty.
    pub fn new(segments: Vec<String>) -> Result<Self, FolderRefError> {
        if segments.is_empty() || segments.iter().any(|s| s.trim().is_empty()) {
            return Err(FolderRefError(segments.join("/")));
        }
        Ok(FolderPath(segments))
    }

    /// The display names, top first.
    pub fn segments(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for FolderPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("/"))
    }
}

/// How a caller names a folder: a role, a path of display names, or a server id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FolderRef {
    /// A role such as `INBOX` or `TRASH`, resolved per protocol.
    WellKnown(WellKnownFolder),
    /// A custom folder by display names, resolved on the server.
    Path(FolderPath),
    /// A server-side id: a Graph folder id or an IMAP mailbox name.
    Id(String),
}

impl FolderRef {
    /// The inbox, the default folder to sync.
    pub const INBOX: FolderRef = FolderRef::WellKnown(WellKnownFolder::Inbox);

    /// Parses a user-supplied name: a well-known role in any case, else a
    /// `Parent/Child` path. A leading `id:` takes the rest verbatim as a server id.
    pub fn parse(name: &str) -> Result<Self, FolderRefError> {
        if let Some(id) = name.strip_prefix("id:") {
            if id.is_empty() {
                return Err(FolderRefError(name.to_owned()));
            }
            return Ok(FolderRef::Id(id.to_owned()));
        }
        if let Some(role) = WellKnownFolder::parse(name) {
            return Ok(FolderRef::WellKnown(role));
        }
        let segments = name
            .trim_matches('/')
            .split('/')
            .map(str::to_owned)
            .collect();
        FolderPath::new(segments).map(FolderRef::Path)
    }

    /// A reference to a server-side id.
    pub fn id(id: impl Into<String>) -> Self {
        FolderRef::Id(id.into())
    }
}

impl FromStr for FolderRef {
    type Err = FolderRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FolderRef::parse(s)
    }
}

impl fmt::Display for FolderRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FolderRef::WellKnown(role) => role.fmt(f),
            FolderRef::Path(path) => path.fmt(f),
            FolderRef::Id(id) => write!(f, "id:{id}"),
        }
    }
}

/// A folder name that is empty or has an empty `Parent//Child` segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid folder name {0:?}: use a role like INBOX or a path like Parent/Child")]
pub struct FolderRefError(String);

/// A folder as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    /// Graph folder id, or the IMAP mailbox name (decoded UTF-8).
    pub remote_id: String,
    /// Display name of this folder alone.
    pub name: String,
    /// Display path from the top (`Parent/Child`).
    pub path: String,
    /// The parent's `remote_id`, if any.
    pub parent_id: Option<String>,
    /// The role, if the server marks this folder as a well-known one.
    pub role: Option<WellKnownFolder>,
    /// Number of messages, if the server says.
    pub total_count: Option<u64>,
    /// Number of unread messages, if the server says.
    pub unread_count: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<WellKnownFolder>) {
        assert_eq!(WellKnownFolder::parse(input), expected, "{input}");
    }

    #[test]
    fn well_known_names_any_case() {
        use WellKnownFolder::*;
        check("INBOX", Some(Inbox));
        check("inbox", Some(Inbox));
        check("Sent", Some(Sent));
        check("SentItems", Some(Sent));
        check("drafts", Some(Drafts));
        check("DELETED", Some(Deleted));
        check("trash", Some(Deleted));
        check("Junk", Some(Junk));
        check("SPAM", Some(Junk));
        check("junkemail", Some(Junk));
        check("archive", Some(Archive));
        check("OutBox", Some(Outbox));
        check("Receipts", None);
    }

    #[test]
    fn graph_and_imap_names() {
        let graph: Vec<_> = WellKnownFolder::ALL
            .iter()
            .map(|f| f.graph_name())
            .collect();
        assert_eq!(
            graph,
            [
                "inbox",
                "sentitems",
                "drafts",
                "deleteditems",
                "junkemail",
                "archive",
                "outbox"
            ]
        );
        assert_eq!(WellKnownFolder::Deleted.imap_special_use(), Some("\\Trash"));
        assert_eq!(
            WellKnownFolder::from_imap_special_use("\\junk"),
            Some(WellKnownFolder::Junk)
        );
        assert_eq!(WellKnownFolder::from_imap_special_use("\\Flagged"), None);
        assert_eq!(WellKnownFolder::Inbox.imap_special_use(), None);
    }

    #[test]
    fn folder_refs() {
        assert_eq!(
            FolderRef::parse("Trash").unwrap(),
            FolderRef::WellKnown(WellKnownFolder::Deleted)
        );
        let path = FolderRef::parse("Bob's \"mail\" & more/2025").unwrap();
        let FolderRef::Path(p) = &path else { panic!() };
        assert_eq!(p.segments(), ["Bob's \"mail\" & more", "2025"]);
        assert_eq!(path.to_string(), "Bob's \"mail\" & more/2025");
        assert_eq!(
            FolderRef::parse("id:AAMkAD=").unwrap(),
            FolderRef::id("AAMkAD=")
        );
        assert!(FolderRef::parse("").is_err());
        assert!(FolderRef::parse("a//b").is_err());
        assert!(FolderRef::parse("id:").is_err());
    }
}
