//! Change notifications, as Microsoft documents them: `/subscriptions` (create,
//! get, list, renew with PATCH, delete), the validation handshake to the
//! `notificationUrl` and the `lifecycleNotificationUrl` (a POST with
//! `?validationToken=` that must be echoed as `text/plain` with 200 within the
//! deadline, 10 s by default; the subscription is refused otherwise), a
//! notification for every change of the watched folder's messages (with
//! [`NotificationFaults`]: delay, drops, duplicates, reordering), lifecycle
//! notifications on demand, and expiry on the simulator's clock.
//!
//! Sources: <https://learn.microsoft.com/graph/api/subscription-post-subscriptions>,
//! <https://learn.microsoft.com/graph/change-notifications-delivery-webhooks>,
//! <https://learn.microsoft.com/graph/change-notifications-lifecycle-events>.
//! Documented choices: `http://` notification URLs are accepted (the simulator
//! lives on loopback; Graph requires https); up to 50 notifications per POST.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::store::Change;
use super::{Ctx, webhook};
use crate::http::{Req, Resp};
use crate::state::{MailboxCell, Shared, lock};

/// The longest subscription Graph grants on Outlook messages (no resource data):
/// 10,080 minutes.
pub const MAX_SUBSCRIPTION_MINUTES: i64 = 10_080;

const BATCH: usize = 50;

/// Faults of notification delivery (not of the validation handshake).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NotificationFaults {
    /// Wait this long before each POST.
    pub delay: Duration,
    /// Percentage of notifications never sent.
    pub drop_percent: f64,
    /// Percentage of notifications sent twice.
    pub duplicate_percent: f64,
    /// Shuffle the notifications of each round.
    pub reorder: bool,
    /// How long a webhook has to answer a validation request (Graph: 10 s).
    pub validation_timeout: Duration,
}

impl Default for NotificationFaults {
    fn default() -> Self {
        NotificationFaults {
            delay: Duration::ZERO,
            drop_percent: 0.0,
            duplicate_percent: 0.0,
            reorder: false,
            validation_timeout: Duration::from_secs(10),
        }
    }
}

/// A subscription, as the simulator's library API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SubscriptionInfo {
    /// Its id.
    pub id: String,
    /// The mailbox it belongs to.
    pub mailbox: String,
    /// The resource as given.
    pub resource: String,
    /// When it ends.
    pub expires: DateTime<Utc>,
    /// Where notifications go.
    pub notification_url: String,
    /// Where lifecycle notifications go.
    pub lifecycle_notification_url: Option<String>,
}

/// A lifecycle event to send ([`Simulator::send_lifecycle`](crate::Simulator::send_lifecycle)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Lifecycle {
    /// `reauthorizationRequired`.
    ReauthorizationRequired,
    /// `subscriptionRemoved` (the simulator removes the subscription too).
    SubscriptionRemoved,
    /// `missed`.
    Missed,
}

