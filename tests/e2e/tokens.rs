//! Tokens across processes: every rotated refresh token is stored before the process
//! ends, and a grant revoked for one account stops that account only.

use std::time::Duration;

use chrono::Utc;
use mailroom_core::WellKnownFolder;
use mailroom_sim::{Faults, MailboxSpec, RefreshFailure, SimConfig};
use serde_json::Value;

use crate::support::truth::assert_account_matches;
use crate::support::{Db, Env};

const INBOX: [(&str, WellKnownFolder); 1] = [("inbox", WellKnownFolder::Inbox)];

/// The client takes an access token as expired 5 minutes before its expiry.
const CLIENT_SKEW: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread")]
async fn strict_rotation_three_access_token_expiries_across_syncs_keep_working() {
    const CAROL: &str = "carol@tokens.test";
    // Access tokens live 302 s: 2 s of use for the client. Strict rotation: a refresh
    // token redeemed twice is refused (AADSTS70000), so a sync that lost a rotated
    // refresh token would fail the next one.
    let env = Env::start(
        SimConfig {
            mailboxes: vec![MailboxSpec::new(CAROL, 30).all_in("inbox")],
            device_code_interval: Duration::ZERO,
            access_token_lifetime: CLIENT_SKEW + Duration::from_secs(2),
            strict_refresh_rotation: true,
            faults: Faults::none(),
            ..SimConfig::default()
        },
        Db::Sqlite,
    )
    .await;
    let mailbox = env.sim.mailbox(CAROL).unwrap();
    env.add_outlook(CAROL, &[]);
    assert_eq!(env.sim.counters().device_code_grants(CAROL), 1);
    let report = env.json(&["sync"]);
    assert_eq!(report[0]["upserted"], 30, "{report}");

    for round in 1..=3 {
        let refreshes = env.sim.counters().refreshes(CAROL);
        let before = env.oauth_credentials(CAROL).await;
        let expiry = before.expiry.expect("an access token expiry");
        if round < 3 {
            // Expired by time, on the client's clock.
            let at = expiry - chrono::Duration::from_std(CLIENT_SKEW).unwrap()
                + chrono::Duration::milliseconds(50);
            if let Ok(wait) = (at - Utc::now()).to_std() {
                tokio::time::sleep(wait).await;
            }
        } else {
            // Expired on the server: Graph answers 401 to a token the client still
            // trusts (or its 2 s ran out meanwhile).
            assert!(env.sim.expire_access_tokens(CAROL).unwrap() >= 1);
        }
        mailbox.add_messages("inbox", 3).unwrap();

        let report = env.json(&["-vv", "sync"]);
        assert_eq!(report[0]["outcome"], "synced", "round {round}: {report}");
        assert_eq!(report[0]["upserted"], 3, "round {round}: {report}");
        assert_eq!(
            report[0]["credentials_refreshed"], true,
            "round {round}: {report}"
        );

        let counters = env.sim.counters();
        assert_eq!(
            counters.refreshes(CAROL),
            refreshes + 1,
            "round {round}: one refresh per expiry"
        );
        assert_eq!(counters.refresh_token_replays_total, 0, "round {round}");
        assert!(
            counters.refresh_failures.is_empty(),
            "{:?}",
            counters.refresh_failures
        );
        let after = env.oauth_credentials(CAROL).await;
        let (old_rt, new_rt) = (
            before.refresh_token.expect("a refresh token"),
            after.refresh_token.expect("a refresh token"),
        );
        assert!(
            old_rt.secret() != new_rt.secret(),
            "round {round}: the rotated refresh token was not stored"
        );
        assert!(
            after.expiry > before.expiry,
            "round {round}: a new access token is stored"
        );
    }
    let accounts = env.json(&["account", "list"]);
    assert_eq!(accounts[0]["status"], "active", "{accounts}");
    assert_account_matches(env.store().await, CAROL, &mailbox, &INBOX).await;
}

