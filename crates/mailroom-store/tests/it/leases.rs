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

#[tokio::test]
async fn refreshed_credentials_are_stored_only_under_the_lease() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "rot@example.com").await;
        let now = t0();
        let lease = now + Duration::minutes(5);
        assert_eq!(
            store
                .claim_due_accounts("w1", 10, now, lease)
                .await
                .unwrap()
                .len(),
            1
        );
        let new = crate::support::sealed(&crate::support::vault());
        let later = lease + Duration::minutes(1);
        store
            .update_credentials_leased(
                a.id,
                &new,
                mailroom_store::LeaseCheck {
                    owner: "w1",
                    until: later,
                    renew: true,
                },
            )
            .await
            .unwrap();
        let stored = store.get_account(a.id).await.unwrap();
        assert_eq!(stored.credentials, new, "{b:?}");
        assert_eq!(stored.lease_expires_at, Some(later), "{b:?}: lease renewed");
        // Another worker's write is refused and changes nothing.
        let other = crate::support::sealed(&crate::support::vault());
        let err = store
            .update_credentials_leased(
                a.id,
                &other,
                mailroom_store::LeaseCheck {
                    owner: "w2",
                    until: later,
                    renew: true,
                },
            )
            .await
            .unwrap_err();
        assert!(err.is_lease_lost(), "{b:?}: {err}");
        assert_eq!(store.get_account(a.id).await.unwrap().credentials, new);
    }
}

#[tokio::test]
async fn a_throttled_account_is_not_claimed_before_its_deadline() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "slow@example.com").await;
        let now = t0();
        store
            .set_throttled_until(a.id, now + Duration::seconds(30))
            .await
            .unwrap();
        // An earlier deadline does not shorten it.
        store
            .set_throttled_until(a.id, now + Duration::seconds(10))
            .await
            .unwrap();
        let until = store.get_account(a.id).await.unwrap().throttled_until;
        assert_eq!(until, Some(now + Duration::seconds(30)), "{b:?}");
        let lease = now + Duration::minutes(50);
        let claimed = store
            .claim_due_accounts("w1", 10, now + Duration::seconds(29), lease)
            .await
            .unwrap();
        assert!(claimed.is_empty(), "{b:?}: claimed while throttled");
        let claimed = store
            .claim_due_accounts("w1", 10, now + Duration::seconds(30), lease)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "{b:?}");
    }
}
