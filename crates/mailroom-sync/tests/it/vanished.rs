//! Folders named by path in errors, and configured folders that vanish on the server:
//! Graph against mailroom-sim, IMAP against a real Dovecot.

use std::sync::Arc;
use std::time::Duration;

use mailroom_core::{Credentials, ErrorKind};
use mailroom_graph::GraphConfig;
use mailroom_imap::ImapOptions;
use mailroom_sim::{MailboxSpec, SimConfig, Simulator};
use mailroom_store::{AccountUpdate, MessageQuery, NewAccount, SealedCredentials, Store};
use mailroom_sync::{DefaultFactory, Outcome, SyncRequest, Syncer};
use mailroom_vault::{FernetKey, Vault};

use crate::engine::{setup, stores, syncer};
use crate::fake::{FakeConnector, Script};

const LONG_ID: &str = "AQMkADAwATM0MDAAMS1iNTcwLWI2NTEtMDACLTAwCgAuAAADiVUHQXkZ3UKaBoD_long_id";

#[tokio::test]
async fn folder_errors_name_the_folder_by_its_path_not_its_server_id() {
    for store in stores().await {
        let (vault, accounts) = setup(&store, &["a@x"]).await;
        let failing = syncer(&store, vault.clone(), |c| {
            FakeConnector::new(
                5,
                10,
                c,
                Script {
                    folder_id: Some(LONG_ID),
                    fail_sync_call: Some((0, ErrorKind::Transient, None)),
                    ..Script::default()
                },
            )
        });
        let report = failing
            .sync_account(accounts[0].id, &SyncRequest::default())
            .await
            .unwrap();
        let expected = "cannot sync folder Inbox: scripted transient failure";
        assert!(
            matches!(&report.outcome, Outcome::Failed { message, .. } if message == expected),
            "{report:?}"
        );
        assert_eq!(report.folders[0].error.as_deref(), Some(expected));
        let account = store.get_account(accounts[0].id).await.unwrap();
        assert_eq!(account.last_error.as_deref(), Some(expected));
        let folder = &store.list_folders(account.id).await.unwrap()[0];
        assert_eq!(folder.last_error.as_deref(), Some(expected));

        // The next good sync clears the folder's error.
        let syncer = syncer(&store, vault, |c| {
            FakeConnector::new(
                5,
                10,
                c,
                Script {
                    folder_id: Some(LONG_ID),
                    ..Script::default()
                },
            )
        });
        let report = syncer
            .sync_account(accounts[0].id, &SyncRequest::default())
            .await
            .unwrap();
        assert_eq!(report.outcome, Outcome::Synced);
        let folder = &store.list_folders(account.id).await.unwrap()[0];
        assert_eq!(folder.last_error, None);
    }
}

const CLIENT_ID: &str = "00000000-0000-0000-0000-00000000c11e";
const ADDRESS: &str = "gone@contoso.test";

/// A simulator with one mailbox, and a syncer with one Graph account syncing `folders`.
async fn graph_setup(store: &Store, folders: &[&str]) -> (Simulator, Syncer, i64) {
    let sim = Simulator::start(
        SimConfig::default()
            .port(0)
            .mailbox(MailboxSpec::new(ADDRESS, 600)),
    )
    .await
    .unwrap();
    let oauth = crate::sim_credentials(&sim, ADDRESS, CLIENT_ID);
    let vault = Arc::new(Vault::new(vec![FernetKey::generate()]).unwrap());
    let sealed =
        SealedCredentials::new(vault.encrypt(Credentials::OAuth(oauth).to_json().as_bytes()))
            .unwrap();
    let account = store
        .create_account(NewAccount {
            email: ADDRESS.into(),
            kind: mailroom_core::AccountKind::Outlook,
            credentials: sealed,
            sync_folders: folders.iter().map(|f| (*f).to_owned()).collect(),
        })
        .await
        .unwrap();
    let factory = DefaultFactory::new(
        sim.base_url(),
        GraphConfig::default().graph_url(sim.graph_url()),
        ImapOptions::default(),
    );
    let syncer = Syncer::new(store.clone(), vault, Arc::new(factory));
    (sim, syncer, account.id)
}

async fn in_folder(store: &Store, folder_id: i64) -> u64 {
    store
        .count_messages(&MessageQuery {
            folder_id: Some(folder_id),
            ..Default::default()
        })
        .await
        .unwrap()
}

