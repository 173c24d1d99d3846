//! `cargo xtask` — Mailroom's automation. Run `cargo xtask help`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

mod bench_graph;
mod conformance;
mod consumers;
mod demo;
mod services;

const HELP: &str = "\
cargo xtask <command>

Commands:
  ci              everything CI runs: start PostgreSQL, install Dovecot and Python's
                  `cryptography` if missing, then fmt check, clippy -D warnings, the
                  whole test suite (cargo nextest + doc tests), `doc`, `cargo package`
                  of every crate, `consumers` and `conformance`
  conformance     Microsoft's client libraries (msal, azure-identity, msgraph-sdk, pinned in
                  crates/mailroom-sim/conformance/requirements.txt, installed from PyPI
                  into a venv in the target directory) drive mailroom-sim --tls (pytest)
  test [ARGS]     start the services, then run the test suite only (ARGS go to nextest)
  services        start PostgreSQL / install Dovecot and `cryptography`, then exit
  doc             cargo doc of the workspace, warnings denied
  consumers [CRATE…]
                  build every library crate's doc examples and examples/ in a fresh
                  project that depends on that crate alone (+ tokio)
  bench [NAME]    run release benchmarks (all, or one of: {benches})
  demo [--keep]   build mailroom and mailroom-sim, start the simulator, add its mailbox
                  through the device code flow, sync with progress bars, list messages
  help            this text

Environment:
  CARGO_TARGET_DIR              build directory (default: cargo's)
  MAILROOM_TEST_POSTGRES_URL    test database (default: {pg})
";

/// `(name, package, bench target)` of every release benchmark.
const BENCHES: &[(&str, &str, &str)] = &[
    ("store-upsert", "mailroom-store", "upsert"),
    ("sim-pages", "mailroom-sim", "pages"),
    ("imap", "mailroom-imap", "initial_sync"),
    ("sync", "mailroom-sync", "sync"),
    ("push", "mailroom-server", "push"),
    ("graph", "mailroom-graph", "initial_sync"),
    ("fleet", "mailroom-sync", "fleet"),
];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = workspace_root();
    env::set_current_dir(&root).context("cannot enter the workspace root")?;
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("test") => {
            services::ensure_all()?;
            test_suite(&args[1..])
        }
        Some("services") => services::ensure_all(),
        Some("consumers") => consumers::run(&root, &args[1..]),
        Some("doc") => doc(),
        Some("conformance") => conformance::run(&root, true),
        Some("bench") => bench(args.get(1).map(String::as_str)),
        Some("demo") => demo::run(&root, &args[1..]),
        Some("help" | "-h" | "--help") | None => {
            print_help();
            Ok(())
        }
        Some(other) => {
            print_help();
            bail!("unknown command {other:?}")
        }
    }
}

fn print_help() {
    let names: Vec<&str> = BENCHES.iter().map(|b| b.0).collect();
    print!(
        "{}",
        HELP.replace("{benches}", &names.join(", "))
            .replace("{pg}", services::DEFAULT_POSTGRES_URL)
    );
}

/// The build directory, as cargo picks it.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    let configured = std::env::var_os("CARGO_TARGET_DIR")
        .or_else(|| std::env::var_os("CARGO_BUILD_TARGET_DIR"))
        .map(PathBuf::from);
    match configured {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// The workspace of the clone `cargo xtask` ran in. `cargo run` says where the
/// manifest is; the path compiled in is only a fallback, because clones that share a
/// target directory share this binary, and it may have been built in another clone.
fn workspace_root() -> PathBuf {
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn ci() -> Result<()> {
    let started = Instant::now();
    services::ensure_all()?;
    step(
        "cargo fmt --check",
        cargo(&["fmt", "--all", "--", "--check"]),
    )?;
    step(
        "cargo clippy",
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    test_suite(&[])?;
    doc()?;
    // Packaging only (nothing is published); `consumers` builds the crates from outside.
    step(
        "cargo package",
        cargo(&[
            "package",
            "--workspace",
            "--exclude",
            "xtask",
            "--exclude",
            "mailroom-tests",
            "--no-verify",
            "--allow-dirty",
            "--quiet",
        ]),
    )?;
    step("consumers", {
        let mut cmd = Command::new(env::current_exe().context("cannot find xtask")?);
        cmd.arg("consumers");
        cmd
    })?;
    // After the tests: they built the simulator binary this uses.
    conformance::run(&workspace_root(), false)?;
    eprintln!("xtask: ci passed in {:.0?}", started.elapsed());
    Ok(())
}

fn test_suite(extra: &[String]) -> Result<()> {
    let mut args = vec![
        "nextest",
        "run",
        "--workspace",
        "--all-features",
        "--no-fail-fast",
    ];
    if env::var_os("CI").is_some() {
        args.extend(["--profile", "ci"]);
    }
    args.extend(extra.iter().map(String::as_str));
    step("cargo nextest run", cargo(&args))?;
    if extra.is_empty() {
        step(
            "doc tests",
            cargo(&["test", "--workspace", "--all-features", "--doc"]),
        )?;
    }
    Ok(())
}

/// The workspace's documentation, as docs.rs builds it (every feature), warnings denied.
fn doc() -> Result<()> {
    let mut cmd = cargo(&["doc", "--workspace", "--all-features", "--no-deps"]);
    cmd.env("RUSTDOCFLAGS", "-D warnings");
    step("cargo doc", cmd)
}

fn bench(only: Option<&str>) -> Result<()> {
    let selected: Vec<_> = BENCHES
        .iter()
        .filter(|b| only.is_none_or(|o| o == b.0))
        .collect();
    if selected.is_empty() {
        let names: Vec<&str> = BENCHES.iter().map(|b| b.0).collect();
        bail!(
            "unknown benchmark {:?}; choose one of: {}",
            only.unwrap_or_default(),
            names.join(", ")
        );
    }
    if selected.iter().any(|b| b.1 == "mailroom-imap") {
        services::ensure_dovecot()?;
        // mbsync (isync) is the reference the IMAP benchmark runs beside Mailroom.
        services::apt_install("isync", "mbsync")?;
    }
    for (name, package, target) in selected {
        if *name == "graph" {
            bench_graph::run(&workspace_root())?;
            continue;
        }
        step(
            name,
            cargo(&["bench", "--package", package, "--bench", target]),
        )?;
    }
    Ok(())
}

/// A cargo command without the variables `cargo run` set for xtask itself: ring's
/// build script reruns when `CARGO_MANIFEST_DIR` changes, so inheriting xtask's
/// rebuilt ring, rustls and everything above them at each switch between `cargo
/// xtask …` and plain cargo (and in every fresh clone).
fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(args);
    for (name, _) in env::vars_os() {
        let inherited_from_cargo_run = name.to_str().is_some_and(|n| {
            n.starts_with("CARGO_PKG_")
                || n.starts_with("CARGO_MANIFEST_")
                || matches!(
                    n,
                    "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
                )
        });
        if inherited_from_cargo_run {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Runs a command, inheriting stdio, and fails with its name if it fails.
fn step(name: &str, mut cmd: Command) -> Result<()> {
    eprintln!("xtask: == {name}");
    let started = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    eprintln!("xtask: {name} ok in {:.0?}", started.elapsed());
    Ok(())
}

/// Polls `check` until it is true or `timeout` passes.
fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        sleep(Duration::from_millis(200));
    }
    Ok(())
}
