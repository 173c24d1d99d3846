//! The client applications: public (no secret) and confidential (client secret),
//! and what they do: device code flow and refresh token grant.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::future::{BoxFuture, Either};
use mailroom_core::{AccessToken, ClientSecret, OAuthCredentials, RefreshToken};
use oauth2::basic::{BasicRevocationErrorResponse, BasicTokenIntrospectionResponse};
use oauth2::{
    AuthType, ClientId, DeviceAuthorizationResponse, DeviceAuthorizationUrl,
    DeviceCodeErrorResponseType, EndpointNotSet, EndpointSet, ErrorResponse, RequestTokenError,
    Scope, StandardRevocableToken, TokenResponse as _, TokenUrl,
};

use crate::authority::{Authority, Tenant};
use crate::error::{Error, ErrorKind, Operation};
use crate::resource::{OFFLINE_ACCESS, Resource, with_offline_access};
use crate::time::{Clock, Opaque, Sleep, SystemClock, TokioSleep};
use crate::transport::{Answer, Transport};
use crate::wire::{AadDeviceFields, AadErrorBody, AadTokenResponse};

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Timeout of one request to the identity platform, unless the builder sets another.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest answer read from the identity platform: 1 MiB (token and device code
/// answers are a few KB).
pub const DEFAULT_MAX_BODY_SIZE: u64 = 1024 * 1024;

/// Lifetime assumed when a token answer has no `expires_in` (the identity
/// platform always sends one; its default access token lifetime is about an hour).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

type AadClient = oauth2::Client<
    AadErrorBody,
    AadTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// What both kinds of application share.
struct AppCore {
    client_id: String,
    /// `None` for a public client: the `oauth2` client below then has no secret
    /// either, so no request of a public client can carry one.
    secret: Option<ClientSecret>,
    authority: Authority,
    oauth: AadClient,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    sleep: Arc<dyn Sleep>,
    timeout: Duration,
    max_body_size: u64,
}

impl fmt::Debug for AppCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientApplication")
            .field("client_id", &self.client_id)
            .field("confidential", &self.secret.is_some())
            .field("authority", &self.authority.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A builder of [`PublicClientApplication`], [`ConfidentialClientApplication`] or
/// [`ClientApplication`] (the type parameter is what [`build`](Self::build) returns).
pub struct ApplicationBuilder<App> {
    client_id: String,
    secret: Option<ClientSecret>,
    authority: Authority,
    http: Option<reqwest::Client>,
    clock: Arc<dyn Clock>,
    sleep: Arc<dyn Sleep>,
    timeout: Duration,
    max_body_size: u64,
    _app: PhantomData<fn() -> App>,
}

impl<App> fmt::Debug for ApplicationBuilder<App> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplicationBuilder")
            .field("client_id", &self.client_id)
            .field("confidential", &self.secret.is_some())
            .field("authority", &self.authority.to_string())
            .field(
                "http",
                &self.http.as_ref().map(|_| Opaque("reqwest::Client")),
            )
            .field("clock", &Opaque("dyn Clock"))
            .field("sleep", &Opaque("dyn Sleep"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<App> ApplicationBuilder<App> {
    fn new(client_id: String, secret: Option<ClientSecret>) -> Self {
        ApplicationBuilder {
            client_id,
            secret,
            authority: Authority::default(),
            http: None,
            clock: Arc::new(SystemClock),
            sleep: Arc::new(TokioSleep),
            timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            _app: PhantomData,
        }
    }

    /// Where to sign in; default `https://login.microsoftonline.com/common`.
    #[must_use]
    pub fn authority(mut self, authority: Authority) -> Self {
        self.authority = authority;
        self
    }

    /// The HTTP client to use (share one connection pool across the program);
    /// default a new rustls `reqwest::Client`.
    ///
    /// Build yours with [`http_client_builder`](crate::http_client_builder): it
    /// makes sure rustls has a crypto provider (building a client of this crate's
    /// reqwest without one panics).
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The clock for token expiry and device code deadlines; default [`SystemClock`].
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How to wait between device code polls; default [`TokioSleep`].
    #[must_use]
    pub fn sleep(mut self, sleep: impl Sleep + 'static) -> Self {
        self.sleep = Arc::new(sleep);
        self
    }

    /// Timeout of each request to the identity platform; default 30 s.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest answer of the identity platform read, default
    /// [`DEFAULT_MAX_BODY_SIZE`] (token answers are a few KB); a larger one fails
    /// with [`ErrorKind::Protocol`] as soon as the limit is passed.
    #[must_use]
    pub fn max_body_size(mut self, bytes: u64) -> Self {
        self.max_body_size = bytes.max(1);
        self
    }

    fn core(self, secret: Option<ClientSecret>) -> Result<AppCore> {
        let id = self.client_id.trim();
        if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "invalid client id {:?}: it must be a non-empty word",
                    self.client_id
                ),
            ));
        }
        let mut oauth = oauth2::Client::new(ClientId::new(id.to_owned()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(TokenUrl::from_url(self.authority.token_url()))
            .set_device_authorization_url(DeviceAuthorizationUrl::from_url(
                self.authority.device_code_url(),
            ));
        if let Some(secret) = &secret {
            oauth = oauth.set_client_secret(oauth2::ClientSecret::new(secret.secret().to_owned()));
        }
        let http = match self.http {
            Some(http) => http,
            None => http_client_builder()
                .user_agent(concat!("mailroom-oauth/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidConfig,
                        format!("cannot create the http client: {e}"),
                    )
                    .with_source(e)
                })?,
        };
        Ok(AppCore {
            client_id: id.to_owned(),
            secret,
            authority: self.authority,
            oauth,
            http,
            clock: self.clock,
            sleep: self.sleep,
            timeout: self.timeout,
            max_body_size: self.max_body_size,
        })
    }
}

impl ApplicationBuilder<PublicClientApplication> {
    /// Builds the public client. Fails for an empty client id.
    pub fn build(self) -> Result<PublicClientApplication> {
        Ok(PublicClientApplication {
            core: Arc::new(self.core(None)?),
        })
    }
}

impl ApplicationBuilder<ConfidentialClientApplication> {
    /// Builds the confidential client. Fails for an empty client id or secret.
    pub fn build(mut self) -> Result<ConfidentialClientApplication> {
        let secret = self.secret.take().filter(|s| !s.secret().is_empty());
        let Some(secret) = secret else {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "invalid client secret for client {}: it is empty",
                    self.client_id
                ),
            ));
        };
        Ok(ConfidentialClientApplication {
            core: Arc::new(self.core(Some(secret))?),
        })
    }
}

