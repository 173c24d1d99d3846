//! OData query options of message lists: `$filter`, `$select`, `$orderby`,
//! `$expand`. Pure: parse strings, evaluate against property values.

use chrono::{DateTime, NaiveDate, Utc};

/// A property usable in `$filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prop {
    ReceivedDateTime,
    SentDateTime,
    CreatedDateTime,
    LastModifiedDateTime,
    IsRead,
    IsDraft,
    HasAttachments,
    Subject,
    Importance,
    ConversationId,
    InternetMessageId,
    ParentFolderId,
    FromAddress,
    FromName,
    SenderAddress,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Date,
    Bool,
    Str,
}

impl Prop {
    fn parse(path: &str) -> Option<Prop> {
        Some(match path.to_ascii_lowercase().as_str() {
            "receiveddatetime" => Prop::ReceivedDateTime,
            "sentdatetime" => Prop::SentDateTime,
            "createddatetime" => Prop::CreatedDateTime,
            "lastmodifieddatetime" => Prop::LastModifiedDateTime,
            "isread" => Prop::IsRead,
            "isdraft" => Prop::IsDraft,
            "hasattachments" => Prop::HasAttachments,
            "subject" => Prop::Subject,
            "importance" => Prop::Importance,
            "conversationid" => Prop::ConversationId,
            "internetmessageid" => Prop::InternetMessageId,
            "parentfolderid" => Prop::ParentFolderId,
            "from/emailaddress/address" => Prop::FromAddress,
            "from/emailaddress/name" => Prop::FromName,
            "sender/emailaddress/address" => Prop::SenderAddress,
            _ => return None,
        })
    }

    fn ty(self) -> Type {
        match self {
            Prop::ReceivedDateTime
            | Prop::SentDateTime
            | Prop::CreatedDateTime
            | Prop::LastModifiedDateTime => Type::Date,
            Prop::IsRead | Prop::IsDraft | Prop::HasAttachments => Type::Bool,
            _ => Type::Str,
        }
    }

    /// The top-level property name (for the `$orderby`/`$filter` rule).
    pub(crate) fn root(self) -> &'static str {
        match self {
            Prop::ReceivedDateTime => "receivedDateTime",
            Prop::SentDateTime => "sentDateTime",
            Prop::CreatedDateTime => "createdDateTime",
            Prop::LastModifiedDateTime => "lastModifiedDateTime",
            Prop::IsRead => "isRead",
            Prop::IsDraft => "isDraft",
            Prop::HasAttachments => "hasAttachments",
            Prop::Subject => "subject",
            Prop::Importance => "importance",
            Prop::ConversationId => "conversationId",
            Prop::InternetMessageId => "internetMessageId",
            Prop::ParentFolderId => "parentFolderId",
            Prop::FromAddress | Prop::FromName => "from",
            Prop::SenderAddress => "sender",
        }
    }
}

/// A property value of one message.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Date(i64),
    Bool(bool),
    Str(String),
    Null,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Lit {
    Date(i64),
    Bool(bool),
    Str(String),
    Null,
}

/// A parsed `$filter`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Cmp(Prop, Op, Lit),
    Contains(Prop, String),
    StartsWith(Prop, String),
}

/// Why a query option was refused, as Graph's error code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QueryError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

fn syntax(msg: impl Into<String>) -> QueryError {
    QueryError {
        code: "BadRequest",
        message: format!("Invalid filter clause: {}", msg.into()),
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Bare(String),
    Open,
    Close,
    Comma,
}

fn lex(s: &str) -> Result<Vec<Tok>, QueryError> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\r' | '\n' => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(syntax("unterminated string literal")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            v.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            v.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || matches!(chars[i], ':' | '.' | '-' | '+'))
                {
                    i += 1;
                }
                out.push(Tok::Bare(chars[start..i].iter().collect()));
            }
            c if c.is_alphabetic() || c == '_' || c == '@' || c == '$' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric()
                        || matches!(chars[i], '_' | '/' | '.' | '@' | '$'))
                {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(syntax(format!("unexpected character '{other}'"))),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    props: Vec<Prop>,
}

