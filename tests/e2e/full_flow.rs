//! The operator's path through the binary on the embedded SQLite database.

use std::collections::BTreeMap;
use std::time::Duration;

use mailroom_core::WellKnownFolder;
use mailroom_sim::{Faults, MailboxSpec, SimConfig};
use serde_json::Value;

use crate::support::truth::{self, assert_account_matches, assert_same};
use crate::support::{Db, Env};

const DEMO: &str = "demo@mailroom.test";

/// `messages list --json` as a snapshot (server id → subject, read state).
fn listed(env: &Env, folder: &str) -> (Vec<Value>, truth::Snapshot) {
    let list = env.json(&["messages", "list", "--folder", folder, "--limit", "0"]);
    let rows = list.as_array().expect("a JSON list").clone();
    let snap = rows
        .iter()
        .map(|m| {
            (
                m["remote_id"].as_str().expect("remote_id").to_owned(),
                (
                    m["subject"].as_str().unwrap_or_default().to_owned(),
                    m["is_read"].as_bool().expect("is_read"),
                ),
            )
        })
        .collect();
    (rows, snap)
}

/// Graph requests per route made between two counter snapshots.
fn route_diff(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(route, n)| {
            let d = n - before.get(route).copied().unwrap_or(0);
            (d > 0).then(|| (route.clone(), d))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn add_sync_move_delete_sync_equals_the_simulator_and_an_idle_sync_costs_one_request_per_folder()
 {
    let env = Env::start(
        SimConfig {
            mailboxes: vec![MailboxSpec::new(DEMO, 240)],
            device_code_interval: Duration::ZERO,
            faults: Faults::none(),
            ..SimConfig::default()
        },
        Db::Sqlite,
    )
    .await;
    let mailbox = env.sim.mailbox(DEMO).unwrap();
    let synced = [
        ("inbox", WellKnownFolder::Inbox),
        ("archive", WellKnownFolder::Archive),
        ("deleteditems", WellKnownFolder::Deleted),
    ];

    // Add through the device code flow, first sync of three folders.
    env.add_outlook(DEMO, &["INBOX", "ARCHIVE", "DELETED"]);
    let report = env.json(&["-vv", "sync"]);
    assert_eq!(report[0]["outcome"], "synced", "{report}");
    assert_eq!(
        report[0]["folders"].as_array().unwrap().len(),
        3,
        "{report}"
    );

    // The listing is the server's inbox: ids, subjects, read states.
    let inbox_truth = truth::truth(&mailbox, "inbox");
    assert!(
        inbox_truth.len() > 100
            && inbox_truth.values().any(|(_, r)| *r)
            && inbox_truth.values().any(|(_, r)| !*r),
        "a mixed inbox makes the comparison meaningful"
    );
    let (rows, snap) = listed(&env, "INBOX");
    assert_same(
        &snap,
        &inbox_truth,
        "messages list INBOX after the first sync",
    );
    assert!(rows.iter().all(|m| m["folder"] == "Inbox"), "{rows:?}");

    // Move one to the archive, soft-delete one, delete one for good — by local ID.
    let (first, second, third) = (&rows[0], &rows[1], &rows[2]);
    let moved = env.json(&["move", &first["id"].to_string(), "ARCHIVE"]);
    let moved_id = moved["new_remote_id"]
        .as_str()
        .expect("a new id")
        .to_owned();
    assert!(
        mailbox
            .folder_message_ids("archive")
            .unwrap()
            .contains(&moved_id)
    );
    let deleted = env.json(&["delete", &second["id"].to_string()]);
    assert_eq!(deleted["permanent"], false);
    let purged = env.json(&["-vv", "delete", &third["id"].to_string(), "--permanent"]);
    assert_eq!(purged["permanent"], true);
    let by_header = |folder: &str, header: &Value| {
        mailbox
            .folder_messages(folder)
            .unwrap()
            .iter()
            .filter(|m| Some(m.internet_message_id.as_str()) == header.as_str())
            .count()
    };
    assert_eq!(
        by_header("deleteditems", &second["message_id"]),
        1,
        "soft delete: in Deleted Items"
    );
    for folder in ["inbox", "archive", "deleteditems"] {
        assert_eq!(
            by_header(folder, &third["message_id"]),
            0,
            "hard delete: gone from {folder}"
        );
    }
    assert!(
        mailbox
            .message(third["remote_id"].as_str().unwrap())
            .is_err()
    );

    // Behind the binary's back (another client): new mail, a read-state change, a
    // move and a deletion — the sync must apply them, not the commands above.
    mailbox.add_messages("inbox", 7).unwrap();
    let inbox_now = mailbox.folder_messages("inbox").unwrap();
    let flip = &inbox_now[20];
    mailbox.set_read(&flip.id, !flip.is_read).unwrap();
    let moved_away = mailbox.move_message(&inbox_now[30].id, "archive").unwrap();
    mailbox.delete_message(&inbox_now[40].id).unwrap();

    // Sync again: every synced folder equals the server, nothing duplicated or stale.
    let report = env.json(&["sync", "-vv"]);
    assert_eq!(report[0]["outcome"], "synced", "{report}");
    let store = env.store().await;
    assert_account_matches(store, DEMO, &mailbox, &synced).await;
    let (_, snap) = listed(&env, "INBOX");
    assert_same(
        &snap,
        &truth::truth(&mailbox, "inbox"),
        "messages list INBOX after the second sync",
    );
    let (_, snap) = listed(&env, "ARCHIVE");
    assert!(
        snap.contains_key(&moved_id) && snap.contains_key(&moved_away),
        "the moved messages are listed in the archive"
    );
    let (_, snap) = listed(&env, "INBOX");
    assert!(
        !snap.contains_key(&inbox_now[30].id) && !snap.contains_key(&inbox_now[40].id),
        "what another client moved or deleted is gone from the inbox"
    );
    let accounts = env.json(&["account", "list"]);
    let expected: usize = synced
        .iter()
        .map(|(f, _)| mailbox.folder_message_ids(f).unwrap().len())
        .sum();
    assert_eq!(accounts[0]["messages"], expected as u64, "{accounts}");

    // Nothing changed: one Graph request per synced folder (the delta link), no sign-in
    // check, no folder lookup, no token request.
    let before = env.sim.counters();
    let report = env.json(&["sync", "-vv"]);
    assert_eq!(report[0]["upserted"], 0, "{report}");
    assert_eq!(report[0]["removed"], 0, "{report}");
    let after = env.sim.counters();
    let diff = route_diff(&before.requests_by_route, &after.requests_by_route);
    assert_eq!(
        diff,
        BTreeMap::from([(
            "GET /v1.0/me/mailFolders/{id}/messages/delta".to_owned(),
            synced.len() as u64
        )]),
        "requests of a sync with no changes"
    );
    assert_account_matches(store, DEMO, &mailbox, &synced).await;
}
