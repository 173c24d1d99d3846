//! The harness: a simulator in this process, a scratch directory, a database (a SQLite
//! file there, or a fresh schema on the test PostgreSQL), a key file, and the real
//! `mailroom` binary run against them as separate processes.
//!
//! Everything the binary prints is kept; when an [`Env`] is dropped at the end of a
//! test, none of it may contain a token, refresh token or device code the simulator
//! issued, nor the Fernet key.

pub mod bin;
pub mod proc;
pub mod rng;
pub mod truth;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use mailroom_core::{AccountKind, Credentials, OAuthCredentials};
use mailroom_sim::{SimConfig, Simulator};
use mailroom_store::{Account, NewAccount, SealedCredentials, Store};
use mailroom_vault::{FernetKey, Vault};
use serde_json::Value;
use tempfile::TempDir;

pub use proc::Proc;
pub use rng::Rng;

/// The application id the binary signs in with.
pub const CLIENT_ID: &str = "mailroom-e2e";

/// What `mailroom account add outlook` asks for (Graph, with a refresh token).
pub const GRAPH_SCOPES: &[&str] = &["Mail.ReadWrite", "User.Read", "offline_access"];

/// Which database the binary and the assertions share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// A SQLite file in the scratch directory (the embedded default).
    Sqlite,
    /// A fresh schema on the test PostgreSQL (`mailroom_store::testing`).
    Postgres,
}

/// How a finished command ended.
#[derive(Debug)]
pub struct Out {
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// Stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON: {e}\n--- stdout\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// One test's world: simulator, scratch directory, database, key file, captured output.
pub struct Env {
    /// The simulator (ground truth and counters).
    pub sim: Simulator,
    dir: TempDir,
    database_url: String,
    key_file: PathBuf,
    key_text: String,
    extra_env: Mutex<Vec<(String, String)>>,
    captured: Mutex<String>,
    files: Mutex<Vec<PathBuf>>,
    seq: AtomicUsize,
    store: tokio::sync::OnceCell<Store>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("dir", &self.dir.path())
            .field("database", &mailroom_store::redact_url(&self.database_url))
            .finish_non_exhaustive()
    }
}

