//! Push: Graph change notifications wake the sync of the folder that changed.
//!
//! - [`Push`] keeps each Graph account's subscriptions (one per synced folder) alive:
//!   before a worker syncs an account it holds the lease of, [`Push::prepare`]
//!   creates missing subscriptions (a fresh `clientState` secret each, stored sealed
//!   with the vault), renews those past half their lifetime or flagged by
//!   `reauthorizationRequired`, recreates removed ones, and deletes those of folders
//!   no longer synced. Every write is fenced by the lease, and the state lives in the
//!   database, so whichever worker takes the account next carries on.
//! - [`Push::accept`] takes the body of a webhook POST and returns at once; a task
//!   checks each notification (known subscription, `clientState` compared in
//!   constant time), marks the folders dirty in the database (one statement per
//!   batch: a burst of notifications is one or a few delta rounds) and makes their
//!   accounts due now, then wakes the worker's claim loop. Any worker sharing the
//!   database syncs it: the one that holds or takes the account.
//! - Lifecycle events: `reauthorizationRequired` → renew; `subscriptionRemoved` →
//!   recreate and run a delta round; `missed` → run a delta round.
//! - With every folder's subscription healthy, the account is polled at the safety-net
//!   interval ([`PushConfig::safety_interval`], 1 hour) instead of the worker's
//!   interval; a subscription that cannot be created or renewed falls back to polling
//!   at the normal interval (its error is kept on the subscription row).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mailroom_core::{AccountKind, ConnectorError, Credentials, StateSink};
use mailroom_graph::wire::subscription::{
    LifecycleEvent, MESSAGE_SUBSCRIPTION_MINUTES, Notification, Subscription, constant_time_eq,
    parse_notifications,
};
use mailroom_graph::{GraphConnector, SubscriptionRequest};
use mailroom_store::{
    Account, LeaseCheck, PushStatus, PushSubscription, SealedCredentials, SubscriptionUpdate,
};
use mailroom_vault::FernetKey;
use tokio::sync::{Notify, mpsc};

use crate::engine::{AccountSink, Lease, Syncer};
use crate::{Error, Result};

/// The raw body of a webhook POST.
type Body = Vec<u8>;

/// The path, under [`PushConfig::public_url`], that receives change notifications.
pub const NOTIFICATION_PATH: &str = "/graph/notifications";
/// The path, under [`PushConfig::public_url`], that receives lifecycle notifications.
pub const LIFECYCLE_PATH: &str = "/graph/lifecycle";

/// How push runs.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// The URL Graph reaches the worker's listener at (`https://mail.example.com`, the
    /// reverse proxy in front of `mailroom worker --listen`); the notification and
    /// lifecycle paths are added to it.
    pub public_url: String,
    /// How often an account whose subscriptions are all healthy is polled anyway.
    pub safety_interval: Duration,
    /// How long a subscription is asked for (Graph's maximum for Outlook messages is
    /// 10,080 minutes; see [`MESSAGE_SUBSCRIPTION_MINUTES`]).
    pub lifetime: Duration,
    /// Renew a subscription when less than this is left (default: half the lifetime).
    pub renew_before: Duration,
}

impl PushConfig {
    /// Defaults for this public URL: safety net every hour, the longest lifetime
    /// Graph grants, renewal at half of it.
    pub fn new(public_url: impl Into<String>) -> PushConfig {
        let lifetime = Duration::from_secs(MESSAGE_SUBSCRIPTION_MINUTES as u64 * 60);
        PushConfig {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            safety_interval: Duration::from_secs(3600),
            lifetime,
            renew_before: lifetime / 2,
        }
    }

    fn notification_url(&self) -> String {
        format!("{}{NOTIFICATION_PATH}", self.public_url)
    }

    fn lifecycle_url(&self) -> String {
        format!("{}{LIFECYCLE_PATH}", self.public_url)
    }
}

