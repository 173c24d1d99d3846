//! Records without whole messages: one FETCH of the page's headers and
//! BODYSTRUCTUREs, then, pipelined, one small FETCH per message for the first bytes of
//! its text part and the ends of its base64 attachments (see [`crate::proto::outline`]).

use std::collections::HashMap;

use async_imap::imap_proto::{AttributeValue, MessageSection, Response, SectionPath};
use mailroom_core::{Message, PREVIEW_MAX_CHARS};

use crate::proto::mime::{Completeness, TextPart, part_preview, record_and_text_part};
use crate::proto::outline::{Outline, outline};
use crate::proto::size::{BASE64_HEAD, BASE64_TAIL, TransferEncoding, base64_len_from_ends};
use crate::proto::structure::estimated_size;
use crate::session::{Conn, Failure, Fetched};

/// The FETCH items of the first round: flags, dates, size, structure, header, and the
/// first [`PREVIEW_BYTES`] of part 1, the text part of most mail (plain text, or
/// multipart/alternative and multipart/mixed starting with their text): then most
/// messages need no second round.
pub const OUTLINE_ITEMS: &str =
    "(UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE BODY.PEEK[HEADER] BODY.PEEK[1]<0.4096>)";

/// Bytes of the text part read first; more only when they do not give a full preview.
pub const PREVIEW_BYTES: u32 = 4096;

/// Commands sent before their answers are read (their text stays far below any socket
/// buffer, so neither side blocks).
const PIPELINE: usize = 64;

/// One message after the first round.
struct Sketch {
    fetched: Fetched,
    header: Vec<u8>,
    outline: Option<Outline>,
}

/// Partial body sections by (uid, part number, start).
type Pieces = HashMap<(u32, String, u32), Vec<u8>>;

