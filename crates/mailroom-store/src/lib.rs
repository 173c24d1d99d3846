//! Mailroom's storage: accounts, folders, messages and attachments in SQLite (the
//! embedded default, WAL) or PostgreSQL, through one API.
//!
//! - [`Store`] connects ([`Store::connect`]) and migrates the schema on start.
//! - Accounts ([`Account`], [`NewAccount`]) hold credentials only as
//!   [`SealedCredentials`] — Fernet tokens made by `mailroom-vault`; the store refuses
//!   anything else and never sees plaintext.
//! - [`Store::apply_sync_page`] writes one page of a folder's changes and the cursor that
//!   follows it in ONE transaction, so a crash at any point loses nothing and duplicates
//!   nothing (messages are unique on account + remote id).
//! - [`Store::claim_due_accounts`] hands accounts to workers under a lease
//!   (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so several workers can share a database.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mailroom_store::Error> {
//! use mailroom_store::{Store, MessageQuery};
//!
//! let store = Store::connect("sqlite:///var/lib/mailroom/mailroom.sqlite?mode=rwc").await?;
//! for account in store.list_accounts().await? {
//!     let newest = store
//!         .list_messages(&MessageQuery { account_id: Some(account.id), limit: 10, ..Default::default() })
//!         .await?;
//!     println!("{}: {} messages shown", account.email, newest.len());
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The columns that say a folder exists and synced (no gone mark, no error), set with
/// its new cursor whenever a page from the server reached it: the raw-SQL twin of
/// `messages::synced_folder`, for the statements written as text.
macro_rules! folder_reached_sql {
    () => {
        "gone_since = NULL, missed_syncs = 0, last_error = NULL"
    };
}

mod accounts;
mod bulk;
mod entity;
mod error;
mod messages;
mod migration;
mod overview;
mod push;
#[cfg(feature = "testing")]
pub mod testing;
mod vtab;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait as _;

pub use accounts::{
    Account, AccountUpdate, FolderCursor, NewAccount, SealedCredentials, SyncFinish, SyncOutcome,
};
pub use error::{Error, Result};
pub use messages::{FolderRow, LeaseCheck, MessageQuery, PageStats, StoredMessage, SyncPageWrite};
pub use overview::FleetOverview;
pub use push::{PushStatus, PushSubscription, SubscriptionUpdate};

// The `mailroom-core` types this crate's API takes and returns, so that it stands alone.
pub use mailroom_core::{
    AccountKind, AccountStatus, Attachment, Change, EmailAddress, Folder, FolderPath, FolderRef,
    Message, SyncCursor, SyncPage, WellKnownFolder, chrono,
};

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (file or in-memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The storage handle. Cheap to clone (a connection pool inside).
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// Where sync pages are written. For a SQLite file, a pool of ONE connection: SQLite
    /// has one writer at a time anyway, so page writes of several tasks queue here
    /// instead of sleeping on the busy timeout, and the writer's page cache stays warm
    /// (a connection drops its whole cache whenever another connection wrote). Otherwise
    /// the same pool as `db`.
    writer: DatabaseConnection,
    backend: Backend,
    /// For a SQLite file: copies the WAL into the database file behind the writer.
    checkpointer: Option<Checkpointer>,
    /// Statements sent since [`Store::connect`] returned, by every clone.
    statements: Arc<AtomicU64>,
    /// PostgreSQL: the folders being enumerated from empty, whose next page is written
    /// by `COPY` (see `Store::apply_page_in_one_statement`). Shared by
    /// every clone; a hint only, so it is simply cleared if it ever holds
    /// [`FOLDERS_FROM_EMPTY_KEPT`] folders (syncs that stopped mid-enumeration).
    folders_from_empty: Arc<std::sync::Mutex<std::collections::HashSet<i64>>>,
}

/// See `Store::folders_from_empty`.
const FOLDERS_FROM_EMPTY_KEPT: usize = 4096;

