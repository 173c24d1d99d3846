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
        let transient = matches!(err, DbErr::Conn(_) | DbErr::ConnectionAcquire(_));
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

/// Adds context to a sea-orm result.
pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for Result<T, DbErr> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::database(what(), e))
    }
}
