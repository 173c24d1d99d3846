//! Bulk message writes: a chunk of rows travels in a few parameters that the database
//! unpacks, instead of twenty bound values per row. Binding, converting and copying
//! 20,000 values per statement was most of the cost of a page write.
//!
//! - On SQLite the rows of a chunk stay in this process: they are registered with the
//!   `mailroom_rows` table-valued function ([`crate::vtab`]), and the statement names
//!   them by ONE parameter, a token; SQLite reads each field as a column (`r.c3`),
//!   without copying or parsing anything on the way. Attachment rows travel the same
//!   way, and so do the remote ids whose attachments are replaced. (This replaced one
//!   JSONB blob per row read with `->>`, whose lookups were a fifth of the client's
//!   instructions in the Graph initial sync: docs/benchmarks.md, round 7.)
//! - On PostgreSQL each column of the chunk is ONE array parameter (`text[]`,
//!   `timestamptz[]`, `boolean[]`, `integer[]`, sent in binary), and one more array
//!   says which fields are NULL; `unnest` turns them back into rows. This replaced one
//!   JSON text unpacked by `jsonb_array_elements`: parsing that JSON was about a third
//!   of the server's CPU per message (see docs/benchmarks.md, "PostgreSQL write path").
//!
//! The values are encoded so that the database stores exactly what binding them one by
//! one stores: strings as strings (any Unicode), `NULL` for `None`, booleans as 0 and 1
//! on SQLite, and timestamps as the text each driver would have sent — on SQLite the
//! RFC 3339 text sqlx writes, on PostgreSQL the instant cut to microseconds exactly as
//! sqlx's binary encoding cuts it.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, Datelike as _, NaiveDate, SecondsFormat, Timelike as _, Utc};
use mailroom_core::Message;

use crate::error::{Error, Result};
use crate::vtab::{Registered, Rows};

/// At most this many messages per statement on PostgreSQL.
pub(crate) const MAX_ROWS: usize = 1000;

/// Messages per statement on SQLite (the same prepared statement serves every chunk):
/// a delta page of 1,000 is one statement. It was 125 while messages had foreign keys:
/// each statement then kept a statement journal (a copy of every page it changed, to
/// undo it alone), which smaller statements kept small. Without it (migration
/// m20261207_000011), 1,000 rows per statement took 2.3 % fewer instructions than 125
/// and 4 % less CPU per message synced, in alternated rounds (docs/benchmarks.md,
/// round 9).
pub(crate) const SQLITE_ROWS_PER_STATEMENT: usize = 1000;

/// A chunk is cut once its encoded rows reach this size (a record with a huge body
/// makes a chunk of its own), far below SQLite's 1,000,000,000-byte limit on one value.
pub(crate) const MAX_BYTES: usize = 8 << 20;

/// The database a chunk is encoded for: timestamps differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Sqlite,
    Postgres,
}

/// The columns of a message row, in the order of `mailroom_rows`' columns (`c0` …) and
/// of the PostgreSQL arrays (the account, folder, generation and update time are
/// parameters of the statement, the same for all rows).
const ROW: [&str; 16] = [
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
];

/// PostgreSQL type of each field of [`ROW`], the element type of its array parameter.
fn pg_type(column: &str) -> &'static str {
    match column {
        "date_received" | "sent_at" => "timestamptz",
        "is_read" | "is_draft" | "has_attachments" => "boolean",
        "attachment_count" => "integer",
        _ => "text",
    }
}

/// The fields of [`ROW`] that may be NULL. PostgreSQL array parameters here carry no
/// NULL elements (sea-query binds `Vec<T>`), so a NULL field is sent as a placeholder
/// and its bit (`1 << index in ROW`) set in the row's null mask.
fn nullable(column: &str) -> bool {
    matches!(
        column,
        "message_id"
            | "subject"
            | "sender_name"
            | "sender_address"
            | "date_received"
            | "sent_at"
            | "body"
            | "conversation_id"
    )
}

/// Number of array parameters of a PostgreSQL upsert: one per field of [`ROW`], then
/// the null masks.
const PG_ARRAYS: usize = ROW.len() + 1;

/// Columns of an attachment row, in the order of its `mailroom_rows` columns (its
/// arrays on PostgreSQL); the first field is the remote id of the message it belongs to.
const ATTACHMENT_ROW: [&str; 8] = [
    "message_remote_id",
    "ordinal",
    "remote_id",
    "name",
    "content_type",
    "size",
    "is_inline",
    "content_id",
];

/// `INSERT … SELECT … FROM <the rows> ON CONFLICT (account_id, remote_id) DO UPDATE`.
/// Parameters, in order ([`upsert_values`] lays them out): on SQLite account id, folder
/// id, generation, update time, then the token of the chunk's rows; on PostgreSQL the
/// [`PG_ARRAYS`] column arrays, account id, folder id, generation, update time.
pub(crate) fn upsert_sql(flavor: Flavor) -> String {
    let mut sql = String::from("INSERT INTO messages (account_id, folder_id, ");
    for c in ROW {
        sql.push_str(c);
        sql.push_str(", ");
    }
    sql.push_str("generation, updated_at) SELECT ");
    match flavor {
        Flavor::Sqlite => {
            sql.push_str("?, ?, ");
            for i in 0..ROW.len() {
                let _ = write!(sql, "r.c{i}, ");
            }
            // `WHERE true` keeps SQLite from reading ON CONFLICT as a join constraint.
            let _ = write!(sql, "?, ? FROM {}(?) AS r WHERE true", crate::vtab::NAME);
        }
        Flavor::Postgres => {
            let [account, folder, generation, now] =
                [1, 2, 3, 4].map(|i| format!("${}", PG_ARRAYS + i));
            push_pg_rows(&mut sql, &account, &folder, &generation, &now, "");
        }
    }
    push_on_conflict(&mut sql);
    sql
}

/// `<account>, <folder>, <the fields of ROW>, <generation>, <now> FROM [also_from]
/// unnest(<the PG_ARRAYS arrays, parameters 1 to PG_ARRAYS>) AS r(…)`.
fn push_pg_rows(
    sql: &mut String,
    account: &str,
    folder: &str,
    generation: &str,
    now: &str,
    also_from: &str,
) {
    let _ = write!(sql, "{account}, {folder}, ");
    for (i, c) in ROW.iter().enumerate() {
        if nullable(c) {
            let _ = write!(sql, "CASE WHEN r.nulls & {} = 0 THEN r.{c} END, ", 1 << i);
        } else {
            let _ = write!(sql, "r.{c}, ");
        }
    }
    // One `unnest` per array in a select list: the arrays are walked in step, row by
    // row (`ProjectSet`), where `FROM unnest(a, b, …)` first copies every row into a
    // tuple store (4 % of the server's CPU per message, perf). Rows come in order, so
    // ids are given in page order.
    let _ = write!(sql, "{generation}, {now} FROM {also_from}(SELECT ");
    for (i, c) in ROW.iter().enumerate() {
        let _ = write!(sql, "unnest(${}::{}[]) AS {c}, ", i + 1, pg_type(c));
    }
    let _ = write!(sql, "unnest(${PG_ARRAYS}::integer[]) AS nulls) AS r");
}

/// The `ON CONFLICT … DO UPDATE` of every message upsert.
fn push_on_conflict(sql: &mut String) {
    sql.push_str(" ON CONFLICT (account_id, remote_id) DO UPDATE SET ");
    for c in ["folder_id"]
        .into_iter()
        .chain(
            ROW.into_iter()
                .filter(|c| !matches!(*c, "remote_id" | "attachment_count")),
        )
        .chain(["generation", "updated_at"])
    {
        let _ = write!(sql, "{c} = excluded.{c}, ");
    }
    // A record that has attachments but does not list them (a Graph delta item) keeps
    // the count stored before, like the list itself.
    sql.push_str(
        "attachment_count = CASE WHEN excluded.has_attachments AND excluded.attachment_count = 0 \
         THEN messages.attachment_count ELSE excluded.attachment_count END",
    );
}