/// Background WAL checkpoints for a SQLite file.
///
/// A checkpoint copies the pages of the WAL into the database file and waits for the
/// disk (`fsync`). Done by the writer when its WAL reaches [`WAL_CHECKPOINT_BYTES`], that
/// wait stalled every sync page behind it: without it the upsert benchmark ran a third
/// faster. So once the writer has committed [`BACKGROUND_CHECKPOINT_BYTES`] of rows,
/// the store starts a PASSIVE checkpoint on a pool connection (one at a time): it
/// copies what is committed while the writer goes on, and the writer's own checkpoint
/// then finds the pages already copied. Commits that write no rows (an empty delta
/// page) count for nothing: a checkpoint after each of them made the no-change cycle
/// of 1,000 accounts 40–60 % slower, waiting on `fsync`.
///
/// The writer keeps its own checkpoint because only a checkpoint that catches up with
/// the end of the WAL lets the next transaction start the WAL over; a background one
/// never quite catches up with a busy writer, so it alone would let the WAL grow.
#[derive(Clone)]
struct Checkpointer {
    db: DatabaseConnection,
    running: Arc<AtomicBool>,
    /// Bytes of rows committed since the last background checkpoint started.
    pending: Arc<AtomicU64>,
}

/// Rows committed between two background checkpoints (the WAL grows by about twice
/// that: rows, then index pages).
const BACKGROUND_CHECKPOINT_BYTES: u64 = 256 << 10;

impl Checkpointer {
    /// Counts `bytes` committed; starts a checkpoint in a task of its own when enough
    /// are pending and none is running.
    fn committed(&self, bytes: u64) {
        let pending = self.pending.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if pending < BACKGROUND_CHECKPOINT_BYTES || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        self.pending.store(0, Ordering::Release);
        let Checkpointer { db, running, .. } = self.clone();
        tokio::spawn(async move {
            use sea_orm::ConnectionTrait as _;
            // PASSIVE never waits on the writer or on readers; it reports, not fails,
            // when it cannot copy everything. An error here (say the pool is closing)
            // leaves the work to the writer's own checkpoint.
            if let Err(e) = db
                .execute_raw(sea_orm::Statement::from_string(
                    DbBackend::Sqlite,
                    "PRAGMA wal_checkpoint(PASSIVE)",
                ))
                .await
            {
                tracing::debug!(error = %e, "background WAL checkpoint failed");
            }
            running.store(false, Ordering::Release);
        });
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Store {
    /// Connects to `url` and brings the schema up to date.
    ///
    /// - `sqlite://path/to/file.sqlite?mode=rwc` — a file, created if missing (mode 0600,
    ///   and so its `-wal`/`-shm` files; its directory must exist), in WAL mode with a
    ///   busy timeout so a CLI and a worker can share it;
    /// - `sqlite::memory:` — a private in-memory database (one connection);
    /// - `postgres://user:password@host/db` — PostgreSQL.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::open(url, 10).await
    }

    /// [`Store::connect`] with a pool of `pool_size` PostgreSQL connections (SQLite's
    /// pool is unchanged): with one, statements sent one after another share one
    /// server session, whose prepared statements a test can then read.
    #[cfg(feature = "testing")]
    pub async fn connect_with_pool_size(url: &str, pool_size: u32) -> Result<Self> {
        Self::open(url, pool_size).await
    }

    async fn open(url: &str, postgres_pool: u32) -> Result<Self> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(Error::config(format!(
                "unsupported database url {:?}: use sqlite://FILE?mode=rwc, sqlite::memory: or postgres://…",
                redact_url(url)
            )));
        };
        let in_memory =
            backend == Backend::Sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
        if backend == Backend::Sqlite && !in_memory {
            create_private_file(url)?;
        }
        let connect = |max_connections: u32| async move {
            Database::connect(connect_options(url, backend, in_memory, max_connections))
                .await
                .map_err(|e| Error::database(format!("cannot connect to {}", redact_url(url)), e))
        };
        if backend == Backend::Postgres {
            probe_postgres(url).await?;
        }
        let mut db = match backend {
            // Every connection to :memory: is a different database: keep exactly one.
            Backend::Sqlite if in_memory => connect(1).await?,
            Backend::Sqlite => connect(4).await?,
            Backend::Postgres => connect(postgres_pool).await?,
        };
        migration::Migrator::up(&db, None)
            .await
            .map_err(|e| Error::database("cannot migrate the database schema", e))?;
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let writer = if backend == Backend::Sqlite && !in_memory {
            let mut writer = connect(1).await?;
            let counter = statements.clone();
            writer.set_metric_callback(move |_| {
                counter.fetch_add(1, Ordering::Relaxed);
            });
            checkpoint_every(&writer, WAL_CHECKPOINT_BYTES)
                .await
                .map_err(|e| Error::database("cannot set up the SQLite writer", e))?;
            writer
        } else {
            db.clone()
        };
        let checkpointer = (backend == Backend::Sqlite && !in_memory).then(|| Checkpointer {
            db: db.clone(),
            running: Arc::new(AtomicBool::new(false)),
            pending: Arc::new(AtomicU64::new(0)),
        });
        Ok(Store {
            db,
            writer,
            backend,
            checkpointer,
            statements,
            folders_from_empty: Arc::default(),
        })
    }

    /// How many SQL statements this store (with its clones) has sent since it was
    /// connected; to measure what an operation costs the database.
    pub fn statements_sent(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// To call after the writer committed `bytes` of rows: lets the background
    /// checkpoint follow.
    pub(crate) fn committed(&self, bytes: u64) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.committed(bytes);
        }
    }

    /// The database kind.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn db_backend(&self) -> DbBackend {
        match self.backend {
            Backend::Sqlite => DbBackend::Sqlite,
            Backend::Postgres => DbBackend::Postgres,
        }
    }

    /// Closes the pools.
    pub async fn close(self) -> Result<()> {
        // Where `writer` is a clone of `db`, closing it twice is harmless.
        self.writer
            .close()
            .await
            .map_err(|e| Error::database("cannot close the database", e))?;
        self.db
            .close()
            .await
            .map_err(|e| Error::database("cannot close the database", e))
    }
}

