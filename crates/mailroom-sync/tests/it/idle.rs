//! IMAP IDLE in the worker, against a real Dovecot: new mail and expunges start a sync
//! within seconds (the poll interval is an hour), a connection the server drops is
//! opened again, and the number of IDLE connections is capped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom_core::Credentials;
use mailroom_graph::GraphConfig;
use mailroom_imap::ImapOptions;
use mailroom_imap::testing::{Admin, Dovecot};
use mailroom_store::{MessageQuery, NewAccount, SealedCredentials, Store};
use mailroom_sync::{
    CancellationToken, DefaultFactory, IdleWatchers, Syncer, WorkerConfig, request_sync,
};
use mailroom_vault::{FernetKey, Vault};

fn raw(i: usize) -> Vec<u8> {
    format!(
        "From: s{i}@example.test\r\nTo: ann@imap.test\r\nSubject: m{i}\r\n\
         Message-ID: <idle{i}@e2e.test>\r\nDate: Mon, 3 Mar 2025 10:00:00 +0000\r\n\r\nbody {i}\r\n"
    )
    .into_bytes()
}

async fn setup(dovecot: &Dovecot, users: &[&str]) -> (Syncer, Vec<i64>) {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let vault = Arc::new(Vault::new(vec![FernetKey::generate()]).unwrap());
    let mut ids = Vec::new();
    for user in users {
        let creds =
            Credentials::Imap(dovecot.password_credentials(user, mailroom_core::ImapTls::None));
        let account = store
            .create_account(NewAccount {
                email: format!("{user}@imap.test"),
                kind: mailroom_core::AccountKind::Imap,
                credentials: SealedCredentials::new(vault.encrypt(creds.to_json().as_bytes()))
                    .unwrap(),
                sync_folders: vec!["INBOX".into()],
            })
            .await
            .unwrap();
        ids.push(account.id);
    }
    let factory = DefaultFactory::new(
        "http://127.0.0.1:1",
        GraphConfig::default(),
        ImapOptions::default(),
    );
    (Syncer::new(store, vault, Arc::new(factory)), ids)
}

