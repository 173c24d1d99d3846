//! The crate's error: what went wrong, what Microsoft said, what to do about it.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mailroom_core::ConnectorError;

use crate::wire::AadErrorBody;

/// What a caller should do about an [`Error`]: the same `mailroom_core::ErrorKind` that
/// connector errors carry, so a caller using this crate and `mailroom-graph` branches on
/// one kind. The sign-in outcomes `Declined` and `Expired` come only from this crate.
pub use mailroom_core::ErrorKind;

/// An error of this crate.
///
/// The message (`Display`) says what was being done and what Microsoft said:
/// `cannot refresh token for client 0f3c…: AADSTS700082: The refresh token has
/// expired due to inactivity. … (invalid_grant)`. [`kind`](Self::kind) says what to
/// do; [`aadsts_code`](Self::aadsts_code), [`error_code`](Self::error_code) and
/// [`body`](Self::body) keep what the server answered. No token ever appears in an
/// error: request bodies are never kept and successful token answers are never
/// quoted.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    server: Option<Box<ServerAnswer>>,
    retry_after: Option<Duration>,
    #[source]
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

/// What the token endpoint answered, kept for callers and operators.
#[derive(Clone, Debug, Default)]
struct ServerAnswer {
    status: u16,
    error: Option<String>,
    aadsts: Option<String>,
    description: Option<String>,
    suberror: Option<String>,
    correlation_id: Option<String>,
    trace_id: Option<String>,
    body: String,
}

/// Which request failed, for the classification of `access_denied` and co.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    /// `POST /devicecode`
    DeviceAuthorization,
    /// `POST /token` with the device code grant.
    DeviceToken,
    /// `POST /token` with the refresh token grant.
    Refresh,
}

