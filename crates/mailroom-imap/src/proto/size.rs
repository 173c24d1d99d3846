//! Exact decoded sizes of MIME parts, from their encoded octets.
//!
//! An attachment's `size` is the number of bytes its content has once the
//! `Content-Transfer-Encoding` is undone (what a user would save to disk), never the
//! encoded size:
//!
//! - `base64`: 3 bytes per 4 alphabet characters; line breaks, padding and anything
//!   outside the alphabet do not count (as lenient decoders skip them);
//! - `quoted-printable`: `=XX` is one byte, a soft line break (`=` at the end of a line)
//!   none, the spaces and tabs before a line end none (RFC 2045 §6.7 (3)), a hard line
//!   break the bytes it has (CRLF two, a bare LF one), every other byte one;
//! - `7bit`, `8bit`, `binary` and anything unknown: the octets.
//!
//! [`DecodedLen`] counts in one pass over chunks of any size, so a part can be read in
//! pieces; [`base64_len_from_ends`] gets the same figure from the first and last bytes of
//! a regularly wrapped base64 part, without reading the rest.

/// A part's `Content-Transfer-Encoding`, as far as its decoded size is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEncoding {
    /// `base64`.
    Base64,
    /// `quoted-printable`.
    QuotedPrintable,
    /// `7bit`, `8bit`, `binary`, none, or an encoding no decoder knows: bytes as they are.
    Identity,
}

impl TransferEncoding {
    /// From the header value (case-insensitive, surrounding spaces ignored).
    pub fn from_header(value: Option<&str>) -> TransferEncoding {
        match value.map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("base64") => TransferEncoding::Base64,
            Some(v) if v.eq_ignore_ascii_case("quoted-printable") => {
                TransferEncoding::QuotedPrintable
            }
            _ => TransferEncoding::Identity,
        }
    }
}

/// The exact decoded length of a whole encoded part.
pub fn decoded_len(encoded: &[u8], encoding: TransferEncoding) -> u64 {
    let mut counter = DecodedLen::new(encoding);
    counter.feed(encoded);
    counter.finish()
}

/// Counts the decoded length of an encoded part fed in chunks (split anywhere).
#[derive(Debug, Clone)]
pub struct DecodedLen {
    encoding: TransferEncoding,
    /// Bytes counted so far (base64: alphabet characters).
    count: u64,
    /// Quoted-printable: spaces and tabs not yet known to be before a line end.
    pending_blanks: u64,
    /// Quoted-printable: what follows an `=`.
    qp: Qp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qp {
    Text,
    /// After `=`.
    Equals,
    /// After `=` and one hex digit.
    EqualsHex,
    /// After `=` and blanks: a soft line break padded with spaces, or a stray `=`.
    EqualsBlanks(u64),
    /// After a CR (a CRLF or a bare CR).
    Cr,
    /// After `=` (and blanks) and a CR.
    SoftCr,
}

impl DecodedLen {
    /// A counter for a part in this encoding.
    pub fn new(encoding: TransferEncoding) -> DecodedLen {
        DecodedLen {
            encoding,
            count: 0,
            pending_blanks: 0,
            qp: Qp::Text,
        }
    }

    /// Counts the next chunk of encoded bytes.
    pub fn feed(&mut self, chunk: &[u8]) {
        match self.encoding {
            TransferEncoding::Identity => self.count += chunk.len() as u64,
            TransferEncoding::Base64 => {
                self.count += chunk.iter().filter(|&&b| is_base64(b)).count() as u64;
            }
            TransferEncoding::QuotedPrintable => {
                for &b in chunk {
                    self.qp_byte(b);
                }
            }
        }
    }

    fn qp_byte(&mut self, b: u8) {
        let blank = b == b' ' || b == b'\t';
        match self.qp {
            Qp::Text => self.qp_text(b),
            Qp::Cr => {
                // CRLF is a hard line break of two bytes; a bare CR is one byte.
                self.count += 1;
                self.qp = Qp::Text;
                if b == b'\n' {
                    self.count += 1;
                } else {
                    self.qp_text(b);
                }
            }
            Qp::Equals if b.is_ascii_hexdigit() => self.qp = Qp::EqualsHex,
            Qp::Equals | Qp::EqualsBlanks(_) if blank => {
                let n = match self.qp {
                    Qp::EqualsBlanks(n) => n + 1,
                    _ => 1,
                };
                self.qp = Qp::EqualsBlanks(n);
            }
            Qp::Equals | Qp::EqualsBlanks(_) if b == b'\n' => self.qp = Qp::Text,
            Qp::Equals | Qp::EqualsBlanks(_) if b == b'\r' => self.qp = Qp::SoftCr,
            Qp::Equals | Qp::EqualsBlanks(_) => {
                // A stray `=` is kept as it is, like the blanks after it.
                let blanks = match self.qp {
                    Qp::EqualsBlanks(n) => n,
                    _ => 0,
                };
                self.count += 1;
                self.pending_blanks = blanks;
                self.qp = Qp::Text;
                self.qp_text(b);
            }
            Qp::EqualsHex if b.is_ascii_hexdigit() => {
                self.count += 1;
                self.qp = Qp::Text;
            }
            Qp::EqualsHex => {
                // `=X` then something else: kept as it is.
                self.count += 2;
                self.qp = Qp::Text;
                self.qp_text(b);
            }
            Qp::SoftCr => {
                self.qp = Qp::Text;
                if b != b'\n' {
                    // `=` CR then text: the CR ends the soft break all the same.
                    self.qp_text(b);
                }
            }
        }
    }

