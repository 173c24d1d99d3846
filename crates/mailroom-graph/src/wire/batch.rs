//! `$batch` request and response bodies (JSON batching, at most 20 requests).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::error::GraphError;
use super::retry::parse_retry_after;

/// Most requests one `$batch` may hold.
pub const MAX_BATCH: usize = 20;

/// One request of a batch, relative to the Graph root (`/me/messages/{id}/move`).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchCall {
    /// `GET`, `POST`, `DELETE` …
    pub method: &'static str,
    /// Relative URL, starting with `/`.
    pub url: String,
    /// JSON body, if any.
    pub body: Option<Value>,
    /// A `Prefer` header, if any.
    pub prefer: Option<String>,
}

#[derive(Serialize)]
struct Request<'a> {
    requests: Vec<Item<'a>>,
}

#[derive(Serialize)]
struct Item<'a> {
    id: String,
    method: &'a str,
    url: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<&'static str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a Value>,
    #[serde(rename = "dependsOn", skip_serializing_if = "Vec::is_empty")]
    depends_on: Vec<String>,
}

/// The body of a `$batch` POST for `calls` (ids `"0"`, `"1"` … in order), run as
/// `width` sequential chains: call `i` depends on call `i - width`, so at most
/// `width` of them run at once on the server (the mailbox counts each one).
///
/// # Panics
/// If there are more than [`MAX_BATCH`] calls or `width` is 0.
pub fn request_body(calls: &[BatchCall], width: usize) -> Vec<u8> {
    assert!(calls.len() <= MAX_BATCH && width > 0);
    let requests = calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut headers = BTreeMap::new();
            if c.body.is_some() {
                headers.insert("Content-Type", "application/json");
            }
            if let Some(p) = &c.prefer {
                headers.insert("Prefer", p.as_str());
            }
            Item {
                id: i.to_string(),
                method: c.method,
                url: &c.url,
                headers,
                body: c.body.as_ref(),
                depends_on: if i >= width {
                    vec![(i - width).to_string()]
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    serde_json::to_vec(&Request { requests }).expect("batch requests serialize")
}

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow)]
    responses: Vec<ItemResponse<'a>>,
}

/// The answer to one request of a batch, borrowed from the batch's answer: its headers
/// and body stay JSON text until asked for (copying and parsing every item's headers
/// into a map, and copying its body, cost as much as parsing the bodies themselves).
#[derive(Debug, Deserialize)]
pub struct ItemResponse<'a> {
    /// The request's id.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// HTTP status.
    pub status: u16,
    #[serde(default, borrow)]
    headers: Option<&'a RawValue>,
    #[serde(default, borrow)]
    body: Option<&'a RawValue>,
}

impl ItemResponse<'_> {
    /// A header, by case-insensitive name; `None` also when the headers are not an
    /// object of strings.
    pub fn header(&self, name: &str) -> Option<String> {
        let headers: BTreeMap<Cow<'_, str>, Cow<'_, str>> =
            serde_json::from_str(self.headers?.get()).ok()?;
        headers
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.into_owned())
    }

    /// The item's `Retry-After`, if it has a valid one.
    pub fn retry_after(&self, now: SystemTime) -> Option<Duration> {
        self.header("retry-after")
            .and_then(|v| parse_retry_after(&v, now))
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body (JSON), if any.
    pub fn body(&self) -> Option<Value> {
        self.body.and_then(|b| serde_json::from_str(b.get()).ok())
    }

    /// The body (JSON), taken.
    pub fn into_body(self) -> Option<Value> {
        self.body()
    }

    /// The body's JSON text, as Graph sent it, if any.
    pub fn body_json(&self) -> Option<&str> {
        self.body.map(RawValue::get)
    }

    /// The item's error, for a non-2xx status.
    pub fn error(&self) -> GraphError {
        let raw = self.body_json().unwrap_or_default();
        GraphError::parse(self.status, raw.as_bytes())
    }
}

