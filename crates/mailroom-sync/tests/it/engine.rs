use std::sync::Arc;

use mailroom_core::{AccountKind, AccountStatus, Connector, Credentials, ErrorKind};
use mailroom_store::{
    Account, FolderRow, MessageQuery, NewAccount, PageStats, SealedCredentials, Store,
};
use mailroom_sync::{Lease, Outcome, SyncObserver, SyncRequest, Syncer};
use mailroom_vault::{FernetKey, Vault};
use tokio_util::sync::CancellationToken;

use crate::fake::{FakeConnector, Script};

pub const CREDS: &str =
    r#"{"token":"old-token","refresh_token":"rt","client_id":"c","expiry":"2020-01-01T00:00:00Z"}"#;

pub async fn stores() -> Vec<Store> {
    let url = mailroom_store::testing::fresh_postgres_url().await;
    vec![
        Store::connect("sqlite::memory:").await.unwrap(),
        Store::connect(&url).await.unwrap(),
    ]
}

/// The access token in the account's stored (sealed) credentials.
fn stored_token(vault: &Vault, account: &Account) -> String {
    let creds = vault
        .decrypt_json::<Credentials>(account.credentials.as_str())
        .unwrap();
    creds
        .oauth()
        .unwrap()
        .token
        .as_ref()
        .unwrap()
        .secret()
        .to_owned()
}

pub async fn setup(store: &Store, emails: &[&str]) -> (Arc<Vault>, Vec<Account>) {
    let vault = Arc::new(Vault::new(vec![FernetKey::generate()]).unwrap());
    let mut accounts = Vec::new();
    for email in emails {
        let sealed = SealedCredentials::new(
            vault.encrypt(Credentials::from_json(CREDS).unwrap().to_json().as_bytes()),
        )
        .unwrap();
        accounts.push(
            store
                .create_account(NewAccount {
                    email: (*email).into(),
                    kind: AccountKind::Outlook,
                    credentials: sealed,
                    sync_folders: vec![],
                })
                .await
                .unwrap(),
        );
    }
    (vault, accounts)
}

/// A syncer whose factory hands out fakes made by `make`.
pub fn syncer(
    store: &Store,
    vault: Arc<Vault>,
    make: impl Fn(Credentials) -> FakeConnector + Send + Sync + 'static,
) -> Syncer {
    let factory =
        move |_: &Account, creds: Credentials| Ok(Arc::new(make(creds)) as Arc<dyn Connector>);
    Syncer::new(store.clone(), vault, Arc::new(factory))
}

