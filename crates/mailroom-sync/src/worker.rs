//! The worker: syncs due accounts on an interval, a bounded number at once, under
//! leases so several workers can share one database.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::engine::{Lease, Outcome, SyncRequest, Syncer, Unrecorded};
use crate::observer::{NoopObserver, SyncObserver};
use crate::push::Push;
use crate::{Error, Result};

/// How a worker runs.
#[derive(Clone)]
pub struct WorkerConfig {
    /// This worker's id, unique among workers sharing a database (the lease owner).
    pub worker_id: String,
    /// How often each account is synced.
    pub interval: Duration,
    /// How many accounts are synced at once. Claims lease up to half as many again,
    /// which wait for a slot, so that a claim leases a batch while every slot is busy.
    pub concurrency: usize,
    /// How long a lease lasts without renewal; a worker that dies holds its accounts
    /// this long at most. A stored page renews it when less than half of it is left.
    pub lease_ttl: Duration,
    /// How often to look for due accounts when idle.
    pub poll_interval: Duration,
    /// Stop after one pass over the accounts due when the worker starts, instead of
    /// running until shutdown.
    pub once: bool,
    /// Progress callbacks.
    pub observer: Arc<dyn SyncObserver>,
    /// Most IMAP IDLE connections this worker keeps (`idle.rs`): after a sync, an IMAP
    /// account whose server announces IDLE gets one on its Inbox while fewer are open;
    /// the others are polled. 0 turns IDLE off; `once` never starts any.
    pub idle_connections: usize,
    /// How long one IDLE lasts before it is re-issued (RFC 2177: under 29 minutes).
    pub idle_renew: Duration,
    /// How often an IMAP account is polled anyway while this worker's watcher of it is
    /// in IDLE (the safety net), when the Inbox is all it syncs (IDLE watches only the
    /// Inbox). Never less than `interval`.
    pub idle_safety_interval: Duration,
    /// Graph change notifications: subscriptions kept by this worker, wake-ups, and
    /// the safety-net interval for accounts whose push is healthy. `None`: polling only.
    pub push: Option<Push>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            worker_id: default_worker_id(),
            interval: Duration::from_secs(300),
            concurrency: 4,
            lease_ttl: Duration::from_secs(300),
            poll_interval: Duration::from_secs(5),
            once: false,
            observer: Arc::new(NoopObserver),
            idle_connections: 100,
            idle_renew: mailroom_imap::DEFAULT_IDLE_RENEW,
            idle_safety_interval: Duration::from_secs(3600),
            push: None,
        }
    }
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("worker_id", &self.worker_id)
            .field("interval", &self.interval)
            .field("concurrency", &self.concurrency)
            .field("lease_ttl", &self.lease_ttl)
            .field("poll_interval", &self.poll_interval)
            .field("once", &self.once)
            .field("idle_connections", &self.idle_connections)
            .field("push", &self.push)
            .finish_non_exhaustive()
    }
}

/// `host-pid-random`: unique enough for leases.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{host}-{}-{nanos:08x}", std::process::id())
}

/// What a worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Account syncs that ran to the end.
    pub synced: u64,
    /// Account syncs that ended in an error recorded on the account.
    pub failed: u64,
    /// Account syncs stopped because another worker took the lease.
    pub lease_lost: u64,
    /// Account syncs stopped by the shutdown.
    pub interrupted: u64,
    /// Claim statements sent (each leases a batch of due accounts, maybe none).
    pub claims: u64,
}

impl WorkerStats {
    /// Account syncs started, however they ended.
    pub fn syncs(&self) -> u64 {
        self.synced + self.failed + self.lease_lost + self.interrupted
    }
}

