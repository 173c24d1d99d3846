//! [`Guard`]: what comes from the server, checked before the IMAP parser sees it.
//!
//! - Every response (its lines and its literals) fits in a byte budget: a literal
//!   announced larger than what is left (`{2000000000}`) is refused at its
//!   announcement, before anything is allocated for it, and a line that never ends
//!   is refused when it passes the budget.
//! - Server text is data: the parser of IMAP4rev1 accepts only 7-bit text, while
//!   servers put raw UTF-8 in status texts (`a1 NO Mailbox doesn't exist: 日本語`).
//!   In the lines of status responses (`OK`, `NO`, `BAD`, `BYE`, `PREAUTH`) and
//!   continuation requests, bytes that are not 7-bit text, and `%`, are
//!   percent-encoded; [`decode_text`] gives the server's text back.
//!
//! Pure: bytes in, bytes out.

use std::fmt;

/// A response larger than the budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TooLarge {
    /// A literal announced larger than what is left of the budget.
    Literal {
        /// The announced size.
        announced: u64,
        /// The budget of a response.
        limit: u64,
    },
    /// Lines and literals past the budget.
    Response {
        /// The budget of a response.
        limit: u64,
    },
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TooLarge::Literal { announced, limit } => write!(
                f,
                "the server announced a literal of {announced} bytes, more than the limit of {limit} bytes per response"
            ),
            TooLarge::Response { limit } => write!(
                f,
                "the server sent a response larger than the limit of {limit} bytes"
            ),
        }
    }
}

impl std::error::Error for TooLarge {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a line of a response; `first` when it is the response's first line.
    Line { first: bool },
    /// In a literal: this many bytes left.
    Literal { left: u64 },
}

/// Checks the server's bytes response by response. Feed it what is read, in order.
#[derive(Debug, Clone)]
pub struct Guard {
    limit: u64,
    state: State,
    /// The current line (up to its CRLF), kept until it is complete.
    line: Vec<u8>,
    /// Bytes of the current response so far.
    used: u64,
}

impl Guard {
    /// A guard allowing `limit` bytes per response (at least 1 KiB).
    pub fn new(limit: u64) -> Guard {
        Guard {
            limit: limit.max(1024),
            state: State::Line { first: true },
            line: Vec::new(),
            used: 0,
        }
    }

