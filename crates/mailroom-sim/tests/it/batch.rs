//! $batch: limits, dependsOn, 424, per-item 429 and Retry-After.

use std::time::Duration;

use mailroom_sim::{Faults, RetryAfter, SimConfig};
use serde_json::{Value, json};

use crate::{Graph, assert_shape, enc, start};

const DEMO: &str = "demo@mailroom.test";

fn by_id(resp: &Value) -> std::collections::BTreeMap<String, Value> {
    resp["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

#[tokio::test]
async fn batch_answers_each_item() {
    let sim = start(SimConfig {
        faults: Faults::none(),
        ..SimConfig::default()
    })
    .await;
    let g = Graph::new(&sim, DEMO);
    let id = sim
        .mailbox(DEMO)
        .unwrap()
        .folder_message_ids("inbox")
        .unwrap()
        .remove(0);
    let (status, body) = g
        .post(
            "/$batch",
            json!({"requests": [
                {"id": "1", "method": "GET", "url": "/me"},
                {"id": "2", "method": "GET", "url": "me/mailFolders/inbox/messages?$top=2&$select=subject"},
                {"id": "3", "method": "GET", "url": format!("/me/messages/{}", enc(&id))},
                {"id": "4", "method": "PATCH", "url": format!("/me/messages/{}", enc(&id)),
                 "headers": {"Content-Type": "application/json"}, "body": {"isRead": true}},
                {"id": "5", "method": "GET", "url": "/me/nosuch"},
            ]}),
        )
        .await;
    assert_eq!(status, 200);
    let r = by_id(&body);
    assert_shape(
        "graph/batch_response.json",
        200,
        &json!({"responses": [r["1"].clone()]}),
    );
    assert_eq!(r["1"]["body"]["mail"], DEMO);
    assert_eq!(r["2"]["body"]["value"].as_array().unwrap().len(), 2);
    assert_eq!(r["3"]["status"], 200);
    assert_eq!(r["4"]["body"]["isRead"], true);
    assert_eq!(r["5"]["status"], 400);
    let c = sim.counters();
    assert_eq!(c.batch_items, 5);
    assert_eq!(c.requests("GET /v1.0/me"), 1);
    assert_eq!(c.requests("POST /v1.0/$batch"), 1);
}

#[tokio::test]
async fn batch_limits_and_dependencies() {
    let sim = start(SimConfig {
        faults: Faults::none(),
        ..SimConfig::default()
    })
    .await;
    let g = Graph::new(&sim, DEMO);
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/me"}))
        .collect();
    let (status, body) = g.post("/$batch", json!({"requests": many})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("BadRequest"))
    );
    let twenty: Vec<Value> = (0..20)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/me"}))
        .collect();
    assert_eq!(g.post("/$batch", json!({"requests": twenty})).await.0, 200);
    let (status, _) = g
        .post("/$batch", json!({"requests": [{"id": "1", "method": "GET", "url": "/me"}, {"id": "1", "method": "GET", "url": "/me"}]}))
        .await;
    assert_eq!(status, 400, "duplicate ids");
    let (status, _) = g
        .post(
            "/$batch",
            json!({"requests": [{"id": "1", "method": "GET", "url": "/me", "dependsOn": ["9"]}]}),
        )
        .await;
    assert_eq!(status, 400, "unknown dependency");
    let (status, _) = g
        .post(
            "/$batch",
            json!({"requests": [
                {"id": "1", "method": "GET", "url": "/me", "dependsOn": ["2"]},
                {"id": "2", "method": "GET", "url": "/me", "dependsOn": ["1"]},
            ]}),
        )
        .await;
    assert_eq!(status, 400, "a dependency cycle");

    let (status, body) = g
        .post(
            "/$batch",
            json!({"requests": [
                {"id": "a", "method": "GET", "url": "/me/messages/AAMkAGbad"},
                {"id": "b", "method": "GET", "url": "/me", "dependsOn": ["a"]},
                {"id": "c", "method": "GET", "url": "/me", "dependsOn": ["b"]},
                {"id": "d", "method": "GET", "url": "/me"},
            ]}),
        )
        .await;
    assert_eq!(status, 200);
    let r = by_id(&body);
    assert_eq!(r["a"]["status"], 400);
    assert_eq!(r["b"]["status"], 424);
    assert_eq!(r["c"]["status"], 424);
    assert_eq!(r["d"]["status"], 200);

    let anon = crate::client()
        .post(format!("{}/$batch", sim.graph_url()))
        .json(&json!({"requests": [{"id": "1", "method": "GET", "url": "/me"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);
}

#[tokio::test]
async fn parallel_items_meet_the_concurrency_limit_and_retry_after_is_checked() {
    let sim = start(SimConfig::default()).await; // limit 4, Retry-After 1 s
    let g = Graph::new(&sim, DEMO);
    let six: Vec<Value> = (0..6)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/me"}))
        .collect();
    let (_, body) = g.post("/$batch", json!({"requests": six.clone()})).await;
    let throttled: Vec<&Value> = body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == 429)
        .collect();
    assert_eq!(throttled.len(), 2);
    assert_eq!(throttled[0]["headers"]["Retry-After"], "1");
    assert_eq!(
        throttled[0]["body"]["error"]["code"],
        "ApplicationThrottled"
    );
    assert_shape(
        "graph/batch_item_throttled.json",
        200,
        &json!({"responses": [throttled[0].clone()]}),
    );
    assert_eq!(sim.counters().peak_concurrency(DEMO), 5);
    // Retrying at once violates the advertised Retry-After.
    g.post("/$batch", json!({"requests": [six[0].clone()]}))
        .await;
    assert_eq!(sim.counters().retry_after_violations(DEMO), 1);
    sim.advance_clock(Duration::from_secs(1));
    // A sequential chain runs one at a time: no throttling.
    let chain: Vec<Value> = (0..6)
        .map(|i| {
            if i == 0 {
                json!({"id": "0", "method": "GET", "url": "/me"})
            } else {
                json!({"id": i.to_string(), "method": "GET", "url": "/me", "dependsOn": [(i - 1).to_string()]})
            }
        })
        .collect();
    let (_, body) = g.post("/$batch", json!({"requests": chain})).await;
    assert!(
        body["responses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == 200)
    );
    assert_eq!(sim.counters().retry_after_violations(DEMO), 1);
}

#[tokio::test]
async fn injected_item_faults_carry_retry_after() {
    let sim = start(SimConfig {
        faults: Faults {
            error_rate: 1.0,
            statuses: vec![429],
            retry_after: RetryAfter::Fractional(1.5),
            ..Faults::none()
        },
        ..SimConfig::default()
    })
    .await;
    let g = Graph::new(&sim, DEMO);
    let (status, body) = g
        .post(
            "/$batch",
            json!({"requests": [{"id": "1", "method": "GET", "url": "/me"}]}),
        )
        .await;
    assert_eq!(status, 200);
    let item = &body["responses"][0];
    assert_eq!(
        (
            item["status"].as_u64(),
            item["headers"]["Retry-After"].as_str()
        ),
        (Some(429), Some("1.5"))
    );
    sim.advance_clock(Duration::from_millis(1400));
    g.post(
        "/$batch",
        json!({"requests": [{"id": "1", "method": "GET", "url": "/me"}]}),
    )
    .await;
    assert_eq!(sim.counters().retry_after_violations_total, 1);
}
