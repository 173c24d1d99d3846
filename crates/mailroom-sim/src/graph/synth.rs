//! Deterministic message content: a pure function of `(seed, index)`, so a
//! 100,000-message mailbox stores only a few bytes per message and builds
//! subjects, bodies and attachments on demand.

use crate::rng::Rng;

/// Who a generated message is from/to, relative to the mailbox owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Received mail: from someone else, to the owner.
    Received,
    /// Sent by the owner.
    Sent,
    /// A draft: no `from`/`sender`, maybe no recipients.
    Draft,
}

/// A name and an address.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Person {
    /// Display name (may be empty).
    pub name: String,
    /// SMTP address.
    pub address: String,
}

impl Person {
    pub(crate) fn new(name: &str, address: &str) -> Person {
        Person {
            name: name.to_owned(),
            address: address.to_owned(),
        }
    }
}

/// An attachment's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AttSpec {
    pub(crate) name: String,
    pub(crate) content_type: &'static str,
    pub(crate) size: usize,
    pub(crate) inline: bool,
    pub(crate) content_id: Option<String>,
}

/// Everything about a message that is not mailbox state.
#[derive(Clone, Debug)]
pub(crate) struct Content {
    pub(crate) subject: String,
    pub(crate) from: Option<Person>,
    pub(crate) to: Vec<Person>,
    pub(crate) cc: Vec<Person>,
    pub(crate) body_html: String,
    /// `bodyPreview` (empty when the body was not needed).
    pub(crate) preview: String,
    /// Milliseconds between sending and receiving.
    pub(crate) transit_ms: i64,
    pub(crate) importance: &'static str,
    pub(crate) thread: u64,
    pub(crate) internet_message_id: String,
    pub(crate) categories: Vec<&'static str>,
}

const PEOPLE: &[(&str, &str)] = &[
    ("Alice Martin", "alice.martin@fabrikam.test"),
    ("José Álvarez", "jose.alvarez@contoso.test"),
    ("Zoë Brontë", "zoe.bronte@litware.test"),
    ("山田 太郎", "taro.yamada@example.jp.test"),
    ("Ørjan Håland", "orjan@nordic.test"),
    ("Иван Петров", "ivan.petrov@example.ru.test"),
    ("Siobhán O'Brien", "siobhan.obrien@contoso.test"),
    ("Müller, Jürgen", "j.mueller@beispiel.de.test"),
    ("Ana María Núñez", "anamaria@ejemplo.es.test"),
    ("李小龙", "xiaolong.li@example.cn.test"),
    ("Nguyễn Văn An", "an.nguyen@example.vn.test"),
    ("محمد علي", "m.ali@example.eg.test"),
    ("", "no-reply@notifications.test"),
    ("\"The Team\" <quoted>", "team@startup.test"),
    ("François Dupont", "francois.dupont@exemple.fr.test"),
];

const SUBJECTS: &[&str] = &[
    "Quarterly report",
    "Réunion de lundi",
    "Einladung: Planungsrunde Q3",
    "会議のお知らせ",
    "Invoice #4711 – payment due",
    "Photos from the trip 📷",
    "Café & croissants ☕ on Friday?",
    "Статус проекта",
    "Angebot für Übersetzung",
    "Your order has shipped",
    "Lunch?",
    "Security alert: new sign-in",
    "Προσφορά για το συνέδριο",
    "见面时间确认",
    "Budget 2025 \"final\" v3 (really)",
    "RE: <no subject>",
    "Ünïcödé ✓ — naïve façade coöperation",
    "Weekly digest",
    "Contract draft for review",
    "Re: Re: Fwd: travel plans",
    "",
];

const WORDS: &[&str] = &[
    "the",
    "meeting",
    "report",
    "schedule",
    "budget",
    "Zürich",
    "café",
    "naïve",
    "résumé",
    "project",
    "déjà",
    "vu",
    "please",
    "review",
    "attached",
    "numbers",
    "quarter",
    "team",
    "update",
    "tomorrow",
    "休憩",
    "東京",
    "Москва",
    "straße",
    "über",
    "co-operate",
    "deadline",
    "approve",
    "&",
    "<draft>",
    "\"quoted\"",
    "it's",
    "50%",
    "€1,234.56",
];