impl ApplicationBuilder<ClientApplication> {
    /// Builds a confidential client if a secret was given, a public one otherwise.
    pub fn build(mut self) -> Result<ClientApplication> {
        Ok(match self.secret.take() {
            Some(secret) => ClientApplication::Confidential(
                ApplicationBuilder::<ConfidentialClientApplication> {
                    client_id: self.client_id,
                    secret: Some(secret),
                    authority: self.authority,
                    http: self.http,
                    clock: self.clock,
                    sleep: self.sleep,
                    timeout: self.timeout,
                    max_body_size: self.max_body_size,
                    _app: PhantomData,
                }
                .build()?,
            ),
            None => ClientApplication::Public(PublicClientApplication {
                core: Arc::new(self.core(None)?),
            }),
        })
    }
}

/// An application that cannot keep a secret (a CLI, a desktop app): it signs users
/// in with the device code flow and refreshes tokens without a client secret.
///
/// It holds no secret, so none of its requests can carry one. Cheap to clone.
#[derive(Clone)]
pub struct PublicClientApplication {
    core: Arc<AppCore>,
}

/// An application with a client secret (a service): every token request carries
/// the secret (in the request body, as MSAL does).
///
/// Cheap to clone.
#[derive(Clone)]
pub struct ConfidentialClientApplication {
    core: Arc<AppCore>,
}

/// Either kind of application, for code that takes whatever the stored credentials
/// say ([`ClientApplication::from_credentials`]).
#[derive(Clone, Debug)]
pub enum ClientApplication {
    /// A public client (no secret).
    Public(PublicClientApplication),
    /// A confidential client (client secret).
    Confidential(ConfidentialClientApplication),
}

