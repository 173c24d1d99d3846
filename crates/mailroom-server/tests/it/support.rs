//! A syncer over a store, the listener in front of it, and a Prometheus text parser.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use mailroom_server::ops::Ops;
use mailroom_server::{Server, ServerState};
use mailroom_sync::CancellationToken;
use mailroom_sync::graph::GraphConfig;
use mailroom_sync::imap::ImapOptions;
use mailroom_sync::store::{NewAccount, SealedCredentials};
use mailroom_sync::{
    Account, AccountKind, Credentials, DefaultFactory, FernetKey, Store, Syncer, Vault,
};

/// A syncer over `store` whose Graph and identity platform are the simulator at
/// `sim` (`None`: nothing reachable, for tests that sync nothing).
pub fn syncer(store: &Store, sim: Option<&mailroom_sim::Simulator>) -> Syncer {
    let (authority, graph) = match sim {
        Some(sim) => (sim.base_url(), sim.graph_url()),
        None => (
            "http://127.0.0.1:9".to_owned(),
            "http://127.0.0.1:9/v1.0".to_owned(),
        ),
    };
    let factory = DefaultFactory::new(
        &authority,
        GraphConfig::default().graph_url(&graph).delta_page_size(20),
        ImapOptions::default(),
    );
    Syncer::new(
        store.clone(),
        Arc::new(Vault::new(vec![FernetKey::generate()]).unwrap()),
        Arc::new(factory),
    )
}

/// Adds an Outlook account with these credentials, sealed by the syncer's vault.
pub async fn add_account(syncer: &Syncer, email: &str, credentials: &Credentials) -> Account {
    let sealed =
        SealedCredentials::new(syncer.vault().encrypt(credentials.to_json().as_bytes())).unwrap();
    syncer
        .store()
        .create_account(NewAccount {
            email: email.to_owned(),
            kind: AccountKind::Outlook,
            credentials: sealed,
            sync_folders: Vec::new(),
        })
        .await
        .unwrap()
}

/// OAuth credentials the simulator issued for `user`; `expired` makes the access
/// token stale so that the first request refreshes it.
pub fn sim_credentials(sim: &mailroom_sim::Simulator, user: &str, expired: bool) -> Credentials {
    use mailroom_core::{AccessToken, OAuthCredentials, RefreshToken};
    let tokens = sim
        .issue_tokens(
            user,
            "ops-test",
            &["Mail.ReadWrite", "User.Read", "offline_access"],
        )
        .unwrap();
    let mut oauth = OAuthCredentials::new("ops-test");
    oauth.token = Some(AccessToken::new(tokens.access_token));
    oauth.refresh_token = tokens.refresh_token.map(RefreshToken::new);
    oauth.scopes = tokens.scope.split(' ').map(str::to_owned).collect();
    let lifetime = if expired {
        chrono::Duration::minutes(-5)
    } else {
        chrono::Duration::seconds(tokens.expires_in as i64)
    };
    oauth.expiry = Some(chrono::Utc::now() + lifetime);
    Credentials::OAuth(oauth)
}

/// The listener, serving until the test ends (or `shutdown`).
pub async fn serve(syncer: &Syncer, ops: Ops) -> (SocketAddr, CancellationToken) {
    let state = ServerState {
        syncer: syncer.clone(),
        ops,
        push: None,
    };
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), state)
        .await
        .unwrap();
    let addr = server.local_addr();
    let shutdown = CancellationToken::new();
    tokio::spawn(server.run(shutdown.clone()));
    (addr, shutdown)
}

/// `GET http://{addr}{path}`: status and body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let resp = mailroom_sync::graph::http_client_builder()
        .build()
        .unwrap()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// Samples of a Prometheus text page: `name{labels}` → value.
#[derive(Debug, Default)]
pub struct Scrape(pub BTreeMap<String, f64>);

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let mut samples = BTreeMap::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
            assert!(
                samples.insert(series.to_owned(), value).is_none(),
                "series twice: {series}"
            );
        }
        Scrape(samples)
    }

    /// The sum over the series of `name` whose labels contain every `k="v"` of
    /// `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(series, _)| {
                let (n, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| v)
            .sum()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0
            .keys()
            .any(|s| s == name || s.starts_with(&format!("{name}{{")))
    }
}
