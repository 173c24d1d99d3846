//! Attachment lists for the messages of a delta page.
//!
//! Graph's message delta carries `hasAttachments` but never the list (it does not take
//! `$expand`), and `hasAttachments` leaves out inline attachments: a message whose only
//! attachments are images referenced from its body with `cid:` says `false`. So after
//! each page, the messages that have attachments (`hasAttachments: true`, or a body
//! mentioning `cid:`, which a text body shows as `[cid:image001.png@01DB…]`) get
//! `GET /me/messages/{id}/attachments?$select=id,name,contentType,size,isInline`
//! through `$batch` — 20 per batch, within the mailbox's request slots, throttled items
//! sent again — and the page goes back to the caller with the lists, so the store
//! writes them in the page's transaction. Messages without attachments cost nothing.

use mailroom_core::{Change, ConnectorError, ErrorKind};

use crate::connector::{GraphConnector, PREFER_IMMUTABLE, short};
use crate::wire::batch::BatchCall;
use crate::wire::message::{ATTACHMENT_SELECT, attachments_from_value, parse_attachments};

impl GraphConnector {
    /// Fills the attachment lists of `changes[i]` for every `i` in `wanted` (upserts
    /// only). A message gone since the page was read keeps an empty list and gets a
    /// warning; any other failure fails the page (the caller retries it).
    pub(crate) async fn fill_attachment_lists(
        &self,
        changes: &mut [Change],
        wanted: &[usize],
        doing: &str,
    ) -> Result<(), ConnectorError> {
        if !self.inner.attachment_lists || wanted.is_empty() {
            return Ok(());
        }
        let targets: Vec<usize> = wanted
            .iter()
            .copied()
            .filter(|&i| matches!(changes.get(i), Some(Change::Upsert(_))))
            .collect();
        let ids: Vec<String> = targets
            .iter()
            .map(|&i| match &changes[i] {
                Change::Upsert(m) => m.remote_id.clone(),
                Change::Remove { remote_id } => remote_id.clone(),
                _ => String::new(),
            })
            .collect();
        let prefer = self
            .inner
            .immutable_ids
            .then(|| PREFER_IMMUTABLE.to_owned());
        let outcomes = self
            .batch_each(
                &ids,
                // `batch_each` hands over the id already encoded as one path segment.
                |seg| BatchCall {
                    method: "GET",
                    url: format!("/me/messages/{seg}/attachments?$select={ATTACHMENT_SELECT}"),
                    body: None,
                    prefer: prefer.clone(),
                },
                |id| format!("cannot list attachments of message {}", short(id)),
                |item| {
                    // The item's JSON text, parsed straight into the records.
                    let parsed = match item.body_json() {
                        Some(json) => parse_attachments(json.as_bytes()),
                        None => attachments_from_value(serde_json::Value::Null),
                    };
                    parsed.map_err(|e| {
                        ConnectorError::new(
                            ErrorKind::Protocol,
                            format!("unexpected answer from graph ({e})"),
                        )
                    })
                },
            )
            .await
            .map_err(|e| e.context(doing))?;
        for (&i, (id, outcome)) in targets.iter().zip(ids.iter().zip(outcomes)) {
            let list = match outcome {
                Ok((mut list, next)) => {
                    if next.is_some() {
                        // More than one page of attachments: list them all directly.
                        list = self.attachments(id).await.map_err(|e| e.context(doing))?;
                    }
                    list
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    if let Change::Upsert(m) = &mut changes[i] {
                        m.warnings.push(e.message().to_owned());
                    }
                    continue;
                }
                Err(e) => return Err(e.context(doing)),
            };
            if let Change::Upsert(m) = &mut changes[i] {
                m.attachment_count = u32::try_from(list.len()).unwrap_or(u32::MAX);
                m.attachments = list;
            }
        }
        Ok(())
    }
}
