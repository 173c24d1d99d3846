//! One logged-in IMAP connection: a command/response loop over async-imap's parser,
//! with our own handling of every response (VANISHED, MODSEQ, COPYUID, NO codes).

use std::collections::HashSet;
use std::time::Duration;

use async_imap::imap_proto::{
    AttributeValue, MailboxDatum, MailboxListData, NameAttribute, Outcome, Response, ResponseCode,
    Status, rfc4315::UidSetMember,
};
use chrono::{DateTime, Utc};
use mailroom_core::{ConnectorError, ErrorKind, Message};

use crate::proto::guard::decode_text;
use crate::proto::mime::{Completeness, message_from_bytes};
use crate::proto::uidset::UidSet;
use crate::transport::{Guarded, Stream};

/// The next response of an `async_imap` session, or the failure that ends the
/// connection (a macro: async-imap does not export its response type).
macro_rules! next_response {
    ($session:expr) => {
        match $session.read_response().await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Err(Failure::Connection(
                    "connection closed by the server".into(),
                ));
            }
            Err(e) => return Err(map_io_error(&e)),
        }
    };
}
pub(crate) use next_response;

/// Server capabilities the connector uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caps {
    /// RFC 6851 MOVE.
    pub move_: bool,
    /// RFC 4315 UIDPLUS (`UID EXPUNGE`, COPYUID).
    pub uidplus: bool,
    /// RFC 7162 CONDSTORE.
    pub condstore: bool,
    /// RFC 7162 QRESYNC.
    pub qresync: bool,
    /// RFC 5819 LIST-STATUS.
    pub list_status: bool,
    /// RFC 6154 SPECIAL-USE (asked for explicitly once LIST has RETURN options).
    pub special_use: bool,
    /// RFC 2177 IDLE.
    pub idle: bool,
}

impl Caps {
    /// Reads the capability atoms (any case).
    pub fn from_atoms<'a>(atoms: impl IntoIterator<Item = &'a str>) -> Caps {
        let set: HashSet<String> = atoms.into_iter().map(|a| a.to_ascii_uppercase()).collect();
        Caps {
            move_: set.contains("MOVE"),
            uidplus: set.contains("UIDPLUS"),
            condstore: set.contains("CONDSTORE") || set.contains("QRESYNC"),
            qresync: set.contains("QRESYNC") && set.contains("ENABLE"),
            list_status: set.contains("LIST-STATUS"),
            special_use: set.contains("SPECIAL-USE"),
            idle: set.contains("IDLE"),
        }
    }
}

/// Why a command failed, before it is given a context.
#[derive(Debug)]
pub enum Failure {
    /// The connection broke (I/O, EOF, timeout): the session is unusable.
    Connection(String),
    /// The server sent something we could not parse: the session is unusable.
    Garbled(String),
    /// Tagged NO: the command was refused; the session is fine.
    No(String),
    /// Tagged BAD: the server did not understand the command; the session is fine.
    Bad(String),
    /// Untagged BYE: the server ended the session (Dovecot does so when it cannot
    /// read a message file during a FETCH).
    Bye(String),
}

impl Failure {
    /// True when the session must be dropped.
    pub fn breaks_session(&self) -> bool {
        matches!(
            self,
            Failure::Connection(_) | Failure::Garbled(_) | Failure::Bye(_)
        )
    }

    /// A connector error saying what was being done; `no_kind` is the kind of a NO.
    pub fn into_error(self, context: impl std::fmt::Display, no_kind: ErrorKind) -> ConnectorError {
        match self {
            Failure::Bye(m) => ConnectorError::new(
                ErrorKind::Transient,
                format!("{context}: server closed the connection: {m}"),
            ),
            Failure::Connection(m) => {
                ConnectorError::new(ErrorKind::Transient, format!("{context}: {m}"))
            }
            Failure::Garbled(m) => {
                ConnectorError::new(ErrorKind::Protocol, format!("{context}: {m}"))
            }
            Failure::Bad(m) => ConnectorError::new(
                ErrorKind::Protocol,
                format!("{context}: server said BAD: {m}"),
            ),
            Failure::No(m) => {
                let code = response_code(&m);
                let kind = match code.as_deref() {
                    Some("NONEXISTENT") => ErrorKind::NotFound,
                    Some("AUTHENTICATIONFAILED" | "AUTHORIZATIONFAILED" | "EXPIRED") => {
                        ErrorKind::ReauthRequired
                    }
                    Some("UNAVAILABLE" | "SERVERBUG" | "INUSE" | "LIMIT") => ErrorKind::Transient,
                    Some("CANNOT" | "NOPERM" | "OVERQUOTA") => ErrorKind::Other,
                    _ => no_kind,
                };
                let mut err = ConnectorError::new(kind, format!("{context}: {m}"));
                if let Some(code) = code {
                    err = err.with_code(code);
                }
                err
            }
        }
    }
}

