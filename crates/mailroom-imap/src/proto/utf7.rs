//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3): `Entwürfe` is `Entw&APw-rfe` on the wire.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Encodes a UTF-8 mailbox name in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut pending);
    out
}

fn flush(out: &mut String, pending: &mut Vec<u16>) {
    if pending.is_empty() {
        return;
    }
    let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
    out.push('&');
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let digits = chunk.len() + 1;
        for i in 0..digits {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out.push('-');
    pending.clear();
}

/// Why a wire name is not valid modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mailbox name {name:?} is not valid modified utf-7: {reason}")]
pub struct Utf7Error {
    name: String,
    reason: &'static str,
}

/// Decodes a modified UTF-7 wire name into UTF-8.
pub fn decode(wire: &str) -> Result<String, Utf7Error> {
    let err = |reason| Utf7Error {
        name: wire.to_owned(),
        reason,
    };
    let mut out = String::with_capacity(wire.len());
    let mut rest = wire;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after
            .find('-')
            .ok_or_else(|| err("unterminated '&' shift"))?;
        let encoded = &after[..end];
        if encoded.is_empty() {
            out.push('&');
        } else {
            let units = decode_base64_utf16(encoded).ok_or_else(|| err("bad base64 in shift"))?;
            let text = String::from_utf16(&units).map_err(|_| err("bad utf-16 in shift"))?;
            out.push_str(&text);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Decodes a wire name, keeping it as it is when it is not valid modified UTF-7 (some
/// servers send raw UTF-8 names).
pub fn decode_lossy(wire: &str) -> String {
    decode(wire).unwrap_or_else(|_| wire.to_owned())
}

fn decode_base64_utf16(encoded: &str) -> Option<Vec<u16>> {
    let mut bits = 0u32;
    let mut nbits = 0u32;
    let mut bytes = Vec::with_capacity(encoded.len());
    for b in encoded.bytes() {
        let value = ALPHABET.iter().position(|&a| a == b)? as u32;
        bits = (bits << 6) | value;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            bytes.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    // Left-over bits must be zero padding.
    if bits != 0 || bytes.len() % 2 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks(2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(utf8: &str, wire: &str) {
        assert_eq!(encode(utf8), wire, "encode {utf8}");
        assert_eq!(decode(wire).as_deref(), Ok(utf8), "decode {wire}");
    }

    #[test]
    fn rfc_and_common_names() {
        check("INBOX", "INBOX");
        check("Entwürfe", "Entw&APw-rfe");
        check("日本語", "&ZeVnLIqe-");
        check("A&B", "A&-B");
        check("&", "&-");
        check("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
        check("Gelöschte Elemente", "Gel&APY-schte Elemente");
        check("Émojis 📬", "&AMk-mojis &2D3c7A-");
        check("Ärger & Ö", "&AMQ-rger &- &ANY-");
        check("", "");
    }

    #[test]
    fn bad_wire_names() {
        assert!(decode("Entw&APw").is_err());
        assert!(decode("&*-").is_err());
        assert!(decode("&AP-").is_err(), "odd byte count");
        assert_eq!(decode_lossy("Entw&APw"), "Entw&APw");
        assert_eq!(decode_lossy("Müll"), "Müll", "raw utf-8 passes through");
    }
}
