//! A sync engine with your own connector factory, with nothing but `mailroom-sync` and
//! tokio: a `ConnectorFactory` that gives Outlook accounts a Graph connector with custom
//! settings (smaller delta pages, immutable ids) and leaves every other account to the
//! default factory, a `Syncer` over an embedded SQLite store and a vault, one account
//! added with its credentials sealed, one sync, and the report.
//!
//! ```sh
//! cargo run -p mailroom-sim -- --port 8917 &
//! MAILROOM_AUTHORITY_URL=http://127.0.0.1:8917 MAILROOM_GRAPH_URL=http://127.0.0.1:8917/v1.0 \
//!     MAILROOM_EMAIL=alice@contoso.test MAILROOM_CREDENTIALS_FILE=alice.json \
//!     cargo run -p mailroom-sync --example custom_factory
//! ```
//!
//! `MAILROOM_CREDENTIALS_FILE` holds the account's credentials JSON (the Python
//! system's shape: `token`, `refresh_token`, `client_id`, `scopes`, `expiry`; or
//! `"type": "imap"` with host and login). `MAILROOM_KEY` is the Fernet key list of the
//! vault (a fresh key when unset); `MAILROOM_DATABASE_URL` the store (default a SQLite
//! file in the temp directory). Leave both URLs unset for Microsoft.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mailroom_sync::graph::{DEFAULT_GRAPH_URL, GraphConfig, GraphConnector};
use mailroom_sync::imap::ImapOptions;
use mailroom_sync::store::{MessageQuery, NewAccount, SealedCredentials};
use mailroom_sync::{
    Account, AccountKind, AccountReport, Connector, ConnectorError, ConnectorFactory, Credentials,
    DefaultFactory, FernetKey, Store, SyncRequest, Syncer, Vault,
};

/// Graph with our own settings for Outlook accounts; the default rule for the rest.
#[derive(Debug)]
pub struct MyFactory {
    authority_url: String,
    graph: GraphConfig,
    fallback: DefaultFactory,
    /// Connectors built so far, by kind: (graph, other).
    built: (AtomicUsize, AtomicUsize),
}

impl MyFactory {
    /// A factory for this identity platform host and Graph root.
    pub fn new(authority_url: &str, graph_url: &str) -> Self {
        let graph = GraphConfig::default()
            .graph_url(graph_url)
            .delta_page_size(25) // smaller transactions, more round trips
            .immutable_ids(true); // ids survive moves
        MyFactory {
            authority_url: authority_url.to_owned(),
            graph: graph.clone(),
            fallback: DefaultFactory::new(authority_url, graph, ImapOptions::default()),
            built: (AtomicUsize::new(0), AtomicUsize::new(0)),
        }
    }

    /// Graph connectors and other connectors built so far.
    pub fn built(&self) -> (usize, usize) {
        (
            self.built.0.load(Ordering::Relaxed),
            self.built.1.load(Ordering::Relaxed),
        )
    }
}

impl ConnectorFactory for MyFactory {
    fn connector(
        &self,
        account: &Account,
        credentials: Credentials,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        match (account.kind, credentials) {
            (AccountKind::Outlook, Credentials::OAuth(oauth)) => {
                println!("graph connector for {}", account.email);
                self.built.0.fetch_add(1, Ordering::Relaxed);
                Ok(Arc::new(GraphConnector::from_credentials(
                    &account.email,
                    oauth,
                    &self.authority_url,
                    self.graph.clone(),
                )?))
            }
            (_, credentials) => {
                println!("default connector for {}", account.email);
                self.built.1.fetch_add(1, Ordering::Relaxed);
                self.fallback.connector(account, credentials)
            }
        }
    }
}

/// What one run saw.
#[derive(Debug)]
pub struct Summary {
    /// The sync report of the account.
    pub report: AccountReport,
    /// Connectors the factory built: (graph, other).
    pub built: (usize, usize),
    /// Messages of the account in the store after the sync.
    pub stored: u64,
}

/// Adds the account (or finds it, on a second run) and syncs it once.
pub async fn run(
    authority_url: &str,
    graph_url: &str,
    database_url: &str,
    vault: Vault,
    email: &str,
    credentials: &Credentials,
) -> Result<Summary, Box<dyn std::error::Error>> {
    let store = Store::connect(database_url).await?;
    let factory = Arc::new(MyFactory::new(authority_url, graph_url));
    let syncer = Syncer::new(store.clone(), Arc::new(vault), factory.clone());

    // The credentials are stored encrypted with the vault's first key; the store only
    // ever sees the Fernet token.
    let account = match store.find_account(email).await? {
        Some(account) => account,
        None => {
            let sealed =
                SealedCredentials::new(syncer.vault().encrypt(credentials.to_json().as_bytes()))?;
            store
                .create_account(NewAccount {
                    email: email.to_owned(),
                    kind: AccountKind::Outlook,
                    credentials: sealed,
                    sync_folders: Vec::new(), // the Inbox
                })
                .await?
        }
    };

    // One sync: every page stored with its cursor in one transaction, refreshed tokens
    // re-sealed at once, the outcome recorded on the account.
    let report = syncer
        .sync_account(account.id, &SyncRequest::default())
        .await?;
    println!("{}: {:?}", report.email, report.outcome);
    for folder in &report.folders {
        println!(
            "  {}: {} pages, {:?}",
            folder.folder.folder.path, folder.pages, folder.stats
        );
    }
    let stored = store
        .count_messages(&MessageQuery {
            account_id: Some(account.id),
            ..MessageQuery::default()
        })
        .await?;
    store.close().await?;
    Ok(Summary {
        report,
        built: factory.built(),
        stored,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let need = |name: &str| var(name).ok_or_else(|| format!("set {name}"));
    let authority = var("MAILROOM_AUTHORITY_URL")
        .unwrap_or_else(|| mailroom_sync::oauth::DEFAULT_CLOUD.to_owned());
    let graph = var("MAILROOM_GRAPH_URL").unwrap_or_else(|| DEFAULT_GRAPH_URL.to_owned());
    let database = var("MAILROOM_DATABASE_URL").unwrap_or_else(|| {
        let path = std::env::temp_dir().join("mailroom-sync-example.sqlite");
        format!("sqlite://{}?mode=rwc", path.display())
    });
    let vault = match var("MAILROOM_KEY") {
        Some(keys) => Vault::from_key_list(&keys)?,
        None => Vault::new(vec![FernetKey::generate()])?,
    };
    let email = need("MAILROOM_EMAIL")?;
    let json = std::fs::read_to_string(need("MAILROOM_CREDENTIALS_FILE")?)?;
    let credentials = Credentials::from_json(&json)?;
    let summary = run(&authority, &graph, &database, vault, &email, &credentials).await?;
    println!("{summary:#?}");
    Ok(())
}
