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

use std::path::Path;

use anyhow::Result;

use crate::conformance::{ensure_venv, python};
use crate::{cargo, step, target_dir};

pub(crate) fn run(root: &Path) -> Result<()> {
    let venv = ensure_venv(
        &root.join("xtask").join("bench").join("requirements.txt"),
        &target_dir(root).join("bench-venv"),
        "benchmark peer",
    )?;
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
