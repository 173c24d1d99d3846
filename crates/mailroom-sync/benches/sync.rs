//! End-to-end sync benchmarks: mailroom-sim → GraphConnector → Syncer → SQLite file.
//!
//! Run: `cargo bench -p mailroom-sync --bench sync` (release build), or
//! `cargo xtask bench sync`. Each scenario runs in a child process of its own, and
//! the simulator in another (the `mailroom-sim` binary, as Graph would be remote), so
//! the peak RSS (VmHWM) printed is the sync's own: connector, syncer and store.
//!
//! - `initial N`: the first sync of one account whose Inbox holds N messages
//!   (`MAILROOM_BENCH_SIZES`, default 10,000, 100,000 and 300,000), through delta
//!   pages into a fresh SQLite file. Prints messages/s, the process CPU time per
//!   message, Graph requests per message and peak RSS, then checks that the
//!   database holds every message of the simulator's Inbox once. Into PostgreSQL
//!   (`MAILROOM_BENCH_STORES=sqlite,postgres`, scenario `initial-postgres`) it also
//!   prints the backends' CPU per message, the WAL the server wrote, the server's
//!   floor (its CPU per message to store the same rows itself, with no client) and
//!   the statements `pg_stat_statements` counted (whole server: quiet machines only).
//! - `attachments N`: the cost of the attachment lists fetched after each delta page.
//!   One Inbox of N messages (`MAILROOM_BENCH_ATTACHMENTS`, default 20,000; `0` skips),
//!   `MAILROOM_BENCH_ATTACHMENT_PERCENT` (20) % of them with attachments, synced into
//!   fresh SQLite files with the lists off and on alternately, three times each, by
//!   the same simulator. Prints messages/s, client CPU per message, HTTP requests and
//!   `$batch` items per 1,000 messages, then the medians.
//! - `cycle N`: N accounts (1,000) already synced; a second worker pass with no
//!   changes and 20 ms of latency added to every simulated request. Prints wall
//!   time, Graph requests per account and peak RSS.
//!
//! The simulator shares the machine's cores: its CPU time is printed apart. The bench
//! process uses the `mailroom` binary's global allocator (mimalloc), as the command does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom_core::AccountKind;
use mailroom_graph::GraphConfig;
use mailroom_imap::ImapOptions;
use mailroom_sim::process::{self, SimProcess, cpu_seconds};
use mailroom_sim::{Counters, Faults};
use mailroom_store::{MessageQuery, NewAccount, SealedCredentials, Store};
use mailroom_sync::{DefaultFactory, Outcome, SyncRequest, Syncer, WorkerConfig};
use mailroom_vault::{FernetKey, Vault};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

mod common;
use common::{graph_requests, sealed_credentials, statement_stats, statements_since};

/// A field of `/proc/{pid}/status` (`VmHWM:`, `VmRSS:`) in MiB; NaN when gone.
fn mib(pid: Option<u32>, field: &str) -> f64 {
    process::status_kib(pid, field).map_or(f64::NAN, |kib| kib as f64 / 1024.0)
}

/// The allocator of the `mailroom` binary (crates/mailroom-cli), so that the bench
/// measures what the command does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Setup {
    sim: SimProcess,
    http: reqwest::Client,
    store: Store,
    syncer: Syncer,
    /// The database's URL.
    url: String,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}/{path}", self.sim.control_url()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap().error_for_status().unwrap();
        response.json().await.unwrap()
    }

    async fn counters(&self) -> Counters {
        serde_json::from_value(self.control(reqwest::Method::GET, "counters", None).await).unwrap()
    }
}

/// Starts `mailroom-sim ARGS` and a SQLite store with one Outlook account per mailbox.
async fn setup(args: &[&str]) -> Setup {
    setup_on(args, Db::Sqlite).await
}

/// The database a scenario writes to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Db {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh schema in the test PostgreSQL (`MAILROOM_TEST_POSTGRES_URL`), its
    /// connections named [`pg_application_name`].
    Postgres,
}

/// The `application_name` of this process's PostgreSQL connections.
fn pg_application_name() -> String {
    format!("mailroom-bench-{}", std::process::id())
}

/// User + system CPU seconds of each of this process's PostgreSQL backends.
async fn pg_backend_cpu() -> std::collections::HashMap<u32, f64> {
    let base = mailroom_store::testing::postgres_base_url();
    let pids = mailroom_store::testing::backend_pids(&base, &pg_application_name())
        .await
        .unwrap();
    pids.into_iter()
        .map(|p| (p, cpu_seconds(Some(p))))
        .collect()
}

