//! Property tests of the pure `wire` modules: no panic on any input (bytes, or any
//! JSON), and the round trips hold (OData literals and query values, path segments,
//! `$batch` bodies and answers, error envelopes).

use std::time::{Duration, SystemTime};

use mailroom_graph::GraphError;
use mailroom_graph::wire::batch::{BatchCall, MAX_BATCH, parse_response, request_body};
use mailroom_graph::wire::html::html_to_text;
use mailroom_graph::wire::message::{
    parse_attachments, parse_delta_page, parse_id, parse_message, parse_message_page,
};
use mailroom_graph::wire::odata::{Query, segment, string_literal};
use mailroom_graph::wire::retry::{backoff, parse_retry_after};
use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Any JSON value, a few levels deep, with the keys Graph uses among others.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("value".to_owned()),
        Just("id".to_owned()),
        Just("@odata.nextLink".to_owned()),
        Just("@odata.deltaLink".to_owned()),
        Just("@removed".to_owned()),
        Just("subject".to_owned()),
        Just("body".to_owned()),
        Just("from".to_owned()),
        Just("receivedDateTime".to_owned()),
        Just("attachments".to_owned()),
        Just("error".to_owned()),
        Just("code".to_owned()),
        Just("responses".to_owned()),
        Just("status".to_owned()),
        Just("headers".to_owned()),
        "[a-zA-Z@.]{1,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::from),
        Just(Value::from("2025-01-01T00:00:00Z")),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn parse_everything(body: &[u8]) {
    let _ = parse_message(body);
    let _ = parse_message_page(body);
    let _ = parse_delta_page(body);
    let _ = parse_attachments(body);
    let _ = parse_id(body);
    if let Ok(items) = parse_response(body) {
        for item in items {
            let _ = item.retry_after(SystemTime::now());
            let _ = item.error().into_connector_error("x");
        }
    }
    for status in [400, 401, 404, 410, 429, 500, 503] {
        let _ = GraphError::parse(status, body).into_connector_error("cannot do x");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_parse_without_panic(body in prop::collection::vec(any::<u8>(), 0..500)) {
        parse_everything(&body);
    }

    #[test]
    fn any_json_parses_without_panic(v in json_value()) {
        parse_everything(&serde_json::to_vec(&v).unwrap());
        // Wrapped the way pages, messages and batches are.
        for wrapped in [
            json!({ "value": [v.clone()] }),
            json!({ "value": [{ "id": "m1", "body": v.clone(), "from": v.clone() }] }),
            json!({ "responses": [{ "id": "0", "status": 429, "headers": v.clone(), "body": v.clone() }] }),
            json!({ "error": v.clone() }),
        ] {
            parse_everything(&serde_json::to_vec(&wrapped).unwrap());
        }
    }

    #[test]
    fn error_envelopes_round_trip(code in "[A-Za-z0-9]{1,30}", message in ".{1,60}", status in 400u16..600) {
        let body = serde_json::to_vec(&json!({ "error": { "code": code, "message": message } })).unwrap();
        let e = GraphError::parse(status, &body);
        prop_assert_eq!(e.code.as_deref(), Some(code.as_str()));
        prop_assert_eq!(e.message.as_deref(), Some(message.as_str()));
        prop_assert_eq!(e.status, status);
    }

    #[test]
    fn batch_answers_round_trip(items in prop::collection::vec((0usize..MAX_BATCH, 100u16..600, prop::option::of(0u32..100_000)), 0..MAX_BATCH)) {
        let responses: Vec<Value> = items
            .iter()
            .map(|(id, status, retry)| {
                let mut headers = serde_json::Map::new();
                if let Some(r) = retry {
                    headers.insert("Retry-After".into(), Value::from(r.to_string()));
                }
                json!({ "id": id.to_string(), "status": status, "headers": headers, "body": { "id": format!("n{id}") } })
            })
            .collect();
        let body = serde_json::to_vec(&json!({ "responses": responses })).unwrap();
        let parsed = parse_response(&body).unwrap();
        prop_assert_eq!(parsed.len(), items.len());
        for (p, (id, status, retry)) in parsed.iter().zip(&items) {
            prop_assert_eq!(&p.id, &id.to_string());
            prop_assert_eq!(p.status, *status);
            let expected = retry.map(|r| Duration::from_secs(u64::from(r)).min(Duration::from_secs(24 * 3600)));
            let got = p.retry_after(SystemTime::now());
            if let (Some(e), Some(g)) = (expected, got) {
                prop_assert!(g <= e);
            } else {
                prop_assert_eq!(expected.is_some(), got.is_some());
            }
        }
    }

    /// Any url, `Prefer` value and body come back as sent, each call in its chain.
    #[test]
    fn batch_requests_are_chains(
        n in 0..=MAX_BATCH,
        width in 1usize..=MAX_BATCH,
        id in ".{0,20}",
        prefer in proptest::option::of(".{0,20}"),
        with_body in proptest::bool::ANY,
    ) {
        let calls: Vec<BatchCall> = (0..n)
            .map(|i| BatchCall {
                method: "POST",
                url: format!("/me/messages/{id}{i}/move"),
                body: with_body.then(|| json!({ "destinationId": id })),
                prefer: prefer.clone(),
            })
            .collect();
        let body: Value = serde_json::from_slice(&request_body(&calls, width)).unwrap();
        let reqs = body["requests"].as_array().unwrap();
        prop_assert_eq!(reqs.len(), n);
        for (i, (r, call)) in reqs.iter().zip(&calls).enumerate() {
            let want = i.to_string();
            prop_assert_eq!(r["id"].as_str(), Some(want.as_str()));
            prop_assert_eq!(r["method"].as_str(), Some("POST"));
            prop_assert_eq!(r["url"].as_str(), Some(call.url.as_str()));
            let depends = (i >= width).then(|| json!([(i - width).to_string()]));
            prop_assert_eq!(r.get("dependsOn"), depends.as_ref());
            prop_assert_eq!(r.get("body"), call.body.as_ref());
            let mut headers = serde_json::Map::new();
            if with_body {
                headers.insert("Content-Type".into(), json!("application/json"));
            }
            if let Some(p) = &prefer {
                headers.insert("Prefer".into(), json!(p));
            }
            let headers = (!headers.is_empty()).then_some(Value::Object(headers));
            prop_assert_eq!(r.get("headers"), headers.as_ref());
        }
    }

    #[test]
    fn string_literals_round_trip(value in ".*") {
        let lit = string_literal(&value);
        prop_assert!(lit.starts_with('\'') && lit.ends_with('\'') && lit.len() >= 2);
        prop_assert_eq!(lit[1..lit.len() - 1].replace("''", "'"), value);
    }

    #[test]
    fn query_values_round_trip(value in ".*") {
        let q = Query::new().pair("$filter", &value);
        let encoded = q.as_str().strip_prefix("$filter=").unwrap();
        prop_assert!(!encoded.contains(['&', '#', '+', ' ', '=']));
        prop_assert_eq!(percent_decode_str(encoded).decode_utf8().unwrap(), value);
    }

    /// An id is one segment: it decodes back, and the URL library keeps the path.
    #[test]
    fn ids_never_change_the_path(id in prop_oneof![".*", "[./%2Ee]{0,6}"]) {
        let base = url::Url::parse("https://graph.microsoft.com/v1.0").unwrap();
        match segment(&id) {
            None => prop_assert!(matches!(id.as_str(), "" | "." | "..")),
            Some(seg) => {
                prop_assert!(!seg.contains(['/', '?', '#', '\\']));
                prop_assert_eq!(percent_decode_str(&seg).decode_utf8().unwrap(), id.as_str());
                let path = format!("/me/messages/{seg}/move");
                let url = base.join(&format!("/v1.0{path}")).unwrap();
                prop_assert_eq!(url.path(), format!("/v1.0{path}"));
            }
        }
    }

    #[test]
    fn html_and_retry_after_never_panic(
        html in ".{0,400}",
        max in 0usize..500,
        value in ".{0,30}",
        attempt: u32,
        unit in prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), Just(-1.0)],
    ) {
        let _ = html_to_text(&html, max);
        let _ = parse_retry_after(&value, SystemTime::now());
        let max_wait = Duration::from_secs(30);
        let wait = backoff(attempt, Duration::from_millis(500), max_wait, unit);
        prop_assert!(wait <= max_wait);
    }
}
