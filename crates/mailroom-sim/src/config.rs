//! Configuration of a simulator run: token lifetimes, mailboxes, faults.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything a simulator run is started with.
///
/// Every field has a sensible default (see [`SimConfig::default`]); change the
/// ones a test cares about with struct update syntax or the builder methods.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// TCP port on 127.0.0.1; `0` picks any free port.
    pub port: u16,
    /// Seed of every random choice (tokens, faults, batch order).
    pub seed: u64,
    /// Mailboxes created at start. The first one is the default
    /// [`auto_approve_user`](Self::auto_approve_user).
    pub mailboxes: Vec<MailboxSpec>,
    /// Lifetime of access tokens (`expires_in`). Default 3600 s.
    pub access_token_lifetime: Duration,
    /// Inactivity lifetime of refresh tokens; older ones fail with AADSTS700082.
    /// Default 90 days.
    pub refresh_token_lifetime: Duration,
    /// `expires_in` of device codes. Default 900 s.
    pub device_code_lifetime: Duration,
    /// Initial polling `interval` of device codes. Default 5 s.
    pub device_code_interval: Duration,
    /// Approve a pending device code automatically on this token poll
    /// (counting only well-paced polls). Default `Some(2)`: the second poll
    /// succeeds. `None` waits for an explicit approval.
    pub auto_approve_after_polls: Option<u32>,
    /// Mailbox signed in by automatic approval; `None` = the first mailbox.
    pub auto_approve_user: Option<String>,
    /// Reject an already redeemed refresh token with `invalid_grant`
    /// (AADSTS70000). Replays are counted in both modes.
    pub strict_refresh_rotation: bool,
    /// Error code of the HTTP 410 sent for an expired delta token.
    pub delta_error_code: DeltaErrorCode,
    /// Delta tokens older than this are answered with 410. Default 30 days.
    pub delta_token_lifetime: Duration,
    /// Confidential clients: `client_id` → secret. Any other client id is a
    /// public client (and must not send a secret).
    pub confidential_clients: BTreeMap<String, String>,
    /// Honour `Prefer: IdType="ImmutableId"` (default `true`). With `false`
    /// the preference is ignored, as by a service without immutable ids:
    /// no `Preference-Applied`, and ids change on move.
    pub honor_immutable_ids: bool,
    /// Shuffle the responses of a `$batch` (Graph documents that they may
    /// come back in any order). Default `true`.
    pub shuffle_batch_responses: bool,
    /// Fault injection; can be changed at run time with
    /// [`Simulator::set_faults`](crate::Simulator::set_faults).
    pub faults: Faults,
    /// Domain names accepted as tenants (`/{domain}/oauth2/v2.0/token`), as
    /// the verified domains of a directory are, besides the domains of the
    /// mailboxes. `common`, `organizations`, `consumers` and GUIDs are always
    /// accepted; any other tenant gets AADSTS90002 like a domain no
    /// directory has verified.
    pub tenant_domains: Vec<String>,
    /// Serve HTTPS instead of HTTP. Default `None` (plain HTTP).
    pub tls: Option<Tls>,
    /// The base URL clients see (`https://sim.example.test:8443`), when a
    /// proxy or a name stands between them and the simulator: every
    /// absolute URL it generates (OpenID configuration, instance
    /// discovery, `@odata.nextLink`, `@odata.deltaLink`, `@odata.context`,
    /// the verification URI, `error_uri`) starts with it. Scheme, host and
    /// port only. Default `None`: `http://127.0.0.1:{port}` (`https://` with
    /// [`tls`](Self::tls)).
    pub public_url: Option<String>,
}

/// How the simulator serves HTTPS.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tls {
    /// A certificate made at start: a throw-away CA (its PEM in
    /// [`Simulator::ca_certificate_pem`](crate::Simulator::ca_certificate_pem)
    /// and the file [`Simulator::ca_file`](crate::Simulator::ca_file), for
    /// clients to trust) signs a server certificate for `127.0.0.1`, `::1`,
    /// `localhost` and the host of [`SimConfig::public_url`].
    SelfSigned,
    /// A certificate chain and its private key, both PEM files.
    Files {
        /// The certificate chain, leaf first.
        cert: std::path::PathBuf,
        /// The private key (PKCS#8, PKCS#1 or SEC1).
        key: std::path::PathBuf,
    },
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            port: 0,
            seed: 42,
            mailboxes: vec![MailboxSpec::default()],
            access_token_lifetime: Duration::from_secs(3600),
            refresh_token_lifetime: Duration::from_secs(90 * 24 * 3600),
            device_code_lifetime: Duration::from_secs(900),
            device_code_interval: Duration::from_secs(5),
            auto_approve_after_polls: Some(2),
            auto_approve_user: None,
            strict_refresh_rotation: false,
            delta_error_code: DeltaErrorCode::SyncStateNotFound,
            delta_token_lifetime: Duration::from_secs(30 * 24 * 3600),
            confidential_clients: BTreeMap::new(),
            honor_immutable_ids: true,
            shuffle_batch_responses: true,
            faults: Faults::default(),
            tenant_domains: Vec::new(),
            tls: None,
            public_url: None,
        }
    }
}

