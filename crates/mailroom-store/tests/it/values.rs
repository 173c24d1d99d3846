//! Tricky values survive the page write unchanged, on both databases: the rows of a
//! page travel as one JSON document that the database unpacks, so quoting, escapes,
//! NULL versus empty, and timestamps must come back exactly as the record had them.

use chrono::{DateTime, Duration, TimeZone, Utc};
use mailroom_core::{Attachment, Change, EmailAddress, Message, SyncCursor, SyncPage};
use mailroom_store::{Backend, Store, SyncPageWrite};

use crate::support::{account, inbox, message, stores};

/// What reading `m` back gives: PostgreSQL keeps microseconds (cut toward 2000-01-01,
/// as sqlx sends them); counts and sizes are clamped to the column types.
fn as_stored(mut m: Message, backend: Backend) -> Message {
    if backend == Backend::Postgres {
        let epoch = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
        let cut = |t: DateTime<Utc>| {
            epoch + Duration::microseconds((t - epoch).num_microseconds().unwrap())
        };
        m.date_received = m.date_received.map(cut);
        m.sent_at = m.sent_at.map(cut);
    }
    if m.sender
        .as_ref()
        .is_some_and(|s| s.name.is_none() && s.address.is_none())
    {
        m.sender = None;
    }
    m.attachment_count = m.attachment_count.min(i32::MAX as u32);
    for a in &mut m.attachments {
        a.size = a.size.min(i64::MAX as u64);
    }
    m.folder_id = None;
    m
}

/// Stores a plain record under `record`'s id, then `record` over it (an update of every
/// column) in a sync page, and reads it back.
async fn check(store: &Store, record: Message) {
    let b = store.backend();
    let a = account(store, "values@example.com").await;
    let f = inbox(store, &a).await;
    let mut first = message(1);
    first.remote_id = record.remote_id.clone();
    store.upsert_messages(a.id, f.id, &[first]).await.unwrap();
    let page = SyncPage {
        changes: vec![Change::Upsert(record.clone())],
        cursor: SyncCursor("c".into()),
        reset: false,
        complete: false,
    };
    store
        .apply_sync_page(SyncPageWrite {
            account_id: a.id,
            folder_id: f.id,
            page: &page,
            lease: None,
        })
        .await
        .unwrap();
    let stored = store.get_message(a.id, &record.remote_id).await.unwrap();
    assert_eq!(stored.message, as_stored(record, b), "{b:?}");
    store.remove_account(a.id).await.unwrap();
}

fn with_text(s: &str) -> Message {
    Message {
        remote_id: format!("id \"{s}\" \\ {}", s.len()),
        message_id: Some(s.into()),
        subject: Some(s.into()),
        sender: Some(EmailAddress::new(Some(s.into()), Some(format!("{s}@x")))),
        to: vec![EmailAddress::new(Some(s.into()), None)],
        cc: vec![EmailAddress::new(None, Some(s.into()))],
        body: Some(s.repeat(2)),
        conversation_id: Some(s.into()),
        warnings: vec![s.into()],
        has_attachments: true,
        attachment_count: 1,
        attachments: vec![Attachment {
            remote_id: Some(s.into()),
            name: Some(s.into()),
            content_type: Some(s.into()),
            size: 7,
            is_inline: true,
            content_id: Some(s.into()),
        }],
        ..message(0)
    }
}

#[tokio::test]
async fn quotes_escapes_and_unicode_round_trip() {
    for store in stores().await {
        for s in [
            "He said \"hi\" \\ back\\slash \\\" \\\\u0000 {\"a\":[1]} 'x' ]",
            "\u{1}\u{8}\t\n\r\u{b}\u{c}\u{1f}\u{7f}\u{85}",
            "😀 𝄞 e\u{301} עברית \u{2028}\u{2029}\u{feff} 日本語",
            "null",
            "",
        ] {
            check(&store, with_text(s)).await;
        }
    }
}

#[tokio::test]
async fn null_empty_and_extremes_round_trip() {
    for store in stores().await {
        check(
            &store,
            Message {
                remote_id: "all-none".into(),
                ..Default::default()
            },
        )
        .await;
        check(
            &store,
            Message {
                remote_id: "all-empty".into(),
                message_id: Some(String::new()),
                subject: Some(String::new()),
                sender: Some(EmailAddress::new(Some(String::new()), Some(String::new()))),
                body: Some(String::new()),
                conversation_id: Some(String::new()),
                warnings: vec![String::new()],
                ..Default::default()
            },
        )
        .await;
        check(
            &store,
            Message {
                remote_id: "sender-without-fields".into(),
                sender: Some(EmailAddress::default()),
                ..Default::default()
            },
        )
        .await;
        check(
            &store,
            Message {
                remote_id: "extremes".into(),
                is_read: true,
                is_draft: true,
                has_attachments: true,
                attachment_count: u32::MAX,
                attachments: vec![Attachment {
                    size: u64::MAX,
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .await;
        // A body far longer than a preview, and one larger than a whole chunk of rows.
        for len in [200_000, 9 << 20] {
            check(
                &store,
                Message {
                    remote_id: format!("long-{len}"),
                    body: Some("Ünïcödé \"body\" \\ ".repeat(len / 20)),
                    ..message(2)
                },
            )
            .await;
        }
    }
}

#[tokio::test]
async fn timestamps_round_trip() {
    let t = |y, mo, d, h, mi, s, ns| {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap() + Duration::nanoseconds(ns)
    };
    for store in stores().await {
        for (i, d) in [
            t(1, 1, 1, 0, 0, 0, 0),
            t(1000, 2, 3, 4, 5, 6, 7_000),
            t(1969, 12, 31, 23, 59, 59, 999_999_999),
            t(1970, 1, 1, 0, 0, 0, 0),
            t(1999, 12, 31, 23, 59, 59, 999_999_500),
            t(2000, 1, 1, 0, 0, 0, 1_500),
            t(2025, 1, 20, 11, 30, 0, 123_456_789),
            t(2038, 1, 19, 3, 14, 8, 0),
            t(9999, 12, 31, 23, 59, 59, 999_999_999),
        ]
        .into_iter()
        .enumerate()
        {
            check(
                &store,
                Message {
                    remote_id: format!("date-{i}"),
                    date_received: Some(d),
                    sent_at: (i % 2 == 0).then_some(d),
                    ..message(3)
                },
            )
            .await;
        }
    }
}
