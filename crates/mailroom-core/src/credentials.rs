//! The credential JSON of the Python system, read and written byte-for-byte compatibly.
//!
//! Two shapes live in the same encrypted column:
//!
//! - OAuth2 (Graph): `{"token", "refresh_token", "client_id", "client_secret"?,
//!   "tenant_id"?, "scopes", "expiry"}`;
//! - IMAP: `{"type": "imap", "host", "port"?, "tls"?, "username"?, "password"}` or the
//!   same with the OAuth2 fields instead of `password` (SASL XOAUTH2).
//!
//! `expiry` is written naive (UTC, no offset, whole seconds or microseconds) as the
//! Python system wrote it, and read with or without `Z`/offset and any fraction
//! ([`format_expiry`], [`parse_expiry`]).
//!
//! `"type": "imap"` selects IMAP, even for an Outlook account (the fallback). Fields this
//! crate does not know are kept in `extra` and written back unchanged, so a
//! re-encryption never drops what another tool stored.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::secret::{AccessToken, ClientSecret, Password, RefreshToken};

/// An access token counts as expired this long before its `expiry` (the Python rule).
pub const EXPIRY_SKEW: TimeDelta = TimeDelta::minutes(5);

/// The tenant used when the JSON has no `tenant_id`.
pub const DEFAULT_TENANT: &str = "common";

/// The IMAP port used when the JSON has no `port` (implicit TLS).
pub const DEFAULT_IMAP_PORT: u16 = 993;

/// Decrypted account credentials: either OAuth2 tokens for Graph or an IMAP login.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// OAuth2 tokens used with Microsoft Graph.
    OAuth(OAuthCredentials),
    /// An IMAP login (`"type": "imap"`), with a password or with OAuth2 tokens.
    Imap(ImapCredentials),
}

impl Credentials {
    /// The OAuth2 part, whether it drives Graph or IMAP XOAUTH2.
    pub fn oauth(&self) -> Option<&OAuthCredentials> {
        match self {
            Credentials::OAuth(oauth) => Some(oauth),
            Credentials::Imap(imap) => match &imap.auth {
                ImapAuth::OAuth(oauth) => Some(oauth),
                ImapAuth::Password(_) => None,
            },
        }
    }

    /// Mutable access to the OAuth2 part, to store refreshed tokens.
    pub fn oauth_mut(&mut self) -> Option<&mut OAuthCredentials> {
        match self {
            Credentials::OAuth(oauth) => Some(oauth),
            Credentials::Imap(imap) => match &mut imap.auth {
                ImapAuth::OAuth(oauth) => Some(oauth),
                ImapAuth::Password(_) => None,
            },
        }
    }

    /// Parses the plaintext credential JSON.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Writes the plaintext credential JSON (only ever to be encrypted).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("credentials always serialize")
    }
}

/// OAuth2 credentials in the Python system's shape.
#[derive(Debug, Clone)]
pub struct OAuthCredentials {
    /// The current access token (`token`), if any.
    pub token: Option<AccessToken>,
    /// The refresh token; rotated on every refresh.
    pub refresh_token: Option<RefreshToken>,
    /// The application (client) id.
    pub client_id: String,
    /// Present for a confidential client; absent for a public client.
    pub client_secret: Option<ClientSecret>,
    /// Tenant: `common`, `organizations`, `consumers`, a GUID or a domain.
    pub tenant_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// When `token` expires (UTC). `None` means unknown, treated as expired.
    pub expiry: Option<DateTime<Utc>>,
    /// Fields this crate does not know, kept for the round trip.
    pub extra: Map<String, Value>,
}

impl OAuthCredentials {
    /// New credentials for a client id, with no tokens yet.
    pub fn new(client_id: impl Into<String>) -> Self {
        OAuthCredentials {
            token: None,
            refresh_token: None,
            client_id: client_id.into(),
            client_secret: None,
            tenant_id: DEFAULT_TENANT.to_owned(),
            scopes: Vec::new(),
            expiry: None,
            extra: Map::new(),
        }
    }

