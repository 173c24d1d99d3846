//! `mailroom-imap`: the IMAP connector of Mailroom, for any IMAP server and for
//! Outlook's IMAP with SASL XOAUTH2.
//!
//! - [`ImapConnector`] implements [`Connector`]; build it from stored
//!   [`ImapCredentials`] and the account's email with
//!   [`ImapConnector::new`] and [`ImapOptions`] (custom CA file, authority URL for
//!   token refreshes, page size, per-message byte cap, timeouts, the folder-run deadline).
//! - [`proto`] is the pure half (modified UTF-7, UID sets, the sync cursor, remote ids,
//!   MIME → record, BODYSTRUCTURE → attachments, exact decoded part sizes, SASL
//!   strings); the transport (TCP, rustls, async-imap) wraps it. An attachment's
//!   `size` is the exact size of its content (transfer encoding undone), above the
//!   byte cap too.
//! - [`ImapConnector::idle`] opens a connection of its own in IDLE (RFC 2177) on one
//!   mailbox; [`ImapIdle::wait`] returns when the server reports a change or when IDLE
//!   must be re-issued ([`DEFAULT_IDLE_RENEW`], 25 minutes).
//! - With the `testing` feature, [`testing::Dovecot`] runs a private Dovecot.
//!
//! ```no_run
//! use mailroom_imap::{Connector, Credentials, FolderRef, ImapConnector, ImapOptions};
//!
//! # async fn demo(json: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let Credentials::Imap(imap) = Credentials::from_json(json)? else { unreachable!() };
//! let connector = ImapConnector::new(imap, "alice@example.com", ImapOptions::default())?;
//! let mut cursor = None;
//! loop {
//!     let page = connector.sync_folder(&FolderRef::INBOX, cursor).await?;
//!     // store page.changes and page.cursor in one transaction …
//!     if let Some(creds) = connector.take_refreshed_credentials() {
//!         // … and persist refreshed XOAUTH2 tokens right away
//! #       drop(creds);
//!     }
//!     cursor = Some(page.cursor);
//!     if page.complete {
//!         break;
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Connections and errors
//!
//! One connection per connector, opened on first use and shared (calls are
//! serialised); a broken one is dropped, a stale one replaced once. Plain text is only
//! allowed to loopback hosts. A refused login (`NO [AUTHENTICATIONFAILED]`, a revoked
//! refresh token) is [`ErrorKind::ReauthRequired`], a network
//! failure or timeout `Transient`, an unparseable server answer `Protocol`.
//!
//! With XOAUTH2, the token comes from an [`oauth::TokenSession`] for the Outlook
//! IMAP resource; when the server refuses it, the session refreshes once and the login
//! is retried. [`take_refreshed_credentials`](Connector::take_refreshed_credentials)
//! then returns `Credentials::Imap` with the new tokens.
//!
//! # Secrets
//!
//! Passwords and tokens stay in `mailroom-core`'s secret types; `ImapConnector`'s
//! `Debug` shows host, port, user and the auth method only, and errors never quote a
//! secret. One caveat: async-imap itself logs every command it sends (LOGIN with its
//! password, the base64 SASL response) through the `log` crate at TRACE level under
//! the target `async_imap::imap_stream`. Never enable TRACE for that target outside a
//! debugging session with throw-away credentials.
//!
//! # Records
//!
//! Sync and `fetch_page` never download whole messages. One FETCH per page asks
//! `BODYSTRUCTURE`, `BODY.PEEK[HEADER]` and `BODY.PEEK[1]<0.4096>` (part 1 is the text
//! of most mail); the MIME tree is written back with empty bodies after the header
//! ([`proto::outline`]) and parsed by `mail-parser` like a whole message, so the text
//! part, the attachment list (names, content types, inline flags, content ids, IMAP
//! part numbers) follow the same rules. Then, pipelined and grouped by items, one
//! FETCH asks what is still missing: the first 4 KiB of the text part when it is not
//! part 1, the first and last bytes of base64 attachments. The preview is decoded from
//! those bytes (transfer encoding, charset, HTML made text); when they are cut before
//! 2000 characters, more of the part is read (up to
//! [`ImapOptions::max_message_bytes`]). Every fetch is a `PEEK` (never marks mail read).
//! For normal mail the record equals the one a whole-message read gives (a test
//! proves it on the fixtures and the benchmark corpus); a hostile message may lack the
//! warnings only its full bytes reveal (a base64 part without end boundary).
//! A BODYSTRUCTURE our parser cannot read makes the page be read whole.
//!
//! [`ImapOptions::whole_messages`] (and always `get_message`) reads messages whole
//! instead, with `BODY.PEEK[]<0.N>` up to [`ImapOptions::max_message_bytes`]: any
//! charset, encoded words, a 2000-character preview, attachments with their IMAP part
//! numbers. A malformed message becomes a record with what could be
//! read plus `warnings`. A message above the cap gets its preview from the bytes read
//! and its attachment list from the server's `BODYSTRUCTURE` (exact part numbers and
//! names), plus a warning. An attachment's `size` is its exact decoded size (the bytes
//! of the file, from the transfer encoding and the encoded bytes; see
//! [`proto::size`]): a base64 part's first and last bytes give it, a
//! quoted-printable part is counted in pieces of at most the cap; only if the server
//! refuses those bytes does the size stay an estimate, and a warning names the parts. A message the server cannot return at all (a
//! `NO`, or Dovecot's `BYE` on a broken file) becomes a record with only its id and a
//! warning, so it never blocks a folder. `remote_id` is
//! `{mailbox}:{UIDVALIDITY}:{UID}` with the decoded mailbox name.
//!
//! # Sync
//!
//! The cursor is `imap1;uv=UIDVALIDITY;ms=HIGHESTMODSEQ;last=UID[;known=SET]`:
//!
//! - A call SELECTs the mailbox, except for the next page of a run this session is
//!   reading (below). A missing or foreign cursor, or one whose
//!   UIDVALIDITY differs, starts a *reset* enumeration (`reset = true`): UIDs are read
//!   in ascending order, one page of at most `page_size` messages per call, each page
//!   ending with a cursor whose `last` is its highest UID. A crash between pages
//!   resumes from the stored cursor: nothing is lost (the next page starts after
//!   `last`) and nothing is doubled (pages never overlap; replays are upserts).
//! - New messages are always "UID > last", located by sequence number (`UID FETCH
//!   last (UID)` then `FETCH n:m`) so a page costs O(page), not O(folder).
//! - The next page of a run on the same session (same mailbox still selected, same
//!   UIDVALIDITY, the cursor's `last` the one the previous page ended with, no EXPUNGE
//!   or `[EXPUNGEISSUED]` since) goes straight to `FETCH n+1:m`: no SELECT and no
//!   `UID FETCH last`. (A SELECT of a 10,000-message Maildir folder costs Dovecot
//!   only ~3 ms of CPU, but the page's FETCH after it costs twice as much as on a
//!   session that stays selected: 45 instead of 20 µs per message, benchmark corpus.) New messages announced by EXISTS meanwhile extend the
//!   run. The page that reaches the end of the folder always SELECTs again, so `ms`
//!   comes from a fresh SELECT as before. A message another session expunged
//!   meanwhile comes back empty with `OK [EXPUNGEISSUED]`: the page then keeps only
//!   the UIDs a `UID SEARCH` (after a NOOP) still finds.
//! - On the page that reaches the end of the folder (`complete = true`), changes to
//!   messages already delivered (UID ≤ last) are collected, then `ms` moves to the
//!   HIGHESTMODSEQ seen at this page's SELECT (on a reset, to the one at the reset):
//!   - with QRESYNC, `UID FETCH 1:last (FLAGS) (CHANGEDSINCE ms VANISHED)` gives
//!     `VANISHED (EARLIER)` UIDs → `Change::Remove`, and flag changes →
//!     `Change::ReadState`; the cursor has no `known` set;
//!   - without QRESYNC, the cursor carries the delivered UIDs as ranges (`known=1:500,
//!     502:9000`), diffed against `UID SEARCH UID 1:last` for `Remove`s, and
//!     CONDSTORE `CHANGEDSINCE` gives `ReadState`s;
//!   - when HIGHESTMODSEQ did not move since the cursor, nothing is asked at all;
//!   - without CONDSTORE, read-state changes of delivered messages are not reported.
//! - A changed UIDVALIDITY (mailbox deleted and recreated) is a reset: every message
//!   comes again with its new `remote_id`, and the caller drops what was not re-sent
//!   when the enumeration completes, so no duplicates remain.
//!
//! Memory per page is bounded by `page_size` records (with their headers, outlines and
//! first text bytes); a whole message body is held one at a time.
//! Time per run is bounded too: a folder's run (from its first page to the one that
//! completes, which new mail keeps extending) ends at
//! [`ImapOptions::folder_run_deadline`] (4 h) with an [`ErrorKind::Transient`] error; the
//! next run goes on from the stored cursor.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod connector;
mod idle;
mod partial;
pub mod proto;
mod session;
mod sizes;
mod sync;
mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
mod transport;

pub use connector::{ImapConnector, ImapOptions};
pub use idle::{DEFAULT_IDLE_RENEW, IdleEvent, ImapIdle};
pub use transport::is_loopback_host;

/// Tokens for XOAUTH2: the whole of `mailroom-oauth` ([`oauth::TokenSession`] with
/// [`oauth::Resource::OutlookImap`]).
pub use mailroom_oauth as oauth;

// The connector vocabulary of `mailroom-core`, so that this crate stands alone: the
// `Connector` trait its methods come from, the folder, query, message, cursor and error
// types they take and return, and the credentials `ImapConnector` is built from.
pub use mailroom_core::{
    AccessToken, AccountInfo, Attachment, Change, ClientSecret, Connector, ConnectorError,
    Credentials, DEFAULT_IMAP_PORT, DeleteMode, EmailAddress, ErrorKind, FetchQuery, Folder,
    FolderPath, FolderRef, FolderRefError, ImapAuth, ImapCredentials, ImapTls, Message,
    MessagePage, OAuthCredentials, PageToken, Password, Protocol, RefreshToken, Result, SyncCursor,
    SyncPage, WellKnownFolder, async_trait, chrono, fetch_all,
};
