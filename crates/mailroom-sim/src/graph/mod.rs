//! Microsoft Graph v1.0 mail: routing, authentication, throttling and the
//! handlers.

// Handlers return `Err(Resp)` for early answers; boxing them buys nothing.
#![allow(clippy::result_large_err)]

mod batch;
mod delta;
pub(crate) mod handle;
pub(crate) mod ids;
mod json;
mod mime;
pub(crate) mod odata;
pub(crate) mod store;
pub(crate) mod subscriptions;
pub(crate) mod synth;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::counters::bump;
use crate::http::{Req, Resp};
use crate::identity::{Audience, TokenProblem, bearer};
use crate::state::{MailboxCell, Shared, lock};
use json::{AttachmentJson, MessageJson, View};
use odata::QueryError;
use store::{Lookup, Store};

/// Per-request context: ids echoed in headers and error bodies.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    request_id: String,
    client_request_id: String,
    date: String,
}

impl Ctx {
    pub(crate) fn new(shared: &Shared, req: &Req) -> Ctx {
        let mut rng = shared.rng();
        let request_id = rng.uuid();
        let client_request_id = req
            .header("client-request-id")
            .map(str::to_owned)
            .unwrap_or_else(|| request_id.clone());
        Ctx {
            request_id,
            client_request_id,
            date: shared
                .clock
                .now_utc()
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string(),
        }
    }

    /// A Graph error answer.
    pub(crate) fn error(&self, status: u16, code: &str, message: &str) -> Resp {
        let body = json!({
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": self.date,
                    "request-id": self.request_id,
                    "client-request-id": self.client_request_id,
                }
            }
        });
        Resp::json(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            &body,
        )
    }

    fn query_error(&self, e: &QueryError) -> Resp {
        self.error(400, e.code, &e.message)
    }

    fn not_found(&self) -> Resp {
        self.error(
            404,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    }

    fn lookup(&self, l: Lookup) -> Resp {
        match l {
            Lookup::NotFound => self.not_found(),
            Lookup::Malformed => self.error(400, "ErrorInvalidIdMalformed", "Id is malformed."),
        }
    }

    /// Adds the headers every Graph answer carries.
    pub(crate) fn finish(&self, mut resp: Resp) -> Resp {
        resp.set_header("request-id", &self.request_id);
        resp.set_header("client-request-id", &self.client_request_id);
        resp.set_header(
            "x-ms-ags-diagnostic",
            r#"{"ServerInfo":{"DataCenter":"Loopback","Slice":"E","Ring":"5","ScaleUnit":"000","RoleInstance":"MAILROOM-SIM"}}"#,
        );
        resp
    }
}

/// A parsed Graph route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Batch,
    Me,
    Folders(Option<String>),
    Folder(String),
    Messages(Option<String>),
    Message(String),
    MessageValue(String),
    Move(String),
    PermanentDelete(String),
    Attachments(String),
    Attachment(String, String),
    AttachmentValue(String, String),
    Delta(String),
    /// `/subscriptions` (None) or `/subscriptions/{id}`.
    Subscriptions(Option<String>),
}

/// Rewrites OData key and function syntax to plain segments:
/// `mailFolders('X')` → `mailFolders`, `X`; `microsoft.graph.delta()` → `delta`.
fn normalize(seg: &[&str]) -> Vec<String> {
    let mut out = Vec::with_capacity(seg.len() + 2);
    for s in seg {
        let s = s.strip_prefix("microsoft.graph.").unwrap_or(s);
        if let Some(open) = s.find('(')
            && s.ends_with(')')
        {
            let name = &s[..open];
            let inner = s[open + 1..s.len() - 1].trim_matches('\'');
            out.push(name.to_owned());
            if !inner.is_empty() {
                out.push(inner.replace("''", "'"));
            }
        } else {
            out.push(s.to_owned());
        }
    }
    out
}