const ATTACHMENTS: &[(&str, &str)] = &[
    ("report.pdf", "application/pdf"),
    (
        "Résumé.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("photo 2025-01-03.jpg", "image/jpeg"),
    (
        "報告書.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("notes.txt", "text/plain"),
    ("invoice #42.pdf", "application/pdf"),
    ("data.csv", "text/csv"),
    (
        "Präsentation.pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("archive.zip", "application/zip"),
];

const FACET_SUBJECT: u64 = 1;
const FACET_PEOPLE: u64 = 2;
const FACET_BODY: u64 = 3;
const FACET_ATTACH: u64 = 4;
const FACET_BYTES: u64 = 5;

/// Thread (conversation) number of a generated message.
pub(crate) fn thread_of(index: u64) -> u64 {
    index / 3
}

/// Generates the subject of message `index`.
pub(crate) fn subject(seed: u64, index: u64) -> String {
    let thread = thread_of(index);
    let mut r = Rng::derive(seed, &[thread, FACET_SUBJECT]);
    let base = *r.pick(SUBJECTS);
    let mut s = String::new();
    if !index.is_multiple_of(3) {
        s.push_str("Re: ");
    }
    s.push_str(base);
    if !base.is_empty() && r.chance(0.5) {
        s.push_str(&format!(" ({})", thread % 1000));
    }
    s
}

/// How much of the body a caller needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyNeed {
    /// The whole HTML body.
    Full,
    /// Enough HTML for a 255-character `bodyPreview`.
    Preview,
    /// No body at all.
    None,
}

/// Generates the content of message `index` of a mailbox.
#[cfg(test)]
pub(crate) fn content(seed: u64, index: u64, role: Role, owner: &Person) -> Content {
    content_with(
        seed,
        index,
        role,
        owner,
        BodyNeed::Full,
        crate::config::DEFAULT_ATTACHMENT_PERCENT,
    )
}

/// Generates the content, with only as much body as needed.
pub(crate) fn content_with(
    seed: u64,
    index: u64,
    role: Role,
    owner: &Person,
    need: BodyNeed,
    attachment_percent: u8,
) -> Content {
    let mut r = Rng::derive(seed, &[index, FACET_PEOPLE]);
    let other = |r: &mut Rng| {
        let (n, a) = *r.pick(PEOPLE);
        Person::new(n, a)
    };
    let (from, to) = match role {
        Role::Received => (Some(other(&mut r)), vec![owner.clone()]),
        Role::Sent => (Some(owner.clone()), vec![other(&mut r)]),
        Role::Draft => (
            None,
            if r.chance(0.5) {
                vec![other(&mut r)]
            } else {
                Vec::new()
            },
        ),
    };
    let cc = if r.chance(0.3) {
        (0..1 + r.below(2)).map(|_| other(&mut r)).collect()
    } else {
        Vec::new()
    };
    let importance = match r.below(10) {
        0 => "high",
        1 => "low",
        _ => "normal",
    };
    let transit_ms = 1_000 + r.below(600_000) as i64;
    let categories = if r.chance(0.1) {
        vec!["Red category"]
    } else {
        Vec::new()
    };
    let domain = from
        .as_ref()
        .map(|p| {
            p.address
                .rsplit('@')
                .next()
                .unwrap_or("mailroom.test")
                .to_owned()
        })
        .unwrap_or_else(|| "mailroom.test".to_owned());
    let internet_message_id = format!("<{:016x}.{index}@{domain}>", r.next_u64());
    let plan = plan(seed, index);
    let (body_html, preview) = match need {
        BodyNeed::Full => (
            render_html(&plan, &attachments(seed, index, role, attachment_percent)),
            plan_preview(&plan),
        ),
        BodyNeed::Preview => (String::new(), plan_preview(&plan)),
        BodyNeed::None => (String::new(), String::new()),
    };
    Content {
        subject: subject(seed, index),
        from,
        to,
        cc,
        body_html,
        preview,
        transit_ms,
        importance,
        thread: thread_of(index),
        internet_message_id,
        categories,
    }
}

/// One sentence of generated text, plain and HTML-escaped.
#[derive(Debug)]
struct Sentence {
    text: String,
    html: String,
    chars: usize,
}

const POOL_SIZE: usize = 2048;

/// Sentences are drawn from a fixed pool (built once from a fixed seed), so
/// a body is a list of indexes: cheap to render as HTML or as text.
fn pool() -> &'static [Sentence] {
    static POOL: std::sync::OnceLock<Vec<Sentence>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let mut r = Rng::new(0x5e17_e9ce);
        (0..POOL_SIZE)
            .map(|_| {
                let n = 6 + r.below(12);
                let mut text = String::new();
                for i in 0..n {
                    let w = *r.pick(WORDS);
                    if i == 0 {
                        let mut c = w.chars();
                        if let Some(f) = c.next() {
                            text.extend(f.to_uppercase());
                            text.push_str(c.as_str());
                        }
                    } else {
                        text.push(' ');
                        text.push_str(w);
                    }
                }
                text.push('.');
                let html = escape(&text);
                let chars = text.chars().count();
                Sentence { text, html, chars }
            })
            .collect()
    })
}