/// Deletes the attachment rows of the messages whose remote ids are listed.
/// Parameters: 1 the remote ids ([`remote_ids`]), 2 account id.
pub(crate) fn delete_attachments_sql(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Sqlite => {
            concat!(
                "DELETE FROM attachments WHERE message_id IN (SELECT m.id FROM ",
                crate::vtab::name!(),
                "(?1) AS k CROSS JOIN messages AS m WHERE m.account_id = ?2 AND m.remote_id = k.c0)"
            )
        }
        // `= ANY(ARRAY(…))` probes the index on `message_id` for each id; `IN (…)`
        // was planned as a sequential scan of all attachments for every page while
        // the table's statistics said it was small (2.5 million rows read for an
        // initial sync of 100,000 messages).
        Flavor::Postgres => {
            "DELETE FROM attachments WHERE message_id = ANY(ARRAY(SELECT m.id \
             FROM unnest($1::text[]) AS k(remote_id) \
             JOIN messages AS m ON m.account_id = $2 AND m.remote_id = k.remote_id))"
        }
    }
}

/// Inserts attachment rows, finding each one's message by remote id. Parameters
/// ([`attachment_statement`] lays them out): on SQLite the token of the rows
/// `mailroom_rows` reads, then the account id; on PostgreSQL the
/// [`PG_ATTACHMENT_ARRAYS`] column arrays, then the account id.
pub(crate) fn insert_attachments_sql(flavor: Flavor) -> String {
    let mut sql = String::from("INSERT INTO attachments (message_id");
    for c in &ATTACHMENT_ROW[1..] {
        let _ = write!(sql, ", {c}");
    }
    sql.push_str(") SELECT m.id");
    match flavor {
        Flavor::Sqlite => {
            for i in 1..ATTACHMENT_ROW.len() {
                let _ = write!(sql, ", r.c{i}");
            }
            let _ = write!(
                sql,
                " FROM {}(?) AS r CROSS JOIN messages AS m \
                 WHERE m.account_id = ? AND m.remote_id = r.c0",
                crate::vtab::NAME
            );
        }
        Flavor::Postgres => {
            let account = format!("${}", PG_ATTACHMENT_ARRAYS + 1);
            push_pg_attachment_rows(
                &mut sql,
                1,
                &format!("messages AS m ON m.account_id = {account} AND"),
            );
        }
    }
    sql
}

/// PostgreSQL element type of each field of [`ATTACHMENT_ROW`].
fn pg_attachment_type(column: &str) -> &'static str {
    match column {
        "ordinal" => "integer",
        "size" => "bigint",
        "is_inline" => "boolean",
        _ => "text",
    }
}

/// The fields of [`ATTACHMENT_ROW`] that may be NULL (sent like [`nullable`] ones).
fn attachment_nullable(column: &str) -> bool {
    matches!(column, "remote_id" | "name" | "content_type" | "content_id")
}

/// Number of array parameters of the attachment rows on PostgreSQL: one per field of
/// [`ATTACHMENT_ROW`], then the null masks.
pub(crate) const PG_ATTACHMENT_ARRAYS: usize = ATTACHMENT_ROW.len() + 1;

/// `, <the fields> FROM unnest(<the PG_ATTACHMENT_ARRAYS arrays from parameter
/// first>) WITH ORDINALITY AS r(…) JOIN <join> m.remote_id = r.message_remote_id
/// ORDER BY r.n`: the attachment rows of `INSERT … SELECT m.id`, in order.
fn push_pg_attachment_rows(sql: &mut String, first: usize, join: &str) {
    for (i, c) in ATTACHMENT_ROW.iter().enumerate().skip(1) {
        if attachment_nullable(c) {
            let _ = write!(sql, ", CASE WHEN r.nulls & {} = 0 THEN r.{c} END", 1 << i);
        } else {
            let _ = write!(sql, ", r.{c}");
        }
    }
    sql.push_str(" FROM unnest(");
    for (i, c) in ATTACHMENT_ROW.iter().enumerate() {
        let _ = write!(sql, "${}::{}[], ", first + i, pg_attachment_type(c));
    }
    let _ = write!(
        sql,
        "${}::integer[]) WITH ORDINALITY AS r(",
        first + ATTACHMENT_ROW.len()
    );
    for c in ATTACHMENT_ROW {
        let _ = write!(sql, "{c}, ");
    }
    let _ = write!(
        sql,
        "nulls, n) JOIN {join} m.remote_id = r.message_remote_id ORDER BY r.n"
    );
}

/// Parameters of [`pg_page_sql`], after the [`PG_ARRAYS`] message arrays.
mod page_param {
    use super::{PG_ARRAYS, PG_ATTACHMENT_ARRAYS};

    pub(super) const ACCOUNT: usize = PG_ARRAYS + 1;
    pub(super) const FOLDER: usize = PG_ARRAYS + 2;
    pub(super) const CURSOR: usize = PG_ARRAYS + 3;
    pub(super) const RESET: usize = PG_ARRAYS + 4;
    /// The remote ids of the messages whose attachment lists are replaced.
    pub(super) const KNOWN: usize = PG_ARRAYS + 5;
    pub(super) const ATTACHMENTS: usize = PG_ARRAYS + 6;
    // Last, the parameters known only when the page is written (see
    // `pg_page_arguments`): the time of the write and the lease.
    pub(super) const NOW: usize = ATTACHMENTS + PG_ATTACHMENT_ARRAYS;
    pub(super) const OWNER: usize = NOW + 1;
    pub(super) const UNTIL: usize = OWNER + 1;
}

