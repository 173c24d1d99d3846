//! Syncing one account: decrypt, connect, page through each folder, store each page
//! with its cursor in one transaction, persist refreshed credentials, record the outcome.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mailroom_core::{
    AccountStatus, Connector, ConnectorError, Credentials, ErrorKind, FolderRef, StateSink,
    SyncPage,
};
use mailroom_store::{
    Account, FolderCursor, FolderRow, LeaseCheck, PageStats, SealedCredentials, Store, SyncFinish,
    SyncOutcome, SyncPageWrite,
};
use mailroom_vault::Vault;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument as _;

use crate::factory::ConnectorFactory;
use crate::observer::SyncObserver;
use crate::{Error, Result};

/// Everything a sync needs: the store, the vault, and how to build connectors.
#[derive(Clone)]
pub struct Syncer {
    pub(crate) store: Store,
    pub(crate) vault: Arc<Vault>,
    pub(crate) factory: Arc<dyn ConnectorFactory>,
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer")
            .field("store", &self.store)
            .field("vault", &self.vault)
            .finish()
    }
}

/// A worker's lease on the account being synced.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The worker id.
    pub owner: String,
    /// How long each renewal lasts.
    pub ttl: Duration,
}

/// What to sync and how.
#[derive(Clone)]
pub struct SyncRequest {
    /// Folders to sync instead of the account's configured ones.
    pub folders: Option<Vec<FolderRef>>,
    /// A first sync only covers mail received since then.
    pub since: Option<DateTime<Utc>>,
    /// Fence every write with this worker's lease.
    pub lease: Option<Lease>,
    /// When the account is due again after this sync: `Some(interval)` from now (a
    /// worker's schedule), `None` keeps the due time the account has (a sync run by
    /// hand does not move a worker's schedule, whatever its interval).
    pub interval: Option<Duration>,
    /// Stop between pages when cancelled (the current page is still stored).
    pub cancel: CancellationToken,
    /// Progress callbacks.
    pub observer: Arc<dyn SyncObserver>,
    /// How long a folder confirmed gone on the server waits between look-ups (see
    /// [`GONE_RECHECK`]). A sync of named folders (`folders`) always looks them up.
    pub gone_recheck: Duration,
}

/// A configured folder that a sync finds gone on the server (Graph: 404 on its id and
/// not found by path; IMAP: not in LIST) is looked up again at the next sync, which
/// confirms it (the second miss in a row deletes its local messages: mirror), and
/// after that once per this interval, so a folder recreated under the same name is
/// picked up again (a new id, synced from scratch) without a failing request every
/// cycle.
pub const GONE_RECHECK: Duration = Duration::from_secs(3600);

impl Default for SyncRequest {
    fn default() -> Self {
        SyncRequest {
            folders: None,
            since: None,
            lease: None,
            interval: Some(Duration::from_secs(300)),
            cancel: CancellationToken::new(),
            observer: Arc::new(crate::observer::NoopObserver),
            gone_recheck: GONE_RECHECK,
        }
    }
}

impl std::fmt::Debug for SyncRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncRequest")
            .field("folders", &self.folders)
            .field("since", &self.since)
            .field("lease", &self.lease)
            .field("interval", &self.interval)
            .field("gone_recheck", &self.gone_recheck)
            .finish_non_exhaustive()
    }
}

/// How one folder went.
#[derive(Debug, Clone)]
pub struct FolderReport {
    /// The folder as stored.
    pub folder: FolderRow,
    /// Pages stored.
    pub pages: u64,
    /// What the pages changed.
    pub stats: PageStats,
    /// True when the folder was enumerated from scratch (first sync, expired cursor).
    pub reset: bool,
    /// The folder's error, if it failed (naming the folder by its path).
    pub error: Option<String>,
    /// Set when the folder is gone on the server: since when. Not an error: the
    /// folder was skipped or found missing (see [`GONE_RECHECK`]).
    pub gone_since: Option<DateTime<Utc>>,
    /// Messages deleted locally because the folder is confirmed gone (or was
    /// replaced by a recreated folder of the same name).
    pub purged: u64,
}

/// How an account sync ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every folder is up to date.
    Synced,
    /// Stopped between pages because of a shutdown; the account is due again at once.
    Interrupted,
    /// The user must sign in again; the account is now `needs_reauth`.
    ReauthRequired {
        /// The server's code, e.g. `AADSTS700082`.
        code: Option<String>,
        /// What happened, in plain words.
        message: String,
    },
    /// Something else failed; the account stays active and is retried next interval.
    Failed {
        /// The error kind (`transient`, `throttled`, …).
        kind: ErrorKind,
        /// What happened, in plain words.
        message: String,
    },
}