impl SimConfig {
    /// Sets the port (0 = any free port).
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets the seed of all random choices.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Replaces the mailboxes created at start.
    #[must_use]
    pub fn mailboxes(mut self, mailboxes: Vec<MailboxSpec>) -> Self {
        self.mailboxes = mailboxes;
        self
    }

    /// Adds one mailbox to those created at start.
    #[must_use]
    pub fn mailbox(mut self, mailbox: MailboxSpec) -> Self {
        self.mailboxes.push(mailbox);
        self
    }

    /// Registers a confidential client and its secret.
    #[must_use]
    pub fn confidential_client(
        mut self,
        client_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        self.confidential_clients
            .insert(client_id.into(), secret.into());
        self
    }

    /// Sets the access token lifetime.
    #[must_use]
    pub fn access_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.access_token_lifetime = lifetime;
        self
    }

    /// Sets the refresh token (inactivity) lifetime.
    #[must_use]
    pub fn refresh_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_token_lifetime = lifetime;
        self
    }

    /// Sets automatic approval (`None` = approve only explicitly).
    #[must_use]
    pub fn auto_approve_after_polls(mut self, polls: Option<u32>) -> Self {
        self.auto_approve_after_polls = polls;
        self
    }

    /// Turns strict refresh token rotation on or off.
    #[must_use]
    pub fn strict_refresh_rotation(mut self, strict: bool) -> Self {
        self.strict_refresh_rotation = strict;
        self
    }

    /// Sets the fault injection.
    #[must_use]
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Accepts one more domain name as a tenant.
    #[must_use]
    pub fn tenant_domain(mut self, domain: impl Into<String>) -> Self {
        self.tenant_domains.push(domain.into());
        self
    }

    /// Serves HTTPS (`None`: plain HTTP).
    #[must_use]
    pub fn tls(mut self, tls: Option<Tls>) -> Self {
        self.tls = tls;
        self
    }

    /// Sets the base URL clients see.
    #[must_use]
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Sets the code of the HTTP 410 answer to an expired delta token.
    #[must_use]
    pub fn delta_error_code(mut self, code: DeltaErrorCode) -> Self {
        self.delta_error_code = code;
        self
    }
}

/// How the messages of a generated mailbox are spread over its folders.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FolderLayout {
    /// Over every folder (most in the Inbox), the usual demo mailbox.
    #[default]
    Spread,
    /// All in one folder, given by well-known name (`inbox`) or display path
    /// (`Projects/Alpha`); other folders stay empty.
    AllIn(String),
}

/// The default [`MailboxSpec::attachment_percent`].
pub const DEFAULT_ATTACHMENT_PERCENT: u8 = 25;

/// A mailbox to generate: who owns it and how much mail it holds.
///
/// The content is a pure function of `(seed, index)`: the same spec always
/// produces the same subjects, senders, bodies and attachments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MailboxSpec {
    /// SMTP address, also the `userPrincipalName`.
    pub address: String,
    /// Display name of the owner.
    pub display_name: String,
    /// Seed of the generated content.
    pub seed: u64,
    /// Number of generated messages.
    pub messages: usize,
    /// How the messages are spread over folders.
    pub layout: FolderLayout,
    /// Percentage of received messages that carry attachments (drafts: two fifths
    /// of it); about half of the image attachments are inline. Default 25.
    pub attachment_percent: u8,
}

impl Default for MailboxSpec {
    fn default() -> Self {
        MailboxSpec {
            address: "demo@mailroom.test".to_owned(),
            display_name: "Demo User".to_owned(),
            seed: 1,
            messages: 50,
            layout: FolderLayout::Spread,
            attachment_percent: DEFAULT_ATTACHMENT_PERCENT,
        }
    }
}

impl MailboxSpec {
    /// A mailbox with `messages` generated messages; the display name is
    /// derived from the address and the seed from its bytes.
    pub fn new(address: impl Into<String>, messages: usize) -> Self {
        let address = address.into();
        let local = address.split('@').next().unwrap_or("user");
        let mut display_name = String::new();
        for (i, part) in local.split(['.', '_', '-']).enumerate() {
            if i > 0 {
                display_name.push(' ');
            }
            let mut chars = part.chars();
            if let Some(first) = chars.next() {
                display_name.extend(first.to_uppercase());
                display_name.push_str(chars.as_str());
            }
        }
        let seed = address.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        MailboxSpec {
            address,
            display_name,
            seed,
            messages,
            layout: FolderLayout::Spread,
            attachment_percent: DEFAULT_ATTACHMENT_PERCENT,
        }
    }

    /// Sets the percentage of messages with attachments (capped at 100).
    #[must_use]
    pub fn attachment_percent(mut self, percent: u8) -> Self {
        self.attachment_percent = percent.min(100);
        self
    }

    /// Sets the display name.
    #[must_use]
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = name.into();
        self
    }

    /// Sets the content seed.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Puts every message in one folder.
    #[must_use]
    pub fn all_in(mut self, folder: impl Into<String>) -> Self {
        self.layout = FolderLayout::AllIn(folder.into());
        self
    }
}

