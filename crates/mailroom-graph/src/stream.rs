//! [`ByteStream`]: a download read chunk by chunk, never buffered whole.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use mailroom_core::{ConnectorError, ErrorKind};
use tokio::sync::OwnedSemaphorePermit;

use crate::transport::Opened;

type Inner = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The body of a download (raw MIME, an attachment) as a stream of chunks.
///
/// It holds one of the mailbox's request slots until it ends or is dropped: read it
/// to the end (or drop it) before starting more than three other requests on the
/// same mailbox.
pub struct ByteStream {
    inner: Inner,
    content_type: Option<String>,
    content_length: Option<u64>,
    doing: String,
    permit: Option<OwnedSemaphorePermit>,
}

impl fmt::Debug for ByteStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteStream")
            .field("content_type", &self.content_type)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

impl ByteStream {
    pub(crate) fn new(opened: Opened, doing: String) -> ByteStream {
        let headers = opened.response.headers();
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_length = opened.response.content_length();
        ByteStream {
            inner: Box::pin(opened.response.bytes_stream()),
            content_type,
            content_length,
            doing,
            permit: Some(opened.permit),
        }
    }

    /// The `Content-Type` Graph sent (`message/rfc822`, `application/pdf` …).
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The length announced by Graph, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }
}

impl Stream for ByteStream {
    type Item = Result<Bytes, ConnectorError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(chunk))),
            Poll::Ready(Some(Err(e))) => {
                this.permit = None;
                let e = e.without_url();
                Poll::Ready(Some(Err(ConnectorError::new(
                    ErrorKind::Transient,
                    format!("{}: {e}", this.doing),
                )
                .with_source(e))))
            }
            Poll::Ready(None) => {
                this.permit = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
