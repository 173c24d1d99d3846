//! Folder state: vanished folders (mirror policy) and folders the user stopped syncing.

use mailroom_core::{Change, SyncCursor, SyncPage};
use mailroom_store::{MessageQuery, SyncPageWrite};

use crate::support::{account, folder, inbox, message, stores, t0};

fn page(from: usize, to: usize, cursor: &str) -> SyncPage {
    SyncPage {
        changes: (from..to).map(|i| Change::Upsert(message(i))).collect(),
        cursor: SyncCursor(cursor.into()),
        reset: true,
        complete: true,
    }
}

#[tokio::test]
async fn a_folder_missed_twice_in_a_row_loses_its_messages_and_a_page_clears_the_mark() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "gone@example.com").await;
        let f = inbox(&store, &a).await;
        let write = |p: &SyncPage| {
            let (store, p) = (store.clone(), p.clone());
            let (account_id, folder_id) = (a.id, f.id);
            async move {
                store
                    .apply_sync_page(SyncPageWrite {
                        account_id,
                        folder_id,
                        page: &p,
                        lease: None,
                    })
                    .await
                    .unwrap()
            }
        };
        write(&page(0, 5, "d1")).await;
        let q = MessageQuery {
            folder_id: Some(f.id),
            ..Default::default()
        };

        // First miss: marked, messages kept (it may be a hiccup, or come back).
        let (row, purged) = store.mark_folder_gone(f.id, t0()).await.unwrap();
        assert_eq!(
            (row.gone_since, row.missed_syncs, purged),
            (Some(t0()), 1, 0),
            "{b:?}"
        );
        assert_eq!(row.checked_at, Some(t0()));
        assert_eq!(store.count_messages(&q).await.unwrap(), 5, "{b:?}");

        // It came back: a stored page clears the mark.
        write(&page(0, 5, "d2")).await;
        let back = store.get_folder(f.id).await.unwrap();
        assert_eq!((back.gone_since, back.missed_syncs), (None, 0), "{b:?}");

        // Gone again, twice in a row: the second miss confirms it and purges.
        let later = t0() + chrono::Duration::minutes(5);
        store.mark_folder_gone(f.id, t0()).await.unwrap();
        let (row, purged) = store.mark_folder_gone(f.id, later).await.unwrap();
        assert_eq!(row.gone_since, Some(t0()), "{b:?}: the first miss is kept");
        assert_eq!((row.missed_syncs, purged), (2, 5), "{b:?}");
        assert_eq!(row.checked_at, Some(later));
        assert!(
            row.cursor.is_none(),
            "{b:?}: a recreated folder starts over"
        );
        assert_eq!(store.count_messages(&q).await.unwrap(), 0, "{b:?}");
    }
}

#[tokio::test]
async fn removed_folders_are_marked_then_deleted_with_their_messages_only() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "removed@example.com").await;
        let keep = inbox(&store, &a).await;
        let drop = store
            .upsert_folders(a.id, &[folder("archive-id", None)])
            .await
            .unwrap()
            .remove(0);
        for (f, from) in [(&keep, 0), (&drop, 10)] {
            store
                .apply_sync_page(SyncPageWrite {
                    account_id: a.id,
                    folder_id: f.id,
                    page: &page(from, from + 3, "d"),
                    lease: None,
                })
                .await
                .unwrap();
        }
        store
            .set_folder_error(drop.id, Some("cannot sync folder archive-id: boom"))
            .await
            .unwrap();
        assert_eq!(
            store
                .get_folder(drop.id)
                .await
                .unwrap()
                .last_error
                .as_deref(),
            Some("cannot sync folder archive-id: boom")
        );
        store
            .set_folders_removed(a.id, &[drop.id], true, t0())
            .await
            .unwrap();
        assert_eq!(
            store.get_folder(drop.id).await.unwrap().removed_at,
            Some(t0())
        );
        store
            .set_folders_removed(a.id, &[drop.id], false, t0())
            .await
            .unwrap();
        assert_eq!(store.get_folder(drop.id).await.unwrap().removed_at, None);

        let gone = store.delete_folders(a.id, &[drop.id]).await.unwrap();
        assert_eq!(gone, 3, "{b:?}");
        let left = store.list_folders(a.id).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, keep.id);
        let all = MessageQuery {
            account_id: Some(a.id),
            ..Default::default()
        };
        assert_eq!(store.count_messages(&all).await.unwrap(), 3, "{b:?}");
    }
}
