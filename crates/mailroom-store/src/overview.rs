//! Read-only figures about all accounts at once, for health checks, metrics and
//! status pages: a few aggregate statements, whatever the number of accounts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use mailroom_core::AccountStatus;
use sea_orm::{ConnectionTrait, Statement};

use crate::error::{Context as _, Result};
use crate::{Backend, Store};

/// Accounts counted by state (see [`Store::fleet_overview`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetOverview {
    /// Accounts per status; every status is listed, with 0 when none.
    pub by_status: Vec<(AccountStatus, u64)>,
    /// Unexpired leases, by any worker.
    pub leases_held: u64,
    /// Active accounts that are due, not throttled and not leased by a live worker:
    /// work no worker has started yet.
    pub due_backlog: u64,
}

impl FleetOverview {
    /// All accounts.
    pub fn accounts(&self) -> u64 {
        self.by_status.iter().map(|(_, n)| n).sum()
    }
}

const STATUSES: [AccountStatus; 3] = [
    AccountStatus::Active,
    AccountStatus::NeedsReauth,
    AccountStatus::Disabled,
];

impl Store {
    /// Answers when the database does (one `SELECT 1`).
    pub async fn ping(&self) -> Result<()> {
        self.db
            .execute_unprepared("SELECT 1")
            .await
            .context(|| "cannot reach the database".to_owned())?;
        Ok(())
    }

    /// Accounts by status, leases held and the backlog of due accounts, as of `now`.
    pub async fn fleet_overview(&self, now: DateTime<Utc>) -> Result<FleetOverview> {
        let what = || "cannot count accounts".to_owned();
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                self.db_backend(),
                "SELECT status, COUNT(*) AS n FROM accounts GROUP BY status",
            ))
            .await
            .context(what)?;
        let mut counts: HashMap<String, u64> = HashMap::new();
        for row in rows {
            let status: String = row.try_get("", "status").context(what)?;
            let n: i64 = row.try_get("", "n").context(what)?;
            counts.insert(status, n as u64);
        }
        let by_status = STATUSES
            .iter()
            .map(|s| (*s, counts.get(s.as_str()).copied().unwrap_or(0)))
            .collect();
        let p = |i: u8| self.placeholder(i);
        let sql = format!(
            "SELECT \
               COUNT(*) FILTER (WHERE lease_owner IS NOT NULL AND lease_expires_at > {now}) AS leased, \
               COUNT(*) FILTER (WHERE status = 'active' \
                 AND (next_sync_at IS NULL OR next_sync_at <= {now}) \
                 AND (throttled_until IS NULL OR throttled_until <= {now}) \
                 AND (lease_expires_at IS NULL OR lease_expires_at <= {now})) AS backlog \
             FROM accounts",
            now = p(1)
        );
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.db_backend(),
                sql,
                [now.into()],
            ))
            .await
            .context(what)?;
        let (leases_held, due_backlog) = match row {
            Some(row) => (
                row.try_get::<i64>("", "leased").context(what)? as u64,
                row.try_get::<i64>("", "backlog").context(what)? as u64,
            ),
            None => (0, 0),
        };
        Ok(FleetOverview {
            by_status,
            leases_held,
            due_backlog,
        })
    }

    /// Leases `owner` still holds that ran out before `now`: a worker whose renewals
    /// stopped (each stored page renews the lease).
    pub async fn expired_leases_of(&self, owner: &str, now: DateTime<Utc>) -> Result<u64> {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM accounts WHERE lease_owner = {} AND lease_expires_at <= {}",
            self.placeholder(1),
            self.placeholder(2)
        );
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.db_backend(),
                sql,
                [owner.into(), now.into()],
            ))
            .await
            .context(|| format!("cannot count the leases of worker {owner}"))?;
        Ok(match row {
            Some(row) => row
                .try_get::<i64>("", "n")
                .context(|| format!("cannot count the leases of worker {owner}"))?
                as u64,
            None => 0,
        })
    }

    /// Stored messages per account id (accounts without messages are absent).
    pub async fn message_counts(&self) -> Result<HashMap<i64, u64>> {
        self.counts_per_account("").await
    }

    /// Messages stored per account, for the accounts `ids` only (those without
    /// messages are absent): one index range per account, not a scan of `messages`.
    pub async fn message_counts_of(&self, ids: &[i64]) -> Result<HashMap<i64, u64>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        self.counts_per_account(&format!("WHERE account_id IN ({list})"))
            .await
    }

    async fn counts_per_account(&self, filter: &str) -> Result<HashMap<i64, u64>> {
        let what = || "cannot count messages per account".to_owned();
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                self.db_backend(),
                format!(
                    "SELECT account_id, COUNT(*) AS n FROM messages {filter} GROUP BY account_id"
                ),
            ))
            .await
            .context(what)?;
        let mut counts = HashMap::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("", "account_id").context(what)?;
            let n: i64 = row.try_get("", "n").context(what)?;
            counts.insert(id, n as u64);
        }
        Ok(counts)
    }

    /// The `i`-th bind parameter in this backend's syntax.
    fn placeholder(&self, i: u8) -> String {
        match self.backend {
            Backend::Postgres => format!("${i}"),
            Backend::Sqlite => format!("?{i}"),
        }
    }
}
