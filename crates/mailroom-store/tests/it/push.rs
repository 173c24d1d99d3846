use chrono::Duration;
use mailroom_store::{AccountUpdate, LeaseCheck, PushStatus, SubscriptionUpdate};

use crate::support::{account, inbox, sealed, stores, t0, vault};

fn active(id: &str) -> SubscriptionUpdate {
    SubscriptionUpdate {
        subscription_id: Some(id.into()),
        expires_at: Some(t0() + Duration::days(7)),
        client_state: Some(sealed(&vault())),
        status: PushStatus::Active,
        last_error: None,
    }
}

#[tokio::test]
async fn subscription_writes_are_fenced_by_the_lease() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "a@example.com").await;
        let folder = inbox(&store, &a).await;
        let now = chrono::Utc::now();
        let until = now + Duration::minutes(5);
        store
            .claim_due_accounts("w1", 10, now, until)
            .await
            .unwrap();
        let lease = |owner| LeaseCheck {
            owner,
            until,
            renew: true,
        };
        store
            .save_subscription(a.id, folder.id, active("s1"), Some(lease("w1")))
            .await
            .unwrap();
        let err = store
            .save_subscription(a.id, folder.id, active("s2"), Some(lease("w2")))
            .await
            .unwrap_err();
        assert!(err.is_lease_lost(), "{b:?}: {err}");
        let rows = store.list_subscriptions(a.id).await.unwrap();
        assert_eq!(rows.len(), 1, "{b:?}");
        assert_eq!(rows[0].subscription_id.as_deref(), Some("s1"), "{b:?}");
        assert_eq!(rows[0].status, PushStatus::Active);
        // An update of the same folder replaces the row (one per folder).
        let mut failed = active("s1");
        failed.status = PushStatus::Failed;
        failed.last_error = Some("cannot renew".into());
        store
            .save_subscription(a.id, folder.id, failed, Some(lease("w1")))
            .await
            .unwrap();
        let row = store.find_subscription("s1").await.unwrap().unwrap();
        assert_eq!(
            (row.status, row.last_error.as_deref()),
            (PushStatus::Failed, Some("cannot renew"))
        );
        store
            .set_subscription_status("s1", PushStatus::Removed)
            .await
            .unwrap();
        assert_eq!(
            store.find_subscription("s1").await.unwrap().unwrap().status,
            PushStatus::Removed
        );
        assert!(store.find_subscription("nope").await.unwrap().is_none());
        // Deleting the folder deletes its subscription.
        store.delete_folders(a.id, &[folder.id]).await.unwrap();
        assert!(
            store.list_subscriptions(a.id).await.unwrap().is_empty(),
            "{b:?}"
        );
    }
}

#[tokio::test]
async fn dirty_marks_wake_the_account_and_survive_a_sync_that_started_before_them() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "a@example.com").await;
        let folder = inbox(&store, &a).await;
        store
            .save_subscription(a.id, folder.id, active("s1"), None)
            .await
            .unwrap();
        let later = t0() + Duration::hours(1);
        store
            .update_account(
                a.id,
                AccountUpdate {
                    next_sync_at: Some(Some(later)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        // A mark makes the account due at the mark, not later.
        store.mark_folders_dirty(&[folder.id], t0()).await.unwrap();
        assert_eq!(
            store.get_account(a.id).await.unwrap().next_sync_at,
            Some(t0()),
            "{b:?}"
        );
        // A later mark does not push the due time back.
        store
            .mark_folders_dirty(&[folder.id], t0() + Duration::seconds(5))
            .await
            .unwrap();
        assert_eq!(
            store.get_account(a.id).await.unwrap().next_sync_at,
            Some(t0()),
            "{b:?}"
        );
        // A sync that started before the last mark leaves it.
        let left = store
            .clear_dirty_before(a.id, t0() + Duration::seconds(1))
            .await
            .unwrap();
        assert_eq!(left, 1, "{b:?}");
        // One that started after it clears it.
        let left = store
            .clear_dirty_before(a.id, t0() + Duration::seconds(6))
            .await
            .unwrap();
        assert_eq!(left, 0, "{b:?}");
        assert_eq!(
            store.list_subscriptions(a.id).await.unwrap()[0].dirty_at,
            None
        );
        // wake_account moves a due time earlier only.
        store.wake_account(a.id, later).await.unwrap();
        assert_eq!(
            store.get_account(a.id).await.unwrap().next_sync_at,
            Some(t0()),
            "{b:?}"
        );
    }
}
