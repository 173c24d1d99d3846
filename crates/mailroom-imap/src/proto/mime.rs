//! RFC 5322 / MIME bytes → the core [`Message`] record, with `mail-parser`.
//!
//! Never fails: what cannot be read becomes `None` plus a line in
//! [`Message::warnings`], so one malformed message never stops a folder.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use mail_parser::{Address, HeaderName, MessageParser, MimeHeaders, PartType};
use mailroom_core::{Attachment, EmailAddress, Message, preview};

use super::size::{TransferEncoding, decoded_len};

static PARSER: LazyLock<MessageParser> = LazyLock::new(MessageParser::default);

/// How much of the message the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// The whole message.
    Whole,
    /// Only the first bytes of a message of this many bytes (the fetch size cap).
    Truncated {
        /// The full size (`RFC822.SIZE`).
        full_size: u64,
    },
}

/// Builds a record from raw message bytes. `remote_id`, `folder_id`, the flags and
/// `date_received` come from the server, not the bytes: the caller sets them.
pub fn message_from_bytes(raw: &[u8], completeness: Completeness) -> Message {
    record_and_text_part(raw, completeness).0
}

/// The part `body_text(0)` reads the preview from: its IMAP number and the byte range
/// of its MIME header in the bytes parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextPart {
    /// IMAP part number (`1`, `1.2`, …).
    pub number: String,
    /// Where the part's MIME header lies in the bytes given.
    pub header: std::ops::Range<usize>,
}

/// [`message_from_bytes`], plus the part the preview came from.
pub fn record_and_text_part(raw: &[u8], completeness: Completeness) -> (Message, Option<TextPart>) {
    let mut record = Message::default();
    if let Completeness::Truncated { full_size } = completeness {
        record.warnings.push(format!(
            "only the first {} of {full_size} bytes were read: attachments past that point are not listed",
            raw.len()
        ));
    }
    let Some(msg) = PARSER.parse(raw) else {
        record
            .warnings
            .push("cannot parse message: no header could be read".to_owned());
        return (record, None);
    };
    if msg.headers().is_empty() {
        record.warnings.push("no header could be read".to_owned());
    }

    record.message_id = msg.message_id().map(|id| format!("<{id}>"));
    record.subject = msg.subject().map(str::to_owned);
    record.sender = msg.from().and_then(first_address);
    if record.sender.is_none()
        && let Some(raw_from) = msg.header_raw(HeaderName::From)
        && !raw_from.trim().is_empty()
    {
        record
            .warnings
            .push(format!("unreadable From header: {}", clip(raw_from)));
    }
    record.to = msg.to().map(addresses).unwrap_or_default();
    record.cc = msg.cc().map(addresses).unwrap_or_default();
    record.sent_at = msg
        .date()
        .filter(|d| d.is_valid())
        .and_then(|d| DateTime::<Utc>::from_timestamp(d.to_timestamp(), 0));
    if record.sent_at.is_none()
        && let Some(raw_date) = msg.header_raw(HeaderName::Date)
        && !raw_date.trim().is_empty()
    {
        record
            .warnings
            .push(format!("unreadable Date header: {}", clip(raw_date)));
    }
    record.conversation_id = conversation_root(&msg).or_else(|| record.message_id.clone());
    record.body = msg.body_text(0).map(|text| preview(&text));

    let numbers = imap_part_numbers(&msg);
    for part_id in msg.attachments.iter().copied() {
        let Some(part) = msg.parts.get(part_id as usize) else {
            continue;
        };
        let content_type = part.content_type().map(|ct| match &ct.c_subtype {
            Some(sub) => format!("{}/{}", ct.c_type, sub).to_ascii_lowercase(),
            None => ct.c_type.to_ascii_lowercase(),
        });
        let disposition = part.content_disposition();
        let content_id = part.content_id().map(|id| {
            id.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        });
        let is_inline = match disposition {
            Some(d) if d.is_inline() => true,
            Some(d) if d.is_attachment() => false,
            _ => content_id.is_some() && !matches!(part.body, PartType::Message(_)),
        };
        let mut name = part.attachment_name().map(str::to_owned);
        if name.is_none()
            && let PartType::Message(inner) = &part.body
        {
            name = inner.subject().map(|s| format!("{s}.eml"));
        }
        record.attachments.push(Attachment {
            remote_id: numbers.get(&part_id).cloned(),
            name,
            content_type,
            size: part_size(raw, part),
            is_inline,
            content_id,
        });
    }
    for (index, part) in msg.parts.iter().enumerate() {
        if part.is_encoding_problem {
            let number = numbers
                .get(&(index as u32))
                .cloned()
                .unwrap_or_else(|| "TEXT".to_owned());
            record.warnings.push(format!(
                "part {number} could not be read whole (bad transfer encoding or missing end boundary)"
            ));
        }
    }
    record.attachment_count = record.attachments.len() as u32;
    record.has_attachments = record.attachments.iter().any(|a| !a.is_inline);
    let text_part = msg.text_body.first().and_then(|&index| {
        let part = msg.parts.get(index as usize)?;
        Some(TextPart {
            number: numbers.get(&index)?.clone(),
            header: part.raw_header_offset() as usize..part.raw_body_offset() as usize,
        })
    });
    (record, text_part)
}

