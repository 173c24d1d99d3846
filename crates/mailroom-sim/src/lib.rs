//! `mailroom-sim`: a local, deterministic stand-in for the Microsoft identity
//! platform and Microsoft Graph v1.0 mail.
//!
//! Start a [`Simulator`] from a [`SimConfig`] (port 0 picks a free port), point
//! the code under test at [`Simulator::base_url`] (the authority host, with
//! `/{tenant}/oauth2/v2.0/devicecode` and `/token` under it) and
//! [`Simulator::graph_url`] (`/v1.0`), then assert on [`Counters`] and on the
//! ground truth of a [`Mailbox`].
//!
//! - Identity: device code flow (`authorization_pending`, `slow_down`,
//!   `authorization_declined`, `expired_token`), refresh token rotation with
//!   optional strict replay detection, scripted [`RefreshFailure`]s, public and
//!   confidential clients, tenants, and an RFC 7662 introspection endpoint for
//!   Dovecot. Tokens ([`TokenResponse`]) are opaque strings starting with
//!   `sim-at-` / `sim-rt-`, each bound to one [`Audience`].
//! - Graph: `/me`, mail folders, messages (`$top`, `$skip`, `$select`,
//!   `$filter`, `$orderby`, `$count`, `$expand`), MIME `$value`, move, delete,
//!   attachments, delta with `@removed` and 410, `$batch`, and change
//!   notifications: `/subscriptions` with the validation handshake, a
//!   notification POST for every change of a watched folder
//!   ([`NotificationFaults`]: delay, drops, duplicates, reordering), lifecycle
//!   events on demand ([`Simulator::send_lifecycle`]), expiry on the clock.
//! - Faults ([`Faults`]): random 429/500/503/504 with `Retry-After`, latency,
//!   the per-mailbox concurrency limit, request budgets.
//! - Mailboxes ([`MailboxSpec`]) are generated from a seed, of any size.
//!
//! ```no_run
//! # async fn demo() -> mailroom_sim::Result<()> {
//! use mailroom_sim::{MailboxSpec, SimConfig, Simulator};
//!
//! let sim = Simulator::start(
//!     SimConfig::default().mailboxes(vec![MailboxSpec::new("alice@contoso.test", 200)]),
//! )
//! .await?;
//! let tokens = sim.issue_tokens("alice@contoso.test", "my-app", &["Mail.ReadWrite", "offline_access"])?;
//! // GET {graph_url}/me/mailFolders/inbox/messages with `Authorization: Bearer {access_token}`
//! println!("{} {}", sim.graph_url(), tokens.expires_in);
//! let inbox = sim.mailbox("alice@contoso.test")?.folder_messages("inbox")?;
//! assert!(!inbox.is_empty());
//! println!("{:?}", sim.counters().requests_by_route);
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Fidelity notes
//!
//! Shapes (field names, status codes, error bodies) follow Microsoft's
//! documentation; the fixtures in `tests/fixtures/` cite their pages. Where
//! the documentation is silent the simulator makes a documented choice:
//!
//! - Introspection (`/oauth2/introspect`) does not exist in Entra ID; it is
//!   there so Dovecot can validate tokens the simulator issued.
//! - Id tokens are unsigned (`alg: none`) and the JWKS at `jwks_uri` is
//!   empty; instance discovery knows one cloud, the host of the base URL.
//! - Microsoft's client libraries check the rest in CI (the README's
//!   fidelity table).
//! - `slow_down` is enforced as RFC 8628 describes (Entra ID is lenient).
//!   AADSTS codes of `authorization_declined` (65004), `bad_verification_code`
//!   (70018) and `expired_token` (70019) come from the error code reference.
//!   A confidential client without a secret gets AADSTS7000218 (Entra ID's
//!   code), a wrong secret AADSTS7000215.
//! - Any client id is accepted as a public client unless registered in
//!   [`SimConfig::confidential_clients`]; scopes are granted without consent.
//! - Graph error codes not confirmed against a live tenant: `$top` out of
//!   range (`ErrorInvalidUrlQuery`), `$filter` syntax errors (`BadRequest`,
//!   "Invalid filter clause: …"), more than 20 `$batch` requests (`BadRequest`),
//!   the 424 item body (`FailedDependency`), injected faults (`TooManyRequests`,
//!   `generalException`, `serviceNotAvailable`, `UnknownError`) and the request
//!   budget message.
//! - Drafts leave out `from` and `sender` (rather than `null`).
//! - Delta: removals (deleted or moved out) always carry reason `deleted`;
//!   the default page size is 10; a 410 carries `Location` (a new round) only
//!   for `resyncRequired`. `$skiptoken`/`$deltatoken` encode the cursor and
//!   the query options (`$select`, `$filter` — only `receivedDateTime ge|gt`
//!   — and `changeType`); `Prefer` headers must be sent on every page.
//! - Ids look like Exchange ids (`AAMkAG…`, immutable `AAkALg…`, some ending
//!   in `=`) but are not real store ids. Times have whole seconds; generated
//!   mail is dated up to 2025-06-01, added mail is dated now.
//! - `$orderby` supports `receivedDateTime` only; `$filter` supports
//!   comparisons, `and`/`or`/`not`, `contains`/`startswith`; `$search` is
//!   refused. `$orderby` with a `$filter` that does not start with
//!   `receivedDateTime` gets `InefficientFilter`, as Graph does.
//! - `$batch` items without dependencies run as one parallel wave that counts
//!   against the concurrency limit; a batch sent before an advertised
//!   `Retry-After` counts as one violation.
#![warn(missing_docs)]

