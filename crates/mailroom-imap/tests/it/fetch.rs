use mailroom_core::{Connector, ErrorKind, FetchQuery, FolderRef, fetch_all};
use mailroom_imap::ImapOptions;

use crate::support::*;

/// This crate's directory. `cargo test` and nextest say it at run time; the path
/// compiled in is only a fallback, because clones sharing a target directory may run a
/// test binary built in another clone.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(manifest_dir().join("tests/fixtures").join(name)).unwrap()
}

#[tokio::test]
async fn fetch_peeks_and_never_marks_read() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    seed(&mut a, "INBOX", 1..=3).await;
    a.set_seen("INBOX", 2, true).await.unwrap();

    let c = connector(&d, "alice");
    let page = c
        .fetch_page(&FolderRef::INBOX, &FetchQuery::default(), None)
        .await
        .unwrap();
    let got: Vec<_> = page
        .messages
        .iter()
        .map(|m| (m.subject.clone().unwrap(), m.is_read))
        .collect();
    assert_eq!(
        got,
        [
            ("Message 3".to_owned(), false),
            ("Message 2".to_owned(), true),
            ("Message 1".to_owned(), false)
        ],
        "newest first, read state from \\Seen"
    );
    let m = c.get_message(&page.messages[0].remote_id).await.unwrap();
    assert_eq!(m.body.as_deref(), Some("Body of message 3."));
    assert!(m.date_received.is_some());
    let (pages, _) = sync_all(&c, &FolderRef::INBOX, None).await;
    assert_eq!(summarize(&pages).upserts.len(), 3);

    for uid in [1, 3] {
        let flags = a.flags("INBOX", uid).await.unwrap();
        assert!(
            !flags.iter().any(|f| f.contains("Seen")),
            "uid {uid} got {flags:?}"
        );
    }
}