fn parse_route(method: &Method, seg: &[&str]) -> Result<(String, Route), String> {
    let norm = normalize(seg);
    let mut s: Vec<&str> = norm.iter().map(String::as_str).collect();
    // `/users/{me}` is accepted like `/me` (checked against the token later).
    if s.first().is_some_and(|f| f.eq_ignore_ascii_case("users")) && s.len() >= 2 {
        s.splice(0..2, ["me"]);
    }
    let m = method.as_str();
    let t = |path: &str| format!("{m} /v1.0/{path}");
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    if let Some((template, id)) = subscriptions::route(&s, method) {
        return Ok((template, Route::Subscriptions(id)));
    }
    Ok(match s.as_slice() {
        ["$batch"] if post => (t("$batch"), Route::Batch),
        [me] if eq(me, "me") && get => (t("me"), Route::Me),
        [me, mf] if eq(me, "me") && eq(mf, "mailFolders") && get => {
            (t("me/mailFolders"), Route::Folders(None))
        }
        [me, mf, f] if eq(me, "me") && eq(mf, "mailFolders") && get => {
            (t("me/mailFolders/{id}"), Route::Folder((*f).to_owned()))
        }
        [me, mf, f, cf]
            if eq(me, "me") && eq(mf, "mailFolders") && eq(cf, "childFolders") && get =>
        {
            (
                t("me/mailFolders/{id}/childFolders"),
                Route::Folders(Some((*f).to_owned())),
            )
        }
        [me, mf, _, cf, c]
            if eq(me, "me") && eq(mf, "mailFolders") && eq(cf, "childFolders") && get =>
        {
            (
                t("me/mailFolders/{id}/childFolders/{id}"),
                Route::Folder((*c).to_owned()),
            )
        }
        [me, mf, _, cf, c, ms]
            if eq(me, "me")
                && eq(mf, "mailFolders")
                && eq(cf, "childFolders")
                && eq(ms, "messages")
                && get =>
        {
            (
                t("me/mailFolders/{id}/childFolders/{id}/messages"),
                Route::Messages(Some((*c).to_owned())),
            )
        }
        [me, mf, _, cf, c, ms, d]
            if eq(me, "me")
                && eq(mf, "mailFolders")
                && eq(cf, "childFolders")
                && eq(ms, "messages")
                && eq(d, "delta")
                && get =>
        {
            (
                t("me/mailFolders/{id}/childFolders/{id}/messages/delta"),
                Route::Delta((*c).to_owned()),
            )
        }
        [me, mf, f, ms] if eq(me, "me") && eq(mf, "mailFolders") && eq(ms, "messages") && get => (
            t("me/mailFolders/{id}/messages"),
            Route::Messages(Some((*f).to_owned())),
        ),
        [me, mf, f, ms, d]
            if eq(me, "me")
                && eq(mf, "mailFolders")
                && eq(ms, "messages")
                && eq(d, "delta")
                && get =>
        {
            (
                t("me/mailFolders/{id}/messages/delta"),
                Route::Delta((*f).to_owned()),
            )
        }
        [me, mf, _, ms, id, rest @ ..]
            if eq(me, "me") && eq(mf, "mailFolders") && eq(ms, "messages") =>
        {
            return message_route(method, id, rest, &t);
        }
        [me, ms] if eq(me, "me") && eq(ms, "messages") && get => {
            (t("me/messages"), Route::Messages(None))
        }
        [me, ms, id, rest @ ..] if eq(me, "me") && eq(ms, "messages") => {
            return message_route(method, id, rest, &t);
        }
        [] => return Err("v1.0".to_owned()),
        other => {
            let known = [
                "me",
                "mailFolders",
                "childFolders",
                "messages",
                "attachments",
                "$value",
                "$batch",
                "delta",
                "move",
                "permanentDelete",
                "subscriptions",
            ];
            let bad = other
                .iter()
                .find(|x| !known.iter().any(|k| k.eq_ignore_ascii_case(x)))
                .or(other.last())
                .copied()
                .unwrap_or("");
            return Err(bad.to_owned());
        }
    })
}

fn message_route(
    method: &Method,
    id: &str,
    rest: &[&str],
    t: &dyn Fn(&str) -> String,
) -> Result<(String, Route), String> {
    let id = id.to_owned();
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let (get, post) = (*method == Method::GET, *method == Method::POST);
    Ok(match rest {
        [] if get || *method == Method::PATCH || *method == Method::DELETE => {
            (t("me/messages/{id}"), Route::Message(id))
        }
        [v] if eq(v, "$value") && get => (t("me/messages/{id}/$value"), Route::MessageValue(id)),
        [mv] if eq(mv, "move") && post => (t("me/messages/{id}/move"), Route::Move(id)),
        [pd] if eq(pd, "permanentDelete") && post => (
            t("me/messages/{id}/permanentDelete"),
            Route::PermanentDelete(id),
        ),
        [a] if eq(a, "attachments") && get => {
            (t("me/messages/{id}/attachments"), Route::Attachments(id))
        }
        [a, aid] if eq(a, "attachments") && get => (
            t("me/messages/{id}/attachments/{id}"),
            Route::Attachment(id, (*aid).to_owned()),
        ),
        [a, aid, v] if eq(a, "attachments") && eq(v, "$value") && get => (
            t("me/messages/{id}/attachments/{id}/$value"),
            Route::AttachmentValue(id, (*aid).to_owned()),
        ),
        [last, ..] => return Err((*last).to_owned()),
        [] => return Err(format!("{method} is not allowed")),
    })
}

/// Routes a `/v1.0/...` request; returns the route template and the answer.
pub(crate) async fn handle_graph(shared: &Arc<Shared>, req: Req, seg: &[&str]) -> (String, Resp) {
    let ctx = Ctx::new(shared, &req);
    let (template, route) = match parse_route(&req.method, seg) {
        Ok(r) => r,
        Err(bad) => {
            let resp = ctx.error(
                400,
                "BadRequest",
                &format!("Resource not found for the segment '{bad}'."),
            );
            return (format!("{} /v1.0/(unknown)", req.method), ctx.finish(resp));
        }
    };
    if route == Route::Batch {
        let resp = batch::run(shared, &req, &ctx).await;
        return (template, ctx.finish(resp));
    }
    if let Route::Subscriptions(id) = &route {
        let cell = match authenticate(shared, &req, &ctx) {
            Ok(c) => c,
            Err(resp) => return (template, ctx.finish(*resp)),
        };
        let resp = match admit(shared, &cell, &ctx, false) {
            Err(resp) => *resp,
            Ok(()) => {
                let _slot = InFlight::new(cell.clone(), 1);
                subscriptions::handle(shared, &cell, &req, id.as_deref(), &ctx).await
            }
        };
        count_status(shared, &cell, &resp);
        return (template, ctx.finish(resp));
    }
    let cell = match authenticate(shared, &req, &ctx) {
        Ok(c) => c,
        Err(resp) => return (template, ctx.finish(*resp)),
    };
    let resp = match admit(shared, &cell, &ctx, false) {
        Err(resp) => *resp,
        Ok(()) => {
            // Released on drop: a client that hangs up during the latency
            // (or a panicking handler) must not leave a slot taken.
            let _slot = InFlight::new(cell.clone(), 1);
            let latency = shared.faults().latency;
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            execute(shared, &cell, &req, &route, &ctx)
        }
    };
    count_status(shared, &cell, &resp);
    (template, ctx.finish(resp))
}

