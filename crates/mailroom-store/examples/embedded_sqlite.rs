//! Mailroom's storage in an embedded SQLite file, with nothing but `mailroom-store` and
//! tokio: open (and migrate) the file, add an account and its Inbox, write two sync
//! pages the way the sync engine does (each page's changes and the cursor after it in
//! ONE transaction), then query the messages back.
//!
//! ```sh
//! cargo run -p mailroom-store --example embedded_sqlite                 # a file in the temp dir
//! cargo run -p mailroom-store --example embedded_sqlite -- ./mail.sqlite
//! ```
//!
//! Running it again on the same file changes nothing: the pages are replayed as a
//! connector would replay them after a crash, and upserts make replays harmless. The
//! same code runs on PostgreSQL with a `postgres://…` URL.

use mailroom_store::chrono::{DateTime, TimeZone, Utc};
use mailroom_store::{
    AccountKind, Change, EmailAddress, Folder, Message, MessageQuery, NewAccount, PageStats,
    SealedCredentials, Store, SyncCursor, SyncPage, SyncPageWrite, WellKnownFolder,
};

/// What one run saw.
#[derive(Debug)]
pub struct Summary {
    /// What the first page (a reset enumeration: three new messages) changed.
    pub first_page: PageStats,
    /// What the second page (one new message, one read, one removed) changed.
    pub second_page: PageStats,
    /// The Inbox cursor as stored after the second page.
    pub stored_cursor: Option<String>,
    /// Subjects and read state of the Inbox, newest first.
    pub inbox: Vec<(String, bool)>,
    /// Unread messages of the account.
    pub unread: u64,
    /// Subjects of the messages whose subject or sender contains "invoice".
    pub search: Vec<String>,
}

/// A message as a connector returns it.
fn message(n: u32, subject: &str, from: &str, received: DateTime<Utc>) -> Message {
    Message {
        remote_id: format!("msg-{n}"),
        message_id: Some(format!("<{n}@example.com>")),
        subject: Some(subject.to_owned()),
        sender: Some(EmailAddress::new(None, Some(from.to_owned()))),
        date_received: Some(received),
        body: Some(format!("Body of {subject}")),
        ..Message::default()
    }
}

/// The whole walk against the database at `url` (`sqlite://FILE?mode=rwc`,
/// `sqlite::memory:` or `postgres://…`).
pub async fn run(url: &str) -> Result<Summary, Box<dyn std::error::Error>> {
    // 1. Connect; the schema is created or migrated on the way.
    let store = Store::connect(url).await?;

    // 2. The account. Credentials are stored only sealed: a Fernet token that
    //    `mailroom-vault` makes from the credentials JSON (`Vault::encrypt`). The store
    //    checks the shape and never decrypts; this placeholder has the right shape.
    let email = "ada@example.com";
    let account = match store.find_account(email).await? {
        Some(account) => account,
        None => {
            let sealed = SealedCredentials::new(format!("gAAAAAB{}", "x".repeat(80)))?;
            store
                .create_account(NewAccount {
                    email: email.to_owned(),
                    kind: AccountKind::Outlook,
                    credentials: sealed,
                    sync_folders: Vec::new(), // the Inbox only
                })
                .await?
        }
    };

    // 3. The folder, as `Connector::resolve_folder` described it; stored with its cursor.
    let inbox = store
        .upsert_folders(
            account.id,
            &[Folder {
                remote_id: "inbox-id".to_owned(),
                name: "Inbox".to_owned(),
                path: "Inbox".to_owned(),
                parent_id: None,
                role: Some(WellKnownFolder::Inbox),
                total_count: None,
                unread_count: None,
            }],
        )
        .await?
        .remove(0);
    println!(
        "account {} ({}), folder {}",
        account.id, account.email, inbox.folder.path
    );

    // 4. Two pages of `Connector::sync_folder`. The first starts a reset enumeration
    //    (first sync); the second completes it, so anything not re-sent since the reset
    //    is reconciled away.
    let day = |d: u32| Utc.with_ymd_and_hms(2025, 1, d, 9, 0, 0).unwrap();
    let first = SyncPage {
        changes: vec![
            Change::Upsert(message(1, "Welcome", "team@example.com", day(10))),
            Change::Upsert(message(2, "Invoice 1042", "billing@example.com", day(11))),
            Change::Upsert(message(3, "Lunch?", "bob@example.com", day(12))),
        ],
        cursor: SyncCursor("example-cursor-1".to_owned()),
        reset: true,
        complete: false,
    };
    let second = SyncPage {
        changes: vec![
            Change::Upsert(message(4, "Invoice 1043", "billing@example.com", day(13))),
            Change::ReadState {
                remote_id: "msg-1".to_owned(),
                is_read: true,
            },
            Change::Remove {
                remote_id: "msg-3".to_owned(),
            },
        ],
        cursor: SyncCursor("example-cursor-2".to_owned()),
        reset: false,
        complete: true,
    };
    let mut stats = Vec::new();
    for page in [&first, &second] {
        // One transaction: the changes and the cursor after them, or neither.
        let written = store
            .apply_sync_page(SyncPageWrite {
                account_id: account.id,
                folder_id: inbox.id,
                page,
                lease: None, // workers sharing a database pass their lease here
            })
            .await?;
        println!("page stored: {written:?}");
        stats.push(written);
    }

    // 5. Query back: the cursor to resume from, the Inbox newest first, unread, search.
    let stored_cursor = store.get_folder(inbox.id).await?.cursor;
    let in_inbox = MessageQuery {
        account_id: Some(account.id),
        folder_id: Some(inbox.id),
        ..MessageQuery::default()
    };
    let listed = store.list_messages(&in_inbox).await?;
    for stored in &listed {
        let m = &stored.message;
        println!(
            "{} {} {}",
            m.date_received.map(|d| d.to_rfc3339()).unwrap_or_default(),
            if m.is_read { "read  " } else { "unread" },
            m.subject.as_deref().unwrap_or("")
        );
    }
    let unread = store
        .count_messages(&MessageQuery {
            account_id: Some(account.id),
            unread_only: true,
            ..MessageQuery::default()
        })
        .await?;
    let search = store
        .list_messages(&MessageQuery {
            text: Some("invoice".to_owned()),
            ..in_inbox.clone()
        })
        .await?;
    store.close().await?;
    Ok(Summary {
        first_page: stats[0],
        second_page: stats[1],
        stored_cursor: stored_cursor.map(|c| c.as_str().to_owned()),
        inbox: listed
            .into_iter()
            .map(|s| (s.message.subject.unwrap_or_default(), s.message.is_read))
            .collect(),
        unread,
        search: search
            .into_iter()
            .filter_map(|s| s.message.subject)
            .collect(),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("mailroom-example.sqlite"));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    println!("database: {}", path.display());
    let summary = run(&url).await?;
    println!("{summary:#?}");
    Ok(())
}
