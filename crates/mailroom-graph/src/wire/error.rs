//! Graph error bodies (`{"error": {"code", "message", "innerError": …}}`) and what a
//! caller should do about them.

use std::fmt;

use mailroom_core::{ConnectorError, ErrorKind};
use serde::Deserialize;

/// Longest part of a raw error body kept in a [`GraphError`], in bytes.
const MAX_BODY: usize = 2048;

/// The codes of an expired delta token (HTTP 410).
pub const SYNC_STATE_CODES: [&str; 3] =
    ["SyncStateNotFound", "syncStateNotFound", "resyncRequired"];

/// An error answer of Microsoft Graph, as received.
///
/// It is the [`source`](std::error::Error::source) of the
/// [`ConnectorError`]s this crate returns for HTTP
/// errors; [`GraphError::of`] finds it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    /// HTTP status.
    pub status: u16,
    /// `error.code`, e.g. `ErrorItemNotFound`.
    pub code: Option<String>,
    /// `error.message`.
    pub message: Option<String>,
    /// `error.innerError.request-id`, to quote to Microsoft support.
    pub request_id: Option<String>,
    /// `error.innerError.client-request-id`.
    pub client_request_id: Option<String>,
    /// `error.innerError.date`.
    pub date: Option<String>,
    /// The raw body, trimmed and cut at 2 KiB.
    pub body: String,
}

#[derive(Deserialize)]
struct Envelope {
    error: Option<Body>,
}

#[derive(Deserialize)]
struct Body {
    code: Option<String>,
    message: Option<String>,
    #[serde(rename = "innerError", alias = "innererror")]
    inner: Option<Inner>,
}

#[derive(Deserialize)]
struct Inner {
    #[serde(rename = "request-id")]
    request_id: Option<String>,
    #[serde(rename = "client-request-id")]
    client_request_id: Option<String>,
    date: Option<String>,
}

impl GraphError {
    /// Reads an error answer: the JSON envelope if there is one, the raw body always.
    pub fn parse(status: u16, body: &[u8]) -> GraphError {
        let parsed = serde_json::from_slice::<Envelope>(body)
            .ok()
            .and_then(|e| e.error);
        let (code, message, inner) = match parsed {
            Some(b) => (b.code, b.message, b.inner),
            None => (None, None, None),
        };
        let (request_id, client_request_id, date) = match inner {
            Some(i) => (i.request_id, i.client_request_id, i.date),
            None => (None, None, None),
        };
        GraphError {
            status,
            code: code.filter(|c| !c.is_empty()),
            message: message.filter(|m| !m.is_empty()),
            request_id,
            client_request_id,
            date,
            body: trimmed(body),
        }
    }

    /// Fills the ids the body did not carry from the answer's `request-id` and
    /// `client-request-id` headers (Graph sends both on every answer).
    pub fn with_header_ids(
        mut self,
        request_id: Option<&str>,
        client_request_id: Option<&str>,
    ) -> GraphError {
        if self.request_id.is_none() {
            self.request_id = request_id.filter(|v| !v.is_empty()).map(str::to_owned);
        }
        if self.client_request_id.is_none() {
            self.client_request_id = client_request_id
                .filter(|v| !v.is_empty())
                .map(str::to_owned);
        }
        self
    }

    /// The [`GraphError`] behind a connector error, if it came from a Graph answer.
    pub fn of(err: &ConnectorError) -> Option<&GraphError> {
        std::error::Error::source(err)?.downcast_ref::<GraphError>()
    }

    /// True for an expired delta token: HTTP 410 (`SyncStateNotFound`,
    /// `syncStateNotFound` or `resyncRequired`).
    pub fn is_sync_state_gone(&self) -> bool {
        self.status == 410
    }

    /// What the caller should do about this answer.
    pub fn kind(&self) -> ErrorKind {
        let code = self.code.as_deref().unwrap_or("");
        match (self.status, code) {
            (_, "MailboxNotEnabledForRESTAPI" | "MailboxNotSupportedForRESTAPI") => {
                ErrorKind::Unsupported
            }
            // Expired or refused token, missing consent or permission: sign in again.
            (401 | 403, _) => ErrorKind::ReauthRequired,
            (404 | 410, _) => ErrorKind::NotFound,
            (400 | 405 | 413 | 414 | 422, _) => ErrorKind::InvalidInput,
            (429, _) => ErrorKind::Throttled,
            (408 | 500 | 502 | 503 | 504 | 509, _) => ErrorKind::Transient,
            _ => ErrorKind::Other,
        }
    }

