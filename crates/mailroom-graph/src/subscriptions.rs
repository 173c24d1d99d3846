//! Change-notification subscriptions: create, renew, delete and list them
//! (`/subscriptions`). The webhook side (parsing what Graph POSTs) is
//! [`crate::wire::subscription`].

use bytes::Bytes;
use chrono::{DateTime, Utc};
use mailroom_core::ConnectorError;
use reqwest::Method;

use crate::connector::{GraphConnector, path_id, protocol_error};
use crate::transport::{Call, Pages};
use crate::wire::subscription::{
    NewSubscription, Subscription, SubscriptionPage, folder_messages_resource, renewal_body,
};

/// What [`GraphConnector::subscribe_folder`] asks for.
#[derive(Debug, Clone, Copy)]
pub struct SubscriptionRequest<'a> {
    /// The folder's Graph id.
    pub folder_id: &'a str,
    /// Where change notifications go (https, or the simulator on loopback).
    pub notification_url: &'a str,
    /// Where lifecycle notifications go.
    pub lifecycle_notification_url: &'a str,
    /// When it should end (see
    /// [`MESSAGE_SUBSCRIPTION_MINUTES`](crate::wire::subscription::MESSAGE_SUBSCRIPTION_MINUTES)).
    pub expires: DateTime<Utc>,
    /// The secret Graph echoes in every notification (at most 128 characters).
    pub client_state: &'a str,
}

impl GraphConnector {
    /// Subscribes to `created,updated,deleted` on the messages of one folder.
    ///
    /// Graph validates both URLs before it answers (a `POST` with `?validationToken=`
    /// that must be echoed as `text/plain` within 10 seconds); a failed validation
    /// is an error here.
    pub async fn subscribe_folder(
        &self,
        request: &SubscriptionRequest<'_>,
    ) -> Result<Subscription, ConnectorError> {
        let doing = "cannot subscribe to changes of a folder";
        let resource = folder_messages_resource(request.folder_id);
        let body = serde_json::to_vec(&NewSubscription {
            change_type: "created,updated,deleted",
            notification_url: request.notification_url,
            lifecycle_notification_url: request.lifecycle_notification_url,
            resource: &resource,
            expiration_date_time: request.expires,
            client_state: request.client_state,
        })
        .expect("json serializes");
        let url = self.inner.t.url("/subscriptions", "")?;
        let call = Call::post(url, Some(Bytes::from(body)), Vec::new());
        let answer = self.inner.t.bytes(&call, doing).await?;
        serde_json::from_slice(&answer).map_err(|e| protocol_error(doing, &e, &answer))
    }

    /// Renews a subscription until `expires` (`PATCH /subscriptions/{id}`).
    pub async fn renew_subscription(
        &self,
        id: &str,
        expires: DateTime<Utc>,
    ) -> Result<Subscription, ConnectorError> {
        let doing = "cannot renew a subscription";
        let url = self
            .inner
            .t
            .url(&format!("/subscriptions/{}", path_id(id, doing)?), "")?;
        let call = Call {
            method: Method::PATCH,
            url,
            body: Some(Bytes::from(renewal_body(expires))),
            prefer: Vec::new(),
            permits: 1,
        };
        let answer = self.inner.t.bytes(&call, doing).await?;
        serde_json::from_slice(&answer).map_err(|e| protocol_error(doing, &e, &answer))
    }

    /// Deletes a subscription (`DELETE /subscriptions/{id}`).
    pub async fn delete_subscription(&self, id: &str) -> Result<(), ConnectorError> {
        let doing = "cannot delete a subscription";
        let url = self
            .inner
            .t
            .url(&format!("/subscriptions/{}", path_id(id, doing)?), "")?;
        let call = Call {
            method: Method::DELETE,
            url,
            body: None,
            prefer: Vec::new(),
            permits: 1,
        };
        self.inner.t.bytes(&call, doing).await?;
        Ok(())
    }

    /// The subscriptions of this application and user (`GET /subscriptions`).
    pub async fn list_subscriptions(&self) -> Result<Vec<Subscription>, ConnectorError> {
        let doing = "cannot list subscriptions";
        let mut url = self.inner.t.url("/subscriptions", "")?;
        let mut out = Vec::new();
        let mut pages = Pages::new(&self.inner.t.limits, None);
        loop {
            let body = self
                .inner
                .t
                .bytes(&Call::get(url, Vec::new()), doing)
                .await?;
            let page: SubscriptionPage =
                serde_json::from_slice(&body).map_err(|e| protocol_error(doing, &e, &body))?;
            out.extend(page.value);
            match page.next_link {
                Some(next) => {
                    pages.follow(&next, doing)?;
                    url = self.inner.t.checked_link(&next)?;
                }
                None => return Ok(out),
            }
        }
    }
}
