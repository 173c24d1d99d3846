//! Graph: /me, folders, messages, paging, query options, move, delete,
//! attachments, MIME, authentication.

use std::time::Duration;

use mailroom_sim::{Faults, MailboxSpec, SimConfig, Simulator};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{Graph, assert_shape, enc, start};

const DEMO: &str = "demo@mailroom.test";

fn quiet() -> SimConfig {
    SimConfig {
        faults: Faults::none(),
        ..SimConfig::default()
    }
}

async fn sim_with(spec: MailboxSpec) -> Simulator {
    start(SimConfig {
        mailboxes: vec![spec],
        ..quiet()
    })
    .await
}

#[tokio::test]
async fn me_has_the_user_fields() {
    let sim = start(quiet()).await;
    let g = Graph::new(&sim, DEMO);
    let (status, me) = g.get("/me").await;
    assert_shape("graph/me.json", status, &me);
    assert_eq!(me["mail"], DEMO);
    assert_eq!(me["userPrincipalName"], DEMO);
    assert_eq!(me["displayName"], "Demo User");
    assert_eq!(me["id"], sim.mailbox(DEMO).unwrap().user_id());
}

#[tokio::test]
async fn folders_page_by_ten_and_resolve_well_known_names() {
    let sim = start(quiet()).await;
    let g = Graph::new(&sim, DEMO);
    let (status, page) = g.get("/me/mailFolders").await;
    assert_shape("graph/mail_folders.json", status, &page);
    assert_eq!(page["value"].as_array().unwrap().len(), 10);
    let all = g.all_pages("/me/mailFolders").await;
    assert_eq!(all.len(), 12);
    let names: Vec<&str> = all
        .iter()
        .map(|f| f["displayName"].as_str().unwrap())
        .collect();
    for n in [
        "Inbox",
        "Sent Items",
        "Drafts",
        "Deleted Items",
        "Junk Email",
        "Archive",
        "Outbox",
        "Bob's \"mail\" & more",
        "Entwürfe",
        "日本語",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let mb = sim.mailbox(DEMO).unwrap();
    for wk in [
        "inbox",
        "sentitems",
        "drafts",
        "deleteditems",
        "junkemail",
        "archive",
        "outbox",
        "Inbox",
    ] {
        let (status, f) = g.get(&format!("/me/mailFolders/{wk}")).await;
        assert_eq!(status, 200, "{wk}");
        assert_eq!(f["id"], mb.folder_id(wk).unwrap());
        let total = mb.folder_messages(wk).unwrap().len();
        assert_eq!(f["totalItemCount"], total, "{wk}");
        let unread = mb
            .folder_messages(wk)
            .unwrap()
            .iter()
            .filter(|m| !m.is_read)
            .count();
        assert_eq!(f["unreadItemCount"], unread, "{wk}");
    }
    // $top and $filter with a doubled quote; child folders.
    let (_, two) = g.get("/me/mailFolders?$top=2").await;
    assert_eq!(two["value"].as_array().unwrap().len(), 2);
    let filter = enc("displayName eq 'Bob''s \"mail\" & more'");
    let (status, bob) = g.get(&format!("/me/mailFolders?$filter={filter}")).await;
    assert_eq!(status, 200, "{bob}");
    let bob = &bob["value"][0];
    assert_eq!(bob["childFolderCount"], 1);
    let (_, kids) = g
        .get(&format!(
            "/me/mailFolders/{}/childFolders",
            enc(bob["id"].as_str().unwrap())
        ))
        .await;
    assert_eq!(kids["value"][0]["displayName"], "2025");
    assert_eq!(kids["value"][0]["parentFolderId"], bob["id"]);
    let (status, err) = g
        .get(&format!(
            "/me/mailFolders?$filter={}",
            enc("displayName eq 'Bob's'")
        ))
        .await;
    assert_eq!(status, 400, "{err}");
    let (status, err) = g.get("/me/mailFolders/nosuchfolder").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("ErrorInvalidIdMalformed"))
    );
}

