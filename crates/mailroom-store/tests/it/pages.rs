use mailroom_core::{Change, SyncCursor, SyncPage};
use mailroom_store::{Error, LeaseCheck, MessageQuery, SyncPageWrite};

use crate::support::{account, folder, inbox, message, stores, t0};

fn page(changes: Vec<Change>, cursor: &str, reset: bool, complete: bool) -> SyncPage {
    SyncPage {
        changes,
        cursor: SyncCursor(cursor.into()),
        reset,
        complete,
    }
}

fn upserts(range: std::ops::Range<usize>) -> Vec<Change> {
    range.map(|i| Change::Upsert(message(i))).collect()
}

/// `owner` claims every due account (at most 10) at `t0()`, for five minutes; returns
/// the claimed accounts.
async fn claim_for_five_minutes(
    store: &mailroom_store::Store,
    owner: &str,
) -> Vec<mailroom_store::Account> {
    store
        .claim_due_accounts(owner, 10, t0(), t0() + chrono::Duration::minutes(5))
        .await
        .unwrap()
}

#[tokio::test]
async fn upserting_the_same_10000_messages_twice_leaves_10000_rows() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "bulk@example.com").await;
        let f = inbox(&store, &a).await;
        let messages: Vec<_> = (0..10_000).map(message).collect();
        for round in 0..2 {
            let n = store.upsert_messages(a.id, f.id, &messages).await.unwrap();
            assert_eq!(n, 10_000, "{b:?} round {round}");
        }
        let q = MessageQuery {
            account_id: Some(a.id),
            ..Default::default()
        };
        assert_eq!(store.count_messages(&q).await.unwrap(), 10_000, "{b:?}");
        let all = store.list_messages(&q).await.unwrap();
        let attachments: usize = all.iter().map(|m| m.message.attachments.len()).sum();
        assert_eq!(
            attachments,
            3334 * 2,
            "{b:?}: attachments replaced, not duplicated"
        );
        // The record survives the round trip unchanged.
        let stored = store
            .get_message(a.id, &message(3).remote_id)
            .await
            .unwrap();
        assert_eq!(stored.message, message(3), "{b:?}");
        let by_id = store.get_message_by_id(stored.id).await.unwrap();
        assert_eq!(by_id, stored, "{b:?}: the same record by database id");
        let draft = store
            .get_message(a.id, &message(4).remote_id)
            .await
            .unwrap();
        assert_eq!(draft.message.sender, None);
    }
}

#[tokio::test]
async fn page_and_cursor_land_together_and_resets_reconcile() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "sync@example.com").await;
        let f = inbox(&store, &a).await;
        assert!(f.cursor.is_none());
        let write = |p| SyncPageWrite {
            account_id: a.id,
            folder_id: f.id,
            page: p,
            lease: None,
        };

        let first = page(upserts(0..5), "delta-1", true, true);
        let stats = store.apply_sync_page(write(&first)).await.unwrap();
        assert_eq!(stats.upserted, 5);
        assert_eq!(
            store.get_folder(f.id).await.unwrap().cursor,
            Some(SyncCursor("delta-1".into()))
        );

        // The delta token expired: the server enumerates again; message 4 is gone.
        let restart = page(upserts(0..3), "next-2a", true, false);
        store.apply_sync_page(write(&restart)).await.unwrap();
        let mid = store.get_folder(f.id).await.unwrap();
        assert!(
            mid.reconciling,
            "{b:?}: a crash here resumes from next-2a and still reconciles"
        );
        assert_eq!(mid.cursor, Some(SyncCursor("next-2a".into())));
        let q = MessageQuery {
            folder_id: Some(f.id),
            ..Default::default()
        };
        assert_eq!(
            store.count_messages(&q).await.unwrap(),
            5,
            "nothing removed before the end"
        );

        let end = page(upserts(3..4), "delta-2", false, true);
        let stats = store.apply_sync_page(write(&end)).await.unwrap();
        assert_eq!((stats.upserted, stats.reconciled), (1, 1), "{b:?}");
        let ids: Vec<_> = store
            .list_messages(&q)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.message.remote_id)
            .collect();
        assert_eq!(ids.len(), 4);
        assert!(!ids.contains(&message(4).remote_id));
        assert!(!store.get_folder(f.id).await.unwrap().reconciling);
    }
}

