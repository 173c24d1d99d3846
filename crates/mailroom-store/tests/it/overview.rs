use chrono::Duration;
use mailroom_core::AccountStatus;
use mailroom_store::AccountUpdate;

use crate::support::{account, inbox, message, stores, t0};

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

#[tokio::test]
async fn accounts_are_listed_by_address_a_page_at_a_time() {
    for store in stores().await {
        let b = store.backend();
        let mut ids = Vec::new();
        for email in ["d@x.test", "a@x.test", "e@x.test", "c@x.test", "b@x.test"] {
            ids.push((email, account(&store, email).await));
        }
        let id_of = |email: &str| ids.iter().find(|(e, _)| *e == email).unwrap().1.id;
        for email in ["b@x.test", "e@x.test"] {
            store
                .update_account(
                    id_of(email),
                    AccountUpdate {
                        status: Some(AccountStatus::NeedsReauth),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
        }
        let emails = |accounts: Vec<mailroom_store::Account>| {
            accounts.into_iter().map(|a| a.email).collect::<Vec<_>>()
        };
        let first = store.list_accounts_by_email(None, None, 2).await.unwrap();
        assert_eq!(emails(first), ["a@x.test", "b@x.test"], "{b:?}");
        let second = store
            .list_accounts_by_email(Some("b@x.test"), None, 2)
            .await
            .unwrap();
        assert_eq!(emails(second), ["c@x.test", "d@x.test"], "{b:?}");
        let last = store
            .list_accounts_by_email(Some("d@x.test"), None, 2)
            .await
            .unwrap();
        assert_eq!(emails(last), ["e@x.test"], "{b:?}");
        let reauth = store
            .list_accounts_by_email(None, Some(AccountStatus::NeedsReauth), 10)
            .await
            .unwrap();
        assert_eq!(emails(reauth), ["b@x.test", "e@x.test"], "{b:?}");

        // Message counts of the accounts asked for only.
        for (email, n) in [("a@x.test", 3), ("c@x.test", 2), ("d@x.test", 4)] {
            let a = ids.iter().find(|(e, _)| *e == email).unwrap().1.clone();
            let folder = inbox(&store, &a).await;
            let messages: Vec<_> = (0..n).map(message).collect();
            store
                .upsert_messages(a.id, folder.id, &messages)
                .await
                .unwrap();
        }
        let counts = store
            .message_counts_of(&[id_of("a@x.test"), id_of("b@x.test"), id_of("c@x.test")])
            .await
            .unwrap();
        assert_eq!(counts.len(), 2, "{b:?}: {counts:?}");
        assert_eq!(counts[&id_of("a@x.test")], 3, "{b:?}");
        assert_eq!(counts[&id_of("c@x.test")], 2, "{b:?}");
        assert!(store.message_counts_of(&[]).await.unwrap().is_empty());
        assert_eq!(store.message_counts().await.unwrap().len(), 3, "{b:?}");
    }
}
