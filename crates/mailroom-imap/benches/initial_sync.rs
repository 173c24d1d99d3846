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
use mailroom_sim::process;

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

/// The TLS version and cipher Dovecot logged for the sessions that logged in after
/// `lines_before` log lines (the test config logs them: `tls=<…>`).
fn tls_used(dovecot: &Dovecot, lines_before: usize) -> String {
    let mut seen: Vec<String> = dovecot
        .log()
        .lines()
        .skip(lines_before)
        .filter(|l| l.contains("Login: user=<bench>"))
        .filter_map(|l| {
            let rest = l.split_once("tls=<")?.1;
            Some(rest.split_once('>').map_or(rest, |(t, _)| t).to_owned())
        })
        .collect();
    seen.dedup();
    seen.join("; ")
}

#[derive(Debug, Clone, Copy)]
struct Run {
    wall: f64,
    cpu: f64,
    /// Dovecot's CPU seconds (all its processes).
    server_cpu: f64,
    bytes: u64,
}

/// CPU seconds (user + system, with reaped children) of a Dovecot's master process
/// and every process under it: its share of the machine, session and TLS proxy
/// processes included once they have exited.
struct DovecotCpu {
    master: u32,
}

/// (pid, ppid, comm, utime + stime, cutime + cstime in seconds) of every process.
fn processes() -> Vec<(u32, u32, String, f64, f64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c).to_owned();
        let f: Vec<&str> = rest.split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        out.push((
            pid,
            n(1) as u32,
            comm,
            (n(11) + n(12)) / 100.0,
            (n(13) + n(14)) / 100.0,
        ));
    }
    out
}

impl DovecotCpu {
    fn of(dovecot: &Dovecot) -> Option<DovecotCpu> {
        let pid = std::fs::read_to_string(dovecot.dir().join("run").join("master.pid")).ok()?;
        Some(DovecotCpu {
            master: pid.trim().parse().ok()?,
        })
    }

    /// The master and its descendants: (pids, CPU seconds).
    fn tree(&self) -> (Vec<u32>, f64) {
        let all = processes();
        let mut pids = vec![self.master];
        let mut cpu = 0.0;
        let mut i = 0;
        while i < pids.len() {
            let parent = pids[i];
            for p in &all {
                if p.0 == parent {
                    cpu += p.3 + p.4;
                }
                if p.1 == parent && !pids.contains(&p.0) {
                    pids.push(p.0);
                }
            }
            i += 1;
        }
        (pids, cpu)
    }

