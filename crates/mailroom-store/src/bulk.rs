//! Bulk message writes: a chunk of rows travels as ONE JSON parameter that the database
//! unpacks (`json_each` on SQLite, `jsonb_array_elements` on PostgreSQL), instead of
//! twenty bound values per row. Binding, converting and copying 20,000 values per
//! statement was most of the cost of a page write; one text parameter costs one copy.
//!
//! Each row is a JSON array whose fields are read by position in SQL (`->> 3`). The
//! values are encoded so that the database stores exactly what binding them one by one
//! stores: strings as JSON strings (any Unicode, escapes undone by the database),
//! `null` for `None`, booleans and integers as JSON literals, and timestamps as the
//! text each driver would have sent — on SQLite the RFC 3339 text sqlx writes, on
//! PostgreSQL the instant cut to microseconds exactly as sqlx's binary encoding cuts it.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike as _, NaiveDate, SecondsFormat, Timelike as _, Utc};
use mailroom_core::Message;
use serde::Serialize;

use crate::error::{Error, Result};

/// At most this many messages per statement.
pub(crate) const MAX_ROWS: usize = 1000;

/// A chunk is cut once its JSON reaches this size (a record with a huge body makes a
/// chunk of its own), far below SQLite's 1,000,000,000-byte limit on one value.
pub(crate) const MAX_BYTES: usize = 8 << 20;

/// The database a chunk is encoded for: timestamps differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Sqlite,
    Postgres,
}

/// The columns of a message row, in the order of the JSON array (the account, folder,
/// generation and update time are parameters of the statement, the same for all rows).
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

/// PostgreSQL type of each field of [`ROW`] (text needs no cast).
fn pg_cast(column: &str) -> &'static str {
    match column {
        "date_received" | "sent_at" => "::timestamptz",
        "is_read" | "is_draft" | "has_attachments" => "::boolean",
        "attachment_count" => "::integer",
        _ => "",
    }
}

/// Columns of an attachment row, in the order of its JSON array; the first field is
/// the remote id of the message it belongs to.
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

fn pg_attachment_cast(column: &str) -> &'static str {
    match column {
        "ordinal" => "::integer",
        "size" => "::bigint",
        "is_inline" => "::boolean",
        _ => "",
    }
}

/// The rows of parameter 1 on SQLite, in array order, each row turned into JSONB once.
///
/// `json_each` renders an element as text each time its `value` is read; reading it
/// once in a subquery that SQLite cannot flatten (`OFFSET`) and runs as a co-routine
/// makes that one rendering per row. The row is handed on as JSONB (a blob): the 16
/// `->>` calls on it then walk the blob, where on text each call copied the whole row
/// to add a terminator before finding it in SQLite's JSON cache (a tenth of the write
/// CPU in the upsert benchmark). (`jsonb_each` would skip the rendering but needs
/// SQLite 3.47; sqlx bundles 3.46.)
const SQLITE_ROWS: &str = "(SELECT jsonb(value) AS r FROM json_each(?1) LIMIT -1 OFFSET 0)";

/// `INSERT … SELECT … FROM <the JSON rows> ON CONFLICT (account_id, remote_id) DO UPDATE`.
/// Parameters: 1 the rows, 2 account id, 3 folder id, 4 generation, 5 update time.
pub(crate) fn upsert_sql(flavor: Flavor) -> String {
    let mut sql = String::from("INSERT INTO messages (account_id, folder_id, ");
    for c in ROW {
        sql.push_str(c);
        sql.push_str(", ");
    }
    sql.push_str("generation, updated_at) SELECT ");
    match flavor {
        Flavor::Sqlite => {
            sql.push_str("?2, ?3, ");
            for i in 0..ROW.len() {
                let _ = write!(sql, "r ->> {i}, ");
            }
            // `WHERE true` keeps SQLite from reading ON CONFLICT as a join constraint.
            sql.push_str("?4, ?5 FROM ");
            sql.push_str(SQLITE_ROWS);
            sql.push_str(" WHERE true");
        }
        Flavor::Postgres => {
            sql.push_str("$2, $3, ");
            for (i, c) in ROW.iter().enumerate() {
                let _ = write!(sql, "(j.value ->> {i}){}, ", pg_cast(c));
            }
            sql.push_str(
                "$4, $5 FROM jsonb_array_elements($1::text::jsonb) WITH ORDINALITY AS j(value, n) \
                 ORDER BY j.n",
            );
        }
    }
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
    sql
}

/// Deletes the attachment rows of the messages whose remote ids are listed.
/// Parameters: 1 a JSON array of remote ids, 2 account id.
pub(crate) fn delete_attachments_sql(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Sqlite => {
            "DELETE FROM attachments WHERE message_id IN (SELECT m.id FROM json_each(?1) AS k \
             CROSS JOIN messages AS m WHERE m.account_id = ?2 AND m.remote_id = k.value)"
        }
        Flavor::Postgres => {
            "DELETE FROM attachments WHERE message_id IN (SELECT m.id \
             FROM jsonb_array_elements_text($1::text::jsonb) AS k(remote_id) \
             JOIN messages AS m ON m.account_id = $2 AND m.remote_id = k.remote_id)"
        }
    }
}

