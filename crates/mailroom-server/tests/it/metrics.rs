//! `/metrics` during and after a worker pass against the simulator, checked against
//! the simulator's own counters.

use std::time::Duration;

use mailroom_server::ops::{Ops, WorkerHealth, install_recorder};
use mailroom_sim::{Faults, MailboxSpec, RetryAfter, SimConfig, Simulator};
use mailroom_sync::{CancellationToken, Store, WorkerConfig};

use crate::support::{Scrape, add_account, get, serve, sim_credentials, syncer};

const USERS: [&str; 2] = ["alice@contoso.test", "bob@contoso.test"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_during_and_after_a_sync_match_the_simulator() {
    let faults = Faults {
        error_rate: 0.08,
        statuses: vec![503],
        retry_after: RetryAfter::Fractional(0.2),
        latency: Duration::from_millis(25),
        ..Faults::none()
    };
    let sim = Simulator::start(
        SimConfig::default()
            .seed(19)
            // No attachments: no `$batch`, whose items the simulator counts
            // (and faults) as requests of their own.
            .mailboxes(
                USERS
                    .iter()
                    .map(|u| MailboxSpec::new(*u, 120).attachment_percent(0))
                    .collect(),
            )
            .faults(faults),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("m.sqlite").display()
    );
    let store = Store::connect(&url).await.unwrap();
    let syncer = syncer(&store, Some(&sim));
    let mut inbox = 0;
    for (i, user) in USERS.iter().enumerate() {
        // Alice's access token is stale: her first request refreshes it.
        add_account(&syncer, user, &sim_credentials(&sim, user, i == 0)).await;
        inbox += sim
            .mailbox(user)
            .unwrap()
            .folder_message_ids("inbox")
            .unwrap()
            .len();
    }
    let handle = install_recorder().unwrap();
    let health = WorkerHealth::new("w-metrics", Duration::from_secs(60));
    let ops = Ops::new().with_metrics(handle).with_worker(health);
    let (addr, _shutdown) = serve(&syncer, ops).await;

    let before = Scrape::parse(&get(addr, "/metrics").await.1);
    assert_eq!(
        before.sum("mailroom_accounts", &[("status", "active")]),
        2.0
    );
    assert_eq!(before.sum("mailroom_accounts_due_backlog", &[]), 2.0);
    assert_eq!(before.sum("mailroom_database_up", &[]), 1.0);

    let worker = {
        let syncer = syncer.clone();
        tokio::spawn(async move {
            let config = WorkerConfig {
                worker_id: "w-metrics".into(),
                concurrency: 2,
                once: true,
                poll_interval: Duration::from_millis(20),
                ..WorkerConfig::default()
            };
            syncer.run_worker(config, CancellationToken::new()).await
        })
    };
    // Scrapes while the worker runs: at least one sees the sync half done.
    let mut during = None;
    while !worker.is_finished() {
        let s = Scrape::parse(&get(addr, "/metrics").await.1);
        let requests = s.sum("mailroom_graph_requests_total", &[]);
        let syncs = s.sum("mailroom_account_syncs_total", &[]);
        if requests > 0.0 && syncs < 2.0 && s.sum("mailroom_leases_held", &[]) >= 1.0 {
            during = Some(s);
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let stats = worker.await.unwrap().unwrap();
    assert_eq!(stats.synced, 2, "{stats:?}");
    let during = during.expect("a scrape while accounts were leased and syncing");
    assert!(during.sum("mailroom_messages_upserted_total", &[]) < inbox as f64);

    let after = Scrape::parse(&get(addr, "/metrics").await.1);
    let sim_counters = sim.counters();
    let sum = |m: &std::collections::BTreeMap<String, u64>| m.values().sum::<u64>() as f64;
    // Every Graph request the simulator answered, counted by us under its status.
    let graph_routes = |part: &str| -> f64 {
        sim_counters
            .requests_by_route
            .iter()
            .filter(|(route, _)| route.contains(" /v1.0/") && route.contains(part))
            .map(|(_, n)| *n as f64)
            .sum()
    };
    assert_eq!(sim_counters.batch_items, 0);
    assert!(graph_routes("") > 10.0, "{sim_counters:?}");
    assert_eq!(
        after.sum("mailroom_graph_requests_total", &[]),
        graph_routes(""),
        "{:#?}\n{sim_counters:#?}",
        after.0
    );
    assert_eq!(
        after.sum("mailroom_graph_requests_total", &[("endpoint", "delta")]),
        graph_routes("/delta")
    );
    let injected = sum(&sim_counters.injected_faults);
    assert!(injected >= 1.0, "some 503s injected: {sim_counters:?}");
    assert_eq!(
        after.sum("mailroom_graph_requests_total", &[("status", "503")]),
        injected
    );
    assert_eq!(
        after.sum(
            "mailroom_graph_throttled_responses_total",
            &[("status", "503")]
        ),
        injected
    );
    assert_eq!(
        after.sum("mailroom_graph_retry_after_seconds_count", &[]),
        injected
    );
    let waited = after.sum("mailroom_graph_retry_after_seconds_sum", &[]);
    assert!((waited - 0.2 * injected).abs() < 1e-6, "{waited}");
    // Token refreshes: alice's one.
    let refreshes = sum(&sim_counters.refreshes);
    assert_eq!(refreshes, 1.0, "{sim_counters:?}");
    assert_eq!(
        after.sum("mailroom_token_refreshes_total", &[("result", "ok")]),
        refreshes
    );
    // What the syncs did.
    assert_eq!(
        after.sum("mailroom_account_syncs_total", &[("outcome", "synced")]),
        2.0
    );
    assert_eq!(
        after.sum("mailroom_messages_upserted_total", &[]),
        inbox as f64
    );
    assert_eq!(
        after.sum(
            "mailroom_folder_sync_duration_seconds_count",
            &[("result", "ok")]
        ),
        2.0
    );
    // Gauges read from the database now.
    assert_eq!(after.sum("mailroom_leases_held", &[]), 0.0);
    assert_eq!(after.sum("mailroom_accounts_due_backlog", &[]), 0.0);
    for user in USERS {
        let age = after.sum(
            "mailroom_account_last_sync_age_seconds",
            &[("account", user)],
        );
        assert!((0.0..60.0).contains(&age), "{user}: {age}");
    }
    assert!(after.has("mailroom_worker_last_poll_age_seconds"));
    sim.shutdown().await;
}

#[tokio::test]
async fn per_account_gauges_stop_above_the_limit() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let syncer = syncer(&store, None);
    let creds = mailroom_sync::Credentials::OAuth(mailroom_core::OAuthCredentials::new("c"));
    for i in 0..3 {
        let a = add_account(&syncer, &format!("u{i}@x.test"), &creds).await;
        store
            .finish_sync(
                a.id,
                None,
                mailroom_sync::store::SyncOutcome {
                    status: mailroom_sync::AccountStatus::Active,
                    error: None,
                    auth_error_code: None,
                    finished_at: chrono::Utc::now(),
                    next_sync_at: None,
                },
            )
            .await
            .unwrap();
    }
    let (addr, _s) = serve(&syncer, Ops::new().per_account_limit(3)).await;
    let s = Scrape::parse(&get(addr, "/metrics").await.1);
    assert_eq!(
        s.0.keys()
            .filter(|k| k.starts_with("mailroom_account_last_sync_age_seconds{"))
            .count(),
        3
    );
    let (addr, _s) = serve(&syncer, Ops::new().per_account_limit(2)).await;
    let s = Scrape::parse(&get(addr, "/metrics").await.1);
    assert!(
        !s.has("mailroom_account_last_sync_age_seconds"),
        "{:?}",
        s.0
    );
    assert_eq!(s.sum("mailroom_accounts", &[]), 3.0);
}
