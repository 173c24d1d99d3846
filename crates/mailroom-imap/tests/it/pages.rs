//! The pages of one sync run on one session: the next page continues where the last
//! one ended (no SELECT, no `UID FETCH last`), and falls back to the full path whenever
//! the session's view may have moved. Commands are watched through a recording proxy
//! in front of Dovecot's plain-text port.

use std::sync::{Arc, Mutex};

use mailroom_core::{Change, Connector, FolderRef, ImapTls};
use mailroom_imap::ImapConnector;
use mailroom_imap::testing::Dovecot;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// A proxy to Dovecot's plain-text port that keeps every byte the client sent.
struct Recorder {
    port: u16,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    async fn start(d: &Dovecot) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = d.imap_port();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&sent);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = client_read.read(&mut buf).await {
                        if n == 0 || server_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        log.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                });
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                });
            }
        });
        Recorder { port, sent }
    }

    fn connector(&self, d: &Dovecot, page_size: u32) -> ImapConnector {
        let mut credentials = d.password_credentials("alice", ImapTls::None);
        credentials.port = self.port;
        ImapConnector::new(
            credentials,
            "alice@example.test",
            options(d).page_size(page_size),
        )
        .unwrap()
    }

    /// The command lines sent so far, without their tags.
    fn commands(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.sent.lock().unwrap())
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(_, c)| c.to_owned()))
            .collect()
    }

    fn count(&self, prefix: &str) -> usize {
        self.commands()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }
}

