//! Control endpoints under `/_sim/` (JSON) so the binary can be driven
//! black-box. They are not counted and not subject to faults.
//!
//! | method | path | body |
//! |---|---|---|
//! | GET | `/_sim/counters` | |
//! | POST | `/_sim/counters/reset` | |
//! | GET | `/_sim/mailboxes` | |
//! | POST | `/_sim/mailboxes` | a `MailboxSpec`: `{"address", "display_name", "seed", "messages", "layout"}` |
//! | POST | `/_sim/device/approve` | `{"user_code", "user"}` |
//! | POST | `/_sim/device/deny` | `{"user_code"}` |
//! | POST | `/_sim/clock/advance` | `{"seconds": 1.5}` |
//! | POST | `/_sim/tokens` | `{"user", "client_id", "scopes": [..]}` |
//! | POST | `/_sim/refresh-failure` | `{"user", "failure": "expired"\|"revoked"\|"consent_required"\|...\|"none", "times"?: N}` |
//! | POST | `/_sim/expire-access-tokens` | `{"user"}` |
//! | POST | `/_sim/expire-delta-tokens` | `{"user"}` |
//! | GET/PUT | `/_sim/faults` | a `Faults` object (durations in seconds; missing fields take defaults) |
//! | GET | `/_sim/mailboxes/{address}/folders/{folder}/messages` | |
//! | POST | `/_sim/mailboxes/{address}/faults` | `{"statuses": [429, 503]}`: the next requests' answers |
//! | POST | `/_sim/mailboxes/{address}/messages` | `{"folder", "count"}` or `{"folder", "subject", ...}` |
//! | POST | `/_sim/mailboxes/{address}/messages/{id}/{move\|read\|unread\|subject\|delete}` | `{"folder"}` / `{"subject"}` |

// Handlers return `Err(Resp)` for early answers; boxing them buys nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{Faults, RefreshFailure};
use crate::graph::handle::{Mailbox, NewMessage};
use crate::http::{Req, Resp};
use crate::state::{Shared, lock};

fn ok(v: &Value) -> Resp {
    Resp::json(StatusCode::OK, v)
}

fn bad(status: StatusCode, msg: impl std::fmt::Display) -> Resp {
    Resp::json(status, &json!({"error": msg.to_string()}))
}

fn body<T: for<'de> Deserialize<'de>>(req: &Req) -> Result<T, Resp> {
    serde_json::from_slice(&req.body)
        .map_err(|e| bad(StatusCode::BAD_REQUEST, format!("bad JSON body: {e}")))
}

#[derive(Deserialize)]
struct UserCode {
    user_code: String,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Deserialize)]
struct User {
    user: String,
}

#[derive(Deserialize)]
struct Advance {
    seconds: f64,
}

#[derive(Deserialize)]
struct Issue {
    user: String,
    client_id: String,
    scopes: Vec<String>,
}

#[derive(Deserialize)]
struct AddMessages {
    folder: String,
    #[serde(default)]
    count: Option<usize>,
    #[serde(flatten)]
    message: NewMessage,
}

#[derive(Deserialize)]
struct Mutation {
    #[serde(default)]
    folder: Option<String>,
    #[serde(default)]
    subject: Option<String>,
}

#[derive(Deserialize)]
struct Script {
    user: String,
    failure: RefreshFailure,
    #[serde(default)]
    times: Option<u32>,
}

pub(crate) fn handle(shared: &Arc<Shared>, req: &Req, seg: &[&str]) -> Resp {
    match run(shared, req, seg) {
        Ok(r) | Err(r) => r,
    }
}