#[tokio::test]
async fn mime_fixtures_read_back() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    for name in [
        "encoded-subject.eml",
        "iso-8859-1.eml",
        "shift-jis.eml",
        "windows-1252.eml",
        "html-only.eml",
        "nested-multipart.eml",
        "garbled.eml",
    ] {
        a.append("INBOX", &fixture(name), "").await.unwrap();
    }
    let c = connector(&d, "alice");
    let (pages, _) = sync_all(&c, &FolderRef::INBOX, None).await;
    let messages: Vec<_> = pages
        .iter()
        .flat_map(|p| &p.changes)
        .filter_map(|c| match c {
            mailroom_core::Change::Upsert(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(
        messages.len(),
        7,
        "a malformed message does not abort the folder"
    );
    let by_id = |id: &str| {
        *messages
            .iter()
            .find(|m| m.message_id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no {id}"))
    };
    assert_eq!(
        by_id("<subject-1@example.com>").subject.as_deref(),
        Some("Re: Résumé du projet 🚀 à relire")
    );
    assert_eq!(
        by_id("<latin1@example.de>").body.as_deref(),
        Some("Grüße aus Köln, voilà: ça coûte 5 francs.")
    );
    let sjis = by_id("<sjis@example.jp>");
    assert_eq!(sjis.subject.as_deref(), Some("会議の件"));
    assert_eq!(
        sjis.body.as_deref(),
        Some("日本語のメールです。よろしくお願いします。")
    );
    assert_eq!(
        by_id("<cp1252@example.com>").body.as_deref(),
        Some("Price: 10€ “quoted” – done")
    );
    assert!(
        by_id("<html@example.com>")
            .body
            .as_deref()
            .unwrap()
            .contains("Weekly news")
    );
    let nested = by_id("<nested@example.com>");
    assert_eq!(nested.attachment_count, 3);
    assert!(nested.has_attachments);
    let names: Vec<_> = nested
        .attachments
        .iter()
        .map(|a| a.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["logo.png", "Rapport été.pdf", "Forwarded note.eml"]);
    assert!(nested.attachments[0].is_inline);
    let garbled = by_id("<garbled@example.com>");
    assert!(!garbled.warnings.is_empty());
    assert!(
        garbled
            .body
            .as_deref()
            .unwrap()
            .starts_with("Readable start")
    );
    for m in &messages {
        assert!(m.remote_id.starts_with("INBOX:"), "{}", m.remote_id);
        assert_eq!(m.folder_id.as_deref(), Some("INBOX"));
    }
}

#[tokio::test]
async fn big_messages_are_capped_with_a_warning() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    let big = format!(
        "Subject: Big\r\nMessage-ID: <big@example.com>\r\n\r\n{}\r\n",
        "0123456789abcdef\r\n".repeat(2000)
    );
    a.append("INBOX", big.as_bytes(), "").await.unwrap();
    let whole = options(&d).max_message_bytes(8192).whole_messages(true);
    let c = connector_with(&d, "alice", whole);
    let page = c
        .fetch_page(&FolderRef::INBOX, &FetchQuery::default(), None)
        .await
        .unwrap();
    let m = &page.messages[0];
    assert_eq!(m.subject.as_deref(), Some("Big"));
    assert!(
        m.warnings[0].starts_with("only the first 8192 of"),
        "{:?}",
        m.warnings
    );
    assert_eq!(m.body.as_ref().unwrap().chars().count(), 2000);
    // Read in part (header, structure, the text's first bytes), nothing is missing.
    let c = connector_with(&d, "alice", options(&d).max_message_bytes(8192));
    let page = c
        .fetch_page(&FolderRef::INBOX, &FetchQuery::default(), None)
        .await
        .unwrap();
    let p = &page.messages[0];
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(p.body, m.body);
}

#[tokio::test]
async fn fetch_pages_newest_first_with_limit_and_since() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    seed(&mut a, "INBOX", 1..=25).await;
    let c = connector_with(&d, "alice", options(&d).page_size(10));
    let all = fetch_all(&c, &FolderRef::INBOX, &FetchQuery::default())
        .await
        .unwrap();
    let subjects: Vec<_> = all.iter().map(|m| m.subject.clone().unwrap()).collect();
    let mut want = subjects_of(1..=25);
    want.reverse();
    assert_eq!(subjects, want);

    let limited = fetch_all(
        &c,
        &FolderRef::INBOX,
        &FetchQuery {
            limit: Some(12),
            ..FetchQuery::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(limited.len(), 12);
    assert_eq!(limited[11].subject.as_deref(), Some("Message 14"));

    let future = chrono::Utc::now() + chrono::TimeDelta::days(2);
    let none = fetch_all(
        &c,
        &FolderRef::INBOX,
        &FetchQuery {
            since: Some(future),
            ..FetchQuery::default()
        },
    )
    .await
    .unwrap();
    assert!(none.is_empty());

    let err = c.get_message("INBOX:1:999999").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = c.get_message("AAMkAD=").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let _ = ImapOptions::default();
}

fn subjects_of(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    subjects(range)
}

#[tokio::test]
async fn attachments_of_capped_messages_come_from_bodystructure() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    let big_pdf = "JVBERi0xLjQK".repeat(20_000); // ~240 KB of base64
    let raw = format!(
        "Subject: Two attachments\r\nMessage-ID: <two@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n--b\r\n\
         Content-Type: application/pdf; name=\"big.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"big.pdf\"\r\n\r\n{}\r\n--b\r\n\
         Content-Type: text/csv; name=\"after.csv\"\r\nContent-Disposition: attachment; filename=\"after.csv\"\r\n\r\n\
         a,b\r\n1,2\r\n--b--\r\n",
        big_pdf
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n")
    );
    a.append("INBOX", raw.as_bytes(), "").await.unwrap();
    // Whole messages, read up to the cap.
    let c = connector_with(
        &d,
        "alice",
        options(&d)
            .max_message_bytes(16 * 1024)
            .whole_messages(true),
    );
    let (pages, _) = sync_all(&c, &FolderRef::INBOX, None).await;
    let mailroom_core::Change::Upsert(m) = &pages[0].changes[0] else {
        panic!("upsert expected")
    };
    // Read in part, the record is the same, without the warning.
    let partial = connector_with(&d, "alice", options(&d).max_message_bytes(16 * 1024));
    let (partial_pages, _) = sync_all(&partial, &FolderRef::INBOX, None).await;
    let mailroom_core::Change::Upsert(p) = &partial_pages[0].changes[0] else {
        panic!("upsert expected")
    };
    assert_eq!(
        mailroom_core::Message {
            warnings: vec![],
            ..m.clone()
        },
        *p
    );
    assert_eq!(m.body.as_deref(), Some("See attached."));
    let got: Vec<_> = m
        .attachments
        .iter()
        .map(|a| {
            (
                a.remote_id.clone().unwrap(),
                a.name.clone().unwrap(),
                a.size,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("2".to_owned(), "big.pdf".to_owned(), 180_000),
            ("3".to_owned(), "after.csv".to_owned(), 8)
        ]
    );
    assert_eq!(m.attachment_count, 2);
    assert!(m.warnings[0].contains("BODYSTRUCTURE"), "{:?}", m.warnings);
}

#[tokio::test]
async fn since_is_exact_across_time_zones() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    // 2025-01-21T01:00Z, 2025-01-20T23:00Z, 2025-01-22T08:00Z
    a.append_at("INBOX", &mail(1), "20-Jan-2025 23:00:00 -0200")
        .await
        .unwrap();
    a.append_at("INBOX", &mail(2), "20-Jan-2025 23:00:00 +0000")
        .await
        .unwrap();
    a.append_at("INBOX", &mail(3), "22-Jan-2025 09:00:00 +0100")
        .await
        .unwrap();
    let c = connector(&d, "alice");
    let since = "2025-01-21T00:30:00Z".parse().unwrap();
    let got = fetch_all(
        &c,
        &FolderRef::INBOX,
        &FetchQuery {
            since: Some(since),
            ..FetchQuery::default()
        },
    )
    .await
    .unwrap();
    let subjects: Vec<_> = got.iter().map(|m| m.subject.clone().unwrap()).collect();
    assert_eq!(subjects, ["Message 3", "Message 1"]);
    assert_eq!(
        got[1].date_received.map(|d| d.to_rfc3339()).as_deref(),
        Some("2025-01-21T01:00:00+00:00"),
        "date_received is the INTERNALDATE"
    );
}

#[tokio::test]
async fn a_long_header_line_and_a_big_attachment_fit_the_response_budget() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    // One 200 KB header line and a 3 MB attachment (4 MB as base64).
    let attachment = "QUJDRA==\r\n".repeat(400_000);
    let raw = format!(
        "Subject: Long\r\nMessage-ID: <long@example.com>\r\nX-Long: {}\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n\
         Content-Type: application/octet-stream; name=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"big.bin\"\r\n\r\n{attachment}--b--\r\n",
        "x".repeat(200_000)
    );
    a.append("INBOX", raw.as_bytes(), "").await.unwrap();
    // The budget is raised to what a message may be (8 MiB + 1 MiB), not lower.
    let c = connector_with(
        &d,
        "alice",
        options(&d)
            .max_message_bytes(8 << 20)
            .max_response_bytes(1024),
    );
    let page = c
        .fetch_page(&FolderRef::INBOX, &FetchQuery::default(), None)
        .await
        .unwrap();
    let m = &page.messages[0];
    assert_eq!(m.subject.as_deref(), Some("Long"));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    assert_eq!(m.attachments.len(), 1, "{:?}", m.attachments);
    assert_eq!(m.attachments[0].name.as_deref(), Some("big.bin"));
}

/// A file's bytes: mostly text, some bytes above 127, `=` and spaces (all of which
/// quoted-printable has to encode), no line breaks of its own.
fn file_bytes(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| match i % 97 {
            0 => 0xE9,
            1 => b'=',
            2 => b' ',
            3 => 0x00,
            k => b'a' + (k % 26) as u8,
        })
        .collect()
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() / 3 * 4 + 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

/// Wraps an unbroken encoding into lines of the given widths (cycled), CRLF-separated.
fn wrap(flat: &str, widths: &[usize]) -> String {
    let mut out = String::with_capacity(flat.len() + flat.len() / 30);
    let mut rest = flat;
    for width in widths.iter().cycle() {
        let (line, more) = rest.split_at(rest.len().min(*width));
        out.push_str(line);
        rest = more;
        if rest.is_empty() {
            return out;
        }
        out.push_str("\r\n");
    }
    unreachable!()
}

/// Quoted-printable as RFC 2045 says: `=XX` for what is not printable, soft breaks.
fn quoted_printable(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 2);
    let mut col = 0;
    for &b in data {
        let piece = if (33..=126).contains(&b) && b != b'=' {
            char::from(b).to_string()
        } else {
            format!("={b:02X}")
        };
        if col + piece.len() > 75 {
            out.push_str("=\r\n");
            col = 0;
        }
        col += piece.len();
        out.push_str(&piece);
    }
    out
}

