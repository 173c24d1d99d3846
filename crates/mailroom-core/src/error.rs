//! The error every connector returns, with the kind callers branch on.

use std::fmt;
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a caller should do about a [`ConnectorError`] (or a `mailroom_oauth::Error`,
/// which carries the same kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The user must sign in again (revoked or expired refresh token, consent, MFA,
    /// IMAP authentication refused). Retrying will not help.
    ReauthRequired,
    /// The application is misconfigured (wrong client id or secret, bad host).
    InvalidConfig,
    /// Network trouble, a 5xx, a timeout: retry later.
    Transient,
    /// The server throttled us and retries were exhausted: retry later, slower.
    Throttled,
    /// The message or folder does not exist (any more).
    NotFound,
    /// The caller's input was refused (bad folder name, bad id).
    InvalidInput,
    /// The server answered something we could not understand.
    Protocol,
    /// The operation is not available on this server or protocol.
    Unsupported,
    /// The caller cancelled the operation.
    Cancelled,
    /// Anything else.
    Other,
    /// Sign-in only: the user declined the device-code sign-in
    /// (`authorization_declined`, `access_denied`).
    Declined,
    /// Sign-in only: the device code expired or is unknown (`expired_token`,
    /// `bad_verification_code`); start a new sign-in.
    Expired,
}

impl ErrorKind {
    /// A short lower-case name, for logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ReauthRequired => "reauth_required",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::Transient => "transient",
            ErrorKind::Throttled => "throttled",
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Other => "other",
            ErrorKind::Declined => "declined",
            ErrorKind::Expired => "expired",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from a [`Connector`](crate::Connector).
///
/// The message says what was being done ("cannot move message …: …"); [`kind`](Self::kind)
/// says what to do about it; [`code`](Self::code) carries the server's code when there is
/// one (`AADSTS700082`, `ErrorItemNotFound`, `AUTHENTICATIONFAILED`).
#[derive(Debug)]
pub struct ConnectorError {
    kind: ErrorKind,
    message: String,
    code: Option<String>,
    retry_after: Option<Duration>,
    source: Option<BoxError>,
}

impl ConnectorError {
    /// A new error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ConnectorError {
            kind,
            message: message.into(),
            code: None,
            retry_after: None,
            source: None,
        }
    }

    /// Attaches the server's error code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Attaches how long the server asked us to wait.
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What the caller should do.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The server's error code, if any.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The wait the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The message without the source chain.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True when the user must sign in again.
    pub fn is_reauth_required(&self) -> bool {
        self.kind == ErrorKind::ReauthRequired
    }

    /// True when trying again later may succeed (transient or throttled).
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, ErrorKind::Transient | ErrorKind::Throttled)
    }

    /// True when the item does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// Prefixes the message with what was being done: `"{context}: {message}"`.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_context() {
        let err = ConnectorError::new(
            ErrorKind::ReauthRequired,
            "AADSTS700082 refresh token expired",
        )
        .with_code("AADSTS700082")
        .context("cannot refresh token for alice@contoso.com");
        assert!(err.is_reauth_required() && !err.is_transient());
        assert_eq!(err.code(), Some("AADSTS700082"));
        assert_eq!(
            err.to_string(),
            "cannot refresh token for alice@contoso.com: AADSTS700082 refresh token expired"
        );
        let throttled = ConnectorError::new(ErrorKind::Throttled, "429")
            .with_retry_after(Duration::from_millis(1500));
        assert!(throttled.is_transient());
        assert_eq!(throttled.retry_after(), Some(Duration::from_millis(1500)));
    }
}
