//! BODYSTRUCTURE → attachment metadata, for messages too big to read whole.

use async_imap::imap_proto::{BodyParams, BodyStructure, ContentEncoding};
use mailroom_core::Attachment;

use super::size::TransferEncoding;

/// An attachment as BODYSTRUCTURE describes it, with what its exact size needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructurePart {
    /// The attachment; its `size` is exact when [`StructurePart::size_is_exact`], else
    /// the estimate [`estimated_size`] gives until the part's bytes are counted.
    pub attachment: Attachment,
    /// The part's encoded size (`body-fld-octets`).
    pub octets: u64,
    /// The part's `Content-Transfer-Encoding`.
    pub encoding: TransferEncoding,
}

impl StructurePart {
    /// True when the octets alone give the decoded size (`7bit`, `8bit`, `binary`).
    pub fn size_is_exact(&self) -> bool {
        self.encoding == TransferEncoding::Identity
    }
}

/// The attachments of a message as its BODYSTRUCTURE describes them, with IMAP part
/// numbers. Text parts without a disposition are bodies, not attachments. Sizes of
/// base64 and quoted-printable parts are estimates (see [`attachment_parts`] for what
/// makes them exact).
pub fn attachments(structure: &BodyStructure<'_>) -> Vec<Attachment> {
    attachment_parts(structure)
        .into_iter()
        .map(|p| p.attachment)
        .collect()
}

/// The attachments with their encoded size and transfer encoding, from which the
/// caller gets exact sizes ([`super::size`]).
pub fn attachment_parts(structure: &BodyStructure<'_>) -> Vec<StructurePart> {
    let mut out = Vec::new();
    match structure {
        BodyStructure::Multipart { bodies, .. } => walk_children(bodies, "", &mut out, 0),
        single => leaf(single, "1", true, &mut out),
    }
    out
}

fn walk_children(
    bodies: &[BodyStructure<'_>],
    prefix: &str,
    out: &mut Vec<StructurePart>,
    depth: u32,
) {
    if depth > 32 {
        return;
    }
    for (i, body) in bodies.iter().enumerate() {
        let number = if prefix.is_empty() {
            (i + 1).to_string()
        } else {
            format!("{prefix}.{}", i + 1)
        };
        match body {
            BodyStructure::Multipart { bodies, .. } => {
                walk_children(bodies, &number, out, depth + 1)
            }
            single => leaf(single, &number, false, out),
        }
    }
}

fn leaf(body: &BodyStructure<'_>, number: &str, is_root: bool, out: &mut Vec<StructurePart>) {
    let (common, other, is_text, is_message) = match body {
        BodyStructure::Basic { common, other, .. } => (common, other, false, false),
        BodyStructure::Text { common, other, .. } => (common, other, true, false),
        BodyStructure::Message { common, other, .. } => (common, other, false, true),
        BodyStructure::Multipart { .. } => return,
    };
    let disposition = common
        .disposition
        .as_ref()
        .map(|d| d.ty.to_ascii_lowercase());
    let filename = common
        .disposition
        .as_ref()
        .and_then(|d| param(&d.params, "filename"))
        .or_else(|| param(&common.ty.params, "name"));
    let is_attachment = match disposition.as_deref() {
        Some("attachment") => true,
        Some("inline") => filename.is_some() || !is_text,
        _ => is_message || (!is_root && (!is_text || filename.is_some())),
    };
    if !is_attachment {
        return;
    }
    let content_id = other.id.as_ref().map(|id| {
        id.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned()
    });
    let is_inline = match disposition.as_deref() {
        Some("inline") => true,
        Some(_) => false,
        None => content_id.is_some() && !is_message,
    };
    let octets = u64::from(other.octets);
    let encoding = match &other.transfer_encoding {
        ContentEncoding::Base64 => TransferEncoding::Base64,
        ContentEncoding::QuotedPrintable => TransferEncoding::QuotedPrintable,
        ContentEncoding::Other(name) => TransferEncoding::from_header(Some(name)),
        _ => TransferEncoding::Identity,
    };
    out.push(StructurePart {
        attachment: Attachment {
            remote_id: Some(number.to_owned()),
            name: filename,
            content_type: Some(
                format!("{}/{}", common.ty.ty, common.ty.subtype).to_ascii_lowercase(),
            ),
            size: estimated_size(octets, encoding),
            is_inline,
            content_id,
        },
        octets,
        encoding,
    });
}

/// The decoded size of a part estimated from its encoded size alone, for when its bytes
/// cannot be read: base64 as wrapped at 76 characters with CRLF (3 bytes per 4
/// characters, which can be off by the padding: 1 or 2 bytes); quoted-printable and the
/// rest as the encoded size (an upper bound).
pub fn estimated_size(octets: u64, encoding: TransferEncoding) -> u64 {
    match encoding {
        TransferEncoding::Base64 => {
            let chars = octets - (octets / 78) * 2;
            chars * 3 / 4
        }
        _ => octets,
    }
}

/// A parameter value, decoded (RFC 2047 encoded words, RFC 2231 `name*=utf-8''…`).
fn param(params: &BodyParams<'_>, name: &str) -> Option<String> {
    let params = params.as_ref()?;
    let extended = format!("{name}*");
    if let Some((_, v)) = params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&extended))
    {
        return Some(rfc2231(v));
    }
    let (_, v) = params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))?;
    Some(encoded_words(v))
}