async fn stored(store: &Store, account_id: i64) -> u64 {
    store
        .count_messages(&MessageQuery {
            account_id: Some(account_id),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Waits until account `id` has `want` messages stored; how long it took.
async fn until_stored(store: &Store, id: i64, want: u64, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let n = stored(store, id).await;
        if n == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "account {id}: {n} messages stored, not {want}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Watchers of `syncer`'s accounts, at most `max` at once (renewing IDLE every
/// minute), with the wake-up they notify and the token that stops them.
fn watchers_of(
    syncer: &Syncer,
    max: usize,
) -> (IdleWatchers, Arc<tokio::sync::Notify>, CancellationToken) {
    let wake = Arc::new(tokio::sync::Notify::new());
    let shutdown = CancellationToken::new();
    let watchers = IdleWatchers::new(
        syncer.clone(),
        max,
        Duration::from_secs(60),
        wake.clone(),
        shutdown.clone(),
    );
    (watchers, wake, shutdown)
}

/// Syncs account `id` once (a watcher whose Inbox has no cursor asks for a sync at
/// once), then makes it not due for an hour.
async fn synced_and_not_due_for_an_hour(syncer: &Syncer, id: i64) {
    let report = syncer
        .sync_account(id, &mailroom_sync::SyncRequest::default())
        .await
        .unwrap();
    assert_eq!(report.outcome, mailroom_sync::Outcome::Synced, "{report:?}");
    let update = mailroom_store::AccountUpdate {
        next_sync_at: Some(Some(chrono::Utc::now() + chrono::Duration::hours(1))),
        ..Default::default()
    };
    syncer.store().update_account(id, update).await.unwrap();
}

/// Whether the account is due now.
fn due(a: &mailroom_store::Account) -> bool {
    a.next_sync_at.is_none_or(|t| t <= chrono::Utc::now())
}

fn worker_config() -> WorkerConfig {
    WorkerConfig {
        worker_id: "w-idle".into(),
        // Only IDLE can bring a sync within the test.
        interval: Duration::from_secs(3600),
        poll_interval: Duration::from_secs(3600),
        idle_connections: 4,
        ..WorkerConfig::default()
    }
}

async fn append(admin: &mut Admin, i: usize) {
    admin.append("INBOX", &raw(i), "").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn new_mail_and_expunges_wake_a_sync_within_seconds() {
    let dovecot = Dovecot::start().expect("Dovecot starts (apt-get install dovecot-imapd)");
    let mut admin = dovecot.admin("ann").await.unwrap();
    append(&mut admin, 0).await;
    let (syncer, ids) = setup(&dovecot, &["ann"]).await;
    let store = syncer.store().clone();
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn({
        let syncer = syncer.clone();
        let shutdown = shutdown.clone();
        async move { syncer.run_worker(worker_config(), shutdown).await }
    });
    until_stored(&store, ids[0], 1, Duration::from_secs(20)).await;
    // Let the watcher connect and enter IDLE.
    tokio::time::sleep(Duration::from_secs(1)).await;

    append(&mut admin, 1).await;
    let took = until_stored(&store, ids[0], 2, Duration::from_secs(10)).await;
    eprintln!("new mail stored {took:?} after the append");

    let uid = admin.uids("INBOX").await.unwrap()[0];
    admin.expunge("INBOX", &uid.to_string()).await.unwrap();
    until_stored(&store, ids[0], 1, Duration::from_secs(10)).await;
    // A sync's own commands do not wake the watcher again: no loop of syncs.
    tokio::time::sleep(Duration::from_secs(3)).await;

    shutdown.cancel();
    let stats = worker.await.unwrap().unwrap();
    assert!((3..=5).contains(&stats.synced), "{stats:?}");
    let account = store.get_account(ids[0]).await.unwrap();
    assert_eq!(account.lease_owner, None, "lease released");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_dropped_by_the_server_is_reopened() {
    let dovecot = Dovecot::start().expect("Dovecot starts (apt-get install dovecot-imapd)");
    let mut admin = dovecot.admin("ann").await.unwrap();
    append(&mut admin, 0).await;
    let (syncer, ids) = setup(&dovecot, &["ann"]).await;
    let store = syncer.store().clone();
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn({
        let syncer = syncer.clone();
        let shutdown = shutdown.clone();
        async move { syncer.run_worker(worker_config(), shutdown).await }
    });
    until_stored(&store, ids[0], 1, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Every imap process dies (the admin session too): the watcher reconnects after
    // its back-off, and a change made while it was away is synced.
    assert!(dovecot.kick_all().unwrap() >= 2);
    drop(admin);
    let mut admin = dovecot.admin("ann").await.unwrap();
    append(&mut admin, 1).await;
    until_stored(&store, ids[0], 2, Duration::from_secs(15)).await;
    // And the new connection idles: later mail comes too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    append(&mut admin, 2).await;
    until_stored(&store, ids[0], 3, Duration::from_secs(10)).await;

    shutdown.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_are_capped_and_unwatched_accounts_wait_for_polling() {
    let dovecot = Dovecot::start().expect("Dovecot starts (apt-get install dovecot-imapd)");
    let (syncer, ids) = setup(&dovecot, &["ann", "bob", "cy"]).await;
    let store = syncer.store().clone();
    for &id in &ids {
        synced_and_not_due_for_an_hour(&syncer, id).await;
    }
    let (watchers, wake, shutdown) = watchers_of(&syncer, 2);
    for &id in &ids {
        watchers.after_sync(id);
        watchers.after_sync(id);
    }
    assert_eq!(watchers.watching(), 2, "{watchers:?}");
    assert!(watchers.is_watching(ids[0]) && watchers.is_watching(ids[1]));
    assert!(!watchers.is_watching(ids[2]));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Mail for the third account does not make it due: it waits for its poll.
    let mut cy = dovecot.admin("cy").await.unwrap();
    append(&mut cy, 1).await;
    // Mail for a watched one does.
    let mut bob = dovecot.admin("bob").await.unwrap();
    append(&mut bob, 2).await;
    tokio::time::timeout(Duration::from_secs(10), wake.notified())
        .await
        .expect("a wake-up");
    let started = Instant::now();
    while !due(&store.get_account(ids[1]).await.unwrap()) {
        assert!(started.elapsed() < Duration::from_secs(10), "bob made due");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !due(&store.get_account(ids[2]).await.unwrap()),
        "cy is not watched"
    );
    assert!(
        !due(&store.get_account(ids[0]).await.unwrap()),
        "ann had no mail"
    );

    // At shutdown the watchers end.
    shutdown.cancel();
    let started = Instant::now();
    while watchers.watching() > 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "watchers end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // request_sync is the one way a wake-up reaches the worker.
    request_sync(&store, ids[2], &wake).await.unwrap();
    assert!(due(&store.get_account(ids[2]).await.unwrap()));
}

/// Mail that came after the sync and before the watcher's `EXAMINE` raises no IDLE
/// event: the watcher's first connection sees the Inbox past the stored cursor and asks
/// for a sync.
#[tokio::test(flavor = "multi_thread")]
async fn mail_that_came_before_the_watcher_connected_asks_for_a_sync() {
    let dovecot = Dovecot::start().expect("Dovecot starts (apt-get install dovecot-imapd)");
    let (syncer, ids) = setup(&dovecot, &["dee"]).await;
    let store = syncer.store().clone();
    synced_and_not_due_for_an_hour(&syncer, ids[0]).await;
    // The gap: mail after the sync, before the watcher.
    let mut dee = dovecot.admin("dee").await.unwrap();
    append(&mut dee, 1).await;

    let (watchers, wake, shutdown) = watchers_of(&syncer, 1);
    watchers.after_sync(ids[0]);
    tokio::time::timeout(Duration::from_secs(10), wake.notified())
        .await
        .expect("a wake-up");
    let account = store.get_account(ids[0]).await.unwrap();
    assert!(due(&account), "made due: {account:?}");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watched_inbox_is_polled_only_at_the_safety_interval() {
    let dovecot = Dovecot::start().expect("Dovecot starts (apt-get install dovecot-imapd)");
    let mut admin = dovecot.admin("ann").await.unwrap();
    append(&mut admin, 0).await;
    let (syncer, ids) = setup(&dovecot, &["ann"]).await;
    let store = syncer.store().clone();
    let shutdown = CancellationToken::new();
    // Polled every second, unless IDLE watches the account.
    let config = WorkerConfig {
        interval: Duration::from_secs(1),
        poll_interval: Duration::from_millis(200),
        idle_safety_interval: Duration::from_secs(3600),
        ..worker_config()
    };
    let worker = tokio::spawn({
        let syncer = syncer.clone();
        let shutdown = shutdown.clone();
        async move { syncer.run_worker(config, shutdown).await }
    });
    until_stored(&store, ids[0], 1, Duration::from_secs(20)).await;
    // The first sync is due again a second later; from then on the watcher is there.
    tokio::time::sleep(Duration::from_secs(3)).await;
    append(&mut admin, 1).await;
    until_stored(&store, ids[0], 2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    shutdown.cancel();
    let stats = worker.await.unwrap().unwrap();
    // Polled every second, 7 s would be 7 syncs or more.
    assert!((2..=4).contains(&stats.synced), "{stats:?}");
    let account = store.get_account(ids[0]).await.unwrap();
    let next = account.next_sync_at.expect("a next sync time");
    assert!(
        next > chrono::Utc::now() + chrono::Duration::minutes(30),
        "next sync at {next}, not an hour away"
    );
}
