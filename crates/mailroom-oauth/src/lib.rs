//! `mailroom-oauth`: sign-in and token lifecycle for the Microsoft identity platform,
//! in the spirit of MSAL, over the [`oauth2`] crate.
//!
//! - [`PublicClientApplication`] (no secret: CLIs, desktop apps) and
//!   [`ConfidentialClientApplication`] (client secret: services), or
//!   [`ClientApplication`], either one, as stored credentials say
//!   ([`ClientApplication::from_credentials`]). Built with an [`ApplicationBuilder`]:
//!   [`Authority`] (cloud host + [`Tenant`]), a shared `reqwest::Client`, an injected
//!   [`Clock`] and [`Sleep`].
//! - Device code flow in two steps: [`start_device_flow`] gives a [`DeviceCodeFlow`]
//!   (user code, verification URI, message, expiry, interval); [`wait_for_device_flow`]
//!   polls until the user signs in, declines, the code expires or the caller cancels.
//! - [`acquire_token_by_refresh_token`]: the refresh token grant; the answer carries the
//!   rotated refresh token, which always replaces the old one.
//! - [`TokenSession`]: one account's token for one [`Resource`] (Graph or Outlook
//!   IMAP), cached by the 5-minute rule, refreshed single-flight. The new
//!   credentials are stored by a [`TokenPersister`] before the new token is used
//!   ([`TokenSession::set_persister`]: a crash cannot lose a rotated refresh
//!   token), or handed to the caller afterwards ([`TokenSession::take_refreshed`]).
//! - [`Error`] with [`ErrorKind`] (`ReauthRequired`, `InvalidConfig`, `Transient`, …),
//!   the AADSTS code, Microsoft's description and the raw error body; it converts
//!   into [`ConnectorError`].
//!
//! Tokens are secret newtypes ([`AccessToken`], [`RefreshToken`], [`ClientSecret`]): they never appear in `Debug` output,
//! logs or error messages.
//!
//! # A personal account (Outlook.com), public client
//!
//! Sign in with the device code flow on the `consumers` tenant, store the
//! credentials, then use a [`TokenSession`] for Microsoft Graph:
//!
//! ```no_run
//! use mailroom_oauth::{Authority, PublicClientApplication, Resource, Tenant, TokenSession};
//!
//! # async fn demo() -> Result<(), mailroom_oauth::Error> {
//! let app = PublicClientApplication::builder("00000000-0000-0000-0000-00000000abcd")
//!     .authority(Authority::public_cloud(Tenant::Consumers))
//!     .build()?;
//! let flow = app.start_device_flow(Resource::Graph.default_scopes()).await?;
//! println!("{}", flow.message); // "To sign in, use a web browser to open … enter the code …"
//! let signed_in = app.wait_for_device_flow(&flow, std::future::pending()).await?;
//! let credentials = signed_in.into_credentials(); // encrypt and store these
//!
//! let session = TokenSession::new(app, credentials, Resource::Graph);
//! let token = session.access_token().await?; // `Authorization: Bearer {token.secret()}`
//! # drop(token);
//! if let Some(rotated) = session.take_refreshed() {
//!     // persist `rotated`: the old refresh token is spent
//! #   drop(rotated);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # A work account (Microsoft 365), confidential client
//!
//! A service with its own app registration and secret, in one tenant, refreshing
//! stored credentials for Outlook IMAP (XOAUTH2):
//!
//! ```no_run
//! use mailroom_oauth::{
//!     Authority, ClientApplication, ClientSecret, Credentials, ConfidentialClientApplication, Resource, Tenant, TokenSession,
//! };
//!
//! # async fn demo(stored_json: &str) -> Result<(), Box<dyn std::error::Error>> {
//! // Signing a user in (once):
//! let tenant: Tenant = "9188040d-6c67-4c5b-b112-36a304b66dad".parse()?; // or Tenant::Organizations
//! let app = ConfidentialClientApplication::builder(
//!     "00000000-0000-0000-0000-00000000beef",
//!     ClientSecret::new("the client secret value"),
//! )
//! .authority(Authority::public_cloud(tenant))
//! .build()?;
//! let flow = app.start_device_flow(Resource::OutlookImap.default_scopes()).await?;
//! eprintln!("{}", flow.message);
//! let credentials = app.wait_for_device_flow(&flow, std::future::pending()).await?.into_credentials();
//! assert!(credentials.client_secret.is_some());
//!
//! // Later, from stored credentials (secret present → confidential client):
//! let stored = Credentials::from_json(stored_json)?;
//! let oauth = stored.oauth().expect("oauth2 credentials").clone();
//! let app = ClientApplication::from_credentials(&oauth, mailroom_oauth::DEFAULT_CLOUD)?;
//! let session = TokenSession::new(app, oauth, Resource::OutlookImap);
//! match session.access_token().await {
//!     Ok(token) => {
//!         // AUTHENTICATE XOAUTH2 with token.secret()
//! #       drop(token);
//!     }
//!     Err(e) if e.is_reauth_required() => {
//!         // mark the account needs_reauth: e.aadsts_code(), e.description()
//!     }
//!     Err(e) => return Err(e.into()), // transient: retry later
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Without a network
//!
//! Tenants, authorities and resources are plain values:
//!
//! ```
//! use mailroom_oauth::{Authority, Resource, Tenant};
//!
//! let authority = Authority::new("http://127.0.0.1:8080", "organizations".parse()?)?;
//! assert_eq!(authority.token_url().as_str(), "http://127.0.0.1:8080/organizations/oauth2/v2.0/token");
//! assert!(Authority::new("http://login.example.com", Tenant::Common).is_err());
//! assert_eq!(
//!     Resource::of_scopes(&["https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"]),
//!     Some(Resource::OutlookImap),
//! );
//! # Ok::<(), mailroom_oauth::Error>(())
//! ```
//!
//! [`start_device_flow`]: PublicClientApplication::start_device_flow
//! [`wait_for_device_flow`]: PublicClientApplication::wait_for_device_flow
//! [`acquire_token_by_refresh_token`]: PublicClientApplication::acquire_token_by_refresh_token
#![warn(missing_docs)]

mod app;
mod authority;
mod error;
mod resource;
mod session;
mod time;
mod transport;
mod wire;

pub use app::http_client_builder;
pub use app::{
    ApplicationBuilder, AuthenticationResult, ClientApplication, ConfidentialClientApplication,
    DEFAULT_MAX_BODY_SIZE, DEFAULT_REQUEST_TIMEOUT, DeviceCodeFlow, PublicClientApplication,
    Result,
};
pub use authority::{Authority, DEFAULT_CLOUD, Tenant, check_service_url};
pub use error::{Error, ErrorKind};
pub use resource::{OFFLINE_ACCESS, Resource};
pub use session::{PersistError, PersistFuture, TokenPersister, TokenSession};
pub use time::{Clock, Sleep, SystemClock, TokioSleep};

// From `mailroom-core`, so that this crate stands alone: the credentials it reads and
// writes, their secret types, the error it converts into, and chrono for expiries.
pub use mailroom_core::{
    AccessToken, ClientSecret, ConnectorError, Credentials, OAuthCredentials, RefreshToken, chrono,
};

/// The reqwest (0.13) whose `Client` [`ApplicationBuilder::http_client`] takes.
pub use reqwest;