impl fmt::Debug for PublicClientApplication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicClientApplication")
            .field(&*self.core)
            .finish()
    }
}

impl fmt::Debug for ConfidentialClientApplication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ConfidentialClientApplication")
            .field(&*self.core)
            .finish()
    }
}

impl PublicClientApplication {
    /// A builder for a public client with this application (client) id.
    pub fn builder(client_id: impl Into<String>) -> ApplicationBuilder<PublicClientApplication> {
        ApplicationBuilder::new(client_id.into(), None)
    }
}

impl ConfidentialClientApplication {
    /// A builder for a confidential client with this application (client) id and secret.
    pub fn builder(
        client_id: impl Into<String>,
        secret: ClientSecret,
    ) -> ApplicationBuilder<ConfidentialClientApplication> {
        ApplicationBuilder::new(client_id.into(), Some(secret))
    }
}

impl ClientApplication {
    /// The application described by stored credentials, on the cloud at `cloud_url`
    /// (`https://login.microsoftonline.com` for the public cloud): confidential when
    /// they hold a `client_secret`, public otherwise; the tenant is their `tenant_id`.
    pub fn from_credentials(credentials: &OAuthCredentials, cloud_url: &str) -> Result<Self> {
        ClientApplication::builder_from_credentials(credentials, cloud_url)?.build()
    }

    /// Like [`from_credentials`](Self::from_credentials), but returns the builder, to
    /// set the HTTP client, clock or sleep first.
    pub fn builder_from_credentials(
        credentials: &OAuthCredentials,
        cloud_url: &str,
    ) -> Result<ApplicationBuilder<ClientApplication>> {
        let tenant: Tenant = credentials.tenant_id.parse()?;
        let authority = Authority::new(cloud_url, tenant)?;
        let secret = credentials
            .client_secret
            .clone()
            .filter(|s| !s.secret().is_empty());
        Ok(ApplicationBuilder::new(credentials.client_id.clone(), secret).authority(authority))
    }

    /// True for a confidential client.
    pub fn is_confidential(&self) -> bool {
        matches!(self, ClientApplication::Confidential(_))
    }

    fn core(&self) -> &Arc<AppCore> {
        match self {
            ClientApplication::Public(app) => &app.core,
            ClientApplication::Confidential(app) => &app.core,
        }
    }
}

impl From<PublicClientApplication> for ClientApplication {
    fn from(app: PublicClientApplication) -> Self {
        ClientApplication::Public(app)
    }
}

impl From<ConfidentialClientApplication> for ClientApplication {
    fn from(app: ConfidentialClientApplication) -> Self {
        ClientApplication::Confidential(app)
    }
}

/// The same methods on the three application types.
trait HasCore {
    fn app_core(&self) -> &AppCore;
}

impl HasCore for PublicClientApplication {
    fn app_core(&self) -> &AppCore {
        &self.core
    }
}

impl HasCore for ConfidentialClientApplication {
    fn app_core(&self) -> &AppCore {
        &self.core
    }
}

impl HasCore for ClientApplication {
    fn app_core(&self) -> &AppCore {
        self.core()
    }
}

