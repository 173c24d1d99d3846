//! Graph `message`, `attachment` and collection JSON mapped to the
//! [`Message`] record; delta pages with `@removed`.

use chrono::{DateTime, NaiveDateTime, Utc};
use mailroom_core::{Attachment, Change, EmailAddress, Message, PREVIEW_MAX_CHARS, preview};
use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::html::html_to_text;

/// The message properties the record needs (`$select`): no `bodyPreview` (255
/// characters only) but `body`, asked as text, cut to 2000 characters.
pub const MESSAGE_SELECT: &str = "id,internetMessageId,parentFolderId,subject,from,toRecipients,ccRecipients,receivedDateTime,sentDateTime,body,isRead,isDraft,hasAttachments,conversationId";

/// Attachment properties of the base `attachment` type (valid for file, item and
/// reference attachments alike).
pub const ATTACHMENT_SELECT: &str = "id,name,contentType,size,isInline";

/// `$expand` value for attachment metadata without content.
pub fn attachments_expand() -> String {
    format!("attachments($select={ATTACHMENT_SELECT})")
}

/// One page of a Graph collection.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    /// The items.
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    /// The next page of this listing or delta round.
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    /// The end of a delta round: where the next round starts.
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Recipient {
    #[serde(rename = "emailAddress")]
    email_address: Option<Address>,
}

#[derive(Debug, Deserialize)]
struct Address {
    name: Option<String>,
    address: Option<String>,
}

impl Recipient {
    fn into_address(self) -> Option<EmailAddress> {
        let a = self.email_address?;
        let name = a.name.filter(|n| !n.trim().is_empty());
        let address = a.address.filter(|n| !n.trim().is_empty());
        (name.is_some() || address.is_some()).then(|| EmailAddress::new(name, address))
    }
}

/// A Graph `itemBody` as the record keeps it: its preview, and whether it mentions
/// `cid:`. Graph sends the whole body (megabytes at times) and the record keeps 2,000
/// characters, so the content is read where serde_json has it (the JSON text itself,
/// or its unescaped copy in the parser's buffer) and never copied whole: owning it
/// was a tenth of the delta page parse.
#[derive(Debug, Default)]
struct ItemBody {
    /// `None` when the body has no `content`.
    preview: Option<String>,
    mentions_cid: bool,
}

impl ItemBody {
    fn of(content: &str, html: bool) -> ItemBody {
        let preview = if html {
            // Asked for text, got HTML: the service ignored the preference.
            preview(&html_to_text(content, PREVIEW_MAX_CHARS + 200))
        } else {
            preview(content)
        };
        ItemBody {
            preview: Some(preview),
            mentions_cid: mentions_cid(content),
        }
    }
}

impl<'de> Deserialize<'de> for ItemBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ItemBodyVisitor)
    }
}

struct ItemBodyVisitor;

impl<'de> Visitor<'de> for ItemBodyVisitor {
    type Value = ItemBody;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a Graph itemBody object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ItemBody, A::Error> {
        // `contentType` says how to read `content`; when it comes second, the content
        // is kept until it is known.
        let mut html = None;
        let mut body = ItemBody::default();
        let mut unread = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "contentType" => {
                    let t: Option<Cow<'de, str>> = map.next_value()?;
                    html = Some(t.is_some_and(|t| t.eq_ignore_ascii_case("html")));
                }
                "content" => match map.next_value_seed(Content(html))? {
                    Some(Ok(read)) => (body, unread) = (read, None),
                    Some(Err(kept)) => (body, unread) = (ItemBody::default(), Some(kept)),
                    None => (body, unread) = (ItemBody::default(), None),
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match unread {
            Some(content) => ItemBody::of(&content, html.unwrap_or(false)),
            None => body,
        })
    }
}

/// The `content` of an `itemBody`: read at once if its content type is known
/// (`Ok`), else kept (`Err`); `None` for `null`.
struct Content(Option<bool>);