#[tokio::test]
async fn messages_page_with_next_links_in_received_order() {
    let sim = sim_with(MailboxSpec::new("alice@contoso.test", 95).all_in("inbox")).await;
    let g = Graph::new(&sim, "alice@contoso.test");
    let truth: Vec<String> = sim
        .mailbox("alice@contoso.test")
        .unwrap()
        .folder_message_ids("inbox")
        .unwrap();
    assert_eq!(truth.len(), 95);
    let (status, first) = g.get("/me/mailFolders/inbox/messages").await;
    assert_eq!(status, 200);
    assert_eq!(
        first["value"].as_array().unwrap().len(),
        10,
        "default page size"
    );
    let next = first["@odata.nextLink"].as_str().unwrap();
    assert!(next.starts_with(&g.base), "{next}");
    let all = g
        .all_pages("/me/mailFolders/inbox/messages?$top=25&$select=subject")
        .await;
    let ids: Vec<&str> = all.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, truth.iter().map(String::as_str).collect::<Vec<_>>());
    // Ascending order, $skip, $count.
    let (_, asc) = g.get("/me/mailFolders/inbox/messages?$orderby=receivedDateTime%20asc&$top=3&$skip=2&$count=true").await;
    assert_eq!(asc["@odata.count"], 95);
    let asc_ids: Vec<&str> = asc["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(asc_ids, [&truth[92], &truth[91], &truth[90]]);
    for bad in ["0", "1001", "-1", "ten"] {
        let (status, err) = g
            .get(&format!("/me/mailFolders/inbox/messages?$top={bad}"))
            .await;
        assert_eq!(status, 400, "$top={bad}: {err}");
        assert!(err["error"]["innerError"]["request-id"].is_string());
    }
    let (status, _) = g.get("/me/mailFolders/inbox/messages?$top=1000").await;
    assert_eq!(status, 200);
    // /me/messages spans folders.
    let (_, everything) = g.get("/me/messages?$top=1000&$count=true").await;
    assert_eq!(everything["@odata.count"], 95);
}

#[tokio::test]
async fn filters_select_and_errors() {
    let sim = sim_with(MailboxSpec::new("alice@contoso.test", 60).all_in("inbox")).await;
    let g = Graph::new(&sim, "alice@contoso.test");
    let mb = sim.mailbox("alice@contoso.test").unwrap();
    let truth = mb.folder_messages("inbox").unwrap();
    let cut = truth[20].received;
    let lit = cut.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let ge = g
        .all_pages(&format!(
            "/me/mailFolders/inbox/messages?$filter=receivedDateTime%20ge%20{lit}&$top=7"
        ))
        .await;
    assert_eq!(ge.len(), truth.iter().filter(|m| m.received >= cut).count());
    let gt = g
        .all_pages(&format!(
            "/me/mailFolders/inbox/messages?$filter=receivedDateTime%20gt%20{lit}"
        ))
        .await;
    assert_eq!(gt.len(), ge.len() - 1);
    let unread = g
        .all_pages("/me/mailFolders/inbox/messages?$filter=isRead%20eq%20false&$top=50")
        .await;
    assert_eq!(unread.len(), truth.iter().filter(|m| !m.is_read).count());
    assert!(unread.iter().all(|m| m["isRead"] == false));
    let both = g
        .all_pages(&format!(
            "/me/mailFolders/inbox/messages?$filter={}&$orderby=receivedDateTime%20desc",
            enc(&format!("receivedDateTime ge {lit} and isRead eq true"))
        ))
        .await;
    assert_eq!(
        both.len(),
        truth
            .iter()
            .filter(|m| m.received >= cut && m.is_read)
            .count()
    );
    // A subject with a quote, found with a doubled quote.
    mb.set_subject(&truth[3].id, "Bob's \"mail\" & more")
        .unwrap();
    let (status, found) = g
        .get(&format!(
            "/me/mailFolders/inbox/messages?$filter={}",
            enc("subject eq 'Bob''s \"mail\" & more'")
        ))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["value"].as_array().unwrap().len(), 1);

    for (filter, code) in [
        (format!("receivedDateTime ge '{lit}'"), "BadRequest"),
        ("receivedDateTime ge".to_owned(), "BadRequest"),
        ("subject eq 'Bob's'".to_owned(), "BadRequest"),
        (
            "nosuchproperty eq true".to_owned(),
            "RequestBroker--ParseUri",
        ),
    ] {
        let (status, err) = g
            .get(&format!(
                "/me/mailFolders/inbox/messages?$filter={}",
                enc(&filter)
            ))
            .await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (400, Some(code)),
            "{filter}"
        );
    }
    let (status, err) = g
        .get("/me/mailFolders/inbox/messages?$filter=isRead%20eq%20false&$orderby=receivedDateTime%20desc")
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("InefficientFilter"))
    );

    let (status, page) = g
        .get("/me/mailFolders/inbox/messages?$select=sender,subject&$top=2")
        .await;
    assert_shape("graph/messages_select_page.json", status, &page);
    let (status, err) = g.get("/me/mailFolders/inbox/messages?$select=nosuch").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("RequestBroker--ParseUri"))
    );
}

