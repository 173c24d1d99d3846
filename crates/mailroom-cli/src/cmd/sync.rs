//! `mailroom sync`: accounts now, with progress bars and a summary table.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures::StreamExt as _;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mailroom_core::{AccountStatus, FolderRef};
use mailroom_store::{Account, FolderRow, PageStats};
use mailroom_sync::{AccountReport, FolderReport, Outcome, SyncObserver, SyncRequest};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cli::SyncArgs;
use crate::cmd::{parse_since, shutdown_signal};
use crate::context::Ctx;
use crate::exit::{Code, Failure, code_of};
use crate::output::{self, Table, clip};

/// Progress bars: one spinner per account, one bar per folder under it. Drawn on
/// stderr, and not at all without a terminal.
pub struct Progress {
    multi: MultiProgress,
    accounts: Mutex<HashMap<i64, ProgressBar>>,
    last_of_account: Mutex<HashMap<i64, ProgressBar>>,
    folders: Mutex<HashMap<i64, ProgressBar>>,
    /// The bars of each running account's folders, taken off the screen (and out of
    /// memory) with the account's own when it finishes: a line stays instead.
    bars_of_account: Mutex<HashMap<i64, Vec<ProgressBar>>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress").finish_non_exhaustive()
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ")
}

impl Progress {
    /// Bars on stderr; `quiet` hides them (log lines would tear them apart).
    fn new(quiet: bool) -> Progress {
        let multi = if quiet {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        } else {
            MultiProgress::new()
        };
        Progress {
            multi,
            accounts: Mutex::new(HashMap::new()),
            last_of_account: Mutex::new(HashMap::new()),
            folders: Mutex::new(HashMap::new()),
            bars_of_account: Mutex::new(HashMap::new()),
        }
    }
}

/// The words for an outcome.
pub fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Synced => "synced".into(),
        Outcome::Interrupted => "interrupted".into(),
        Outcome::ReauthRequired { code, .. } => match code {
            Some(code) => format!("needs re-auth ({code})"),
            None => "needs re-auth".into(),
        },
        Outcome::Failed { kind, .. } => format!("failed ({kind})"),
    }
}