impl Parser {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, t: &Tok) -> Result<(), QueryError> {
        match self.next() {
            Some(ref got) if got == t => Ok(()),
            got => Err(syntax(format!("expected {t:?}, found {got:?}"))),
        }
    }

    fn or(&mut self) -> Result<Filter, QueryError> {
        let mut left = self.and()?;
        while self.peek_kw("or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, QueryError> {
        let mut left = self.unary()?;
        while self.peek_kw("and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, QueryError> {
        if self.peek_kw("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        match self.next() {
            Some(Tok::Open) => {
                let f = self.or()?;
                self.expect(&Tok::Close)?;
                Ok(f)
            }
            Some(Tok::Ident(name)) if matches!(self.toks.get(self.pos), Some(Tok::Open)) => {
                let func = name.to_ascii_lowercase();
                self.pos += 1;
                let prop = self.prop()?;
                self.expect(&Tok::Comma)?;
                let Some(Tok::Str(v)) = self.next() else {
                    return Err(syntax(format!("{func} expects a string literal")));
                };
                self.expect(&Tok::Close)?;
                if prop.ty() != Type::Str {
                    return Err(syntax(format!("{func} needs a string property")));
                }
                match func.as_str() {
                    "contains" => Ok(Filter::Contains(prop, v)),
                    "startswith" => Ok(Filter::StartsWith(prop, v)),
                    _ => Err(QueryError {
                        code: "ErrorInvalidUrlQueryFilter",
                        message: "The query filter contains one or more invalid nodes.".into(),
                    }),
                }
            }
            Some(Tok::Ident(name)) => {
                self.pos -= 1;
                let _ = name;
                let prop = self.prop()?;
                let op = match self.next() {
                    Some(Tok::Ident(w)) => match w.to_ascii_lowercase().as_str() {
                        "eq" => Op::Eq,
                        "ne" => Op::Ne,
                        "gt" => Op::Gt,
                        "ge" => Op::Ge,
                        "lt" => Op::Lt,
                        "le" => Op::Le,
                        other => return Err(syntax(format!("unknown operator '{other}'"))),
                    },
                    got => return Err(syntax(format!("expected an operator, found {got:?}"))),
                };
                let lit = self.literal(prop)?;
                Ok(Filter::Cmp(prop, op, lit))
            }
            got => Err(syntax(format!("unexpected {got:?}"))),
        }
    }

    fn prop(&mut self) -> Result<Prop, QueryError> {
        match self.next() {
            Some(Tok::Ident(path)) => {
                let p = Prop::parse(&path).ok_or_else(|| QueryError {
                    code: "RequestBroker--ParseUri",
                    message: format!("Could not find a property named '{path}' on type 'microsoft.graph.message'."),
                })?;
                self.props.push(p);
                Ok(p)
            }
            got => Err(syntax(format!("expected a property, found {got:?}"))),
        }
    }

    fn literal(&mut self, prop: Prop) -> Result<Lit, QueryError> {
        let tok = self.next();
        let lit = match (&tok, prop.ty()) {
            (Some(Tok::Ident(w)), _) if w.eq_ignore_ascii_case("null") => Lit::Null,
            (Some(Tok::Ident(w)), Type::Bool) if w.eq_ignore_ascii_case("true") => Lit::Bool(true),
            (Some(Tok::Ident(w)), Type::Bool) if w.eq_ignore_ascii_case("false") => Lit::Bool(false),
            (Some(Tok::Bare(w)), Type::Date) => Lit::Date(parse_date(w).ok_or_else(|| {
                syntax(format!("the DateTimeOffset text '{w}' should be in format 'yyyy-mm-ddThh:mm:ss('.'s+)?(zzzzzz)?'"))
            })?),
            (Some(Tok::Str(v)), Type::Str) => Lit::Str(v.clone()),
            (Some(Tok::Str(v)), Type::Date) => {
                return Err(syntax(format!(
                    "a binary operator with incompatible types was detected: found operand types 'Edm.DateTimeOffset' and 'Edm.String' for '{}' and '{v}'",
                    prop.root()
                )));
            }
            (got, ty) => return Err(syntax(format!("{got:?} is not a valid {ty:?} literal for {}", prop.root()))),
        };
        Ok(lit)
    }
}

/// Parses a date literal (`2025-01-01T00:00:00Z`, with offset or fraction,
/// or a bare date) to Unix milliseconds.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis());
    }
    // Without an offset Graph assumes UTC.
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|d| d.and_utc().timestamp_millis())
}