#[tokio::test]
async fn removals_are_scoped_to_the_folder_and_read_state_applies() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "rm@example.com").await;
        let f = inbox(&store, &a).await;
        let archive = store
            .upsert_folders(a.id, &[folder("archive-id", None)])
            .await
            .unwrap()
            .remove(0);
        store
            .upsert_messages(a.id, f.id, &(0..3).map(message).collect::<Vec<_>>())
            .await
            .unwrap();
        // Message 2 moved to the archive with an immutable id, and the archive synced first.
        store
            .upsert_messages(a.id, archive.id, &[message(2)])
            .await
            .unwrap();
        let p = page(
            vec![
                Change::Remove {
                    remote_id: message(0).remote_id,
                },
                Change::Remove {
                    remote_id: message(2).remote_id,
                },
                Change::ReadState {
                    remote_id: message(1).remote_id,
                    is_read: false,
                },
                Change::Remove {
                    remote_id: "never-seen".into(),
                },
            ],
            "d",
            false,
            true,
        );
        let stats = store
            .apply_sync_page(SyncPageWrite {
                account_id: a.id,
                folder_id: f.id,
                page: &p,
                lease: None,
            })
            .await
            .unwrap();
        assert_eq!((stats.removed, stats.read_state), (1, 1), "{b:?}");
        let moved = store
            .get_message(a.id, &message(2).remote_id)
            .await
            .unwrap();
        assert_eq!(
            moved.folder_id, archive.id,
            "{b:?}: the moved message stays in its new folder"
        );
        assert!(
            !store
                .get_message(a.id, &message(1).remote_id)
                .await
                .unwrap()
                .message
                .is_read
        );
    }
}

#[tokio::test]
async fn a_record_without_its_attachment_list_keeps_the_stored_one() {
    for store in stores().await {
        let a = account(&store, "att@example.com").await;
        let f = inbox(&store, &a).await;
        store
            .upsert_messages(a.id, f.id, &[message(0)])
            .await
            .unwrap();
        let mut from_delta = message(0);
        from_delta.attachments.clear(); // delta says has_attachments but lists none
        from_delta.attachment_count = 0;
        from_delta.subject = Some("changed".into());
        store
            .upsert_messages(a.id, f.id, &[from_delta])
            .await
            .unwrap();
        let stored = store
            .get_message(a.id, &message(0).remote_id)
            .await
            .unwrap()
            .message;
        assert_eq!(stored.subject.as_deref(), Some("changed"));
        assert_eq!(stored.attachments, message(0).attachments);
        assert_eq!(stored.attachment_count, 2, "the stored count is kept too");
        // Duplicates inside one page are fine: the last version wins.
        let mut v2 = message(1);
        v2.subject = Some("v2".into());
        store
            .upsert_messages(a.id, f.id, &[message(1), v2])
            .await
            .unwrap();
        let stored = store
            .get_message(a.id, &message(1).remote_id)
            .await
            .unwrap()
            .message;
        assert_eq!(stored.subject.as_deref(), Some("v2"));
    }
}

#[tokio::test]
async fn a_lost_lease_writes_nothing() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "lease@example.com").await;
        let f = inbox(&store, &a).await;
        let claimed = claim_for_five_minutes(&store, "worker-1").await;
        assert_eq!(claimed.len(), 1);
        let p = page(upserts(0..3), "cursor", true, true);
        let err = store
            .apply_sync_page(SyncPageWrite {
                account_id: a.id,
                folder_id: f.id,
                page: &p,
                lease: Some(LeaseCheck {
                    owner: "worker-2",
                    until: t0(),
                    renew: true,
                }),
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::LeaseLost { .. }), "{b:?}: {err}");
        assert!(store.get_folder(f.id).await.unwrap().cursor.is_none());
        let q = MessageQuery {
            account_id: Some(a.id),
            ..Default::default()
        };
        assert_eq!(store.count_messages(&q).await.unwrap(), 0);
        // The holder writes fine and extends its lease.
        let until = t0() + chrono::Duration::minutes(10);
        store
            .apply_sync_page(SyncPageWrite {
                account_id: a.id,
                folder_id: f.id,
                page: &p,
                lease: Some(LeaseCheck {
                    owner: "worker-1",
                    until,
                    renew: true,
                }),
            })
            .await
            .unwrap();
        assert_eq!(
            store.get_account(a.id).await.unwrap().lease_expires_at,
            Some(until),
            "{b:?}"
        );
    }
}

