//! Serves 1000-message pages from a 100,000-message folder over real HTTP
//! on loopback and prints latency figures and peak RSS.
//!
//! Run with `cargo bench -p mailroom-sim --bench pages`. `cpu/page` is the
//! CPU time of the whole process (server and client) per page: on a busy
//! 2-core machine it is steadier than wall-clock latency.

use std::time::{Duration, Instant};

use mailroom_sim::process;
use mailroom_sim::{Faults, MailboxSpec, SimConfig, Simulator};

/// This process's peak RSS as `/proc` prints it.
fn vm_hwm_text() -> String {
    process::status_kib(None, "VmHWM:").map_or_else(|| "n/a".to_owned(), |kib| format!("{kib} kB"))
}

const MESSAGES: usize = 100_000;
const ROUNDS: usize = 60;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn measure(
    http: &reqwest::Client,
    token: &str,
    label: &str,
    urls: &[String],
    prefer: Option<&str>,
) {
    let mut times = Vec::with_capacity(urls.len());
    let mut bytes = 0usize;
    let mut items = 0usize;
    let cpu = Duration::from_secs_f64(process::cpu_seconds(None));
    for url in urls {
        let start = Instant::now();
        let mut rb = http.get(url).bearer_auth(token);
        if let Some(p) = prefer {
            rb = rb.header("Prefer", p);
        }
        let resp = rb.send().await.expect("request");
        assert_eq!(resp.status().as_u16(), 200, "{url}");
        let body = resp.bytes().await.expect("body");
        times.push(start.elapsed());
        bytes += body.len();
        if items == 0 {
            // Check the first page's item count (outside the timing).
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            items = v["value"].as_array().map_or(0, Vec::len);
        }
    }
    let cpu = Duration::from_secs_f64(process::cpu_seconds(None)).saturating_sub(cpu);
    times.sort_unstable();
    let n = urls.len();
    println!(
        "{label:<44} pages={n:<3} items/page={:<5} median={:>7.2} ms  p95={:>7.2} ms  max={:>7.2} ms  cpu/page={:>6.2} ms  avg size={:.2} MB",
        items,
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.95).as_secs_f64() * 1e3,
        times[n - 1].as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e3 / n as f64,
        bytes as f64 / n as f64 / 1e6,
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let started = Instant::now();
        let sim = Simulator::start(SimConfig {
            mailboxes: vec![MailboxSpec::new("bench@mailroom.test", MESSAGES).all_in("inbox")],
            faults: Faults::none(),
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        println!("mailroom-sim pages bench: {MESSAGES} messages in one folder, generated in {:.0} ms, VmHWM after generation {}", started.elapsed().as_secs_f64() * 1e3, vm_hwm_text());
        let token = sim
            .issue_tokens("bench@mailroom.test", "bench", &["Mail.Read"])
            .expect("token")
            .access_token;
        // Our reqwest has no rustls crypto provider of its own: use ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let g = sim.graph_url();
        let skips: Vec<usize> = (0..ROUNDS).map(|i| (i * 37 % 100) * 1000).collect();
        // Warm-up.
        for s in skips.iter().take(3) {
            let _ = http
                .get(format!("{g}/me/mailFolders/inbox/messages?$top=1000&$skip={s}"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("warm-up")
                .bytes()
                .await;
        }
        let full: Vec<String> = skips.iter().map(|s| format!("{g}/me/mailFolders/inbox/messages?$top=1000&$skip={s}")).collect();
        measure(&http, &token, "full messages, $top=1000 (html bodies)", &full, None).await;
        let select: Vec<String> = skips
            .iter()
            .map(|s| format!("{g}/me/mailFolders/inbox/messages?$top=1000&$skip={s}&$select=id,subject,from,receivedDateTime,isRead,hasAttachments,bodyPreview"))
            .collect();
        measure(&http, &token, "sync fields, $top=1000 $select=7 fields", &select, None).await;
        let filtered: Vec<String> = skips
            .iter()
            .take(20)
            .map(|s| format!("{g}/me/mailFolders/inbox/messages?$top=1000&$skip={}&$filter=receivedDateTime%20ge%202020-01-01T00:00:00Z&$select=id,subject", s / 4))
            .collect();
        measure(&http, &token, "$filter receivedDateTime ge + $select=2", &filtered, None).await;
        // A whole delta round of 1000-message pages.
        let mut delta = Vec::new();
        let mut next = Some(format!("{g}/me/mailFolders/inbox/messages/delta?$select=id,subject,receivedDateTime,isRead"));
        let round = Instant::now();
        while let Some(url) = next.take() {
            delta.push(url.clone());
            let v: serde_json::Value = http
                .get(&url)
                .bearer_auth(&token)
                .header("Prefer", "odata.maxpagesize=1000")
                .send()
                .await
                .expect("delta")
                .json()
                .await
                .expect("json");
            next = v["@odata.nextLink"].as_str().map(str::to_owned);
        }
        println!("delta round over {MESSAGES} messages: {} pages in {:.0} ms", delta.len(), round.elapsed().as_secs_f64() * 1e3);
        let sample: Vec<String> = delta.into_iter().step_by(2).take(ROUNDS).collect();
        measure(&http, &token, "delta pages, maxpagesize=1000, $select=4", &sample, Some("odata.maxpagesize=1000")).await;
        println!("peak RSS (VmHWM): {}", vm_hwm_text());
        sim.shutdown().await;
    });
}
