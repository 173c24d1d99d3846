//! The message record every connector returns.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The longest body preview a record carries, in characters (the Python contract).
pub const PREVIEW_MAX_CHARS: usize = 2000;

/// A mailbox address with an optional display name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAddress {
    /// Display name, e.g. `Zoë Brontë`.
    pub name: Option<String>,
    /// The address, e.g. `zoe@example.com`.
    pub address: Option<String>,
}

impl EmailAddress {
    /// An address with a display name.
    pub fn new(name: Option<String>, address: Option<String>) -> Self {
        EmailAddress { name, address }
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.name, &self.address) {
            (Some(n), Some(a)) if !n.is_empty() => write!(f, "{n} <{a}>"),
            (_, Some(a)) => f.write_str(a),
            (Some(n), None) => f.write_str(n),
            (None, None) => Ok(()),
        }
    }
}

/// Metadata of one attachment (the content is fetched separately).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Server id of the attachment (Graph attachment id, IMAP body part number).
    pub remote_id: Option<String>,
    /// File name.
    pub name: Option<String>,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: Option<String>,
    /// Size in bytes. IMAP: the exact decoded size of the content (the file's bytes,
    /// with the transfer encoding undone), or an estimate from the encoded size when
    /// the server would not return the part's bytes, which the message's `warnings`
    /// then say. Graph: the `size` Graph reports, which for a file attachment can
    /// exceed the file by the metadata Exchange stores with it.
    pub size: u64,
    /// True for inline parts (images referenced by the HTML body).
    pub is_inline: bool,
    /// The `Content-ID` of an inline part, without angle brackets.
    pub content_id: Option<String>,
}

/// One message, as every connector returns it.
///
/// Field names follow the Python system (`message_id`, `remote_id` — the Python
/// `microsoft_id` —, `subject`, `sender`, `date_received`, `body`, `has_attachments`,
/// `attachment_count`, `attachments`), plus what users expect of a mail record. A field
/// the source does not have (a draft has no sender) is `None`, never an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The id for operations: a Graph message id, or for IMAP
    /// `{mailbox}:{UIDVALIDITY}:{UID}` (UIDs are only unique within a mailbox).
    pub remote_id: String,
    /// The Internet `Message-ID` header.
    pub message_id: Option<String>,
    /// The `remote_id` of the folder that holds the message.
    pub folder_id: Option<String>,
    /// Subject, decoded.
    pub subject: Option<String>,
    /// The `From` address; `None` for drafts.
    pub sender: Option<EmailAddress>,
    /// `To` recipients.
    pub to: Vec<EmailAddress>,
    /// `Cc` recipients.
    pub cc: Vec<EmailAddress>,
    /// When the server received the message (UTC).
    pub date_received: Option<DateTime<Utc>>,
    /// When the message was sent (`Date` header / `sentDateTime`), UTC.
    pub sent_at: Option<DateTime<Utc>>,
    /// Plain-text body preview of at most [`PREVIEW_MAX_CHARS`] characters.
    pub body: Option<String>,
    /// Read state (`\Seen` on IMAP).
    pub is_read: bool,
    /// True for drafts.
    pub is_draft: bool,
    /// True when the message has attachments, inline ones excluded when the server
    /// tells them apart.
    pub has_attachments: bool,
    /// Number of attachments in `attachments` (or reported by the server).
    pub attachment_count: u32,
    /// Attachment metadata.
    pub attachments: Vec<Attachment>,
    /// Conversation (thread) id, when the server has one.
    pub conversation_id: Option<String>,
    /// What could not be read from a malformed source message; empty when all went well.
    pub warnings: Vec<String>,
}

/// Turns a plain-text body into a preview: line endings normalised, surrounding white
/// space trimmed, runs of blank lines collapsed, cut at [`PREVIEW_MAX_CHARS`] characters
/// (never inside a UTF-8 sequence). Reads no further into `text` than it needs.
pub fn preview(text: &str) -> String {
    // Room for the whole preview at once (growing it by doubling cost a third of
    // this function in the sync profile); a preview is never longer than the text,
    // nor than 2,000 characters of at most 4 bytes and the line that crosses them.
    let mut out = String::with_capacity(text.len().min(PREVIEW_MAX_CHARS * 4 + 256));
    // The characters of `out[..counted]`. A text of fewer bytes than the limit has
    // fewer characters too, so characters are counted only once `out` is that long
    // (counting every line was a third of this function in the sync profile).
    let mut chars = 0usize;
    let mut counted = 0usize;
    let mut previous_blank = false;
    // Lines split at `\n` with memchr's vectorised search (`str::lines` looks for each
    // `\n` a word at a time); `trim_end` drops the `\r` of a `\r\n` as `lines` would.
    let text = text.trim();
    let mut from = 0;
    let ends = memchr::memchr_iter(b'\n', text.as_bytes()).chain([text.len()]);
    for end in ends {
        let line = text[from..end].trim_end();
        from = end + 1;
        if line.is_empty() && previous_blank {
            continue;
        }
        previous_blank = line.is_empty();
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
        if out.len() >= PREVIEW_MAX_CHARS {
            chars += out[counted..].chars().count();
            counted = out.len();
            if chars >= PREVIEW_MAX_CHARS {
                break;
            }
        }
    }
    if chars > PREVIEW_MAX_CHARS {
        out.truncate(char_start(&out, PREVIEW_MAX_CHARS));
    }
    out.truncate(out.trim_end().len());
    out
}

