use chrono::{DateTime, Duration, TimeZone, Utc};
use mailroom_core::{
    AccountKind, Attachment, Credentials, EmailAddress, Folder, Message, WellKnownFolder,
};
use mailroom_store::{Account, FolderRow, NewAccount, SealedCredentials, Store};
use mailroom_vault::{FernetKey, Vault};

/// Both backends, freshly migrated and empty.
pub async fn stores() -> Vec<Store> {
    let sqlite = Store::connect("sqlite::memory:")
        .await
        .expect("in-memory sqlite");
    let url = mailroom_store::testing::fresh_postgres_url().await;
    let postgres = Store::connect(&url).await.expect("postgres");
    vec![sqlite, postgres]
}

pub fn vault() -> Vault {
    Vault::new(vec![FernetKey::generate()]).unwrap()
}

pub fn sealed(vault: &Vault) -> SealedCredentials {
    let creds =
        Credentials::from_json(r#"{"token":"t","refresh_token":"r","client_id":"c"}"#).unwrap();
    SealedCredentials::new(vault.encrypt(creds.to_json().as_bytes())).unwrap()
}

pub async fn account(store: &Store, email: &str) -> Account {
    store
        .create_account(NewAccount {
            email: email.into(),
            kind: AccountKind::Outlook,
            credentials: sealed(&vault()),
            sync_folders: Vec::new(),
        })
        .await
        .unwrap()
}

pub fn folder(remote_id: &str, role: Option<WellKnownFolder>) -> Folder {
    Folder {
        remote_id: remote_id.into(),
        name: remote_id.into(),
        path: remote_id.into(),
        parent_id: None,
        role,
        total_count: None,
        unread_count: None,
    }
}

pub async fn inbox(store: &Store, account: &Account) -> FolderRow {
    store
        .upsert_folders(
            account.id,
            &[folder("inbox-id", Some(WellKnownFolder::Inbox))],
        )
        .await
        .unwrap()
        .remove(0)
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 20, 11, 30, 0).unwrap()
}

/// A realistic record; every third one has attachments, every fifth is a draft without
/// a sender.
pub fn message(i: usize) -> Message {
    let draft = i % 5 == 4;
    let attachments: Vec<Attachment> = if i.is_multiple_of(3) {
        vec![
            Attachment {
                remote_id: Some(format!("att-{i}-0")),
                name: Some(format!("report-{i}.pdf")),
                content_type: Some("application/pdf".into()),
                size: 10_000 + i as u64,
                is_inline: false,
                content_id: None,
            },
            Attachment {
                remote_id: Some(format!("att-{i}-1")),
                name: Some("logo.png".into()),
                content_type: Some("image/png".into()),
                size: 2_000,
                is_inline: true,
                content_id: Some("logo@x".into()),
            },
        ]
    } else {
        Vec::new()
    };
    Message {
        remote_id: format!("AAMkAD{i:08}="),
        message_id: Some(format!("<{i}@example.com>")),
        folder_id: None,
        subject: Some(format!("Réunion n°{i} — ünïcödé 日本語")),
        sender: (!draft).then(|| {
            EmailAddress::new(
                Some(format!("Zoë {i}")),
                Some(format!("zoe{i}@example.com")),
            )
        }),
        to: vec![EmailAddress::new(None, Some("me@example.com".into()))],
        cc: Vec::new(),
        date_received: Some(t0() + Duration::seconds(i as i64)),
        sent_at: Some(t0() + Duration::seconds(i as i64 - 5)),
        body: Some(format!("Body {i} ").repeat(20)),
        is_read: i.is_multiple_of(2),
        is_draft: draft,
        has_attachments: !attachments.is_empty(),
        attachment_count: attachments.len() as u32,
        attachments,
        conversation_id: Some(format!("conv-{}", i / 3)),
        warnings: Vec::new(),
    }
}