macro_rules! app_methods {
    ($ty:ty) => {
        impl $ty {
            /// The application (client) id.
            pub fn client_id(&self) -> &str {
                let core = self.app_core();
                &core.client_id
            }

            /// Where this application signs users in.
            pub fn authority(&self) -> &Authority {
                let core = self.app_core();
                &core.authority
            }

            /// The current time by this application's [`Clock`].
            pub fn now(&self) -> DateTime<Utc> {
                let core = self.app_core();
                core.clock.now()
            }

            /// Starts the device code flow (step 1 of 2): asks the identity platform
            /// for a user code. Show [`DeviceCodeFlow::message`] to the user, then
            /// call [`wait_for_device_flow`](Self::wait_for_device_flow).
            ///
            /// `offline_access` is added to `scopes` if missing, so that a refresh
            /// token comes back.
            pub async fn start_device_flow<S: AsRef<str>>(
                &self,
                scopes: &[S],
            ) -> Result<DeviceCodeFlow> {
                let core = self.app_core();
                core.start_device_flow(with_offline_access(scopes)).await
            }

            /// Waits for the user to finish the device code flow (step 2 of 2):
            /// polls the token endpoint every `interval` (5 s more after each
            /// `slow_down`) until the user signs in, declines (`ErrorKind::Declined`),
            /// the code expires (`ErrorKind::Expired`), or `cancel` completes
            /// (`ErrorKind::Cancelled`; pass `std::future::pending()` to never cancel).
            ///
            /// A poll that cannot reach the server is retried with a growing interval
            /// (at most 10 s) until the code expires. After an `ErrorKind::Transient`
            /// answer (HTTP 5xx), calling this again with the same `flow` resumes the
            /// wait while the code is valid. Waits go through the application's
            /// [`Sleep`], the deadline through its [`Clock`].
            pub async fn wait_for_device_flow(
                &self,
                flow: &DeviceCodeFlow,
                cancel: impl Future<Output = ()>,
            ) -> Result<AuthenticationResult> {
                let core = self.app_core();
                core.wait_for_device_flow(flow, cancel).await
            }

            /// Redeems a refresh token for a new access token for `scopes`
            /// (`offline_access` is added if missing). The answer carries the new,
            /// rotated refresh token: persist it, the old one must not be used again.
            pub async fn acquire_token_by_refresh_token<S: AsRef<str>>(
                &self,
                refresh_token: &RefreshToken,
                scopes: &[S],
            ) -> Result<AuthenticationResult> {
                let core = self.app_core();
                core.refresh(refresh_token, with_offline_access(scopes))
                    .await
            }
        }
    };
}

app_methods!(PublicClientApplication);
app_methods!(ConfidentialClientApplication);
app_methods!(ClientApplication);

/// A started device code flow: what to show the user, and (hidden) the device code.
///
/// Its `Debug` output never shows the device code.
#[derive(Clone)]
pub struct DeviceCodeFlow {
    /// The code the user types at [`verification_uri`](Self::verification_uri).
    pub user_code: String,
    /// Where the user signs in (`https://microsoft.com/devicelogin`).
    pub verification_uri: String,
    /// The verification URI with the code filled in, when the server gives one.
    pub verification_uri_complete: Option<String>,
    /// The text to show the user, from the identity platform (localised there).
    pub message: String,
    /// When the device code expires.
    pub expires_at: DateTime<Utc>,
    /// How long to wait between polls, as first given by the server.
    pub interval: Duration,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    details: DeviceAuthorizationResponse<AadDeviceFields>,
}

impl fmt::Debug for DeviceCodeFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCodeFlow")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_at", &self.expires_at)
            .field("interval", &self.interval)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Tokens from a successful sign-in or refresh, with what is needed to store them as
/// [`OAuthCredentials`] ([`into_credentials`](Self::into_credentials)) or to update
/// stored ones ([`apply_to`](Self::apply_to)).
#[derive(Clone)]
pub struct AuthenticationResult {
    access_token: AccessToken,
    refresh_token: Option<RefreshToken>,
    expires_at: DateTime<Utc>,
    ext_expires_at: Option<DateTime<Utc>>,
    scopes: Vec<String>,
    client_id: String,
    client_secret: Option<ClientSecret>,
    tenant: Tenant,
}

