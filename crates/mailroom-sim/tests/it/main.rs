//! Integration tests of mailroom-sim (one binary, one module per feature).

mod identity;

use std::path::PathBuf;

use mailroom_sim::{SimConfig, Simulator};
use serde_json::Value;

/// Starts a simulator with `config`.
pub async fn start(config: SimConfig) -> Simulator {
    Simulator::start(config).await.expect("simulator starts")
}

/// A plain HTTP client (no redirects, no retries).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
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

/// Reads a fixture from `tests/fixtures/`.
pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
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

/// Asserts that `body` has the same shape as the fixture's `body` (same
/// keys, same JSON types, recursively; arrays compared by their first item)
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
            for k in a.keys().filter(|k| !e.contains_key(*k)) {
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
