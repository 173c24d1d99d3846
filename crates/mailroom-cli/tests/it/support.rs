//! A simulator and a scratch directory per test, and the real `mailroom` binary run
//! against them. Every run's output is kept: when the test ends, none of it may hold a
//! token, refresh token or device code the simulator issued.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use mailroom_sim::{Faults, MailboxSpec, SimConfig, Simulator};
use serde_json::Value;
use tempfile::TempDir;

pub const DEMO: &str = "demo@mailroom.test";
pub const CLIENT_ID: &str = "mailroom-cli-tests";

pub struct Env {
    pub sim: Simulator,
    pub dir: TempDir,
    log: Mutex<String>,
}

/// A simulator whose device codes can be polled at once and are approved on the
/// second poll, with one mailbox of `messages` messages.
pub fn sim_config(messages: usize) -> SimConfig {
    SimConfig {
        mailboxes: vec![MailboxSpec {
            messages,
            ..MailboxSpec::default()
        }],
        device_code_interval: Duration::ZERO,
        faults: Faults::none(),
        ..SimConfig::default()
    }
}

impl Env {
    pub async fn start(config: SimConfig) -> Env {
        let sim = Simulator::start(config).await.expect("simulator starts");
        Env {
            sim,
            dir: tempfile::tempdir().expect("temp dir"),
            log: Mutex::new(String::new()),
        }
    }

    pub async fn new(messages: usize) -> Env {
        Env::start(sim_config(messages)).await
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("key")
    }

    /// The binary with this test's configuration in its environment only.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailroom"));
        let db = self.dir.path().join("mailroom.sqlite");
        for var in [
            "MAILROOM_KEY",
            "MAILROOM_IMAP_CA_FILE",
            "MAILROOM_MAX_ATTEMPTS",
            "MAILROOM_PAGE_SIZE",
            "MAILROOM_THREADS",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        cmd.args(args)
            .env(
                "MAILROOM_DATABASE_URL",
                format!("sqlite://{}?mode=rwc", db.display()),
            )
            .env("MAILROOM_KEY_FILE", self.key_file())
            .env("MAILROOM_AUTHORITY_URL", self.sim.base_url())
            .env("MAILROOM_GRAPH_URL", self.sim.graph_url())
            .env("MAILROOM_CLIENT_ID", CLIENT_ID)
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_DATA_HOME", self.dir.path().join("home/data"))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a command to its end and keeps its output.
    pub fn output(&self, mut cmd: Command) -> Output {
        let out = cmd.output().expect("mailroom runs");
        let mut log = self.log.lock().unwrap();
        log.push_str(&String::from_utf8_lossy(&out.stdout));
        log.push_str(&String::from_utf8_lossy(&out.stderr));
        out
    }

    /// Keeps output read elsewhere (a spawned process) for the secrets check.
    pub fn record(&self, text: &str) {
        self.log.lock().unwrap().push_str(text);
    }

    /// Runs and expects exit code `code`; returns (stdout, stderr).
    pub fn expect(&self, code: i32, args: &[&str]) -> (String, String) {
        self.expect_cmd(code, self.cmd(args), &format!("{args:?}"))
    }

    pub fn expect_cmd(&self, code: i32, cmd: Command, what: &str) -> (String, String) {
        let out = self.output(cmd);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{what}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
        (stdout, stderr)
    }

    /// Runs with `--json`, expects success and parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (stdout, _) = self.expect(0, &all);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}\n{stdout}"))
    }

    /// Adds the demo mailbox through the device code flow.
    pub fn add_demo(&self) -> (String, String) {
        self.expect(0, &["account", "add", "outlook", "--email", DEMO])
    }

    /// Ids of the local messages of a folder (`--json`).
    pub fn local_ids(&self, folder: &str) -> Vec<String> {
        let list = self.json(&["messages", "list", "--limit", "0", "--folder", folder]);
        list.as_array()
            .unwrap()
            .iter()
            .map(|m| m["remote_id"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let log = self.log.lock().unwrap();
        for prefix in ["sim-at-", "sim-rt-", "sim-dc-"] {
            assert!(
                !log.contains(prefix),
                "a simulator secret ({prefix}…) was printed:\n{log}"
            );
        }
        for secret in self.sim.issued_secrets() {
            assert!(!log.contains(&secret), "an issued secret was printed");
        }
    }
}

/// Mode bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A loopback port nobody listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
