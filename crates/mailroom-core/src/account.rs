//! Account kinds and states shared by the store, the sync worker and the CLI.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The provider of an account, which with the credential shape picks the connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// Microsoft 365 / Outlook.com: Graph with OAuth2, or IMAP with `"type": "imap"`.
    Outlook,
    /// Any IMAP server.
    Imap,
    /// Gmail over IMAP (app password or caller-supplied XOAUTH2 token).
    Gmail,
}

/// The life-cycle state of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Synced on schedule.
    Active,
    /// Sign-in is no longer valid; skipped until the user signs in again.
    NeedsReauth,
    /// Turned off by an operator.
    Disabled,
}

macro_rules! string_enum {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The stored, lower-case name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownName {
                        what: stringify!($ty),
                        name: s.to_owned(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }
    };
}

string_enum!(AccountKind { Outlook => "outlook", Imap => "imap", Gmail => "gmail" });
string_enum!(AccountStatus {
    Active => "active",
    NeedsReauth => "needs_reauth",
    Disabled => "disabled",
});

/// A name that is not one of an enum's stored names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}, expected one of: {}", expected.join(", "))]
pub struct UnknownName {
    what: &'static str,
    name: String,
    expected: &'static [&'static str],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in [AccountKind::Outlook, AccountKind::Imap, AccountKind::Gmail] {
            assert_eq!(kind.as_str().parse::<AccountKind>().unwrap(), kind);
        }
        assert_eq!(
            "NEEDS_REAUTH".parse::<AccountStatus>().unwrap(),
            AccountStatus::NeedsReauth
        );
        let err = "pop3".parse::<AccountKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown AccountKind \"pop3\", expected one of: outlook, imap, gmail"
        );
    }
}