/// A parsed filter and the properties it names, in order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ParsedFilter {
    pub(crate) filter: Filter,
    pub(crate) props: Vec<Prop>,
}

/// Parses a `$filter` value.
pub(crate) fn parse_filter(s: &str) -> Result<ParsedFilter, QueryError> {
    let toks = lex(s)?;
    if toks.is_empty() {
        return Err(syntax("empty filter"));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        props: Vec::new(),
    };
    let filter = p.or()?;
    if p.pos != p.toks.len() {
        return Err(syntax(format!(
            "unexpected {:?} after the expression",
            p.toks[p.pos]
        )));
    }
    Ok(ParsedFilter {
        filter,
        props: p.props,
    })
}

fn cmp_str(a: &str, b: &str) -> std::cmp::Ordering {
    a.to_lowercase().cmp(&b.to_lowercase())
}

impl Filter {
    /// Evaluates against one message's property values.
    pub(crate) fn matches(&self, get: &dyn Fn(Prop) -> Val) -> bool {
        use std::cmp::Ordering;
        match self {
            Filter::And(a, b) => a.matches(get) && b.matches(get),
            Filter::Or(a, b) => a.matches(get) || b.matches(get),
            Filter::Not(a) => !a.matches(get),
            Filter::Contains(p, s) => match get(*p) {
                Val::Str(v) => v.to_lowercase().contains(&s.to_lowercase()),
                _ => false,
            },
            Filter::StartsWith(p, s) => match get(*p) {
                Val::Str(v) => v.to_lowercase().starts_with(&s.to_lowercase()),
                _ => false,
            },
            Filter::Cmp(p, op, lit) => {
                let v = get(*p);
                let ord: Option<Ordering> = match (&v, lit) {
                    (Val::Null, Lit::Null) => Some(Ordering::Equal),
                    (Val::Null, _) | (_, Lit::Null) => None,
                    (Val::Date(a), Lit::Date(b)) => Some(a.cmp(b)),
                    (Val::Bool(a), Lit::Bool(b)) => Some(a.cmp(b)),
                    (Val::Str(a), Lit::Str(b)) => Some(cmp_str(a, b)),
                    _ => None,
                };
                match (op, ord) {
                    (Op::Eq, Some(o)) => o == Ordering::Equal,
                    (Op::Ne, Some(o)) => o != Ordering::Equal,
                    (Op::Ne, None) => true,
                    (Op::Gt, Some(o)) => o == Ordering::Greater,
                    (Op::Ge, Some(o)) => o != Ordering::Less,
                    (Op::Lt, Some(o)) => o == Ordering::Less,
                    (Op::Le, Some(o)) => o != Ordering::Greater,
                    (_, None) => false,
                }
            }
        }
    }
}

/// Is this `receivedDateTime ge|gt <date>` (all message delta accepts)?
pub(crate) fn is_received_lower_bound(f: &Filter) -> bool {
    matches!(
        f,
        Filter::Cmp(Prop::ReceivedDateTime, Op::Ge | Op::Gt, Lit::Date(_))
    )
}

/// `$orderby` of message lists (by received time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OrderBy {
    pub(crate) descending: bool,
}