/// An error inside an operation: an IMAP failure still to be given its context, or a
/// finished error.
#[derive(Debug)]
pub enum OpError {
    /// An IMAP failure.
    Imap(Failure),
    /// A finished error.
    Done(ConnectorError),
}

impl From<Failure> for OpError {
    fn from(f: Failure) -> Self {
        OpError::Imap(f)
    }
}

impl From<ConnectorError> for OpError {
    fn from(e: ConnectorError) -> Self {
        OpError::Done(e)
    }
}

/// Opens a new logged-in connection (the connector), for code that must replace a
/// session the server closed.
pub trait Reopen: Send + Sync {
    /// A new connection.
    fn reopen(&self) -> futures::future::BoxFuture<'_, Result<Conn, ConnectorError>>;
}

/// The `[CODE]` at the start of a response text, upper case.
pub fn response_code(text: &str) -> Option<String> {
    let rest = text.trim_start().strip_prefix('[')?;
    let end = rest.find([']', ' '])?;
    Some(rest[..end].to_ascii_uppercase())
}

/// What a tagged OK carried.
#[derive(Debug, Default)]
pub struct Done {
    /// COPYUID from the tagged OK or an untagged OK (MOVE sends it untagged).
    pub copy_uid: Option<(u32, Vec<UidSetMember>, Vec<UidSetMember>)>,
}

/// SELECT results.
#[derive(Debug, Clone, Default)]
pub struct Selected {
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// HIGHESTMODSEQ, 0 without CONDSTORE (or NOMODSEQ).
    pub highest_modseq: u64,
    /// EXISTS.
    pub exists: u32,
    /// UIDNEXT, when sent.
    pub uid_next: Option<u32>,
}

/// One FETCH response, owned.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Message sequence number.
    pub seq: u32,
    /// UID.
    pub uid: Option<u32>,
    /// Flags as sent (`\Seen`, …).
    pub flags: Vec<String>,
    /// INTERNALDATE.
    pub internal_date: Option<DateTime<Utc>>,
    /// RFC822.SIZE.
    pub size: Option<u32>,
    /// The message bytes (`BODY[]` or its first bytes).
    pub body: Option<Vec<u8>>,
}

