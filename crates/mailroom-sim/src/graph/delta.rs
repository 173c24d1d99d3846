//! `GET /me/mailFolders/{id}/messages/delta`: rounds of pages over a
//! folder's change log (see [`super::store`]), with `$skiptoken` and
//! `$deltatoken` carrying the cursor.

use axum::http::StatusCode;
use base64::Engine as _;

use super::json::{self, MessageJson, View};
use super::store::Change;
use super::{Ctx, Prefs, odata};
use crate::config::DeltaErrorCode;
use crate::http::{Req, Resp};
use crate::state::{MailboxCell, Shared, lock};

/// Default page size of message delta (without `Prefer: odata.maxpagesize`).
pub(crate) const DEFAULT_PAGE: usize = 10;
const MAX_PAGE: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Token {
    skip: bool,
    epoch: u64,
    folder: u32,
    since: u64,
    round_start: u64,
    after: u64,
    issued_ms: u64,
    change_type: String,
    filter: String,
    select: String,
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn encode(t: &Token) -> String {
    let raw = format!(
        "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        if t.skip { 's' } else { 'd' },
        t.epoch,
        t.folder,
        t.since,
        t.round_start,
        t.after,
        t.issued_ms,
        B64.encode(&t.change_type),
        B64.encode(&t.filter),
        B64.encode(&t.select),
    );
    B64.encode(raw)
}

fn decode(s: &str) -> Option<Token> {
    let raw = String::from_utf8(B64.decode(s.trim_end_matches('=')).ok()?).ok()?;
    let mut p = raw.split('|');
    let kind = p.next()?;
    let mut num = || p.next().and_then(|x| x.parse::<u64>().ok());
    let (epoch, folder, since, round_start, after, issued_ms) =
        (num()?, num()?, num()?, num()?, num()?, num()?);
    let mut text = || -> Option<String> { String::from_utf8(B64.decode(p.next()?).ok()?).ok() };
    let (change_type, filter, select) = (text()?, text()?, text()?);
    Some(Token {
        skip: match kind {
            "s" => true,
            "d" => false,
            _ => return None,
        },
        epoch,
        folder: u32::try_from(folder).ok()?,
        since,
        round_start,
        after,
        issued_ms,
        change_type,
        filter,
        select,
    })
}

/// Message delta accepts only `receivedDateTime ge|gt <date>` as `$filter`.
fn delta_filter(raw: &str) -> Result<Option<odata::ParsedFilter>, odata::QueryError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let f = odata::parse_filter(raw)?;
    if odata::is_received_lower_bound(&f.filter) {
        Ok(Some(f))
    } else {
        Err(odata::QueryError {
            code: "ErrorInvalidUrlQueryFilter",
            message: "The query filter contains one or more invalid nodes.".into(),
        })
    }
}

/// Next and delta links name the folder by id in OData key syntax, as
/// Graph's do (`/me/mailFolders('AQMk…')/messages/microsoft.graph.delta()`),
/// whatever form the client used: clients must follow them as opaque URLs.
fn link(shared: &Shared, folder_id: &str, param: &str, token: &Token) -> String {
    format!(
        "{}/v1.0/me/mailFolders('{folder_id}')/messages/microsoft.graph.delta()?{param}={}",
        shared.base_url,
        encode(token)
    )
}

fn gone(shared: &Shared, req: &Req, ctx: &Ctx, t: &Token) -> Resp {
    shared.counters.update(|c| c.delta_resyncs += 1);
    let code = shared.config.delta_error_code;
    let mut resp = ctx.error(
        410,
        code.code(),
        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
    );
    if code == DeltaErrorCode::ResyncRequired {
        // A fresh round with the same query options.
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("$select", &t.select),
            ("$filter", &t.filter),
            ("changeType", &t.change_type),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        let q = q.finish();
        let sep = if q.is_empty() { "" } else { "?" };
        resp.set_header(
            "location",
            &format!("{}{}{sep}{q}", shared.base_url, req.path),
        );
    }
    resp
}

