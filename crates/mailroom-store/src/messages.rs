//! Folders, the transactional page write, and message queries.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use mailroom_core::{Attachment, Change, EmailAddress, Folder, Message, SyncCursor, SyncPage};
use sea_orm::sea_query::{Expr, Func, OnConflict, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};

use crate::Store;
use crate::accounts::{fence_on, renew_lease_on};
use crate::bulk::{self, Flavor};
use crate::entity::{attachment, folder, message};
use crate::error::{Context as _, Error, Result};
use sea_orm::{DbErr, RuntimeErr};

/// Rows per statement where each row is bound value by value (folders, id lists):
/// 10 values × 1000 rows stays far below SQLite's 32,766 and PostgreSQL's 65,535 bind
/// parameters.
const CHUNK: usize = 1000;

/// The update of a folder that a page from the server reached: its new cursor, and
/// proof that it exists and synced (no gone mark, no error). Statements written as
/// text set the same columns with `folder_reached_sql!`.
pub(crate) fn synced_folder(
    cursor: &str,
    at: DateTime<Utc>,
) -> sea_orm::UpdateMany<folder::Entity> {
    folder::Entity::update_many()
        .col_expr(folder::Column::Cursor, Expr::value(cursor))
        .col_expr(folder::Column::LastSyncedAt, Expr::value(at))
        .col_expr(
            folder::Column::GoneSince,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(folder::Column::MissedSyncs, Expr::value(0))
        .col_expr(
            folder::Column::LastError,
            Expr::value(Option::<String>::None),
        )
}

/// A folder as stored, with its sync state.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderRow {
    /// Database id.
    pub id: i64,
    /// The account.
    pub account_id: i64,
    /// The folder as the server described it.
    pub folder: Folder,
    /// The sync cursor, `None` before the first sync.
    pub cursor: Option<SyncCursor>,
    /// True while a reset enumeration is in progress that may leave messages to
    /// delete: set by a reset page when the folder held messages (nothing stored
    /// before a reset of an empty folder can be stale), cleared when it completes.
    pub reconciling: bool,
    /// When a page of this folder was last stored.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// When the folder was first found gone on the server (`None` while it exists).
    pub gone_since: Option<DateTime<Utc>>,
    /// Syncs in a row that found it gone (0 while it exists).
    pub missed_syncs: u32,
    /// When a gone folder was last looked up on the server.
    pub checked_at: Option<DateTime<Utc>>,
    /// The folder's last error (naming it by path); cleared by a stored page.
    pub last_error: Option<String>,
    /// When the user stopped syncing it: its rows go at the account's next sync.
    pub removed_at: Option<DateTime<Utc>>,
}

/// A worker's lease, checked (and renewed when `renew`) inside the page write: if
/// another worker took the account over, the page is not written
/// ([`Error::LeaseLost`]).
#[derive(Debug, Clone, Copy)]
pub struct LeaseCheck<'a> {
    /// The worker that holds the lease.
    pub owner: &'a str,
    /// The new lease expiry, when `renew`.
    pub until: DateTime<Utc>,
    /// Extend the lease to `until`. `false` when the worker knows more than half of
    /// its lease is left: the write then only checks that `owner` still holds it and
    /// does not touch the account row. A renewal changes the key of the row in the
    /// claim index (a new index entry, no HOT update), the costliest part of a page
    /// write with no changes; with more than half of the lease left no other worker
    /// can claim the account before the page is written.
    pub renew: bool,
}

/// One page of a folder sync, for [`Store::apply_sync_page`].
#[derive(Debug, Clone, Copy)]
pub struct SyncPageWrite<'a> {
    /// The account.
    pub account_id: i64,
    /// The folder's database id ([`FolderRow::id`]).
    pub folder_id: i64,
    /// The page the connector returned.
    pub page: &'a SyncPage,
    /// Fence the write with a lease, for workers.
    pub lease: Option<LeaseCheck<'a>>,
}

/// A sync page that PostgreSQL writes in one statement, encoded
/// ([`Store::encode_page`]): the parameters of that statement, or its `COPY` rows in a
/// folder's first enumeration. What the write decides is not in it: the time of the
/// write and the lease are added then (and, for `COPY`, the generation and row ids).
struct EncodedPage {
    rows: PageRows,
    /// The size of the rows (see `bulk::Chunk::bytes`).
    bytes: usize,
}

/// How an encoded page's messages travel to PostgreSQL.
enum PageRows {
    /// As the arrays of the page statement ([`bulk::pg_page_sql`]).
    Statement(bulk::PgArgumentsResult),
    /// As `COPY` rows ([`bulk::PgCopyRows`]): the page of a folder in an insert-only
    /// run.
    Copy(std::result::Result<bulk::PgCopyRows, String>),
}

/// What a page write returned: as the page statement's columns.
struct PageOutcome {
    /// With a lease: 1 if it is still ours.
    leased: Option<i64>,
    /// 1 if the folder's cursor was stored.
    folders: i64,
    upserted: i64,
    inserted: i64,
    reconciling: Option<bool>,
}

impl PageOutcome {
    /// `leased` (if `leased`), `folders` and `reconciling` of `row`, a page statement's
    /// or a `COPY` page's first statement's; no message counted yet.
    fn of_row(
        row: &sea_orm::sqlx::postgres::PgRow,
        leased: bool,
    ) -> std::result::Result<Self, sea_orm::sqlx::Error> {
        use sea_orm::sqlx::Row as _;
        Ok(PageOutcome {
            leased: if leased {
                Some(row.try_get("leased")?)
            } else {
                None
            },
            folders: row.try_get("folders")?,
            upserted: 0,
            inserted: 0,
            reconciling: row.try_get("reconciling")?,
        })
    }
}

/// What a page write changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageStats {
    /// Messages inserted or updated.
    pub upserted: u64,
    /// Messages removed by `Change::Remove`.
    pub removed: u64,
    /// Messages whose read state changed.
    pub read_state: u64,
    /// Stale messages removed when a reset enumeration completed.
    pub reconciled: u64,
}

impl std::ops::AddAssign for PageStats {
    fn add_assign(&mut self, o: Self) {
        self.upserted += o.upserted;
        self.removed += o.removed;
        self.read_state += o.read_state;
        self.reconciled += o.reconciled;
    }
}

/// Filters and paging for [`Store::list_messages`]; newest first.
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    /// Only this account.
    pub account_id: Option<i64>,
    /// Only this folder (database id).
    pub folder_id: Option<i64>,
    /// Received at or after.
    pub since: Option<DateTime<Utc>>,
    /// Received before.
    pub before: Option<DateTime<Utc>>,
    /// Only unread messages.
    pub unread_only: bool,
    /// Case-insensitive substring of the subject or the sender.
    pub text: Option<String>,
    /// At most this many; 0 means no limit.
    pub limit: u64,
    /// Skip this many.
    pub offset: u64,
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Database id.
    pub id: i64,
    /// The account.
    pub account_id: i64,
    /// The folder (database id).
    pub folder_id: i64,
    /// The record; `attachments` is filled by [`Store::get_message`] and
    /// [`Store::list_messages`].
    pub message: Message,
}

fn to_folder_row(m: folder::Model) -> FolderRow {
    FolderRow {
        id: m.id,
        account_id: m.account_id,
        folder: Folder {
            remote_id: m.remote_id,
            name: m.name,
            path: m.path,
            parent_id: m.parent_remote_id,
            role: m
                .role
                .as_deref()
                .and_then(mailroom_core::WellKnownFolder::parse),
            total_count: m.total_count.map(|n| n as u64),
            unread_count: m.unread_count.map(|n| n as u64),
        },
        cursor: m.cursor.map(SyncCursor),
        reconciling: m.reconciling,
        last_synced_at: m.last_synced_at,
        gone_since: m.gone_since,
        missed_syncs: m.missed_syncs.max(0) as u32,
        checked_at: m.checked_at,
        last_error: m.last_error,
        removed_at: m.removed_at,
    }
}

fn to_stored(m: message::Model) -> Result<StoredMessage> {
    let corrupt = |what: &str, e: serde_json::Error| {
        Error::Corrupt(format!("message {}: {what} is not valid JSON: {e}", m.id))
    };
    let to: Vec<EmailAddress> =
        serde_json::from_str(&m.to_recipients).map_err(|e| corrupt("to_recipients", e))?;
    let cc: Vec<EmailAddress> =
        serde_json::from_str(&m.cc_recipients).map_err(|e| corrupt("cc_recipients", e))?;
    let warnings: Vec<String> =
        serde_json::from_str(&m.warnings).map_err(|e| corrupt("warnings", e))?;
    let sender = (m.sender_name.is_some() || m.sender_address.is_some())
        .then(|| EmailAddress::new(m.sender_name.clone(), m.sender_address.clone()));
    Ok(StoredMessage {
        id: m.id,
        account_id: m.account_id,
        folder_id: m.folder_id,
        message: Message {
            remote_id: m.remote_id,
            message_id: m.message_id,
            folder_id: None,
            subject: m.subject,
            sender,
            to,
            cc,
            date_received: m.date_received,
            sent_at: m.sent_at,
            body: m.body,
            is_read: m.is_read,
            is_draft: m.is_draft,
            has_attachments: m.has_attachments,
            attachment_count: m.attachment_count.max(0) as u32,
            attachments: Vec::new(),
            conversation_id: m.conversation_id,
            warnings,
        },
    })
}

