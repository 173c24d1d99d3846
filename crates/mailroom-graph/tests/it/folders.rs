//! Folder hierarchy, well-known names, `Parent/Child` paths with awkward names.

use mailroom_core::{Connector, ErrorKind, FolderRef, WellKnownFolder};

use crate::support::{Harness, config};

#[tokio::test]
async fn whole_hierarchy_with_child_folders_paging_and_roles() {
    let h = Harness::start(config(120)).await;
    // Two folders per page: the listing must follow @odata.nextLink.
    let graph = h.connector_with(h.graph_config().page_size(2));
    let folders = graph.list_folders().await.unwrap();
    let truth = h.mailbox().folders();
    let mut got: Vec<(String, String)> = folders
        .iter()
        .map(|f| (f.remote_id.clone(), f.path.clone()))
        .collect();
    let mut want: Vec<(String, String)> = truth
        .iter()
        .map(|f| (f.id.clone(), f.path.clone()))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(
        got, want,
        "every folder, nested ones included, with its path"
    );
    let by_path = |p: &str| folders.iter().find(|f| f.path == p).unwrap();
    assert_eq!(by_path("Inbox").role, Some(WellKnownFolder::Inbox));
    assert_eq!(
        by_path("Deleted Items").role,
        Some(WellKnownFolder::Deleted)
    );
    assert_eq!(by_path("Sent Items").role, Some(WellKnownFolder::Sent));
    assert_eq!(by_path("Projects/Alpha").role, None);
    let inbox_truth = truth.iter().find(|f| f.path == "Inbox").unwrap();
    assert_eq!(by_path("Inbox").total_count, Some(inbox_truth.total as u64));
    assert_eq!(
        by_path("Inbox/Newsletters").parent_id.as_deref(),
        Some(inbox_truth.id.as_str())
    );
    let c = h.sim.counters();
    assert!(
        c.requests("GET /v1.0/me/mailFolders") >= 4,
        "top level paged by 2: {:?}",
        c.requests_by_route
    );
    assert!(c.requests("GET /v1.0/me/mailFolders/{id}/childFolders") >= 3);
    assert_eq!(c.requests("POST /v1.0/$batch"), 1, "roles in one batch");
}

#[tokio::test]
async fn paths_with_quotes_ampersands_and_unicode_resolve() {
    let h = Harness::start(config(60)).await;
    let graph = h.connector();
    let truth = h.mailbox().folders();
    let id_of = |p: &str| truth.iter().find(|f| f.path == p).unwrap().id.clone();
    for path in [
        "Bob's \"mail\" & more/2025",
        "Bob's \"mail\" & more",
        "Projects/Alpha",
        "Inbox/Newsletters",
        "日本語",
        "Entwürfe",
    ] {
        let f = graph
            .resolve_folder(&FolderRef::parse(path).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(f.remote_id, id_of(path), "{path}");
        assert_eq!(f.path, path);
    }
    // Any case, like Graph's filter.
    let f = graph
        .resolve_folder(&FolderRef::parse("projects/ALPHA").unwrap())
        .await
        .unwrap();
    assert_eq!(f.remote_id, id_of("Projects/Alpha"));

    // Well-known names go straight in as ids; ids resolve with their path.
    let inbox = graph.resolve_folder(&FolderRef::INBOX).await.unwrap();
    assert_eq!(
        (inbox.remote_id.as_str(), inbox.path.as_str()),
        (id_of("Inbox").as_str(), "Inbox")
    );
    assert_eq!(inbox.role, Some(WellKnownFolder::Inbox));
    let nested = graph
        .resolve_folder(&FolderRef::id(id_of("Bob's \"mail\" & more/2025")))
        .await
        .unwrap();
    assert_eq!(nested.path, "Bob's \"mail\" & more/2025");

    let err = graph
        .resolve_folder(&FolderRef::parse("Projects/Gamma").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        "cannot find folder Projects/Gamma: no folder named \"Gamma\" under Projects"
    );
    let err = graph
        .resolve_folder(&FolderRef::id("AAMkNotAnId"))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput | ErrorKind::NotFound),
        "{err}"
    );

    // The filter went out escaped and percent-encoded, and Graph parsed it.
    assert_eq!(
        h.sim.counters().responses(400),
        1,
        "only the bad id was refused"
    );
}
