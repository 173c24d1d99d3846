//! Helpers for tests that need a real database (feature `testing`).
//!
//! PostgreSQL tests share one database, so each gets a schema of its own: no test sees
//! another's accounts, and tests can run in parallel processes.

use std::sync::atomic::{AtomicU32, Ordering};

use sea_orm::sqlx::{Connection as _, PgConnection};

/// Where the test PostgreSQL lives unless `MAILROOM_TEST_POSTGRES_URL` says otherwise;
/// `cargo xtask ci` starts the server and creates this role and database.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://mailroom:mailroom@127.0.0.1:5432/mailroom_test";

/// The test database URL.
pub fn postgres_base_url() -> String {
    std::env::var("MAILROOM_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// Creates an empty schema in the test database and returns a URL whose connections use
/// it. Panics with what to do when PostgreSQL is not reachable: a test that needs
/// PostgreSQL fails without it, it never skips.
pub async fn fresh_postgres_url() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = postgres_base_url();
    let mut conn = PgConnection::connect(&base).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {}: {e}\n\
             start it with `cargo xtask ci` (or `pg_ctlcluster 15 main start` and create the \
             role and database), or point MAILROOM_TEST_POSTGRES_URL at a server",
            crate::redact_url(&base)
        )
    });
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let schema = format!(
        "t{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    // The name is ours: digits and underscores only.
    sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA {schema}"
    )))
    .execute(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("cannot create test schema {schema}: {e}"));
    let _ = conn.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// The process ids of the server backends whose connections call themselves
/// `application_name` (`pg_stat_activity`), for benchmarks that read the CPU time of
/// their own backends from `/proc/<pid>/stat`; connects to `base`.
pub async fn backend_pids(base: &str, application_name: &str) -> crate::Result<Vec<u32>> {
    let mut conn = PgConnection::connect(base)
        .await
        .map_err(|e| crate::Error::Invalid(format!("cannot connect to PostgreSQL: {e}")))?;
    let pids: Vec<(i32,)> =
        sea_orm::sqlx::query_as("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
            .bind(application_name)
            .fetch_all(&mut conn)
            .await
            .map_err(|e| crate::Error::Invalid(format!("cannot list PostgreSQL backends: {e}")))?;
    let _ = conn.close().await;
    Ok(pids.into_iter().map(|(p,)| p.unsigned_abs()).collect())
}

/// What `pg_stat_statements` counts for one statement (summed over users and
/// databases), for benchmarks: take it before and after, and print the difference.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementStats {
    /// The normalized text.
    pub query: String,
    /// Executions.
    pub calls: i64,
    /// Execution time, milliseconds.
    pub total_exec_time: f64,
    /// Rows returned or changed.
    pub rows: i64,
}

/// Every statement `pg_stat_statements` tracks, by query id; `None` when the extension
/// is not loaded in the server or not created in the database of `base`.
pub async fn statement_stats(
    base: &str,
) -> crate::Result<Option<std::collections::HashMap<i64, StatementStats>>> {
    let mut conn = PgConnection::connect(base)
        .await
        .map_err(|e| crate::Error::Invalid(format!("cannot connect to PostgreSQL: {e}")))?;
    /// Query id, text, calls, execution time, rows.
    type Row = (i64, String, i64, f64, i64);
    let rows: Result<Vec<Row>, _> = sea_orm::sqlx::query_as(
        "SELECT queryid, min(query), sum(calls)::bigint, sum(total_exec_time), \
         sum(rows)::bigint FROM pg_stat_statements WHERE queryid IS NOT NULL \
         GROUP BY queryid",
    )
    .fetch_all(&mut conn)
    .await;
    let _ = conn.close().await;
    Ok(rows.ok().map(|rows| {
        rows.into_iter()
            .map(|(id, query, calls, total_exec_time, rows)| {
                (
                    id,
                    StatementStats {
                        query,
                        calls,
                        total_exec_time,
                        rows,
                    },
                )
            })
            .collect()
    }))
}

/// The server's current WAL position in bytes (`pg_current_wal_lsn()`), for benchmarks:
/// the difference of two is the WAL the whole server wrote in between; connects to
/// `base`.
pub async fn wal_position(base: &str) -> crate::Result<i64> {
    let mut conn = PgConnection::connect(base)
        .await
        .map_err(|e| crate::Error::Invalid(format!("cannot connect to PostgreSQL: {e}")))?;
    let (bytes,): (i64,) =
        sea_orm::sqlx::query_as("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| crate::Error::Invalid(format!("cannot read the WAL position: {e}")))?;
    let _ = conn.close().await;
    Ok(bytes)
}

/// The server's settings `names` as `SHOW` prints them (`128MB`, `5min`), in that
/// order, for benchmarks to print next to their figures; connects to `base`.
pub async fn server_settings(base: &str, names: &[&str]) -> crate::Result<Vec<String>> {
    let mut conn = PgConnection::connect(base)
        .await
        .map_err(|e| crate::Error::Invalid(format!("cannot connect to PostgreSQL: {e}")))?;
    let values: Vec<(String,)> = sea_orm::sqlx::query_as(
        "SELECT current_setting(name) FROM unnest($1::text[]) WITH ORDINALITY AS s(name, n) \
         ORDER BY n",
    )
    .bind(names)
    .fetch_all(&mut conn)
    .await
    .map_err(|e| crate::Error::Invalid(format!("cannot read the server's settings: {e}")))?;
    let _ = conn.close().await;
    Ok(values.into_iter().map(|(v,)| v).collect())
}