/// A whole sync page of upserts as ONE PostgreSQL statement, atomic without
/// `BEGIN`/`COMMIT`: data-modifying `WITH` clauses renew the lease (`lease`, when
/// fenced), store the cursor (`f`, only under the lease), upsert the messages (`m`,
/// only if `f` wrote: its rows come `FROM f`), delete the replaced attachment lists
/// (`gone`, of the messages as they were before the statement) and insert the new
/// ones (`a`, joined to `m`'s ids). Returns `leased` (with a lease), `folders` (1 if
/// the cursor was stored), `upserted`, `inserted` (the rows that were new) and
/// `reconciling` (the folder's flag after the page). One round trip instead of seven
/// (lease, folder update, folder read, upsert, delete, insert, commit).
///
/// The pages of a folder enumerated from empty, whose messages are all new, are
/// inserted by `COPY` instead ([`PgCopyRows`], see `Store::apply_page_in_one_statement`).
///
/// Parameters ([`pg_page_arguments`] encodes all but the last ones): the message
/// arrays of [`upsert_sql`], then account id, folder id, cursor, reset, the remote
/// ids whose attachment lists are known, the attachment arrays; then, added when the
/// page is written, now and, with a lease, its owner and new expiry.
///
/// The statement commits asynchronously (`synchronous_commit` off for its own
/// transaction, `durability`): it returns before its WAL is flushed to disk, as a
/// page write on SQLite (WAL, `synchronous = NORMAL`) returns without `fsync`. A
/// crash of the server's machine may lose the last pages written (about the last
/// 0.6 s), never part of one: each page lands with its cursor or not at all, and the
/// next sync fetches the lost pages again from the cursor that was kept.
pub(crate) fn pg_page_sql(lease: Option<bool>) -> String {
    use page_param::*;
    let mut sql = pg_folder_clauses(
        lease,
        FolderParams {
            account: ACCOUNT,
            folder: FOLDER,
            cursor: CURSOR,
            reset: RESET,
            now: NOW,
            owner: OWNER,
            until: UNTIL,
        },
    );
    sql.push_str(", m AS (INSERT INTO messages (account_id, folder_id, ");
    for c in ROW {
        sql.push_str(c);
        sql.push_str(", ");
    }
    sql.push_str("generation, updated_at) SELECT ");
    push_pg_rows(
        &mut sql,
        &format!("${ACCOUNT}"),
        &format!("${FOLDER}"),
        "f.generation",
        &format!("${NOW}"),
        "f, ",
    );
    push_on_conflict(&mut sql);
    // `gone` deletes the lists of the upserted messages whose list is known, by
    // message id (what `m` returns): one probe of the integer index on
    // `attachments.message_id` each. It cannot delete what `a` inserts: every part of
    // the statement sees the attachments as they were before it. Looking the ids up
    // by remote id in `messages` instead was about a tenth of the server's CPU per
    // message (perf, 1,000 text probes per page).
    //
    // Only updated messages can have a list to delete: `xmax = 0` is true of the row
    // versions the statement inserted (an updated row carries the lock its update
    // took, PostgreSQL's way of telling the two apart in `RETURNING`). An initial
    // sync then probes no index at all (the 1,000 probes a page were 5 % of the
    // server's CPU per message, perf).
    let _ = write!(
        sql,
        " RETURNING id, remote_id, xmax = 0 AS inserted), \
         gone AS (DELETE FROM attachments WHERE message_id = ANY(ARRAY(SELECT u.id \
         FROM (SELECT id, remote_id FROM m WHERE NOT inserted) AS u \
         JOIN unnest(${KNOWN}::text[]) AS k(remote_id) ON u.remote_id = k.remote_id))), \
         a AS (INSERT INTO attachments (message_id"
    );
    for c in &ATTACHMENT_ROW[1..] {
        let _ = write!(sql, ", {c}");
    }
    sql.push_str(") SELECT m.id");
    push_pg_attachment_rows(&mut sql, ATTACHMENTS, "m ON");
    sql.push_str(") SELECT ");
    if lease.is_some() {
        sql.push_str("(SELECT count(*) FROM lease) AS leased, ");
    }
    sql.push_str(
        "(SELECT count(*) FROM f) AS folders, (SELECT count(*) FROM m) AS upserted, \
         (SELECT count(*) FROM m WHERE inserted) AS inserted, \
         (SELECT bool_or(reconciling) FROM f) AS reconciling, \
         (SELECT commit FROM durability) AS synchronous_commit",
    );
    sql
}

/// The parameter numbers of [`pg_folder_clauses`].
struct FolderParams {
    account: usize,
    folder: usize,
    cursor: usize,
    reset: usize,
    now: usize,
    owner: usize,
    until: usize,
}

/// The start of a page's `WITH`, which the statement's message clauses follow:
/// `durability` (the transaction commits asynchronously, see [`pg_page_sql`]), `lease`
/// (with a lease: `renew`s it, or only reads it) and `f`, which stores the cursor
/// under the lease and returns the folder's `generation` and `reconciling` after
/// the page.
fn pg_folder_clauses(lease: Option<bool>, p: FolderParams) -> String {
    let FolderParams {
        account,
        folder,
        cursor,
        reset,
        now,
        owner,
        until,
    } = p;
    let mut sql = String::from(
        "WITH durability AS (SELECT set_config('synchronous_commit', 'off', true) AS commit), ",
    );
    let mut fence = "";
    if let Some(renew) = lease {
        sql.push_str(&pg_lease_clause(renew, account, owner, until));
        sql.push_str(", ");
        fence = " AND EXISTS (SELECT 1 FROM lease)";
    }
    let _ = write!(
        sql,
        "f AS (UPDATE folders SET cursor = ${cursor}, last_synced_at = ${now}, {reached}, \
         generation = CASE WHEN ${reset} THEN generation + 1 ELSE generation END, \
         reconciling = reconciling OR (${reset} AND EXISTS \
         (SELECT 1 FROM messages WHERE folder_id = ${folder})) \
         WHERE id = ${folder} AND account_id = ${account}{fence} RETURNING generation, reconciling)",
        reached = folder_reached_sql!(),
    );
    sql
}

/// The first statement of a page written by `COPY` ([`PgCopyRows`]), in the page's
/// transaction: the clauses of [`pg_folder_clauses`], then `leased` (with a lease),
/// `folders` (1 if the cursor was stored), the folder's `generation` (which the rows
/// take) and `reconciling`, as [`pg_page_sql`] returns them, and `ids`, one row id
/// for each message of the page (NULL if the cursor was not stored). Parameters:
/// account id, folder id, cursor, reset, now, the number of messages and, with a
/// lease, its owner and new expiry.
pub(crate) fn pg_copy_head_sql(lease: Option<bool>) -> String {
    let mut sql = pg_folder_clauses(
        lease,
        FolderParams {
            account: 1,
            folder: 2,
            cursor: 3,
            reset: 4,
            now: 5,
            owner: 7,
            until: 8,
        },
    );
    sql.push_str(" SELECT ");
    if lease.is_some() {
        sql.push_str("(SELECT count(*) FROM lease) AS leased, ");
    }
    sql.push_str(
        "(SELECT count(*) FROM f) AS folders, (SELECT max(generation) FROM f) AS generation, \
         (SELECT bool_or(reconciling) FROM f) AS reconciling, \
         (SELECT commit FROM durability) AS synchronous_commit, \
         (SELECT array_agg(nextval('messages_id_seq')) FROM generate_series(1, $6) \
         WHERE EXISTS (SELECT 1 FROM f)) AS ids",
    );
    sql
}

/// The `lease` clause of a `WITH` that fences a page write with a worker's lease
/// (parameters `$account`, `$owner`, `$until`): a row if `$owner` holds the lease.
/// With `renew`, the lease is extended to `$until` by an UPDATE; without, the row is
/// only read (the caller knows more than half the lease is left) and `$until`, still
/// bound (sqlx declares every parameter's type), is not used.
pub(crate) fn pg_lease_clause(renew: bool, account: usize, owner: usize, until: usize) -> String {
    if renew {
        format!(
            "lease AS (UPDATE accounts SET lease_expires_at = ${until} \
             WHERE id = ${account} AND lease_owner = ${owner} RETURNING id)"
        )
    } else {
        format!(
            "lease AS (SELECT id FROM accounts WHERE id = ${account} AND lease_owner = ${owner})"
        )
    }
}

/// `folders.reconciling` after a reset page of `folder_id`, on both databases: an
/// enumeration that was already reconciling still is; a new one reconciles only if
/// the folder holds messages (before the page's own, which the same statement or a
/// later one of the transaction writes). Rows moved in from another folder during
/// the enumeration take this folder's new generation, so a folder that was empty at
/// the reset has no stale row at its end. [`pg_page_sql`] says the same in SQL.
pub(crate) fn reconciling_after_reset(folder_id: i64) -> sea_orm::sea_query::Expr {
    sea_orm::sea_query::Expr::cust(format!(
        "reconciling OR EXISTS (SELECT 1 FROM messages WHERE folder_id = {folder_id})"
    ))
}

