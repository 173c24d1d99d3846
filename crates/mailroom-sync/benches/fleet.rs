//! The worker fleet on PostgreSQL: the no-change cycle of N accounts with 1, 2 and 4
//! workers (issue 17).
//!
//! Run: `cargo xtask bench fleet` (or `cargo bench -p mailroom-sync --bench fleet`),
//! with the test PostgreSQL at `MAILROOM_TEST_POSTGRES_URL` (default: the one the
//! store's tests use). For each N of `MAILROOM_BENCH_FLEET_SIZES` (default
//! 5000,20000,100000):
//!
//! 1. starts `mailroom-sim` with N mailboxes of `MAILROOM_BENCH_FLEET_MESSAGES`
//!    messages (default 1; the no-change cycle does not depend on it) in its own
//!    process, asks it for a token per mailbox (`POST /_sim/tokens`: no device code)
//!    and inserts the N accounts straight into a fresh schema, 5,000 rows a statement;
//! 2. syncs them all once (one worker, 64 at once, no latency): the initial pass;
//! 3. adds 20 ms of latency to every simulated request, then for each worker count of
//!    `MAILROOM_BENCH_FLEET_WORKERS` (default 1,2,4) runs a no-change cycle: that many
//!    workers (tasks of this process, each with its own worker id, connection pool and
//!    HTTP client, `MAILROOM_BENCH_FLEET_CONCURRENCY` at once each, default 8) run
//!    `worker --once` passes together until every account is synced once. With 8
//!    slots a worker is bound by its slots and the latency (8 / 20 ms = 400 accounts/s
//!    at most), not by the machine, up to the point where the machine's cores are
//!    the limit (see docs/benchmarks.md).
//!
//! Per cycle it prints the wall time; the PostgreSQL CPU per account: user + system
//! time of the server processes serving the workers' connections (found by their
//! `application_name` in `pg_stat_activity`, read from `/proc/PID/stat`), which the
//! workers open for the cycle and keep until its end; Graph requests per account
//! (the simulator's counters); SQL statements per account and claim statements (the
//! store's and the workers' counters); and the scans of `accounts` by kind
//! (`pg_stat_user_tables` of the schema, read once the workers' connections are closed);
//! the worker CPU per account (this process's CPU during the cycle); and, when
//! `pg_stat_statements` is loaded, the statements the cycle ran most, per account.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom_core::AccountKind;
use mailroom_graph::GraphConfig;
use mailroom_imap::ImapOptions;
use mailroom_sim::process::{SimProcess, cpu_seconds};
use mailroom_sim::{Counters, Faults};
use mailroom_store::Store;
use mailroom_store::testing::StatementStats;
use mailroom_sync::{DefaultFactory, Syncer, WorkerConfig, WorkerStats};
use mailroom_vault::{FernetKey, Vault};
use sea_orm::sqlx;
use tokio_util::sync::CancellationToken;

mod common;
use common::{CLIENT_ID, graph_requests, sealed_credentials, statement_stats, statements_since};

const APP: &str = "mailroom-fleet-bench";

struct Bench {
    sim: SimProcess,
    http: reqwest::Client,
    /// The schema's URL, with our `application_name`.
    url: String,
    /// Without it: for our own queries about the server.
    admin: sqlx::PgPool,
    vault: Arc<Vault>,
    n: usize,
}

