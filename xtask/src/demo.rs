//! `cargo xtask demo`: the whole product on a fresh machine, against `mailroom-sim`.
//!
//! 1. builds `mailroom-sim` and `mailroom` — debug builds: the dev profile builds
//!    far faster than release on two cores, shares its artifacts with `cargo test`,
//!    and syncing a few hundred messages takes well under a second either way;
//! 2. starts `mailroom-sim --port 0` with a seeded mailbox and reads the URLs it prints;
//! 3. runs the real `mailroom` binary against it with a SQLite database and a key
//!    file in a temporary directory: `account add outlook` (the real device code
//!    flow; the simulator approves on its second poll), `sync` (progress bars),
//!    `messages list --limit 10`, `account list`;
//! 4. stops the simulator and removes the directory (`--keep` keeps it).

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::{cargo, step};

const HELP: &str = "\
cargo xtask demo [--messages N] [--keep]

  --messages N   messages in the simulated mailbox (default 300)
  --keep         keep the demo's database and key file afterwards";

/// The simulator process, stopped when dropped (also on errors).
struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the simulator and reads its `key: value` lines up to `ready`.
fn start_sim(bin: &Path, messages: usize) -> Result<(Sim, HashMap<String, Vec<String>>)> {
    let mut child = Command::new(bin)
        .args([
            "--port",
            "0",
            "--messages",
            &messages.to_string(),
            "--device-code-interval",
            "1",
            "--latency-ms",
            "2",
        ])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let sim = Sim(child);
    let mut printed: HashMap<String, Vec<String>> = HashMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("cannot read the simulator's output")?;
        if line.trim() == "ready" {
            return Ok((sim, printed));
        }
        if let Some((key, value)) = line.split_once(": ") {
            printed
                .entry(key.trim().to_owned())
                .or_default()
                .push(value.trim().to_owned());
        }
    }
    bail!("mailroom-sim exited before it was ready")
}

pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let mut messages = 300usize;
    let mut keep = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--messages" => {
                messages = rest
                    .next()
                    .and_then(|n| n.parse().ok())
                    .context("--messages wants a number")?;
            }
            "--keep" => keep = true,
            "-h" | "--help" => {
                println!("{HELP}");
                return Ok(());
            }
            other => bail!("unknown demo option {other:?}\n{HELP}"),
        }
    }
    let started = Instant::now();
    step(
        "demo 1/6: build mailroom-sim and mailroom (debug profile: quickest to build)",
        cargo(&[
            "build",
            "--package",
            "mailroom-sim",
            "--package",
            "mailroom-cli",
            "--bins",
        ]),
    )?;
    let bin_dir = crate::target_dir(root).join("debug");
    let mailroom = bin_dir.join("mailroom");

    eprintln!("xtask: == demo 2/6: start mailroom-sim with {messages} seeded messages");
    let (sim, printed) = start_sim(&bin_dir.join("mailroom-sim"), messages)?;
    let first = |key: &str| -> Result<String> {
        printed
            .get(key)
            .and_then(|v| v.first())
            .cloned()
            .with_context(|| format!("mailroom-sim printed no {key:?} line"))
    };
    let authority = first("authority")?;
    let graph = first("graph")?;
    let mailbox = first("mailbox")?;
    eprintln!("xtask:    identity platform {authority}, Graph {graph}, mailbox {mailbox}");

    let dir = std::env::temp_dir().join(format!("mailroom-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let database = format!(
        "sqlite://{}?mode=rwc",
        dir.join("mailroom.sqlite").display()
    );
    let run_mailroom = |args: &[&str]| {
        let mut cmd = Command::new(&mailroom);
        cmd.args(args)
            .env("MAILROOM_AUTHORITY_URL", &authority)
            .env("MAILROOM_GRAPH_URL", &graph)
            .env("MAILROOM_DATABASE_URL", &database)
            .env("MAILROOM_KEY_FILE", dir.join("key"))
            .env("MAILROOM_CLIENT_ID", "mailroom-demo")
            .env_remove("MAILROOM_KEY");
        cmd
    };
    let result = (|| {
        step(
            &format!(
                "demo 3/6: mailroom account add outlook --email {mailbox} --folder INBOX --folder SENT --folder ARCHIVE (device code flow; the simulator approves on its second poll)"
            ),
            run_mailroom(&[
                "account", "add", "outlook", "--email", &mailbox, "--folder", "INBOX", "--folder",
                "SENT", "--folder", "ARCHIVE",
            ]),
        )?;
        step("demo 4/6: mailroom sync", run_mailroom(&["sync"]))?;
        step(
            "demo 5/6: mailroom messages list --limit 10",
            run_mailroom(&["messages", "list", "--limit", "10"]),
        )?;
        step(
            "demo 6/6: mailroom account list",
            run_mailroom(&["account", "list"]),
        )
    })();
    drop(sim);
    if keep {
        eprintln!(
            "xtask: kept {} — try: MAILROOM_DATABASE_URL='{database}' MAILROOM_KEY_FILE={} {} messages list",
            dir.display(),
            dir.join("key").display(),
            mailroom.display()
        );
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result?;
    eprintln!(
        "xtask: demo done in {:.1?} (the simulator is stopped)",
        started.elapsed()
    );
    Ok(())
}