/// Longest error body kept (bytes); identity platform errors are well under it.
const MAX_BODY: usize = 8 * 1024;

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            server: None,
            retry_after: None,
            source: None,
        }
    }

    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Error {
        self.source = Some(Arc::new(source));
        self
    }

    pub(crate) fn cancelled(context: &str) -> Error {
        Error::new(ErrorKind::Cancelled, format!("{context}: cancelled"))
    }

    /// Classifies a non-200 answer of the identity platform (pure: status and body).
    pub(crate) fn from_answer(
        context: &str,
        operation: Operation,
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Error {
        let text = trimmed_body(body);
        let parsed: Option<AadErrorBody> = serde_json::from_str(&text).ok();
        let parsed = parsed.filter(|b| b.error.is_some());
        let Some(b) = parsed else {
            let kind = match status {
                429 => ErrorKind::Throttled,
                500..=599 => ErrorKind::Transient,
                _ => ErrorKind::Protocol,
            };
            let reason = http_reason(status);
            return Error {
                kind,
                message: format!("{context}: unexpected answer HTTP {status}{reason}"),
                server: Some(Box::new(ServerAnswer {
                    status,
                    body: text,
                    ..ServerAnswer::default()
                })),
                retry_after,
                source: None,
            };
        };
        let error = b.error.clone().unwrap_or_default();
        let aadsts = b.aadsts_code();
        let description = b.first_line();
        let kind = classify(operation, status, &error, aadsts.as_deref());
        let said = match (&description, &aadsts) {
            (Some(d), Some(code)) if !d.starts_with("AADSTS") => format!("{code}: {d}"),
            (Some(d), _) => d.clone(),
            (None, Some(code)) => match describe(code) {
                Some(summary) => format!("{code}: {summary}"),
                None => code.clone(),
            },
            (None, None) => String::new(),
        };
        // The ids Microsoft support asks for stay in the message (and so in an
        // account's last error and in the logs).
        let ids: String = [
            ("trace_id", &b.trace_id),
            ("correlation_id", &b.correlation_id),
        ]
        .into_iter()
        .filter_map(|(name, id)| id.as_deref().map(|id| format!(", {name} {id}")))
        .collect();
        let message = if said.is_empty() {
            match ids.strip_prefix(", ") {
                Some(ids) => format!("{context}: {error} ({ids})"),
                None => format!("{context}: {error}"),
            }
        } else {
            format!("{context}: {said} ({error}{ids})")
        };
        Error {
            kind,
            message,
            server: Some(Box::new(ServerAnswer {
                status,
                error: Some(error),
                aadsts,
                description,
                suberror: b.suberror.clone(),
                correlation_id: b.correlation_id.clone(),
                trace_id: b.trace_id.clone(),
                body: text,
            })),
            retry_after,
            source: None,
        }
    }

    /// What the caller should do.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// True when the user must sign in again (see [`ErrorKind::ReauthRequired`]).
    pub fn is_reauth_required(&self) -> bool {
        self.kind == ErrorKind::ReauthRequired
    }

    /// True when trying again later may succeed (transient or throttled).
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, ErrorKind::Transient | ErrorKind::Throttled)
    }

    /// True when the application's configuration is wrong (client id, secret, tenant, scopes).
    pub fn is_invalid_config(&self) -> bool {
        self.kind == ErrorKind::InvalidConfig
    }

    /// True when the caller cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.kind == ErrorKind::Cancelled
    }

    /// True when a device code flow ended without a sign-in: declined or expired.
    pub fn is_sign_in_abandoned(&self) -> bool {
        matches!(self.kind, ErrorKind::Declined | ErrorKind::Expired)
    }

    /// The AADSTS code, such as `"AADSTS700082"`, when the server gave one.
    pub fn aadsts_code(&self) -> Option<&str> {
        self.server.as_ref()?.aadsts.as_deref()
    }

    /// The OAuth 2.0 `error`, such as `"invalid_grant"`, when the server gave one.
    pub fn error_code(&self) -> Option<&str> {
        self.server.as_ref()?.error.as_deref()
    }

    /// The `suberror` (`consent_required`, `basic_action`, …), when given.
    pub fn suberror(&self) -> Option<&str> {
        self.server.as_ref()?.suberror.as_deref()
    }

    /// Microsoft's description: the first line of `error_description`, without the
    /// trace and correlation ids.
    pub fn description(&self) -> Option<&str> {
        self.server.as_ref()?.description.as_deref()
    }

    /// The `correlation_id` to quote to Microsoft support.
    pub fn correlation_id(&self) -> Option<&str> {
        self.server.as_ref()?.correlation_id.as_deref()
    }

    /// The `trace_id` of the identity platform's answer, to quote to Microsoft support.
    pub fn trace_id(&self) -> Option<&str> {
        self.server.as_ref()?.trace_id.as_deref()
    }

    /// The HTTP status of the server's answer, if there was one.
    pub fn status(&self) -> Option<u16> {
        self.server.as_ref().map(|s| s.status)
    }

    /// The raw error body the server sent (trimmed, at most 8 KiB). Only error
    /// answers are kept, never a token answer or a request.
    pub fn body(&self) -> Option<&str> {
        self.server
            .as_ref()
            .map(|s| s.body.as_str())
            .filter(|b| !b.is_empty())
    }

    /// How long the server asked to wait (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// A short explanation of the AADSTS code for people, when it is a well-known one
    /// (`"the refresh token expired after a period of inactivity"`).
    pub fn reason(&self) -> Option<&'static str> {
        describe(self.aadsts_code()?)
    }
}

/// The kind of an answer: by HTTP status first (5xx, 429), then by the OAuth
/// `error`, with a few AADSTS codes that Microsoft documents as transient.
fn classify(operation: Operation, status: u16, error: &str, aadsts: Option<&str>) -> ErrorKind {
    match aadsts {
        // AADSTS50196: the client looped; AADSTS90033: a transient error.
        Some("AADSTS50196") => return ErrorKind::Throttled,
        Some("AADSTS90033") => return ErrorKind::Transient,
        _ => {}
    }
    if status == 429 {
        return ErrorKind::Throttled;
    }
    match error {
        "temporarily_unavailable" | "server_error" => return ErrorKind::Transient,
        _ if status >= 500 => return ErrorKind::Transient,
        _ => {}
    }
    match (error, operation) {
        ("authorization_declined", _) => ErrorKind::Declined,
        ("access_denied", Operation::DeviceToken) => ErrorKind::Declined,
        ("expired_token" | "bad_verification_code", _) => ErrorKind::Expired,
        (
            "invalid_grant"
            | "interaction_required"
            | "consent_required"
            | "login_required"
            | "access_denied",
            _,
        ) => ErrorKind::ReauthRequired,
        (
            "invalid_client"
            | "unauthorized_client"
            | "invalid_scope"
            | "invalid_resource"
            | "invalid_request"
            | "unsupported_grant_type"
            | "unsupported_response_type",
            _,
        ) => ErrorKind::InvalidConfig,
        _ => ErrorKind::Protocol,
    }
}