/// The parameters of the page statement ([`pg_page_sql`]) encoded by sqlx, the
/// message and attachment text borrowed from the records while they are encoded: a
/// sea-orm `Statement` clones every parameter (the whole page) before sqlx encodes
/// it, after [`PgColumns::into_values`] copied each field into a `String` —
/// allocation and copying were at the top of the client's profile, on the critical
/// path of a PostgreSQL sync. The columns are built as for a chunk ([`PgColumns`],
/// [`PgAttachmentColumns`]) and encoded borrowed. The parameters [`pg_page_sql`]
/// lists, in its order, up to and without `now`: the writer adds `now` and the
/// lease when it sends them. `None` when `messages` do not
/// fit one chunk (the caller takes the transaction); else the arguments (or the
/// encoding's error) and the size of the rows (see [`Chunk::bytes`]).
pub(crate) fn pg_page_arguments<'q>(
    messages: &'q [&'q Message],
    account_id: i64,
    folder_id: i64,
    cursor: &'q str,
    reset: bool,
    known: &[&'q Message],
) -> Option<(PgArgumentsResult, usize)> {
    let c = PgColumns::of_page(messages)?;
    let bytes = c.bytes;
    // In the order of ROW, then the null masks (as `PgColumns::into_values`).
    // The query only encodes: its text is the writer's (see `pg_page_sql`).
    let query = sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(""))
        .bind(c.remote_id)
        .bind(c.message_id)
        .bind(c.subject)
        .bind(c.sender_name)
        .bind(c.sender_address)
        .bind(c.to)
        .bind(c.cc)
        .bind(c.date_received)
        .bind(c.sent_at)
        .bind(c.body)
        .bind(c.is_read)
        .bind(c.is_draft)
        .bind(c.has_attachments)
        .bind(c.counts)
        .bind(c.conversation_id)
        .bind(c.warnings)
        .bind(c.nulls)
        .bind(account_id)
        .bind(folder_id)
        .bind(cursor)
        .bind(reset)
        .bind(
            known
                .iter()
                .map(|m| m.remote_id.as_str())
                .collect::<Vec<_>>(),
        );
    // The attachment arrays, as `pg_attachment_arrays`.
    let a = PgAttachmentColumns::of(known.iter().copied());
    let [a_remote_id, name, content_type, content_id] = a.texts;
    let mut query = query
        .bind(a.message_remote_id)
        .bind(a.ordinal)
        .bind(a_remote_id)
        .bind(name)
        .bind(content_type)
        .bind(a.size)
        .bind(a.is_inline)
        .bind(content_id)
        .bind(a.nulls);
    let arguments = sea_orm::sqlx::Execute::take_arguments(&mut query)
        .map_err(|e| e.to_string())
        .map(Option::unwrap_or_default);
    Some((arguments, bytes))
}

/// `COPY messages … FROM STDIN` in binary, the columns of a [`PgCopyRows`] message.
pub(crate) fn pg_copy_messages_sql() -> String {
    let mut sql = String::from("COPY messages (id, account_id, folder_id, ");
    for c in ROW {
        sql.push_str(c);
        sql.push_str(", ");
    }
    sql.push_str("generation, updated_at) FROM STDIN (FORMAT binary)");
    sql
}

/// `COPY attachments … FROM STDIN` in binary, the columns of a [`PgCopyRows`]
/// attachment: [`ATTACHMENT_ROW`], the message named by its row id.
pub(crate) fn pg_copy_attachments_sql() -> String {
    let mut sql = String::from("COPY attachments (message_id");
    for c in &ATTACHMENT_ROW[1..] {
        let _ = write!(sql, ", {c}");
    }
    sql.push_str(") FROM STDIN (FORMAT binary)");
    sql
}

/// Binary `COPY` data, written field by field.
struct CopyData(Vec<u8>);

impl CopyData {
    fn with_capacity(cap: usize) -> Self {
        let mut data = Vec::with_capacity(19 + cap + 2);
        // Signature, flags, header extension length.
        data.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        data.extend_from_slice(&0_i32.to_be_bytes());
        data.extend_from_slice(&0_i32.to_be_bytes());
        CopyData(data)
    }

    fn row(&mut self, fields: i16) {
        self.0.extend_from_slice(&fields.to_be_bytes());
    }

    fn field(&mut self, value: &[u8]) -> Result<()> {
        let len = i32::try_from(value.len())
            .map_err(|_| Error::Invalid(format!("a field of {} bytes", value.len())))?;
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(value);
        Ok(())
    }

    fn null(&mut self) {
        self.0.extend_from_slice(&(-1_i32).to_be_bytes());
    }

    /// `value`, or NULL if `null`.
    fn text(&mut self, value: &str, null: bool) -> Result<()> {
        if null {
            self.null();
            Ok(())
        } else {
            self.field(value.as_bytes())
        }
    }

    /// An 8-byte field written later ([`PgCopyRows::stamp`]): where its value is.
    fn placeholder(&mut self) -> usize {
        self.0.extend_from_slice(&8_i32.to_be_bytes());
        self.0.extend_from_slice(&[0; 8]);
        self.0.len() - 8
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&(-1_i16).to_be_bytes());
        self.0
    }
}

/// A page's message and attachment rows in PostgreSQL's binary `COPY` format, for
/// [`pg_copy_messages_sql`] and [`pg_copy_attachments_sql`]: how the pages of a folder
/// enumerated from empty are inserted. `COPY` stores a page's rows a heap page at a
/// time (one WAL record each, where an `INSERT` writes one per row) and reads each
/// field straight into its column, where the page statement builds seventeen arrays
/// and unnests them: from one client (psycopg), 7.5 against 11.9 µs of server CPU per
/// Graph-shaped row (docs/benchmarks.md). What is known only once the folder's row is
/// updated — the rows' ids (taken from `messages_id_seq`, so that attachments can name
/// their message), the folder's generation and the time of the write —
/// [`PgCopyRows::stamp`] writes in place.
pub(crate) struct PgCopyRows {
    messages: Vec<u8>,
    /// Where each message's id, generation and time of update are.
    stamps: Vec<[usize; 3]>,
    /// Empty when no message lists an attachment.
    attachments: Vec<u8>,
    /// Where each attachment's message id is, and the index of its message.
    attachment_stamps: Vec<(usize, usize)>,
    /// The size of the rows, as [`Chunk::bytes`].
    pub(crate) bytes: usize,
}

impl PgCopyRows {
    /// The rows of `messages` (each once) and of their attachments; `None` if they do
    /// not fit one chunk (as [`pg_page_arguments`]).
    pub(crate) fn of(
        messages: &[&Message],
        account_id: i64,
        folder_id: i64,
    ) -> Option<std::result::Result<Self, String>> {
        let columns = PgColumns::of_page(messages)?;
        let attachments = PgAttachmentColumns::of(messages.iter().copied());
        Some(Self::encode(&columns, &attachments, account_id, folder_id).map_err(|e| e.to_string()))
    }