/// The Graph calls push needs, per account (a seam for tests and other factories).
#[async_trait]
pub trait SubscriptionApi: Send + Sync {
    /// Creates a subscription on a folder's messages.
    async fn subscribe(
        &self,
        request: &SubscriptionRequest<'_>,
    ) -> Result<Subscription, ConnectorError>;
    /// Renews one until `expires`.
    async fn renew(&self, id: &str, expires: DateTime<Utc>)
    -> Result<Subscription, ConnectorError>;
    /// Deletes one.
    async fn unsubscribe(&self, id: &str) -> Result<(), ConnectorError>;
    /// Where refreshed credentials go.
    fn set_state_sink(&self, sink: Arc<dyn StateSink>);
}

#[async_trait]
impl SubscriptionApi for GraphConnector {
    async fn subscribe(
        &self,
        request: &SubscriptionRequest<'_>,
    ) -> Result<Subscription, ConnectorError> {
        self.subscribe_folder(request).await
    }

    async fn renew(
        &self,
        id: &str,
        expires: DateTime<Utc>,
    ) -> Result<Subscription, ConnectorError> {
        self.renew_subscription(id, expires).await
    }

    async fn unsubscribe(&self, id: &str) -> Result<(), ConnectorError> {
        self.delete_subscription(id).await
    }

    fn set_state_sink(&self, sink: Arc<dyn StateSink>) {
        mailroom_core::Connector::set_state_sink(self, sink);
    }
}

/// What the endpoint did with notifications (for tests and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushStats {
    /// Notifications accepted (known subscription, matching `clientState`).
    pub accepted: u64,
    /// Notifications whose `clientState` did not match.
    pub rejected_client_state: u64,
    /// Notifications of a subscription this database does not know.
    pub rejected_unknown: u64,
    /// Bodies that were not a notification collection.
    pub malformed: u64,
    /// Bodies dropped because the queue was full (the safety net catches up).
    pub overflowed: u64,
    /// Lifecycle notifications accepted.
    pub lifecycle: u64,
    /// Times folders were marked dirty (one per processed batch).
    pub dirty_marks: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    rejected_client_state: AtomicU64,
    rejected_unknown: AtomicU64,
    malformed: AtomicU64,
    overflowed: AtomicU64,
    lifecycle: AtomicU64,
    dirty_marks: AtomicU64,
}

/// A subscription as the endpoint checks it.
#[derive(Clone)]
struct Known {
    account_id: i64,
    folder_id: i64,
    client_state: Vec<u8>,
}

struct Inner {
    syncer: Syncer,
    config: PushConfig,
    /// Notified when accounts were made due; shared with the worker's IMAP IDLE
    /// watchers ([`Push::waker`]), so that its claim loop waits on one wake-up.
    wake: Arc<Notify>,
    queue: mpsc::Sender<(Body, bool)>,
    known: Mutex<HashMap<String, Known>>,
    counters: Counters,
}

/// Push for one worker process: the subscription manager and the notification
/// intake. Cheap to clone.
#[derive(Clone)]
pub struct Push {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Push {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Push")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Webhook bodies waiting to be processed; beyond that, bodies are dropped (and
/// counted): the safety-net poll catches up.
const QUEUE: usize = 4096;
/// Bodies processed together (one dirty-mark statement for all of them).
const BATCH: usize = 512;

/// What [`Push::prepare`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushPlan {
    /// The account is a Graph account push applies to.
    pub applies: bool,
    /// Every synced folder has a healthy subscription.
    pub healthy: bool,
}

impl Push {
    /// Push over a syncer. Starts the task that processes notifications (call it
    /// inside a Tokio runtime); the task ends when the last clone is dropped.
    pub fn new(syncer: Syncer, config: PushConfig) -> Push {
        let (tx, rx) = mpsc::channel(QUEUE);
        let push = Push {
            inner: Arc::new(Inner {
                syncer,
                config,
                wake: Arc::new(Notify::new()),
                queue: tx,
                known: Mutex::new(HashMap::new()),
                counters: Counters::default(),
            }),
        };
        tokio::spawn(process(Arc::downgrade(&push.inner), rx));
        push
    }