impl fmt::Debug for AuthenticationResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticationResult")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .field("client_id", &self.client_id)
            .field("confidential", &self.client_secret.is_some())
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl AuthenticationResult {
    /// The access token.
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// The refresh token to keep (the new one after a rotation).
    pub fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    /// When the access token expires (it counts as expired 5 minutes earlier).
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// The extended expiry (`ext_expires_in`), for outages of the token service.
    pub fn ext_expires_at(&self) -> Option<DateTime<Utc>> {
        self.ext_expires_at
    }

    /// The granted scopes (with `offline_access` when a refresh token came back).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The resource the access token is for.
    pub fn resource(&self) -> Option<Resource> {
        Resource::of_scopes(&self.scopes)
    }

    /// New stored credentials: token, refresh token, client id, client secret (for
    /// a confidential client), tenant, scopes and expiry.
    pub fn into_credentials(self) -> OAuthCredentials {
        let mut creds = OAuthCredentials::new(self.client_id.clone());
        creds.client_secret = self.client_secret.clone();
        creds.tenant_id = self.tenant.to_string();
        self.apply_to(&mut creds);
        creds
    }

    /// Updates stored credentials after a refresh: the token, expiry and scopes,
    /// and the refresh token (the rotated one always replaces the old). The client
    /// id, secret, tenant and unknown `extra` fields are kept.
    pub fn apply_to(self, credentials: &mut OAuthCredentials) {
        credentials.token = Some(self.access_token);
        if let Some(rt) = self.refresh_token {
            credentials.refresh_token = Some(rt);
        }
        credentials.expiry = Some(self.expires_at);
        credentials.scopes = self.scopes;
    }
}

