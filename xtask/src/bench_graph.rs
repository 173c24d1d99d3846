//! `cargo xtask bench graph`: the Graph initial sync beside its references, in one run.
//!
//! 1. `cargo bench -p mailroom-graph --bench initial_sync` with
//!    `MAILROOM_BENCH_PEER_PYTHON` set to a venv of xtask/bench/requirements.txt
//!    (made here, kept while its stamp matches): the fetch-only floor, then the
//!    seed-design Python peer (xtask/bench/graph_peer.py) against the same simulator.
//! 2. `cargo bench -p mailroom-sync --bench sync` with
//!    `MAILROOM_BENCH_STORES=sqlite,postgres` and no attachment scenario: the
//!    end-to-end initial sync into SQLite and into the test PostgreSQL
//!    (`MAILROOM_TEST_POSTGRES_URL`), alternately, with client and backend CPU.
//!
//! `MAILROOM_BENCH_SIZES` (default `100000`) sets the folder sizes of both.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};

use crate::{cargo, step, target_dir};

pub(crate) fn run(root: &Path) -> Result<()> {
    let venv = ensure_venv(root, &target_dir(root).join("bench-venv"))?;
    let sizes = std::env::var("MAILROOM_BENCH_SIZES").unwrap_or_else(|_| "100000".into());
    let mut floor = cargo(&["bench", "-p", "mailroom-graph", "--bench", "initial_sync"]);
    floor
        .env("MAILROOM_BENCH_SIZES", &sizes)
        .env("MAILROOM_BENCH_PEER_PYTHON", python(&venv));
    step("graph: fetch-only floor and the Python peer", floor)?;
    let mut sync = cargo(&["bench", "-p", "mailroom-sync", "--bench", "sync"]);
    sync.env("MAILROOM_BENCH_SIZES", &sizes)
        .env("MAILROOM_BENCH_STORES", "sqlite,postgres")
        .env("MAILROOM_BENCH_ATTACHMENTS", "0");
    step(
        "graph: end-to-end initial sync into SQLite and PostgreSQL",
        sync,
    )
}

fn python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// The venv of the peer's requirements, made again when they or Python changed.
fn ensure_venv(root: &Path, venv: &Path) -> Result<PathBuf> {
    let requirements = root.join("xtask").join("bench").join("requirements.txt");
    let pins = std::fs::read_to_string(&requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    let version = Command::new("python3")
        .arg("--version")
        .output()
        .context("cannot run python3 (the benchmark's peer is a Python script)")?;
    let stamp_text = format!(
        "{}\n{pins}",
        String::from_utf8_lossy(&version.stdout).trim()
    );
    let stamp = venv.join("mailroom-requirements.txt");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == stamp_text) && python(venv).exists() {
        return Ok(venv.to_owned());
    }
    if venv.exists() {
        std::fs::remove_dir_all(venv)
            .with_context(|| format!("cannot remove the old venv {}", venv.display()))?;
    }
    let mut create = Command::new("python3");
    create.args(["-m", "venv"]).arg(venv);
    step("python3 -m venv", create)?;
    let mut install = Command::new(python(venv));
    install
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
        ])
        .arg(&requirements);
    step("pip install (benchmark peer requirements)", install)?;
    std::fs::write(&stamp, stamp_text)
        .with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(venv.to_owned())
}
