use std::time::Duration;

use mailroom_core::{Change, Connector, ErrorKind, FolderRef, SyncCursor};
use mailroom_imap::testing::DovecotConfig;

use crate::support::*;

/// Mail added, flagged and expunged between two syncs.
async fn two_syncs(config: DovecotConfig, expect_known_set: bool) {
    let d = dovecot_with(&config);
    let mut a = admin(&d, "alice").await;
    seed(&mut a, "INBOX", 1..=12).await;
    let c = connector_with(&d, "alice", options(&d).page_size(5));

    let (pages, cursor) = sync_all(&c, &FolderRef::INBOX, None).await;
    assert_eq!(pages.len(), 3, "12 messages in pages of 5");
    assert!(pages[0].reset && !pages[1].reset && !pages[2].reset);
    assert_eq!(
        pages.iter().map(|p| p.complete).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert!(pages.iter().all(|p| p.changes.len() <= 5));
    assert_eq!(summarize(&pages).upserts, subjects(1..=12));
    assert_eq!(
        cursor.as_str().contains(";known="),
        expect_known_set,
        "{}",
        cursor.as_str()
    );

    // Nothing changed: an empty, complete page.
    let page = c
        .sync_folder(&FolderRef::INBOX, Some(cursor.clone()))
        .await
        .unwrap();
    assert!(page.changes.is_empty() && page.complete && !page.reset);

    // Between two syncs: 2 new, 3 and 4 expunged, 5 read, 6 flagged (not \Seen).
    seed(&mut a, "INBOX", 13..=14).await;
    a.expunge("INBOX", "3:4").await.unwrap();
    a.set_seen("INBOX", 5, true).await.unwrap();
    a.command("UID STORE 6 +FLAGS.SILENT (\\Flagged)")
        .await
        .unwrap();
    let uv = a.select("INBOX").await.unwrap().uid_validity.unwrap();
    let id = |uid: u32| format!("INBOX:{uv}:{uid}");

    let (pages, cursor2) = sync_all(&c, &FolderRef::INBOX, Some(cursor)).await;
    assert_eq!(pages.len(), 1);
    let s = summarize(&pages);
    assert_eq!(s.upserts, subjects(13..=14));
    let mut removes = s.removes.clone();
    removes.sort();
    assert_eq!(removes, [id(3), id(4)]);
    assert!(s.read.contains(&(id(5), true)), "{:?}", s.read);
    assert!(
        s.read.iter().all(|(rid, _)| *rid == id(5) || *rid == id(6)),
        "only changed messages: {:?}",
        s.read
    );

    // Unread again, and one more expunge.
    a.set_seen("INBOX", 5, false).await.unwrap();
    a.expunge("INBOX", "13").await.unwrap();
    let (pages, _) = sync_all(&c, &FolderRef::INBOX, Some(cursor2)).await;
    let s = summarize(&pages);
    assert!(s.upserts.is_empty());
    assert_eq!(s.removes, [id(13)]);
    assert!(s.read.contains(&(id(5), false)), "{:?}", s.read);
}

#[tokio::test]
async fn two_syncs_with_qresync() {
    two_syncs(DovecotConfig::default(), false).await;
}

#[tokio::test]
async fn two_syncs_without_qresync_diff_known_uids() {
    two_syncs(DovecotConfig::default().without_capability("QRESYNC"), true).await;
}

#[tokio::test]
async fn uidvalidity_change_resets_without_duplicates() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    a.create("Projects").await.unwrap();
    seed(&mut a, "Projects", 1..=4).await;
    let c = connector(&d, "alice");
    let folder = FolderRef::parse("Projects").unwrap();
    let (pages, cursor) = sync_all(&c, &folder, None).await;
    let first_ids: Vec<String> = upsert_ids(&pages);
    assert_eq!(first_ids.len(), 4);

    // Delete and recreate the mailbox: a new UIDVALIDITY, 3 messages.
    a.delete("Projects").await.unwrap();
    a.create("Projects").await.unwrap();
    seed(&mut a, "Projects", 1..=3).await;

    let (pages, _) = sync_all(&c, &folder, Some(cursor)).await;
    assert!(pages[0].reset, "a changed UIDVALIDITY starts a reset");
    let ids = upsert_ids(&pages);
    assert_eq!(summarize(&pages).upserts, subjects(1..=3));
    assert!(
        ids.iter().all(|id| !first_ids.contains(id)),
        "new ids: {ids:?} vs {first_ids:?}"
    );
    // Apply like the store does: after a completed reset, only what was re-sent stays.
    let mut stored: std::collections::BTreeSet<String> = first_ids.into_iter().collect();
    let mut since_reset = std::collections::BTreeSet::new();
    for page in &pages {
        if page.reset {
            since_reset.clear();
        }
        for change in &page.changes {
            if let Change::Upsert(m) = change {
                stored.insert(m.remote_id.clone());
                since_reset.insert(m.remote_id.clone());
            }
        }
        if page.complete {
            stored.retain(|id| since_reset.contains(id));
        }
    }
    assert_eq!(stored.len(), 3, "no duplicates: {stored:?}");
}

