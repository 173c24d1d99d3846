//! Progress callbacks, for the CLI's progress bars and for logs.

use mailroom_store::{Account, FolderRow, PageStats};

use crate::engine::{AccountReport, FolderReport};

/// Called as a sync makes progress. Every method has an empty default.
pub trait SyncObserver: Send + Sync {
    /// The sync of `account` starts.
    fn account_started(&self, account: &Account) {
        let _ = account;
    }
    /// The sync of `account` waits until `until`: the server asked for it
    /// (`Retry-After`), maybe to an earlier process.
    fn throttled(&self, account: &Account, until: chrono::DateTime<chrono::Utc>) {
        let _ = (account, until);
    }
    /// A folder starts (its stored cursor tells whether it is a first sync).
    fn folder_started(&self, account: &Account, folder: &FolderRow) {
        let _ = (account, folder);
    }
    /// A page was stored with its cursor.
    fn page_stored(
        &self,
        account: &Account,
        folder: &FolderRow,
        stats: &PageStats,
        complete: bool,
    ) {
        let _ = (account, folder, stats, complete);
    }
    /// A folder is done (or failed: see `report.error`).
    fn folder_finished(&self, account: &Account, report: &FolderReport) {
        let _ = (account, report);
    }
    /// The account is done.
    fn account_finished(&self, report: &AccountReport) {
        let _ = report;
    }
    /// The worker loop `worker_id` went round once more (it looks for due accounts
    /// at least every poll interval while it has room): a liveness signal.
    fn worker_polled(&self, worker_id: &str) {
        let _ = worker_id;
    }
}

/// An observer that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl SyncObserver for NoopObserver {}
