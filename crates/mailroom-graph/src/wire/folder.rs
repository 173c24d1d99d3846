//! Graph `mailFolder` JSON.

use mailroom_core::{Folder, WellKnownFolder};
use serde::Deserialize;

/// The folder properties asked for (`$select`).
pub const FOLDER_SELECT: &str =
    "id,displayName,parentFolderId,childFolderCount,totalItemCount,unreadItemCount";

/// A mail folder as Graph sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphFolder {
    /// Folder id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Parent folder id (the root for top-level folders).
    pub parent_folder_id: Option<String>,
    /// Number of direct child folders.
    #[serde(default)]
    pub child_folder_count: u64,
    /// Number of messages.
    pub total_item_count: Option<u64>,
    /// Number of unread messages.
    pub unread_item_count: Option<u64>,
}

impl GraphFolder {
    /// The record, with the display path and role the caller worked out.
    pub fn into_folder(self, path: String, role: Option<WellKnownFolder>) -> Folder {
        Folder {
            remote_id: self.id,
            name: self.display_name,
            path,
            parent_id: self.parent_folder_id,
            role,
            total_count: self.total_item_count,
            unread_count: self.unread_item_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::message::Page;

    const FOLDERS: &str = include_str!("../../fixtures/mail-folders.json");

    #[test]
    fn folder_page() {
        let page: Page<GraphFolder> = serde_json::from_str(FOLDERS).unwrap();
        assert_eq!(page.value.len(), 2);
        assert!(page.next_link.unwrap().contains("skip=2"));
        let inbox = page.value[0].clone();
        assert_eq!(inbox.child_folder_count, 1);
        let f = inbox.into_folder("Inbox".into(), Some(WellKnownFolder::Inbox));
        assert_eq!(f.name, "Inbox");
        assert_eq!(f.total_count, Some(10));
        assert_eq!(f.unread_count, Some(4));
        assert_eq!(f.parent_id.as_deref(), Some("AQMkADYAAAIBCAAAAA=="));
        assert_eq!(page.value[1].display_name, "Bob's \"mail\" & more");
    }
}
