//! Change notifications: subscription requests and answers, and the notification
//! bodies Graph POSTs to a webhook (`changeNotificationCollection`), as values.
//!
//! Shapes follow Microsoft's documentation:
//! <https://learn.microsoft.com/graph/api/resources/subscription>,
//! <https://learn.microsoft.com/graph/api/resources/changenotification> and
//! <https://learn.microsoft.com/graph/change-notifications-lifecycle-events>.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The longest lifetime Graph grants a subscription to Outlook messages without
/// resource data: 10,080 minutes ("under 7 days"), per the "Subscription lifetime"
/// table of <https://learn.microsoft.com/graph/api/resources/subscription>. Mailroom
/// asks for ten minutes less, so a clock a little ahead of Graph's is not refused.
pub const MAX_MESSAGE_SUBSCRIPTION_MINUTES: i64 = 10_080;

/// What Mailroom asks for: [`MAX_MESSAGE_SUBSCRIPTION_MINUTES`] minus 10 minutes.
pub const MESSAGE_SUBSCRIPTION_MINUTES: i64 = MAX_MESSAGE_SUBSCRIPTION_MINUTES - 10;

/// The `clientState` limit of Graph (128 characters).
pub const MAX_CLIENT_STATE_LEN: usize = 128;

/// The body of `POST /subscriptions`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSubscription<'a> {
    /// `created,updated,deleted`.
    pub change_type: &'a str,
    /// Where change notifications go.
    pub notification_url: &'a str,
    /// Where lifecycle notifications go.
    pub lifecycle_notification_url: &'a str,
    /// `me/mailFolders('{id}')/messages`.
    pub resource: &'a str,
    /// When it ends (at most [`MAX_MESSAGE_SUBSCRIPTION_MINUTES`] from now).
    #[serde(with = "graph_time")]
    pub expiration_date_time: DateTime<Utc>,
    /// The secret echoed in every notification.
    pub client_state: &'a str,
}

/// The resource path of the messages of one folder, with the id as an OData key
/// literal (quotes doubled).
pub fn folder_messages_resource(folder_id: &str) -> String {
    format!(
        "me/mailFolders('{}')/messages",
        folder_id.replace('\'', "''")
    )
}

/// A subscription as Graph returns it (`clientState` is not kept: the caller has it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Graph's id of the subscription.
    pub id: String,
    /// The resource it watches.
    #[serde(default)]
    pub resource: String,
    /// The change types.
    #[serde(default)]
    pub change_type: String,
    /// When it ends.
    pub expiration_date_time: DateTime<Utc>,
    /// Where notifications go.
    #[serde(default)]
    pub notification_url: String,
}

/// The body of `PATCH /subscriptions/{id}` (renewal).
pub fn renewal_body(expires: DateTime<Utc>) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Renew {
        #[serde(with = "graph_time")]
        expiration_date_time: DateTime<Utc>,
    }
    serde_json::to_vec(&Renew {
        expiration_date_time: expires,
    })
    .expect("json serializes")
}

/// A page of `GET /subscriptions`.
#[derive(Debug, Deserialize)]
pub struct SubscriptionPage {
    /// The subscriptions.
    #[serde(default)]
    pub value: Vec<Subscription>,
    /// The next page.
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
}

/// A lifecycle event (`lifecycleEvent` of a notification to the
/// `lifecycleNotificationUrl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifecycleEvent {
    /// The access token behind the subscription is about to expire (or was revoked):
    /// reauthorize or renew it.
    ReauthorizationRequired,
    /// Graph removed the subscription: create it again.
    SubscriptionRemoved,
    /// Graph could not deliver some notifications: resync.
    Missed,
    /// An event this crate does not know.
    Other,
}

impl LifecycleEvent {
    fn parse(s: &str) -> LifecycleEvent {
        match s {
            "reauthorizationRequired" => LifecycleEvent::ReauthorizationRequired,
            "subscriptionRemoved" => LifecycleEvent::SubscriptionRemoved,
            "missed" => LifecycleEvent::Missed,
            _ => LifecycleEvent::Other,
        }
    }
}

