//! Fault injection, concurrency limit, request budget, counters.

use std::time::Duration;

use mailroom_sim::{Faults, RequestBudget, RetryAfter, SimConfig};

use crate::{Graph, assert_shape, start};

const DEMO: &str = "demo@mailroom.test";

#[tokio::test]
async fn random_errors_with_retry_after_and_violations() {
    let sim = start(SimConfig {
        faults: Faults {
            error_rate: 1.0,
            statuses: vec![503],
            retry_after: RetryAfter::Fractional(0.5),
            ..Faults::none()
        },
        ..SimConfig::default()
    })
    .await;
    let g = Graph::new(&sim, DEMO);
    let (status, h, body) = g.get_with("/me", &[]).await;
    assert_eq!(status, 503);
    assert_eq!(h.get("retry-after").unwrap(), "0.5");
    assert_eq!(body["error"]["code"], "serviceNotAvailable");
    g.get("/me").await; // too early
    sim.advance_clock(Duration::from_millis(600));
    sim.set_faults(Faults::none());
    assert_eq!(g.get("/me").await.0, 200);
    let c = sim.counters();
    assert_eq!(c.retry_after_violations(DEMO), 1);
    assert_eq!(c.injected_faults.get(DEMO), Some(&2));
    assert_eq!(c.responses(503), 2);

    sim.set_faults(Faults {
        error_rate: 1.0,
        statuses: vec![504],
        retry_after: RetryAfter::None,
        ..Faults::none()
    });
    let (status, h, _) = g.get_with("/me", &[]).await;
    assert_eq!(status, 504);
    assert!(h.get("retry-after").is_none());
    sim.set_faults(Faults {
        error_rate: 1.0,
        statuses: vec![500],
        ..Faults::none()
    });
    assert_eq!(g.get("/me").await.0, 500);

    // Seeded: the same seed gives the same sequence of faults.
    let mut runs = Vec::new();
    for _ in 0..2 {
        let sim = start(SimConfig {
            faults: Faults {
                error_rate: 0.5,
                ..Faults::none()
            },
            ..SimConfig::default()
        })
        .await;
        let g = Graph::new(&sim, DEMO);
        let mut seq = Vec::new();
        for _ in 0..20 {
            seq.push(g.get("/me").await.0);
            sim.advance_clock(Duration::from_secs(2));
        }
        runs.push(seq);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].contains(&200) && runs[0].iter().any(|s| *s != 200));
}

