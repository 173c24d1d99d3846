//! Operating the worker: request ids in errors (`account show`), `--log-format json`,
//! and `mailroom doctor --json` agreeing with the worker's `/status` on every field
//! they share; `/readyz`, `/metrics` and the HTML page from the real binary.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use mailroom_sim::{MailboxSpec, RefreshFailure, SimConfig};
use serde_json::Value;

use crate::support::{Db, Env, wait_for};

const ALICE: &str = "alice@contoso.test";
const BOB: &str = "bob@contoso.test";
const CAROL: &str = "carol@contoso.test";

/// `GET path` on the worker's listener: status code and body.
fn get(port: u16, path: &str) -> (u16, String) {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the listener");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, body.to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_json_logs_and_doctor_agreeing_with_status() {
    let env = Env::start(
        SimConfig::default().mailboxes(
            [ALICE, BOB, CAROL]
                .iter()
                .map(|u| MailboxSpec::new(*u, 30).attachment_percent(0))
                .collect(),
        ),
        Db::Sqlite,
    )
    .await;
    env.add_outlook_direct(&[ALICE.to_owned(), CAROL.to_owned()], false)
        .await;
    // Bob's token is stale and his grant expired: the sync's refresh fails.
    env.add_outlook_direct(&[BOB.to_owned()], true).await;
    env.sim
        .script_refresh_failure(BOB, RefreshFailure::Expired)
        .unwrap();
    // Carol's next two Graph requests fail, without retries.
    env.sim.script_faults(CAROL, &[500, 500]).unwrap();
    env.set_env("MAILROOM_MAX_ATTEMPTS", "1");

    let out = env.run(&["sync", "--log-format", "json", "-v"]);
    assert_ne!(out.code, Some(0), "{out:?}");
    // One JSON object per log line, with the sync's spans.
    let lines: Vec<Value> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty(), "{}", out.stderr);
    // In the list of spans the event is in, or the span a `close` line is about.
    let in_span = |v: &Value, span: &str, field: &str| {
        let here = |s: &Value| s["name"] == span && !s[field].is_null();
        v["spans"].as_array().is_some_and(|s| s.iter().any(here)) || here(&v["span"])
    };
    assert!(
        lines.iter().any(|v| in_span(v, "folder_sync", "folder")
            && (in_span(v, "account_sync", "account") || in_span(v, "folder_sync", "account"))),
        "no line inside an account and a folder span: {}",
        out.stderr
    );
    assert!(
        lines.iter().any(|v| v["client_request_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
            && v["request_id"].as_str().is_some_and(|s| !s.is_empty())
            && v["elapsed_ms"].is_u64()),
        "no line with both request ids and the request's duration: {}",
        out.stderr
    );
    assert!(
        lines.iter().any(|v| v["time.busy"].is_string()),
        "span durations: {}",
        out.stderr
    );

    // The errors quote the ids Microsoft support asks for.
    let carol = env.json(&["account", "show", CAROL]);
    let error = carol["last_error"].as_str().expect("carol's last error");
    assert!(
        error.contains("(request-id ") && error.contains(", client-request-id "),
        "{error}"
    );
    let text = env.run(&["account", "show", CAROL]).stdout;
    assert!(text.contains("client-request-id"), "{text}");
    let bob = env.json(&["account", "show", BOB]);
    let error = bob["last_error"].as_str().expect("bob's last error");
    assert!(
        error.contains("AADSTS700082")
            && error.contains("trace_id ")
            && error.contains("correlation_id "),
        "{error}"
    );

    // The worker, with its listener; it syncs alice and carol (failing again), once.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut worker = env.spawn(&["worker", "--listen", &listen, "--interval", "1h"]);
    wait_for("the worker's pass", Duration::from_secs(60), async || {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            return false; // not listening yet
        }
        let (code, body) = get(port, "/status?format=json");
        if code != 200 {
            return false;
        }
        let status: Value = serde_json::from_str(&body).unwrap();
        let soon = chrono::Utc::now() + chrono::Duration::minutes(30);
        status["accounts"].as_array().unwrap().iter().all(|a| {
            a["leased_by"].is_null()
                && (a["status"] != "active"
                    || a["next_due"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .is_some_and(|t| t > soon))
        })
    })
    .await;
    let (code, body) = get(port, "/readyz");
    assert_eq!(code, 200, "{body}");
    let (code, metrics) = get(port, "/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("mailroom_account_syncs_total{outcome=\"synced\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailroom_accounts{status=\"needs_reauth\"} 1"),
        "{metrics}"
    );
    let (code, page) = get(port, "/status?format=html");
    assert_eq!(code, 200);
    assert!(
        page.contains("AADSTS700082") && page.contains("<table"),
        "{page}"
    );

    // doctor --json and /status: the same rows.
    let (_, body) = get(port, "/status?format=json");
    let status: Value = serde_json::from_str(&body).unwrap();
    let doctor = env.run(&["--json", "doctor"]).json();
    let from_doctor = doctor["accounts"]
        .as_array()
        .expect("doctor lists accounts");
    let from_status = status["accounts"].as_array().unwrap();
    assert_eq!(from_doctor.len(), 3);
    assert_eq!(from_doctor.len(), from_status.len());
    for (d, s) in from_doctor.iter().zip(from_status) {
        let (d, s) = (d.as_object().unwrap(), s.as_object().unwrap());
        let shared: Vec<&String> = d.keys().filter(|k| s.contains_key(*k)).collect();
        assert!(shared.len() >= 8, "{shared:?}");
        for key in shared {
            assert_eq!(d[key], s[key], "{key} of {}", d["account"]);
        }
    }
    worker.sigterm();
    let out = worker.wait(Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{out:?}");
}