impl Syncer {
    /// Runs until `shutdown` is cancelled (or after one pass with `config.once`).
    ///
    /// On shutdown no new account is started; running syncs finish the page they are
    /// on, record their state and release their leases before this returns.
    pub async fn run_worker(
        &self,
        config: WorkerConfig,
        shutdown: CancellationToken,
    ) -> Result<WorkerStats> {
        let concurrency = config.concurrency.max(1);
        // Claims lease up to `depth` accounts in flight: `concurrency` syncing, the
        // rest waiting for a slot (`slots`). A claim is made once `batch` can be
        // leased, so that one statement leases a batch instead of one account per
        // finished sync, while every slot stays busy.
        let batch = claim_batch(concurrency);
        let depth = concurrency + batch;
        let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
        // When a claim found fewer due accounts than it asked for, the next one waits
        // for the poll interval (or a wake-up).
        let mut short_claim_at: Option<std::time::Instant> = None;
        let mut running: JoinSet<Result<Ended>> = JoinSet::new();
        // Syncs that ended, whose outcomes are recorded together (one statement): once
        // `batch` of them wait, before a claim, when nothing else runs, or after
        // `RECORD_DELAY` at most.
        let mut ended: Vec<Unrecorded> = Vec::new();
        let mut oldest_ended = std::time::Instant::now();
        let mut stats = WorkerStats::default();
        let mut store_backoff = Duration::from_millis(500);
        // With `once`, "due" means due when the pass started: an account synced during
        // the pass is not taken again, whatever its interval.
        let pass_start = Utc::now();
        tracing::info!(worker = %config.worker_id, concurrency, "worker started");
        // IMAP IDLE and Graph notifications make accounts due and notify this loop,
        // through one wake-up (push's, when push is on).
        let wake = config
            .push
            .as_ref()
            .map_or_else(|| Arc::new(tokio::sync::Notify::new()), Push::waker);
        let idle = (config.idle_connections > 0 && !config.once).then(|| {
            crate::IdleWatchers::new(
                self.clone(),
                config.idle_connections,
                config.idle_renew,
                wake.clone(),
                shutdown.clone(),
            )
        });
        loop {
            config.observer.worker_polled(&config.worker_id);
            let mut claimed_any = false;
            let may_claim = !shutdown.is_cancelled()
                && depth - running.len().min(depth) >= batch
                && short_claim_at.is_none_or(|at| at.elapsed() >= config.poll_interval);
            if !ended.is_empty()
                && (may_claim
                    || ended.len() >= batch
                    || running.is_empty()
                    || shutdown.is_cancelled()
                    || oldest_ended.elapsed() >= RECORD_DELAY)
            {
                self.record_ended(&config, idle.as_ref(), &mut ended, &mut stats)
                    .await;
            }
            if may_claim {
                let now = if config.once { pass_start } else { Utc::now() };
                let until =
                    Utc::now() + chrono::Duration::from_std(config.lease_ttl).unwrap_or_default();
                let free = depth.saturating_sub(running.len()) as u64;
                match self
                    .store
                    .claim_due_accounts(&config.worker_id, free, now, until)
                    .await
                {
                    Ok(accounts) => {
                        stats.claims += 1;
                        store_backoff = Duration::from_millis(500);
                        short_claim_at =
                            ((accounts.len() as u64) < free).then(std::time::Instant::now);
                        claimed_any = !accounts.is_empty();
                        // The claim's folder rows in one statement (push mode reads
                        // them per account, after its subscriptions). If that read
                        // fails, each sync reads its own.
                        let mut folders = match (&config.push, claimed_any) {
                            (None, true) => {
                                let ids: Vec<i64> = accounts.iter().map(|a| a.id).collect();
                                match self.store.list_folders_of(&ids).await {
                                    Ok(folders) => Some(folders),
                                    Err(e) => {
                                        tracing::warn!(worker = %config.worker_id, error = %e, "cannot read the folders of claimed accounts; each sync reads its own");
                                        None
                                    }
                                }
                            }
                            _ => None,
                        };
                        for account in accounts {
                            let stored = folders
                                .as_mut()
                                .map(|f| f.remove(&account.id).unwrap_or_default());
                            let syncer = self.clone();
                            let request = SyncRequest {
                                lease: Some(Lease {
                                    owner: config.worker_id.clone(),
                                    ttl: config.lease_ttl,
                                }),
                                interval: Some(config.interval),
                                cancel: shutdown.child_token(),
                                observer: config.observer.clone(),
                                ..SyncRequest::default()
                            };
                            let mut request = request;
                            if let Some(idle) = &idle
                                && idle.is_idling(account.id)
                                && inbox_only(&account)
                            {
                                // New mail wakes a sync: polling is only the safety net.
                                request.interval =
                                    Some(config.interval.max(config.idle_safety_interval));
                            }
                            let idle = idle.clone();
                            let push = config.push.clone();
                            let slots = slots.clone();
                            let config_owner = config.worker_id.clone();
                            running.spawn(async move {
                                // A claimed account waits here for a slot (about one
                                // sync's time); after a shutdown it releases its lease
                                // without syncing.
                                let _slot = slots.acquire_owned().await;
                                if request.cancel.is_cancelled() {
                                    let owner = &config_owner;
                                    syncer.store().release_lease(account.id, owner).await?;
                                    return Ok(Ended::Recorded(Outcome::Interrupted));
                                }
                                let ended = match (push, stored) {
                                    (None, Some(stored)) => syncer
                                        .sync_claimed_unrecorded(account.clone(), stored, &request)
                                        .await
                                        .map(|u| Ended::Unrecorded(Box::new(u))),
                                    (None, None) => syncer
                                        .sync_claimed(account.clone(), &request)
                                        .await
                                        .map(|r| Ended::Recorded(r.outcome)),
                                    (Some(push), _) => crate::push::sync_with_push(
                                        &syncer, &push, &account, request,
                                    )
                                    .await
                                    .map(Ended::Recorded),
                                };
                                // (An unrecorded sync's watcher starts once its outcome is
                                // recorded: a wake-up must not be overwritten by it.)
                                if let (Some(idle), Ok(Ended::Recorded(Outcome::Synced))) =
                                    (&idle, &ended)
                                {
                                    idle.after_sync(account.id);
                                }
                                ended
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(worker = %config.worker_id, error = %e, "cannot claim accounts; retrying");
                        store_backoff = (store_backoff * 2).min(Duration::from_secs(30));
                        tokio::select! {
                            () = tokio::time::sleep(store_backoff) => {}
                            () = shutdown.cancelled() => {}
                        }
                        continue;
                    }
                }
            }
            if running.is_empty() {
                if shutdown.is_cancelled() || (config.once && !claimed_any) {
                    break;
                }
                if !claimed_any {
                    tokio::select! {
                        () = tokio::time::sleep(config.poll_interval) => {}
                        // An account was made due: claim at once.
                        () = wake.notified() => short_claim_at = None,
                        () = shutdown.cancelled() => {}
                    }
                }
                continue;
            }
            // Waiting outcomes are recorded within `RECORD_DELAY`.
            let record_timer = async {
                if ended.is_empty() {
                    std::future::pending().await
                } else {
                    tokio::time::sleep(RECORD_DELAY.saturating_sub(oldest_ended.elapsed())).await;
                }
            };
            let joined = if claimed_any || shutdown.is_cancelled() {
                tokio::select! {
                    joined = running.join_next() => joined,
                    () = record_timer => None,
                }
            } else {
                tokio::select! {
                    joined = running.join_next() => joined,
                    () = record_timer => None,
                    () = tokio::time::sleep(config.poll_interval) => None,
                    () = wake.notified() => {
                        short_claim_at = None;
                        None
                    }
                    () = shutdown.cancelled() => None,
                }
            };
            if let Some(joined) = joined {
                let mut joined = Some(joined);
                while let Some(one) = joined.take().or_else(|| running.try_join_next()) {
                    if let Ok(Ok(Ended::Unrecorded(u))) = one {
                        if ended.is_empty() {
                            oldest_ended = std::time::Instant::now();
                        }
                        ended.push(*u);
                    } else {
                        record(
                            &config.worker_id,
                            one.map(|r| r.map(Ended::into_outcome)),
                            &mut stats,
                        );
                    }
                }
            }
        }
        self.record_ended(&config, idle.as_ref(), &mut ended, &mut stats)
            .await;
        tracing::info!(worker = %config.worker_id, ?stats, "worker stopped");
        Ok(stats)
    }
}

/// The longest a worker keeps the outcome of an ended sync (and its lease) before
/// recording it, waiting for others to record with it.
const RECORD_DELAY: Duration = Duration::from_millis(100);

/// How a sync task ended.
enum Ended {
    /// The outcome is recorded (a sync with push, or one that read its own folders).
    Recorded(Outcome),
    /// The outcome is for the worker to record with others.
    Unrecorded(Box<Unrecorded>),
}

impl Ended {
    fn into_outcome(self) -> Outcome {
        match self {
            Ended::Recorded(outcome) => outcome,
            Ended::Unrecorded(u) => u.report.outcome,
        }
    }
}

impl Syncer {
    /// Records the outcomes of `ended` syncs in one statement, releasing their leases,
    /// and counts them. If the database fails, they stay unrecorded: their leases
    /// expire and the accounts are synced again.
    async fn record_ended(
        &self,
        config: &WorkerConfig,
        idle: Option<&crate::IdleWatchers>,
        ended: &mut Vec<Unrecorded>,
        stats: &mut WorkerStats,
    ) {
        if ended.is_empty() {
            return;
        }
        let finishes: Vec<_> = ended.iter().map(|u| u.finish.clone()).collect();
        match self.store.finish_syncs(&config.worker_id, &finishes).await {
            Ok(recorded) => {
                for (u, recorded) in ended.drain(..).zip(recorded) {
                    match recorded {
                        Some(stored) => {
                            u.recorded(stored, config.observer.as_ref());
                            if let (Some(idle), Outcome::Synced) = (idle, &u.report.outcome) {
                                idle.after_sync(u.report.account_id);
                            }
                            record(&config.worker_id, Ok(Ok(u.report.outcome)), stats);
                        }
                        None => {
                            let e = Error::Store(mailroom_store::Error::LeaseLost {
                                account_id: u.report.account_id,
                                owner: config.worker_id.clone(),
                            });
                            record(&config.worker_id, Ok(Err(e)), stats);
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(worker = %config.worker_id, error = %e, syncs = ended.len(), "cannot record the outcomes of ended syncs; their leases will expire and they will be synced again");
                stats.failed += ended.len() as u64;
                ended.clear();
            }
        }
    }
}

/// Whether `account` syncs its Inbox alone (the folder IDLE watches).
fn inbox_only(account: &mailroom_store::Account) -> bool {
    account
        .sync_folders
        .iter()
        .all(|f| f.eq_ignore_ascii_case("inbox"))
}

/// The smallest batch worth a claim statement, and how many claimed accounts may wait
/// for a slot: half the slots, at least one. A claim costs the database as much as
/// the rest of a no-change sync; with 8 slots a claim leases 4 accounts or more, and
/// is made while all 8 slots are still busy.
fn claim_batch(concurrency: usize) -> usize {
    (concurrency / 2).max(1)
}

fn record(
    worker: &str,
    joined: Result<Result<Outcome>, tokio::task::JoinError>,
    stats: &mut WorkerStats,
) {
    match joined {
        Ok(Ok(Outcome::Synced)) => stats.synced += 1,
        Ok(Ok(Outcome::Interrupted)) => stats.interrupted += 1,
        Ok(Ok(Outcome::ReauthRequired { .. } | Outcome::Failed { .. })) => stats.failed += 1,
        Ok(Err(e)) if e.is_lease_lost() => {
            crate::telemetry::account_sync("lease_lost");
            tracing::warn!(worker, error = %e, "lost a lease to another worker");
            stats.lease_lost += 1;
        }
        Ok(Err(Error::Store(e))) => {
            crate::telemetry::account_sync("store_error");
            tracing::error!(worker, error = %e, "sync stopped by a database error");
            stats.failed += 1;
        }
        Ok(Err(e)) => {
            crate::telemetry::account_sync("error");
            tracing::error!(worker, error = %e, "sync failed");
            stats.failed += 1;
        }
        Err(e) => {
            crate::telemetry::account_sync("panicked");
            tracing::error!(worker, error = %e, "sync task panicked");
            stats.failed += 1;
        }
    }
}