/// Parses `$orderby`; only `receivedDateTime [asc|desc]` is supported.
pub(crate) fn parse_orderby(s: &str) -> Result<OrderBy, QueryError> {
    let mut words = s.split_whitespace();
    let prop = words.next().unwrap_or("");
    let dir = words.next().unwrap_or("asc");
    if words.next().is_some() || s.contains(',') {
        return Err(QueryError {
            code: "BadRequest",
            message: format!("Only one $orderby property is supported by mailroom-sim: '{s}'."),
        });
    }
    if !prop.eq_ignore_ascii_case("receivedDateTime") {
        return Err(QueryError {
            code: "ErrorInvalidProperty",
            message: format!("The property '{prop}' is not supported in $orderby by mailroom-sim."),
        });
    }
    match dir.to_ascii_lowercase().as_str() {
        "asc" => Ok(OrderBy { descending: false }),
        "desc" => Ok(OrderBy { descending: true }),
        other => Err(QueryError {
            code: "BadRequest",
            message: format!("Syntax error: character '{other}' is not valid in $orderby."),
        }),
    }
}

/// Graph's rule for messages: properties of `$orderby` must also be in
/// `$filter`, first and in the same order.
pub(crate) fn check_orderby_filter(filter: &ParsedFilter) -> Result<(), QueryError> {
    match filter.props.first() {
        Some(p) if p.root() == "receivedDateTime" => Ok(()),
        _ => Err(QueryError {
            code: "InefficientFilter",
            message: "The restriction or sort order is too complex for this operation.".into(),
        }),
    }
}

/// Splits `a,b(c,d),e` at top-level commas.
pub(crate) fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_owned());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// Parsed `$select`: which of `fields` to include (by index); `None` = all.
pub(crate) fn parse_select(
    s: &str,
    fields: &[&str],
    entity: &str,
) -> Result<Vec<usize>, QueryError> {
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let i = fields
            .iter()
            .position(|f| f.eq_ignore_ascii_case(name))
            .ok_or_else(|| QueryError {
                code: "RequestBroker--ParseUri",
                message: format!(
                    "Could not find a property named '{name}' on type 'microsoft.graph.{entity}'."
                ),
            })?;
        if !out.contains(&i) {
            out.push(i);
        }
    }
    Ok(out)
}

/// A timestamp that serializes in Graph's format without allocating.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ts(pub(crate) i64);

impl Ts {
    /// `yyyy-mm-ddThh:mm:ssZ` into a stack buffer.
    fn write(self, buf: &mut [u8; 20]) {
        use chrono::{Datelike as _, Timelike as _};
        let d = DateTime::<Utc>::from_timestamp_millis(self.0).unwrap_or_default();
        let mut put = |at: usize, v: u32, width: usize| {
            let mut v = v;
            for i in (0..width).rev() {
                buf[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, d.year().clamp(0, 9999) as u32, 4);
        put(5, d.month(), 2);
        put(8, d.day(), 2);
        put(11, d.hour(), 2);
        put(14, d.minute(), 2);
        put(17, d.second(), 2);
        for (i, c) in [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'Z'),
        ] {
            buf[i] = c;
        }
    }
}

impl std::fmt::Display for Ts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut buf = [0u8; 20];
        self.write(&mut buf);
        f.write_str(std::str::from_utf8(&buf).unwrap_or(""))
    }
}

impl serde::Serialize for Ts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 20];
        self.write(&mut buf);
        s.serialize_str(std::str::from_utf8(&buf).unwrap_or(""))
    }
}

