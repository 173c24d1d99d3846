//! Operations: `/healthz` (the process answers), `/readyz` (the database answers, the
//! worker loop goes round, its leases are renewed), `/metrics` (Prometheus text) and
//! `/status` (accounts as JSON, or as an HTML page for a browser).
//!
//! Counters and histograms come from the library crates through the [`metrics`]
//! facade and are kept by the Prometheus recorder [`install_recorder`] installs;
//! gauges about the accounts are read from the database at each scrape, so they are
//! true whichever worker did the work. `docs/metrics.md` lists every metric.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use mailroom_core::AccountStatus;
use mailroom_sync::PushStats;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;

use crate::ServerState;
use crate::status;

/// How long `/readyz` waits for the database.
const DB_TIMEOUT: Duration = Duration::from_secs(2);

/// Per-account gauges are exported only up to this many accounts by default (see
/// [`Ops::per_account_limit`]).
pub const DEFAULT_PER_ACCOUNT_LIMIT: usize = 50;

/// What the operations routes need besides the syncer.
#[derive(Clone, Debug)]
pub struct Ops {
    metrics: Option<PrometheusHandle>,
    worker: Option<WorkerHealth>,
    per_account_limit: usize,
}

impl Default for Ops {
    fn default() -> Self {
        Ops {
            metrics: None,
            worker: None,
            per_account_limit: DEFAULT_PER_ACCOUNT_LIMIT,
        }
    }
}

impl Ops {
    /// No recorder and no worker: `/metrics` has only the account gauges, `/readyz`
    /// checks only the database.
    pub fn new() -> Ops {
        Ops::default()
    }

    /// Renders the counters of this recorder on `/metrics` (see [`install_recorder`]).
    pub fn with_metrics(mut self, handle: PrometheusHandle) -> Ops {
        self.metrics = Some(handle);
        self
    }

    /// `/readyz` also requires this worker to go round and renew its leases.
    pub fn with_worker(mut self, worker: WorkerHealth) -> Ops {
        self.worker = Some(worker);
        self
    }

    /// Above this many accounts, `mailroom_account_last_sync_age_seconds` (one
    /// series per account) is left out, so that a large fleet cannot blow up the
    /// number of series; 0 turns it off.
    pub fn per_account_limit(mut self, limit: usize) -> Ops {
        self.per_account_limit = limit;
        self
    }

    /// The recorder's handle, if any.
    pub fn metrics(&self) -> Option<&PrometheusHandle> {
        self.metrics.as_ref()
    }
}

/// The worker's liveness, fed by its loop and its syncs ([`WorkerHealth::beat`]).
#[derive(Clone, Debug)]
pub struct WorkerHealth {
    inner: Arc<HealthInner>,
}

#[derive(Debug)]
struct HealthInner {
    worker_id: String,
    stall_after: Duration,
    origin: Instant,
    /// Milliseconds after `origin` of the last beat.
    last_beat: AtomicU64,
}

impl WorkerHealth {
    /// A worker that counts as stalled when it has not beaten for `stall_after`
    /// (choose more than the poll interval and than the longest quiet stretch of a
    /// sync, such as the lease time).
    pub fn new(worker_id: impl Into<String>, stall_after: Duration) -> WorkerHealth {
        WorkerHealth {
            inner: Arc::new(HealthInner {
                worker_id: worker_id.into(),
                stall_after,
                origin: Instant::now(),
                last_beat: AtomicU64::new(0),
            }),
        }
    }

    /// The worker made progress (its loop went round, a page was stored).
    pub fn beat(&self) {
        let ms = self.inner.origin.elapsed().as_millis() as u64;
        self.inner.last_beat.fetch_max(ms, Ordering::Relaxed);
    }

    /// The worker's id (the owner of its leases).
    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// Time since the last beat (since creation when there was none).
    pub fn since_beat(&self) -> Duration {
        let last = Duration::from_millis(self.inner.last_beat.load(Ordering::Relaxed));
        self.inner.origin.elapsed().saturating_sub(last)
    }

    fn stalled(&self) -> bool {
        self.since_beat() > self.inner.stall_after
    }
}

/// Installs the process's Prometheus recorder (once; later calls return the same
/// handle) with the histogram buckets of Mailroom's metrics and their descriptions.
///
/// Fails only when another recorder was installed in the process first.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("mailroom_folder_sync_duration_seconds".into()),
                    &[
                        0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
                    ],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("mailroom_graph_retry_after_seconds".into()),
                        &[1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0],
                    )
                })
                .map_err(|e| format!("cannot set up the metrics recorder: {e}"))?;
            let handle = builder
                .install_recorder()
                .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
            describe();
            Ok(handle)
        })
        .clone()
}

