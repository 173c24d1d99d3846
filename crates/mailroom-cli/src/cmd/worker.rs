//! `mailroom worker`: every account on an interval, until SIGINT or SIGTERM.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::{SecondsFormat, Utc};
use mailroom_core::AccountStatus;
use mailroom_server::ops::{Ops, WorkerHealth};
use mailroom_store::Account;
use mailroom_sync::{AccountReport, Outcome, SyncObserver, WorkerConfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cli::WorkerArgs;
use crate::cmd::shutdown_signal;
use crate::cmd::sync::outcome_text;
use crate::context::Ctx;
use crate::exit::{Code, Failure};
use crate::output;

/// Prints one line per account sync and remembers the worst outcome.
struct SyncLog {
    json: bool,
    started: Mutex<HashMap<i64, Instant>>,
    worst: Mutex<Code>,
    /// Told of every sign of life, for `/readyz`.
    health: Option<WorkerHealth>,
}

impl SyncLog {
    fn beat(&self) {
        if let Some(health) = &self.health {
            health.beat();
        }
    }
}

impl SyncObserver for SyncLog {
    fn worker_polled(&self, _worker_id: &str) {
        self.beat();
    }

    fn page_stored(
        &self,
        _account: &Account,
        _folder: &mailroom_store::FolderRow,
        _stats: &mailroom_store::PageStats,
        _complete: bool,
    ) {
        self.beat();
    }

    fn account_started(&self, account: &Account) {
        self.beat();
        self.started
            .lock()
            .expect("not poisoned")
            .insert(account.id, Instant::now());
    }

    fn account_finished(&self, report: &AccountReport) {
        self.beat();
        let elapsed = self
            .started
            .lock()
            .expect("not poisoned")
            .remove(&report.account_id)
            .map(|t| t.elapsed())
            .unwrap_or_default();
        let code = match &report.outcome {
            Outcome::Synced | Outcome::Interrupted => Code::Success,
            Outcome::ReauthRequired { .. } => Code::Reauth,
            Outcome::Failed { kind, .. } => Code::of_kind(*kind),
        };
        {
            let mut worst = self.worst.lock().expect("not poisoned");
            *worst = worst.worst(code);
        }
        let totals = report.totals();
        let error = match &report.outcome {
            Outcome::ReauthRequired { message, .. } | Outcome::Failed { message, .. } => {
                Some(message.as_str())
            }
            _ => None,
        };
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        if self.json {
            println!(
                "{}",
                json!({
                    "time": now,
                    "account": report.email,
                    "outcome": outcome_text(&report.outcome),
                    "upserted": totals.upserted,
                    "removed": totals.removed + totals.reconciled,
                    "folders": report.folders.len(),
                    "duration_ms": elapsed.as_millis() as u64,
                    "error": error,
                })
            );
        } else {
            println!(
                "{now} {} {}: {} new/updated, {} removed, {} folder(s) in {}{}",
                report.email,
                outcome_text(&report.outcome),
                totals.upserted,
                totals.removed + totals.reconciled,
                report.folders.len(),
                output::duration(elapsed),
                error.map(|e| format!(" — {e}")).unwrap_or_default(),
            );
        }
    }
}

/// What a pass that synced nothing says: that nothing was due, and when the next
/// active account is (its due time, or its server's `Retry-After` if later).
async fn nothing_due(ctx: &Ctx) -> Result<String> {
    let accounts = ctx.store().await?.list_accounts().await?;
    let now = Utc::now();
    let next = accounts
        .iter()
        .filter(|a| a.status == AccountStatus::Active)
        .map(|a| {
            let due = a.next_sync_at.unwrap_or(now);
            (a.throttled_until.map_or(due, |t| t.max(due)), &a.email)
        })
        .min();
    Ok(match next {
        None if accounts.is_empty() => "nothing was due: there are no accounts".to_owned(),
        None => "nothing was due: no account is active".to_owned(),
        Some((at, email)) => format!(
            "nothing was due; the next account, {email}, is due at {} (in {})",
            at.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S"),
            output::duration((at - now).to_std().unwrap_or_default())
        ),
    })
}

pub async fn run(ctx: &Ctx, args: WorkerArgs) -> Result<()> {
    let syncer = ctx.syncer().await?;
    let defaults = WorkerConfig::default();
    let worker_id = args
        .worker_id
        .filter(|w| !w.trim().is_empty())
        .unwrap_or(defaults.worker_id);
    // Stalled: no loop round and no page for longer than a lease lasts (a page
    // renews it) or three poll intervals, whichever is longer.
    let health = args.listen.map(|_| {
        WorkerHealth::new(
            worker_id.clone(),
            args.lease_ttl.max(args.poll_interval * 3) + Duration::from_secs(10),
        )
    });
    let log = Arc::new(SyncLog {
        json: ctx.json(),
        started: Mutex::new(HashMap::new()),
        worst: Mutex::new(Code::Success),
        health: health.clone(),
    });
    let push = match &args.public_url {
        Some(url) if args.listen.is_none() => {
            return Err(Failure::err(
                Code::Usage,
                format!(
                    "--public-url {url} needs --listen: Graph must reach this worker's listener"
                ),
            ));
        }
        Some(url) => {
            let mut config = mailroom_sync::PushConfig::new(url.as_str());
            config.safety_interval = args.push_safety_interval;
            Some(mailroom_sync::Push::new(syncer.clone(), config))
        }
        None => None,
    };
    let config = WorkerConfig {
        worker_id,
        interval: args.interval,
        concurrency: usize::from(args.concurrency),
        lease_ttl: args.lease_ttl,
        poll_interval: args.poll_interval,
        once: args.once,
        observer: log.clone(),
        idle_connections: args.idle_connections,
        idle_safety_interval: args.push_safety_interval,
        idle_renew: defaults.idle_renew,
        push: push.clone(),
    };
    eprintln!(
        "mailroom: worker {} started: every {} ({} at once){}; SIGINT/SIGTERM stops it",
        config.worker_id,
        humantime::format_duration(config.interval),
        config.concurrency,
        if config.once { ", one pass" } else { "" }
    );
    let shutdown = CancellationToken::new();
    let watcher = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let signal = shutdown_signal().await;
            eprintln!(
                "mailroom: {signal}: finishing the current pages and releasing leases (again to quit at once)…"
            );
            shutdown.cancel();
            let _ = shutdown_signal().await;
            eprintln!("mailroom: quitting now; leases expire on their own");
            std::process::exit(Code::Failure as i32);
        })
    };
    let server = match args.listen {
        None => None,
        Some(addr) => {
            let mut ops = Ops::new();
            match mailroom_server::ops::install_recorder() {
                Ok(handle) => ops = ops.with_metrics(handle),
                Err(e) => tracing::warn!(error = %e, "serving /metrics without counters"),
            }
            if let Some(health) = health {
                ops = ops.with_worker(health);
            }
            let state = mailroom_server::ServerState {
                syncer: syncer.clone(),
                ops,
                push: push.clone(),
            };
            let server = mailroom_server::Server::bind(addr, state)
                .await
                .map_err(|e| {
                    Failure::err(
                        Code::Usage,
                        format!("cannot listen on {addr}: {e} (choose another --listen address)"),
                    )
                })?;
            eprintln!("mailroom: listening on http://{}", server.local_addr());
            Some(tokio::spawn(server.run(shutdown.clone())))
        }
    };
    let stats = syncer.run_worker(config, shutdown.clone()).await;
    // The listener stops with the worker, whatever stopped the worker.
    shutdown.cancel();
    if let Some(server) = server {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the HTTP listener failed"),
            Err(e) => tracing::warn!(error = %e, "the HTTP listener panicked"),
        }
    }
    watcher.abort();
    let stats = stats?;
    eprintln!(
        "mailroom: worker stopped: {} synced, {} failed, {} interrupted, {} lost to another worker",
        stats.synced, stats.failed, stats.interrupted, stats.lease_lost
    );
    if args.once && stats.syncs() == 0 {
        eprintln!("mailroom: {}", nothing_due(ctx).await?);
    }
    let worst = *log.worst.lock().expect("not poisoned");
    if args.once && worst != Code::Success {
        return Err(Failure::err(
            worst,
            "some accounts did not sync (see the lines above)",
        ));
    }
    Ok(())
}
