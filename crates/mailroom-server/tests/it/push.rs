//! Push end to end: the simulator validates the worker's endpoint, notifies it of
//! every change, and the worker syncs what changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mailroom_server::{Server, ServerState};
use mailroom_sim::{Lifecycle, MailboxSpec, NotificationFaults, SimConfig, Simulator};
use mailroom_sync::chrono::{self, Utc};
use mailroom_sync::graph::GraphConfig;
use mailroom_sync::imap::ImapOptions;
use mailroom_sync::oauth::{AccessToken, RefreshToken};
use mailroom_sync::store::{MessageQuery, NewAccount, SealedCredentials, Store};
use mailroom_sync::{
    AccountKind, AccountReport, CancellationToken, Credentials, DefaultFactory, FernetKey, Push,
    PushConfig, SyncObserver, Syncer, Vault, WorkerConfig,
};

use crate::support::{Scrape, get};

/// Counts account syncs.
#[derive(Default)]
struct Syncs(AtomicU64);

impl SyncObserver for Syncs {
    fn account_finished(&self, _: &AccountReport) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct Env {
    sim: Simulator,
    store: Store,
    vault: Arc<Vault>,
    accounts: Vec<(i64, String)>,
}

async fn env(store: Store, mailboxes: usize) -> Env {
    let addresses: Vec<String> = (0..mailboxes)
        .map(|i| format!("user{i}@push.test"))
        .collect();
    let sim = Simulator::start(
        SimConfig::default().mailboxes(
            addresses
                .iter()
                .map(|a| MailboxSpec::new(a, 5).attachment_percent(0))
                .collect(),
        ),
    )
    .await
    .unwrap();
    let vault = Arc::new(Vault::new(vec![FernetKey::generate()]).unwrap());
    let mut accounts = Vec::new();
    for address in &addresses {
        let tokens = sim
            .issue_tokens(address, "push-app", &["Mail.ReadWrite", "offline_access"])
            .unwrap();
        let mut oauth = mailroom_sync::graph::OAuthCredentials::new("push-app");
        oauth.token = Some(AccessToken::new(tokens.access_token));
        oauth.refresh_token = tokens.refresh_token.map(RefreshToken::new);
        oauth.expiry = Some(Utc::now() + chrono::Duration::seconds(tokens.expires_in as i64));
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
        accounts.push((account.id, address.clone()));
    }
    Env {
        sim,
        store,
        vault,
        accounts,
    }
}

struct Worker {
    push: Push,
    addr: std::net::SocketAddr,
    url: String,
    syncs: Arc<Syncs>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// A worker with push and its listener on `listener` (or a new port); it polls
/// for due accounts only every minute, so what it syncs sooner was woken by push.
async fn worker(
    env: &Env,
    id: &str,
    listener: Option<tokio::net::TcpListener>,
    tune: impl FnOnce(&mut PushConfig, &mut WorkerConfig),
) -> Worker {
    let factory = DefaultFactory::new(
        env.sim.base_url(),
        GraphConfig::default().graph_url(env.sim.graph_url()),
        ImapOptions::default(),
    );
    let syncer = Syncer::new(env.store.clone(), env.vault.clone(), Arc::new(factory));
    let listener = match listener {
        Some(l) => l,
        None => tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}");
    let mut push_config = PushConfig::new(url.clone());
    let syncs = Arc::new(Syncs::default());
    let mut config = WorkerConfig {
        worker_id: id.into(),
        poll_interval: Duration::from_secs(60),
        lease_ttl: Duration::from_secs(30),
        observer: syncs.clone(),
        ..WorkerConfig::default()
    };
    tune(&mut push_config, &mut config);
    let push = Push::new(syncer.clone(), push_config);
    config.push = Some(push.clone());
    let server = Server::with_listener(
        listener,
        ServerState {
            syncer: syncer.clone(),
            ops: mailroom_server::ops::Ops::new(),
            push: Some(push.clone()),
        },
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move {
            let serving = tokio::spawn(server.run(stop.clone()));
            let _ = syncer.run_worker(config, stop.clone()).await;
            stop.cancel();
            let _ = serving.await;
        }
    });
    Worker {
        push,
        addr,
        url,
        syncs,
        stop,
        task,
    }
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn messages(store: &Store, account: i64) -> u64 {
    store
        .count_messages(&MessageQuery {
            account_id: Some(account),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Waits until the simulator has `n` subscriptions and the database knows them.
async fn subscribed(env: &Env, n: usize) {
    wait_for("the subscriptions", Duration::from_secs(20), || async {
        let mut stored = 0;
        for (account, _) in &env.accounts {
            stored += env
                .store
                .list_subscriptions(*account)
                .await
                .unwrap()
                .iter()
                .filter(|s| s.subscription_id.is_some())
                .count();
        }
        env.sim.subscriptions().len() == n && stored == n
    })
    .await;
}

async fn stores_sqlite() -> Store {
    Store::connect("sqlite::memory:").await.unwrap()
}

async fn postgres() -> Store {
    let url = mailroom_store::testing::fresh_postgres_url().await;
    Store::connect(&url).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_message_reaches_the_database_through_a_validated_subscription() {
    for store in [stores_sqlite().await, postgres().await] {
        let env = env(store, 1).await;
        let (account, address) = env.accounts[0].clone();
        let w = worker(&env, "w1", None, |_, _| {}).await;
        subscribed(&env, 1).await;
        let counters = env.sim.counters();
        assert_eq!(counters.subscriptions_created, 1);
        // Both URLs were validated, and nothing failed.
        assert_eq!((counters.validations, counters.validation_failures), (2, 0));
        let sub = &env.sim.subscriptions()[0];
        assert_eq!(
            sub.notification_url,
            format!("{}/graph/notifications", w.url)
        );
        assert_eq!(
            sub.lifecycle_notification_url.as_deref(),
            Some(format!("{}/graph/lifecycle", w.url).as_str())
        );
        // The state is in the database, the secret sealed.
        let rows = env.store.list_subscriptions(account).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].subscription_id.as_deref(), Some(sub.id.as_str()));
        assert!(rows[0].client_state.is_some());
        // With push healthy the account is polled at the safety net (1 h).
        wait_for(
            "the safety-net schedule",
            Duration::from_secs(10),
            || async {
                let a = env.store.get_account(account).await.unwrap();
                a.next_sync_at
                    .is_some_and(|t| t > Utc::now() + chrono::Duration::minutes(50))
            },
        )
        .await;

        let before = messages(&env.store, account).await;
        env.sim
            .mailbox(&address)
            .unwrap()
            .add_messages("inbox", 1)
            .unwrap();
        // The worker polls every minute and the account is due in an hour: only
        // the notification can bring the message in time.
        wait_for("the new message", Duration::from_secs(10), || async {
            messages(&env.store, account).await == before + 1
        })
        .await;
        assert!(w.push.stats().accepted >= 1, "{:?}", w.push.stats());
        w.stop().await;
    }
}

/// POSTs a body to the worker's endpoint.
async fn post(url: &str, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_echoes_validation_and_rejects_wrong_secrets_and_unknown_subscriptions() {
    let env = env(stores_sqlite().await, 1).await;
    let (account, _) = env.accounts[0].clone();
    let w = worker(&env, "w1", None, |_, _| {}).await;
    subscribed(&env, 1).await;
    let client = reqwest::Client::new();
    for path in ["/graph/notifications", "/graph/lifecycle"] {
        let answer = client
            .post(format!("{}{path}?validationToken=a%20b%26c", w.url))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert!(
            answer.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        assert_eq!(answer.text().await.unwrap(), "a b&c");
    }
    // Let the sync that followed the subscription end, then watch for wake-ups.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let syncs = w.syncs.0.load(Ordering::SeqCst);
    let sub = env.sim.subscriptions()[0].id.clone();
    let body = |id: &str, state: &str| {
        format!(
            r#"{{"value":[{{"subscriptionId":"{id}","changeType":"created","clientState":"{state}","resource":"Users/u/Messages/m"}}]}}"#
        )
    };
    let notifications = format!("{}/graph/notifications", w.url);
    let answer = post(&notifications, body(&sub, "not-the-secret")).await;
    assert_eq!(answer.status(), 202);
    let answer = post(&notifications, body("no-such-subscription", "x")).await;
    assert_eq!(answer.status(), 202);
    let answer = post(&notifications, "not json".into()).await;
    assert_eq!(answer.status(), 202);
    wait_for("the checks", Duration::from_secs(5), || async {
        let s = w.push.stats();
        s.rejected_client_state == 1 && s.rejected_unknown == 1 && s.malformed == 1
    })
    .await;
    assert_eq!(w.push.stats().accepted, 0);
    // What the endpoint counted is on /metrics.
    let (code, metrics) = get(w.addr, "/metrics").await;
    assert_eq!(code, 200, "{metrics}");
    let scrape = Scrape::parse(&metrics);
    for (result, n) in [
        ("accepted", 0.0),
        ("rejected_client_state", 1.0),
        ("rejected_unknown", 1.0),
        ("malformed", 1.0),
        ("overflowed", 0.0),
    ] {
        let labels = [("result", result)];
        let got = scrape.sum("mailroom_push_notifications_total", &labels);
        assert_eq!(got, n, "{result}: {metrics}");
    }
    assert!(scrape.has("mailroom_push_dirty_marks_total"), "{metrics}");
    let rows = env.store.list_subscriptions(account).await.unwrap();
    assert_eq!(rows[0].dirty_at, None, "nothing marked");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.syncs.0.load(Ordering::SeqCst), syncs, "no sync woken");
    // Too large a body is refused before it is read.
    let answer = post(
        &notifications,
        "x".repeat(mailroom_server::notifications::MAX_BODY + 1),
    )
    .await;
    assert_eq!(answer.status(), 413);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_500_notifications_is_a_few_delta_rounds() {
    let env = env(postgres().await, 1).await;
    let (account, address) = env.accounts[0].clone();
    let w = worker(&env, "w1", None, |_, _| {}).await;
    subscribed(&env, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = messages(&env.store, account).await;
    let syncs = w.syncs.0.load(Ordering::SeqCst);
    let mailbox = env.sim.mailbox(&address).unwrap();
    for _ in 0..500 {
        mailbox.add_messages("inbox", 1).unwrap();
    }
    wait_for("500 new messages", Duration::from_secs(30), || async {
        messages(&env.store, account).await == before + 500
    })
    .await;
    // Let late notifications land, then count.
    wait_for("every notification", Duration::from_secs(10), || async {
        env.sim.counters().notifications_sent >= 500
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rounds = w.syncs.0.load(Ordering::SeqCst) - syncs;
    assert!(
        (1..=6).contains(&rounds),
        "{rounds} delta rounds for 500 notifications"
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_renew_recreate_and_resync() {
    let env = env(stores_sqlite().await, 1).await;
    let (account, address) = env.accounts[0].clone();
    let w = worker(&env, "w1", None, |_, _| {}).await;
    subscribed(&env, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mailbox = env.sim.mailbox(&address).unwrap();

    // missed: the change notification was lost; the lifecycle event brings the change.
    env.sim.set_notification_faults(NotificationFaults {
        drop_percent: 100.0,
        ..NotificationFaults::default()
    });
    let before = messages(&env.store, account).await;
    mailbox.add_messages("inbox", 1).unwrap();
    wait_for(
        "the dropped notification",
        Duration::from_secs(5),
        || async { env.sim.counters().notifications_dropped >= 1 },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        messages(&env.store, account).await,
        before,
        "not synced yet"
    );
    let sub = env.sim.subscriptions()[0].id.clone();
    assert!(env.sim.send_lifecycle(&sub, Lifecycle::Missed));
    wait_for("the missed change", Duration::from_secs(10), || async {
        messages(&env.store, account).await == before + 1
    })
    .await;
    env.sim
        .set_notification_faults(NotificationFaults::default());

    // reauthorizationRequired: the subscription is renewed (same id).
    let renewed = env.sim.counters().subscriptions_renewed;
    assert!(
        env.sim
            .send_lifecycle(&sub, Lifecycle::ReauthorizationRequired)
    );
    wait_for("the renewal", Duration::from_secs(10), || async {
        env.sim.counters().subscriptions_renewed == renewed + 1
    })
    .await;
    assert_eq!(env.sim.subscriptions()[0].id, sub);

    // subscriptionRemoved: a new subscription, and a delta round for what happened
    // meanwhile.
    env.sim.set_notification_faults(NotificationFaults {
        drop_percent: 100.0,
        ..NotificationFaults::default()
    });
    mailbox.add_messages("inbox", 1).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    env.sim
        .set_notification_faults(NotificationFaults::default());
    assert!(env.sim.send_lifecycle(&sub, Lifecycle::SubscriptionRemoved));
    wait_for("a new subscription", Duration::from_secs(10), || async {
        env.sim.subscriptions().iter().any(|s| s.id != sub)
    })
    .await;
    wait_for(
        "the change made meanwhile",
        Duration::from_secs(10),
        || async { messages(&env.store, account).await == before + 2 },
    )
    .await;
    assert_eq!(env.sim.counters().subscriptions_created, 2);
    // And the new one works.
    mailbox.add_messages("inbox", 1).unwrap();
    wait_for("a notified message", Duration::from_secs(10), || async {
        messages(&env.store, account).await == before + 3
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_renewed_before_they_expire() {
    let env = env(stores_sqlite().await, 1).await;
    let (account, _) = env.accounts[0].clone();
    // Subscriptions of 30 s, renewed when less than 25 s are left; the safety net
    // visits the account every second.
    let w = worker(&env, "w1", None, |push, config| {
        push.lifetime = Duration::from_secs(30);
        push.renew_before = Duration::from_secs(25);
        push.safety_interval = Duration::from_secs(1);
        config.interval = Duration::from_secs(1);
        config.poll_interval = Duration::from_millis(200);
    })
    .await;
    subscribed(&env, 1).await;
    let first = env.sim.subscriptions()[0].clone();
    wait_for("a renewal", Duration::from_secs(20), || async {
        env.sim.counters().subscriptions_renewed >= 1
    })
    .await;
    let now = env.sim.subscriptions();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].id, first.id, "renewed, not recreated");
    assert!(now[0].expires > first.expires);
    // The worker stores the new expiry once Graph's answer is in: just after the
    // simulator counted the renewal.
    wait_for("the renewal stored", Duration::from_secs(5), || async {
        let row = &env.store.list_subscriptions(account).await.unwrap()[0];
        row.expires_at == Some(now[0].expires)
    })
    .await;
    assert_eq!(env.sim.counters().subscriptions_created, 1);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_worker_takes_over_the_subscriptions_of_a_dead_one() {
    let env = env(postgres().await, 2).await;
    // Graph reaches "the worker" at one address (a reverse proxy in production);
    // here the second worker binds the address the first one had.
    let first = worker(&env, "w-first", None, |_, config| {
        config.lease_ttl = Duration::from_secs(2);
    })
    .await;
    subscribed(&env, 2).await;
    let ids: Vec<String> = env.sim.subscriptions().into_iter().map(|s| s.id).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let addr = first.url.trim_start_matches("http://").to_owned();
    // It dies: no clean shutdown, and it holds both accounts' leases.
    first.task.abort();
    first.stop.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let far = Utc::now() + chrono::Duration::days(1);
    env.store
        .claim_due_accounts(
            "w-first",
            10,
            far,
            Utc::now() + chrono::Duration::seconds(2),
        )
        .await
        .unwrap();
    let listener = loop {
        match tokio::net::TcpListener::bind(&addr).await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let second = worker(&env, "w-second", Some(listener), |_, config| {
        config.poll_interval = Duration::from_millis(500);
    })
    .await;
    for (account, address) in env.accounts.clone() {
        let before = messages(&env.store, account).await;
        env.sim
            .mailbox(&address)
            .unwrap()
            .add_messages("inbox", 1)
            .unwrap();
        wait_for(
            "the message, by the second worker",
            Duration::from_secs(15),
            || async { messages(&env.store, account).await > before },
        )
        .await;
    }
    // The same subscriptions, checked against the secrets in the database.
    let mut now: Vec<String> = env.sim.subscriptions().into_iter().map(|s| s.id).collect();
    let mut ids = ids;
    now.sort();
    ids.sort();
    assert_eq!(now, ids);
    assert!(
        second.push.stats().accepted >= 2,
        "{:?}",
        second.push.stats()
    );
    let owners: HashMap<i64, Option<String>> = {
        let mut m = HashMap::new();
        for (account, _) in &env.accounts {
            m.insert(
                *account,
                env.store.get_account(*account).await.unwrap().lease_owner,
            );
        }
        m
    };
    assert!(
        owners.values().all(|o| o.as_deref() != Some("w-first")),
        "{owners:?}"
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_go_with_their_folder_and_their_account() {
    use mailroom_sync::store::AccountUpdate;
    let env = env(stores_sqlite().await, 1).await;
    let (account, _) = env.accounts[0].clone();
    env.store
        .update_account(
            account,
            AccountUpdate {
                sync_folders: Some(vec!["INBOX".into(), "ARCHIVE".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let w = worker(&env, "w1", None, |_, config| {
        config.poll_interval = Duration::from_millis(200);
    })
    .await;
    subscribed(&env, 2).await;
    wait_for("the round to end", Duration::from_secs(10), || async {
        let a = env.store.get_account(account).await.unwrap();
        a.lease_owner.is_none()
            && a.next_sync_at
                .is_some_and(|t| t > Utc::now() + chrono::Duration::minutes(50))
    })
    .await;
    // The user stops syncing the archive: its subscription is deleted on Graph at the
    // account's next round.
    let folders = env.store.list_folders(account).await.unwrap();
    let archive = folders
        .iter()
        .find(|f| f.folder.path == "Archive")
        .expect("archive synced");
    env.store
        .update_account(
            account,
            AccountUpdate {
                sync_folders: Some(vec!["INBOX".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    env.store
        .set_folders_removed(account, &[archive.id], true, Utc::now())
        .await
        .unwrap();
    env.store.wake_account(account, Utc::now()).await.unwrap();
    wait_for(
        "the archive's subscription deleted",
        Duration::from_secs(10),
        || async {
            env.sim.subscriptions().len() == 1
                && env.store.list_subscriptions(account).await.unwrap().len() == 1
        },
    )
    .await;
    assert_eq!(env.sim.counters().subscriptions_deleted, 1);
    assert_eq!(
        env.store.list_subscriptions(account).await.unwrap().len(),
        1
    );
    w.stop().await;
    // Removing the account deletes the rest.
    let factory = DefaultFactory::new(
        env.sim.base_url(),
        GraphConfig::default().graph_url(env.sim.graph_url()),
        ImapOptions::default(),
    );
    let syncer = Syncer::new(env.store.clone(), env.vault.clone(), Arc::new(factory));
    let a = env.store.get_account(account).await.unwrap();
    assert_eq!(syncer.unsubscribe_account(&a).await.unwrap(), 1);
    assert!(env.sim.subscriptions().is_empty());
    assert!(
        env.store
            .list_subscriptions(account)
            .await
            .unwrap()
            .is_empty()
    );
}