/// Short explanations of the AADSTS codes a mailbox owner or operator meets.
fn describe(code: &str) -> Option<&'static str> {
    Some(match code.strip_prefix("AADSTS").unwrap_or(code) {
        "70008" => "the refresh token or authorization code expired after a period of inactivity",
        "700082" => "the refresh token expired after a period of inactivity",
        "700084" => "the refresh token was issued to a single-page app and has a fixed lifetime",
        "50173" => "the grant was revoked, for example after a password change or reset",
        "70043" => "the refresh token expired by a conditional access sign-in frequency policy",
        "65001" => "the user or an administrator has not consented to the application",
        "50076" | "50079" => "multi-factor authentication is required",
        "50158" => "an external security challenge (conditional access) is required",
        "53003" => "access was blocked by a conditional access policy",
        "70000" => "the grant is invalid, malformed or was already used",
        "54005" => "the authorization code was already redeemed",
        "9002313" => "the request is malformed or the grant is invalid",
        "70016" => "the user has not finished signing in yet",
        "70019" => "the device code expired",
        "70018" => "the device code is not valid",
        "65004" => "the user declined to consent to the application",
        "700016" => "the application was not found in the directory",
        "7000215" => "the client secret is invalid",
        "7000218" => "the application needs a client secret (it is not a public client)",
        "700025" => "a public client must not send a client secret",
        "7000222" => "the client secret has expired",
        "90002" => "the tenant was not found",
        "70011" => "a scope is not valid",
        "28000" => "the scopes name more than one resource",
        "50000" => "the sign-in service had an internal error",
        "50196" => "the client sent too many identical requests in a short time",
        "90033" => "a transient error occurred in the sign-in service",
        _ => return None,
    })
}

fn http_reason(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default()
}

/// The body as text, trimmed and capped at [`MAX_BODY`] bytes (on a char boundary).
fn trimmed_body(body: &[u8]) -> String {
    mailroom_core::endpoint::body_excerpt(body, MAX_BODY)
}

impl From<Error> for ConnectorError {
    /// Keeps the kind, the message, the AADSTS code (or the OAuth `error`) as `code`,
    /// the `Retry-After` and the source.
    fn from(err: Error) -> ConnectorError {
        let mut out = ConnectorError::new(err.kind, err.message.clone());
        if let Some(code) = err.aadsts_code().or(err.error_code()) {
            out = out.with_code(code);
        }
        if let Some(wait) = err.retry_after {
            out = out.with_retry_after(wait);
        }
        if let Some(source) = err.source {
            out = out.with_source(SharedSource(source));
        }
        out
    }
}