    fn encode(
        c: &PgColumns<'_>,
        a: &PgAttachmentColumns<'_>,
        account_id: i64,
        folder_id: i64,
    ) -> Result<Self> {
        // Fields of a message: id, account, folder, ROW, generation, updated_at.
        const FIELDS: i16 = ROW.len() as i16 + 5;
        let rows = c.nulls.len();
        let mut data = CopyData::with_capacity(c.bytes + rows * (FIELDS as usize * 4 + 64));
        let mut stamps = Vec::with_capacity(rows);
        for i in 0..rows {
            // Bit `1 << n` of `null`: field n of ROW is NULL.
            let null = |n: usize| c.nulls[i] & 1 << n != 0;
            data.row(FIELDS);
            let id = data.placeholder();
            data.field(&account_id.to_be_bytes())?;
            data.field(&folder_id.to_be_bytes())?;
            data.text(c.remote_id[i], false)?;
            data.text(c.message_id[i], null(1))?;
            data.text(c.subject[i], null(2))?;
            data.text(c.sender_name[i], null(3))?;
            data.text(c.sender_address[i], null(4))?;
            data.text(&c.to[i], false)?;
            data.text(&c.cc[i], false)?;
            for (n, t) in [(7, &c.date_received[i]), (8, &c.sent_at[i])] {
                if null(n) {
                    data.null();
                } else {
                    data.field(&pg_micros(t)?.to_be_bytes())?;
                }
            }
            data.text(c.body[i], null(9))?;
            for flag in [c.is_read[i], c.is_draft[i], c.has_attachments[i]] {
                data.field(&[u8::from(flag)])?;
            }
            data.field(&c.counts[i].to_be_bytes())?;
            data.text(c.conversation_id[i], null(14))?;
            data.text(&c.warnings[i], false)?;
            let generation = data.placeholder();
            let updated_at = data.placeholder();
            stamps.push([id, generation, updated_at]);
        }
        let mut rows = PgCopyRows {
            messages: data.finish(),
            stamps,
            attachments: Vec::new(),
            attachment_stamps: Vec::new(),
            bytes: c.bytes,
        };
        rows.encode_attachments(a)?;
        Ok(rows)
    }

    fn encode_attachments(&mut self, a: &PgAttachmentColumns<'_>) -> Result<()> {
        let rows = a.nulls.len();
        if rows == 0 {
            return Ok(());
        }
        let mut data = CopyData::with_capacity(rows * 128);
        let stamps = &mut self.attachment_stamps;
        let [remote_id, name, content_type, content_id] = &a.texts;
        for i in 0..rows {
            // Bit `1 << n` of `null`: field n of ATTACHMENT_ROW is NULL.
            let null = |n: usize| a.nulls[i] & 1 << n != 0;
            data.row(ATTACHMENT_ROW.len() as i16);
            stamps.push((data.placeholder(), a.message[i]));
            data.field(&a.ordinal[i].to_be_bytes())?;
            data.text(remote_id[i], null(2))?;
            data.text(name[i], null(3))?;
            data.text(content_type[i], null(4))?;
            data.field(&a.size[i].to_be_bytes())?;
            data.field(&[u8::from(a.is_inline[i])])?;
            data.text(content_id[i], null(7))?;
        }
        self.attachments = data.finish();
        Ok(())
    }

    /// How many messages.
    pub(crate) fn messages(&self) -> usize {
        self.stamps.len()
    }

    /// Gives the messages their `ids` (one each, in order), the folder's `generation`
    /// and `now` as their time of update, and the attachments their message's id.
    pub(crate) fn stamp(
        &mut self,
        ids: &[i64],
        generation: i64,
        now: &DateTime<Utc>,
    ) -> Result<()> {
        if ids.len() != self.stamps.len() {
            return Err(Error::Invalid(format!(
                "{} ids for {} messages",
                ids.len(),
                self.stamps.len()
            )));
        }
        let now = pg_micros(now)?.to_be_bytes();
        for (&[id, g, t], n) in self.stamps.iter().zip(ids) {
            self.messages[id..id + 8].copy_from_slice(&n.to_be_bytes());
            self.messages[g..g + 8].copy_from_slice(&generation.to_be_bytes());
            self.messages[t..t + 8].copy_from_slice(&now);
        }
        for &(at, message) in &self.attachment_stamps {
            self.attachments[at..at + 8].copy_from_slice(&ids[message].to_be_bytes());
        }
        Ok(())
    }

    /// The messages' `COPY` data.
    pub(crate) fn message_data(&self) -> &[u8] {
        &self.messages
    }

    /// The attachments' `COPY` data; `None` if there are none.
    pub(crate) fn attachment_data(&self) -> Option<&[u8]> {
        (!self.attachments.is_empty()).then_some(&self.attachments[..])
    }
}

/// What [`pg_page_arguments`] encodes: sqlx's arguments, or why encoding failed.
pub(crate) type PgArgumentsResult =
    std::result::Result<sea_orm::sqlx::postgres::PgArguments, String>;

/// The [`PG_ATTACHMENT_ARRAYS`] arrays of the attachment rows of `messages`.
fn pg_attachment_arrays<'a>(messages: impl Iterator<Item = &'a Message>) -> Vec<sea_orm::Value> {
    let owned = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<String>>();
    let c = PgAttachmentColumns::of(messages);
    let [remote_id, name, content_type, content_id] = c.texts.map(owned);
    vec![
        owned(c.message_remote_id).into(),
        c.ordinal.into(),
        remote_id.into(),
        name.into(),
        content_type.into(),
        c.size.into(),
        c.is_inline.into(),
        content_id.into(),
        c.nulls.into(),
    ]
}

/// A timestamp as the driver would have sent it.
fn timestamp_text(flavor: Flavor, t: &DateTime<Utc>) -> Result<String> {
    Ok(match flavor {
        Flavor::Sqlite => sqlite_timestamp(t),
        Flavor::Postgres => pg_timestamp(t)?,
    })
}

/// What sqlx-sqlite binds for a `DateTime<Utc>`: `t.to_rfc3339_opts(SecondsFormat::AutoSi,
/// false)`, written here digit by digit for the years 0 to 9999 (chrono's formatter was
/// a sixth of the row encoding in the sync profile), by chrono otherwise.
fn sqlite_timestamp(t: &DateTime<Utc>) -> String {
    // The UTC fields: `DateTime`'s own accessors convert to local time on every call.
    let t = t.naive_utc();
    let (year, nanos) = (t.year(), t.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return t.and_utc().to_rfc3339_opts(SecondsFormat::AutoSi, false);
    }
    let mut text = *b"0000-00-00T00:00:00.000000000+00:00";
    let fields = [
        (0..4, year.unsigned_abs()),
        (5..7, t.month()),
        (8..10, t.day()),
        (11..13, t.hour()),
        (14..16, t.minute()),
        (17..19, t.second()),
    ];
    for (range, n) in fields {
        put_digits(&mut text[range], n);
    }
    let fraction = match nanos {
        0 => 0,
        n if n % 1_000_000 == 0 => 3,
        n if n % 1_000 == 0 => 6,
        _ => 9,
    };
    put_digits(&mut text[20..29], nanos);
    let mut out = Vec::with_capacity(35);
    out.extend_from_slice(&text[..19]);
    if fraction > 0 {
        out.extend_from_slice(&text[19..20 + fraction]);
    }
    out.extend_from_slice(&text[29..]);
    String::from_utf8(out).expect("ASCII digits")
}

/// Writes `n` in decimal into `out`, zero-padded (the digits that do not fit are lost).
fn put_digits(out: &mut [u8], mut n: u32) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// PostgreSQL's epoch, 2000-01-01 00:00 UTC.
fn pg_epoch() -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("2000-01-01 exists")
}

/// `t` as PostgreSQL's binary `timestamptz` and as sqlx encodes it: microseconds since
/// 2000-01-01, cut toward zero.
fn pg_micros(t: &DateTime<Utc>) -> Result<i64> {
    (t.naive_utc() - pg_epoch())
        .num_microseconds()
        .ok_or_else(|| Error::Invalid(format!("timestamp {t} is out of range for PostgreSQL")))
}

/// PostgreSQL text for `t`: sqlx sends microseconds since 2000-01-01, cut toward zero
/// (`TimeDelta::num_microseconds`); the text says the same instant. Years before 1 are
/// written with `BC`, as PostgreSQL reads them.
pub(crate) fn pg_timestamp(t: &DateTime<Utc>) -> Result<String> {
    let cut = pg_epoch() + chrono::TimeDelta::microseconds(pg_micros(t)?);
    let (year, bc) = if cut.year() >= 1 {
        (cut.year(), "")
    } else {
        (1 - cut.year(), " BC")
    };
    Ok(format!(
        "{year:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00{bc}",
        cut.month(),
        cut.day(),
        cut.hour(),
        cut.minute(),
        cut.second(),
        cut.nanosecond() / 1000,
    ))
}