/// Pages of upserts that do not end an enumeration (on PostgreSQL: one statement each):
/// counts, last version of a duplicate, replaced attachment lists, kept lists.
#[tokio::test]
async fn pages_of_upserts_replace_attachment_lists_and_count_what_they_wrote() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "upserts@example.com").await;
        let f = inbox(&store, &a).await;
        let (a_id, f_id) = (a.id, f.id);
        let write = move |p| SyncPageWrite {
            account_id: a_id,
            folder_id: f_id,
            page: p,
            lease: None,
        };
        let mut v2 = message(1);
        v2.subject = Some("v2".into());
        let mut first = upserts(0..6);
        first.push(Change::Upsert(v2));
        let first = page(first, "c1", true, false);
        let stats = store.apply_sync_page(write(&first)).await.unwrap();
        assert_eq!(stats.upserted, 6, "{b:?}: the duplicate counts once");
        let folder = store.get_folder(f.id).await.unwrap();
        assert_eq!(folder.cursor, Some(SyncCursor("c1".into())), "{b:?}");
        assert!(
            !folder.reconciling,
            "{b:?}: a reset of an empty folder has nothing to reconcile"
        );

        // Message 0 has a new list, 3 says it has attachments without listing them,
        // 6 is new with its list, 1 has none any more.
        let mut m0 = message(0);
        m0.attachments.truncate(1);
        m0.attachments[0].name = Some("renamed.pdf".into());
        m0.attachment_count = 1;
        let mut m3 = message(3);
        m3.attachments.clear();
        m3.attachment_count = 0;
        m3.subject = Some("seen by delta".into());
        let second = vec![
            Change::Upsert(m0.clone()),
            Change::Upsert(m3),
            Change::Upsert(message(6)),
            Change::Upsert(message(1)),
        ];
        let second = page(second, "c2", false, false);
        let stats = store.apply_sync_page(write(&second)).await.unwrap();
        assert_eq!(stats.upserted, 4, "{b:?}");
        let get = |i: usize| {
            let store = &store;
            let id = if i == 0 {
                m0.remote_id.clone()
            } else {
                message(i).remote_id
            };
            async move { store.get_message(a.id, &id).await.unwrap().message }
        };
        assert_eq!(get(0).await, m0, "{b:?}: the list is replaced");
        let kept = get(3).await;
        assert_eq!(kept.subject.as_deref(), Some("seen by delta"));
        assert_eq!(kept.attachments, message(3).attachments, "{b:?}: kept");
        assert_eq!(kept.attachment_count, 2, "{b:?}");
        assert_eq!(get(6).await, message(6), "{b:?}");
        assert_eq!(get(1).await, message(1), "{b:?}: the later page wins");
        let all = store
            .list_messages(&MessageQuery {
                account_id: Some(a.id),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 7, "{b:?}");
        let rows: usize = all.iter().map(|m| m.message.attachments.len()).sum();
        assert_eq!(rows, 1 + 2 + 2, "{b:?}: no attachment row left behind");
        assert_eq!(
            store.get_folder(f.id).await.unwrap().cursor,
            Some(SyncCursor("c2".into()))
        );
        // An empty page stores its cursor alone.
        let empty = page(Vec::new(), "c3", false, false);
        let stats = store.apply_sync_page(write(&empty)).await.unwrap();
        assert_eq!(stats, Default::default());
        assert_eq!(
            store.get_folder(f.id).await.unwrap().cursor,
            Some(SyncCursor("c3".into()))
        );
    }
}