impl Conn {
    /// Runs `command` (a FETCH of [`OUTLINE_ITEMS`]) and builds each message's record
    /// from its header, BODYSTRUCTURE and the few bytes it needs. Messages without a
    /// BODYSTRUCTURE are read whole (first `cap` bytes).
    pub async fn fetch_outlined(
        &mut self,
        command: &str,
        mailbox: &str,
        uid_validity: u32,
        cap: u32,
        min_uid_exclusive: u32,
    ) -> Result<Vec<Message>, Failure> {
        // Each message's record is built from its header and skeleton as its response
        // arrives, while the server is still sending the rest of the page.
        let mut pieces = Pieces::new();
        let mut records = Vec::new();
        // Messages that need the same items are asked together.
        let mut commands: HashMap<String, Vec<u32>> = HashMap::new();
        let mut whole = Vec::new();
        self.exec(command, |r| {
            collect_pieces(r, &mut pieces);
            if let Response::Fetch(seq, attrs) = r {
                let fetched = Fetched::from_response(*seq, attrs);
                let mut header = None;
                let mut structure = None;
                for a in attrs.iter() {
                    match a {
                        AttributeValue::BodySection {
                            section: Some(SectionPath::Full(MessageSection::Header)),
                            data,
                            ..
                        } => header = Some(data.as_ref().map(|d| d.to_vec()).unwrap_or_default()),
                        AttributeValue::BodyStructure(s) => structure = Some(outline(s)),
                        _ => {}
                    }
                }
                // Unsolicited flag updates carry no header: they are not answers.
                let Some(header) = header else { return };
                if fetched.uid.is_none_or(|u| u <= min_uid_exclusive) {
                    return;
                }
                let sketch = Sketch {
                    fetched,
                    header,
                    outline: structure,
                };
                match plan(sketch, &pieces) {
                    Planned::Whole(uid) => whole.extend(uid),
                    Planned::Record(record, items) => {
                        if !items.is_empty() {
                            commands
                                .entry(items)
                                .or_default()
                                .push(record.0.fetched.uid.unwrap_or_default());
                        }
                        records.push(*record);
                    }
                }
            }
        })
        .await?;

        let commands: Vec<(String, Vec<u32>)> = commands
            .into_iter()
            .map(|(items, uids)| {
                let set = crate::proto::uidset::UidSet::from_uids(uids.iter().copied());
                (format!("UID FETCH {set} (UID{items})"), uids)
            })
            .collect();
        let mut refused: HashMap<u32, String> = HashMap::new();
        for chunk in commands.chunks(PIPELINE) {
            let texts: Vec<String> = chunk.iter().map(|(c, _)| c.clone()).collect();
            let results = self
                .exec_many(&texts, |r| collect_pieces(r, &mut pieces))
                .await?;
            for ((_, uids), result) in chunk.iter().zip(results) {
                match result {
                    Ok(()) => {}
                    Err(Failure::No(text) | Failure::Bad(text)) => {
                        refused.extend(uids.iter().map(|&u| (u, text.clone())))
                    }
                    Err(other) => return Err(other),
                }
            }
        }

        let mut out = Vec::with_capacity(records.len() + whole.len());
        for (sketch, mut record, text, raw) in records {
            let uid = sketch.fetched.uid.unwrap_or_default();
            let outline = sketch.outline.as_ref().expect("kept above");
            if let Some(text) = text {
                record.body = self
                    .preview(uid, &text, &raw, outline, &mut pieces, cap)
                    .await?;
            }
            let mut estimates = Vec::new();
            for a in &mut record.attachments {
                let Some(part) = a.remote_id.as_deref().and_then(|n| outline.part(n)) else {
                    continue;
                };
                a.size = match part.encoding {
                    TransferEncoding::Identity => part.octets,
                    TransferEncoding::Base64 => {
                        let tail_start = part.octets.saturating_sub(u64::from(BASE64_TAIL)) as u32;
                        let head = pieces.get(&(uid, part.number.clone(), 0));
                        let tail = pieces.get(&(uid, part.number.clone(), tail_start));
                        match head
                            .zip(tail)
                            .and_then(|(h, t)| base64_len_from_ends(part.octets, h, t))
                        {
                            Some(len) => len,
                            None => match self
                                .count_part(uid, &part.number, part.octets, part.encoding, cap)
                                .await
                            {
                                Ok(len) => len,
                                Err(Failure::No(_) | Failure::Bad(_)) => {
                                    estimates.push(part.number.clone());
                                    estimated_size(part.octets, part.encoding)
                                }
                                Err(other) => return Err(other),
                            },
                        }
                    }
                    TransferEncoding::QuotedPrintable => {
                        match self
                            .count_part(uid, &part.number, part.octets, part.encoding, cap)
                            .await
                        {
                            Ok(len) => len,
                            Err(Failure::No(_) | Failure::Bad(_)) => {
                                estimates.push(part.number.clone());
                                estimated_size(part.octets, part.encoding)
                            }
                            Err(other) => return Err(other),
                        }
                    }
                };
            }
            if !estimates.is_empty() {
                record.warnings.push(format!(
                    "the sizes of attachments {} are estimated from their encoded size: the server did not return their bytes",
                    estimates.join(", ")
                ));
            }
            if let Some(text) = refused.get(&uid) {
                record.warnings.push(format!(
                    "the server did not return the parts of this message: {text}"
                ));
            }
            out.push(sketch.fetched.finish(record, mailbox, uid_validity));
        }
        if !whole.is_empty() {
            let set = crate::proto::uidset::UidSet::from_uids(whole).to_string();
            let mut read = self
                .fetch_messages(
                    &format!("UID FETCH {set} {}", crate::sync::record_items(cap)),
                    mailbox,
                    uid_validity,
                    cap,
                    min_uid_exclusive,
                )
                .await?;
            out.append(&mut read);
        }
        Ok(out)
    }