    /// The configuration.
    pub fn config(&self) -> &PushConfig {
        &self.inner.config
    }

    /// What the endpoint did so far.
    pub fn stats(&self) -> PushStats {
        let c = &self.inner.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PushStats {
            accepted: l(&c.accepted),
            rejected_client_state: l(&c.rejected_client_state),
            rejected_unknown: l(&c.rejected_unknown),
            malformed: l(&c.malformed),
            overflowed: l(&c.overflowed),
            lifecycle: l(&c.lifecycle),
            dirty_marks: l(&c.dirty_marks),
        }
    }

    /// Hands over the body of a webhook POST (change notifications, or lifecycle
    /// notifications when `lifecycle`); returns at once, the work is done by a task.
    pub fn accept(&self, body: Vec<u8>, lifecycle: bool) {
        if self.inner.queue.try_send((body, lifecycle)).is_err() {
            self.inner
                .counters
                .overflowed
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "notification queue full: dropped a notification body (the safety-net poll catches up)"
            );
        }
    }

    /// Resolves when a notification made accounts due. The worker's claim loop waits
    /// on the same wake-up, shared with IMAP IDLE.
    pub async fn woken(&self) {
        self.inner.wake.notified().await;
    }

    /// The wake-up [`Push::woken`] waits on, for the worker to share with its other
    /// sources of wake-ups.
    pub(crate) fn waker(&self) -> Arc<Notify> {
        self.inner.wake.clone()
    }

    pub(crate) fn interval(&self, plan: PushPlan, normal: Duration) -> Duration {
        if plan.applies && plan.healthy {
            // Never so long that a subscription would expire before the visit that
            // renews it.
            let c = &self.inner.config;
            c.safety_interval.min(c.renew_before / 2).max(normal)
        } else {
            normal
        }
    }

