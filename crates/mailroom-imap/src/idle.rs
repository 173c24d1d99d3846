//! IMAP IDLE (RFC 2177) on a connection of its own: wait until the server reports a
//! change to one mailbox.

use std::time::Duration;

use async_imap::imap_proto::{MailboxDatum, Outcome, Response, Status};
use mailroom_core::{ConnectorError, ErrorKind, FolderRef, SyncCursor};

use crate::connector::ImapConnector;
use crate::proto::cursor::Cursor;
use crate::proto::guard::decode_text;
use crate::proto::utf7;
use crate::session::{Conn, Failure, Selected, map_imap_error, map_io_error, next_response};

/// RFC 2177: a client should re-issue IDLE at least every 29 minutes, or the server
/// may log it out. 25 minutes leaves room for a slow network.
pub const DEFAULT_IDLE_RENEW: Duration = Duration::from_secs(25 * 60);

/// What ended an [`ImapIdle::wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdleEvent {
    /// The server reported a change to the mailbox (`EXISTS`, `EXPUNGE`, `FETCH`,
    /// `VANISHED`): sync it.
    Changed,
    /// The renewal time passed without a change; IDLE was ended cleanly and can be
    /// issued again.
    Renew,
}

/// A logged-in connection of its own (not the connector's shared one), with a mailbox
/// selected read-only (`EXAMINE`), for [`wait`](ImapIdle::wait)ing in IDLE.
#[derive(Debug)]
pub struct ImapIdle {
    conn: Conn,
    mailbox: String,
    /// The mailbox as `EXAMINE` found it.
    state: Selected,
}

impl ImapConnector {
    /// Opens a new connection for IDLE on `folder` (logging in again: with XOAUTH2, a
    /// token that expired is refreshed first; collect it with
    /// [`take_refreshed_credentials`](mailroom_core::Connector::take_refreshed_credentials)).
    ///
    /// Fails with [`ErrorKind::Unsupported`] when the server does not announce IDLE.
    pub async fn idle(&self, folder: &FolderRef) -> Result<ImapIdle, ConnectorError> {
        let mut conn = self.open_connection().await?;
        let context = format!("cannot idle on {folder} of {}", self.describe());
        if !conn.caps.idle {
            conn.logout().await;
            return Err(ConnectorError::new(
                ErrorKind::Unsupported,
                format!("{context}: the server does not announce IDLE"),
            ));
        }
        let mailbox = match self.mailbox_name(&mut conn, folder).await {
            Ok(m) => m,
            Err(e) => {
                conn.logout().await;
                return Err(e.context(&context));
            }
        };
        let state = match conn.examine(&utf7::encode(&mailbox)).await {
            Ok(state) => state,
            Err(f) => return Err(f.into_error(&context, ErrorKind::NotFound)),
        };
        Ok(ImapIdle {
            conn,
            mailbox,
            state,
        })
    }
}

impl ImapIdle {
    /// The decoded name of the mailbox watched.
    pub fn mailbox(&self) -> &str {
        &self.mailbox
    }

    /// Whether the mailbox, as `EXAMINE` found it, holds changes that a sync which
    /// stored `cursor` did not see: IDLE reports only what changes after `EXAMINE`, so
    /// what came between that sync and this connection must be asked for here. True
    /// when `cursor` is not an IMAP cursor, for another UIDVALIDITY, when UIDNEXT is
    /// past the last UID it delivered, when HIGHESTMODSEQ moved past its own (flags,
    /// expunges), or, without CONDSTORE, when the number of messages is not the number
    /// it knows.
    pub fn is_past(&self, cursor: &SyncCursor) -> bool {
        moved_past(&self.state, cursor)
    }

    /// Waits in IDLE until the server reports a change ([`IdleEvent::Changed`]) or
    /// `renew_after` passes ([`IdleEvent::Renew`]); either way IDLE is ended (`DONE`)
    /// before this returns, so the connection can idle again. A dropped connection or
    /// a `BYE` is [`ErrorKind::Transient`]: open a new one.
    pub async fn wait(&mut self, renew_after: Duration) -> Result<IdleEvent, ConnectorError> {
        let context = format!("cannot idle on {}", self.mailbox);
        self.conn
            .idle(renew_after)
            .await
            .map_err(|f| f.into_error(&context, ErrorKind::Other))
    }

    /// Logs out (errors ignored).
    pub async fn logout(self) {
        self.conn.logout().await;
    }
}

/// [`ImapIdle::is_past`] for a mailbox that `EXAMINE` found as `s`.
fn moved_past(s: &Selected, cursor: &SyncCursor) -> bool {
    let Some(c) = Cursor::decode(&cursor.0) else {
        return true;
    };
    s.uid_validity != c.uid_validity
        || s.uid_next
            .is_some_and(|next| next > c.last_uid.saturating_add(1))
        || (s.highest_modseq > 0 && s.highest_modseq > c.highest_modseq)
        || (s.highest_modseq == 0
            && c.known
                .as_ref()
                .is_some_and(|known| known.len() != u64::from(s.exists)))
}