/// Page size of a new SQLite file. A message row is 0.5–2.5 KiB (the body is a preview
/// of at most 2,000 characters): 4 KiB pages hold two or three and waste a third, and
/// every 4 KiB page costs a pair of `pwrite` calls in the WAL and a cache entry. 16 KiB
/// pages pack rows tighter and make the b-trees shallower. An existing file keeps its
/// page size (changing it needs a VACUUM outside WAL mode).
const PAGE_SIZE: u32 = 16384;

/// The writer checkpoints the WAL when it holds about this much, which bounds the WAL:
/// the next transaction starts it over. Most pages are copied before by the background
/// checkpoints ([`Checkpointer`]), so this one mostly finds its work done. (SQLite counts
/// in pages, so this is converted with the file's own page size; connections other than
/// the writer do not commit page writes.)
const WAL_CHECKPOINT_BYTES: i64 = 64 << 20;

async fn checkpoint_every(writer: &DatabaseConnection, bytes: i64) -> Result<(), sea_orm::DbErr> {
    use sea_orm::ConnectionTrait as _;
    let backend = writer.get_database_backend();
    let page_size: i64 = writer
        .query_one_raw(sea_orm::Statement::from_string(backend, "PRAGMA page_size"))
        .await?
        .map_or(Ok(4096), |row| row.try_get_by_index(0))?;
    writer
        .execute_raw(sea_orm::Statement::from_string(
            backend,
            format!(
                "PRAGMA wal_autocheckpoint = {}",
                (bytes / page_size.max(512)).max(1)
            ),
        ))
        .await?;
    Ok(())
}