    /// A [`ConnectorError`] saying `"{doing}: {code}: {message}"`, with the Graph code,
    /// this error as its source.
    pub fn into_connector_error(self, doing: &str) -> ConnectorError {
        let mut err = ConnectorError::new(self.kind(), format!("{doing}: {self}"));
        if let Some(code) = &self.code {
            err = err.with_code(code.clone());
        }
        err.with_source(self)
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, &self.message) {
            (Some(code), Some(message)) => write!(f, "{code}: {message}")?,
            (Some(code), None) => write!(f, "{code} (HTTP {})", self.status)?,
            _ if self.body.is_empty() => write!(f, "HTTP {}", self.status)?,
            _ => write!(f, "HTTP {}: {}", self.status, self.body)?,
        }
        match (&self.request_id, &self.client_request_id) {
            (Some(id), Some(client)) if client != id => {
                write!(f, " (request-id {id}, client-request-id {client})")?;
            }
            (Some(id), _) => write!(f, " (request-id {id})")?,
            (None, Some(client)) => write!(f, " (client-request-id {client})")?,
            (None, None) => {}
        }
        Ok(())
    }
}

impl std::error::Error for GraphError {}

/// The body as text, trimmed and cut at [`MAX_BODY`] bytes on a char boundary.
pub(crate) fn trimmed(body: &[u8]) -> String {
    mailroom_core::endpoint::body_excerpt(body, MAX_BODY)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOT_FOUND: &str = include_str!("../../fixtures/error-item-not-found.json");
    const THROTTLED: &str = include_str!("../../fixtures/error-mailbox-concurrency.json");
    const SYNC_GONE: &str = include_str!("../../fixtures/error-sync-state-not-found.json");

    fn check(status: u16, body: &str, kind: ErrorKind, code: Option<&str>) {
        let e = GraphError::parse(status, body.as_bytes());
        assert_eq!(e.kind(), kind, "{body}");
        assert_eq!(e.code.as_deref(), code, "{body}");
    }

    #[test]
    fn kinds_from_status_and_code() {
        check(
            404,
            NOT_FOUND,
            ErrorKind::NotFound,
            Some("ErrorItemNotFound"),
        );
        check(
            429,
            THROTTLED,
            ErrorKind::Throttled,
            Some("ApplicationThrottled"),
        );
        check(
            410,
            SYNC_GONE,
            ErrorKind::NotFound,
            Some("SyncStateNotFound"),
        );
        check(
            401,
            r#"{"error":{"code":"InvalidAuthenticationToken","message":"Access token has expired or is not yet valid."}}"#,
            ErrorKind::ReauthRequired,
            Some("InvalidAuthenticationToken"),
        );
        check(
            404,
            r#"{"error":{"code":"MailboxNotEnabledForRESTAPI","message":"The mailbox is either inactive, soft-deleted, or is hosted on-premise."}}"#,
            ErrorKind::Unsupported,
            Some("MailboxNotEnabledForRESTAPI"),
        );
        check(
            400,
            r#"{"error":{"code":"ErrorInvalidIdMalformed","message":"Id is malformed."}}"#,
            ErrorKind::InvalidInput,
            Some("ErrorInvalidIdMalformed"),
        );
        check(
            503,
            "<html>Service Unavailable</html>",
            ErrorKind::Transient,
            None,
        );
        check(418, "", ErrorKind::Other, None);
    }

    #[test]
    fn display_keeps_code_message_and_request_id() {
        let e = GraphError::parse(404, NOT_FOUND.as_bytes());
        assert_eq!(
            e.to_string(),
            "ErrorItemNotFound: The specified object was not found in the store. (request-id 5a3a3b1e-7f52-4f5b-a6f5-6c0e4c1f2d9a)"
        );
        assert!(e.body.contains("innerError"));
        let e = GraphError::parse(502, b"  bad gateway \n");
        assert_eq!(e.to_string(), "HTTP 502: bad gateway");
        // Ids from the headers when the body has none; both when they differ.
        let e = e.with_header_ids(Some("r-1"), Some("c-1"));
        assert_eq!(
            e.to_string(),
            "HTTP 502: bad gateway (request-id r-1, client-request-id c-1)"
        );
        let e = GraphError::parse(404, NOT_FOUND.as_bytes()).with_header_ids(Some("r-2"), None);
        assert_eq!(
            e.request_id.as_deref(),
            Some("5a3a3b1e-7f52-4f5b-a6f5-6c0e4c1f2d9a"),
            "the body's ids win"
        );
        let long = "x".repeat(5000);
        assert!(GraphError::parse(500, long.as_bytes()).body.len() < 2100);
    }

    #[test]
    fn connector_error_keeps_the_graph_error() {
        let err = GraphError::parse(404, NOT_FOUND.as_bytes())
            .into_connector_error("cannot move message AAMkAD…");
        assert!(err.is_not_found());
        assert_eq!(err.code(), Some("ErrorItemNotFound"));
        assert!(
            err.to_string().starts_with(
                "cannot move message AAMkAD…: ErrorItemNotFound: The specified object"
            )
        );
        assert_eq!(GraphError::of(&err).unwrap().status, 404);
        assert!(GraphError::of(&ConnectorError::new(ErrorKind::Other, "x")).is_none());
    }
}