/// The `sync --json` row of one account.
fn row<'a>(report: &'a Value, email: &str) -> &'a Value {
    report
        .as_array()
        .expect("a JSON list")
        .iter()
        .find(|r| r["account"] == email)
        .unwrap_or_else(|| panic!("no row for {email}: {report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_refresh_token_marks_only_its_account_needs_reauth() {
    const ANN: &str = "ann@tokens.test";
    const BEN: &str = "ben@tokens.test";
    const CID: &str = "cid@tokens.test";
    let env = Env::start(
        SimConfig {
            mailboxes: [ANN, BEN, CID]
                .map(|a| MailboxSpec::new(a, 15).all_in("inbox"))
                .to_vec(),
            // Each sign-in is approved by the test, as the right user.
            auto_approve_after_polls: None,
            device_code_interval: Duration::from_secs(1),
            strict_refresh_rotation: true,
            faults: Faults::none(),
            ..SimConfig::default()
        },
        Db::Sqlite,
    )
    .await;
    for user in [ANN, BEN, CID] {
        env.sign_in_as(user, &["-vv", "account", "add", "outlook", "--email", user]);
    }
    let report = env.json(&["sync", "-vv"]);
    for user in [ANN, BEN, CID] {
        assert_eq!(row(&report, user)["outcome"], "synced", "{report}");
        assert_eq!(row(&report, user)["upserted"], 15, "{report}");
    }

    // Ben's grant is revoked (a password reset); his token must be refreshed now.
    env.sim
        .script_refresh_failure(BEN, RefreshFailure::Revoked)
        .unwrap();
    env.sim.expire_access_tokens(BEN).unwrap();
    for user in [ANN, BEN, CID] {
        env.sim
            .mailbox(user)
            .unwrap()
            .add_messages("inbox", 4)
            .unwrap();
    }
    let report = env.json_code(3, &["sync", "-vv"]);
    assert_eq!(row(&report, BEN)["outcome"], "reauth_required", "{report}");
    assert_eq!(row(&report, BEN)["code"], "AADSTS50173", "{report}");
    for user in [ANN, CID] {
        assert_eq!(row(&report, user)["outcome"], "synced", "{report}");
        assert_eq!(row(&report, user)["upserted"], 4, "{report}");
    }
    let accounts = env.json(&["account", "list"]);
    for a in accounts.as_array().unwrap() {
        if a["email"] == BEN {
            assert_eq!(a["status"], "needs_reauth", "{a}");
            assert_eq!(a["auth_error_code"], "AADSTS50173", "{a}");
            assert!(a["last_error"].is_string(), "{a}");
        } else {
            assert_eq!(a["status"], "active", "{a}");
            assert!(a["last_error"].is_null(), "{a}");
            assert!(a["auth_error_code"].is_null(), "{a}");
        }
    }

    // The others keep syncing — by hand (Ben skipped, exit 3 says someone must sign
    // in) and in the worker (Ben not even claimed) — and Ben's server is left alone.
    let store = env.store().await;
    for round in 0..2 {
        for user in [ANN, BEN, CID] {
            env.sim
                .mailbox(user)
                .unwrap()
                .add_messages("inbox", 2)
                .unwrap();
        }
        let before = env.sim.counters();
        let lines = if round == 0 {
            let report = env.json_code(3, &["sync", "-vv"]);
            assert_eq!(row(&report, BEN)["outcome"], "skipped", "{report}");
            report.as_array().unwrap().clone()
        } else {
            // Every account due now, Ben's too: the worker still leaves him alone.
            for a in store.list_accounts().await.unwrap() {
                let due = mailroom_store::AccountUpdate {
                    next_sync_at: Some(None),
                    ..Default::default()
                };
                store.update_account(a.id, due).await.unwrap();
            }
            let out = env.expect(0, &["--json", "-v", "worker", "--once"]);
            assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
            out.stdout
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
                .collect()
        };
        for user in [ANN, CID] {
            let line = lines.iter().find(|l| l["account"] == user).expect("a line");
            assert_eq!(line["outcome"], "synced", "{lines:?}");
            assert_eq!(line["upserted"], 2, "{lines:?}");
        }
        assert!(
            !lines
                .iter()
                .any(|l| l["account"] == BEN && l["outcome"] == "synced"),
            "{lines:?}"
        );
        let after = env.sim.counters();
        assert_eq!(
            after.requests_by_mailbox.get(BEN),
            before.requests_by_mailbox.get(BEN),
            "no Graph request for the account that needs re-auth"
        );
        assert_eq!(
            after.refresh_failures.get(BEN),
            before.refresh_failures.get(BEN),
            "no refresh attempt with the revoked grant"
        );
    }
    for user in [ANN, CID] {
        assert_account_matches(store, user, &env.sim.mailbox(user).unwrap(), &INBOX).await;
    }
    // Ben's database holds what was synced before the revocation, nothing since.
    let ben = env.account(BEN).await;
    let stored = store
        .count_messages(&mailroom_store::MessageQuery {
            account_id: Some(ben.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stored, 15);
    assert_eq!(env.sim.counters().refresh_token_replays_total, 0);
}