fn upsert_ids(pages: &[mailroom_core::SyncPage]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| &p.changes)
        .filter_map(|c| match c {
            Change::Upsert(m) => Some(m.remote_id.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn resume_from_a_mid_enumeration_cursor() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    seed(&mut a, "INBOX", 1..=10).await;
    let c = connector_with(&d, "alice", options(&d).page_size(4));

    let first = c.sync_folder(&FolderRef::INBOX, None).await.unwrap();
    assert!(first.reset && !first.complete);
    assert_eq!(
        summarize(std::slice::from_ref(&first)).upserts,
        subjects(1..=4)
    );
    // "Crash": page 2 is fetched but never stored; a new connector resumes from page 1.
    let _lost = c
        .sync_folder(&FolderRef::INBOX, Some(first.cursor.clone()))
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    // Meanwhile message 2 (delivered) and 6 (not yet delivered) are expunged.
    a.expunge("INBOX", "2,6").await.unwrap();

    let c2 = connector_with(&d, "alice", options(&d).page_size(4));
    let (pages, _) = sync_all(&c2, &FolderRef::INBOX, Some(first.cursor)).await;
    assert!(pages.iter().all(|p| !p.reset));
    let s = summarize(&pages);
    assert_eq!(
        s.upserts,
        [
            "Message 5",
            "Message 7",
            "Message 8",
            "Message 9",
            "Message 10"
        ],
        "nothing lost, nothing repeated"
    );
    let uv = a.select("INBOX").await.unwrap().uid_validity.unwrap();
    // UID 2 was delivered: removed. UID 6 never was; a Remove for it is harmless.
    assert!(
        s.removes.contains(&format!("INBOX:{uv}:2")),
        "{:?}",
        s.removes
    );
    assert!(
        s.removes
            .iter()
            .all(|r| *r == format!("INBOX:{uv}:2") || *r == format!("INBOX:{uv}:6")),
        "{:?}",
        s.removes
    );

    // A cursor that is not ours starts over.
    let page = c2
        .sync_folder(
            &FolderRef::INBOX,
            Some(SyncCursor("https://graph/delta".into())),
        )
        .await
        .unwrap();
    assert!(page.reset);
}

#[tokio::test]
async fn a_message_the_server_cannot_read_does_not_block_the_folder() {
    let d = dovecot();
    d.write_maildir_inbox("alice", (1..=3).map(mail)).unwrap();
    // Make the second file unreadable for Dovecot's mail process (it runs as nobody).
    let cur = d.dir().join("mail/alice/Maildir/cur");
    let mut files: Vec<_> = std::fs::read_dir(&cur)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let broken = &files[1];
    std::os::unix::fs::chown(broken, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(broken, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();

    let c = connector(&d, "alice");
    let (pages, _) = sync_all(&c, &FolderRef::INBOX, None).await;
    let upserts: Vec<_> = pages
        .iter()
        .flat_map(|p| &p.changes)
        .filter_map(|c| match c {
            Change::Upsert(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(upserts.len(), 3, "{upserts:?}");
    let readable: Vec<_> = upserts.iter().filter_map(|m| m.subject.clone()).collect();
    assert_eq!(readable, ["Message 1", "Message 3"]);
    let bad = upserts.iter().find(|m| m.subject.is_none()).unwrap();
    assert!(
        bad.warnings[0].starts_with("the server could not return this message"),
        "{:?}",
        bad.warnings
    );
}

#[tokio::test]
async fn without_condstore_adds_and_expunges_are_still_seen() {
    let d = dovecot_with(
        &DovecotConfig::default()
            .without_capability("QRESYNC")
            .without_capability("CONDSTORE"),
    );
    let mut a = admin(&d, "alice").await;
    seed(&mut a, "INBOX", 1..=4).await;
    let c = connector(&d, "alice");
    let (pages, cursor) = sync_all(&c, &FolderRef::INBOX, None).await;
    assert_eq!(summarize(&pages).upserts, subjects(1..=4));
    assert!(cursor.as_str().contains(";ms=0;"), "{}", cursor.as_str());

    seed(&mut a, "INBOX", 5..=5).await;
    a.expunge("INBOX", "2").await.unwrap();
    a.set_seen("INBOX", 3, true).await.unwrap();
    let uv = a.select("INBOX").await.unwrap().uid_validity.unwrap();
    let (pages, _) = sync_all(&c, &FolderRef::INBOX, Some(cursor)).await;
    let s = summarize(&pages);
    assert_eq!(s.upserts, subjects(5..=5));
    assert_eq!(s.removes, [format!("INBOX:{uv}:2")]);
    assert!(
        s.read.is_empty(),
        "no CONDSTORE: read state of old mail is not tracked"
    );
}

#[tokio::test]
async fn a_folder_run_past_its_deadline_stops_and_the_next_run_goes_on() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    seed(&mut a, "INBOX", 1..=10).await;
    let deadline = Duration::from_secs(1);
    let options = options(&d).page_size(3).folder_run_deadline(deadline);
    let c = connector_with(&d, "alice", options);

    let first = c.sync_folder(&FolderRef::INBOX, None).await.unwrap();
    assert!(!first.complete);
    tokio::time::sleep(deadline + Duration::from_millis(200)).await;
    let e = c
        .sync_folder(&FolderRef::INBOX, Some(first.cursor.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("the folder run passed its deadline of 1 s after 1 pages")
            && text.contains("ImapOptions::folder_run_deadline"),
        "{text}"
    );

    // The next run (a retry, or the next sync) starts from the stored cursor: nothing
    // lost, nothing repeated.
    let second = c
        .sync_folder(&FolderRef::INBOX, Some(first.cursor.clone()))
        .await
        .unwrap();
    let c2 = connector(&d, "alice");
    let (rest, _) = sync_all(&c2, &FolderRef::INBOX, Some(second.cursor.clone())).await;
    let mut pages = vec![first, second];
    pages.extend(rest);
    assert_eq!(summarize(&pages).upserts, subjects(1..=10));
}