/// Creates a SQLite database file that does not exist yet, empty and with mode 0600:
/// it will hold mail. SQLite gives the `-wal` and `-shm` files it creates later the
/// mode of the database file, so they are private too. An existing file is left as it
/// is; a missing directory is an error (never created here).
fn create_private_file(url: &str) -> Result<()> {
    let Some(path) = url
        .strip_prefix("sqlite://")
        .and_then(|rest| rest.split('?').next())
        .filter(|p| !p.is_empty())
        .map(std::path::Path::new)
    else {
        return Ok(());
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::config(format!(
            "cannot create the database file {}: {e}",
            path.display()
        ))),
    }
}

/// One direct connection to PostgreSQL, closed at once. The pool retries a refused
/// connection until its acquire timeout (30 s); a single try reports a server that is
/// not there (connection refused, unknown host, bad password) at once, and one that
/// does not answer within [`CONNECT_TIMEOUT`].
async fn probe_postgres(url: &str) -> Result<()> {
    use sea_orm::sqlx::Connection as _;
    let context = || format!("cannot connect to {}", redact_url(url));
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        sea_orm::sqlx::postgres::PgConnection::connect(url),
    )
    .await
    {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(Error::database(
            context(),
            DbErr::Conn(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(e))),
        )),
        Err(_) => Err(Error::database(
            context(),
            DbErr::Conn(sea_orm::RuntimeErr::Internal(format!(
                "no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))),
        )),
    }
}

/// How long a new database connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a pooled connection may sit idle before it is pinged on its way out.
const POOL_PING_IDLE: Duration = Duration::from_secs(5);

/// Pool options for `url`; `max_connections` is the pool size.
fn connect_options(
    url: &str,
    backend: Backend,
    in_memory: bool,
    max_connections: u32,
) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(Duration::from_secs(30))
        // sqlx pings a pooled connection before every statement it hands it out for (a
        // round trip each: on PostgreSQL a no-change account sync paid one per
        // statement); a connection used within the last few seconds is handed out
        // as is, and a dead one fails its statement like any lost connection.
        .test_before_acquire_if_idle_for(POOL_PING_IDLE)
        .max_connections(max_connections);
    if backend == Backend::Sqlite {
        if in_memory || max_connections == 1 {
            // Keep the connection (the in-memory database, the writer's page cache).
            options
                .min_connections(1)
                .idle_timeout(Duration::MAX / 4)
                .max_lifetime(Duration::MAX / 4);
        }
        // Every connection can read rows through `mailroom_rows` (`vtab`).
        options.map_sqlx_sqlite_pool_opts(|o| {
            o.after_connect(|conn, _| Box::pin(crate::vtab::register(conn)))
        });
        options.map_sqlx_sqlite_opts(move |o| {
            // A page cache of 16 MiB per connection (SQLite's default is 2 MiB) keeps
            // page writes from re-reading the indexes through the kernel, and is a
            // fixed bound: memory does not grow with the database.
            let o = o
                .page_size(PAGE_SIZE)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30))
                .create_if_missing(true)
                .pragma("cache_size", "-16384")
                .pragma("temp_store", "memory");
            if in_memory {
                o
            } else {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    // About 64 MiB of WAL for a new file's page size (the writer's
                    // is set again from the file's own by `checkpoint_every`).
                    .pragma(
                        "wal_autocheckpoint",
                        (WAL_CHECKPOINT_BYTES / i64::from(PAGE_SIZE)).to_string(),
                    )
            }
        });
    }
    options
}

