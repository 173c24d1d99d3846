//! Raw MIME (`GET /me/messages/{id}/$value`) built from a message.

use base64::Engine as _;
use chrono::DateTime;

use super::synth::{self, AttSpec, Content, Person};

fn encode_word(s: &str) -> String {
    if s.is_ascii() && !s.contains(['\r', '\n']) {
        s.to_owned()
    } else {
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }
}

fn mailbox(p: &Person) -> String {
    if p.name.is_empty() {
        format!("<{}>", p.address)
    } else if p.name.is_ascii() {
        format!(
            "\"{}\" <{}>",
            p.name.replace('\\', "\\\\").replace('"', "\\\""),
            p.address
        )
    } else {
        format!("{} <{}>", encode_word(&p.name), p.address)
    }
}

fn base64_lines(bytes: &[u8], out: &mut String) {
    let enc = base64::engine::general_purpose::STANDARD.encode(bytes);
    for chunk in enc.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push_str("\r\n");
    }
}

/// Builds an RFC 5322 message: `multipart/alternative` text and HTML,
/// inside `multipart/mixed` when there are attachments.
pub(crate) fn build(
    c: &Content,
    received_ms: i64,
    draft: bool,
    atts: &[(AttSpec, Vec<u8>)],
) -> Vec<u8> {
    let date = DateTime::from_timestamp_millis(received_ms - if draft { 0 } else { c.transit_ms })
        .unwrap_or_default()
        .to_rfc2822();
    let mut out = String::with_capacity(c.body_html.len() * 3 + 1024);
    if let Some(f) = &c.from {
        out.push_str(&format!("From: {}\r\n", mailbox(f)));
    }
    if !c.to.is_empty() {
        let to: Vec<String> = c.to.iter().map(mailbox).collect();
        out.push_str(&format!("To: {}\r\n", to.join(",\r\n ")));
    }
    if !c.cc.is_empty() {
        let cc: Vec<String> = c.cc.iter().map(mailbox).collect();
        out.push_str(&format!("Cc: {}\r\n", cc.join(",\r\n ")));
    }
    out.push_str(&format!("Subject: {}\r\n", encode_word(&c.subject)));
    out.push_str(&format!("Date: {date}\r\n"));
    out.push_str(&format!("Message-ID: {}\r\n", c.internet_message_id));
    out.push_str(&format!("Thread-Index: AQH{:012X}\r\n", c.thread));
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str("Content-Language: en-US\r\n");
    let alt = format!("_000_alt_{:x}_", c.thread);
    let mixed = format!("_004_mixed_{:x}_", c.thread);
    if !atts.is_empty() {
        out.push_str(&format!(
            "Content-Type: multipart/mixed;\r\n\tboundary=\"{mixed}\"\r\n\r\n"
        ));
        out.push_str(&format!("--{mixed}\r\n"));
    }
    out.push_str(&format!(
        "Content-Type: multipart/alternative;\r\n\tboundary=\"{alt}\"\r\n\r\n"
    ));
    out.push_str(&format!("--{alt}\r\nContent-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"));
    base64_lines(synth::html_to_text(&c.body_html).as_bytes(), &mut out);
    out.push_str(&format!("\r\n--{alt}\r\nContent-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"));
    base64_lines(c.body_html.as_bytes(), &mut out);
    out.push_str(&format!("\r\n--{alt}--\r\n"));
    if !atts.is_empty() {
        for (spec, bytes) in atts {
            let name = encode_word(&spec.name);
            out.push_str(&format!(
                "\r\n--{mixed}\r\nContent-Type: {}; name=\"{name}\"\r\n",
                spec.content_type
            ));
            let disposition = if spec.inline { "inline" } else { "attachment" };
            out.push_str(&format!(
                "Content-Disposition: {disposition}; filename=\"{name}\"; size={}\r\n",
                bytes.len()
            ));
            if let Some(cid) = &spec.content_id {
                out.push_str(&format!("Content-ID: <{cid}>\r\n"));
            }
            out.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
            base64_lines(bytes, &mut out);
        }
        out.push_str(&format!("\r\n--{mixed}--\r\n"));
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_has_headers_and_both_bodies() {
        let owner = Person::new("Demo", "demo@mailroom.test");
        let c = synth::content(1, 4, synth::Role::Received, &owner);
        let spec = AttSpec {
            name: "Résumé.pdf".into(),
            content_type: "application/pdf",
            size: 10,
            inline: false,
            content_id: None,
        };
        let raw =
            String::from_utf8(build(&c, 1_700_000_000_000, false, &[(spec, vec![1; 10])])).unwrap();
        assert!(raw.contains("\r\nMessage-ID: <"));
        assert!(raw.contains("multipart/mixed"));
        assert!(raw.contains("text/plain; charset=\"utf-8\""));
        assert!(raw.contains("text/html; charset=\"utf-8\""));
        assert!(raw.contains("filename=\"=?utf-8?B?"));
        assert!(raw.lines().all(|l| l.len() <= 998));
        let draft = synth::content(1, 4, synth::Role::Draft, &owner);
        assert!(
            !String::from_utf8(build(&draft, 0, true, &[]))
                .unwrap()
                .contains("From:")
        );
    }
}
