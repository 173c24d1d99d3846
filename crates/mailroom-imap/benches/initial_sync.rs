//! Initial sync of 10,000 realistic messages from a private Dovecot, through
//! `sync_folder` pages until `complete`, over implicit TLS.
//!
//! `cargo bench -p mailroom-imap --bench initial_sync`
//! (`MAILROOM_BENCH_MESSAGES` changes the count.)

use std::time::Instant;

use mailroom_core::{Change, Connector, FolderRef, ImapTls};
use mailroom_imap::testing::Dovecot;
use mailroom_imap::{ImapConnector, ImapOptions};

const SENTENCES: &[&str] = &[
    "Please find the quarterly figures attached, as discussed in Monday's meeting.",
    "Merci pour votre retour rapide, je vous envoie la version corrigée demain.",
    "Könnten Sie bitte die Rechnung Nr. 4711 noch einmal prüfen?",
    "会議の資料を添付しましたので、ご確認ください。",
    "The deployment window moved to Thursday 22:00 UTC; rollback plan unchanged.",
    "Let me know if the new onboarding checklist works for your team.",
    "¿Podemos mover la llamada al viernes por la mañana?",
    "Reminder: expense reports are due by the end of the month.",
];

fn message(i: usize) -> Vec<u8> {
    let mut body = String::new();
    let lines = 8 + (i * 7919) % 60;
    for l in 0..lines {
        body.push_str(SENTENCES[(i + l * 3) % SENTENCES.len()]);
        body.push_str("\r\n");
        if l % 5 == 4 {
            body.push_str("\r\n");
        }
    }
    let subject = match i % 4 {
        0 => format!("Quarterly report #{i}"),
        1 => format!(
            "=?UTF-8?B?{}?=",
            b64(format!("Résumé n°{i} — à relire").as_bytes())
        ),
        2 => format!("Re: Invoice {i}"),
        _ => format!("=?ISO-8859-1?Q?R=E9union_{i}?="),
    };
    let header = format!(
        "From: Sender {n} <sender{n}@example.com>\r\nTo: Bob <bob@example.test>\r\n\
         Cc: team{m}@example.test\r\nSubject: {subject}\r\n\
         Date: Mon, 20 Jan 2025 {h:02}:{min:02}:00 +0100\r\nMessage-ID: <bench-{i}@example.com>\r\n\
         MIME-Version: 1.0\r\n",
        n = i % 97,
        m = i % 7,
        h = i % 24,
        min = i % 60,
    );
    let html = format!(
        "<html><body><p>{}</p></body></html>",
        body.replace("\r\n", "<br>")
    );
    let mut out = header;
    if i.is_multiple_of(10) {
        // One in ten carries a PDF-sized attachment (~40 KB).
        let pdf: Vec<u8> = (0..30_000u32).map(|k| (k * 31 + i as u32) as u8).collect();
        out.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--b{i}\r\n\
             Content-Type: application/pdf; name=\"report-{i}.pdf\"\r\n\
             Content-Disposition: attachment; filename=\"report-{i}.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b{i}--\r\n",
            wrap(&b64(&pdf))
        ));
    } else {
        out.push_str(&format!(
            "Content-Type: multipart/alternative; boundary=\"a{i}\"\r\n\r\n--a{i}\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--a{i}\r\n\
             Content-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--a{i}--\r\n"
        ));
    }
    out.into_bytes()
}

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len() * 4 / 3 + 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn wrap(s: &str) -> String {
    s.as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect::<Vec<_>>()
        .join("\r\n")
}

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