    /// True when the access token is missing or expires within [`EXPIRY_SKEW`] of `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.valid_token(now).is_none()
    }

    /// The access token if it is still valid at `now` (5 minutes of margin).
    pub fn valid_token(&self, now: DateTime<Utc>) -> Option<&AccessToken> {
        let expiry = self.expiry?;
        if now >= expiry - EXPIRY_SKEW {
            return None;
        }
        self.token.as_ref()
    }
}

/// How the IMAP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImapTls {
    /// TLS from the first byte (port 993).
    #[default]
    Implicit,
    /// Plain connection upgraded with STARTTLS (port 143).
    Starttls,
    /// No TLS at all; only accepted for loopback hosts.
    None,
}

/// How an IMAP login authenticates.
#[derive(Debug, Clone)]
pub enum ImapAuth {
    /// LOGIN/PLAIN with a password (or an app password).
    Password(Password),
    /// SASL XOAUTH2 with an OAuth2 access token.
    OAuth(OAuthCredentials),
}

/// IMAP credentials (`"type": "imap"`).
#[derive(Debug, Clone)]
pub struct ImapCredentials {
    /// Server host name.
    pub host: String,
    /// Server port (default 993).
    pub port: u16,
    /// Transport security (default implicit TLS).
    pub tls: ImapTls,
    /// Login name; `None` means the account's email address.
    pub username: Option<String>,
    /// Password or OAuth2 tokens.
    pub auth: ImapAuth,
    /// Fields this crate does not know, kept for the round trip.
    pub extra: Map<String, Value>,
}

// ---- serde --------------------------------------------------------------------------

#[derive(Deserialize)]
struct OAuthWire {
    #[serde(default)]
    token: Option<AccessToken>,
    #[serde(default)]
    refresh_token: Option<RefreshToken>,
    client_id: String,
    #[serde(default)]
    client_secret: Option<ClientSecret>,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default, deserialize_with = "de_scopes")]
    scopes: Vec<String>,
    #[serde(default, deserialize_with = "de_expiry")]
    expiry: Option<DateTime<Utc>>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl From<OAuthWire> for OAuthCredentials {
    fn from(w: OAuthWire) -> Self {
        OAuthCredentials {
            token: w.token,
            refresh_token: w.refresh_token,
            client_id: w.client_id,
            // An empty secret is how some tools wrote "no secret": a public client.
            client_secret: w.client_secret.filter(|s| !s.secret().is_empty()),
            tenant_id: w
                .tenant_id
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| DEFAULT_TENANT.to_owned()),
            scopes: w.scopes,
            expiry: w.expiry,
            extra: w.extra,
        }
    }
}

#[derive(Deserialize)]
struct ImapWire {
    host: String,
    #[serde(default, deserialize_with = "de_port")]
    port: Option<u16>,
    #[serde(default)]
    tls: Option<ImapTls>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<Password>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

const OAUTH_FIELDS: [&str; 7] = [
    "token",
    "refresh_token",
    "client_id",
    "client_secret",
    "tenant_id",
    "scopes",
    "expiry",
];

impl<'de> Deserialize<'de> for Credentials {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut map = Map::<String, Value>::deserialize(deserializer)?;
        match map.get("type") {
            Some(Value::String(t)) if t.eq_ignore_ascii_case("imap") => {}
            _ => {
                let wire: OAuthWire = serde_json::from_value(Value::Object(map))
                    .map_err(|e| D::Error::custom(format!("oauth2 credentials: {e}")))?;
                return Ok(Credentials::OAuth(wire.into()));
            }
        }
        map.remove("type");
        let mut wire: ImapWire = serde_json::from_value(Value::Object(map))
            .map_err(|e| D::Error::custom(format!("imap credentials: {e}")))?;
        let auth = match wire.password.take() {
            Some(password) => ImapAuth::Password(password),
            None => {
                let has_tokens = ["token", "refresh_token"]
                    .iter()
                    .any(|k| wire.rest.get(*k).is_some_and(|v| !v.is_null()));
                if !has_tokens {
                    return Err(D::Error::custom(
                        "imap credentials need a \"password\" or oauth2 \"token\"/\"refresh_token\"",
                    ));
                }
                let oauth: OAuthWire =
                    serde_json::from_value(Value::Object(std::mem::take(&mut wire.rest)))
                        .map_err(|e| D::Error::custom(format!("imap oauth2 credentials: {e}")))?;
                ImapAuth::OAuth(oauth.into())
            }
        };
        Ok(Credentials::Imap(ImapCredentials {
            host: wire.host,
            port: wire.port.unwrap_or(DEFAULT_IMAP_PORT),
            tls: wire.tls.unwrap_or_default(),
            username: wire.username,
            auth,
            extra: wire.rest,
        }))
    }
}