/// The byte offset where character `n` of `s` starts (`s.len()` if it has no more):
/// the `n`-th byte that does not continue a UTF-8 sequence. Counted 8 bytes at a time
/// (continuation bytes are `0b10xx_xxxx`: bit 7 set, bit 6 clear); decoding every
/// character to find the cut was most of the preview's time for long bodies, and a
/// byte-by-byte count was still a third of it.
fn char_start(s: &str, n: usize) -> usize {
    let bytes = s.as_bytes();
    let (mut seen, mut at) = (0, 0);
    for word in bytes.chunks_exact(8) {
        let w = u64::from_le_bytes(word.try_into().expect("chunks of 8"));
        // Bit 7 of each byte, where bit 6 (shifted up to bit 7) is clear; moved to bit 0
        // and summed into the top byte by the multiplication (`count_ones` is a dozen
        // instructions without the `popcnt` target feature).
        let continuing = (((w & !(w << 1) & 0x8080_8080_8080_8080) >> 7)
            .wrapping_mul(0x0101_0101_0101_0101)
            >> 56) as usize;
        let starting = 8 - continuing;
        if seen + starting > n {
            break;
        }
        seen += starting;
        at += 8;
    }
    for (i, b) in bytes[at..].iter().enumerate() {
        if (*b as i8) >= -0x40 {
            if seen == n {
                return at + i;
            }
            seen += 1;
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_start_is_where_char_indices_says() {
        let texts = [
            "",
            "abc",
            "é",
            "aé😀b€",
            &"Zürich 😀 ".repeat(40),
            &"é".repeat(130),
        ];
        for text in texts {
            for n in 0..=text.chars().count() + 2 {
                let expected = text.char_indices().nth(n).map_or(text.len(), |(i, _)| i);
                assert_eq!(char_start(text, n), expected, "{text:?} {n}");
            }
        }
    }

    #[test]
    fn preview_cuts_at_2000_chars_not_bytes() {
        let text = "é".repeat(2500);
        let p = preview(&text);
        assert_eq!(p.chars().count(), 2000);
        assert!(p.chars().all(|c| c == 'é'));
    }

    /// `preview` as it was before it counted characters only past the limit's bytes:
    /// every line counted.
    fn preview_counting_every_line(text: &str) -> String {
        let mut out = String::new();
        let mut chars = 0usize;
        let mut previous_blank = false;
        for line in text.trim().lines().map(str::trim_end) {
            if line.is_empty() && previous_blank {
                continue;
            }
            previous_blank = line.is_empty();
            if chars > 0 {
                out.push('\n');
                chars += 1;
            }
            out.push_str(line);
            chars += line.chars().count();
            if chars >= PREVIEW_MAX_CHARS {
                break;
            }
        }
        if chars > PREVIEW_MAX_CHARS {
            let cut = out
                .char_indices()
                .nth(PREVIEW_MAX_CHARS)
                .map_or(out.len(), |(i, _)| i);
            out.truncate(cut);
        }
        out.truncate(out.trim_end().len());
        out
    }

    #[test]
    fn preview_counts_characters_across_lines_and_at_the_cut() {
        let check = |text: &str| {
            let p = preview(text);
            assert_eq!(p, preview_counting_every_line(text), "{text:?}");
            assert!(p.chars().count() <= PREVIEW_MAX_CHARS);
        };
        // Multi-byte characters before, at and after the cut, on one line or several,
        // with lines that reach the limit in bytes long before it in characters.
        for n in [1990, 1999, 2000, 2001, 2010] {
            check(&"é".repeat(n));
            check(&("a".repeat(n - 1) + "€"));
            check(&("€".repeat(600) + "\r\n" + &"b".repeat(n)));
            check(&format!(
                "{}\n\n\n{}  \n",
                "ü".repeat(n / 2),
                "😀".repeat(n / 2)
            ));
        }
        let lines: String = (0..400).map(|i| format!("Zürich {i}\r\n")).collect();
        check(&lines);
        check(&lines.replace("Zürich", "Zurich"));
        check(&("x".repeat(1999) + "\n" + &"y".repeat(3)));
        check(&(" \n".repeat(3000) + "end"));
        check(&"\n\n".repeat(5000));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn char_start_is_where_char_indices_says_for_any_text(text in "\\PC{0,80}") {
            for n in 0..=text.chars().count() + 1 {
                let expected = text.char_indices().nth(n).map_or(text.len(), |(i, _)| i);
                proptest::prop_assert_eq!(char_start(&text, n), expected);
            }
        }

        #[test]
        fn preview_is_the_same_as_counting_every_line(
            parts in proptest::collection::vec("[a-zé€😀 \r\t]{0,300}|\r?\n", 0..40)
        ) {
            let text = parts.concat();
            proptest::prop_assert_eq!(preview(&text), preview_counting_every_line(&text));
        }
    }

    #[test]
    fn preview_normalises_lines() {
        assert_eq!(
            preview("  Hello\r\n\r\n\r\n\r\nWorld  \r\n"),
            "Hello\n\nWorld"
        );
        assert_eq!(preview(""), "");
        let long_lines = format!("{}\n{}", "a".repeat(1999), "b".repeat(10));
        let p = preview(&long_lines);
        assert_eq!(p.chars().count(), 1999, "no trailing newline");
    }

    #[test]
    fn address_display() {
        let a = EmailAddress::new(Some("Zoë".into()), Some("z@example.com".into()));
        assert_eq!(a.to_string(), "Zoë <z@example.com>");
        assert_eq!(
            EmailAddress::new(None, Some("z@x".into())).to_string(),
            "z@x"
        );
    }
}