fn to_attachment(m: attachment::Model) -> Attachment {
    Attachment {
        remote_id: m.remote_id,
        name: m.name,
        content_type: m.content_type,
        size: m.size.max(0) as u64,
        is_inline: m.is_inline,
        content_id: m.content_id,
    }
}

/// Whether a record carries its attachment list. A delta record says
/// `has_attachments` but lists none: keep what was stored before.
fn attachments_known(m: &Message) -> bool {
    !m.has_attachments || !m.attachments.is_empty()
}

impl Store {
    /// Inserts or updates folders of an account (matched on remote id); returns them.
    pub async fn upsert_folders(
        &self,
        account_id: i64,
        folders: &[Folder],
    ) -> Result<Vec<FolderRow>> {
        if folders.is_empty() {
            return Ok(Vec::new());
        }
        for chunk in folders.chunks(CHUNK) {
            let mut insert = Query::insert();
            insert.into_table(folder::Entity).columns([
                folder::Column::AccountId,
                folder::Column::RemoteId,
                folder::Column::Name,
                folder::Column::Path,
                folder::Column::ParentRemoteId,
                folder::Column::Role,
                folder::Column::TotalCount,
                folder::Column::UnreadCount,
                folder::Column::Generation,
                folder::Column::Reconciling,
            ]);
            for f in chunk {
                insert.values_panic([
                    account_id.into(),
                    f.remote_id.clone().into(),
                    f.name.clone().into(),
                    f.path.clone().into(),
                    f.parent_id.clone().into(),
                    f.role.map(|r| r.as_str().to_owned()).into(),
                    f.total_count.map(|n| n as i64).into(),
                    f.unread_count.map(|n| n as i64).into(),
                    0i64.into(),
                    false.into(),
                ]);
            }
            insert.on_conflict(
                OnConflict::columns([folder::Column::AccountId, folder::Column::RemoteId])
                    .update_columns([
                        folder::Column::Name,
                        folder::Column::Path,
                        folder::Column::ParentRemoteId,
                        folder::Column::Role,
                        folder::Column::TotalCount,
                        folder::Column::UnreadCount,
                    ])
                    .to_owned(),
            );
            self.writer
                .execute(&insert)
                .await
                .context(|| format!("cannot store folders of account {account_id}"))?;
        }
        let ids: Vec<String> = folders.iter().map(|f| f.remote_id.clone()).collect();
        let rows = folder::Entity::find()
            .filter(folder::Column::AccountId.eq(account_id))
            .filter(folder::Column::RemoteId.is_in(ids))
            .order_by_asc(folder::Column::Id)
            .all(&self.db)
            .await
            .context(|| format!("cannot read folders of account {account_id}"))?;
        Ok(rows.into_iter().map(to_folder_row).collect())
    }

    /// The folders of an account.
    pub async fn list_folders(&self, account_id: i64) -> Result<Vec<FolderRow>> {
        let rows = folder::Entity::find()
            .filter(folder::Column::AccountId.eq(account_id))
            .order_by_asc(folder::Column::Path)
            .all(&self.db)
            .await
            .context(|| format!("cannot list folders of account {account_id}"))?;
        Ok(rows.into_iter().map(to_folder_row).collect())
    }

    /// The folders of several accounts in one statement per 1,000 accounts (a
    /// worker's claim), each account's ordered by path as [`Store::list_folders`]
    /// returns them; an account without folders has no entry.
    pub async fn list_folders_of(
        &self,
        account_ids: &[i64],
    ) -> Result<HashMap<i64, Vec<FolderRow>>> {
        let mut folders: HashMap<i64, Vec<FolderRow>> = HashMap::new();
        for ids in account_ids.chunks(CHUNK) {
            let rows = folder::Entity::find()
                .filter(folder::Column::AccountId.is_in(ids.iter().copied()))
                .order_by_asc(folder::Column::AccountId)
                .order_by_asc(folder::Column::Path)
                .all(&self.db)
                .await
                .context(|| format!("cannot list folders of {} accounts", ids.len()))?;
            for row in rows {
                folders
                    .entry(row.account_id)
                    .or_default()
                    .push(to_folder_row(row));
            }
        }
        Ok(folders)
    }

    /// One folder by database id.
    pub async fn get_folder(&self, folder_id: i64) -> Result<FolderRow> {
        folder::Entity::find_by_id(folder_id)
            .one(&self.db)
            .await
            .context(|| format!("cannot read folder {folder_id}"))?
            .map(to_folder_row)
            .ok_or_else(|| Error::NotFound(format!("folder {folder_id}")))
    }

    /// Forgets a folder's cursor, so the next sync enumerates it again (and reconciles).
    pub async fn reset_folder_cursor(&self, folder_id: i64) -> Result<()> {
        folder::Entity::update_many()
            .col_expr(folder::Column::Cursor, Expr::value(Option::<String>::None))
            .filter(folder::Column::Id.eq(folder_id))
            .exec(&self.writer)
            .await
            .context(|| format!("cannot reset folder {folder_id}"))?;
        Ok(())
    }