/// An `Arc`'d source, boxed for [`ConnectorError::with_source`].
struct SharedSource(Arc<dyn StdError + Send + Sync + 'static>);

impl fmt::Debug for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl StdError for SharedSource {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: &str = "cannot refresh token for client app";

    /// An error body as the identity platform writes it.
    fn aad(error: &str, code: u32, description: &str, suberror: Option<&str>) -> Vec<u8> {
        let mut body = serde_json::json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {description}\r\nTrace ID: 0b6d1e0c-1a2b-4c3d-9e8f-001122334455\r\nCorrelation ID: 7e1d2c3b-4a59-4687-a9b8-c7d6e5f40312\r\nTimestamp: 2025-01-20 11:30:00Z"
            ),
            "error_codes": [code],
            "timestamp": "2025-01-20 11:30:00Z",
            "trace_id": "0b6d1e0c-1a2b-4c3d-9e8f-001122334455",
            "correlation_id": "7e1d2c3b-4a59-4687-a9b8-c7d6e5f40312",
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        });
        if let Some(sub) = suberror {
            body["suberror"] = sub.into();
        }
        serde_json::to_vec(&body).unwrap()
    }

    /// One line per case: the answer, then the kind and AADSTS code expected.
    fn check(
        op: Operation,
        status: u16,
        error: &str,
        code: u32,
        suberror: Option<&str>,
        kind: ErrorKind,
    ) {
        let body = aad(error, code, "Some description.", suberror);
        let err = Error::from_answer(CTX, op, status, &body, None);
        assert_eq!(err.kind(), kind, "{error} {code}");
        let aadsts = format!("AADSTS{code}");
        assert_eq!(err.aadsts_code(), Some(aadsts.as_str()));
        assert_eq!(err.error_code(), Some(error));
        assert_eq!(err.suberror(), suberror);
        assert_eq!(err.status(), Some(status));
        assert_eq!(
            err.to_string(),
            format!(
                "{CTX}: {aadsts}: Some description. ({error}, trace_id 0b6d1e0c-1a2b-4c3d-9e8f-001122334455, correlation_id 7e1d2c3b-4a59-4687-a9b8-c7d6e5f40312)"
            )
        );
        assert_eq!(err.trace_id(), Some("0b6d1e0c-1a2b-4c3d-9e8f-001122334455"));
        assert!(err.body().unwrap().contains("Trace ID"), "raw body kept");
        assert_eq!(
            err.correlation_id(),
            Some("7e1d2c3b-4a59-4687-a9b8-c7d6e5f40312")
        );
    }

    #[test]
    fn classification_of_identity_platform_errors() {
        use ErrorKind::*;
        use Operation::*;
        // Re-auth: every terminal invalid_grant.
        check(Refresh, 400, "invalid_grant", 70008, None, ReauthRequired);
        check(Refresh, 400, "invalid_grant", 700082, None, ReauthRequired);
        check(Refresh, 400, "invalid_grant", 50173, None, ReauthRequired);
        check(
            Refresh,
            400,
            "invalid_grant",
            65001,
            Some("consent_required"),
            ReauthRequired,
        );
        check(
            Refresh,
            400,
            "invalid_grant",
            50076,
            Some("basic_action"),
            ReauthRequired,
        );
        check(Refresh, 400, "invalid_grant", 70043, None, ReauthRequired);
        check(
            Refresh,
            400,
            "interaction_required",
            50079,
            None,
            ReauthRequired,
        );
        check(Refresh, 400, "access_denied", 53003, None, ReauthRequired);
        // Configuration.
        check(Refresh, 401, "invalid_client", 7000215, None, InvalidConfig);
        check(Refresh, 401, "invalid_client", 7000218, None, InvalidConfig);
        check(
            DeviceToken,
            401,
            "invalid_client",
            700025,
            None,
            InvalidConfig,
        );
        check(
            DeviceAuthorization,
            400,
            "unauthorized_client",
            700016,
            None,
            InvalidConfig,
        );
        check(
            DeviceAuthorization,
            400,
            "invalid_scope",
            70011,
            None,
            InvalidConfig,
        );
        check(
            DeviceAuthorization,
            400,
            "invalid_request",
            90002,
            None,
            InvalidConfig,
        );
        // Transient.
        check(Refresh, 500, "server_error", 50000, None, Transient);
        check(
            Refresh,
            503,
            "temporarily_unavailable",
            50000,
            None,
            Transient,
        );
        check(
            Refresh,
            400,
            "temporarily_unavailable",
            50000,
            None,
            Transient,
        );
        check(Refresh, 400, "invalid_request", 90033, None, Transient);
        check(Refresh, 429, "invalid_request", 50196, None, Throttled);
        // Device flow endings.
        check(
            DeviceToken,
            400,
            "authorization_declined",
            65004,
            None,
            Declined,
        );
        check(DeviceToken, 400, "access_denied", 65004, None, Declined);
        check(DeviceToken, 400, "expired_token", 70019, None, Expired);
        check(
            DeviceToken,
            400,
            "bad_verification_code",
            70018,
            None,
            Expired,
        );
        check(
            DeviceToken,
            400,
            "authorization_pending",
            70016,
            None,
            Protocol,
        );
        check(Refresh, 400, "something_new", 1, None, Protocol);
    }

    #[test]
    fn answers_that_are_not_aad_json() {
        let err = Error::from_answer(
            CTX,
            Operation::Refresh,
            502,
            b"  <html>Bad gateway</html>\n",
            None,
        );
        assert_eq!(err.kind(), ErrorKind::Transient);
        assert_eq!(
            err.to_string(),
            format!("{CTX}: unexpected answer HTTP 502 Bad Gateway")
        );
        assert_eq!(err.body(), Some("<html>Bad gateway</html>"));
        assert_eq!(err.aadsts_code(), None);

        let err = Error::from_answer(
            CTX,
            Operation::Refresh,
            429,
            b"",
            Some(Duration::from_millis(1500)),
        );
        assert_eq!(err.kind(), ErrorKind::Throttled);
        assert!(err.is_transient());
        assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));
        assert_eq!(err.body(), None);

        let err = Error::from_answer(CTX, Operation::Refresh, 404, b"{\"oops\": 1}", None);
        assert_eq!(err.kind(), ErrorKind::Protocol);

        // `error` without an AADSTS code (another OAuth server).
        let err = Error::from_answer(
            CTX,
            Operation::Refresh,
            400,
            br#"{"error":"invalid_grant"}"#,
            None,
        );
        assert!(err.is_reauth_required());
        assert_eq!(err.to_string(), format!("{CTX}: invalid_grant"));

        // error_codes without a description: the known summary is used.
        let err = Error::from_answer(
            CTX,
            Operation::Refresh,
            400,
            br#"{"error":"invalid_grant","error_codes":[700082]}"#,
            None,
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{CTX}: AADSTS700082: the refresh token expired after a period of inactivity (invalid_grant)"
            )
        );
        assert_eq!(
            err.reason(),
            Some("the refresh token expired after a period of inactivity")
        );

        // A huge body is capped.
        let huge = vec![b'x'; 20_000];
        let err = Error::from_answer(CTX, Operation::Refresh, 500, &huge, None);
        assert!(err.body().unwrap().len() <= MAX_BODY + '…'.len_utf8());
    }

    #[test]
    fn into_connector_error() {
        let body = aad(
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity.",
            None,
        );
        let err = Error::from_answer(CTX, Operation::Refresh, 400, &body, None);
        let text = err.to_string();
        let conn: ConnectorError = err.into();
        assert!(conn.is_reauth_required());
        assert_eq!(conn.code(), Some("AADSTS700082"));
        assert_eq!(conn.to_string(), text);

        let conn: ConnectorError = Error::from_answer(
            CTX,
            Operation::Refresh,
            429,
            b"",
            Some(Duration::from_secs(2)),
        )
        .into();
        assert_eq!(conn.kind(), mailroom_core::ErrorKind::Throttled);
        assert_eq!(conn.retry_after(), Some(Duration::from_secs(2)));

        let declined = Error::from_answer(
            CTX,
            Operation::DeviceToken,
            400,
            &aad("authorization_declined", 65004, "x", None),
            None,
        );
        // One kind across crates: the sign-in outcome survives the conversion.
        assert_eq!(
            ConnectorError::from(declined).kind(),
            mailroom_core::ErrorKind::Declined
        );
        let cancelled = Error::cancelled("cannot complete the device code flow");
        assert_eq!(
            cancelled.to_string(),
            "cannot complete the device code flow: cancelled"
        );
        assert_eq!(
            ConnectorError::from(cancelled).kind(),
            mailroom_core::ErrorKind::Cancelled
        );
    }
}
