//! Listing without a 50-message cap, `since`, previews, one message, drafts,
//! attachments, raw MIME, move and delete.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use mailroom_core::{
    Connector, DeleteMode, ErrorKind, FetchQuery, FolderRef, PREVIEW_MAX_CHARS, fetch_all,
};
use mailroom_sim::{MailboxSpec, NewMessage, Person};

use crate::support::{ALICE, Harness, config};

#[tokio::test]
async fn fetch_follows_next_links_until_the_limit() {
    let h = Harness::start(
        mailroom_sim::SimConfig::default()
            .mailboxes(vec![MailboxSpec::new(ALICE, 730).all_in("inbox")]),
    )
    .await;
    let graph = h.connector();
    let truth = h.truth("inbox");
    assert_eq!(truth.len(), 730);

    // Everything, newest first, 100 per page: far past the old 50-message cap.
    let all = fetch_all(&graph, &FolderRef::INBOX, &FetchQuery::default())
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|m| m.remote_id.as_str()).collect();
    let want: Vec<&str> = truth.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, want);
    assert_eq!(
        h.sim
            .counters()
            .requests("GET /v1.0/me/mailFolders/{id}/messages"),
        8,
        "730 messages in pages of 100"
    );

    // A limit across pages.
    let q = FetchQuery {
        limit: Some(250),
        page_size: Some(60),
        ..FetchQuery::default()
    };
    let some = fetch_all(&graph, &FolderRef::INBOX, &q).await.unwrap();
    assert_eq!(some.len(), 250);
    assert_eq!(some[249].remote_id, truth[249].id);

    // `since` with a correct date literal.
    let since: DateTime<Utc> = truth[99].received;
    let q = FetchQuery {
        since: Some(since),
        ..FetchQuery::default()
    };
    let recent = fetch_all(&graph, &FolderRef::INBOX, &q).await.unwrap();
    let expected = truth.iter().filter(|m| m.received >= since).count();
    assert!(expected >= 100);
    assert_eq!(recent.len(), expected);
    assert!(recent.iter().all(|m| m.date_received.unwrap() >= since));

    // Previews: plain text, up to 2000 characters — longer than `bodyPreview`'s 255.
    let longest = all
        .iter()
        .map(|m| m.body.as_deref().unwrap_or("").chars().count())
        .max();
    assert_eq!(longest, Some(PREVIEW_MAX_CHARS));
    for m in &all {
        let body = m.body.as_deref().unwrap();
        assert!(
            !body.contains("<p>") && !body.contains("&amp;"),
            "{body:.80}"
        );
        assert!(m.message_id.is_some() && m.date_received.is_some());
        assert_eq!(m.folder_id.as_deref(), Some(truth[0].folder_id.as_str()));
        if m.has_attachments {
            assert!(!m.attachments.is_empty(), "metadata expanded");
        }
    }
}

#[tokio::test]
async fn drafts_without_from_and_one_message() {
    let h = Harness::start(config(200)).await;
    let graph = h.connector();
    let drafts = fetch_all(
        &graph,
        &FolderRef::parse("DRAFTS").unwrap(),
        &FetchQuery::default(),
    )
    .await
    .unwrap();
    assert!(!drafts.is_empty());
    for d in &drafts {
        assert!(d.is_draft);
        assert_eq!(d.sender, None);
    }
    let id = h
        .mailbox()
        .add_message(
            "inbox",
            NewMessage {
                subject: "no sender".into(),
                from: None,
                body: "hello there".into(),
                ..NewMessage::default()
            },
        )
        .unwrap();
    let m = graph.get_message(&id).await.unwrap();
    assert_eq!(m.sender, None);
    assert_eq!(m.subject.as_deref(), Some("no sender"));
    assert_eq!(m.body.as_deref(), Some("hello there"));

    let id = h
        .mailbox()
        .add_message(
            "inbox",
            NewMessage {
                subject: "Zoë".into(),
                from: Some(Person {
                    name: "Zoë Brontë".into(),
                    address: "zoe@example.test".into(),
                }),
                body: "<p>café &amp; crème</p><p>line 2</p>".into(),
                ..NewMessage::default()
            },
        )
        .unwrap();
    let m = graph.get_message(&id).await.unwrap();
    assert_eq!(m.sender.unwrap().name.as_deref(), Some("Zoë Brontë"));
    assert_eq!(m.body.as_deref(), Some("café & crème\nline 2"));

    let err = graph.get_message("AAMkNotAnId").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        err.to_string()
            .starts_with("cannot read message AAMkNotAnId: ErrorInvalidIdMalformed"),
        "{err}"
    );
}