/// The JSON text of `items` (most lists are empty: warnings, often cc), as
/// `serde_json::to_string` writes it, written here: serde_json escapes a string byte
/// by byte, and these lists were 2 % of a Graph initial sync's instructions.
fn json_list<T: JsonItem>(items: &[T]) -> String {
    if items.is_empty() {
        return "[]".to_owned();
    }
    let mut out = String::with_capacity(2 + items.len() * 64);
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        item.push_json(&mut out);
    }
    out.push(']');
    out
}

/// An item of [`json_list`], written as serde_json writes its `Serialize` form.
trait JsonItem {
    fn push_json(&self, out: &mut String);
}

impl JsonItem for String {
    fn push_json(&self, out: &mut String) {
        push_json_str(out, Some(self));
    }
}

impl JsonItem for mailroom_core::EmailAddress {
    fn push_json(&self, out: &mut String) {
        out.push_str("{\"name\":");
        push_json_str(out, self.name.as_deref());
        out.push_str(",\"address\":");
        push_json_str(out, self.address.as_deref());
        out.push('}');
    }
}

/// A JSON string (or `null`): as it is between quotes when nothing in it needs an
/// escape, the usual case; by serde_json otherwise.
fn push_json_str(out: &mut String, s: Option<&str>) {
    match s {
        None => out.push_str("null"),
        Some(s) if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        Some(s) => out.push_str(&serde_json::to_string(s).expect("a string serializes")),
    }
}

/// The fields of the row of `m`, in the order of [`ROW`].
fn row_fields(flavor: Flavor, m: &Message) -> Result<[Field<'_>; ROW.len()]> {
    let timestamp = |t: Option<&DateTime<Utc>>| -> Result<Field<'static>> {
        Ok(match t {
            Some(t) => Field::Text(timestamp_text(flavor, t)?.into()),
            None => Field::Null,
        })
    };
    let sender = m.sender.as_ref();
    Ok([
        Field::Text(m.remote_id.as_str().into()),
        Field::text(m.message_id.as_deref()),
        Field::text(m.subject.as_deref()),
        Field::text(sender.and_then(|s| s.name.as_deref())),
        Field::text(sender.and_then(|s| s.address.as_deref())),
        Field::Text(json_list(&m.to).into()),
        Field::Text(json_list(&m.cc).into()),
        timestamp(m.date_received.as_ref())?,
        timestamp(m.sent_at.as_ref())?,
        Field::text(m.body.as_deref()),
        Field::Bool(m.is_read),
        Field::Bool(m.is_draft),
        Field::Bool(m.has_attachments),
        Field::Int(i64::from(m.attachment_count.min(i32::MAX as u32))),
        Field::text(m.conversation_id.as_deref()),
        Field::Text(json_list(&m.warnings).into()),
    ])
}

/// One field of a row, as the database stores it.
#[derive(Debug)]
pub(crate) enum Field<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Text(Cow<'a, str>),
}

impl<'a> Field<'a> {
    /// A borrowed text, NULL for `None`.
    fn text(t: Option<&'a str>) -> Self {
        t.map_or(Field::Null, |t| Field::Text(t.into()))
    }
}

/// A chunk of messages encoded for one statement.
pub(crate) struct Chunk<'a> {
    /// The messages, in order.
    pub messages: &'a [&'a Message],
    /// SQLite: the token of the rows `mailroom_rows` reads. PostgreSQL: [`PG_ARRAYS`]
    /// column arrays.
    pub rows: Vec<sea_orm::Value>,
    /// The size of `rows`: about what the chunk adds to the WAL.
    pub bytes: usize,
    /// SQLite: the rows, readable until the chunk is dropped.
    _registered: Option<Registered>,
}

/// Encodes the next chunk of `messages` (at most [`SQLITE_ROWS_PER_STATEMENT`] rows
/// on SQLite, [`MAX_ROWS`] on PostgreSQL, cut after [`MAX_BYTES`]); `None` when none
/// are left.
pub(crate) fn next_chunk<'a>(
    flavor: Flavor,
    messages: &mut &'a [&'a Message],
) -> Option<Result<Chunk<'a>>> {
    if messages.is_empty() {
        return None;
    }
    let max_rows = match flavor {
        Flavor::Sqlite => SQLITE_ROWS_PER_STATEMENT,
        Flavor::Postgres => MAX_ROWS,
    };
    let encoded = match flavor {
        Flavor::Sqlite => sqlite_rows(messages, max_rows),
        Flavor::Postgres => {
            postgres_rows(messages, max_rows).map(|(n, rows, bytes)| (n, rows, bytes, None))
        }
    };
    let (n, rows, bytes, registered) = match encoded {
        Ok(encoded) => encoded,
        Err(e) => return Some(Err(e)),
    };
    let (taken, rest) = messages.split_at(n);
    *messages = rest;
    Some(Ok(Chunk {
        messages: taken,
        rows,
        bytes,
        _registered: registered,
    }))
}

/// The rows of the first messages (at least one) registered for `mailroom_rows`: the
/// token parameter, how many, their size, and the registration.
fn sqlite_rows(
    messages: &[&Message],
    max_rows: usize,
) -> Result<(usize, Vec<sea_orm::Value>, usize, Option<Registered>)> {
    let n = messages.len().min(max_rows);
    let mut rows = Rows::with_capacity(ROW.len(), n, n * 2048);
    for m in messages.iter().take(max_rows) {
        if rows.text_len() >= MAX_BYTES {
            break;
        }
        for field in row_fields(Flavor::Sqlite, m)? {
            rows.push(field);
        }
    }
    let (n, bytes) = (rows.len(), rows.text_len());
    let registered = Registered::new(rows);
    Ok((n, vec![registered.param()], bytes, Some(registered)))
}

/// The column arrays of the first messages (at least one, see [`PG_ARRAYS`]), how
/// many, and the size of their text.
fn postgres_rows(
    messages: &[&Message],
    max_rows: usize,
) -> Result<(usize, Vec<sea_orm::Value>, usize)> {
    let (columns, n) = PgColumns::leading(messages, max_rows);
    let bytes = columns.bytes;
    Ok((n, columns.into_values(), bytes))
}

/// The columns of a PostgreSQL chunk, in the order of [`ROW`], the text borrowed from the
/// records.
struct PgColumns<'a> {
    remote_id: Vec<&'a str>,
    message_id: Vec<&'a str>,
    subject: Vec<&'a str>,
    sender_name: Vec<&'a str>,
    sender_address: Vec<&'a str>,
    /// JSON lists.
    to: Vec<String>,
    cc: Vec<String>,
    date_received: Vec<DateTime<Utc>>,
    sent_at: Vec<DateTime<Utc>>,
    body: Vec<&'a str>,
    is_read: Vec<bool>,
    is_draft: Vec<bool>,
    has_attachments: Vec<bool>,
    counts: Vec<i32>,
    conversation_id: Vec<&'a str>,
    /// A JSON list.
    warnings: Vec<String>,
    /// Bit `1 << i` set: field `i` of [`ROW`] is NULL.
    nulls: Vec<i32>,
    bytes: usize,
}