impl Fetched {
    pub(crate) fn from_response(seq: u32, attrs: &[AttributeValue<'_>]) -> Fetched {
        let mut f = Fetched {
            seq,
            ..Fetched::default()
        };
        for attr in attrs {
            match attr {
                AttributeValue::Uid(uid) => f.uid = Some(*uid),
                AttributeValue::Flags(flags) => {
                    f.flags = flags.iter().map(|s| s.to_string()).collect()
                }
                AttributeValue::InternalDate(d) => f.internal_date = parse_internal_date(d),
                AttributeValue::Rfc822Size(n) => f.size = Some(*n),
                AttributeValue::BodySection {
                    section: None,
                    data,
                    ..
                }
                | AttributeValue::Rfc822(data) => {
                    f.body = data.as_ref().map(|d| d.to_vec());
                }
                _ => {}
            }
        }
        f
    }

    /// True when `\Seen` is set.
    pub fn is_seen(&self) -> bool {
        self.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen"))
    }

    /// Builds the record; the mailbox and UIDVALIDITY make the `remote_id`.
    pub fn into_message(mut self, mailbox: &str, uid_validity: u32, cap: u32) -> Option<Message> {
        self.uid?;
        let raw = self.body.take().unwrap_or_default();
        let completeness = match self.size {
            Some(size)
                if u64::from(size) > raw.len() as u64 && raw.len() as u64 >= u64::from(cap) =>
            {
                Completeness::Truncated {
                    full_size: u64::from(size),
                }
            }
            _ => Completeness::Whole,
        };
        let m = message_from_bytes(&raw, completeness);
        Some(self.finish(m, mailbox, uid_validity))
    }

    /// Gives a record built from this message's bytes what the server says about it:
    /// its id, folder, flags and arrival date.
    pub(crate) fn finish(&self, mut m: Message, mailbox: &str, uid_validity: u32) -> Message {
        let uid = self.uid.unwrap_or_default();
        m.remote_id =
            crate::proto::remote_id::RemoteId::new(mailbox, uid_validity, uid).to_string();
        m.folder_id = Some(mailbox.to_owned());
        m.is_read = self.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen"));
        m.is_draft = self.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Draft"));
        m.date_received = self.internal_date.or(m.sent_at);
        m
    }
}

/// How the record of a message cut at the size cap starts its first warning.
const TRUNCATED: &str = "only the first ";

/// `17-Jul-1996 02:44:25 -0700`, day possibly space-padded.
pub fn parse_internal_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s.trim(), "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// A LIST entry.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Wire name (modified UTF-7).
    pub wire_name: String,
    /// Hierarchy delimiter.
    pub delimiter: Option<String>,
    /// Attributes as text (`\Sent`, `\Noselect`, …).
    pub attributes: Vec<String>,
}

/// What VANISHED and flag FETCHes reported during a command.
#[derive(Debug, Default)]
pub struct Changes {
    /// UIDs reported vanished.
    pub vanished: UidSet,
    /// (uid, seen) for FETCH responses carrying FLAGS.
    pub flags: Vec<(u32, bool)>,
}

/// A logged-in session.
#[derive(Debug)]
pub struct Conn {
    session: async_imap::Session<Guarded<Stream>>,
    /// Capabilities after login.
    pub caps: Caps,
    /// The mailbox selected now (wire name) and its state.
    pub selected: Option<(String, Selected)>,
    /// EXPUNGE/VANISHED responses seen so far (sequence numbers shift when it grows).
    pub expunges_seen: u64,
    /// Where the sync page read last on this session left off (crate::sync), while
    /// the mailbox stays selected.
    pub(crate) continuation: Option<Continuation>,
    serial: u64,
    timeout: Duration,
}

/// The end of a sync page read by sequence numbers (`FETCH n:m`) that left more to
/// read: the next page of the same run may start at `next_seq` without SELECT and
/// `UID FETCH last` while nothing moved the sequence numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Continuation {
    /// The mailbox (wire name).
    pub wire: String,
    /// UIDVALIDITY of the run.
    pub uid_validity: u32,
    /// The highest UID the page delivered (the cursor's `last_uid` after it).
    pub last_uid: u32,
    /// The sequence number after the page's last message.
    pub next_seq: u32,
    /// [`Conn::expunges_seen`] when the page ended.
    pub expunges_seen: u64,
    /// [`Conn::serial`] of the session that read it.
    pub serial: u64,
}