    /// Brings an account's subscriptions up to date while `lease` holds it: creates,
    /// renews, recreates and deletes as needed (see the module docs). Graph errors are
    /// recorded on the subscription rows (the folder then falls back to polling);
    /// `Err` only for the store (a lost lease among others) or unreadable credentials.
    pub async fn prepare(&self, account: &Account, lease: &Lease) -> Result<PushPlan> {
        let not = PushPlan {
            applies: false,
            healthy: false,
        };
        if account.kind != AccountKind::Outlook {
            return Ok(not);
        }
        let syncer = &self.inner.syncer;
        let credentials: Credentials = syncer
            .vault
            .decrypt_json(account.credentials.as_str())
            .map_err(|source| Error::Credentials {
                email: account.email.clone(),
                source,
            })?;
        let Some(api) = syncer
            .factory
            .subscriptions(account, credentials)
            .map_err(|source| Error::Connector {
                email: account.email.clone(),
                source,
            })?
        else {
            return Ok(not);
        };
        api.set_state_sink(Arc::new(AccountSink::new(
            syncer.clone(),
            account,
            Some(lease.clone()),
        )));
        let store = &syncer.store;
        let folders = store.list_folders(account.id).await?;
        let subs: HashMap<i64, PushSubscription> = store
            .list_subscriptions(account.id)
            .await?
            .into_iter()
            .map(|s| (s.folder_id, s))
            .collect();
        let now = Utc::now();
        let mut healthy = !folders.is_empty();
        for folder in &folders {
            let sub = subs.get(&folder.id);
            if folder.removed_at.is_some() || folder.gone_since.is_some() {
                if let Some(sub) = sub {
                    if let Some(id) = &sub.subscription_id
                        && let Err(e) = api.unsubscribe(id).await
                        && !e.is_not_found()
                    {
                        tracing::warn!(account = %account.email, error = %e, "cannot delete a subscription");
                    }
                    store.delete_subscription(folder.id).await?;
                    self.forget(sub);
                }
                continue;
            }
            let lifetime = chrono::Duration::from_std(self.inner.config.lifetime)
                .unwrap_or_else(|_| chrono::Duration::days(7));
            let renew_before = chrono::Duration::from_std(self.inner.config.renew_before)
                .unwrap_or_else(|_| chrono::Duration::days(1));
            let expires = now + lifetime;
            let ok = match sub {
                Some(s)
                    if s.subscription_id.is_some()
                        && s.client_state.is_some()
                        && matches!(s.status, PushStatus::Active | PushStatus::Renew)
                        && s.expires_at.is_some_and(|e| e > now) =>
                {
                    let due = s.status == PushStatus::Renew
                        || s.expires_at.is_some_and(|e| e - now < renew_before);
                    if !due {
                        true
                    } else {
                        let id = s.subscription_id.as_deref().unwrap_or_default();
                        match api.renew(id, expires).await {
                            Ok(renewed) => {
                                self.save(
                                    account,
                                    folder.id,
                                    lease,
                                    s.client_state.clone(),
                                    Some(renewed.id),
                                    Some(renewed.expiration_date_time),
                                    PushStatus::Active,
                                    None,
                                )
                                .await?;
                                tracing::debug!(account = %account.email, folder = %folder.folder.path, "renewed a subscription");
                                true
                            }
                            Err(e) if e.is_not_found() => {
                                self.forget(s);
                                self.create(
                                    &*api,
                                    account,
                                    folder.id,
                                    &folder.folder.remote_id,
                                    lease,
                                    expires,
                                )
                                .await?
                            }
                            Err(e) => {
                                tracing::warn!(account = %account.email, folder = %folder.folder.path, error = %e, "cannot renew a subscription: polling instead");
                                self.save(
                                    account,
                                    folder.id,
                                    lease,
                                    s.client_state.clone(),
                                    s.subscription_id.clone(),
                                    s.expires_at,
                                    PushStatus::Failed,
                                    Some(e.to_string()),
                                )
                                .await?;
                                false
                            }
                        }
                    }
                }
                other => {
                    if let Some(old) = other {
                        self.forget(old);
                        if let Some(id) = &old.subscription_id
                            && old.status != PushStatus::Removed
                        {
                            // A failed or expired one may still exist on Graph.
                            let _ = api.unsubscribe(id).await;
                        }
                    }
                    self.create(
                        &*api,
                        account,
                        folder.id,
                        &folder.folder.remote_id,
                        lease,
                        expires,
                    )
                    .await?
                }
            };
            healthy &= ok;
        }
        Ok(PushPlan {
            applies: true,
            healthy,
        })
    }

