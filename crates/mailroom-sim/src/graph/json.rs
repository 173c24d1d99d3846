//! Graph JSON for messages, folders and attachments, written straight to
//! bytes (no intermediate `Value`), honouring `$select`.

use base64::Engine as _;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};

use super::odata::Ts;
use super::store::{Msg, Store};
use super::synth::{self, AttSpec, Content, Person};

/// Properties of a message, in the order Graph returns them.
pub(crate) const MESSAGE_FIELDS: &[&str] = &[
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "conversationIndex",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
];

/// Properties that need the generated content.
const CONTENT_FIELDS: &[&str] = &[
    "sentDateTime",
    "internetMessageId",
    "bodyPreview",
    "importance",
    "categories",
    "body",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
];

/// Properties of an attachment.
pub(crate) const ATTACHMENT_FIELDS: &[&str] = &[
    "id",
    "lastModifiedDateTime",
    "name",
    "contentType",
    "size",
    "isInline",
    "contentId",
    "contentLocation",
    "contentBytes",
];

/// How messages are rendered for one request.
#[derive(Clone, Debug)]
pub(crate) struct View {
    /// Selected fields (indexes into [`MESSAGE_FIELDS`]); all when `None`.
    pub(crate) select: Option<Vec<usize>>,
    pub(crate) immutable_ids: bool,
    pub(crate) text_body: bool,
    /// `$expand=attachments`, with the attachment fields to include.
    pub(crate) expand_attachments: Option<Option<Vec<usize>>>,
    /// Add `@odata.type` (delta answers do).
    pub(crate) with_type: bool,
}

impl View {
    pub(crate) fn new() -> View {
        View {
            select: None,
            immutable_ids: false,
            text_body: false,
            expand_attachments: None,
            with_type: false,
        }
    }

    fn wants(&self, field: &str) -> bool {
        match &self.select {
            None => true,
            Some(sel) => field == "id" || sel.iter().any(|&i| MESSAGE_FIELDS[i] == field),
        }
    }

    fn needs_content(&self) -> bool {
        CONTENT_FIELDS.iter().any(|f| self.wants(f))
    }
}

struct Addr<'a>(&'a Person);

impl Serialize for Addr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("emailAddress", &Inner(self.0))?;
        m.end()
    }
}

struct Inner<'a>(&'a Person);

impl Serialize for Inner<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("name", &self.0.name)?;
        m.serialize_entry("address", &self.0.address)?;
        m.end()
    }
}

struct Recipients<'a>(&'a [Person]);

impl Serialize for Recipients<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for p in self.0 {
            seq.serialize_element(&Addr(p))?;
        }
        seq.end()
    }
}

/// One message as Graph JSON.
pub(crate) struct MessageJson<'a> {
    pub(crate) store: &'a Store,
    pub(crate) msg: &'a Msg,
    pub(crate) view: &'a View,
}

