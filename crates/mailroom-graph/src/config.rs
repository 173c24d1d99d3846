//! [`GraphConfig`]: where Graph is, how hard to push it, how to wait.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mailroom_core::{ConnectorError, ErrorKind};
use mailroom_oauth::{Sleep, TokioSleep};
use url::Url;

/// The Microsoft Graph v1.0 root of the public cloud.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";

/// Requests in flight per mailbox: Exchange Online's `MailboxConcurrency` limit.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 4;

/// Messages per page of `fetch_page` when the query does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// Messages per delta page (`Prefer: odata.maxpagesize`). Graph does not document a
/// maximum for message delta; it caps what it does not honour, and the connector
/// follows whatever page size the service applies.
pub const DEFAULT_DELTA_PAGE_SIZE: u32 = 1000;

/// Largest answer read into memory, default 128 MiB: a delta page of 1000 messages
/// with their text bodies is a few MB; downloads (MIME, attachments) are streamed
/// and not bound by it.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 128 * 1024 * 1024;

/// Pages one folder run (a delta enumeration, a folder or attachment listing)
/// may follow, default 100,000 (100 million messages at 1000 per page).
pub const DEFAULT_MAX_PAGES_PER_RUN: u32 = 100_000;

/// The bounds of a connector, with their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// One try of a request, its body included.
    pub request_timeout: Duration,
    /// A request with all its tries and waits.
    pub request_deadline: Duration,
    pub max_body_size: u64,
    pub max_pages_per_run: u32,
    /// A folder run: the first page to the last.
    pub folder_run_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout: Duration::from_secs(100),
            request_deadline: Duration::from_secs(300),
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            max_pages_per_run: DEFAULT_MAX_PAGES_PER_RUN,
            folder_run_deadline: Duration::from_secs(4 * 3600),
        }
    }
}

/// How requests are retried after throttling (429) or unavailability (503, 504), and
/// after network errors or 500/502 for reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per request, the first included (a `$batch` item: rounds). Default 6.
    pub max_attempts: u32,
    /// Longest single wait accepted; a longer `Retry-After` ends the call with
    /// [`ErrorKind::Throttled`] and the wait in
    /// [`ConnectorError::retry_after`]. Default 120 s.
    pub max_wait: Duration,
    /// First back-off without `Retry-After`; doubles each retry. Default 500 ms.
    pub base_backoff: Duration,
    /// Cap of the back-off. Default 30 s.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            max_wait: Duration::from_secs(120),
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Settings of a [`GraphConnector`](crate::GraphConnector), built from
/// [`GraphConfig::default`] with the methods below.
#[derive(Clone)]
pub struct GraphConfig {
    pub(crate) graph_url: String,
    pub(crate) http: Option<reqwest::Client>,
    pub(crate) immutable_ids: bool,
    pub(crate) max_in_flight: u32,
    pub(crate) retry: RetryPolicy,
    pub(crate) page_size: u32,
    pub(crate) delta_page_size: u32,
    pub(crate) sleep: Arc<dyn Sleep>,
    pub(crate) limits: Limits,
    pub(crate) attachment_lists: bool,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            graph_url: DEFAULT_GRAPH_URL.to_owned(),
            http: None,
            immutable_ids: false,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            retry: RetryPolicy::default(),
            page_size: DEFAULT_PAGE_SIZE,
            delta_page_size: DEFAULT_DELTA_PAGE_SIZE,
            sleep: Arc::new(TokioSleep),
            limits: Limits::default(),
            attachment_lists: true,
        }
    }
}

impl fmt::Debug for GraphConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphConfig")
            .field("graph_url", &self.graph_url)
            .field("http", &self.http.is_some())
            .field("immutable_ids", &self.immutable_ids)
            .field("max_in_flight", &self.max_in_flight)
            .field("retry", &self.retry)
            .field("page_size", &self.page_size)
            .field("delta_page_size", &self.delta_page_size)
            .field("limits", &self.limits)
            .field("attachment_lists", &self.attachment_lists)
            .finish_non_exhaustive()
    }
}

impl GraphConfig {
    /// The Graph root, default [`DEFAULT_GRAPH_URL`] (national clouds and
    /// `mailroom-sim` differ). `http://` is accepted only for loopback hosts; checked
    /// by [`GraphConnector::new`](crate::GraphConnector::new).
    #[must_use]
    pub fn graph_url(mut self, url: impl Into<String>) -> Self {
        self.graph_url = url.into();
        self
    }

    /// The HTTP client (share one connection pool with `mailroom-oauth`); default a
    /// new rustls client.
    ///
    /// Build yours with [`http_client_builder`](crate::http_client_builder): it
    /// makes sure rustls has a crypto provider (building a client of this crate's
    /// reqwest without one panics).
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// This configuration with the HTTP client a connector would otherwise build for
    /// itself, when it has none: the connectors made from it (and from its clones)
    /// then share one connection pool and TLS setup, where each would build a client
    /// of its own (milliseconds of CPU and a new connection per connector).
    ///
    /// # Errors
    /// [`InvalidConfig`](mailroom_core::ErrorKind::InvalidConfig) when the client
    /// cannot be built.
    pub fn with_shared_http_client(self) -> Result<Self, mailroom_core::ConnectorError> {
        match self.http {
            Some(_) => Ok(self),
            None => Ok(self.http_client(crate::connector::default_client()?)),
        }
    }