/// Numbers the sessions of this process.
static SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Conn {
    /// Wraps a logged-in session.
    pub fn new(
        session: async_imap::Session<Guarded<Stream>>,
        caps: Caps,
        timeout: Duration,
    ) -> Conn {
        Conn {
            session,
            caps,
            selected: None,
            expunges_seen: 0,
            continuation: None,
            serial: SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            timeout,
        }
    }

    /// This session's number in the process (a replaced session has another).
    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }

    /// The time allowed for one command.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The async-imap session, for exchanges `exec` does not cover (IDLE).
    pub(crate) fn session_mut(&mut self) -> &mut async_imap::Session<Guarded<Stream>> {
        &mut self.session
    }

    /// Runs `command`, giving each untagged response to `on_untagged`, until its tagged
    /// completion.
    pub async fn exec(
        &mut self,
        command: &str,
        mut on_untagged: impl FnMut(&Response<'_>),
    ) -> Result<Done, Failure> {
        let timeout = self.timeout;
        let result =
            match tokio::time::timeout(timeout, self.exec_inner(command, &mut on_untagged)).await {
                Ok(result) => result,
                Err(_) => Err(Failure::Connection(format!(
                    "no answer within {} s",
                    timeout.as_secs()
                ))),
            };
        crate::telemetry::command(command, &result);
        result
    }

    async fn exec_inner(
        &mut self,
        command: &str,
        on_untagged: &mut impl FnMut(&Response<'_>),
    ) -> Result<Done, Failure> {
        let tag = self
            .session
            .run_command(command)
            .await
            .map_err(map_imap_error)?;
        let mut done = Done::default();
        loop {
            let response = next_response!(self.session);
            match response.parsed() {
                Response::Done {
                    tag: t,
                    status,
                    outcome: Outcome { code, information },
                } if t == &tag => {
                    let text = decode_text(information.as_deref().unwrap_or(""));
                    return match status {
                        Status::Ok => {
                            self.note_expunge_issued(&text);
                            if let Some(ResponseCode::CopyUid(v, a, b)) = code {
                                done.copy_uid = Some((v.to_owned(), a.clone(), b.clone()));
                            }
                            Ok(done)
                        }
                        Status::No => Err(Failure::No(text)),
                        Status::Bad => Err(Failure::Bad(text)),
                        other => Err(Failure::Garbled(format!(
                            "unexpected completion {other:?}: {text}"
                        ))),
                    };
                }
                Response::Data {
                    status: Status::Bye,
                    outcome: Outcome { information, .. },
                } => {
                    return Err(Failure::Bye(decode_text(
                        information.as_deref().unwrap_or("BYE"),
                    )));
                }
                Response::Data {
                    status: Status::Ok,
                    outcome:
                        Outcome {
                            code: Some(ResponseCode::CopyUid(v, a, b)),
                            ..
                        },
                } => {
                    done.copy_uid = Some((v.to_owned(), a.clone(), b.clone()));
                }
                Response::Expunge(_) => {
                    self.expunges_seen += 1;
                    on_untagged(response.parsed());
                }
                Response::Vanished { earlier: false, .. } => {
                    self.expunges_seen += 1;
                    on_untagged(response.parsed());
                }
                Response::MailboxData(MailboxDatum::Exists(n)) => {
                    self.note_exists(*n);
                    on_untagged(response.parsed());
                }
                other => on_untagged(other),
            }
        }
    }

    /// Sends `commands` at once (pipelined), then reads until each has its tagged
    /// completion: one round trip for all. The outer error breaks the session; the
    /// inner ones are each command's NO or BAD.
    pub async fn exec_many(
        &mut self,
        commands: &[String],
        mut on_untagged: impl FnMut(&Response<'_>),
    ) -> Result<Vec<Result<(), Failure>>, Failure> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.exec_many_inner(commands, &mut on_untagged)).await
        {
            Ok(result) => result,
            Err(_) => Err(Failure::Connection(format!(
                "no answer within {} s",
                timeout.as_secs()
            ))),
        }
    }

    async fn exec_many_inner(
        &mut self,
        commands: &[String],
        on_untagged: &mut impl FnMut(&Response<'_>),
    ) -> Result<Vec<Result<(), Failure>>, Failure> {
        let mut tags = Vec::with_capacity(commands.len());
        for command in commands {
            tags.push(
                self.session
                    .run_command(command)
                    .await
                    .map_err(map_imap_error)?,
            );
        }
        let mut results: Vec<Option<Result<(), Failure>>> = commands.iter().map(|_| None).collect();
        let mut open = commands.len();
        while open > 0 {
            let response = next_response!(self.session);
            match response.parsed() {
                Response::Done {
                    tag: t,
                    status,
                    outcome: Outcome { information, .. },
                } => {
                    let Some(i) = tags.iter().position(|tag| tag == t) else {
                        continue;
                    };
                    if results[i].is_some() {
                        continue;
                    }
                    let text = decode_text(information.as_deref().unwrap_or(""));
                    results[i] = Some(match status {
                        Status::Ok => {
                            self.note_expunge_issued(&text);
                            Ok(())
                        }
                        Status::No => Err(Failure::No(text)),
                        Status::Bad => Err(Failure::Bad(text)),
                        other => {
                            return Err(Failure::Garbled(format!(
                                "unexpected completion {other:?}: {text}"
                            )));
                        }
                    });
                    open -= 1;
                }
                Response::Data {
                    status: Status::Bye,
                    outcome: Outcome { information, .. },
                } => {
                    return Err(Failure::Bye(decode_text(
                        information.as_deref().unwrap_or("BYE"),
                    )));
                }
                Response::Expunge(_) | Response::Vanished { earlier: false, .. } => {
                    self.expunges_seen += 1;
                    on_untagged(response.parsed());
                }
                Response::MailboxData(MailboxDatum::Exists(n)) => {
                    self.note_exists(*n);
                    on_untagged(response.parsed());
                }
                other => on_untagged(other),
            }
        }
        let results: Vec<Result<Done, Failure>> = results
            .into_iter()
            .map(|r| r.unwrap_or(Ok(())).map(|()| Done::default()))
            .collect();
        for (command, result) in commands.iter().zip(&results) {
            crate::telemetry::command(command, result);
        }
        Ok(results.into_iter().map(|r| r.map(|_| ())).collect())
    }

    /// Runs a command whose untagged responses do not matter.
    pub async fn simple(&mut self, command: &str) -> Result<Done, Failure> {
        self.exec(command, |_| {}).await
    }

    /// A tagged OK saying `[EXPUNGEISSUED]` (RFC 5530): messages of this session's
    /// view were expunged by another one, and a sequence-number FETCH returned them
    /// empty. Counted as an expunge: sequence numbers will move.
    fn note_expunge_issued(&mut self, text: &str) {
        if response_code(text).as_deref() == Some("EXPUNGEISSUED") {
            self.expunges_seen += 1;
        }
    }

    /// An untagged EXISTS: the selected mailbox's message count now.
    fn note_exists(&mut self, n: u32) {
        if let Some((_, sel)) = &mut self.selected {
            sel.exists = n;
        }
    }

    /// SELECT (with CONDSTORE where offered) and read the mailbox state.
    pub async fn select(&mut self, wire_name: &str) -> Result<Selected, Failure> {
        self.open_mailbox("SELECT", wire_name).await
    }

    /// EXAMINE: [`Conn::select`] read-only (the IDLE connection's). The mailbox does
    /// not count as selected for the commands that write.
    pub async fn examine(&mut self, wire_name: &str) -> Result<Selected, Failure> {
        self.open_mailbox("EXAMINE", wire_name).await
    }

    /// `verb` (SELECT or EXAMINE) `wire_name`, with CONDSTORE where offered.
    async fn open_mailbox(&mut self, verb: &str, wire_name: &str) -> Result<Selected, Failure> {
        self.selected = None;
        // Sequence numbers read before may have moved while another mailbox was selected.
        self.continuation = None;
        let quoted = crate::proto::quote(wire_name, "a mailbox name")
            .map_err(|e| Failure::Bad(e.to_string()))?;
        let command = if self.caps.condstore {
            format!("{verb} {quoted} (CONDSTORE)")
        } else {
            format!("{verb} {quoted}")
        };
        let mut sel = Selected::default();
        let mut has_uv = false;
        self.exec(&command, |r| match r {
            Response::Data {
                outcome: Outcome {
                    code: Some(code), ..
                },
                ..
            } => match code {
                ResponseCode::UidValidity(v) => {
                    sel.uid_validity = *v;
                    has_uv = true;
                }
                ResponseCode::HighestModSeq(m) => sel.highest_modseq = *m,
                ResponseCode::UidNext(n) => sel.uid_next = Some(*n),
                _ => {}
            },
            Response::MailboxData(MailboxDatum::Exists(n)) => sel.exists = *n,
            _ => {}
        })
        .await?;
        if !has_uv {
            return Err(Failure::Garbled(format!(
                "{verb} {wire_name} gave no UIDVALIDITY"
            )));
        }
        if verb == "SELECT" {
            self.selected = Some((wire_name.to_owned(), sel.clone()));
        }
        Ok(sel)
    }

    /// Selects `wire_name` unless it is selected already.
    pub async fn ensure_selected(&mut self, wire_name: &str) -> Result<Selected, Failure> {
        if let Some((name, sel)) = &self.selected
            && name == wire_name
        {
            return Ok(sel.clone());
        }
        self.select(wire_name).await
    }

    /// Runs a FETCH (UID or not), collecting FETCH responses.
    pub async fn fetch(&mut self, command: &str) -> Result<Vec<Fetched>, Failure> {
        let mut out = Vec::new();
        self.exec(command, |r| {
            if let Response::Fetch(seq, attrs) = r {
                out.push(Fetched::from_response(*seq, attrs));
            }
        })
        .await?;
        Ok(out)
    }

    /// Runs a FETCH, turning each response into a record as it arrives so that only one
    /// message body is held at a time.
    pub async fn fetch_messages(
        &mut self,
        command: &str,
        mailbox: &str,
        uid_validity: u32,
        cap: u32,
        min_uid_exclusive: u32,
    ) -> Result<Vec<Message>, Failure> {
        let mut out = Vec::new();
        let mut truncated = Vec::new();
        self.exec(command, |r| {
            if let Response::Fetch(seq, attrs) = r {
                let f = Fetched::from_response(*seq, attrs);
                // Unsolicited flag updates carry no body: they are not answers.
                if f.body.is_none() || f.uid.is_none_or(|u| u <= min_uid_exclusive) {
                    return;
                }
                let uid = f.uid;
                if let Some(m) = f.into_message(mailbox, uid_validity, cap) {
                    if m.warnings.first().is_some_and(|w| w.starts_with(TRUNCATED)) {
                        truncated.extend(uid.map(|u| (u, out.len())));
                    }
                    out.push(m);
                }
            }
        })
        .await?;
        if !truncated.is_empty() {
            self.attachments_from_structure(&mut out, &truncated, cap)
                .await?;
        }
        Ok(out)
    }

    /// For records cut at the size cap, lists the attachments from BODYSTRUCTURE (the
    /// whole message, with exact part numbers), with exact decoded sizes (`sizes.rs`).
    async fn attachments_from_structure(
        &mut self,
        records: &mut [Message],
        truncated: &[(u32, usize)],
        cap: u32,
    ) -> Result<(), Failure> {
        let set = UidSet::from_uids(truncated.iter().map(|(u, _)| *u)).to_string();
        let mut found: Vec<(u32, Vec<crate::proto::structure::StructurePart>)> = Vec::new();
        let result = self
            .exec(&format!("UID FETCH {set} (UID BODYSTRUCTURE)"), |r| {
                if let Response::Fetch(_, attrs) = r {
                    let uid = attrs.iter().find_map(|a| match a {
                        AttributeValue::Uid(u) => Some(*u),
                        _ => None,
                    });
                    let structure = attrs.iter().find_map(|a| match a {
                        AttributeValue::BodyStructure(b) => Some(b),
                        _ => None,
                    });
                    if let (Some(uid), Some(structure)) = (uid, structure) {
                        found.push((uid, crate::proto::structure::attachment_parts(structure)));
                    }
                }
            })
            .await;
        match result {
            Ok(_) => {}
            // Keep what the first bytes told.
            Err(Failure::No(_) | Failure::Bad(_)) => return Ok(()),
            Err(other) => return Err(other),
        }
        for (uid, mut parts) in found {
            let Some(&(_, index)) = truncated.iter().find(|(u, _)| *u == uid) else {
                continue;
            };
            let estimates = self.exact_sizes(uid, &mut parts, cap).await?;
            let attachments: Vec<_> = parts.into_iter().map(|p| p.attachment).collect();
            let m = &mut records[index];
            m.attachment_count = attachments.len() as u32;
            m.has_attachments = attachments.iter().any(|a| !a.is_inline);
            m.attachments = attachments;
            if let Some(w) = m.warnings.first_mut()
                && let Some(head) = w.split(':').next()
            {
                *w = format!(
                    "{head}: the preview may be cut short; attachments are listed from the server's BODYSTRUCTURE"
                );
            }
            if !estimates.is_empty() {
                m.warnings.push(format!(
                    "the sizes of attachments {} are estimated from their encoded size: the server did not return their bytes",
                    estimates.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// `UID SEARCH …` → the UIDs.
    pub async fn uid_search(&mut self, criteria: &str) -> Result<Vec<u32>, Failure> {
        let mut out = Vec::new();
        self.exec(&format!("UID SEARCH {criteria}"), |r| {
            if let Response::MailboxData(MailboxDatum::Search(ids)) = r {
                out.extend_from_slice(ids);
            }
        })
        .await?;
        Ok(out)
    }

    /// Flag changes (and with QRESYNC, expunges) since `modseq` among UIDs `1:last`.
    pub async fn changes_since(
        &mut self,
        last: u32,
        modseq: u64,
        vanished: bool,
    ) -> Result<Changes, Failure> {
        let mut changes = Changes::default();
        let modifier = if vanished {
            format!("(CHANGEDSINCE {modseq} VANISHED)")
        } else {
            format!("(CHANGEDSINCE {modseq})")
        };
        self.exec(
            &format!("UID FETCH 1:{last} (UID FLAGS) {modifier}"),
            |r| match r {
                Response::Fetch(seq, attrs) => {
                    let f = Fetched::from_response(*seq, attrs);
                    if let Some(uid) = f.uid {
                        changes.flags.push((uid, f.is_seen()));
                    }
                }
                Response::Vanished { uids, .. } => {
                    for range in uids {
                        for uid in range.clone() {
                            changes.vanished.insert(uid);
                        }
                    }
                }
                _ => {}
            },
        )
        .await?;
        Ok(changes)
    }

    /// LIST (with LIST-STATUS counts where offered).
    pub async fn list(
        &mut self,
    ) -> Result<(Vec<Listed>, Vec<(String, Option<u64>, Option<u64>)>), Failure> {
        let command = match (self.caps.list_status, self.caps.special_use) {
            (true, true) => "LIST \"\" \"*\" RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN))",
            (true, false) => "LIST \"\" \"*\" RETURN (STATUS (MESSAGES UNSEEN))",
            (false, _) => "LIST \"\" \"*\"",
        };
        let mut names = Vec::new();
        let mut statuses = Vec::new();
        self.exec(command, |r| match r {
            Response::MailboxData(MailboxDatum::List(MailboxListData {
                name_attributes,
                delimiter,
                name,
            })) => names.push(Listed {
                // The parser keeps a quoted string's escapes (`\"`, `\\`).
                wire_name: crate::proto::unescape_quoted(name),
                delimiter: delimiter.as_deref().map(crate::proto::unescape_quoted),
                attributes: name_attributes.iter().map(attribute_text).collect(),
            }),
            Response::MailboxData(MailboxDatum::Status { mailbox, status }) => {
                let mut messages = None;
                let mut unseen = None;
                for s in status {
                    match s {
                        async_imap::imap_proto::StatusAttribute::Messages(n) => {
                            messages = Some(u64::from(*n))
                        }
                        async_imap::imap_proto::StatusAttribute::Unseen(n) => {
                            unseen = Some(u64::from(*n))
                        }
                        _ => {}
                    }
                }
                statuses.push((crate::proto::unescape_quoted(mailbox), messages, unseen));
            }
            _ => {}
        })
        .await?;
        Ok((names, statuses))
    }

    /// Logs out, ignoring errors (the connection is going away anyway).
    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}

/// Names of LIST attributes as text, for [`crate::proto::role_of`].
pub fn attribute_text(attr: &NameAttribute<'_>) -> String {
    match attr {
        NameAttribute::NoInferiors => "\\Noinferiors".into(),
        NameAttribute::NoSelect => "\\Noselect".into(),
        NameAttribute::Marked => "\\Marked".into(),
        NameAttribute::Unmarked => "\\Unmarked".into(),
        NameAttribute::All => "\\All".into(),
        NameAttribute::Archive => "\\Archive".into(),
        NameAttribute::Drafts => "\\Drafts".into(),
        NameAttribute::Flagged => "\\Flagged".into(),
        NameAttribute::Junk => "\\Junk".into(),
        NameAttribute::Sent => "\\Sent".into(),
        NameAttribute::Trash => "\\Trash".into(),
        NameAttribute::Extension(s) => s.to_string(),
        other => format!("{other:?}"),
    }
}

pub fn map_io_error(e: &std::io::Error) -> Failure {
    // A response over the budget (the stream's guard).
    if let Some(too_large) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<crate::proto::guard::TooLarge>())
    {
        return Failure::Garbled(too_large.to_string());
    }
    // async-imap reports unparseable server data as io::ErrorKind::Other with the
    // parser's message; real socket trouble has a specific kind.
    if e.kind() == std::io::ErrorKind::Other && e.to_string().contains("during parsing of") {
        let text = e.to_string();
        let clipped: String = text.chars().take(300).collect();
        Failure::Garbled(format!("cannot parse the server's response: {clipped}"))
    } else {
        Failure::Connection(format!("connection error: {e}"))
    }
}

/// async-imap formats a NO/BAD as `code: None, info: Some("[CODE] text")`: keep the
/// server's text.
fn server_text(formatted: &str) -> String {
    if let Some(start) = formatted.find("info: Some(\"")
        && let Some(body) = formatted[start + 12..].strip_suffix("\")")
    {
        return decode_text(&body.replace("\\\"", "\"").replace("\\\\", "\\"));
    }
    decode_text(formatted)
}

/// Maps async-imap's errors.
pub fn map_imap_error(e: async_imap::error::Error) -> Failure {
    use async_imap::error::Error as E;
    match e {
        E::Io(io) => map_io_error(&io),
        E::ConnectionLost => Failure::Connection("connection lost".into()),
        E::Bad(m) => Failure::Bad(server_text(&m)),
        E::No(m) => Failure::No(server_text(&m)),
        E::Parse(p) => Failure::Garbled(format!("cannot parse the server's response: {p}")),
        E::Validate(v) => Failure::Bad(v.to_string()),
        other => Failure::Garbled(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_codes() {
        let caps = Caps::from_atoms(["IMAP4rev1", "move", "UIDPLUS", "QRESYNC", "ENABLE"]);
        assert!(caps.move_ && caps.uidplus && caps.condstore && caps.qresync && !caps.list_status);
        assert!(
            !Caps::from_atoms(["QRESYNC"]).qresync,
            "QRESYNC needs ENABLE"
        );
        assert_eq!(
            response_code("[NONEXISTENT] Mailbox doesn't exist: X").as_deref(),
            Some("NONEXISTENT")
        );
        assert_eq!(
            response_code("[AUTHENTICATIONFAILED] Authentication failed.").as_deref(),
            Some("AUTHENTICATIONFAILED")
        );
        assert_eq!(response_code("no code"), None);
        let err = Failure::No("[AUTHENTICATIONFAILED] Authentication failed.".into())
            .into_error("cannot log in", ErrorKind::Other);
        assert_eq!(err.kind(), ErrorKind::ReauthRequired);
        assert_eq!(err.code(), Some("AUTHENTICATIONFAILED"));
        assert_eq!(
            err.to_string(),
            "cannot log in: [AUTHENTICATIONFAILED] Authentication failed."
        );
        let err = Failure::Garbled("x".into()).into_error("cannot sync", ErrorKind::Other);
        assert_eq!(err.kind(), ErrorKind::Protocol);
        let err = Failure::Connection("reset".into()).into_error("cannot sync", ErrorKind::Other);
        assert_eq!(err.kind(), ErrorKind::Transient);
    }

    #[test]
    fn async_imap_error_text() {
        assert_eq!(
            server_text(
                r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication \"failed\".")"#
            ),
            r#"[AUTHENTICATIONFAILED] Authentication "failed"."#
        );
        assert_eq!(
            server_text("code: None, info: None"),
            "code: None, info: None"
        );
    }

    #[test]
    fn internal_dates() {
        let want = "1996-07-17T09:44:25+00:00";
        for s in ["17-Jul-1996 02:44:25 -0700", " 17-Jul-1996 02:44:25 -0700"] {
            assert_eq!(
                parse_internal_date(s).map(|d| d.to_rfc3339()).as_deref(),
                Some(want),
                "{s}"
            );
        }
        assert_eq!(
            parse_internal_date(" 5-Jan-2025 10:00:00 +0000")
                .map(|d| d.to_rfc3339())
                .as_deref(),
            Some("2025-01-05T10:00:00+00:00")
        );
        assert_eq!(parse_internal_date("garbage"), None);
    }
}