fn count_status(shared: &Shared, cell: &MailboxCell, resp: &Resp) {
    if resp.status == StatusCode::TOO_MANY_REQUESTS {
        shared
            .counters
            .update(|c| bump(&mut c.throttled, &cell.address));
    }
}

/// Checks the bearer token: a live Graph-audience token of a known mailbox.
pub(crate) fn authenticate(
    shared: &Shared,
    req: &Req,
    ctx: &Ctx,
) -> Result<Arc<MailboxCell>, Box<Resp>> {
    let problem = match shared.check_access_token(bearer(req), Audience::Graph) {
        Ok(tok) => match shared.mailbox_cell(&tok.user) {
            Some(cell) => return Ok(cell),
            None => TokenProblem::Unknown,
        },
        Err(p) => p,
    };
    let message = match problem {
        TokenProblem::Missing => "Access token is empty.",
        TokenProblem::Unknown => "IDX14100: JWT is not well formed, there are no dots (.).",
        TokenProblem::Expired => "Lifetime validation failed, the token is expired.",
        TokenProblem::WrongAudience => "Invalid audience.",
    };
    let www = format!(
        "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
        shared.base_url
    );
    let mut resp = ctx.error(401, "InvalidAuthenticationToken", message);
    resp.set_header("www-authenticate", &www);
    Err(Box::new(resp))
}

/// Applies the throttling rules to one request for a mailbox; on success
/// it is in flight until [`release`].
///
/// `$batch` items pass `in_batch`: the batch checked Retry-After once for all.
pub(crate) fn admit(
    shared: &Shared,
    cell: &MailboxCell,
    ctx: &Ctx,
    in_batch: bool,
) -> Result<(), Box<Resp>> {
    let n = 1;
    let now = shared.clock.now();
    let faults = shared.faults();
    let mut t = lock(&cell.throttle);
    let violated = !in_batch && t.retry_not_before.is_some_and(|nb| now < nb);
    shared.counters.update(|c| {
        *c.requests_by_mailbox
            .entry(cell.address.clone())
            .or_default() += u64::from(n);
        if violated {
            bump(&mut c.retry_after_violations, &cell.address);
            c.retry_after_violations_total += 1;
        }
    });
    let throttle =
        |t: &mut crate::state::Throttle, resp: Resp, wait: Option<Duration>| -> Box<Resp> {
            if let Some(w) = wait {
                let until = now.plus(w);
                t.retry_not_before = Some(t.retry_not_before.map_or(until, |old| old.max(until)));
            }
            Box::new(resp)
        };
    if let Some(budget) = faults.request_budget {
        let fresh = t.window_start.is_none_or(|s| now.since(s) >= budget.window);
        if fresh {
            t.window_start = Some(now);
            t.window_count = 0;
        }
        t.window_count += n;
        if t.window_count > budget.requests {
            let left = budget
                .window
                .saturating_sub(now.since(t.window_start.unwrap_or(now)));
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            let mut resp = ctx.error(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxRequestBudget limit.",
            );
            resp.set_header("retry-after", &secs.max(1).to_string());
            return Err(throttle(
                &mut t,
                resp,
                Some(Duration::from_secs(secs.max(1))),
            ));
        }
    }
    t.in_flight += n;
    let in_flight = t.in_flight;
    shared.counters.update(|c| {
        let peak = c.peak_concurrency.entry(cell.address.clone()).or_default();
        *peak = (*peak).max(in_flight);
    });
    if let Some(limit) = faults.mailbox_concurrency_limit
        && in_flight > limit
    {
        t.in_flight -= n;
        let mut resp = ctx.error(
            429,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
        );
        let wait = faults
            .retry_after
            .header(shared.clock.now_utc())
            .map(|(h, d)| {
                resp.set_header("retry-after", &h);
                d
            });
        return Err(throttle(&mut t, resp, wait));
    }
    if let Some(status) = t.scripted.pop_front() {
        t.in_flight -= n;
        let (resp, wait) = fault_response(ctx, status, &faults, shared.clock.now_utc());
        shared
            .counters
            .update(|c| bump(&mut c.injected_faults, &cell.address));
        return Err(throttle(&mut t, resp, wait));
    }
    if faults.error_rate > 0.0 && !faults.statuses.is_empty() {
        let status = {
            let mut rng = shared.rng();
            rng.chance(faults.error_rate)
                .then(|| *rng.pick(&faults.statuses))
        };
        if let Some(status) = status {
            t.in_flight -= n;
            let (resp, wait) = fault_response(ctx, status, &faults, shared.clock.now_utc());
            shared
                .counters
                .update(|c| bump(&mut c.injected_faults, &cell.address));
            return Err(throttle(&mut t, resp, wait));
        }
    }
    Ok(())
}

/// An injected error answer and the wait it advertises.
pub(crate) fn fault_response(
    ctx: &Ctx,
    status: u16,
    faults: &crate::Faults,
    now: chrono::DateTime<chrono::Utc>,
) -> (Resp, Option<Duration>) {
    let (code, message) = match status {
        429 => ("TooManyRequests", "Please retry again later."),
        503 => (
            "serviceNotAvailable",
            "The service is not available. Try the request again after a delay.",
        ),
        504 => ("UnknownError", "The gateway timed out."),
        _ => ("generalException", "An unspecified error has occurred."),
    };
    let mut resp = ctx.error(status, code, message);
    let mut wait = None;
    if matches!(status, 429 | 503 | 504)
        && let Some((h, d)) = faults.retry_after.header(now)
    {
        resp.set_header("retry-after", &h);
        wait = Some(d);
    }
    (resp, wait)
}

