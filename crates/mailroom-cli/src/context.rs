//! Resolved configuration and the handles every command shares: the database, the
//! keys, the HTTP client, connectors.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use mailroom_core::{AccountStatus, Connector, ConnectorError, Credentials};
use mailroom_graph::{GraphConfig, RetryPolicy};
use mailroom_imap::ImapOptions;
use mailroom_store::{Account, AccountUpdate, Store, redact_url};
use mailroom_sync::{DefaultFactory, Syncer};
use mailroom_vault::{FernetKey, Vault};
use tokio::sync::OnceCell;

use crate::cli::Global;
use crate::exit::{Code, Failure};

/// Where the keys came from, for messages.
#[derive(Debug, Clone)]
pub enum KeyOrigin {
    /// `--key` / `MAILROOM_KEY`.
    Env,
    /// A key file.
    File(PathBuf),
}

impl std::fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyOrigin::Env => f.write_str("MAILROOM_KEY"),
            KeyOrigin::File(p) => write!(f, "key file {}", p.display()),
        }
    }
}

/// The configured keys.
#[derive(Debug)]
pub struct Keys {
    /// Newest first.
    pub keys: Vec<FernetKey>,
    /// Where they came from.
    pub origin: KeyOrigin,
}

/// Everything a command needs, resolved from flags, environment and defaults.
#[derive(Debug)]
pub struct Ctx {
    /// The flags as given.
    pub global: Global,
    /// The database URL in use.
    pub database_url: String,
    /// The key file in use when no `--key` is given.
    pub key_file: Option<PathBuf>,
    /// The database is the default file in the user's data directory (whose
    /// directory is created, 0700, when missing).
    default_database: bool,
    http: reqwest::Client,
    store: OnceCell<Store>,
    vault: OnceCell<(Arc<Vault>, KeyOrigin)>,
}

/// `<data dir>/mailroom`.
fn data_dir() -> Result<PathBuf> {
    dirs::data_dir().map(|d| d.join("mailroom")).ok_or_else(|| {
        Failure::err(
            Code::Failure,
            "cannot find the user's data directory (no HOME?): set MAILROOM_DATABASE_URL and MAILROOM_KEY_FILE",
        )
    })
}

