//! The /_sim control API, for black-box use of the binary.

use mailroom_sim::{Faults, SimConfig};
use serde_json::{Value, json};

use crate::{client, start};

#[tokio::test]
async fn faults_and_mailboxes_through_the_control_api() {
    let sim = start(SimConfig {
        faults: Faults::none(),
        ..SimConfig::default()
    })
    .await;
    let ctl = |p: &str| format!("{}/_sim/{p}", sim.base_url());
    let http = client();
    let f: Value = http
        .put(ctl("faults"))
        .json(&json!({"error_rate": 0.5, "latency": 0.25, "retry_after": {"fractional": 0.5}, "request_budget": {"requests": 10, "window": 60}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(f["latency"], 0.25);
    let faults = sim.faults();
    assert_eq!(faults.latency, std::time::Duration::from_millis(250));
    assert_eq!(faults.request_budget.unwrap().window.as_secs(), 60);
    assert_eq!(
        faults.statuses,
        [429, 500, 503, 504],
        "missing fields take defaults"
    );
    let r = http
        .put(ctl("faults"))
        .json(&json!({"latency": -1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    let r: Value = http
        .post(ctl("mailboxes"))
        .json(&json!({"address": "carol@contoso.test", "display_name": "Carol", "messages": 12, "layout": {"all_in": "archive"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["address"], "carol@contoso.test");
    assert_eq!(
        sim.mailbox("carol@contoso.test")
            .unwrap()
            .folder_messages("archive")
            .unwrap()
            .len(),
        12
    );
    let dup = http
        .post(ctl("mailboxes"))
        .json(&json!({"address": "carol@contoso.test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status().as_u16(), 400);
    let list: Value = http
        .get(ctl("mailboxes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);

    // Mutations and ground truth.
    let folder = "mailboxes/carol@contoso.test";
    let msgs: Value = http
        .get(ctl(&format!("{folder}/folders/archive/messages")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = msgs[0]["id"].as_str().unwrap().to_owned();
    let enc = crate::enc(&id);
    let moved: Value = http
        .post(ctl(&format!("{folder}/messages/{enc}/move")))
        .json(&json!({"folder": "inbox"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_id = moved["id"].as_str().unwrap();
    assert_ne!(new_id, id);
    let r = http
        .post(ctl(&format!(
            "{folder}/messages/{}/read",
            crate::enc(new_id)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .post(ctl(&format!(
            "{folder}/messages/{}/subject",
            crate::enc(new_id)
        )))
        .json(&json!({"subject": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let one: Value = http
        .get(ctl(&format!("{folder}/messages/{}", crate::enc(new_id))))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            one["subject"].as_str(),
            one["is_read"].as_bool(),
            one["folder"].as_str()
        ),
        (Some("renamed"), Some(true), Some("Inbox"))
    );
    let added: Value = http
        .post(ctl(&format!("{folder}/messages")))
        .json(&json!({"folder": "inbox", "subject": "Hand-made", "from": {"name": "Zoë", "address": "zoe@x.test"}, "body": "hi & bye"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hand = added["ids"][0].as_str().unwrap();
    assert_eq!(
        sim.mailbox("carol@contoso.test")
            .unwrap()
            .message(hand)
            .unwrap()
            .subject,
        "Hand-made"
    );
    let r = http
        .post(ctl(&format!(
            "{folder}/messages/{}/delete",
            crate::enc(hand)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        sim.mailbox("carol@contoso.test")
            .unwrap()
            .message(hand)
            .is_err()
    );
    let r = http.get(ctl("nope")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = http
        .post(ctl("mailboxes/nobody@x.test/messages"))
        .json(&json!({"folder": "inbox", "count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
