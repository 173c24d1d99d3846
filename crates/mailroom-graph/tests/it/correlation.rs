//! Request correlation: a fresh `client-request-id` on every request, and the
//! `request-id` and `client-request-id` of a failed request in its error and logs —
//! what Microsoft support asks for.

use mailroom_core::Connector;
use mailroom_graph::GraphError;

use crate::support::{Harness, config, logs};

/// The `(request-id R, client-request-id C)` of an error message.
fn ids(message: &str) -> (String, String) {
    let start = message.find("(request-id ").expect(message) + "(request-id ".len();
    let rest = &message[start..];
    let (request, rest) = rest.split_once(", client-request-id ").expect(message);
    let client = rest.split_once(')').expect(message).0;
    (request.to_owned(), client.to_owned())
}

#[tokio::test]
async fn failed_requests_quote_both_ids_and_each_request_has_its_own() {
    let h = Harness::start(config(5)).await;
    let graph = h.connector();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let err = graph.get_message("AAMkNoSuchMessage").await.unwrap_err();
        let (request, client) = ids(&err.to_string());
        // Ours: a version 4 UUID (the simulator, like Graph, echoes it).
        let uuid: Vec<&str> = client.split('-').collect();
        assert_eq!(
            uuid.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12],
            "{client}"
        );
        assert!(uuid[2].starts_with('4'), "version 4: {client}");
        assert_ne!(request, client, "the server's id and ours differ");
        let graph_error = GraphError::of(&err).expect("the Graph error is the source");
        assert_eq!(
            graph_error.client_request_id.as_deref(),
            Some(client.as_str())
        );
        assert_eq!(graph_error.request_id.as_deref(), Some(request.as_str()));
        // The log line of the failure carries both.
        let logs = logs().text();
        assert!(
            logs.lines()
                .any(|l| l.contains("graph answered with an error")
                    && l.contains(&request)
                    && l.contains(&client)),
            "no log line with {request} and {client}"
        );
        seen.push(client);
    }
    assert_ne!(seen[0], seen[1], "a fresh client-request-id per request");
}
