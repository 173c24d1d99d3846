//! `mailroom-graph`: Microsoft Graph v1.0 mail for Mailroom.
//!
//! - [`GraphConnector`] implements [`Connector`] (folders, paged
//!   listing without a 50-message cap, one message, move, soft and hard delete,
//!   incremental sync through delta, each page with the attachment lists of its
//!   messages that have attachments, inline images included) and adds what only
//!   Graph has:
//!   [`GraphConnector::delta`] with [`DeltaOptions`], [`GraphConnector::move_many`] and
//!   [`GraphConnector::delete_many`] through `$batch` ([`BulkResult`] per item),
//!   [`GraphConnector::attachments`], [`GraphConnector::download_attachment`] and
//!   [`GraphConnector::raw_mime`] as a [`ByteStream`].
//! - Change notifications: [`GraphConnector::subscribe_folder`],
//!   [`GraphConnector::renew_subscription`], [`GraphConnector::delete_subscription`],
//!   [`GraphConnector::list_subscriptions`]; [`wire::subscription`] parses what Graph
//!   POSTs to the webhook.
//! - [`GraphConfig`] says where Graph is (`https`, or `http` on loopback for
//!   `mailroom-sim`), whether to ask for immutable ids, how many requests may be in
//!   flight per mailbox (4), the [`RetryPolicy`], page sizes, whether delta pages
//!   fetch attachment lists, and the sleep to wait with.
//! - Errors are [`ConnectorError`]s whose message says what was being
//!   done, whose `kind()` says what to do, and whose source is the [`GraphError`]
//!   (status, code, request id, raw body) when Graph answered one.
//!
//! Resilience is built in: a 401 refreshes the token once and retries once; 429, 503
//! and 504 wait their `Retry-After` (seconds, fractional seconds or an HTTP date) —
//! every request of the mailbox waits, not only the throttled one — or back off
//! exponentially with jitter, a bounded number of times. Refreshed credentials are
//! handed back by [`take_refreshed_credentials`](Connector::take_refreshed_credentials)
//! so the caller persists the rotated refresh token. Tokens never appear in logs,
//! errors or `Debug` output (the `Authorization` header is marked sensitive).
//!
//! ```no_run
//! use mailroom_graph::{Connector, FolderRef, GraphConfig, GraphConnector, OAuthCredentials};
//!
//! # async fn demo(stored: OAuthCredentials) -> Result<(), mailroom_graph::ConnectorError> {
//! let graph = GraphConnector::from_credentials(
//!     "alice@contoso.com",
//!     stored,
//!     mailroom_graph::oauth::DEFAULT_CLOUD,
//!     GraphConfig::default(),
//! )?;
//! let me = graph.connect().await?;
//! println!("signed in as {:?}", me.address);
//!
//! // Incremental sync: store each page's changes and cursor together.
//! let mut cursor = None; // or the cursor stored last time
//! loop {
//!     let page = graph.sync_folder(&FolderRef::INBOX, cursor.take()).await?;
//!     // … apply page.changes (and page.reset) and persist page.cursor in one transaction
//!     if let Some(rotated) = graph.take_refreshed_credentials() {
//!         // … persist the new credentials, encrypted, right away
//! #       drop(rotated);
//!     }
//!     cursor = Some(page.cursor);
//!     if page.complete {
//!         break;
//!     }
//! }
//!
//! // Graph-only: bulk moves through $batch.
//! let ids = vec!["AAMkAG…1".to_owned(), "AAMkAG…2".to_owned()];
//! for item in graph.move_many(&ids, &FolderRef::parse("Archive/2025").unwrap()).await? {
//!     match item.outcome {
//!         Ok(new_id) => println!("{} is now {new_id:?}", item.id),
//!         Err(e) => eprintln!("{e}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # From a device-code sign-in to a connector
//!
//! ```no_run
//! use mailroom_graph::oauth::{PublicClientApplication, Resource, TokenSession};
//! use mailroom_graph::{Connector, GraphConfig, GraphConnector};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let app = PublicClientApplication::builder("00000000-0000-0000-0000-00000000abcd").build()?;
//! let flow = app.start_device_flow(Resource::Graph.default_scopes()).await?;
//! println!("{}", flow.message); // the URL and the code for the user
//! let signed_in = app.wait_for_device_flow(&flow, std::future::pending()).await?;
//! let session = TokenSession::new(app, signed_in.into_credentials(), Resource::Graph);
//! let graph = GraphConnector::new(GraphConfig::default(), session)?;
//! let folders = graph.list_folders().await?;
//! # drop(folders);
//! # Ok(())
//! # }
//! ```
//!
//! The whole walk — folders, a page of the Inbox, delta twice, a move — is the program
//! `examples/sign_in_and_read.rs`, which CI runs against `mailroom-sim`.
#![warn(missing_docs)]

mod attachment_lists;
mod bulk;
mod config;
mod connector;
mod stream;
mod subscriptions;
mod sync;
mod telemetry;
mod transport;
pub mod wire;

pub use bulk::BulkResult;
pub use config::{
    DEFAULT_DELTA_PAGE_SIZE, DEFAULT_GRAPH_URL, DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_PAGES_PER_RUN, DEFAULT_PAGE_SIZE, GraphConfig, RetryPolicy,
};
pub use connector::GraphConnector;
pub use stream::ByteStream;
pub use subscriptions::SubscriptionRequest;
pub use sync::DeltaOptions;
pub use wire::error::GraphError;

/// The builder of the HTTP client to pass to [`GraphConfig::http_client`], with TLS ready
/// (from `mailroom-oauth`).
pub use mailroom_oauth::http_client_builder;
/// The sleep and clock traits used by [`GraphConfig::sleep`], from `mailroom-oauth`.
pub use mailroom_oauth::{Sleep, TokioSleep};

/// Sign-in and tokens: the whole of `mailroom-oauth` (device code flow, refresh,
/// [`oauth::TokenSession`]), so that this crate alone takes a user from sign-in to mail.
pub use mailroom_oauth as oauth;

// The connector vocabulary of `mailroom-core`, so that this crate stands alone: the
// `Connector` trait its methods come from, the folder, query, message, cursor and error
// types they take and return, and the credentials `GraphConnector` is built from.
pub use mailroom_core::{
    AccessToken, AccountInfo, Attachment, Change, ClientSecret, Connector, ConnectorError,
    Credentials, DeleteMode, EmailAddress, ErrorKind, FetchQuery, Folder, FolderPath, FolderRef,
    FolderRefError, Message, MessagePage, OAuthCredentials, PageToken, Protocol, RefreshToken,
    Result, SyncCursor, SyncPage, WellKnownFolder, async_trait, chrono, fetch_all,
};

/// The reqwest (0.13) whose `Client` [`GraphConfig::http_client`] takes.
pub use reqwest;
