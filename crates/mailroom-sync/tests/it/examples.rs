//! The crate's examples, run against `mailroom-sim` as a user would run them.

use mailroom_core::Credentials;
use mailroom_sim::{MailboxSpec, SimConfig, Simulator};
use mailroom_sync::{FernetKey, Outcome, Vault};

use crate::example_custom_factory;

const USER: &str = "alice@contoso.test";
const CLIENT_ID: &str = "example-app";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_factory_syncs_an_account_through_its_own_graph_settings() {
    let sim = Simulator::start(SimConfig::default().mailboxes(vec![MailboxSpec::new(USER, 150)]))
        .await
        .unwrap();
    let inbox = sim
        .mailbox(USER)
        .unwrap()
        .folder_message_ids("inbox")
        .unwrap()
        .len();
    assert!(inbox > 50, "enough mail for several delta pages: {inbox}");
    // Credentials as a sign-in would have produced them, issued by the simulator.
    let credentials = Credentials::OAuth(crate::sim_credentials(&sim, USER, CLIENT_ID));

    let dir = tempfile::tempdir().unwrap();
    let database = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("sync.sqlite").display()
    );
    let key = FernetKey::generate();
    let vault = || Vault::new(vec![key.clone()]).unwrap();

    let first = example_custom_factory::run(
        &sim.base_url(),
        &sim.graph_url(),
        &database,
        vault(),
        USER,
        &credentials,
    )
    .await
    .unwrap();
    assert_eq!(first.report.outcome, Outcome::Synced, "{first:?}");
    assert_eq!(
        first.built,
        (1, 0),
        "the custom graph branch built the connector"
    );
    assert_eq!(first.report.totals().upserted as usize, inbox, "{first:?}");
    assert_eq!(first.stored as usize, inbox);
    let pages = first.report.folders[0].pages as usize;
    assert!(
        pages >= inbox.div_ceil(25),
        "delta pages of at most 25 messages: {pages} pages for {inbox}"
    );

    // A second run finds the account and resumes from the stored cursor.
    let second = example_custom_factory::run(
        &sim.base_url(),
        &sim.graph_url(),
        &database,
        vault(),
        USER,
        &credentials,
    )
    .await
    .unwrap();
    assert_eq!(second.report.outcome, Outcome::Synced, "{second:?}");
    assert_eq!(second.report.account_id, first.report.account_id);
    assert_eq!(second.report.totals().upserted, 0, "{second:?}");
    assert_eq!(second.stored as usize, inbox);
    sim.shutdown().await;
}