/// The preview of one text part from its MIME header and (the first bytes of) its
/// encoded body: decoded per its transfer encoding and charset, HTML made text, as
/// [`message_from_bytes`] does for the whole message.
pub fn part_preview(header: &[u8], body: &[u8]) -> Option<String> {
    let mut raw = Vec::with_capacity(header.len() + body.len() + 2);
    raw.extend_from_slice(header);
    if !header.ends_with(b"\n") {
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(body);
    let msg = PARSER.parse(&raw)?;
    msg.body_text(0).map(|text| preview(&text))
}

/// The exact decoded size of a part, from its encoded bytes in `raw` and its
/// `Content-Transfer-Encoding` (see [`super::size`]): the bytes of the content, before
/// any charset conversion.
fn part_size(raw: &[u8], part: &mail_parser::MessagePart<'_>) -> u64 {
    let start = part.raw_body_offset() as usize;
    let end = (part.raw_end_offset() as usize).min(raw.len());
    let Some(encoded) = raw.get(start..end) else {
        return part.len() as u64;
    };
    let encoding = TransferEncoding::from_header(part.content_transfer_encoding());
    decoded_len(encoded, encoding)
}

fn first_address(address: &Address<'_>) -> Option<EmailAddress> {
    address.first().and_then(|a| {
        let name = a.name().map(str::to_owned).filter(|n| !n.trim().is_empty());
        let addr = a
            .address()
            .map(str::to_owned)
            .filter(|n| !n.trim().is_empty());
        (name.is_some() || addr.is_some()).then(|| EmailAddress::new(name, addr))
    })
}

fn addresses(address: &Address<'_>) -> Vec<EmailAddress> {
    address
        .iter()
        .map(|a| {
            EmailAddress::new(
                a.name().map(str::to_owned).filter(|n| !n.trim().is_empty()),
                a.address().map(str::to_owned),
            )
        })
        .filter(|a| a.name.is_some() || a.address.is_some())
        .collect()
}

/// The thread root: the first `References` id, else `In-Reply-To`.
fn conversation_root(msg: &mail_parser::Message<'_>) -> Option<String> {
    let first = |v: &mail_parser::HeaderValue<'_>| match v {
        mail_parser::HeaderValue::Text(t) => Some(t.to_string()),
        mail_parser::HeaderValue::TextList(l) => l.first().map(|t| t.to_string()),
        _ => None,
    };
    first(msg.references())
        .or_else(|| first(msg.in_reply_to()))
        .map(|id| format!("<{id}>"))
}

/// IMAP body part numbers (`1`, `2.1`, …) of the parts of `msg`, by mail-parser index.
fn imap_part_numbers(msg: &mail_parser::Message<'_>) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    match msg.parts.first().map(|p| &p.body) {
        Some(PartType::Multipart(children)) => number_children(msg, children, "", &mut out),
        Some(_) => {
            out.insert(0, "1".to_owned());
        }
        None => {}
    }
    out
}