impl<'de> DeserializeSeed<'de> for Content {
    type Value = Option<Result<ItemBody, String>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Content {
    type Value = Option<Result<ItemBody, String>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the content of a Graph itemBody, a string")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }

    fn visit_str<E: serde::de::Error>(self, content: &str) -> Result<Self::Value, E> {
        Ok(Some(match self.0 {
            Some(html) => Ok(ItemBody::of(content, html)),
            None => Err(content.to_owned()),
        }))
    }
}

/// Attachment metadata as Graph sends it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphAttachment {
    id: Option<String>,
    name: Option<String>,
    content_type: Option<String>,
    size: Option<u64>,
    is_inline: Option<bool>,
    content_id: Option<String>,
}

impl GraphAttachment {
    /// The record's attachment.
    pub fn into_attachment(self) -> Attachment {
        Attachment {
            remote_id: self.id,
            name: self.name,
            content_type: self.content_type,
            size: self.size.unwrap_or(0),
            is_inline: self.is_inline.unwrap_or(false),
            content_id: self
                .content_id
                .map(|c| c.trim_start_matches('<').trim_end_matches('>').to_owned())
                .filter(|c| !c.is_empty()),
        }
    }
}

/// A Graph message (or a delta item) with the properties of [`MESSAGE_SELECT`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphMessage {
    id: String,
    internet_message_id: Option<String>,
    parent_folder_id: Option<String>,
    subject: Option<String>,
    from: Option<Recipient>,
    sender: Option<Recipient>,
    to_recipients: Option<Vec<Recipient>>,
    cc_recipients: Option<Vec<Recipient>>,
    received_date_time: Option<String>,
    sent_date_time: Option<String>,
    body: Option<ItemBody>,
    body_preview: Option<String>,
    is_read: Option<bool>,
    is_draft: Option<bool>,
    has_attachments: Option<bool>,
    conversation_id: Option<String>,
    attachments: Option<Vec<GraphAttachment>>,
    #[serde(rename = "@removed")]
    removed: Option<IgnoredAny>,
}

/// True when `text` holds `cid:` or `CID:`. One vectorised pass (memchr) that stops at
/// each `:` (a body has few), instead of one substring search per spelling.
fn mentions_cid(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr_iter(b':', bytes).any(|i| i >= 3 && matches!(&bytes[i - 3..i], b"cid" | b"CID"))
}

fn date(field: &str, value: Option<String>, warnings: &mut Vec<String>) -> Option<DateTime<Utc>> {
    let value = value?;
    if let Ok(d) = DateTime::parse_from_rfc3339(&value) {
        return Some(d.with_timezone(&Utc));
    }
    // Without an offset Graph means UTC.
    if let Ok(d) = NaiveDateTime::parse_from_str(&value, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(d.and_utc());
    }
    warnings.push(format!("unreadable {field} {value:?}"));
    None
}

impl GraphMessage {
    /// The Graph id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// True for a delta item marked `@removed`.
    pub fn is_removed(&self) -> bool {
        self.removed.is_some()
    }

    /// True when the item comes without an attachment list but has attachments:
    /// `hasAttachments`, or a body that references an inline image (`cid:`), which
    /// Graph does not count in `hasAttachments` (a text body shows it as
    /// `[cid:image001.png@01DB…]`, an HTML one as `src="cid:…"`).
    pub fn wants_attachment_list(&self) -> bool {
        if self.is_removed() || self.attachments.is_some() {
            return false;
        }
        self.has_attachments == Some(true) || self.body.as_ref().is_some_and(|b| b.mentions_cid)
    }

