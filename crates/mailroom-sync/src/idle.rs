//! IMAP IDLE watchers of a worker: after this worker syncs an IMAP account whose server
//! announces IDLE, one long-lived connection waits in IDLE on its Inbox (at most
//! [`WorkerConfig::idle_connections`](crate::WorkerConfig::idle_connections) such
//! connections per worker; the accounts beyond are polled as before). When the server
//! reports `EXISTS`, `EXPUNGE` or `FETCH`, the watcher asks for a sync of the account
//! with [`request_sync`]; the worker that takes the account's lease runs it, so the
//! watcher never syncs anything itself.
//!
//! IDLE is re-issued every `idle_renew` (25 minutes: RFC 2177's limit is 29). A
//! dropped connection is opened again after a back-off (1 s doubling to 5 minutes),
//! logging in again — with XOAUTH2 a token that expired is refreshed, and the rotated
//! credentials are stored — and a sync is requested, since mail may have come while
//! no connection watched. A watcher stops at shutdown, when the account is removed or
//! no longer active, when its login is refused, or when the server does not announce
//! IDLE.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailroom_core::{Connector, ErrorKind, FolderRef, WellKnownFolder};
use mailroom_imap::{IdleEvent, ImapConnector, ImapIdle};
use mailroom_store::{AccountStatus, AccountUpdate, Store};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::Syncer;

/// First delay before reconnecting a dropped IDLE connection.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest delay between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long a wake-up follows a sync that was running when the change came.
const FOLLOW_UP_FOR: Duration = Duration::from_secs(600);

/// Asks for a sync of account `account_id` as soon as possible: makes it due now in
/// the store and wakes the worker loop. Whichever worker claims the account's lease
/// runs the sync.
///
/// The one place IDLE wake-ups go through: point it at another mechanism (dirty
/// folders) without touching the watchers.
pub async fn request_sync(
    store: &Store,
    account_id: i64,
    wake: &Notify,
) -> Result<(), mailroom_store::Error> {
    store
        .update_account(
            account_id,
            AccountUpdate {
                next_sync_at: Some(None),
                ..AccountUpdate::default()
            },
        )
        .await?;
    wake.notify_one();
    Ok(())
}

/// The IDLE watchers of one worker.
#[derive(Clone)]
pub struct IdleWatchers {
    inner: Arc<Inner>,
}

struct Inner {
    syncer: Syncer,
    max: usize,
    renew: Duration,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
    watched: Mutex<HashMap<i64, tokio::task::AbortHandle>>,
    /// Accounts whose watcher is in IDLE now (connected, not in a back-off).
    idling: Mutex<std::collections::HashSet<i64>>,
}

/// Marks an account as in IDLE while alive.
struct Idling<'a> {
    inner: &'a Inner,
    account_id: i64,
}

impl<'a> Idling<'a> {
    fn start(inner: &'a Inner, account_id: i64) -> Self {
        inner.idling.lock().expect("idle set").insert(account_id);
        Idling { inner, account_id }
    }
}

impl Drop for Idling<'_> {
    fn drop(&mut self) {
        self.inner
            .idling
            .lock()
            .expect("idle set")
            .remove(&self.account_id);
    }
}

impl std::fmt::Debug for IdleWatchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleWatchers")
            .field("max", &self.inner.max)
            .field("renew", &self.inner.renew)
            .field("watching", &self.watching())
            .finish()
    }
}

impl IdleWatchers {
    /// Watchers for `syncer`'s accounts: at most `max` connections, IDLE re-issued
    /// every `renew`; wake-ups notify `wake`; all stop when `shutdown` is cancelled.
    pub fn new(
        syncer: Syncer,
        max: usize,
        renew: Duration,
        wake: Arc<Notify>,
        shutdown: CancellationToken,
    ) -> Self {
        IdleWatchers {
            inner: Arc::new(Inner {
                syncer,
                max,
                renew,
                wake,
                shutdown,
                watched: Mutex::new(HashMap::new()),
                idling: Mutex::new(Default::default()),
            }),
        }
    }

    /// How many accounts are watched now.
    pub fn watching(&self) -> usize {
        self.inner.watched.lock().expect("idle map").len()
    }

    /// Whether account `account_id` is watched.
    pub fn is_watching(&self, account_id: i64) -> bool {
        self.inner
            .watched
            .lock()
            .expect("idle map")
            .contains_key(&account_id)
    }

    /// Whether a watcher of `account_id` is in IDLE now: connected, not starting, not
    /// waiting to reconnect.
    pub fn is_idling(&self, account_id: i64) -> bool {
        self.inner
            .idling
            .lock()
            .expect("idle set")
            .contains(&account_id)
    }

    /// After this worker synced account `account_id`: starts watching its Inbox, unless
    /// it is watched already, the cap is reached, or the worker is stopping. Graph
    /// accounts and IMAP servers without IDLE end their watcher at once.
    pub fn after_sync(&self, account_id: i64) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        let mut watched = self.inner.watched.lock().expect("idle map");
        if watched.contains_key(&account_id) || watched.len() >= self.inner.max {
            return;
        }
        let inner = self.inner.clone();
        let task = tokio::spawn(async move {
            watch(&inner, account_id).await;
            inner.watched.lock().expect("idle map").remove(&account_id);
        });
        watched.insert(account_id, task.abort_handle());
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self.watched.lock().expect("idle map").values() {
            task.abort();
        }
    }
}

/// Why a watcher ends.
enum Stop {
    /// Not an IMAP account with IDLE, removed, inactive, login refused, or shutdown.
    Done,
    /// The connection failed: try again after a back-off.
    Retry,
}

