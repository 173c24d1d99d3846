//! A message's record without its whole bytes: its header, its BODYSTRUCTURE and the
//! first bytes of one text part.
//!
//! The MIME tree that BODYSTRUCTURE describes is written back as MIME with empty
//! bodies (the *skeleton*: each part's `Content-Type` with its parameters,
//! `Content-Disposition`, `Content-ID`, `Content-Transfer-Encoding`; an attached
//! message's `Subject` from its envelope) after the message's own header, and parsed by
//! the same code as a whole message ([`super::mime::record_and_text_part`]). So the
//! choice of the text part, the attachment list, names, content types and the inline
//! flag follow exactly the rules of a whole-message read; only the sizes (from the
//! part's octets and transfer encoding, [`super::size`]) and the preview (from the
//! first bytes of the text part, [`super::mime::part_preview`]) are filled in apart.

use async_imap::imap_proto::{BodyParams, BodyStructure, ContentEncoding};

use super::size::TransferEncoding;

/// One body part as BODYSTRUCTURE describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// IMAP part number (`1`, `2.1`, …).
    pub number: String,
    /// The encoded size (`body-fld-octets`).
    pub octets: u64,
    /// The transfer encoding.
    pub encoding: TransferEncoding,
}

/// What BODYSTRUCTURE tells about a message, owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outline {
    /// The MIME tree with empty bodies, to append to the message's header.
    pub skeleton: Vec<u8>,
    /// Every leaf and attached message of the top-level tree.
    pub parts: Vec<PartInfo>,
}

impl Outline {
    /// The part numbered `number`.
    pub fn part(&self, number: &str) -> Option<&PartInfo> {
        self.parts.iter().find(|p| p.number == number)
    }
}

/// Nesting deeper than this is not written (and the record says less).
const MAX_DEPTH: u32 = 32;

/// The outline of a message from its BODYSTRUCTURE.
pub fn outline(structure: &BodyStructure<'_>) -> Outline {
    let mut out = Outline::default();
    match structure {
        BodyStructure::Multipart { common, bodies, .. } => {
            let boundary = param(&common.ty.params, "boundary");
            children(
                bodies,
                boundary.as_deref(),
                "",
                0,
                &mut out.skeleton,
                &mut out.parts,
            );
        }
        single => {
            if let Some(info) = info(single, "1") {
                out.parts.push(info);
            }
            // The top-level part's header is the message's: only its body is written.
            body(single, 0, &mut out.skeleton);
        }
    }
    out
}

fn info(body: &BodyStructure<'_>, number: &str) -> Option<PartInfo> {
    let other = match body {
        BodyStructure::Basic { other, .. }
        | BodyStructure::Text { other, .. }
        | BodyStructure::Message { other, .. } => other,
        BodyStructure::Multipart { .. } => return None,
    };
    Some(PartInfo {
        number: number.to_owned(),
        octets: u64::from(other.octets),
        encoding: encoding_of(&other.transfer_encoding),
    })
}

/// The transfer encoding of a part, for its decoded size.
pub fn encoding_of(encoding: &ContentEncoding<'_>) -> TransferEncoding {
    match encoding {
        ContentEncoding::Base64 => TransferEncoding::Base64,
        ContentEncoding::QuotedPrintable => TransferEncoding::QuotedPrintable,
        ContentEncoding::Other(name) => TransferEncoding::from_header(Some(name)),
        _ => TransferEncoding::Identity,
    }
}

