//! Issue 15 from the outside: schedules, errors that match the exit codes, private
//! files at rest.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mailroom_sim::{MailboxSpec, RefreshFailure};

use crate::support::{DEMO, Env, mode, sim_config};

const MALLORY: &str = "mallory@mailroom.test";

#[tokio::test(flavor = "multi_thread")]
async fn a_manual_sync_keeps_the_worker_schedule_and_an_idle_pass_says_what_is_due() {
    let env = Env::new(5).await;
    env.add_demo();
    let (_, stderr) = env.expect(0, &["worker", "--once", "--interval", "2s"]);
    assert!(stderr.contains("1 synced"), "{stderr}");
    // Right after: nothing is due, and the pass says when the next account is.
    let (_, stderr) = env.expect(0, &["worker", "--once", "--interval", "2s"]);
    assert!(
        stderr.contains("nothing was due; the next account, demo@mailroom.test, is due at"),
        "{stderr}"
    );
    // A sync by hand does not push the worker's next run 5 minutes out.
    env.expect(0, &["sync"]);
    std::thread::sleep(Duration::from_millis(2100));
    let (_, stderr) = env.expect(0, &["worker", "--once", "--interval", "2s"]);
    assert!(stderr.contains("1 synced"), "{stderr}");
}

/// The binary with the default database and key locations (the user's data
/// directory) instead of the test's.
fn default_locations(env: &Env, args: &[&str]) -> Command {
    let mut cmd = env.cmd(args);
    cmd.env_remove("MAILROOM_DATABASE_URL")
        .env_remove("MAILROOM_KEY_FILE");
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn the_data_directory_and_the_database_files_are_private() {
    let env = Env::new(5).await;
    let add = default_locations(&env, &["account", "add", "outlook", "--email", DEMO]);
    env.expect_cmd(0, add, "account add with the default locations");
    let data = env.path("home/data/mailroom");
    // A worker keeps the database open: its -wal and -shm files exist meanwhile.
    let mut worker = default_locations(&env, &["worker", "--interval", "1h"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(data.join("mailroom.sqlite-wal").exists() && data.join("mailroom.sqlite-shm").exists())
    {
        assert!(Instant::now() < deadline, "no -wal/-shm files appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let modes: Vec<(String, u32)> = [
        "",
        "mailroom.sqlite",
        "mailroom.sqlite-wal",
        "mailroom.sqlite-shm",
        "key",
    ]
    .iter()
    .map(|f| (f.to_string(), mode(&data.join(f))))
    .collect();
    let _ = worker.kill();
    let _ = worker.wait();
    assert_eq!(
        modes,
        [
            ("".to_owned(), 0o700),
            ("mailroom.sqlite".to_owned(), 0o600),
            ("mailroom.sqlite-wal".to_owned(), 0o600),
            ("mailroom.sqlite-shm".to_owned(), 0o600),
            ("key".to_owned(), 0o600),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_that_cannot_work_are_said_plainly() {
    let env = Env::new(1).await;
    // A database in a directory that does not exist: not created, a clear error.
    let missing = env.path("no/such/dir");
    let mut cmd = env.cmd(&["account", "list"]);
    cmd.env(
        "MAILROOM_DATABASE_URL",
        format!("sqlite://{}/x.sqlite?mode=rwc", missing.display()),
    );
    let (_, stderr) = env.expect_cmd(1, cmd, "a database in a missing directory");
    assert!(
        stderr.contains(&format!(
            "the directory {} does not exist",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(!env.path("no").exists(), "the directory was created");
    // A key file path that is a directory.
    let mut cmd = env.cmd(&["doctor"]);
    cmd.env("MAILROOM_KEY_FILE", env.path(""));
    let (stdout, _) = env.expect_cmd(1, cmd, "a key file that is a directory");
    assert!(stdout.contains("is a directory"), "{stdout}");
    assert!(!stdout.contains("chmod"), "{stdout}");
}

/// A simulator where every sign-in is Mallory's, whatever address was asked for.
async fn mallory_signs_in() -> Env {
    let mut config = sim_config(3);
    config.mailboxes.push(MailboxSpec::new(MALLORY, 3));
    config.auto_approve_user = Some(MALLORY.to_owned());
    Env::start(config).await
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_in_as_somebody_else_stores_nothing_unless_asked() {
    let env = mallory_signs_in().await;
    let (_, stderr) = env.expect(1, &["account", "add", "outlook", "--email", DEMO]);
    assert!(
        stderr.contains(
            "signed in as mallory@mailroom.test, not demo@mailroom.test — nothing was stored"
        ),
        "{stderr}"
    );
    assert_eq!(env.json(&["account", "list"]), serde_json::json!([]));
    let (_, stderr) = env.expect(
        0,
        &[
            "account",
            "add",
            "outlook",
            "--email",
            DEMO,
            "--allow-other-user",
        ],
    );
    assert!(stderr.contains("--allow-other-user"), "{stderr}");
    assert_eq!(env.json(&["account", "list"])[0]["email"], DEMO);
}

#[tokio::test(flavor = "multi_thread")]
async fn reauth_as_somebody_else_stores_nothing_unless_asked() {
    let env = mallory_signs_in().await;
    env.expect(
        0,
        &[
            "account",
            "add",
            "outlook",
            "--email",
            DEMO,
            "--allow-other-user",
        ],
    );
    // The account needs a new sign-in: its refresh token was revoked.
    env.sim.expire_access_tokens(MALLORY).unwrap();
    env.sim
        .script_refresh_failure(MALLORY, RefreshFailure::Revoked)
        .unwrap();
    env.expect(3, &["sync"]);
    env.sim
        .script_refresh_failure(MALLORY, RefreshFailure::None)
        .unwrap();

    let (_, stderr) = env.expect(1, &["account", "reauth", DEMO]);
    assert!(
        stderr.contains(
            "signed in as mallory@mailroom.test, not demo@mailroom.test — nothing was stored"
        ),
        "{stderr}"
    );
    let accounts = env.json(&["account", "list"]);
    assert_eq!(accounts[0]["status"], "needs_reauth", "{accounts}");

    let (_, stderr) = env.expect(0, &["account", "reauth", DEMO, "--allow-other-user"]);
    assert!(stderr.contains("--allow-other-user"), "{stderr}");
    let accounts = env.json(&["account", "list"]);
    assert_eq!(accounts[0]["status"], "active", "{accounts}");
    env.expect(0, &["sync"]);
    // --no-verify does not ask who signed in.
    let (_, stderr) = env.expect(0, &["account", "reauth", DEMO, "--no-verify"]);
    assert!(!stderr.contains("signed in as"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_token_that_graph_refuses_is_exit_3_and_stores_nothing() {
    let env = Env::new(3).await;
    env.sim.script_faults(DEMO, &[401]).unwrap();
    env.sim
        .script_refresh_failure(DEMO, RefreshFailure::Revoked)
        .unwrap();
    let (_, stderr) = env.expect(3, &["account", "add", "outlook", "--email", DEMO]);
    assert!(stderr.contains("nothing was stored"), "{stderr}");
    assert_eq!(env.json(&["account", "list"]), serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_closes_the_pipe_ends_the_output_quietly() {
    let env = Env::new(600).await;
    env.add_demo();
    env.expect(0, &["sync"]);
    let mut child = env
        .cmd(&["messages", "list", "--limit", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // (`| head -1`: the reader is gone after one line.)
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    env.record(&stderr);
    assert!(!first.is_empty());
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_on_a_fresh_install_passes_and_marks_warnings_as_warnings() {
    let mut config = sim_config(3);
    // Tokens that live 4 minutes: inside the client's 5-minute refresh window.
    config.access_token_lifetime = Duration::from_secs(240);
    let env = Env::start(config).await;
    let (stdout, _) = env.expect(0, &["doctor"]);
    assert!(
        stdout.contains("no key yet")
            && stdout.contains("created on the first `mailroom account add`"),
        "{stdout}"
    );

    env.add_demo();
    let (stdout, _) = env.expect(0, &["doctor"]);
    assert!(
        stdout.contains("inside the 5-minute refresh window")
            && !stdout.contains("✔ token: for https://graph.microsoft.com: expired"),
        "{stdout}"
    );
    // A failed sync is a warning, not a check mark.
    env.sim.script_faults(DEMO, &[500]).unwrap();
    let mut sync = env.cmd(&["sync"]);
    sync.env("MAILROOM_MAX_ATTEMPTS", "1");
    env.expect_cmd(4, sync, "a sync that fails");
    let (stdout, _) = env.expect(0, &["doctor"]);
    assert!(stdout.contains("⚠ status: active"), "{stdout}");
    assert!(!stdout.contains("✔ status: active"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_locked_past_the_busy_timeout_is_transient_and_said_once() {
    let env = Env::new(3).await;
    env.add_demo();
    // Another writer holds the database longer than the 30 s busy timeout.
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('BEGIN IMMEDIATE')\n\
             print('locked', flush=True)\n\
             time.sleep(60)",
        ])
        .arg(env.path("mailroom.sqlite"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let out = env.output(env.cmd(&["sync"]));
    let _ = holder.kill();
    let _ = holder.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert_eq!(stderr.matches("database is locked").count(), 1, "{stderr}");
}
