//! Upsert throughput of the store on a SQLite file (WAL), as the sync worker writes:
//! pages of 1,000 messages, each page and its cursor in one transaction.
//!
//! Run: `cargo bench -p mailroom-store --bench upsert` (release build).
//! Prints, for the first load and for a second pass over the same messages (all
//! updates): wall-clock messages/s and the process CPU time per message (all threads,
//! user + system), both counted inside `apply_sync_page` only; then the peak resident
//! memory. Pages are generated just before they are written, outside the timed part,
//! so memory holds one page of records, not the whole mailbox.
//!
//! Two layouts of remote ids, each in a process and a database of its own
//! (`MAILROOM_BENCH_IDS=spread|sequential` runs one): `spread`, ids whose varying part
//! is scattered over the key space, so every page inserts all over the unique index
//! (the worst case); `sequential`, ids that grow with arrival, as the ids of one
//! Exchange folder mostly do (a shared prefix, then a counter), so a page inserts
//! into a few neighbouring index pages.

use std::time::{Duration as StdDuration, Instant};

use mailroom_sim::process;

use chrono::{Duration, TimeZone, Utc};
use mailroom_core::{
    AccountKind, Attachment, Change, EmailAddress, Folder, Message, SyncCursor, SyncPage,
    WellKnownFolder,
};
use mailroom_store::{MessageQuery, NewAccount, SealedCredentials, Store, SyncPageWrite};

/// How many messages, unless `MAILROOM_BENCH_MESSAGES` says (a multiple of [`PAGE`]; a
/// small count is for `valgrind --tool=callgrind`, whose instruction counts do not
/// depend on the load of the machine).
fn messages() -> usize {
    std::env::var("MAILROOM_BENCH_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .map_or(100_000, |n: usize| n.max(PAGE) / PAGE * PAGE)
}
const PAGE: usize = 1_000;

/// How remote ids are laid out over the key space.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ids {
    Spread,
    Sequential,
}

fn ids() -> Ids {
    match std::env::var("MAILROOM_BENCH_IDS").as_deref() {
        Ok("sequential") => Ids::Sequential,
        _ => Ids::Spread,
    }
}