fn children(
    bodies: &[BodyStructure<'_>],
    boundary: Option<&str>,
    prefix: &str,
    depth: u32,
    out: &mut Vec<u8>,
    parts: &mut Vec<PartInfo>,
) {
    let Some(boundary) = boundary else {
        return;
    };
    for (i, child) in bodies.iter().enumerate() {
        let number = if prefix.is_empty() {
            (i + 1).to_string()
        } else {
            format!("{prefix}.{}", i + 1)
        };
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        header(child, out);
        out.extend_from_slice(b"\r\n");
        match child {
            BodyStructure::Multipart { common, bodies, .. } if depth < MAX_DEPTH => {
                let inner = param(&common.ty.params, "boundary");
                children(bodies, inner.as_deref(), &number, depth + 1, out, parts);
            }
            BodyStructure::Multipart { .. } => {}
            leaf => {
                parts.extend(info(leaf, &number));
                body(leaf, depth, out);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
}

/// The body of a single part: empty, except an attached message, whose own header
/// (the subject from its envelope, its content type) and tree are written.
fn body(part: &BodyStructure<'_>, depth: u32, out: &mut Vec<u8>) {
    let BodyStructure::Message { envelope, body, .. } = part else {
        return;
    };
    if depth >= MAX_DEPTH {
        return;
    }
    if let Some(subject) = &envelope.subject {
        out.extend_from_slice(b"Subject: ");
        out.extend(subject.iter().filter(|&&b| b != b'\r' && b != b'\n'));
        out.extend_from_slice(b"\r\n");
    }
    header(body, out);
    out.extend_from_slice(b"\r\n");
    let mut ignored = Vec::new();
    match body.as_ref() {
        BodyStructure::Multipart { common, bodies, .. } => {
            let boundary = param(&common.ty.params, "boundary");
            children(
                bodies,
                boundary.as_deref(),
                "",
                depth + 1,
                out,
                &mut ignored,
            );
        }
        single => self::body(single, depth + 1, out),
    }
}

/// The MIME header of a part, from its BODYSTRUCTURE.
fn header(part: &BodyStructure<'_>, out: &mut Vec<u8>) {
    let (common, other) = match part {
        BodyStructure::Basic { common, other, .. }
        | BodyStructure::Text { common, other, .. }
        | BodyStructure::Message { common, other, .. } => (common, Some(other)),
        BodyStructure::Multipart { common, .. } => (common, None),
    };
    let mut line = format!(
        "Content-Type: {}/{}",
        clean(&common.ty.ty),
        clean(&common.ty.subtype)
    );
    write_params(&common.ty.params, &mut line);
    line.push_str("\r\n");
    if let Some(d) = &common.disposition {
        line.push_str(&format!("Content-Disposition: {}", clean(&d.ty)));
        write_params(&d.params, &mut line);
        line.push_str("\r\n");
    }
    if let Some(other) = other {
        if let Some(id) = &other.id {
            line.push_str(&format!("Content-ID: {}\r\n", clean(id)));
        }
        let encoding = match &other.transfer_encoding {
            ContentEncoding::SevenBit => "7bit".into(),
            ContentEncoding::EightBit => "8bit".into(),
            ContentEncoding::Binary => "binary".into(),
            ContentEncoding::Base64 => "base64".into(),
            ContentEncoding::QuotedPrintable => "quoted-printable".into(),
            ContentEncoding::Other(name) => clean(name),
        };
        line.push_str(&format!("Content-Transfer-Encoding: {encoding}\r\n"));
    }
    out.extend_from_slice(line.as_bytes());
}

fn write_params(params: &BodyParams<'_>, line: &mut String) {
    for (key, value) in params.iter().flatten() {
        let key = clean(key);
        if key.ends_with('*') {
            // RFC 2231 extended value: a token, never quoted.
            line.push_str(&format!(";\r\n {key}={}", clean(value)));
        } else {
            // The parser leaves a quoted string's escapes in place.
            let value = super::unescape_quoted(&clean(value))
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            line.push_str(&format!(";\r\n {key}=\"{value}\""));
        }
    }
}

/// A server string made safe for one header line.
fn clean(value: &str) -> String {
    value.replace(['\r', '\n'], " ")
}

fn param(params: &BodyParams<'_>, name: &str) -> Option<String> {
    params
        .iter()
        .flatten()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| clean(v))
}
