//! The store's error type.

use sea_orm::DbErr;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in the store. The message says what was being done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database refused or failed an operation.
    #[error("{context}: {source}")]
    Database {
        /// What was being done.
        context: String,
        /// The driver's error.
        source: BoxError,
        /// True for connection trouble (retry later).
        transient: bool,
    },
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// An account with this email address already exists.
    #[error("an account for {0} already exists")]
    DuplicateAccount(String),
    /// Another worker holds (or took over) the account's lease.
    #[error("lease on account {account_id} is no longer held by {owner}")]
    LeaseLost {
        /// The account.
        account_id: i64,
        /// The worker that thought it held the lease.
        owner: String,
    },
    /// A value handed to the store is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// A stored value cannot be read back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl Error {
    pub(crate) fn database(context: impl Into<String>, err: DbErr) -> Self {
        let transient =
            matches!(err, DbErr::Conn(_) | DbErr::ConnectionAcquire(_)) || is_contention(&err);
        Error::Database {
            context: context.into(),
            source: Box::new(err),
            transient,
        }
    }

    pub(crate) fn config(message: String) -> Self {
        Error::Invalid(message)
    }

    /// True for connection trouble: retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Database {
                transient: true,
                ..
            }
        )
    }

    /// True when a worker lost its lease and must stop working on the account.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Error::LeaseLost { .. })
    }
}

/// True when the database gave up waiting for another writer: SQLite `SQLITE_BUSY` /
/// `SQLITE_LOCKED` past the busy timeout, PostgreSQL serialization failures,
/// deadlocks and lock timeouts. Retrying later succeeds once the other writer is done.
fn is_contention(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx};
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    let sqlx::Error::Database(db) = &**e else {
        return matches!(**e, sqlx::Error::PoolTimedOut);
    };
    let Some(code) = db.code() else {
        return false;
    };
    if let Ok(n) = code.parse::<u32>() {
        // SQLite: the primary result code is the low byte of the extended one.
        return matches!(n & 0xff, 5 | 6);
    }
    matches!(code.as_ref(), "40001" | "40P01" | "55P03")
}

/// Adds context to a sea-orm result.
pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for Result<T, DbErr> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::database(what(), e))
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};

    async fn connect(url: &str) -> DatabaseConnection {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(1)
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|o| o.busy_timeout(std::time::Duration::ZERO));
        Database::connect(options).await.unwrap()
    }

    #[tokio::test]
    async fn a_database_locked_past_the_busy_timeout_is_transient() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("db.sqlite").display()
        );
        let (a, b) = (connect(&url).await, connect(&url).await);
        let run = |db: &DatabaseConnection, sql: &str| {
            let stmt = Statement::from_string(db.get_database_backend(), sql.to_owned());
            let db = db.clone();
            async move { db.execute_raw(stmt).await }
        };
        run(&a, "CREATE TABLE t (x INTEGER)").await.unwrap();
        run(&a, "BEGIN IMMEDIATE").await.unwrap();
        run(&a, "INSERT INTO t VALUES (1)").await.unwrap();
        let err = run(&b, "INSERT INTO t VALUES (2)").await.unwrap_err();
        let err = super::Error::database("cannot write", err);
        assert!(err.is_transient(), "{err}");
        run(&a, "COMMIT").await.unwrap();
        // Other refusals are not.
        let err = run(&b, "INSERT INTO missing VALUES (1)").await.unwrap_err();
        assert!(!super::Error::database("cannot write", err).is_transient());
    }
}
