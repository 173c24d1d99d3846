use std::time::Duration;

use mailroom_store::MessageQuery;
use mailroom_sync::WorkerConfig;
use tokio_util::sync::CancellationToken;

use crate::engine::{setup, stores, syncer};
use crate::fake::{FakeConnector, Script};

#[tokio::test]
async fn a_worker_pass_syncs_every_due_account_once_and_releases_leases() {
    for store in stores().await {
        let emails: Vec<String> = (0..7).map(|i| format!("u{i}@x")).collect();
        let refs: Vec<&str> = emails.iter().map(String::as_str).collect();
        let (vault, accounts) = setup(&store, &refs).await;
        let syncer = syncer(&store, vault, |c| {
            FakeConnector::new(30, 7, c, Script::default())
        });
        let config = WorkerConfig {
            worker_id: "w-test".into(),
            concurrency: 3,
            once: true,
            poll_interval: Duration::from_millis(20),
            ..WorkerConfig::default()
        };
        let stats = syncer
            .run_worker(config.clone(), CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(stats.synced, 7, "{stats:?}");
        for a in &accounts {
            let a = store.get_account(a.id).await.unwrap();
            assert_eq!(a.lease_owner, None, "lease released");
            assert!(a.next_sync_at.unwrap() > chrono::Utc::now() + chrono::Duration::minutes(4));
        }
        let total = store
            .count_messages(&MessageQuery::default())
            .await
            .unwrap();
        assert_eq!(total, 7 * 30);

        // Nothing is due before the interval: a pass does nothing.
        let stats = syncer
            .run_worker(config.clone(), CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(stats.syncs(), 0, "{stats:?}");

        // With a zero interval an account is due again as soon as it is synced; a pass
        // still syncs each due account exactly once and ends.
        for a in &accounts {
            let update = mailroom_store::AccountUpdate {
                next_sync_at: Some(None),
                ..Default::default()
            };
            store.update_account(a.id, update).await.unwrap();
        }
        let zero = WorkerConfig {
            interval: Duration::ZERO,
            ..config
        };
        for _ in 0..2 {
            let stats = syncer
                .run_worker(zero.clone(), CancellationToken::new())
                .await
                .unwrap();
            assert_eq!(stats.synced, 7, "{stats:?}");
        }
    }
}

#[tokio::test]
async fn shutdown_stops_the_worker_and_releases_leases() {
    for store in stores().await {
        let (vault, accounts) = setup(&store, &["a@x", "b@x"]).await;
        let syncer = syncer(&store, vault, |c| {
            FakeConnector::new(10, 5, c, Script::default())
        });
        let shutdown = CancellationToken::new();
        let config = WorkerConfig {
            worker_id: "w-stop".into(),
            poll_interval: Duration::from_millis(20),
            ..WorkerConfig::default()
        };
        let worker = tokio::spawn({
            let syncer = syncer.clone();
            let shutdown = shutdown.clone();
            async move { syncer.run_worker(config, shutdown).await }
        });
        // Let it sync both accounts (their outcomes recorded), then stop it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for a in &accounts {
            while store
                .get_account(a.id)
                .await
                .unwrap()
                .last_sync_at
                .is_none()
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{} not synced",
                    a.email
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        shutdown.cancel();
        let stats = tokio::time::timeout(Duration::from_secs(10), worker)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(stats.synced, 2, "{stats:?}");
        for a in &accounts {
            assert_eq!(store.get_account(a.id).await.unwrap().lease_owner, None);
        }
    }
}

/// A worker pass over `n` accounts already synced once, with no change, `concurrency`
/// 16: (statements per account besides the claims and the claims' folder reads, claim
/// statements).
async fn no_change_pass(store: &mailroom_store::Store, n: usize) -> (f64, u64) {
    let emails: Vec<String> = (0..n).map(|i| format!("u{i}@x")).collect();
    let refs: Vec<&str> = emails.iter().map(String::as_str).collect();
    let (vault, _) = setup(store, &refs).await;
    let syncer = syncer(store, vault, |c| {
        FakeConnector::new(10, 7, c, Script::default())
    });
    let config = WorkerConfig {
        worker_id: "w-count".into(),
        concurrency: 16,
        once: true,
        interval: Duration::ZERO,
        poll_interval: Duration::from_millis(20),
        ..WorkerConfig::default()
    };
    let first = syncer
        .run_worker(config.clone(), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(first.synced as usize, n, "{first:?}");
    let before = store.statements_sent();
    let second = syncer
        .run_worker(config, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(second.synced as usize, n, "{second:?}");
    // Each claim that leased accounts is followed by one read of their folders (a
    // last claim that finds none is not: then one statement less is counted).
    let statements = store.statements_sent() - before - 2 * second.claims;
    (statements as f64 / n as f64, second.claims)
}

#[tokio::test]
async fn a_no_change_sync_costs_a_few_statements_whatever_the_number_of_accounts() {
    for n in [8, 64] {
        for store in stores().await {
            let b = store.backend();
            let (statements, claims) = no_change_pass(&store, n).await;
            // Leases come in batches: a claim waits until 16 / 2 = 8 can be leased
            // (at most 24 in flight).
            assert!(claims as usize <= n / 8 + 2, "{b:?} {n}: {claims} claims");
            // The claim returns the accounts with their fresh leases, and one
            // statement reads their folders. Each account's sync keeps its unchanged
            // cursor with its outcome, and the worker records the outcomes of the
            // syncs that ended together (at least 8 at once here, all ending at about
            // the same time) and releases their leases: one statement on PostgreSQL
            // per batch, two in a transaction per account on SQLite.
            let most = match b {
                mailroom_store::Backend::Postgres => 0.25,
                mailroom_store::Backend::Sqlite => 2.0,
            };
            eprintln!("{b:?} {n}: {statements} per account, {claims} claims");
            assert!(statements <= most, "{b:?} {n}: {statements} per account");
        }
    }
}
