//! Initial sync of 10,000 realistic messages (`testing::sample_message`, ~15 KB each)
//! from a private Dovecot over implicit TLS, side by side with mbsync (isync) syncing
//! the same mailbox to a Maildir, in the same run:
//!
//! - `mailroom`: `sync_folder` pages (500 messages) until `complete`, records read in
//!   part (header, BODYSTRUCTURE, the first bytes of the text part);
//! - `mailroom (whole)`: the same with `ImapOptions::whole_messages(true)`, the path
//!   that downloads every message;
//! - `mbsync`: `mbsync` pulling INBOX into a fresh Maildir (whole messages), with a
//!   fresh sync state each round, `FSync no` and the Maildir on tmpfs (`/dev/shm`):
//!   Mailroom's records stay in memory here, so neither tool waits for the disk
//!   (with fsync, mbsync writes ~100 messages/s on this machine).
//!
//! The tools alternate (the order rotates each round); the table gives medians over the
//! rounds of messages/s, client CPU per message (this process for Mailroom, the waited
//! child for mbsync) and the bytes the client read (Dovecot's own `out=` count at
//! logout, the same meter for every tool).
//!
//! `cargo bench -p mailroom-imap --bench initial_sync` (or `cargo xtask bench imap`,
//! which installs isync first). `MAILROOM_BENCH_MESSAGES` changes the count,
//! `MAILROOM_BENCH_ROUNDS` the rounds (default 3). Without `mbsync` on the PATH its
//! rows are left out, with a note.

use std::path::Path;
use std::process::Command;
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

/// (own, waited children) user + system CPU seconds of this process.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // After "pid (comm)": state is field 0; utime 11, stime 12, cutime 13, cstime 14, in
    // clock ticks (100/s).
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        (ticks(11) + ticks(12)) / 100.0,
        (ticks(13) + ticks(14)) / 100.0,
    )
}

fn reset_peak() {
    // Linux: writing 5 resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Bytes Dovecot sent to the sessions that logged out after `lines_before` log lines.
fn bytes_sent(dovecot: &Dovecot, lines_before: usize, sessions: usize) -> u64 {
    let log = dovecot.log_until(|log| {
        log.lines()
            .skip(lines_before)
            .filter(|l| l.contains("Disconnected"))
            .count()
            >= sessions
    });
    log.lines()
        .skip(lines_before)
        .filter(|l| l.contains("Disconnected"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("out="))
                .and_then(|v| v.trim_end_matches(',').parse::<u64>().ok())
        })
        .sum()
}

#[derive(Debug, Clone, Copy)]
struct Run {
    wall: f64,
    cpu: f64,
    bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Mailroom,
    MailroomWhole,
    Mbsync,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Mailroom => "mailroom (partial fetch)",
            Tool::MailroomWhole => "mailroom (whole messages)",
            Tool::Mbsync => "mbsync (isync, whole messages to a Maildir)",
        }
    }
}

