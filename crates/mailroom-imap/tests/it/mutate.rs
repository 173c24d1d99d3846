use mailroom_core::{Connector, DeleteMode, ErrorKind, FolderRef, WellKnownFolder};
use mailroom_imap::testing::DovecotConfig;

use crate::support::*;

async fn move_and_delete(without_move: bool) {
    let config = if without_move {
        DovecotConfig::default().without_capability("MOVE")
    } else {
        DovecotConfig::default()
    };
    let d = dovecot_with(&config);
    let mut a = admin(&d, "alice").await;
    seed(&mut a, "INBOX", 1..=3).await;
    let c = connector(&d, "alice");
    let page = c
        .fetch_page(&FolderRef::INBOX, &Default::default(), None)
        .await
        .unwrap();
    let id = |n: usize| page.messages[3 - n].remote_id.clone();

    // Move to the archive role: a new id in the destination.
    let moved = c
        .move_message(&id(1), &FolderRef::WellKnown(WellKnownFolder::Archive))
        .await
        .unwrap();
    assert!(moved.starts_with("Archive:"), "{moved}");
    let m = c.get_message(&moved).await.unwrap();
    assert_eq!(m.subject.as_deref(), Some("Message 1"));
    assert_eq!(
        c.get_message(&id(1)).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(a.uids("INBOX").await.unwrap(), [2, 3]);
    assert_eq!(a.uids("Archive").await.unwrap().len(), 1);

    // Soft delete goes to the trash role; deleting there removes for good.
    c.delete_message(&id(2), DeleteMode::Soft).await.unwrap();
    assert_eq!(a.uids("INBOX").await.unwrap(), [3]);
    let trash = a.uids("Trash").await.unwrap();
    assert_eq!(trash.len(), 1);
    let uv = a.select("Trash").await.unwrap().uid_validity.unwrap();
    let in_trash = format!("Trash:{uv}:{}", trash[0]);
    assert_eq!(
        c.get_message(&in_trash).await.unwrap().subject.as_deref(),
        Some("Message 2")
    );
    c.delete_message(&in_trash, DeleteMode::Soft).await.unwrap();
    assert!(a.uids("Trash").await.unwrap().is_empty());

    // Hard delete expunges.
    c.delete_message(&id(3), DeleteMode::Hard).await.unwrap();
    assert!(a.uids("INBOX").await.unwrap().is_empty());
    let err = c
        .delete_message(&id(3), DeleteMode::Hard)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = c
        .move_message(&moved, &FolderRef::parse("No/Such").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn move_and_delete_with_move() {
    move_and_delete(false).await;
}

#[tokio::test]
async fn move_and_delete_without_move_uses_copy_and_expunge() {
    move_and_delete(true).await;
}
