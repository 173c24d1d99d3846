//! The `oauth2` crate's HTTP seam, over a shared `reqwest::Client`.
//!
//! One [`Transport`] serves one operation (a refresh, a device code wait): it
//! remembers the last answer's status and, for error answers only, the body, so the
//! error keeps what Microsoft said (`error_codes`, `suberror`) that the `oauth2`
//! crate's standard error types drop. Token answers (HTTP 200) are never kept.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use oauth2::http::header::{AUTHORIZATION, RETRY_AFTER};
use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};

use crate::wire::parse_retry_after;

/// What the server answered last.
#[derive(Clone, Debug, Default)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// The body of an error answer; always empty for HTTP 200.
    pub(crate) body: Vec<u8>,
    pub(crate) retry_after: Option<Duration>,
}

/// The identity platform could not be reached (connect, TLS, timeout, reset), or
/// answered more than a token answer can be.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("cannot reach {endpoint}: {source}")]
    Network {
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the answer of {endpoint} is larger than the limit of {limit} bytes")]
    TooLarge { endpoint: String, limit: u64 },
}

impl TransportError {
    /// True for an answer over the size limit (not a network failure).
    pub(crate) fn is_too_large(&self) -> bool {
        matches!(self, TransportError::TooLarge { .. })
    }
}

/// An [`AsyncHttpClient`] for one operation.
#[derive(Debug)]
pub(crate) struct Transport {
    http: reqwest::Client,
    timeout: Duration,
    max_body_size: u64,
    last: Mutex<Option<Answer>>,
}

impl Transport {
    /// `http` is cheap to clone: clones share one connection pool.
    /// Answers over `max_body_size` bytes fail as soon as the limit is passed.
    pub(crate) fn new(http: reqwest::Client, timeout: Duration, max_body_size: u64) -> Self {
        Transport {
            http,
            timeout,
            max_body_size,
            last: Mutex::new(None),
        }
    }

    /// The last answer received, if any.
    pub(crate) fn last_answer(&self) -> Option<Answer> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let endpoint = {
            let uri = request.uri();
            format!(
                "{}://{}{}",
                uri.scheme_str().unwrap_or("https"),
                uri.authority().map_or("", |a| a.as_str()),
                uri.path()
            )
        };
        let fail = |source: reqwest::Error| TransportError::Network {
            endpoint: endpoint.clone(),
            source: source.without_url(),
        };
        let mut request = reqwest::Request::try_from(request).map_err(fail)?;
        *request.timeout_mut() = Some(self.timeout);
        if let Some(value) = request.headers_mut().get_mut(AUTHORIZATION) {
            value.set_sensitive(true);
        }
        let response = self.http.execute(request).await.map_err(fail)?;
        let status = response.status();
        let version = response.version();
        let headers = response.headers().clone();
        let too_large = || TransportError::TooLarge {
            endpoint: endpoint.clone(),
            limit: self.max_body_size,
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_body_size)
        {
            return Err(too_large());
        }
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fail)? {
            if (body.len() + chunk.len()) as u64 > self.max_body_size {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(
            endpoint = %endpoint,
            status = status.as_u16(),
            "identity platform answered"
        );
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(Answer {
            status: status.as_u16(),
            body: if status.is_success() {
                Vec::new()
            } else {
                body.clone()
            },
            retry_after,
        });
        let mut builder = oauth2::http::Response::builder()
            .status(status)
            .version(version);
        if let Some(h) = builder.headers_mut() {
            *h = headers;
        }
        Ok(builder
            .body(body)
            .expect("a response rebuilt from a valid response is valid"))
    }
}

impl<'c> AsyncHttpClient<'c> for Transport {
    type Error = TransportError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
