//! IMAP accounts through the binary against a real Dovecot: a password login over TLS
//! with a private CA, and XOAUTH2 with tokens from the simulator that Dovecot checks
//! at the simulator's introspection endpoint (Outlook's IMAP fallback).

use std::collections::BTreeMap;
use std::time::Duration;

use mailroom_imap::testing::{Admin, Dovecot, DovecotConfig};
use mailroom_sim::{Faults, MailboxSpec, SimConfig};

use crate::support::{Db, Env};

const ALICE: &str = "alice@imap.test";
const DEMO: &str = "demo@mailroom.test";

/// A Dovecot INBOX as the test wrote it: UID → (subject, seen).
struct Inbox {
    admin: Admin,
    truth: BTreeMap<u32, (String, bool)>,
    next: usize,
    tag: &'static str,
}

impl Inbox {
    async fn open(dovecot: &Dovecot, user: &str, tag: &'static str) -> Inbox {
        let admin = dovecot.admin(user).await.expect("an admin session");
        Inbox {
            admin,
            truth: BTreeMap::new(),
            next: 1,
            tag,
        }
    }

    /// Appends `seen.len()` messages, `\Seen` where `seen[i]`, and learns their UIDs.
    async fn append(&mut self, seen: &[bool]) {
        let mut subjects = Vec::new();
        for s in seen {
            let i = self.next;
            self.next += 1;
            let subject = format!("{} message {i}", self.tag);
            let raw = format!(
                "From: Sender {i} <sender{i}@example.test>\r\nTo: {tag}@imap.test\r\n\
                 Subject: {subject}\r\nMessage-ID: <{tag}.{i}@e2e.test>\r\n\
                 Date: Mon, 3 Mar 2025 10:{:02}:00 +0000\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\r\nBody of message {i}.\r\n",
                i % 60,
                tag = self.tag,
            );
            let flags = if *s { "(\\Seen)" } else { "" };
            self.admin
                .append("INBOX", raw.as_bytes(), flags)
                .await
                .expect("append");
            subjects.push((subject, *s));
        }
        let uids = self.admin.uids("INBOX").await.expect("uids");
        let new: Vec<u32> = uids
            .into_iter()
            .filter(|u| !self.truth.contains_key(u))
            .collect();
        assert_eq!(new.len(), subjects.len(), "one new UID per APPEND");
        self.truth.extend(new.into_iter().zip(subjects));
    }

    async fn expunge(&mut self, uids: &[u32]) {
        let set = uids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        self.admin.expunge("INBOX", &set).await.expect("expunge");
        for u in uids {
            self.truth.remove(u);
        }
    }

    async fn set_seen(&mut self, uid: u32, seen: bool) {
        self.admin
            .set_seen("INBOX", uid, seen)
            .await
            .expect("store flags");
        self.truth.get_mut(&uid).expect("a known UID").1 = seen;
    }

    fn uids(&self) -> Vec<u32> {
        self.truth.keys().copied().collect()
    }
}

/// `messages list --json` of an account as UID → (subject, read); server ids are
/// `INBOX:<uidvalidity>:<uid>`.
fn listed(env: &Env, email: &str) -> BTreeMap<u32, (String, bool)> {
    let list = env.json(&["messages", "list", "--account", email, "--limit", "0"]);
    let rows = list.as_array().expect("a JSON list");
    let map: BTreeMap<u32, (String, bool)> = rows
        .iter()
        .map(|m| {
            let rid = m["remote_id"].as_str().expect("remote_id");
            let uid = rid
                .strip_prefix("INBOX:")
                .and_then(|r| r.rsplit(':').next())
                .and_then(|u| u.parse().ok())
                .unwrap_or_else(|| panic!("an INBOX:<validity>:<uid> id: {rid}"));
            (
                uid,
                (
                    m["subject"].as_str().unwrap_or_default().to_owned(),
                    m["is_read"].as_bool().expect("is_read"),
                ),
            )
        })
        .collect();
    assert_eq!(map.len(), rows.len(), "one row per UID: {list}");
    map
}

