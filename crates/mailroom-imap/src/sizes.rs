//! Exact decoded attachment sizes for messages over the byte cap, whose parts are known
//! only from BODYSTRUCTURE (octets and transfer encoding).
//!
//! - `7bit`, `8bit`, `binary`: the octets are the size; nothing is read.
//! - base64: the first [`BASE64_HEAD`] and last [`BASE64_TAIL`] bytes of every base64
//!   part, in one FETCH per message, give the size when the part is wrapped regularly
//!   ([`base64_len_from_ends`]) — every encoder we know of does so.
//! - quoted-printable, and base64 that is not wrapped regularly: the part is read in
//!   pieces of at most the byte cap and counted ([`DecodedLen`]), so memory stays
//!   bounded by the cap.
//!
//! Only when the server refuses to return a part's bytes (NO/BAD) does its size stay the
//! estimate of [`crate::proto::structure::estimated_size`]; the record then says so in a
//! warning.

use std::collections::HashMap;

use async_imap::imap_proto::{AttributeValue, Response, SectionPath};

use crate::proto::size::{
    BASE64_HEAD, BASE64_TAIL, DecodedLen, TransferEncoding, base64_len_from_ends,
};
use crate::proto::structure::StructurePart;
use crate::session::{Conn, Failure};

/// The bytes of partial `BODY[n]<start>` answers for one message, by part and start.
type Pieces = HashMap<(String, u32), Vec<u8>>;

impl Conn {
    /// Makes the sizes of `parts` (the attachments of message `uid`, from its
    /// BODYSTRUCTURE) exact, reading at most `chunk` bytes of a part at a time. Returns
    /// the part numbers whose size stays an estimate because the server would not
    /// return their bytes.
    pub async fn exact_sizes(
        &mut self,
        uid: u32,
        parts: &mut [StructurePart],
        chunk: u32,
    ) -> Result<Vec<String>, Failure> {
        let mut to_count = Vec::new();
        let mut estimates = Vec::new();
        let base64: Vec<usize> = (0..parts.len())
            .filter(|&i| parts[i].encoding == TransferEncoding::Base64)
            .collect();
        if !base64.is_empty() {
            let mut items = String::new();
            for &i in &base64 {
                let (n, octets) = (number(&parts[i]), parts[i].octets);
                if octets <= u64::from(BASE64_TAIL) {
                    items.push_str(&format!(" BODY.PEEK[{n}]<0.{BASE64_TAIL}>"));
                } else {
                    let tail = octets - u64::from(BASE64_TAIL);
                    items.push_str(&format!(
                        " BODY.PEEK[{n}]<0.{BASE64_HEAD}> BODY.PEEK[{n}]<{tail}.{BASE64_TAIL}>"
                    ));
                }
            }
            match self.pieces(uid, &items).await {
                Ok(pieces) => {
                    for &i in &base64 {
                        let (n, octets) = (number(&parts[i]), parts[i].octets);
                        let tail_start = octets.saturating_sub(u64::from(BASE64_TAIL)) as u32;
                        let head = pieces.get(&(n.clone(), 0));
                        let tail = pieces.get(&(n, tail_start));
                        match (head, tail) {
                            (Some(head), Some(tail)) => {
                                match base64_len_from_ends(octets, head, tail) {
                                    Some(len) => parts[i].attachment.size = len,
                                    None => to_count.push(i),
                                }
                            }
                            _ => to_count.push(i),
                        }
                    }
                }
                Err(Failure::No(_) | Failure::Bad(_)) => {
                    estimates.extend(base64.iter().map(|&i| number(&parts[i])));
                }
                Err(other) => return Err(other),
            }
        }
        to_count.extend(
            (0..parts.len()).filter(|&i| parts[i].encoding == TransferEncoding::QuotedPrintable),
        );
        for i in to_count {
            let n = number(&parts[i]);
            match self
                .count_part(uid, &n, parts[i].octets, parts[i].encoding, chunk)
                .await
            {
                Ok(len) => parts[i].attachment.size = len,
                Err(Failure::No(_) | Failure::Bad(_)) => estimates.push(n),
                Err(other) => return Err(other),
            }
        }
        Ok(estimates)
    }

    /// Reads part `n` of `uid` in pieces of `chunk` bytes and counts its decoded size.
    pub(crate) async fn count_part(
        &mut self,
        uid: u32,
        n: &str,
        octets: u64,
        encoding: TransferEncoding,
        chunk: u32,
    ) -> Result<u64, Failure> {
        let chunk = chunk.max(4096);
        let mut counter = DecodedLen::new(encoding);
        let mut offset: u64 = 0;
        // The server's octets bound the loop; one more piece tolerates an off-by-a-few.
        let max_pieces = octets / u64::from(chunk) + 2;
        for _ in 0..max_pieces {
            let Ok(start) = u32::try_from(offset) else {
                break;
            };
            let pieces = self
                .pieces(uid, &format!(" BODY.PEEK[{n}]<{start}.{chunk}>"))
                .await?;
            let Some(piece) = pieces.get(&(n.to_owned(), start)) else {
                break;
            };
            counter.feed(piece);
            offset += piece.len() as u64;
            if piece.len() < chunk as usize {
                break;
            }
        }
        Ok(counter.finish())
    }

    /// `UID FETCH uid (UID items)` → the partial body sections of that message.
    async fn pieces(&mut self, uid: u32, items: &str) -> Result<Pieces, Failure> {
        let mut pieces = Pieces::new();
        self.exec(&format!("UID FETCH {uid} (UID{items})"), |r| {
            let Response::Fetch(_, attrs) = r else {
                return;
            };
            // Unsolicited FETCHes (flag updates of other messages) are not answers.
            if !attrs
                .iter()
                .any(|a| matches!(a, AttributeValue::Uid(u) if *u == uid))
            {
                return;
            }
            for (n, index, data) in part_sections(attrs) {
                pieces.insert((n, index), data.to_vec());
            }
        })
        .await?;
        Ok(pieces)
    }
}

/// The partial body sections (`BODY[n]<i>`) of a FETCH response's attributes: part
/// number as text (`1.2`), start offset, bytes.
pub(crate) fn part_sections<'a>(
    attrs: &'a [AttributeValue<'_>],
) -> impl Iterator<Item = (String, u32, &'a [u8])> {
    attrs.iter().filter_map(|a| match a {
        AttributeValue::BodySection {
            section: Some(SectionPath::Part(path, None)),
            index,
            data: Some(data),
        } => {
            let n = path
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(".");
            Some((n, index.unwrap_or(0), data.as_ref()))
        }
        _ => None,
    })
}

fn number(part: &StructurePart) -> String {
    part.attachment.remote_id.clone().unwrap_or_default()
}