    /// Records that a sync found the folder gone on the server at `now`: `gone_since`
    /// is set the first time, `missed_syncs` counts the syncs in a row, `checked_at`
    /// is `now`. From the second miss in a row on (the folder is confirmed gone), the
    /// folder's messages are deleted and its cursor forgotten, in the same
    /// transaction: the local copy mirrors the server. Returns the folder as stored
    /// and how many messages were deleted.
    pub async fn mark_folder_gone(
        &self,
        folder_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(FolderRow, u64)> {
        let what = || format!("cannot mark folder {folder_id} as gone");
        let tx = self.writer.begin().await.context(what)?;
        let res = folder::Entity::update_many()
            .col_expr(
                folder::Column::GoneSince,
                Func::coalesce([Expr::col(folder::Column::GoneSince), Expr::value(now)]).into(),
            )
            .col_expr(
                folder::Column::MissedSyncs,
                sea_orm::ExprTrait::add(Expr::col(folder::Column::MissedSyncs), 1),
            )
            .col_expr(folder::Column::CheckedAt, Expr::value(now))
            .filter(folder::Column::Id.eq(folder_id))
            .exec(&tx)
            .await
            .context(what)?;
        if res.rows_affected == 0 {
            return Err(Error::NotFound(format!("folder {folder_id}")));
        }
        let row = folder::Entity::find_by_id(folder_id)
            .one(&tx)
            .await
            .context(what)?
            .ok_or_else(|| Error::NotFound(format!("folder {folder_id}")))?;
        let mut purged = 0;
        if row.missed_syncs >= 2 {
            purged = message::Entity::delete_many()
                .filter(message::Column::FolderId.eq(folder_id))
                .exec(&tx)
                .await
                .context(what)?
                .rows_affected;
            folder::Entity::update_many()
                .col_expr(folder::Column::Cursor, Expr::value(Option::<String>::None))
                .col_expr(folder::Column::Reconciling, Expr::value(false))
                .filter(folder::Column::Id.eq(folder_id))
                .exec(&tx)
                .await
                .context(what)?;
        }
        tx.commit().await.context(what)?;
        Ok((self.get_folder(folder_id).await?, purged))
    }

    /// Stores (or clears, with `None`) a folder's last error.
    pub async fn set_folder_error(&self, folder_id: i64, error: Option<&str>) -> Result<()> {
        folder::Entity::update_many()
            .col_expr(
                folder::Column::LastError,
                Expr::value(error.map(str::to_owned)),
            )
            .filter(folder::Column::Id.eq(folder_id))
            .exec(&self.writer)
            .await
            .context(|| format!("cannot record the error of folder {folder_id}"))?;
        Ok(())
    }

    /// Marks folders as no longer synced by the user (`removed = true`, at `now`) or
    /// synced again (`removed = false`, which keeps their messages and cursor).
    pub async fn set_folders_removed(
        &self,
        account_id: i64,
        folder_ids: &[i64],
        removed: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if folder_ids.is_empty() {
            return Ok(());
        }
        folder::Entity::update_many()
            .col_expr(
                folder::Column::RemovedAt,
                Expr::value(removed.then_some(now)),
            )
            .filter(folder::Column::AccountId.eq(account_id))
            .filter(folder::Column::Id.is_in(folder_ids.to_vec()))
            .exec(&self.writer)
            .await
            .context(|| format!("cannot update the folders of account {account_id}"))?;
        Ok(())
    }

    /// Deletes folders with their messages and attachments; returns how many messages
    /// went with them.
    pub async fn delete_folders(&self, account_id: i64, folder_ids: &[i64]) -> Result<u64> {
        if folder_ids.is_empty() {
            return Ok(0);
        }
        let what = || format!("cannot delete folders of account {account_id}");
        let tx = self.writer.begin().await.context(what)?;
        // Messages first: their attachments go by cascade, and the count is reported.
        let messages = message::Entity::delete_many()
            .filter(message::Column::AccountId.eq(account_id))
            .filter(message::Column::FolderId.is_in(folder_ids.to_vec()))
            .exec(&tx)
            .await
            .context(what)?
            .rows_affected;
        folder::Entity::delete_many()
            .filter(folder::Column::AccountId.eq(account_id))
            .filter(folder::Column::Id.is_in(folder_ids.to_vec()))
            .exec(&tx)
            .await
            .context(what)?;
        tx.commit().await.context(what)?;
        Ok(messages)
    }

    /// Writes one sync page and its cursor in ONE transaction.
    ///
    /// Changes are applied in order. `reset` starts a new folder generation; when a
    /// page with `complete` ends a reset enumeration, messages of the folder that were
    /// not seen since the reset are deleted (they are gone from the server). With a
    /// `lease`, the lease is renewed in the same transaction, and the write fails with
    /// [`Error::LeaseLost`] if another worker holds the account now.
    pub async fn apply_sync_page(&self, write: SyncPageWrite<'_>) -> Result<PageStats> {
        let SyncPageWrite {
            account_id,
            folder_id,
            page,
            lease,
        } = write;
        if let Some(stats) = self.apply_unchanged_page(write).await? {
            return Ok(stats);
        }
        let what = || format!("cannot store sync page of folder {folder_id}");
        let copy = self.in_insert_only_run(folder_id);
        if let Some(encoded) = self.encode_page(account_id, folder_id, page, copy) {
            return self.apply_page_in_one_statement(write, encoded).await;
        }
        if self.backend == crate::Backend::Postgres {
            self.set_insert_only_run(folder_id, false);
        }
        let tx = self.writer.begin().await.context(what)?;
        // The first statement writes, so SQLite takes its write lock at once (a read
        // first would risk SQLITE_BUSY on the upgrade).
        if let Some(lease) = lease {
            fence_on(&tx, account_id, lease).await?;
        }
        let mut update = synced_folder(page.cursor.as_str(), Utc::now())
            .filter(folder::Column::Id.eq(folder_id))
            .filter(folder::Column::AccountId.eq(account_id));
        if page.reset {
            update = update
                .col_expr(
                    folder::Column::Generation,
                    sea_orm::ExprTrait::add(Expr::col(folder::Column::Generation), 1),
                )
                // Only a folder that holds messages has any to reconcile: a reset of an
                // empty one (an initial sync) skips the delete that would walk the
                // folder's index at the end of the enumeration.
                .col_expr(
                    folder::Column::Reconciling,
                    bulk::reconciling_after_reset(folder_id),
                );
        }
        if update.exec(&tx).await.context(what)?.rows_affected == 0 {
            return Err(Error::NotFound(format!(
                "folder {folder_id} of account {account_id}"
            )));
        }
        let state = folder::Entity::find_by_id(folder_id)
            .one(&tx)
            .await
            .context(what)?;
        let state = state.ok_or_else(|| Error::NotFound(format!("folder {folder_id}")))?;

        let mut stats = PageStats::default();
        let mut bytes = 0;
        let mut i = 0;
        let changes = &page.changes;
        while i < changes.len() {
            let start = i;
            match &changes[i] {
                Change::Upsert(_) => {
                    while i < changes.len() && matches!(changes[i], Change::Upsert(_)) {
                        i += 1;
                    }
                    let run: Vec<&Message> = changes[start..i]
                        .iter()
                        .filter_map(|c| match c {
                            Change::Upsert(m) => Some(m),
                            _ => None,
                        })
                        .collect();
                    let run =
                        upsert_run(&tx, account_id, folder_id, state.generation, &run).await?;
                    stats.upserted += run.messages;
                    bytes += run.bytes;
                }
                Change::Remove { .. } => {
                    while i < changes.len() && matches!(changes[i], Change::Remove { .. }) {
                        i += 1;
                    }
                    let ids: Vec<String> = changes[start..i]
                        .iter()
                        .filter_map(|c| match c {
                            Change::Remove { remote_id } => Some(remote_id.clone()),
                            _ => None,
                        })
                        .collect();
                    stats.removed += remove_in_folder(&tx, account_id, folder_id, ids).await?;
                }
                Change::ReadState { remote_id, is_read } => {
                    i += 1;
                    let res = message::Entity::update_many()
                        .col_expr(message::Column::IsRead, Expr::value(*is_read))
                        .filter(message::Column::AccountId.eq(account_id))
                        .filter(message::Column::RemoteId.eq(remote_id.as_str()))
                        .exec(&tx)
                        .await
                        .context(what)?;
                    stats.read_state += res.rows_affected;
                }
            }
        }

        if page.complete && state.reconciling {
            let res = message::Entity::delete_many()
                .filter(message::Column::FolderId.eq(folder_id))
                .filter(message::Column::Generation.lt(state.generation))
                .exec(&tx)
                .await
                .context(what)?;
            stats.reconciled = res.rows_affected;
            folder::Entity::update_many()
                .col_expr(folder::Column::Reconciling, Expr::value(false))
                .filter(folder::Column::Id.eq(folder_id))
                .exec(&tx)
                .await
                .context(what)?;
        }
        tx.commit().await.context(what)?;
        self.committed(bytes);
        Ok(stats)
    }

    /// Encodes `page` of `folder_id` for the one statement PostgreSQL writes it in,
    /// as `COPY` rows if `copy` (the folder is in an insert-only run, see
    /// [`Store::apply_page_in_one_statement`]). `None` unless the page is one that
    /// PostgreSQL writes in one statement: upserts only, at most one chunk, not the
    /// last page of the folder.
    fn encode_page(
        &self,
        account_id: i64,
        folder_id: i64,
        page: &SyncPage,
        copy: bool,
    ) -> Option<EncodedPage> {
        // A completed reset deletes what it did not see: after the upserts, which one
        // statement (one snapshot) cannot order.
        if self.db_backend() != DbBackend::Postgres || page.complete {
            return None;
        }
        let mut run = Vec::with_capacity(page.changes.len());
        for change in &page.changes {
            match change {
                Change::Upsert(m) => run.push(m),
                _ => return None,
            }
        }
        let unique = last_versions(&run);
        let (rows, bytes) = if copy {
            let rows = bulk::PgCopyRows::of(&unique, account_id, folder_id)?;
            let bytes = rows.as_ref().map_or(0, |r| r.bytes);
            (PageRows::Copy(rows), bytes)
        } else {
            let known: Vec<&Message> = unique
                .iter()
                .copied()
                .filter(|m| attachments_known(m))
                .collect();
            let (arguments, bytes) = bulk::pg_page_arguments(
                &unique,
                account_id,
                folder_id,
                page.cursor.as_str(),
                page.reset,
                &known,
            )?;
            (PageRows::Statement(arguments), bytes)
        };
        Some(EncodedPage { rows, bytes })
    }

    /// PostgreSQL: a page of upserts only that fits one statement (at most
    /// `bulk::MAX_ROWS` messages), and does not end an enumeration, is written by ONE
    /// statement (`bulk::pg_page_sql`) in one round trip, without `BEGIN`/`COMMIT`: a
    /// statement is atomic, so the cursor still lands with its page or not at all.
    /// `encoded` comes from [`Store::encode_page`]; the time of the write and the lease
    /// are added to its parameters here.
    ///
    /// A folder enumerated from empty (a first sync) gets new messages only, so after
    /// its reset page inserted every row and left the folder not reconciling (it held
    /// nothing), its next pages are inserted by `COPY` (`copy_page`), without the
    /// unique check of `ON CONFLICT`, as long as each inserts every row
    /// (`folders_from_empty`). If a message exists after all (moved in from another
    /// folder of the account during the enumeration), the `COPY` fails on the unique
    /// index, its transaction is rolled back, and the page is written again as an
    /// upsert, which ends the folder's insert-only run.
    async fn apply_page_in_one_statement(
        &self,
        write: SyncPageWrite<'_>,
        encoded: EncodedPage,
    ) -> Result<PageStats> {
        let SyncPageWrite {
            account_id,
            folder_id,
            page,
            lease,
        } = write;
        let what = || format!("cannot store sync page of folder {folder_id}");
        let failed = |e: sea_orm::sqlx::Error| match e {
            sea_orm::sqlx::Error::Encode(e) => Error::Invalid(format!("{}: {e}", what())),
            e => Error::database(what(), DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))),
        };
        let bytes = encoded.bytes;
        // `COPY` rows: the folder is in an insert-only run.
        let new_rows = matches!(encoded.rows, PageRows::Copy(_));
        // Sent through sqlx directly (see `bulk::pg_page_arguments`), on one connection
        // for both tries.
        let mut conn = self
            .writer
            .get_postgres_connection_pool()
            .acquire()
            .await
            .map_err(|e| {
                Error::database(what(), DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))))
            })?;
        let outcome = match self
            .send_page(&mut conn, encoded.rows, &write)
            .await
        {
            Err(e) if new_rows && is_unique_violation(&e) => {
                // The server logged the unique violation as an ERROR: say why here.
                tracing::info!(
                    folder_id,
                    "a message of this page was already stored (moved in from another folder?): the page is written again as an upsert"
                );
                self.set_insert_only_run(folder_id, false);
                let again = self
                    .encode_page(account_id, folder_id, page, false)
                    .ok_or_else(|| Error::Invalid(format!("{}: cannot encode it", what())))?;
                self.send_page(&mut conn, again.rows, &write).await
            }
            sent => sent,
        }
        .map_err(failed)?;
        drop(conn);
        if let Some(lease) = lease
            && outcome.leased == Some(0)
        {
            return Err(Error::LeaseLost {
                account_id,
                owner: lease.owner.to_owned(),
            });
        }
        if outcome.folders == 0 {
            return Err(Error::NotFound(format!(
                "folder {folder_id} of account {account_id}"
            )));
        }
        self.set_insert_only_run(
            folder_id,
            (page.reset || new_rows)
                && outcome.reconciling == Some(false)
                && outcome.inserted == outcome.upserted,
        );
        self.committed(bytes as u64);
        Ok(PageStats {
            upserted: outcome.upserted.unsigned_abs(),
            ..PageStats::default()
        })
    }

    /// Writes `rows`, the messages of `write`'s page, on `conn`: by `COPY`, or by the
    /// page statement.
    async fn send_page(
        &self,
        conn: &mut sea_orm::sqlx::PgConnection,
        rows: PageRows,
        write: &SyncPageWrite<'_>,
    ) -> std::result::Result<PageOutcome, sea_orm::sqlx::Error> {
        use sea_orm::sqlx::Row as _;
        let arguments = match rows {
            PageRows::Copy(rows) => {
                let rows = rows.map_err(|e| sea_orm::sqlx::Error::Encode(e.into()))?;
                return self.copy_page(conn, write, rows).await;
            }
            PageRows::Statement(arguments) => arguments,
        };
        let row = self
            .send_page_statement(conn, arguments, write.lease)
            .await?;
        Ok(PageOutcome {
            upserted: row.try_get("upserted")?,
            inserted: row.try_get("inserted")?,
            ..PageOutcome::of_row(&row, write.lease.is_some())?
        })
    }

    /// Writes a page of new messages by `COPY`, in a transaction that first stores the
    /// cursor under the lease ([`bulk::pg_copy_head_sql`]), which gives the rows their
    /// generation. Nothing is written if the lease or the folder is gone; a row that
    /// exists fails the `COPY` with a unique violation, and the transaction is rolled
    /// back. Like the page statement, it commits asynchronously.
    async fn copy_page(
        &self,
        conn: &mut sea_orm::sqlx::PgConnection,
        write: &SyncPageWrite<'_>,
        mut rows: bulk::PgCopyRows,
    ) -> std::result::Result<PageOutcome, sea_orm::sqlx::Error> {
        use sea_orm::sqlx::{Connection as _, Row as _};
        let now = Utc::now();
        let mut tx = conn.begin().await?;
        let mut head = sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(bulk::pg_copy_head_sql(
            write.lease.map(|l| l.renew),
        )))
        .bind(write.account_id)
        .bind(write.folder_id)
        .bind(write.page.cursor.as_str())
        .bind(write.page.reset)
        .bind(now)
        .bind(i32::try_from(rows.messages()).unwrap_or(i32::MAX));
        if let Some(lease) = write.lease {
            head = head.bind(lease.owner).bind(lease.until);
        }
        self.statements
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let head = head.fetch_one(&mut *tx).await?;
        let mut outcome = PageOutcome::of_row(&head, write.lease.is_some())?;
        let Some(generation) = head.try_get::<Option<i64>, _>("generation")? else {
            // The lease or the folder is gone: nothing was written.
            tx.rollback().await?;
            return Ok(outcome);
        };
        let ids: Vec<i64> = head
            .try_get::<Option<Vec<i64>>, _>("ids")?
            .unwrap_or_default();
        rows.stamp(&ids, generation, &now)
            .map_err(|e| sea_orm::sqlx::Error::Encode(e.to_string().into()))?;
        let copied = self
            .copy_in(&mut tx, &bulk::pg_copy_messages_sql(), rows.message_data())
            .await?;
        if let Some(attachments) = rows.attachment_data() {
            self.copy_in(&mut tx, &bulk::pg_copy_attachments_sql(), attachments)
                .await?;
        }
        tx.commit().await?;
        outcome.upserted = i64::try_from(copied).unwrap_or(i64::MAX);
        outcome.inserted = outcome.upserted;
        Ok(outcome)
    }

    /// Runs `COPY … FROM STDIN` (`sql`) with `data` on `conn`; returns the rows copied.
    async fn copy_in(
        &self,
        conn: &mut sea_orm::sqlx::PgConnection,
        sql: &str,
        data: &[u8],
    ) -> std::result::Result<u64, sea_orm::sqlx::Error> {
        self.statements
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut copy = conn.copy_in_raw(sql).await?;
        copy.send(data).await?;
        copy.finish().await
    }

    /// Sends the page statement with `arguments` on `conn`.
    async fn send_page_statement(
        &self,
        conn: &mut sea_orm::sqlx::PgConnection,
        arguments: bulk::PgArgumentsResult,
        lease: Option<LeaseCheck<'_>>,
    ) -> std::result::Result<sea_orm::sqlx::postgres::PgRow, sea_orm::sqlx::Error> {
        use sea_orm::sqlx::Arguments as _;
        let mut arguments = arguments.map_err(|e| sea_orm::sqlx::Error::Encode(e.into()))?;
        let add = |r: std::result::Result<(), sea_orm::sqlx::error::BoxDynError>| {
            r.map_err(sea_orm::sqlx::Error::Encode)
        };
        add(arguments.add(Utc::now()))?;
        if let Some(lease) = lease {
            add(arguments.add(lease.owner))?;
            add(arguments.add(lease.until))?;
        }
        let query = sea_orm::sqlx::query_with(
            sea_orm::sqlx::AssertSqlSafe(bulk::pg_page_sql(lease.map(|l| l.renew))),
            arguments,
        );
        // Counted here, as the store's connection counts what goes through sea-orm.
        self.statements
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        query.fetch_one(conn).await
    }

    /// Whether `folder_id` is in an insert-only run: enumerated from empty (see
    /// [`Store::apply_page_in_one_statement`]).
    fn in_insert_only_run(&self, folder_id: i64) -> bool {
        self.insert_only_runs().contains(&folder_id)
    }

    /// Starts or ends the insert-only run of `folder_id`.
    fn set_insert_only_run(&self, folder_id: i64, on: bool) {
        let mut folders = self.insert_only_runs();
        if !on {
            folders.remove(&folder_id);
            return;
        }
        if folders.len() >= crate::FOLDERS_FROM_EMPTY_KEPT {
            folders.clear();
        }
        folders.insert(folder_id);
    }

    fn insert_only_runs(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<i64>> {
        self.folders_from_empty
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The fast path of [`Store::apply_sync_page`] for a page without changes (the
    /// common case of a no-change sync): the cursor is written by one statement,
    /// fenced by the lease, without a transaction. On PostgreSQL the lease is renewed
    /// by the same statement (a data-modifying `WITH`); on SQLite, which has none, by a
    /// statement before it, and the cursor write still checks that the lease is ours.
    ///
    /// `None` when the page is not one it handles (changes, a reset) or when no row
    /// was written (the folder is reconciling, missing, or the lease was lost): the
    /// full path then does the work and reports the error.
    async fn apply_unchanged_page(&self, write: SyncPageWrite<'_>) -> Result<Option<PageStats>> {
        let SyncPageWrite {
            account_id,
            folder_id,
            page,
            lease,
        } = write;
        if !page.changes.is_empty() || page.reset {
            return Ok(None);
        }
        let what = || format!("cannot store sync page of folder {folder_id}");
        let set = concat!(
            "UPDATE folders SET cursor = $1, last_synced_at = $2, ",
            folder_reached_sql!(),
            " WHERE id = $3 AND account_id = $4 AND NOT reconciling"
        );
        let mut values: Vec<sea_orm::Value> = vec![
            page.cursor.as_str().into(),
            Utc::now().into(),
            folder_id.into(),
            account_id.into(),
        ];
        let sql = match (lease, self.backend) {
            (None, _) => set.to_owned(),
            (Some(lease), crate::Backend::Postgres) => {
                values.extend([lease.owner.into(), lease.until.into()]);
                format!(
                    "WITH {} {set} AND EXISTS (SELECT 1 FROM lease)",
                    bulk::pg_lease_clause(lease.renew, 4, 5, 6)
                )
            }
            (Some(lease), crate::Backend::Sqlite) => {
                if lease.renew {
                    renew_lease_on(&self.writer, account_id, lease.owner, lease.until).await?;
                }
                values.push(lease.owner.into());
                format!(
                    "{set} AND EXISTS (SELECT 1 FROM accounts WHERE id = $4 AND lease_owner = $5)"
                )
            }
        };
        let written = self
            .writer
            .execute_raw(Statement::from_sql_and_values(
                self.db_backend(),
                sql,
                values,
            ))
            .await
            .context(what)?;
        Ok((written.rows_affected() == 1).then(PageStats::default))
    }

    /// Inserts or updates messages of one folder outside any sync (no cursor change).
    pub async fn upsert_messages(
        &self,
        account_id: i64,
        folder_id: i64,
        messages: &[Message],
    ) -> Result<u64> {
        let what = || format!("cannot store messages of folder {folder_id}");
        let tx = self.writer.begin().await.context(what)?;
        // A write first, for SQLite's lock (see apply_sync_page); it also reads the
        // folder's generation back.
        let generation = folder::Entity::update_many()
            .col_expr(
                folder::Column::Generation,
                Expr::col(folder::Column::Generation),
            )
            .filter(folder::Column::Id.eq(folder_id))
            .filter(folder::Column::AccountId.eq(account_id))
            .exec(&tx)
            .await
            .context(what)?;
        if generation.rows_affected == 0 {
            return Err(Error::NotFound(format!(
                "folder {folder_id} of account {account_id}"
            )));
        }
        let state = folder::Entity::find_by_id(folder_id)
            .one(&tx)
            .await
            .context(what)?;
        let generation = state.map_or(0, |f| f.generation);
        let run: Vec<&Message> = messages.iter().collect();
        let written = upsert_run(&tx, account_id, folder_id, generation, &run).await?;
        tx.commit().await.context(what)?;
        self.committed(written.bytes);
        Ok(written.messages)
    }

    /// Removes messages of an account by remote id, whatever their folder (after a
    /// delete or move done through the CLI). Returns how many rows went.
    pub async fn remove_messages(&self, account_id: i64, remote_ids: &[String]) -> Result<u64> {
        let mut removed = 0;
        for chunk in remote_ids.chunks(CHUNK) {
            let res = message::Entity::delete_many()
                .filter(message::Column::AccountId.eq(account_id))
                .filter(message::Column::RemoteId.is_in(chunk.iter().cloned()))
                .exec(&self.writer)
                .await
                .context(|| format!("cannot remove messages of account {account_id}"))?;
            removed += res.rows_affected;
        }
        Ok(removed)
    }

    /// Messages matching `query`, newest first, with their attachment metadata.
    pub async fn list_messages(&self, query: &MessageQuery) -> Result<Vec<StoredMessage>> {
        let mut select = message::Entity::find()
            .filter(message_condition(query))
            .order_by_desc(message::Column::DateReceived)
            .order_by_desc(message::Column::Id);
        if query.offset > 0 {
            // SQLite accepts OFFSET only after a LIMIT.
            let limit = if query.limit > 0 {
                query.limit
            } else {
                i64::MAX as u64
            };
            select = select.limit(limit).offset(query.offset);
        } else if query.limit > 0 {
            select = select.limit(query.limit);
        }
        let rows = select
            .all(&self.db)
            .await
            .context(|| "cannot list messages".into())?;
        let mut messages = rows
            .into_iter()
            .map(to_stored)
            .collect::<Result<Vec<_>>>()?;
        self.fill_attachments(&mut messages).await?;
        Ok(messages)
    }

    /// How many messages match `query` (limit and offset ignored).
    pub async fn count_messages(&self, query: &MessageQuery) -> Result<u64> {
        message::Entity::find()
            .filter(message_condition(query))
            .count(&self.db)
            .await
            .context(|| "cannot count messages".into())
    }

    /// One message by remote id, with attachments.
    pub async fn get_message(&self, account_id: i64, remote_id: &str) -> Result<StoredMessage> {
        let row = message::Entity::find()
            .filter(message::Column::AccountId.eq(account_id))
            .filter(message::Column::RemoteId.eq(remote_id))
            .one(&self.db)
            .await
            .context(|| format!("cannot read message {remote_id}"))?
            .ok_or_else(|| Error::NotFound(format!("message {remote_id}")))?;
        let mut messages = vec![to_stored(row)?];
        self.fill_attachments(&mut messages).await?;
        Ok(messages.remove(0))
    }

    /// One message by database id (the `ID` column of `mailroom messages list`), with
    /// attachments.
    pub async fn get_message_by_id(&self, id: i64) -> Result<StoredMessage> {
        let row = message::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .context(|| format!("cannot read message {id}"))?
            .ok_or_else(|| Error::NotFound(format!("message {id}")))?;
        let mut messages = vec![to_stored(row)?];
        self.fill_attachments(&mut messages).await?;
        Ok(messages.remove(0))
    }

    async fn fill_attachments(&self, messages: &mut [StoredMessage]) -> Result<()> {
        let ids: Vec<i64> = messages
            .iter()
            .filter(|m| m.message.has_attachments || m.message.attachment_count > 0)
            .map(|m| m.id)
            .collect();
        let mut by_message: HashMap<i64, Vec<Attachment>> = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            let rows = attachment::Entity::find()
                .filter(attachment::Column::MessageId.is_in(chunk.iter().copied()))
                .order_by_asc(attachment::Column::MessageId)
                .order_by_asc(attachment::Column::Ordinal)
                .all(&self.db)
                .await
                .context(|| "cannot read attachments".into())?;
            for row in rows {
                by_message
                    .entry(row.message_id)
                    .or_default()
                    .push(to_attachment(row));
            }
        }
        for m in messages {
            if let Some(list) = by_message.remove(&m.id) {
                m.message.attachments = list;
            }
        }
        Ok(())
    }
}

fn message_condition(q: &MessageQuery) -> Condition {
    let mut c = Condition::all();
    if let Some(account) = q.account_id {
        c = c.add(message::Column::AccountId.eq(account));
    }
    if let Some(folder) = q.folder_id {
        c = c.add(message::Column::FolderId.eq(folder));
    }
    if let Some(since) = q.since {
        c = c.add(message::Column::DateReceived.gte(since));
    }
    if let Some(before) = q.before {
        c = c.add(message::Column::DateReceived.lt(before));
    }
    if q.unread_only {
        c = c.add(message::Column::IsRead.eq(false));
    }
    if let Some(text) = q.text.as_deref().filter(|t| !t.is_empty()) {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("%{}%", escaped.to_lowercase());
        let like = |col: message::Column| {
            sea_orm::ExprTrait::like(
                Expr::expr(Func::lower(Expr::col(col))),
                sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\'),
            )
        };
        c = c.add(
            Condition::any()
                .add(like(message::Column::Subject))
                .add(like(message::Column::SenderName))
                .add(like(message::Column::SenderAddress)),
        );
    }
    c
}

async fn remove_in_folder(
    tx: &DatabaseTransaction,
    account_id: i64,
    folder_id: i64,
    ids: Vec<String>,
) -> Result<u64> {
    let mut removed = 0;
    for chunk in ids.chunks(CHUNK) {
        // Scoped to the folder: with immutable ids a message that moved on has the
        // same id in its new folder, and must stay there.
        let res = message::Entity::delete_many()
            .filter(message::Column::AccountId.eq(account_id))
            .filter(message::Column::FolderId.eq(folder_id))
            .filter(message::Column::RemoteId.is_in(chunk.iter().cloned()))
            .exec(tx)
            .await
            .context(|| format!("cannot apply removals to folder {folder_id}"))?;
        removed += res.rows_affected;
    }
    Ok(removed)
}

/// What [`upsert_run`] wrote.
#[derive(Debug, Default)]
struct Written {
    messages: u64,
    /// The size of the rows sent (see `bulk::Chunk::bytes`).
    bytes: u64,
}

/// Upserts a run of messages in chunks (a statement each, see `bulk`); replaces
/// the attachment rows of the messages that carry their attachment list. Returns how
/// many messages were written and the size of their rows.
async fn upsert_run(
    tx: &DatabaseTransaction,
    account_id: i64,
    folder_id: i64,
    generation: i64,
    run: &[&Message],
) -> Result<Written> {
    let unique = last_versions(run);
    let backend = tx.get_database_backend();
    let flavor = match backend {
        DbBackend::Postgres => Flavor::Postgres,
        _ => Flavor::Sqlite,
    };
    let upsert = bulk::upsert_sql(flavor);
    let now = Utc::now();
    let what = || format!("cannot store messages of folder {folder_id}");
    // SQLite: the largest message id before the run. Ids only grow (`AUTOINCREMENT`),
    // so the run's new rows are exactly those above it, and a run whose every message
    // is new has no attachment list to replace (see `replace_attachments`).
    let lists = unique.iter().any(|m| attachments_known(m));
    let before = match flavor {
        Flavor::Sqlite if lists => Some(
            sqlite_number(tx, "SELECT max(id) FROM messages".into())
                .await
                .context(what)?,
        ),
        _ => None,
    };
    let mut rest = &unique[..];
    let mut written = Written::default();
    let mut next = bulk::next_chunk(flavor, &mut rest);
    while let Some(chunk) = next.take() {
        let chunk = chunk?;
        let statement = Statement::from_sql_and_values(
            backend,
            upsert.as_str(),
            bulk::upsert_values(flavor, chunk.rows, account_id, folder_id, generation, now),
        );
        // Encode the next chunk while the database runs this one.
        let (res, built) = futures::join!(tx.execute_raw(statement), async {
            bulk::next_chunk(flavor, &mut rest)
        });
        next = built;
        res.context(what)?;
        written.messages += chunk.messages.len() as u64;
        written.bytes += chunk.bytes as u64;
    }
    let all_new = match before {
        Some(before) => {
            let sql = format!("SELECT count(*) FROM messages WHERE id > {before}");
            sqlite_number(tx, sql).await.context(what)? == unique.len() as i64
        }
        None => false,
    };
    // Once for the whole run: each statement costs a round trip to the database.
    replace_attachments(tx, flavor, account_id, &unique, all_new).await?;
    Ok(written)
}

/// The integer a SQLite query returns (0 for no row or `NULL`; a value that is not an
/// integer is an error, not 0).
async fn sqlite_number(tx: &DatabaseTransaction, sql: String) -> Result<i64, DbErr> {
    let row = tx
        .query_one_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await?;
    match row {
        Some(row) => Ok(row.try_get_by_index::<Option<i64>>(0)?.unwrap_or(0)),
        None => Ok(0),
    }
}

/// Whether `e` is PostgreSQL's unique violation (`23505`) on the messages' remote ids.
fn is_unique_violation(e: &sea_orm::sqlx::Error) -> bool {
    match e {
        sea_orm::sqlx::Error::Database(e) => {
            e.code().as_deref() == Some("23505")
                && e.constraint() == Some("ux_messages_account_remote")
        }
        _ => false,
    }
}

/// The same id twice in one statement is an error on PostgreSQL ("ON CONFLICT DO
/// UPDATE command cannot affect row a second time"): keeps the last version of each.
///
/// The ids are sorted (by id, then position) rather than hashed: hashing a page's long
/// ids was 1.3 % of a Graph initial sync's instructions, and a page rarely holds an id
/// twice, which the sorted list shows by neighbours.
fn last_versions<'a>(run: &[&'a Message]) -> Vec<&'a Message> {
    let mut ids: Vec<(&str, usize)> = run
        .iter()
        .enumerate()
        .map(|(i, m)| (m.remote_id.as_str(), i))
        .collect();
    ids.sort_unstable();
    let mut keep = vec![true; run.len()];
    for pair in ids.windows(2) {
        if pair[0].0 == pair[1].0 {
            keep[pair[0].1] = false;
        }
    }
    run.iter()
        .zip(keep)
        .filter_map(|(m, keep)| keep.then_some(*m))
        .collect()
}