fn message(i: usize, ids: Ids) -> Message {
    let t0 = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let attachments = if i.is_multiple_of(4) {
        vec![Attachment {
            remote_id: Some(format!("att-{i}")),
            name: Some(format!("invoice-{i}.pdf")),
            content_type: Some("application/pdf".into()),
            size: 48_213,
            is_inline: false,
            content_id: None,
        }]
    } else {
        Vec::new()
    };
    Message {
        remote_id: format!(
            "AAMkADAwATM0MDAAMS1iNTcwLWI2NTEtMDACLTAwCgBGAAAD{:016x}{i:06}AAA=",
            match ids {
                Ids::Spread => (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                Ids::Sequential => i as u64,
            }
        ),
        message_id: Some(format!("<CAF{i:08}.4711@mail.example.com>")),
        folder_id: Some("inbox".into()),
        subject: Some(format!("Quarterly report {i} — résumé des échanges")),
        sender: Some(EmailAddress::new(
            Some(format!("Sender Näme {}", i % 97)),
            Some(format!("sender{}@example.com", i % 97)),
        )),
        to: vec![EmailAddress::new(
            Some("Me".into()),
            Some("me@contoso.com".into()),
        )],
        cc: Vec::new(),
        date_received: Some(t0 + Duration::seconds(i as i64 * 37)),
        sent_at: Some(t0 + Duration::seconds(i as i64 * 37 - 3)),
        body: Some("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(18)),
        is_read: !i.is_multiple_of(3),
        is_draft: false,
        has_attachments: !attachments.is_empty(),
        attachment_count: attachments.len() as u32,
        attachments,
        conversation_id: Some(format!("AAQkADAwATM0MDAAMS1{:08}", i / 4)),
        warnings: Vec::new(),
    }
}

/// Bytes written and read through system calls, and how many calls (`/proc/self/io`):
/// the I/O volume of a pass, which does not depend on the load of the machine.
#[derive(Debug, Default, Clone, Copy)]
struct Io {
    wchar: u64,
    syscw: u64,
    rchar: u64,
    syscr: u64,
    /// Bytes of page cache dirtied (what goes to the disk eventually).
    write_bytes: u64,
}

fn process_io() -> Io {
    let text = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Io {
        wchar: field("wchar"),
        syscw: field("syscw"),
        rchar: field("rchar"),
        syscr: field("syscr"),
        write_bytes: field("write_bytes"),
    }
}

fn page(p: usize, ids: Ids) -> SyncPage {
    SyncPage {
        changes: (p * PAGE..(p + 1) * PAGE)
            .map(|i| Change::Upsert(message(i, ids)))
            .collect(),
        cursor: SyncCursor(format!(
            "https://graph.microsoft.com/v1.0/me/mailFolders/inbox/messages/delta?$skiptoken={p}"
        )),
        reset: p == 0,
        complete: p + 1 == messages() / PAGE,
    }
}

fn main() {
    if std::env::var_os("MAILROOM_BENCH_IDS").is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(ids()));
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for layout in ["spread", "sequential"] {
        let status = std::process::Command::new(&exe)
            .env("MAILROOM_BENCH_IDS", layout)
            .status()
            .unwrap();
        assert!(status.success(), "{layout} failed");
    }
}

async fn run(ids: Ids) {
    let messages = messages();
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.sqlite").display()
    );
    let store = Store::connect(&url).await.unwrap();
    let sealed = SealedCredentials::new(format!("gAAAAA{}", "A".repeat(120))).unwrap();
    let account = store
        .create_account(NewAccount {
            email: "bench@example.com".into(),
            kind: AccountKind::Outlook,
            credentials: sealed,
            sync_folders: vec![],
        })
        .await
        .unwrap();
    let folder = store
        .upsert_folders(
            account.id,
            &[Folder {
                remote_id: "inbox".into(),
                name: "Inbox".into(),
                path: "Inbox".into(),
                parent_id: None,
                role: Some(WellKnownFolder::Inbox),
                total_count: None,
                unread_count: None,
            }],
        )
        .await
        .unwrap()
        .remove(0);

    println!(
        "mailroom-store upsert benchmark: {messages} messages in pages of {PAGE}, SQLite file (WAL), {} remote ids",
        match ids {
            Ids::Spread => "spread",
            Ids::Sequential => "sequential",
        }
    );
    for pass in ["insert", "update"] {
        let mut wall = StdDuration::ZERO;
        let mut cpu = StdDuration::ZERO;
        let io_start = process_io();
        for p in 0..messages / PAGE {
            let page = page(p, ids);
            let (start, cpu_start) = (
                Instant::now(),
                StdDuration::from_secs_f64(process::cpu_seconds(None)),
            );
            store
                .apply_sync_page(SyncPageWrite {
                    account_id: account.id,
                    folder_id: folder.id,
                    page: &page,
                    lease: None,
                })
                .await
                .unwrap();
            wall += start.elapsed();
            cpu += StdDuration::from_secs_f64(process::cpu_seconds(None)).saturating_sub(cpu_start);
        }
        let secs = wall.as_secs_f64();
        println!(
            "  {pass:<6}  {secs:>6.2} s  {:>7.0} messages/s  cpu {:>5.2} s = {:>5.1} µs/message ({:.2} CPUs busy)",
            messages as f64 / secs,
            cpu.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / messages as f64,
            cpu.as_secs_f64() / secs,
        );
        let io = process_io();
        let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / messages as f64;
        println!(
            "          written {:>5.0} B/message in {:.1} calls ({:.0} B to the disk), read {:>5.0} B/message in {:.1} calls",
            per(io.wchar, io_start.wchar),
            per(io.syscw, io_start.syscw),
            per(io.write_bytes, io_start.write_bytes),
            per(io.rchar, io_start.rchar),
            per(io.syscr, io_start.syscr),
        );
    }
    let rows = store
        .count_messages(&MessageQuery {
            account_id: Some(account.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows, messages as u64, "upserts must not duplicate");
    println!("  rows after two passes: {rows}");
    println!(
        "  peak RSS: {:.0} MiB (the store, plus one generated page of records)",
        process::status_kib(None, "VmHWM:").map_or(f64::NAN, |kib| kib as f64 / 1024.0)
    );
}