    /// The preview from the text part's first bytes; reads more of the part while what
    /// was read is cut before the preview is full (up to `cap` bytes).
    async fn preview(
        &mut self,
        uid: u32,
        text: &TextPart,
        raw: &[u8],
        outline: &Outline,
        pieces: &mut Pieces,
        cap: u32,
    ) -> Result<Option<String>, Failure> {
        let header = raw.get(text.header.clone()).unwrap_or_default();
        let octets = outline.part(&text.number).map_or(u64::MAX, |p| p.octets);
        let mut want = PREVIEW_BYTES;
        let mut bytes = pieces
            .remove(&(uid, text.number.clone(), 0))
            .unwrap_or_default();
        loop {
            let cut = (bytes.len() as u64) < octets && bytes.len() as u64 >= u64::from(want);
            if !cut {
                return Ok(part_preview(header, &bytes));
            }
            // Only whole lines: the last one may stop inside a character or a word.
            let whole_lines = bytes
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(&bytes[..0], |i| &bytes[..=i]);
            let preview = part_preview(header, whole_lines);
            if preview
                .as_ref()
                .is_some_and(|p| p.chars().count() >= PREVIEW_MAX_CHARS)
                || want >= cap
            {
                return Ok(preview);
            }
            want = want.saturating_mul(4).min(cap);
            let n = &text.number;
            let mut got = Pieces::new();
            let command = format!("UID FETCH {uid} (UID BODY.PEEK[{n}]<0.{want}>)");
            match self.exec(&command, |r| collect_pieces(r, &mut got)).await {
                Ok(_) => {}
                Err(Failure::No(_) | Failure::Bad(_)) => return Ok(preview),
                Err(other) => return Err(other),
            }
            bytes = got.remove(&(uid, n.clone(), 0)).unwrap_or_default();
        }
    }
}

/// A message after the first round: its record from header + skeleton, its text part
/// and the raw bytes they were read from.
type Draft = (Sketch, Message, Option<TextPart>, Vec<u8>);

/// What a message needs after the first round.
enum Planned {
    /// No BODYSTRUCTURE: read it whole.
    Whole(Option<u32>),
    /// Its draft record and the FETCH items it still needs (empty: none).
    Record(Box<Draft>, String),
}

/// The record of a message from its header and skeleton, and the partial sections it
/// still needs (the text part's first bytes unless `pieces` has them, the ends of
/// base64 attachments).
fn plan(sketch: Sketch, pieces: &Pieces) -> Planned {
    let Some(outline) = &sketch.outline else {
        return Planned::Whole(sketch.fetched.uid);
    };
    let uid = sketch.fetched.uid.unwrap_or_default();
    let mut raw = Vec::with_capacity(sketch.header.len() + outline.skeleton.len());
    raw.extend_from_slice(&sketch.header);
    raw.extend_from_slice(&outline.skeleton);
    let (record, text) = record_and_text_part(&raw, Completeness::Whole);
    let mut items = String::new();
    if let Some(t) = &text
        && !pieces.contains_key(&(uid, t.number.clone(), 0))
    {
        items.push_str(&format!(" BODY.PEEK[{}]<0.{}>", t.number, PREVIEW_BYTES));
    }
    for a in &record.attachments {
        let Some(part) = a.remote_id.as_deref().and_then(|n| outline.part(n)) else {
            continue;
        };
        if part.encoding != TransferEncoding::Base64 {
            continue;
        }
        let n = &part.number;
        if part.octets <= u64::from(BASE64_TAIL) {
            items.push_str(&format!(" BODY.PEEK[{n}]<0.{BASE64_TAIL}>"));
        } else {
            let tail = part.octets - u64::from(BASE64_TAIL);
            items.push_str(&format!(
                " BODY.PEEK[{n}]<0.{BASE64_HEAD}> BODY.PEEK[{n}]<{tail}.{BASE64_TAIL}>"
            ));
        }
    }
    Planned::Record(Box::new((sketch, record, text, raw)), items)
}

/// Keeps the partial body sections of a FETCH response, by UID.
fn collect_pieces(r: &Response<'_>, pieces: &mut Pieces) {
    let Response::Fetch(_, attrs) = r else {
        return;
    };
    let Some(uid) = attrs.iter().find_map(|a| match a {
        AttributeValue::Uid(u) => Some(*u),
        _ => None,
    }) else {
        return;
    };
    for (n, index, data) in crate::sizes::part_sections(attrs) {
        pieces.insert((uid, n, index), data.to_vec());
    }
}