impl Bench {
    async fn counters(&self) -> Counters {
        self.http
            .get(format!("{}/counters", self.sim.control_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// CPU seconds of the server processes serving our connections.
    async fn pg_cpu(&self) -> (f64, usize) {
        let pids: Vec<(i32,)> =
            sqlx::query_as("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
                .bind(APP)
                .fetch_all(&self.admin)
                .await
                .unwrap();
        let cpu = pids.iter().map(|p| cpu_seconds(Some(p.0 as u32))).sum();
        (cpu, pids.len())
    }

    /// (sequential scans, index scans) of the schema's `accounts` so far.
    async fn account_scans(&self) -> (i64, i64) {
        let schema = self
            .url
            .split("search_path%3D")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned();
        sqlx::query_as(
            "SELECT coalesce(seq_scan, 0), coalesce(idx_scan, 0) FROM pg_stat_user_tables \
             WHERE schemaname = $1 AND relname = 'accounts'",
        )
        .bind(schema)
        .fetch_one(&self.admin)
        .await
        .unwrap()
    }

    /// A worker's syncer: its own HTTP client (connection pool), shared by all its
    /// accounts, as `mailroom worker` does.
    fn syncer(&self, store: &Store) -> Syncer {
        let factory = DefaultFactory::new(
            self.sim.authority_url(),
            GraphConfig::default()
                .graph_url(self.sim.graph_url())
                .http_client(reqwest::Client::new()),
            ImapOptions::default(),
        );
        Syncer::new(store.clone(), self.vault.clone(), Arc::new(factory))
    }
}

/// Messages per simulated mailbox (`MAILROOM_BENCH_FLEET_MESSAGES`, default 1): the
/// no-change cycle does not depend on it, the initial pass does.
fn messages() -> usize {
    list("MAILROOM_BENCH_FLEET_MESSAGES", "1")
        .first()
        .copied()
        .unwrap_or(1)
}

async fn setup(n: usize) -> Bench {
    let sim = SimProcess::spawn(
        SimProcess::binary().unwrap(),
        [
            "--mailboxes",
            &n.to_string(),
            "--messages",
            &messages().to_string(),
            "--all-in",
            "inbox",
        ],
    )
    .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let base = mailroom_store::testing::fresh_postgres_url().await;
    let url = format!("{base}&application_name={APP}");
    let admin = sqlx::PgPool::connect(&mailroom_store::testing::postgres_base_url())
        .await
        .unwrap();
    Store::connect(&url).await.unwrap().close().await.unwrap();
    let bench = Bench {
        sim,
        http,
        url,
        admin,
        vault: Arc::new(Vault::new(vec![FernetKey::generate()]).unwrap()),
        n,
    };
    seed(&bench).await;
    bench
}

/// A token per mailbox from the simulator, the accounts inserted in batches.
async fn seed(b: &Bench) {
    let start = Instant::now();
    let rows = sealed_tokens(&b.sim, &b.http, &b.vault).await;
    let pool = sqlx::PgPool::connect(&b.url).await.unwrap();
    for chunk in rows.chunks(5000) {
        let emails: Vec<&str> = chunk.iter().map(|r| r.0.as_str()).collect();
        let sealed: Vec<&str> = chunk.iter().map(|r| r.1.as_str()).collect();
        sqlx::query(
            "INSERT INTO accounts (email, kind, credentials, status, created_at, updated_at) \
             SELECT e, $3, c, 'active', now(), now() FROM UNNEST($1::text[], $2::text[]) AS t(e, c)",
        )
        .bind(&emails)
        .bind(&sealed)
        .bind(AccountKind::Outlook.as_str())
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query("ANALYZE accounts")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    println!(
        "  {} accounts seeded (a simulator token each, inserted 5,000 a statement) in {:.1} s",
        b.n,
        start.elapsed().as_secs_f64()
    );
}

/// (address, sealed credentials) for every mailbox of `sim`, with a token each.
async fn sealed_tokens(
    sim: &SimProcess,
    http: &reqwest::Client,
    vault: &Arc<Vault>,
) -> Vec<(String, String)> {
    let mailboxes = sim.mailboxes().to_vec();
    let limit = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, address) in mailboxes.into_iter().enumerate() {
        let (http, control, vault, limit) = (
            http.clone(),
            sim.control_url().to_owned(),
            vault.clone(),
            limit.clone(),
        );
        tasks.spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let sealed = sealed_credentials(&http, &control, &address, &vault).await;
            (i, address, sealed)
        });
    }
    let mut rows = tasks.join_all().await;
    rows.sort_by_key(|r| r.0);
    rows.into_iter().map(|r| (r.1, r.2)).collect()
}

/// Peak RSS of `mailroom sync` (the release binary, summary table or `--json`) over
/// `n` accounts in a SQLite file, 64 at once (`--concurrency 64`), their first sync.
async fn sync_rss(n: usize, mailroom: &std::path::Path, json: bool) {
    let sim = SimProcess::spawn(
        SimProcess::binary().unwrap(),
        [
            "--mailboxes",
            &n.to_string(),
            "--messages",
            "3",
            "--all-in",
            "inbox",
        ],
    )
    .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let key = FernetKey::generate();
    let vault = Arc::new(Vault::new(vec![key.clone()]).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("m.sqlite").display()
    );
    let store = Store::connect(&url).await.unwrap();
    for (email, sealed) in sealed_tokens(&sim, &http, &vault).await {
        store
            .create_account(mailroom_store::NewAccount {
                email,
                kind: AccountKind::Outlook,
                credentials: mailroom_store::SealedCredentials::new(sealed).unwrap(),
                sync_folders: vec![],
            })
            .await
            .unwrap();
    }
    store.close().await.unwrap();
    let start = Instant::now();
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "peak-rss-kib %M"])
        .arg(mailroom)
        .args(json.then_some("--json"))
        .args(["sync", "--concurrency", "64"])
        .env("MAILROOM_DATABASE_URL", &url)
        .env("MAILROOM_KEY", key.secret())
        .env("MAILROOM_AUTHORITY_URL", sim.authority_url())
        .env("MAILROOM_GRAPH_URL", sim.graph_url())
        .env("MAILROOM_CLIENT_ID", CLIENT_ID)
        .env("HOME", dir.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mailroom sync failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if json {
        let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
        assert_eq!(rows.len(), n);
        assert!(rows.iter().all(|r| r["outcome"] == "synced"), "{stdout}");
    } else {
        // The summary table: a header, then a line per account.
        assert_eq!(stdout.lines().count(), n + 1, "{stdout}");
        assert_eq!(stdout.lines().filter(|l| l.contains(" synced ")).count(), n);
    }
    let kib: f64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-kib "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    println!(
        "  mailroom sync --concurrency 64{} over {n:>6} accounts (SQLite file, first sync): {secs:.1} s, peak RSS {:.1} MiB",
        if json { " --json" } else { "" },
        kib / 1024.0
    );
}

