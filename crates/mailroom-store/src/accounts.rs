//! Accounts: CRUD with sealed credentials only, status, and worker leases.

use chrono::{DateTime, Utc};
use mailroom_core::{AccountKind, AccountStatus, SyncCursor};
use sea_orm::sea_query::{Expr, ExprTrait as _, Func};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend,
    EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect as _, QueryTrait as _,
    Statement, TransactionTrait as _,
};

use crate::entity::account::{self, Entity as Accounts};
use crate::entity::folder;
use crate::error::{Context as _, Error, Result};
use crate::messages::synced_folder;
use crate::{Backend, LeaseCheck, Store};

/// Credentials as stored: a Fernet token made by `mailroom-vault`.
///
/// Construction checks the value has the shape of a Fernet token (url-safe base64
/// starting with the version byte 0x80), so plaintext JSON can never be stored by
/// mistake. The store cannot decrypt it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedCredentials(String);

impl SealedCredentials {
    /// Wraps a Fernet token; refuses anything that is not one.
    pub fn new(token: impl Into<String>) -> Result<Self> {
        let token = token.into();
        let charset_ok = token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='));
        // 0x80 followed by a timestamp below 2^36 encodes as "gAAAAA" in base64.
        if !charset_ok || !token.starts_with("gAAAAA") || token.len() < 76 {
            return Err(Error::Invalid(
                "credentials must be encrypted with mailroom-vault before they are stored".into(),
            ));
        }
        Ok(SealedCredentials(token))
    }

    /// The Fernet token, to hand to `Vault::decrypt_json`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SealedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedCredentials({} bytes)", self.0.len())
    }
}

/// An account as stored.
#[derive(Debug, Clone)]
pub struct Account {
    /// Database id.
    pub id: i64,
    /// The mailbox address (unique).
    pub email: String,
    /// Provider kind.
    pub kind: AccountKind,
    /// Encrypted credentials.
    pub credentials: SealedCredentials,
    /// Life-cycle state.
    pub status: AccountStatus,
    /// The last error, in plain words, if the last sync failed.
    pub last_error: Option<String>,
    /// The server's code for the last auth error (e.g. `AADSTS700082`).
    pub auth_error_code: Option<String>,
    /// Folders to sync; empty means the inbox only.
    pub sync_folders: Vec<String>,
    /// When the last successful sync finished.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// When the account is next due; `None` means now.
    pub next_sync_at: Option<DateTime<Utc>>,
    /// The worker holding the lease, if any.
    pub lease_owner: Option<String>,
    /// When that lease runs out.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When the account was added.
    pub created_at: DateTime<Utc>,
    /// No request may go to the mailbox before this (the server's last
    /// `Retry-After`); workers do not claim the account before it either.
    pub throttled_until: Option<DateTime<Utc>>,
}

/// What [`Store::create_account`] needs.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// The mailbox address.
    pub email: String,
    /// Provider kind.
    pub kind: AccountKind,
    /// Encrypted credentials.
    pub credentials: SealedCredentials,
    /// Folders to sync; empty means the inbox only.
    pub sync_folders: Vec<String>,
}

/// Changes to an account's state, applied by [`Store::update_account`]; `None` leaves a
/// field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountUpdate {
    /// New status.
    pub status: Option<AccountStatus>,
    /// New last error (`Some(None)` clears it).
    pub last_error: Option<Option<String>>,
    /// New auth error code (`Some(None)` clears it).
    pub auth_error_code: Option<Option<String>>,
    /// New folder list.
    pub sync_folders: Option<Vec<String>>,
    /// New due time (`Some(None)`: due now).
    pub next_sync_at: Option<Option<DateTime<Utc>>>,
}

/// A folder's cursor after a page without changes, stored with the sync's outcome by
/// [`Store::finish_sync_with_cursors`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderCursor {
    /// The folder's database id.
    pub folder_id: i64,
    /// Its new cursor.
    pub cursor: SyncCursor,
}