async fn setup_on(args: &[&str], db: Db) -> Setup {
    let sim = SimProcess::spawn(SimProcess::binary().unwrap(), args).unwrap();
    // Our reqwest has no rustls crypto provider of its own: use ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let (store, syncer, dir, url) = fresh_store_on(&sim, &http, GraphConfig::default(), db).await;
    Setup {
        sim,
        http,
        store,
        syncer,
        url,
        _dir: dir,
    }
}

/// A new SQLite file with one Outlook account per mailbox of `sim` (fresh tokens), and
/// a syncer whose Graph connectors use `graph` (pointed at the simulator).
async fn fresh_store(
    sim: &SimProcess,
    http: &reqwest::Client,
    graph: GraphConfig,
) -> (Store, Syncer, tempfile::TempDir) {
    let (store, syncer, dir, _) = fresh_store_on(sim, http, graph, Db::Sqlite).await;
    (store, syncer, dir)
}

async fn fresh_store_on(
    sim: &SimProcess,
    http: &reqwest::Client,
    graph: GraphConfig,
    db: Db,
) -> (Store, Syncer, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = match db {
        Db::Sqlite => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.sqlite").display()
        ),
        Db::Postgres => format!(
            "{}&application_name={}",
            mailroom_store::testing::fresh_postgres_url().await,
            pg_application_name()
        ),
    };
    let store = Store::connect(&url).await.unwrap();
    let vault = Arc::new(Vault::new(vec![FernetKey::generate()]).unwrap());
    let factory = DefaultFactory::new(
        sim.authority_url(),
        graph.graph_url(sim.graph_url()),
        ImapOptions::default(),
    );
    let syncer = Syncer::new(store.clone(), vault.clone(), Arc::new(factory));
    for address in sim.mailboxes() {
        let sealed = SealedCredentials::new(
            sealed_credentials(http, sim.control_url(), address, &vault).await,
        )
        .unwrap();
        store
            .create_account(NewAccount {
                email: address.clone(),
                kind: AccountKind::Outlook,
                credentials: sealed,
                sync_folders: vec![],
            })
            .await
            .unwrap();
    }
    (store, syncer, dir, url)
}

