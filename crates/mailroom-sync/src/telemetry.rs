//! What the sync engine counts, through the [`metrics`] facade: no-ops unless the
//! program installed a recorder (the Prometheus one of `mailroom-server`).
//!
//! - `mailroom_account_syncs_total{outcome}`: `synced`, `interrupted`,
//!   `reauth_required`, `failed`, and from the worker `lease_lost`, `store_error`,
//!   `error`, `panicked`.
//! - `mailroom_folder_sync_duration_seconds{result}`: one folder run (`ok`, `error`).
//! - `mailroom_messages_upserted_total`, `mailroom_messages_removed_total` (removed by
//!   the server's delta, by reconciliation after a reset, or purged with a gone
//!   folder).

use std::time::Duration;

use crate::engine::{AccountReport, FolderReport, Outcome};

/// An account sync ended with a report.
pub(crate) fn account_finished(report: &AccountReport) {
    let outcome = match &report.outcome {
        Outcome::Synced => "synced",
        Outcome::Interrupted => "interrupted",
        Outcome::ReauthRequired { .. } => "reauth_required",
        Outcome::Failed { .. } => "failed",
    };
    account_sync(outcome);
}

/// An account sync ended (`outcome` is one of the documented values).
pub(crate) fn account_sync(outcome: &'static str) {
    metrics::counter!("mailroom_account_syncs_total", "outcome" => outcome).increment(1);
}

/// A folder run ended after `elapsed`.
pub(crate) fn folder_finished(report: &FolderReport, elapsed: Duration) {
    let result = if report.error.is_some() {
        "error"
    } else {
        "ok"
    };
    metrics::histogram!("mailroom_folder_sync_duration_seconds", "result" => result)
        .record(elapsed.as_secs_f64());
    let stats = report.stats;
    metrics::counter!("mailroom_messages_upserted_total").increment(stats.upserted);
    metrics::counter!("mailroom_messages_removed_total")
        .increment(stats.removed + stats.reconciled + report.purged);
}