fn sync(env: &Env, email: &str) -> serde_json::Value {
    let report = env.json(&["-vv", "sync", "--account", email]);
    assert_eq!(report[0]["outcome"], "synced", "{report}");
    report[0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn password_and_xoauth2_imap_accounts_sync_what_dovecot_holds() {
    let env = Env::start(
        SimConfig {
            mailboxes: vec![MailboxSpec::new(DEMO, 1)],
            device_code_interval: Duration::ZERO,
            faults: Faults::none(),
            ..SimConfig::default()
        },
        Db::Sqlite,
    )
    .await;
    let dovecot = Dovecot::start_with(
        &DovecotConfig::default().oauth2_introspection_url(env.sim.introspection_url()),
    )
    .expect("Dovecot starts (install it with `apt-get install dovecot-imapd`)");
    let port = dovecot.imaps_port().to_string();
    let ca = dovecot.ca_file().display().to_string();

    // A password account on implicit TLS. Dovecot's certificate is signed by a
    // private CA: refused without it (nothing stored), accepted with --imap-ca-file.
    let mut alice = Inbox::open(&dovecot, "alice", "alice").await;
    alice
        .append(&[
            false, true, false, false, true, false, false, false, true, false,
        ])
        .await;
    let add = [
        "-vv",
        "account",
        "add",
        "imap",
        "--email",
        ALICE,
        "--host",
        dovecot.host(),
        "--port",
        &port,
        "--username",
        "alice",
        "--password-stdin",
    ];
    let password = format!("{}\n", Dovecot::PASSWORD);
    let out = env.run_with_stdin(&add, &password);
    assert_ne!(
        out.code,
        Some(0),
        "an untrusted certificate is refused: {out:?}"
    );
    assert!(out.stderr.contains("nothing was stored"), "{}", out.stderr);
    assert_eq!(env.json(&["account", "list"]), serde_json::json!([]));
    let mut with_ca = vec!["--imap-ca-file", ca.as_str()];
    with_ca.extend(add);
    let out = env.run_with_stdin(&with_ca, &password);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("logged in"), "{}", out.stderr);
    env.set_env("MAILROOM_IMAP_CA_FILE", ca.clone());

    let report = sync(&env, ALICE);
    assert_eq!(report["upserted"], 10, "{report}");
    assert_eq!(listed(&env, ALICE), alice.truth, "after the first sync");

    // Behind the connector's back: expunges, arrivals, flag changes.
    let uids = alice.uids();
    alice.expunge(&[uids[0], uids[4], uids[7]]).await;
    alice.append(&[false, true, false, false]).await;
    alice.set_seen(uids[2], true).await;
    alice.set_seen(uids[1], false).await;
    let report = sync(&env, ALICE);
    assert_eq!(report["removed"], 3, "{report}");
    assert_eq!(
        listed(&env, ALICE),
        alice.truth,
        "after expunges and appends"
    );
    let report = sync(&env, ALICE);
    assert_eq!(report["upserted"], 0, "an idle sync: {report}");
    assert_eq!(report["removed"], 0, "an idle sync: {report}");

    // Outlook's IMAP fallback: the device code flow for the Outlook IMAP resource,
    // then SASL XOAUTH2, which Dovecot validates at the simulator.
    let mut demo = Inbox::open(&dovecot, DEMO, "demo").await;
    demo.append(&[true, false, false, true, false, false]).await;
    let introspected = || {
        env.sim
            .counters()
            .requests_by_route
            .get("POST /oauth2/introspect")
            .copied()
            .unwrap_or(0)
    };
    env.expect(
        0,
        &[
            "-vv",
            "account",
            "add",
            "imap",
            "--oauth",
            "--email",
            DEMO,
            "--host",
            "localhost",
            "--port",
            &port,
        ],
    );
    assert!(
        introspected() >= 1,
        "Dovecot checked the token at the simulator"
    );
    let shown = env.json(&["account", "show", DEMO]);
    assert_eq!(shown["credentials"]["protocol"], "imap", "{shown}");
    assert_eq!(
        shown["credentials"]["auth"]["xoauth2"]["audience"], "https://outlook.office.com",
        "{shown}"
    );
    let report = sync(&env, DEMO);
    assert_eq!(report["upserted"], 6, "{report}");
    assert_eq!(
        listed(&env, DEMO),
        demo.truth,
        "XOAUTH2 account, first sync"
    );

    // The token is revoked on the server: Dovecot refuses it, the connector refreshes
    // (stored, re-encrypted) and logs in again.
    let before = introspected();
    assert!(env.sim.expire_access_tokens(DEMO).unwrap() >= 1);
    let uids = demo.uids();
    demo.expunge(&[uids[1]]).await;
    demo.append(&[false, false]).await;
    let report = sync(&env, DEMO);
    assert_eq!(report["credentials_refreshed"], true, "{report}");
    assert_eq!(report["upserted"], 2, "{report}");
    assert_eq!(report["removed"], 1, "{report}");
    assert_eq!(env.sim.counters().refreshes(DEMO), 1);
    assert!(
        introspected() >= before + 2,
        "a refused and an accepted token"
    );
    assert_eq!(
        listed(&env, DEMO),
        demo.truth,
        "XOAUTH2 account after a refresh"
    );
    // The password account was left as it was.
    assert_eq!(listed(&env, ALICE), alice.truth);
}