impl Env {
    /// Starts a simulator with `config`, and makes a database and a key file (0600).
    pub async fn start(config: SimConfig, db: Db) -> Env {
        let sim = Simulator::start(config)
            .await
            .expect("the simulator starts");
        let dir = tempfile::Builder::new()
            .prefix("mailroom-e2e-")
            .tempdir()
            .expect("a scratch directory");
        let database_url = match db {
            Db::Sqlite => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("mailroom.sqlite").display()
            ),
            Db::Postgres => mailroom_store::testing::fresh_postgres_url().await,
        };
        let key_file = dir.path().join("key");
        let key = FernetKey::generate();
        mailroom_vault::create_key_file(&key_file, &key).expect("the key file is created");
        std::fs::create_dir(dir.path().join("out")).expect("an output directory");
        Env {
            sim,
            key_text: key.secret().to_owned(),
            dir,
            database_url,
            key_file,
            extra_env: Mutex::new(Vec::new()),
            captured: Mutex::new(String::new()),
            files: Mutex::new(Vec::new()),
            seq: AtomicUsize::new(0),
            store: tokio::sync::OnceCell::new(),
        }
    }

    /// Sets an environment variable for every later command.
    pub fn set_env(&self, key: &str, value: impl Into<String>) {
        self.extra_env
            .lock()
            .unwrap()
            .push((key.to_owned(), value.into()));
    }

    /// The same database, opened by the test for its assertions.
    pub async fn store(&self) -> &Store {
        self.store
            .get_or_init(|| async {
                Store::connect(&self.database_url)
                    .await
                    .expect("the test opens the database")
            })
            .await
    }

    /// The vault over the key file the binary uses.
    pub fn vault(&self) -> Vault {
        Vault::new(mailroom_vault::read_key_file(&self.key_file).expect("the key file reads"))
            .expect("a vault")
    }

    /// The binary with this test's configuration in its environment, and nothing else
    /// of ours inherited.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin::mailroom());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("MAILROOM_") || key == "RUST_LOG" {
                cmd.env_remove(key);
            }
        }
        cmd.args(args)
            .env("MAILROOM_DATABASE_URL", &self.database_url)
            .env("MAILROOM_KEY_FILE", &self.key_file)
            .env("MAILROOM_AUTHORITY_URL", self.sim.base_url())
            .env("MAILROOM_GRAPH_URL", self.sim.graph_url())
            .env("MAILROOM_CLIENT_ID", CLIENT_ID)
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_DATA_HOME", self.dir.path().join("home/data"))
            .stdin(Stdio::null());
        for (key, value) in self.extra_env.lock().unwrap().iter() {
            cmd.env(key, value);
        }
        cmd
    }

    /// Keeps text for the secrets check.
    pub fn record(&self, text: &str) {
        self.captured.lock().unwrap().push_str(text);
    }

    /// Runs a command to its end (stdin empty) and keeps its output.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_cmd(self.cmd(args))
    }

    /// Runs a prepared command to its end and keeps its output.
    pub fn run_cmd(&self, mut cmd: Command) -> Out {
        let out = cmd.output().expect("the mailroom binary runs");
        let out = Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.record(&out.stdout);
        self.record(&out.stderr);
        out
    }

    /// Runs with `input` on stdin (a password, a client secret).
    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> Out {
        let mut cmd = self.cmd(args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the mailroom binary starts");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), input.as_bytes())
            .expect("stdin is written");
        let out = child.wait_with_output().expect("the mailroom binary runs");
        let out = Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.record(&out.stdout);
        self.record(&out.stderr);
        out
    }

    /// Runs and expects exit code `code`.
    pub fn expect(&self, code: i32, args: &[&str]) -> Out {
        let out = self.run(args);
        check_code(&out, code, &format!("{args:?}"));
        out
    }

    /// Runs with `--json`, expects exit code `code` and parses stdout.
    pub fn json_code(&self, code: i32, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.expect(code, &all).json()
    }

    /// Runs with `--json`, expects success and parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        self.json_code(0, args)
    }

    /// Starts a long-running command; its output goes to files that are read by the
    /// test and by the secrets check.
    pub fn spawn(&self, args: &[&str]) -> Proc {
        self.spawn_cmd(self.cmd(args), &args.join(" "))
    }

    /// Starts a prepared command (see [`spawn`](Self::spawn)).
    pub fn spawn_cmd(&self, cmd: Command, what: &str) -> Proc {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let base = self.dir.path().join("out").join(format!("{n:03}"));
        let out = base.with_extension("out");
        let err = base.with_extension("err");
        self.files
            .lock()
            .unwrap()
            .extend([out.clone(), err.clone()]);
        Proc::spawn(cmd, out, err, what)
    }

    /// Adds an Outlook account through the device code flow, approved by the simulator
    /// on its own (the default: the second poll signs in as the first mailbox).
    pub fn add_outlook(&self, email: &str, folders: &[&str]) -> Out {
        let mut args = vec!["-vv", "account", "add", "outlook", "--email", email];
        for f in folders {
            args.extend(["--folder", f]);
        }
        self.expect(0, &args)
    }

    /// Runs a device code sign-in (`args` is e.g. `account add outlook --email E`) and
    /// approves the user code it prints as `user`, as a person at the browser would.
    /// The simulator must not approve on its own (`auto_approve_after_polls: None`).
    pub fn sign_in_as(&self, user: &str, args: &[&str]) -> Out {
        let mut proc = self.spawn(args);
        let deadline = Instant::now() + Duration::from_secs(30);
        let code = loop {
            let stderr = proc.stderr();
            if let Some(code) = stderr
                .lines()
                .find_map(|l| l.trim().strip_prefix("2. enter"))
                .map(|c| c.trim().to_owned())
                .filter(|c| c.len() == 8)
            {
                break code;
            }
            assert!(
                Instant::now() < deadline && proc.is_running(),
                "no user code shown by {args:?}:\n{stderr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        self.sim
            .approve_device_code(&code, user)
            .expect("the user code is pending");
        let out = proc.wait(Duration::from_secs(60));
        check_code(&out, 0, &format!("{args:?}"));
        out
    }

    /// Creates Outlook accounts straight in the database (bulk setup): tokens issued by
    /// the simulator, encrypted with the key file's key. With `expired`, the access
    /// token counts as expired, so the first sync must refresh.
    pub async fn add_outlook_direct(&self, emails: &[String], expired: bool) -> Vec<Account> {
        let vault = self.vault();
        let store = self.store().await;
        let mut accounts = Vec::new();
        for email in emails {
            let tokens = self
                .sim
                .issue_tokens(email, CLIENT_ID, GRAPH_SCOPES)
                .expect("the simulator issues tokens");
            let mut oauth = OAuthCredentials::new(CLIENT_ID);
            oauth.token = Some(mailroom_core::AccessToken::new(tokens.access_token));
            oauth.refresh_token = tokens.refresh_token.map(mailroom_core::RefreshToken::new);
            oauth.scopes = tokens.scope.split(' ').map(str::to_owned).collect();
            oauth.expiry = Some(if expired {
                Utc::now() - chrono::Duration::seconds(1)
            } else {
                Utc::now() + chrono::Duration::seconds(tokens.expires_in as i64)
            });
            let sealed = SealedCredentials::new(
                vault.encrypt(Credentials::OAuth(oauth).to_json().as_bytes()),
            )
            .expect("sealed credentials");
            accounts.push(
                store
                    .create_account(NewAccount {
                        email: email.clone(),
                        kind: AccountKind::Outlook,
                        credentials: sealed,
                        sync_folders: Vec::new(),
                    })
                    .await
                    .expect("the account is stored"),
            );
        }
        accounts
    }

    /// The stored, decrypted OAuth credentials of an account (Graph).
    pub async fn oauth_credentials(&self, email: &str) -> OAuthCredentials {
        let account = self.account(email).await;
        match self
            .vault()
            .decrypt_json::<Credentials>(account.credentials.as_str())
            .expect("the credentials decrypt")
        {
            Credentials::OAuth(o) => o,
            Credentials::Imap(i) => match i.auth {
                mailroom_core::ImapAuth::OAuth(o) => o,
                mailroom_core::ImapAuth::Password(_) => panic!("{email} has a password"),
            },
        }
    }

    /// An account by address, from the database.
    pub async fn account(&self, email: &str) -> Account {
        self.store()
            .await
            .find_account(email)
            .await
            .expect("the database answers")
            .unwrap_or_else(|| panic!("no account {email} in the database"))
    }

    /// Everything the binary printed so far, including spawned processes.
    pub fn all_output(&self) -> String {
        let mut text = self.captured.lock().unwrap().clone();
        for file in self.files.lock().unwrap().iter() {
            text.push_str(&std::fs::read_to_string(file).unwrap_or_default());
        }
        text
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Keep the scratch directory (database, outputs) of a failed test.
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
            eprintln!("e2e: kept {} for inspection", dir.keep().display());
            return;
        }
        let output = self.all_output();
        let secrets = self.sim.issued_secrets();
        assert!(
            !secrets.is_empty(),
            "the simulator issued no token: the secrets check would prove nothing"
        );
        for secret in &secrets {
            assert!(
                !output.contains(secret.as_str()),
                "a secret the simulator issued ({}…) was printed",
                &secret[..secret.len().min(10)]
            );
        }
        for prefix in [
            mailroom_sim::ACCESS_TOKEN_PREFIX,
            mailroom_sim::REFRESH_TOKEN_PREFIX,
            mailroom_sim::DEVICE_CODE_PREFIX,
        ] {
            assert!(
                !output.contains(prefix),
                "something that looks like a simulator secret ({prefix}…) was printed"
            );
        }
        assert!(
            !output.contains(&self.key_text),
            "the Fernet key was printed"
        );
    }
}

/// Panics with the command's output unless it exited with `code`.
pub fn check_code(out: &Out, code: i32, what: &str) {
    assert_eq!(
        out.code,
        Some(code),
        "{what}\n--- stdout\n{}\n--- stderr\n{}",
        out.stdout,
        out.stderr
    );
}

/// Waits until `done` holds, checking every 20 ms; panics after `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `n` addresses `prefix001@domain`, ….
pub fn addresses(prefix: &str, domain: &str, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| format!("{prefix}{i:03}@{domain}"))
        .collect()
}
