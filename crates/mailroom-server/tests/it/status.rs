//! `/status` a page at a time: by address, filtered by status, with the next page's
//! link, and plain refusals of what it cannot serve.

use mailroom_core::{AccountStatus, OAuthCredentials};
use mailroom_server::ops::Ops;
use mailroom_sync::store::AccountUpdate;
use mailroom_sync::{Credentials, Store};
use serde_json::Value;

use crate::support::{add_account, get, serve, syncer};

fn emails(page: &Value) -> Vec<&str> {
    page["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_pages_by_address_and_filters_by_status() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let syncer = syncer(&store, None);
    let creds = Credentials::OAuth(OAuthCredentials::new("c"));
    for email in ["d@x.test", "a@x.test", "e@x.test", "c@x.test", "b@x.test"] {
        let a = add_account(&syncer, email, &creds).await;
        if email == "b@x.test" || email == "e@x.test" {
            let update = AccountUpdate {
                status: Some(AccountStatus::NeedsReauth),
                ..Default::default()
            };
            store.update_account(a.id, update).await.unwrap();
        }
    }
    let (addr, _s) = serve(&syncer, Ops::new()).await;
    let json = |path: String| async move {
        let (code, body) = get(addr, &path).await;
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };

    // Every account by following `next`, two at a time.
    let mut seen = Vec::new();
    let mut path = "/status?format=json&limit=2".to_owned();
    loop {
        let page = json(path.clone()).await;
        assert!(emails(&page).len() <= 2, "{page}");
        seen.extend(emails(&page).into_iter().map(str::to_owned));
        match page["next"].as_str() {
            Some(next) => path = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["a@x.test", "b@x.test", "c@x.test", "d@x.test", "e@x.test"]
    );
    let first = json("/status?format=json&limit=2".into()).await;
    assert_eq!(
        first["next"], "/status?format=json&after=b%40x.test&limit=2",
        "{first}"
    );
    // Without a limit, one page holds them all.
    let all = json("/status?format=json".into()).await;
    assert_eq!(emails(&all).len(), 5);
    assert!(all["next"].is_null(), "{all}");

    let reauth = json("/status?format=json&status=needs_reauth&limit=1".into()).await;
    assert_eq!(emails(&reauth), ["b@x.test"]);
    let next = reauth["next"].as_str().unwrap().to_owned();
    assert!(next.contains("status=needs_reauth"), "{next}");
    let rest = json(next).await;
    assert_eq!(emails(&rest), ["e@x.test"]);
    assert!(rest["next"].is_null(), "{rest}");

    // The HTML page links to the next one.
    let (code, page) = get(addr, "/status?format=html&limit=3").await;
    assert_eq!(code, 200);
    assert_eq!(page.matches("<tr class=").count(), 3, "{page}");
    assert!(
        page.contains(
            "<a rel=\"next\" href=\"/status?format=html&amp;after=c%40x.test&amp;limit=3\">"
        ),
        "{page}"
    );

    for (path, said) in [
        ("/status?limit=0", "limit=0: give 1 to 5000 rows per page"),
        (
            "/status?limit=5001",
            "limit=5001: give 1 to 5000 rows per page",
        ),
        (
            "/status?status=broken",
            "status=\"broken\": give active, needs_reauth or disabled",
        ),
    ] {
        let (code, body) = get(addr, path).await;
        assert_eq!((code, body.trim()), (400, said), "{path}");
    }
}