pub(crate) fn delta(
    shared: &Shared,
    cell: &MailboxCell,
    req: &Req,
    folder_id: &str,
    p: &Prefs,
    ctx: &Ctx,
) -> Resp {
    let pairs = req.query_pairs();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let now = shared.clock.now().0.as_millis() as u64;
    let st = lock(&cell.store);
    let folder = match st.resolve_folder(folder_id) {
        Ok(f) => f,
        Err(l) => return ctx.lookup(l),
    };
    if get("$expand").is_some() {
        // Graph's delta for messages takes $select, $filter, $orderby and $top, not
        // $expand: attachments are listed per message (GET …/attachments or $batch).
        return ctx.error(
            400,
            "BadRequest",
            "The query parameter '$expand' is not supported with change tracking over the 'messages' resource.",
        );
    }
    let token = get("$skiptoken").or_else(|| get("$deltatoken"));
    let state = match token {
        Some(raw) => {
            let Some(t) = decode(&raw) else {
                return ctx.error(400, "BadRequest", "The delta or skip token is malformed.");
            };
            let lifetime = shared.config.delta_token_lifetime.as_millis() as u64;
            let expired = !t.skip && now.saturating_sub(t.issued_ms) >= lifetime;
            if t.epoch != st.delta_epoch || t.folder != folder || expired {
                return gone(shared, req, ctx, &t);
            }
            if t.skip {
                t
            } else {
                Token {
                    skip: true,
                    round_start: st.seq,
                    after: t.since,
                    ..t
                }
            }
        }
        None => Token {
            skip: true,
            epoch: st.delta_epoch,
            folder,
            since: 0,
            round_start: st.seq,
            after: 0,
            issued_ms: now,
            change_type: get("changeType").unwrap_or_default(),
            filter: get("$filter").unwrap_or_default(),
            select: get("$select").unwrap_or_default(),
        },
    };
    let filter = match delta_filter(&state.filter) {
        Ok(f) => f,
        Err(e) => return ctx.query_error(&e),
    };
    let (want_created, want_updated, want_deleted) = match state
        .change_type
        .to_ascii_lowercase()
        .as_str()
    {
        "" => (true, true, true),
        "created" => (true, false, false),
        "updated" => (false, true, false),
        "deleted" => (false, false, true),
        other => {
            return ctx.error(
                400,
                "ErrorInvalidParameter",
                &format!("The value '{other}' of the changeType parameter is invalid: use created, updated or deleted."),
            );
        }
    };
    let mut view = View::new();
    view.immutable_ids = p.immutable;
    view.text_body = p.text_body;
    view.with_type = true;
    if !state.select.is_empty() {
        match odata::parse_select(&state.select, json::MESSAGE_FIELDS, "message") {
            Ok(sel) => view.select = Some(sel),
            Err(e) => return ctx.query_error(&e),
        }
    }
    let page_size = p.max_page.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
    // Tombstones before the round (initial) or before `since` are old news.
    let threshold = if state.since == 0 {
        state.round_start
    } else {
        state.since
    };
    let mut items = Vec::with_capacity(page_size);
    let mut last = state.after;
    let mut more = false;
    for (&seq, ch) in st.folders[folder as usize].changes.range(state.after + 1..) {
        if items.len() == page_size {
            more = true;
            break;
        }
        last = seq;
        match ch {
            Change::Live(k) => {
                let Some(m) = st.msg(*k) else { continue };
                let created = m.entered_seq > state.since;
                let kind_ok = if created { want_created } else { want_updated };
                let filter_ok = filter
                    .as_ref()
                    .is_none_or(|f| f.filter.matches(&|prop| super::msg_value(&st, *k, prop)));
                if kind_ok && filter_ok {
                    items.push(*ch);
                }
            }
            Change::Removed { .. } if seq > threshold && want_deleted => items.push(*ch),
            Change::Removed { .. } => {}
        }
    }
    let mut out = Vec::with_capacity(items.len() * 3000 + 512);
    out.extend_from_slice(b"{\"@odata.context\":");
    let _ = serde_json::to_writer(
        &mut out,
        &format!("{}/v1.0/$metadata#Collection(message)", shared.base_url),
    );
    out.extend_from_slice(b",\"value\":[");
    for (i, ch) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match *ch {
            Change::Live(k) => {
                if let Some(m) = st.msg(k) {
                    let _ = serde_json::to_writer(
                        &mut out,
                        &MessageJson {
                            store: &st,
                            msg: m,
                            view: &view,
                        },
                    );
                }
            }
            Change::Removed { key, incarnation } => {
                let v = serde_json::json!({
                    "@odata.type": "#microsoft.graph.message",
                    "id": st.removed_id(key, incarnation, p.immutable),
                    "@removed": {"reason": "deleted"},
                });
                let _ = serde_json::to_writer(&mut out, &v);
            }
        }
    }
    out.push(b']');
    let (name, next) = if more {
        (
            "@odata.nextLink",
            link(
                shared,
                st.folder_id_ref(folder),
                "$skiptoken",
                &Token {
                    after: last,
                    ..state.clone()
                },
            ),
        )
    } else {
        let t = Token {
            skip: false,
            since: state.round_start,
            round_start: 0,
            after: 0,
            issued_ms: now,
            ..state.clone()
        };
        (
            "@odata.deltaLink",
            link(shared, st.folder_id_ref(folder), "$deltatoken", &t),
        )
    };
    out.extend_from_slice(format!(",\"{name}\":").as_bytes());
    let _ = serde_json::to_writer(&mut out, &next);
    out.push(b'}');
    let mut resp = Resp::raw_json(StatusCode::OK, out);
    if let Some(n) = p.max_page {
        resp.set_header(
            "preference-applied",
            &format!("odata.maxpagesize={}", n.min(MAX_PAGE)),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_never_panic() {
        let mut r = crate::rng::Rng::new(9);
        for _ in 0..5_000 {
            let len = r.index(120);
            let _ = decode(&r.token(len));
        }
        // Valid base64 of garbage too.
        for raw in [
            "s|1",
            "d|1|2|3|4|5|6|!!|!!|!!",
            "x|1|2|3|4|5|6|||",
            "s|1|2|3|4|5|6",
        ] {
            assert_eq!(decode(&B64.encode(raw)), None, "{raw}");
        }
    }

    #[test]
    fn tokens_round_trip() {
        let t = Token {
            skip: true,
            epoch: 2,
            folder: 1,
            since: 10,
            round_start: 20,
            after: 15,
            issued_ms: 99,
            change_type: "created".into(),
            filter: "receivedDateTime ge 2025-01-01T00:00:00Z".into(),
            select: "subject,isRead".into(),
        };
        assert_eq!(decode(&encode(&t)), Some(t));
        assert_eq!(decode("!!"), None);
    }
}