async fn count(store: &Store, account: i64) -> u64 {
    store
        .count_messages(&MessageQuery {
            account_id: Some(account),
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn syncs_a_folder_to_its_end_in_pages() {
    for store in stores().await {
        let (vault, accounts) = setup(&store, &["a@x"]).await;
        let syncer = syncer(&store, vault, |c| {
            FakeConnector::new(2_345, 100, c, Script::default())
        });
        let report = syncer
            .sync_account(accounts[0].id, &SyncRequest::default())
            .await
            .unwrap();
        assert_eq!(report.outcome, Outcome::Synced);
        assert_eq!(report.folders[0].pages, 24);
        assert!(report.folders[0].reset);
        assert_eq!(report.totals().upserted, 2_345);
        assert_eq!(
            count(&store, accounts[0].id).await,
            2_345,
            "no cap: every message stored"
        );
        let account = store.get_account(accounts[0].id).await.unwrap();
        assert!(account.last_sync_at.is_some() && account.last_error.is_none());
        assert!(account.next_sync_at.unwrap() > chrono::Utc::now());
        let folder = &store.list_folders(account.id).await.unwrap()[0];
        assert_eq!(folder.cursor.as_ref().unwrap().as_str(), "delta:done");
    }
}

#[tokio::test]
async fn refreshed_credentials_are_kept_even_when_the_sync_then_fails() {
    for store in stores().await {
        let (vault, accounts) = setup(&store, &["a@x"]).await;
        let syncer = syncer(&store, vault.clone(), |c| {
            FakeConnector::new(
                50,
                10,
                c,
                Script {
                    refresh_at_connect: Some("rotated-token"),
                    fail_sync_call: Some((2, ErrorKind::Transient, None)),
                    ..Script::default()
                },
            )
        });
        let report = syncer
            .sync_account(accounts[0].id, &SyncRequest::default())
            .await
            .unwrap();
        assert!(
            matches!(
                report.outcome,
                Outcome::Failed {
                    kind: ErrorKind::Transient,
                    ..
                }
            ),
            "{:?}",
            report.outcome
        );
        assert!(report.credentials_refreshed);
        let account = store.get_account(accounts[0].id).await.unwrap();
        assert_eq!(stored_token(&vault, &account), "rotated-token");
        assert_eq!(account.status, AccountStatus::Active);
        assert!(
            account
                .last_error
                .unwrap()
                .contains("scripted transient failure")
        );
        // The two pages before the failure are stored with their cursor; the next sync
        // resumes after them.
        assert_eq!(count(&store, account.id).await, 20);
        let folder = &store.list_folders(account.id).await.unwrap()[0];
        assert_eq!(folder.cursor.as_ref().unwrap().as_str(), "next:20");
    }
}

/// The next page is fetched while the current one is stored; when the store fails (here
/// the lease was lost), a refresh that fetch is doing still ends and is persisted: the
/// refresh token it replaced may already be spent.
#[tokio::test]
async fn a_refresh_in_flight_when_a_page_store_fails_is_still_persisted() {
    for store in stores().await {
        let (vault, accounts) = setup(&store, &["a@x"]).await;
        let now = chrono::Utc::now();
        let leased = store
            .claim_due_accounts("w1", 1, now, now + chrono::Duration::minutes(5))
            .await
            .unwrap();
        assert_eq!(leased.len(), 1);
        let thief = store.clone();
        let syncer = syncer(&store, vault.clone(), move |c| {
            FakeConnector::new(
                30,
                10,
                c,
                Script {
                    steal_lease_at_call: Some((0, thief.clone())),
                    slow_refresh_at_call: Some((1, "refreshed-during-page-2")),
                    ..Script::default()
                },
            )
        });
        let request = SyncRequest {
            // Renewals last no time: the lease is expired when the thief comes.
            lease: Some(Lease {
                owner: "w1".into(),
                ttl: std::time::Duration::ZERO,
            }),
            ..SyncRequest::default()
        };
        let err = syncer
            .sync_account(accounts[0].id, &request)
            .await
            .unwrap_err();
        assert!(err.is_lease_lost(), "{err}");
        let account = store.get_account(accounts[0].id).await.unwrap();
        assert_eq!(account.lease_owner.as_deref(), Some("thief"));
        assert_eq!(stored_token(&vault, &account), "refreshed-during-page-2");
        assert_eq!(
            count(&store, account.id).await,
            0,
            "a lost lease writes nothing"
        );
    }
}

/// A worker's page writes check its lease but renew it only when less than half of it
/// is left: a renewal rewrites the account row and its claim index entry.
#[tokio::test]
async fn page_writes_renew_the_lease_only_past_half_of_it() {
    for store in stores().await {
        let b = store.backend();
        let (vault, accounts) = setup(&store, &["a@x"]).await;
        let ttl = std::time::Duration::from_secs(600);
        // Claimed for the whole ttl, then for less than half of it.
        for claimed_for in [600, 60] {
            // Each round enumerates the folder again: three pages of changes.
            for folder in store.list_folders(accounts[0].id).await.unwrap() {
                store.reset_folder_cursor(folder.id).await.unwrap();
            }
            let now = chrono::Utc::now();
            let leased = store
                .claim_due_accounts("w1", 1, now, now + chrono::Duration::seconds(claimed_for))
                .await
                .unwrap();
            assert_eq!(leased.len(), 1);
            // As stored (PostgreSQL keeps microseconds).
            let claimed = leased[0].lease_expires_at.expect("leased");
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            let script_store = store.clone();
            let record = seen.clone();
            let syncer = syncer(&store, vault.clone(), move |c| {
                FakeConnector::new(
                    30,
                    10,
                    c,
                    Script {
                        record_lease: Some((script_store.clone(), record.clone())),
                        ..Script::default()
                    },
                )
            });
            let request = SyncRequest {
                lease: Some(Lease {
                    owner: "w1".into(),
                    ttl,
                }),
                interval: Some(std::time::Duration::ZERO),
                ..SyncRequest::default()
            };
            let report = syncer
                .sync_claimed(leased.into_iter().next().unwrap(), &request)
                .await
                .unwrap();
            assert!(matches!(report.outcome, Outcome::Synced), "{b:?}");
            let seen = seen.lock().unwrap().clone();
            // Three pages of changes: the expiry each fetch saw.
            assert_eq!(seen.len(), 3, "{b:?}: {seen:?}");
            if claimed_for == 600 {
                assert!(
                    seen.iter().all(|s| *s == Some(claimed)),
                    "{b:?}: renewed with more than half of the lease left: {seen:?}"
                );
            } else {
                // Renewed once, before the first write, for the whole ttl.
                let renewed = seen[1].expect("leased");
                assert!(
                    renewed > claimed + chrono::Duration::seconds(400),
                    "{b:?}: {seen:?}"
                );
                assert_eq!(seen[2], seen[1], "{b:?}: renewed again: {seen:?}");
            }
            // The outcome released the lease.
            let account = store.get_account(accounts[0].id).await.unwrap();
            assert_eq!(account.lease_owner, None, "{b:?}");
        }
    }
}

#[tokio::test]
async fn terminal_auth_errors_mark_needs_reauth_with_the_code() {
    for store in stores().await {
        let (vault, accounts) = setup(&store, &["a@x"]).await;
        let syncer = syncer(&store, vault, |c| {
            FakeConnector::new(
                5,
                10,
                c,
                Script {
                    fail_connect: Some((ErrorKind::ReauthRequired, Some("AADSTS50173"))),
                    ..Script::default()
                },
            )
        });
        let report = syncer
            .sync_account(accounts[0].id, &SyncRequest::default())
            .await
            .unwrap();
        assert!(
            matches!(&report.outcome, Outcome::ReauthRequired { code: Some(c), .. } if c == "AADSTS50173")
        );
        let account = store.get_account(accounts[0].id).await.unwrap();
        assert_eq!(account.status, AccountStatus::NeedsReauth);
        assert_eq!(account.auth_error_code.as_deref(), Some("AADSTS50173"));
    }
}

#[tokio::test]
async fn cancellation_stops_between_pages_and_the_next_sync_resumes() {
    for store in stores().await {
        let (vault, accounts) = setup(&store, &["a@x"]).await;
        let syncer = syncer(&store, vault, |c| {
            FakeConnector::new(100, 10, c, Script::default())
        });
        // A shutdown arrives while the second page is being written.
        struct CancelAtPage(CancellationToken);
        impl SyncObserver for CancelAtPage {
            fn page_stored(&self, _: &Account, _: &FolderRow, _: &PageStats, _: bool) {
                self.0.cancel();
            }
        }
        let cancel = CancellationToken::new();
        let request = SyncRequest {
            cancel: cancel.clone(),
            observer: Arc::new(CancelAtPage(cancel)),
            ..SyncRequest::default()
        };
        let report = syncer.sync_account(accounts[0].id, &request).await.unwrap();
        assert_eq!(report.outcome, Outcome::Interrupted);
        // Page 1 was stored while page 2 was fetched; page 2 is stored, nothing more.
        assert_eq!(
            count(&store, accounts[0].id).await,
            20,
            "the page in hand is stored"
        );
        let account = store.get_account(accounts[0].id).await.unwrap();
        assert!(
            account.next_sync_at.unwrap() <= chrono::Utc::now(),
            "due again at once"
        );
        // Already cancelled: no new folder starts.
        let request = SyncRequest {
            cancel: CancellationToken::new(),
            ..SyncRequest::default()
        };
        request.cancel.cancel();
        let report = syncer.sync_account(accounts[0].id, &request).await.unwrap();
        assert_eq!(report.outcome, Outcome::Interrupted);
        assert_eq!(count(&store, accounts[0].id).await, 20);
        let report = syncer
            .sync_account(accounts[0].id, &SyncRequest::default())
            .await
            .unwrap();
        assert_eq!(report.outcome, Outcome::Synced);
        assert!(!report.folders[0].reset, "resumed from the stored cursor");
        assert_eq!(count(&store, accounts[0].id).await, 100);
    }
}

#[tokio::test]
async fn a_wrong_key_is_reported_not_fatal() {
    for store in stores().await {
        let (_, accounts) = setup(&store, &["a@x"]).await;
        let other_key = Arc::new(Vault::new(vec![FernetKey::generate()]).unwrap());
        let syncer = syncer(&store, other_key, |c| {
            FakeConnector::new(5, 10, c, Script::default())
        });
        let report = syncer
            .sync_account(accounts[0].id, &SyncRequest::default())
            .await
            .unwrap();
        let Outcome::Failed { kind, message } = &report.outcome else {
            panic!("{:?}", report.outcome)
        };
        assert_eq!(*kind, ErrorKind::InvalidConfig);
        assert!(
            message.contains("none of the 1 configured key(s) matches"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_second_sync_goes_straight_to_the_stored_folder_and_relooks_a_vanished_one() {
    use crate::fake::Calls;
    use std::sync::atomic::Ordering;
    for store in stores().await {
        let (vault, accounts) = setup(&store, &["a@x"]).await;
        let calls = Arc::new(Calls::default());
        let c = calls.clone();
        let first = syncer(&store, vault.clone(), move |creds| {
            FakeConnector::new(30, 10, creds, Script::default()).counting(&c)
        });
        first
            .sync_account(accounts[0].id, &SyncRequest::default())
            .await
            .unwrap();
        assert_eq!(calls.connect.load(Ordering::SeqCst), 1);
        assert_eq!(calls.resolve.load(Ordering::SeqCst), 1);

        // Nothing new: no sign-in check, no folder lookup, just the incremental sync.
        let report = first
            .sync_account(accounts[0].id, &SyncRequest::default())
            .await
            .unwrap();
        assert_eq!(report.outcome, Outcome::Synced);
        assert_eq!(calls.connect.load(Ordering::SeqCst), 1);
        assert_eq!(calls.resolve.load(Ordering::SeqCst), 1);

        // The inbox was recreated with a new id: the stored one is not found, so it is
        // looked up again and synced from scratch.
        let c = calls.clone();
        let moved = syncer(&store, vault, move |creds| {
            FakeConnector::new(
                30,
                10,
                creds,
                Script {
                    folder_id: Some("inbox-2"),
                    ..Script::default()
                },
            )
            .counting(&c)
        });
        let report = moved
            .sync_account(accounts[0].id, &SyncRequest::default())
            .await
            .unwrap();
        assert_eq!(report.outcome, Outcome::Synced, "{report:?}");
        assert_eq!(calls.resolve.load(Ordering::SeqCst), 2, "{report:#?}");
        assert_eq!(report.folders[0].folder.folder.remote_id, "inbox-2");
        assert!(report.folders[0].reset);
    }
}
