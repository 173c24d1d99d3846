//! Incremental sync of one mailbox, one bounded page per call (see the crate docs for
//! the design).

use mailroom_core::{Change, Message, SyncCursor, SyncPage};

use crate::proto::cursor::Cursor;
use crate::proto::remote_id::RemoteId;
use crate::proto::uidset::UidSet;
use crate::proto::utf7;
use crate::session::{Conn, Continuation, Failure, OpError, Reopen, Selected};

/// The FETCH items of a message record: flags, dates, size and the first `cap` bytes.
pub fn record_items(cap: u32) -> String {
    format!("(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[]<0.{cap}>)")
}

/// Limits of one page.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// New messages per page.
    pub page_size: u32,
    /// Bytes of each message read for its record.
    pub max_message_bytes: u32,
    /// Read whole messages (their first `max_message_bytes`) instead of header,
    /// BODYSTRUCTURE and the parts a record needs.
    pub whole_messages: bool,
}

/// Reads the records of the messages `target` names (`FETCH 1:200`, `UID FETCH 5,9`),
/// above UID `min_uid_exclusive`: partially (crate::partial), or whole. A BODYSTRUCTURE
/// our parser cannot read breaks the connection: then the page is read again whole on
/// a new one.
pub async fn read_records(
    conn: &mut Conn,
    target: &str,
    mailbox: &str,
    uid_validity: u32,
    limits: Limits,
    min_uid_exclusive: u32,
    reopen: &dyn Reopen,
) -> Result<Vec<Message>, OpError> {
    let cap = limits.max_message_bytes;
    if !limits.whole_messages {
        let command = format!("{target} {}", crate::partial::OUTLINE_ITEMS);
        match conn
            .fetch_outlined(&command, mailbox, uid_validity, cap, min_uid_exclusive)
            .await
        {
            Ok(messages) => return Ok(messages),
            Err(Failure::Garbled(text)) => {
                tracing::warn!(
                    mailbox,
                    %text,
                    "imap partial fetch unreadable; reading the messages whole"
                );
                *conn = reopen.reopen().await?;
                let again = conn.select(&utf7::encode(mailbox)).await?;
                if again.uid_validity != uid_validity {
                    return Err(Failure::Connection(
                        "the folder's UIDVALIDITY changed during the sync".into(),
                    )
                    .into());
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
    let command = format!("{target} {}", record_items(cap));
    Ok(conn
        .fetch_messages(&command, mailbox, uid_validity, cap, min_uid_exclusive)
        .await?)
}

/// One `sync_folder` call for `mailbox` (decoded name).
pub async fn sync_page(
    conn: &mut Conn,
    mailbox: &str,
    cursor: Option<&SyncCursor>,
    limits: Limits,
    reopen: &dyn Reopen,
) -> Result<SyncPage, OpError> {
    let wire = utf7::encode(mailbox);
    let decoded = cursor.and_then(|c| Cursor::decode(c.as_str()));
    // The next page of a run this session is reading needs no SELECT and no `UID FETCH
    // last`; the last page of a run always selects again (fresh HIGHESTMODSEQ).
    let continued = continuation(conn, &wire, decoded.as_ref(), limits.page_size);
    let (sel, start) = match continued {
        Some((sel, next_seq)) => (sel, Some(next_seq)),
        None => (conn.select(&wire).await?, None),
    };
    if cursor.is_some() && decoded.is_none() {
        tracing::warn!(mailbox, "unreadable imap sync cursor: resyncing the folder");
    }
    let qresync = conn.caps.qresync;
    let usable =
        decoded.filter(|c| c.uid_validity == sel.uid_validity && (c.known.is_some() || qresync));
    if let Some(c) = &usable {
        tracing::debug!(mailbox, last_uid = c.last_uid, "imap sync resumes");
    } else if cursor.is_some() {
        tracing::info!(
            mailbox,
            uid_validity = sel.uid_validity,
            "imap folder reset: full enumeration"
        );
    }
    let reset = usable.is_none();
    let mut cur = usable.unwrap_or_else(|| Cursor {
        uid_validity: sel.uid_validity,
        // Snapshot at the start of the enumeration: flag changes and expunges after it
        // are reported when the enumeration completes.
        highest_modseq: sel.highest_modseq,
        last_uid: 0,
        known: (!qresync).then(UidSet::new),
    });
    let old_last = cur.last_uid;

    let (new_messages, more) =
        fetch_new(conn, mailbox, &sel, old_last, start, limits, reopen).await?;

    let mut changes = Vec::new();
    if !more {
        if !reset && old_last > 0 {
            // Nothing to ask when HIGHESTMODSEQ did not move. With the known set, the
            // count must agree too: a CONDSTORE-only server need not bump HIGHESTMODSEQ
            // on EXPUNGE (QRESYNC servers must).
            let counts_agree = cur.known.as_ref().is_none_or(|known| {
                known.len() + new_messages.len() as u64 == u64::from(sel.exists)
            });
            let unchanged =
                sel.highest_modseq != 0 && sel.highest_modseq == cur.highest_modseq && counts_agree;
            if !unchanged {
                check_old(conn, mailbox, &sel, &mut cur, old_last, &mut changes).await?;
            }
        }
        cur.highest_modseq = sel.highest_modseq;
    }
    for m in new_messages {
        if let Some(id) = RemoteId::parse(&m.remote_id) {
            cur.last_uid = cur.last_uid.max(id.uid);
            if let Some(known) = &mut cur.known {
                known.insert(id.uid);
            }
        }
        changes.push(Change::Upsert(m));
    }
    Ok(SyncPage {
        changes,
        cursor: SyncCursor(cur.encode()),
        reset,
        complete: !more,
    })
}

/// The selected mailbox's state and the sequence number to read from when `conn`
/// read the page before this one of the same run (same mailbox, UIDVALIDITY and last
/// UID, no EXPUNGE since, no SELECT since) and this page does not reach the end of the
/// mailbox. Consumes the session's continuation either way.
fn continuation(
    conn: &mut Conn,
    wire: &str,
    cursor: Option<&Cursor>,
    page_size: u32,
) -> Option<(Selected, u32)> {
    let cont = conn.continuation.take()?;
    let cursor = cursor?;
    let (name, sel) = conn.selected.as_ref()?;
    let same = cont.wire == wire
        && (cursor.known.is_some() || conn.caps.qresync)
        && name == wire
        && cont.uid_validity == sel.uid_validity
        && cursor.uid_validity == sel.uid_validity
        && cursor.last_uid == cont.last_uid
        && cont.expunges_seen == conn.expunges_seen
        && cont.serial == conn.serial();
    let end = u64::from(cont.next_seq) + u64::from(page_size.max(1)) - 1;
    (same && end < u64::from(sel.exists)).then(|| (sel.clone(), cont.next_seq))
}

/// Messages with UID > `last`, at most a page, ascending; and whether more remain.
/// `known_start`: the sequence number of the first message above `last`, when known.
async fn fetch_new(
    conn: &mut Conn,
    mailbox: &str,
    sel: &Selected,
    last: u32,
    known_start: Option<u32>,
    limits: Limits,
    reopen: &dyn Reopen,
) -> Result<(Vec<Message>, bool), OpError> {
    if sel.exists == 0 {
        return Ok((Vec::new(), false));
    }
    let page = limits.page_size.max(1);
    let expunges_before = conn.expunges_seen;
    let serial = conn.serial();
    // Where does UID `last` sit? Sequence numbers are stable while no EXPUNGE arrives,
    // and the server may not send one during a (non-UID) FETCH.
    let start = if let Some(start) = known_start {
        Some(start)
    } else if last == 0 {
        Some(1)
    } else {
        let found = conn.fetch(&format!("UID FETCH {last} (UID)")).await?;
        found
            .iter()
            .find(|f| f.uid == Some(last))
            .filter(|_| conn.expunges_seen == expunges_before)
            .map(|f| f.seq + 1)
    };
    let mut range = None;
    let (command, more) = match start {
        Some(start) if start > sel.exists => return Ok((Vec::new(), false)),
        Some(start) => {
            let end = start.saturating_add(page - 1).min(sel.exists);
            range = Some((start, end));
            (format!("FETCH {start}:{end}"), end < sel.exists)
        }
        None => {
            // UID `last` is gone (or numbers moved): ask for the UIDs above it.
            let (uids, more) = uids_after(conn, last, page).await?;
            if uids.is_empty() {
                return Ok((Vec::new(), false));
            }
            let set = UidSet::from_uids(uids).to_string();
            (format!("UID FETCH {set}"), more)
        }
    };
    let failure = match read_records(
        conn,
        &command,
        mailbox,
        sel.uid_validity,
        limits,
        last,
        reopen,
    )
    .await
    {
        Ok(mut messages) => {
            messages.sort_by_key(|m| RemoteId::parse(&m.remote_id).map_or(0, |id| id.uid));
            if range.is_some() && conn.expunges_seen != expunges_before && !messages.is_empty() {
                // Another session expunged messages this one still numbered (Dovecot:
                // `OK [EXPUNGEISSUED]`, their answers empty): keep the ones that exist.
                let uid_of = |m: &Message| RemoteId::parse(&m.remote_id).map_or(0, |id| id.uid);
                let asked = UidSet::from_uids(messages.iter().map(uid_of)).to_string();
                // NOOP first: the session's view drops the expunged messages.
                conn.simple("NOOP").await?;
                let present = UidSet::from_uids(conn.uid_search(&format!("UID {asked}")).await?);
                messages.retain(|m| present.contains(uid_of(m)));
            }
            let last_uid = messages
                .last()
                .and_then(|m| RemoteId::parse(&m.remote_id))
                .map(|id| id.uid);
            // The page was every message from `start` to `end`, and nothing moved the
            // numbers: the next page starts at `end + 1`.
            if let (true, Some((start, end)), Some(last_uid)) = (more, range, last_uid)
                && messages.len() as u64 == u64::from(end - start) + 1
                && conn.expunges_seen == expunges_before
                && conn.serial() == serial
                && conn
                    .selected
                    .as_ref()
                    .is_some_and(|(w, _)| *w == utf7::encode(mailbox))
            {
                conn.continuation = Some(Continuation {
                    wire: utf7::encode(mailbox),
                    uid_validity: sel.uid_validity,
                    last_uid,
                    next_seq: end + 1,
                    expunges_seen: expunges_before,
                    serial,
                });
            }
            return Ok((messages, more));
        }
        Err(OpError::Imap(f @ (Failure::No(_) | Failure::Bye(_)))) => f,
        Err(other) => return Err(other),
    };
    // The server could not return some message of the page (a broken file on its
    // side: NO, or BYE from Dovecot): read the page message by message, on a new
    // connection when needed, so one bad message never blocks the folder.
    tracing::warn!(
        mailbox,
        ?failure,
        "imap page fetch failed; reading it one by one"
    );
    let wire = utf7::encode(mailbox);
    if failure.breaks_session() {
        reconnect(conn, reopen, &wire, sel).await?;
    }
    let (uids, more) = uids_after(conn, last, page).await?;
    let mut messages = Vec::with_capacity(uids.len());
    for uid in uids {
        let target = format!("UID FETCH {uid}");
        match read_records(
            conn,
            &target,
            mailbox,
            sel.uid_validity,
            limits,
            last,
            reopen,
        )
        .await
        {
            Ok(mut one) => messages.append(&mut one),
            Err(OpError::Imap(Failure::No(text))) => {
                messages.push(unreadable(mailbox, sel, uid, &text))
            }
            Err(OpError::Imap(Failure::Bye(text))) => {
                messages.push(unreadable(mailbox, sel, uid, &text));
                reconnect(conn, reopen, &wire, sel).await?;
            }
            Err(other) => return Err(other),
        }
    }
    Ok((messages, more))
}

/// The first `page` UIDs above `last`, ascending, and whether more exist.
async fn uids_after(conn: &mut Conn, last: u32, page: u32) -> Result<(Vec<u32>, bool), Failure> {
    let mut uids: Vec<u32> = conn
        .uid_search(&format!("UID {}:*", u64::from(last) + 1))
        .await?
        .into_iter()
        .filter(|&u| u > last)
        .collect();
    uids.sort_unstable();
    let more = uids.len() > page as usize;
    uids.truncate(page as usize);
    Ok((uids, more))
}

/// Replaces a session the server closed and selects the mailbox again.
async fn reconnect(
    conn: &mut Conn,
    reopen: &dyn Reopen,
    wire: &str,
    sel: &Selected,
) -> Result<(), OpError> {
    *conn = reopen.reopen().await?;
    let again = conn.select(wire).await?;
    if again.uid_validity != sel.uid_validity {
        return Err(
            Failure::Connection("the folder's UIDVALIDITY changed during the sync".into()).into(),
        );
    }
    Ok(())
}

/// The record of a message the server refused to return.
fn unreadable(mailbox: &str, sel: &Selected, uid: u32, text: &str) -> Message {
    Message {
        remote_id: RemoteId::new(mailbox, sel.uid_validity, uid).to_string(),
        folder_id: Some(mailbox.to_owned()),
        warnings: vec![format!("the server could not return this message: {text}")],
        ..Message::default()
    }
}

/// Removals and read-state changes among UIDs `1..=old_last`.
async fn check_old(
    conn: &mut Conn,
    mailbox: &str,
    sel: &Selected,
    cur: &mut Cursor,
    old_last: u32,
    changes: &mut Vec<Change>,
) -> Result<(), Failure> {
    let id = |uid: u32| RemoteId::new(mailbox, sel.uid_validity, uid).to_string();
    let condstore = conn.caps.condstore && cur.highest_modseq > 0 && sel.highest_modseq > 0;
    if cur.known.is_none() {
        // QRESYNC: the server tells which UIDs vanished since the mod-sequence.
        if !condstore {
            return Ok(());
        }
        let found = conn
            .changes_since(old_last, cur.highest_modseq, true)
            .await?;
        for uid in found.vanished.iter().filter(|&u| u <= old_last) {
            changes.push(Change::Remove { remote_id: id(uid) });
        }
        for (uid, seen) in found.flags {
            if uid <= old_last && !found.vanished.contains(uid) {
                changes.push(Change::ReadState {
                    remote_id: id(uid),
                    is_read: seen,
                });
            }
        }
        return Ok(());
    }
    // Without QRESYNC: diff the UIDs we delivered against the server's.
    let present = UidSet::from_uids(conn.uid_search(&format!("UID 1:{old_last}")).await?);
    let known = cur.known.as_mut().expect("checked above");
    let gone = known.difference(&present);
    for uid in gone.iter() {
        changes.push(Change::Remove { remote_id: id(uid) });
    }
    known.remove_all(&gone);
    if condstore {
        let found = conn
            .changes_since(old_last, cur.highest_modseq, false)
            .await?;
        let known = cur.known.as_ref().expect("checked above");
        for (uid, seen) in found.flags {
            if known.contains(uid) {
                changes.push(Change::ReadState {
                    remote_id: id(uid),
                    is_read: seen,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_messages_keep_their_id_and_say_why() {
        let sel = Selected {
            uid_validity: 7,
            ..Selected::default()
        };
        let m = unreadable("INBOX", &sel, 42, "[SERVERBUG] Internal error");
        assert_eq!(m.remote_id, "INBOX:7:42");
        assert_eq!(
            m.warnings,
            ["the server could not return this message: [SERVERBUG] Internal error"]
        );
        assert_eq!(
            record_items(4096),
            "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[]<0.4096>)"
        );
    }
}