fn release(cell: &MailboxCell, n: u32) {
    let mut t = lock(&cell.throttle);
    t.in_flight = t.in_flight.saturating_sub(n);
}

/// Admitted requests of a mailbox, released when dropped.
#[derive(Debug)]
pub(crate) struct InFlight {
    cell: Arc<MailboxCell>,
    n: u32,
}

impl InFlight {
    pub(crate) fn new(cell: Arc<MailboxCell>, n: u32) -> InFlight {
        InFlight { cell, n }
    }

    pub(crate) fn add(&mut self, n: u32) {
        self.n += n;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        release(&self.cell, self.n);
    }
}

fn now_ms(shared: &Shared) -> i64 {
    shared.clock.now_utc().timestamp_millis()
}

/// Preferences of a request.
struct Prefs {
    immutable: bool,
    text_body: bool,
    max_page: Option<usize>,
}

fn prefs(req: &Req) -> Prefs {
    let mut p = Prefs {
        immutable: false,
        text_body: false,
        max_page: None,
    };
    for pref in req.prefer() {
        let (k, v) = pref.split_once('=').unwrap_or((&pref, ""));
        let v = v.trim().trim_matches('"');
        match k.trim().to_ascii_lowercase().as_str() {
            "idtype" => p.immutable = v.eq_ignore_ascii_case("ImmutableId"),
            "outlook.body-content-type" => p.text_body = v.eq_ignore_ascii_case("text"),
            "odata.maxpagesize" => p.max_page = v.parse().ok().filter(|n| *n > 0),
            _ => {}
        }
    }
    p
}

fn applied(resp: Resp, p: &Prefs) -> Resp {
    let mut list = Vec::new();
    if p.immutable {
        list.push("IdType=\"ImmutableId\"".to_owned());
    }
    if p.text_body {
        list.push("outlook.body-content-type=\"text\"".to_owned());
    }
    if let Some(existing) = resp.header("preference-applied") {
        list.push(existing.to_owned());
    }
    if list.is_empty() {
        resp
    } else {
        resp.with_header("preference-applied", &list.join(", "))
    }
}

/// The user of a `/users/{id-or-upn}/…` path.
fn addressed_user(path: &str) -> Option<String> {
    let segs = crate::server::segments(path);
    let seg: Vec<&str> = segs.iter().skip(1).map(String::as_str).collect();
    let norm = normalize(&seg);
    match norm.as_slice() {
        [users, user, ..] if users.eq_ignore_ascii_case("users") => Some(user.clone()),
        _ => None,
    }
}

/// Runs one authenticated, admitted request.
pub(crate) fn execute(
    shared: &Shared,
    cell: &MailboxCell,
    req: &Req,
    route: &Route,
    ctx: &Ctx,
) -> Resp {
    if let Some(user) = addressed_user(&req.path)
        && !(user.eq_ignore_ascii_case(&cell.address) || user.eq_ignore_ascii_case(&cell.user_id))
    {
        // Delegated tokens reach only the signed-in user's mailbox.
        return ctx.error(
            403,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        );
    }
    let mut p = prefs(req);
    // A service that ignores the preference: no immutable ids, no
    // Preference-Applied for it.
    p.immutable &= shared.config.honor_immutable_ids;
    let resp = match route {
        Route::Batch => ctx.error(
            400,
            "BadRequest",
            "Nested batch requests are not supported.",
        ),
        Route::Me => me(shared, cell),
        Route::Folders(parent) => list_folders(shared, cell, req, parent.as_deref(), ctx),
        Route::Folder(id) => get_folder(shared, cell, id, ctx),
        Route::Messages(folder) => list_messages(shared, cell, req, folder.as_deref(), &p, ctx),
        Route::Message(id) => match req.method {
            Method::DELETE => delete_message(shared, cell, id, false, ctx),
            Method::PATCH => patch_message(shared, cell, req, id, &p, ctx),
            _ => get_message(shared, cell, req, id, &p, ctx),
        },
        Route::MessageValue(id) => message_value(cell, id, ctx),
        Route::Move(id) => move_message(shared, cell, req, id, &p, ctx),
        Route::PermanentDelete(id) => delete_message(shared, cell, id, true, ctx),
        Route::Attachments(id) => attachments(shared, cell, req, id, None, false, ctx),
        Route::Attachment(id, aid) => attachments(shared, cell, req, id, Some(aid), false, ctx),
        Route::AttachmentValue(id, aid) => attachments(shared, cell, req, id, Some(aid), true, ctx),
        Route::Delta(folder) => delta::delta(shared, cell, req, folder, &p, ctx),
        Route::Subscriptions(_) => ctx.error(
            400,
            "BadRequest",
            "The simulator does not take subscription requests in $batch.",
        ),
    };
    applied(resp, &p)
}

fn me(shared: &Shared, cell: &MailboxCell) -> Resp {
    let (given, surname) = cell
        .display_name
        .split_once(' ')
        .unwrap_or((&cell.display_name, ""));
    Resp::json(
        StatusCode::OK,
        &json!({
            "@odata.context": format!("{}/v1.0/$metadata#users/$entity", shared.base_url),
            "businessPhones": [],
            "displayName": cell.display_name,
            "givenName": given,
            "jobTitle": null,
            "mail": cell.address,
            "mobilePhone": null,
            "officeLocation": null,
            "preferredLanguage": "en-US",
            "surname": surname,
            "userPrincipalName": cell.address,
            "id": cell.user_id,
        }),
    )
}