    /// Asks for immutable ids (`Prefer: IdType="ImmutableId"`): ids then survive moves.
    /// Default `false` (regular ids, the Python system's `microsoft_id`).
    #[must_use]
    pub fn immutable_ids(mut self, on: bool) -> Self {
        self.immutable_ids = on;
        self
    }

    /// Requests in flight per mailbox, default 4 (Exchange's limit; at least 1).
    #[must_use]
    pub fn max_in_flight(mut self, n: u32) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// The retry policy.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Messages per page of `fetch_page` (1–1000), default 100; folder listings use
    /// it too (at most 250 per page).
    #[must_use]
    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = n.clamp(1, 1000);
        self
    }

    /// Messages per delta page asked with `Prefer: odata.maxpagesize`, default 1000.
    #[must_use]
    pub fn delta_page_size(mut self, n: u32) -> Self {
        self.delta_page_size = n.max(1);
        self
    }

    /// How to wait (Retry-After, back-off); default [`TokioSleep`]. Tests inject a
    /// sleep that records the waits or moves a simulator's clock.
    #[must_use]
    pub fn sleep(mut self, sleep: impl Sleep + 'static) -> Self {
        self.sleep = Arc::new(sleep);
        self
    }

    /// Whether each delta page lists the attachments of its messages that have some
    /// (`hasAttachments`, or a text body referencing an inline image with `[cid:…]`),
    /// through `$batch`; default `true`. Off, records of such messages carry
    /// `has_attachments` and an empty list (a benchmark's reference point).
    #[must_use]
    pub fn attachment_lists(mut self, on: bool) -> Self {
        self.attachment_lists = on;
        self
    }

    /// Timeout of one try of a request, its body included (for downloads: until
    /// the answer's headers), default 100 s.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.limits.request_timeout = timeout;
        self
    }

    /// Deadline of a request with all its tries and waits, default 5 min: a server
    /// that answers slowly or not at all ends the call with
    /// [`ErrorKind::Transient`] once it is reached, whatever tries are left; a
    /// `Retry-After` beyond it ends the call with [`ErrorKind::Throttled`].
    #[must_use]
    pub fn request_deadline(mut self, deadline: Duration) -> Self {
        self.limits.request_deadline = deadline;
        self
    }

    /// Largest answer read into memory, default [`DEFAULT_MAX_BODY_SIZE`]. A larger
    /// one ends the call with [`ErrorKind::Protocol`] as soon as the limit is
    /// passed, without reading the rest. Downloads are streamed and not bound.
    #[must_use]
    pub fn max_body_size(mut self, bytes: u64) -> Self {
        self.limits.max_body_size = bytes.max(1);
        self
    }

    /// Pages followed in one folder run (a delta enumeration from its first page to
    /// its delta link, a folder or attachment listing), default
    /// [`DEFAULT_MAX_PAGES_PER_RUN`]; beyond it the run fails with
    /// [`ErrorKind::Protocol`]. A link seen twice in one run fails it at once.
    #[must_use]
    pub fn max_pages_per_run(mut self, pages: u32) -> Self {
        self.limits.max_pages_per_run = pages.max(1);
        self
    }

    /// Deadline of a folder run (a delta enumeration from its first page to its
    /// delta link), default 4 h; beyond it the run fails with
    /// [`ErrorKind::Transient`] (the next run resumes from the last cursor).
    #[must_use]
    pub fn folder_run_deadline(mut self, deadline: Duration) -> Self {
        self.limits.folder_run_deadline = deadline;
        self
    }
}

/// Checks a Graph root URL: `https`, or `http` for a loopback host; no credentials,
/// query or fragment. Returns it without a trailing slash.
pub(crate) fn check_graph_url(raw: &str) -> Result<Url, ConnectorError> {
    let mut url = mailroom_oauth::check_service_url(raw).map_err(|why| {
        ConnectorError::new(
            ErrorKind::InvalidConfig,
            format!("invalid graph url {raw:?}: {why}"),
        )
    })?;
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_urls() {
        let ok =
            |u: &str, expected: &str| assert_eq!(check_graph_url(u).unwrap().as_str(), expected);
        ok(
            "https://graph.microsoft.com/v1.0/",
            "https://graph.microsoft.com/v1.0",
        );
        ok("http://127.0.0.1:8080/v1.0", "http://127.0.0.1:8080/v1.0");
        ok("http://[::1]:8080/v1.0", "http://[::1]:8080/v1.0");
        ok("http://localhost/v1.0", "http://localhost/v1.0");
        ok(
            "https://graph.microsoft.us/v1.0",
            "https://graph.microsoft.us/v1.0",
        );
        for bad in [
            "http://graph.microsoft.com/v1.0",
            "http://10.0.0.1/v1.0",
            "ftp://127.0.0.1/",
            "https://user:pw@graph.microsoft.com/v1.0",
            "https://graph.microsoft.com/v1.0?x=1",
            "not a url",
        ] {
            let err = check_graph_url(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{bad}");
            assert!(err.to_string().starts_with("invalid graph url"), "{err}");
        }
    }

    #[test]
    fn builder_clamps() {
        let c = GraphConfig::default()
            .max_in_flight(0)
            .page_size(5000)
            .delta_page_size(0);
        assert_eq!(
            (c.max_in_flight, c.page_size, c.delta_page_size),
            (1, 1000, 1)
        );
        assert!(format!("{c:?}").contains("graph.microsoft.com"));
    }
}