mod clock;
mod config;
mod control;
mod counters;
mod graph;
mod http;
mod identity;
pub mod process;
mod rng;
mod server;
mod state;
mod tls;

pub use config::{
    DEFAULT_ATTACHMENT_PERCENT, DeltaErrorCode, Faults, FolderLayout, MailboxSpec, RefreshFailure,
    RequestBudget, RetryAfter, SimConfig, Tls,
};
pub use counters::Counters;
pub use graph::handle::{FolderInfo, Mailbox, MessageInfo, NewMessage};
pub use graph::subscriptions::{
    Lifecycle, MAX_SUBSCRIPTION_MINUTES, NotificationFaults, SubscriptionInfo,
};
pub use graph::synth::Person;
pub use identity::{
    ACCESS_TOKEN_PREFIX, Audience, DEVICE_CODE_PREFIX, REFRESH_TOKEN_PREFIX, TokenResponse,
};
pub use server::Simulator;

/// Errors of the simulator's library API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be opened.
    #[error("cannot bind the simulator to 127.0.0.1:{port}: {source}")]
    Bind {
        /// Requested port.
        port: u16,
        /// The I/O error.
        source: std::io::Error,
    },
    /// HTTPS could not be set up (certificate, key, CA file).
    #[error("cannot serve HTTPS: {0}")]
    Tls(String),
    /// [`SimConfig::public_url`] is not a base URL.
    #[error("invalid public URL {0}")]
    InvalidPublicUrl(String),
    /// No mailbox has this address.
    #[error("unknown mailbox {0}")]
    UnknownMailbox(String),
    /// A mailbox with this address exists already.
    #[error("mailbox {0} already exists")]
    DuplicateMailbox(String),
    /// The address is not an email address.
    #[error("invalid mailbox address {0:?}")]
    InvalidMailbox(String),
    /// No pending device code has this user code.
    #[error("no pending device code has user code {0}")]
    UnknownUserCode(String),
    /// The scopes cannot be granted (e.g. two resources).
    #[error("cannot grant scopes {scopes:?}: {message}")]
    InvalidScopes {
        /// The scopes asked.
        scopes: String,
        /// Entra ID's description.
        message: String,
    },
    /// No folder has this id, well-known name or path.
    #[error("unknown folder {0}")]
    UnknownFolder(String),
    /// No message has this id.
    #[error("unknown message {0}")]
    UnknownMessage(String),
}

/// Result of the simulator's library API.
pub type Result<T> = std::result::Result<T, Error>;