/// The result of [`Syncer::sync_account`].
#[derive(Debug, Clone)]
pub struct AccountReport {
    /// The account id.
    pub account_id: i64,
    /// The account's address.
    pub email: String,
    /// Per folder.
    pub folders: Vec<FolderReport>,
    /// How it ended.
    pub outcome: Outcome,
    /// True when refreshed credentials were stored during the sync.
    pub credentials_refreshed: bool,
}

impl AccountReport {
    /// Totals over all folders.
    pub fn totals(&self) -> PageStats {
        let mut total = PageStats::default();
        for f in &self.folders {
            total += f.stats;
        }
        total
    }
}

/// Per-sync state: the account, its connector, and the credential bookkeeping.
struct Run<'a> {
    syncer: &'a Syncer,
    /// The account row; its `lease_expires_at` follows the renewals this run makes.
    account: Account,
    request: &'a SyncRequest,
    refreshed: bool,
    /// The account's folder rows, when the caller read them with its claim.
    stored: Option<Vec<FolderRow>>,
    /// Cursors of folders whose last page had no changes, stored with the outcome.
    unchanged: Vec<FolderCursor>,
}

impl Syncer {
    /// A syncer over a store, a vault and a connector factory.
    pub fn new(store: Store, vault: Arc<Vault>, factory: Arc<dyn ConnectorFactory>) -> Self {
        Syncer {
            store,
            vault,
            factory,
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The vault.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Decrypts an account's credentials and builds its connector, with a
    /// [`StateSink`] that stores refreshed credentials (re-encrypted) before the new
    /// token is used and records `Retry-After` deadlines on the account.
    pub fn connector_for(&self, account: &Account) -> Result<Arc<dyn Connector>> {
        let credentials = self.decrypt(account)?;
        let connector = self
            .factory
            .connector(account, credentials)
            .map_err(|source| Error::Connector {
                email: account.email.clone(),
                source,
            })?;
        connector.set_state_sink(Arc::new(AccountSink::new(self.clone(), account, None)));
        Ok(connector)
    }

    pub(crate) fn decrypt(&self, account: &Account) -> Result<Credentials> {
        self.vault
            .decrypt_json::<Credentials>(account.credentials.as_str())
            .map_err(|source| Error::Credentials {
                email: account.email.clone(),
                source,
            })
    }

    /// Stores credentials re-encrypted with the vault's first key.
    pub async fn store_credentials(
        &self,
        account_id: i64,
        credentials: &Credentials,
    ) -> Result<()> {
        let sealed = SealedCredentials::new(self.vault.encrypt(credentials.to_json().as_bytes()))?;
        self.store.update_credentials(account_id, &sealed).await?;
        Ok(())
    }

    /// Syncs one account and records the outcome on it.
    ///
    /// Returns `Ok` with a report whatever the connector did (an auth failure marks the
    /// account `needs_reauth`, other failures go into `last_error`); `Err` only when the
    /// store fails or the worker lost its lease.
    pub async fn sync_account(
        &self,
        account_id: i64,
        request: &SyncRequest,
    ) -> Result<AccountReport> {
        let account = self.store.get_account(account_id).await?;
        self.sync_claimed(account, request).await
    }

    /// [`Syncer::sync_account`] for an account as the store just returned it (a
    /// worker's claim returns the rows it leased): it is not read again, and when it
    /// carries `request.lease` with more than half of its time left, the lease is not
    /// renewed before the first write, nor by a page write while more than half of
    /// it is left.
    pub async fn sync_claimed(
        &self,
        account: Account,
        request: &SyncRequest,
    ) -> Result<AccountReport> {
        let synced = self.run_unrecorded(account, None, request).await?;
        let stored = self
            .store
            .finish_sync_with_cursors(
                synced.finish.account_id,
                request.lease.as_ref().map(|l| l.owner.as_str()),
                synced.finish.outcome.clone(),
                &synced.finish.cursors,
            )
            .await?;
        synced.recorded(stored, request.observer.as_ref());
        Ok(synced.report)
    }

    /// A worker's sync of a claimed account, with the folder rows read with the claim
    /// ([`Store::list_folders_of`]: not read again), whose outcome the worker records
    /// with those of other accounts in one statement ([`Store::finish_syncs`]); then
    /// it calls [`Unrecorded::recorded`].
    pub(crate) async fn sync_claimed_unrecorded(
        &self,
        account: Account,
        folders: Vec<FolderRow>,
        request: &SyncRequest,
    ) -> Result<Unrecorded> {
        self.run_unrecorded(account, Some(folders), request).await
    }

    /// The sync up to its outcome, not recorded yet.
    #[tracing::instrument(name = "account_sync", skip_all, fields(account_id = account.id, account = %account.email))]
    async fn run_unrecorded(
        &self,
        account: Account,
        stored: Option<Vec<FolderRow>>,
        request: &SyncRequest,
    ) -> Result<Unrecorded> {
        let account_id = account.id;
        request.observer.account_started(&account);
        let mut run = Run {
            syncer: self,
            account,
            request,
            refreshed: false,
            stored,
            unchanged: Vec::new(),
        };
        let mut folders = Vec::new();
        let outcome = match wait_out_throttling(&run.account, request).await {
            Some(outcome) => outcome,
            None => match run.sync(&mut folders).await {
                Ok(outcome) => outcome,
                Err(RunError::Store(e)) => return Err(e),
                Err(RunError::Connector(e)) => connector_outcome(&e),
                Err(RunError::Credentials(message)) => Outcome::Failed {
                    kind: ErrorKind::InvalidConfig,
                    message,
                },
            },
        };
        let now = Utc::now();
        let next = match (&outcome, request.interval) {
            (Outcome::Interrupted, _) => Some(now),
            (_, Some(interval)) => {
                Some(now + chrono::Duration::from_std(interval).unwrap_or_default())
            }
            (_, None) => None,
        };
        let (status, error, code) = match &outcome {
            Outcome::Synced | Outcome::Interrupted => (AccountStatus::Active, None, None),
            Outcome::ReauthRequired { code, message } => (
                AccountStatus::NeedsReauth,
                Some(message.clone()),
                code.clone(),
            ),
            Outcome::Failed { message, .. } => (AccountStatus::Active, Some(message.clone()), None),
        };
        if let Some(message) = &error {
            tracing::warn!(account = %run.account.email, error = %message, "sync failed");
        }
        Ok(Unrecorded {
            finish: SyncFinish {
                account_id,
                outcome: SyncOutcome {
                    status,
                    error,
                    auth_error_code: code,
                    finished_at: now,
                    next_sync_at: next,
                },
                cursors: std::mem::take(&mut run.unchanged),
            },
            report: AccountReport {
                account_id,
                email: run.account.email.clone(),
                folders,
                outcome,
                credentials_refreshed: run.refreshed,
            },
        })
    }
}

/// An account sync that ran, with the outcome to record.
pub(crate) struct Unrecorded {
    /// What to record (with the unchanged folders' cursors).
    pub(crate) finish: SyncFinish,
    pub(crate) report: AccountReport,
}

impl Unrecorded {
    /// After the outcome was recorded with `stored` of its cursors: telemetry and the
    /// observer.
    pub(crate) fn recorded(&self, stored: u64, observer: &dyn SyncObserver) {
        let unchanged = self.finish.cursors.len() as u64;
        if stored < unchanged {
            // Not expected (the folder was removed or reset meanwhile): the next sync
            // starts from the cursor stored before, which is only slower.
            tracing::warn!(account = %self.report.email, folders = unchanged - stored, "cursors of unchanged folders not stored with the outcome");
        }
        crate::telemetry::account_finished(&self.report);
        observer.account_finished(&self.report);
    }
}

/// The longest `Retry-After` deadline a sync waits out before it starts; a later
/// one skips the sync (the account stays due).
pub const MAX_THROTTLE_WAIT: Duration = Duration::from_secs(120);

/// Honours the server's last `Retry-After` for the mailbox, which an earlier process
/// may have seen: waits until it passes (`None`: go ahead), or returns the outcome
/// when the wait is too long or the sync is cancelled meanwhile.
async fn wait_out_throttling(account: &Account, request: &SyncRequest) -> Option<Outcome> {
    let until = account.throttled_until?;
    let wait = (until - Utc::now())
        .to_std()
        .ok()
        .filter(|w| !w.is_zero())?;
    if wait > MAX_THROTTLE_WAIT {
        return Some(Outcome::Failed {
            kind: ErrorKind::Throttled,
            message: format!(
                "not synced: the server asked not to send requests for {} before {}",
                account.email,
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        });
    }
    tracing::info!(account = %account.email, ?wait, "waiting for the server's retry-after before syncing");
    request.observer.throttled(account, until);
    tokio::select! {
        () = tokio::time::sleep(wait) => None,
        () = request.cancel.cancelled() => Some(Outcome::Interrupted),
    }
}

/// The stored folder a reference names, if it was synced before (it has a cursor) or
/// found gone: a folder that exists is preferred to a gone one of the same name.
fn stored_folder<'a>(stored: &'a [FolderRow], r: &FolderRef) -> Option<&'a FolderRow> {
    let matching = |row: &&FolderRow| match r {
        FolderRef::WellKnown(role) => row.folder.role == Some(*role),
        FolderRef::Id(id) => row.folder.remote_id == *id,
        FolderRef::Path(path) => row.folder.path.to_lowercase() == path.to_string().to_lowercase(),
    };
    let mut rows = stored.iter().filter(matching);
    rows.clone()
        .find(|row| row.cursor.is_some() && row.gone_since.is_none())
        .or_else(|| rows.find(|row| row.gone_since.is_some()))
}

/// Whether a gone folder is looked up on the server in this sync.
fn recheck_due(row: &FolderRow, now: DateTime<Utc>, every: Duration) -> bool {
    // The first miss is confirmed (or not) by the very next sync.
    row.missed_syncs < 2
        || row.checked_at.is_none_or(|checked| {
            now.signed_duration_since(checked)
                .to_std()
                .is_ok_and(|waited| waited >= every)
        })
}

/// The error with the folder named by its path instead of its server id (a Graph id is
/// ~110 characters; the connector only knew the id).
fn named(e: ConnectorError, row: &FolderRow) -> ConnectorError {
    let path = &row.folder.path;
    let id = &row.folder.remote_id;
    let mut text = error_chain(&e).replace(&format!("id:{id}"), path);
    // A bare server id (in a URL, say) too, when it is long enough not to be a word.
    if id != path && id.len() >= 20 {
        text = text.replace(id.as_str(), path);
    }
    let mut named = ConnectorError::new(e.kind(), text);
    if let Some(code) = e.code() {
        named = named.with_code(code);
    }
    if let Some(wait) = e.retry_after() {
        named = named.with_retry_after(wait);
    }
    named
}

fn connector_outcome(e: &ConnectorError) -> Outcome {
    let message = error_chain(e);
    if e.is_reauth_required() {
        Outcome::ReauthRequired {
            code: e.code().map(str::to_owned),
            message,
        }
    } else {
        Outcome::Failed {
            kind: e.kind(),
            message,
        }
    }
}

/// The error and its sources, joined by ": " (what an operator reads).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = s.source();
    }
    message
}

