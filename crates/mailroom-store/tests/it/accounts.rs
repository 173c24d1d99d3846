use mailroom_core::{AccountKind, AccountStatus};
use mailroom_store::{AccountUpdate, Error, NewAccount, SealedCredentials, SyncOutcome};
use mailroom_vault::{FernetKey, Vault};

use crate::support::{account, inbox, message, sealed, stores, t0, vault};

#[tokio::test]
async fn account_crud() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "Alice@Contoso.com").await;
        assert_eq!(a.status, AccountStatus::Active, "{b:?}");
        assert!(a.sync_folders.is_empty());
        let found = store
            .find_account("alice@contoso.com")
            .await
            .unwrap()
            .expect("case-insensitive");
        assert_eq!(found.id, a.id);
        let dup = store
            .create_account(NewAccount {
                email: "Alice@Contoso.com".into(),
                kind: AccountKind::Imap,
                credentials: sealed(&vault()),
                sync_folders: vec![],
            })
            .await
            .unwrap_err();
        assert!(matches!(dup, Error::DuplicateAccount(_)), "{b:?}: {dup}");

        let updated = store
            .update_account(
                a.id,
                AccountUpdate {
                    status: Some(AccountStatus::NeedsReauth),
                    last_error: Some(Some("AADSTS700082 refresh token expired".into())),
                    auth_error_code: Some(Some("AADSTS700082".into())),
                    sync_folders: Some(vec!["INBOX".into(), "Projects/2025".into()]),
                    next_sync_at: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(updated.status, AccountStatus::NeedsReauth);
        assert_eq!(updated.auth_error_code.as_deref(), Some("AADSTS700082"));
        assert_eq!(updated.sync_folders, ["INBOX", "Projects/2025"]);

        store
            .finish_sync(
                a.id,
                None,
                SyncOutcome {
                    status: AccountStatus::Active,
                    error: None,
                    auth_error_code: None,
                    finished_at: t0(),
                    next_sync_at: Some(t0()),
                },
            )
            .await
            .unwrap();
        let synced = store.get_account(a.id).await.unwrap();
        assert_eq!(
            (synced.last_sync_at, synced.last_error),
            (Some(t0()), None),
            "{b:?}"
        );

        account(&store, "bob@example.com").await;
        assert_eq!(store.list_accounts().await.unwrap().len(), 2);
        store.remove_account(a.id).await.unwrap();
        assert!(matches!(
            store.get_account(a.id).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            store.remove_account(a.id).await,
            Err(Error::NotFound(_))
        ));
    }
}

#[test]
fn plaintext_credentials_are_refused() {
    for plaintext in [
        r#"{"token":"at","refresh_token":"rt","client_id":"c"}"#,
        "",
        "gAAAAA",
        "hunter2",
    ] {
        let err = SealedCredentials::new(plaintext).unwrap_err();
        assert!(
            err.to_string().contains("encrypted with mailroom-vault"),
            "{err}"
        );
    }
    let token = vault().encrypt(b"{}");
    assert_eq!(
        SealedCredentials::new(token.clone()).unwrap().as_str(),
        token
    );
    assert_eq!(
        format!("{:?}", SealedCredentials::new(token.clone()).unwrap()),
        format!("SealedCredentials({} bytes)", token.len())
    );
}

#[tokio::test]
async fn key_rotation_reseals_every_account() {
    for store in stores().await {
        let (old, new) = (FernetKey::generate(), FernetKey::generate());
        let old_vault = Vault::new(vec![old.clone()]).unwrap();
        let a = store
            .create_account(NewAccount {
                email: "a@x".into(),
                kind: AccountKind::Outlook,
                credentials: sealed(&old_vault),
                sync_folders: vec![],
            })
            .await
            .unwrap();
        let both = Vault::new(vec![new.clone(), old]).unwrap();
        let n = store
            .reseal_all_credentials(|c| {
                Ok(SealedCredentials::new(both.rotate(c.as_str()).unwrap()).unwrap())
            })
            .await
            .unwrap();
        assert_eq!(n, 1);
        let stored = store.get_account(a.id).await.unwrap().credentials;
        let new_only = Vault::new(vec![new]).unwrap();
        assert!(
            new_only
                .decrypt_json::<mailroom_core::Credentials>(stored.as_str())
                .is_ok()
        );
        assert!(
            old_vault
                .decrypt_json::<mailroom_core::Credentials>(stored.as_str())
                .unwrap_err()
                .is_wrong_key()
        );
    }
}

#[tokio::test]
async fn accounts_are_listed_a_page_at_a_time_by_id() {
    for store in crate::support::stores().await {
        let mut ids = Vec::new();
        for i in 0..7 {
            ids.push(
                crate::support::account(&store, &format!("page{i}@example.com"))
                    .await
                    .id,
            );
        }
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = store.list_accounts_after(after, 3).await.unwrap();
            assert!(page.len() <= 3);
            let Some(last) = page.last() else { break };
            after = last.id;
            seen.extend(page.iter().map(|a| a.id));
        }
        assert_eq!(seen, ids, "{:?}", store.backend());
    }
}

/// Removing an account removes its folders, messages and attachments, and nothing of
/// another account (on PostgreSQL messages reach the account through their folder
/// only, see migration m20261206_000007).
#[tokio::test]
async fn removing_an_account_removes_its_messages_and_attachments() {
    for store in stores().await {
        let b = store.backend();
        let mut ids = Vec::new();
        for email in ["gone@example.com", "kept@example.com"] {
            let a = account(&store, email).await;
            let f = inbox(&store, &a).await;
            let messages: Vec<_> = (0..6).map(message).collect();
            store.upsert_messages(a.id, f.id, &messages).await.unwrap();
            ids.push(a.id);
        }
        store.remove_account(ids[0]).await.unwrap();
        let count = |account_id| {
            let store = &store;
            async move {
                store
                    .count_messages(&mailroom_store::MessageQuery {
                        account_id: Some(account_id),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
            }
        };
        assert_eq!(count(ids[0]).await, 0, "{b:?}");
        assert!(
            store.list_folders(ids[0]).await.unwrap().is_empty(),
            "{b:?}"
        );
        assert_eq!(count(ids[1]).await, 6, "{b:?}");
        let kept = store
            .list_messages(&mailroom_store::MessageQuery::default())
            .await
            .unwrap();
        assert_eq!(
            kept.len(),
            6,
            "{b:?}: no message of the removed account is left"
        );
        let attachments: usize = kept.iter().map(|m| m.message.attachments.len()).sum();
        assert_eq!(
            attachments, 4,
            "{b:?}: messages 0 and 3 of the kept account"
        );
    }
}