#[tokio::test]
async fn one_message_drafts_bodies_and_mime() {
    let sim = start(SimConfig {
        mailboxes: vec![MailboxSpec::new("alice@contoso.test", 400)],
        ..quiet()
    })
    .await;
    let g = Graph::new(&sim, "alice@contoso.test");
    let mb = sim.mailbox("alice@contoso.test").unwrap();
    let inbox = mb.folder_messages("inbox").unwrap();
    let m = &inbox[0];
    let (status, msg) = g.get(&format!("/me/messages/{}", enc(&m.id))).await;
    assert_shape("graph/message.json", status, &msg);
    assert_eq!(msg["subject"], m.subject.as_str());
    assert_eq!(msg["body"]["contentType"], "html");
    assert!(msg["bodyPreview"].as_str().unwrap().chars().count() <= 255);
    assert_eq!(msg["parentFolderId"], mb.folder_id("inbox").unwrap());
    // The same id also works unencoded in the path and under its folder.
    let (status, _) = g.get(&format!("/me/messages/{}", m.id)).await;
    assert_eq!(status, 200);
    let (status, _) = g
        .get(&format!("/me/mailFolders/inbox/messages/{}", enc(&m.id)))
        .await;
    assert_eq!(status, 200);

    let (_, _, text) = g
        .get_with(
            &format!("/me/messages/{}", enc(&m.id)),
            &[("Prefer", "outlook.body-content-type=\"text\"")],
        )
        .await;
    assert_eq!(text["body"]["contentType"], "text");
    assert!(!text["body"]["content"].as_str().unwrap().contains("<p>"));

    let drafts = mb.folder_messages("drafts").unwrap();
    let d = drafts.first().expect("a draft");
    let (status, mut draft) = g.get(&format!("/me/messages/{}", enc(&d.id))).await;
    assert_eq!(draft["isDraft"], true);
    assert!(
        draft.get("from").is_none() && draft.get("sender").is_none(),
        "{draft}"
    );
    let obj = draft.as_object_mut().unwrap();
    obj.insert(
        "from".into(),
        json!({"emailAddress": {"name": "", "address": ""}}),
    );
    obj.insert(
        "sender".into(),
        json!({"emailAddress": {"name": "", "address": ""}}),
    );
    assert_shape("graph/message.json", status, &draft);

    // Some generated bodies are longer than 2000 characters.
    let long = g
        .all_pages("/me/mailFolders/inbox/messages?$top=200&$select=body")
        .await;
    assert!(
        long.iter()
            .any(|m| m["body"]["content"].as_str().unwrap().len() > 2000)
    );

    let (status, ct, raw) = g
        .bytes(&format!("/me/messages/{}/$value", enc(&m.id)))
        .await;
    assert_eq!((status, ct.as_str()), (200, "message/rfc822"));
    let raw = String::from_utf8(raw).unwrap();
    assert!(
        raw.contains(&format!("Message-ID: {}", m.internet_message_id)),
        "{raw:.400}"
    );
    assert!(raw.contains("MIME-Version: 1.0"));

    let (status, err) = g.get("/me/messages/AAMkAGnotanid").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("ErrorInvalidIdMalformed"))
    );
    let (status, err) = g.get("/me/mesages").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("BadRequest"))
    );
}

