//! `POST /$batch`: up to 20 requests, `dependsOn`, per-item status.
//!
//! Items run in waves: every item whose dependencies are done runs in the
//! same wave, and a wave's items count as concurrent requests for the
//! mailbox — so a batch of more than 4 independent items meets the
//! MailboxConcurrency limit item by item, as it does on Exchange Online.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Ctx, InFlight, admit, authenticate, count_status, execute, parse_route};
use crate::counters::bump;
use crate::http::{Req, Resp};
use crate::server::segments;
use crate::state::{Shared, lock};

/// Most requests one batch may hold.
pub(crate) const MAX_REQUESTS: usize = 20;

#[derive(Deserialize)]
struct Batch {
    requests: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    id: Value,
    method: String,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default, rename = "dependsOn")]
    depends_on: Vec<String>,
}

fn item_id(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) async fn run(shared: &Arc<Shared>, req: &Req, ctx: &Ctx) -> Resp {
    let batch: Batch = match serde_json::from_slice(&req.body) {
        Ok(b) => b,
        Err(e) => {
            return ctx.error(
                400,
                "BadRequest",
                &format!("Invalid batch payload format: {e}."),
            );
        }
    };
    let n = batch.requests.len();
    if n == 0 {
        return ctx.error(
            400,
            "BadRequest",
            "Invalid batch payload format: the requests array is empty.",
        );
    }
    if n > MAX_REQUESTS {
        return ctx.error(
            400,
            "BadRequest",
            &format!("The number of batch requests ({n}) exceeds the maximum of {MAX_REQUESTS}."),
        );
    }
    let ids: Vec<String> = batch.requests.iter().map(|r| item_id(&r.id)).collect();
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].iter().any(|x| x.eq_ignore_ascii_case(id)) {
            return ctx.error(
                400,
                "BadRequest",
                &format!("Batch request ids must be unique: '{id}' is repeated."),
            );
        }
    }
    for item in &batch.requests {
        for dep in &item.depends_on {
            if !ids.contains(dep) || *dep == item_id(&item.id) {
                return ctx.error(
                    400,
                    "BadRequest",
                    &format!("Request '{}' depends on '{dep}', which is not another request of the batch.", item_id(&item.id)),
                );
            }
        }
    }
    if has_cycle(&batch.requests, &ids) {
        return ctx.error(
            400,
            "BadRequest",
            "The dependsOn of the batch requests form a cycle.",
        );
    }
    let cell = match authenticate(shared, req, ctx) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    shared.counters.update(|c| c.batch_items += n as u64);
    // One Retry-After check for the whole batch (it is one HTTP request).
    {
        let now = shared.clock.now();
        let early = lock(&cell.throttle)
            .retry_not_before
            .is_some_and(|nb| now < nb);
        if early {
            shared.counters.update(|c| {
                bump(&mut c.retry_after_violations, &cell.address);
                c.retry_after_violations_total += 1;
            });
        }
    }
    let latency = shared.faults().latency;
    let mut results: Vec<Option<Resp>> = (0..n).map(|_| None).collect();
    loop {
        let wave: Vec<usize> = (0..n)
            .filter(|&i| results[i].is_none())
            .filter(|&i| {
                batch.requests[i].depends_on.iter().all(|d| {
                    ids.iter()
                        .position(|x| x == d)
                        .is_some_and(|j| results[j].is_some())
                })
            })
            .collect();
        if wave.is_empty() {
            break;
        }
        let mut admitted = InFlight::new(cell.clone(), 0);
        let mut any = false;
        let mut wave_results = Vec::with_capacity(wave.len());
        for &i in &wave {
            let item = &batch.requests[i];
            let item_ctx = Ctx::new(shared, req);
            let failed_dep = item.depends_on.iter().any(|d| {
                ids.iter()
                    .position(|x| x == d)
                    .and_then(|j| results[j].as_ref())
                    .is_some_and(|r| r.status.as_u16() >= 400)
            });
            let (template, resp) = if failed_dep {
                (
                    None,
                    item_ctx.error(
                        424,
                        "FailedDependency",
                        "The request was not run because a request it depends on failed.",
                    ),
                )
            } else {
                match item_request(req, item) {
                    Err(msg) => (None, item_ctx.error(400, "BadRequest", &msg)),
                    Ok(sub) => {
                        let segs = segments(&sub.path);
                        let seg: Vec<&str> = segs.iter().map(String::as_str).collect();
                        match parse_route(&sub.method, &seg[1..]) {
                            Err(bad) => (
                                None,
                                item_ctx.error(
                                    400,
                                    "BadRequest",
                                    &format!("Resource not found for the segment '{bad}'."),
                                ),
                            ),
                            Ok((template, route)) => match admit(shared, &cell, &item_ctx, true) {
                                Err(r) => (Some(template), *r),
                                Ok(()) => {
                                    admitted.add(1);
                                    any = true;
                                    (
                                        Some(template),
                                        execute(shared, &cell, &sub, &route, &item_ctx),
                                    )
                                }
                            },
                        }
                    }
                }
            };
            count_status(shared, &cell, &resp);
            shared.counters.update(|c| {
                if let Some(t) = template {
                    *c.requests_by_route.entry(t).or_default() += 1;
                }
                *c.responses_by_status
                    .entry(resp.status.as_u16())
                    .or_default() += 1;
            });
            wave_results.push((i, item_ctx.finish(resp)));
        }
        if any && !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        drop(admitted);
        for (i, r) in wave_results {
            results[i] = Some(r);
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    if shared.config.shuffle_batch_responses {
        let mut rng = shared.rng();
        for i in (1..n).rev() {
            let j = rng.index(i + 1);
            order.swap(i, j);
        }
    }
    let responses: Vec<Value> = order
        .into_iter()
        .map(|i| item_json(&ids[i], results[i].as_ref()))
        .collect();
    Resp::json(StatusCode::OK, &json!({ "responses": responses }))
}

fn has_cycle(items: &[Item], ids: &[String]) -> bool {
    let mut done = vec![false; items.len()];
    loop {
        let ready: Vec<usize> = (0..items.len())
            .filter(|&i| !done[i])
            .filter(|&i| {
                items[i]
                    .depends_on
                    .iter()
                    .all(|d| ids.iter().position(|x| x == d).is_some_and(|j| done[j]))
            })
            .collect();
        if ready.is_empty() {
            return done.iter().any(|d| !d);
        }
        for i in ready {
            done[i] = true;
        }
    }
}

/// The request an item describes, with the batch's `Authorization`.
fn item_request(outer: &Req, item: &Item) -> Result<Req, String> {
    let method = Method::from_bytes(item.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("Invalid method '{}'.", item.method))?;
    if item.url.contains("://") {
        return Err(format!(
            "Invalid request URL '{}': batch URLs are relative, like /me/messages.",
            item.url
        ));
    }
    // Kept as sent: an item URL with the version segment (`/v1.0/me`) gets
    // 400 "Resource not found for the segment 'v1.0'", as from Graph.
    let url = item.url.trim_start_matches('/');
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut headers = HeaderMap::new();
    for (k, v) in &item.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.append(k, v);
        }
    }
    if let Some(auth) = outer.headers.get("authorization") {
        headers.insert("authorization", auth.clone());
    }
    if item.body.is_some()
        && !item
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"))
    {
        return Err("A Content-Type header is required when a body is given.".to_owned());
    }
    let body = match &item.body {
        Some(Value::String(s)) => Bytes::from(s.clone().into_bytes()),
        Some(v) => Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
        None => Bytes::new(),
    };
    Ok(Req {
        method,
        path: format!("/v1.0/{path}"),
        query: query.to_owned(),
        headers,
        body,
    })
}

fn title_case(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn item_json(id: &str, resp: Option<&Resp>) -> Value {
    let Some(resp) = resp else {
        return json!({"id": id, "status": 500});
    };
    let mut headers = Map::new();
    for (k, v) in &resp.headers {
        if matches!(
            k.as_str(),
            "x-ms-ags-diagnostic" | "request-id" | "client-request-id"
        ) {
            continue;
        }
        headers.insert(title_case(k.as_str()), json!(v.to_str().unwrap_or("")));
    }
    let mut item = Map::new();
    item.insert("id".into(), json!(id));
    item.insert("status".into(), json!(resp.status.as_u16()));
    item.insert("headers".into(), Value::Object(headers));
    if !resp.body.is_empty() {
        let body = resp
            .json_body()
            .unwrap_or_else(|| json!(base64::engine::general_purpose::STANDARD.encode(&resp.body)));
        item.insert("body".into(), body);
    }
    Value::Object(item)
}
