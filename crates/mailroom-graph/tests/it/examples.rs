//! The crate's examples, run against the simulator as a user would run them.

use std::time::Duration;

use mailroom_sim::{MailboxSpec, SimConfig, Simulator};

use crate::example_sign_in_and_read;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_read_walks_from_device_code_to_a_moved_message() {
    let sim = Simulator::start(SimConfig {
        device_code_interval: Duration::ZERO,
        ..SimConfig::default().mailboxes(vec![MailboxSpec::new("ada@contoso.test", 40)])
    })
    .await
    .unwrap();
    let mailbox = sim.mailbox("ada@contoso.test").unwrap();
    let inbox_before = mailbox.folder_message_ids("inbox").unwrap().len();
    let archive_before = mailbox.folder_message_ids("archive").unwrap().len();

    let summary = example_sign_in_and_read::run(&sim.base_url(), &sim.graph_url(), "example-app")
        .await
        .unwrap();

    assert!(summary.folders >= 6, "{summary:?}");
    assert_eq!(summary.inbox_page, inbox_before.min(10), "{summary:?}");
    assert_eq!(summary.first_delta, inbox_before, "{summary:?}");
    let (old_id, new_id) = summary.moved.clone().expect("the inbox was not empty");
    assert_eq!(summary.second_delta_removals, 1, "{summary:?}");
    let inbox = mailbox.folder_message_ids("inbox").unwrap();
    let archive = mailbox.folder_message_ids("archive").unwrap();
    assert!(!inbox.contains(&old_id));
    assert!(archive.contains(&new_id));
    assert_eq!(
        (inbox.len(), archive.len()),
        (inbox_before - 1, archive_before + 1)
    );
    sim.shutdown().await;
}