fn write_oauth(map: &mut Map<String, Value>, o: &OAuthCredentials) {
    let token = |t: Option<&str>| t.map_or(Value::Null, |s| Value::String(s.to_owned()));
    map.insert(
        "token".into(),
        token(o.token.as_ref().map(AccessToken::secret)),
    );
    map.insert(
        "refresh_token".into(),
        token(o.refresh_token.as_ref().map(RefreshToken::secret)),
    );
    map.insert("client_id".into(), Value::String(o.client_id.clone()));
    if let Some(secret) = &o.client_secret {
        map.insert(
            "client_secret".into(),
            Value::String(secret.secret().to_owned()),
        );
    }
    map.insert("tenant_id".into(), Value::String(o.tenant_id.clone()));
    map.insert(
        "scopes".into(),
        Value::Array(o.scopes.iter().cloned().map(Value::String).collect()),
    );
    map.insert(
        "expiry".into(),
        o.expiry
            .map_or(Value::Null, |e| Value::String(format_expiry(e))),
    );
    for (k, v) in &o.extra {
        map.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

impl Serialize for Credentials {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = Map::new();
        match self {
            Credentials::OAuth(o) => write_oauth(&mut map, o),
            Credentials::Imap(i) => {
                map.insert("type".into(), Value::String("imap".into()));
                map.insert("host".into(), Value::String(i.host.clone()));
                map.insert("port".into(), Value::from(i.port));
                map.insert("tls".into(), serde_json::to_value(i.tls).expect("enum"));
                if let Some(user) = &i.username {
                    map.insert("username".into(), Value::String(user.clone()));
                }
                match &i.auth {
                    ImapAuth::Password(p) => {
                        map.insert("password".into(), Value::String(p.secret().to_owned()));
                    }
                    ImapAuth::OAuth(o) => write_oauth(&mut map, o),
                }
                for (k, v) in &i.extra {
                    if !OAUTH_FIELDS.contains(&k.as_str()) {
                        map.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
        }
        map.serialize(serializer)
    }
}

/// Writes an expiry the way the Python system wrote it: naive UTC with no offset, as
/// `datetime.isoformat()` prints it — `2025-01-20T11:30:00`, or with exactly six
/// fractional digits when there are microseconds (`2025-01-20T11:30:00.250000`).
///
/// Finer precision is truncated (an earlier expiry is the safe side). This is the one
/// form `datetime.fromisoformat` reads in every Python version since 3.7, and it
/// compares with `datetime.utcnow()` (naive) without a `TypeError`, which a `Z` or an
/// offset would cause.
pub fn format_expiry(expiry: DateTime<Utc>) -> String {
    // Through microseconds since the epoch: truncates nanoseconds and folds a leap
    // second into the next one, so the fraction always has six digits or none.
    let micros = expiry.timestamp_micros();
    let expiry = DateTime::from_timestamp_micros(micros).unwrap_or(expiry);
    if micros.rem_euclid(1_000_000) == 0 {
        expiry.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        expiry.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    }
}

/// Parses an expiry as the Python system wrote it (`2025-01-20T11:30:00`, naive = UTC)
/// or with `Z`, an offset, fractional seconds or a space instead of `T`.
pub fn parse_expiry(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    let t = s.replacen(' ', "T", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&t) {
        return Some(dt.with_timezone(&Utc));
    }
    // Python's isoformat() of a naive datetime, optionally with microseconds.
    let naive = NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M"))
        .ok()?;
    Some(naive.and_utc())
}

fn de_expiry<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => parse_expiry(&s)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expiry {s:?} is not an ISO-8601 date-time"))),
    }
}

fn de_scopes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scopes {
        List(Vec<String>),
        Spaced(String),
    }
    Ok(match Option::<Scopes>::deserialize(d)? {
        None => Vec::new(),
        Some(Scopes::List(list)) => list,
        Some(Scopes::Spaced(s)) => s.split_whitespace().map(str::to_owned).collect(),
    })
}

fn de_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u16),
        Text(String),
    }
    match Option::<Port>::deserialize(d)? {
        None => Ok(None),
        Some(Port::Number(n)) => Ok(Some(n)),
        Some(Port::Text(s)) => {
            s.trim().parse().map(Some).map_err(|_| {
                D::Error::custom(format!("port {s:?} is not a number from 0 to 65535"))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const PYTHON_OAUTH: &str = r#"{"token": "at-1", "refresh_token": "rt-1", "client_id": "app", "client_secret": "s3cret", "tenant_id": "contoso.onmicrosoft.com", "scopes": ["https://graph.microsoft.com/Mail.ReadWrite", "offline_access"], "expiry": "2025-01-20T11:30:00", "note": {"kept": true}}"#;

    #[test]
    fn python_oauth_json_reads_and_keeps_unknown_fields() {
        let creds = Credentials::from_json(PYTHON_OAUTH).unwrap();
        let Credentials::OAuth(o) = &creds else {
            panic!("expected oauth")
        };
        assert_eq!(o.token.as_ref().unwrap().secret(), "at-1");
        assert_eq!(o.refresh_token.as_ref().unwrap().secret(), "rt-1");
        assert_eq!(o.client_secret.as_ref().unwrap().secret(), "s3cret");
        assert_eq!(o.tenant_id, "contoso.onmicrosoft.com");
        assert_eq!(
            o.expiry,
            Some(Utc.with_ymd_and_hms(2025, 1, 20, 11, 30, 0).unwrap())
        );
        let back: Value = serde_json::from_str(&creds.to_json()).unwrap();
        assert_eq!(back["note"], serde_json::json!({"kept": true}));
        assert_eq!(
            back["expiry"], "2025-01-20T11:30:00",
            "written as Python wrote it"
        );
        assert_eq!(back["scopes"][1], "offline_access");
        // A second round trip is stable.
        let again = Credentials::from_json(&creds.to_json()).unwrap().to_json();
        assert_eq!(again, creds.to_json());
    }

    #[test]
    fn defaults_for_public_client() {
        let creds =
            Credentials::from_json(r#"{"token":"a","refresh_token":"r","client_id":"c","scopes":"Mail.Read offline_access"}"#)
                .unwrap();
        let o = creds.oauth().unwrap();
        assert_eq!(o.tenant_id, "common");
        assert!(o.client_secret.is_none());
        assert_eq!(o.scopes, ["Mail.Read", "offline_access"]);
        assert!(o.expiry.is_none() && o.is_expired(Utc::now()));
        let back: Value = serde_json::from_str(&creds.to_json()).unwrap();
        assert!(
            back.get("client_secret").is_none(),
            "a public client never gains a secret"
        );
    }

    #[test]
    fn expiry_formats() {
        let want = Utc.with_ymd_and_hms(2025, 1, 20, 11, 30, 0).unwrap();
        for s in [
            "2025-01-20T11:30:00",
            "2025-01-20T11:30:00Z",
            "2025-01-20T12:30:00+01:00",
            "2025-01-20 11:30:00",
            "2025-01-20T11:30",
        ] {
            assert_eq!(parse_expiry(s), Some(want), "{s}");
        }
        for s in [
            "2025-01-20T11:30:00.25Z",
            "2025-01-20T11:30:00.250000",
            "2025-01-20T11:30:00.250000000+00:00",
            "2025-01-20 12:30:00.25+01:00",
        ] {
            assert_eq!(
                parse_expiry(s),
                Some(want + TimeDelta::milliseconds(250)),
                "{s}"
            );
        }
        assert_eq!(parse_expiry("tomorrow"), None);
        let err = Credentials::from_json(r#"{"client_id":"c","expiry":"tomorrow"}"#).unwrap_err();
        assert!(err.to_string().contains("expiry \"tomorrow\""), "{err}");
    }

    #[track_caller]
    fn check_written(expiry: &str, written: &str) {
        assert_eq!(
            parse_expiry(expiry).map(format_expiry).as_deref(),
            Some(written)
        );
        // What is written reads back to itself.
        assert_eq!(
            parse_expiry(written).map(format_expiry).as_deref(),
            Some(written)
        );
    }

    #[test]
    fn expiry_is_written_naive_with_zero_or_six_fractional_digits() {
        check_written("2025-01-20T11:30:00Z", "2025-01-20T11:30:00");
        check_written("2025-01-20T11:30:00", "2025-01-20T11:30:00");
        check_written("2025-01-20T12:30:00+01:00", "2025-01-20T11:30:00");
        check_written("2025-01-20T11:30:00.25", "2025-01-20T11:30:00.250000");
        check_written("2025-01-20T11:30:00.000001Z", "2025-01-20T11:30:00.000001");
        // Nanoseconds (what a fresh sign-in computes) are truncated to microseconds.
        check_written(
            "2026-12-06T12:24:58.948052872Z",
            "2026-12-06T12:24:58.948052",
        );
        check_written("2026-12-06T12:24:58.000000999Z", "2026-12-06T12:24:58");
        // A leap second never prints a seventh digit or a 60th second.
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        assert_eq!(format_expiry(leap), "2017-01-01T00:00:00.500000");
    }

    #[test]
    fn five_minute_skew() {
        let expiry = Utc.with_ymd_and_hms(2025, 1, 20, 11, 30, 0).unwrap();
        let mut o = OAuthCredentials::new("c");
        o.token = Some(AccessToken::new("t"));
        o.expiry = Some(expiry);
        assert!(o.valid_token(expiry - TimeDelta::minutes(6)).is_some());
        assert!(o.is_expired(expiry - TimeDelta::minutes(5)));
        assert!(o.is_expired(expiry));
    }

    #[test]
    fn imap_password_and_xoauth2() {
        let creds = Credentials::from_json(
            r#"{"type":"imap","host":"imap.example.com","username":"bob","password":"pw","folder_hint":"X"}"#,
        )
        .unwrap();
        let Credentials::Imap(i) = &creds else {
            panic!("expected imap")
        };
        assert_eq!((i.port, i.tls), (993, ImapTls::Implicit));
        assert!(matches!(&i.auth, ImapAuth::Password(p) if p.secret() == "pw"));
        let back: Value = serde_json::from_str(&creds.to_json()).unwrap();
        assert_eq!(back["type"], "imap");
        assert_eq!(back["folder_hint"], "X");

        let creds = Credentials::from_json(
            r#"{"type":"imap","host":"outlook.office365.com","port":"993","tls":"starttls","token":"at","refresh_token":"rt","client_id":"c","expiry":"2030-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let Credentials::Imap(i) = &creds else {
            panic!("expected imap")
        };
        assert_eq!(i.tls, ImapTls::Starttls);
        assert!(matches!(&i.auth, ImapAuth::OAuth(o) if o.client_id == "c"));
        assert!(
            i.extra.is_empty(),
            "oauth fields are not duplicated as extras"
        );
        assert!(creds.oauth().is_some());
        let round = Credentials::from_json(&creds.to_json()).unwrap();
        assert_eq!(round.to_json(), creds.to_json());
    }

    #[test]
    fn clear_errors() {
        let err = Credentials::from_json(r#"{"type":"imap","host":"h"}"#).unwrap_err();
        assert!(err.to_string().contains("need a \"password\""), "{err}");
        let err = Credentials::from_json(r#"{"token":"a"}"#).unwrap_err();
        assert!(err.to_string().contains("client_id"), "{err}");
        let err =
            Credentials::from_json(r#"{"type":"imap","host":"h","password":"p","port":70000}"#)
                .unwrap_err();
        assert!(err.to_string().contains("imap credentials"), "{err}");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let creds = Credentials::from_json(PYTHON_OAUTH).unwrap();
        let debug = format!("{creds:?}");
        for secret in ["at-1", "rt-1", "s3cret"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
}
