//! https only (http on loopback), links never followed elsewhere, no token anywhere.

use mailroom_core::{Connector, DeleteMode, ErrorKind, FetchQuery, FolderRef, PageToken};
use mailroom_graph::{GraphConfig, GraphConnector};
use mailroom_oauth::{ClientApplication, Resource, TokenSession};
use mailroom_sim::{ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX, RefreshFailure};

use crate::support::{ALICE, Harness, config, issued_tokens, logs, remember};

#[tokio::test]
async fn plain_http_only_on_loopback() {
    let h = Harness::start(config(5)).await;
    for url in [
        "http://graph.microsoft.com/v1.0",
        "http://192.168.1.10/v1.0",
    ] {
        let err = GraphConnector::from_credentials(
            ALICE,
            h.credentials(),
            &h.sim.base_url(),
            GraphConfig::default().graph_url(url),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{url}");
        assert!(
            err.to_string()
                .contains("http is only accepted for loopback hosts"),
            "{err}"
        );
        let app = ClientApplication::from_credentials(&h.credentials(), &h.sim.base_url()).unwrap();
        let session = TokenSession::new(app, h.credentials(), Resource::Graph);
        let err = GraphConnector::new(GraphConfig::default().graph_url(url), session).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    }
    // Loopback http works (the simulator).
    h.connector().connect().await.unwrap();

    // A next link to another host is refused before anything is sent.
    let graph = h.connector();
    let before = h.sim.counters().mailbox_requests(ALICE);
    let err = graph
        .fetch_page(
            &FolderRef::INBOX,
            &FetchQuery::default(),
            Some(PageToken("https://evil.example/v1.0/me/messages".into())),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("refusing to follow a link"),
        "{err}"
    );
    assert_eq!(h.sim.counters().mailbox_requests(ALICE), before);
}

#[tokio::test]
async fn no_token_in_errors_debug_or_logs() {
    let h = Harness::start(config(40)).await;
    let graph = h.connector();
    let mut out = vec![format!("{graph:?}"), format!("{:?}", graph.session())];
    graph.connect().await.unwrap();
    // A refresh (401 → refresh → retry), its credentials, and errors of every sort.
    h.sim.expire_access_tokens(ALICE).unwrap();
    let page = graph.sync_folder(&FolderRef::INBOX, None).await.unwrap();
    out.push(format!("{page:?}"));
    if let Some(c) = graph.take_refreshed_credentials() {
        remember(c.oauth().unwrap());
        out.push(format!("{c:?}"));
    }
    let errors = vec![
        graph.get_message("AAMkNotAnId").await.unwrap_err(),
        graph
            .delete_message("AAMkNotAnId", DeleteMode::Hard)
            .await
            .unwrap_err(),
        graph
            .resolve_folder(&FolderRef::parse("No/Such").unwrap())
            .await
            .unwrap_err(),
        {
            h.sim
                .script_refresh_failure(ALICE, RefreshFailure::Revoked)
                .unwrap();
            h.sim.expire_access_tokens(ALICE).unwrap();
            graph.connect().await.unwrap_err()
        },
    ];
    for e in &errors {
        out.push(format!("{e} {e:?} {:?}", std::error::Error::source(e)));
    }
    let logs = logs().text();
    assert!(
        logs.contains("graph answered"),
        "our debug logs are captured"
    );
    assert!(logs.contains("refreshing it once"));
    out.push(logs);
    let all = out.join("\n");
    let mut needles: Vec<String> = vec![ACCESS_TOKEN_PREFIX.into(), REFRESH_TOKEN_PREFIX.into()];
    needles.extend(issued_tokens().lock().unwrap().iter().cloned());
    assert!(needles.len() > 4);
    for needle in needles {
        assert!(!all.contains(&needle), "{needle:.12}… leaked");
    }
}
