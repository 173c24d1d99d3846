//! 401 → one refresh → one retry; refreshed credentials handed back; revoked grants.

use std::sync::Arc;

use mailroom_core::{Connector, Credentials, ErrorKind, FetchQuery, FolderRef};
use mailroom_sim::RefreshFailure;

use crate::support::{ALICE, Harness, config, remember};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_access_token_is_refreshed_once() {
    let h = Harness::start(config(50)).await;
    let graph = Arc::new(h.connector());
    let before = graph.session().credentials();
    assert_eq!(
        graph.connect().await.unwrap().address.as_deref(),
        Some(ALICE)
    );
    assert!(graph.take_refreshed_credentials().is_none());

    assert!(h.sim.expire_access_tokens(ALICE).unwrap() >= 1);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let graph = graph.clone();
            tokio::spawn(async move {
                let q = FetchQuery {
                    limit: Some(5),
                    ..FetchQuery::default()
                };
                graph.fetch_page(&FolderRef::INBOX, &q, None).await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().messages.len(), 5);
    }
    let c = h.sim.counters();
    assert_eq!(c.refreshes(ALICE), 1, "16 requests refused, one refresh");
    assert!(c.responses(401) >= 1);

    let Some(Credentials::OAuth(rotated)) = graph.take_refreshed_credentials() else {
        panic!("the refreshed credentials are handed back");
    };
    remember(&rotated);
    assert_ne!(
        rotated.refresh_token.as_ref().unwrap().secret(),
        before.refresh_token.as_ref().unwrap().secret(),
        "the rotated refresh token, to persist"
    );
    assert!(
        graph.take_refreshed_credentials().is_none(),
        "handed out once"
    );
    graph.connect().await.unwrap();
    assert_eq!(h.sim.counters().refreshes(ALICE), 1);
}

#[tokio::test]
async fn a_revoked_refresh_token_means_reauth_with_the_aadsts_code() {
    let h = Harness::start(config(10)).await;
    let graph = h.connector();
    h.sim
        .script_refresh_failure(ALICE, RefreshFailure::Revoked)
        .unwrap();
    h.sim.expire_access_tokens(ALICE).unwrap();
    let err = graph.connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReauthRequired, "{err}");
    assert_eq!(err.code(), Some("AADSTS50173"));
    assert!(
        err.to_string()
            .starts_with("cannot connect to graph as alice@contoso.test: "),
        "{err}"
    );
    // Remembered: no retry loop against the token endpoint.
    let err = graph
        .sync_folder(&FolderRef::INBOX, None)
        .await
        .unwrap_err();
    assert!(err.is_reauth_required());
    assert_eq!(
        h.sim.counters().refresh_failures.get(ALICE).copied(),
        Some(1)
    );
    assert!(graph.take_refreshed_credentials().is_none());
}
