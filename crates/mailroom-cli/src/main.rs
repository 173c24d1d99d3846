//! `mailroom`: the command operators run — accounts, sync, the worker, doctor, keys.
//!
//! - [`cli`] declares every command and flag (clap); [`context::Ctx`] resolves the
//!   configuration (flags, `MAILROOM_*`, defaults in the user's data directory) and
//!   opens the database, the keys and connectors on first use.
//! - [`cmd`] has one module per command family; [`exit`] maps errors to the
//!   documented exit codes (0, 1, 2 usage, 3 re-auth, 4 transient).
//!
//! Secrets never reach the terminal: tokens, passwords and client secrets are only
//! read from stdin or decrypted credentials and are never printed, at any log level.

mod cli;
mod cmd;
mod context;
mod exit;
mod output;
mod signin;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, LogFormat};
use crate::context::Ctx;
use crate::exit::{Code, code_of};

/// mimalloc instead of glibc's malloc: the sync allocates a few strings per field of
/// every message, and glibc's malloc/free were about a sixth of the Graph initial
/// sync's instructions (docs/benchmarks.md, "graphcpu3"). The binary chooses the
/// allocator; the library crates never do.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The crates whose logs `-v` turns on (others stay at `warn`: HTTP and TLS
/// internals are noise, and verbose enough levels of them could show headers).
const OUR_CRATES: [&str; 9] = [
    "mailroom",
    "mailroom_core",
    "mailroom_oauth",
    "mailroom_vault",
    "mailroom_store",
    "mailroom_graph",
    "mailroom_imap",
    "mailroom_sync",
    "mailroom_server",
];

fn init_logs(verbose: u8, format: LogFormat) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => {
            let ours = match verbose {
                0 => "error",
                1 => "info",
                2 => "debug",
                _ => "trace",
            };
            let base = if verbose == 0 { "error" } else { "warn" };
            let spec: Vec<String> = std::iter::once(base.to_owned())
                .chain(OUR_CRATES.iter().map(|c| format!("{c}={ours}")))
                .collect();
            EnvFilter::new(spec.join(","))
        }
    };
    // async-imap logs every command it sends at TRACE, LOGIN passwords and XOAUTH2
    // tokens included, and cannot be told not to: that target stays off whatever
    // RUST_LOG says.
    let filter = filter.add_directive(
        "async_imap::imap_stream=off"
            .parse()
            .expect("a valid directive"),
    );
    match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(verbose >= 2)
            .init(),
        // One object per line: the event's fields at the top, the spans it is in
        // (account sync, folder, page) with their fields, and a line with
        // `time.busy`/`time.idle` when a span closes.
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(verbose >= 2)
            .init(),
    }
}

/// The error and its causes in plain words, each said once.
fn describe(err: &anyhow::Error) -> String {
    output::error_text(err)
}

async fn dispatch(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Account(c) => cmd::account::run(ctx, c).await,
        Command::Folders(a) => cmd::folders::run(ctx, a).await,
        Command::Messages(c) => cmd::messages::run(ctx, c).await,
        Command::Move(a) => cmd::messages::move_message(ctx, a).await,
        Command::Delete(a) => cmd::messages::delete_message(ctx, a).await,
        Command::Sync(a) => cmd::sync::run(ctx, a).await,
        Command::Worker(a) => cmd::worker::run(ctx, a).await,
        Command::Doctor(a) => cmd::doctor::run(ctx, a).await,
        Command::Key(c) => cmd::key::run(ctx, c).await,
    }
}

/// True when the error is stdout (or stderr) closed by the reader (`| head`).
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// A reader that closes the pipe early (`mailroom messages list | head -1`) has all it
/// wanted: `println!` panics on a closed stdout, and that ends the output quietly, with
/// exit 0, like a write error that says so.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// The async runtime: with one thread (the default) a current-thread runtime, else a
/// multi-thread one. On one thread a page is parsed, written and freed where it was
/// read, with no work-stealing and no memory freed across threads: the Graph initial
/// sync took about a tenth less CPU per message than on a two-thread runtime, and no
/// longer (docs/benchmarks.md, round 8). SQLite's writer and the blocking pool have
/// threads of their own either way.
fn runtime(threads: u16) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        ..=1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(usize::from(n));
            b
        }
    };
    builder.enable_all().build()
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    // Usage errors exit with 2 (clap's default), before anything else happens.
    let cli = Cli::parse();
    init_logs(cli.global.verbose, cli.global.log_format);
    let runtime = match runtime(cli.global.threads) {
        Ok(rt) => {
            tracing::debug!(threads = cli.global.threads, "async runtime started");
            rt
        }
        Err(e) => {
            eprintln!("mailroom: error: cannot start the async runtime: {e}");
            return Code::Failure.into();
        }
    };
    let result = runtime.block_on(async {
        let ctx = Ctx::new(cli.global)?;
        dispatch(&ctx, cli.command).await
    });
    // Do not wait for lingering connections (an IMAP server that does not answer
    // LOGOUT, a stuck HTTP pool).
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => Code::Success.into(),
        Err(e) if is_broken_pipe(&e) => Code::Success.into(),
        Err(e) => {
            eprintln!("mailroom: error: {}", describe(&e));
            code_of(&e).into()
        }
    }
}