impl Ctx {
    /// Resolves the configuration. Nothing is opened or created yet.
    pub fn new(global: Global) -> Result<Ctx> {
        let (database_url, default_database) = match &global.database_url {
            Some(url) if !url.trim().is_empty() => (url.trim().to_owned(), false),
            _ => {
                let path = data_dir()?.join("mailroom.sqlite");
                (format!("sqlite://{}?mode=rwc", path.display()), true)
            }
        };
        let key_file = match (&global.key, &global.key_file) {
            (Some(k), _) if !k.trim().is_empty() => None,
            (_, Some(path)) => Some(path.clone()),
            _ => Some(data_dir()?.join("key")),
        };
        let http = mailroom_oauth::http_client_builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("mailroom/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Ctx {
            global,
            database_url,
            key_file,
            default_database,
            http,
            store: OnceCell::new(),
            vault: OnceCell::new(),
        })
    }

    /// `--json`.
    pub fn json(&self) -> bool {
        self.global.json
    }

    /// The shared HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The database URL without its password.
    pub fn database_display(&self) -> String {
        redact_url(&self.database_url)
    }

    /// The database, connected and migrated on first use.
    pub async fn store(&self) -> Result<&Store> {
        self.store
            .get_or_try_init(|| async {
                if let Some(path) = sqlite_path(&self.database_url)
                    && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                {
                    if self.default_database {
                        create_private_dir(dir).with_context(|| {
                            format!("cannot create the data directory {}", dir.display())
                        })?;
                    } else if !dir.is_dir() {
                        return Err(Failure::err(
                            Code::Failure,
                            format!(
                                "cannot open the database {}: the directory {} does not exist — create it, or leave MAILROOM_DATABASE_URL / --database-url unset to use the default location",
                                self.database_display(),
                                dir.display()
                            ),
                        ));
                    }
                }
                Store::connect(&self.database_url).await.with_context(|| {
                    format!(
                        "cannot open the database {} — check MAILROOM_DATABASE_URL / --database-url",
                        self.database_display()
                    )
                })
            })
            .await
    }

    /// Reads the configured keys; never creates a key file.
    pub fn load_keys(&self) -> Result<Keys> {
        if let Some(list) = self.global.key.as_deref().filter(|k| !k.trim().is_empty()) {
            let keys = mailroom_vault::parse_key_list(list).map_err(|e| {
                Failure::err(
                    Code::Failure,
                    format!("MAILROOM_KEY / --key is not a usable key list: {e}"),
                )
            })?;
            return Ok(Keys {
                keys,
                origin: KeyOrigin::Env,
            });
        }
        let path = self
            .key_file
            .clone()
            .expect("a key file when no key is given");
        if !path.exists() {
            return Err(Failure::err(
                Code::Failure,
                format!(
                    "no key configured: {} does not exist — set MAILROOM_KEY or MAILROOM_KEY_FILE to the key(s) that encrypted the accounts, or start afresh with `mailroom key generate --write`",
                    path.display()
                ),
            ));
        }
        let keys = mailroom_vault::read_key_file(&path)
            .map_err(|e| Failure::err(Code::Failure, format!("cannot use the keys: {e}")))?;
        Ok(Keys {
            keys,
            origin: KeyOrigin::File(path),
        })
    }

    /// The vault over the configured keys.
    pub async fn vault(&self) -> Result<Arc<Vault>> {
        self.vault_inner(false).await
    }

    /// The vault for adding an account: with no key configured and no account stored
    /// yet (first use), a key file is created (0600) with a new key.
    pub async fn vault_for_new_account(&self) -> Result<Arc<Vault>> {
        self.vault_inner(true).await
    }

    async fn vault_inner(&self, may_create: bool) -> Result<Arc<Vault>> {
        let (vault, _) = self
            .vault
            .get_or_try_init(|| async {
                if may_create
                    && let Some(path) = &self.key_file
                    && self
                        .global
                        .key
                        .as_deref()
                        .is_none_or(|k| k.trim().is_empty())
                    && !path.exists()
                {
                    let accounts = self.store().await?.list_accounts().await?;
                    if accounts.is_empty() {
                        create_key_file(path)?;
                    }
                }
                let keys = self.load_keys()?;
                let vault = Vault::new(keys.keys).map_err(|e| anyhow!("{e}"))?;
                Ok::<_, anyhow::Error>((Arc::new(vault), keys.origin))
            })
            .await?;
        Ok(Arc::clone(vault))
    }

    /// Where the keys come from, once [`vault`](Self::vault) succeeded.
    pub fn key_origin(&self) -> String {
        match self.vault.get() {
            Some((_, origin)) => origin.to_string(),
            None => match &self.key_file {
                Some(p) => format!("key file {}", p.display()),
                None => "MAILROOM_KEY".into(),
            },
        }
    }

    /// The Graph settings: URL, shared client, retries, delta page size.
    pub fn graph_config(&self) -> GraphConfig {
        let config = GraphConfig::default()
            .graph_url(self.global.graph_url.clone())
            .http_client(self.http.clone())
            .retry(RetryPolicy {
                max_attempts: self.global.max_attempts,
                ..RetryPolicy::default()
            });
        match self.global.page_size {
            Some(n) => config.delta_page_size(n),
            None => config,
        }
    }

    /// The IMAP settings: CA file, authority and page size.
    pub fn imap_options(&self) -> ImapOptions {
        let mut options = ImapOptions::default().authority_url(self.global.authority_url.clone());
        if let Some(ca) = &self.global.imap_ca_file {
            options = options.ca_file(ca.clone());
        }
        if let Some(n) = self.global.page_size {
            options = options.page_size(n);
        }
        options
    }

    /// The sync engine over the database, the keys and the default connector factory.
    pub async fn syncer(&self) -> Result<Syncer> {
        let store = self.store().await?.clone();
        let vault = self.vault().await?;
        let factory = DefaultFactory::new(
            self.global.authority_url.clone(),
            self.graph_config(),
            self.imap_options(),
        );
        Ok(Syncer::new(store, vault, Arc::new(factory)))
    }

    /// An account by address, or an error naming the command that lists them.
    pub async fn account(&self, email: &str) -> Result<Account> {
        self.store()
            .await?
            .find_account(email)
            .await?
            .ok_or_else(|| {
                Failure::err(
                    Code::Failure,
                    format!("no account {email} — see `mailroom account list`"),
                )
            })
    }

    /// The account named by `--account`, or the only one there is.
    pub async fn account_or_only(&self, email: Option<&str>) -> Result<Account> {
        if let Some(email) = email {
            return self.account(email).await;
        }
        let mut accounts = self.store().await?.list_accounts().await?;
        match accounts.len() {
            1 => Ok(accounts.remove(0)),
            0 => Err(Failure::err(
                Code::Failure,
                "no accounts yet — add one with `mailroom account add outlook --email …`",
            )),
            n => Err(Failure::err(
                Code::Usage,
                format!("there are {n} accounts: say which with --account EMAIL"),
            )),
        }
    }

    /// Decrypts an account's credentials, with an error that says which key to check.
    pub fn decrypt(&self, vault: &Vault, account: &Account) -> Result<Credentials> {
        vault
            .decrypt_json::<Credentials>(account.credentials.as_str())
            .map_err(|e| self.decrypt_error(&account.email, &e))
    }

    /// The plain-words error of a credential that does not decrypt.
    pub fn decrypt_error(&self, email: &str, e: &mailroom_vault::Error) -> anyhow::Error {
        let text = e.to_string();
        let text = text.strip_prefix("cannot decrypt: ").unwrap_or(&text);
        Failure::err(
            Code::Failure,
            format!(
                "cannot decrypt the credentials of {email}: {text} — check MAILROOM_KEY / MAILROOM_KEY_FILE (in use: {})",
                self.key_origin()
            ),
        )
    }

    /// The connector of an account, for commands that talk to its server.
    pub async fn connector(&self, account: &Account) -> Result<(Syncer, Arc<dyn Connector>)> {
        let syncer = self.syncer().await?;
        let vault = self.vault().await?;
        // Decrypt here first for the plain-words error.
        self.decrypt(&vault, account)?;
        let connector = syncer.connector_for(account)?;
        Ok((syncer, connector))
    }

    /// After talking to a server: store refreshed credentials (a rotated refresh token
    /// must not be lost) and mark the account `needs_reauth` on a terminal auth error.
    pub async fn settle<T>(
        &self,
        syncer: &Syncer,
        account: &Account,
        connector: &dyn Connector,
        result: std::result::Result<T, ConnectorError>,
    ) -> Result<T> {
        if let Some(credentials) = connector.take_refreshed_credentials() {
            syncer
                .store_credentials(account.id, &credentials)
                .await
                .with_context(|| {
                    format!(
                        "cannot store the refreshed credentials of {}",
                        account.email
                    )
                })?;
        }
        match result {
            Ok(v) => Ok(v),
            Err(e) if e.is_reauth_required() => {
                syncer
                    .store()
                    .update_account(
                        account.id,
                        AccountUpdate {
                            status: Some(AccountStatus::NeedsReauth),
                            last_error: Some(Some(e.to_string())),
                            auth_error_code: Some(e.code().map(str::to_owned)),
                            ..AccountUpdate::default()
                        },
                    )
                    .await?;
                let message = format!(
                    "{e} — {} must sign in again: run `mailroom account reauth {}`",
                    account.email, account.email
                );
                Err(anyhow::Error::new(e).context(message))
            }
            Err(e) => {
                let hint = match Code::of_kind(e.kind()) {
                    Code::Transient => " — retry later",
                    _ => "",
                };
                let message = format!("{e}{hint}");
                Err(anyhow::Error::new(e).context(message))
            }
        }
    }
}

/// The file of a `sqlite://` URL, if it names one.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Creates the data directory, mode 0700 (it holds mail and keys), and its parents
/// (with the usual mode). An existing directory is left as it is.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// Creates a key file with a new key, and says so.
pub fn create_key_file(path: &Path) -> Result<()> {
    let key = FernetKey::generate();
    mailroom_vault::create_key_file(path, &key)
        .map_err(|e| Failure::err(Code::Failure, format!("cannot create the key file: {e}")))?;
    eprintln!(
        "mailroom: created a new key file {} (mode 0600) — back it up: without it the stored credentials cannot be decrypted",
        path.display()
    );
    Ok(())
}
