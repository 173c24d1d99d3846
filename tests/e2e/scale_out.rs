//! Several `mailroom worker` processes sharing one PostgreSQL schema.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use mailroom_core::{AccountStatus, WellKnownFolder};
use mailroom_sim::{Faults, MailboxSpec, SimConfig};
use mailroom_store::{AccountUpdate, MessageQuery, Store};
use serde_json::Value;

use crate::support::truth::assert_account_matches;
use crate::support::{Db, Env, Proc, Rng, addresses, check_code, wait_for};

const INBOX: [(&str, WellKnownFolder); 1] = [("inbox", WellKnownFolder::Inbox)];

/// The JSON lines a worker printed: account → outcome.
fn worker_lines(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (
                v["account"].as_str().expect("account").to_owned(),
                v["outcome"].as_str().expect("outcome").to_owned(),
            )
        })
        .collect()
}

/// Watches the accounts table while workers run: every lease owner seen per account.
struct LeaseWatch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<BTreeMap<String, BTreeSet<String>>>,
}

impl LeaseWatch {
    fn start(store: Store) -> LeaseWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            while !flag.load(Ordering::Relaxed) {
                for a in store.list_accounts().await.expect("accounts") {
                    if let Some(owner) = a.lease_owner {
                        seen.entry(a.email).or_default().insert(owner);
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        });
        LeaseWatch { stop, task }
    }

    async fn finish(self) -> BTreeMap<String, BTreeSet<String>> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the lease watch ends")
    }
}

/// One `--once` pass of three workers; returns account → the workers that synced it,
/// and asserts every account was synced exactly once, by the worker holding its lease.
async fn pass(env: &Env, emails: &[String], n: usize) -> BTreeMap<String, Vec<String>> {
    let store = env.store().await;
    let watch = LeaseWatch::start(store.clone());
    let started = Utc::now();
    let mut workers: Vec<(String, Proc)> = (1..=3)
        .map(|w| {
            let id = format!("w{w}");
            let args = [
                "--json",
                "-v",
                "worker",
                "--once",
                "--interval",
                "1h",
                "--concurrency",
                "8",
                "--lease-ttl",
                "1m",
                "--worker-id",
                id.as_str(),
            ];
            (id.clone(), env.spawn(&args))
        })
        .collect();
    let mut synced_by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, proc) in &mut workers {
        let out = proc.wait(Duration::from_secs(120));
        check_code(&out, 0, &format!("worker {id}, pass {n}"));
        assert!(out.stderr.contains("worker stopped"), "{}", out.stderr);
        for (account, outcome) in worker_lines(&out.stdout) {
            assert_eq!(outcome, "synced", "pass {n}: {account} by {id}");
            synced_by.entry(account).or_default().push(id.clone());
        }
    }
    let leases = watch.finish().await;
    let per_worker: BTreeMap<&str, usize> =
        synced_by
            .values()
            .flatten()
            .fold(BTreeMap::new(), |mut m, w| {
                *m.entry(w.as_str()).or_default() += 1;
                m
            });
    eprintln!(
        "e2e: pass {n}: {per_worker:?} in {:?}; {} accounts seen leased",
        (Utc::now() - started).to_std().unwrap_or_default(),
        leases.len()
    );

    // Every account exactly once; all three workers took part.
    let all: BTreeSet<&String> = emails.iter().collect();
    assert_eq!(
        synced_by.keys().collect::<BTreeSet<_>>(),
        all,
        "pass {n}: accounts synced"
    );
    let twice: Vec<_> = synced_by.iter().filter(|(_, w)| w.len() != 1).collect();
    assert!(
        twice.is_empty(),
        "pass {n}: synced more than once: {twice:?}"
    );
    assert_eq!(
        per_worker.len(),
        3,
        "pass {n}: every worker synced some accounts"
    );
    // No account was leased by two workers, and the lease holder is who synced it.
    for (email, owners) in &leases {
        assert_eq!(owners.len(), 1, "pass {n}: {email} leased by {owners:?}");
        assert_eq!(
            owners.iter().next(),
            synced_by[email].first(),
            "pass {n}: {email} synced by a worker that did not hold its lease"
        );
    }
    assert!(
        leases.len() >= emails.len() / 10,
        "pass {n}: the watch saw only {} leases — too few to mean anything",
        leases.len()
    );
    // Recorded: synced now, active, lease released.
    for a in store.list_accounts().await.unwrap() {
        assert_eq!(a.status, AccountStatus::Active, "{}", a.email);
        assert!(a.last_sync_at.is_some_and(|t| t >= started), "{}", a.email);
        assert_eq!(a.lease_owner, None, "{}", a.email);
    }
    synced_by
}

