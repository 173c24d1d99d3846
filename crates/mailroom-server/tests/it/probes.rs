//! `/healthz` and `/readyz` with the codes Kubernetes probes expect: 200 when all is
//! well, 503 when the database is down, the worker loop stalls or its leases run out.

use std::time::Duration;

use mailroom_server::ops::{Ops, WorkerHealth};
use mailroom_sync::Store;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::support::{Scrape, add_account, get, serve, syncer};

#[tokio::test]
async fn readiness_follows_the_worker_loop_and_its_leases() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let syncer = syncer(&store, None);
    let health = WorkerHealth::new("w-ready", Duration::from_millis(300));
    let (addr, _s) = serve(&syncer, Ops::new().with_worker(health.clone())).await;
    health.beat();
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("ok database") && body.contains("ok worker"),
        "{body}"
    );

    // The loop stops going round.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("failed worker"), "{body}");
    assert_eq!(get(addr, "/healthz").await.0, 200, "alive all the same");
    health.beat();
    assert_eq!(get(addr, "/readyz").await.0, 200);

    // A lease of this worker ran out without a renewal.
    let creds = mailroom_sync::Credentials::OAuth(mailroom_core::OAuthCredentials::new("c"));
    add_account(&syncer, "a@x.test", &creds).await;
    let now = chrono::Utc::now();
    let claimed = store
        .claim_due_accounts("w-ready", 1, now, now - chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("failed leases: 1 lease(s) of worker w-ready"),
        "{body}"
    );
    store.release_lease(claimed[0].id, "w-ready").await.unwrap();
    assert_eq!(get(addr, "/readyz").await.0, 200);
}

/// A TCP proxy to PostgreSQL that the test can take away, with every connection.
struct Proxy {
    port: u16,
    tasks: JoinSet<()>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                conns.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Proxy { port, tasks }
    }

    /// The database goes away: no new connection, the open ones cut.
    fn kill(mut self) {
        self.tasks.abort_all();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_when_the_database_goes_down() {
    let url = mailroom_store::testing::fresh_postgres_url().await;
    // postgres://user:password@HOST:PORT/db?options=… → through the proxy.
    let at = url.find('@').unwrap() + 1;
    let slash = at + url[at..].find('/').unwrap();
    let proxy = Proxy::start(url[at..slash].to_owned()).await;
    let proxied = format!("{}127.0.0.1:{}{}", &url[..at], proxy.port, &url[slash..]);
    let store = Store::connect(&proxied).await.unwrap();
    let syncer = syncer(&store, None);
    let (addr, _s) = serve(&syncer, Ops::new()).await;
    assert_eq!(get(addr, "/readyz").await.0, 200);
    assert_eq!(get(addr, "/status?format=json").await.0, 200);

    proxy.kill();
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("failed database"), "{body}");
    assert_eq!(get(addr, "/healthz").await, (200, "ok\n".to_owned()));
    let (code, body) = get(addr, "/metrics").await;
    assert_eq!(code, 200, "metrics still answer: {body}");
    let scrape = Scrape::parse(&body);
    assert_eq!(scrape.sum("mailroom_database_up", &[]), 0.0, "{body}");
    assert!(!scrape.has("mailroom_accounts"));
    let (code, body) = get(addr, "/status?format=json").await;
    assert_eq!(code, 503, "{body}");
}
