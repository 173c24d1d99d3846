//! Throttling and unavailability: the same result as without faults, Retry-After
//! honoured mailbox-wide, back-off without it, bounded retries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use mailroom_core::{Connector, ErrorKind, FetchQuery, Folder, FolderRef, Message, fetch_all};
use mailroom_graph::{GraphConnector, RetryPolicy};
use mailroom_sim::{Faults, RetryAfter};

use crate::support::{ALICE, Harness, Model, config, patient, sync_until_complete};

/// Everything a client sees of a scenario run, to compare runs.
#[derive(Debug, PartialEq)]
struct Outcome {
    folders: Vec<Folder>,
    listed: Vec<Message>,
    synced: Vec<Message>,
    moved: Vec<Option<String>>,
    after_moves: Vec<Message>,
    single: Message,
}

async fn scenario(h: &Harness, graph: &GraphConnector) -> Outcome {
    let folders = graph.list_folders().await.unwrap();
    let q = FetchQuery {
        page_size: Some(30),
        ..FetchQuery::default()
    };
    let listed = fetch_all(graph, &FolderRef::INBOX, &q).await.unwrap();
    let mut model = Model::default();
    let cursor = sync_until_complete(graph, &FolderRef::INBOX, None, &mut model).await;
    let synced = model.messages.values().cloned().collect();
    let ids: Vec<String> = listed
        .iter()
        .take(45)
        .map(|m| m.remote_id.clone())
        .collect();
    let moved = graph
        .move_many(
            &ids,
            &FolderRef::parse("Bob's \"mail\" & more/2025").unwrap(),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.outcome.unwrap())
        .collect();
    sync_until_complete(graph, &FolderRef::INBOX, Some(cursor), &mut model).await;
    let after_moves = model.messages.values().cloned().collect();
    let single = graph.get_message(&listed[50].remote_id).await.unwrap();
    let _ = h;
    Outcome {
        folders,
        listed,
        synced,
        moved,
        after_moves,
        single,
    }
}

#[tokio::test]
async fn twenty_percent_429_503_with_fractional_retry_after_changes_nothing() {
    let calm = Harness::start(config(400)).await;
    let stormy = Harness::start(config(400)).await;
    stormy.set_faults(Faults {
        error_rate: 0.2,
        statuses: vec![429, 503],
        retry_after: RetryAfter::Fractional(0.05),
        ..Faults::default()
    });
    let small_pages = |h: &Harness| h.graph_config().delta_page_size(50).retry(patient());
    let expected = scenario(&calm, &calm.connector_with(small_pages(&calm))).await;
    let got = scenario(&stormy, &stormy.connector_with(small_pages(&stormy))).await;
    assert_eq!(got, expected);
    let c = stormy.sim.counters();
    let faults = c.injected_faults.get(ALICE).copied().unwrap_or(0);
    assert!(faults >= 10, "{faults} injected faults");
    assert!(c.responses(503) > 0 && c.responses(429) > 0);
    assert_eq!(
        c.retry_after_violations_total, 0,
        "{:?}",
        c.retry_after_violations
    );
    assert_eq!(calm.sim.counters().retry_after_violations_total, 0);
}

/// A sleep that records its waits and returns at once.
fn recorder() -> (
    Arc<Mutex<Vec<Duration>>>,
    impl Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync,
) {
    let waits = Arc::new(Mutex::new(Vec::new()));
    let w = waits.clone();
    (waits, move |d: Duration| {
        w.lock().unwrap().push(d);
        futures::future::ready(()).boxed()
    })
}