/// Unix milliseconds to Graph's timestamp format (`2025-01-01T10:00:00Z`).
pub(crate) fn format_ms(ms: i64) -> String {
    Ts(ms).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(filter: &str, props: &[(Prop, Val)], expected: bool) {
        let f = parse_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e:?}"));
        let get = |p: Prop| {
            props
                .iter()
                .find(|(q, _)| *q == p)
                .map_or(Val::Null, |(_, v)| v.clone())
        };
        assert_eq!(f.filter.matches(&get), expected, "{filter}");
    }

    fn bad(filter: &str) -> &'static str {
        parse_filter(filter).expect_err(filter).code
    }

    #[test]
    fn date_comparisons_with_unquoted_literals() {
        let t = parse_date("2025-01-02T00:00:00Z").unwrap();
        let m = [(Prop::ReceivedDateTime, Val::Date(t))];
        check("receivedDateTime ge 2025-01-01T00:00:00Z", &m, true);
        check("receivedDateTime gt 2025-01-02T00:00:00Z", &m, false);
        check("receivedDateTime ge 2025-01-02T00:00:00Z", &m, true);
        check("receivedDateTime lt 2025-01-02T03:00:00+02:00", &m, true);
        check("receivedDateTime le 2025-01-01", &m, false);
        check("ReceivedDateTime GE 2025-01-01T00:00:00.000Z", &m, true);
    }

    #[test]
    fn booleans_strings_and_logic() {
        let m = [
            (Prop::IsRead, Val::Bool(false)),
            (Prop::Subject, Val::Str("Bob's \"mail\"".into())),
            (Prop::FromAddress, Val::Str("Alice@Fabrikam.test".into())),
        ];
        check("isRead eq false", &m, true);
        check("isRead eq true or subject eq 'Bob''s \"mail\"'", &m, true);
        check(
            "isRead eq false and (subject eq 'x' or not isRead eq true)",
            &m,
            true,
        );
        check(
            "from/emailAddress/address eq 'alice@fabrikam.test'",
            &m,
            true,
        );
        check("contains(subject, 'MAIL')", &m, true);
        check("startswith(subject,'Bob')", &m, true);
        check("hasAttachments eq true", &m, false);
    }

    #[test]
    fn malformed_filters_are_refused() {
        assert_eq!(
            bad("receivedDateTime ge '2025-01-01T00:00:00Z'"),
            "BadRequest"
        );
        assert_eq!(bad("receivedDateTime ge"), "BadRequest");
        assert_eq!(bad("subject eq 'unterminated"), "BadRequest");
        assert_eq!(bad("subject eq 'a' extra"), "BadRequest");
        assert_eq!(bad("isRead eq maybe"), "BadRequest");
        assert_eq!(bad("nosuch eq 1"), "RequestBroker--ParseUri");
        assert_eq!(bad("subject like 'x'"), "BadRequest");
        assert_eq!(bad(""), "BadRequest");
    }

    #[test]
    fn orderby_rules() {
        assert_eq!(
            parse_orderby("receivedDateTime desc"),
            Ok(OrderBy { descending: true })
        );
        assert_eq!(
            parse_orderby("receivedDateTime"),
            Ok(OrderBy { descending: false })
        );
        assert!(parse_orderby("subject").is_err());
        let f = parse_filter("isRead eq false").unwrap();
        assert_eq!(
            check_orderby_filter(&f).unwrap_err().code,
            "InefficientFilter"
        );
        let f = parse_filter("receivedDateTime ge 2025-01-01 and isRead eq false").unwrap();
        assert!(check_orderby_filter(&f).is_ok());
    }

    #[test]
    fn random_input_never_panics() {
        let alphabet: Vec<char> = "abc eqgtlendorot()',:-+.TZ0123456789/$ü日"
            .chars()
            .collect();
        let mut r = crate::rng::Rng::new(11);
        for _ in 0..20_000 {
            let len = r.index(40);
            let s: String = (0..len).map(|_| *r.pick(&alphabet)).collect();
            let _ = parse_filter(&s);
            let _ = parse_orderby(&s);
            let _ = parse_date(&s);
            let _ = split_top(&s);
        }
        for s in [
            "receivedDateTime ge",
            "(",
            ")",
            "not",
            "contains(",
            "contains(subject,",
            "isRead eq true and",
            "''''",
        ] {
            assert!(parse_filter(s).is_err(), "{s}");
        }
    }

    #[test]
    fn timestamps_format_like_graph() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_ms(1_748_736_000_999), "2025-06-01T00:00:00Z");
        assert_eq!(
            format_ms(parse_date("2024-02-29T23:59:58Z").unwrap()),
            "2024-02-29T23:59:58Z"
        );
    }

    #[test]
    fn select_and_split() {
        let fields = ["id", "subject", "from"];
        assert_eq!(
            parse_select("subject, FROM", &fields, "message"),
            Ok(vec![1, 2])
        );
        assert_eq!(
            parse_select("nope", &fields, "message").unwrap_err().code,
            "RequestBroker--ParseUri"
        );
        assert_eq!(
            split_top("a,attachments($select=name,size),b"),
            ["a", "attachments($select=name,size)", "b"]
        );
    }
}
