//! What the tests need on the machine: PostgreSQL running with a test role and
//! database, Dovecot installed, Python's `cryptography`, Chromium (the status page's
//! browser test). Every step is idempotent.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::wait_until;

pub(crate) const DEFAULT_POSTGRES_URL: &str =
    "postgres://mailroom:mailroom@127.0.0.1:5432/mailroom_test";

pub(crate) fn ensure_all() -> Result<()> {
    ensure_postgres()?;
    ensure_dovecot()?;
    ensure_chromium()?;
    ensure_python_cryptography()
}

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn have(program: &str) -> bool {
    quiet(Command::new("sh").args(["-c", &format!("command -v {program}")]))
}

fn run(what: &str, cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn as_postgres(sql: &str) -> Command {
    let mut cmd = Command::new("su");
    cmd.args([
        "postgres",
        "-c",
        &format!("psql -v ON_ERROR_STOP=1 -q -c \"{sql}\""),
    ]);
    cmd
}

fn postgres_ready() -> bool {
    quiet(Command::new("pg_isready").args(["-q", "-h", "127.0.0.1", "-p", "5432"]))
}

/// Starts the machine's PostgreSQL 15 cluster if needed and (re)creates the test role
/// and an empty test database. With `MAILROOM_TEST_POSTGRES_URL` set, only checks it.
fn ensure_postgres() -> Result<()> {
    if std::env::var_os("MAILROOM_TEST_POSTGRES_URL").is_some() {
        eprintln!("xtask: using MAILROOM_TEST_POSTGRES_URL for PostgreSQL tests");
        return Ok(());
    }
    if !postgres_ready() {
        if !have("pg_ctlcluster") {
            bail!(
                "PostgreSQL is not running and pg_ctlcluster is missing: install postgresql-15 or set MAILROOM_TEST_POSTGRES_URL"
            );
        }
        eprintln!("xtask: starting PostgreSQL (pg_ctlcluster 15 main start)");
        run(
            "pg_ctlcluster 15 main start",
            Command::new("pg_ctlcluster").args(["15", "main", "start"]),
        )?;
        wait_until("PostgreSQL", Duration::from_secs(60), postgres_ready)?;
    }
    run(
        "create role mailroom",
        &mut as_postgres(
            "DO \\$\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mailroom') \
             THEN CREATE ROLE mailroom LOGIN PASSWORD 'mailroom'; END IF; END \\$\\$;",
        ),
    )?;
    // A fresh database each run: tests create a schema each, this drops them all.
    run(
        "drop test database",
        &mut as_postgres("DROP DATABASE IF EXISTS mailroom_test WITH (FORCE)"),
    )?;
    run(
        "create test database",
        &mut as_postgres("CREATE DATABASE mailroom_test OWNER mailroom"),
    )?;
    eprintln!(
        "xtask: PostgreSQL ready at {}",
        DEFAULT_POSTGRES_URL.replace(":mailroom@", ":***@")
    );
    Ok(())
}

/// Installs Dovecot's IMAP server from Debian if `dovecot` is missing. The tests run
/// their own unprivileged instances; the system service is not needed.
pub(crate) fn ensure_dovecot() -> Result<()> {
    apt_install("dovecot-imapd", "dovecot")
}

/// Installs Debian's Chromium for the status page's headless browser test
/// (crates/mailroom-server) if `chromium` is missing.
pub(crate) fn ensure_chromium() -> Result<()> {
    apt_install("chromium", "chromium")
}

/// Installs Debian's `package` (apt-get) unless `program` is already on the PATH;
/// does nothing the second time.
pub(crate) fn apt_install(package: &str, program: &str) -> Result<()> {
    if have(program) {
        return Ok(());
    }
    eprintln!("xtask: installing {package} (apt-get)");
    run(
        "apt-get update",
        Command::new("apt-get").args(["update", "-qq"]),
    )?;
    let install = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .with_context(|| format!("cannot run apt-get install {package}"))?;
    // A package's post-install may fail to start its system service in a container;
    // what is needed is the binary.
    if !have(program) {
        bail!(
            "apt-get install {package} failed: {}",
            String::from_utf8_lossy(&install.stderr).trim()
        );
    }
    Ok(())
}

/// Installs Python's `cryptography` for the Fernet interop tests if it is missing.
fn ensure_python_cryptography() -> Result<()> {
    if quiet(Command::new("python3").args(["-c", "import cryptography.fernet"])) {
        return Ok(());
    }
    eprintln!("xtask: installing Python's cryptography (pip)");
    run(
        "pip install cryptography",
        Command::new("python3").args(["-m", "pip", "install", "--quiet", "cryptography"]),
    )
}