/// One sync's outcome for [`Store::finish_syncs`].
#[derive(Debug, Clone)]
pub struct SyncFinish {
    /// The account.
    pub account_id: i64,
    /// How its sync ended.
    pub outcome: SyncOutcome,
    /// The cursors of its folders whose last page had no changes.
    pub cursors: Vec<FolderCursor>,
}

/// How a sync of one account ended, recorded by [`Store::finish_sync`].
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    /// The account's new status.
    pub status: AccountStatus,
    /// `None` on success; else the error in plain words.
    pub error: Option<String>,
    /// The AADSTS or server code of an auth error.
    pub auth_error_code: Option<String>,
    /// When the sync finished.
    pub finished_at: DateTime<Utc>,
    /// When the account is next due; `None` keeps the due time it has (a sync that
    /// is not part of a worker's schedule).
    pub next_sync_at: Option<DateTime<Utc>>,
}

fn to_account(m: account::Model) -> Result<Account> {
    let corrupt = |what: String| Error::Corrupt(format!("account {}: {what}", m.id));
    Ok(Account {
        id: m.id,
        kind: m.kind.parse().map_err(|e| corrupt(format!("{e}")))?,
        status: m.status.parse().map_err(|e| corrupt(format!("{e}")))?,
        credentials: SealedCredentials(m.credentials),
        sync_folders: match &m.sync_folders {
            None => Vec::new(),
            Some(json) => serde_json::from_str(json)
                .map_err(|e| corrupt(format!("sync_folders is not a JSON list: {e}")))?,
        },
        email: m.email,
        last_error: m.last_error,
        auth_error_code: m.auth_error_code,
        last_sync_at: m.last_sync_at,
        next_sync_at: m.next_sync_at,
        lease_owner: m.lease_owner,
        lease_expires_at: m.lease_expires_at,
        created_at: m.created_at,
        throttled_until: m.throttled_until,
    })
}

fn folders_json(folders: &[String]) -> Option<String> {
    (!folders.is_empty()).then(|| serde_json::to_string(folders).expect("strings serialize"))
}

