use std::io::Write as _;
use std::process::Stdio;

use mailroom_sim::RefreshFailure;

use crate::support::{DEMO, Env, closed_port, sim_config};

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_exit_2_and_help_documents_the_exit_codes() {
    let env = Env::new(1).await;
    env.expect(2, &[]);
    env.expect(2, &["sync", "--bogus"]);
    env.expect(2, &["worker", "--interval", "soon"]);
    env.expect(2, &["sync", "--page-size", "0"]);
    let (_, stderr) = env.expect(2, &["sync", "--threads", "0"]);
    assert!(stderr.contains("--threads"), "{stderr}");
    env.expect(
        2,
        &["account", "add", "imap", "--email", "a@b.c", "--host", "h"],
    );
    env.expect(2, &["messages", "list", "--since", "yesterday-ish"]);
    let (help, _) = env.expect(0, &["--help"]);
    for line in [
        "Exit codes:",
        "3  re-authentication required",
        "4  transient failure",
    ] {
        assert!(help.contains(line), "{help}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_refresh_token_needs_reauth_until_signed_in_again() {
    let env = Env::new(20).await;
    env.add_demo();
    env.expect(0, &["sync"]);
    env.sim.expire_access_tokens(DEMO).unwrap();
    env.sim
        .script_refresh_failure(DEMO, RefreshFailure::Revoked)
        .unwrap();

    let (_, stderr) = env.expect(3, &["sync", "-vvv"]);
    assert!(
        stderr.contains("mailroom account reauth demo@mailroom.test"),
        "{stderr}"
    );
    let accounts = env.json(&["account", "list"]);
    assert_eq!(accounts[0]["status"], "needs_reauth", "{accounts}");
    assert_eq!(accounts[0]["auth_error_code"], "AADSTS50173", "{accounts}");
    // Skipped (still exit 3) by a sync of every account; doctor says so too.
    let (stdout, _) = env.expect(3, &["sync"]);
    assert!(stdout.contains("skipped: needs re-auth"), "{stdout}");
    let (stdout, _) = env.expect(3, &["doctor"]);
    assert!(
        stdout.contains("✘ status: needs_reauth (AADSTS50173)"),
        "{stdout}"
    );

    // Signing in again makes it active; the next sync works.
    env.sim
        .script_refresh_failure(DEMO, RefreshFailure::None)
        .unwrap();
    env.expect(0, &["account", "reauth", DEMO]);
    let accounts = env.json(&["account", "list"]);
    assert_eq!(accounts[0]["status"], "active");
    assert!(accounts[0]["auth_error_code"].is_null());
    env.expect(0, &["sync"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_sign_in_exits_3_and_stores_nothing() {
    let mut config = sim_config(1);
    config.auto_approve_after_polls = None;
    config.device_code_interval = std::time::Duration::from_secs(1);
    let env = Env::start(config).await;
    let mut child = env
        .cmd(&["account", "add", "outlook", "--email", DEMO])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the user code off the prompt, then decline it.
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    let code = loop {
        let mut buf = [0u8; 256];
        let n = std::io::Read::read(&mut stderr, &mut buf).unwrap();
        assert!(n > 0, "no user code shown: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(code) = seen
            .lines()
            .find_map(|l| l.trim().strip_prefix("2. enter"))
            .map(|c| c.trim().to_owned())
            .filter(|c| c.len() == 8)
        {
            break code;
        }
    };
    env.sim.deny_device_code(&code).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    env.record(&seen);
    env.record(&rest);
    assert_eq!(status.code(), Some(3), "{seen}{rest}");
    assert!(rest.contains("declined"), "{rest}");
    assert_eq!(env.json(&["account", "list"]), serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_servers_are_transient() {
    let env = Env::new(5).await;
    env.add_demo();
    let graph = format!("http://127.0.0.1:{}/v1.0", closed_port());
    for args in [&["sync"][..], &["folders"]] {
        let mut cmd = env.cmd(args);
        cmd.env("MAILROOM_GRAPH_URL", &graph)
            .env("MAILROOM_MAX_ATTEMPTS", "1");
        let (_, stderr) = env.expect_cmd(4, cmd, &format!("{args:?} with Graph down"));
        assert!(stderr.contains("retry later"), "{args:?}: {stderr}");
    }
    let mut cmd = env.cmd(&["--json", "doctor"]);
    cmd.env("MAILROOM_GRAPH_URL", &graph)
        .env("MAILROOM_MAX_ATTEMPTS", "1");
    env.expect_cmd(4, cmd, "doctor with Graph down");

    // An IMAP server that is not there: not stored, exit 4.
    let port = closed_port().to_string();
    let mut cmd = env.cmd(&[
        "account",
        "add",
        "imap",
        "--email",
        "bob@example.test",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--tls",
        "none",
        "--password-stdin",
    ]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hunter2-password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    env.record(&stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("nothing was stored") && !stderr.contains("hunter2"),
        "{stderr}"
    );
    assert_eq!(env.json(&["account", "list"]).as_array().unwrap().len(), 1);
}

/// `sync --json` prints each account as soon as every account before it is done:
/// the output is still one array in account order, byte for byte what printing it
/// whole gives, with failed accounts in their place.
#[tokio::test(flavor = "multi_thread")]
async fn sync_json_is_one_array_in_account_order_with_failures_in_place() {
    let env = Env::new(5).await;
    env.add_demo();
    let port = closed_port().to_string();
    let unreachable: Vec<String> = (0..5).map(|i| format!("down{i}@example.test")).collect();
    for email in &unreachable {
        let mut child = env
            .cmd(&[
                "account",
                "add",
                "imap",
                "--email",
                email,
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--tls",
                "none",
                "--password-stdin",
                "--no-verify",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"not-a-real-password\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let (stdout, _) = env.expect(4, &["--json", "sync", "--concurrency", "3"]);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let accounts: Vec<&str> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["account"].as_str().unwrap())
        .collect();
    let mut expected = vec![DEMO];
    expected.extend(unreachable.iter().map(String::as_str));
    assert_eq!(accounts, expected, "{stdout}");
    assert_eq!(report[0]["outcome"], "synced", "{stdout}");
    for row in &report.as_array().unwrap()[1..] {
        assert_eq!(row["outcome"], "failed", "{stdout}");
        assert!(
            row["error"].as_str().unwrap().contains("127.0.0.1"),
            "{row}"
        );
    }
    assert_eq!(
        stdout,
        format!("{}\n", serde_json::to_string_pretty(&report).unwrap())
    );
}