    /// The record. A missing property is `None` (a draft has no `from`).
    pub fn into_message(self) -> Message {
        let mut warnings = Vec::new();
        let date_received = date("receivedDateTime", self.received_date_time, &mut warnings);
        let sent_at = date("sentDateTime", self.sent_date_time, &mut warnings);
        let body = match self.body.and_then(|b| b.preview) {
            Some(preview) => Some(preview),
            None => self.body_preview.map(|p| preview(&p)),
        };
        let attachments: Vec<Attachment> = self
            .attachments
            .unwrap_or_default()
            .into_iter()
            .map(GraphAttachment::into_attachment)
            .collect();
        let list = |r: Option<Vec<Recipient>>| -> Vec<EmailAddress> {
            r.unwrap_or_default()
                .into_iter()
                .filter_map(Recipient::into_address)
                .collect()
        };
        Message {
            remote_id: self.id,
            message_id: self.internet_message_id.filter(|m| !m.is_empty()),
            folder_id: self.parent_folder_id,
            subject: self.subject,
            sender: self
                .from
                .and_then(Recipient::into_address)
                .or_else(|| self.sender.and_then(Recipient::into_address)),
            to: list(self.to_recipients),
            cc: list(self.cc_recipients),
            date_received,
            sent_at,
            body,
            is_read: self.is_read.unwrap_or(false),
            is_draft: self.is_draft.unwrap_or(false),
            has_attachments: self.has_attachments.unwrap_or(false),
            attachment_count: u32::try_from(attachments.len()).unwrap_or(u32::MAX),
            attachments,
            conversation_id: self.conversation_id.filter(|c| !c.is_empty()),
            warnings,
        }
    }

    /// The delta change this item stands for.
    pub fn into_change(self) -> Change {
        if self.is_removed() {
            Change::Remove { remote_id: self.id }
        } else {
            Change::Upsert(self.into_message())
        }
    }
}

/// Parses one message.
pub fn parse_message(body: &[u8]) -> serde_json::Result<Message> {
    super::from_json::<GraphMessage>(body).map(GraphMessage::into_message)
}

/// Parses a page of messages: the records and the next page's link.
pub fn parse_message_page(body: &[u8]) -> serde_json::Result<(Vec<Message>, Option<String>)> {
    let page: Page<GraphMessage> = super::from_json(body)?;
    let messages = page
        .value
        .into_iter()
        .map(GraphMessage::into_message)
        .collect();
    Ok((messages, page.next_link))
}

/// A page of a delta round.
#[derive(Debug)]
pub struct DeltaPage {
    /// Changes in the order Graph sent them.
    pub changes: Vec<Change>,
    /// `@odata.nextLink`: the round goes on.
    pub next_link: Option<String>,
    /// `@odata.deltaLink`: the round is over.
    pub delta_link: Option<String>,
    /// Indices in `changes` of the upserts whose attachment list is still to be
    /// fetched ([`GraphMessage::wants_attachment_list`]).
    pub wants_attachments: Vec<usize>,
}

/// Parses a delta page: `@removed` items become [`Change::Remove`], others upserts.
pub fn parse_delta_page(body: &[u8]) -> serde_json::Result<DeltaPage> {
    let page: Page<GraphMessage> = super::from_json(body)?;
    let mut wants_attachments = Vec::new();
    let changes = page
        .value
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            if m.wants_attachment_list() {
                wants_attachments.push(i);
            }
            m.into_change()
        })
        .collect();
    Ok(DeltaPage {
        changes,
        next_link: page.next_link,
        delta_link: page.delta_link,
        wants_attachments,
    })
}

/// Parses a page of attachment metadata from a JSON value (a `$batch` item's body).
pub fn attachments_from_value(
    body: serde_json::Value,
) -> serde_json::Result<(Vec<Attachment>, Option<String>)> {
    serde_json::from_value(body).map(attachment_page)
}

/// Parses a page of attachment metadata.
pub fn parse_attachments(body: &[u8]) -> serde_json::Result<(Vec<Attachment>, Option<String>)> {
    super::from_json(body).map(attachment_page)
}