fn graph_requests(sim: &Simulator) -> u64 {
    sim.counters().requests_by_mailbox.values().sum()
}

#[tokio::test]
async fn a_graph_folder_deleted_on_the_server_is_marked_gone_purged_on_the_second_miss_and_picked_up_when_recreated()
 {
    for store in stores().await {
        let b = store.backend();
        let (sim, syncer, account) = graph_setup(&store, &["INBOX", "Projects/Alpha"]).await;
        let mailbox = sim.mailbox(ADDRESS).unwrap();
        let request = SyncRequest::default();

        let report = syncer.sync_account(account, &request).await.unwrap();
        assert_eq!(report.outcome, Outcome::Synced, "{b:?}");
        let alpha = report.folders[1].folder.clone();
        assert_eq!(alpha.folder.path, "Projects/Alpha");
        let had = in_folder(&store, alpha.id).await;
        assert!(had > 0, "{b:?}");

        mailbox.delete_folder("Projects/Alpha").unwrap();

        // First miss: 404 on its id, not found by path. Marked, not an account error,
        // messages kept.
        let report = syncer.sync_account(account, &request).await.unwrap();
        assert_eq!(report.outcome, Outcome::Synced, "{b:?}: {report:?}");
        let gone = &report.folders[1];
        assert!(
            gone.gone_since.is_some() && gone.error.is_none(),
            "{gone:?}"
        );
        assert_eq!(gone.purged, 0);
        assert_eq!(in_folder(&store, alpha.id).await, had, "{b:?}");
        let a = store.get_account(account).await.unwrap();
        assert_eq!(a.last_error, None, "{b:?}");
        let row = store.get_folder(alpha.id).await.unwrap();
        assert_eq!(row.missed_syncs, 1);
        let first_missed = row.gone_since.unwrap();

        // Second miss in a row: confirmed, local copies deleted (mirror).
        let report = syncer.sync_account(account, &request).await.unwrap();
        assert_eq!(report.outcome, Outcome::Synced, "{b:?}");
        assert_eq!(report.folders[1].purged, had, "{b:?}");
        assert_eq!(in_folder(&store, alpha.id).await, 0, "{b:?}");
        let row = store.get_folder(alpha.id).await.unwrap();
        assert_eq!((row.missed_syncs, row.gone_since), (2, Some(first_missed)));

        // Confirmed gone: not looked up again within the hour. Only the inbox's delta.
        sim.reset_counters();
        let report = syncer.sync_account(account, &request).await.unwrap();
        assert_eq!(report.outcome, Outcome::Synced, "{b:?}");
        assert_eq!(report.folders[1].gone_since, Some(first_missed));
        assert_eq!(graph_requests(&sim), 1, "{b:?}: {:?}", sim.counters());

        // Recreated under the same name: once a look-up is due, it is picked up with
        // its new id and synced from scratch; the gone row is replaced.
        let new_id = mailbox.create_folder("Projects/Alpha").unwrap();
        mailbox.add_messages("Projects/Alpha", 3).unwrap();
        let due = SyncRequest {
            gone_recheck: Duration::ZERO,
            ..SyncRequest::default()
        };
        let report = syncer.sync_account(account, &due).await.unwrap();
        assert_eq!(report.outcome, Outcome::Synced, "{b:?}: {report:?}");
        let back = &report.folders[1];
        assert_eq!(back.folder.folder.remote_id, new_id);
        assert!(back.reset && back.gone_since.is_none());
        assert_eq!(back.stats.upserted, 3);
        let rows = store.list_folders(account).await.unwrap();
        let alphas: Vec<_> = rows
            .iter()
            .filter(|r| r.folder.path == "Projects/Alpha")
            .collect();
        assert_eq!(alphas.len(), 1, "{b:?}: {rows:?}");
        assert_eq!(alphas[0].gone_since, None);
        assert_eq!(in_folder(&store, alphas[0].id).await, 3);
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn folders_the_user_stopped_syncing_are_dropped_by_the_next_sync() {
    for store in stores().await {
        let (sim, syncer, account) = graph_setup(&store, &["INBOX", "Projects/Alpha"]).await;
        let report = syncer
            .sync_account(account, &SyncRequest::default())
            .await
            .unwrap();
        let alpha = report.folders[1].folder.id;
        assert!(in_folder(&store, alpha).await > 0);
        store
            .update_account(
                account,
                AccountUpdate {
                    sync_folders: Some(vec!["INBOX".into()]),
                    ..AccountUpdate::default()
                },
            )
            .await
            .unwrap();
        store
            .set_folders_removed(account, &[alpha], true, chrono::Utc::now())
            .await
            .unwrap();
        let report = syncer
            .sync_account(account, &SyncRequest::default())
            .await
            .unwrap();
        assert_eq!(report.folders.len(), 1);
        assert!(store.get_folder(alpha).await.is_err(), "the row is gone");
        assert_eq!(in_folder(&store, alpha).await, 0);
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_imap_mailbox_deleted_on_the_server_is_marked_gone_purged_on_the_second_miss_and_picked_up_when_recreated()
 {
    use mailroom_imap::testing::Dovecot;

    let dovecot = Dovecot::start().expect("Dovecot starts (apt-get install dovecot-imapd)");
    let mut admin = dovecot.admin("ann").await.unwrap();
    let raw = |i: usize| {
        format!(
            "From: s{i}@example.test\r\nTo: ann@imap.test\r\nSubject: m{i}\r\n\
             Message-ID: <m{i}@e2e.test>\r\nDate: Mon, 3 Mar 2025 10:00:00 +0000\r\n\r\nbody {i}\r\n"
        )
    };
    admin.create("Projects").await.unwrap();
    for i in 0..4 {
        admin
            .append("Projects", raw(i).as_bytes(), "")
            .await
            .unwrap();
    }
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let vault = Arc::new(Vault::new(vec![FernetKey::generate()]).unwrap());
    let creds =
        Credentials::Imap(dovecot.password_credentials("ann", mailroom_core::ImapTls::None));
    let account = store
        .create_account(NewAccount {
            email: "ann@imap.test".into(),
            kind: mailroom_core::AccountKind::Imap,
            credentials: SealedCredentials::new(vault.encrypt(creds.to_json().as_bytes())).unwrap(),
            sync_folders: vec!["INBOX".into(), "Projects".into()],
        })
        .await
        .unwrap()
        .id;
    let factory = DefaultFactory::new(
        "http://127.0.0.1:1",
        GraphConfig::default(),
        ImapOptions::default(),
    );
    let syncer = Syncer::new(store.clone(), vault, Arc::new(factory));
    let request = SyncRequest::default();

    let report = syncer.sync_account(account, &request).await.unwrap();
    assert_eq!(report.outcome, Outcome::Synced, "{report:?}");
    let projects = report.folders[1].folder.id;
    assert_eq!(in_folder(&store, projects).await, 4);

    admin.delete("Projects").await.unwrap();
    let report = syncer.sync_account(account, &request).await.unwrap();
    assert_eq!(report.outcome, Outcome::Synced, "{report:?}");
    assert!(report.folders[1].gone_since.is_some(), "{report:?}");
    assert_eq!(in_folder(&store, projects).await, 4, "kept after one miss");

    let report = syncer.sync_account(account, &request).await.unwrap();
    assert_eq!(report.outcome, Outcome::Synced, "{report:?}");
    assert_eq!(report.folders[1].purged, 4);
    assert_eq!(
        in_folder(&store, projects).await,
        0,
        "purged on the second miss"
    );

    // Recreated under the same name (same remote id on IMAP, a new UIDVALIDITY):
    // skipped until a look-up is due, then synced from scratch.
    admin.create("Projects").await.unwrap();
    admin
        .append("Projects", raw(9).as_bytes(), "")
        .await
        .unwrap();
    let report = syncer.sync_account(account, &request).await.unwrap();
    assert!(
        report.folders[1].gone_since.is_some(),
        "not looked up within the hour"
    );
    let due = SyncRequest {
        gone_recheck: Duration::ZERO,
        ..SyncRequest::default()
    };
    let report = syncer.sync_account(account, &due).await.unwrap();
    assert_eq!(report.outcome, Outcome::Synced, "{report:?}");
    let back = &report.folders[1];
    assert!(back.gone_since.is_none() && back.reset, "{back:?}");
    assert_eq!(back.stats.upserted, 1);
    let row = store.get_folder(back.folder.id).await.unwrap();
    assert_eq!((row.gone_since, row.missed_syncs), (None, 0));
    assert_eq!(in_folder(&store, back.folder.id).await, 1);
}