struct Cycle {
    secs: f64,
    stats: WorkerStats,
    pg_cpu: f64,
    backends: usize,
    requests: u64,
    statements: u64,
    seq_scans: i64,
    idx_scans: i64,
}

/// `workers` workers, `concurrency` at once each, each syncs what it claims until none
/// is due.
async fn cycle(b: &Bench, workers: usize, concurrency: usize) -> Cycle {
    let mut stores = Vec::new();
    for _ in 0..workers {
        stores.push(Store::connect(&b.url).await.unwrap());
    }
    let scans_before = b.account_scans().await;
    let requests_before = graph_requests(&b.counters().await);
    let (cpu_before, _) = b.pg_cpu().await;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, store) in stores.iter().enumerate() {
        let syncer = b.syncer(store);
        let config = WorkerConfig {
            worker_id: format!("bench-{i}"),
            concurrency,
            once: true,
            interval: Duration::ZERO,
            poll_interval: Duration::from_millis(10),
            ..WorkerConfig::default()
        };
        tasks.spawn(async move {
            syncer
                .run_worker(config, CancellationToken::new())
                .await
                .unwrap()
        });
    }
    let mut stats = WorkerStats::default();
    for s in tasks.join_all().await {
        stats.synced += s.synced;
        stats.failed += s.failed;
        stats.lease_lost += s.lease_lost;
        stats.interrupted += s.interrupted;
        stats.claims += s.claims;
    }
    let secs = start.elapsed().as_secs_f64();
    let (cpu_after, backends) = b.pg_cpu().await;
    let requests = graph_requests(&b.counters().await) - requests_before;
    let statements = stores.iter().map(Store::statements_sent).sum();
    for store in stores {
        store.close().await.unwrap();
    }
    // The server flushes a closed connection's table statistics as it exits.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let scans_after = b.account_scans().await;
    Cycle {
        secs,
        stats,
        pg_cpu: cpu_after - cpu_before,
        backends,
        requests,
        statements,
        seq_scans: scans_after.0 - scans_before.0,
        idx_scans: scans_after.1 - scans_before.1,
    }
}

