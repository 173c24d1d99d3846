//! The `mailroom-sim` binary, driven with plain HTTP only: device code →
//! pending → approved → token → /me → paged messages → delta round trip.

use mailroom_sim::process::SimProcess;
use serde_json::{Value, json};

use crate::{client, post_form};

#[tokio::test]
async fn binary_walkthrough() {
    let sim = SimProcess::spawn(
        env!("CARGO_BIN_EXE_mailroom-sim"),
        [
            "--port",
            "0",
            "--mailboxes",
            "2",
            "--messages",
            "40",
            "--no-auto-approve",
        ],
    )
    .expect("mailroom-sim starts and announces itself");
    assert_eq!(
        sim.mailboxes(),
        ["demo@mailroom.test", "user1@mailroom.test"]
    );
    let authority = sim.authority_url();
    let graph = sim.graph_url();
    assert_eq!(graph, format!("{authority}/v1.0"));
    assert_eq!(sim.control_url(), format!("{authority}/_sim"));
    assert_eq!(
        sim.introspection_url(),
        format!("{authority}/oauth2/introspect")
    );
    let http = client();

    // 1. Device code.
    let (status, dc) = post_form(
        &format!("{authority}/common/oauth2/v2.0/devicecode"),
        &[
            ("client_id", "cli-app"),
            (
                "scope",
                "https://graph.microsoft.com/Mail.ReadWrite offline_access openid",
            ),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(dc["verification_uri"], sim.verification_url());
    let token_url = format!("{authority}/common/oauth2/v2.0/token");
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", "cli-app"),
        ("device_code", dc["device_code"].as_str().unwrap()),
    ];
    // 2. Pending.
    let (status, pending) = post_form(&token_url, &poll).await;
    assert_eq!(
        (status, pending["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    // 3. A person approves on the verification page.
    let page = http
        .post(sim.verification_url())
        .form(&[
            ("user_code", dc["user_code"].as_str().unwrap()),
            ("mailbox", "user1@mailroom.test"),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Approved"));
    // 4. Token, after the polling interval (moved on by the control API).
    let r = http
        .post(format!("{}/clock/advance", sim.control_url()))
        .json(&json!({"seconds": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (status, tokens) = post_form(&token_url, &poll).await;
    assert_eq!(status, 200, "{tokens}");
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    // 5. /me.
    let me: Value = http
        .get(format!("{graph}/me"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["mail"], "user1@mailroom.test");
    // 6. Paged messages.
    let mut next = Some(format!(
        "{graph}/me/messages?$top=7&$select=subject,receivedDateTime"
    ));
    let mut count = 0;
    while let Some(url) = next {
        let page: Value = http
            .get(&url)
            .bearer_auth(&at)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        count += page["value"].as_array().unwrap().len();
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
    }
    assert_eq!(count, 40);
    // 7. Delta round trip.
    let mut url = format!("{graph}/me/mailFolders/inbox/messages/delta?$select=subject");
    let mut initial = 0;
    let delta_link = loop {
        let page: Value = http
            .get(&url)
            .bearer_auth(&at)
            .header("Prefer", "odata.maxpagesize=5")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        initial += page["value"].as_array().unwrap().len();
        match page["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_owned(),
            None => break page["@odata.deltaLink"].as_str().unwrap().to_owned(),
        }
    };
    assert!(initial > 5);
    let r = http
        .post(format!(
            "{}/mailboxes/user1@mailroom.test/messages",
            sim.control_url()
        ))
        .json(&json!({"folder": "inbox", "count": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let page: Value = http
        .get(&delta_link)
        .bearer_auth(&at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 2);
    assert!(page["@odata.deltaLink"].is_string());

    let counters: Value = http
        .get(format!("{}/counters", sim.control_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["device_code_grants"]["user1@mailroom.test"], 1);

    // Graceful stop on SIGTERM.
    let status = sim.stop().unwrap();
    assert!(status.success(), "{status:?}");
}