/// The shape of a generated body: paragraphs of pool sentences.
#[derive(Debug)]
pub(crate) struct Plan {
    index: u64,
    paragraphs: Vec<Vec<u16>>,
    link: bool,
}

/// The body plan of message `index`.
pub(crate) fn plan(seed: u64, index: u64) -> Plan {
    let mut r = Rng::derive(seed, &[index, FACET_BODY]);
    let count = if r.chance(0.12) {
        12 + r.below(10)
    } else {
        1 + r.below(3)
    };
    let mut link = false;
    let paragraphs = (0..count)
        .map(|p| {
            let sentences = (0..2 + r.below(3))
                .map(|_| r.index(POOL_SIZE) as u16)
                .collect();
            if p == 0 {
                link = r.chance(0.2);
            }
            sentences
        })
        .collect();
    Plan {
        index,
        paragraphs,
        link,
    }
}

/// The HTML of a plan, with inline images of `atts` at the end.
pub(crate) fn render_html(plan: &Plan, atts: &[AttSpec]) -> String {
    let pool = pool();
    let mut html = String::with_capacity(300 + plan.paragraphs.len() * 260);
    html.push_str("<html><head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"><style>p{margin:0}</style></head><body>\r\n");
    html.push_str("<p>Message ");
    html.push_str(&plan.index.to_string());
    html.push_str(".</p>\r\n");
    for (p, para) in plan.paragraphs.iter().enumerate() {
        html.push_str("<p>");
        for (i, &s) in para.iter().enumerate() {
            if i > 0 {
                html.push(' ');
            }
            html.push_str(&pool[s as usize].html);
        }
        if p == 0 && plan.link {
            html.push_str(" <a href=\"https://example.test/doc?a=1&amp;b=2\">link</a>");
        }
        html.push_str("</p>\r\n");
    }
    for a in atts.iter().filter(|a| a.inline) {
        if let Some(cid) = &a.content_id {
            html.push_str(&format!(
                "<p><img src=\"cid:{cid}\" alt=\"{}\"></p>\r\n",
                escape(&a.name)
            ));
        }
    }
    html.push_str("</body></html>\r\n");
    html
}

/// `bodyPreview` of a plan, without rendering the HTML: the text is
/// single-spaced already, so this is the first 255 characters.
pub(crate) fn plan_preview(plan: &Plan) -> String {
    const MAX: usize = 255;
    let pool = pool();
    let mut out = String::with_capacity(MAX * 2);
    let head = format!("Message {}.", plan.index);
    let mut n = head.len();
    out.push_str(&head);
    let mut push = |piece: &str, chars: usize, out: &mut String| -> bool {
        if n + 1 + chars <= MAX {
            out.push(' ');
            out.push_str(piece);
            n += 1 + chars;
            true
        } else {
            if n < MAX {
                out.push(' ');
                out.extend(piece.chars().take(MAX - n - 1));
            }
            false
        }
    };
    for (p, para) in plan.paragraphs.iter().enumerate() {
        for &s in para {
            let s = &pool[s as usize];
            if !push(&s.text, s.chars, &mut out) {
                return out;
            }
        }
        if p == 0 && plan.link && !push("link", 4, &mut out) {
            return out;
        }
    }
    out
}

fn escape_into(mut s: &str, out: &mut String) {
    while let Some(i) = s.find(['&', '<', '>', '"']) {
        out.push_str(&s[..i]);
        out.push_str(match s.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            _ => "&quot;",
        });
        s = &s[i + 1..];
    }
    out.push_str(s);
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    escape_into(s, &mut out);
    out
}

/// The HTML body of message `index` (some longer than 2,000 characters,
/// some with inline images).
#[cfg(test)]
pub(crate) fn body_html(seed: u64, index: u64, atts: &[AttSpec]) -> String {
    render_html(&plan(seed, index), atts)
}