#[tokio::test]
async fn attachments_metadata_download_and_raw_mime() {
    let h = Harness::start(config(300)).await;
    let graph = h.connector();
    let truth = h.truth("inbox");
    let with = truth
        .iter()
        .filter(|m| m.has_attachments)
        .take(12)
        .collect::<Vec<_>>();
    assert!(!with.is_empty());
    let mut largest = 0u64;
    for info in with {
        let m = graph.get_message(&info.id).await.unwrap();
        assert_eq!(m.attachment_count as usize, info.attachment_count);
        let list = graph.attachments(&info.id).await.unwrap();
        assert_eq!(list, m.attachments, "expanded metadata equals the listing");
        for a in &list {
            let mut stream = graph
                .download_attachment(&info.id, a.remote_id.as_deref().unwrap())
                .await
                .unwrap();
            let mut total = 0u64;
            let mut chunks = 0;
            while let Some(chunk) = stream.next().await {
                total += chunk.unwrap().len() as u64;
                chunks += 1;
            }
            assert_eq!(total, a.size, "{:?}", a.name);
            if a.size > 1_000_000 {
                assert!(chunks > 1, "a large download arrives in chunks");
            }
            largest = largest.max(a.size);
        }
        let mut mime = Vec::new();
        let mut raw = graph.raw_mime(&info.id).await.unwrap();
        assert_eq!(raw.content_type(), Some("message/rfc822"));
        while let Some(chunk) = raw.next().await {
            mime.extend_from_slice(&chunk.unwrap());
        }
        let text = String::from_utf8_lossy(&mime);
        assert!(
            text.contains(&format!("Message-ID: {}", info.internet_message_id)),
            "{text:.400}"
        );
    }
    assert!(largest > 0);
}

#[tokio::test]
async fn move_returns_a_new_id_or_the_same_immutable_one() {
    let h = Harness::start(config(80)).await;
    let graph = h.connector();
    let truth = h.truth("inbox");
    let old = truth[0].id.clone();
    let new = graph
        .move_message(&old, &FolderRef::parse("Projects/Alpha").unwrap())
        .await
        .unwrap();
    assert_ne!(new, old);
    let moved = h.mailbox().message(&new).unwrap();
    assert_eq!(moved.folder, "Projects/Alpha");
    let err = graph.get_message(&old).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(err.code(), Some("ErrorItemNotFound"));

    let immutable = h.connector_with(h.graph_config().immutable_ids(true));
    let id = h.mailbox().message(&truth[1].id).unwrap().immutable_id;
    let same = immutable
        .move_message(&id, &FolderRef::parse("ARCHIVE").unwrap())
        .await
        .unwrap();
    assert_eq!(same, id, "immutable ids survive moves");
    let again = immutable
        .move_message(&same, &FolderRef::INBOX)
        .await
        .unwrap();
    assert_eq!(again, id);
    assert_eq!(immutable.get_message(&id).await.unwrap().remote_id, id);
}

#[tokio::test]
async fn soft_and_hard_delete() {
    let h = Harness::start(config(80)).await;
    let graph = h.connector();
    let truth = h.truth("inbox");
    let before = h.mailbox().message_count();
    graph
        .delete_message(&truth[0].id, DeleteMode::Soft)
        .await
        .unwrap();
    let deleted = h.truth("deleteditems");
    assert!(
        deleted.iter().any(|m| m.subject == truth[0].subject
            && m.internet_message_id == truth[0].internet_message_id)
    );
    assert_eq!(h.mailbox().message_count(), before);
    graph
        .delete_message(&truth[1].id, DeleteMode::Hard)
        .await
        .unwrap();
    assert_eq!(h.mailbox().message_count(), before - 1);
    assert!(h.mailbox().message(&truth[1].id).is_err());
    let err = graph
        .delete_message(&truth[1].id, DeleteMode::Hard)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}