/// A page of upserts (one statement on PostgreSQL) from a worker that lost its lease,
/// or for a folder of another account, writes nothing: no message, no attachment, no
/// cursor.
#[tokio::test]
async fn a_page_of_upserts_under_a_lost_lease_writes_nothing() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "fence@example.com").await;
        let f = inbox(&store, &a).await;
        let other = account(&store, "other@example.com").await;
        let claimed = claim_for_five_minutes(&store, "worker-1").await;
        assert_eq!(claimed.len(), 2);
        let p = page(upserts(0..4), "cursor", true, false);
        let lease = |owner, renew| {
            Some(LeaseCheck {
                owner,
                until: t0() + chrono::Duration::minutes(10),
                renew,
            })
        };
        for renew in [true, false] {
            let err = store
                .apply_sync_page(SyncPageWrite {
                    account_id: a.id,
                    folder_id: f.id,
                    page: &p,
                    lease: lease("worker-2", renew),
                })
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::LeaseLost { .. }),
                "{b:?}, renew {renew}: {err}"
            );
        }
        // The folder is not the other account's.
        let err = store
            .apply_sync_page(SyncPageWrite {
                account_id: other.id,
                folder_id: f.id,
                page: &p,
                lease: lease("worker-1", true),
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{b:?}: {err}");
        let folder = store.get_folder(f.id).await.unwrap();
        assert!(folder.cursor.is_none(), "{b:?}");
        assert!(!folder.reconciling, "{b:?}");
        let q = MessageQuery::default();
        assert_eq!(store.count_messages(&q).await.unwrap(), 0, "{b:?}");
        assert_eq!(
            store.get_account(a.id).await.unwrap().lease_expires_at,
            Some(t0() + chrono::Duration::minutes(5)),
            "{b:?}: the lease is not renewed for another owner"
        );

        // The holder's page writes; it extends the lease only when asked to (with
        // more than half of its lease left, the worker does not).
        for (renew, expiry) in [(false, 5), (true, 10)] {
            let stats = store
                .apply_sync_page(SyncPageWrite {
                    account_id: a.id,
                    folder_id: f.id,
                    page: &p,
                    lease: lease("worker-1", renew),
                })
                .await
                .unwrap();
            assert_eq!(stats.upserted, 4, "{b:?}");
            assert_eq!(
                store.get_account(a.id).await.unwrap().lease_expires_at,
                Some(t0() + chrono::Duration::minutes(expiry)),
                "{b:?}: renew {renew}"
            );
        }
        assert_eq!(
            store
                .get_message(a.id, &message(0).remote_id)
                .await
                .unwrap()
                .message,
            message(0),
            "{b:?}"
        );
    }
}

