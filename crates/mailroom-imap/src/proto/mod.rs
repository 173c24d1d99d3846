//! The pure half of the connector: values in, values out, no sockets and no clocks.
//!
//! - [`utf7`]: modified UTF-7 mailbox names;
//! - [`uidset`] and [`cursor`]: UID ranges and the sync cursor;
//! - [`remote_id`]: the `{mailbox}:{UIDVALIDITY}:{UID}` message id;
//! - [`mime`]: RFC 5322/MIME bytes → the core `Message` record;
//! - [`structure`]: BODYSTRUCTURE → attachment metadata for messages over the cap;
//! - [`outline`]: header + BODYSTRUCTURE → the MIME tree with empty bodies, so a record
//!   is built without downloading the whole message;
//! - [`guard`]: the server's bytes bounded per response, its status texts as data;
//! - [`size`]: exact decoded sizes of parts from their transfer encoding and octets;
//! - this module: SASL XOAUTH2, IMAP string quoting, LIST attributes → roles.

pub mod cursor;
pub mod guard;
pub mod mime;
pub mod outline;
pub mod remote_id;
pub mod size;
pub mod structure;
pub mod uidset;
pub mod utf7;

use mailroom_core::WellKnownFolder;

/// The SASL XOAUTH2 initial response (before base64): `user=…\x01auth=Bearer …\x01\x01`.
///
/// The result holds the access token: never log it.
pub fn xoauth2_response(user: &str, access_token: &str) -> String {
    format!("user={user}\x01auth=Bearer {access_token}\x01\x01")
}

/// Why a value cannot be sent as an IMAP string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} cannot contain line breaks or NUL")]
pub struct QuoteError {
    what: &'static str,
}

/// Quotes a value as an IMAP quoted string (`"…"`, with `\` and `"` escaped).
/// CR, LF and NUL cannot be quoted and are refused.
pub fn quote(value: &str, what: &'static str) -> Result<String, QuoteError> {
    if value.contains(['\r', '\n', '\0']) {
        return Err(QuoteError { what });
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

/// The value of an IMAP quoted string whose quotes are gone but whose escapes are
/// not (what the IMAP parser returns): `A&B \"quoted\"` is `A&B "quoted"`. A `\`
/// before any other character, or at the end, is kept as it is.
pub fn unescape_quoted(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next @ ('"' | '\\')) = chars.peek()
        {
            out.push(next);
            chars.next();
        } else {
            out.push(c);
        }
    }
    out
}

/// Quotes a UTF-8 mailbox name for a command: modified UTF-7, then quoted.
pub fn quote_mailbox(name: &str) -> Result<String, QuoteError> {
    quote(&utf7::encode(name), "a mailbox name")
}

/// The role of a mailbox from its name and LIST attributes (`\Sent`, `\Trash`, …).
/// `INBOX` (any case) is the inbox whatever its attributes.
pub fn role_of(name: &str, attributes: &[&str]) -> Option<WellKnownFolder> {
    if name.eq_ignore_ascii_case("INBOX") {
        return Some(WellKnownFolder::Inbox);
    }
    attributes
        .iter()
        .find_map(|a| WellKnownFolder::from_imap_special_use(a))
}

/// Common names of role folders on servers without SPECIAL-USE, lower case.
pub fn conventional_names(role: WellKnownFolder) -> &'static [&'static str] {
    match role {
        WellKnownFolder::Inbox => &["inbox"],
        WellKnownFolder::Sent => &["sent", "sent items", "sent messages", "sent mail"],
        WellKnownFolder::Drafts => &["drafts", "draft"],
        WellKnownFolder::Deleted => &["trash", "deleted items", "deleted messages", "deleted"],
        WellKnownFolder::Junk => &["junk", "spam", "junk email", "junk e-mail"],
        WellKnownFolder::Archive => &["archive", "archives"],
        WellKnownFolder::Outbox => &["outbox"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_unescape() {
        let check = |raw: &str, value: &str| {
            assert_eq!(unescape_quoted(raw), value, "{raw}");
            if !raw.ends_with('\\') {
                // What `quote` sends back is what the server sent.
                assert_eq!(quote(value, "x").unwrap(), format!("\"{raw}\""), "{raw}");
            }
        };
        check(r#"A&B \"quoted\""#, r#"A&B "quoted""#);
        check(r"back\\slash", r"back\slash");
        check(r"\\", r"\");
        check("INBOX", "INBOX");
        check(r#"\\\""#, r#"\""#);
        assert_eq!(unescape_quoted(r"a\b"), r"a\b");
        assert_eq!(unescape_quoted("end\\"), "end\\");
    }

    #[test]
    fn xoauth2_string_layout() {
        assert_eq!(
            xoauth2_response("alice@contoso.test", "sim-at-123"),
            "user=alice@contoso.test\x01auth=Bearer sim-at-123\x01\x01"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("INBOX", "x").unwrap(), "\"INBOX\"");
        assert_eq!(
            quote(r#"Bob's "mail" \ more"#, "x").unwrap(),
            r#""Bob's \"mail\" \\ more""#
        );
        assert!(quote("a\r\nb", "a mailbox name").is_err());
        assert_eq!(quote_mailbox("A&B/日本語").unwrap(), "\"A&-B/&ZeVnLIqe-\"");
    }

    #[test]
    fn roles_from_attributes() {
        use WellKnownFolder::*;
        let check = |name: &str, attrs: &[&str], want: Option<WellKnownFolder>| {
            assert_eq!(role_of(name, attrs), want, "{name} {attrs:?}");
        };
        check("INBOX", &[], Some(Inbox));
        check("inbox", &["\\HasNoChildren"], Some(Inbox));
        check("Sent", &["\\HasNoChildren", "\\Sent"], Some(Sent));
        check("Entwürfe", &["\\Drafts"], Some(Drafts));
        check("Papierkorb", &["\\trash"], Some(Deleted));
        check("Spam", &["\\Junk"], Some(Junk));
        check("Archiv", &["\\Archive"], Some(Archive));
        check("Flagged", &["\\Flagged"], None);
        check("Sent", &[], None);
    }
}