fn folder_json(st: &Store, key: u32) -> Value {
    let f = &st.folders[key as usize];
    json!({
        "id": st.folder_id(key),
        "displayName": f.display_name,
        "parentFolderId": f.parent.map_or_else(|| st.folder_id(u32::MAX >> 8), |p| st.folder_id(p)),
        "childFolderCount": st.child_count(key),
        "unreadItemCount": f.unread,
        "totalItemCount": f.by_received.len(),
        "sizeInBytes": f.by_received.len() * 4096,
        "isHidden": false,
    })
}

fn get_folder(shared: &Shared, cell: &MailboxCell, id: &str, ctx: &Ctx) -> Resp {
    let st = lock(&cell.store);
    match st.resolve_folder(id) {
        Ok(k) => {
            let mut v = folder_json(&st, k);
            if let Value::Object(m) = &mut v {
                let mut out = serde_json::Map::new();
                out.insert(
                    "@odata.context".into(),
                    json!(format!(
                        "{}/v1.0/$metadata#users('{}')/mailFolders/$entity",
                        shared.base_url, cell.user_id
                    )),
                );
                out.extend(std::mem::take(m));
                v = Value::Object(out);
            }
            Resp::json(StatusCode::OK, &v)
        }
        Err(l) => ctx.lookup(l),
    }
}

struct Paging {
    top: usize,
    skip: usize,
}

fn paging(pairs: &[(String, String)], default_top: usize, ctx: &Ctx) -> Result<Paging, Resp> {
    let mut p = Paging {
        top: default_top,
        skip: 0,
    };
    for (k, v) in pairs {
        match k.as_str() {
            "$top" | "top" => match v.trim().parse::<i64>() {
                Ok(n) if (1..=1000).contains(&n) => p.top = n as usize,
                _ => {
                    return Err(ctx.error(
                        400,
                        "ErrorInvalidUrlQuery",
                        &format!("The value '{v}' of the query option '$top' is invalid: it must be an integer between 1 and 1000."),
                    ));
                }
            },
            "$skip" | "skip" => match v.trim().parse::<usize>() {
                Ok(n) => p.skip = n,
                Err(_) => {
                    return Err(ctx.error(
                        400,
                        "BadRequest",
                        &format!("Invalid value '{v}' for $skip query option found."),
                    ));
                }
            },
            _ => {}
        }
    }
    Ok(p)
}

/// `@odata.nextLink` for the next page: the same request with `$skip` moved.
fn next_link(
    shared: &Shared,
    req: &Req,
    pairs: &[(String, String)],
    skip: usize,
    top: usize,
) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    let mut has_top = false;
    for (k, v) in pairs {
        match k.as_str() {
            "$skip" | "skip" => {}
            "$top" | "top" => {
                has_top = true;
                ser.append_pair(k, v);
            }
            _ => {
                ser.append_pair(k, v);
            }
        }
    }
    if !has_top {
        ser.append_pair("$top", &top.to_string());
    }
    ser.append_pair("$skip", &(skip + top).to_string());
    let q = ser.finish();
    format!("{}{}?{q}", shared.base_url, req.path)
}

fn list_folders(
    shared: &Shared,
    cell: &MailboxCell,
    req: &Req,
    parent: Option<&str>,
    ctx: &Ctx,
) -> Resp {
    let pairs = req.query_pairs();
    let pg = match paging(&pairs, 10, ctx) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let st = lock(&cell.store);
    let parent_key = match parent {
        None => 0,
        Some(id) => match st.resolve_folder(id) {
            Ok(k) => k,
            Err(l) => return ctx.lookup(l),
        },
    };
    let name_filter = match pairs.iter().find(|(k, _)| k == "$filter") {
        None => None,
        Some((_, f)) => match folder_filter(f) {
            Ok(name) => Some(name),
            Err(e) => return ctx.query_error(&e),
        },
    };
    let matching: Vec<u32> = st
        .folders
        .iter()
        .filter(|f| f.parent == Some(parent_key) && f.key != 0 && !f.deleted)
        .filter(|f| {
            name_filter
                .as_deref()
                .is_none_or(|n| f.display_name.eq_ignore_ascii_case(n))
        })
        .map(|f| f.key)
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(pg.skip)
        .take(pg.top)
        .map(|k| folder_json(&st, *k))
        .collect();
    let mut body = serde_json::Map::new();
    let ctx_path = match parent {
        Some(id) => format!("mailFolders('{id}')/childFolders"),
        None => "mailFolders".to_owned(),
    };
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/v1.0/$metadata#users('{}')/{}",
            shared.base_url, cell.user_id, ctx_path
        )),
    );
    if pairs.iter().any(|(k, v)| k == "$count" && v == "true") {
        body.insert("@odata.count".into(), json!(matching.len()));
    }
    body.insert("value".into(), Value::Array(page));
    if pg.skip + pg.top < matching.len() {
        body.insert(
            "@odata.nextLink".into(),
            json!(next_link(shared, req, &pairs, pg.skip, pg.top)),
        );
    }
    Resp::json(StatusCode::OK, &Value::Object(body))
}

