//! Folders, the transactional page write, and message queries.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use mailroom_core::{Attachment, Change, EmailAddress, Folder, Message, SyncCursor, SyncPage};
use sea_orm::sea_query::{Expr, Func, OnConflict, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait, Value,
};

use crate::Store;
use crate::accounts::renew_lease_on;
use crate::entity::{attachment, folder, message};
use crate::error::{Context as _, Error, Result};

/// Rows per INSERT: 20 columns × 500 rows stays far below SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters.
const CHUNK: usize = 1000;

/// A folder as stored, with its sync state.
#[derive(Debug, Clone)]
pub struct FolderRow {
    /// Database id.
    pub id: i64,
    /// The account.
    pub account_id: i64,
    /// The folder as the server described it.
    pub folder: Folder,
    /// The sync cursor, `None` before the first sync.
    pub cursor: Option<SyncCursor>,
    /// True while a reset enumeration is in progress.
    pub reconciling: bool,
    /// When a page of this folder was last stored.
    pub last_synced_at: Option<DateTime<Utc>>,
}

/// A worker's lease, renewed inside the page transaction: if another worker took the
/// account over, the page is not written ([`Error::LeaseLost`]).
#[derive(Debug, Clone, Copy)]
pub struct LeaseCheck<'a> {
    /// The worker that holds the lease.
    pub owner: &'a str,
    /// The new lease expiry.
    pub until: DateTime<Utc>,
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
    }
}

fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).expect("plain data serializes")
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
                .execute(self.db_backend().build(&insert))
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
        let what = || format!("cannot store sync page of folder {folder_id}");
        let tx = self.writer.begin().await.context(what)?;
        // The first statement writes, so SQLite takes its write lock at once (a read
        // first would risk SQLITE_BUSY on the upgrade).
        if let Some(lease) = lease {
            renew_lease_on(&tx, account_id, lease.owner, lease.until).await?;
        }
        let mut update = folder::Entity::update_many()
            .col_expr(folder::Column::Cursor, Expr::value(page.cursor.as_str()))
            .col_expr(folder::Column::LastSyncedAt, Expr::value(Utc::now()))
            .filter(folder::Column::Id.eq(folder_id))
            .filter(folder::Column::AccountId.eq(account_id));
        if page.reset {
            update = update
                .col_expr(
                    folder::Column::Generation,
                    Expr::col(folder::Column::Generation).add(1),
                )
                .col_expr(folder::Column::Reconciling, Expr::value(true));
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
                    stats.upserted +=
                        upsert_run(&tx, account_id, folder_id, state.generation, &run).await?;
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
        Ok(stats)
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
                Expr::col(folder::Column::Generation).into(),
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
        let n = upsert_run(&tx, account_id, folder_id, generation, &run).await?;
        tx.commit().await.context(what)?;
        Ok(n)
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
            Expr::expr(Func::lower(Expr::col(col)))
                .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\'))
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

const UPSERT_COLUMNS: [message::Column; 20] = [
    message::Column::AccountId,
    message::Column::FolderId,
    message::Column::RemoteId,
    message::Column::MessageId,
    message::Column::Subject,
    message::Column::SenderName,
    message::Column::SenderAddress,
    message::Column::ToRecipients,
    message::Column::CcRecipients,
    message::Column::DateReceived,
    message::Column::SentAt,
    message::Column::Body,
    message::Column::IsRead,
    message::Column::IsDraft,
    message::Column::HasAttachments,
    message::Column::AttachmentCount,
    message::Column::ConversationId,
    message::Column::Warnings,
    message::Column::Generation,
    message::Column::UpdatedAt,
];

fn message_values(
    account_id: i64,
    folder_id: i64,
    generation: i64,
    now: DateTime<Utc>,
    m: &Message,
) -> [SimpleExpr; 20] {
    let sender = m.sender.as_ref();
    [
        account_id.into(),
        folder_id.into(),
        m.remote_id.clone().into(),
        m.message_id.clone().into(),
        m.subject.clone().into(),
        sender.and_then(|s| s.name.clone()).into(),
        sender.and_then(|s| s.address.clone()).into(),
        json_list(&m.to).into(),
        json_list(&m.cc).into(),
        m.date_received.into(),
        m.sent_at.into(),
        m.body.clone().into(),
        m.is_read.into(),
        m.is_draft.into(),
        m.has_attachments.into(),
        (m.attachment_count.min(i32::MAX as u32) as i32).into(),
        m.conversation_id.clone().into(),
        json_list(&m.warnings).into(),
        generation.into(),
        now.into(),
    ]
}

/// Upserts a run of messages in chunks; replaces attachment rows of the messages that
/// carry their attachment list. Returns how many messages were written.
async fn upsert_run(
    tx: &DatabaseTransaction,
    account_id: i64,
    folder_id: i64,
    generation: i64,
    run: &[&Message],
) -> Result<u64> {
    // The same id twice in one statement is an error on PostgreSQL ("ON CONFLICT DO
    // UPDATE command cannot affect row a second time"): keep the last version.
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(run.len());
    for (i, m) in run.iter().enumerate() {
        last.insert(m.remote_id.as_str(), i);
    }
    let unique: Vec<&Message> = run
        .iter()
        .enumerate()
        .filter(|(i, m)| last[m.remote_id.as_str()] == *i)
        .map(|(_, m)| *m)
        .collect();

    let backend = tx.get_database_backend();
    let now = Utc::now();
    let what = || format!("cannot store messages of folder {folder_id}");
    let build = |chunk: &[&Message]| {
        let mut insert = Query::insert();
        insert.into_table(message::Entity).columns(UPSERT_COLUMNS);
        for m in chunk {
            insert.values_panic(message_values(account_id, folder_id, generation, now, m));
        }
        insert
            .on_conflict(
                OnConflict::columns([message::Column::AccountId, message::Column::RemoteId])
                    .update_columns(UPSERT_COLUMNS.into_iter().filter(|c| {
                        !matches!(
                            c,
                            message::Column::AccountId
                                | message::Column::RemoteId
                                | message::Column::AttachmentCount
                        )
                    }))
                    // A record that has attachments but does not list them (a Graph
                    // delta item) keeps the count stored before, like the list itself.
                    .value(
                        message::Column::AttachmentCount,
                        Expr::cust(
                            "CASE WHEN excluded.has_attachments AND excluded.attachment_count = 0 \
                             THEN messages.attachment_count ELSE excluded.attachment_count END",
                        ),
                    )
                    .to_owned(),
            )
            .returning(
                Query::returning().columns([message::Column::Id, message::Column::RemoteId]),
            );
        backend.build(&insert)
    };
    let chunks: Vec<&[&Message]> = unique.chunks(CHUNK).collect();
    let mut written = 0;
    let mut next = chunks.first().map(|c| build(c));
    for (k, chunk) in chunks.iter().enumerate() {
        let statement = next.take().expect("built ahead");
        // Build the next statement while the database runs this one.
        let (rows, built) = futures::join!(tx.query_all(statement), async {
            chunks.get(k + 1).map(|c| build(c))
        });
        next = built;
        let rows = rows.context(what)?;
        written += chunk.len() as u64;

        let mut ids: HashMap<String, i64> = HashMap::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("", "id").context(what)?;
            let remote: String = row.try_get("", "remote_id").context(what)?;
            ids.insert(remote, id);
        }
        let known: Vec<(&Message, i64)> = chunk
            .iter()
            .filter(|m| attachments_known(m))
            .filter_map(|m| ids.get(&m.remote_id).map(|id| (*m, *id)))
            .collect();
        replace_attachments(tx, &known).await?;
    }
    Ok(written)
}

