//! What the simulator saw, for tests to assert on.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A snapshot of every counter (from [`Simulator::counters`](crate::Simulator::counters)
/// or `GET /_sim/counters`). Maps are keyed by route template
/// (`GET /v1.0/me/mailFolders/{id}/messages/delta`), mailbox address
/// (lowercase) or HTTP status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Counters {
    /// Requests per route template (control routes under `/_sim` excluded;
    /// `$batch` items counted under their own route too).
    pub requests_by_route: BTreeMap<String, u64>,
    /// Graph requests (and `$batch` items) per authenticated mailbox.
    pub requests_by_mailbox: BTreeMap<String, u64>,
    /// Responses per HTTP status (`$batch` items included).
    pub responses_by_status: BTreeMap<u16, u64>,
    /// Device codes handed out (`/devicecode` successes).
    pub device_codes_issued: u64,
    /// Token polls of the device code grant (every answer).
    pub device_code_polls: u64,
    /// `slow_down` answers.
    pub slow_downs: u64,
    /// Successful device code grants per account.
    pub device_code_grants: BTreeMap<String, u64>,
    /// Successful refresh token grants per account.
    pub refreshes: BTreeMap<String, u64>,
    /// Failed refresh token grants per account (any `invalid_grant` or 5xx).
    pub refresh_failures: BTreeMap<String, u64>,
    /// Access tokens presented for the first time (to Graph, or to the introspection
    /// endpoint an IMAP server calls), per account: each token counts once, at its
    /// first accepted use. A client that stores a refresh before it uses the new
    /// access token has stored it by the time this counts the token.
    pub access_tokens_used: BTreeMap<String, u64>,
    /// Tokens issued by [`Simulator::issue_tokens`](crate::Simulator::issue_tokens)
    /// or `POST /_sim/tokens`, per account.
    pub test_issued_tokens: BTreeMap<String, u64>,
    /// Redemptions of an already redeemed refresh token, per account
    /// (rejected in strict mode, allowed otherwise).
    pub refresh_token_replays: BTreeMap<String, u64>,
    /// Sum of `refresh_token_replays`.
    pub refresh_token_replays_total: u64,
    /// Requests for a mailbox sent before the `Retry-After` the simulator
    /// advertised to that mailbox had elapsed, per mailbox.
    pub retry_after_violations: BTreeMap<String, u64>,
    /// Sum of `retry_after_violations`.
    pub retry_after_violations_total: u64,
    /// Highest number of requests in flight at once per mailbox (counting
    /// those refused by the concurrency limit and parallel `$batch` items).
    pub peak_concurrency: BTreeMap<String, u32>,
    /// Throttling answers (429) sent per mailbox.
    pub throttled: BTreeMap<String, u64>,
    /// Injected random faults (429/500/503/504) per mailbox.
    pub injected_faults: BTreeMap<String, u64>,
    /// `$batch` items received.
    pub batch_items: u64,
    /// HTTP 410 answers to delta requests.
    pub delta_resyncs: u64,
    /// Subscriptions created (validated).
    pub subscriptions_created: u64,
    /// Subscriptions renewed (PATCH).
    pub subscriptions_renewed: u64,
    /// Subscriptions deleted (DELETE).
    pub subscriptions_deleted: u64,
    /// Subscriptions that reached their expiry.
    pub subscriptions_expired: u64,
    /// Validation requests sent to webhooks.
    pub validations: u64,
    /// Validation requests that failed (wrong answer, error, too slow).
    pub validation_failures: u64,
    /// Change notifications delivered (answered 2xx; duplicates count twice).
    pub notifications_sent: u64,
    /// Change notifications dropped by [`NotificationFaults`](crate::NotificationFaults).
    pub notifications_dropped: u64,
    /// Change notifications sent twice by [`NotificationFaults`](crate::NotificationFaults).
    pub notifications_duplicated: u64,
    /// Notification POSTs (change or lifecycle) that failed.
    pub notification_posts_failed: u64,
    /// Lifecycle notifications sent.
    pub lifecycle_notifications_sent: u64,
}

impl Counters {
    /// Requests seen for one route template (0 if none).
    pub fn requests(&self, route: &str) -> u64 {
        self.requests_by_route.get(route).copied().unwrap_or(0)
    }

    /// Requests seen for one mailbox.
    pub fn mailbox_requests(&self, mailbox: &str) -> u64 {
        get(&self.requests_by_mailbox, mailbox)
    }

    /// Responses with this status.
    pub fn responses(&self, status: u16) -> u64 {
        self.responses_by_status.get(&status).copied().unwrap_or(0)
    }

    /// Device code grants of one account.
    pub fn device_code_grants(&self, account: &str) -> u64 {
        get(&self.device_code_grants, account)
    }

    /// Successful refreshes of one account.
    pub fn refreshes(&self, account: &str) -> u64 {
        get(&self.refreshes, account)
    }

    /// Access tokens of one account presented at least once.
    pub fn access_tokens_used(&self, account: &str) -> u64 {
        get(&self.access_tokens_used, account)
    }

    /// Retry-After violations of one mailbox.
    pub fn retry_after_violations(&self, mailbox: &str) -> u64 {
        get(&self.retry_after_violations, mailbox)
    }

    /// Peak concurrent requests of one mailbox.
    pub fn peak_concurrency(&self, mailbox: &str) -> u32 {
        self.peak_concurrency
            .get(&mailbox.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }
}

fn get(map: &BTreeMap<String, u64>, key: &str) -> u64 {
    map.get(&key.to_ascii_lowercase()).copied().unwrap_or(0)
}

/// The live counters behind a lock.
#[derive(Debug, Default)]
pub(crate) struct CounterCell(Mutex<Counters>);

impl CounterCell {
    pub(crate) fn update(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub(crate) fn snapshot(&self) -> Counters {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub(crate) fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    *map.entry(key.to_ascii_lowercase()).or_default() += 1;
}
