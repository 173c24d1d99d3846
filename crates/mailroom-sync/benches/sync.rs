//! End-to-end sync benchmarks: mailroom-sim → GraphConnector → Syncer → SQLite file.
//!
//! Run: `cargo bench -p mailroom-sync --bench sync` (release build). Each scenario
//! runs in a child process of its own so its peak RSS (VmHWM) is its own:
//!
//! - `initial N`: the first sync of one account whose Inbox holds N messages
//!   (10,000 and 100,000), through delta pages into a fresh SQLite file. Prints
//!   messages/s, Graph requests per message and peak RSS.
//! - `cycle N`: N accounts (1,000) already synced; a second worker pass with no
//!   changes and 20 ms of latency added to every simulated request. Prints wall
//!   time, Graph requests per account and peak RSS.
//!
//! The simulator runs in the same process (its mailboxes are generated on demand and
//! stay small); its own memory is part of the RSS figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom_core::{AccountKind, Credentials, OAuthCredentials};
use mailroom_graph::GraphConfig;
use mailroom_imap::ImapOptions;
use mailroom_sim::{Faults, MailboxSpec, SimConfig, Simulator};
use mailroom_store::{MessageQuery, NewAccount, SealedCredentials, Store};
use mailroom_sync::{DefaultFactory, Outcome, SyncRequest, Syncer, WorkerConfig};
use mailroom_vault::{FernetKey, Vault};
use tokio_util::sync::CancellationToken;

const CLIENT_ID: &str = "bench-app";

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn graph_requests(sim: &Simulator) -> u64 {
    sim.counters()
        .requests_by_route
        .iter()
        .filter(|(route, _)| route.contains("/v1.0/"))
        .map(|(_, n)| n)
        .sum()
}

struct Setup {
    sim: Simulator,
    store: Store,
    syncer: Syncer,
    _dir: tempfile::TempDir,
}

async fn setup(mailboxes: Vec<MailboxSpec>) -> Setup {
    let addresses: Vec<String> = mailboxes.iter().map(|m| m.address.clone()).collect();
    let sim = Simulator::start(SimConfig::default().mailboxes(mailboxes))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.sqlite").display()
    );
    let store = Store::connect(&url).await.unwrap();
    let vault = Arc::new(Vault::new(vec![FernetKey::generate()]).unwrap());
    for address in &addresses {
        let tokens = sim
            .issue_tokens(
                address,
                CLIENT_ID,
                &["Mail.ReadWrite", "User.Read", "offline_access"],
            )
            .unwrap();
        let mut oauth = OAuthCredentials::new(CLIENT_ID);
        oauth.token = Some(mailroom_core::AccessToken::new(tokens.access_token));
        oauth.refresh_token = tokens.refresh_token.map(mailroom_core::RefreshToken::new);
        oauth.scopes = tokens.scope.split(' ').map(str::to_owned).collect();
        oauth.expiry =
            Some(chrono::Utc::now() + chrono::Duration::seconds(tokens.expires_in as i64));
        let sealed =
            SealedCredentials::new(vault.encrypt_credentials(&Credentials::OAuth(oauth))).unwrap();
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
    let factory = DefaultFactory::new(
        sim.base_url(),
        GraphConfig::default().graph_url(sim.graph_url()),
        ImapOptions::default(),
    );
    let syncer = Syncer::new(store.clone(), vault, Arc::new(factory));
    Setup {
        sim,
        store,
        syncer,
        _dir: dir,
    }
}

async fn initial(n: usize) {
    let s = setup(vec![
        MailboxSpec::new("bench@contoso.test", n).all_in("inbox"),
    ])
    .await;
    let account = s.store.list_accounts().await.unwrap().remove(0);
    let before = graph_requests(&s.sim);
    let start = Instant::now();
    let report = s
        .syncer
        .sync_account(account.id, &SyncRequest::default())
        .await
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(report.outcome, Outcome::Synced, "{report:?}");
    let rows = s
        .store
        .count_messages(&MessageQuery {
            account_id: Some(account.id),
            ..Default::default()
        })
        .await
        .unwrap();
    let inbox = s
        .sim
        .mailbox("bench@contoso.test")
        .unwrap()
        .folder_messages("inbox")
        .unwrap()
        .len();
    assert_eq!(
        rows as usize, inbox,
        "every message of the inbox stored once"
    );
    let requests = graph_requests(&s.sim) - before;
    println!(
        "  initial sync {rows:>7} messages  {secs:>6.2} s  {:>7.0} messages/s  {requests:>4} Graph requests (1 per {:.0} messages)  peak RSS {:.0} MiB",
        rows as f64 / secs,
        rows as f64 / requests as f64,
        peak_rss_mib()
    );
}

async fn cycle(accounts: usize) {
    let mailboxes: Vec<MailboxSpec> = (0..accounts)
        .map(|i| {
            MailboxSpec::new(format!("user{i:04}@contoso.test"), 20)
                .seed(i as u64)
                .all_in("inbox")
        })
        .collect();
    let s = setup(mailboxes).await;
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
    s.sim.set_faults(Faults {
        latency: Duration::from_millis(20),
        ..Faults::default()
    });
    let before = graph_requests(&s.sim);
    let routes_before = s.sim.counters().requests_by_route;
    let start = Instant::now();
    let second = s
        .syncer
        .run_worker(config, CancellationToken::new())
        .await
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(second.synced as usize, accounts, "{second:?}");
    let requests = graph_requests(&s.sim) - before;
    println!(
        "  no-change cycle {accounts} accounts, 20 ms latency, 64 at once  {secs:>6.2} s  {:.2} Graph requests per account  peak RSS {:.0} MiB",
        requests as f64 / accounts as f64,
        peak_rss_mib()
    );
    for (route, n) in s.sim.counters().requests_by_route {
        let n = n - routes_before.get(&route).copied().unwrap_or(0);
        if n > 0 {
            println!("    {n:>6}  {route}");
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--scenario") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let n: usize = args[pos + 2].parse().unwrap();
        match args[pos + 1].as_str() {
            "initial" => runtime.block_on(initial(n)),
            "cycle" => runtime.block_on(cycle(n)),
            other => panic!("unknown scenario {other}"),
        }
        return;
    }
    println!("mailroom-sync end-to-end benchmarks (mailroom-sim → Graph → SQLite file)");
    let exe = std::env::current_exe().unwrap();
    for (scenario, n) in [
        ("initial", "10000"),
        ("initial", "100000"),
        ("cycle", "1000"),
    ] {
        let status = std::process::Command::new(&exe)
            .args(["--scenario", scenario, n])
            .status()
            .unwrap();
        assert!(status.success(), "{scenario} {n} failed");
    }
}