impl Serialize for MessageJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (st, m, v) = (self.store, self.msg, self.view);
        let need = if v.wants("body") {
            synth::BodyNeed::Full
        } else if v.wants("bodyPreview") {
            synth::BodyNeed::Preview
        } else {
            synth::BodyNeed::None
        };
        let content: Option<Content> = v.needs_content().then(|| st.content_for(m, need));
        let atts: Option<Vec<AttSpec>> = (v.wants("hasAttachments")
            || v.expand_attachments.is_some())
        .then(|| st.attachments(m));
        let change_key = super::ids::change_key(m.key, m.version);
        let id = st.message_id(m, v.immutable_ids);
        let mut map = s.serialize_map(None)?;
        if v.with_type {
            map.serialize_entry("@odata.type", "#microsoft.graph.message")?;
        }
        map.serialize_entry("@odata.etag", &format!("W/\"{change_key}\""))?;
        map.serialize_entry("id", &id)?;
        let received = Ts(m.received_ms);
        for &field in &MESSAGE_FIELDS[1..] {
            if !v.wants(field) {
                continue;
            }
            match field {
                "createdDateTime" => map.serialize_entry(field, &received)?,
                "lastModifiedDateTime" => map.serialize_entry(field, &Ts(m.modified_ms))?,
                "changeKey" => map.serialize_entry(field, &change_key)?,
                "categories" => map.serialize_entry(
                    field,
                    &content
                        .as_ref()
                        .map(|c| c.categories.clone())
                        .unwrap_or_default(),
                )?,
                "receivedDateTime" => map.serialize_entry(field, &received)?,
                "sentDateTime" => {
                    let transit = content.as_ref().map_or(0, |c| c.transit_ms);
                    let sent = if m.role == synth::Role::Draft {
                        m.received_ms
                    } else {
                        m.received_ms - transit
                    };
                    map.serialize_entry(field, &Ts(sent))?;
                }
                "hasAttachments" => map.serialize_entry(
                    field,
                    &atts.as_ref().is_some_and(|a| a.iter().any(|a| !a.inline)),
                )?,
                "internetMessageId" => map.serialize_entry(
                    field,
                    &content.as_ref().map(|c| c.internet_message_id.as_str()),
                )?,
                "subject" => match &content {
                    Some(c) => map.serialize_entry(field, &c.subject)?,
                    None => map.serialize_entry(field, &st.subject(m))?,
                },
                "bodyPreview" => {
                    map.serialize_entry(
                        field,
                        content.as_ref().map_or("", |c| c.preview.as_str()),
                    )?;
                }
                "importance" => map
                    .serialize_entry(field, &content.as_ref().map_or("normal", |c| c.importance))?,
                "parentFolderId" => map.serialize_entry(field, st.folder_id_ref(m.folder))?,
                "conversationId" => {
                    let thread = content
                        .as_ref()
                        .map_or(synth::thread_of(m.ordinal), |c| c.thread);
                    map.serialize_entry(field, &super::ids::conversation_id(st.tag, thread))?;
                }
                "conversationIndex" => {
                    let mut b = [0u8; 22];
                    b[0] = 1;
                    b[1..9].copy_from_slice(&(m.ordinal / 3).to_be_bytes());
                    b[9..17].copy_from_slice(&m.received_ms.to_be_bytes());
                    map.serialize_entry(
                        field,
                        &base64::engine::general_purpose::STANDARD.encode(b),
                    )?;
                }
                "isDeliveryReceiptRequested" | "isReadReceiptRequested" => {
                    map.serialize_entry(field, &false)?
                }
                "isRead" => map.serialize_entry(field, &m.read)?,
                "isDraft" => map.serialize_entry(field, &(m.role == synth::Role::Draft))?,
                "webLink" => {
                    let enc = percent_encoding::utf8_percent_encode(
                        &id,
                        percent_encoding::NON_ALPHANUMERIC,
                    );
                    map.serialize_entry(field, &format!("https://outlook.office365.com/owa/?ItemID={enc}&exvsurl=1&viewmodel=ReadMessageItem"))?;
                }
                "inferenceClassification" => map.serialize_entry(field, "focused")?,
                "body" => {
                    let html = content.as_ref().map_or("", |c| c.body_html.as_str());
                    if v.text_body {
                        let text = synth::html_to_text(html);
                        map.serialize_entry(field, &Body("text", &text))?;
                    } else {
                        map.serialize_entry(field, &Body("html", html))?;
                    }
                }
                "sender" | "from" => {
                    // Drafts have no sender: the property is left out.
                    if let Some(p) = content.as_ref().and_then(|c| c.from.as_ref()) {
                        map.serialize_entry(field, &Addr(p))?;
                    }
                }
                "toRecipients" => map.serialize_entry(
                    field,
                    &Recipients(content.as_ref().map_or(&[][..], |c| &c.to)),
                )?,
                "ccRecipients" => map.serialize_entry(
                    field,
                    &Recipients(content.as_ref().map_or(&[][..], |c| &c.cc)),
                )?,
                "bccRecipients" | "replyTo" => map.serialize_entry(field, &Recipients(&[]))?,
                "flag" => {
                    map.serialize_entry(field, &serde_json::json!({"flagStatus": "notFlagged"}))?
                }
                _ => {}
            }
        }
        if let (Some(sel), Some(atts)) = (&v.expand_attachments, &atts) {
            let list: Vec<AttachmentJson<'_>> = atts
                .iter()
                .enumerate()
                .map(|(i, a)| AttachmentJson {
                    store: st,
                    msg: m,
                    index: i as u16,
                    spec: a,
                    select: sel.as_deref(),
                    with_context: false,
                })
                .collect();
            map.serialize_entry("attachments", &list)?;
        }
        map.end()
    }
}

struct Body<'a>(&'a str, &'a str);

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("contentType", self.0)?;
        m.serialize_entry("content", self.1)?;
        m.end()
    }
}

/// One file attachment as Graph JSON (`contentBytes` base64).
pub(crate) struct AttachmentJson<'a> {
    pub(crate) store: &'a Store,
    pub(crate) msg: &'a Msg,
    pub(crate) index: u16,
    pub(crate) spec: &'a AttSpec,
    pub(crate) select: Option<&'a [usize]>,
    pub(crate) with_context: bool,
}

impl Serialize for AttachmentJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let wants = |f: &str| {
            f == "id"
                || self
                    .select
                    .is_none_or(|sel| sel.iter().any(|&i| ATTACHMENT_FIELDS[i] == f))
        };
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("@odata.type", "#microsoft.graph.fileAttachment")?;
        if wants("contentBytes") {
            map.serialize_entry("@odata.mediaContentType", self.spec.content_type)?;
        }
        for &f in ATTACHMENT_FIELDS {
            if !wants(f) {
                continue;
            }
            match f {
                "id" => {
                    map.serialize_entry(f, &self.store.attachment_id(self.msg.key, self.index))?
                }
                "lastModifiedDateTime" => map.serialize_entry(f, &Ts(self.msg.received_ms))?,
                "name" => map.serialize_entry(f, &self.spec.name)?,
                "contentType" => map.serialize_entry(f, self.spec.content_type)?,
                "size" => map.serialize_entry(f, &self.spec.size)?,
                "isInline" => map.serialize_entry(f, &self.spec.inline)?,
                "contentId" => map.serialize_entry(f, &self.spec.content_id)?,
                "contentLocation" => map.serialize_entry(f, &Option::<String>::None)?,
                "contentBytes" => {
                    let bytes = self.store.attachment_bytes(self.msg, self.index, self.spec);
                    map.serialize_entry(
                        f,
                        &base64::engine::general_purpose::STANDARD.encode(bytes),
                    )?;
                }
                _ => {}
            }
        }
        let _ = self.with_context;
        map.end()
    }
}
