//! Push benchmark: Graph change notifications end to end, beside polling, in one run.
//!
//! Run: `cargo bench -p mailroom-server --bench push` (or `cargo xtask bench push`).
//! mailroom-sim runs in this process (its notifier POSTs to the worker's listener
//! over loopback); the store is a fresh SQLite file per scenario.
//!
//! - `latency`: 20 accounts; 200 new messages, one every 25 ms, round-robin over the
//!   accounts; the time from each mutation in the simulator to its row in the
//!   database (p50, p95, max). First with push (the worker polls for due accounts
//!   every 5 s and each account is due in an hour: notifications do the work), then
//!   polling alone at a 30 s interval (latency grows with the interval: at the default
//!   5 minutes it is 10 times larger).
//! - `idle day`: 1,000 idle Graph accounts over one simulated day. Time is compressed
//!   900× (1 h of the safety net is 4 s, a day 96 s, the subscription lifetime of
//!   10,070 minutes is 671 s with renewal at half of it); after the subscriptions are
//!   made, their stored expiries are spread evenly over the second half of their
//!   lifetime, which is where a day of steady state finds them. Counts every Graph
//!   request of the day by route.
//! - `faults`: 20 accounts, 30 % of notifications dropped and 10 % duplicated (and
//!   reordered); 300 mutations (new, read, deleted); then the database is compared
//!   with the simulator, once when the notifications settle and again after one
//!   safety-net round (20 s here): lost, duplicated and stale rows.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom_server::{Server, ServerState};
use mailroom_sim::{MailboxSpec, NotificationFaults, SimConfig, Simulator};
use mailroom_sync::chrono::{self, Utc};
use mailroom_sync::graph::GraphConfig;
use mailroom_sync::imap::ImapOptions;
use mailroom_sync::oauth::{AccessToken, RefreshToken};
use mailroom_sync::store::{
    MessageQuery, NewAccount, PushStatus, SealedCredentials, Store, SubscriptionUpdate,
};
use mailroom_sync::{
    AccountKind, CancellationToken, Credentials, DefaultFactory, FernetKey, Push, PushConfig,
    Syncer, Vault, WorkerConfig,
};

struct Env {
    sim: Simulator,
    store: Store,
    vault: Arc<Vault>,
    accounts: Vec<(i64, String)>,
    _dir: Dir,
}

/// A temporary directory removed on drop.
struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn make_env(name: &str, accounts: usize, messages: usize) -> Env {
    let dir =
        std::env::temp_dir().join(format!("mailroom-push-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let addresses: Vec<String> = (0..accounts).map(|i| format!("u{i}@push.bench")).collect();
    let sim = Simulator::start(
        SimConfig::default().mailboxes(
            addresses
                .iter()
                .map(|a| MailboxSpec::new(a, messages).attachment_percent(0))
                .collect(),
        ),
    )
    .await
    .unwrap();
    let store = Store::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.join("push.sqlite").display()
    ))
    .await
    .unwrap();
    let vault = Arc::new(Vault::new(vec![FernetKey::generate()]).unwrap());
    let mut out = Vec::new();
    for address in &addresses {
        let tokens = sim
            .issue_tokens(address, "bench-app", &["Mail.ReadWrite", "offline_access"])
            .unwrap();
        let mut oauth = mailroom_sync::graph::OAuthCredentials::new("bench-app");
        oauth.token = Some(AccessToken::new(tokens.access_token));
        oauth.refresh_token = tokens.refresh_token.map(RefreshToken::new);
        oauth.expiry = Some(Utc::now() + chrono::Duration::days(2));
        let sealed =
            SealedCredentials::new(vault.encrypt(Credentials::OAuth(oauth).to_json().as_bytes()))
                .unwrap();
        let account = store
            .create_account(NewAccount {
                email: address.clone(),
                kind: AccountKind::Outlook,
                credentials: sealed,
                sync_folders: vec![],
            })
            .await
            .unwrap();
        out.push((account.id, address.clone()));
    }
    Env {
        sim,
        store,
        vault,
        accounts: out,
        _dir: Dir(dir),
    }
}

struct Running {
    push: Option<Push>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
    }
}