fn uids(pages: &[mailroom_core::SyncPage]) -> Vec<u32> {
    pages
        .iter()
        .flat_map(|p| &p.changes)
        .filter_map(|c| match c {
            Change::Upsert(m) => {
                assert!(m.warnings.is_empty(), "{:?}", m.warnings);
                m.remote_id.rsplit(':').next()?.parse().ok()
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_pages_of_a_run_select_only_at_its_start_and_end() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    seed(&mut a, "INBOX", 1..=20).await;
    let proxy = Recorder::start(&d).await;
    let c = proxy.connector(&d, 4);
    let (pages, _) = sync_all(&c, &FolderRef::INBOX, None).await;
    assert_eq!(pages.len(), 5);
    assert_eq!(uids(&pages), (1..=20).collect::<Vec<_>>());
    assert!(pages[0].reset && pages[1..].iter().all(|p| !p.reset));
    assert!(pages[4].complete && pages[..4].iter().all(|p| !p.complete));
    // The first page and the last (fresh HIGHESTMODSEQ) select; the three between
    // continue by sequence number.
    assert_eq!(proxy.count("SELECT"), 2, "{:#?}", proxy.commands());
    let fetches: Vec<String> = proxy
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("FETCH "))
        .map(|c| c.split(' ').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(fetches, ["1:4", "5:8", "9:12", "13:16", "17:20"]);
    assert_eq!(
        proxy.count("UID FETCH 16 (UID)"),
        1,
        "only the last page looks its start up again"
    );
}

#[tokio::test]
async fn a_page_asked_again_with_an_older_cursor_is_read_again() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    seed(&mut a, "INBOX", 1..=12).await;
    let proxy = Recorder::start(&d).await;
    let c = proxy.connector(&d, 4);
    let first = c.sync_folder(&FolderRef::INBOX, None).await.unwrap();
    let second = c
        .sync_folder(&FolderRef::INBOX, Some(first.cursor.clone()))
        .await
        .unwrap();
    assert_eq!(uids(std::slice::from_ref(&second)), [5, 6, 7, 8]);
    // The store failed: the engine asks for page 2 again, from page 1's cursor.
    let again = c
        .sync_folder(&FolderRef::INBOX, Some(first.cursor.clone()))
        .await
        .unwrap();
    assert_eq!(uids(std::slice::from_ref(&again)), [5, 6, 7, 8]);
    assert!(!again.reset && !again.complete);
    let (rest, _) = sync_all(&c, &FolderRef::INBOX, Some(again.cursor)).await;
    assert_eq!(uids(&rest), [9, 10, 11, 12]);
    assert!(rest.last().unwrap().complete);
}

#[tokio::test]
async fn messages_added_and_expunged_between_pages() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    seed(&mut a, "INBOX", 1..=16).await;
    let proxy = Recorder::start(&d).await;
    let c = proxy.connector(&d, 4);
    let first = c.sync_folder(&FolderRef::INBOX, None).await.unwrap();
    assert_eq!(uids(std::slice::from_ref(&first)), [1, 2, 3, 4]);
    let second = c
        .sync_folder(&FolderRef::INBOX, Some(first.cursor))
        .await
        .unwrap();
    assert_eq!(uids(std::slice::from_ref(&second)), [5, 6, 7, 8]);

    // Another session: 2 new messages, UID 3 (delivered) and UID 9 (the next page's
    // first, which this session still numbers 9) expunged.
    seed(&mut a, "INBOX", 17..=18).await;
    a.expunge("INBOX", "3,9").await.unwrap();

    let (rest, _) = sync_all(&c, &FolderRef::INBOX, Some(second.cursor)).await;
    assert_eq!(
        uids(&rest),
        (10..=18).collect::<Vec<_>>(),
        "nothing lost, nothing repeated: {:#?}",
        proxy.commands()
    );
    assert!(rest.last().unwrap().complete && rest.iter().all(|p| !p.reset));
    let uv = a.select("INBOX").await.unwrap().uid_validity.unwrap();
    let removes = summarize(&rest).removes;
    assert!(removes.contains(&format!("INBOX:{uv}:3")), "{removes:?}");
}

#[tokio::test]
async fn another_mailbox_selected_between_pages_means_select_again() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    seed(&mut a, "INBOX", 1..=12).await;
    seed(&mut a, "Archive", 1..=1).await;
    let proxy = Recorder::start(&d).await;
    let c = proxy.connector(&d, 4);
    let first = c.sync_folder(&FolderRef::INBOX, None).await.unwrap();
    let archive = c
        .sync_folder(&FolderRef::id("Archive"), None)
        .await
        .unwrap();
    assert_eq!(uids(std::slice::from_ref(&archive)), [1]);
    // Meanwhile UID 2 goes: the session does not hear of it while Archive is selected.
    a.expunge("INBOX", "2").await.unwrap();
    let (rest, _) = sync_all(&c, &FolderRef::INBOX, Some(first.cursor)).await;
    assert_eq!(uids(&rest), [5, 6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(
        proxy.count("SELECT \"INBOX\""),
        3,
        "the first page, the page after Archive, the last page: {:#?}",
        proxy.commands()
    );
}

#[tokio::test]
async fn a_message_the_server_cannot_read_in_a_continued_page() {
    let d = dovecot();
    d.write_maildir_inbox("alice", (1..=16).map(mail)).unwrap();
    // Make "Message 6" unreadable for Dovecot's mail process (it runs as nobody):
    // Dovecot ends the session with BYE in the middle of that message's page.
    let broken = std::fs::read_dir(d.dir().join("mail/alice/Maildir/cur"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("1700000000.M5P1.")
        })
        .unwrap();
    std::os::unix::fs::chown(&broken, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();

    let proxy = Recorder::start(&d).await;
    let c = proxy.connector(&d, 4);
    let (pages, _) = sync_all(&c, &FolderRef::INBOX, None).await;
    assert_eq!(pages.len(), 4);
    assert!(pages[3].complete && pages[..3].iter().all(|p| !p.complete));
    let mut uids = Vec::new();
    let mut subjects = Vec::new();
    let mut unreadable = Vec::new();
    for page in &pages {
        for change in &page.changes {
            if let Change::Upsert(m) = change {
                let uid: u32 = m.remote_id.rsplit(':').next().unwrap().parse().unwrap();
                uids.push(uid);
                match &m.subject {
                    Some(s) => {
                        assert!(m.warnings.is_empty(), "{uid}: {:?}", m.warnings);
                        subjects.push(s.clone());
                    }
                    None => {
                        assert!(
                            m.warnings[0].starts_with("the server could not return this message"),
                            "{:?}",
                            m.warnings
                        );
                        unreadable.push(uid);
                    }
                }
            }
        }
    }
    assert_eq!(
        uids,
        (1..=16).collect::<Vec<_>>(),
        "each message once, in order"
    );
    assert_eq!(unreadable.len(), 1);
    assert!(
        (5..=12).contains(&unreadable[0]),
        "the broken message sits in a continued page (2 or 3): UID {}",
        unreadable[0]
    );
    subjects.sort();
    let mut want: Vec<String> = (1..=16)
        .filter(|&n| n != 6)
        .map(|n| format!("Message {n}"))
        .collect();
    want.sort();
    assert_eq!(subjects, want);
}