impl Lifecycle {
    fn as_str(self) -> &'static str {
        match self {
            Lifecycle::ReauthorizationRequired => "reauthorizationRequired",
            Lifecycle::SubscriptionRemoved => "subscriptionRemoved",
            Lifecycle::Missed => "missed",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Sub {
    id: String,
    mailbox: String,
    user_id: String,
    folder: u32,
    resource: String,
    change_type: String,
    notification_url: String,
    lifecycle_url: Option<String>,
    client_state: Option<String>,
    expires: DateTime<Utc>,
    last_seq: u64,
}

impl Sub {
    fn info(&self) -> SubscriptionInfo {
        SubscriptionInfo {
            id: self.id.clone(),
            mailbox: self.mailbox.clone(),
            resource: self.resource.clone(),
            expires: self.expires,
            notification_url: self.notification_url.clone(),
            lifecycle_notification_url: self.lifecycle_url.clone(),
        }
    }

    fn json(&self, base: &str) -> Value {
        json!({
            "@odata.context": format!("{base}/v1.0/$metadata#subscriptions/$entity"),
            "id": self.id,
            "resource": self.resource,
            "applicationId": "00000000-0000-0000-0000-000000000000",
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": time(self.expires),
            "creatorId": self.user_id,
            "includeResourceData": false,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": null,
            "encryptionCertificateId": null,
            "notificationUrlAppId": null,
        })
    }
}

/// Subscriptions of a simulator, and its delivery faults.
#[derive(Debug, Default)]
pub(crate) struct Subs {
    by_id: BTreeMap<String, Sub>,
    pub(crate) faults: NotificationFaults,
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Is this route one of `/subscriptions`?
pub(crate) fn route(seg: &[&str], method: &Method) -> Option<(String, Option<String>)> {
    let m = method.as_str();
    match seg {
        [s] if s.eq_ignore_ascii_case("subscriptions")
            && (*method == Method::GET || *method == Method::POST) =>
        {
            Some((format!("{m} /v1.0/subscriptions"), None))
        }
        [s, id]
            if s.eq_ignore_ascii_case("subscriptions")
                && matches!(*method, Method::GET | Method::PATCH | Method::DELETE) =>
        {
            Some((
                format!("{m} /v1.0/subscriptions/{{id}}"),
                Some((*id).to_owned()),
            ))
        }
        _ => None,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Create {
    change_type: Option<String>,
    notification_url: Option<String>,
    lifecycle_notification_url: Option<String>,
    resource: Option<String>,
    expiration_date_time: Option<DateTime<Utc>>,
    client_state: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Renew {
    expiration_date_time: Option<DateTime<Utc>>,
}

/// Answers a `/subscriptions` request of an authenticated mailbox.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    cell: &Arc<MailboxCell>,
    req: &Req,
    id: Option<&str>,
    ctx: &Ctx,
) -> Resp {
    let now = shared.clock.now_utc();
    purge_expired(shared, now);
    match (id, &req.method) {
        (None, &Method::POST) => create(shared, cell, req, ctx, now).await,
        (None, _) => {
            let subs = lock(&shared.subs);
            let value: Vec<Value> = subs
                .by_id
                .values()
                .filter(|s| s.mailbox == cell.address)
                .map(|s| s.json(&shared.base_url))
                .collect();
            Resp::json(
                StatusCode::OK,
                &json!({
                    "@odata.context": format!("{}/v1.0/$metadata#subscriptions", shared.base_url),
                    "value": value,
                }),
            )
        }
        (Some(id), method) => {
            let mut subs = lock(&shared.subs);
            let Some(sub) = subs.by_id.get_mut(id).filter(|s| s.mailbox == cell.address) else {
                return ctx.error(
                    404,
                    "ResourceNotFound",
                    &format!("The object was not found. Subscription Id: {id}"),
                );
            };
            match *method {
                Method::GET => Resp::json(StatusCode::OK, &sub.json(&shared.base_url)),
                Method::PATCH => {
                    let Ok(r) = serde_json::from_slice::<Renew>(&req.body) else {
                        return ctx.error(400, "BadRequest", "Invalid request body.");
                    };
                    let Some(expires) = r.expiration_date_time else {
                        return ctx.error(400, "BadRequest", "expirationDateTime is required.");
                    };
                    if let Err(resp) = check_expiry(expires, now, ctx) {
                        return resp;
                    }
                    sub.expires = expires;
                    let body = sub.json(&shared.base_url);
                    drop(subs);
                    shared.counters.update(|c| c.subscriptions_renewed += 1);
                    Resp::json(StatusCode::OK, &body)
                }
                _ => {
                    subs.by_id.remove(id);
                    drop(subs);
                    shared.counters.update(|c| c.subscriptions_deleted += 1);
                    Resp::new(StatusCode::NO_CONTENT)
                }
            }
        }
    }
}

fn check_expiry(expires: DateTime<Utc>, now: DateTime<Utc>, ctx: &Ctx) -> Result<(), Resp> {
    if expires <= now {
        return Err(ctx.error(
            400,
            "ExtensionError",
            "Subscription expiration can only be in the future.",
        ));
    }
    if expires > now + chrono::Duration::minutes(MAX_SUBSCRIPTION_MINUTES) {
        return Err(ctx.error(
            400,
            "ExtensionError",
            &format!(
                "Subscription expiration can only be {MAX_SUBSCRIPTION_MINUTES} minutes in the future."
            ),
        ));
    }
    Ok(())
}

/// The folder of `me/mailFolders('{id}')/messages` (or `/me/mailFolders/{id}/messages`).
fn folder_of(resource: &str) -> Option<String> {
    let segs: Vec<&str> = resource
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let norm = super::normalize(&segs);
    match norm
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [me, mf, id, ms]
            if me.eq_ignore_ascii_case("me")
                && mf.eq_ignore_ascii_case("mailFolders")
                && ms.eq_ignore_ascii_case("messages") =>
        {
            Some((*id).to_owned())
        }
        [me, ms] if me.eq_ignore_ascii_case("me") && ms.eq_ignore_ascii_case("messages") => {
            Some(String::new())
        }
        _ => None,
    }
}

async fn create(
    shared: &Arc<Shared>,
    cell: &Arc<MailboxCell>,
    req: &Req,
    ctx: &Ctx,
    now: DateTime<Utc>,
) -> Resp {
    let Ok(c) = serde_json::from_slice::<Create>(&req.body) else {
        return ctx.error(400, "BadRequest", "Invalid request body.");
    };
    let (Some(change_type), Some(url), Some(resource), Some(expires)) = (
        c.change_type,
        c.notification_url,
        c.resource,
        c.expiration_date_time,
    ) else {
        return ctx.error(
            400,
            "BadRequest",
            "changeType, notificationUrl, resource and expirationDateTime are required.",
        );
    };
    if change_type
        .split(',')
        .any(|t| !matches!(t.trim(), "created" | "updated" | "deleted"))
    {
        return ctx.error(400, "BadRequest", "Invalid changeType.");
    }
    if c.client_state
        .as_ref()
        .is_some_and(|s| s.chars().count() > 128)
    {
        return ctx.error(
            400,
            "BadRequest",
            "clientState can be at most 128 characters.",
        );
    }
    if let Err(resp) = check_expiry(expires, now, ctx) {
        return resp;
    }
    let Some(folder_id) = folder_of(&resource) else {
        return ctx.error(
            400,
            "ExtensionError",
            &format!("Resource '{resource}' is not supported for subscriptions."),
        );
    };
    let (folder, seq) = {
        let st = lock(&cell.store);
        let folder = if folder_id.is_empty() {
            None
        } else {
            match st.resolve_folder(&folder_id) {
                Ok(k) => Some(k),
                Err(_) => {
                    return ctx.error(
                        404,
                        "ErrorItemNotFound",
                        "The specified object was not found in the store.",
                    );
                }
            }
        };
        (folder, st.seq)
    };
    let Some(folder) = folder else {
        return ctx.error(
            400,
            "ExtensionError",
            "The simulator supports subscriptions on one folder's messages only.",
        );
    };
    // The handshake, to both URLs, before the answer.
    let timeout = lock(&shared.subs).faults.validation_timeout;
    for target in std::iter::once(&url).chain(c.lifecycle_notification_url.as_ref()) {
        if let Err(why) = validate(shared, target, timeout).await {
            tracing::info!(url = %target, %why, "subscription validation failed");
            return ctx.error(
                400,
                "ValidationError",
                &format!(
                    "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request. ({why})"
                ),
            );
        }
    }
    let id = shared.rng().uuid();
    let sub = Sub {
        id: id.clone(),
        mailbox: cell.address.clone(),
        user_id: cell.user_id.clone(),
        folder,
        resource,
        change_type,
        notification_url: url,
        lifecycle_url: c.lifecycle_notification_url,
        client_state: c.client_state,
        expires,
        last_seq: seq,
    };
    let body = sub.json(&shared.base_url);
    lock(&shared.subs).by_id.insert(id, sub);
    shared.counters.update(|c| c.subscriptions_created += 1);
    Resp::json(StatusCode::CREATED, &body)
}

async fn validate(shared: &Shared, url: &str, timeout: Duration) -> Result<(), String> {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        shared.rng().uuid()
    );
    let query = format!(
        "validationToken={}",
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    shared.counters.update(|c| c.validations += 1);
    let result =
        match webhook::post(url, Some(&query), "text/plain; charset=utf-8", b"", timeout).await {
            Ok(a) if a.status != 200 => Err(format!("the endpoint answered {}", a.status)),
            Ok(a) if a.body != token.as_bytes() => {
                Err("the endpoint did not echo the validation token".to_owned())
            }
            Ok(a)
                if !a
                    .content_type
                    .as_deref()
                    .is_some_and(|t| t.starts_with("text/plain")) =>
            {
                Err("the answer is not text/plain".to_owned())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
    if result.is_err() {
        shared.counters.update(|c| c.validation_failures += 1);
    }
    result
}

fn purge_expired(shared: &Shared, now: DateTime<Utc>) {
    let mut subs = lock(&shared.subs);
    let before = subs.by_id.len();
    subs.by_id.retain(|_, s| s.expires > now);
    let gone = (before - subs.by_id.len()) as u64;
    if gone > 0 {
        drop(subs);
        shared.counters.update(|c| c.subscriptions_expired += gone);
    }
}

/// The subscriptions alive now.
pub(crate) fn list(shared: &Shared) -> Vec<SubscriptionInfo> {
    purge_expired(shared, shared.clock.now_utc());
    lock(&shared.subs).by_id.values().map(Sub::info).collect()
}

/// Sends a lifecycle notification now (in a task); `false` if there is no such
/// subscription or it has no lifecycle URL.
pub(crate) fn send_lifecycle(shared: &Arc<Shared>, id: &str, event: Lifecycle) -> bool {
    let sub = {
        let mut subs = lock(&shared.subs);
        let Some(sub) = subs.by_id.get(id).cloned() else {
            return false;
        };
        if event == Lifecycle::SubscriptionRemoved {
            subs.by_id.remove(id);
        }
        sub
    };
    let Some(url) = sub.lifecycle_url.clone() else {
        return false;
    };
    let body = json!({"value": [{
        "subscriptionId": sub.id,
        "subscriptionExpirationDateTime": time(sub.expires),
        "tenantId": "00000000-0000-0000-0000-000000000001",
        "clientState": sub.client_state,
        "lifecycleEvent": event.as_str(),
        "resource": sub.resource,
    }]});
    let shared = shared.clone();
    tokio::spawn(async move {
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let ok = matches!(
            webhook::post(&url, None, "application/json", &bytes, Duration::from_secs(30)).await,
            Ok(a) if (200..300).contains(&a.status)
        );
        shared.counters.update(|c| {
            c.lifecycle_notifications_sent += 1;
            if !ok {
                c.notification_posts_failed += 1;
            }
        });
    });
    true
}

/// Finds the changes of every subscribed folder since the last round and posts
/// them, every 20 ms, until the simulator is gone.
pub(crate) async fn notifier(shared: Weak<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        round(&shared);
    }
}

fn round(shared: &Arc<Shared>) {
    let now = shared.clock.now_utc();
    purge_expired(shared, now);
    let subs: Vec<Sub> = lock(&shared.subs).by_id.values().cloned().collect();
    let mut outgoing: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut seen: Vec<(String, u64)> = Vec::new();
    for sub in subs {
        let Some(cell) = shared.mailbox_cell(&sub.mailbox) else {
            continue;
        };
        let st = lock(&cell.store);
        if st.seq == sub.last_seq {
            continue;
        }
        seen.push((sub.id.clone(), st.seq));
        let Some(folder) = st.folders.get(sub.folder as usize) else {
            continue;
        };
        let wanted: Vec<&str> = sub.change_type.split(',').map(str::trim).collect();
        for change in folder.changes.range(sub.last_seq + 1..).map(|(_, c)| c) {
            let (kind, id) = match change {
                Change::Live(key) => {
                    let Some(m) = st.msg(*key) else { continue };
                    let kind = if m.entered_seq > sub.last_seq {
                        "created"
                    } else {
                        "updated"
                    };
                    (kind, st.message_id(m, false))
                }
                Change::Removed { key, incarnation } => {
                    ("deleted", st.removed_id(*key, *incarnation, false))
                }
            };
            if !wanted.contains(&kind) {
                continue;
            }
            let resource = format!("Users/{}/Messages/{id}", sub.user_id);
            outgoing
                .entry(sub.notification_url.clone())
                .or_default()
                .push(json!({
                    "subscriptionId": sub.id,
                    "subscriptionExpirationDateTime": time(sub.expires),
                    "changeType": kind,
                    "resource": resource,
                    "resourceData": {
                        "@odata.type": "#Microsoft.Graph.Message",
                        "@odata.id": resource,
                        "@odata.etag": "W/\"CQAAABYAAAA=\"",
                        "id": id,
                    },
                    "clientState": sub.client_state,
                    "tenantId": "00000000-0000-0000-0000-000000000001",
                }));
        }
    }
    {
        let mut subs = lock(&shared.subs);
        for (id, seq) in seen {
            if let Some(s) = subs.by_id.get_mut(&id) {
                s.last_seq = seq;
            }
        }
    }
    if outgoing.is_empty() {
        return;
    }
    let faults = lock(&shared.subs).faults.clone();
    for (url, list) in outgoing {
        let mut sent = Vec::with_capacity(list.len());
        let (mut dropped, mut duplicated) = (0u64, 0u64);
        {
            let mut rng = shared.rng();
            for n in list {
                if rng.chance(faults.drop_percent / 100.0) {
                    dropped += 1;
                    continue;
                }
                if rng.chance(faults.duplicate_percent / 100.0) {
                    duplicated += 1;
                    sent.push(n.clone());
                }
                sent.push(n);
            }
            if faults.reorder {
                for i in (1..sent.len()).rev() {
                    let j = rng.index(i + 1);
                    sent.swap(i, j);
                }
            }
        }
        shared.counters.update(|c| {
            c.notifications_dropped += dropped;
            c.notifications_duplicated += duplicated;
        });
        for chunk in sent.chunks(BATCH) {
            let body = serde_json::to_vec(&json!({ "value": chunk })).unwrap_or_default();
            let n = chunk.len() as u64;
            let (shared, url, delay) = (shared.clone(), url.clone(), faults.delay);
            tokio::spawn(async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let ok = matches!(
                    webhook::post(&url, None, "application/json", &body, Duration::from_secs(30)).await,
                    Ok(a) if (200..300).contains(&a.status)
                );
                shared.counters.update(|c| {
                    if ok {
                        c.notifications_sent += n;
                    } else {
                        c.notification_posts_failed += 1;
                    }
                });
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::folder_of;

    #[test]
    fn resources() {
        assert_eq!(
            folder_of("me/mailFolders('AAMk''x')/messages").as_deref(),
            Some("AAMk'x")
        );
        assert_eq!(
            folder_of("/me/mailFolders/inbox/messages").as_deref(),
            Some("inbox")
        );
        assert_eq!(folder_of("me/messages").as_deref(), Some(""));
        assert_eq!(folder_of("me/events"), None);
    }
}