#[tokio::test]
async fn attachments_expand_list_get_and_download() {
    let sim = start(SimConfig {
        mailboxes: vec![MailboxSpec::new("alice@contoso.test", 600).all_in("inbox")],
        ..quiet()
    })
    .await;
    let g = Graph::new(&sim, "alice@contoso.test");
    let mb = sim.mailbox("alice@contoso.test").unwrap();
    let inbox = mb.folder_messages("inbox").unwrap();
    let with = inbox
        .iter()
        .find(|m| m.has_attachments)
        .expect("some attachments");
    let (_, expanded) = g
        .get(&format!(
            "/me/messages/{}?$expand=attachments",
            enc(&with.id)
        ))
        .await;
    let atts = expanded["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), with.attachment_count);
    assert_eq!(expanded["hasAttachments"], true);
    let (_, slim) = g
        .get(&format!(
            "/me/messages/{}?$expand=attachments($select=name,size)",
            enc(&with.id)
        ))
        .await;
    assert!(slim["attachments"][0].get("contentBytes").is_none());

    let (_, list) = g
        .get(&format!("/me/messages/{}/attachments", enc(&with.id)))
        .await;
    let first = &list["value"][0];
    let aid = first["id"].as_str().unwrap();
    let (status, one) = g
        .get(&format!(
            "/me/messages/{}/attachments/{}",
            enc(&with.id),
            enc(aid)
        ))
        .await;
    assert_shape("graph/attachment.json", status, &one);
    let (status, ct, bytes) = g
        .bytes(&format!(
            "/me/messages/{}/attachments/{}/$value",
            enc(&with.id),
            enc(aid)
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(ct, first["contentType"].as_str().unwrap());
    assert_eq!(bytes.len() as u64, first["size"].as_u64().unwrap());

    // Large attachments exist and download whole.
    let mut large = None;
    for m in inbox.iter().filter(|m| m.attachment_count > 0).take(400) {
        let (_, l) = g
            .get(&format!(
                "/me/messages/{}/attachments?$select=name,size",
                enc(&m.id)
            ))
            .await;
        if let Some(a) = l["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["size"].as_u64().unwrap() > 2_000_000)
        {
            large = Some((
                m.id.clone(),
                a["id"].as_str().unwrap().to_owned(),
                a["size"].as_u64().unwrap(),
            ));
            break;
        }
    }
    let (mid, aid, size) = large.expect("a large attachment in 600 messages");
    let (status, _, bytes) = g
        .bytes(&format!(
            "/me/messages/{}/attachments/{}/$value",
            enc(&mid),
            enc(&aid)
        ))
        .await;
    assert_eq!((status, bytes.len() as u64), (200, size));

    // Inline attachments do not make hasAttachments true.
    let inline_only = inbox
        .iter()
        .find(|m| m.attachment_count > 0 && !m.has_attachments);
    if let Some(m) = inline_only {
        let (_, v) = g
            .get(&format!(
                "/me/messages/{}?$select=hasAttachments",
                enc(&m.id)
            ))
            .await;
        assert_eq!(v["hasAttachments"], false);
    }
    let (status, _) = g
        .get(&format!(
            "/me/messages/{}/attachments/{}",
            enc(&inbox[0].id),
            enc(&aid)
        ))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn move_gives_a_new_id_unless_immutable_ids_are_asked() {
    let sim = start(quiet()).await;
    let g = Graph::new(&sim, DEMO);
    let mb = sim.mailbox(DEMO).unwrap();
    let inbox = mb.folder_messages("inbox").unwrap();
    let (a, b) = (&inbox[0], &inbox[1]);
    let (status, moved) = g
        .post(
            &format!("/me/messages/{}/move", enc(&a.id)),
            json!({"destinationId": "archive"}),
        )
        .await;
    assert_eq!(status, 201, "{moved}");
    let new_id = moved["id"].as_str().unwrap();
    assert_ne!(new_id, a.id);
    assert_eq!(moved["parentFolderId"], mb.folder_id("archive").unwrap());
    let (status, gone) = g.get(&format!("/me/messages/{}", enc(&a.id))).await;
    assert_shape("graph/error_not_found.json", status, &gone);
    assert_eq!(mb.message(new_id).unwrap().folder, "Archive");

    let imm = [("Prefer", "IdType=\"ImmutableId\"")];
    let (_, h, before) = g
        .get_with(&format!("/me/messages/{}", enc(&b.id)), &imm)
        .await;
    assert_eq!(
        h.get("preference-applied").unwrap(),
        "IdType=\"ImmutableId\""
    );
    let imm_id = before["id"].as_str().unwrap().to_owned();
    assert_eq!(imm_id, b.immutable_id);
    let dest = mb.folder_id("Projects/Alpha").unwrap();
    let (status, _, moved) = g
        .send(
            Method::POST,
            &format!("/me/messages/{}/move", enc(&imm_id)),
            &imm,
            Some(json!({"destinationId": dest})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(moved["id"], imm_id.as_str());
    let (status, again) = g.get(&format!("/me/messages/{}", enc(&imm_id))).await;
    assert_eq!(status, 200);
    assert_eq!(again["parentFolderId"], dest.as_str());
    let (status, _) = g.get(&format!("/me/messages/{}", enc(&b.id))).await;
    assert_eq!(status, 404, "the old regular id is gone");

    let (status, err) = g
        .post(&format!("/me/messages/{}/move", enc(&imm_id)), json!({}))
        .await;
    assert_eq!(status, 400, "{err}");
}

#[tokio::test]
async fn delete_moves_to_deleted_items_and_permanent_delete_removes() {
    let sim = start(quiet()).await;
    let g = Graph::new(&sim, DEMO);
    let mb = sim.mailbox(DEMO).unwrap();
    let inbox = mb.folder_messages("inbox").unwrap();
    let before = mb.folder_messages("deleteditems").unwrap().len();
    let (status, _, body) = g
        .send(
            Method::DELETE,
            &format!("/me/messages/{}", enc(&inbox[0].id)),
            &[],
            None,
        )
        .await;
    assert_eq!((status, body), (204, Value::String(String::new())));
    let deleted = mb.folder_messages("deleteditems").unwrap();
    assert_eq!(deleted.len(), before + 1);
    let moved = deleted
        .iter()
        .find(|m| m.immutable_id == inbox[0].immutable_id)
        .unwrap();
    // Deleting from Deleted Items removes it.
    let (status, _, _) = g
        .send(
            Method::DELETE,
            &format!("/me/messages/{}", enc(&moved.id)),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(mb.message(&inbox[0].immutable_id).is_err());

    let (status, _) = g
        .post(
            &format!("/me/messages/{}/permanentDelete", enc(&inbox[1].id)),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);
    assert!(mb.message(&inbox[1].id).is_err());
    assert_eq!(mb.folder_messages("deleteditems").unwrap().len(), before);
    let (status, _, _) = g
        .send(
            Method::DELETE,
            &format!("/me/messages/{}", enc(&inbox[1].id)),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 404);

    let (status, _, patched) = g
        .send(
            Method::PATCH,
            &format!("/me/messages/{}", enc(&inbox[2].id)),
            &[],
            Some(json!({"isRead": false})),
        )
        .await;
    assert_eq!((status, &patched["isRead"]), (200, &json!(false)));
    assert!(!mb.message(&inbox[2].id).unwrap().is_read);
}

#[tokio::test]
async fn tokens_are_checked_for_life_and_audience() {
    let sim = start(quiet()).await;
    let g = Graph::new(&sim, DEMO);
    let anon = crate::client();
    let resp = anon
        .get(format!("{}/me", sim.graph_url()))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("www-authenticate").is_some());
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_shape("graph/error_invalid_token.json", status, &body);
    let (status, body) = Graph {
        token: "sim-at-nope".into(),
        ..Graph::new(&sim, DEMO)
    }
    .get("/me")
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("InvalidAuthenticationToken"))
    );
    let outlook = sim
        .issue_tokens(
            DEMO,
            "app",
            &["https://outlook.office.com/IMAP.AccessAsUser.All"],
        )
        .unwrap();
    let (status, body) = Graph {
        token: outlook.access_token,
        ..Graph::new(&sim, DEMO)
    }
    .get("/me")
    .await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (401, Some("Invalid audience."))
    );

    let resp = anon
        .get(format!("{}/me", sim.graph_url()))
        .bearer_auth(&g.token)
        .header("client-request-id", "my-correlation-id")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers().get("client-request-id").unwrap(),
        "my-correlation-id"
    );
    assert!(resp.headers().get("request-id").is_some());

    sim.expire_access_tokens(DEMO).unwrap();
    let (status, body) = g.get("/me").await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (
            401,
            Some("Lifetime validation failed, the token is expired.")
        )
    );
    let g2 = Graph::new(&sim, DEMO);
    sim.advance_clock(Duration::from_secs(3600));
    assert_eq!(g2.get("/me").await.0, 401);
}

#[tokio::test]
async fn a_folder_of_100k_messages_serves_its_last_page() {
    let sim = sim_with(MailboxSpec::new("big@contoso.test", 100_000).all_in("inbox")).await;
    let g = Graph::new(&sim, "big@contoso.test");
    let (status, page) = g
        .get(
            "/me/mailFolders/inbox/messages?$top=1000&$skip=99000&$select=subject,receivedDateTime",
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["value"].as_array().unwrap().len(), 1000);
    assert!(page.get("@odata.nextLink").is_none());
    let (_, f) = g.get("/me/mailFolders/inbox").await;
    assert_eq!(f["totalItemCount"], 100_000);
}

#[tokio::test]
async fn immutable_ids_can_be_switched_off() {
    let sim = start(SimConfig {
        honor_immutable_ids: false,
        ..quiet()
    })
    .await;
    let g = Graph::new(&sim, DEMO);
    let id = sim
        .mailbox(DEMO)
        .unwrap()
        .folder_message_ids("inbox")
        .unwrap()
        .remove(0);
    let imm = [("Prefer", "IdType=\"ImmutableId\"")];
    let (status, h, moved) = g
        .send(
            Method::POST,
            &format!("/me/messages/{}/move", enc(&id)),
            &imm,
            Some(json!({"destinationId": "archive"})),
        )
        .await;
    assert_eq!(status, 201);
    assert!(h.get("preference-applied").is_none());
    assert_ne!(moved["id"], id.as_str());
    assert!(moved["id"].as_str().unwrap().starts_with("AAMkAG"));
}