impl<'a> PgColumns<'a> {
    fn with_capacity(cap: usize) -> Self {
        PgColumns {
            remote_id: Vec::with_capacity(cap),
            message_id: Vec::with_capacity(cap),
            subject: Vec::with_capacity(cap),
            sender_name: Vec::with_capacity(cap),
            sender_address: Vec::with_capacity(cap),
            to: Vec::with_capacity(cap),
            cc: Vec::with_capacity(cap),
            date_received: Vec::with_capacity(cap),
            sent_at: Vec::with_capacity(cap),
            body: Vec::with_capacity(cap),
            is_read: Vec::with_capacity(cap),
            is_draft: Vec::with_capacity(cap),
            has_attachments: Vec::with_capacity(cap),
            counts: Vec::with_capacity(cap),
            conversation_id: Vec::with_capacity(cap),
            warnings: Vec::with_capacity(cap),
            nulls: Vec::with_capacity(cap),
            bytes: 0,
        }
    }

    /// The columns of the first of `messages` that make a chunk (the rule of
    /// `next_chunk`: rows are added while the chunk holds fewer than `max_rows` and
    /// [`MAX_BYTES`]), and how many.
    fn leading(messages: &[&'a Message], max_rows: usize) -> (Self, usize) {
        let mut columns = PgColumns::with_capacity(messages.len().min(max_rows));
        let mut n = 0;
        while n < messages.len() && n < max_rows && columns.bytes < MAX_BYTES {
            columns.push(messages[n]);
            n += 1;
        }
        (columns, n)
    }

    /// The columns of `messages`; `None` if they do not fit one chunk.
    fn of_page(messages: &[&'a Message]) -> Option<Self> {
        let (columns, n) = Self::leading(messages, MAX_ROWS);
        (n == messages.len()).then_some(columns)
    }

    fn push(&mut self, m: &'a Message) {
        let mut nulls = 0;
        let mut bytes = 0;
        // Field `field` of ROW, NULL if `t` is None (sent as "").
        let mut text = |column: &mut Vec<&'a str>, field: usize, t: Option<&'a str>| {
            if t.is_none() {
                nulls |= 1 << field;
            }
            let t = t.unwrap_or_default();
            bytes += t.len();
            column.push(t);
        };
        let sender = m.sender.as_ref();
        text(&mut self.remote_id, 0, Some(m.remote_id.as_str()));
        text(&mut self.message_id, 1, m.message_id.as_deref());
        text(&mut self.subject, 2, m.subject.as_deref());
        text(
            &mut self.sender_name,
            3,
            sender.and_then(|s| s.name.as_deref()),
        );
        text(
            &mut self.sender_address,
            4,
            sender.and_then(|s| s.address.as_deref()),
        );
        text(&mut self.body, 9, m.body.as_deref());
        text(&mut self.conversation_id, 14, m.conversation_id.as_deref());
        for (column, list) in [
            (&mut self.to, json_list(&m.to)),
            (&mut self.cc, json_list(&m.cc)),
            (&mut self.warnings, json_list(&m.warnings)),
        ] {
            bytes += list.len();
            column.push(list);
        }
        for (column, field, t) in [
            (&mut self.date_received, 7, m.date_received),
            (&mut self.sent_at, 8, m.sent_at),
        ] {
            if t.is_none() {
                nulls |= 1 << field;
            }
            column.push(t.unwrap_or_default());
        }
        self.is_read.push(m.is_read);
        self.is_draft.push(m.is_draft);
        self.has_attachments.push(m.has_attachments);
        self.counts
            .push(i32::try_from(m.attachment_count).unwrap_or(i32::MAX));
        self.nulls.push(nulls);
        self.bytes += bytes;
    }

    /// The arrays in the order of [`ROW`], then the null masks, as sea-orm values
    /// (owned text).
    fn into_values(self) -> Vec<sea_orm::Value> {
        let owned = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<String>>();
        vec![
            owned(self.remote_id).into(),
            owned(self.message_id).into(),
            owned(self.subject).into(),
            owned(self.sender_name).into(),
            owned(self.sender_address).into(),
            self.to.into(),
            self.cc.into(),
            self.date_received.into(),
            self.sent_at.into(),
            owned(self.body).into(),
            self.is_read.into(),
            self.is_draft.into(),
            self.has_attachments.into(),
            self.counts.into(),
            owned(self.conversation_id).into(),
            self.warnings.into(),
            self.nulls.into(),
        ]
    }
}

/// The attachment rows of some messages as PostgreSQL arrays ([`PG_ATTACHMENT_ARRAYS`]
/// of them), the text borrowed from the records.
#[derive(Default)]
struct PgAttachmentColumns<'a> {
    message_remote_id: Vec<&'a str>,
    /// The position of the attachment's message among those given to `of`.
    message: Vec<usize>,
    ordinal: Vec<i32>,
    /// remote_id, name, content_type, content_id.
    texts: [Vec<&'a str>; 4],
    size: Vec<i64>,
    is_inline: Vec<bool>,
    nulls: Vec<i32>,
}

impl<'a> PgAttachmentColumns<'a> {
    fn of(messages: impl Iterator<Item = &'a Message>) -> Self {
        let mut c = PgAttachmentColumns::default();
        for (position, m) in messages.enumerate() {
            for (i, a) in m.attachments.iter().enumerate() {
                c.message_remote_id.push(m.remote_id.as_str());
                c.message.push(position);
                c.ordinal.push(i32::try_from(i).unwrap_or(i32::MAX));
                let mut mask = 0;
                // remote_id, name, content_type, content_id: fields 2, 3, 4 and 7.
                for (slot, (field, t)) in [
                    (2, a.remote_id.as_deref()),
                    (3, a.name.as_deref()),
                    (4, a.content_type.as_deref()),
                    (7, a.content_id.as_deref()),
                ]
                .into_iter()
                .enumerate()
                {
                    if t.is_none() {
                        mask |= 1 << field;
                    }
                    c.texts[slot].push(t.unwrap_or_default());
                }
                c.size.push(i64::try_from(a.size).unwrap_or(i64::MAX));
                c.is_inline.push(a.is_inline);
                c.nulls.push(mask);
            }
        }
        c
    }
}

/// The parameters of [`upsert_sql`] for `chunk`.
pub(crate) fn upsert_values(
    flavor: Flavor,
    chunk_rows: Vec<sea_orm::Value>,
    account_id: i64,
    folder_id: i64,
    generation: i64,
    now: DateTime<Utc>,
) -> Vec<sea_orm::Value> {
    let shared = [
        account_id.into(),
        folder_id.into(),
        generation.into(),
        now.into(),
    ];
    match flavor {
        Flavor::Sqlite => shared.into_iter().chain(chunk_rows).collect(),
        Flavor::Postgres => chunk_rows.into_iter().chain(shared).collect(),
    }
}

/// The remote ids of `messages` as one parameter: on SQLite the token of the ids
/// `mailroom_rows` reads (one column), registered while the second value lives; on
/// PostgreSQL a `text[]`.
pub(crate) fn remote_ids<'a>(
    flavor: Flavor,
    messages: impl Iterator<Item = &'a Message>,
) -> (sea_orm::Value, Option<Registered>) {
    let ids: Vec<&str> = messages.map(|m| m.remote_id.as_str()).collect();
    match flavor {
        Flavor::Sqlite => {
            let mut rows = Rows::with_capacity(1, ids.len(), ids.iter().map(|i| i.len()).sum());
            for id in ids {
                rows.push(Field::Text(id.into()));
            }
            let registered = Registered::new(rows);
            (registered.param(), Some(registered))
        }
        Flavor::Postgres => (
            ids.into_iter()
                .map(str::to_owned)
                .collect::<Vec<String>>()
                .into(),
            None,
        ),
    }
}

/// The parameters of the [`insert_attachments_sql`] statement that stores the
/// attachment rows of `messages` (see [`ATTACHMENT_ROW`]), with (SQLite) the rows they
/// name; `None` without attachments.
pub(crate) fn attachment_statement<'a>(
    flavor: Flavor,
    messages: impl Iterator<Item = &'a Message> + Clone,
    account_id: i64,
) -> Option<(Vec<sea_orm::Value>, Option<Registered>)> {
    if messages.clone().all(|m| m.attachments.is_empty()) {
        return None;
    }
    match flavor {
        Flavor::Sqlite => {
            let mut table = Rows::with_capacity(ATTACHMENT_ROW.len(), 0, 0);
            for m in messages {
                for (i, a) in m.attachments.iter().enumerate() {
                    for field in [
                        Field::Text(m.remote_id.as_str().into()),
                        Field::Int(i as i64),
                        Field::text(a.remote_id.as_deref()),
                        Field::text(a.name.as_deref()),
                        Field::text(a.content_type.as_deref()),
                        Field::Int(a.size.min(i64::MAX as u64) as i64),
                        Field::Bool(a.is_inline),
                        Field::text(a.content_id.as_deref()),
                    ] {
                        table.push(field);
                    }
                }
            }
            let registered = Registered::new(table);
            Some((
                vec![registered.param(), account_id.into()],
                Some(registered),
            ))
        }
        Flavor::Postgres => {
            let mut values = pg_attachment_arrays(messages);
            values.push(account_id.into());
            Some((values, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use mailroom_core::EmailAddress;

    use super::*;

    #[test]
    fn postgres_timestamps_are_cut_like_sqlx() {
        let check = |t: DateTime<Utc>, expected: &str| {
            assert_eq!(pg_timestamp(&t).unwrap(), expected, "{t:?}");
        };
        let t = Utc.with_ymd_and_hms(2025, 1, 20, 11, 30, 5).unwrap();
        check(t, "2025-01-20 11:30:05.000000+00");
        check(
            t + chrono::TimeDelta::nanoseconds(123_456_789),
            "2025-01-20 11:30:05.123456+00",
        );
        // Before 2000 the cut goes toward 2000, as num_microseconds does.
        let old = Utc.with_ymd_and_hms(1969, 7, 20, 20, 17, 40).unwrap();
        check(
            old + chrono::TimeDelta::nanoseconds(999),
            "1969-07-20 20:17:40.000001+00",
        );
        check(
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            "0001-01-01 00:00:00.000000+00",
        );
        check(
            Utc.with_ymd_and_hms(-43, 3, 15, 12, 0, 0).unwrap(),
            "0044-03-15 12:00:00.000000+00 BC",
        );
        check(
            Utc.with_ymd_and_hms(12345, 6, 7, 8, 9, 10).unwrap(),
            "12345-06-07 08:09:10.000000+00",
        );
    }

    #[test]
    fn sqlite_timestamps_are_what_sqlx_binds() {
        let check = |t: DateTime<Utc>| {
            assert_eq!(
                sqlite_timestamp(&t),
                t.to_rfc3339_opts(SecondsFormat::AutoSi, false),
                "{t:?}"
            );
        };
        let t = Utc.with_ymd_and_hms(2025, 1, 20, 11, 30, 5).unwrap();
        for nanos in [
            0,
            1,
            999,
            1_000,
            120_000,
            123_456,
            5_000_000,
            123_456_789,
            999_999_999,
        ] {
            check(t + chrono::TimeDelta::nanoseconds(nanos));
        }
        for (y, mo, d, h, mi, s) in [
            (1, 1, 1, 0, 0, 0),
            (0, 12, 31, 23, 59, 59),
            (999, 2, 3, 4, 5, 6),
            (9999, 12, 31, 23, 59, 59),
            (10_000, 1, 1, 0, 0, 0),
            (-1, 6, 15, 12, 0, 0),
            (-43, 3, 15, 12, 0, 0),
            (1970, 1, 1, 0, 0, 0),
        ] {
            check(Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap());
        }
        // A leap second.
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
            .unwrap()
            .and_utc();
        check(leap);
    }

    #[test]
    fn json_lists_are_what_serde_json_writes() {
        let empty: [String; 0] = [];
        assert_eq!(json_list(&empty), serde_json::to_string(&empty).unwrap());
        let warnings = ["unreadable \"date\"".to_owned()];
        assert_eq!(json_list(&warnings), r#"["unreadable \"date\""]"#);
        let texts = [
            "",
            "Zoë Brontë",
            "a\"b",
            "back\\slash",
            "tab\tnew\nline\r",
            "\u{1}\u{1f}\u{7f}",
            "東京 😀",
            "</script>",
        ];
        let addresses: Vec<EmailAddress> = texts
            .iter()
            .flat_map(|t| {
                [
                    EmailAddress::new(Some((*t).to_owned()), Some(format!("{t}@example.com"))),
                    EmailAddress::new(None, Some((*t).to_owned())),
                    EmailAddress::new(Some((*t).to_owned()), None),
                ]
            })
            .chain([EmailAddress::default()])
            .collect();
        for n in [1, 2, addresses.len()] {
            let list = &addresses[..n];
            assert_eq!(json_list(list), serde_json::to_string(list).unwrap());
        }
        for t in texts {
            let list = [t.to_owned(), "second".to_owned()];
            assert_eq!(json_list(&list), serde_json::to_string(&list).unwrap());
        }
    }

    #[test]
    fn statements_name_every_column_once() {
        for flavor in [Flavor::Sqlite, Flavor::Postgres] {
            let sql = upsert_sql(flavor);
            for c in ROW {
                let updated = sql.contains(&format!("{c} = excluded.{c}"));
                assert_eq!(
                    updated,
                    !matches!(c, "remote_id" | "attachment_count"),
                    "{c}"
                );
            }
            assert!(sql.contains("attachment_count = CASE"));
            assert!(insert_attachments_sql(flavor).contains("content_id"));
        }
    }

    #[test]
    fn chunks_are_cut_by_rows_and_bytes() {
        let small = Message {
            remote_id: "a".into(),
            ..Default::default()
        };
        let big = Message {
            body: Some("x".repeat(MAX_BYTES)),
            ..small.clone()
        };
        let list: Vec<&Message> = [&big, &small, &small]
            .into_iter()
            .chain(std::iter::repeat_n(&small, MAX_ROWS + 1))
            .collect();
        let sizes = |flavor| {
            let mut rest = &list[..];
            let mut sizes = Vec::new();
            while let Some(chunk) = next_chunk(flavor, &mut rest) {
                let chunk = chunk.unwrap();
                let rows = match flavor {
                    Flavor::Sqlite => {
                        assert_eq!(chunk.rows.len(), 1, "the token");
                        chunk
                            ._registered
                            .as_ref()
                            .map_or(0, crate::vtab::Registered::rows)
                    }
                    Flavor::Postgres => {
                        assert_eq!(chunk.rows.len(), PG_ARRAYS);
                        let sea_orm::Value::Array(_, Some(ids)) = &chunk.rows[0] else {
                            panic!("an array of remote ids: {:?}", chunk.rows[0]);
                        };
                        ids.len()
                    }
                };
                assert_eq!(rows, chunk.messages.len());
                sizes.push(rows);
            }
            sizes
        };
        // The big record alone, then the 1,003 small ones in full statements.
        let s = SQLITE_ROWS_PER_STATEMENT;
        let mut sqlite = vec![1];
        sqlite.extend(std::iter::repeat_n(s, (MAX_ROWS + 3) / s));
        sqlite.push((MAX_ROWS + 3) % s);
        sqlite.retain(|&n| n > 0);
        assert_eq!(sizes(Flavor::Sqlite), sqlite);
        assert_eq!(sizes(Flavor::Postgres), [1, MAX_ROWS, 3]);
    }
}