/// A page without changes (a no-change sync) is one statement on PostgreSQL (two on
/// SQLite: the lease renewal, then the cursor) and no transaction, still fenced by
/// the lease; a folder in the middle of a reset still reconciles.
#[tokio::test]
async fn an_unchanged_page_is_one_statement_fenced_by_the_lease() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "quiet@example.com").await;
        let f = inbox(&store, &a).await;
        claim_for_five_minutes(&store, "worker-1").await;
        store
            .set_folder_error(f.id, Some("old error"))
            .await
            .unwrap();
        let empty = page(vec![], "delta-1", false, true);
        let write = |p, owner, until| SyncPageWrite {
            account_id: a.id,
            folder_id: f.id,
            page: p,
            lease: Some(LeaseCheck {
                owner,
                until,
                renew: true,
            }),
        };

        // The lease went to another worker between the claim and the page.
        for renew in [true, false] {
            let mut w = write(&empty, "worker-2", t0());
            w.lease.as_mut().unwrap().renew = renew;
            let err = store.apply_sync_page(w).await.unwrap_err();
            assert!(
                matches!(err, Error::LeaseLost { .. }),
                "{b:?}, renew {renew}: {err}"
            );
        }
        let folder = store.get_folder(f.id).await.unwrap();
        assert!(
            folder.cursor.is_none(),
            "{b:?}: cursor written without the lease"
        );
        assert_eq!(folder.last_error.as_deref(), Some("old error"), "{b:?}");

        let until = t0() + chrono::Duration::minutes(10);
        let before = store.statements_sent();
        let stats = store
            .apply_sync_page(write(&empty, "worker-1", until))
            .await
            .unwrap();
        let statements = store.statements_sent() - before;
        assert_eq!(stats, mailroom_store::PageStats::default());
        let expected = match b {
            mailroom_store::Backend::Postgres => 1,
            mailroom_store::Backend::Sqlite => 2,
        };
        assert_eq!(
            statements, expected,
            "{b:?}: statements for an unchanged page"
        );
        let folder = store.get_folder(f.id).await.unwrap();
        assert_eq!(folder.cursor, Some(SyncCursor("delta-1".into())), "{b:?}");
        assert_eq!(folder.last_error, None, "{b:?}");
        assert!(folder.last_synced_at.is_some(), "{b:?}");
        assert_eq!(
            store.get_account(a.id).await.unwrap().lease_expires_at,
            Some(until),
            "{b:?}: lease renewed"
        );
        // With more than half of the lease left: one statement on both backends, and
        // the account row is not written.
        let mut w = write(&empty, "worker-1", until + chrono::Duration::minutes(10));
        w.lease.as_mut().unwrap().renew = false;
        let before = store.statements_sent();
        store.apply_sync_page(w).await.unwrap();
        assert_eq!(store.statements_sent() - before, 1, "{b:?}: no renewal");
        assert_eq!(
            store.get_account(a.id).await.unwrap().lease_expires_at,
            Some(until),
            "{b:?}: lease not renewed"
        );

        // A reset in progress: the empty page that completes it removes what the
        // enumeration did not see.
        let first = page(upserts(0..3), "d", true, true);
        let restart = page(upserts(0..2), "n", true, false);
        let end = page(vec![], "delta-3", false, true);
        for p in [&first, &restart] {
            store
                .apply_sync_page(write(p, "worker-1", until))
                .await
                .unwrap();
        }
        let stats = store
            .apply_sync_page(write(&end, "worker-1", until))
            .await
            .unwrap();
        assert_eq!(stats.reconciled, 1, "{b:?}");
        let folder = store.get_folder(f.id).await.unwrap();
        assert!(!folder.reconciling, "{b:?}");
        assert_eq!(folder.cursor, Some(SyncCursor("delta-3".into())), "{b:?}");
    }
}