    /// After a sync that started at `started`: clears the dirty marks it covered;
    /// when marks were made meanwhile, or folders were synced for the first time
    /// and have no subscription yet, the account is due again now.
    pub async fn finish(
        &self,
        account_id: i64,
        started: DateTime<Utc>,
        plan: PushPlan,
    ) -> Result<()> {
        let store = &self.inner.syncer.store;
        let still_dirty = store.clear_dirty_before(account_id, started).await?;
        let mut again = still_dirty > 0;
        if plan.applies && !again {
            let folders = store.list_folders(account_id).await?;
            let subs = store.list_subscriptions(account_id).await?;
            again = folders
                .iter()
                .filter(|f| f.removed_at.is_none() && f.gone_since.is_none())
                .any(|f| !subs.iter().any(|s| s.folder_id == f.id));
        }
        if again {
            store.wake_account(account_id, Utc::now()).await?;
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    async fn create(
        &self,
        api: &dyn SubscriptionApi,
        account: &Account,
        folder_id: i64,
        remote_id: &str,
        lease: &Lease,
        expires: DateTime<Utc>,
    ) -> Result<bool> {
        let secret = FernetKey::generate();
        let client_state = secret.secret();
        let sealed =
            SealedCredentials::new(self.inner.syncer.vault.encrypt(client_state.as_bytes()))?;
        let notification_url = self.inner.config.notification_url();
        let lifecycle_url = self.inner.config.lifecycle_url();
        let request = SubscriptionRequest {
            folder_id: remote_id,
            notification_url: &notification_url,
            lifecycle_notification_url: &lifecycle_url,
            expires,
            client_state,
        };
        match api.subscribe(&request).await {
            Ok(sub) => {
                self.inner
                    .known
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(
                        sub.id.clone(),
                        Known {
                            account_id: account.id,
                            folder_id,
                            client_state: client_state.as_bytes().to_vec(),
                        },
                    );
                self.save(
                    account,
                    folder_id,
                    lease,
                    Some(sealed),
                    Some(sub.id),
                    Some(sub.expiration_date_time),
                    PushStatus::Active,
                    None,
                )
                .await?;
                tracing::info!(account = %account.email, "subscribed to changes of a folder");
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(account = %account.email, error = %e, "cannot subscribe to changes: polling instead");
                self.save(
                    account,
                    folder_id,
                    lease,
                    None,
                    None,
                    None,
                    PushStatus::Failed,
                    Some(e.to_string()),
                )
                .await?;
                Ok(false)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn save(
        &self,
        account: &Account,
        folder_id: i64,
        lease: &Lease,
        client_state: Option<SealedCredentials>,
        subscription_id: Option<String>,
        expires_at: Option<DateTime<Utc>>,
        status: PushStatus,
        last_error: Option<String>,
    ) -> Result<()> {
        let until = Utc::now() + chrono::Duration::from_std(lease.ttl).unwrap_or_default();
        self.inner
            .syncer
            .store
            .save_subscription(
                account.id,
                folder_id,
                SubscriptionUpdate {
                    subscription_id,
                    expires_at,
                    client_state,
                    status,
                    last_error,
                },
                Some(LeaseCheck {
                    owner: &lease.owner,
                    until,
                    renew: true,
                }),
            )
            .await?;
        Ok(())
    }

    fn forget(&self, sub: &PushSubscription) {
        if let Some(id) = &sub.subscription_id {
            self.inner
                .known
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(id);
        }
    }
}

/// Looks a subscription up: this process's cache, then the database.
async fn lookup(inner: &Inner, id: &str) -> Result<Option<Known>> {
    if let Some(k) = inner
        .known
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(id)
        .cloned()
    {
        return Ok(Some(k));
    }
    let Some(row) = inner.syncer.store.find_subscription(id).await? else {
        return Ok(None);
    };
    let Some(sealed) = &row.client_state else {
        return Ok(None);
    };
    let Ok(secret) = inner.syncer.vault.decrypt(sealed.as_str()) else {
        tracing::warn!("cannot decrypt the clientState of a subscription");
        return Ok(None);
    };
    let known = Known {
        account_id: row.account_id,
        folder_id: row.folder_id,
        client_state: secret,
    };
    inner
        .known
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id.to_owned(), known.clone());
    Ok(Some(known))
}

async fn process(inner: std::sync::Weak<Inner>, mut rx: mpsc::Receiver<(Body, bool)>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if let Err(e) = handle_batch(&inner, std::mem::take(&mut batch)).await {
            tracing::warn!(error = %e, "cannot process notifications (the safety-net poll catches up)");
        }
    }
}

async fn handle_batch(inner: &Inner, bodies: Vec<(Body, bool)>) -> Result<()> {
    let c = &inner.counters;
    let mut dirty: Vec<i64> = Vec::new();
    let mut events: Vec<(String, LifecycleEvent)> = Vec::new();
    for (body, lifecycle) in bodies {
        let notifications: Vec<Notification> = match parse_notifications(&body) {
            Ok(n) => n,
            Err(e) => {
                c.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "ignored a body that is not a notification collection");
                continue;
            }
        };
        for n in notifications {
            let Some(known) = lookup(inner, &n.subscription_id).await? else {
                c.rejected_unknown.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(subscription = %n.subscription_id, "ignored a notification of an unknown subscription");
                continue;
            };
            let given = n.client_state.as_deref().unwrap_or("").as_bytes();
            if !constant_time_eq(given, &known.client_state) {
                c.rejected_client_state.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(subscription = %n.subscription_id, account_id = known.account_id, "rejected a notification whose clientState does not match");
                continue;
            }
            match (lifecycle, n.lifecycle_event) {
                (_, Some(event)) => {
                    c.lifecycle.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(subscription = %n.subscription_id, ?event, "lifecycle notification");
                    events.push((n.subscription_id.clone(), event));
                    dirty.push(known.folder_id);
                }
                (true, None) => {
                    c.malformed.fetch_add(1, Ordering::Relaxed);
                }
                (false, None) => {
                    c.accepted.fetch_add(1, Ordering::Relaxed);
                    dirty.push(known.folder_id);
                }
            }
        }
    }
    let store = &inner.syncer.store;
    for (id, event) in events {
        let status = match event {
            LifecycleEvent::ReauthorizationRequired => PushStatus::Renew,
            LifecycleEvent::SubscriptionRemoved => {
                inner
                    .known
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id);
                PushStatus::Removed
            }
            _ => continue,
        };
        store.set_subscription_status(&id, status).await?;
    }
    dirty.sort_unstable();
    dirty.dedup();
    if !dirty.is_empty() {
        store.mark_folders_dirty(&dirty, Utc::now()).await?;
        c.dirty_marks.fetch_add(1, Ordering::Relaxed);
        inner.wake.notify_one();
    }
    Ok(())
}

/// A worker's account sync with push: subscriptions first (under the lease), then
/// the sync at the interval push allows, then the dirty marks.
pub(crate) async fn sync_with_push(
    syncer: &Syncer,
    push: &Push,
    account: &Account,
    mut request: crate::engine::SyncRequest,
) -> Result<crate::engine::Outcome> {
    let started = Utc::now();
    let lease = request.lease.clone().expect("a worker's sync has a lease");
    let plan = match push.prepare(account, &lease).await {
        Ok(plan) => plan,
        Err(e) if e.is_lease_lost() => return Err(e),
        Err(e) => {
            tracing::warn!(account = %account.email, error = %e, "cannot keep the account's subscriptions: polling");
            PushPlan {
                applies: false,
                healthy: false,
            }
        }
    };
    if let Some(normal) = request.interval {
        request.interval = Some(push.interval(plan, normal));
    }
    let report = syncer.sync_account(account.id, &request).await?;
    push.finish(account.id, started, plan).await?;
    Ok(report.outcome)
}

impl Syncer {
    /// Deletes an account's change-notification subscriptions on its server and in
    /// the database (before the account is removed; best effort on the server:
    /// one that cannot be deleted ends at its expiry, and its notifications are
    /// rejected as unknown meanwhile). Returns how many were deleted on the server.
    pub async fn unsubscribe_account(&self, account: &Account) -> Result<u64> {
        let subs = self.store.list_subscriptions(account.id).await?;
        if subs.is_empty() {
            return Ok(0);
        }
        let api = match self.decrypt_for_push(account) {
            Ok(Some(api)) => Some(api),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(account = %account.email, error = %e, "cannot reach the server to delete subscriptions");
                None
            }
        };
        let mut deleted = 0;
        for sub in subs {
            if let (Some(api), Some(id)) = (&api, &sub.subscription_id) {
                match api.unsubscribe(id).await {
                    Ok(()) => deleted += 1,
                    Err(e) if e.is_not_found() => {}
                    Err(e) => {
                        tracing::warn!(account = %account.email, error = %e, "cannot delete a subscription");
                    }
                }
            }
            self.store.delete_subscription(sub.folder_id).await?;
        }
        Ok(deleted)
    }

    fn decrypt_for_push(&self, account: &Account) -> Result<Option<Arc<dyn SubscriptionApi>>> {
        let credentials: Credentials = self
            .vault
            .decrypt_json(account.credentials.as_str())
            .map_err(|source| Error::Credentials {
                email: account.email.clone(),
                source,
            })?;
        let api = self
            .factory
            .subscriptions(account, credentials)
            .map_err(|source| Error::Connector {
                email: account.email.clone(),
                source,
            })?;
        if let Some(api) = &api {
            api.set_state_sink(Arc::new(AccountSink::new(self.clone(), account, None)));
        }
        Ok(api)
    }
}