async fn start(env: &Env, push: Option<PushConfig>, config: WorkerConfig) -> Running {
    let factory = DefaultFactory::new(
        env.sim.base_url(),
        GraphConfig::default().graph_url(env.sim.graph_url()),
        ImapOptions::default(),
    );
    let syncer = Syncer::new(env.store.clone(), env.vault.clone(), Arc::new(factory));
    let stop = CancellationToken::new();
    let mut config = config;
    let (push, server) = match push {
        None => (None, None),
        Some(mut push_config) => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            push_config.public_url = format!("http://{}", listener.local_addr().unwrap());
            let push = Push::new(syncer.clone(), push_config);
            let server = Server::with_listener(
                listener,
                ServerState {
                    syncer: syncer.clone(),
                    ops: mailroom_server::ops::Ops::new(),
                    push: Some(push.clone()),
                },
            );
            (Some(push), Some(server))
        }
    };
    config.push = push.clone();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move {
            let serving = server.map(|s| tokio::spawn(s.run(stop.clone())));
            let _ = syncer.run_worker(config, stop.clone()).await;
            stop.cancel();
            if let Some(s) = serving {
                let _ = s.await;
            }
        }
    });
    Running { push, stop, task }
}

fn worker_config(id: &str) -> WorkerConfig {
    WorkerConfig {
        worker_id: id.into(),
        concurrency: 16,
        ..WorkerConfig::default()
    }
}

