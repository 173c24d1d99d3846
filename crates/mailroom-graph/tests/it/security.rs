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

#[tokio::test]
async fn an_id_never_changes_the_path() {
    let h = Harness::start(config(6)).await;
    let graph = h.connector();
    let folders = ["inbox", "deleteditems"].map(|f| h.truth(f).len());
    // Dot-segments would be resolved by the URL library (`/me/messages/../move` is
    // `/me/move`): they name nothing, and nothing is sent.
    let before = h.sim.counters().mailbox_requests(ALICE);
    for id in ["..", ".", ""] {
        let errors = vec![
            graph
                .delete_message(id, DeleteMode::Soft)
                .await
                .unwrap_err(),
            graph
                .delete_message(id, DeleteMode::Hard)
                .await
                .unwrap_err(),
            graph.get_message(id).await.unwrap_err(),
            graph.move_message(id, &FolderRef::INBOX).await.unwrap_err(),
            graph.attachments(id).await.unwrap_err(),
            graph.raw_mime(id).await.unwrap_err(),
            graph
                .resolve_folder(&FolderRef::Id(id.into()))
                .await
                .unwrap_err(),
            graph
                .sync_folder(&FolderRef::Id(id.into()), None)
                .await
                .unwrap_err(),
        ];
        for e in errors {
            assert_eq!(e.kind(), ErrorKind::NotFound, "{id:?}: {e}");
            assert!(e.to_string().contains("is not a graph id"), "{e}");
        }
        let bulk = graph
            .delete_many(&[id.to_owned()], DeleteMode::Hard)
            .await
            .unwrap();
        let e = bulk[0].outcome.as_ref().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{id:?}: {e}");
        assert!(e.to_string().contains("is not a graph id"), "{e}");
    }
    assert_eq!(h.sim.counters().mailbox_requests(ALICE), before);
    // Everything else is one encoded segment: the server refuses the id.
    for id in [
        "../move",
        "a/../../me",
        "?x=1",
        "#frag",
        "%2E%2E",
        "%2F",
        "...",
        "a b",
    ] {
        let e = graph
            .delete_message(id, DeleteMode::Soft)
            .await
            .unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidInput),
            "{id:?}: {e}"
        );
        assert!(!e.to_string().contains("is not a graph id"), "{e}");
    }
    assert!(h.sim.counters().mailbox_requests(ALICE) >= before + 8);
    assert_eq!(folders, ["inbox", "deleteditems"].map(|f| h.truth(f).len()));
}