/// The cursors of folders whose last page had no changes are stored with the sync's
/// outcome, in the same statement on PostgreSQL, only while the lease is the
/// worker's; a folder of another account or in the middle of a reset keeps its cursor.
#[tokio::test]
async fn unchanged_cursors_are_stored_with_the_outcome_under_the_lease() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "done@example.com").await;
        let other = account(&store, "other@example.com").await;
        let rows = store
            .upsert_folders(a.id, &[folder("inbox-id", None), folder("resetting", None)])
            .await
            .unwrap();
        let (f, resetting) = (&rows[0], &rows[1]);
        let foreign = inbox(&store, &other).await;
        claim_for_five_minutes(&store, "worker-1").await;
        store
            .set_folder_error(f.id, Some("old error"))
            .await
            .unwrap();
        store.mark_folder_gone(f.id, t0()).await.unwrap();
        // A reset enumeration in progress (its first page stored, more to come) of a
        // folder that held a message (an empty one has nothing to reconcile).
        store
            .upsert_messages(a.id, resetting.id, &[message(9)])
            .await
            .unwrap();
        store
            .apply_sync_page(SyncPageWrite {
                account_id: a.id,
                folder_id: resetting.id,
                page: &page(upserts(0..2), "next-1", true, false),
                lease: None,
            })
            .await
            .unwrap();
        let cursor = |id, c: &str| mailroom_store::FolderCursor {
            folder_id: id,
            cursor: SyncCursor(c.into()),
        };
        let cursors = [
            cursor(f.id, "delta-9"),
            cursor(resetting.id, "delta-r"),
            cursor(foreign.id, "delta-x"),
        ];
        let outcome = |at| mailroom_store::SyncOutcome {
            status: mailroom_core::AccountStatus::Active,
            error: None,
            auth_error_code: None,
            finished_at: at,
            next_sync_at: Some(at),
        };

        // Another worker holds the lease now: nothing is written.
        let err = store
            .finish_sync_with_cursors(a.id, Some("worker-2"), outcome(t0()), &cursors)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::LeaseLost { .. }), "{b:?}: {err}");
        assert_eq!(store.get_folder(f.id).await.unwrap().cursor, None, "{b:?}");

        let at = t0() + chrono::Duration::seconds(7);
        let before = store.statements_sent();
        let stored = store
            .finish_sync_with_cursors(a.id, Some("worker-1"), outcome(at), &cursors)
            .await
            .unwrap();
        assert_eq!(stored, 1, "{b:?}");
        if b == mailroom_store::Backend::Postgres {
            assert_eq!(store.statements_sent() - before, 1, "{b:?}: one statement");
        }
        let row = store.get_folder(f.id).await.unwrap();
        assert_eq!(row.cursor, Some(SyncCursor("delta-9".into())), "{b:?}");
        assert_eq!(row.last_synced_at, Some(at), "{b:?}");
        assert_eq!(
            (row.last_error, row.gone_since, row.missed_syncs),
            (None, None, 0),
            "{b:?}: a page from the server clears the folder's error and gone mark"
        );
        let row = store.get_folder(resetting.id).await.unwrap();
        assert_eq!(row.cursor, Some(SyncCursor("next-1".into())), "{b:?}");
        assert!(row.reconciling, "{b:?}");
        let row = store.get_folder(foreign.id).await.unwrap();
        assert_eq!(row.cursor, None, "{b:?}: another account's folder");
        let finished = store.get_account(a.id).await.unwrap();
        assert_eq!(finished.lease_owner, None, "{b:?}: released");
        assert_eq!(finished.last_sync_at, Some(at), "{b:?}");

        // The folders of several accounts in one read, as each account's list.
        let lonely = account(&store, "nofolders@example.com").await;
        let before = store.statements_sent();
        let all = store
            .list_folders_of(&[a.id, other.id, lonely.id])
            .await
            .unwrap();
        assert_eq!(store.statements_sent() - before, 1, "{b:?}");
        assert_eq!(all.len(), 2, "{b:?}: {all:?}");
        assert_eq!(all[&a.id], store.list_folders(a.id).await.unwrap(), "{b:?}");
        assert_eq!(
            all[&other.id],
            store.list_folders(other.id).await.unwrap(),
            "{b:?}"
        );
    }
}

/// A worker records the outcomes of several syncs at once (one statement on
/// PostgreSQL): each is written only if the worker still holds that account's lease,
/// with its folders' cursors, and the errors, codes and due times as given.
#[tokio::test]
async fn outcomes_of_several_syncs_are_recorded_together_under_each_lease() {
    for store in stores().await {
        let b = store.backend();
        let (x, y, z) = (
            account(&store, "x@example.com").await,
            account(&store, "y@example.com").await,
            account(&store, "z@example.com").await,
        );
        let (fx, fy, fz) = (
            inbox(&store, &x).await,
            inbox(&store, &y).await,
            inbox(&store, &z).await,
        );
        let until = t0() + chrono::Duration::minutes(5);
        store
            .claim_due_accounts("worker-1", 2, t0(), until)
            .await
            .unwrap();
        store
            .claim_due_accounts("worker-2", 1, t0(), until)
            .await
            .unwrap();
        let held_by_2 = store.get_account(z.id).await.unwrap();
        assert_eq!(held_by_2.lease_owner.as_deref(), Some("worker-2"), "{b:?}");
        let y_due = store.get_account(y.id).await.unwrap().next_sync_at;
        let at = t0() + chrono::Duration::seconds(3);
        let finish = |id, f: i64, error: Option<&str>, next| mailroom_store::SyncFinish {
            account_id: id,
            outcome: mailroom_store::SyncOutcome {
                status: mailroom_core::AccountStatus::Active,
                error: error.map(str::to_owned),
                auth_error_code: error.map(|_| "E1".to_owned()),
                finished_at: at,
                next_sync_at: next,
            },
            cursors: vec![mailroom_store::FolderCursor {
                folder_id: f,
                cursor: SyncCursor(format!("delta-{f}")),
            }],
        };
        let next = at + chrono::Duration::minutes(5);
        let before = store.statements_sent();
        let recorded = store
            .finish_syncs(
                "worker-1",
                &[
                    finish(x.id, fx.id, None, Some(next)),
                    finish(y.id, fy.id, Some("boom"), None),
                    finish(z.id, fz.id, None, Some(next)),
                ],
            )
            .await
            .unwrap();
        assert_eq!(recorded, [Some(1), Some(1), None], "{b:?}");
        if b == mailroom_store::Backend::Postgres {
            assert_eq!(store.statements_sent() - before, 1, "{b:?}: one statement");
        }
        let (x, y, z) = (
            store.get_account(x.id).await.unwrap(),
            store.get_account(y.id).await.unwrap(),
            store.get_account(z.id).await.unwrap(),
        );
        assert_eq!(
            (x.lease_owner.as_deref(), x.next_sync_at),
            (None, Some(next)),
            "{b:?}"
        );
        assert_eq!(
            (x.last_sync_at, x.last_error.as_deref()),
            (Some(at), None),
            "{b:?}"
        );
        assert_eq!(
            (
                y.last_error.as_deref(),
                y.auth_error_code.as_deref(),
                y.last_sync_at
            ),
            (Some("boom"), Some("E1"), None),
            "{b:?}: a failed sync is not a sync"
        );
        assert_eq!(y.next_sync_at, y_due, "{b:?}: due time kept");
        assert_eq!(
            z.lease_owner.as_deref(),
            Some("worker-2"),
            "{b:?}: not ours"
        );
        assert_eq!(z.last_sync_at, None, "{b:?}");
        for (f, cursor) in [(fx.id, Some(format!("delta-{}", fx.id))), (fz.id, None)] {
            let row = store.get_folder(f).await.unwrap();
            assert_eq!(row.cursor.map(|c| c.0), cursor, "{b:?}");
        }
    }
}