fn message_with_file(name: &str, encoding: &str, encoded: &str) -> Vec<u8> {
    format!(
        "Subject: {name}\r\nMessage-ID: <{name}@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n--b\r\n\
         Content-Type: application/octet-stream; name=\"{name}\"\r\n\
         Content-Transfer-Encoding: {encoding}\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n{encoded}\r\n--b--\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn attachment_sizes_are_exact_decoded_sizes_below_and_above_the_cap() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    let mut want = Vec::new();
    for n in [10, 200_000, 3_000_000] {
        let data = file_bytes(n);
        let b64 = base64(&data);
        let cases = [
            ("b64", "base64", wrap(&b64, &[76])),
            // Wrapped unevenly: the ends do not tell, the part is counted.
            ("b64odd", "base64", wrap(&b64, &[76, 60, 64])),
            ("qp", "quoted-printable", quoted_printable(&data)),
        ];
        for (kind, encoding, encoded) in cases {
            let name = format!("{kind}-{n}.bin");
            a.append("INBOX", &message_with_file(&name, encoding, &encoded), "")
                .await
                .unwrap();
            want.push((name, n as u64));
        }
    }
    want.sort();
    // 16 MiB: every message read whole. 16 KiB: all but the smallest are over the cap,
    // and the 3,000,000-byte quoted-printable part is counted in 16 KiB pieces.
    // Read in part, the 16 KiB cap only bounds the pieces parts are counted in.
    for (cap, whole) in [(16 << 20, true), (16 << 10, true), (16 << 10, false)] {
        let c = connector_with(
            &d,
            "alice",
            options(&d).max_message_bytes(cap).whole_messages(whole),
        );
        let (pages, _) = sync_all(&c, &FolderRef::INBOX, None).await;
        let mut got = Vec::new();
        for change in pages.iter().flat_map(|p| &p.changes) {
            let mailroom_core::Change::Upsert(m) = change else {
                continue;
            };
            assert_eq!(m.attachments.len(), 1, "{:?}", m.subject);
            let att = &m.attachments[0];
            got.push((att.name.clone().unwrap(), att.size));
            assert!(
                !m.warnings.iter().any(|w| w.contains("estimated")),
                "{:?}",
                m.warnings
            );
            if whole && att.size > u64::from(cap) {
                assert!(m.warnings[0].contains("BODYSTRUCTURE"), "{:?}", m.warnings);
            }
        }
        got.sort();
        assert_eq!(got, want, "cap {cap}");
    }
}