#[tokio::test]
async fn without_retry_after_it_backs_off_exponentially_with_jitter() {
    let h = Harness::start(config(120)).await;
    h.set_faults(Faults {
        error_rate: 0.5,
        statuses: vec![429, 503, 504],
        retry_after: RetryAfter::None,
        mailbox_concurrency_limit: None,
        ..Faults::default()
    });
    let (waits, sleep) = recorder();
    let policy = RetryPolicy {
        max_attempts: 20,
        base_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        ..RetryPolicy::default()
    };
    let graph = h.connector_with(h.graph_config().retry(policy).sleep(sleep));
    let q = FetchQuery {
        page_size: Some(10),
        ..FetchQuery::default()
    };
    let listed = fetch_all(&graph, &FolderRef::INBOX, &q).await.unwrap();
    assert_eq!(listed.len(), h.truth("inbox").len());
    let waits = waits.lock().unwrap().clone();
    assert!(waits.len() >= 3, "{waits:?}");
    assert!(
        waits
            .iter()
            .all(|w| *w >= Duration::from_millis(50) && *w <= Duration::from_secs(2)),
        "{waits:?}"
    );
    assert!(
        waits.iter().any(|w| *w > Duration::from_millis(100)),
        "it grows: {waits:?}"
    );
    let mut distinct = waits.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() > waits.len() / 2, "jitter: {waits:?}");
}

#[tokio::test]
async fn retry_after_holds_every_request_of_the_mailbox() {
    let h = Harness::start(config(60)).await;
    h.set_faults(Faults {
        error_rate: 0.35,
        statuses: vec![429],
        retry_after: RetryAfter::Fractional(0.25),
        ..Faults::default()
    });
    let waits = Arc::new(Mutex::new(Vec::new()));
    let w = waits.clone();
    let sleep = move |d: Duration| {
        w.lock().unwrap().push(d);
        tokio::time::sleep(d).boxed()
    };
    let graph = h.connector_with(h.graph_config().retry(patient()).sleep(sleep));
    let q = FetchQuery {
        page_size: Some(5),
        ..FetchQuery::default()
    };
    fetch_all(&graph, &FolderRef::INBOX, &q).await.unwrap();
    let waits = waits.lock().unwrap().clone();
    assert!(!waits.is_empty());
    assert!(
        waits
            .iter()
            .all(|w| *w > Duration::from_millis(200) && *w <= Duration::from_millis(250)),
        "{waits:?}"
    );
    assert_eq!(h.sim.counters().retry_after_violations_total, 0);
}

#[tokio::test]
async fn retries_are_bounded() {
    let h = Harness::start(config(20)).await;
    h.set_faults(Faults {
        error_rate: 1.0,
        statuses: vec![429],
        retry_after: RetryAfter::Fractional(0.01),
        ..Faults::default()
    });
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let graph = h.connector_with(h.graph_config().retry(policy));
    let err = graph.connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_millis(10)));
    assert_eq!(err.code(), Some("TooManyRequests"));
    assert!(
        err.to_string()
            .starts_with("cannot connect to graph as alice@contoso.test: TooManyRequests"),
        "{err}"
    );
    assert_eq!(h.sim.counters().requests("GET /v1.0/me"), 3);

    // A Retry-After longer than the policy accepts ends the call at once, with the wait.
    h.set_faults(Faults {
        error_rate: 1.0,
        statuses: vec![503],
        retry_after: RetryAfter::Seconds(600),
        ..Faults::default()
    });
    let err = graph.connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(600)));
    assert_eq!(h.sim.counters().requests("GET /v1.0/me"), 4);
}

#[tokio::test]
async fn http_date_retry_after_is_honoured() {
    let h = Harness::start(config(40)).await;
    h.set_faults(Faults {
        error_rate: 0.3,
        statuses: vec![503],
        retry_after: RetryAfter::HttpDate(1),
        ..Faults::default()
    });
    let graph = h.connector_with(h.graph_config().retry(patient()));
    let q = FetchQuery {
        page_size: Some(4),
        ..FetchQuery::default()
    };
    let listed = fetch_all(&graph, &FolderRef::INBOX, &q).await.unwrap();
    assert_eq!(listed.len(), h.truth("inbox").len());
    let c = h.sim.counters();
    assert!(
        c.injected_faults.get(ALICE).copied().unwrap_or(0) > 0,
        "some answers were 503 with a date"
    );
    assert_eq!(c.retry_after_violations_total, 0);
}
