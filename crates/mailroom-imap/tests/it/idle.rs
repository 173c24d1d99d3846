//! IDLE against the real Dovecot: a change wakes the wait, renewal ends it cleanly, a
//! dropped connection is a transient error, and a server without IDLE says so.

use std::time::Duration;

use mailroom_core::{ErrorKind, FolderRef, SyncCursor};
use mailroom_imap::IdleEvent;
use mailroom_imap::testing::DovecotConfig;

use crate::support::*;

const SOON: Duration = Duration::from_secs(10);

#[tokio::test]
async fn new_mail_and_expunge_end_the_wait() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    seed(&mut a, "INBOX", 1..=1).await;
    let c = connector(&d, "alice");
    let mut idle = c.idle(&FolderRef::INBOX).await.unwrap();
    assert_eq!(idle.mailbox(), "INBOX");

    let waiting = tokio::spawn(async move {
        let event = idle.wait(Duration::from_secs(60)).await;
        (idle, event)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    seed(&mut a, "INBOX", 2..=2).await;
    let (mut idle, event) = tokio::time::timeout(SOON, waiting).await.unwrap().unwrap();
    assert_eq!(event.unwrap(), IdleEvent::Changed, "new mail");

    // The same connection idles again; an expunge wakes it.
    let waiting = tokio::spawn(async move {
        let event = idle.wait(Duration::from_secs(60)).await;
        (idle, event)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let uid = a.uids("INBOX").await.unwrap()[0];
    a.expunge("INBOX", &uid.to_string()).await.unwrap();
    let (idle, event) = tokio::time::timeout(SOON, waiting).await.unwrap().unwrap();
    assert_eq!(event.unwrap(), IdleEvent::Changed, "expunge");
    idle.logout().await;
}

/// What came between a sync and `EXAMINE` raises no IDLE event: the watcher compares
/// the mailbox as `EXAMINE` found it with the cursor the sync stored.
#[tokio::test]
async fn a_connection_says_whether_the_mailbox_moved_past_a_cursor() {
    let d = dovecot();
    let mut a = admin(&d, "carol").await;
    seed(&mut a, "INBOX", 1..=3).await;
    let c = connector(&d, "carol");
    let (_, cursor) = sync_all(&c, &FolderRef::INBOX, None).await;
    let past = async |cursor: &SyncCursor| {
        let idle = c.idle(&FolderRef::INBOX).await.unwrap();
        let past = idle.is_past(cursor);
        idle.logout().await;
        past
    };
    assert!(!past(&cursor).await, "nothing happened since the sync");
    assert!(past(&SyncCursor("not an imap cursor".into())).await);

    // New mail.
    seed(&mut a, "INBOX", 4..=4).await;
    assert!(past(&cursor).await, "new mail");
    let (_, cursor) = sync_all(&c, &FolderRef::INBOX, Some(cursor)).await;
    assert!(!past(&cursor).await, "synced again");

    // A flag changed elsewhere (CONDSTORE: HIGHESTMODSEQ moves).
    let uid = a.uids("INBOX").await.unwrap()[0];
    a.set_seen("INBOX", uid, true).await.unwrap();
    assert!(past(&cursor).await, "a flag changed");
    let (_, cursor) = sync_all(&c, &FolderRef::INBOX, Some(cursor)).await;
    assert!(!past(&cursor).await, "synced again");

    // An expunge.
    a.expunge("INBOX", &uid.to_string()).await.unwrap();
    assert!(past(&cursor).await, "an expunge");
}

#[tokio::test]
async fn renewal_ends_idle_cleanly_and_idles_again() {
    let d = dovecot();
    let c = connector(&d, "alice");
    let mut idle = c.idle(&FolderRef::INBOX).await.unwrap();
    for _ in 0..2 {
        let event = idle.wait(Duration::from_millis(200)).await.unwrap();
        assert_eq!(event, IdleEvent::Renew);
    }
    let mut a = admin(&d, "alice").await;
    seed(&mut a, "INBOX", 1..=1).await;
    // Mail that came between two IDLEs is reported by the next one at once or soon.
    let event = tokio::time::timeout(SOON, idle.wait(Duration::from_secs(60)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event, IdleEvent::Changed);
}

#[tokio::test]
async fn a_connection_dropped_by_the_server_is_transient() {
    let d = dovecot();
    let c = connector(&d, "alice");
    let mut idle = c.idle(&FolderRef::INBOX).await.unwrap();
    let waiting = tokio::spawn(async move { idle.wait(Duration::from_secs(60)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(d.kick_all().unwrap() >= 1);
    let err = tokio::time::timeout(SOON, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    // A new connection works.
    let mut idle = c.idle(&FolderRef::INBOX).await.unwrap();
    assert_eq!(
        idle.wait(Duration::from_millis(100)).await.unwrap(),
        IdleEvent::Renew
    );
}

#[tokio::test]
async fn a_server_without_idle_is_unsupported() {
    let d = dovecot_with(&DovecotConfig::default().without_capability("IDLE"));
    let c = connector(&d, "alice");
    let err = c.idle(&FolderRef::INBOX).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
}