impl SyncObserver for Progress {
    fn account_started(&self, account: &Account) {
        let bar = self.multi.add(
            ProgressBar::new_spinner()
                .with_style(style("{spinner} {prefix:.bold} {msg}"))
                .with_prefix(account.email.clone())
                .with_message("connecting…"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        self.last_of_account
            .lock()
            .expect("not poisoned")
            .insert(account.id, bar.clone());
        self.accounts
            .lock()
            .expect("not poisoned")
            .insert(account.id, bar);
    }

    fn throttled(&self, account: &Account, until: chrono::DateTime<chrono::Utc>) {
        let wait = (until - chrono::Utc::now()).num_seconds().max(1);
        let text = format!(
            "waiting {wait} s: the server asked not to send requests before {} (Retry-After)",
            until.with_timezone(&chrono::Local).format("%H:%M:%S")
        );
        if let Some(bar) = self.accounts.lock().expect("not poisoned").get(&account.id) {
            bar.set_message("waiting for the server's Retry-After…");
        }
        self.multi
            .suspend(|| eprintln!("mailroom: {}: {text}", account.email));
    }

    fn folder_started(&self, account: &Account, folder: &FolderRow) {
        let first = folder.cursor.is_none();
        let bar = match folder.folder.total_count.filter(|n| first && *n > 0) {
            Some(total) => ProgressBar::new(total)
                .with_style(style("  {prefix:<20} [{bar:30}] {pos}/{len} {msg}")),
            None => ProgressBar::new_spinner()
                .with_style(style("  {spinner} {prefix:<18} {pos} changes {msg}")),
        };
        let bar = bar
            .with_prefix(clip(&folder.folder.path, 20))
            .with_message(if first { "first sync" } else { "" });
        let mut last = self.last_of_account.lock().expect("not poisoned");
        let bar = match last.get(&account.id) {
            Some(after) => self.multi.insert_after(after, bar),
            None => self.multi.add(bar),
        };
        if let Some(a) = self.accounts.lock().expect("not poisoned").get(&account.id) {
            a.set_message("syncing");
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        last.insert(account.id, bar.clone());
        self.bars_of_account
            .lock()
            .expect("not poisoned")
            .entry(account.id)
            .or_default()
            .push(bar.clone());
        self.folders
            .lock()
            .expect("not poisoned")
            .insert(folder.id, bar);
    }

    fn page_stored(&self, _: &Account, folder: &FolderRow, stats: &PageStats, _complete: bool) {
        if let Some(bar) = self.folders.lock().expect("not poisoned").get(&folder.id) {
            bar.inc(stats.upserted + stats.removed + stats.read_state);
            if bar.length().is_some_and(|len| bar.position() > len) {
                bar.set_length(bar.position());
            }
        }
    }

    fn folder_finished(&self, _: &Account, report: &FolderReport) {
        if let Some(bar) = self
            .folders
            .lock()
            .expect("not poisoned")
            .remove(&report.folder.id)
        {
            match &report.error {
                None => {
                    if let Some(len) = bar.length() {
                        bar.set_position(len.max(bar.position()));
                    }
                    bar.finish_with_message(format!(
                        "✔ {} new/updated, {} removed",
                        report.stats.upserted,
                        report.stats.removed + report.stats.reconciled
                    ));
                }
                Some(e) => bar.abandon_with_message(format!("✘ {}", clip(e, 60))),
            }
        }
    }

    fn account_finished(&self, report: &AccountReport) {
        if let Some(bar) = self
            .accounts
            .lock()
            .expect("not poisoned")
            .remove(&report.account_id)
        {
            let mark = if report.outcome == Outcome::Synced {
                "✔"
            } else {
                "✘"
            };
            bar.finish_with_message(format!("{mark} {}", outcome_text(&report.outcome)));
            // The account's bars leave the screen and memory, a line stays: the bars
            // of thousands of accounts would otherwise all be kept to the end.
            self.multi.remove(&bar);
            let totals = report.totals();
            let _ = self.multi.println(format!(
                "{mark} {} {}: {} new/updated, {} removed",
                report.email,
                outcome_text(&report.outcome),
                totals.upserted,
                totals.removed + totals.reconciled
            ));
        }
        self.last_of_account
            .lock()
            .expect("not poisoned")
            .remove(&report.account_id);
        let bars = self
            .bars_of_account
            .lock()
            .expect("not poisoned")
            .remove(&report.account_id);
        for bar in bars.into_iter().flatten() {
            self.multi.remove(&bar);
        }
    }
}

/// One account's line in the summary.
struct Row {
    email: String,
    result: RowResult,
    duration: Duration,
}

enum RowResult {
    Report(Summary),
    Skipped(AccountStatus),
    Error(anyhow::Error),
}

/// What the summary needs of an [`AccountReport`], kept instead of it (the report
/// holds every folder's stored row) so that the memory of a sync of many accounts
/// stays small.
struct Summary {
    outcome: Outcome,
    folders: usize,
    totals: PageStats,
    credentials_refreshed: bool,
    /// The folders' JSON entries, only with `--json`.
    folder_json: Vec<Value>,
    /// What to say about gone folders.
    gone: Vec<String>,
}

impl Summary {
    fn of(r: AccountReport, json: bool) -> Summary {
        let folder_json = if json {
            r.folders
                .iter()
                .map(|f| {
                    json!({
                        "folder": f.folder.folder.path,
                        "pages": f.pages,
                        "upserted": f.stats.upserted,
                        "removed": f.stats.removed,
                        "reconciled": f.stats.reconciled,
                        "read_state": f.stats.read_state,
                        "reset": f.reset,
                        "error": f.error,
                        "gone_since": output::json_time(f.gone_since),
                        "purged": f.purged,
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let gone = r
            .folders
            .iter()
            .filter(|f| f.gone_since.is_some())
            .map(|f| {
                format!(
                    "{}: folder {} is gone on the server (since {}){}",
                    r.email,
                    f.folder.folder.path,
                    output::opt_time(f.gone_since),
                    match (f.purged, f.folder.missed_syncs) {
                        (0, 0 | 1) =>
                            " — its local copies are deleted if the next sync still misses it"
                                .to_owned(),
                        (0, _) => String::new(),
                        (n, _) => format!(" — its {n} local messages were deleted"),
                    }
                )
            })
            .collect();
        Summary {
            totals: r.totals(),
            folders: r.folders.len(),
            credentials_refreshed: r.credentials_refreshed,
            outcome: r.outcome,
            folder_json,
            gone,
        }
    }
}

impl Row {
    fn code(&self) -> Code {
        match &self.result {
            RowResult::Report(r) => match &r.outcome {
                Outcome::Synced => Code::Success,
                Outcome::Interrupted => Code::Failure,
                Outcome::ReauthRequired { .. } => Code::Reauth,
                Outcome::Failed { kind, .. } => Code::of_kind(*kind),
            },
            RowResult::Skipped(AccountStatus::NeedsReauth) => Code::Reauth,
            RowResult::Skipped(_) => Code::Success,
            RowResult::Error(e) => code_of(e),
        }
    }

    fn outcome(&self) -> String {
        match &self.result {
            RowResult::Report(r) => outcome_text(&r.outcome),
            RowResult::Skipped(AccountStatus::NeedsReauth) => "skipped: needs re-auth".into(),
            RowResult::Skipped(status) => format!("skipped: {status}"),
            RowResult::Error(_) => "failed".into(),
        }
    }

    /// What went wrong and what to do, if anything.
    fn problem(&self) -> Option<String> {
        let reauth = format!("run `mailroom account reauth {}`", self.email);
        let said = |message: &str, advice: Option<&str>| {
            let message = clip(message, 300);
            Some(match advice {
                Some(advice) => format!("{message} — {advice}"),
                None => message,
            })
        };
        match &self.result {
            RowResult::Report(r) => match &r.outcome {
                Outcome::Synced => None,
                Outcome::Interrupted => said(
                    "interrupted",
                    Some("the next sync continues where it stopped"),
                ),
                Outcome::ReauthRequired { message, .. } => said(message, Some(&reauth)),
                Outcome::Failed { kind, message } => match Code::of_kind(*kind) {
                    Code::Transient => said(message, Some("retry later")),
                    _ => said(message, None),
                },
            },
            RowResult::Skipped(AccountStatus::NeedsReauth) => {
                said("needs re-authentication", Some(&reauth))
            }
            RowResult::Skipped(_) => None,
            RowResult::Error(e) => Some(output::error_text(e)),
        }
    }

    /// The row's table cells.
    fn cells(&self) -> Vec<String> {
        let (folders, upserted, removed) = match &self.result {
            RowResult::Report(r) => {
                let t = r.totals;
                (
                    r.folders.to_string(),
                    t.upserted.to_string(),
                    (t.removed + t.reconciled).to_string(),
                )
            }
            _ => ("-".into(), "-".into(), "-".into()),
        };
        vec![
            self.email.clone(),
            folders,
            upserted,
            removed,
            self.outcome(),
            output::duration(self.duration),
        ]
    }

    fn json(&self) -> Value {
        let mut v = json!({
            "account": self.email,
            "outcome": match &self.result {
                RowResult::Report(r) => match &r.outcome {
                    Outcome::Synced => "synced",
                    Outcome::Interrupted => "interrupted",
                    Outcome::ReauthRequired { .. } => "reauth_required",
                    Outcome::Failed { .. } => "failed",
                },
                RowResult::Skipped(_) => "skipped",
                RowResult::Error(_) => "failed",
            },
            "duration_ms": self.duration.as_millis() as u64,
            "error": self.problem(),
        });
        match &self.result {
            RowResult::Report(r) => {
                let totals = r.totals;
                v["upserted"] = json!(totals.upserted);
                v["removed"] = json!(totals.removed + totals.reconciled);
                v["read_state"] = json!(totals.read_state);
                v["credentials_refreshed"] = json!(r.credentials_refreshed);
                match &r.outcome {
                    Outcome::ReauthRequired { code, .. } => v["code"] = json!(code),
                    Outcome::Failed { kind, .. } => v["error_kind"] = json!(kind.as_str()),
                    _ => {}
                }
                v["folders"] = Value::Array(r.folder_json.clone());
            }
            RowResult::Skipped(status) => v["status"] = json!(status.as_str()),
            RowResult::Error(_) => {}
        }
        v
    }
}

pub async fn run(ctx: &Ctx, args: SyncArgs) -> Result<()> {
    let folders = if args.folders.is_empty() {
        None
    } else {
        Some(
            args.folders
                .iter()
                .map(|f| FolderRef::parse(f).map_err(|e| Failure::err(Code::Usage, e.to_string())))
                .collect::<Result<Vec<_>>>()?,
        )
    };
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let store = ctx.store().await?;
    let explicit = !args.accounts.is_empty();
    // Named accounts are read here; all accounts are read a page at a time as the
    // sync goes, so that memory does not grow with their number.
    let mut named: Vec<Account> = Vec::new();
    for email in &args.accounts {
        let a = ctx.account(email).await?;
        if !named.iter().any(|b| b.id == a.id) {
            named.push(a);
        }
    }
    if !explicit && store.list_accounts_after(0, 1).await?.is_empty() {
        eprintln!("no accounts yet — add one with `mailroom account add outlook --email …`");
        return Ok(());
    }
    let accounts = || -> futures::stream::BoxStream<'_, Result<Account>> {
        if explicit {
            futures::stream::iter(named.clone().into_iter().map(Ok)).boxed()
        } else {
            all_accounts(store).boxed()
        }
    };
    let syncer = ctx.syncer().await?;
    let vault = ctx.vault().await?;
    if !args.folders.is_empty() {
        let mut pass = accounts();
        while let Some(a) = pass.next().await {
            let a = a?;
            if explicit || a.status == AccountStatus::Active {
                named_folders(ctx, &a, &args.folders, args.add).await?;
            }
        }
    }

    let cancel = CancellationToken::new();
    let watcher = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let signal = shutdown_signal().await;
            eprintln!("mailroom: {signal}: stopping after the current pages…");
            cancel.cancel();
        })
    };
    let logging = ctx.global.verbose > 0 || std::env::var_os("RUST_LOG").is_some();
    let progress = Arc::new(Progress::new(logging));
    let request = SyncRequest {
        folders,
        since,
        cancel: cancel.clone(),
        observer: progress.clone(),
        // A sync by hand does not move the worker's schedule.
        interval: None,
        ..SyncRequest::default()
    };
    let json = ctx.json();
    let mut results = accounts()
        .enumerate()
        .map(|(i, a)| {
            let syncer = &syncer;
            let request = &request;
            let vault = &vault;
            async move {
                let a = a?;
                let started = Instant::now();
                let result = if !explicit && a.status != AccountStatus::Active {
                    RowResult::Skipped(a.status)
                } else if let Err(e) = ctx.decrypt(vault, &a) {
                    // Said here in plain words, with the key to check; the engine would
                    // only record it on the account.
                    RowResult::Error(e)
                } else {
                    match syncer.sync_account(a.id, request).await {
                        Ok(report) => RowResult::Report(Summary::of(report, json)),
                        Err(e) => RowResult::Error(anyhow::Error::new(e)),
                    }
                };
                let duration = match result {
                    RowResult::Report(_) | RowResult::Error(_) => started.elapsed(),
                    RowResult::Skipped(_) => Duration::ZERO,
                };
                Ok::<_, anyhow::Error>((
                    i,
                    Row {
                        email: a.email,
                        result,
                        duration,
                    },
                ))
            }
        })
        .buffer_unordered(usize::from(args.concurrency));
    let mut out = Summaries::new(json, Arc::clone(&progress));
    let mut failed = None;
    while let Some(result) = results.next().await {
        match result {
            Ok((i, row)) => out.add(i, row)?,
            // The syncs under way finish; no new one starts.
            Err(e) => {
                cancel.cancel();
                failed.get_or_insert(e);
            }
        }
    }
    drop(results);
    watcher.abort();
    if let Some(e) = failed {
        return Err(e);
    }
    let _ = progress.multi.clear();
    out.finish()
}

/// The summary of a sync, fed each account as it finishes: with `--json`, each
/// account's object is printed as soon as every account before it is (the array
/// comes out in account order, byte for byte what printing it whole would give);
/// otherwise the table keeps one line of cells per account. Either way what is
/// kept per account is small and its report is dropped at once, so that the memory
/// of a sync does not grow with its number of accounts beyond a table line.
struct Summaries {
    json: bool,
    progress: Arc<Progress>,
    /// The next account (in reading order) to print, with `--json`.
    next: usize,
    /// With `--json`, the accounts done before one read earlier, as their printed
    /// JSON, by reading order.
    waiting: std::collections::BTreeMap<usize, String>,
    table: Vec<(usize, Vec<String>)>,
    /// What to say on stderr after the summary (problems, gone folders).
    notes: Vec<String>,
    worst: Code,
    bad: usize,
    total: usize,
}

impl Summaries {
    fn new(json: bool, progress: Arc<Progress>) -> Summaries {
        Summaries {
            json,
            progress,
            next: 0,
            waiting: Default::default(),
            table: Vec::new(),
            notes: Vec::new(),
            worst: Code::Success,
            bad: 0,
            total: 0,
        }
    }

    fn add(&mut self, i: usize, row: Row) -> Result<()> {
        let code = row.code();
        self.worst = self.worst.worst(code);
        self.bad += usize::from(code != Code::Success);
        self.total += 1;
        if let Some(problem) = row.problem() {
            self.notes.push(format!("{}: {problem}", row.email));
        }
        if let RowResult::Report(r) = &row.result {
            self.notes.extend(r.gone.iter().cloned());
        }
        if !self.json {
            self.table.push((i, row.cells()));
            return Ok(());
        }
        // Each element as `to_writer_pretty` prints it inside the array: its lines
        // indented by two spaces (a JSON string never holds a raw newline).
        let pretty = serde_json::to_string_pretty(&row.json())?;
        let mut element = String::with_capacity(pretty.len() + pretty.len() / 8);
        for (n, line) in pretty.lines().enumerate() {
            if n > 0 {
                element.push('\n');
            }
            element.push_str("  ");
            element.push_str(line);
        }
        self.waiting.insert(i, element);
        // Printed between two redraws of the progress bars (on a terminal).
        self.progress.multi.suspend(|| {
            let mut stdout = std::io::stdout().lock();
            while let Some(element) = self.waiting.remove(&self.next) {
                let lead = if self.next == 0 { "[\n" } else { ",\n" };
                write!(stdout, "{lead}{element}")?;
                self.next += 1;
            }
            stdout.flush()
        })?;
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        if self.json {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{}", if self.next == 0 { "[]" } else { "\n]" })?;
        } else {
            let mut table = Table::new(&[
                "ACCOUNT",
                "FOLDERS",
                "NEW/UPDATED",
                "REMOVED",
                "OUTCOME",
                "DURATION",
            ]);
            self.table.sort_by_key(|(i, _)| *i);
            for (_, cells) in self.table {
                table.row(cells);
            }
            table.print()?;
        }
        for note in &self.notes {
            eprintln!("{note}");
        }
        let (code, bad, total) = (self.worst, self.bad, self.total);
        if code == Code::Success {
            return Ok(());
        }
        let message = match code {
            Code::Reauth => format!(
                "{bad} of {total} account(s) did not sync; re-authentication is required (see above)"
            ),
            Code::Transient => format!(
                "{bad} of {total} account(s) did not sync because of a transient failure — retry later"
            ),
            _ => format!("{bad} of {total} account(s) did not sync (see above)"),
        };
        Err(Failure::err(code, message))
    }
}

/// Every account, read a page at a time.
fn all_accounts(
    store: &mailroom_store::Store,
) -> impl futures::Stream<Item = Result<Account>> + Send + '_ {
    use futures::TryStreamExt as _;
    const PAGE: u64 = 256;
    futures::stream::try_unfold(Some(0_i64), move |after| async move {
        let Some(after) = after else {
            return Ok::<_, anyhow::Error>(None);
        };
        let page = store.list_accounts_after(after, PAGE).await?;
        let next = (page.len() as u64 == PAGE).then(|| page.last().map_or(after, |a| a.id));
        Ok(Some((
            futures::stream::iter(page.into_iter().map(Ok)),
            next,
        )))
    })
    .try_flatten()
}

/// `sync --folder`: every name is checked. A folder the account syncs anyway is fine;
/// another one is checked on the server ("did you mean" for an unknown name), then
/// either added to the account's synced folders (`--add`) or announced as a one-off.
async fn named_folders(ctx: &Ctx, account: &Account, names: &[String], add: bool) -> Result<()> {
    use crate::cmd::synced;
    let configured = synced::configured(account);
    let extra: Vec<String> = names
        .iter()
        .filter(|n| !configured.iter().any(|c| synced::same_folder(c, n)))
        .cloned()
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    let checked = synced::check_on_server(ctx, account, &extra).await?;
    if add {
        let added = synced::add_to_config(ctx, account, &checked).await?;
        if !added.is_empty() {
            eprintln!(
                "{}: now also syncs {} (the worker keeps it up to date)",
                account.email,
                added.join(", ")
            );
        }
    } else {
        eprintln!(
            "{}: {} is not among the folders it syncs: synced this once, and the worker will not keep it up to date — add it with `mailroom account folders {} add {}` (or `mailroom sync --folder … --add`)",
            account.email,
            checked.join(", "),
            account.email,
            checked.join(" ")
        );
    }
    Ok(())
}