    /// Checks `input` and appends what the parser may see to `out`. Bytes of an
    /// unfinished line are kept until its end. After an error the guard is spent:
    /// the connection must be dropped.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), TooLarge> {
        while !input.is_empty() {
            match self.state {
                State::Literal { left } => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::Line { first: false }
                    } else {
                        State::Literal { left }
                    };
                }
                State::Line { first } => {
                    let (piece, rest, ended) = match input.iter().position(|&b| b == b'\n') {
                        Some(i) => (&input[..=i], &input[i + 1..], true),
                        None => (input, &[][..], false),
                    };
                    input = rest;
                    self.used += piece.len() as u64;
                    if self.used > self.limit {
                        return Err(TooLarge::Response { limit: self.limit });
                    }
                    self.line.extend_from_slice(piece);
                    if ended {
                        self.end_line(first, out)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn end_line(&mut self, first: bool, out: &mut Vec<u8>) -> Result<(), TooLarge> {
        let line = std::mem::take(&mut self.line);
        if first && is_text_line(&line) {
            escape_text(&line, out);
        } else {
            out.extend_from_slice(&line);
        }
        match literal_announced(&line) {
            Some(announced) => {
                let left = self.limit - self.used;
                if announced > left {
                    return Err(TooLarge::Literal {
                        announced,
                        limit: self.limit,
                    });
                }
                self.used += announced;
                self.state = if announced == 0 {
                    State::Line { first: false }
                } else {
                    State::Literal { left: announced }
                };
            }
            None => {
                // The response ends here.
                self.used = 0;
                self.state = State::Line { first: true };
            }
        }
        self.line = line;
        self.line.clear();
        Ok(())
    }
}

/// The size of the literal a line announces at its end (`… {123}\r\n`, `{123+}`).
fn literal_announced(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // More digits than u64 holds is more than any budget.
    Some(
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(u64::MAX),
    )
}

/// A status response (`* OK`, `tag NO`, `* BYE` …) or a continuation request (`+`):
/// lines whose end is free text.
fn is_text_line(line: &[u8]) -> bool {
    if line.starts_with(b"+") {
        return true;
    }
    let mut words = line.splitn(3, |&b| b == b' ');
    let (Some(_tag), Some(word)) = (words.next(), words.next()) else {
        return false;
    };
    let word = word.strip_suffix(b"\r\n").unwrap_or(word);
    ["OK", "NO", "BAD", "BYE", "PREAUTH"]
        .iter()
        .any(|s| word.eq_ignore_ascii_case(s.as_bytes()))
}

/// Percent-encodes `%`, NUL and bytes over 0x7F (CR and LF are the line's end).
fn escape_text(line: &[u8], out: &mut Vec<u8>) {
    for &b in line {
        if b == b'%' || b == 0 || b >= 0x80 {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            out.push(b);
        }
    }
}

/// The server's text of a status response as it sent it (undoes the guard's
/// escapes; invalid UTF-8 is replaced).
pub fn decode_text(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes; what the parser sees, or the error.
    fn run(limit: u64, input: &[u8], step: usize) -> Result<Vec<u8>, TooLarge> {
        let mut g = Guard::new(limit);
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            g.feed(piece, &mut out)?;
        }
        Ok(out)
    }

    fn check(input: &[u8], expected: &[u8]) {
        for step in [1, 2, 7, input.len().max(1)] {
            assert_eq!(run(1 << 20, input, step).unwrap(), expected, "step {step}");
        }
    }

    #[test]
    fn ordinary_responses_pass_as_they_are() {
        check(b"* OK ready\r\n", b"* OK ready\r\n");
        check(
            b"* 1 FETCH (UID 5 BODY[] {5}\r\nab%\xc3\xa9)\r\na1 OK done\r\n",
            b"* 1 FETCH (UID 5 BODY[] {5}\r\nab%\xc3\xa9)\r\na1 OK done\r\n",
        );
        check(
            b"* LIST () \"/\" {3}\r\na\"b\r\n",
            b"* LIST () \"/\" {3}\r\na\"b\r\n",
        );
        // A literal ending with what looks like an announcement is data.
        check(
            b"* 1 FETCH (BODY[] {4}\r\n{9}\n FLAGS ())\r\n* OK x\r\n",
            b"* 1 FETCH (BODY[] {4}\r\n{9}\n FLAGS ())\r\n* OK x\r\n",
        );
        check(b"* 2 EXISTS\r\n", b"* 2 EXISTS\r\n");
    }

    #[test]
    fn status_text_is_escaped_and_decoded() {
        let line = "a1 NO Mailbox doesn't exist: 日本語 100%\r\n";
        let expected = "a1 NO Mailbox doesn't exist: %E6%97%A5%E6%9C%AC%E8%AA%9E 100%25\r\n";
        check(line.as_bytes(), expected.as_bytes());
        assert_eq!(
            decode_text("Mailbox doesn't exist: %E6%97%A5%E6%9C%AC%E8%AA%9E 100%25"),
            "Mailbox doesn't exist: 日本語 100%"
        );
        check(b"* bye \xff\r\n", b"* bye %FF\r\n");
        check("+ über\r\n".as_bytes(), b"+ %C3%BCber\r\n");
        // Not a status line: left to the parser.
        check(
            "* 1 FETCH (X é)\r\n".as_bytes(),
            "* 1 FETCH (X é)\r\n".as_bytes(),
        );
        assert_eq!(decode_text("50% %zz %4"), "50% %zz %4");
    }

    #[test]
    fn literals_over_the_budget_are_refused_when_announced() {
        let input = b"* 1 FETCH (BODY[] {2000000000}\r\n";
        for step in [1, 5, input.len()] {
            assert_eq!(
                run(64 << 20, input, step),
                Err(TooLarge::Literal {
                    announced: 2_000_000_000,
                    limit: 64 << 20
                })
            );
        }
        // A literal plus its lines count together, and the budget is per response.
        let mut input = b"* 1 FETCH (BODY[] {2000}\r\n".to_vec();
        input.extend(vec![b'x'; 2000]);
        input.extend_from_slice(b")\r\n");
        let twice = [input.clone(), input.clone()].concat();
        assert_eq!(run(4096, &twice, 100).unwrap(), twice);
        input.truncate(20);
        input.extend_from_slice(b"{4090}\r\n");
        assert!(matches!(
            run(4096, &input, 3),
            Err(TooLarge::Literal { .. })
        ));
        assert!(matches!(
            run(1024, b"* 1 FETCH {99999999999999999999999}\r\n", 4),
            Err(TooLarge::Literal { .. })
        ));
    }

    #[test]
    fn a_line_without_end_is_refused() {
        let input = vec![b'a'; 5000];
        assert_eq!(
            run(4096, &input, 1000),
            Err(TooLarge::Response { limit: 4096 })
        );
        let err = TooLarge::Literal {
            announced: 9,
            limit: 8,
        };
        assert_eq!(
            err.to_string(),
            "the server announced a literal of 9 bytes, more than the limit of 8 bytes per response"
        );
    }
}
