//! Graph-looking ids: long, URL-safe base64 with `-`/`_` and sometimes `=`
//! padding, so clients must treat them as opaque and encode them in paths.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What an id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdKind {
    /// A mail folder (`AQMkAD…`).
    Folder(u32),
    /// A message as Outlook ids it: changes when it moves (`AAMkAG…`).
    Message { key: u32, incarnation: u32 },
    /// A message's immutable id (`AAkALg…`): never changes.
    Immutable(u32),
    /// An attachment of a message.
    Attachment { key: u32, index: u16 },
}

const FOLDER: [u8; 4] = [0x01, 0x03, 0x24, 0x00];
const MESSAGE: [u8; 4] = [0x00, 0x03, 0x24, 0x00];
const IMMUTABLE: [u8; 4] = [0x00, 0x09, 0x00, 0x2e];

const K_FOLDER: u8 = 0x61;
const K_MESSAGE: u8 = 0x66;
const K_IMMUTABLE: u8 = 0x07;
const K_ATTACHMENT: u8 = 0x69;

/// Encodes an id for the mailbox with this `tag`.
pub(crate) fn encode(tag: u64, kind: IdKind) -> String {
    let (prefix, k, a, b) = match kind {
        IdKind::Folder(f) => (FOLDER, K_FOLDER, f, 0),
        IdKind::Message { key, incarnation } => (MESSAGE, K_MESSAGE, key, incarnation),
        IdKind::Immutable(key) => (IMMUTABLE, K_IMMUTABLE, key, 0),
        IdKind::Attachment { key, index } => (MESSAGE, K_ATTACHMENT, key, u32::from(index)),
    };
    let mut bytes = Vec::with_capacity(112);
    bytes.extend_from_slice(&prefix);
    bytes.push(k);
    bytes.extend_from_slice(&tag.to_be_bytes());
    bytes.extend_from_slice(&a.to_be_bytes());
    bytes.extend_from_slice(&b.to_be_bytes());
    // Filler derived from the rest, so ids are long like Exchange's and
    // vary in padding (`=`, `==` or none).
    let len = 100
        + (a as usize % 3)
        + if matches!(kind, IdKind::Attachment { .. }) {
            30
        } else {
            0
        };
    let mut x = tag ^ (u64::from(a) << 32) ^ u64::from(b) ^ u64::from(k);
    while bytes.len() < len {
        x = x
            .wrapping_mul(0x5851_f42d_4c95_7f2d)
            .wrapping_add(0x1405_7b7e_f767_814f);
        bytes.push((x >> 56) as u8);
    }
    // A checksum byte so that edited ids are rejected as malformed.
    let sum = bytes
        .iter()
        .fold(0u8, |s, b| s.wrapping_mul(31).wrapping_add(*b));
    bytes.push(sum);
    ENGINE.encode(bytes)
}

/// Decodes an id; `None` if it is malformed. The tag is returned so the
/// caller can check the id belongs to its mailbox.
pub(crate) fn decode(id: &str) -> Option<(u64, IdKind)> {
    let bytes = ENGINE.decode(id.trim()).ok()?;
    if bytes.len() < 22 {
        return None;
    }
    let (body, sum) = bytes.split_at(bytes.len() - 1);
    let expect = body
        .iter()
        .fold(0u8, |s, b| s.wrapping_mul(31).wrapping_add(*b));
    if sum[0] != expect {
        return None;
    }
    let prefix: [u8; 4] = body[..4].try_into().ok()?;
    let tag = u64::from_be_bytes(body[5..13].try_into().ok()?);
    let a = u32::from_be_bytes(body[13..17].try_into().ok()?);
    let b = u32::from_be_bytes(body[17..21].try_into().ok()?);
    let kind = match (prefix, body[4]) {
        (FOLDER, K_FOLDER) => IdKind::Folder(a),
        (MESSAGE, K_MESSAGE) => IdKind::Message {
            key: a,
            incarnation: b,
        },
        (IMMUTABLE, K_IMMUTABLE) => IdKind::Immutable(a),
        (MESSAGE, K_ATTACHMENT) => IdKind::Attachment {
            key: a,
            index: u16::try_from(b).ok()?,
        },
        _ => return None,
    };
    Some((tag, kind))
}

/// A `changeKey` for a message version.
pub(crate) fn change_key(key: u32, version: u32) -> String {
    let mut bytes = vec![0x09, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00];
    bytes.extend_from_slice(&key.to_be_bytes());
    bytes.extend_from_slice(&version.to_be_bytes());
    bytes.extend_from_slice(&[0x00, 0x01]);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A conversation id (`AAQkAG…=`) for a thread number.
pub(crate) fn conversation_id(tag: u64, thread: u64) -> String {
    let mut bytes = vec![0x00, 0x04, 0x24, 0x00];
    bytes.extend_from_slice(&tag.to_be_bytes());
    bytes.extend_from_slice(&thread.to_be_bytes());
    bytes.extend_from_slice(&[0x10, 0x00]);
    bytes.extend_from_slice(&(thread.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes());
    ENGINE.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for kind in [
            IdKind::Folder(3),
            IdKind::Message {
                key: 7,
                incarnation: 2,
            },
            IdKind::Message {
                key: 100_000,
                incarnation: 0,
            },
            IdKind::Immutable(8),
            IdKind::Attachment { key: 9, index: 1 },
        ] {
            let id = encode(0xdead_beef, kind);
            assert_eq!(decode(&id), Some((0xdead_beef, kind)), "{id}");
            assert!(id.len() > 130, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b))
            );
        }
    }

    #[test]
    fn ids_look_like_exchange_ids() {
        assert!(
            encode(
                1,
                IdKind::Message {
                    key: 1,
                    incarnation: 0
                }
            )
            .starts_with("AAMkAG")
        );
        assert!(encode(1, IdKind::Immutable(1)).starts_with("AAkALg"));
        assert!(encode(1, IdKind::Folder(1)).starts_with("AQMkA"));
        let padded = (0..3)
            .map(|k| {
                encode(
                    1,
                    IdKind::Message {
                        key: k,
                        incarnation: 0,
                    },
                )
            })
            .filter(|id| id.ends_with('='))
            .count();
        assert!(padded >= 1);
    }

    #[test]
    fn random_ids_never_panic() {
        let mut r = crate::rng::Rng::new(5);
        for _ in 0..20_000 {
            let len = r.index(200);
            let _ = decode(&r.token(len));
        }
    }

    #[test]
    fn edited_ids_are_malformed() {
        let id = encode(
            5,
            IdKind::Message {
                key: 1,
                incarnation: 0,
            },
        );
        let mut edited = id.clone().into_bytes();
        edited[40] = if edited[40] == b'A' { b'B' } else { b'A' };
        assert_eq!(decode(std::str::from_utf8(&edited).unwrap()), None);
        assert_eq!(decode("inbox"), None);
        assert_eq!(decode(""), None);
        // Without padding still decodes (clients sometimes strip it).
        assert!(decode(id.trim_end_matches('=')).is_some());
    }
}