/// One change notification (or lifecycle notification) of a webhook POST.
///
/// `client_state` is the secret the subscription was made with; compare it in
/// constant time before trusting the rest. Its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Notification {
    /// The subscription it belongs to.
    pub subscription_id: String,
    /// The secret, as sent.
    pub client_state: Option<String>,
    /// `created`, `updated`, `deleted` (empty for lifecycle notifications).
    pub change_type: String,
    /// The changed resource (`Users/{id}/Messages/{id}`).
    pub resource: String,
    /// Set on lifecycle notifications.
    pub lifecycle_event: Option<LifecycleEvent>,
}

impl std::fmt::Debug for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notification")
            .field("subscription_id", &self.subscription_id)
            .field(
                "client_state",
                &self.client_state.as_ref().map(|_| "<redacted>"),
            )
            .field("change_type", &self.change_type)
            .field("resource", &self.resource)
            .field("lifecycle_event", &self.lifecycle_event)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNotification {
    subscription_id: String,
    #[serde(default)]
    client_state: Option<String>,
    #[serde(default)]
    change_type: Option<String>,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    lifecycle_event: Option<String>,
}

#[derive(Deserialize)]
struct Collection {
    value: Vec<RawNotification>,
}

/// Parses the body of a webhook POST (a `changeNotificationCollection`).
pub fn parse_notifications(body: &[u8]) -> Result<Vec<Notification>, serde_json::Error> {
    let c: Collection = serde_json::from_slice(body)?;
    Ok(c.value
        .into_iter()
        .map(|n| Notification {
            subscription_id: n.subscription_id,
            client_state: n.client_state,
            change_type: n.change_type.unwrap_or_default(),
            resource: n.resource.unwrap_or_default(),
            lifecycle_event: n.lifecycle_event.as_deref().map(LifecycleEvent::parse),
        })
        .collect())
}

/// Compares two secrets in time that depends on their lengths only.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

mod graph_time {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::Serializer;

    pub(super) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_change_and_a_lifecycle_notification() {
        let body = br##"{"value":[
          {"subscriptionId":"s1","subscriptionExpirationDateTime":"2026-12-10T00:00:00Z",
           "changeType":"created","resource":"Users/u/Messages/m1","clientState":"abc",
           "tenantId":"t","resourceData":{"@odata.type":"#Microsoft.Graph.Message","id":"m1"}},
          {"subscriptionId":"s1","lifecycleEvent":"subscriptionRemoved","clientState":"abc",
           "resource":"me/mailFolders('x')/messages"},
          {"subscriptionId":"s2","lifecycleEvent":"somethingNew"}
        ]}"##;
        let n = parse_notifications(body).unwrap();
        assert_eq!(n.len(), 3);
        assert_eq!(n[0].change_type, "created");
        assert_eq!(n[0].client_state.as_deref(), Some("abc"));
        assert_eq!(n[0].lifecycle_event, None);
        assert_eq!(
            n[1].lifecycle_event,
            Some(LifecycleEvent::SubscriptionRemoved)
        );
        assert_eq!(n[2].lifecycle_event, Some(LifecycleEvent::Other));
        assert!(!format!("{:?}", n[0]).contains("abc"));
    }

    #[test]
    fn refuses_what_is_not_a_collection() {
        assert!(parse_notifications(b"{}").is_err());
        assert!(parse_notifications(b"[1]").is_err());
        assert!(parse_notifications(br#"{"value":[{"changeType":"x"}]}"#).is_err());
    }

    #[test]
    fn resource_doubles_quotes_and_times_have_a_z() {
        assert_eq!(
            folder_messages_resource("a'b"),
            "me/mailFolders('a''b')/messages"
        );
        let t = DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            String::from_utf8(renewal_body(t)).unwrap(),
            r#"{"expirationDateTime":"2026-12-06T10:00:00.000Z"}"#
        );
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
