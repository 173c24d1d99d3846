use chrono::Duration;
use mailroom_core::AccountStatus;
use mailroom_store::AccountUpdate;

use crate::support::{account, stores, t0};

#[tokio::test]
async fn the_fleet_overview_counts_statuses_leases_and_the_backlog() {
    for store in stores().await {
        let b = store.backend();
        store.ping().await.unwrap();
        let now = t0();
        let empty = store.fleet_overview(now).await.unwrap();
        assert_eq!(empty.accounts(), 0, "{b:?}");
        assert_eq!(empty.by_status.len(), 3, "{b:?}: every status listed");
        for i in 0..5 {
            account(&store, &format!("u{i}@example.com")).await;
        }
        let off = account(&store, "off@example.com").await;
        let reauth = account(&store, "reauth@example.com").await;
        let later = account(&store, "later@example.com").await;
        for (id, update) in [
            (
                off.id,
                AccountUpdate {
                    status: Some(AccountStatus::Disabled),
                    ..Default::default()
                },
            ),
            (
                reauth.id,
                AccountUpdate {
                    status: Some(AccountStatus::NeedsReauth),
                    ..Default::default()
                },
            ),
            (
                later.id,
                AccountUpdate {
                    next_sync_at: Some(Some(now + Duration::minutes(5))),
                    ..Default::default()
                },
            ),
        ] {
            store.update_account(id, update).await.unwrap();
        }
        // Worker w1 leases 2 of the 5 due accounts.
        let leased = store
            .claim_due_accounts("w1", 2, now, now + Duration::minutes(1))
            .await
            .unwrap();
        assert_eq!(leased.len(), 2);
        let o = store.fleet_overview(now).await.unwrap();
        assert_eq!(
            o.by_status,
            vec![
                (AccountStatus::Active, 6),
                (AccountStatus::NeedsReauth, 1),
                (AccountStatus::Disabled, 1)
            ],
            "{b:?}"
        );
        assert_eq!(o.accounts(), 8);
        assert_eq!(o.leases_held, 2, "{b:?}");
        assert_eq!(o.due_backlog, 3, "{b:?}: 5 due, 2 of them leased");
        assert_eq!(store.expired_leases_of("w1", now).await.unwrap(), 0);
        // Two minutes later w1 has not renewed: its leases ran out, and the backlog
        // has its accounts again.
        let stalled = now + Duration::minutes(2);
        assert_eq!(store.expired_leases_of("w1", stalled).await.unwrap(), 2);
        assert_eq!(store.expired_leases_of("w2", stalled).await.unwrap(), 0);
        let o = store.fleet_overview(stalled).await.unwrap();
        assert_eq!((o.leases_held, o.due_backlog), (0, 5), "{b:?}");
        assert!(store.message_counts().await.unwrap().is_empty());
    }
}