impl AppCore {
    fn scopes_of(scopes: &[String]) -> impl Iterator<Item = Scope> + '_ {
        scopes.iter().map(|s| Scope::new(s.clone()))
    }

    async fn start_device_flow(&self, scopes: Vec<String>) -> Result<DeviceCodeFlow> {
        let context = format!(
            "cannot start the device code flow for client {}",
            self.client_id
        );
        let transport = Transport::new(self.http.clone(), self.timeout, self.max_body_size);
        let now = self.clock.now();
        let details: DeviceAuthorizationResponse<AadDeviceFields> = self
            .oauth
            .exchange_device_code()
            .add_scopes(Self::scopes_of(&scopes))
            .request_async(&transport)
            .await
            .map_err(|e| {
                request_error(
                    &context,
                    Operation::DeviceAuthorization,
                    e,
                    transport.last_answer(),
                )
            })?;
        let user_code = details.user_code().secret().clone();
        let verification_uri = details.verification_uri().to_string();
        let message = details.extra_fields().message.clone().unwrap_or_else(|| {
            format!(
                "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
            )
        });
        let expires_at = now + to_delta(details.expires_in());
        tracing::info!(
            client_id = %self.client_id,
            authority = %self.authority,
            expires_at = %expires_at,
            interval_s = details.interval().as_secs(),
            "device code flow started"
        );
        Ok(DeviceCodeFlow {
            user_code,
            verification_uri,
            verification_uri_complete: details
                .verification_uri_complete()
                .map(|u| u.secret().clone()),
            message,
            expires_at,
            interval: details.interval(),
            scopes,
            details,
        })
    }

    async fn wait_for_device_flow(
        &self,
        flow: &DeviceCodeFlow,
        cancel: impl Future<Output = ()>,
    ) -> Result<AuthenticationResult> {
        let context = format!(
            "cannot complete the device code flow for client {}",
            self.client_id
        );
        let expired = || {
            Error::new(
                ErrorKind::Expired,
                format!("{context}: the device code expired before the user signed in"),
            )
        };
        let remaining = (flow.expires_at - self.clock.now())
            .to_std()
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(expired)?;
        let transport = Transport::new(self.http.clone(), self.timeout, self.max_body_size);
        let clock = Arc::clone(&self.clock);
        let sleep = Arc::clone(&self.sleep);
        let poll = self
            .oauth
            .exchange_device_access_token(&flow.details)
            .set_time_fn(move || clock.now())
            .request_async(&transport, move |wait| sleep.sleep(wait), Some(remaining));
        let outcome = match futures_util::future::select(pin!(poll), pin!(cancel)).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right(((), _)) => {
                tracing::info!(client_id = %self.client_id, "device code flow cancelled");
                return Err(Error::cancelled(&context));
            }
        };
        let issued_at = self.clock.now();
        match outcome {
            Ok(tokens) => {
                let result = self.result_from(tokens, issued_at, &flow.scopes, None);
                tracing::info!(
                    client_id = %self.client_id,
                    resource = ?result.resource(),
                    expires_at = %result.expires_at,
                    "device code flow completed"
                );
                Ok(result)
            }
            // The `oauth2` crate's own deadline, reached without the server saying so.
            Err(RequestTokenError::ServerResponse(e))
                if *e.error() == DeviceCodeErrorResponseType::ExpiredToken
                    && !answer_has_error(transport.last_answer().as_ref(), "expired_token") =>
            {
                Err(expired())
            }
            Err(e) => Err(request_error(
                &context,
                Operation::DeviceToken,
                e,
                transport.last_answer(),
            )),
        }
    }

    async fn refresh(
        &self,
        refresh_token: &RefreshToken,
        scopes: Vec<String>,
    ) -> Result<AuthenticationResult> {
        let context = format!("cannot refresh token for client {}", self.client_id);
        let transport = Transport::new(self.http.clone(), self.timeout, self.max_body_size);
        let rt = oauth2::RefreshToken::new(refresh_token.secret().to_owned());
        let issued_at = self.clock.now();
        let outcome = self
            .oauth
            .exchange_refresh_token(&rt)
            .add_scopes(Self::scopes_of(&scopes))
            .request_async(&transport)
            .await;
        match outcome {
            Ok(tokens) => {
                let result = self.result_from(tokens, issued_at, &scopes, Some(refresh_token));
                tracing::info!(
                    client_id = %self.client_id,
                    resource = ?result.resource(),
                    expires_at = %result.expires_at,
                    "access token refreshed"
                );
                Ok(result)
            }
            Err(e) => {
                let err = request_error(&context, Operation::Refresh, e, transport.last_answer());
                tracing::warn!(
                    client_id = %self.client_id,
                    kind = %err.kind(),
                    code = err.aadsts_code().or(err.error_code()).unwrap_or(""),
                    "refresh failed"
                );
                Err(err)
            }
        }
    }

    fn result_from(
        &self,
        tokens: AadTokenResponse,
        issued_at: DateTime<Utc>,
        requested: &[String],
        old_refresh_token: Option<&RefreshToken>,
    ) -> AuthenticationResult {
        let refresh_token = tokens
            .refresh_token()
            .map(|rt| RefreshToken::new(rt.secret().clone()))
            .or_else(|| old_refresh_token.cloned());
        let mut scopes: Vec<String> = match tokens.scopes() {
            Some(granted) if !granted.is_empty() => granted.iter().map(|s| s.to_string()).collect(),
            _ => requested.to_vec(),
        };
        let has_offline = scopes
            .iter()
            .any(|s| s.eq_ignore_ascii_case(OFFLINE_ACCESS));
        if refresh_token.is_some() && !has_offline {
            scopes.push(OFFLINE_ACCESS.to_owned());
        }
        let lifetime = tokens.expires_in().unwrap_or(DEFAULT_LIFETIME);
        AuthenticationResult {
            access_token: AccessToken::new(tokens.access_token().secret().clone()),
            refresh_token,
            expires_at: issued_at + to_delta(lifetime),
            ext_expires_at: tokens
                .extra_fields()
                .ext_expires_in
                .map(|s| issued_at + to_delta(Duration::from_secs(s))),
            scopes,
            client_id: self.client_id.clone(),
            client_secret: self.secret.clone(),
            tenant: self.authority.tenant().clone(),
        }
    }
}

fn to_delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn answer_has_error(answer: Option<&Answer>, error: &str) -> bool {
    answer
        .filter(|a| a.status >= 300)
        .and_then(|a| serde_json::from_slice::<AadErrorBody>(&a.body).ok())
        .is_some_and(|b| b.error.as_deref() == Some(error))
}

