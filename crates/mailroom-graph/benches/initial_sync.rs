//! Initial sync of one big folder through delta, against `mailroom-sim` running as a
//! separate process (so the simulator's memory is not counted as the connector's).
//!
//! `cargo bench -p mailroom-graph --bench initial_sync` — for each folder size, the
//! bench starts itself again in a fresh process (so the peak RSS it reports,
//! `VmHWM`, belongs to that size alone), which starts `mailroom-sim --messages N
//! --all-in inbox`, syncs the inbox page by page until `complete` (dropping each page
//! after counting it, as a store would after writing it) and prints messages/s, HTTP
//! requests per message (from the simulator's counters) and peak RSS.
//!
//! With `MAILROOM_BENCH_PEER_PYTHON` (a Python with `requests`; `cargo xtask bench graph`
//! makes that venv), the same simulator then serves the seed-design peer,
//! xtask/bench/graph_peer.py (requests + sqlite3, `$top=999`, one transaction per page
//! into a fresh SQLite file), and its messages/s and CPU per message are printed on
//! the next line. The fetch-only figure is the floor of an end-to-end sync; the
//! end-to-end figures are `cargo bench -p mailroom-sync --bench sync`.
//!
//! Sizes: `MAILROOM_BENCH_SIZES=10000,100000` (default). The simulator binary:
//! `MAILROOM_SIM_BIN`, else `mailroom-sim` in this bench's target directory, built
//! there when missing (`mailroom_sim::process::SimProcess::binary`).
//!
//! The bench uses the `mailroom` binary's allocator (mimalloc), as the end-to-end
//! bench does, so that the floor and the end-to-end figures compare.

use std::process::Command;
use std::time::Instant;

use chrono::{TimeDelta, Utc};
use mailroom_core::{AccessToken, Change, Connector, FolderRef, OAuthCredentials, RefreshToken};
use mailroom_graph::{GraphConfig, GraphConnector};
use mailroom_sim::process::{self, SimProcess};

/// The allocator of the `mailroom` binary (crates/mailroom-cli).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHILD: &str = "MAILROOM_GRAPH_BENCH_SIZE";
const APP: &str = "11111111-2222-3333-4444-555555555555";

fn main() {
    if let Ok(size) = std::env::var(CHILD) {
        let size: usize = size.parse().expect("a folder size");
        let rt = process::mailroom_runtime()
            .0
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(run(size));
        return;
    }
    let sizes = std::env::var("MAILROOM_BENCH_SIZES").unwrap_or_else(|_| "10000,100000".into());
    let sim = SimProcess::binary().expect("the mailroom-sim binary");
    println!(
        "mailroom-graph initial sync through delta, simulator {}, allocator mimalloc and {} (as the mailroom binary, MAILROOM_THREADS)",
        sim.display(),
        process::mailroom_runtime().1
    );
    println!(
        "{:>9} {:>8} {:>10} {:>9} {:>12} {:>14} {:>14} {:>14}",
        "messages",
        "pages",
        "seconds",
        "msg/s",
        "requests",
        "requests/msg",
        "peak RSS MiB",
        "sim RSS MiB"
    );
    for size in sizes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let status = Command::new(std::env::current_exe().expect("this bench"))
            .env(CHILD, size)
            .env("MAILROOM_SIM_BIN", &sim)
            .status()
            .expect("the bench runs itself");
        assert!(status.success(), "size {size} failed");
    }
}

