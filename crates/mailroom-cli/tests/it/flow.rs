use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Read as _};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{DEMO, Env, mode};

fn set(values: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    values.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn add_sync_and_list_match_the_simulator() {
    let env = Env::new(150).await;
    let (_, stderr) = env.add_demo();
    assert!(stderr.contains("enter"), "the user code is shown: {stderr}");
    assert!(stderr.contains("created a new key file"), "{stderr}");
    assert_eq!(mode(&env.key_file()), 0o600);

    // A duplicate is refused with the command that removes it.
    let (_, stderr) = env.expect(1, &["account", "add", "outlook", "--email", DEMO]);
    assert!(
        stderr.contains("mailroom account remove demo@mailroom.test"),
        "{stderr}"
    );

    let inbox = env
        .sim
        .mailbox(DEMO)
        .unwrap()
        .folder_messages("inbox")
        .unwrap();
    let report = env.json(&["sync", "-v"]);
    assert_eq!(report[0]["outcome"], "synced", "{report}");
    assert_eq!(report[0]["upserted"], inbox.len() as u64);

    // The local listing is the simulator's inbox, newest first.
    let listed = env.json(&["messages", "list", "--limit", "0"]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), inbox.len());
    let ids: Vec<&str> = listed
        .iter()
        .map(|m| m["remote_id"].as_str().unwrap())
        .collect();
    let sim_ids: Vec<&str> = inbox.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        set(ids.iter().map(|s| s.to_string())),
        set(sim_ids.iter().map(|s| s.to_string()))
    );
    for (m, truth) in listed.iter().zip(&inbox) {
        if m["remote_id"] == truth.id {
            assert_eq!(m["subject"], truth.subject.as_str());
            assert_eq!(m["is_read"], truth.is_read);
            assert_eq!(m["folder"], "Inbox");
        }
    }
    // Every message with attachments has its list, as the simulator has it (inline
    // images included), and `messages show` lists them.
    let mut with_attachments = 0;
    for m in listed {
        let truth = inbox.iter().find(|t| m["remote_id"] == t.id).unwrap();
        assert_eq!(m["has_attachments"], truth.has_attachments);
        assert_eq!(m["attachment_count"], truth.attachment_count as u64, "{m}");
        if truth.attachment_count == 0 {
            continue;
        }
        with_attachments += 1;
        let shown = env.json(&["messages", "show", &m["id"].to_string()]);
        let list = shown["attachments"].as_array().unwrap();
        assert_eq!(list.len(), truth.attachment_count, "{shown}");
        assert!(
            list.iter()
                .all(|a| a["name"].is_string() && a["size"].as_u64() > Some(0))
        );
        if with_attachments == 1 {
            let (text, _) = env.expect(0, &["messages", "show", &m["id"].to_string()]);
            let line = format!("Attachments   {}", truth.attachment_count);
            assert!(text.contains(&line), "{text}");
        }
    }
    assert!(with_attachments > 0);
    let newest = env.json(&["messages", "list", "--limit", "10"]);
    assert_eq!(newest.as_array().unwrap().len(), 10);
    assert_eq!(newest[0]["remote_id"], listed[0]["remote_id"]);
    let (table, _) = env.expect(0, &["messages", "list", "--limit", "3"]);
    assert!(table.starts_with("ID"), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");

    let accounts = env.json(&["account", "list"]);
    assert_eq!(accounts[0]["email"], DEMO);
    assert_eq!(accounts[0]["kind"], "outlook");
    assert_eq!(accounts[0]["status"], "active");
    assert_eq!(accounts[0]["messages"], inbox.len() as u64);
    assert!(accounts[0]["last_sync_at"].is_string(), "{accounts}");
    assert!(accounts[0]["last_error"].is_null());

    // One record, locally and as raw MIME from the server.
    let id = listed[0]["id"].to_string();
    let shown = env.json(&["messages", "show", &id]);
    assert_eq!(shown["remote_id"], listed[0]["remote_id"]);
    let (raw, _) = env.expect(0, &["messages", "show", &id, "--raw"]);
    assert!(raw.contains("Subject:"), "{raw}");

    // Live folders with roles and counts.
    let folders = env.json(&["folders"]);
    let inbox_folder = folders
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["role"] == "INBOX")
        .expect("an inbox");
    assert_eq!(inbox_folder["total"], inbox.len() as u64);
    assert_eq!(inbox_folder["synced"], true);

    // Every check passes; a second sync has nothing new.
    let doctor = env.json(&["doctor", "-vv"]);
    assert_eq!(doctor["ok"], true, "{doctor}");
    let again = env.json(&["sync", "--account", DEMO]);
    assert_eq!(again[0]["upserted"], 0, "{again}");

    // A refresh (and its rotated refresh token) at the most verbose logging of every
    // crate: no token in the output (checked when `env` drops). On a three-thread
    // runtime: the binary runs on one thread unless told otherwise.
    env.sim.expire_access_tokens(DEMO).unwrap();
    let mut cmd = env.cmd(&["--json", "sync"]);
    cmd.env("RUST_LOG", "trace").env("MAILROOM_THREADS", "3");
    let (stdout, stderr) = env.expect_cmd(0, cmd, "sync with RUST_LOG=trace");
    assert!(stderr.contains("refresh"), "a refresh happened: {stderr}");
    assert!(stderr.contains("threads=3"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report[0]["credentials_refreshed"], true, "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn move_and_delete_change_the_server_and_the_local_listing() {
    let env = Env::new(120).await;
    env.add_demo();
    env.expect(0, &["sync", "--folder", "INBOX", "--folder", "ARCHIVE"]);
    let mailbox = env.sim.mailbox(DEMO).unwrap();
    let inbox = env.local_ids("INBOX");
    assert_eq!(
        set(inbox.clone()),
        set(mailbox.folder_message_ids("inbox").unwrap())
    );
    let archived_before = env.local_ids("ARCHIVE").len();

    // Move by local ID: gone from the inbox on both sides, in the archive on both.
    let listed = env.json(&["messages", "list", "--folder", "INBOX", "--limit", "3"]);
    let (first, second, third) = (&listed[0], &listed[1], &listed[2]);
    let moved = env.json(&["move", &first["id"].to_string(), "ARCHIVE"]);
    let new_id = moved["new_remote_id"].as_str().unwrap().to_owned();
    assert!(moved["new_id"].is_i64(), "{moved}");
    let server_archive = mailbox.folder_message_ids("archive").unwrap();
    assert!(server_archive.contains(&new_id));
    assert!(
        !mailbox
            .folder_message_ids("inbox")
            .unwrap()
            .contains(&first["remote_id"].as_str().unwrap().to_owned())
    );
    assert!(
        !env.local_ids("INBOX")
            .contains(&first["remote_id"].as_str().unwrap().to_owned())
    );
    let archive = env.local_ids("ARCHIVE");
    assert!(archive.contains(&new_id));
    assert_eq!(archive.len(), archived_before + 1);

    // Soft delete by server id: to Deleted Items on the server, gone locally.
    let rid = second["remote_id"].as_str().unwrap();
    env.expect(0, &["delete", "--account", DEMO, rid]);
    assert!(
        !mailbox
            .folder_message_ids("inbox")
            .unwrap()
            .contains(&rid.to_owned())
    );
    assert_eq!(
        mailbox
            .folder_messages("deleteditems")
            .unwrap()
            .iter()
            .filter(|m| m.subject == second["subject"].as_str().unwrap())
            .count(),
        1
    );
    assert!(!env.local_ids("INBOX").contains(&rid.to_owned()));

    // Hard delete: the server no longer has it anywhere.
    let rid = third["remote_id"].as_str().unwrap().to_owned();
    env.expect(0, &["delete", &third["id"].to_string(), "--permanent"]);
    assert!(mailbox.message(&rid).is_err());
    assert!(!env.local_ids("INBOX").contains(&rid));
    let (_, stderr) = env.expect(1, &["messages", "show", &third["id"].to_string()]);
    assert!(stderr.contains("no message"), "{stderr}");

    // A sync agrees with what the commands did.
    let report = env.json(&["sync", "--folder", "INBOX", "--folder", "ARCHIVE"]);
    assert_eq!(report[0]["outcome"], "synced");
    assert_eq!(
        set(env.local_ids("INBOX")),
        set(mailbox.folder_message_ids("inbox").unwrap())
    );
    assert_eq!(
        set(env.local_ids("ARCHIVE")),
        set(mailbox.folder_message_ids("archive").unwrap())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_syncs_once_and_stops_cleanly_on_sigterm() {
    let env = Env::new(30).await;
    env.add_demo();
    let inbox = env
        .sim
        .mailbox(DEMO)
        .unwrap()
        .folder_message_ids("inbox")
        .unwrap();
    let (stdout, _) = env.expect(0, &["worker", "--once", "--interval", "1s"]);
    assert_eq!(
        stdout.lines().count(),
        1,
        "one line per account sync: {stdout}"
    );
    let line = format!("demo@mailroom.test synced: {} new/updated", inbox.len());
    assert!(stdout.contains(&line), "{stdout}");

    // A long-running worker picks the account up again when it is due, and SIGTERM
    // ends it with exit 0 and the lease released.
    env.sim
        .mailbox(DEMO)
        .unwrap()
        .add_messages("inbox", 3)
        .unwrap();
    let mut cmd = env.cmd(&[
        "--json",
        "worker",
        "--interval",
        "1h",
        "--poll-interval",
        "100ms",
    ]);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a sync line");
    env.record(&first);
    let line: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(line["outcome"], "synced", "{line}");
    assert_eq!(line["upserted"], 3, "{line}");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the worker did not stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    env.record(&stderr);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("SIGTERM") && stderr.contains("worker stopped"),
        "{stderr}"
    );
    let accounts = env.json(&["account", "list"]);
    assert!(
        accounts[0]["lease_owner"].is_null(),
        "the lease is released: {accounts}"
    );
    assert_eq!(accounts[0]["messages"], inbox.len() as u64 + 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn defaults_live_in_the_data_directory() {
    let env = Env::new(5).await;
    let mut cmd = env.cmd(&[
        "account", "add", "outlook", "--email", DEMO, "--folder", "INBOX",
    ]);
    cmd.env_remove("MAILROOM_DATABASE_URL")
        .env_remove("MAILROOM_KEY_FILE");
    env.expect_cmd(0, cmd, "add with defaults");
    let dir = env.path("home/data/mailroom");
    assert!(dir.join("mailroom.sqlite").exists());
    assert_eq!(mode(&dir.join("key")), 0o600);
    let mut cmd = env.cmd(&["--json", "account", "show", DEMO]);
    cmd.env_remove("MAILROOM_DATABASE_URL")
        .env_remove("MAILROOM_KEY_FILE");
    let (stdout, _) = env.expect_cmd(0, cmd, "show with defaults");
    let shown: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(shown["sync_folders"][0], "INBOX");
    assert_eq!(shown["credentials"]["protocol"], "graph");
    assert_eq!(shown["credentials"]["oauth"]["refresh_token"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confidential_client_signs_in_with_a_secret_from_stdin() {
    let config = crate::support::sim_config(12).confidential_client("conf-app", "s3cret-value-42");
    let env = Env::start(config).await;
    let mut cmd = env.cmd(&[
        "account",
        "add",
        "outlook",
        "--email",
        DEMO,
        "--client-secret-stdin",
    ]);
    cmd.env("MAILROOM_CLIENT_ID", "conf-app")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"s3cret-value-42\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    env.record(&printed);
    assert_eq!(out.status.code(), Some(0), "{printed}");
    // The stored secret drives the refresh of a later sync; it is never shown.
    env.sim.expire_access_tokens(DEMO).unwrap();
    let (stdout, stderr) = env.expect(0, &["sync", "-vv"]);
    let shown = env.json(&["account", "show", DEMO]);
    assert_eq!(
        shown["credentials"]["oauth"]["confidential_client"], true,
        "{shown}"
    );
    for text in [printed, stdout, stderr, shown.to_string()] {
        assert!(
            !text.contains("s3cret-value-42"),
            "the client secret was printed: {text}"
        );
    }
}