/// Hides the password of a database URL for messages.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait as _, Statement};

    /// Pooled connections are not pinged before every statement (a round trip each),
    /// only after they sat idle, on both backends.
    #[test]
    fn pooled_connections_are_pinged_only_after_sitting_idle() {
        for (url, backend) in [
            ("sqlite://x.sqlite", super::Backend::Sqlite),
            ("postgres://u@localhost/db", super::Backend::Postgres),
        ] {
            let options = super::connect_options(url, backend, false, 4);
            assert!(!options.get_test_before_acquire(), "{url}");
            assert_eq!(
                options.get_test_before_acquire_if_idle_for(),
                Some(super::POOL_PING_IDLE),
                "{url}"
            );
        }
    }

    /// A new account with an Inbox: the ids of both.
    pub(crate) async fn account_with_inbox(store: &super::Store, email: &str) -> (i64, i64) {
        let account = store
            .create_account(crate::NewAccount {
                email: email.into(),
                kind: mailroom_core::AccountKind::Outlook,
                credentials: crate::SealedCredentials::new(format!("gAAAAA{}", "A".repeat(80)))
                    .unwrap(),
                sync_folders: Vec::new(),
            })
            .await
            .unwrap();
        (account.id, folder_named(store, account.id, "Inbox").await)
    }

    /// A folder `name` of account `account` (its remote id the name in lower case): its
    /// id.
    pub(crate) async fn folder_named(store: &super::Store, account: i64, name: &str) -> i64 {
        store
            .upsert_folders(
                account,
                &[mailroom_core::Folder {
                    remote_id: name.to_lowercase(),
                    name: name.into(),
                    path: name.into(),
                    parent_id: None,
                    role: None,
                    total_count: None,
                    unread_count: None,
                }],
            )
            .await
            .unwrap()
            .remove(0)
            .id
    }

    #[tokio::test]
    async fn a_new_sqlite_file_gets_large_pages_and_a_writer_that_checkpoints_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("m.sqlite").display()
        );
        let store = super::Store::connect(&url).await.unwrap();
        let pragma = |name: &str| {
            let sql = Statement::from_string(store.db_backend(), format!("PRAGMA {name}"));
            async {
                let row = store.writer.query_one_raw(sql).await.unwrap().unwrap();
                row.try_get_by_index::<i64>(0).unwrap()
            }
        };
        assert_eq!(pragma("page_size").await, i64::from(super::PAGE_SIZE));
        assert_eq!(
            pragma("wal_autocheckpoint").await,
            super::WAL_CHECKPOINT_BYTES / i64::from(super::PAGE_SIZE)
        );
        assert_eq!(
            pragma("cache_size").await,
            -16384,
            "a fixed bound on memory"
        );
        // Every other connection of a new file starts with the same interval.
        let sql = Statement::from_string(store.db_backend(), "PRAGMA wal_autocheckpoint");
        let row = store.db.query_one_raw(sql).await.unwrap().unwrap();
        assert_eq!(
            row.try_get_by_index::<i64>(0).unwrap(),
            super::WAL_CHECKPOINT_BYTES / i64::from(super::PAGE_SIZE)
        );
    }

    /// The background checkpoint copies committed pages into the database file long
    /// before the writer's own checkpoint would (its WAL stays far below 64 MiB here).
    #[tokio::test]
    async fn committed_pages_reach_the_database_file_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        let store = super::Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        let (account_id, folder_id) = account_with_inbox(&store, "wal@example.com").await;
        let before = std::fs::metadata(&path).unwrap().len();
        let messages: Vec<mailroom_core::Message> = (0..2_000)
            .map(|i| mailroom_core::Message {
                remote_id: format!("m-{i}"),
                // About 9 MB of rows in all: past the background threshold.
                body: Some(format!("{i:04} ").repeat(900)),
                ..Default::default()
            })
            .collect();
        store
            .upsert_messages(account_id, folder_id, &messages)
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut size = before;
        while size < before + (2 << 20) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            size = std::fs::metadata(&path).unwrap().len();
        }
        assert!(
            size >= before + (2 << 20),
            "the database file stayed at {size} bytes (from {before}): nothing left the WAL"
        );
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            super::redact_url("postgres://mailroom:s3cret@127.0.0.1/db"),
            "postgres://mailroom:***@127.0.0.1/db"
        );
        assert_eq!(super::redact_url("sqlite::memory:"), "sqlite::memory:");
    }
}