/// `displayName eq '…'` (quotes doubled) — the folder filter Graph supports.
fn folder_filter(f: &str) -> Result<String, QueryError> {
    let err = || QueryError {
        code: "BadRequest",
        message: format!(
            "Invalid filter clause: '{f}' is not supported on mailFolders by mailroom-sim."
        ),
    };
    let rest = f.trim();
    let (prop, rest) = rest.split_once(char::is_whitespace).ok_or_else(err)?;
    let (op, lit) = rest
        .trim_start()
        .split_once(char::is_whitespace)
        .ok_or_else(err)?;
    if !prop.eq_ignore_ascii_case("displayName") || !op.eq_ignore_ascii_case("eq") {
        return Err(err());
    }
    let lit = lit.trim();
    let inner = lit
        .strip_prefix('\'')
        .and_then(|l| l.strip_suffix('\''))
        .ok_or_else(err)?;
    // Inside, every quote must be doubled.
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' && chars.next() != Some('\'') {
            return Err(QueryError {
                code: "BadRequest",
                message: format!("Invalid filter clause: syntax error in '{f}': unescaped quote."),
            });
        }
        out.push(c);
    }
    Ok(out)
}

/// Parsed `$select`/`$expand` for messages.
fn message_view(pairs: &[(String, String)], p: &Prefs, ctx: &Ctx) -> Result<View, Resp> {
    let mut view = View::new();
    view.immutable_ids = p.immutable;
    view.text_body = p.text_body;
    for (k, v) in pairs {
        match k.as_str() {
            "$select" => {
                view.select = Some(
                    odata::parse_select(v, json::MESSAGE_FIELDS, "message")
                        .map_err(|e| ctx.query_error(&e))?,
                );
            }
            "$expand" => {
                for item in odata::split_top(v) {
                    let (name, inner) = match item.find('(') {
                        Some(i) => (&item[..i], Some(item[i + 1..].trim_end_matches(')'))),
                        None => (item.as_str(), None),
                    };
                    if !name.trim().eq_ignore_ascii_case("attachments") {
                        return Err(ctx.error(
                            400,
                            "RequestBroker--ParseUri",
                            &format!("Could not find a navigation property named '{name}' on type 'microsoft.graph.message'."),
                        ));
                    }
                    let sel = match inner.and_then(|i| i.strip_prefix("$select=")) {
                        Some(s) => Some(
                            odata::parse_select(s, json::ATTACHMENT_FIELDS, "attachment")
                                .map_err(|e| ctx.query_error(&e))?,
                        ),
                        None => None,
                    };
                    view.expand_attachments = Some(sel);
                }
            }
            _ => {}
        }
    }
    Ok(view)
}

pub(crate) fn msg_value(st: &Store, key: u32, prop: odata::Prop) -> odata::Val {
    use odata::{Prop, Val};
    let Some(m) = st.msg(key) else {
        return Val::Null;
    };
    match prop {
        Prop::ReceivedDateTime | Prop::CreatedDateTime => Val::Date(m.received_ms),
        Prop::LastModifiedDateTime => Val::Date(m.modified_ms),
        Prop::SentDateTime => {
            Val::Date(m.received_ms - st.content_for(m, synth::BodyNeed::None).transit_ms)
        }
        Prop::IsRead => Val::Bool(m.read),
        Prop::IsDraft => Val::Bool(m.role == synth::Role::Draft),
        Prop::HasAttachments => Val::Bool(st.attachments(m).iter().any(|a| !a.inline)),
        Prop::Subject => Val::Str(st.subject(m)),
        Prop::Importance => Val::Str(
            st.content_for(m, synth::BodyNeed::None)
                .importance
                .to_owned(),
        ),
        Prop::ConversationId => Val::Str(ids::conversation_id(st.tag, synth::thread_of(m.ordinal))),
        Prop::InternetMessageId => {
            Val::Str(st.content_for(m, synth::BodyNeed::None).internet_message_id)
        }
        Prop::ParentFolderId => Val::Str(st.folder_id(m.folder)),
        Prop::FromAddress | Prop::SenderAddress => st
            .content(m)
            .from
            .map_or(Val::Null, |p| Val::Str(p.address)),
        Prop::FromName => st
            .content_for(m, synth::BodyNeed::None)
            .from
            .map_or(Val::Null, |p| Val::Str(p.name)),
    }
}

