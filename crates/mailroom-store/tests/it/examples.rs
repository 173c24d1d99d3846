//! The crate's examples, run as a user would run them: on an embedded SQLite file and on
//! PostgreSQL.

use mailroom_store::{PageStats, Store};

use crate::example_embedded_sqlite;

fn check(summary: &example_embedded_sqlite::Summary) {
    assert_eq!(
        summary.first_page,
        PageStats {
            upserted: 3,
            ..PageStats::default()
        },
        "{summary:?}"
    );
    assert_eq!(
        summary.second_page,
        PageStats {
            upserted: 1,
            removed: 1,
            read_state: 1,
            reconciled: 0,
        },
        "{summary:?}"
    );
    assert_eq!(summary.stored_cursor.as_deref(), Some("example-cursor-2"));
    let inbox: Vec<(&str, bool)> = summary
        .inbox
        .iter()
        .map(|(s, read)| (s.as_str(), *read))
        .collect();
    assert_eq!(
        inbox,
        [
            ("Invoice 1043", false),
            ("Invoice 1042", false),
            ("Welcome", true)
        ]
    );
    assert_eq!(summary.unread, 2);
    assert_eq!(summary.search, ["Invoice 1043", "Invoice 1042"]);
}

#[tokio::test]
async fn embedded_sqlite_writes_pages_and_reads_them_back_and_a_rerun_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("example.sqlite");
    let url = format!("sqlite://{}?mode=rwc", path.display());

    let first = example_embedded_sqlite::run(&url).await.unwrap();
    check(&first);
    assert!(path.exists(), "the database is a file");
    // The same pages again (as after a crash before the next cursor was used).
    let again = example_embedded_sqlite::run(&url).await.unwrap();
    check(&again);

    let store = Store::connect(&url).await.unwrap();
    let accounts = store.list_accounts().await.unwrap();
    assert_eq!(accounts.len(), 1, "one account, not one per run");
    let all = store
        .count_messages(&mailroom_store::MessageQuery::default())
        .await
        .unwrap();
    assert_eq!(all, 3, "no duplicates");
}

#[tokio::test]
async fn embedded_sqlite_example_runs_unchanged_on_postgres() {
    let url = mailroom_store::testing::fresh_postgres_url().await;
    check(&example_embedded_sqlite::run(&url).await.unwrap());
}
