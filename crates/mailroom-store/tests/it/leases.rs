use std::collections::HashSet;

use chrono::Duration;
use mailroom_core::AccountStatus;
use mailroom_store::{AccountUpdate, SyncOutcome};

use crate::support::{account, stores, t0};

#[tokio::test]
async fn workers_get_disjoint_accounts_and_take_over_dead_leases() {
    for store in stores().await {
        let b = store.backend();
        for i in 0..30 {
            account(&store, &format!("user{i}@example.com")).await;
        }
        let disabled = account(&store, "off@example.com").await;
        store
            .update_account(
                disabled.id,
                AccountUpdate {
                    status: Some(AccountStatus::Disabled),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let now = t0();
        let lease = now + Duration::minutes(5);
        // Three workers claim at the same time.
        let claims = futures_join(&store, now, lease).await;
        let mut seen = HashSet::new();
        for claim in &claims {
            for a in claim {
                assert!(seen.insert(a.id), "{b:?}: account {} leased twice", a.id);
            }
        }
        assert_eq!(
            seen.len(),
            30,
            "{b:?}: every active account leased once, disabled skipped"
        );
        assert!(!seen.contains(&disabled.id));
        assert!(
            store
                .claim_due_accounts("w4", 100, now, lease)
                .await
                .unwrap()
                .is_empty()
        );

        // worker w0 died: after its lease expires, another worker takes its accounts.
        let later = lease + Duration::seconds(1);
        let taken = store
            .claim_due_accounts("w9", 100, later, later + Duration::minutes(5))
            .await
            .unwrap();
        assert_eq!(taken.len(), 30, "{b:?}");
        let first = &taken[0];
        assert!(
            store
                .renew_lease(first.id, "w0", later)
                .await
                .unwrap_err()
                .is_lease_lost()
        );

        // Finishing releases the lease and schedules the next run.
        let next = later + Duration::minutes(5);
        store
            .finish_sync(
                first.id,
                Some("w9"),
                SyncOutcome {
                    status: AccountStatus::Active,
                    error: None,
                    auth_error_code: None,
                    finished_at: later,
                    next_sync_at: Some(next),
                },
            )
            .await
            .unwrap();
        let a = store.get_account(first.id).await.unwrap();
        assert_eq!((a.lease_owner, a.next_sync_at), (None, Some(next)));
        // Not due before `next`, even though unleased.
        let due = store
            .claim_due_accounts("w5", 100, next - Duration::seconds(1), next)
            .await
            .unwrap();
        assert!(due.is_empty(), "{b:?}: {due:?}");
        let due = store
            .claim_due_accounts(
                "w5",
                100,
                next + Duration::minutes(6),
                next + Duration::minutes(11),
            )
            .await
            .unwrap();
        assert_eq!(due.len(), 30, "{b:?}");
    }
}

async fn futures_join(
    store: &mailroom_store::Store,
    now: chrono::DateTime<chrono::Utc>,
    lease: chrono::DateTime<chrono::Utc>,
) -> Vec<Vec<mailroom_store::Account>> {
    let (a, b, c) = tokio::join!(
        store.claim_due_accounts("w0", 12, now, lease),
        store.claim_due_accounts("w1", 12, now, lease),
        store.claim_due_accounts("w2", 12, now, lease),
    );
    vec![a.unwrap(), b.unwrap(), c.unwrap()]
}