/// Attachments of message `index` (on `percent` % of messages, two fifths of that
/// for drafts).
pub(crate) fn attachments(seed: u64, index: u64, role: Role, percent: u8) -> Vec<AttSpec> {
    let mut r = Rng::derive(seed, &[index, FACET_ATTACH]);
    let share = f64::from(percent.min(100)) / 100.0;
    let p = if role == Role::Draft {
        share * 0.4
    } else {
        share
    };
    if !r.chance(p) {
        return Vec::new();
    }
    let n = 1 + r.below(3) as usize;
    let large = r.chance(1.0 / 12.0);
    (0..n)
        .map(|i| {
            let (name, ct) = *r.pick(ATTACHMENTS);
            let inline = ct.starts_with("image/") && r.chance(0.5);
            let size = if large && i == 0 {
                2_000_000 + r.below(4_000_000) as usize
            } else {
                512 + r.below(200_000) as usize
            };
            let name = if inline {
                format!("image{:03}.jpg", i + 1)
            } else {
                name.to_owned()
            };
            AttSpec {
                content_id: inline
                    .then(|| format!("image{:03}.jpg@01DB{:08X}", i + 1, r.next_u64() as u32)),
                name,
                content_type: ct,
                size,
                inline,
            }
        })
        .collect()
}

/// The bytes of one attachment (exactly `spec.size` of them).
pub(crate) fn attachment_bytes(seed: u64, index: u64, att: u16, spec: &AttSpec) -> Vec<u8> {
    let mut r = Rng::derive(seed, &[index, FACET_BYTES, u64::from(att)]);
    let mut out = vec![0u8; spec.size];
    if spec.content_type.starts_with("text/") {
        let line = format!(
            "line of {} for message {index}, attachment {att}\n",
            spec.name.escape_default()
        );
        for (i, b) in out.iter_mut().enumerate() {
            *b = line.as_bytes()[i % line.len()];
        }
        return out;
    }
    r.fill(&mut out);
    let magic: &[u8] = match spec.content_type {
        "application/pdf" => b"%PDF-1.7\n",
        "image/jpeg" => &[0xff, 0xd8, 0xff, 0xe0],
        _ => b"PK\x03\x04",
    };
    let n = magic.len().min(out.len());
    out[..n].copy_from_slice(&magic[..n]);
    out
}

fn starts_with_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay[..needle.len()].eq_ignore_ascii_case(needle)
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Walks the text of an HTML document: calls `text` for each run of text
/// (entities decoded) and `text("\r\n")` at block ends. Stops when `text`
/// returns `false`.
/// Calls `text` with the text of `html`; with `images`, an `<img src="cid:X">` is the
/// text `[cid:X]`, as Exchange writes inline images in a text body.
fn walk_html(html: &str, images: bool, mut text: impl FnMut(&str) -> bool) {
    let bytes = html.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'<' {
            let end = bytes[i..]
                .iter()
                .position(|&b| b == b'>')
                .map_or(bytes.len(), |e| i + e + 1);
            let tag = &bytes[i..end];
            let skip_to: Option<&[u8]> = if starts_with_ci(tag, b"<head") {
                Some(b"</head>")
            } else if starts_with_ci(tag, b"<style") {
                Some(b"</style>")
            } else if starts_with_ci(tag, b"<script") {
                Some(b"</script>")
            } else {
                None
            };
            if let Some(close) = skip_to {
                i = find_ci(&bytes[end..], close).map_or(bytes.len(), |e| end + e + close.len());
                continue;
            }
            let block = [&b"</p"[..], b"<br", b"</div", b"</li", b"</tr"]
                .iter()
                .any(|t| starts_with_ci(tag, t));
            if block && !text("\r\n") {
                return;
            }
            if images
                && starts_with_ci(tag, b"<img")
                && let Some(at) = find_ci(tag, b"src=\"cid:")
            {
                let cid = &tag[at + b"src=\"cid:".len()..];
                let cid = &cid[..cid.iter().position(|&b| b == b'"').unwrap_or(cid.len())];
                let cid = String::from_utf8_lossy(cid);
                if !text(&format!("[cid:{cid}]")) {
                    return;
                }
            }
            i = end;
            continue;
        }
        let next = bytes[i..]
            .iter()
            .position(|&b| b == b'<')
            .map_or(bytes.len(), |e| i + e);
        let mut run = &html[i..next];
        i = next;
        while !run.is_empty() {
            let cut = run.find(['&', '\r', '\n']).unwrap_or(run.len());
            if cut > 0 && !text(&run[..cut]) {
                return;
            }
            run = &run[cut..];
            if run.starts_with(['\r', '\n']) {
                run = &run[1..];
                continue;
            }
            if run.starts_with('&') {
                let (rep, len) = [
                    ("&lt;", "<"),
                    ("&gt;", ">"),
                    ("&quot;", "\""),
                    ("&#39;", "'"),
                    ("&nbsp;", " "),
                    ("&amp;", "&"),
                ]
                .iter()
                .find(|(e, _)| run.starts_with(e))
                .map_or(("&", 1), |(e, r)| (*r, e.len()));
                if !text(rep) {
                    return;
                }
                run = &run[len..];
            }
        }
    }
}

