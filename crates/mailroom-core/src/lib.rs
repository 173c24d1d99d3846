//! Mailroom's domain types and the connector trait. No I/O lives here.
//!
//! - [`Credentials`] reads and writes the Python system's credential JSON
//!   ([`OAuthCredentials`] for Graph, [`ImapCredentials`] for the IMAP fallback);
//!   tokens and passwords are secret newtypes ([`AccessToken`], [`RefreshToken`],
//!   [`ClientSecret`], [`Password`]) whose `Debug` is redacted.
//! - [`Message`] is the record every connector returns; [`preview`] makes its
//!   2000-character body preview.
//! - [`WellKnownFolder`] and [`FolderRef`] name folders the same way for Graph and IMAP.
//! - [`Connector`] is the trait `mailroom-graph` and `mailroom-imap` implement; with the
//!   `mock` feature, `MockConnector` is a mockall mock of it for your tests.
//!
//! ```
//! use mailroom_core::{Credentials, FolderRef, WellKnownFolder};
//!
//! let creds = Credentials::from_json(
//!     r#"{"token": "t", "refresh_token": "r", "client_id": "app",
//!         "scopes": ["https://graph.microsoft.com/Mail.ReadWrite", "offline_access"],
//!         "expiry": "2025-01-20T11:30:00"}"#,
//! )?;
//! let oauth = creds.oauth().expect("oauth2 credentials");
//! assert_eq!(oauth.tenant_id, "common");
//! assert!(!format!("{creds:?}").contains("\"t\""));
//!
//! assert_eq!(FolderRef::parse("trash")?, FolderRef::WellKnown(WellKnownFolder::Deleted));
//! assert_eq!(WellKnownFolder::Deleted.graph_name(), "deleteditems");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod account;
mod connector;
mod credentials;
pub mod endpoint;
mod error;
mod folder;
mod message;
mod secret;

pub use account::{AccountKind, AccountStatus, UnknownName};
#[cfg(feature = "mock")]
pub use connector::MockConnector;
pub use connector::{
    AccountInfo, Change, Connector, DeleteMode, FetchQuery, MessagePage, PageToken, Protocol,
    StateSink, SyncCursor, SyncPage, fetch_all,
};
pub use credentials::{
    Credentials, DEFAULT_IMAP_PORT, DEFAULT_TENANT, EXPIRY_SKEW, ImapAuth, ImapCredentials,
    ImapTls, OAuthCredentials, format_expiry, parse_expiry,
};
pub use error::{ConnectorError, ErrorKind};
pub use folder::{Folder, FolderPath, FolderRef, FolderRefError, WellKnownFolder};
pub use message::{Attachment, EmailAddress, Message, PREVIEW_MAX_CHARS, preview};
pub use secret::{AccessToken, ClientSecret, Password, RefreshToken};

/// The attribute that implementations of [`Connector`] put on their `impl` block
/// (`#[mailroom_core::async_trait]`), re-exported from `async-trait`.
pub use async_trait::async_trait;
/// The date and time types of [`Message`], [`OAuthCredentials::expiry`] and
/// [`FetchQuery`], re-exported so callers use the same version.
pub use chrono;
/// `mockall` itself, for the predicates and sequences of [`MockConnector`]
/// expectations (feature `mock`).
#[cfg(feature = "mock")]
pub use mockall;

/// A convenient alias for connector results.
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;