/// Inserts attachment rows, finding each one's message by remote id.
/// Parameters: 1 the rows, 2 account id.
pub(crate) fn insert_attachments_sql(flavor: Flavor) -> String {
    let mut sql = String::from("INSERT INTO attachments (message_id");
    for c in &ATTACHMENT_ROW[1..] {
        let _ = write!(sql, ", {c}");
    }
    sql.push_str(") SELECT m.id");
    match flavor {
        Flavor::Sqlite => {
            for i in 1..ATTACHMENT_ROW.len() {
                let _ = write!(sql, ", r ->> {i}");
            }
            sql.push_str(" FROM ");
            sql.push_str(SQLITE_ROWS);
            sql.push_str(
                " CROSS JOIN messages AS m WHERE m.account_id = ?2 AND m.remote_id = r ->> 0",
            );
        }
        Flavor::Postgres => {
            for (i, c) in ATTACHMENT_ROW.iter().enumerate().skip(1) {
                let _ = write!(sql, ", (a.value ->> {i}){}", pg_attachment_cast(c));
            }
            sql.push_str(
                " FROM jsonb_array_elements($1::text::jsonb) WITH ORDINALITY AS a(value, n) \
                 JOIN messages AS m ON m.account_id = $2 AND m.remote_id = a.value ->> 0 \
                 ORDER BY a.n",
            );
        }
    }
    sql
}

/// A timestamp as the driver would have sent it.
struct Timestamp(String);

impl Timestamp {
    fn new(flavor: Flavor, t: &DateTime<Utc>) -> Result<Self> {
        Ok(Timestamp(match flavor {
            // What sqlx-sqlite binds for a `DateTime<Utc>`.
            Flavor::Sqlite => t.to_rfc3339_opts(SecondsFormat::AutoSi, false),
            Flavor::Postgres => pg_timestamp(t)?,
        }))
    }
}

/// PostgreSQL text for `t`: sqlx sends microseconds since 2000-01-01, cut toward zero
/// (`TimeDelta::num_microseconds`); the text says the same instant. Years before 1 are
/// written with `BC`, as PostgreSQL reads them.
pub(crate) fn pg_timestamp(t: &DateTime<Utc>) -> Result<String> {
    let epoch = NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("2000-01-01 exists");
    let micros = (t.naive_utc() - epoch)
        .num_microseconds()
        .ok_or_else(|| Error::Invalid(format!("timestamp {t} is out of range for PostgreSQL")))?;
    let cut = epoch + chrono::TimeDelta::microseconds(micros);
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

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

fn json_list<T: Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).expect("plain data serializes")
}

/// Appends the JSON row of `m` (see [`ROW`]) to `out`.
fn push_message(out: &mut Vec<u8>, flavor: Flavor, m: &Message) -> Result<()> {
    let sender = m.sender.as_ref();
    let row = (
        &m.remote_id,
        &m.message_id,
        &m.subject,
        sender.and_then(|s| s.name.as_ref()),
        sender.and_then(|s| s.address.as_ref()),
        json_list(&m.to),
        json_list(&m.cc),
        m.date_received
            .as_ref()
            .map(|t| Timestamp::new(flavor, t))
            .transpose()?,
        m.sent_at
            .as_ref()
            .map(|t| Timestamp::new(flavor, t))
            .transpose()?,
        &m.body,
        m.is_read,
        m.is_draft,
        m.has_attachments,
        m.attachment_count.min(i32::MAX as u32) as i32,
        &m.conversation_id,
        json_list(&m.warnings),
    );
    serde_json::to_writer(out, &row).expect("plain data serializes");
    Ok(())
}

/// A chunk of messages encoded as one JSON array.
pub(crate) struct Chunk<'a> {
    /// The messages, in order.
    pub messages: &'a [&'a Message],
    /// `[[…row…], …]`.
    pub json: String,
}

/// Encodes the next chunk of `messages` (at most [`MAX_ROWS`] rows, cut after
/// [`MAX_BYTES`]); `None` when none are left.
pub(crate) fn next_chunk<'a>(
    flavor: Flavor,
    messages: &mut &'a [&'a Message],
) -> Option<Result<Chunk<'a>>> {
    if messages.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(messages.len().min(MAX_ROWS) * 1536);
    out.push(b'[');
    let mut n = 0;
    while n < messages.len() && n < MAX_ROWS && out.len() < MAX_BYTES {
        if n > 0 {
            out.push(b',');
        }
        if let Err(e) = push_message(&mut out, flavor, messages[n]) {
            return Some(Err(e));
        }
        n += 1;
    }
    out.push(b']');
    let (taken, rest) = messages.split_at(n);
    *messages = rest;
    let json = String::from_utf8(out).expect("serde_json writes UTF-8");
    Some(Ok(Chunk {
        messages: taken,
        json,
    }))
}

/// The remote ids of `messages` as a JSON array.
pub(crate) fn remote_ids<'a>(messages: impl Iterator<Item = &'a Message>) -> String {
    let ids: Vec<&str> = messages.map(|m| m.remote_id.as_str()).collect();
    json_list(&ids)
}

/// The attachment rows of `messages` (see [`ATTACHMENT_ROW`]) as a JSON array, and how
/// many there are.
pub(crate) fn attachment_rows<'a>(messages: impl Iterator<Item = &'a Message>) -> (String, usize) {
    let mut rows = Vec::new();
    for m in messages {
        for (i, a) in m.attachments.iter().enumerate() {
            rows.push((
                &m.remote_id,
                i as i32,
                &a.remote_id,
                &a.name,
                &a.content_type,
                a.size.min(i64::MAX as u64) as i64,
                a.is_inline,
                &a.content_id,
            ));
        }
    }
    (json_list(&rows), rows.len())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

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
        let mut rest = &list[..];
        let mut sizes = Vec::new();
        while let Some(chunk) = next_chunk(Flavor::Sqlite, &mut rest) {
            let chunk = chunk.unwrap();
            let parsed: Vec<serde_json::Value> = serde_json::from_str(&chunk.json).unwrap();
            assert_eq!(parsed.len(), chunk.messages.len());
            sizes.push(chunk.messages.len());
        }
        assert_eq!(sizes, [1, MAX_ROWS, 3]);
    }
}