fn encoded_words(value: &str) -> String {
    if !value.contains("=?") {
        return value.to_owned();
    }
    let header = format!("Subject: {value}\r\n\r\n");
    mail_parser::MessageParser::default()
        .parse_headers(header.as_bytes())
        .and_then(|m| m.subject().map(str::to_owned))
        .unwrap_or_else(|| value.to_owned())
}

fn rfc2231(value: &str) -> String {
    // charset'language'percent-encoded; only UTF-8 and ASCII are decoded.
    let mut parts = value.splitn(3, '\'');
    let (Some(charset), Some(_lang), Some(encoded)) = (parts.next(), parts.next(), parts.next())
    else {
        return value.to_owned();
    };
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut it = encoded.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let hex: Vec<u8> = it.by_ref().take(2).collect();
            match std::str::from_utf8(&hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(v) => bytes.push(v),
                None => return value.to_owned(),
            }
        } else {
            bytes.push(b);
        }
    }
    if charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("us-ascii") {
        String::from_utf8(bytes).unwrap_or_else(|_| value.to_owned())
    } else {
        bytes.iter().map(|&b| char::from(b)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_imap::imap_proto::{AttributeValue, Response};

    fn check(fetch: &str, expected: &[(&str, Option<&str>, &str, u64, bool)]) {
        let line = format!("* 1 FETCH (UID 1 BODYSTRUCTURE {fetch})\r\n");
        let (_, response) = Response::parse(line.as_bytes()).expect("parse");
        let Response::Fetch(_, attrs) = response else {
            panic!("not a fetch")
        };
        let structure = attrs
            .iter()
            .find_map(|a| match a {
                AttributeValue::BodyStructure(b) => Some(b),
                _ => None,
            })
            .expect("bodystructure");
        let got: Vec<_> = attachments(structure)
            .into_iter()
            .map(|a| {
                (
                    a.remote_id.unwrap(),
                    a.name,
                    a.content_type.unwrap(),
                    a.size,
                    a.is_inline,
                )
            })
            .collect();
        let want: Vec<_> = expected
            .iter()
            .map(|(n, name, ct, size, inline)| {
                (
                    n.to_string(),
                    name.map(str::to_owned),
                    ct.to_string(),
                    *size,
                    *inline,
                )
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn mixed_message_with_inline_image_and_attachments() {
        check(
            r#"(((("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 30 1 NIL NIL NIL NIL)("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 60 1 NIL NIL NIL NIL) "ALTERNATIVE" ("BOUNDARY" "alt") NIL NIL NIL)("IMAGE" "PNG" ("NAME" "logo.png") "<logo@example.com>" NIL "BASE64" 98 NIL ("INLINE" ("FILENAME" "logo.png")) NIL NIL) "RELATED" ("BOUNDARY" "related") NIL NIL NIL)("APPLICATION" "PDF" ("NAME" "report.pdf") NIL NIL "BASE64" 1404 NIL ("ATTACHMENT" ("FILENAME" "=?UTF-8?Q?Rapport_=C3=A9t=C3=A9.pdf?=")) NIL NIL)("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 120 ("Fri, 24 Jan 2025 10:00:00 +0000" "Forwarded note" NIL NIL NIL NIL NIL NIL NIL NIL) ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 20 1 NIL NIL NIL NIL) 6 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "outer") NIL NIL NIL)"#,
            &[
                ("1.2", Some("logo.png"), "image/png", 72, true),
                ("2", Some("Rapport été.pdf"), "application/pdf", 1026, false),
                ("3", None, "message/rfc822", 120, false),
            ],
        );
    }

    #[test]
    fn single_part_and_rfc2231_names() {
        check(
            r#"("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 30 1 NIL NIL NIL NIL)"#,
            &[],
        );
        check(
            r#"(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 30 1 NIL NIL NIL NIL)("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 78 NIL ("ATTACHMENT" ("FILENAME*" "utf-8''R%C3%A9sum%C3%A9.txt")) NIL NIL) "MIXED" ("BOUNDARY" "b") NIL NIL NIL)"#,
            &[(
                "2",
                Some("Résumé.txt"),
                "application/octet-stream",
                57,
                false,
            )],
        );
    }
}