#[tokio::test(flavor = "multi_thread")]
async fn three_workers_on_one_postgres_sync_two_hundred_accounts_each_once_per_pass() {
    const N: usize = 200;
    let emails = addresses("user", "scale.test", N);
    // Strict rotation: a refresh token redeemed twice (two workers refreshing one
    // account) is refused and counted. Access tokens are good for 5 s on the
    // client's clock (longer than one account's sync, shorter than the pause
    // between passes), so every account refreshes once per pass. Latency widens the
    // window in which two syncs of one account would overlap.
    let env = Env::start(
        SimConfig {
            mailboxes: emails
                .iter()
                // No attachments: their lists would add a `$batch` to some mailboxes
                // only, and this test compares the requests of every mailbox.
                .map(|a| MailboxSpec::new(a, 3).all_in("inbox").attachment_percent(0))
                .collect(),
            strict_refresh_rotation: true,
            access_token_lifetime: Duration::from_secs(305),
            faults: Faults {
                latency: Duration::from_millis(10),
                ..Faults::none()
            },
            ..SimConfig::default()
        },
        Db::Postgres,
    )
    .await;
    let mut rng = Rng::from_env("three_workers");
    // Bulk setup: tokens from the simulator, access tokens already expired.
    env.add_outlook_direct(&emails, true).await;
    let store = env.store().await;

    for n in 1..=2 {
        if n == 2 {
            // New mail in some mailboxes; every account due again; every access
            // token expired (5 s after its refresh in pass 1).
            for email in rng.pick(&emails, 60) {
                env.sim
                    .mailbox(&email)
                    .unwrap()
                    .add_messages("inbox", 1)
                    .unwrap();
            }
            for a in store.list_accounts().await.unwrap() {
                let due = AccountUpdate {
                    next_sync_at: Some(None),
                    ..AccountUpdate::default()
                };
                store.update_account(a.id, due).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(5100)).await;
        }
        env.sim.reset_counters();
        pass(&env, &emails, n).await;

        // The simulator agrees: one refresh per account, no replayed refresh token,
        // never two requests for one mailbox at once, the same requests for each
        // mailbox — and in pass 2 exactly one (the delta link).
        let c = env.sim.counters();
        assert_eq!(
            c.refresh_token_replays_total, 0,
            "pass {n}: {:?}",
            c.refresh_token_replays
        );
        assert!(
            c.refresh_failures.is_empty(),
            "pass {n}: {:?}",
            c.refresh_failures
        );
        let requests: BTreeSet<u64> = emails
            .iter()
            .map(|e| c.requests_by_mailbox.get(e.as_str()).copied().unwrap_or(0))
            .collect();
        assert_eq!(
            requests.len(),
            1,
            "pass {n}: requests per mailbox differ: {requests:?}"
        );
        if n == 2 {
            assert_eq!(
                requests,
                BTreeSet::from([1]),
                "pass 2: requests per mailbox"
            );
        }
        for email in &emails {
            assert_eq!(c.refreshes(email), 1, "pass {n}: refreshes of {email}");
            assert_eq!(
                c.peak_concurrency(email),
                1,
                "pass {n}: concurrent requests for {email}"
            );
        }
        for email in &emails {
            assert_account_matches(store, email, &env.sim.mailbox(email).unwrap(), &INBOX).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkilled_workers_accounts_are_taken_over_once_their_leases_expire() {
    const M: usize = 16;
    const MESSAGES: u64 = 300;
    const TTL: &str = "6s";
    let emails = addresses("box", "lease.test", M);
    let env = Env::start(
        SimConfig {
            mailboxes: emails
                .iter()
                .map(|a| MailboxSpec::new(a, MESSAGES as usize).all_in("inbox"))
                .collect(),
            faults: Faults {
                latency: Duration::from_millis(60),
                ..Faults::none()
            },
            ..SimConfig::default()
        },
        Db::Postgres,
    )
    .await;
    let mut rng = Rng::from_env("sigkilled_worker");
    env.add_outlook_direct(&emails, false).await;
    // 25 per page: an account is 12 page transactions, each renewing the lease.
    env.set_env("MAILROOM_PAGE_SIZE", "25");
    let store = env.store().await;
    let stored = async |id: i64| {
        store
            .count_messages(&MessageQuery {
                account_id: Some(id),
                ..MessageQuery::default()
            })
            .await
            .unwrap()
    };
    let worker = |id: &str, concurrency: &str| {
        env.spawn(&[
            "--json",
            "-v",
            "worker",
            "--worker-id",
            id,
            "--concurrency",
            concurrency,
            "--lease-ttl",
            TTL,
            "--interval",
            "1h",
            "--poll-interval",
            "100ms",
        ])
    };

    // w1 syncs four accounts at a time; once it has finished some and is a quarter
    // to three quarters through another, it is SIGKILLed after a random 0–100 ms.
    let mut w1 = worker("w1", "4");
    w1.wait_stdout(Duration::from_secs(60), |out| out.lines().count() >= 1);
    wait_for(
        "w1 part-way through an account",
        Duration::from_secs(30),
        async || {
            for a in store.list_accounts().await.unwrap() {
                let n = stored(a.id).await;
                if a.lease_owner.as_deref() == Some("w1")
                    && (MESSAGES / 4..MESSAGES * 3 / 4).contains(&n)
                {
                    return true;
                }
            }
            false
        },
    )
    .await;
    std::thread::sleep(Duration::from_millis(rng.range(0, 100)));
    assert!(w1.sigkill(), "w1 was running");
    let done_by_w1: BTreeSet<String> = worker_lines(&w1.stdout())
        .into_iter()
        .map(|(a, outcome)| {
            assert_eq!(outcome, "synced");
            a
        })
        .collect();
    let orphans: Vec<_> = store
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.lease_owner.as_deref() == Some("w1"))
        .collect();
    assert!(!orphans.is_empty(), "w1 held leases when it died");
    let mut counts = Vec::new();
    for a in &orphans {
        counts.push((a.email.clone(), stored(a.id).await));
    }
    let partial = counts
        .iter()
        .filter(|(_, n)| (1..MESSAGES).contains(n))
        .count();
    assert!(
        partial >= 1,
        "w1 died in the middle of an account's sync: {counts:?}, done: {done_by_w1:?}"
    );
    let expiry = orphans
        .iter()
        .map(|a| a.lease_expires_at.expect("a lease expiry"))
        .min()
        .unwrap();
    let before = env.sim.counters();
    env.sim.set_faults(Faults {
        latency: Duration::from_millis(5),
        ..Faults::none()
    });

    // w2 takes everything else at once, but not w1's accounts while their leases run
    // — though they come first in its claim order (never synced, lowest ids).
    let mut w2 = worker("w2", "8");
    wait_for(
        "w2 to claim accounts",
        Duration::from_secs(30),
        async || {
            let accounts = store.list_accounts().await.unwrap();
            accounts
                .iter()
                .any(|a| a.lease_owner.as_deref() == Some("w2"))
                || accounts
                    .iter()
                    .any(|a| a.last_sync_at.is_some() && !done_by_w1.contains(&a.email))
        },
    )
    .await;
    assert!(w2.is_running(), "{}", w2.stderr());
    assert!(
        Utc::now() < expiry - chrono::Duration::milliseconds(300),
        "w2 claimed nothing before w1's leases ran out: cannot tell whether it respected them"
    );
    let skipped = orphans.iter().map(|a| a.id).min().unwrap();
    let claimed = store
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.lease_owner.as_deref() == Some("w2") || a.last_sync_at.is_some())
        .filter(|a| !done_by_w1.contains(&a.email))
        .map(|a| a.id)
        .collect::<Vec<_>>();
    assert!(
        claimed.iter().any(|id| *id > skipped),
        "w2 went past a leased account in its claim order"
    );
    let now = env.sim.counters();
    for a in &orphans {
        assert_eq!(
            now.requests_by_mailbox.get(&a.email),
            before.requests_by_mailbox.get(&a.email),
            "{} was touched while w1's lease on it was live",
            a.email
        );
        assert_eq!(
            env.account(&a.email).await.lease_owner.as_deref(),
            Some("w1")
        );
    }

    // After the TTL, w2 takes w1's accounts over and finishes them.
    let started = Instant::now();
    wait_for(
        "every account synced",
        Duration::from_secs(90),
        async || {
            store.list_accounts().await.unwrap().iter().all(|a| {
                a.last_sync_at.is_some()
                    && a.lease_owner.is_none()
                    && a.status == AccountStatus::Active
            })
        },
    )
    .await;
    eprintln!(
        "e2e: {} orphaned accounts ({partial} part-synced), taken over {:?} after the check",
        orphans.len(),
        started.elapsed()
    );
    w2.sigterm();
    let out = w2.wait(Duration::from_secs(30));
    check_code(&out, 0, "w2 after SIGTERM");
    assert!(out.stderr.contains("worker stopped"), "{}", out.stderr);
    let by_w2 = worker_lines(&out.stdout);
    for (account, outcome) in &by_w2 {
        assert_eq!(outcome, "synced", "{account}");
        assert!(
            !done_by_w1.contains(account),
            "{account} synced again by w2"
        );
    }
    let by_w2: BTreeMap<&str, usize> = by_w2.iter().fold(BTreeMap::new(), |mut m, (a, _)| {
        *m.entry(a.as_str()).or_default() += 1;
        m
    });
    assert!(
        by_w2.values().all(|n| *n == 1),
        "w2 synced an account twice: {by_w2:?}"
    );
    assert_eq!(
        by_w2.len() + done_by_w1.len(),
        M,
        "every account synced once in all"
    );
    for a in &orphans {
        assert!(
            by_w2.contains_key(a.email.as_str()),
            "{} taken over by w2",
            a.email
        );
        let synced = env.account(&a.email).await.last_sync_at.unwrap();
        assert!(
            synced >= a.lease_expires_at.unwrap(),
            "{} finished before w1's lease expired",
            a.email
        );
    }
    // Nothing lost or doubled by the pages w1 stored before it died.
    for email in &emails {
        assert_account_matches(store, email, &env.sim.mailbox(email).unwrap(), &INBOX).await;
    }
}
