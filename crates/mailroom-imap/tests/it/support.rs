use mailroom_core::{Change, Connector, FolderRef, ImapTls, SyncCursor, SyncPage};
use mailroom_imap::testing::{Admin, Dovecot, DovecotConfig};
use mailroom_imap::{ImapConnector, ImapOptions};

pub fn dovecot() -> Dovecot {
    Dovecot::start().expect("start dovecot")
}

pub fn dovecot_with(config: &DovecotConfig) -> Dovecot {
    Dovecot::start_with(config).expect("start dovecot")
}

pub fn options(d: &Dovecot) -> ImapOptions {
    ImapOptions::default().ca_file(d.ca_file())
}

/// A password connector over implicit TLS trusting the test CA.
pub fn connector(d: &Dovecot, user: &str) -> ImapConnector {
    connector_with(d, user, options(d))
}

pub fn connector_with(d: &Dovecot, user: &str, options: ImapOptions) -> ImapConnector {
    ImapConnector::new(
        d.password_credentials(user, ImapTls::Implicit),
        &format!("{user}@example.test"),
        options,
    )
    .expect("build connector")
}

pub async fn admin(d: &Dovecot, user: &str) -> Admin {
    d.admin(user).await.expect("admin session")
}

/// A small message with a subject and a Message-ID.
pub fn mail(n: u32) -> Vec<u8> {
    format!(
        "From: Sender {n} <sender{n}@example.com>\r\nTo: bob@example.test\r\nSubject: Message {n}\r\n\
         Date: Mon, 20 Jan 2025 11:30:00 +0000\r\nMessage-ID: <m{n}@example.com>\r\n\r\nBody of message {n}.\r\n"
    )
    .into_bytes()
}

pub async fn seed(admin: &mut Admin, mailbox: &str, range: std::ops::RangeInclusive<u32>) {
    for n in range {
        admin.append(mailbox, &mail(n), "").await.expect("append");
    }
}

/// Syncs until `complete`, returning every page.
pub async fn sync_all(
    c: &dyn Connector,
    folder: &FolderRef,
    mut cursor: Option<SyncCursor>,
) -> (Vec<SyncPage>, SyncCursor) {
    let mut pages = Vec::new();
    loop {
        let page = c.sync_folder(folder, cursor).await.expect("sync page");
        cursor = Some(page.cursor.clone());
        let done = page.complete;
        pages.push(page);
        if done {
            return (pages, cursor.expect("cursor"));
        }
        assert!(pages.len() < 10_000, "sync never completes");
    }
}

/// Subjects of upserts, removed ids and read-state changes of pages.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub upserts: Vec<String>,
    pub removes: Vec<String>,
    pub read: Vec<(String, bool)>,
}

pub fn summarize(pages: &[SyncPage]) -> Summary {
    let mut s = Summary::default();
    for page in pages {
        for change in &page.changes {
            match change {
                Change::Upsert(m) => s.upserts.push(m.subject.clone().unwrap_or_default()),
                Change::Remove { remote_id } => s.removes.push(remote_id.clone()),
                Change::ReadState { remote_id, is_read } => {
                    s.read.push((remote_id.clone(), *is_read))
                }
            }
        }
    }
    s
}

pub fn subjects(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|n| format!("Message {n}")).collect()
}