/// Turns an `oauth2` request error into ours, from the last answer when there was one.
fn request_error<RE, TE>(
    context: &str,
    operation: Operation,
    err: RequestTokenError<RE, TE>,
    last: Option<Answer>,
) -> Error
where
    RE: std::error::Error + Send + Sync + 'static,
    TE: ErrorResponse,
{
    if let RequestTokenError::Request(e) = err {
        let too_large = (&e as &(dyn std::error::Error + 'static))
            .downcast_ref::<crate::transport::TransportError>()
            .is_some_and(crate::transport::TransportError::is_too_large);
        let kind = if too_large {
            ErrorKind::Protocol
        } else {
            ErrorKind::Transient
        };
        return Error::new(kind, format!("{context}: {e}")).with_source(e);
    }
    match last {
        Some(a) if a.status >= 300 || a.status < 200 => {
            Error::from_answer(context, operation, a.status, &a.body, a.retry_after)
        }
        Some(a) if a.status != 200 => Error::new(
            ErrorKind::Protocol,
            format!("{context}: unexpected answer HTTP {}", a.status),
        ),
        _ => match err {
            // A 200 answer that is not a token answer. Its body may hold tokens: it is
            // never quoted, only where parsing stopped.
            RequestTokenError::Parse(e, _) => {
                let inner = e.inner().to_string();
                let what = if inner.starts_with("missing field") {
                    inner.split(" at line").next().unwrap_or("").to_owned()
                } else {
                    format!("invalid value at `{}`", e.path())
                };
                Error::new(
                    ErrorKind::Protocol,
                    format!("{context}: cannot parse the answer: {what}"),
                )
            }
            RequestTokenError::Other(msg) => {
                Error::new(ErrorKind::Protocol, format!("{context}: {msg}"))
            }
            RequestTokenError::ServerResponse(e) => {
                Error::new(ErrorKind::Protocol, format!("{context}: {e}"))
            }
            RequestTokenError::Request(_) => unreachable!("handled above"),
        },
    }
}

/// What a [`TokenSession`](crate::TokenSession) needs from an application: the time
/// and a refresh. A seam for the session's unit tests.
pub(crate) trait Refresher: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
    fn refresh(
        &self,
        refresh_token: RefreshToken,
        scopes: Vec<String>,
    ) -> BoxFuture<'static, Result<AuthenticationResult>>;
}

impl Refresher for ClientApplication {
    fn now(&self) -> DateTime<Utc> {
        self.core().clock.now()
    }

    fn refresh(
        &self,
        refresh_token: RefreshToken,
        scopes: Vec<String>,
    ) -> BoxFuture<'static, Result<AuthenticationResult>> {
        let core = Arc::clone(self.core());
        Box::pin(async move {
            core.refresh(&refresh_token, with_offline_access(&scopes))
                .await
        })
    }
}

/// A builder for the [`reqwest::Client`](crate::reqwest::Client) to share across a
/// program (pass it to [`ApplicationBuilder::http_client`] and `mailroom-graph`'s
/// `GraphConfig::http_client`), with TLS ready.
///
/// This crate's reqwest is built without a rustls crypto provider of its own (its
/// default, aws-lc-rs, is a C build), and rustls refuses to choose when a program
/// links more than one: building a client then panics. This makes ring — which the
/// IMAP connector uses too — the process default unless the program already
/// installed one, then returns `reqwest::Client::builder()`. Every default client of
/// Mailroom is made here.
///
/// ```
/// let http = mailroom_oauth::http_client_builder()
///     .connect_timeout(std::time::Duration::from_secs(10))
///     .build()?;
/// # drop(http);
/// # Ok::<(), mailroom_oauth::reqwest::Error>(())
/// ```
pub fn http_client_builder() -> reqwest::ClientBuilder {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // An error means another thread installed one meanwhile: that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder()
}