async fn count(store: &Store, account: i64) -> u64 {
    store
        .count_messages(&MessageQuery {
            account_id: Some(account),
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn wait_subscribed(env: &Env, n: usize, timeout: Duration) {
    let start = Instant::now();
    loop {
        let mut stored = 0;
        for (a, _) in &env.accounts {
            stored += env
                .store
                .list_subscriptions(*a)
                .await
                .unwrap()
                .iter()
                .filter(|s| s.status == PushStatus::Active)
                .count();
        }
        if stored >= n && env.sim.subscriptions().len() >= n {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "only {stored} of {n} subscriptions after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Adds `n` messages, one every `gap`, round-robin; returns each message's
/// latency from the mutation to its row.
async fn latencies(env: &Env, n: usize, gap: Duration, timeout: Duration) -> Vec<Duration> {
    let mut base = HashMap::new();
    for (a, _) in &env.accounts {
        base.insert(*a, count(&env.store, *a).await);
    }
    // (account, k-th new message of the account) → when it was made.
    let mut made: Vec<(i64, u64, Instant)> = Vec::new();
    let mut per_account: HashMap<i64, u64> = HashMap::new();
    let store = env.store.clone();
    let watched: Vec<i64> = env.accounts.iter().map(|a| a.0).collect();
    let seen = Arc::new(std::sync::Mutex::new(HashMap::<(i64, u64), Instant>::new()));
    let watcher = tokio::spawn({
        let seen = seen.clone();
        let base = base.clone();
        async move {
            loop {
                for a in &watched {
                    let c = count(&store, *a).await - base[a];
                    let now = Instant::now();
                    let mut s = seen.lock().unwrap();
                    for k in 1..=c {
                        s.entry((*a, k)).or_insert(now);
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    for i in 0..n {
        let (a, address) = &env.accounts[i % env.accounts.len()];
        env.sim
            .mailbox(address)
            .unwrap()
            .add_messages("inbox", 1)
            .unwrap();
        let k = per_account.entry(*a).or_default();
        *k += 1;
        made.push((*a, *k, Instant::now()));
        tokio::time::sleep(gap).await;
    }
    let start = Instant::now();
    loop {
        let done = {
            let s = seen.lock().unwrap();
            made.iter().all(|(a, k, _)| s.contains_key(&(*a, *k)))
        };
        if done || start.elapsed() > timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watcher.abort();
    let s = seen.lock().unwrap();
    let mut out: Vec<Duration> = made
        .iter()
        .map(|(a, k, t)| {
            s.get(&(*a, *k))
                .map_or(Duration::MAX, |seen| seen.saturating_duration_since(*t))
        })
        .collect();
    out.sort();
    out
}

fn print_latency(label: &str, l: &[Duration]) {
    let missing = l.iter().filter(|d| **d == Duration::MAX).count();
    println!(
        "latency {label}: {} messages, p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms{}",
        l.len(),
        percentile(l, 0.50).as_secs_f64() * 1000.0,
        percentile(l, 0.95).as_secs_f64() * 1000.0,
        l.last().unwrap().as_secs_f64() * 1000.0,
        if missing > 0 {
            format!(", {missing} not arrived")
        } else {
            String::new()
        }
    );
}

async fn latency() {
    // With push.
    let env = make_env("latency-push", 20, 10).await;
    let w = start(&env, Some(PushConfig::new("")), worker_config("bench-push")).await;
    wait_subscribed(&env, 20, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    env.sim.reset_counters();
    let push = latencies(
        &env,
        200,
        Duration::from_millis(25),
        Duration::from_secs(60),
    )
    .await;
    let c = env.sim.counters();
    let deltas: u64 = c
        .requests_by_route
        .iter()
        .filter(|(r, _)| r.contains("delta"))
        .map(|(_, n)| n)
        .sum();
    print_latency("push", &push);
    println!(
        "  notifications sent {}, delta requests {}, accepted by the endpoint {:?}",
        c.notifications_sent,
        deltas,
        w.push.as_ref().map(|p| p.stats().accepted)
    );
    w.stop().await;
    drop(env);

    // Polling alone, at 30 s.
    let env = make_env("latency-poll", 20, 10).await;
    let config = WorkerConfig {
        interval: Duration::from_secs(30),
        poll_interval: Duration::from_secs(1),
        ..worker_config("bench-poll")
    };
    let w = start(&env, None, config).await;
    // First sync of every account.
    let start = Instant::now();
    loop {
        let mut all = true;
        for (a, _) in &env.accounts {
            all &= env
                .store
                .get_account(*a)
                .await
                .unwrap()
                .last_sync_at
                .is_some();
        }
        if all {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let poll = latencies(
        &env,
        200,
        Duration::from_millis(25),
        Duration::from_secs(90),
    )
    .await;
    print_latency("polling every 30 s", &poll);
    w.stop().await;
}

const COMPRESSION: f64 = 900.0;

async fn idle_day() {
    let n = std::env::var("MAILROOM_BENCH_PUSH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000usize);
    let env = make_env("idle", n, 3).await;
    let scaled = |d: Duration| Duration::from_secs_f64(d.as_secs_f64() / COMPRESSION);
    let mut push_config = PushConfig::new("");
    let real_lifetime = push_config.lifetime;
    push_config.lifetime = scaled(real_lifetime);
    push_config.renew_before = push_config.lifetime / 2;
    push_config.safety_interval = scaled(Duration::from_secs(3600));
    let config = WorkerConfig {
        interval: scaled(Duration::from_secs(300)),
        poll_interval: Duration::from_millis(200),
        concurrency: 64,
        ..worker_config("bench-idle")
    };
    let setup = Instant::now();
    let w = start(&env, Some(push_config.clone()), config).await;
    wait_subscribed(&env, n, Duration::from_secs(600)).await;
    let setup = setup.elapsed();
    let c = env.sim.counters();
    println!(
        "idle day: {n} accounts subscribed in {:.1} s ({} subscriptions, {} validations)",
        setup.as_secs_f64(),
        c.subscriptions_created,
        c.validations
    );
    // Steady state: expiries spread over the second half of the lifetime.
    let lifetime = chrono::Duration::from_std(push_config.lifetime).unwrap();
    let now = Utc::now();
    for (i, (a, _)) in env.accounts.iter().enumerate() {
        for s in env.store.list_subscriptions(*a).await.unwrap() {
            let spread = lifetime / 2 + lifetime * (i as i32) / (2 * n as i32);
            env.store
                .save_subscription(
                    *a,
                    s.folder_id,
                    SubscriptionUpdate {
                        subscription_id: s.subscription_id.clone(),
                        expires_at: Some(now + spread),
                        client_state: s.client_state.clone(),
                        status: s.status,
                        last_error: None,
                    },
                    None,
                )
                .await
                .unwrap();
        }
    }
    env.sim.reset_counters();
    let day = Duration::from_secs_f64(86_400.0 / COMPRESSION);
    tokio::time::sleep(day).await;
    let c = env.sim.counters();
    let total: u64 = c.requests_by_route.values().sum();
    println!(
        "idle day: {total} Graph requests in one simulated day ({:.1} s real), {:.2} per account",
        day.as_secs_f64(),
        total as f64 / n as f64
    );
    for (route, count) in &c.requests_by_route {
        println!(
            "  {route}: {count} ({:.2} per account)",
            *count as f64 / n as f64
        );
    }
    println!(
        "  renewals {}, subscriptions created {}, notifications {}",
        c.subscriptions_renewed, c.subscriptions_created, c.notifications_sent
    );
    w.stop().await;
}

/// Lost (in the simulator, not in the database), stale (in the database only) and
/// wrong read states, over every account's inbox.
async fn compare(env: &Env) -> (usize, usize, usize, usize) {
    let (mut lost, mut stale, mut read, mut total) = (0, 0, 0, 0);
    for (a, address) in &env.accounts {
        let truth: BTreeMap<String, bool> = env
            .sim
            .mailbox(address)
            .unwrap()
            .folder_messages("inbox")
            .unwrap()
            .into_iter()
            .map(|m| (m.id, m.is_read))
            .collect();
        let rows = env
            .store
            .list_messages(&MessageQuery {
                account_id: Some(*a),
                limit: 100_000,
                ..Default::default()
            })
            .await
            .unwrap();
        let stored: BTreeMap<String, bool> = rows
            .iter()
            .map(|r| (r.message.remote_id.clone(), r.message.is_read))
            .collect();
        assert_eq!(stored.len(), rows.len(), "a message stored twice");
        total += truth.len();
        lost += truth.keys().filter(|k| !stored.contains_key(*k)).count();
        stale += stored.keys().filter(|k| !truth.contains_key(*k)).count();
        read += truth
            .iter()
            .filter(|(k, r)| stored.get(*k).is_some_and(|s| s != *r))
            .count();
    }
    (total, lost, stale, read)
}

async fn faults() {
    let env = make_env("faults", 20, 20).await;
    let mut push_config = PushConfig::new("");
    push_config.safety_interval = Duration::from_secs(20);
    let config = WorkerConfig {
        interval: Duration::from_secs(20),
        ..worker_config("bench-faults")
    };
    let w = start(&env, Some(push_config), config).await;
    wait_subscribed(&env, 20, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    env.sim.reset_counters();
    env.sim.set_notification_faults(NotificationFaults {
        drop_percent: 30.0,
        duplicate_percent: 10.0,
        reorder: true,
        ..NotificationFaults::default()
    });
    let started = Instant::now();
    for i in 0..300usize {
        let (_, address) = &env.accounts[i % env.accounts.len()];
        let mailbox = env.sim.mailbox(address).unwrap();
        match i % 3 {
            0 => {
                mailbox.add_messages("inbox", 1).unwrap();
            }
            1 => {
                let ids = mailbox.folder_message_ids("inbox").unwrap();
                mailbox.set_read(&ids[i % ids.len()], i % 2 == 0).unwrap();
            }
            _ => {
                let ids = mailbox.folder_message_ids("inbox").unwrap();
                mailbox.delete_message(&ids[(i * 7) % ids.len()]).unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the notifications settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let c = env.sim.counters();
    let (total, lost, stale, read) = compare(&env).await;
    println!(
        "faults: 300 mutations; notifications sent {}, dropped {}, duplicated {}",
        c.notifications_sent, c.notifications_dropped, c.notifications_duplicated
    );
    println!(
        "  {:.1} s after the first mutation, push alone: {total} messages, {lost} lost, {stale} stale, {read} wrong read state",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(25)).await;
    let (total, lost, stale, read) = compare(&env).await;
    println!(
        "  after a safety-net round ({:.1} s): {total} messages, {lost} lost, {stale} stale, {read} wrong read state, 0 duplicated (unique rows checked)",
        started.elapsed().as_secs_f64()
    );
    w.stop().await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let only = std::env::var("MAILROOM_BENCH_PUSH").unwrap_or_default();
    let run = |name: &str| only.is_empty() || only.split(',').any(|o| o == name);
    runtime.block_on(async {
        if run("latency") {
            latency().await;
        }
        if run("faults") {
            faults().await;
        }
        if run("idle") {
            idle_day().await;
        }
    });
}