/// The `Retry-After` header sent with injected 429/503/504 answers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfter {
    /// Whole seconds (`Retry-After: 2`).
    Seconds(u64),
    /// Fractional seconds (`Retry-After: 0.5`), as some Microsoft services send.
    Fractional(f64),
    /// No header: the client must back off on its own.
    None,
    /// An HTTP date this many seconds ahead
    /// (`Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`).
    HttpDate(u64),
}

impl RetryAfter {
    /// The header value and the wait it promises, if any, at wall time `now`.
    pub(crate) fn header(self, now: chrono::DateTime<chrono::Utc>) -> Option<(String, Duration)> {
        match self {
            RetryAfter::Seconds(s) => Some((s.to_string(), Duration::from_secs(s))),
            RetryAfter::Fractional(f) if f.is_finite() && f >= 0.0 => {
                Some((format!("{f}"), Duration::from_secs_f64(f)))
            }
            RetryAfter::HttpDate(s) => {
                // HTTP dates have whole seconds: the promise is the date shown.
                let target = now + chrono::Duration::seconds(s as i64);
                let shown =
                    chrono::DateTime::from_timestamp(target.timestamp(), 0).unwrap_or(target);
                let wait = (shown - now).to_std().unwrap_or(Duration::ZERO);
                Some((shown.format("%a, %d %b %Y %H:%M:%S GMT").to_string(), wait))
            }
            RetryAfter::Fractional(_) | RetryAfter::None => None,
        }
    }
}

/// A request budget: at most `requests` per mailbox in each `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestBudget {
    /// Requests allowed per window.
    pub requests: u32,
    /// Length of the window (seconds, possibly fractional, in JSON).
    #[serde(with = "secs")]
    pub window: Duration,
}

/// Durations as (fractional) seconds in JSON: `{"latency": 0.25}`.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v)
            .map_err(|e| D::Error::custom(format!("invalid duration {v}: {e}")))
    }
}

/// Fault injection for Graph requests (`/v1.0/...`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Probability (0.0–1.0) that a Graph request (or a `$batch` item) gets a
    /// random error status instead of its answer.
    pub error_rate: f64,
    /// Statuses to draw from: any of 429, 500, 503, 504.
    pub statuses: Vec<u16>,
    /// `Retry-After` sent with 429, 503 and 504 answers.
    pub retry_after: RetryAfter,
    /// Delay added before every Graph and identity answer (seconds in JSON).
    #[serde(with = "secs")]
    pub latency: Duration,
    /// Concurrent requests allowed per mailbox; the next one gets 429
    /// `ApplicationThrottled`. Default `Some(4)`, like Exchange Online.
    /// Items of a `$batch` that would run in parallel count too.
    pub mailbox_concurrency_limit: Option<u32>,
    /// Requests allowed per mailbox per time window (429 past it).
    pub request_budget: Option<RequestBudget>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            error_rate: 0.0,
            statuses: vec![429, 500, 503, 504],
            retry_after: RetryAfter::Seconds(1),
            latency: Duration::ZERO,
            mailbox_concurrency_limit: Some(4),
            request_budget: None,
        }
    }
}

impl Faults {
    /// No faults at all, not even the concurrency limit.
    pub fn none() -> Self {
        Faults {
            mailbox_concurrency_limit: None,
            ..Faults::default()
        }
    }
}

/// Error code of the HTTP 410 answer to an expired delta token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeltaErrorCode {
    /// `SyncStateNotFound` (Outlook resources).
    #[default]
    SyncStateNotFound,
    /// `syncStateNotFound` (the directory spelling).
    #[serde(rename = "syncStateNotFound")]
    SyncStateNotFoundLower,
    /// `resyncRequired`.
    #[serde(rename = "resyncRequired")]
    ResyncRequired,
}

impl DeltaErrorCode {
    pub(crate) fn code(self) -> &'static str {
        match self {
            DeltaErrorCode::SyncStateNotFound => "SyncStateNotFound",
            DeltaErrorCode::SyncStateNotFoundLower => "syncStateNotFound",
            DeltaErrorCode::ResyncRequired => "resyncRequired",
        }
    }
}

/// A refresh failure scripted for one account: every refresh of that
/// account fails this way until [`RefreshFailure::None`] is scripted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefreshFailure {
    /// No failure (clears a scripted one).
    None,
    /// `invalid_grant` AADSTS700082: refresh token expired by inactivity.
    Expired,
    /// `invalid_grant` AADSTS50173: grant revoked (password changed/reset).
    Revoked,
    /// `invalid_grant` AADSTS65001 with `suberror: consent_required`.
    ConsentRequired,
    /// `invalid_grant` AADSTS50076 with `suberror: basic_action` (MFA needed).
    MfaRequired,
    /// `invalid_grant` AADSTS70043: expired by a sign-in frequency policy.
    SignInFrequency,
    /// HTTP 500 `server_error` (AADSTS50000): transient, worth a retry.
    ServerError,
}