fn run(shared: &Arc<Shared>, req: &Req, seg: &[&str]) -> Result<Resp, Resp> {
    let post = req.method == Method::POST;
    let sim_err = |e: crate::Error| {
        let status = match e {
            crate::Error::UnknownMailbox(_)
            | crate::Error::UnknownFolder(_)
            | crate::Error::UnknownMessage(_)
            | crate::Error::UnknownUserCode(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        bad(status, e)
    };
    Ok(match (seg, post) {
        (["counters"], false) => ok(&json!(shared.counters.snapshot())),
        (["counters", "reset"], true) => {
            shared.counters.update(|c| *c = crate::Counters::default());
            ok(&json!({}))
        }
        (["device", "approve"], true) => {
            let b: UserCode = body(req)?;
            let user = match b.user {
                Some(u) => u,
                None => shared
                    .mailbox_cells()
                    .first()
                    .map(|c| c.address.clone())
                    .unwrap_or_default(),
            };
            shared.approve_locked(&b.user_code, &user).map_err(sim_err)?;
            ok(&json!({"approved": b.user_code, "user": user}))
        }
        (["device", "deny"], true) => {
            let b: UserCode = body(req)?;
            shared.deny_locked(&b.user_code).map_err(sim_err)?;
            ok(&json!({"declined": b.user_code}))
        }
        (["clock", "advance"], true) => {
            let b: Advance = body(req)?;
            if !(b.seconds.is_finite() && b.seconds >= 0.0) {
                return Err(bad(StatusCode::BAD_REQUEST, "seconds must be >= 0"));
            }
            shared.clock.advance(Duration::from_secs_f64(b.seconds));
            ok(&json!({"advanced": b.seconds}))
        }
        (["tokens"], true) => {
            let b: Issue = body(req)?;
            shared.known_user(&b.user).map_err(sim_err)?;
            let joined = b.scopes.join(" ");
            let set = crate::identity::wire::classify_scopes(&joined)
                .map_err(|e| bad(StatusCode::BAD_REQUEST, format!("AADSTS{}: {}", e.code, e.description)))?;
            let t = {
                let mut ident = shared.identity();
                shared.issue_locked(&mut ident, &b.user, &b.client_id, &set, "common")
            };
            shared
                .counters
                .update(|c| crate::counters::bump(&mut c.test_issued_tokens, &b.user));
            ok(&serde_json::to_value(&t).unwrap_or_default())
        }
        (["refresh-failure"], true) => {
            let b: Script = body(req)?;
            shared.known_user(&b.user).map_err(sim_err)?;
            shared.script_refresh_failure_locked(&b.user, b.failure, b.times);
            ok(&json!({"user": b.user, "failure": b.failure}))
        }
        (["expire-access-tokens"], true) => {
            let b: User = body(req)?;
            shared.known_user(&b.user).map_err(sim_err)?;
            let n = shared.expire_access_tokens_locked(&b.user);
            ok(&json!({"expired": n}))
        }
        (["expire-delta-tokens"], true) => {
            let b: User = body(req)?;
            let cell = shared.known_user(&b.user).map_err(sim_err)?;
            lock(&cell.store).expire_delta_tokens();
            ok(&json!({"user": b.user}))
        }
        (["subscriptions"], false) => ok(&json!(crate::graph::subscriptions::list(shared))),
        (["subscriptions", id, "lifecycle"], true) => {
            #[derive(Deserialize)]
            struct Event {
                event: crate::Lifecycle,
            }
            let b: Event = body(req)?;
            if !crate::graph::subscriptions::send_lifecycle(shared, id, b.event) {
                return Err(bad(StatusCode::NOT_FOUND, format!("no subscription {id} with a lifecycle URL")));
            }
            ok(&json!({"sent": b.event}))
        }
        (["notification-faults"], true) => {
            let f: crate::NotificationFaults = body(req)?;
            lock(&shared.subs).faults = f.clone();
            ok(&json!(f))
        }
        (["faults"], _) if req.method == Method::GET => ok(&json!(shared.faults())),
        (["faults"], _) if req.method == Method::PUT || post => {
            let f: Faults = body(req)?;
            *lock(&shared.faults) = f;
            ok(&json!(shared.faults()))
        }
        (["mailboxes"], true) => {
            let spec: crate::MailboxSpec = body(req)?;
            let cell = shared.add_mailbox(spec).map_err(sim_err)?;
            ok(&json!({"address": cell.address, "id": cell.user_id}))
        }
        (["mailboxes"], false) => ok(&json!(
            shared
                .mailbox_cells()
                .iter()
                .map(|c| json!({"address": c.address, "displayName": c.display_name, "id": c.user_id}))
                .collect::<Vec<_>>()
        )),
        (["mailboxes", address, rest @ ..], _) => {
            let cell = shared.known_user(address).map_err(sim_err)?;
            let mb = Mailbox::new(shared.clone(), cell);
            mailbox_route(&mb, req, rest, post).map_err(sim_err)?
        }
        _ => bad(StatusCode::NOT_FOUND, format!("no control endpoint {} /_sim/{}", req.method, seg.join("/"))),
    })
}

fn mailbox_route(mb: &Mailbox, req: &Req, rest: &[&str], post: bool) -> crate::Result<Resp> {
    let parse = |r: &Req| -> crate::Result<Mutation> {
        Ok(serde_json::from_slice(&r.body).unwrap_or(Mutation {
            folder: None,
            subject: None,
        }))
    };
    Ok(match (rest, post) {
        (["folders"], false) => ok(&json!(mb.folders())),
        (["faults"], true) => {
            #[derive(Deserialize)]
            struct Statuses {
                statuses: Vec<u16>,
            }
            let b: Statuses = match serde_json::from_slice(&req.body) {
                Ok(b) => b,
                Err(e) => return Ok(bad(StatusCode::BAD_REQUEST, format!("bad JSON body: {e}"))),
            };
            mb.script_faults(&b.statuses);
            ok(&json!({"scripted": b.statuses}))
        }
        (["folders", folder, "messages"], false) => ok(&json!(mb.folder_messages(folder)?)),
        (["messages"], true) => {
            let b: AddMessages = match serde_json::from_slice(&req.body) {
                Ok(b) => b,
                Err(e) => return Ok(bad(StatusCode::BAD_REQUEST, format!("bad JSON body: {e}"))),
            };
            let ids = match b.count {
                Some(n) => mb.add_messages(&b.folder, n)?,
                None => vec![mb.add_message(&b.folder, b.message)?],
            };
            ok(&json!({"ids": ids}))
        }
        (["messages", id], false) => ok(&json!(mb.message(id)?)),
        (["messages", id, action], true) => {
            let m = parse(req)?;
            let new_id = match *action {
                "move" => Some(mb.move_message(id, m.folder.as_deref().unwrap_or("inbox"))?),
                "read" => {
                    mb.set_read(id, true)?;
                    None
                }
                "unread" => {
                    mb.set_read(id, false)?;
                    None
                }
                "subject" => {
                    mb.set_subject(id, m.subject.as_deref().unwrap_or(""))?;
                    None
                }
                "delete" => {
                    mb.delete_message(id)?;
                    None
                }
                other => {
                    return Ok(bad(
                        StatusCode::NOT_FOUND,
                        format!("unknown action {other}"),
                    ));
                }
            };
            ok(&json!({"id": new_id}))
        }
        _ => bad(StatusCode::NOT_FOUND, "no such mailbox control endpoint"),
    })
}