fn list_messages(
    shared: &Shared,
    cell: &MailboxCell,
    req: &Req,
    folder: Option<&str>,
    p: &Prefs,
    ctx: &Ctx,
) -> Resp {
    let pairs = req.query_pairs();
    for (k, _) in &pairs {
        if k.starts_with('$')
            && ![
                "$top", "$skip", "$select", "$filter", "$orderby", "$count", "$expand",
            ]
            .contains(&k.as_str())
        {
            return ctx.error(
                400,
                "BadRequest",
                &format!("Query option '{k}' is not supported by mailroom-sim."),
            );
        }
    }
    let pg = match paging(&pairs, 10, ctx) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let view = match message_view(&pairs, p, ctx) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let filter = match get("$filter").map(odata::parse_filter).transpose() {
        Ok(f) => f,
        Err(e) => return ctx.query_error(&e),
    };
    let order = match get("$orderby").map(odata::parse_orderby).transpose() {
        Ok(o) => o,
        Err(e) => return ctx.query_error(&e),
    };
    if let (Some(f), Some(_)) = (&filter, &order)
        && let Err(e) = odata::check_orderby_filter(f)
    {
        return ctx.query_error(&e);
    }
    let descending = order.is_none_or(|o| o.descending);
    let with_count = get("$count").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let st = lock(&cell.store);
    let (set, ctx_path) = match folder {
        None => (&st.all, "messages".to_owned()),
        Some(id) => match st.resolve_folder(id) {
            Ok(k) => (
                &st.folders[k as usize].by_received,
                format!("mailFolders('{id}')/messages"),
            ),
            Err(l) => return ctx.lookup(l),
        },
    };
    let keys: Box<dyn Iterator<Item = u32>> = if descending {
        Box::new(set.iter().rev().map(|(_, k)| *k))
    } else {
        Box::new(set.iter().map(|(_, k)| *k))
    };
    let mut total = 0usize;
    let mut page = Vec::with_capacity(pg.top.min(1000));
    let mut more = false;
    for k in keys {
        if let Some(f) = &filter
            && !f.filter.matches(&|prop| msg_value(&st, k, prop))
        {
            continue;
        }
        total += 1;
        if total > pg.skip && page.len() < pg.top {
            page.push(k);
        } else if page.len() == pg.top && total > pg.skip + pg.top {
            more = true;
            if !with_count {
                break;
            }
        }
    }
    let select_suffix = get("$select").map(|s| format!("({s})")).unwrap_or_default();
    let mut out = Vec::with_capacity(page.len() * 3000 + 256);
    out.extend_from_slice(b"{\"@odata.context\":");
    let context = format!(
        "{}/v1.0/$metadata#users('{}')/{ctx_path}{select_suffix}",
        shared.base_url, cell.user_id
    );
    let _ = serde_json::to_writer(&mut out, &context);
    if with_count {
        out.extend_from_slice(format!(",\"@odata.count\":{total}").as_bytes());
    }
    out.extend_from_slice(b",\"value\":[");
    for (i, k) in page.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if let Some(m) = st.msg(*k) {
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
    out.push(b']');
    if more {
        out.extend_from_slice(b",\"@odata.nextLink\":");
        let _ = serde_json::to_writer(&mut out, &next_link(shared, req, &pairs, pg.skip, pg.top));
    }
    out.push(b'}');
    Resp::raw_json(StatusCode::OK, out)
}

fn single_message(
    shared: &Shared,
    cell: &MailboxCell,
    st: &Store,
    key: u32,
    view: &View,
    status: StatusCode,
) -> Resp {
    let Some(m) = st.msg(key) else {
        return Resp::new(StatusCode::NOT_FOUND);
    };
    let mut out = Vec::with_capacity(4096);
    let context = format!(
        "{}/v1.0/$metadata#users('{}')/messages/$entity",
        shared.base_url, cell.user_id
    );
    out.extend_from_slice(b"{\"@odata.context\":");
    let _ = serde_json::to_writer(&mut out, &context);
    out.push(b',');
    let body = serde_json::to_vec(&MessageJson {
        store: st,
        msg: m,
        view,
    })
    .unwrap_or_default();
    out.extend_from_slice(&body[1..]);
    Resp::raw_json(status, out)
}

fn get_message(
    shared: &Shared,
    cell: &MailboxCell,
    req: &Req,
    id: &str,
    p: &Prefs,
    ctx: &Ctx,
) -> Resp {
    let pairs = req.query_pairs();
    let view = match message_view(&pairs, p, ctx) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let st = lock(&cell.store);
    match st.resolve_message(id) {
        Ok(k) => single_message(shared, cell, &st, k, &view, StatusCode::OK),
        Err(l) => ctx.lookup(l),
    }
}

fn patch_message(
    shared: &Shared,
    cell: &MailboxCell,
    req: &Req,
    id: &str,
    p: &Prefs,
    ctx: &Ctx,
) -> Resp {
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return ctx.error(400, "BadRequest", "Empty Payload. JSON content expected.");
    };
    let now = now_ms(shared);
    let mut st = lock(&cell.store);
    let key = match st.resolve_message(id) {
        Ok(k) => k,
        Err(l) => return ctx.lookup(l),
    };
    if let Some(obj) = body.as_object() {
        // Instance and property annotations (`@odata.type`, which every
        // Kiota-based SDK sends, `subject@odata.type`, …) are ignored, as
        // by Graph.
        for (k, v) in obj.iter().filter(|(k, _)| !k.contains('@')) {
            match (k.as_str(), v) {
                ("isRead", Value::Bool(b)) => st.set_read(key, *b, now),
                ("subject", Value::String(s)) => st.set_subject(key, s, now),
                _ => {
                    return ctx.error(
                        400,
                        "ErrorInvalidProperty",
                        &format!("The property '{k}' cannot be updated by mailroom-sim (isRead and subject can)."),
                    );
                }
            }
        }
    }
    let mut view = View::new();
    view.immutable_ids = p.immutable;
    view.text_body = p.text_body;
    single_message(shared, cell, &st, key, &view, StatusCode::OK)
}

fn message_value(cell: &MailboxCell, id: &str, ctx: &Ctx) -> Resp {
    let st = lock(&cell.store);
    let key = match st.resolve_message(id) {
        Ok(k) => k,
        Err(l) => return ctx.lookup(l),
    };
    let Some(m) = st.msg(key) else {
        return ctx.not_found();
    };
    let content = st.content(m);
    let atts: Vec<_> = st
        .attachments(m)
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let bytes = st.attachment_bytes(m, i as u16, &a);
            (a, bytes)
        })
        .collect();
    let raw = mime::build(&content, m.received_ms, m.role == synth::Role::Draft, &atts);
    Resp::new(StatusCode::OK)
        .with_header("content-type", "message/rfc822")
        .with_body(raw)
}