impl Store {
    /// Adds an account (status `active`, due now).
    pub async fn create_account(&self, new: NewAccount) -> Result<Account> {
        let email = new.email.trim().to_owned();
        if email.is_empty() {
            return Err(Error::Invalid("an account needs an email address".into()));
        }
        if self.find_account(&email).await?.is_some() {
            return Err(Error::DuplicateAccount(email));
        }
        let now = Utc::now();
        let model = account::ActiveModel {
            email: Set(email.clone()),
            kind: Set(new.kind.as_str().to_owned()),
            credentials: Set(new.credentials.0),
            status: Set(AccountStatus::Active.as_str().to_owned()),
            sync_folders: Set(folders_json(&new.sync_folders)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.writer)
        .await
        .map_err(|e| match e.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
                Error::DuplicateAccount(email.clone())
            }
            _ => Error::database(format!("cannot add account {email}"), e),
        })?;
        to_account(model)
    }

    /// One account by id.
    pub async fn get_account(&self, id: i64) -> Result<Account> {
        let model = Accounts::find_by_id(id)
            .one(&self.db)
            .await
            .context(|| format!("cannot read account {id}"))?
            .ok_or_else(|| Error::NotFound(format!("account {id}")))?;
        to_account(model)
    }

    /// One account by email address (exact, case-insensitive).
    pub async fn find_account(&self, email: &str) -> Result<Option<Account>> {
        let lowered = email.trim().to_lowercase();
        let model = Accounts::find()
            .filter(Expr::expr(Func::lower(Expr::col(account::Column::Email))).eq(lowered))
            .one(&self.db)
            .await
            .context(|| format!("cannot look up account {email}"))?;
        model.map(to_account).transpose()
    }

    /// Every account, by id.
    pub async fn list_accounts(&self) -> Result<Vec<Account>> {
        self.accounts_of(Accounts::find().order_by_asc(account::Column::Id))
            .await
    }

    /// Up to `limit` accounts with an id above `after`, by id: to go through every
    /// account a page at a time (start with `after = 0`, then the last id seen), so
    /// that memory does not grow with the number of accounts.
    pub async fn list_accounts_after(&self, after: i64, limit: u64) -> Result<Vec<Account>> {
        let query = Accounts::find()
            .filter(account::Column::Id.gt(after))
            .order_by_asc(account::Column::Id)
            .limit(limit);
        self.accounts_of(query).await
    }

    /// Up to `limit` accounts by address, those after `after` (exclusive) when given,
    /// only those with `status` when given: one page of a listing that stays cheap
    /// with 100,000 accounts (the unique index on the address). The next page starts
    /// after the last address of this one.
    pub async fn list_accounts_by_email(
        &self,
        after: Option<&str>,
        status: Option<AccountStatus>,
        limit: u64,
    ) -> Result<Vec<Account>> {
        let mut query = Accounts::find();
        if let Some(after) = after {
            query = query.filter(account::Column::Email.gt(after));
        }
        if let Some(status) = status {
            query = query.filter(account::Column::Status.eq(status.as_str()));
        }
        self.accounts_of(query.order_by_asc(account::Column::Email).limit(limit))
            .await
    }

    /// The accounts `query` selects, in its order.
    async fn accounts_of(&self, query: sea_orm::Select<Accounts>) -> Result<Vec<Account>> {
        query
            .all(&self.db)
            .await
            .context(|| "cannot list accounts".into())?
            .into_iter()
            .map(to_account)
            .collect()
    }

    /// Removes an account with its folders, messages and attachments.
    pub async fn remove_account(&self, id: i64) -> Result<()> {
        let res = Accounts::delete_by_id(id)
            .exec(&self.writer)
            .await
            .context(|| format!("cannot remove account {id}"))?;
        if res.rows_affected == 0 {
            return Err(Error::NotFound(format!("account {id}")));
        }
        Ok(())
    }

    /// Replaces the account's credentials (after a refresh or a new sign-in).
    pub async fn update_credentials(&self, id: i64, credentials: &SealedCredentials) -> Result<()> {
        let res = Accounts::update_many()
            .col_expr(
                account::Column::Credentials,
                Expr::value(credentials.0.clone()),
            )
            .col_expr(account::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(account::Column::Id.eq(id))
            .exec(&self.writer)
            .await
            .context(|| format!("cannot store refreshed credentials of account {id}"))?;
        if res.rows_affected == 0 {
            return Err(Error::NotFound(format!("account {id}")));
        }
        Ok(())
    }

    /// Replaces the credentials while `lease.owner` holds the account's lease (and
    /// extends it to `lease.until` when `lease.renew`), in one statement: a worker that lost its lease
    /// writes nothing and gets [`Error::LeaseLost`].
    pub async fn update_credentials_leased(
        &self,
        id: i64,
        credentials: &SealedCredentials,
        lease: LeaseCheck<'_>,
    ) -> Result<()> {
        let mut update = Accounts::update_many()
            .col_expr(
                account::Column::Credentials,
                Expr::value(credentials.0.clone()),
            )
            .col_expr(account::Column::UpdatedAt, Expr::value(Utc::now()));
        if lease.renew {
            update = update.col_expr(account::Column::LeaseExpiresAt, Expr::value(lease.until));
        }
        let res = update
            .filter(account::Column::Id.eq(id))
            .filter(account::Column::LeaseOwner.eq(lease.owner))
            .exec(&self.writer)
            .await
            .context(|| format!("cannot store refreshed credentials of account {id}"))?;
        if res.rows_affected == 0 {
            return Err(Error::LeaseLost {
                account_id: id,
                owner: lease.owner.to_owned(),
            });
        }
        Ok(())
    }

    /// Records that the server asked to wait until `until` before the next request to
    /// the account's mailbox (a later deadline already stored wins).
    pub async fn set_throttled_until(&self, id: i64, until: DateTime<Utc>) -> Result<()> {
        let res = Accounts::update_many()
            .col_expr(account::Column::ThrottledUntil, Expr::value(until))
            .filter(account::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(account::Column::ThrottledUntil.is_null())
                    .add(account::Column::ThrottledUntil.lt(until)),
            )
            .exec(&self.writer)
            .await
            .context(|| format!("cannot record the throttling of account {id}"))?;
        let _ = res;
        Ok(())
    }

    /// Replaces the credentials only if they still are `expected` (compare-and-swap), so
    /// a key rotation never overwrites a token a worker refreshed meanwhile. Returns
    /// whether the row was changed.
    pub async fn swap_credentials(
        &self,
        id: i64,
        expected: &SealedCredentials,
        new: &SealedCredentials,
    ) -> Result<bool> {
        let res = Accounts::update_many()
            .col_expr(account::Column::Credentials, Expr::value(new.0.clone()))
            .col_expr(account::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(account::Column::Id.eq(id))
            .filter(account::Column::Credentials.eq(expected.0.clone()))
            .exec(&self.writer)
            .await
            .context(|| format!("cannot re-encrypt credentials of account {id}"))?;
        Ok(res.rows_affected == 1)
    }

    /// Applies an [`AccountUpdate`].
    pub async fn update_account(&self, id: i64, update: AccountUpdate) -> Result<Account> {
        let mut q = Accounts::update_many()
            .col_expr(account::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(account::Column::Id.eq(id));
        if let Some(status) = update.status {
            q = q.col_expr(account::Column::Status, Expr::value(status.as_str()));
        }
        if let Some(error) = update.last_error {
            q = q.col_expr(account::Column::LastError, Expr::value(error));
        }
        if let Some(code) = update.auth_error_code {
            q = q.col_expr(account::Column::AuthErrorCode, Expr::value(code));
        }
        if let Some(folders) = update.sync_folders {
            q = q.col_expr(
                account::Column::SyncFolders,
                Expr::value(folders_json(&folders)),
            );
        }
        if let Some(next) = update.next_sync_at {
            q = q.col_expr(account::Column::NextSyncAt, Expr::value(next));
        }
        let res = q
            .exec(&self.writer)
            .await
            .context(|| format!("cannot update account {id}"))?;
        if res.rows_affected == 0 {
            return Err(Error::NotFound(format!("account {id}")));
        }
        self.get_account(id).await
    }

    /// Records how a sync ended and releases `owner`'s lease (if it still holds it).
    pub async fn finish_sync(
        &self,
        id: i64,
        owner: Option<&str>,
        outcome: SyncOutcome,
    ) -> Result<()> {
        self.finish_sync_with_cursors(id, owner, outcome, &[])
            .await
            .map(|_| ())
    }

    /// [`Store::finish_sync`] that also stores the cursors of folders whose last page
    /// had no changes, as [`Store::apply_sync_page`] would have (cursor, last synced
    /// now, errors and gone marks cleared), in the same statement (PostgreSQL) or
    /// transaction (SQLite), only if the outcome is recorded (the lease is still
    /// `owner`'s). A no-change sync then costs one write instead of one per folder
    /// and one for the outcome.
    ///
    /// A folder of another account, or in the middle of a reset enumeration (which
    /// only a page write may end), keeps its cursor. Returns how many cursors were
    /// stored.
    pub async fn finish_sync_with_cursors(
        &self,
        id: i64,
        owner: Option<&str>,
        outcome: SyncOutcome,
        cursors: &[FolderCursor],
    ) -> Result<u64> {
        let mut q = Accounts::update_many()
            .col_expr(
                account::Column::Status,
                Expr::value(outcome.status.as_str()),
            )
            .col_expr(
                account::Column::LastError,
                Expr::value(outcome.error.clone()),
            )
            .col_expr(
                account::Column::AuthErrorCode,
                Expr::value(outcome.auth_error_code),
            )
            .col_expr(account::Column::UpdatedAt, Expr::value(outcome.finished_at))
            .filter(account::Column::Id.eq(id));
        if let Some(next) = outcome.next_sync_at {
            q = q.col_expr(account::Column::NextSyncAt, Expr::value(next));
        }
        if outcome.error.is_none() {
            q = q.col_expr(
                account::Column::LastSyncAt,
                Expr::value(outcome.finished_at),
            );
        }
        if let Some(owner) = owner {
            q = q
                .col_expr(
                    account::Column::LeaseOwner,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(
                    account::Column::LeaseExpiresAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .filter(account::Column::LeaseOwner.eq(owner));
        }
        let what = || format!("cannot record sync of account {id}");
        let (recorded, stored) = if cursors.is_empty() {
            let res = q.exec(&self.writer).await.context(what)?;
            (res.rows_affected, 0)
        } else {
            match self.backend {
                Backend::Postgres => {
                    let update = q.build(DbBackend::Postgres);
                    let mut values = update.values.map(|v| v.0).unwrap_or_default();
                    // Each folder by primary key, its cursor by a CASE (an account
                    // has a few folders): index probes only, where a join with
                    // arrays of ids and cursors planned a hash join.
                    let n = values.len();
                    let mut cases = String::new();
                    let mut ids = String::new();
                    for (k, c) in cursors.iter().enumerate() {
                        let (id_param, cursor_param) = (n + 3 + 2 * k, n + 4 + 2 * k);
                        cases.push_str(&format!(" WHEN ${id_param} THEN ${cursor_param}"));
                        ids.push_str(&format!("{}${id_param}", if k == 0 { "" } else { ", " }));
                        values.extend([c.folder_id.into(), c.cursor.as_str().into()]);
                    }
                    let sql = format!(
                        "WITH acc AS ({} RETURNING id), \
                         f AS (UPDATE folders SET cursor = CASE id{cases} END, \
                           last_synced_at = ${}, {reached} \
                           WHERE id IN ({ids}) AND account_id = ${} \
                           AND NOT reconciling AND EXISTS (SELECT 1 FROM acc) \
                           RETURNING id) \
                         SELECT (SELECT count(*) FROM acc) AS accounts, \
                           (SELECT count(*) FROM f) AS folders",
                        update.sql,
                        n + 1,
                        n + 2,
                        reached = folder_reached_sql!(),
                    );
                    values.splice(n..n, [outcome.finished_at.into(), id.into()]);
                    let row = self
                        .writer
                        .query_one_raw(Statement::from_sql_and_values(
                            DbBackend::Postgres,
                            sql,
                            values,
                        ))
                        .await
                        .context(what)?
                        .ok_or_else(|| Error::Invalid(what()))?;
                    let count = |column: &str| {
                        row.try_get::<i64>("", column)
                            .context(what)
                            .map(i64::unsigned_abs)
                    };
                    (count("accounts")?, count("folders")?)
                }
                Backend::Sqlite => {
                    let tx = self.writer.begin().await.context(what)?;
                    let recorded = q.exec(&tx).await.context(what)?.rows_affected;
                    let mut stored = 0;
                    if recorded > 0 {
                        for c in cursors {
                            stored += synced_folder(c.cursor.as_str(), outcome.finished_at)
                                .filter(folder::Column::Id.eq(c.folder_id))
                                .filter(folder::Column::AccountId.eq(id))
                                .filter(folder::Column::Reconciling.eq(false))
                                .exec(&tx)
                                .await
                                .context(what)?
                                .rows_affected;
                        }
                    }
                    tx.commit().await.context(what)?;
                    (recorded, stored)
                }
            }
        };
        if recorded == 0 {
            return match owner {
                Some(owner) => Err(Error::LeaseLost {
                    account_id: id,
                    owner: owner.to_owned(),
                }),
                None => Err(Error::NotFound(format!("account {id}"))),
            };
        }
        Ok(stored)
    }

    /// Records the outcomes of several syncs by worker `owner` (with their unchanged
    /// folders' cursors, as [`Store::finish_sync_with_cursors`]) and releases their
    /// leases: one statement on PostgreSQL, whatever their number (a worker records
    /// the syncs that ended meanwhile together: one commit instead of one each). On
    /// SQLite, one transaction each.
    ///
    /// Returns, for each sync in order, `Some(cursors stored)` when recorded, `None`
    /// when `owner` no longer held the account's lease (nothing of it is written).
    pub async fn finish_syncs(
        &self,
        owner: &str,
        syncs: &[SyncFinish],
    ) -> Result<Vec<Option<u64>>> {
        if self.backend == Backend::Sqlite || syncs.len() == 1 {
            let mut recorded = Vec::with_capacity(syncs.len());
            for s in syncs {
                let one = self
                    .finish_sync_with_cursors(
                        s.account_id,
                        Some(owner),
                        s.outcome.clone(),
                        &s.cursors,
                    )
                    .await;
                recorded.push(match one {
                    Ok(stored) => Some(stored),
                    Err(Error::LeaseLost { .. }) => None,
                    Err(e) => return Err(e),
                });
            }
            return Ok(recorded);
        }
        let (mut ids, mut statuses, mut errors, mut codes) = (vec![], vec![], vec![], vec![]);
        let (mut finished, mut next, mut nulls) = (vec![], vec![], vec![]);
        let (mut folder_ids, mut folder_accounts, mut cursors, mut cursor_at) =
            (vec![], vec![], vec![], vec![]);
        for s in syncs {
            let o = &s.outcome;
            ids.push(s.account_id);
            statuses.push(o.status.as_str().to_owned());
            errors.push(o.error.clone().unwrap_or_default());
            codes.push(o.auth_error_code.clone().unwrap_or_default());
            finished.push(o.finished_at);
            next.push(o.next_sync_at.unwrap_or(o.finished_at));
            nulls.push(
                i32::from(o.error.is_none())
                    | i32::from(o.auth_error_code.is_none()) << 1
                    | i32::from(o.next_sync_at.is_none()) << 2,
            );
            for c in &s.cursors {
                folder_ids.push(c.folder_id);
                folder_accounts.push(s.account_id);
                cursors.push(c.cursor.as_str().to_owned());
                cursor_at.push(o.finished_at);
            }
        }
        // The null mask: bit 0 no error, 1 no code, 2 keep the due time. Each array
        // is read through a scalar subquery, so that the planner cannot see its length
        // in any plan: then the generic plan costs what a custom one does, and
        // PostgreSQL reuses it instead of planning every batch again (planning this
        // statement cost more than running it).
        let sql = concat!(
            "WITH v AS (SELECT * FROM unnest((SELECT $1::bigint[]), (SELECT $2::text[]), \
               (SELECT $3::text[]), (SELECT $4::text[]), (SELECT $5::timestamptz[]), \
               (SELECT $6::timestamptz[]), (SELECT $7::integer[])) \
               AS v(id, status, error, code, finished, next, nulls)), \
             acc AS (UPDATE accounts a SET status = v.status, \
               last_error = CASE WHEN v.nulls & 1 = 0 THEN v.error END, \
               auth_error_code = CASE WHEN v.nulls & 2 = 0 THEN v.code END, \
               updated_at = v.finished, \
               next_sync_at = CASE WHEN v.nulls & 4 = 0 THEN v.next ELSE a.next_sync_at END, \
               last_sync_at = CASE WHEN v.nulls & 1 = 1 THEN v.finished ELSE a.last_sync_at END, \
               lease_owner = NULL, lease_expires_at = NULL \
               FROM v WHERE a.id = v.id AND a.lease_owner = $8 RETURNING a.id), \
             f AS (UPDATE folders SET cursor = c.cursor, last_synced_at = c.at, ",
            folder_reached_sql!(),
            " FROM unnest((SELECT $9::bigint[]), (SELECT $10::bigint[]), \
                 (SELECT $11::text[]), (SELECT $12::timestamptz[])) \
                 AS c(id, account_id, cursor, at) \
               WHERE folders.id = c.id AND folders.account_id = c.account_id \
               AND NOT folders.reconciling AND c.account_id IN (SELECT id FROM acc) \
               RETURNING folders.account_id) \
             SELECT acc.id, (SELECT count(*) FROM f WHERE f.account_id = acc.id) AS cursors \
             FROM acc"
        );
        let values: Vec<sea_orm::Value> = vec![
            ids.into(),
            statuses.into(),
            errors.into(),
            codes.into(),
            finished.into(),
            next.into(),
            nulls.into(),
            owner.into(),
            folder_ids.into(),
            folder_accounts.into(),
            cursors.into(),
            cursor_at.into(),
        ];
        let what = || format!("cannot record the syncs of {} accounts", syncs.len());
        let rows = self
            .writer
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                values,
            ))
            .await
            .context(what)?;
        let mut stored = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            let id = row.try_get::<i64>("", "id").context(what)?;
            let cursors = row.try_get::<i64>("", "cursors").context(what)?;
            stored.insert(id, cursors.unsigned_abs());
        }
        Ok(syncs
            .iter()
            .map(|s| stored.get(&s.account_id).copied())
            .collect())
    }

    /// Leases up to `limit` active accounts that are due at `now` and not leased by a
    /// live worker, to `owner` until `lease_until`, the longest due first, in one
    /// statement. Safe with several workers on one PostgreSQL database (`FOR UPDATE
    /// SKIP LOCKED`); on SQLite the single UPDATE is atomic. An expired lease (a worker
    /// that died) is taken over.
    ///
    /// The accounts are found through the index `idx_accounts_claim`, in the order it
    /// keeps: the cost of a claim does not grow with the number of accounts.
    pub async fn claim_due_accounts(
        &self,
        owner: &str,
        limit: u64,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Account>> {
        let statement = self.claim_statement("", owner, limit, now, lease_until);
        let rows = account::Model::find_by_statement(statement)
            .all(&self.writer)
            .await
            .context(|| format!("cannot lease accounts for worker {owner}"))?;
        let mut accounts = rows
            .into_iter()
            .map(to_account)
            .collect::<Result<Vec<_>>>()?;
        accounts.sort_by_key(|a| a.id);
        Ok(accounts)
    }

    /// The plan the database makes for [`Store::claim_due_accounts`] (`EXPLAIN`, one
    /// line per row), to check that it uses the index; nothing is claimed.
    #[cfg(feature = "testing")]
    pub async fn claim_plan(&self, limit: u64, now: DateTime<Utc>) -> Result<String> {
        let prefix = match self.backend {
            Backend::Postgres => "EXPLAIN ",
            Backend::Sqlite => "EXPLAIN QUERY PLAN ",
        };
        let statement = self.claim_statement(prefix, "explain", limit, now, now);
        let rows = self
            .writer
            .query_all_raw(statement)
            .await
            .context(|| "cannot explain the claim of due accounts".into())?;
        let column = match self.backend {
            Backend::Postgres => "QUERY PLAN",
            Backend::Sqlite => "detail",
        };
        let lines = rows
            .iter()
            .map(|row| row.try_get::<String>("", column))
            .collect::<std::result::Result<Vec<_>, _>>()
            .context(|| "cannot read the plan of the claim".into())?;
        Ok(lines.join("\n"))
    }

    /// The statements prepared in the PostgreSQL session that answers this call
    /// (`pg_prepared_statements`): text, generic plans made, custom plans made.
    #[cfg(feature = "testing")]
    pub async fn prepared_plans(&self) -> Result<Vec<(String, i64, i64)>> {
        let what = || "cannot read the prepared statements".to_owned();
        let rows = self
            .writer
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements",
            ))
            .await
            .context(what)?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("", "statement").context(what)?,
                    row.try_get("", "generic_plans").context(what)?,
                    row.try_get("", "custom_plans").context(what)?,
                ))
            })
            .collect()
    }

    fn claim_statement(
        &self,
        prefix: &str,
        owner: &str,
        limit: u64,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Statement {
        // The key must be written exactly as in the index for the planner to use it.
        // On PostgreSQL the ids go through an array so that the rows are updated
        // through the primary key whatever the batch size (with `IN (SELECT …)` the
        // planner may hash-join a scan of the table for a large batch). The limit is
        // written in the text (a worker asks for a few sizes): with `LIMIT $4` the
        // generic plan assumed a tenth of the table, so PostgreSQL planned every
        // claim again (a custom plan), which cost as much as running it.
        let sql = match self.backend {
            Backend::Postgres => format!(
                "{prefix}UPDATE accounts SET lease_owner = $1, lease_expires_at = $2 \
                 WHERE id = ANY(ARRAY(SELECT id FROM accounts \
                   WHERE status = 'active' AND {key} <= $3 \
                   ORDER BY {key}, id LIMIT {limit} FOR UPDATE SKIP LOCKED)) \
                 RETURNING *",
                key = crate::migration::CLAIMABLE_AT_POSTGRES,
                limit = limit as i64,
            ),
            Backend::Sqlite => format!(
                "{prefix}UPDATE accounts SET lease_owner = ?, lease_expires_at = ? \
                 WHERE id IN (SELECT id FROM accounts \
                   WHERE status = 'active' AND {key} <= ? \
                   ORDER BY {key}, id LIMIT ?) \
                 RETURNING *",
                key = crate::migration::CLAIMABLE_AT_SQLITE,
            ),
        };
        let mut values: Vec<sea_orm::Value> = vec![owner.into(), lease_until.into(), now.into()];
        if self.backend == Backend::Sqlite {
            values.push((limit as i64).into());
        }
        Statement::from_sql_and_values(self.db_backend(), sql, values)
    }

    /// Extends `owner`'s lease on an account; fails with [`Error::LeaseLost`] if another
    /// worker holds it now.
    pub async fn renew_lease(&self, id: i64, owner: &str, until: DateTime<Utc>) -> Result<()> {
        renew_lease_on(&self.writer, id, owner, until).await
    }

    /// Gives up `owner`'s lease without recording a sync.
    pub async fn release_lease(&self, id: i64, owner: &str) -> Result<()> {
        Accounts::update_many()
            .col_expr(
                account::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                account::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(account::Column::Id.eq(id))
            .filter(account::Column::LeaseOwner.eq(owner))
            .exec(&self.writer)
            .await
            .context(|| format!("cannot release lease on account {id}"))?;
        Ok(())
    }

    /// Re-encrypts every account's credentials with `reseal` (key rotation). Each row is
    /// compare-and-swapped: if a worker stored refreshed credentials meanwhile, the new
    /// value is re-read and resealed instead of being overwritten. Returns how many rows
    /// changed.
    pub async fn reseal_all_credentials(
        &self,
        mut reseal: impl FnMut(&SealedCredentials) -> Result<SealedCredentials>,
    ) -> Result<usize> {
        let mut changed = 0;
        for account in self.list_accounts().await? {
            let mut current = account.credentials;
            loop {
                let new = reseal(&current)?;
                if self.swap_credentials(account.id, &current, &new).await? {
                    changed += 1;
                    break;
                }
                match self.get_account(account.id).await {
                    Ok(fresh) => current = fresh.credentials,
                    Err(Error::NotFound(_)) => break, // removed meanwhile
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(changed)
    }
}

/// Fails with [`Error::LeaseLost`] unless `lease.owner` holds the account's lease;
/// extends it to `lease.until` when `lease.renew`.
pub(crate) async fn fence_on(
    db: &impl ConnectionTrait,
    id: i64,
    lease: LeaseCheck<'_>,
) -> Result<()> {
    if lease.renew {
        return renew_lease_on(db, id, lease.owner, lease.until).await;
    }
    let held = Accounts::find()
        .select_only()
        .column(account::Column::Id)
        .filter(account::Column::Id.eq(id))
        .filter(account::Column::LeaseOwner.eq(lease.owner))
        .into_tuple::<i64>()
        .one(db)
        .await
        .context(|| format!("cannot check the lease on account {id}"))?;
    match held {
        Some(_) => Ok(()),
        None => Err(Error::LeaseLost {
            account_id: id,
            owner: lease.owner.to_owned(),
        }),
    }
}

pub(crate) async fn renew_lease_on(
    db: &impl ConnectionTrait,
    id: i64,
    owner: &str,
    until: DateTime<Utc>,
) -> Result<()> {
    let res = Accounts::update_many()
        .col_expr(account::Column::LeaseExpiresAt, Expr::value(until))
        .filter(account::Column::Id.eq(id))
        .filter(account::Column::LeaseOwner.eq(owner))
        .exec(db)
        .await
        .context(|| format!("cannot renew lease on account {id}"))?;
    if res.rows_affected == 0 {
        return Err(Error::LeaseLost {
            account_id: id,
            owner: owner.to_owned(),
        });
    }
    Ok(())
}
