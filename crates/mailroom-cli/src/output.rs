//! Plain-text tables, times and JSON on stdout.

use std::io::Write as _;

use anyhow::Result;
use chrono::{DateTime, Local, Utc};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// A table printed with aligned columns.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| (*s).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints the table on stdout.
    pub fn print(&self) -> Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(width(cell));
                }
            }
        }
        let mut out = std::io::stdout().lock();
        let line = |cells: &[String], out: &mut std::io::StdoutLock<'_>| -> std::io::Result<()> {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let last = i + 1 == cells.len();
                text.push_str(cell);
                if !last {
                    let pad = widths
                        .get(i)
                        .copied()
                        .unwrap_or(0)
                        .saturating_sub(width(cell));
                    text.push_str(&" ".repeat(pad + 2));
                }
            }
            writeln!(out, "{}", text.trim_end())
        };
        line(&self.header, &mut out)?;
        for row in &self.rows {
            line(row, &mut out)?;
        }
        Ok(())
    }
}

/// Columns on a terminal (CJK characters take two).
fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// Cuts text to `max` terminal columns (with an ellipsis), on one line.
pub fn clip(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if width(&one_line) <= max {
        return one_line;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in one_line.chars() {
        let w = UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// A time for people: local, to the minute.
pub fn time(t: DateTime<Utc>) -> String {
    t.with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string()
}

/// An optional time, `-` when absent.
pub fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".into(), time)
}

/// "3 min ago", "in 2 h".
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    let (abs, future) = (secs.unsigned_abs(), secs > 0);
    let text = if abs < 60 {
        format!("{abs} s")
    } else if abs < 3600 {
        format!("{} min", abs / 60)
    } else if abs < 48 * 3600 {
        format!("{} h", abs / 3600)
    } else {
        format!("{} d", abs / 86_400)
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// A duration as `1.2s` / `3m05s`.
pub fn duration(d: std::time::Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// Prints a JSON value on stdout, pretty.
pub fn json(value: &serde_json::Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// RFC 3339 in UTC for JSON, or null.
pub fn json_time(t: Option<DateTime<Utc>>) -> serde_json::Value {
    t.map_or(serde_json::Value::Null, |t| {
        serde_json::Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    })
}

/// The error and its causes in plain words, each said once (what the CLI prints
/// instead of anyhow's `{:#}`).
///
/// Causes often repeat their source in their own text ("cannot record sync: database
/// is locked" over "database is locked"), and the layers of a database driver repeat
/// the same cause under different prefixes: a cause already said is skipped, and of
/// the others only the parts (between ": ") not said yet are added.
pub fn error_text(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        for part in text.split(": ").filter(|p| !p.trim().is_empty()) {
            if part.len() >= 8 && message.contains(part) {
                continue;
            }
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(part);
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::error_text as describe;

    #[derive(Debug)]
    struct Chain(&'static str, Option<Box<Chain>>);

    impl std::fmt::Display for Chain {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Chain {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|c| c as _)
        }
    }

    fn check(chain: Chain, expected: &str) {
        assert_eq!(describe(&anyhow::Error::new(chain)), expected);
    }

    #[test]
    fn every_cause_is_said_once() {
        let locked = "error returned from database: (code: 5) database is locked";
        check(
            Chain(
                "cannot record sync of account 1: Execution Error: error returned from database: (code: 5) database is locked",
                Some(Box::new(Chain(
                    "Execution Error: error returned from database: (code: 5) database is locked",
                    Some(Box::new(Chain(
                        locked,
                        Some(Box::new(Chain("(code: 5) database is locked", None))),
                    ))),
                ))),
            ),
            "cannot record sync of account 1: Execution Error: error returned from database: (code: 5) database is locked",
        );
        // A source not quoted by its parent is added; a repeated one is not.
        check(
            Chain(
                "cannot sync alice@example.com",
                Some(Box::new(Chain(
                    "cannot open the database: database is locked",
                    Some(Box::new(Chain("database is locked", None))),
                ))),
            ),
            "cannot sync alice@example.com: cannot open the database: database is locked",
        );
        check(Chain("plain", None), "plain");
        // The driver's prefix repeated by a cause that adds one: said once.
        check(
            Chain(
                "cannot store folders: Execution Error: (code: 5) database is locked",
                Some(Box::new(Chain(
                    "pool: Execution Error: (code: 5) database is locked — retry later",
                    None,
                ))),
            ),
            "cannot store folders: Execution Error: (code: 5) database is locked: pool: (code: 5) database is locked — retry later",
        );
    }
}
