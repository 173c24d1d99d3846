//! Initial sync of 10,000 realistic messages from a private Dovecot, through
//! `sync_folder` pages until `complete`, over implicit TLS.
//!
//! `cargo bench -p mailroom-imap --bench initial_sync`
//! (`MAILROOM_BENCH_MESSAGES` changes the count.)

use std::time::Instant;

use mailroom_core::{Change, Connector, FolderRef, ImapTls};
use mailroom_imap::testing::{Dovecot, sample_message as message};
use mailroom_imap::{ImapConnector, ImapOptions};

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of this process (the client only; Dovecot runs apart).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // After "pid (comm)": state is field 0, utime 11, stime 12, in clock ticks (100/s).
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn reset_peak() {
    // Linux: writing 5 resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let count: usize = std::env::var("MAILROOM_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dovecot = Dovecot::start().expect("start dovecot");
    let started = Instant::now();
    let mut bytes = 0usize;
    dovecot
        .write_maildir_inbox(
            "bench",
            (0..count).map(|i| {
                let m = message(i);
                bytes += m.len();
                m
            }),
        )
        .expect("seed maildir");
    println!(
        "seeded {count} messages ({:.1} MB) into the Maildir in {:.2?}",
        bytes as f64 / 1e6,
        started.elapsed()
    );
    let started = Instant::now();
    let mut admin = dovecot.admin("bench").await.expect("admin");
    let sel = admin.select("INBOX").await.expect("select");
    assert_eq!(sel.exists as usize, count);
    println!(
        "dovecot indexed the folder in {:.2?} (not counted below)",
        started.elapsed()
    );

    println!(
        "\n| page size | messages | pages | wall | messages/s | client CPU | peak RSS (VmHWM) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for page_size in [200u32, 500] {
        let options = ImapOptions::default()
            .ca_file(dovecot.ca_file())
            .page_size(page_size);
        let connector = ImapConnector::new(
            dovecot.password_credentials("bench", ImapTls::Implicit),
            "bench@example.test",
            options,
        )
        .expect("connector");
        connector.connect().await.expect("connect");
        reset_peak();
        let rss_before = status_kb("VmRSS:");
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let mut cursor = None;
        let (mut pages, mut upserts, mut warnings) = (0usize, 0usize, 0usize);
        loop {
            let page = connector
                .sync_folder(&FolderRef::INBOX, cursor)
                .await
                .expect("sync page");
            pages += 1;
            for change in &page.changes {
                if let Change::Upsert(m) = change {
                    upserts += 1;
                    warnings += usize::from(!m.warnings.is_empty());
                }
            }
            cursor = Some(page.cursor);
            if page.complete {
                break;
            }
        }
        let wall = started.elapsed();
        let cpu = cpu_seconds() - cpu_before;
        assert_eq!(upserts, count, "every message once");
        assert_eq!(warnings, 0);
        println!(
            "| {page_size} | {upserts} | {pages} | {:.2} s | {:.0} | {cpu:.2} s ({:.0} µs/message) | {:.1} MB (RSS before: {:.1} MB) |",
            wall.as_secs_f64(),
            upserts as f64 / wall.as_secs_f64(),
            cpu * 1e6 / upserts as f64,
            status_kb("VmHWM:") as f64 / 1024.0,
            rss_before as f64 / 1024.0,
        );
        connector.disconnect().await.expect("disconnect");
    }
}