#[tokio::test]
async fn the_fifth_concurrent_request_is_throttled() {
    let sim = start(SimConfig {
        faults: Faults {
            latency: Duration::from_secs(1),
            ..Faults::default()
        },
        ..SimConfig::default()
    })
    .await;
    let g = std::sync::Arc::new(Graph::new(&sim, DEMO));
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let g = g.clone();
            tokio::spawn(async move { g.get_with("/me", &[]).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        let (status, h, body) = t.await.unwrap();
        if status == 429 {
            assert_shape("graph/error_throttled.json", status, &body);
            assert_eq!(
                body["error"]["message"],
                "Application is over its MailboxConcurrency limit."
            );
            assert_eq!(h.get("retry-after").unwrap(), "1");
        }
        statuses.push(status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429]);
    let c = sim.counters();
    assert!(c.peak_concurrency(DEMO) >= 5);
    assert_eq!(c.throttled.get(DEMO), Some(&2));
}

#[tokio::test]
async fn a_request_budget_per_window() {
    let sim = start(SimConfig {
        faults: Faults {
            request_budget: Some(RequestBudget {
                requests: 3,
                window: Duration::from_secs(60),
            }),
            ..Faults::none()
        },
        ..SimConfig::default()
    })
    .await;
    let g = Graph::new(&sim, DEMO);
    for _ in 0..3 {
        assert_eq!(g.get("/me").await.0, 200);
    }
    sim.advance_clock(Duration::from_secs(20));
    let (status, h, _) = g.get_with("/me", &[]).await;
    assert_eq!(status, 429);
    assert_eq!(h.get("retry-after").unwrap(), "40");
    sim.advance_clock(Duration::from_secs(40));
    assert_eq!(g.get("/me").await.0, 200);
    assert_eq!(sim.counters().retry_after_violations(DEMO), 0);
}

#[tokio::test]
async fn counters_by_route_mailbox_and_status() {
    let sim = start(SimConfig {
        faults: Faults::none(),
        ..SimConfig::default()
    })
    .await;
    let g = Graph::new(&sim, DEMO);
    g.get("/me").await;
    g.get("/me/mailFolders/inbox/messages").await;
    g.get("/me/mailFolders/archive/messages?$top=1").await;
    g.get("/me/mailFolders/inbox/messages/delta").await;
    g.get("/me/messages/AAMkAGbad").await;
    let c = sim.counters();
    assert_eq!(c.requests("GET /v1.0/me/mailFolders/{id}/messages"), 2);
    assert_eq!(
        c.requests("GET /v1.0/me/mailFolders/{id}/messages/delta"),
        1
    );
    assert_eq!(c.requests("GET /v1.0/me/messages/{id}"), 1);
    assert_eq!(c.mailbox_requests(DEMO), 5);
    assert_eq!(c.responses(200), 4);
    assert_eq!(c.responses(400), 1);
    assert_eq!(c.peak_concurrency(DEMO), 1);
    let json: serde_json::Value = crate::client()
        .get(format!("{}/_sim/counters", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["requests_by_mailbox"][DEMO], 5);
    sim.reset_counters();
    assert_eq!(sim.counters().mailbox_requests(DEMO), 0);
}

#[tokio::test]
async fn retry_after_as_an_http_date() {
    let sim = start(SimConfig {
        faults: Faults {
            error_rate: 1.0,
            statuses: vec![429],
            retry_after: RetryAfter::HttpDate(3),
            ..Faults::none()
        },
        ..SimConfig::default()
    })
    .await;
    let g = Graph::new(&sim, DEMO);
    let (status, h, _) = g.get_with("/me", &[]).await;
    assert_eq!(status, 429);
    let date = h.get("retry-after").unwrap().to_str().unwrap().to_owned();
    assert!(date.ends_with(" GMT"), "{date}");
    let when = chrono::DateTime::parse_from_rfc2822(&date.replace("GMT", "+0000")).unwrap();
    let wait = (when.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds();
    assert!((1_000..=3_100).contains(&wait), "{wait} ms");
    sim.set_faults(Faults::none());
    sim.advance_clock(Duration::from_secs(3));
    assert_eq!(g.get("/me").await.0, 200);
    assert_eq!(sim.counters().retry_after_violations_total, 0);
}

#[tokio::test]
async fn other_users_mailboxes_are_forbidden() {
    let sim = start(SimConfig {
        mailboxes: vec![
            mailroom_sim::MailboxSpec::new("alice@contoso.test", 3),
            mailroom_sim::MailboxSpec::new("bob@contoso.test", 3),
        ],
        faults: Faults::none(),
        ..SimConfig::default()
    })
    .await;
    let g = Graph::new(&sim, "alice@contoso.test");
    assert_eq!(
        g.get("/users/alice@contoso.test/mailFolders/inbox").await.0,
        200
    );
    let id = sim
        .mailbox("alice@contoso.test")
        .unwrap()
        .user_id()
        .to_owned();
    assert_eq!(g.get(&format!("/users/{id}/messages?$top=1")).await.0, 200);
    let (status, body) = g.get("/users/bob@contoso.test/messages").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("ErrorAccessDenied"))
    );
    // Bob's ids are not found through Alice's token.
    let bob_msg = sim
        .mailbox("bob@contoso.test")
        .unwrap()
        .folder_message_ids("inbox")
        .unwrap();
    if let Some(id) = bob_msg.first() {
        assert_eq!(
            g.get(&format!("/me/messages/{}", crate::enc(id))).await.0,
            404
        );
    }
    let err = mailroom_sim::Simulator::start(SimConfig {
        auto_approve_user: Some("nobody@x.test".into()),
        ..SimConfig::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, mailroom_sim::Error::UnknownMailbox(_)));
}

#[tokio::test]
async fn a_client_that_hangs_up_frees_its_slot() {
    let sim = start(SimConfig {
        faults: Faults {
            latency: Duration::from_millis(400),
            mailbox_concurrency_limit: Some(1),
            ..Faults::default()
        },
        ..SimConfig::default()
    })
    .await;
    let g = Graph::new(&sim, DEMO);
    let impatient = crate::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    for _ in 0..3 {
        let r = impatient
            .get(format!("{}/me", sim.graph_url()))
            .bearer_auth(&g.token)
            .send()
            .await;
        assert!(r.is_err(), "timed out");
    }
    // The server notices the hang-ups once the sleeps are cancelled.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(g.get("/me").await.0, 200);
}

#[tokio::test]
async fn scripted_faults_answer_the_next_requests_in_order() {
    let sim = start(SimConfig {
        faults: Faults::none(),
        ..SimConfig::default()
    })
    .await;
    let g = Graph::new(&sim, DEMO);
    sim.script_faults(DEMO, &[429, 503]).unwrap();
    let (s1, h1, b1) = g.get_with("/me", &[]).await;
    assert_eq!(
        (s1, h1.get("retry-after").unwrap().to_str().unwrap()),
        (429, "1")
    );
    assert_eq!(b1["error"]["code"], "TooManyRequests");
    sim.advance_clock(Duration::from_secs(1));
    assert_eq!(g.get("/me").await.0, 503);
    sim.advance_clock(Duration::from_secs(1));
    assert_eq!(g.get("/me").await.0, 200);
    // Batch items take them too; and over the control API.
    let r = crate::client()
        .post(format!("{}/_sim/mailboxes/{DEMO}/faults", sim.base_url()))
        .json(&serde_json::json!({"statuses": [504]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, body) = g
        .post(
            "/$batch",
            serde_json::json!({"requests": [{"id": "1", "method": "GET", "url": "/me"}, {"id": "2", "method": "GET", "url": "/me", "dependsOn": ["1"]}]}),
        )
        .await;
    let statuses: std::collections::BTreeMap<String, u64> = body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(statuses["1"], 504);
    assert_eq!(statuses["2"], 424);
    assert_eq!(sim.counters().retry_after_violations_total, 0);
}
