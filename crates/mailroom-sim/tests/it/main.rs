//! Integration tests of mailroom-sim (one binary, one module per feature).

mod batch;
mod blackbox;
mod control;
mod delta;
mod faults;
mod fidelity;
mod graph;
mod identity;

use mailroom_sim::{SimConfig, Simulator};
use serde_json::Value;

/// Starts a simulator with `config`.
pub async fn start(config: SimConfig) -> Simulator {
    Simulator::start(config).await.expect("simulator starts")
}

/// A plain HTTP client (no redirects, no retries).
pub fn client() -> reqwest::Client {
    builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A client builder; our reqwest has no rustls crypto provider of its own, so this
/// makes ring the process default first.
pub fn builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// POSTs a form and returns status and JSON body.
pub async fn post_form(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = client().post(url).form(form).send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// This crate's directory. `cargo test` and nextest say it at run time; the path
/// compiled in is only a fallback, because clones sharing a target directory may run a
/// test binary built in another clone.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

/// Reads a fixture from `tests/fixtures/`.
pub fn fixture(name: &str) -> Value {
    let path = manifest_dir().join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).expect("fixture is JSON");
    assert!(
        v["_source"]
            .as_str()
            .is_some_and(|s| s.contains("https://")),
        "fixture {name} cites its source"
    );
    v
}

#[test]
fn every_fixture_cites_its_source() {
    let dir = manifest_dir().join("tests/fixtures");
    let mut n = 0;
    for sub in ["identity", "graph"] {
        for entry in std::fs::read_dir(dir.join(sub)).expect("fixture dir") {
            let name = format!(
                "{sub}/{}",
                entry.expect("entry").file_name().to_string_lossy()
            );
            let fx = fixture(&name);
            assert!(fx["body"].is_object(), "{name} has a body");
            assert!(fx["status"].is_u64(), "{name} has a status");
            n += 1;
        }
    }
    assert!(n >= 20, "{n} fixtures");
}

/// Asserts that `body` has the same shape as the fixture's `body` (same
/// keys, same JSON types or null, recursively; arrays compared by their
/// first item)
/// and that the status matches.
pub fn assert_shape(name: &str, status: u16, body: &Value) {
    let fx = fixture(name);
    if let Some(s) = fx["status"].as_u64() {
        assert_eq!(u64::from(status), s, "status of {name}; body {body:#}");
    }
    let mut diffs = Vec::new();
    shape_diff("$", &fx["body"], body, &mut diffs);
    assert!(
        diffs.is_empty(),
        "shape of {name} differs: {diffs:#?}\nactual: {body:#}"
    );
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn shape_diff(path: &str, expected: &Value, actual: &Value, diffs: &mut Vec<String>) {
    // Graph properties are nullable: null matches any type.
    if expected.is_null() || actual.is_null() {
        return;
    }
    if kind(expected) != kind(actual) {
        diffs.push(format!(
            "{path}: expected {}, got {}",
            kind(expected),
            kind(actual)
        ));
        return;
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for k in e.keys().filter(|k| !k.starts_with('_')) {
                match a.get(k) {
                    Some(av) => shape_diff(&format!("{path}.{k}"), &e[k], av, diffs),
                    None => diffs.push(format!("{path}.{k}: missing")),
                }
            }
            // `"_open": true` in a fixture object allows extra keys.
            let open = e.get("_open").and_then(Value::as_bool).unwrap_or(false);
            for k in a.keys().filter(|k| !open && !e.contains_key(*k)) {
                diffs.push(format!("{path}.{k}: not in the fixture"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let (Some(e0), Some(a0)) = (e.first(), a.first()) {
                shape_diff(&format!("{path}[0]"), e0, a0, diffs);
            }
        }
        _ => {}
    }
}

/// A Graph client bound to one access token.
#[derive(Debug)]
pub struct Graph {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Graph {
    /// Issues a Graph token for `user` and binds it.
    pub fn new(sim: &Simulator, user: &str) -> Graph {
        let t = sim
            .issue_tokens(user, "test-app", &["Mail.ReadWrite", "offline_access"])
            .expect("tokens");
        Graph {
            base: sim.graph_url(),
            token: t.access_token,
            http: client(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Sends a request; returns status, headers and the JSON (or text) body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut rb = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        let text = resp.text().await.expect("body");
        (
            status,
            h,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (s, _, v) = self.send(reqwest::Method::GET, path, &[], None).await;
        (s, v)
    }

    pub async fn get_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.send(reqwest::Method::GET, path, headers, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (s, _, v) = self
            .send(reqwest::Method::POST, path, &[], Some(body))
            .await;
        (s, v)
    }

    pub async fn bytes(&self, path: &str) -> (u16, String, Vec<u8>) {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, ct, resp.bytes().await.expect("body").to_vec())
    }

    /// Follows `@odata.nextLink` from `path`; returns every item.
    pub async fn all_pages(&self, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(p) = next {
            let (status, body) = self.get(&p).await;
            assert_eq!(status, 200, "{p}: {body}");
            out.extend(body["value"].as_array().cloned().unwrap_or_default());
            next = body["@odata.nextLink"].as_str().map(str::to_owned);
        }
        out
    }
}

/// Percent-encodes one path segment (ids contain `=`, `-`, `_`).
pub fn enc(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}
