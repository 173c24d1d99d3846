//! Delta sync: a first enumeration, new/changed/moved/deleted mail, forced 410s.

use mailroom_core::{Change, Connector, FolderRef, SyncCursor};
use mailroom_graph::DeltaOptions;
use mailroom_sim::{DeltaErrorCode, NewMessage};

use crate::support::{Harness, Model, config, sync_until_complete, truth_summary};

#[tokio::test]
async fn delta_across_new_changed_moved_deleted_and_a_forced_410() {
    let h = Harness::start(config(400)).await;
    let graph = h.connector_with(h.graph_config().delta_page_size(40));
    let inbox = FolderRef::INBOX;
    let mut model = Model::default();

    // First sync: the whole folder, the first page marked reset.
    let first = graph.sync_folder(&inbox, None).await.unwrap();
    assert!(first.reset && !first.complete);
    assert!(format!("{:?}", first.cursor).starts_with("SyncCursor("));
    model.apply(&first);
    let cursor = sync_until_complete(&graph, &inbox, Some(first.cursor), &mut model).await;
    assert_eq!(model.summary(), truth_summary(&h.truth("inbox")));
    let n = h.truth("inbox").len();
    assert!(n > 150, "{n}");
    assert_eq!(model.pages, n.div_ceil(40).max(1));
    assert_eq!(model.duplicates, 0);

    // Nothing changed: one request, no changes.
    let idle = graph
        .sync_folder(&inbox, Some(cursor.clone()))
        .await
        .unwrap();
    assert!(idle.complete && !idle.reset && idle.changes.is_empty());

    // Changes made by another client.
    let mb = h.mailbox();
    let truth = h.truth("inbox");
    let new_ids = mb.add_messages("inbox", 3).unwrap();
    mb.set_read(&truth[0].id, !truth[0].is_read).unwrap();
    mb.set_subject(&truth[1].id, "Re: changed subject").unwrap();
    mb.move_message(&truth[2].id, "archive").unwrap();
    mb.delete_message(&truth[3].id).unwrap();
    let archived = h.truth("archive")[5].id.clone();
    let moved_in = mb.move_message(&archived, "inbox").unwrap();
    // … and by this connector.
    graph
        .move_message(&truth[4].id, &FolderRef::parse("Projects/Beta").unwrap())
        .await
        .unwrap();

    let mut round = Model::default();
    let cursor = {
        // Apply to the same model; count this round's changes separately.
        let page = graph.sync_folder(&inbox, Some(cursor)).await.unwrap();
        assert!(page.complete && !page.reset);
        round.apply(&page);
        model.apply(&page);
        let removed: Vec<&str> = page
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Remove { remote_id } => Some(remote_id.as_str()),
                _ => None,
            })
            .collect();
        for gone in [&truth[2].id, &truth[3].id, &truth[4].id] {
            assert!(removed.contains(&gone.as_str()), "{gone} reported @removed");
        }
        for id in new_ids
            .iter()
            .chain([&moved_in, &truth[0].id, &truth[1].id])
        {
            assert!(round.messages.contains_key(id), "{id} upserted");
        }
        page.cursor
    };
    assert_eq!(
        round.messages[&truth[1].id].subject.as_deref(),
        Some("Re: changed subject")
    );
    assert_eq!(round.messages[&truth[0].id].is_read, !truth[0].is_read);
    assert_eq!(model.summary(), truth_summary(&h.truth("inbox")));

    // The delta token expires: the same call starts over and reconciles.
    mb.add_messages("inbox", 2).unwrap();
    mb.delete_message(&truth[5].id).unwrap();
    h.sim.expire_delta_tokens(crate::support::ALICE).unwrap();
    let before = model.resets;
    let restarted = graph.sync_folder(&inbox, Some(cursor)).await.unwrap();
    assert!(restarted.reset, "a 410 restarts the folder");
    model.apply(&restarted);
    let cursor = sync_until_complete(&graph, &inbox, Some(restarted.cursor), &mut model).await;
    assert_eq!(model.resets, before + 1);
    assert_eq!(
        model.duplicates, 0,
        "each message sent once per enumeration"
    );
    assert_eq!(model.summary(), truth_summary(&h.truth("inbox")));
    assert_eq!(h.sim.counters().delta_resyncs, 1);

    // A 410 in the middle of an enumeration (an expired skip token) too.
    h.sim.expire_delta_tokens(crate::support::ALICE).unwrap();
    let page = graph.sync_folder(&inbox, Some(cursor)).await.unwrap();
    assert!(page.reset && !page.complete);
    model.apply(&page);
    h.sim.expire_delta_tokens(crate::support::ALICE).unwrap();
    mb.add_message(
        "inbox",
        NewMessage {
            subject: "late".into(),
            ..NewMessage::default()
        },
    )
    .unwrap();
    let page = graph.sync_folder(&inbox, Some(page.cursor)).await.unwrap();
    assert!(page.reset, "an expired skip token restarts too");
    model.apply(&page);
    sync_until_complete(&graph, &inbox, Some(page.cursor), &mut model).await;
    assert_eq!(model.summary(), truth_summary(&h.truth("inbox")));
    assert_eq!(model.duplicates, 0);

    // Every message with attachments comes with its list (fetched after each page).
    assert!(model.messages.values().any(|m| m.has_attachments));
    for m in model.messages.values() {
        if m.has_attachments {
            assert!(!m.attachments.is_empty(), "{:?}", m.subject);
        }
        assert_eq!(m.attachment_count as usize, m.attachments.len());
    }
}

