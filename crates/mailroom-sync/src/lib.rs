//! Mailroom's sync engine: the thin layer that wires connectors, the vault and the store.
//!
//! - [`ConnectorFactory`] picks Graph or IMAP per account (see its docs for the rule).
//! - [`Syncer::sync_account`] decrypts an account's credentials, connects, pages
//!   through each configured folder (default: the inbox) with the connector's
//!   incremental sync, stores each page with its cursor in ONE transaction, stores
//!   refreshed credentials re-encrypted as soon as they appear (even when a later step
//!   fails), and records the outcome (`needs_reauth` with the AADSTS code on terminal
//!   auth errors). There is no message cap: a folder is synced to its end.
//! - [`Syncer::run_worker`] syncs every due account on an interval, a bounded number
//!   at once, under per-account leases so several workers can share one PostgreSQL.
//!   IMAP accounts whose server announces IDLE are watched by [`IdleWatchers`] (a
//!   capped number of IDLE connections per worker): new mail or an expunge makes the
//!   account due at once through [`request_sync`].
//! - [`Push`] (module [`push`]): Graph change notifications — subscriptions kept by
//!   the worker that holds an account, notifications that mark folders dirty and wake
//!   a sync of them, polling slowed to a safety net while push is healthy.
//!
//! Any tokio runtime runs it; nothing here blocks its thread. A current-thread runtime,
//! which the `mailroom` binary uses unless told otherwise, costs the least CPU: each
//! page is parsed, written and freed on one thread (SQLite's connections have threads
//! of their own), and a Graph initial sync took about a tenth less CPU per message
//! than on a two-thread runtime (docs/benchmarks.md in the repository, round 8).
//!
//! ```no_run
//! # async fn demo(syncer: mailroom_sync::Syncer) -> Result<(), mailroom_sync::Error> {
//! use mailroom_sync::{CancellationToken, SyncRequest, WorkerConfig};
//!
//! // One account, now:
//! let report = syncer.sync_account(1, &SyncRequest::default()).await?;
//! println!("{}: {:?}, {} messages stored", report.email, report.outcome, report.totals().upserted);
//!
//! // Or every account, every 5 minutes, until Ctrl-C:
//! let shutdown = CancellationToken::new();
//! syncer.run_worker(WorkerConfig::default(), shutdown).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod engine;
mod factory;
mod idle;
mod observer;
pub mod push;
mod telemetry;
mod worker;

pub use engine::{AccountReport, FolderReport, GONE_RECHECK, Lease, Outcome, SyncRequest, Syncer};
pub use factory::{ConnectorFactory, DefaultFactory, GMAIL_IMAP_HOST};
pub use idle::{IdleWatchers, request_sync};
pub use observer::{NoopObserver, SyncObserver};
pub use push::{Push, PushConfig, PushPlan, PushStats, SubscriptionApi};
pub use worker::{WorkerConfig, WorkerStats};

/// The crates a sync is made of, so that this crate alone builds a whole syncer: the
/// database ([`store::Store`]), the keys ([`vault::Vault`]), the two connectors and
/// their sign-in.
pub use mailroom_graph as graph;
pub use mailroom_graph::oauth;
pub use mailroom_imap as imap;
pub use mailroom_store as store;
pub use mailroom_vault as vault;

// What `Syncer` and `ConnectorFactory` take and return, at the crate root.
pub use mailroom_core::{
    AccountKind, AccountStatus, Connector, ConnectorError, Credentials, ErrorKind, FolderRef,
    async_trait, chrono,
};
pub use mailroom_store::{Account, Store};
pub use mailroom_vault::{FernetKey, Vault};
/// How a worker is told to stop ([`Syncer::run_worker`]), from `tokio-util`.
pub use tokio_util::sync::CancellationToken;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What stops a sync or a worker (connector failures are recorded on the account
/// instead, see [`Outcome`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database failed (or the worker lost its lease).
    #[error(transparent)]
    Store(#[from] mailroom_store::Error),
    /// An account's credentials cannot be decrypted or parsed.
    #[error("cannot read the credentials of {email}: {source}")]
    Credentials {
        /// The account.
        email: String,
        /// Why.
        source: mailroom_vault::Error,
    },
    /// No connector can be built for an account.
    #[error("cannot set up a connection for {email}: {source}")]
    Connector {
        /// The account.
        email: String,
        /// Why.
        source: mailroom_core::ConnectorError,
    },
}

impl Error {
    /// True when the worker lost an account's lease to another worker.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Error::Store(e) if e.is_lease_lost())
    }
}