async fn mailroom(dovecot: &Dovecot, count: usize, whole: bool) -> (Run, f64) {
    let options = ImapOptions::default()
        .ca_file(dovecot.ca_file())
        .whole_messages(whole);
    let connector = ImapConnector::new(
        dovecot.password_credentials("bench", ImapTls::Implicit),
        "bench@example.test",
        options,
    )
    .expect("connector");
    let lines_before = dovecot.log().lines().count();
    reset_peak();
    let (cpu_before, _) = cpu_seconds();
    let started = Instant::now();
    let mut cursor = None;
    let (mut upserts, mut warnings) = (0usize, 0usize);
    loop {
        let page = connector
            .sync_folder(&FolderRef::INBOX, cursor)
            .await
            .expect("sync page");
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
    connector.disconnect().await.expect("disconnect");
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds().0 - cpu_before;
    assert_eq!(upserts, count, "every message once");
    assert_eq!(warnings, 0);
    let peak = status_kb("VmHWM:") as f64 / 1024.0;
    let bytes = bytes_sent(dovecot, lines_before, 1);
    (Run { wall, cpu, bytes }, peak)
}

fn mbsync(dovecot: &Dovecot, count: usize, round: usize) -> Run {
    // The Maildir goes to tmpfs where there is one, so mbsync's figure is not the
    // disk's (Mailroom's records stay in memory here).
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() { shm } else { dovecot.dir() };
    let dir = base.join(format!(
        "mailroom-bench-mbsync-{}-{round}",
        std::process::id()
    ));
    let maildir = dir.join("maildir");
    std::fs::create_dir_all(&maildir).expect("mbsync dir");
    let config = dir.join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "FSync no\n\nIMAPAccount bench\nHost {host}\nPort {port}\nUser bench\nPass {password}\n\
             SSLType IMAPS\nCertificateFile {ca}\n\n\
             IMAPStore remote\nAccount bench\n\n\
             MaildirStore local\nPath {maildir}/\nInbox {maildir}/INBOX\n\n\
             Channel bench\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\n\
             Sync Pull\nSyncState *\n",
            host = dovecot.host(),
            port = dovecot.imaps_port(),
            password = Dovecot::PASSWORD,
            ca = dovecot.ca_file().display(),
            maildir = maildir.display(),
        ),
    )
    .expect("mbsyncrc");
    let lines_before = dovecot.log().lines().count();
    let (_, children_before) = cpu_seconds();
    let started = Instant::now();
    let out = Command::new("mbsync")
        .arg("--quiet")
        .arg("--config")
        .arg(&config)
        .arg("bench")
        .output()
        .expect("run mbsync");
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds().1 - children_before;
    assert!(
        out.status.success(),
        "mbsync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files =
        |sub: &str| std::fs::read_dir(maildir.join("INBOX").join(sub)).map_or(0, |d| d.count());
    assert_eq!(
        files("cur") + files("new"),
        count,
        "mbsync got every message"
    );
    let bytes = bytes_sent(dovecot, lines_before, 1);
    let _ = std::fs::remove_dir_all(&dir);
    Run { wall, cpu, bytes }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn have_mbsync() -> bool {
    Command::new("mbsync")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let count = env("MAILROOM_BENCH_MESSAGES", 10_000);
    let rounds = env("MAILROOM_BENCH_ROUNDS", 3).max(1);
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
    let mut tools = vec![Tool::Mailroom, Tool::MailroomWhole];
    if have_mbsync() {
        tools.push(Tool::Mbsync);
    } else {
        println!("mbsync is not installed (apt-get install isync): its rows are left out");
    }
    println!("load average before: {}", load_average());

    let mut runs: Vec<(Tool, Run)> = Vec::new();
    let mut peaks = Vec::new();
    for round in 0..rounds {
        // Rotate the order so no tool always runs first (cold caches) or last.
        let mut order = tools.clone();
        order.rotate_left(round % tools.len());
        for tool in order {
            let run = match tool {
                Tool::Mailroom | Tool::MailroomWhole => {
                    let (run, peak) = mailroom(&dovecot, count, tool == Tool::MailroomWhole).await;
                    if tool == Tool::Mailroom {
                        peaks.push(peak);
                    }
                    run
                }
                Tool::Mbsync => mbsync(&dovecot, count, round),
            };
            eprintln!(
                "round {}: {:<45} {:>6.2} s, {:>6.2} s CPU, {:>6.1} MB read",
                round + 1,
                tool.name(),
                run.wall,
                run.cpu,
                run.bytes as f64 / 1e6
            );
            runs.push((tool, run));
        }
    }

    println!(
        "\n{count} messages, {rounds} rounds, medians; load average after: {}\n",
        load_average()
    );
    println!("| client | messages/s | client CPU per message | bytes read | bytes per message |");
    println!("|---|---|---|---|---|");
    let mut figures = Vec::new();
    for &tool in &tools {
        let of = |f: fn(&Run) -> f64| {
            median(
                runs.iter()
                    .filter(|(t, _)| *t == tool)
                    .map(|(_, r)| f(r))
                    .collect(),
            )
        };
        // Median of per-round rates (1 / wall), scaled by the count.
        let rate = of(|r| 1.0 / r.wall) * count as f64;
        let cpu = of(|r| r.cpu);
        let bytes = of(|r| r.bytes as f64);
        println!(
            "| {} | {rate:.0} | {:.0} µs | {:.1} MB | {:.0} B |",
            tool.name(),
            cpu * 1e6 / count as f64,
            bytes / 1e6,
            bytes / count as f64,
        );
        figures.push((tool, rate, bytes));
    }
    println!(
        "\nmailroom (partial fetch) peak RSS (VmHWM), median: {:.1} MB",
        median(peaks)
    );
    let find = |tool| figures.iter().find(|f| f.0 == tool).copied();
    if let (Some(m), Some(r)) = (find(Tool::Mailroom), find(Tool::Mbsync)) {
        println!(
            "mailroom / mbsync: {:.2}× the messages/s, {:.0} % of the bytes",
            m.1 / r.1,
            m.2 * 100.0 / r.2
        );
    }
    if let (Some(m), Some(w)) = (find(Tool::Mailroom), find(Tool::MailroomWhole)) {
        println!(
            "partial / whole: {:.2}× the messages/s, {:.0} % of the bytes",
            m.1 / w.1,
            m.2 * 100.0 / w.2
        );
    }
    drop(admin);
}
