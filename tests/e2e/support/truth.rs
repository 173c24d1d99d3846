//! The database against the simulator's ground truth.

use std::collections::{BTreeMap, BTreeSet};

use mailroom_core::WellKnownFolder;
use mailroom_sim::Mailbox;
use mailroom_store::{MessageQuery, Store, StoredMessage};

/// What is compared per message: subject and read state, by server id.
pub type Snapshot = BTreeMap<String, (String, bool)>;

/// The stored messages of an account's folder with this role (none if the folder was
/// never synced).
pub async fn local_folder(
    store: &Store,
    account_id: i64,
    role: WellKnownFolder,
) -> Vec<StoredMessage> {
    let folders = store.list_folders(account_id).await.expect("folders");
    let Some(folder) = folders.iter().find(|f| f.folder.role == Some(role)) else {
        return Vec::new();
    };
    assert_eq!(
        folders
            .iter()
            .filter(|f| f.folder.role == Some(role))
            .count(),
        1,
        "one stored folder per role: {folders:?}"
    );
    store
        .list_messages(&MessageQuery {
            account_id: Some(account_id),
            folder_id: Some(folder.id),
            limit: 0,
            ..MessageQuery::default()
        })
        .await
        .expect("messages")
}

/// Checks that no message is stored twice: one row per server id, and one per
/// Message-ID header (a message moved on the server gets a new id; keeping the old
/// row would duplicate it).
pub fn assert_no_duplicates(rows: &[StoredMessage], what: &str) {
    let mut by_remote: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_header: BTreeMap<&str, usize> = BTreeMap::new();
    for row in rows {
        *by_remote.entry(row.message.remote_id.as_str()).or_default() += 1;
        if let Some(h) = row.message.message_id.as_deref() {
            *by_header.entry(h).or_default() += 1;
        }
    }
    let twice: Vec<_> = by_remote.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        twice.is_empty(),
        "{what}: server ids stored more than once: {twice:?}"
    );
    let twice: Vec<_> = by_header.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        twice.is_empty(),
        "{what}: Message-IDs stored more than once: {twice:?}"
    );
}

/// The stored messages as a [`Snapshot`].
pub fn snapshot(rows: &[StoredMessage]) -> Snapshot {
    rows.iter()
        .map(|r| {
            (
                r.message.remote_id.clone(),
                (
                    r.message.subject.clone().unwrap_or_default(),
                    r.message.is_read,
                ),
            )
        })
        .collect()
}

/// The simulator's folder as a [`Snapshot`].
pub fn truth(mailbox: &Mailbox, folder: &str) -> Snapshot {
    mailbox
        .folder_messages(folder)
        .expect("the simulator's folder")
        .into_iter()
        .map(|m| (m.id, (m.subject, m.is_read)))
        .collect()
}

/// Asserts two snapshots are equal, describing the difference briefly.
pub fn assert_same(local: &Snapshot, truth: &Snapshot, what: &str) {
    if local == truth {
        return;
    }
    let l: BTreeSet<&String> = local.keys().collect();
    let t: BTreeSet<&String> = truth.keys().collect();
    let missing: Vec<_> = t.difference(&l).take(3).collect();
    let extra: Vec<_> = l.difference(&t).take(3).collect();
    let changed: Vec<_> = l
        .intersection(&t)
        .filter(|id| local[**id] != truth[**id])
        .take(3)
        .map(|id| (id, &local[*id], &truth[*id]))
        .collect();
    panic!(
        "{what}: the database differs from the simulator: {} stored, {} on the server; \
         missing {} (e.g. {missing:?}), stale {} (e.g. {extra:?}), different (local, server) {changed:?}",
        local.len(),
        truth.len(),
        t.difference(&l).count(),
        l.difference(&t).count(),
    );
}

/// Asserts the account's stored folders equal the simulator's, folder by folder
/// (`(simulator folder, role)`), with no duplicates, and that nothing else is stored
/// for the account.
pub async fn assert_account_matches(
    store: &Store,
    email: &str,
    mailbox: &Mailbox,
    folders: &[(&str, WellKnownFolder)],
) {
    let account = store
        .find_account(email)
        .await
        .expect("the database answers")
        .unwrap_or_else(|| panic!("no account {email}"));
    let mut expected_total = 0;
    for (sim_folder, role) in folders {
        let rows = local_folder(store, account.id, *role).await;
        let what = format!("{email} {sim_folder}");
        assert_no_duplicates(&rows, &what);
        let truth = truth(mailbox, sim_folder);
        assert_same(&snapshot(&rows), &truth, &what);
        expected_total += truth.len();
    }
    let total = store
        .count_messages(&MessageQuery {
            account_id: Some(account.id),
            ..MessageQuery::default()
        })
        .await
        .expect("count");
    assert_eq!(
        total as usize, expected_total,
        "{email}: messages stored outside the synced folders"
    );
}
