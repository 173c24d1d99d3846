//! IMAP message ids: `{mailbox}:{UIDVALIDITY}:{UID}`, parsed from the right because
//! mailbox names may contain `:`.

use std::fmt;

/// A message's place on an IMAP server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteId {
    /// The mailbox name, decoded UTF-8.
    pub mailbox: String,
    /// The mailbox's UIDVALIDITY when the id was made.
    pub uid_validity: u32,
    /// The message UID.
    pub uid: u32,
}

impl RemoteId {
    /// A new id.
    pub fn new(mailbox: impl Into<String>, uid_validity: u32, uid: u32) -> Self {
        RemoteId {
            mailbox: mailbox.into(),
            uid_validity,
            uid,
        }
    }

    /// Parses `{mailbox}:{UIDVALIDITY}:{UID}`; `None` when it is not one.
    pub fn parse(s: &str) -> Option<RemoteId> {
        let mut it = s.rsplitn(3, ':');
        let uid: u32 = it.next()?.parse().ok()?;
        let uid_validity: u32 = it.next()?.parse().ok()?;
        let mailbox = it.next()?;
        if mailbox.is_empty() || uid == 0 {
            return None;
        }
        Some(RemoteId::new(mailbox, uid_validity, uid))
    }
}

impl fmt::Display for RemoteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.mailbox, self.uid_validity, self.uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Option<(&str, u32, u32)>) {
        let got = RemoteId::parse(text);
        assert_eq!(
            got,
            expected.map(|(m, v, u)| RemoteId::new(m, v, u)),
            "{text}"
        );
        if let Some(id) = got {
            assert_eq!(id.to_string(), text);
        }
    }

    #[test]
    fn parses_from_the_right() {
        check("INBOX:1700000000:42", Some(("INBOX", 1_700_000_000, 42)));
        check("Work:2025:Q1:5:9", Some(("Work:2025:Q1", 5, 9)));
        check("Entwürfe:1:1", Some(("Entwürfe", 1, 1)));
        check("INBOX:1", None);
        check(":1:2", None);
        check("INBOX:x:2", None);
        check("INBOX:1:0", None);
        check("INBOX:1:-2", None);
        check("AAMkAD=", None);
    }
}