impl Conn {
    /// One IDLE round: `IDLE`, wait for a change or `renew_after`, `DONE`.
    pub async fn idle(&mut self, renew_after: Duration) -> Result<IdleEvent, Failure> {
        let result = self.idle_inner(renew_after).await;
        crate::telemetry::command(
            "IDLE",
            &result
                .as_ref()
                .map(|_| crate::session::Done::default())
                .map_err(|f| match f {
                    Failure::No(m) => Failure::No(m.clone()),
                    Failure::Bad(m) => Failure::Bad(m.clone()),
                    other => Failure::Connection(format!("{other:?}")),
                }),
        );
        result
    }

    async fn idle_inner(&mut self, renew_after: Duration) -> Result<IdleEvent, Failure> {
        let timeout = self.timeout();
        let session = self.session_mut();
        let tag = session.run_command("IDLE").await.map_err(map_imap_error)?;
        // Until the continuation: the server accepted IDLE.
        let started = tokio::time::timeout(timeout, async {
            loop {
                let response = next_response!(session);
                match response.parsed() {
                    Response::Continue { .. } => return Ok(()),
                    Response::Done {
                        tag: t,
                        status,
                        outcome: Outcome { information, .. },
                    } if t == &tag => {
                        let text = decode_text(information.as_deref().unwrap_or(""));
                        return Err(match status {
                            Status::No => Failure::No(text),
                            _ => Failure::Bad(text),
                        });
                    }
                    other => bye(other)?,
                }
            }
        })
        .await;
        match started {
            Ok(result) => result?,
            Err(_) => return Err(no_answer(timeout)),
        }
        let event = match tokio::time::timeout(renew_after, async {
            loop {
                let response = next_response!(session);
                let parsed = response.parsed();
                if changed(parsed) {
                    return Ok(IdleEvent::Changed);
                }
                bye(parsed)?;
            }
        })
        .await
        {
            Ok(result) => result?,
            Err(_) => IdleEvent::Renew,
        };
        session
            .run_command_untagged("DONE")
            .await
            .map_err(map_imap_error)?;
        let done = tokio::time::timeout(timeout, async {
            loop {
                let response = next_response!(session);
                match response.parsed() {
                    Response::Done {
                        tag: t,
                        status: Status::Ok,
                        ..
                    } if t == &tag => return Ok(()),
                    Response::Done {
                        tag: t,
                        outcome: Outcome { information, .. },
                        ..
                    } if t == &tag => {
                        return Err(Failure::Bad(decode_text(
                            information.as_deref().unwrap_or("IDLE failed"),
                        )));
                    }
                    other => bye(other)?,
                }
            }
        })
        .await;
        match done {
            Ok(result) => result?,
            Err(_) => return Err(no_answer(timeout)),
        }
        Ok(event)
    }
}

/// A change to the selected mailbox.
fn changed(response: &Response<'_>) -> bool {
    matches!(
        response,
        Response::MailboxData(MailboxDatum::Exists(_))
            | Response::Expunge(_)
            | Response::Fetch(..)
            | Response::Vanished { .. }
    )
}

fn bye(response: &Response<'_>) -> Result<(), Failure> {
    if let Response::Data {
        status: Status::Bye,
        outcome: Outcome { information, .. },
    } = response
    {
        return Err(Failure::Bye(decode_text(
            information.as_deref().unwrap_or("BYE"),
        )));
    }
    Ok(())
}

fn no_answer(timeout: Duration) -> Failure {
    Failure::Connection(format!("no answer within {} s", timeout.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::uidset::UidSet;

    /// Without CONDSTORE (HIGHESTMODSEQ 0) an expunge moves no UIDNEXT and no
    /// modification sequence: the count of messages against the UIDs the cursor knows
    /// is what tells it (the test Dovecot has CONDSTORE, so only this test shows it).
    #[test]
    fn without_condstore_the_count_tells_an_expunge() {
        let cursor = |known: Option<&[u32]>| {
            SyncCursor(
                Cursor {
                    uid_validity: 7,
                    highest_modseq: 0,
                    last_uid: 5,
                    known: known.map(|k| UidSet::from_uids(k.iter().copied())),
                }
                .encode(),
            )
        };
        let found = |exists, uid_next| Selected {
            uid_validity: 7,
            highest_modseq: 0,
            exists,
            uid_next,
        };
        let known = cursor(Some(&[1, 3, 5]));
        assert!(!moved_past(&found(3, Some(6)), &known), "nothing moved");
        assert!(moved_past(&found(2, Some(6)), &known), "one expunged");
        assert!(moved_past(&found(4, Some(7)), &known), "one appended");
        // A server that sends no UIDNEXT: the count still tells new mail.
        assert!(
            moved_past(&found(4, None), &known),
            "one appended, no UIDNEXT"
        );
        assert!(
            !moved_past(&found(3, None), &known),
            "nothing moved, no UIDNEXT"
        );
        // Without the known UIDs (expunges come as VANISHED), only UIDNEXT tells.
        let unknown = cursor(None);
        assert!(!moved_past(&found(2, Some(6)), &unknown));
        assert!(moved_past(&found(3, Some(7)), &unknown));
        // Another UIDVALIDITY, or a cursor that is not IMAP's, always moved.
        let other = Selected {
            uid_validity: 8,
            ..found(3, Some(6))
        };
        assert!(moved_past(&other, &known));
        assert!(moved_past(
            &found(3, Some(6)),
            &SyncCursor("graph delta".into())
        ));
    }
}