/// The records of a page of attachments, and the next page's link.
fn attachment_page(page: Page<GraphAttachment>) -> (Vec<Attachment>, Option<String>) {
    let list = page
        .value
        .into_iter()
        .map(GraphAttachment::into_attachment)
        .collect();
    (list, page.next_link)
}

/// The `id` of a JSON object (the answer to a move).
pub fn parse_id(body: &[u8]) -> serde_json::Result<String> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_slice::<Id>(body).map(|i| i.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = include_str!("../../fixtures/messages-page.json");
    const DRAFT: &str = include_str!("../../fixtures/message-draft.json");
    const DELTA: &str = include_str!("../../fixtures/delta-page-removed.json");
    const DELTA_NEXT: &str = include_str!("../../fixtures/delta-page-next.json");
    const ATTACHMENTS: &str = include_str!("../../fixtures/attachments.json");

    #[test]
    fn delta_pages_say_which_messages_need_their_attachment_list() {
        let page = r#"{"value": [
            {"id": "a", "hasAttachments": true, "body": {"contentType": "text", "content": "see attached"}},
            {"id": "b", "hasAttachments": false, "body": {"contentType": "text", "content": "logo [cid:image001.png@01DB1234]"}},
            {"id": "c", "hasAttachments": false, "body": {"contentType": "html", "content": "<img src=\"cid:x@y\">"}},
            {"id": "d", "hasAttachments": false, "body": {"contentType": "text", "content": "plain"}},
            {"id": "e", "@removed": {"reason": "deleted"}},
            {"id": "f", "hasAttachments": true, "attachments": []}
        ], "@odata.deltaLink": "https://graph.microsoft.com/v1.0/x?$deltatoken=1"}"#;
        let page = parse_delta_page(page.as_bytes()).unwrap();
        assert_eq!(page.wants_attachments, [0, 1, 2]);
    }

    /// Pages read through `from_json` (one UTF-8 check, then `from_str`) give the records
    /// `from_slice` gave: long non-ASCII text and HTML bodies, escapes, a character of
    /// several bytes at the 2,000-character cut.
    #[test]
    fn delta_pages_give_the_records_from_slice_gave() {
        let long = "Zürich café déjà vu. ".repeat(150);
        let at_cut = "a".repeat(1999) + "😀€ü";
        let html = format!(
            "<html><head><style>p{{}}</style></head><body><p>{long}</p><p>&amp; 😀</p></body></html>"
        );
        let page = serde_json::json!({
            "value": [
                {"id": "a", "subject": "Grüße \"quoted\"", "body": {"contentType": "text", "content": long}},
                {"id": "b", "body": {"contentType": "text", "content": at_cut}},
                {"id": "c", "body": {"contentType": "html", "content": html}},
                {"id": "d", "body": {"contentType": "text", "content": "line\r\n\r\n\r\nnext \u{1F600}\t[cid:x]"},
                 "receivedDateTime": "2025-01-20T11:30:00Z", "hasAttachments": false},
                {"id": "e", "@removed": {"reason": "deleted"}}
            ],
            "@odata.deltaLink": "https://graph.microsoft.com/v1.0/x?$deltatoken=1"
        });
        let body = serde_json::to_vec(&page).unwrap();
        let new = parse_delta_page(&body).unwrap();
        let old: Page<GraphMessage> = serde_json::from_slice(&body).unwrap();
        let old: Vec<Change> = old
            .value
            .into_iter()
            .map(GraphMessage::into_change)
            .collect();
        assert_eq!(new.changes, old);
        assert_eq!(new.wants_attachments, [3]);
        let Change::Upsert(b) = &new.changes[1] else {
            panic!("an upsert")
        };
        assert_eq!(b.body.as_deref(), Some(&at_cut[..1999 + 4]));
        let Change::Upsert(c) = &new.changes[2] else {
            panic!("an upsert")
        };
        assert_eq!(c.body.as_ref().unwrap().chars().count(), 2000);
    }

    /// The body is read as it streams by, whatever the order of its keys: HTML content
    /// before its `contentType` is still read as HTML; a `null` or missing content
    /// falls back to `bodyPreview`; a body that is not an object is an error.
    #[test]
    fn bodies_are_read_in_any_key_order() {
        let html = "<p>Lunch &amp; learn</p><img src=\"cid:logo@x\">";
        let page = serde_json::json!({"value": [
            {"id": "a", "body": {"content": html, "contentType": "HTML"}},
            {"id": "b", "body": {"contentType": "html", "content": html, "extra": [1, {"x": 2}]}},
            {"id": "c", "body": {"content": "a\r\n\r\n\r\nb  ", "contentType": null}},
            {"id": "d", "body": {"contentType": "text", "content": null}, "bodyPreview": "short  "},
            {"id": "e", "body": {"contentType": "text"}},
            {"id": "f", "body": null, "bodyPreview": "p"},
            {"id": "g", "body": {"content": "x", "content": "[cid:y]"}}
        ]});
        let page = parse_delta_page(&serde_json::to_vec(&page).unwrap()).unwrap();
        let bodies: Vec<Option<&str>> = page
            .changes
            .iter()
            .map(|c| match c {
                Change::Upsert(m) => m.body.as_deref(),
                _ => panic!("an upsert"),
            })
            .collect();
        assert_eq!(
            bodies,
            [
                Some("Lunch & learn"),
                Some("Lunch & learn"),
                Some("a\n\nb"),
                Some("short"),
                None,
                Some("p"),
                Some("[cid:y]"),
            ]
        );
        assert_eq!(page.wants_attachments, [0, 1, 6]);
        for bad in [
            r#"{"id": "a", "body": "text"}"#,
            r#"{"id": "a", "body": {"content": 3}}"#,
        ] {
            let error = parse_message(bad.as_bytes()).unwrap_err().to_string();
            assert!(error.contains("invalid type"), "{error}");
        }
    }

    #[test]
    fn cid_is_found_in_either_spelling_anywhere() {
        for (text, expected) in [
            ("cid:x", true),
            ("logo [CID:image001.png@01DB]", true),
            ("ends with cid:", true),
            ("<img src=\"cid:a\"> and http://x", true),
            ("Cid:x", false),
            ("ci d: x", false),
            ("id:x", false),
            (":cid", false),
            ("Zürich: cid", false),
            ("", false),
        ] {
            assert_eq!(mentions_cid(text), expected, "{text:?}");
            assert_eq!(
                mentions_cid(text),
                text.contains("cid:") || text.contains("CID:"),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_page_of_messages() {
        let (messages, next) = parse_message_page(LIST.as_bytes()).unwrap();
        assert_eq!(
            next.as_deref(),
            Some(
                "https://graph.microsoft.com/v1.0/me/mailFolders/inbox/messages?%24top=2&%24skip=2"
            )
        );
        assert_eq!(messages.len(), 2);
        let m = &messages[0];
        assert_eq!(m.remote_id, "AAMkAGI2THVSAAA=");
        assert_eq!(m.message_id.as_deref(), Some("<BY2PR1501MB1@contoso.com>"));
        assert_eq!(m.subject.as_deref(), Some("Quarterly numbers"));
        assert_eq!(
            m.sender,
            Some(EmailAddress::new(
                Some("Megan Bowen".into()),
                Some("MeganB@contoso.com".into())
            ))
        );
        assert_eq!(m.to.len(), 2);
        assert_eq!(m.cc.len(), 0);
        assert_eq!(
            m.date_received.unwrap().to_rfc3339(),
            "2025-01-20T11:30:00+00:00"
        );
        assert_eq!(m.sent_at.unwrap().to_rfc3339(), "2025-01-20T11:29:58+00:00");
        assert_eq!(m.body.as_deref(), Some("Hi all,\n\nThe numbers are in."));
        assert!(!m.is_read && !m.is_draft && m.has_attachments);
        assert_eq!(m.attachment_count, 1);
        assert_eq!(m.attachments[0].name.as_deref(), Some("q3.pdf"));
        assert_eq!(m.attachments[0].size, 52_018);
        assert_eq!(
            m.folder_id.as_deref(),
            Some("AQMkADAwATM0MDAAMS0yMDkyLWVjMzYtMDACLTAwCgAuAAAD")
        );
        assert_eq!(m.conversation_id.as_deref(), Some("AAQkAGI2TGuLAAA="));
        assert!(m.warnings.is_empty());
        // HTML although text was asked: turned into text.
        let m = &messages[1];
        assert_eq!(m.body.as_deref(), Some("Lunch & learn\nFriday at noon."));
        assert_eq!(m.cc[0].address.as_deref(), Some("AdeleV@contoso.com"));
        assert_eq!(m.cc[0].name, None);
        assert_eq!(m.attachment_count, 0);
    }

    #[test]
    fn a_draft_without_from() {
        let m = parse_message(DRAFT.as_bytes()).unwrap();
        assert!(m.is_draft);
        assert_eq!(m.sender, None);
        assert_eq!(m.to, Vec::new());
        assert_eq!(m.message_id, None);
        assert_eq!(m.body.as_deref(), Some(""));
        assert_eq!(
            m.date_received.unwrap().to_rfc3339(),
            "2025-01-21T08:00:00+00:00"
        );
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }

    #[test]
    fn bodies_are_cut_at_2000_characters() {
        let text = "ü".repeat(5000);
        let json = serde_json::json!({"id": "x", "body": {"contentType": "text", "content": text}});
        let m = parse_message(json.to_string().as_bytes()).unwrap();
        assert_eq!(m.body.unwrap().chars().count(), 2000);
        let json = serde_json::json!({"id": "x", "receivedDateTime": "yesterday"});
        let m = parse_message(json.to_string().as_bytes()).unwrap();
        assert_eq!(m.date_received, None);
        assert_eq!(m.warnings, ["unreadable receivedDateTime \"yesterday\""]);
    }

    #[test]
    fn delta_pages() {
        let page = parse_delta_page(DELTA.as_bytes()).unwrap();
        assert_eq!(page.next_link, None);
        assert!(page.delta_link.unwrap().contains("$deltatoken="));
        assert_eq!(page.changes.len(), 2);
        assert_eq!(
            page.changes[0],
            Change::Remove {
                remote_id: "AAMkADk0MGFkODE3LWE4MmYtNDRhOS0Dh_6qB-pB2Sa2pUum19a6YAAKnLuxoAAA="
                    .into()
            }
        );
        let Change::Upsert(m) = &page.changes[1] else {
            panic!("an upsert")
        };
        assert_eq!(m.subject.as_deref(), Some("Holiday hours update"));
        assert!(m.is_read);
        let page = parse_delta_page(DELTA_NEXT.as_bytes()).unwrap();
        assert!(page.next_link.unwrap().contains("$skiptoken="));
        assert_eq!(page.delta_link, None);
        assert_eq!(page.changes.len(), 2);
    }

    #[test]
    fn attachment_metadata() {
        let (list, next) = parse_attachments(ATTACHMENTS.as_bytes()).unwrap();
        assert_eq!(next, None);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].content_type.as_deref(), Some("image/png"));
        assert!(list[0].is_inline);
        assert_eq!(list[0].content_id.as_deref(), Some("image001.png@01D9"));
        assert!(!list[1].is_inline);
        assert_eq!(
            list[1].remote_id.as_deref(),
            Some("AAMkAGUzY5QKjAAABEgAQAMkpJI_X-LBFgvrv1PlZYd8=")
        );
    }

    #[test]
    fn move_answer_id() {
        assert_eq!(
            parse_id(br#"{"id":"AAMk=","subject":"x"}"#).unwrap(),
            "AAMk="
        );
        assert!(parse_id(b"{}").is_err());
    }
}