fn number_children(
    msg: &mail_parser::Message<'_>,
    children: &[u32],
    prefix: &str,
    out: &mut HashMap<u32, String>,
) {
    for (i, &child) in children.iter().enumerate() {
        let number = if prefix.is_empty() {
            (i + 1).to_string()
        } else {
            format!("{prefix}.{}", i + 1)
        };
        if let Some(PartType::Multipart(grand)) = msg.parts.get(child as usize).map(|p| &p.body) {
            // Guard against a malformed tree pointing back at itself.
            if !grand.contains(&child) && number.len() < 64 {
                number_children(msg, grand, &number, out);
            }
        }
        out.insert(child, number);
    }
}

fn clip(raw: &str) -> String {
    let raw = raw.trim();
    match raw.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &raw[..i]),
        None => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            message_from_bytes(
                include_bytes!(concat!("../../tests/fixtures/", $name)),
                Completeness::Whole,
            )
        };
    }

    fn addr(name: Option<&str>, address: &str) -> EmailAddress {
        EmailAddress::new(name.map(str::to_owned), Some(address.to_owned()))
    }

    #[test]
    fn encoded_word_subject_and_addresses() {
        let m = fixture!("encoded-subject.eml");
        assert_eq!(
            m.subject.as_deref(),
            Some("Re: Résumé du projet 🚀 à relire")
        );
        assert_eq!(m.sender, Some(addr(Some("Zoë Brontë"), "zoe@example.com")));
        assert_eq!(
            m.to,
            [
                addr(Some("Bob"), "bob@example.com"),
                addr(Some("Jörg"), "joerg@example.de")
            ]
        );
        assert_eq!(m.cc, [addr(None, "carol@example.com")]);
        assert_eq!(m.message_id.as_deref(), Some("<subject-1@example.com>"));
        assert_eq!(m.conversation_id.as_deref(), Some("<root-0@example.com>"));
        assert_eq!(
            m.sent_at.map(|d| d.to_rfc3339()).as_deref(),
            Some("2025-01-20T10:30:00+00:00")
        );
        assert_eq!(m.body.as_deref(), Some("Bonjour,\n\nle résumé est prêt."));
        assert!(!m.has_attachments && m.attachment_count == 0);
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }

    #[test]
    fn charsets() {
        let m = fixture!("iso-8859-1.eml");
        assert_eq!(
            m.body.as_deref(),
            Some("Grüße aus Köln, voilà: ça coûte 5 francs.")
        );
        let m = fixture!("shift-jis.eml");
        assert_eq!(m.subject.as_deref(), Some("会議の件"));
        assert_eq!(m.sender, Some(addr(Some("山田"), "yamada@example.jp")));
        assert_eq!(
            m.body.as_deref(),
            Some("日本語のメールです。よろしくお願いします。")
        );
        let m = fixture!("windows-1252.eml");
        assert_eq!(m.body.as_deref(), Some("Price: 10€ “quoted” – done"));
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }

    #[test]
    fn html_only_becomes_text() {
        let m = fixture!("html-only.eml");
        let body = m.body.unwrap().replace('\u{a0}', " ");
        assert!(body.contains("Weekly news"), "{body}");
        assert!(body.contains("First item & more"), "{body}");
        assert!(!body.contains('<') && !body.contains("color"), "{body}");
    }

    #[test]
    fn nested_multipart_attachments() {
        let m = fixture!("nested-multipart.eml");
        assert_eq!(m.body.as_deref(), Some("Plain version of the report."));
        let got: Vec<_> = m
            .attachments
            .iter()
            .map(|a| {
                (
                    a.remote_id.as_deref(),
                    a.name.as_deref(),
                    a.content_type.as_deref(),
                    a.is_inline,
                    a.content_id.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    Some("1.2"),
                    Some("logo.png"),
                    Some("image/png"),
                    true,
                    Some("logo@example.com")
                ),
                (
                    Some("2"),
                    Some("Rapport été.pdf"),
                    Some("application/pdf"),
                    false,
                    None
                ),
                (
                    Some("3"),
                    Some("Forwarded note.eml"),
                    Some("message/rfc822"),
                    false,
                    None
                ),
            ]
        );
        assert_eq!(m.attachments[0].size, 72);
        assert_eq!(m.attachments[1].size, 9 + 300 + 7);
        assert_eq!(m.attachment_count, 3);
        assert!(m.has_attachments);
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }

    /// A message with one attachment whose body is `encoded` in `encoding`.
    fn with_attachment(encoding: &str, encoded: &str, charset: &str) -> Vec<u8> {
        format!(
            "From: a@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nbody\r\n\
             --b\r\nContent-Type: text/plain; charset={charset}; name=\"f.txt\"\r\n\
             Content-Disposition: attachment; filename=\"f.txt\"\r\n\
             Content-Transfer-Encoding: {encoding}\r\n\r\n{encoded}\r\n--b--\r\n"
        )
        .into_bytes()
    }

    #[track_caller]
    fn check_size(encoding: &str, encoded: &str, charset: &str, size: u64) {
        let m = message_from_bytes(
            &with_attachment(encoding, encoded, charset),
            Completeness::Whole,
        );
        assert_eq!(m.attachments.len(), 1, "{encoded:?}");
        assert_eq!(m.attachments[0].size, size, "{encoding} {encoded:?}");
    }

    #[test]
    fn attachment_sizes_are_the_decoded_bytes() {
        check_size("base64", "MDEyMzQ1Njc4OQ==", "utf-8", 10);
        check_size("base64", "MDEyMzQ1Njc4OQ==\r\n", "utf-8", 10);
        check_size("base64", "MDEy\r\nMzQ1\r\nNjc4\r\nOQ==", "utf-8", 10);
        check_size("quoted-printable", "0123456789", "utf-8", 10);
        check_size("quoted-printable", "caf=E9 =3D=\r\nok", "utf-8", 8);
        // The bytes of the content, not its length once converted to UTF-8.
        check_size("quoted-printable", "caf=E9", "iso-8859-1", 4);
        check_size("8bit", "caf\u{e9}", "utf-8", 5);
        check_size("7bit", "line one\r\nline two", "us-ascii", 18);
        check_size("binary", "", "utf-8", 0);
    }

    #[test]
    fn garbled_message_gives_a_record_and_warnings() {
        let m = fixture!("garbled.eml");
        assert_eq!(m.message_id.as_deref(), Some("<garbled@example.com>"));
        assert!(m.subject.as_deref().unwrap().contains("tail"));
        assert_eq!(m.sent_at, None);
        assert!(m.body.as_deref().unwrap().starts_with("Readable start"));
        assert_eq!(m.attachment_count, 1);
        let warnings = m.warnings.join("\n");
        assert!(
            warnings.contains("unreadable Date header: the day after tomorrow"),
            "{warnings}"
        );
        assert!(warnings.contains("could not be read whole"), "{warnings}");
    }

    #[test]
    fn empty_and_binary_garbage_never_panic() {
        let m = message_from_bytes(b"", Completeness::Whole);
        assert!(!m.warnings.is_empty());
        let noise: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        let _ = message_from_bytes(&noise, Completeness::Whole);
        let raw = include_bytes!("../../tests/fixtures/nested-multipart.eml");
        for cut in (0..raw.len()).step_by(37) {
            let _ = message_from_bytes(
                &raw[..cut],
                Completeness::Truncated {
                    full_size: raw.len() as u64,
                },
            );
        }
        let m = message_from_bytes(
            &raw[..700],
            Completeness::Truncated {
                full_size: raw.len() as u64,
            },
        );
        assert!(
            m.warnings[0].starts_with("only the first 700 of"),
            "{:?}",
            m.warnings
        );
        assert_eq!(m.subject.as_deref(), Some("Report with pictures"));
    }
}
