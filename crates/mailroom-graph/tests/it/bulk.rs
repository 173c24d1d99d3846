//! `$batch` bulk moves and deletes, and the per-mailbox concurrency limit.

use std::sync::Arc;

use mailroom_core::{DeleteMode, ErrorKind, FetchQuery, FolderRef};
use mailroom_sim::{Faults, MailboxSpec, RetryAfter, SimConfig};

use crate::support::{ALICE, Harness, patient};

fn big_inbox(n: usize) -> SimConfig {
    SimConfig::default().mailboxes(vec![MailboxSpec::new(ALICE, n).all_in("inbox")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_way_parallel_bulk_move_stays_within_four_in_flight() {
    let h = Harness::start(big_inbox(320)).await;
    let graph = Arc::new(h.connector());
    let ids: Vec<String> = h
        .truth("inbox")
        .into_iter()
        .take(300)
        .map(|m| m.id)
        .collect();
    let tasks: Vec<_> = ids
        .chunks(19)
        .map(|chunk| {
            let graph = graph.clone();
            let chunk = chunk.to_vec();
            tokio::spawn(async move {
                graph
                    .move_many(&chunk, &FolderRef::parse("Projects/Alpha").unwrap())
                    .await
            })
        })
        .collect();
    assert_eq!(tasks.len(), 16);
    let mut moved = Vec::new();
    for t in tasks {
        for item in t.await.unwrap().unwrap() {
            let new_id = item.outcome.unwrap().expect("a move returns the new id");
            assert_ne!(new_id, item.id);
            moved.push(new_id);
        }
    }
    let c = h.sim.counters();
    assert!(
        c.peak_concurrency(ALICE) <= 4,
        "peak {}",
        c.peak_concurrency(ALICE)
    );
    assert_eq!(c.peak_concurrency(ALICE), 4, "and the four slots were used");
    assert_eq!(
        c.throttled.get(ALICE).copied().unwrap_or(0),
        0,
        "never refused"
    );
    assert_eq!(c.batch_items, 300);
    let mut alpha: Vec<String> = h
        .truth("Projects/Alpha")
        .into_iter()
        .map(|m| m.id)
        .collect();
    alpha.sort();
    moved.sort();
    assert_eq!(alpha, moved);
    assert_eq!(h.truth("inbox").len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_fetches_stay_within_four_in_flight() {
    let h = Harness::start(big_inbox(200)).await;
    h.set_faults(Faults {
        latency: std::time::Duration::from_millis(5),
        ..Faults::default()
    });
    let graph = Arc::new(h.connector());
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let graph = graph.clone();
            tokio::spawn(async move {
                let q = FetchQuery {
                    page_size: Some(25),
                    ..FetchQuery::default()
                };
                mailroom_core::fetch_all(&*graph, &FolderRef::INBOX, &q).await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().len(), 200);
    }
    let c = h.sim.counters();
    assert_eq!(c.peak_concurrency(ALICE), 4);
    assert_eq!(c.throttled.get(ALICE).copied().unwrap_or(0), 0);
}

#[tokio::test]
async fn chunks_of_twenty_with_per_item_results() {
    let h = Harness::start(big_inbox(60)).await;
    let graph = h.connector();
    let mut ids: Vec<String> = h
        .truth("inbox")
        .into_iter()
        .take(44)
        .map(|m| m.id)
        .collect();
    // One id that no longer exists, one that never did.
    let gone = ids[10].clone();
    h.mailbox().delete_message(&gone).unwrap();
    ids.push("AAMkNotAnId".into());
    let results = graph
        .move_many(&ids, &FolderRef::parse("ARCHIVE").unwrap())
        .await
        .unwrap();
    assert_eq!(results.len(), 45);
    // 20 + 20 + 5, then the two items chained behind the missing one (424, not run).
    assert_eq!(h.sim.counters().requests("POST /v1.0/$batch"), 4);
    for (r, id) in results.iter().zip(&ids) {
        assert_eq!(&r.id, id, "results in the order given");
    }
    let err = results[10].outcome.as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().starts_with("cannot move message "), "{err}");
    assert_eq!(
        results[44].outcome.as_ref().unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 43);
    assert_eq!(h.truth("archive").len(), 43);

    // Hard delete in bulk; soft delete lands in Deleted Items.
    let archive: Vec<String> = h.truth("archive").into_iter().map(|m| m.id).collect();
    let hard = graph
        .delete_many(&archive[..21], DeleteMode::Hard)
        .await
        .unwrap();
    assert!(hard.iter().all(|r| matches!(r.outcome, Ok(None))));
    let soft = graph
        .delete_many(&archive[21..], DeleteMode::Soft)
        .await
        .unwrap();
    assert!(soft.iter().all(|r| matches!(r.outcome, Ok(Some(_)))));
    assert_eq!(h.truth("archive").len(), 0);
    assert_eq!(h.truth("deleteditems").len(), 22);
    assert_eq!(h.mailbox().message_count(), 60 - 1 - 21);
}

#[tokio::test]
async fn throttled_items_alone_are_retried_after_their_retry_after() {
    let h = Harness::start(big_inbox(100)).await;
    h.set_faults(Faults {
        error_rate: 0.3,
        statuses: vec![429, 503],
        retry_after: RetryAfter::Fractional(0.05),
        ..Faults::default()
    });
    let graph = h.connector_with(h.graph_config().retry(patient()));
    let ids: Vec<String> = h
        .truth("inbox")
        .into_iter()
        .take(80)
        .map(|m| m.id)
        .collect();
    let results = graph
        .move_many(&ids, &FolderRef::parse("Projects/Beta").unwrap())
        .await
        .unwrap();
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let c = h.sim.counters();
    assert!(c.injected_faults.get(ALICE).copied().unwrap_or(0) > 0);
    assert_eq!(c.retry_after_violations_total, 0);
    // Items are sent again only when they failed (or were not run behind a failure).
    assert!(
        c.batch_items > 80 && c.batch_items < 240,
        "{}",
        c.batch_items
    );
    assert_eq!(h.truth("Projects/Beta").len(), 80, "each moved once");
    assert_eq!(h.truth("inbox").len(), 20);
}