/// Stores what a connector hands over the moment it exists: refreshed credentials
/// (re-encrypted, fenced by the worker's lease when there is one) and `Retry-After`
/// deadlines.
pub(crate) struct AccountSink {
    syncer: Syncer,
    account_id: i64,
    email: String,
    lease: Option<Lease>,
    /// Credentials were stored.
    refreshed: AtomicBool,
    /// Why storing credentials failed (the connector only sees a transient error).
    failure: Mutex<Option<Error>>,
}

impl AccountSink {
    pub(crate) fn new(syncer: Syncer, account: &Account, lease: Option<Lease>) -> AccountSink {
        AccountSink {
            syncer,
            account_id: account.id,
            email: account.email.clone(),
            lease,
            refreshed: AtomicBool::new(false),
            failure: Mutex::new(None),
        }
    }

    fn take_failure(&self) -> Option<Error> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    async fn store(&self, credentials: &Credentials) -> Result<()> {
        let sealed =
            SealedCredentials::new(self.syncer.vault.encrypt(credentials.to_json().as_bytes()))?;
        match &self.lease {
            Some(lease) => {
                let until = Utc::now() + chrono::Duration::from_std(lease.ttl).unwrap_or_default();
                self.syncer
                    .store
                    .update_credentials_leased(
                        self.account_id,
                        &sealed,
                        LeaseCheck {
                            owner: &lease.owner,
                            until,
                            renew: true,
                        },
                    )
                    .await?;
            }
            None => {
                self.syncer
                    .store
                    .update_credentials(self.account_id, &sealed)
                    .await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl StateSink for AccountSink {
    async fn credentials_refreshed(&self, credentials: Credentials) -> Result<(), ConnectorError> {
        match self.store(&credentials).await {
            Ok(()) => {
                self.refreshed.store(true, Ordering::SeqCst);
                tracing::debug!(account = %self.email, "stored refreshed credentials");
                Ok(())
            }
            Err(e) => {
                let message = format!(
                    "cannot store the refreshed credentials of {}: {}",
                    self.email,
                    error_chain(&e)
                );
                *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                Err(ConnectorError::new(ErrorKind::Transient, message))
            }
        }
    }

    async fn throttled(&self, until: DateTime<Utc>) {
        match self
            .syncer
            .store
            .set_throttled_until(self.account_id, until)
            .await
        {
            Ok(()) => {
                tracing::debug!(account = %self.email, %until, "recorded the server's retry-after");
            }
            Err(e) => {
                tracing::warn!(account = %self.email, error = %e, "cannot record the server's retry-after");
            }
        }
    }
}

/// What looking a stored folder up again found.
enum Found {
    /// The folder (under a new id, the old row's messages deleted: how many).
    Folder(FolderRow, u64),
    /// Gone: the row as marked, and the messages deleted if this confirmed it.
    Gone(FolderRow, u64),
    /// The look-up failed otherwise.
    Failed(ConnectorError),
}

enum RunError {
    Store(Error),
    Connector(ConnectorError),
    Credentials(String),
}

impl From<mailroom_store::Error> for RunError {
    fn from(e: mailroom_store::Error) -> Self {
        RunError::Store(e.into())
    }
}

impl From<ConnectorError> for RunError {
    fn from(e: ConnectorError) -> Self {
        RunError::Connector(e)
    }
}

impl Run<'_> {
    async fn sync(&mut self, reports: &mut Vec<FolderReport>) -> Result<Outcome, RunError> {
        let credentials = self
            .syncer
            .decrypt(&self.account)
            .map_err(|e| RunError::Credentials(e.to_string()))?;
        let connector = self
            .syncer
            .factory
            .connector(&self.account, credentials)
            .map_err(RunError::Connector)?;
        let sink = Arc::new(AccountSink::new(
            self.syncer.clone(),
            &self.account,
            self.request.lease.clone(),
        ));
        connector.set_state_sink(sink.clone());
        let result = self.sync_with(&connector, reports).await;
        self.refreshed |= sink.refreshed.load(Ordering::SeqCst);
        // A connector error caused by the store refusing the refreshed credentials (lost
        // lease, database down) is that store error.
        let result = match (result, sink.take_failure()) {
            (Err(RunError::Connector(_)), Some(e)) => Err(RunError::Store(e)),
            (result, _) => result,
        };
        // Whatever happened, keep a refreshed token: the old refresh token may already be
        // invalid (rotation). (Connectors that take the sink have stored it already.)
        self.persist_refreshed(connector.as_ref()).await?;
        if let Err(e) = connector.disconnect().await {
            tracing::debug!(account = %self.account.email, error = %e, "disconnect failed");
        }
        result
    }

    async fn sync_with(
        &mut self,
        connector: &Arc<dyn Connector>,
        reports: &mut Vec<FolderReport>,
    ) -> Result<Outcome, RunError> {
        self.renew_lease().await?;
        let refs = self.folder_refs()?;
        // Folders synced before are taken from the store: a sync with nothing new costs
        // one request per folder (the delta link), not a sign-in check and a folder
        // lookup each time. The first sync of an account connects and resolves.
        let stored = self.drop_removed_folders().await?;
        let now = Utc::now();
        let recheck = if self.request.folders.is_some() {
            Duration::ZERO
        } else {
            self.request.gone_recheck
        };
        let known: Vec<Option<FolderRow>> = refs
            .iter()
            .map(|r| stored_folder(&stored, r).cloned())
            .collect();
        let lookups = known.iter().any(|k| match k {
            None => true,
            Some(row) => row.gone_since.is_some() && recheck_due(row, now, recheck),
        });
        if lookups {
            let connected = connector.connect().await;
            self.persist_refreshed(connector.as_ref()).await?;
            connected?;
        }

        let mut first_error = None;
        for (folder_ref, known) in refs.into_iter().zip(known) {
            if self.request.cancel.is_cancelled() {
                return Ok(Outcome::Interrupted);
            }
            let mut purged = 0;
            let (row, cached) = match known {
                Some(row) if row.gone_since.is_some() => {
                    if !recheck_due(&row, now, recheck) {
                        self.finish_gone(reports, row, 0);
                        continue;
                    }
                    match self
                        .look_again(connector.as_ref(), &folder_ref, &row)
                        .await?
                    {
                        Found::Folder(new, dropped) => {
                            purged += dropped;
                            (new, false)
                        }
                        Found::Gone(row, dropped) => {
                            self.finish_gone(reports, row, dropped);
                            continue;
                        }
                        Found::Failed(e) => {
                            let e = named(e, &row);
                            self.syncer
                                .store
                                .set_folder_error(row.id, Some(&error_chain(&e)))
                                .await?;
                            first_error.get_or_insert(e);
                            continue;
                        }
                    }
                }
                Some(row) => (row, true),
                None => match self.resolve(connector.as_ref(), &folder_ref).await? {
                    Ok(row) => (row, false),
                    Err(e) => {
                        first_error.get_or_insert(e);
                        continue;
                    }
                },
            };
            let mut report = FolderReport {
                folder: row,
                pages: 0,
                stats: PageStats::default(),
                reset: false,
                error: None,
                gone_since: None,
                purged,
            };
            let started = std::time::Instant::now();
            let mut result = self.sync_folder(connector, &mut report).await;
            // A folder taken from the store may be gone (deleted, recreated): look it up
            // on the server once and sync what it is now, or mark it gone.
            if cached
                && report.pages == 0
                && matches!(&result, Err(RunError::Connector(e)) if e.is_not_found())
            {
                tracing::info!(account = %self.account.email, folder = %report.folder.folder.path, "stored folder not found on the server, looking it up again");
                let old = report.folder.clone();
                match self
                    .look_again(connector.as_ref(), &folder_ref, &old)
                    .await?
                {
                    Found::Folder(new, dropped) => {
                        report.folder = new;
                        report.purged += dropped;
                        result = self.sync_folder(connector, &mut report).await;
                    }
                    Found::Gone(row, dropped) => {
                        self.finish_gone(reports, row, dropped);
                        continue;
                    }
                    Found::Failed(e) => result = Err(RunError::Connector(e)),
                }
            }
            let interrupted = matches!(result, Ok(true));
            match result {
                Ok(_) => {}
                Err(RunError::Connector(e)) if !e.is_reauth_required() => {
                    let e = named(e, &report.folder);
                    let text = error_chain(&e);
                    self.syncer
                        .store
                        .set_folder_error(report.folder.id, Some(&text))
                        .await?;
                    report.error = Some(text);
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    reports.push(report);
                    return Err(e);
                }
            }
            crate::telemetry::folder_finished(&report, started.elapsed());
            self.request
                .observer
                .folder_finished(&self.account, &report);
            reports.push(report);
            if interrupted {
                return Ok(Outcome::Interrupted);
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(Outcome::Synced),
        }
    }

    /// Deletes the folders the user stopped syncing (with their messages: the local
    /// copy mirrors what is synced); returns the folders left.
    async fn drop_removed_folders(&mut self) -> Result<Vec<FolderRow>, RunError> {
        let mut stored = match self.stored.take() {
            Some(stored) => stored,
            None => self.syncer.store.list_folders(self.account.id).await?,
        };
        let removed: Vec<i64> = stored
            .iter()
            .filter(|f| f.removed_at.is_some())
            .map(|f| f.id)
            .collect();
        if !removed.is_empty() {
            let messages = self
                .syncer
                .store
                .delete_folders(self.account.id, &removed)
                .await?;
            tracing::info!(account = %self.account.email, folders = removed.len(), messages, "dropped the local copies of folders no longer synced");
            stored.retain(|f| f.removed_at.is_none());
        }
        Ok(stored)
    }

    /// Looks a stored folder up again by the name it was configured with, after its
    /// id was not found (or it is gone and due for a look-up). A folder found under a
    /// new id replaces the old row, whose messages are deleted (the old folder is gone:
    /// 404 on its id); one not found is marked gone (see [`GONE_RECHECK`]).
    async fn look_again(
        &mut self,
        connector: &dyn Connector,
        folder_ref: &FolderRef,
        old: &FolderRow,
    ) -> Result<Found, RunError> {
        // A reference by id would look up the id that was just not found: use the path.
        let by_name = match folder_ref {
            FolderRef::Id(_) => FolderRef::parse(&old.folder.path).unwrap_or(folder_ref.clone()),
            other => other.clone(),
        };
        match self.resolve(connector, &by_name).await? {
            Ok(row) if row.id == old.id => Ok(Found::Folder(row, 0)),
            Ok(row) => {
                let dropped = self
                    .syncer
                    .store
                    .delete_folders(self.account.id, &[old.id])
                    .await?;
                tracing::info!(account = %self.account.email, folder = %row.folder.path, dropped, "folder recreated on the server: syncing it afresh");
                Ok(Found::Folder(row, dropped))
            }
            Err(e) if e.is_not_found() => {
                let (row, purged) = self
                    .syncer
                    .store
                    .mark_folder_gone(old.id, Utc::now())
                    .await?;
                tracing::warn!(account = %self.account.email, folder = %row.folder.path, missed = row.missed_syncs, purged, "folder gone on the server");
                Ok(Found::Gone(row, purged))
            }
            Err(e) => Ok(Found::Failed(e)),
        }
    }

    /// Reports a gone folder (skipped or just found missing).
    fn finish_gone(&self, reports: &mut Vec<FolderReport>, row: FolderRow, purged: u64) {
        let report = FolderReport {
            gone_since: row.gone_since,
            folder: row,
            pages: 0,
            stats: PageStats::default(),
            reset: false,
            error: None,
            purged,
        };
        self.request
            .observer
            .folder_finished(&self.account, &report);
        reports.push(report);
    }

    /// Resolves a folder on the server and stores it. The outer error stops the sync
    /// (store failure, sign-in needed); the inner one fails this folder only.
    async fn resolve(
        &mut self,
        connector: &dyn Connector,
        folder_ref: &FolderRef,
    ) -> Result<Result<FolderRow, ConnectorError>, RunError> {
        let resolved = connector.resolve_folder(folder_ref).await;
        self.persist_refreshed(connector).await?;
        match resolved {
            Ok(folder) => Ok(Ok(self
                .syncer
                .store
                .upsert_folders(self.account.id, &[folder])
                .await?
                .remove(0))),
            Err(e) if e.is_reauth_required() => Err(e.into()),
            Err(e) => {
                tracing::warn!(account = %self.account.email, folder = %folder_ref, error = %e, "cannot resolve folder");
                Ok(Err(e))
            }
        }
    }

    fn folder_refs(&self) -> Result<Vec<FolderRef>, RunError> {
        if let Some(folders) = &self.request.folders {
            return Ok(folders.clone());
        }
        if self.account.sync_folders.is_empty() {
            return Ok(vec![FolderRef::INBOX]);
        }
        self.account
            .sync_folders
            .iter()
            .map(|name| {
                FolderRef::parse(name).map_err(|e| {
                    RunError::Connector(ConnectorError::new(ErrorKind::InvalidInput, e.to_string()))
                })
            })
            .collect()
    }

    /// Pages through one folder; returns `true` if interrupted by cancellation.
    ///
    /// The next page is fetched while the current one is written: the fetch runs as a
    /// task of its own, so its round trip and its parsing overlap the encoding and the
    /// database transaction of the current page (on another core when there is one).
    /// The task only fetches: a page is encoded for the database by its write, once the
    /// fetch of the page after it is under way. (Encoding it ahead, in the fetch task,
    /// made no difference that could be measured, and is gone: docs/benchmarks.md,
    /// round 10.) At most two pages are in memory.
    #[tracing::instrument(name = "folder_sync", skip_all, fields(account = %self.account.email, folder = %report.folder.folder.path))]
    async fn sync_folder(
        &mut self,
        connector: &Arc<dyn Connector>,
        report: &mut FolderReport,
    ) -> Result<bool, RunError> {
        let folder_ref = FolderRef::id(report.folder.folder.remote_id.clone());
        let cursor = report.folder.cursor.clone();
        self.request
            .observer
            .folder_started(&self.account, &report.folder);
        let first = match (cursor, self.request.since) {
            (None, Some(since)) => connector.start_sync_since(&folder_ref, since).await,
            (cursor, _) => connector.sync_folder(&folder_ref, cursor).await,
        };
        self.persist_refreshed(connector.as_ref()).await?;
        let mut page = first?;
        loop {
            report.reset |= page.reset;
            let more = !page.complete && !self.request.cancel.is_cancelled();
            // Dropping the handle (the sync's future dropped) aborts the fetch.
            let next = more.then(|| {
                let (connector, folder_ref) = (Arc::clone(connector), folder_ref.clone());
                let cursor = page.cursor.clone();
                AbortOnDropHandle::new(tokio::spawn(
                    async move { connector.sync_folder(&folder_ref, Some(cursor)).await }
                        .in_current_span(),
                ))
            });
            let stats = match self.store_page(report, &page).await {
                Ok(stats) => stats,
                Err(e) => {
                    // Let a fetch in flight finish: it may be refreshing the token, and
                    // a rotated refresh token must reach the store (`sync` persists it).
                    if let Some(next) = next {
                        let _ = next.await;
                    }
                    return Err(e);
                }
            };
            report.pages += 1;
            report.stats += stats;
            self.request
                .observer
                .page_stored(&self.account, &report.folder, &stats, page.complete);
            let Some(next) = next else {
                self.persist_refreshed(connector.as_ref()).await?;
                return Ok(!page.complete);
            };
            let next = next.await;
            self.persist_refreshed(connector.as_ref()).await?;
            page = match next {
                Ok(next) => next?,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => {
                    return Err(RunError::Connector(ConnectorError::new(
                        ErrorKind::Transient,
                        format!("the page fetch was stopped: {e}"),
                    )));
                }
            };
        }
    }

    /// Writes a page, fenced by the lease (renewed only when less than half of it is
    /// left). The last page of a folder that brings no changes is not written here:
    /// its cursor is stored with the account's outcome (see
    /// [`Store::finish_sync_with_cursors`]); if the run dies first, the next sync
    /// starts from the cursor before it, which is safe.
    #[tracing::instrument(name = "page", skip_all, fields(page = report.pages + 1, changes = page.changes.len()))]
    async fn store_page(
        &mut self,
        report: &FolderReport,
        page: &SyncPage,
    ) -> Result<PageStats, RunError> {
        if page.changes.is_empty()
            && page.complete
            && !page.reset
            && !report.reset
            && !report.folder.reconciling
        {
            self.unchanged.push(FolderCursor {
                folder_id: report.folder.id,
                cursor: page.cursor.clone(),
            });
            return Ok(PageStats::default());
        }
        let until = self.lease_until();
        let renew = self.lease_needs_renewal(until);
        let lease = self.request.lease.as_ref().map(|l| LeaseCheck {
            owner: &l.owner,
            until,
            renew,
        });
        let stats = self
            .syncer
            .store
            .apply_sync_page(SyncPageWrite {
                account_id: self.account.id,
                folder_id: report.folder.id,
                page,
                lease,
            })
            .await?;
        if lease.is_some() && renew {
            self.account.lease_expires_at = Some(until);
        }
        Ok(stats)
    }

    /// Whether the lease this run holds must be extended to `until` (a renewal now
    /// would give): unless it is this worker's with more than half of its time left,
    /// and not longer than a renewal would give (then renewing shortens nothing that
    /// matters but is a statement for nothing).
    fn lease_needs_renewal(&self, until: DateTime<Utc>) -> bool {
        let Some(lease) = &self.request.lease else {
            return false;
        };
        let half = until - chrono::Duration::from_std(lease.ttl / 2).unwrap_or_default();
        !(self.account.lease_owner.as_deref() == Some(lease.owner.as_str())
            && self
                .account
                .lease_expires_at
                .is_some_and(|at| at > half && at <= until))
    }

    fn lease_until(&self) -> DateTime<Utc> {
        let ttl = self
            .request
            .lease
            .as_ref()
            .map_or(Duration::ZERO, |l| l.ttl);
        Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default()
    }

    async fn renew_lease(&mut self) -> Result<(), RunError> {
        let until = self.lease_until();
        if let Some(lease) = &self.request.lease
            && self.lease_needs_renewal(until)
        {
            self.syncer
                .store
                .renew_lease(self.account.id, &lease.owner, until)
                .await?;
            self.account.lease_owner = Some(lease.owner.clone());
            self.account.lease_expires_at = Some(until);
        }
        Ok(())
    }

    async fn persist_refreshed(&mut self, connector: &dyn Connector) -> Result<(), RunError> {
        if let Some(credentials) = connector.take_refreshed_credentials() {
            self.syncer
                .store_credentials(self.account.id, &credentials)
                .await
                .map_err(RunError::Store)?;
            self.refreshed = true;
            tracing::debug!(account = %self.account.email, "stored refreshed credentials");
        }
        Ok(())
    }
}