async fn run(size: usize) {
    let sim = SimProcess::spawn(
        SimProcess::binary().expect("set by the parent"),
        [
            "--port",
            "0",
            "--messages",
            &size.to_string(),
            "--all-in",
            "inbox",
        ],
    )
    .expect("mailroom-sim starts");
    let mailbox = sim.mailboxes()[0].clone();
    // Our reqwest has no rustls crypto provider of its own: use ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let tokens: serde_json::Value = http
        .post(format!("{}/tokens", sim.control_url()))
        .json(&serde_json::json!({
            "user": mailbox,
            "client_id": APP,
            "scopes": ["https://graph.microsoft.com/Mail.ReadWrite", "offline_access"],
        }))
        .send()
        .await
        .expect("tokens")
        .json()
        .await
        .expect("token json");
    let mut creds = OAuthCredentials::new(APP);
    creds.token = Some(AccessToken::new(tokens["access_token"].as_str().unwrap()));
    creds.refresh_token = Some(RefreshToken::new(tokens["refresh_token"].as_str().unwrap()));
    creds.scopes = vec![
        "https://graph.microsoft.com/Mail.ReadWrite".into(),
        "offline_access".into(),
    ];
    creds.expiry = Some(Utc::now() + TimeDelta::hours(1));
    let graph = GraphConnector::from_credentials(
        &mailbox,
        creds,
        sim.authority_url(),
        GraphConfig::default().graph_url(sim.graph_url()),
    )
    .expect("a connector");
    let counters = |http: reqwest::Client, url: String| async move {
        let v: serde_json::Value = http.get(url).send().await.unwrap().json().await.unwrap();
        v
    };
    let counters_url = format!("{}/counters", sim.control_url());
    let before = counters(http.clone(), counters_url.clone()).await;

    let cpu_before = process::cpu_seconds(None);
    let start = Instant::now();
    let (mut upserts, mut pages, mut cursor) = (0usize, 0usize, None);
    loop {
        let page = graph
            .sync_folder(&FolderRef::INBOX, cursor.take())
            .await
            .expect("a delta page");
        pages += 1;
        upserts += page
            .changes
            .iter()
            .filter(|c| matches!(c, Change::Upsert(_)))
            .count();
        if page.complete {
            break;
        }
        cursor = Some(page.cursor);
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = process::cpu_seconds(None) - cpu_before;
    let after = counters(http, counters_url).await;
    let graph_requests =
        |v: &serde_json::Value| -> u64 { v["requests_by_mailbox"][&mailbox].as_u64().unwrap_or(0) };
    let requests = graph_requests(&after) - graph_requests(&before);
    assert_eq!(upserts, size, "every message synced once");
    let peak = process::status_kib(None, "VmHWM:").unwrap_or(0) as f64 / 1024.0;
    let sim_peak = process::status_kib(Some(sim.pid()), "VmHWM:").unwrap_or(0) as f64 / 1024.0;
    println!(
        "{:>9} {:>8} {:>10.2} {:>9.0} {:>12} {:>14.5} {:>14.1} {:>14.1}   fetch only, {:.1} µs CPU/message",
        size,
        pages,
        secs,
        size as f64 / secs,
        requests,
        requests as f64 / size as f64,
        peak,
        sim_peak,
        cpu * 1e6 / size as f64,
    );
    if let Ok(python) = std::env::var("MAILROOM_BENCH_PEER_PYTHON") {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../xtask/bench/graph_peer.py"
        );
        let db = std::env::temp_dir().join(format!("mailroom-peer-{}.sqlite", std::process::id()));
        let output = Command::new(python)
            .arg(script)
            .arg(sim.graph_url())
            .arg(tokens["access_token"].as_str().unwrap())
            .arg(&db)
            .output()
            .expect("the Python peer runs");
        for suffix in ["", "-wal", "-shm"] {
            let mut path = db.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
        assert!(
            output.status.success(),
            "the Python peer failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("the peer prints one JSON line");
        let n = report["messages"].as_f64().unwrap();
        assert_eq!(n as usize, size, "the peer read every message");
        println!(
            "{:>9} {:>8} {:>10.2} {:>9.0} {:>12} {:>14} {:>14} {:>14}   Python peer (requests + sqlite3), {:.1} µs CPU/message",
            size,
            report["pages"],
            report["seconds"].as_f64().unwrap(),
            n / report["seconds"].as_f64().unwrap(),
            "",
            "",
            "",
            "",
            report["cpu_seconds"].as_f64().unwrap() * 1e6 / n,
        );
    }
}