/// The HELP lines of the counters and histograms the library crates emit.
fn describe() {
    use metrics::{describe_counter, describe_histogram};
    describe_counter!(
        "mailroom_account_syncs_total",
        "Account syncs by outcome: synced, interrupted, reauth_required, failed, lease_lost, store_error, error, panicked."
    );
    describe_histogram!(
        "mailroom_folder_sync_duration_seconds",
        metrics::Unit::Seconds,
        "Duration of one folder's sync run, by result (ok, error)."
    );
    describe_counter!(
        "mailroom_messages_upserted_total",
        "Messages inserted or updated in the store by syncs."
    );
    describe_counter!(
        "mailroom_messages_removed_total",
        "Messages removed from the store by syncs (server deletions, reconciliation, gone folders)."
    );
    describe_counter!(
        "mailroom_graph_requests_total",
        "Microsoft Graph HTTP tries by endpoint class and HTTP status (error: no answer)."
    );
    describe_counter!(
        "mailroom_graph_throttled_responses_total",
        "Microsoft Graph throttling answers (429, 503, 504) by status."
    );
    describe_histogram!(
        "mailroom_graph_retry_after_seconds",
        metrics::Unit::Seconds,
        "Retry-After waits Microsoft Graph asked for; the _sum is the total wait asked for."
    );
    describe_counter!(
        "mailroom_imap_commands_total",
        "IMAP commands by command class and result (ok, no, bad, error)."
    );
    describe_counter!(
        "mailroom_token_refreshes_total",
        "OAuth token refreshes by result (ok, reauth_required, transient, throttled, invalid_config, cancelled, error)."
    );
}

pub(crate) fn routes() -> Router<ServerState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/status", get(status_page))
}