/// A reset enumeration reconciles only a folder that held messages when it started:
/// the end of an initial sync (an empty folder) skips the delete of stale messages,
/// which walks the folder's messages, and the statement that clears the mark.
#[tokio::test]
async fn only_a_reset_of_a_folder_with_messages_reconciles() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "reconcile@example.com").await;
        let f = inbox(&store, &a).await;
        let write = |page| SyncPageWrite {
            account_id: a.id,
            folder_id: f.id,
            page,
            lease: None,
        };
        let pages = [
            page(upserts(0..2), "c1", true, false),
            page(upserts(2..3), "c2", false, true),
            page(upserts(0..1), "c3", true, false),
            page(upserts(1..2), "c4", false, true),
        ];
        let mut end_statements = Vec::new();
        for (round, pair) in pages.chunks(2).enumerate() {
            let (first, last) = (&pair[0], &pair[1]);
            store.apply_sync_page(write(first)).await.unwrap();
            let reconciling = store.get_folder(f.id).await.unwrap().reconciling;
            assert_eq!(reconciling, round == 1, "{b:?}: round {round}");
            let before = store.statements_sent();
            let stats = store.apply_sync_page(write(last)).await.unwrap();
            end_statements.push(store.statements_sent() - before);
            // Round 1 did not see message 2 again.
            assert_eq!(stats.reconciled, round as u64, "{b:?}: round {round}");
            assert!(!store.get_folder(f.id).await.unwrap().reconciling, "{b:?}");
        }
        // On SQLite the initial sync's messages are all new, so their attachment lists
        // replace nothing either: one statement less again.
        let skipped = match b {
            mailroom_store::Backend::Sqlite => 3,
            mailroom_store::Backend::Postgres => 2,
        };
        assert_eq!(
            end_statements[1],
            end_statements[0] + skipped,
            "{b:?}: the initial sync's last page neither deletes nor clears the mark"
        );
        let q = MessageQuery {
            folder_id: Some(f.id),
            ..Default::default()
        };
        assert_eq!(store.count_messages(&q).await.unwrap(), 2, "{b:?}");
    }
}