fn move_message(
    shared: &Shared,
    cell: &MailboxCell,
    req: &Req,
    id: &str,
    p: &Prefs,
    ctx: &Ctx,
) -> Resp {
    // Action parameters are matched without regard to case, as by Graph
    // (Microsoft's SDK snippets send `DestinationId`).
    let dest = serde_json::from_slice::<Value>(&req.body)
        .ok()
        .and_then(|v| action_parameter(&v, "destinationId"));
    let Some(dest) = dest else {
        return ctx.error(
            400,
            "ErrorInvalidRequest",
            "The destinationId parameter is required.",
        );
    };
    let now = now_ms(shared);
    let mut st = lock(&cell.store);
    let key = match st.resolve_message(id) {
        Ok(k) => k,
        Err(l) => return ctx.lookup(l),
    };
    let dest = match st.resolve_folder(&dest) {
        Ok(d) => d,
        Err(l) => return ctx.lookup(l),
    };
    st.move_to(key, dest, now);
    let mut view = View::new();
    view.immutable_ids = p.immutable;
    view.text_body = p.text_body;
    single_message(shared, cell, &st, key, &view, StatusCode::CREATED)
}

/// A string parameter of an action body, its name matched without regard to case.
fn action_parameter(body: &Value, name: &str) -> Option<String> {
    body.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_owned)
}

fn delete_message(
    shared: &Shared,
    cell: &MailboxCell,
    id: &str,
    permanent: bool,
    ctx: &Ctx,
) -> Resp {
    let now = now_ms(shared);
    let mut st = lock(&cell.store);
    let key = match st.resolve_message(id) {
        Ok(k) => k,
        Err(l) => return ctx.lookup(l),
    };
    let deleted_items = st.resolve_folder("deleteditems").unwrap_or(4);
    let in_deleted = st.msg(key).is_some_and(|m| m.folder == deleted_items);
    if permanent || in_deleted {
        st.permanent_delete(key);
    } else {
        st.move_to(key, deleted_items, now);
    }
    Resp::new(StatusCode::NO_CONTENT)
}

fn attachments(
    shared: &Shared,
    cell: &MailboxCell,
    req: &Req,
    id: &str,
    aid: Option<&str>,
    raw: bool,
    ctx: &Ctx,
) -> Resp {
    let pairs = req.query_pairs();
    let select = match pairs.iter().find(|(k, _)| k == "$select") {
        Some((_, s)) => match odata::parse_select(s, json::ATTACHMENT_FIELDS, "attachment") {
            Ok(sel) => Some(sel),
            Err(e) => return ctx.query_error(&e),
        },
        None => None,
    };
    let st = lock(&cell.store);
    let key = match st.resolve_message(id) {
        Ok(k) => k,
        Err(l) => return ctx.lookup(l),
    };
    let Some(m) = st.msg(key) else {
        return ctx.not_found();
    };
    let specs = st.attachments(m);
    let one = |index: u16| AttachmentJson {
        store: &st,
        msg: m,
        index,
        spec: &specs[index as usize],
        select: select.as_deref(),
        with_context: false,
    };
    let Some(aid) = aid else {
        let list: Vec<_> = (0..specs.len() as u16).map(one).collect();
        let body = json!({
            "@odata.context": format!("{}/v1.0/$metadata#users('{}')/messages('{id}')/attachments", shared.base_url, cell.user_id),
            "value": list,
        });
        return Resp::json(StatusCode::OK, &body);
    };
    let index = match st.resolve_attachment(aid) {
        Ok((k, i)) if k == key && (i as usize) < specs.len() => i,
        Ok(_) => return ctx.not_found(),
        Err(l) => return ctx.lookup(l),
    };
    if raw {
        let spec = &specs[index as usize];
        return Resp::new(StatusCode::OK)
            .with_header("content-type", spec.content_type)
            .with_body(st.attachment_bytes(m, index, spec));
    }
    let mut v = serde_json::to_value(one(index)).unwrap_or_default();
    if let Value::Object(obj) = &mut v {
        let mut out = serde_json::Map::new();
        out.insert(
            "@odata.context".into(),
            json!(format!(
                "{}/v1.0/$metadata#users('{}')/messages('{id}')/attachments/$entity",
                shared.base_url, cell.user_id
            )),
        );
        out.extend(std::mem::take(obj));
        v = Value::Object(out);
    }
    Resp::json(StatusCode::OK, &v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(m: Method, path: &str) -> Result<Route, String> {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        parse_route(&m, &segs).map(|(_, r)| r)
    }

    #[test]
    fn routes() {
        assert_eq!(route(Method::GET, "me"), Ok(Route::Me));
        assert_eq!(
            route(Method::GET, "me/mailFolders/inbox/messages"),
            Ok(Route::Messages(Some("inbox".into())))
        );
        assert_eq!(
            route(
                Method::GET,
                "me/mailfolders('AQMk')/messages/microsoft.graph.delta()"
            ),
            Ok(Route::Delta("AQMk".into()))
        );
        assert_eq!(
            route(Method::GET, "users/a@b.test/messages/X/$value"),
            Ok(Route::MessageValue("X".into()))
        );
        assert_eq!(
            route(Method::POST, "me/messages/X/move"),
            Ok(Route::Move("X".into()))
        );
        assert_eq!(route(Method::GET, "me/mesages"), Err("mesages".into()));
        assert!(route(Method::GET, "me/messages/X/move").is_err());
    }

    #[test]
    fn folder_filters_need_doubled_quotes() {
        assert_eq!(
            folder_filter("displayName eq 'Bob''s \"mail\" & more'").unwrap(),
            "Bob's \"mail\" & more"
        );
        assert!(folder_filter("displayName eq 'Bob's'").is_err());
        assert!(folder_filter("displayName eq Bob").is_err());
    }
}
