//! What the transport counts, through the [`metrics`] facade: nothing happens (and
//! nothing is allocated) unless the program installed a recorder, such as the
//! Prometheus one of `mailroom-server`.
//!
//! - `mailroom_graph_requests_total{endpoint, status}`: every HTTP try, by endpoint
//!   class (a fixed set, see [`endpoint_class`]) and HTTP status (`error` when no
//!   answer came: network error or timeout).
//! - `mailroom_graph_throttled_responses_total{status}`: 429/503/504 answers.
//! - `mailroom_graph_retry_after_seconds`: a histogram of every `Retry-After` Graph
//!   asked for; its `_sum` is the total wait asked for.

use std::time::Duration;

/// The endpoint class of a Graph path: one of a fixed set, so the label stays
/// bounded whatever ids the path holds.
pub(crate) fn endpoint_class(path: &str) -> &'static str {
    if path.ends_with("/$batch") {
        "batch"
    } else if path.ends_with("/delta") || path.ends_with(".delta()") {
        "delta"
    } else if path.contains("/attachments") {
        "attachments"
    } else if path.contains("/subscriptions") {
        "subscriptions"
    } else if path.ends_with("/move") {
        "move"
    } else if path.ends_with("/$value") {
        "mime"
    } else if path.contains("/messages") {
        "messages"
    } else if path.contains("/mailFolders") {
        "folders"
    } else {
        "other"
    }
}

/// One try ended with an HTTP answer (`Some(status)`) or none.
pub(crate) fn request(path: &str, status: Option<u16>) {
    let status = match status {
        Some(s) => status_label(s),
        None => "error",
    };
    metrics::counter!("mailroom_graph_requests_total", "endpoint" => endpoint_class(path), "status" => status)
        .increment(1);
}

/// A throttling answer, and the wait it asked for.
pub(crate) fn throttled(status: u16, retry_after: Option<Duration>) {
    metrics::counter!("mailroom_graph_throttled_responses_total", "status" => status_label(status))
        .increment(1);
    if let Some(wait) = retry_after {
        metrics::histogram!("mailroom_graph_retry_after_seconds").record(wait.as_secs_f64());
    }
}

/// The status as a static label (any status outside the known set is `other`).
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        409 => "409",
        410 => "410",
        412 => "412",
        413 => "413",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::endpoint_class;

    #[test]
    fn endpoint_classes() {
        let check = |path: &str, class: &str| assert_eq!(endpoint_class(path), class, "{path}");
        check("/v1.0/$batch", "batch");
        check("/v1.0/me/mailFolders/AAMk/messages/delta", "delta");
        check("/v1.0/me/mailFolders/delta", "delta");
        // Graph's own next links.
        check(
            "/v1.0/me/mailFolders('AAMk')/messages/microsoft.graph.delta()",
            "delta",
        );
        check("/v1.0/me/messages/AAMk/attachments", "attachments");
        check(
            "/v1.0/me/messages/AAMk/attachments/AQ/$value",
            "attachments",
        );
        check("/v1.0/subscriptions/123", "subscriptions");
        check("/v1.0/me/messages/AAMk/move", "move");
        check("/v1.0/me/messages/AAMk/$value", "mime");
        check("/v1.0/users/a%40b/messages/AAMk", "messages");
        check("/v1.0/me/mailFolders/inbox", "folders");
        check("/v1.0/me", "other");
    }
}