/// Replaces the attachment rows of the messages that carry their attachment list.
/// When `all_new` (every message was inserted by this run) there is none to delete:
/// the delete, a lookup by remote id per message, was 7.4 % of the instructions of a
/// Graph initial sync into SQLite.
async fn replace_attachments(
    tx: &DatabaseTransaction,
    flavor: Flavor,
    account_id: i64,
    messages: &[&Message],
    all_new: bool,
) -> Result<()> {
    let known = || messages.iter().copied().filter(|m| attachments_known(m));
    if known().next().is_none() {
        return Ok(());
    }
    let backend = tx.get_database_backend();
    let what = || "cannot store attachment metadata".to_owned();
    // `_ids` and `_rows` keep SQLite's rows readable until their statement is done.
    if !all_new {
        let (ids, _ids) = bulk::remote_ids(flavor, known());
        tx.execute_raw(Statement::from_sql_and_values(
            backend,
            bulk::delete_attachments_sql(flavor),
            [ids, account_id.into()],
        ))
        .await
        .context(what)?;
    }
    if let Some((values, _rows)) = bulk::attachment_statement(flavor, known(), account_id) {
        tx.execute_raw(Statement::from_sql_and_values(
            backend,
            bulk::insert_attachments_sql(flavor),
            values,
        ))
        .await
        .context(what)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The JSON-unpacked upsert stores exactly the rows that binding every value stores
    //! (what this crate did before), on both databases.

    use chrono::{TimeDelta, TimeZone as _};
    use mailroom_core::{Attachment, EmailAddress, Message};
    use sea_orm::sea_query::{Query, SimpleExpr};
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait as _};

    use crate::Store;
    use crate::entity::{attachment, message};

    const COLUMNS: [&str; 20] = [
        "account_id",
        "folder_id",
        "remote_id",
        "message_id",
        "subject",
        "sender_name",
        "sender_address",
        "to_recipients",
        "cc_recipients",
        "date_received",
        "sent_at",
        "body",
        "is_read",
        "is_draft",
        "has_attachments",
        "attachment_count",
        "conversation_id",
        "warnings",
        "generation",
        "updated_at",
    ];

    const ATTACHMENT_COLUMNS: [&str; 8] = [
        "message_id",
        "ordinal",
        "remote_id",
        "name",
        "content_type",
        "size",
        "is_inline",
        "content_id",
    ];

    /// The row as every value bound on its own (the statement this crate used to build).
    async fn insert_bound(
        db: &impl ConnectionTrait,
        account_id: i64,
        folder_id: i64,
        now: chrono::DateTime<chrono::Utc>,
        m: &Message,
    ) {
        let sender = m.sender.as_ref();
        let values: [SimpleExpr; 20] = [
            account_id.into(),
            folder_id.into(),
            m.remote_id.clone().into(),
            m.message_id.clone().into(),
            m.subject.clone().into(),
            sender.and_then(|s| s.name.clone()).into(),
            sender.and_then(|s| s.address.clone()).into(),
            list(&m.to).into(),
            list(&m.cc).into(),
            m.date_received.into(),
            m.sent_at.into(),
            m.body.clone().into(),
            m.is_read.into(),
            m.is_draft.into(),
            m.has_attachments.into(),
            (m.attachment_count.min(i32::MAX as u32) as i32).into(),
            m.conversation_id.clone().into(),
            list(&m.warnings).into(),
            0i64.into(),
            now.into(),
        ];
        let mut insert = Query::insert();
        insert
            .into_table(message::Entity)
            .columns(COLUMNS.map(sea_orm::sea_query::Alias::new))
            .values_panic(values)
            .returning_col(message::Column::Id);
        let row = db.query_one(&insert).await.unwrap().unwrap();
        let id: i64 = row.try_get("", "id").unwrap();
        for (i, a) in m.attachments.iter().enumerate() {
            let values: [SimpleExpr; 8] = [
                id.into(),
                (i as i32).into(),
                a.remote_id.clone().into(),
                a.name.clone().into(),
                a.content_type.clone().into(),
                (a.size.min(i64::MAX as u64) as i64).into(),
                a.is_inline.into(),
                a.content_id.clone().into(),
            ];
            let mut insert = Query::insert();
            insert
                .into_table(attachment::Entity)
                .columns(ATTACHMENT_COLUMNS.map(sea_orm::sea_query::Alias::new))
                .values_panic(values);
            db.execute(&insert).await.unwrap();
        }
    }

    fn list<T: serde::Serialize>(items: &[T]) -> String {
        serde_json::to_string(items).unwrap()
    }

    /// Every column of every row of `table` for `account`, as the database spells the
    /// value (SQLite `quote()`, which shows the storage class; PostgreSQL `::text`).
    async fn raw_rows(store: &Store, sql_for: impl Fn(&str) -> String) -> Vec<Vec<Option<String>>> {
        let backend = store.db_backend();
        let rows = store
            .db
            .query_all_raw(Statement::from_string(
                backend,
                sql_for(match backend {
                    DbBackend::Postgres => "{}::text",
                    _ => "quote({})",
                }),
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                (0..)
                    .map_while(|i| r.try_get_by_index::<Option<String>>(i).ok())
                    .collect()
            })
            .collect()
    }

    fn select(columns: &[&str], wrap: &str, from: &str) -> String {
        let exprs: Vec<String> = columns.iter().map(|c| wrap.replace("{}", c)).collect();
        format!("SELECT {} FROM {from}", exprs.join(", "))
    }

    /// An account's message rows as text, every column but the account, the folder
    /// and the update time, ordered by `order`.
    async fn message_rows(store: &Store, account: i64, order: &str) -> Vec<Vec<Option<String>>> {
        let mut columns = COLUMNS.to_vec();
        columns.retain(|c| !matches!(*c, "account_id" | "folder_id" | "updated_at"));
        let from = format!("messages WHERE account_id = {account} ORDER BY {order}");
        raw_rows(store, |wrap| select(&columns, wrap, &from)).await
    }

    /// An account's attachment rows as text, their message named by its remote id
    /// (first column) instead of its row id, ordered by `order`.
    async fn attachment_rows(store: &Store, account: i64, order: &str) -> Vec<Vec<Option<String>>> {
        let columns: Vec<String> = ["m.remote_id".to_owned()]
            .into_iter()
            .chain(ATTACHMENT_COLUMNS[1..].iter().map(|c| format!("a.{c}")))
            .collect();
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let from = format!(
            "attachments a JOIN messages m ON m.id = a.message_id \
             WHERE m.account_id = {account} ORDER BY {order}"
        );
        raw_rows(store, |wrap| select(&columns, wrap, &from)).await
    }

    fn tricky() -> Vec<Message> {
        let t = |y, mo, d, h, mi, s, ns| {
            chrono::Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap() + TimeDelta::nanoseconds(ns)
        };
        let base = Message {
            remote_id: "base".into(),
            to: vec![EmailAddress::new(None, Some("me@example.com".into()))],
            ..Default::default()
        };
        let text = [
            "",
            "He said \"hi\" \\ back\\slash \\\" \\\\u0000 {\"a\":[1,2]} 'single' ]",
            "\u{1}\u{8}\t\n\r\u{b}\u{c}\u{1f}\u{7f}\u{80}\u{9f}",
            "😀 𝄞 e\u{301} עברית \u{2028}\u{2029}\u{feff} 日本語",
            "null",
            "[]",
        ];
        let mut out = Vec::new();
        for (i, s) in text.iter().enumerate() {
            out.push(Message {
                remote_id: format!("text-{i}-{s}"),
                message_id: Some(s.to_string()),
                subject: Some(s.to_string()),
                sender: Some(EmailAddress::new(
                    Some(s.to_string()),
                    Some(format!("{s}@x")),
                )),
                to: vec![EmailAddress::new(Some(s.to_string()), None)],
                cc: vec![EmailAddress::new(None, Some(s.to_string())); 2],
                body: Some(s.repeat(3)),
                conversation_id: Some(s.to_string()),
                warnings: vec![s.to_string(), format!("{s}\"")],
                attachments: vec![Attachment {
                    remote_id: Some(s.to_string()),
                    name: Some(format!("{s}.pdf")),
                    content_type: Some(s.to_string()),
                    size: i as u64,
                    is_inline: i % 2 == 0,
                    content_id: Some(s.to_string()),
                }],
                has_attachments: true,
                attachment_count: 1,
                is_read: i % 2 == 1,
                is_draft: i % 3 == 1,
                ..base.clone()
            });
        }
        out.push(Message {
            remote_id: "all-none".into(),
            to: Vec::new(),
            ..base.clone()
        });
        out.push(Message {
            remote_id: "sender-without-fields".into(),
            sender: Some(EmailAddress::new(None, None)),
            ..base.clone()
        });
        out.push(Message {
            remote_id: "extremes".into(),
            attachment_count: u32::MAX,
            has_attachments: true,
            attachments: vec![Attachment {
                size: u64::MAX,
                ..Default::default()
            }],
            ..base.clone()
        });
        out.push(Message {
            remote_id: "long".into(),
            body: Some("Ünïcödé body, long. ".repeat(50_000)),
            ..base.clone()
        });
        // Texts of sizes around the limits of length headers (1, 2 and 3 bytes).
        for n in [11, 12, 255, 256, 65_535, 65_536] {
            out.push(Message {
                remote_id: format!("body-of-{n}-bytes"),
                body: Some("b".repeat(n)),
                subject: Some("s".repeat(n)),
                ..base.clone()
            });
        }
        out.push(Message {
            remote_id: "longer-than-a-chunk".into(),
            body: Some("x".repeat(crate::bulk::MAX_BYTES + 1)),
            ..base.clone()
        });
        let dates = [
            t(1, 1, 1, 0, 0, 0, 0),
            t(1000, 2, 3, 4, 5, 6, 7),
            t(1969, 12, 31, 23, 59, 59, 999_999_999),
            t(1970, 1, 1, 0, 0, 0, 0),
            t(1999, 12, 31, 23, 59, 59, 999_999_500),
            t(2000, 1, 1, 0, 0, 0, 0),
            t(2000, 1, 1, 0, 0, 0, 1_500),
            t(2025, 1, 20, 11, 30, 0, 120_000_000),
            t(2025, 1, 20, 11, 30, 0, 123_456_000),
            t(2025, 1, 20, 11, 30, 0, 123_456_789),
            t(2038, 1, 19, 3, 14, 8, 0),
            t(9999, 12, 31, 23, 59, 59, 999_999_999),
            t(12345, 6, 7, 8, 9, 10, 0),
            t(-43, 3, 15, 12, 0, 0, 0),
        ];
        for (i, d) in dates.into_iter().enumerate() {
            out.push(Message {
                remote_id: format!("date-{i}"),
                date_received: Some(d),
                sent_at: (i % 2 == 0).then_some(d),
                ..base.clone()
            });
        }
        out
    }

    #[tokio::test]
    async fn json_rows_equal_bound_rows_on_both_databases() {
        let sqlite = Store::connect("sqlite::memory:").await.unwrap();
        let postgres = Store::connect(&crate::testing::fresh_postgres_url().await)
            .await
            .unwrap();
        for store in [sqlite, postgres] {
            let b = store.backend();
            let mut accounts = Vec::new();
            for email in ["json@example.com", "bound@example.com"] {
                accounts.push(crate::tests::account_with_inbox(&store, email).await);
            }
            let records = tricky();
            let now = chrono::Utc::now();
            let ((json_account, json_folder), (bound_account, bound_folder)) =
                (accounts[0], accounts[1]);
            let refs: Vec<&Message> = records.iter().collect();
            let tx = store.writer.begin().await.unwrap();
            super::upsert_run(&tx, json_account, json_folder, 0, &refs)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            for m in &records {
                insert_bound(&store.writer, bound_account, bound_folder, now, m).await;
            }

            // The update time is `now` bound as a value on both paths. By remote id: on
            // PostgreSQL each connection takes ids from a block of its own.
            let json_rows = message_rows(&store, json_account, "remote_id").await;
            let bound_rows = message_rows(&store, bound_account, "remote_id").await;
            assert_eq!(json_rows.len(), records.len(), "{b:?}");
            for (j, r) in json_rows.iter().zip(&bound_rows) {
                assert_eq!(j, r, "{b:?}: row of {:?}", j[0]);
            }
            let order = "m.remote_id, a.ordinal";
            let json_rows = attachment_rows(&store, json_account, order).await;
            let bound_rows = attachment_rows(&store, bound_account, order).await;
            assert_eq!(json_rows.len(), 7, "{b:?}");
            assert_eq!(json_rows, bound_rows, "{b:?}");
        }
    }

    /// The page statement commits without waiting for its WAL to reach the disk
    /// (`synchronous_commit` off in its own transaction), and leaves the connection's
    /// setting as it was for the statements after it (credentials, outcomes).
    #[tokio::test]
    async fn one_statement_pages_commit_asynchronously_and_only_themselves() {
        use mailroom_core::{Change, SyncCursor, SyncPage};
        use sea_orm::sqlx::{Arguments as _, Row as _};

        let store = Store::connect(&crate::testing::fresh_postgres_url().await)
            .await
            .unwrap();
        let (account, folder) = crate::tests::account_with_inbox(&store, "async@example.com").await;
        let page = SyncPage {
            changes: tricky().into_iter().take(3).map(Change::Upsert).collect(),
            cursor: SyncCursor("c".into()),
            reset: false,
            complete: false,
        };
        let encoded = store.encode_page(account, folder, &page, false).unwrap();
        let super::PageRows::Statement(arguments) = encoded.rows else {
            panic!("a page outside an insert-only run is encoded for the page statement");
        };
        let mut arguments = arguments.unwrap();
        arguments.add(chrono::Utc::now()).unwrap();
        let pool = store.writer.get_postgres_connection_pool();
        let mut conn = pool.acquire().await.unwrap();
        let show = "SELECT current_setting('synchronous_commit')";
        let (before,): (String,) = sea_orm::sqlx::query_as(show)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let sql = crate::bulk::pg_page_sql(None);
        let row = sea_orm::sqlx::query_with(sea_orm::sqlx::AssertSqlSafe(sql), arguments)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(row.get::<i64, _>("upserted"), 3);
        assert_eq!(row.get::<String, _>("synchronous_commit"), "off");
        let (after,): (String,) = sea_orm::sqlx::query_as(show)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(after, before, "the connection keeps its setting");
    }

    /// On PostgreSQL a page of upserts takes the one-statement path, which stores the
    /// same message and attachment rows as the transaction (checked above against
    /// binding every value); other pages take the transaction.
    /// Of an id listed more than once, the last version is kept, in its place.
    #[test]
    fn the_last_version_of_each_id_is_kept_in_order() {
        let message = |id: &str, subject: &str| Message {
            remote_id: id.into(),
            subject: Some(subject.into()),
            ..Default::default()
        };
        let run = [
            message("a", "1"),
            message("b", "2"),
            message("a", "3"),
            message("c", "4"),
            message("b", "5"),
            message("a", "6"),
            message("d", "7"),
        ];
        let refs: Vec<&Message> = run.iter().collect();
        let kept: Vec<&str> = super::last_versions(&refs)
            .iter()
            .map(|m| m.subject.as_deref().unwrap())
            .collect();
        assert_eq!(kept, ["4", "5", "6", "7"]);
        assert!(super::last_versions(&[]).is_empty());
    }

    #[tokio::test]
    async fn one_statement_pages_store_the_rows_of_the_transaction() {
        use mailroom_core::{Change, SyncCursor, SyncPage};

        let (store, (page_account, page_folder), (tx_account, tx_folder), records) =
            page_and_transaction_accounts().await;
        let page = |changes: Vec<Change>, complete| SyncPage {
            changes,
            cursor: SyncCursor("c".into()),
            reset: false,
            complete,
        };
        // Twice: inserts, then updates that replace the attachment lists.
        for _ in 0..2 {
            let upserts = page(records.iter().cloned().map(Change::Upsert).collect(), false);
            let encoded = store.encode_page(page_account, page_folder, &upserts, false);
            let write = super::SyncPageWrite {
                account_id: page_account,
                folder_id: page_folder,
                page: &upserts,
                lease: None,
            };
            let stats = store
                .apply_page_in_one_statement(write, encoded.unwrap())
                .await;
            assert_eq!(stats.unwrap().upserted, records.len() as u64);
            let refs: Vec<&Message> = records.iter().collect();
            let tx = store.writer.begin().await.unwrap();
            super::upsert_run(&tx, tx_account, tx_folder, 0, &refs)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        for other in [
            page(vec![Change::Upsert(records[0].clone())], true),
            page(
                vec![Change::Remove {
                    remote_id: "x".into(),
                }],
                false,
            ),
        ] {
            let taken = store.encode_page(page_account, page_folder, &other, false);
            assert!(taken.is_none(), "{:?}", other.changes);
        }

        assert_same_rows(&store, page_account, tx_account, records.len()).await;
    }

    /// A fresh PostgreSQL store with two accounts, each with an Inbox: one written page
    /// by page, the other through the transaction path (`upsert_run`); and the tricky
    /// records that fit one page.
    async fn page_and_transaction_accounts() -> (Store, (i64, i64), (i64, i64), Vec<Message>) {
        let store = Store::connect(&crate::testing::fresh_postgres_url().await)
            .await
            .unwrap();
        let page = crate::tests::account_with_inbox(&store, "page@example.com").await;
        let tx = crate::tests::account_with_inbox(&store, "tx@example.com").await;
        let mut records = tricky();
        records.retain(|m| m.remote_id != "longer-than-a-chunk");
        (store, page, tx, records)
    }

    /// Asserts that `account` holds `messages` message rows and the 7 attachment rows
    /// of the tricky records, equal to those of `like`.
    async fn assert_same_rows(store: &Store, account: i64, like: i64, messages: usize) {
        let rows = message_rows(store, account, "remote_id").await;
        assert_eq!(rows.len(), messages);
        assert_eq!(rows, message_rows(store, like, "remote_id").await);
        let order = "m.remote_id, a.ordinal";
        let rows = attachment_rows(store, account, order).await;
        assert_eq!(rows.len(), 7);
        assert_eq!(rows, attachment_rows(store, like, order).await);
    }

    /// The folders in insert-only runs are a hint: a store that would keep more than
    /// `FOLDERS_FROM_EMPTY_KEPT` (syncs stopped mid-enumeration) forgets them all.
    #[tokio::test]
    async fn the_insert_only_hint_is_cleared_when_it_would_grow_past_its_bound() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let kept = crate::FOLDERS_FROM_EMPTY_KEPT as i64;
        for folder in 0..kept {
            store.set_insert_only_run(folder, true);
        }
        assert!((0..kept).all(|f| store.in_insert_only_run(f)));
        store.set_insert_only_run(kept, true);
        assert_eq!(store.insert_only_runs().len(), 1);
        assert!(store.in_insert_only_run(kept));
        assert!(!store.in_insert_only_run(0));
        // Ending a run is not clearing: it forgets that folder only.
        store.set_insert_only_run(kept + 1, true);
        store.set_insert_only_run(kept, false);
        assert!(store.in_insert_only_run(kept + 1));
    }

    /// PostgreSQL: the rows of a page copied in an insert-only run are those the
    /// transaction path stores, with the folder's generation and the time of the write.
    #[tokio::test]
    async fn copied_pages_store_the_rows_of_the_transaction() {
        use mailroom_core::{Change, SyncCursor, SyncPage};

        let (store, (page_account, page_folder), (tx_account, tx_folder), records) =
            page_and_transaction_accounts().await;
        let first = Message {
            remote_id: "first".into(),
            ..Default::default()
        };
        let pages = [(vec![first.clone()], true), (records.clone(), false)];
        let before = chrono::Utc::now();
        let mut statements = Vec::new();
        for (messages, reset) in pages {
            let page = SyncPage {
                changes: messages.into_iter().map(Change::Upsert).collect(),
                cursor: SyncCursor("c".into()),
                reset,
                complete: false,
            };
            let sent = store.statements_sent();
            let stats = store
                .apply_sync_page(super::SyncPageWrite {
                    account_id: page_account,
                    folder_id: page_folder,
                    page: &page,
                    lease: None,
                })
                .await
                .unwrap();
            assert_eq!(stats.upserted, page.changes.len() as u64);
            statements.push(store.statements_sent() - sent);
        }
        // The reset page, one statement; the copied page, its cursor, its messages
        // and their attachments.
        assert_eq!(statements, [1, 3]);
        let after = chrono::Utc::now();
        let pool = store.writer.get_postgres_connection_pool();
        let (generation,): (i64,) =
            sea_orm::sqlx::query_as("SELECT generation FROM folders WHERE id = $1")
                .bind(page_folder)
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(generation, 1);
        let refs: Vec<&Message> = std::iter::once(&first).chain(&records).collect();
        let tx = store.writer.begin().await.unwrap();
        super::upsert_run(&tx, tx_account, tx_folder, generation, &refs)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        assert_same_rows(&store, page_account, tx_account, records.len() + 1).await;
        let updated: Vec<(chrono::DateTime<chrono::Utc>,)> = sea_orm::sqlx::query_as(
            "SELECT updated_at FROM messages WHERE account_id = $1 AND remote_id <> 'first'",
        )
        .bind(page_account)
        .fetch_all(pool)
        .await
        .unwrap();
        assert_eq!(updated.len(), records.len());
        let cut = |t: chrono::DateTime<chrono::Utc>| t - TimeDelta::microseconds(1);
        assert!(
            updated.iter().all(|(t,)| (cut(before)..=after).contains(t)),
            "{updated:?} not in {before}..{after}"
        );
    }

    /// PostgreSQL: the pages of a folder enumerated from empty are inserted by `COPY`
    /// after its reset page; a row that exists after all (moved in from another
    /// folder) fails the `COPY`, the page is written again as an upsert (three
    /// statements), and the folder's insert-only run ends. Incremental pages and
    /// re-enumerations of folders that hold messages are upserts from the start.
    #[tokio::test]
    async fn a_folder_enumerated_from_empty_is_inserted_until_a_row_exists() {
        use mailroom_core::{Change, SyncCursor, SyncPage};

        let store = Store::connect(&crate::testing::fresh_postgres_url().await)
            .await
            .unwrap();
        let (account, inbox) = crate::tests::account_with_inbox(&store, "new@example.com").await;
        let archive = crate::tests::folder_named(&store, account, "Archive").await;
        // The log, to read the line of the page written again (this test's thread).
        #[derive(Clone, Default)]
        struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Logs {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let logs = Logs::default();
        let writer = logs.clone();
        let _logging = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish(),
        );
        let written_again = || {
            let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
            text.lines()
                .filter(|l| l.contains("the page is written again as an upsert"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let message = |id: &str| Message {
            remote_id: id.into(),
            subject: Some(format!("subject of {id}")),
            ..Default::default()
        };
        // Written as a worker writes them: fenced by its lease, renewed every other page.
        let now = chrono::Utc::now();
        let until = now + chrono::TimeDelta::minutes(5);
        let claimed = store.claim_due_accounts("w1", 1, now, until).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let renew = std::cell::Cell::new(false);
        let page_of = |ids: &[&str], reset: bool| SyncPage {
            changes: ids.iter().map(|id| Change::Upsert(message(id))).collect(),
            cursor: SyncCursor(format!("after {}", ids.join(","))),
            reset,
            complete: false,
        };
        // Writes a page of upserts of `ids`; returns the statements it took and whether
        // the folder's next page would be inserted without `ON CONFLICT`.
        let write = async |folder: i64, ids: &[&str], reset: bool| {
            let page = page_of(ids, reset);
            renew.set(!renew.get());
            let before = store.statements_sent();
            let stats = store
                .apply_sync_page(super::SyncPageWrite {
                    account_id: account,
                    folder_id: folder,
                    page: &page,
                    lease: Some(super::LeaseCheck {
                        owner: "w1",
                        until,
                        renew: renew.get(),
                    }),
                })
                .await
                .unwrap();
            assert_eq!(stats.upserted, ids.len() as u64, "{ids:?}");
            (
                store.statements_sent() - before,
                store.in_insert_only_run(folder),
            )
        };
        let folder_of = async |id: &str| store.get_message(account, id).await.unwrap().folder_id;

        // An incremental page of new messages: upserted, and no run starts.
        assert_eq!(write(archive, &["moved"], false).await, (1, false));
        // The first sync of the Inbox: its reset page starts the run, whose pages go
        // by `COPY` (two statements: the cursor, then the rows)...
        assert_eq!(write(inbox, &["a1", "a2"], true).await, (1, true));
        assert_eq!(write(inbox, &["a3", "a4"], false).await, (2, true));
        // Another worker's page in the run writes nothing.
        let lost = store
            .apply_sync_page(super::SyncPageWrite {
                account_id: account,
                folder_id: inbox,
                page: &page_of(&["stolen"], false),
                lease: Some(super::LeaseCheck {
                    owner: "w2",
                    until,
                    renew: true,
                }),
            })
            .await
            .unwrap_err();
        assert!(matches!(lost, crate::Error::LeaseLost { .. }), "{lost}");
        assert!(store.get_message(account, "stolen").await.is_err());
        assert_eq!(write(inbox, &["a3b"], false).await, (2, true));
        assert_eq!(written_again(), Vec::<String>::new());
        // ...until a page holds a message that exists: its `COPY` fails, its
        // transaction writes nothing, and the page is sent again as an upsert.
        assert_eq!(write(inbox, &["a5", "moved"], false).await, (3, false));
        let lines = written_again();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains(&format!("folder_id={inbox}")),
            "{lines:?}"
        );
        assert_eq!(folder_of("moved").await, inbox);
        assert_eq!(
            store
                .get_message(account, "moved")
                .await
                .unwrap()
                .message
                .subject
                .as_deref(),
            Some("subject of moved")
        );
        assert_eq!(write(inbox, &["a6"], false).await, (1, false));
        for id in ["a1", "a2", "a3", "a4", "a3b", "a5", "a6"] {
            assert_eq!(folder_of(id).await, inbox, "{id}");
        }
        let cursor = store.get_folder(inbox).await.unwrap().cursor;
        assert_eq!(cursor, Some(SyncCursor("after a6".into())));
        // A new enumeration of a folder that holds messages: upserts only, even of new
        // messages.
        assert_eq!(write(inbox, &["n1", "n2"], true).await, (1, false));
        assert_eq!(write(inbox, &["a1", "n3"], false).await, (1, false));
    }
}
