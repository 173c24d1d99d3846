//! Transport-neutral request and response values, so handlers can be called
//! from the HTTP server and from `$batch` alike.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use bytes::Bytes;
use serde_json::Value;

/// One request as the handlers see it.
#[derive(Clone, Debug)]
pub(crate) struct Req {
    pub(crate) method: Method,
    /// Path as sent (still percent-encoded), without the query.
    pub(crate) path: String,
    /// Raw query string (without `?`).
    pub(crate) query: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Req {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Decoded query pairs, in order.
    pub(crate) fn query_pairs(&self) -> Vec<(String, String)> {
        parse_form(self.query.as_bytes())
    }

    /// All `Prefer` preferences (comma-separated, several headers allowed).
    pub(crate) fn prefer(&self) -> Vec<String> {
        self.headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect()
    }
}

/// Decodes `application/x-www-form-urlencoded` (also used for queries).
pub(crate) fn parse_form(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// One response as the handlers produce it.
#[derive(Clone, Debug)]
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Resp {
    pub(crate) fn new(status: StatusCode) -> Resp {
        Resp {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    pub(crate) fn json(status: StatusCode, value: &Value) -> Resp {
        Resp::raw_json(status, serde_json::to_vec(value).unwrap_or_default())
    }

    pub(crate) fn raw_json(status: StatusCode, body: Vec<u8>) -> Resp {
        Resp::new(status)
            .with_header("content-type", "application/json; charset=utf-8")
            .with_body(body)
    }

    pub(crate) fn html(status: StatusCode, html: String) -> Resp {
        Resp::new(status)
            .with_header("content-type", "text/html; charset=utf-8")
            .with_body(html.into_bytes())
    }

    pub(crate) fn with_body(mut self, body: impl Into<Bytes>) -> Resp {
        self.body = body.into();
        self
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: &str) -> Resp {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(HeaderName::from_static(name), v);
        }
        self
    }

    pub(crate) fn set_header(&mut self, name: &'static str, value: &str) {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(HeaderName::from_static(name), v);
        }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON, if it is JSON.
    pub(crate) fn json_body(&self) -> Option<Value> {
        let ct = self.header("content-type").unwrap_or("");
        if ct.starts_with("application/json") {
            serde_json::from_slice(&self.body).ok()
        } else {
            None
        }
    }
}