/// A page of upserts that PostgreSQL writes in one statement, and the `COPY` pages
/// after it, are fenced by the lease as the transaction is: another worker's write
/// stores nothing, the holder's stores the page and its cursor.
#[tokio::test]
async fn one_statement_and_copied_pages_are_fenced_by_the_lease() {
    use mailroom_store::Backend;

    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "ahead@example.com").await;
        let f = inbox(&store, &a).await;
        let claimed = claim_for_five_minutes(&store, "worker-1").await;
        assert_eq!(claimed.len(), 1);
        let write = |p, owner| SyncPageWrite {
            account_id: a.id,
            folder_id: f.id,
            page: p,
            lease: Some(LeaseCheck {
                owner,
                until: t0() + chrono::Duration::minutes(10),
                renew: false,
            }),
        };
        let first = page(upserts(0..4), "c1", true, false);
        let second = page(upserts(4..8), "c2", false, false);

        let q = MessageQuery::default();
        let mut before = (None, 0);
        for (p, cursor, stored) in [(&first, "c1", 4), (&second, "c2", 8)] {
            let err = store
                .apply_sync_page(write(p, "worker-2"))
                .await
                .unwrap_err();
            assert!(matches!(err, Error::LeaseLost { .. }), "{b:?}: {err}");
            let folder = store.get_folder(f.id).await.unwrap();
            let kept = (folder.cursor, store.count_messages(&q).await.unwrap());
            assert_eq!(kept, before, "{b:?}: another worker's page stores nothing");

            let statements = store.statements_sent();
            let stats = store.apply_sync_page(write(p, "worker-1")).await.unwrap();
            assert_eq!(stats.upserted, 4, "{b:?}");
            // The reset page is one statement; the next pages of a folder enumerated
            // from empty go by `COPY` (the cursor's statement, then the copies).
            let sent = store.statements_sent() - statements;
            if b == Backend::Postgres {
                assert_eq!(sent == 1, p.reset, "{sent} statements");
            }
            let folder = store.get_folder(f.id).await.unwrap();
            assert_eq!(folder.cursor, Some(SyncCursor(cursor.into())), "{b:?}");
            assert_eq!(store.count_messages(&q).await.unwrap(), stored, "{b:?}");
            before = (folder.cursor, stored);
        }
        let stored = store
            .get_message(a.id, &message(7).remote_id)
            .await
            .unwrap();
        assert_eq!(stored.message, message(7), "{b:?}");
    }
}

/// A run whose messages are all new replaces no list (on SQLite it does not look for
/// any), yet a message sent again in a later page, or removed and sent again in the same
/// page, ends with exactly its new list: no attachment row is left over or lost.
#[tokio::test]
async fn new_and_resent_messages_end_with_exactly_their_lists() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "lists@example.com").await;
        let f = inbox(&store, &a).await;
        let write = |page| SyncPageWrite {
            account_id: a.id,
            folder_id: f.id,
            page,
            lease: None,
        };
        let first = page(upserts(0..7), "c1", true, false);
        store.apply_sync_page(write(&first)).await.unwrap();
        let mut m0 = message(0);
        m0.attachments.truncate(1);
        m0.attachment_count = 1;
        let mut m6 = message(6);
        m6.attachments.reverse();
        let second = vec![
            Change::Remove {
                remote_id: m0.remote_id.clone(),
            },
            Change::Upsert(m0.clone()),
            Change::Upsert(message(9)),
        ];
        let second = page(second, "c2", false, false);
        store.apply_sync_page(write(&second)).await.unwrap();
        let third = vec![Change::Upsert(m6.clone()), Change::Upsert(message(12))];
        let third = page(third, "c3", false, true);
        store.apply_sync_page(write(&third)).await.unwrap();
        let expected = [
            (0, m0.attachments.clone()),
            (3, message(3).attachments),
            (6, m6.attachments.clone()),
            (9, message(9).attachments),
            (12, message(12).attachments),
        ];
        let mut total = 0;
        for (i, list) in expected {
            let remote_id = message(i).remote_id;
            let stored = store.get_message(a.id, &remote_id).await.unwrap().message;
            assert_eq!(stored.attachments, list, "{b:?}: message {i}");
            total += list.len();
        }
        let q = MessageQuery {
            folder_id: Some(f.id),
            ..Default::default()
        };
        let listed = store.list_messages(&q).await.unwrap();
        let rows: usize = listed.iter().map(|m| m.message.attachments.len()).sum();
        assert_eq!(rows, total, "{b:?}: no attachment row left over");
    }
}
