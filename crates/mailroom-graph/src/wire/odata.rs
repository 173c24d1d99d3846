//! OData query text: string and date literals, percent-encoded query strings and
//! path segments. Pure functions, no I/O.

use chrono::{DateTime, SecondsFormat, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters left as they are in a query value: RFC 3986 unreserved characters plus
/// the OData punctuation that never needs escaping inside a query component. Spaces,
/// `+`, `&`, `=`, `#`, `'`, `"`, `%` and every non-ASCII byte are encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b',')
    .remove(b'(')
    .remove(b')')
    .remove(b'/')
    .remove(b':')
    .remove(b'$');

/// Characters left as they are in one path segment (ids may hold `=` padding; `/`,
/// `+` and everything else are encoded).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'=');

/// An OData string literal: single quotes around the value, quotes inside doubled.
///
/// `Bob's "mail"` becomes `'Bob''s "mail"'`.
pub fn string_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// An OData `DateTimeOffset` literal in UTC with whole seconds:
/// `2025-01-01T00:00:00Z` (no quotes). Sub-second parts are cut, which for a
/// `ge` bound only ever includes one more second.
pub fn datetime_literal(at: DateTime<Utc>) -> String {
    use chrono::Timelike as _;
    let whole = at.with_nanosecond(0).unwrap_or(at);
    whole.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `receivedDateTime ge {date}`.
pub fn received_since(since: DateTime<Utc>) -> String {
    format!("receivedDateTime ge {}", datetime_literal(since))
}

/// `displayName eq '{name}'` with the name escaped.
pub fn display_name_eq(name: &str) -> String {
    format!("displayName eq {}", string_literal(name))
}

/// One path segment, percent-encoded (for ids and well-known names); `None` for a
/// value that cannot be one: empty, `.` or `..`. URL libraries resolve a segment
/// `..` or `.` — percent-encoded too (`%2E%2E`) — as a dot-segment, so such an id
/// would change the path (`/me/messages/../move` is `/me/move`); no Graph id or
/// well-known name has that form.
pub fn segment(value: &str) -> Option<String> {
    if matches!(value, "" | "." | "..") {
        return None;
    }
    Some(utf8_percent_encode(value, PATH_SEGMENT).to_string())
}

/// A query string built pair by pair, values percent-encoded.
#[derive(Debug, Default, Clone)]
pub struct Query {
    text: String,
}

impl Query {
    /// An empty query.
    pub fn new() -> Query {
        Query::default()
    }

    /// Appends `key=value`; the key is taken as it is (`$select`, `$top` …).
    #[must_use]
    pub fn pair(mut self, key: &str, value: &str) -> Query {
        if !self.text.is_empty() {
            self.text.push('&');
        }
        self.text.push_str(key);
        self.text.push('=');
        self.text
            .extend(utf8_percent_encode(value, QUERY_VALUE).map(str::to_owned));
        self
    }

    /// Appends the pair when `value` is `Some`.
    #[must_use]
    pub fn opt(self, key: &str, value: Option<&str>) -> Query {
        match value {
            Some(v) => self.pair(key, v),
            None => self,
        }
    }

    /// The encoded query, without `?`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when no pair was added.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_literal(input: &str, expected: &str) {
        assert_eq!(string_literal(input), expected, "{input}");
    }

    #[test]
    fn string_literals_double_quotes() {
        check_literal("Inbox", "'Inbox'");
        check_literal("Bob's \"mail\" & more", "'Bob''s \"mail\" & more'");
        check_literal("''", "''''''");
        check_literal("", "''");
        check_literal("日本語", "'日本語'");
    }

    #[test]
    fn date_literals_are_utc_whole_seconds() {
        let at = DateTime::parse_from_rfc3339("2025-01-01T01:30:00.750+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(datetime_literal(at), "2025-01-01T00:30:00Z");
        assert_eq!(
            received_since(at),
            "receivedDateTime ge 2025-01-01T00:30:00Z"
        );
    }

    #[test]
    fn query_values_are_percent_encoded() {
        let q = Query::new()
            .pair("$filter", &display_name_eq("Bob's \"mail\" & more"))
            .pair("$top", "10");
        assert_eq!(
            q.as_str(),
            "$filter=displayName%20eq%20%27Bob%27%27s%20%22mail%22%20%26%20more%27&$top=10"
        );
        let q = Query::new().pair("$filter", &received_since(DateTime::UNIX_EPOCH));
        assert_eq!(
            q.as_str(),
            "$filter=receivedDateTime%20ge%201970-01-01T00:00:00Z"
        );
        // `+` would read as a space, `=` and `#` would cut the value.
        let q = Query::new().pair("x", "a+b=c#d%e");
        assert_eq!(q.as_str(), "x=a%2Bb%3Dc%23d%25e");
        let q = Query::new().pair("$expand", "attachments($select=id,name)");
        assert_eq!(q.as_str(), "$expand=attachments($select%3Did,name)");
        assert!(Query::new().opt("a", None).is_empty());
    }

    #[test]
    fn path_segments() {
        let check = |id: &str, expected: Option<&str>| {
            assert_eq!(segment(id).as_deref(), expected, "{id:?}");
        };
        check("AAMkAD/x+y==", Some("AAMkAD%2Fx%2By=="));
        check("inbox", Some("inbox"));
        check("a b", Some("a%20b"));
        check("?#%2F", Some("%3F%23%252F"));
        check("...", Some("..."));
        check("a..b", Some("a..b"));
        check("%2E%2E", Some("%252E%252E"));
        check("..", None);
        check(".", None);
        check("", None);
    }
}