    /// CPU seconds so far, once the processes of ended sessions are reaped (at most 2 s
    /// of waiting for the count of processes to fall back to `processes`).
    fn seconds(&self, processes: usize) -> (usize, f64) {
        let deadline = Instant::now() + std::time::Duration::from_secs(2);
        loop {
            let (pids, cpu) = self.tree();
            if pids.len() <= processes || Instant::now() > deadline {
                return (pids.len(), cpu);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// `MAILROOM_BENCH_PROFILE=1`: samples, every millisecond, the on-CPU time
/// (`/proc/…/schedstat`) of the client and of the Dovecot session's `imap` and
/// `imap-login` (TLS) processes, to tell whether client and server ever work at once.
struct Sampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<[u64; 4]>>,
}

/// Nanoseconds on CPU of a task, 0 once it is gone.
fn on_cpu(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

impl Sampler {
    /// `client`: the schedstat path of the client's thread or process.
    /// `before`: Dovecot's processes before the client connected (the session's are
    /// the new ones).
    fn start(dovecot: &DovecotCpu, before: Vec<u32>, client: String) -> Sampler {
        let master = dovecot.master;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut imap: Option<String> = None;
            let mut login: Option<String> = None;
            // Gone processes keep their last figure.
            let (mut last_client, mut last_imap, mut last_login) = (0u64, 0u64, 0u64);
            let mut samples = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if imap.is_none() || login.is_none() {
                    for p in processes() {
                        if p.1 == master && !before.contains(&p.0) {
                            let path = format!("/proc/{}/schedstat", p.0);
                            match p.2.as_str() {
                                "imap" if imap.is_none() => imap = Some(path),
                                "imap-login" if login.is_none() => login = Some(path),
                                _ => {}
                            }
                        }
                    }
                }
                let read = |p: &Option<String>, last: &mut u64| {
                    if let Some(p) = p {
                        let v = on_cpu(p);
                        if v > 0 {
                            *last = v;
                        }
                    }
                    *last
                };
                samples.push([
                    t0.elapsed().as_nanos() as u64,
                    read(&Some(client.clone()), &mut last_client),
                    read(&imap, &mut last_imap),
                    read(&login, &mut last_login),
                ]);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            samples
        });
        Sampler { stop, thread }
    }

    /// Prints where the wall time went.
    fn report(self, what: &str) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let samples = self.thread.join().unwrap_or_default();
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            return;
        };
        let (mut both, mut client, mut server, mut neither) = (0u64, 0u64, 0u64, 0u64);
        for w in samples.windows(2) {
            let dt = w[1][0] - w[0][0];
            let c = w[1][1].saturating_sub(w[0][1]) as f64 / dt as f64;
            let s = (w[1][2] + w[1][3]).saturating_sub(w[0][2] + w[0][3]) as f64 / dt as f64;
            match (c > 0.3, s > 0.3) {
                (true, true) => both += dt,
                (true, false) => client += dt,
                (false, true) => server += dt,
                (false, false) => neither += dt,
            }
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        eprintln!(
            "  profile {what}: wall {:.0} ms; on CPU: client {:.0} ms, dovecot imap {:.0} ms, \
             imap-login (TLS) {:.0} ms; time with both busy {:.0} ms, client only {:.0} ms, \
             dovecot only {:.0} ms, neither {:.0} ms",
            ms(last[0] - first[0]),
            ms(last[1] - first[1]),
            ms(last[2] - first[2]),
            ms(last[3] - first[3]),
            ms(both),
            ms(client),
            ms(server),
            ms(neither),
        );
    }
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
    let server = DovecotCpu::of(dovecot).expect("dovecot's master pid");
    let (processes, server_before) = server.seconds(usize::MAX);
    let sampler = profiling().then(|| {
        let pid = std::process::id();
        let before = server.tree().0;
        Sampler::start(&server, before, format!("/proc/{pid}/task/{pid}/schedstat"))
    });
    reset_peak();
    let cpu_before = process::cpu_seconds(None);
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
    let cpu = process::cpu_seconds(None) - cpu_before;
    assert_eq!(upserts, count, "every message once");
    assert_eq!(warnings, 0);
    let peak = process::status_kib(None, "VmHWM:").unwrap_or(0) as f64 / 1024.0;
    let bytes = bytes_sent(dovecot, lines_before, 1);
    if let Some(sampler) = sampler {
        sampler.report(if whole {
            "mailroom (whole)"
        } else {
            "mailroom"
        });
    }
    let server_cpu = server.seconds(processes).1 - server_before;
    (
        Run {
            wall,
            cpu,
            server_cpu,
            bytes,
        },
        peak,
    )
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
    let server = DovecotCpu::of(dovecot).expect("dovecot's master pid");
    let (processes, server_before) = server.seconds(usize::MAX);
    let pids_before = server.tree().0;
    let children_before = process::waited_children_cpu_seconds();
    let started = Instant::now();
    let child = Command::new("mbsync")
        .arg("--quiet")
        .arg("--config")
        .arg(&config)
        .arg("bench")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run mbsync");
    let sampler = profiling().then(|| {
        Sampler::start(
            &server,
            pids_before,
            format!("/proc/{}/schedstat", child.id()),
        )
    });
    let out = child.wait_with_output().expect("wait for mbsync");
    let wall = started.elapsed().as_secs_f64();
    let cpu = process::waited_children_cpu_seconds() - children_before;
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
    if let Some(sampler) = sampler {
        sampler.report("mbsync");
    }
    let server_cpu = server.seconds(processes).1 - server_before;
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        wall,
        cpu,
        server_cpu,
        bytes,
    }
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

fn profiling() -> bool {
    std::env::var("MAILROOM_BENCH_PROFILE").is_ok_and(|v| v == "1")
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
    let mut tls: Vec<(Tool, String)> = Vec::new();
    let mut peaks = Vec::new();
    for round in 0..rounds {
        // Rotate the order so no tool always runs first (cold caches) or last.
        let mut order = tools.clone();
        order.rotate_left(round % tools.len());
        for tool in order {
            let lines_before = dovecot.log().lines().count();
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
                "round {}: {:<45} {:>6.2} s, {:>6.2} s CPU, dovecot {:>6.2} s CPU, {:>6.1} MB read",
                round + 1,
                tool.name(),
                run.wall,
                run.cpu,
                run.server_cpu,
                run.bytes as f64 / 1e6
            );
            runs.push((tool, run));
            if !tls.iter().any(|(t, _)| *t == tool) {
                tls.push((tool, tls_used(&dovecot, lines_before)));
            }
        }
    }