async fn replace_attachments(tx: &DatabaseTransaction, known: &[(&Message, i64)]) -> Result<()> {
    if known.is_empty() {
        return Ok(());
    }
    let what = || "cannot store attachment metadata".to_owned();
    attachment::Entity::delete_many()
        .filter(attachment::Column::MessageId.is_in(known.iter().map(|(_, id)| *id)))
        .exec(tx)
        .await
        .context(what)?;
    let rows: Vec<[Value; 8]> = known
        .iter()
        .flat_map(|(m, id)| {
            m.attachments.iter().enumerate().map(move |(i, a)| {
                [
                    (*id).into(),
                    (i as i32).into(),
                    a.remote_id.clone().into(),
                    a.name.clone().into(),
                    a.content_type.clone().into(),
                    (a.size.min(i64::MAX as u64) as i64).into(),
                    a.is_inline.into(),
                    a.content_id.clone().into(),
                ]
            })
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        let mut insert = Query::insert();
        insert.into_table(attachment::Entity).columns([
            attachment::Column::MessageId,
            attachment::Column::Ordinal,
            attachment::Column::RemoteId,
            attachment::Column::Name,
            attachment::Column::ContentType,
            attachment::Column::Size,
            attachment::Column::IsInline,
            attachment::Column::ContentId,
        ]);
        for row in chunk {
            insert.values_panic(row.iter().cloned().map(SimpleExpr::Value));
        }
        tx.execute(tx.get_database_backend().build(&insert))
            .await
            .context(what)?;
    }
    Ok(())
}