/// Parses a `$batch` answer; items come back in any order.
pub fn parse_response(body: &[u8]) -> serde_json::Result<Vec<ItemResponse<'_>>> {
    super::from_json::<Response<'_>>(body).map(|r| r.responses)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = include_str!("../../fixtures/batch-response.json");

    fn call(n: usize) -> BatchCall {
        BatchCall {
            method: "POST",
            url: format!("/me/messages/m{n}/move"),
            body: Some(serde_json::json!({"destinationId": "archive"})),
            prefer: (n == 0).then(|| "IdType=\"ImmutableId\"".to_owned()),
        }
    }

    #[test]
    fn requests_run_as_chains() {
        let calls: Vec<_> = (0..6).map(call).collect();
        let body: Value = serde_json::from_slice(&request_body(&calls, 4)).unwrap();
        let reqs = body["requests"].as_array().unwrap();
        assert_eq!(reqs.len(), 6);
        assert_eq!(reqs[0]["id"], "0");
        assert_eq!(reqs[0]["url"], "/me/messages/m0/move");
        assert_eq!(reqs[0]["headers"]["Content-Type"], "application/json");
        assert_eq!(reqs[0]["headers"]["Prefer"], "IdType=\"ImmutableId\"");
        assert_eq!(reqs[0]["body"]["destinationId"], "archive");
        assert!(reqs[0].get("dependsOn").is_none());
        assert!(reqs[3].get("dependsOn").is_none());
        assert_eq!(reqs[4]["dependsOn"], serde_json::json!(["0"]));
        assert_eq!(reqs[5]["dependsOn"], serde_json::json!(["1"]));
        let delete = BatchCall {
            method: "POST",
            url: "/me/messages/x/permanentDelete".into(),
            body: None,
            prefer: None,
        };
        let body: Value = serde_json::from_slice(&request_body(&[delete], 4)).unwrap();
        assert!(body["requests"][0].get("headers").is_none());
    }

    #[test]
    fn answers_with_per_item_status_and_retry_after() {
        let items = parse_response(ANSWER.as_bytes()).unwrap();
        assert_eq!(items.len(), 3);
        let by_id = |id: &str| items.iter().find(|i| i.id == id).unwrap();
        let ok = by_id("0");
        assert!(ok.is_success());
        assert_eq!(ok.body().unwrap()["id"], "AAMkNewId=");
        assert_eq!(
            ok.body_json(),
            Some(r#"{"id": "AAMkNewId=", "subject": "moved"}"#)
        );
        let throttled = by_id("1");
        assert_eq!(throttled.status, 429);
        assert_eq!(
            throttled.retry_after(SystemTime::now()),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            throttled.error().code.as_deref(),
            Some("ApplicationThrottled")
        );
        let missing = by_id("2");
        assert_eq!(missing.error().code.as_deref(), Some("ErrorItemNotFound"));
        assert_eq!(missing.retry_after(SystemTime::now()), None);
    }

    /// Headers are read only when asked for: an item whose headers are not an object
    /// of strings loses them, not the whole batch (its body and its neighbours stay).
    #[test]
    fn malformed_headers_cost_only_their_item_its_headers() {
        let answer = r#"{"responses": [
            {"id": "0", "status": 429, "headers": {"Retry-After": 7}, "body": {"error": {"code": "TooManyRequests"}}},
            {"id": "1", "status": 429, "headers": ["Retry-After", "2"]},
            {"id": "2", "status": 429, "headers": {"retry-after": "3"}}
        ]}"#;
        let items = parse_response(answer.as_bytes()).unwrap();
        let now = SystemTime::now();
        assert_eq!(items[0].header("Retry-After"), None);
        assert_eq!(items[0].retry_after(now), None);
        assert_eq!(items[0].error().code.as_deref(), Some("TooManyRequests"));
        assert_eq!(items[1].retry_after(now), None);
        assert_eq!(items[2].header("RETRY-AFTER").as_deref(), Some("3"));
        assert_eq!(items[2].retry_after(now), Some(Duration::from_secs(3)));
        // Still JSON: text that is not JSON at all fails the batch.
        assert!(
            parse_response(br#"{"responses": [{"id": "0", "status": 200, "headers": {]}"#).is_err()
        );
    }
}
