//! The `mailroom-sim` binary: runs the simulator until Ctrl-C or SIGTERM.
//!
//! On start it prints, one per line and easy to parse:
//! `listen: 127.0.0.1:PORT` (the socket; the URLs may name a `--public-url`),
//! `authority: URL`, `graph: URL`, `introspection: URL`, `verification: URL`,
//! `control: URL`, with `--tls` `ca: PATH` (the PEM file of the CA to
//! trust), then `mailbox: ADDRESS` for each mailbox, then `ready`.

use std::io::Write as _;
use std::time::Duration;

use clap::Parser;
use mailroom_sim::{Faults, MailboxSpec, RetryAfter, SimConfig, Simulator, Tls};

/// mimalloc instead of glibc's malloc, as the `mailroom` binary. Under glibc the
/// worker threads' arenas grew and shrank a page at a time as each delta page was built
/// and freed: about one `mprotect` per message served, and a fifth of the simulator's
/// CPU (docs/benchmarks.md, round 9).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Local Microsoft identity platform + Graph v1.0 mail simulator.
#[derive(Debug, Parser)]
#[command(name = "mailroom-sim", version)]
struct Args {
    /// Port on 127.0.0.1 (0 = any free port, printed at start).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Number of mailboxes (user1@mailroom.test, user2@…; the first is
    /// demo@mailroom.test).
    #[arg(long, default_value_t = 1)]
    mailboxes: usize,
    /// Generated messages per mailbox.
    #[arg(long, default_value_t = 50)]
    messages: usize,
    /// Put every message in this folder (well-known name or path).
    #[arg(long)]
    all_in: Option<String>,
    /// Percentage of messages that carry attachments (0–100).
    #[arg(long, default_value_t = mailroom_sim::DEFAULT_ATTACHMENT_PERCENT)]
    attachment_percent: u8,
    /// Seed of all random choices.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    access_token_lifetime: u64,
    /// Refresh token inactivity lifetime in seconds.
    #[arg(long, default_value_t = 90 * 24 * 3600)]
    refresh_token_lifetime: u64,
    /// Reject used refresh tokens (AADSTS70000).
    #[arg(long)]
    strict_rotation: bool,
    /// Probability (0–1) of a random 429/500/503/504 on Graph requests.
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Retry-After of injected errors: seconds (`2`, `0.5`), an HTTP date
    /// that many seconds ahead (`date:2`) or `none`.
    #[arg(long, default_value = "1")]
    retry_after: String,
    /// Added latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Per-mailbox concurrency limit (0 = none).
    #[arg(long, default_value_t = 4)]
    concurrency_limit: u32,
    /// Do not approve device codes automatically (use the verification page
    /// or POST /_sim/device/approve).
    #[arg(long)]
    no_auto_approve: bool,
    /// Approve a pending device code on this (well-paced) token poll.
    #[arg(long, default_value_t = 2)]
    auto_approve_after: u32,
    /// Polling `interval` of device codes, in seconds (0 lets clients poll
    /// at once: handy for fast end-to-end tests).
    #[arg(long, default_value_t = 5)]
    device_code_interval: u64,
    /// `expires_in` of device codes, in seconds.
    #[arg(long, default_value_t = 900)]
    device_code_lifetime: u64,
    /// Register a confidential client as CLIENT_ID=SECRET (repeatable).
    #[arg(long = "confidential-client", value_name = "CLIENT_ID=SECRET")]
    confidential_clients: Vec<String>,
    /// Accept this domain as a tenant, besides the mailboxes' domains
    /// (repeatable; other domains get AADSTS90002).
    #[arg(long = "tenant-domain", value_name = "DOMAIN")]
    tenant_domains: Vec<String>,
    /// Serve HTTPS with a certificate made at start; the PEM file of the CA
    /// that signed it is announced as `ca: PATH`.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    tls: bool,
    /// Serve HTTPS with this certificate chain (PEM; with --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// The base URL clients see (scheme, host, port), used in every
    /// absolute URL the simulator generates.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
}

fn retry_after(s: &str) -> Result<RetryAfter, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(RetryAfter::None);
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(RetryAfter::Seconds(n));
    }
    if let Some(n) = s.strip_prefix("date:").and_then(|n| n.parse::<u64>().ok()) {
        return Ok(RetryAfter::HttpDate(n));
    }
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f >= 0.0 => Ok(RetryAfter::Fractional(f)),
        _ => Err(format!(
            "invalid --retry-after {s:?}: use seconds (2, 0.5) or none"
        )),
    }
}

fn config(args: &Args) -> Result<SimConfig, String> {
    if !(0.0..=1.0).contains(&args.fault_rate) {
        return Err(format!(
            "--fault-rate must be between 0 and 1, got {}",
            args.fault_rate
        ));
    }
    let mailboxes = (0..args.mailboxes)
        .map(|i| {
            let spec = if i == 0 {
                MailboxSpec {
                    messages: args.messages,
                    ..MailboxSpec::default()
                }
            } else {
                MailboxSpec::new(format!("user{i}@mailroom.test"), args.messages)
            };
            let spec = spec.attachment_percent(args.attachment_percent);
            match &args.all_in {
                Some(f) => spec.all_in(f.clone()),
                None => spec,
            }
        })
        .collect();
    let mut cfg = SimConfig {
        port: args.port,
        seed: args.seed,
        mailboxes,
        access_token_lifetime: Duration::from_secs(args.access_token_lifetime),
        refresh_token_lifetime: Duration::from_secs(args.refresh_token_lifetime),
        strict_refresh_rotation: args.strict_rotation,
        auto_approve_after_polls: if args.no_auto_approve {
            None
        } else {
            Some(args.auto_approve_after)
        },
        device_code_interval: Duration::from_secs(args.device_code_interval),
        device_code_lifetime: Duration::from_secs(args.device_code_lifetime),
        tenant_domains: args.tenant_domains.clone(),
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(Tls::Files {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ if args.tls => Some(Tls::SelfSigned),
            _ => None,
        },
        public_url: args.public_url.clone(),
        faults: Faults {
            error_rate: args.fault_rate,
            retry_after: retry_after(&args.retry_after)?,
            latency: Duration::from_millis(args.latency_ms),
            mailbox_concurrency_limit: (args.concurrency_limit > 0)
                .then_some(args.concurrency_limit),
            ..Faults::default()
        },
        ..SimConfig::default()
    };
    for pair in &args.confidential_clients {
        let (id, secret) = pair
            .split_once('=')
            .ok_or_else(|| format!("--confidential-client wants CLIENT_ID=SECRET, got {pair:?}"))?;
        cfg = cfg.confidential_client(id, secret);
    }
    Ok(cfg)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let cfg = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mailroom-sim: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let sim = match Simulator::start(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mailroom-sim: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listen: {}", sim.addr());
    let _ = writeln!(out, "authority: {}", sim.base_url());
    let _ = writeln!(out, "graph: {}", sim.graph_url());
    let _ = writeln!(out, "introspection: {}", sim.introspection_url());
    let _ = writeln!(out, "verification: {}", sim.verification_uri());
    let _ = writeln!(out, "control: {}/_sim", sim.base_url());
    if let Some(ca) = sim.ca_file() {
        let _ = writeln!(out, "ca: {}", ca.display());
    }
    for m in sim.mailboxes() {
        let _ = writeln!(out, "mailbox: {m}");
    }
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    drop(out);
    shutdown_signal().await;
    sim.shutdown().await;
    std::process::ExitCode::SUCCESS
}