/// The statements the cycle ran most often, per account (from two
/// [`statement_stats`]; other users of the server may add theirs).
fn print_statements(
    n: usize,
    before: Option<HashMap<i64, StatementStats>>,
    after: Option<HashMap<i64, StatementStats>>,
) {
    let Some(mut ran) = statements_since(before, after) else {
        println!("    pg_stat_statements: not loaded");
        return;
    };
    ran.sort_by_key(|s| std::cmp::Reverse(s.calls));
    for s in ran.into_iter().take(6) {
        println!(
            "    {:>5.2} calls/account, {:>6.1} µs each: {}",
            s.calls as f64 / n as f64,
            s.total_exec_time * 1e3 / s.calls as f64,
            s.query.chars().take(110).collect::<String>()
        );
    }
}

async fn run(n: usize, worker_counts: &[usize], concurrency: usize) {
    let b = setup(n).await;
    let first = cycle(&b, 1, 64).await;
    assert_eq!(first.stats.synced as usize, n, "{:?}", first.stats);
    println!(
        "  initial pass, 1 worker × 64, no latency: {:.1} s, PostgreSQL CPU {:.1} s",
        first.secs, first.pg_cpu
    );
    let faults = Faults {
        latency: Duration::from_millis(20),
        ..Faults::default()
    };
    b.http
        .put(format!("{}/faults", b.sim.control_url()))
        .json(&faults)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let mut one = None;
    for &workers in worker_counts {
        let sim_cpu = cpu_seconds(Some(b.sim.pid()));
        let self_cpu = cpu_seconds(None);
        let statements_before = statement_stats().await;
        let c = cycle(&b, workers, concurrency).await;
        let statements_after = statement_stats().await;
        let sim_cpu = cpu_seconds(Some(b.sim.pid())) - sim_cpu;
        // This process does nothing else during the cycle but a few queries of the
        // counters (and a 1.5 s sleep): its CPU is the workers'.
        let self_cpu = cpu_seconds(None) - self_cpu;
        assert_eq!(c.stats.synced as usize, n, "{:?}", c.stats);
        let speedup = *one.get_or_insert(c.secs) / c.secs;
        println!(
            "  no-change cycle {n:>6} accounts, {workers} worker(s) × {concurrency}, 20 ms latency: {:>7.2} s (× {speedup:.2} of 1 worker)  \
             PostgreSQL CPU {:.3} ms/account ({:.1} s, {} backends)  worker CPU {:.3} ms/account  {:.2} Graph requests/account  \
             {:.2} statements/account, {} claims  accounts scans: {} seq, {} index  \
             CPU: workers {:.1} s, simulator {:.1} s",
            c.secs,
            c.pg_cpu * 1e3 / n as f64,
            c.pg_cpu,
            c.backends,
            self_cpu * 1e3 / n as f64,
            c.requests as f64 / n as f64,
            c.statements as f64 / n as f64,
            c.stats.claims,
            c.seq_scans,
            c.idx_scans,
            self_cpu,
            sim_cpu,
        );
        print_statements(n, statements_before, statements_after);
    }
    b.admin.close().await;
}

fn list(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|v| v.trim().replace('_', "").parse().ok())
        .collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sizes = list("MAILROOM_BENCH_FLEET_SIZES", "5000,20000,100000");
    let workers = list("MAILROOM_BENCH_FLEET_WORKERS", "1,2,4");
    let concurrency = list("MAILROOM_BENCH_FLEET_CONCURRENCY", "8")
        .first()
        .copied()
        .unwrap_or(8)
        .max(1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "mailroom-sync fleet benchmark (mailroom-sim → Graph → workers → PostgreSQL {}); load average {}",
        mailroom_store::redact_url(&mailroom_store::testing::postgres_base_url()),
        load.trim()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for n in sizes {
        runtime.block_on(run(n, &workers, concurrency));
    }
    // `mailroom sync`'s memory against the number of accounts, with the release
    // binary at MAILROOM_BIN (`cargo build --release -p mailroom-cli`).
    let counts = list("MAILROOM_BENCH_SYNC_RSS", "1000,5000,10000");
    match std::env::var_os("MAILROOM_BIN") {
        Some(bin) => {
            for n in counts {
                for json in [false, true] {
                    runtime.block_on(sync_rss(n, std::path::Path::new(&bin), json));
                }
            }
        }
        None if !counts.is_empty() => {
            println!(
                "  (mailroom sync memory skipped: set MAILROOM_BIN to the release mailroom binary)"
            );
        }
        None => {}
    }
}
