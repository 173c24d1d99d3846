//! The incremental-sync cursor: `imap1;uv=UIDVALIDITY;ms=HIGHESTMODSEQ;last=UID[;known=SET]`.

use super::uidset::UidSet;

const VERSION: &str = "imap1";

/// Where the sync of one mailbox stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    /// The mailbox's UIDVALIDITY when the cursor was made.
    pub uid_validity: u32,
    /// HIGHESTMODSEQ up to which flag changes and expunges were delivered (0: unknown or
    /// no CONDSTORE).
    pub highest_modseq: u64,
    /// The highest UID delivered; everything above it is new.
    pub last_uid: u32,
    /// The UIDs delivered and not yet removed, when the server lacks QRESYNC (to diff
    /// against `UID SEARCH ALL`); `None` when expunges come as `VANISHED`.
    pub known: Option<UidSet>,
}

impl Cursor {
    /// The stored form.
    pub fn encode(&self) -> String {
        let mut s = format!(
            "{VERSION};uv={};ms={};last={}",
            self.uid_validity, self.highest_modseq, self.last_uid
        );
        if let Some(known) = &self.known {
            s.push_str(";known=");
            s.push_str(&known.to_string());
        }
        s
    }

    /// Reads a stored cursor; `None` when it is not one of ours.
    pub fn decode(s: &str) -> Option<Cursor> {
        let mut parts = s.split(';');
        if parts.next()? != VERSION {
            return None;
        }
        let (mut uv, mut ms, mut last, mut known) = (None, None, None, None);
        for part in parts {
            let (key, value) = part.split_once('=')?;
            match key {
                "uv" => uv = Some(value.parse().ok()?),
                "ms" => ms = Some(value.parse().ok()?),
                "last" => last = Some(value.parse().ok()?),
                "known" => known = Some(UidSet::parse(value)?),
                _ => return None,
            }
        }
        Some(Cursor {
            uid_validity: uv?,
            highest_modseq: ms?,
            last_uid: last?,
            known,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cursor: Cursor, text: &str) {
        assert_eq!(cursor.encode(), text);
        assert_eq!(Cursor::decode(text), Some(cursor));
    }

    #[test]
    fn round_trips() {
        check(
            Cursor {
                uid_validity: 1_700_000_000,
                highest_modseq: 42,
                last_uid: 9000,
                known: Some(UidSet::parse("1:500,502:9000").unwrap()),
            },
            "imap1;uv=1700000000;ms=42;last=9000;known=1:500,502:9000",
        );
        check(
            Cursor {
                uid_validity: 7,
                highest_modseq: 0,
                last_uid: 0,
                known: None,
            },
            "imap1;uv=7;ms=0;last=0",
        );
        check(
            Cursor {
                uid_validity: 7,
                highest_modseq: 0,
                last_uid: 0,
                known: Some(UidSet::new()),
            },
            "imap1;uv=7;ms=0;last=0;known=",
        );
    }

    #[test]
    fn foreign_cursors_are_refused() {
        for bad in [
            "",
            "https://graph.microsoft.com/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken=x",
            "imap1;uv=1;ms=2",
            "imap1;uv=x;ms=2;last=3",
            "imap1;uv=1;ms=2;last=3;known=0:4",
            "imap1;uv=1;ms=2;last=3;extra=1",
            "imap2;uv=1;ms=2;last=3",
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