#[cfg(test)]
pub(crate) fn test_result(
    access_token: &str,
    refresh_token: Option<&str>,
    expires_at: DateTime<Utc>,
    scopes: &[&str],
) -> AuthenticationResult {
    AuthenticationResult {
        access_token: AccessToken::new(access_token),
        refresh_token: refresh_token.map(RefreshToken::new),
        expires_at,
        ext_expires_at: None,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        client_id: "app".to_owned(),
        client_secret: None,
        tenant: Tenant::Common,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_validate() {
        let err = PublicClientApplication::builder(" ").build().unwrap_err();
        assert!(err.is_invalid_config(), "{err}");
        let err = ConfidentialClientApplication::builder("app", ClientSecret::new(""))
            .build()
            .unwrap_err();
        assert!(
            err.is_invalid_config() && err.to_string().contains("secret"),
            "{err}"
        );
        let app = ConfidentialClientApplication::builder("app", ClientSecret::new("s3cret-value"))
            .authority(Authority::public_cloud(Tenant::Organizations))
            .build()
            .unwrap();
        assert_eq!(app.client_id(), "app");
        assert_eq!(app.authority().tenant(), &Tenant::Organizations);
        let debug = format!("{app:?}");
        assert!(
            !debug.contains("s3cret-value") && debug.contains("confidential: true"),
            "{debug}"
        );
    }

    #[test]
    fn from_credentials_picks_the_kind() {
        let mut creds = OAuthCredentials::new("app");
        creds.tenant_id = "contoso.onmicrosoft.com".into();
        let app = ClientApplication::from_credentials(&creds, "https://login.microsoftonline.com")
            .unwrap();
        assert!(!app.is_confidential());
        assert_eq!(
            app.authority().token_url().as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        creds.client_secret = Some(ClientSecret::new("s"));
        let app = ClientApplication::from_credentials(&creds, "http://127.0.0.1:9").unwrap();
        assert!(app.is_confidential());
        creds.tenant_id = "bad tenant".into();
        let err = ClientApplication::from_credentials(&creds, "http://127.0.0.1:9").unwrap_err();
        assert!(err.is_invalid_config());
        creds.tenant_id = "common".into();
        let err =
            ClientApplication::from_credentials(&creds, "http://mail.example.com").unwrap_err();
        assert!(err.is_invalid_config());
    }

    #[test]
    fn result_into_and_onto_credentials() {
        let at = DateTime::parse_from_rfc3339("2025-01-20T11:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let r = test_result(
            "at-2",
            Some("rt-2"),
            at,
            &[
                "https://graph.microsoft.com/Mail.ReadWrite",
                "offline_access",
            ],
        );
        assert_eq!(r.resource(), Some(Resource::Graph));
        let creds = r.clone().into_credentials();
        assert_eq!(creds.token.as_ref().unwrap().secret(), "at-2");
        assert_eq!(creds.refresh_token.as_ref().unwrap().secret(), "rt-2");
        assert_eq!(
            (creds.client_id.as_str(), creds.tenant_id.as_str()),
            ("app", "common")
        );
        assert_eq!(creds.expiry, Some(at));

        let mut stored = OAuthCredentials::new("app");
        stored.refresh_token = Some(RefreshToken::new("rt-1"));
        stored.client_secret = Some(ClientSecret::new("keep"));
        stored
            .extra
            .insert("note".into(), serde_json::json!("kept"));
        r.apply_to(&mut stored);
        assert_eq!(stored.refresh_token.as_ref().unwrap().secret(), "rt-2");
        assert_eq!(stored.client_secret.as_ref().unwrap().secret(), "keep");
        assert_eq!(stored.extra["note"], "kept");
        let debug = format!("{stored:?}");
        assert!(!debug.contains("at-2") && !debug.contains("rt-2"));
    }

    #[tokio::test]
    async fn parse_failures_never_quote_the_body() {
        let app = PublicClientApplication::builder("app").build().unwrap();
        let body = br#"{"access_token":"secret-token-value","token_type":7}"#.to_vec();
        let http = |_request: oauth2::HttpRequest| {
            let body = body.clone();
            async move {
                Ok::<_, std::io::Error>(
                    oauth2::http::Response::builder()
                        .status(200)
                        .header("content-type", "application/json")
                        .body(body)
                        .unwrap(),
                )
            }
        };
        let rt = oauth2::RefreshToken::new("rt".to_owned());
        let e = app
            .core
            .oauth
            .exchange_refresh_token(&rt)
            .request_async(&http)
            .await
            .unwrap_err();
        assert!(matches!(e, RequestTokenError::Parse(..)));
        let err = request_error(
            "cannot refresh token for client app",
            Operation::Refresh,
            e,
            Some(Answer {
                status: 200,
                body: Vec::new(),
                retry_after: None,
            }),
        );
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert!(
            !format!("{err} {err:?}").contains("secret-token-value"),
            "{err:?}"
        );
        assert!(err.to_string().contains("token_type"), "{err}");
    }
}