    fn qp_text(&mut self, b: u8) {
        match b {
            b' ' | b'\t' => self.pending_blanks += 1,
            b'\r' | b'\n' => {
                // Blanks before a line end are transport padding.
                self.pending_blanks = 0;
                if b == b'\r' {
                    self.qp = Qp::Cr;
                } else {
                    self.count += 1;
                }
            }
            b'=' => {
                self.count += std::mem::take(&mut self.pending_blanks);
                self.qp = Qp::Equals;
            }
            _ => {
                self.count += std::mem::take(&mut self.pending_blanks) + 1;
            }
        }
    }

    /// The decoded length of everything fed.
    pub fn finish(self) -> u64 {
        match self.encoding {
            TransferEncoding::Identity => self.count,
            // 4 characters → 3 bytes, 3 → 2, 2 → 1 (what the padding says).
            TransferEncoding::Base64 => self.count / 4 * 3 + (self.count % 4).saturating_sub(1),
            TransferEncoding::QuotedPrintable => {
                // Blanks at the very end are before the (implied) line end: dropped.
                self.count
                    + match self.qp {
                        Qp::Text | Qp::SoftCr => 0,
                        Qp::Cr => 1,
                        Qp::Equals => 1,
                        Qp::EqualsHex => 2,
                        Qp::EqualsBlanks(_) => 0,
                    }
            }
        }
    }
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// How many bytes of a base64 part's start [`base64_len_from_ends`] needs.
pub const BASE64_HEAD: u32 = 128;
/// How many bytes of a base64 part's end [`base64_len_from_ends`] needs.
pub const BASE64_TAIL: u32 = 256;

/// The exact decoded length of a base64 part of `octets` bytes from its first bytes
/// (`head`, at least [`BASE64_HEAD`] or the whole part) and its last bytes (`tail`, at
/// least [`BASE64_TAIL`] or the whole part), when it is wrapped like every encoder does:
/// all lines but the last of one length with one kind of line break.
///
/// `None` when the ends do not show such a wrapping (a line too long, a character
/// outside the alphabet, lines of different lengths at the end, or a total that no
/// regular wrapping gives): then the part has to be counted whole with [`DecodedLen`].
pub fn base64_len_from_ends(octets: u64, head: &[u8], tail: &[u8]) -> Option<u64> {
    if head.len() as u64 >= octets || tail.len() as u64 >= octets {
        let whole = if head.len() >= tail.len() { head } else { tail };
        return (whole.len() as u64 == octets)
            .then(|| decoded_len(whole, TransferEncoding::Base64));
    }
    // The first line: its length and its line break.
    let newline = head.iter().position(|&b| b == b'\n')?;
    let (width, brk) = if newline > 0 && head[newline - 1] == b'\r' {
        (newline - 1, 2)
    } else {
        (newline, 1)
    };
    if width == 0 || !head[..width].iter().all(|&b| is_base64(b)) {
        return None;
    }
    let line = (width + brk) as u64;
    // The end: trailing line breaks and blanks, then the last line.
    let body_end = tail.len()
        - tail
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    let trailing = (tail.len() - body_end) as u64;
    let body = &tail[..body_end];
    let last_start = body.iter().rposition(|&b| b == b'\n').map(|i| i + 1)?;
    let last = &body[last_start..];
    let padding = last.iter().rev().take_while(|&&b| b == b'=').count();
    let last_chars = last.len() - padding;
    if last.is_empty()
        || last.len() > width
        || padding > 2
        || !last[..last_chars].iter().all(|&b| is_base64(b))
    {
        return None;
    }
    // The whole lines the tail shows must be like the first one.
    let mut rest = &body[..last_start];
    while rest.len() >= line as usize {
        let (more, full) = rest.split_at(rest.len() - line as usize);
        if !is_full_line(full, width, brk) {
            return None;
        }
        rest = more;
    }
    let middle = octets.checked_sub(trailing + last.len() as u64)?;
    if middle % line != 0 {
        return None;
    }
    let chars = middle / line * width as u64 + last_chars as u64;
    Some(chars / 4 * 3 + (chars % 4).saturating_sub(1))
}

/// True when `line` is `width` alphabet characters and a `brk`-byte line break.
fn is_full_line(line: &[u8], width: usize, brk: usize) -> bool {
    let (chars, end) = line.split_at(width);
    let break_ok = if brk == 2 {
        end == b"\r\n"
    } else {
        end == b"\n"
    };
    break_ok && chars.iter().all(|&b| is_base64(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard base64 with padding, unwrapped.
    fn base64(data: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// Base64 wrapped at `width` with `brk`, optionally ending with a line break.
    fn wrap(data: &[u8], width: usize, brk: &str, final_break: bool) -> Vec<u8> {
        let flat = base64(data);
        let lines: Vec<&str> = flat
            .as_bytes()
            .chunks(width)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let mut out = lines.join(brk);
        if final_break {
            out.push_str(brk);
        }
        out.into_bytes()
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[track_caller]
    fn check_qp(encoded: &str, decoded: usize) {
        assert_eq!(
            decoded_len(encoded.as_bytes(), TransferEncoding::QuotedPrintable),
            decoded as u64,
            "{encoded:?}"
        );
        // Fed one byte at a time: the same.
        let mut c = DecodedLen::new(TransferEncoding::QuotedPrintable);
        for b in encoded.as_bytes() {
            c.feed(std::slice::from_ref(b));
        }
        assert_eq!(c.finish(), decoded as u64, "{encoded:?} byte by byte");
    }

    #[test]
    fn quoted_printable() {
        check_qp("", 0);
        check_qp("abc", 3);
        check_qp("caf=C3=A9", 5);
        check_qp("caf=c3=a9", 5);
        check_qp("soft=\r\nbreak", 9);
        check_qp("soft=\nbreak", 9);
        check_qp("soft= \t\r\nbreak", 9);
        check_qp("hard\r\nbreak", 11);
        check_qp("hard\nbreak", 10);
        check_qp("blanks  \r\nend", 11);
        check_qp("blanks at end  ", 13);
        check_qp("inner  blanks", 13);
        check_qp("a =3D b", 5);
        check_qp("stray = sign", 12);
        check_qp("stray =x", 8);
        check_qp("=Ax", 3);
        check_qp("end=", 4);
        check_qp("cr\ronly", 7);
        check_qp("=0D=0A", 2);
    }

    #[test]
    fn quoted_printable_of_binary_matches_a_real_encoder() {
        // Every byte value, encoded the way RFC 2045 says, counted back exactly.
        let raw = data(5000);
        let mut enc = String::new();
        let mut col = 0;
        for &b in &raw {
            let piece = if (33..=126).contains(&b) && b != b'=' {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            };
            if col + piece.len() > 75 {
                enc.push_str("=\r\n");
                col = 0;
            }
            col += piece.len();
            enc.push_str(&piece);
        }
        check_qp(&enc, raw.len());
    }

    #[test]
    fn base64_counts_and_ends() {
        for n in [0, 1, 2, 3, 4, 10, 57, 58, 1000, 200_000] {
            let raw = data(n);
            for (width, brk, final_break) in [
                (76, "\r\n", true),
                (76, "\r\n", false),
                (72, "\n", true),
                (64, "\r\n", false),
            ] {
                let enc = wrap(&raw, width, brk, final_break);
                let label = format!("{n} bytes, {width}/{brk:?}/{final_break}");
                assert_eq!(
                    decoded_len(&enc, TransferEncoding::Base64),
                    n as u64,
                    "{label}"
                );
                let head = &enc[..enc.len().min(BASE64_HEAD as usize)];
                let tail = &enc[enc.len().saturating_sub(BASE64_TAIL as usize)..];
                assert_eq!(
                    base64_len_from_ends(enc.len() as u64, head, tail),
                    Some(n as u64),
                    "{label}"
                );
            }
        }
    }

    #[test]
    fn base64_ends_refuse_irregular_wrapping() {
        let raw = data(2000);
        let mut enc = wrap(&raw, 76, "\r\n", true);
        // One line in the middle cut short: the total no longer fits a regular wrapping.
        enc.remove(800);
        let head = &enc[..BASE64_HEAD as usize];
        let tail = &enc[enc.len() - BASE64_TAIL as usize..];
        assert_eq!(base64_len_from_ends(enc.len() as u64, head, tail), None);
        // Not base64 at all.
        assert_eq!(base64_len_from_ends(1000, &[b'!'; 128], &[b'a'; 256]), None);
        // One long line, no break in the head.
        assert_eq!(base64_len_from_ends(1000, &[b'A'; 128], &[b'A'; 256]), None);
        // Different line lengths at the end.
        let mut odd = wrap(&raw, 76, "\r\n", true);
        let len = odd.len();
        odd.insert(len - 100, b'A');
        odd.remove(200);
        let tail = &odd[odd.len() - BASE64_TAIL as usize..];
        assert_eq!(
            base64_len_from_ends(odd.len() as u64, &odd[..128], tail),
            None
        );
    }

    #[test]
    fn identity_and_header_names() {
        assert_eq!(decoded_len(b"abc\r\n", TransferEncoding::Identity), 5);
        assert_eq!(
            TransferEncoding::from_header(Some(" BASE64 ")),
            TransferEncoding::Base64
        );
        assert_eq!(
            TransferEncoding::from_header(Some("Quoted-Printable")),
            TransferEncoding::QuotedPrintable
        );
        assert_eq!(
            TransferEncoding::from_header(Some("8bit")),
            TransferEncoding::Identity
        );
        assert_eq!(
            TransferEncoding::from_header(None),
            TransferEncoding::Identity
        );
    }
}