#[tokio::test]
async fn every_410_code_restarts() {
    for code in [
        DeltaErrorCode::SyncStateNotFound,
        DeltaErrorCode::SyncStateNotFoundLower,
        DeltaErrorCode::ResyncRequired,
    ] {
        let h = Harness::start(config(60).delta_error_code(code)).await;
        let graph = h.connector();
        let mut model = Model::default();
        let folder = FolderRef::parse("Bob's \"mail\" & more/2025").unwrap();
        let cursor = sync_until_complete(&graph, &folder, None, &mut model).await;
        h.sim.expire_delta_tokens(crate::support::ALICE).unwrap();
        let page = graph.sync_folder(&folder, Some(cursor)).await.unwrap();
        assert!(page.reset, "{code:?}");
        model.apply(&page);
        assert!(page.complete);
        let truth = h.truth("Bob's \"mail\" & more/2025");
        assert!(!truth.is_empty());
        assert_eq!(model.summary(), truth_summary(&truth), "{code:?}");
    }
}

#[tokio::test]
async fn first_sync_since_a_date_and_foreign_cursors() {
    let h = Harness::start(config(300)).await;
    let graph = h.connector();
    let truth = h.truth("inbox");
    let since = truth[30].received;
    let page = graph
        .start_sync_since(&FolderRef::INBOX, since)
        .await
        .unwrap();
    assert!(page.reset);
    let mut model = Model::default();
    model.apply(&page);
    if !page.complete {
        sync_until_complete(&graph, &FolderRef::INBOX, Some(page.cursor), &mut model).await;
    }
    let want: Vec<_> = truth
        .iter()
        .filter(|m| m.received >= since)
        .cloned()
        .collect();
    assert!(want.len() >= 31 && want.len() < truth.len());
    assert_eq!(model.summary(), truth_summary(&want));

    // A cursor that points elsewhere is never followed: the folder starts over.
    let evil = SyncCursor(
        "https://evil.example/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken=x".into(),
    );
    let page = graph
        .delta(
            &FolderRef::INBOX,
            Some(evil),
            &DeltaOptions::default().page_size(500),
        )
        .await
        .unwrap();
    assert!(page.reset);
    assert!(page.cursor.as_str().starts_with(&h.sim.graph_url()));
}

/// Alice's Inbox of `n` messages, `percent` % of them with attachments.
async fn with_attachments(n: usize, percent: u8) -> crate::support::Harness {
    use mailroom_sim::{MailboxSpec, SimConfig};
    crate::support::Harness::start(SimConfig::default().mailboxes(vec![
        MailboxSpec::new(crate::support::ALICE, n)
            .all_in("inbox")
            .attachment_percent(percent),
    ]))
    .await
}

#[tokio::test]
async fn delta_pages_carry_the_attachment_lists_inline_only_messages_included() {
    let h = with_attachments(300, 40).await;
    let graph = h.connector_with(h.graph_config().delta_page_size(50));
    h.sim.reset_counters();
    let mut model = Model::default();
    sync_until_complete(&graph, &FolderRef::INBOX, None, &mut model).await;
    let truth = h.truth("inbox");
    assert_eq!(model.messages.len(), truth.len());
    let mut inline_only = 0;
    for t in &truth {
        let m = &model.messages[&t.id];
        assert_eq!(m.has_attachments, t.has_attachments, "{}", t.subject);
        assert_eq!(m.attachments.len(), t.attachment_count, "{}", t.subject);
        assert_eq!(m.attachment_count as usize, t.attachment_count);
        if t.attachment_count > 0 && !t.has_attachments {
            inline_only += 1;
            assert!(m.attachments.iter().all(|a| a.is_inline));
        }
        assert!(
            m.attachments
                .iter()
                .all(|a| a.remote_id.is_some() && a.size > 0)
        );
    }
    assert!(inline_only > 0, "the mailbox has inline-only messages");
    // Only the messages with attachments were asked for, 20 per $batch.
    let with = truth.iter().filter(|t| t.attachment_count > 0).count() as u64;
    let c = h.sim.counters();
    assert_eq!(c.batch_items, with);
    let batches = c.requests("POST /v1.0/$batch");
    assert!(
        batches >= with.div_ceil(20) && batches <= with.div_ceil(20) + 6,
        "{batches} batches for {with} messages"
    );
    assert_eq!(c.retry_after_violations_total, 0);
}

#[tokio::test]
async fn attachment_lists_survive_throttling_and_can_be_turned_off() {
    let h = with_attachments(120, 50).await;
    // Throttled batch items are sent again after their Retry-After.
    h.set_faults(mailroom_sim::Faults {
        error_rate: 0.3,
        statuses: vec![429, 503],
        retry_after: mailroom_sim::RetryAfter::Fractional(0.05),
        ..mailroom_sim::Faults::default()
    });
    let graph = h.connector_with(h.graph_config().retry(crate::support::patient()));
    let mut model = Model::default();
    sync_until_complete(&graph, &FolderRef::INBOX, None, &mut model).await;
    for t in h.truth("inbox") {
        assert_eq!(model.messages[&t.id].attachments.len(), t.attachment_count);
    }
    let c = h.sim.counters();
    assert!(c.injected_faults.values().sum::<u64>() > 0);
    assert_eq!(c.retry_after_violations_total, 0);
    h.set_faults(mailroom_sim::Faults::none());
    // Off: no $batch at all, flags only.
    h.sim.reset_counters();
    let graph = h.connector_with(h.graph_config().attachment_lists(false));
    let mut model = Model::default();
    sync_until_complete(&graph, &FolderRef::INBOX, None, &mut model).await;
    assert_eq!(h.sim.counters().batch_items, 0);
    assert!(model.messages.values().any(|m| m.has_attachments));
    assert!(model.messages.values().all(|m| m.attachments.is_empty()));
}
