//! Records built from header + BODYSTRUCTURE + the first bytes of the text part equal
//! the records built from whole messages, on the fixtures, the benchmark corpus and
//! shapes that stress the partial read (long texts, CJK in base64, quoted-printable and
//! base64 attachments, attached messages, RFC 2231 names, inline images).

use mailroom_core::{Change, Connector, FetchQuery, FolderRef, Message};
use mailroom_imap::testing::{b64, sample_message, wrap};

use crate::support::*;

fn fixture(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    std::fs::read(dir.join("tests/fixtures").join(name)).unwrap()
}

fn head(id: &str, content_type: &str) -> String {
    format!(
        "From: Ann <ann@example.com>\r\nTo: bob@example.test\r\nSubject: shape {id}\r\n\
         Date: Tue, 21 Jan 2025 08:00:00 +0000\r\nMessage-ID: <{id}@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n"
    )
}

fn shapes() -> Vec<Vec<u8>> {
    let long_ascii: String = (0..400)
        .map(|i| format!("Line {i} of a long report with some words in it.\r\n"))
        .collect();
    let blank_heavy: String = (0..3000)
        .map(|i| format!("{i}\r\n\r\n\r\n   \r\n"))
        .collect();
    let cjk: String = (0..300)
        .map(|i| format!("第{i}行：会議の資料を添付しましたので、ご確認ください。\r\n"))
        .collect();
    let html_styles = format!(
        "<html><head><style>{}</style></head><body>{}</body></html>",
        ".x { color: red; }\r\n".repeat(800),
        "<p>Paragraph with <b>bold</b> &amp; text.</p>\r\n".repeat(200)
    );
    let qp_text =
        "Caf=C3=A9 cr=C3=A8me br=C3=BBl=C3=A9e, soft=\r\n break and =3D sign.\r\n".repeat(200);
    let mut out = vec![
        format!(
            "{}Content-Transfer-Encoding: 8bit\r\n\r\n{long_ascii}",
            head("long-ascii", "text/plain; charset=utf-8")
        ),
        format!(
            "{}\r\n{blank_heavy}",
            head("blank-heavy", "text/plain; charset=us-ascii")
        ),
        format!(
            "{}Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            head("cjk-base64", "text/plain; charset=utf-8"),
            wrap(&b64(cjk.as_bytes()))
        ),
        format!(
            "{}Content-Transfer-Encoding: 7bit\r\n\r\n{html_styles}",
            head("html-styles", "text/html; charset=utf-8")
        ),
        format!(
            "{}Content-Transfer-Encoding: quoted-printable\r\n\r\n{qp_text}",
            head("qp-text", "text/plain; charset=utf-8")
        ),
        format!(
            "{}\r\n--m\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n\
             --m\r\nContent-Type: text/csv; name=\"data.csv\"\r\n\
             Content-Disposition: attachment; filename=\"data.csv\"\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\n{qp_text}\r\n\
             --m\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; filename*=utf-8''R%C3%A9sum%C3%A9%20final.bin\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n\
             --m\r\nContent-Type: image/png; name=\"=?UTF-8?B?w6l0w6kucG5n?=\"\r\n\
             Content-ID: <img1@example.com>\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n\
             --m\r\nContent-Type: message/rfc822\r\n\r\n\
             Subject: =?ISO-8859-1?Q?Vieux_m=E9ssage?=\r\nFrom: x@example.com\r\n\
             Content-Type: text/plain\r\n\r\nInner body.\r\n\
             --m\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nA second text part.\r\n\
             --m--\r\n",
            head("mixed", "multipart/mixed; boundary=\"m\""),
            wrap(&b64(&(0..5000u32).map(|k| k as u8).collect::<Vec<_>>())),
            wrap(&b64(&[137, 80, 78, 71, 1, 2, 3, 4, 5, 6, 7])),
        ),
        format!(
            "{}\r\n--r\r\nContent-Type: multipart/alternative; boundary=\"a\"\r\n\r\n\
             --a\r\nContent-Type: text/html; charset=iso-8859-1\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>Gr=FC=DFe</p>\r\n--a--\r\n\
             --r\r\nContent-Type: image/gif\r\nContent-ID: <g@x>\r\n\
             Content-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lGODlh\r\n\
             --r--\r\n",
            head("related-html", "multipart/related; boundary=\"r\"")
        ),
        format!("{}\r\n", head("empty-body", "text/plain")),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect::<Vec<_>>();
    for name in [
        "encoded-subject.eml",
        "iso-8859-1.eml",
        "shift-jis.eml",
        "windows-1252.eml",
        "html-only.eml",
        "nested-multipart.eml",
        "garbled.eml",
    ] {
        out.push(fixture(name));
    }
    out.extend((0..40).map(sample_message));
    out
}

fn upserts(pages: &[mailroom_core::SyncPage]) -> Vec<Message> {
    pages
        .iter()
        .flat_map(|p| &p.changes)
        .filter_map(|c| match c {
            Change::Upsert(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn partial_records_equal_whole_message_records() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    let corpus = shapes();
    for raw in &corpus {
        a.append("INBOX", raw, "").await.unwrap();
    }
    let partial = connector_with(&d, "alice", options(&d).page_size(16));
    let whole = connector_with(&d, "alice", options(&d).page_size(16).whole_messages(true));
    let (pages, _) = sync_all(&partial, &FolderRef::INBOX, None).await;
    let got = upserts(&pages);
    let (pages, _) = sync_all(&whole, &FolderRef::INBOX, None).await;
    let want = upserts(&pages);
    assert_eq!(got.len(), corpus.len());
    assert_eq!(want.len(), corpus.len());
    // The one hostile message: a base64 part without its end boundary is only seen
    // broken by reading it; the partial record has everything else.
    let garbled = Some("<garbled@example.com>");
    let g = got
        .iter()
        .find(|m| m.message_id.as_deref() == garbled)
        .unwrap();
    let w = want
        .iter()
        .find(|m| m.message_id.as_deref() == garbled)
        .unwrap();
    assert_eq!(
        w.warnings
            .iter()
            .filter(|x| !g.warnings.contains(x))
            .collect::<Vec<_>>(),
        ["part 2 could not be read whole (bad transfer encoding or missing end boundary)"]
    );
    assert_eq!(
        Message {
            warnings: vec![],
            ..g.clone()
        },
        Message {
            warnings: vec![],
            ..w.clone()
        }
    );
    let differ: Vec<String> = got
        .iter()
        .zip(&want)
        .filter(|(g, w)| g != w && g.message_id.as_deref() != garbled)
        .map(|(g, w)| {
            let (g, w) = (format!("{g:#?}"), format!("{w:#?}"));
            let lines: Vec<String> = g
                .lines()
                .zip(w.lines())
                .filter(|(a, b)| a != b)
                .map(|(a, b)| format!("  partial: {}\n  whole:   {}", a.trim(), b.trim()))
                .take(6)
                .collect();
            format!(
                "{}\n{}",
                w.lines().find(|l| l.contains("message_id")).unwrap_or(""),
                lines.join("\n")
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{} records differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
    // The shapes that need it were really read in part: the long text's preview is
    // full, and attachment sizes are exact.
    let by_id = |id: &str| {
        got.iter()
            .find(|m| m.message_id.as_deref() == Some(id))
            .unwrap()
    };
    assert_eq!(
        by_id("<long-ascii@example.com>")
            .body
            .as_ref()
            .unwrap()
            .chars()
            .count(),
        mailroom_core::PREVIEW_MAX_CHARS
    );
    let mixed = by_id("<mixed@example.com>");
    let sizes: Vec<_> = mixed
        .attachments
        .iter()
        .map(|a| (a.name.as_deref(), a.size))
        .collect();
    assert!(
        sizes.contains(&(Some("Résumé final.bin"), 5000)),
        "{sizes:?}"
    );

    // fetch_page reads in part too, with the same records.
    let page = partial
        .fetch_page(&FolderRef::INBOX, &FetchQuery::default(), None)
        .await
        .unwrap();
    let page_whole = whole
        .fetch_page(&FolderRef::INBOX, &FetchQuery::default(), None)
        .await
        .unwrap();
    assert_eq!(page.messages, page_whole.messages);
}