    println!(
        "\n{count} messages, {rounds} rounds, medians; load average after: {}\n",
        load_average()
    );
    println!(
        "| client | messages/s | client CPU per message | Dovecot CPU per message | \
         client + Dovecot CPU per message | bytes read | bytes per message |"
    );
    println!("|---|---|---|---|---|---|---|");
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
        let server_cpu = of(|r| r.server_cpu);
        let total_cpu = of(|r| r.cpu + r.server_cpu);
        let bytes = of(|r| r.bytes as f64);
        let per = |seconds: f64| seconds * 1e6 / count as f64;
        println!(
            "| {} | {rate:.0} | {:.0} µs | {:.0} µs | {:.0} µs | {:.1} MB | {:.0} B |",
            tool.name(),
            per(cpu),
            per(server_cpu),
            per(total_cpu),
            bytes / 1e6,
            bytes / count as f64,
        );
        figures.push((tool, rate, bytes));
    }
    for (tool, tls) in &tls {
        println!("TLS of {} (Dovecot's log): {tls}", tool.name());
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
    if std::env::var("MAILROOM_BENCH_ITEMS").is_ok_and(|v| v == "1") {
        fetch_item_costs(&dovecot, &mut admin, count).await;
    }
    drop(admin);
}

/// `MAILROOM_BENCH_ITEMS=1`: Dovecot's CPU per message for FETCH item lists over the
/// whole folder, and per SELECT, on the plain-text admin session (no TLS), each
/// measured twice (the second with Dovecot's cache as the first left it).
async fn fetch_item_costs(
    dovecot: &Dovecot,
    admin: &mut mailroom_imap::testing::Admin,
    count: usize,
) {
    let server = DovecotCpu::of(dovecot).expect("dovecot's master pid");
    let variants = [
        ("flags, dates, size", "(UID FLAGS INTERNALDATE RFC822.SIZE)"),
        (
            "+ BODYSTRUCTURE",
            "(UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE)",
        ),
        (
            "+ BODY.PEEK[HEADER]",
            "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER])",
        ),
        (
            "+ BODY.PEEK[HEADER.FIELDS (the record's)]",
            "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO CC SUBJECT \
             DATE MESSAGE-ID IN-REPLY-TO REFERENCES MIME-VERSION CONTENT-TYPE)])",
        ),
        (
            "+ BODY.PEEK[1]<0.4096>",
            "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[1]<0.4096>)",
        ),
        (
            "partial fetch, first round",
            "(UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE BODY.PEEK[HEADER] \
             BODY.PEEK[1]<0.4096>)",
        ),
        (
            "whole messages, BODY.PEEK[]",
            "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])",
        ),
    ];
    println!("\nDovecot CPU per message by FETCH items (1:{count}, plain IMAP, cold / warm):");
    for (name, items) in variants {
        let mut figures = Vec::new();
        for _ in 0..2 {
            let (_, before) = server.tree();
            let result = admin.command(&format!("FETCH 1:{count} {items}")).await;
            let (_, after) = server.tree();
            figures.push(match result {
                Ok(()) => format!("{:.1} µs", (after - before) * 1e6 / count as f64),
                Err(e) => format!("failed: {e}"),
            });
        }
        println!("- {name}: {}", figures.join(" / "));
    }
    // The first round of a sync run's pages (500), with and without a SELECT and a
    // `UID FETCH last` before each page.
    let items = "(UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE BODY.PEEK[HEADER] \
                 BODY.PEEK[1]<0.4096>)";
    for reselect in [true, false, true, false] {
        let (_, before) = server.tree();
        for start in (1..=count).step_by(500) {
            if reselect {
                admin
                    .command("SELECT INBOX (CONDSTORE)")
                    .await
                    .expect("select");
                if start > 1 {
                    admin
                        .command(&format!("FETCH {} (UID)", start - 1))
                        .await
                        .expect("fetch");
                }
            }
            let end = (start + 499).min(count);
            admin
                .command(&format!("FETCH {start}:{end} {items}"))
                .await
                .expect("fetch");
        }
        let (_, after) = server.tree();
        println!(
            "- pages of 500, first round{}: {:.1} µs per message",
            if reselect {
                ", SELECT and a one-message FETCH before each"
            } else {
                " only"
            },
            (after - before) * 1e6 / count as f64
        );
    }
    for select in ["SELECT INBOX", "SELECT INBOX (CONDSTORE)"] {
        let (_, before) = server.tree();
        for _ in 0..10 {
            admin.command(select).await.expect("select");
        }
        let (_, after) = server.tree();
        println!(
            "- {select} ({count} messages): {:.1} ms each",
            (after - before) * 100.0
        );
    }
}