/// Plain text of an HTML body, as Graph returns with
/// `Prefer: outlook.body-content-type="text"`.
pub(crate) fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    walk_html(html, true, |t| {
        out.push_str(t);
        true
    });
    out.trim().to_owned()
}

/// `bodyPreview`: the first 255 characters of the text, whitespace
/// collapsed (stops reading the HTML once it has them).
pub(crate) fn preview_html(html: &str) -> String {
    let mut out = String::with_capacity(260);
    let mut n = 0;
    let mut pending_space = false;
    walk_html(html, false, |t| {
        for c in t.chars() {
            if c.is_whitespace() {
                pending_space = n > 0;
                continue;
            }
            if pending_space {
                if n == 255 {
                    return false;
                }
                out.push(' ');
                n += 1;
                pending_space = false;
            }
            if n == 255 {
                return false;
            }
            out.push(c);
            n += 1;
        }
        true
    });
    out
}

/// `bodyPreview` of a plain text.
#[cfg(test)]
pub(crate) fn preview(text: &str) -> String {
    let mut out = String::with_capacity(256);
    let mut n = 0;
    for word in text.split_whitespace() {
        for c in (if n == 0 { "" } else { " " }).chars().chain(word.chars()) {
            if n == 255 {
                return out;
            }
            out.push(c);
            n += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Person {
        Person::new("Demo", "demo@mailroom.test")
    }

    #[test]
    fn generation_is_deterministic() {
        let a = content(7, 123, Role::Received, &owner());
        let b = content(7, 123, Role::Received, &owner());
        assert_eq!(a.subject, b.subject);
        assert_eq!(a.body_html, b.body_html);
        assert_eq!(a.internet_message_id, b.internet_message_id);
        assert_ne!(
            content(8, 123, Role::Received, &owner()).internet_message_id,
            a.internet_message_id
        );
    }

    #[test]
    fn drafts_have_no_sender() {
        assert!(content(1, 5, Role::Draft, &owner()).from.is_none());
        assert_eq!(content(1, 5, Role::Sent, &owner()).from, Some(owner()));
    }

    #[test]
    fn some_bodies_are_long_and_some_messages_have_large_attachments() {
        let long = (0..200)
            .filter(|i| html_to_text(&body_html(1, *i, &[])).chars().count() > 2000)
            .count();
        assert!(long > 5, "{long}");
        let large = (0..2000)
            .flat_map(|i| attachments(1, i, Role::Received, 25))
            .filter(|a| a.size > 2_000_000)
            .count();
        assert!(large > 5, "{large}");
        let inline = (0..2000)
            .flat_map(|i| attachments(1, i, Role::Received, 25))
            .filter(|a| a.inline)
            .count();
        assert!(inline > 5);
    }

    #[test]
    fn attachment_bytes_have_the_announced_size() {
        for i in 0..200 {
            for (n, a) in attachments(3, i, Role::Received, 25).iter().enumerate() {
                if a.size < 300_000 {
                    assert_eq!(attachment_bytes(3, i, n as u16, a).len(), a.size);
                }
            }
        }
    }

    #[test]
    fn html_to_text_strips_tags_and_decodes_entities() {
        let html = "<html><head><style>p{}</style></head><body><p>A &amp; B &lt;x&gt;</p><p>second<br>line</p></body></html>";
        assert_eq!(html_to_text(html), "A & B <x>\r\nsecond\r\nline");
        // Inline images become `[cid:…]`, as in Exchange's text bodies.
        let html = "<p>See</p><p><img src=\"cid:image001.jpg@01DB\" alt=\"x\"></p>";
        assert_eq!(
            html_to_text(html),
            "See\r\n[cid:image001.jpg@01DB]\r\n".trim()
        );
    }

    #[test]
    fn preview_of_html_matches_preview_of_text() {
        for i in 0..50 {
            let html = body_html(9, i, &[]);
            assert_eq!(preview_html(&html), preview(&html_to_text(&html)), "{i}");
            assert_eq!(plan_preview(&plan(9, i)), preview_html(&html), "{i}");
        }
    }

    #[test]
    fn preview_is_at_most_255_characters() {
        let text = "ü ".repeat(400);
        let p = preview(&text);
        assert_eq!(p.chars().count(), 255);
        assert!(!p.contains("  "));
        assert_eq!(preview("  a \r\n b "), "a b");
    }
}