/// The process is alive: 200 whenever it answers at all.
async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 when the database answers, the worker (if any) went round recently and none
/// of its leases ran out unrenewed; 503 otherwise, saying which check failed.
async fn readyz(State(state): State<ServerState>) -> Response {
    let store = state.syncer.store();
    let mut lines = Vec::new();
    let mut ready = true;
    let db = tokio::time::timeout(DB_TIMEOUT, store.ping()).await;
    let db_up = matches!(db, Ok(Ok(())));
    match db {
        Ok(Ok(())) => lines.push("ok database".to_owned()),
        Ok(Err(e)) => {
            ready = false;
            lines.push(format!("failed database: {e}"));
        }
        Err(_) => {
            ready = false;
            lines.push(format!(
                "failed database: no answer within {} s",
                DB_TIMEOUT.as_secs()
            ));
        }
    }
    if let Some(worker) = &state.ops.worker {
        let since = worker.since_beat();
        if worker.stalled() {
            ready = false;
            lines.push(format!(
                "failed worker: its loop last went round {} s ago (limit {} s)",
                since.as_secs(),
                worker.inner.stall_after.as_secs()
            ));
        } else {
            lines.push(format!(
                "ok worker: its loop went round {} s ago",
                since.as_secs()
            ));
        }
        if db_up {
            match store
                .expired_leases_of(worker.worker_id(), Utc::now())
                .await
            {
                Ok(0) => lines.push("ok leases: every lease renewed in time".to_owned()),
                Ok(n) => {
                    ready = false;
                    lines.push(format!(
                        "failed leases: {n} lease(s) of worker {} ran out unrenewed",
                        worker.worker_id()
                    ));
                }
                Err(e) => {
                    ready = false;
                    lines.push(format!("failed leases: {e}"));
                }
            }
        }
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = lines.join("\n");
    body.push('\n');
    (code, [(header::CACHE_CONTROL, "no-store")], body).into_response()
}

/// The recorder's counters and histograms, then the account gauges read now.
async fn metrics_text(State(state): State<ServerState>) -> Response {
    let mut text = match &state.ops.metrics {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    };
    if let Some(push) = &state.push {
        push_counters(&push.stats(), &mut text);
    }
    fleet_gauges(&state, &mut text).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Appends what the Graph notification endpoint counted since the worker started.
fn push_counters(stats: &PushStats, out: &mut String) {
    let name = "mailroom_push_notifications_total";
    let help = "Graph change notifications received, by what became of them.";
    metric_head(out, name, "counter", help);
    for (result, n) in [
        ("accepted", stats.accepted),
        ("rejected_client_state", stats.rejected_client_state),
        ("rejected_unknown", stats.rejected_unknown),
        ("malformed", stats.malformed),
        ("overflowed", stats.overflowed),
    ] {
        let _ = writeln!(out, "{name}{{result=\"{result}\"}} {n}");
    }
    for (name, help, n) in [
        (
            "mailroom_push_lifecycle_notifications_total",
            "Graph lifecycle notifications accepted.",
            stats.lifecycle,
        ),
        (
            "mailroom_push_dirty_marks_total",
            "Batches of notifications that marked folders to sync.",
            stats.dirty_marks,
        ),
    ] {
        metric_head(out, name, "counter", help);
        let _ = writeln!(out, "{name} {n}");
    }
}

/// Appends the gauges read from the database (and `mailroom_database_up`).
async fn fleet_gauges(state: &ServerState, out: &mut String) {
    let store = state.syncer.store();
    let now = Utc::now();
    let overview = match tokio::time::timeout(DB_TIMEOUT, store.fleet_overview(now)).await {
        Ok(Ok(o)) => Some(o),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: cannot read the accounts");
            None
        }
        Err(_) => None,
    };
    gauge_head(
        out,
        "mailroom_database_up",
        "1 when the database answered this scrape.",
    );
    let _ = writeln!(out, "mailroom_database_up {}", u8::from(overview.is_some()));
    if let Some(worker) = &state.ops.worker {
        gauge_head(
            out,
            "mailroom_worker_last_poll_age_seconds",
            "Seconds since this worker's loop last went round or stored a page.",
        );
        let _ = writeln!(
            out,
            "mailroom_worker_last_poll_age_seconds {}",
            worker.since_beat().as_secs_f64()
        );
    }
    let Some(overview) = overview else {
        return;
    };
    gauge_head(out, "mailroom_accounts", "Accounts by status.");
    for (status, n) in &overview.by_status {
        let _ = writeln!(out, "mailroom_accounts{{status=\"{status}\"}} {n}");
    }
    gauge_head(
        out,
        "mailroom_leases_held",
        "Unexpired account leases, by any worker.",
    );
    let _ = writeln!(out, "mailroom_leases_held {}", overview.leases_held);
    gauge_head(
        out,
        "mailroom_accounts_due_backlog",
        "Active accounts due, not throttled and not leased: work no worker has started.",
    );
    let _ = writeln!(
        out,
        "mailroom_accounts_due_backlog {}",
        overview.due_backlog
    );
    let limit = state.ops.per_account_limit as u64;
    if overview.accounts() == 0 || overview.accounts() > limit {
        return;
    }
    let Ok(Ok(accounts)) = tokio::time::timeout(DB_TIMEOUT, store.list_accounts()).await else {
        return;
    };
    gauge_head(
        out,
        "mailroom_account_last_sync_age_seconds",
        "Seconds since each account's last successful sync (only while there are few accounts).",
    );
    for a in accounts.iter().take(limit as usize) {
        if let Some(last) = a.last_sync_at {
            let age = (now - last).num_milliseconds().max(0) as f64 / 1000.0;
            let _ = writeln!(
                out,
                "mailroom_account_last_sync_age_seconds{{account=\"{}\"}} {age}",
                label_value(&a.email)
            );
        }
    }
}

fn gauge_head(out: &mut String, name: &str, help: &str) {
    metric_head(out, name, "gauge", help);
}

/// The `# HELP` and `# TYPE` lines of a metric.
fn metric_head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value escaped for the Prometheus text format.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[derive(Debug, Deserialize)]
struct StatusQuery {
    format: Option<String>,
    /// The page starts after this address.
    after: Option<String>,
    /// Only accounts with this status.
    status: Option<String>,
    /// Rows per page, 1 to [`status::MAX_PAGE`].
    limit: Option<u64>,
}

/// JSON (the default, and `?format=json`) or HTML (a browser's `Accept`, or
/// `?format=html`); one page of accounts by address (`?after=`, `?limit=`,
/// `?status=`), with the link to the next.
async fn status_page(
    State(state): State<ServerState>,
    Query(query): Query<StatusQuery>,
    headers: HeaderMap,
) -> Response {
    let html = match query.format.as_deref() {
        Some("html") => true,
        Some(_) => false,
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html")),
    };
    let limit = query.limit.unwrap_or(status::DEFAULT_PAGE);
    if !(1..=status::MAX_PAGE).contains(&limit) {
        return bad_request(format!(
            "limit={limit}: give 1 to {} rows per page",
            status::MAX_PAGE
        ));
    }
    let wanted = match query.status.as_deref().map(str::parse::<AccountStatus>) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(_)) => {
            return bad_request(format!(
                "status={:?}: give active, needs_reauth or disabled",
                query.status.unwrap_or_default()
            ));
        }
    };
    let store = state.syncer.store();
    let read = status::page(store, query.after.as_deref(), wanted, limit);
    let (rows, next) = match tokio::time::timeout(DB_TIMEOUT, read).await {
        Ok(Ok(page)) => page,
        Ok(Err(e)) => return unavailable(format!("cannot read the accounts: {e}")),
        Err(_) => {
            return unavailable("cannot read the accounts: the database does not answer".into());
        }
    };
    let next = next.map(|after| {
        let path = "/status?";
        let mut link = url::form_urlencoded::Serializer::for_suffix(path.to_owned(), path.len());
        link.append_pair("format", if html { "html" } else { "json" });
        link.append_pair("after", &after);
        link.append_pair("limit", &limit.to_string());
        if let Some(s) = wanted {
            link.append_pair("status", s.as_str());
        }
        link.finish()
    });
    let generated_at = Utc::now();
    if html {
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            status::html(&rows, generated_at, next.as_deref()),
        )
            .into_response()
    } else {
        let body = serde_json::json!({
            "generated_at": generated_at,
            "accounts": rows,
            "next": next,
        });
        ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
    }
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response()
}

fn unavailable(message: String) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, format!("{message}\n")).into_response()
}
