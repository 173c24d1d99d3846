use std::time::Duration;

use mailroom_store::MessageQuery;
use mailroom_sync::WorkerConfig;
use tokio_util::sync::CancellationToken;

use crate::engine::{setup, stores, syncer};
use crate::fake::{FakeConnector, Script};

#[tokio::test]
async fn a_worker_pass_syncs_every_due_account_and_releases_leases() {
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
            .run_worker(config, CancellationToken::new())
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
    }
}