async fn watch(inner: &Inner, account_id: i64) {
    let mut backoff = MIN_BACKOFF;
    let mut first = true;
    loop {
        if inner.shutdown.is_cancelled() {
            return;
        }
        match watch_once(inner, account_id, first).await {
            Stop::Done => return,
            Stop::Retry => {}
        }
        first = false;
        tracing::debug!(
            account_id,
            ?backoff,
            "imap idle reconnects after a back-off"
        );
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = inner.shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection: open, IDLE until it fails. A reconnection (not `first`) asks for a
/// sync, as mail may have come while nothing watched; the first connection asks for
/// one when the Inbox changed since the sync that started the watcher stored its
/// cursor (mail that came before `EXAMINE` raises no IDLE event).
async fn watch_once(inner: &Inner, account_id: i64, first: bool) -> Stop {
    let store = inner.syncer.store();
    let account = match store.get_account(account_id).await {
        Ok(a) if a.status == AccountStatus::Active => a,
        Ok(_) | Err(mailroom_store::Error::NotFound(_)) => return Stop::Done,
        Err(e) => {
            tracing::warn!(account_id, error = %e, "imap idle cannot read the account");
            return Stop::Retry;
        }
    };
    let connector = match inner.syncer.idle_connector(&account) {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            tracing::warn!(account = %account.email, error = %e, "imap idle cannot build a connector");
            return Stop::Done;
        }
        None => return Stop::Done,
    };
    let idle = connector.idle(&FolderRef::INBOX).await;
    // A login that refreshed an XOAUTH2 token: store the rotated credentials now.
    if let Some(credentials) = connector.take_refreshed_credentials()
        && let Err(e) = inner
            .syncer
            .store_credentials(account_id, &credentials)
            .await
    {
        tracing::warn!(account = %account.email, error = %e, "imap idle cannot store refreshed credentials");
    }
    let mut idle = match idle {
        Ok(idle) => idle,
        Err(e) => {
            return match e.kind() {
                ErrorKind::Unsupported | ErrorKind::ReauthRequired | ErrorKind::InvalidConfig => {
                    tracing::info!(account = %account.email, error = %e, "no imap idle for this account; polling");
                    Stop::Done
                }
                _ => {
                    tracing::warn!(account = %account.email, error = %e, "imap idle cannot connect");
                    Stop::Retry
                }
            };
        }
    };
    tracing::debug!(account = %account.email, "imap idle watching the inbox");
    let _idling = Idling::start(inner, account_id);
    if !first || changed_since_stored(store, account_id, &idle).await {
        wake(inner, account_id).await;
    }
    loop {
        let event = tokio::select! {
            event = idle.wait(inner.renew) => event,
            () = inner.shutdown.cancelled() => {
                idle.logout().await;
                return Stop::Done;
            }
        };
        match event {
            Ok(IdleEvent::Changed) => {
                tracing::debug!(account = %account.email, "imap idle: the inbox changed");
                wake(inner, account_id).await;
            }
            Ok(_) => {
                // Renewal: a good moment to see whether the account still exists.
                match store.get_account(account_id).await {
                    Ok(a) if a.status == AccountStatus::Active => {}
                    Ok(_) | Err(mailroom_store::Error::NotFound(_)) => {
                        idle.logout().await;
                        return Stop::Done;
                    }
                    Err(_) => {}
                }
            }
            Err(e) => {
                tracing::info!(account = %account.email, error = %e, "imap idle connection lost");
                return Stop::Retry;
            }
        }
    }
}

/// Whether the watched Inbox holds changes its stored cursor did not see (see
/// [`ImapIdle::is_past`]); true when the cursor cannot be read.
async fn changed_since_stored(store: &Store, account_id: i64, idle: &ImapIdle) -> bool {
    let folders = match store.list_folders(account_id).await {
        Ok(folders) => folders,
        Err(e) => {
            tracing::warn!(account_id, error = %e, "imap idle cannot read the inbox cursor; asking for a sync");
            return true;
        }
    };
    let inbox = folders
        .iter()
        .find(|f| f.folder.role == Some(WellKnownFolder::Inbox) || f.folder.path == idle.mailbox());
    inbox
        .and_then(|f| f.cursor.as_ref())
        .is_none_or(|cursor| idle.is_past(cursor))
}

/// [`request_sync`], and once more after a sync that was running meanwhile ends: that
/// sync's outcome sets the next due time and may not have seen the change.
async fn wake(inner: &Inner, account_id: i64) {
    let store = inner.syncer.store().clone();
    if let Err(e) = request_sync(&store, account_id, &inner.wake).await {
        tracing::warn!(account_id, error = %e, "imap idle cannot request a sync");
        return;
    }
    let leased = store
        .get_account(account_id)
        .await
        .is_ok_and(|a| a.lease_owner.is_some());
    if !leased {
        return;
    }
    let notify = inner.wake.clone();
    let shutdown = inner.shutdown.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + FOLLOW_UP_FOR;
        while tokio::time::Instant::now() < deadline {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                () = shutdown.cancelled() => return,
            }
            match store.get_account(account_id).await {
                Ok(a) if a.lease_owner.is_some() => continue,
                Ok(_) => {
                    let _ = request_sync(&store, account_id, &notify).await;
                    return;
                }
                Err(_) => return,
            }
        }
    });
}

impl Syncer {
    /// The IMAP connector of `account` for IDLE, when its connector factory makes IMAP
    /// connectors ([`ConnectorFactory::idle_connector`](crate::ConnectorFactory::idle_connector)).
    pub fn idle_connector(
        &self,
        account: &mailroom_store::Account,
    ) -> Option<Result<ImapConnector, crate::Error>> {
        let credentials = match self.decrypt(account) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        self.factory.idle_connector(account, credentials).map(|r| {
            r.map_err(|source| crate::Error::Connector {
                email: account.email.clone(),
                source,
            })
        })
    }
}