/// Profiles the sync only (not the setup, nor the final check that reads the whole
/// Inbox back): `MAILROOM_BENCH_PERF_CTL=FIFO` drives `perf record -D -1 --control
/// fifo:FIFO`; `MAILROOM_BENCH_CALLGRIND=1` drives `valgrind --tool=callgrind
/// --instr-atstart=no` through `callgrind_control`.
fn perf_control(command: &str) {
    if let Some(fifo) = std::env::var_os("MAILROOM_BENCH_PERF_CTL") {
        std::fs::write(fifo, format!("{command}\n")).expect("perf's control fifo");
    }
    if std::env::var_os("MAILROOM_BENCH_CALLGRIND").is_some() {
        let on = if command == "enable" { "on" } else { "off" };
        let status = std::process::Command::new("callgrind_control")
            .args(["-i", on, &std::process::id().to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("callgrind_control");
        assert!(status.success(), "callgrind_control -i {on}");
    }
}

async fn initial(n: usize, db: Db) {
    let s = setup_on(&["--messages", &n.to_string(), "--all-in", "inbox"], db).await;
    let account = s.store.list_accounts().await.unwrap().remove(0);
    let before = graph_requests(&s.counters().await);
    let rss_before = mib(None, "VmRSS:");
    let pg_before = match db {
        Db::Postgres => pg_backend_cpu().await,
        Db::Sqlite => Default::default(),
    };
    let statements_before = match db {
        Db::Postgres => statement_stats().await,
        Db::Sqlite => None,
    };
    let wal_before = wal_position(db).await;
    let (cpu_before, sim_cpu_before) = (cpu_seconds(None), cpu_seconds(Some(s.sim.pid())));
    perf_control("enable");
    let start = Instant::now();
    let report = s
        .syncer
        .sync_account(account.id, &SyncRequest::default())
        .await
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    perf_control("disable");
    let cpu = cpu_seconds(None) - cpu_before;
    let sim_cpu = cpu_seconds(Some(s.sim.pid())) - sim_cpu_before;
    // Backends that appeared during the sync count in full.
    let pg_cpu: f64 = match db {
        Db::Postgres => pg_backend_cpu()
            .await
            .into_iter()
            .map(|(pid, cpu)| cpu - pg_before.get(&pid).copied().unwrap_or(0.0))
            .sum(),
        Db::Sqlite => 0.0,
    };
    let wal = wal_position(db).await.zip(wal_before).map(|(a, b)| a - b);
    // Taken before the checks below, which read the whole folder.
    let peak = mib(None, "VmHWM:");
    assert_eq!(report.outcome, Outcome::Synced, "{report:?}");
    let requests = graph_requests(&s.counters().await) - before;

    let rows = s
        .store
        .count_messages(&MessageQuery {
            account_id: Some(account.id),
            ..Default::default()
        })
        .await
        .unwrap();
    let path = format!("mailboxes/{}/folders/inbox/messages", account.email);
    let inbox = s.control(reqwest::Method::GET, &path, None).await;
    assert_eq!(
        rows as usize,
        inbox.as_array().unwrap().len(),
        "every message of the inbox stored once"
    );
    // The backends' CPU against the wall time: the share of the sync the server
    // worked (one backend writes; the rest it waited for the client).
    let db_cpu = match db {
        Db::Sqlite => "SQLite".to_owned(),
        Db::Postgres => format!(
            "PostgreSQL, backends {:.1} µs/message, busy {:.0} % of the sync",
            pg_cpu * 1e6 / rows as f64,
            pg_cpu * 100.0 / secs
        ),
    };
    println!(
        "  initial sync {rows:>7} messages  {secs:>6.2} s  {:>6.0} messages/s  cpu {:>5.1} µs/message ({db_cpu}; simulator {:>4.1})  {requests:>4} Graph requests (1 per {:.0} messages)  peak RSS {peak:.0} MiB (before the sync {rss_before:.0})",
        rows as f64 / secs,
        cpu * 1e6 / rows as f64,
        sim_cpu * 1e6 / rows as f64,
        rows as f64 / requests as f64,
    );
    if let Some(wal) = wal {
        println!(
            "    WAL written by the server during the sync: {:.0} MB, {:.2} KB per message",
            wal as f64 / 1e6,
            wal as f64 / 1e3 / rows as f64
        );
    }
    if db == Db::Postgres {
        print_pg_floor(&s.url, rows).await;
        print_pg_settings().await;
        print_pg_statements(statements_before, rows).await;
    }
}

/// The floor under the backends' CPU per message: what PostgreSQL itself spends to
/// store the rows the sync stored, with no client and no network. The backend CPU of
/// `INSERT … SELECT` of the synced messages and attachments into empty copies of
/// their tables (`LIKE … INCLUDING ALL`: the same columns, defaults and indexes),
/// committed asynchronously as the pages are; the copies are dropped after.
async fn print_pg_floor(url: &str, rows: u64) {
    use sea_orm::sqlx::{Connection as _, Executor as _};
    let mut conn = sea_orm::sqlx::PgConnection::connect(url).await.unwrap();
    let pid: i32 = sea_orm::sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.execute(
        "CREATE TABLE floor_messages (LIKE messages INCLUDING ALL); \
         CREATE TABLE floor_attachments (LIKE attachments INCLUDING ALL); \
         SET synchronous_commit = off",
    )
    .await
    .unwrap();
    let before = cpu_seconds(Some(pid.unsigned_abs()));
    conn.execute(
        "INSERT INTO floor_messages SELECT * FROM messages; \
         INSERT INTO floor_attachments SELECT * FROM attachments",
    )
    .await
    .unwrap();
    let cpu = cpu_seconds(Some(pid.unsigned_abs())) - before;
    conn.execute("DROP TABLE floor_messages, floor_attachments")
        .await
        .unwrap();
    println!(
        "    server floor: PostgreSQL storing the same rows itself (INSERT … SELECT into empty copies of the tables, same indexes): {:.1} µs/message",
        cpu * 1e6 / rows as f64
    );
}

/// The server settings the PostgreSQL figures depend on (see docs/benchmarks.md,
/// "pgwrite4"): with the default 128 MB of `shared_buffers` the backend writes out
/// most heap pages itself.
async fn print_pg_settings() {
    let names = [
        "shared_buffers",
        "wal_buffers",
        "max_wal_size",
        "checkpoint_timeout",
    ];
    let base = mailroom_store::testing::postgres_base_url();
    match mailroom_store::testing::server_settings(&base, &names).await {
        Ok(values) => {
            let settings: Vec<String> = names
                .iter()
                .zip(values)
                .map(|(n, v)| format!("{n} {v}"))
                .collect();
            println!("    server settings: {}", settings.join(", "));
        }
        Err(e) => println!("    server settings: {e}"),
    }
}

/// The test server's WAL position in bytes, on PostgreSQL (`None` on SQLite).
async fn wal_position(db: Db) -> Option<i64> {
    match db {
        Db::Postgres => {
            let base = mailroom_store::testing::postgres_base_url();
            Some(mailroom_store::testing::wal_position(&base).await.unwrap())
        }
        Db::Sqlite => None,
    }
}

/// The statements that took the most server time since `before`
/// (`pg_stat_statements`; statements of other clients of the server count too, and
/// the checks after the sync), and how many per 1,000 messages (a delta page).
async fn print_pg_statements(
    before: Option<std::collections::HashMap<i64, mailroom_store::testing::StatementStats>>,
    messages: u64,
) {
    let Some(mut grown) = statements_since(before, statement_stats().await) else {
        println!("    pg_stat_statements: not loaded");
        return;
    };
    grown.sort_by(|x, y| y.total_exec_time.total_cmp(&x.total_exec_time));
    let total: f64 = grown.iter().map(|g| g.total_exec_time).sum();
    let calls: i64 = grown.iter().map(|g| g.calls).sum();
    let pages = messages.max(1) as f64 / 1000.0;
    println!(
        "    pg_stat_statements: {calls} statements ({:.2} per 1,000 messages), {total:.0} ms of execution ({:.1} µs per message); top:",
        calls as f64 / pages,
        total * 1000.0 / messages.max(1) as f64
    );
    for g in grown.iter().take(6) {
        let query: String = g.query.chars().take(90).collect();
        println!(
            "    {:>8.0} ms {:>5.1} %  {:>6} calls  {:>8} rows  {query}",
            g.total_exec_time,
            g.total_exec_time * 100.0 / total.max(f64::MIN_POSITIVE),
            g.calls,
            g.rows
        );
    }
}

async fn sim_counters(sim: &SimProcess, http: &reqwest::Client) -> Counters {
    http.get(format!("{}/counters", sim.control_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `attachments N`: initial syncs of one Inbox of N messages, `percent` % of them with
/// attachments, into fresh SQLite files, attachment lists off and on alternately.
async fn attachments(n: usize) {
    let percent: u8 = std::env::var("MAILROOM_BENCH_ATTACHMENT_PERCENT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let sim = SimProcess::spawn(
        SimProcess::binary().unwrap(),
        [
            "--messages",
            &n.to_string(),
            "--all-in",
            "inbox",
            "--attachment-percent",
            &percent.to_string(),
        ],
    )
    .unwrap();
    // Our reqwest has no rustls crypto provider of its own: use ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let mut runs: Vec<(bool, f64, f64)> = Vec::new();
    for _ in 0..3 {
        for lists in [false, true] {
            let (store, syncer, _dir) =
                fresh_store(&sim, &http, GraphConfig::default().attachment_lists(lists)).await;
            let account = store.list_accounts().await.unwrap().remove(0);
            let before = sim_counters(&sim, &http).await;
            let cpu_before = cpu_seconds(None);
            let start = Instant::now();
            let report = syncer
                .sync_account(account.id, &SyncRequest::default())
                .await
                .unwrap();
            let secs = start.elapsed().as_secs_f64();
            let cpu = cpu_seconds(None) - cpu_before;
            assert_eq!(report.outcome, Outcome::Synced, "{report:?}");
            let after = sim_counters(&sim, &http).await;
            let items = after.batch_items - before.batch_items;
            // `$batch` items count in the routes too: HTTP requests are the rest.
            let http_requests = graph_requests(&after) - graph_requests(&before) - items;
            let batches =
                after.requests("POST /v1.0/$batch") - before.requests("POST /v1.0/$batch");
            let rows = store
                .count_messages(&MessageQuery {
                    account_id: Some(account.id),
                    ..Default::default()
                })
                .await
                .unwrap();
            let per_k = |x: u64| x as f64 * 1000.0 / rows as f64;
            let rate = rows as f64 / secs;
            let cpu_us = cpu * 1e6 / rows as f64;
            println!(
                "  attachment lists {:<3}  {rows:>7} messages ({percent} % with attachments)  {secs:>6.2} s  {rate:>6.0} messages/s  cpu {cpu_us:>5.1} µs/message  per 1,000 messages: {:>5.1} HTTP requests ({:.1} $batch), {:>6.1} $batch items",
                if lists { "on" } else { "off" },
                per_k(http_requests),
                per_k(batches),
                per_k(items),
            );
            runs.push((lists, rate, cpu_us));
        }
    }
    let pick = |lists: bool, f: fn(&(bool, f64, f64)) -> f64| {
        median(runs.iter().filter(|r| r.0 == lists).map(f).collect())
    };
    let (off, on) = (pick(false, |r| r.1), pick(true, |r| r.1));
    let (cpu_off, cpu_on) = (pick(false, |r| r.2), pick(true, |r| r.2));
    println!(
        "  median of 3: off {off:.0} messages/s, on {on:.0} messages/s (× {:.2}); cpu off {cpu_off:.1}, on {cpu_on:.1} µs/message",
        on / off
    );
}

async fn cycle(accounts: usize) {
    let s = setup(&[
        "--mailboxes",
        &accounts.to_string(),
        "--messages",
        "20",
        "--all-in",
        "inbox",
    ])
    .await;
    let config = WorkerConfig {
        worker_id: "bench".into(),
        concurrency: 64,
        once: true,
        interval: Duration::ZERO,
        poll_interval: Duration::from_millis(10),
        ..WorkerConfig::default()
    };
    let first = s
        .syncer
        .run_worker(config.clone(), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(first.synced as usize, accounts, "{first:?}");
    let faults = Faults {
        latency: Duration::from_millis(20),
        ..Faults::default()
    };
    let faults = serde_json::to_value(&faults).unwrap();
    s.control(reqwest::Method::PUT, "faults", Some(faults))
        .await;
    let before = s.counters().await;
    let rss_before = mib(None, "VmRSS:");
    let start = Instant::now();
    let second = s
        .syncer
        .run_worker(config, CancellationToken::new())
        .await
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    let peak = mib(None, "VmHWM:");
    assert_eq!(second.synced as usize, accounts, "{second:?}");
    let after = s.counters().await;
    let requests = graph_requests(&after) - graph_requests(&before);
    println!(
        "  no-change cycle {accounts} accounts, 20 ms latency, 64 at once  {secs:>6.2} s  {:.2} Graph requests per account  peak RSS {peak:.0} MiB (before the pass {rss_before:.0})",
        requests as f64 / accounts as f64,
    );
    for (route, n) in &after.requests_by_route {
        let n = n - before.requests_by_route.get(route).copied().unwrap_or(0);
        if n > 0 {
            println!("    {n:>6}  {route}");
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--scenario") {
        let runtime = process::mailroom_runtime().0.enable_all().build().unwrap();
        let n: usize = args[pos + 2].parse().unwrap();
        match args[pos + 1].as_str() {
            "initial" => runtime.block_on(initial(n, Db::Sqlite)),
            "initial-postgres" => runtime.block_on(initial(n, Db::Postgres)),
            "cycle" => runtime.block_on(cycle(n)),
            "attachments" => runtime.block_on(attachments(n)),
            other => panic!("unknown scenario {other}"),
        }
        return;
    }
    let sim = SimProcess::binary().expect("the mailroom-sim binary");
    println!(
        "mailroom-sync end-to-end benchmarks (mailroom-sim → Graph → SQLite file), simulator {}, allocator mimalloc and {} (as the mailroom binary, MAILROOM_THREADS)",
        sim.display(),
        process::mailroom_runtime().1
    );
    let sizes =
        std::env::var("MAILROOM_BENCH_SIZES").unwrap_or_else(|_| "10000,100000,300000".into());
    // `MAILROOM_BENCH_STORES=sqlite,postgres` runs each initial sync on both,
    // alternately; PostgreSQL is the test server (`MAILROOM_TEST_POSTGRES_URL`).
    let stores = std::env::var("MAILROOM_BENCH_STORES").unwrap_or_else(|_| "sqlite".into());
    let stores: Vec<&'static str> = stores
        .split(',')
        .map(|s| match s.trim() {
            "sqlite" => "initial",
            "postgres" => "initial-postgres",
            other => panic!("unknown store {other} in MAILROOM_BENCH_STORES"),
        })
        .collect();
    let scenarios = sizes
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .flat_map(|n| stores.iter().map(move |s| (*s, n.to_owned())))
        .chain(
            Some(std::env::var("MAILROOM_BENCH_ATTACHMENTS").unwrap_or_else(|_| "20000".into()))
                .filter(|n| !n.trim().is_empty() && n.trim() != "0")
                .map(|n| ("attachments", n.trim().to_owned())),
        )
        .chain([("cycle", "1000".to_owned())]);
    let exe = std::env::current_exe().unwrap();
    for (scenario, n) in scenarios {
        let status = std::process::Command::new(&exe)
            .args(["--scenario", scenario, &n])
            .env("MAILROOM_SIM_BIN", &sim)
            .status()
            .unwrap();
        assert!(status.success(), "{scenario} {n} failed");
    }
}
