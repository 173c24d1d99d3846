//! Delta rounds: paging, changes between and during rounds, @removed, 410.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use mailroom_sim::{DeltaErrorCode, Faults, MailboxSpec, SimConfig, Simulator};
use serde_json::Value;

use crate::{Graph, assert_shape, enc, start};

const ALICE: &str = "alice@contoso.test";

async fn sim(n: usize, code: DeltaErrorCode) -> Simulator {
    start(SimConfig {
        mailboxes: vec![
            MailboxSpec::new(ALICE, n).all_in("inbox"),
            MailboxSpec::new("bob@contoso.test", 10),
        ],
        faults: Faults::none(),
        delta_error_code: code,
        ..SimConfig::default()
    })
    .await
}

/// One round: returns (items of every page, page count, deltaLink).
async fn round(g: &Graph, start: &str, page: usize) -> (Vec<Value>, usize, String) {
    let prefer = format!("odata.maxpagesize={page}");
    let mut items = Vec::new();
    let mut pages = 0;
    let mut url = start.to_owned();
    loop {
        let (status, h, body) = g.get_with(&url, &[("Prefer", &prefer)]).await;
        assert_eq!(status, 200, "{url}: {body}");
        assert_eq!(
            h.get("preference-applied").unwrap().to_str().unwrap(),
            prefer
        );
        pages += 1;
        let v = body["value"].as_array().unwrap();
        assert!(v.len() <= page);
        items.extend(v.iter().cloned());
        if let Some(next) = body["@odata.nextLink"].as_str() {
            url = next.to_owned();
        } else {
            return (
                items,
                pages,
                body["@odata.deltaLink"]
                    .as_str()
                    .expect("deltaLink")
                    .to_owned(),
            );
        }
    }
}

fn ids(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .filter(|i| i.get("@removed").is_none())
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

fn removed(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .filter(|i| i.get("@removed").is_some())
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn initial_round_pages_then_incremental_rounds_carry_changes() {
    let sim = sim(30, DeltaErrorCode::SyncStateNotFound).await;
    let g = Graph::new(&sim, ALICE);
    let mb = sim.mailbox(ALICE).unwrap();
    let start = "/me/mailFolders/inbox/messages/delta?$select=subject,sender,isRead";
    let (status, h, first) = g
        .get_with(start, &[("Prefer", "odata.maxpagesize=2")])
        .await;
    assert_eq!(h.get("preference-applied").unwrap(), "odata.maxpagesize=2");
    assert_shape("graph/delta_page.json", status, &{
        let mut f = first.clone();
        // isRead was selected too; the fixture selects subject and sender.
        for item in f["value"].as_array_mut().unwrap() {
            item.as_object_mut().unwrap().remove("isRead");
        }
        f
    });
    let (items, pages, link) = round(&g, start, 7).await;
    assert_eq!(pages, 5);
    let truth: BTreeSet<String> = mb
        .folder_message_ids("inbox")
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(ids(&items), truth);
    assert!(
        items
            .iter()
            .all(|i| i.get("body").is_none() && i.get("subject").is_some()),
        "$select is kept in nextLink"
    );

    // Changes between rounds.
    let inbox = mb.folder_messages("inbox").unwrap();
    let added = mb.add_messages("inbox", 3).unwrap();
    mb.set_read(&inbox[0].id, !inbox[0].is_read).unwrap();
    let moved_out = &inbox[1];
    mb.move_message(&moved_out.id, "archive").unwrap();
    let deleted = &inbox[2];
    mb.delete_message(&deleted.id).unwrap();
    let bob_like = mb.folder_messages("inbox").unwrap().len();
    let from_archive = mb.add_messages("archive", 1).unwrap().remove(0);
    let moved_in = mb.move_message(&from_archive, "inbox").unwrap();
    assert_eq!(mb.folder_messages("inbox").unwrap().len(), bob_like + 1);

    let (items, _, link2) = round(&g, &link, 4).await;
    let expect: BTreeSet<String> = added
        .iter()
        .cloned()
        .chain([inbox[0].id.clone(), moved_in.clone()])
        .collect();
    assert_eq!(ids(&items), expect);
    assert_eq!(
        removed(&items),
        [moved_out.id.clone(), deleted.id.clone()]
            .into_iter()
            .collect()
    );
    let changed = items
        .iter()
        .find(|i| i["id"] == inbox[0].id.as_str())
        .unwrap();
    assert_eq!(changed["isRead"], !inbox[0].is_read);
    let gone = items.iter().find(|i| i.get("@removed").is_some()).unwrap();
    assert_eq!(gone["@removed"]["reason"], "deleted");
    assert_eq!(gone["@odata.type"], "#microsoft.graph.message");

    // Nothing changed: an empty round with a new deltaLink.
    let (status, body) = g.get(&link2).await;
    assert_eq!(status, 200);
    assert!(body["value"].as_array().unwrap().is_empty());
    assert!(body["@odata.deltaLink"].is_string());

    // Shape of a round that reports a removal.
    let victim = mb.folder_message_ids("inbox").unwrap().remove(5);
    mb.delete_message(&victim).unwrap();
    let (status, body) = g.get(body["@odata.deltaLink"].as_str().unwrap()).await;
    assert_shape("graph/delta_removed.json", status, &body);
    // 1 + 5 pages + 2 pages + 1 empty round + 1 = 10 requests.
    assert_eq!(
        sim.counters()
            .requests("GET /v1.0/me/mailFolders/{id}/messages/delta"),
        10
    );
}

#[tokio::test]
async fn changes_during_a_round_are_never_missed() {
    let sim = sim(20, DeltaErrorCode::SyncStateNotFound).await;
    let g = Graph::new(&sim, ALICE);
    let mb = sim.mailbox(ALICE).unwrap();
    let prefer = [("Prefer", "odata.maxpagesize=5")];
    let (_, _, first) = g
        .get_with("/me/mailFolders/inbox/messages/delta", &prefer)
        .await;
    let seen_first: Vec<String> = first["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen_first.len(), 5);
    // Mid-round: change one already seen, delete one not seen yet, add one,
    // move one not seen yet out and back in (new id).
    let not_seen: Vec<String> = mb
        .folder_message_ids("inbox")
        .unwrap()
        .into_iter()
        .filter(|id| !seen_first.contains(id))
        .collect();
    mb.set_subject(&seen_first[0], "changed mid-round").unwrap();
    mb.delete_message(&not_seen[0]).unwrap();
    let added = mb.add_messages("inbox", 1).unwrap().remove(0);
    let out = mb.move_message(&not_seen[1], "archive").unwrap();
    let back = mb.move_message(&out, "inbox").unwrap();

    let (rest, _, link) = round(&g, first["@odata.nextLink"].as_str().unwrap(), 5).await;
    let mut state: BTreeMap<String, Value> = BTreeMap::new();
    for item in first["value"].as_array().unwrap().iter().chain(rest.iter()) {
        let id = item["id"].as_str().unwrap().to_owned();
        if item.get("@removed").is_some() {
            state.remove(&id);
        } else {
            state.insert(id, item.clone());
        }
    }
    let truth: BTreeSet<String> = mb
        .folder_message_ids("inbox")
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        state.keys().cloned().collect::<BTreeSet<_>>(),
        truth,
        "a client applying the round in order ends up right"
    );
    assert!(truth.contains(&added) && truth.contains(&back));
    assert_eq!(state[&seen_first[0]]["subject"], "changed mid-round");
    // The next round repeats what changed after the round started.
    let (next, _, _) = round(&g, &link, 50).await;
    assert!(ids(&next).contains(&seen_first[0]));
    assert!(ids(&next).contains(&added));
}

#[tokio::test]
async fn expired_delta_tokens_answer_410() {
    let sim = sim(5, DeltaErrorCode::SyncStateNotFound).await;
    let g = Graph::new(&sim, ALICE);
    let (_, _, link) = round(&g, "/me/mailFolders/inbox/messages/delta", 10).await;
    sim.expire_delta_tokens(ALICE).unwrap();
    let (status, body) = g.get(&link).await;
    assert_shape("graph/error_delta_gone.json", status, &body);
    assert_eq!(body["error"]["code"], "SyncStateNotFound");
    // A fresh round works, and its link dies of old age.
    let (_, _, link) = round(&g, "/me/mailFolders/inbox/messages/delta", 10).await;
    sim.advance_clock(Duration::from_secs(31 * 24 * 3600));
    let access = Graph::new(&sim, ALICE);
    assert_eq!(access.get(&link).await.0, 410);
    assert_eq!(sim.counters().delta_resyncs, 2);

    // Other spellings, and resyncRequired points to a new round.
    let sim = self::sim(5, DeltaErrorCode::ResyncRequired).await;
    let g = Graph::new(&sim, ALICE);
    let (_, _, link) = round(
        &g,
        "/me/mailFolders/inbox/messages/delta?$select=subject",
        10,
    )
    .await;
    sim.expire_delta_tokens(ALICE).unwrap();
    let (status, h, body) = g.get_with(&link, &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("resyncRequired"))
    );
    let location = h.get("location").unwrap().to_str().unwrap().to_owned();
    let (items, _, _) = round(&g, &location, 10).await;
    assert_eq!(items.len(), 5);
    let sim = self::sim(2, DeltaErrorCode::SyncStateNotFoundLower).await;
    let g = Graph::new(&sim, ALICE);
    let (_, _, link) = round(&g, "/me/mailFolders/inbox/messages/delta", 10).await;
    sim.expire_delta_tokens(ALICE).unwrap();
    assert_eq!(g.get(&link).await.1["error"]["code"], "syncStateNotFound");
}

#[tokio::test]
async fn delta_links_work_in_odata_function_form_and_per_folder() {
    let sim = sim(12, DeltaErrorCode::SyncStateNotFound).await;
    let g = Graph::new(&sim, ALICE);
    let mb = sim.mailbox(ALICE).unwrap();
    let id = mb.folder_id("inbox").unwrap();
    let url = format!(
        "/me/mailFolders('{}')/messages/microsoft.graph.delta()",
        enc(&id)
    );
    let (items, pages, _) = round(&g, &url, 100).await;
    assert_eq!((items.len(), pages), (12, 1));
    // Default page size without Prefer.
    let (_, body) = g.get("/me/mailFolders/inbox/messages/delta").await;
    assert_eq!(body["value"].as_array().unwrap().len(), 10);
    // A token for one folder does not work for another.
    let next = body["@odata.nextLink"].as_str().unwrap();
    // Links name the folder by id in OData key syntax, whatever the request used.
    assert!(
        next.contains(&format!(
            "/me/mailFolders('{id}')/messages/microsoft.graph.delta()?$skiptoken="
        )),
        "{next}"
    );
    let archive = mb.folder_id("archive").unwrap();
    assert_eq!(g.get(&next.replace(&id, &archive)).await.0, 410);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_stays_right_under_concurrent_mutations() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let sim = start(SimConfig {
        mailboxes: vec![MailboxSpec::new(ALICE, 150).all_in("inbox")],
        faults: Faults::none(),
        ..SimConfig::default()
    })
    .await;
    let mb = sim.mailbox(ALICE).unwrap();
    mb.add_messages("archive", 40).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mutator = {
        let (mb, stop) = (mb.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut x: u64 = 0x2545_f491_4f6c_dd1d;
            let mut ops = 0;
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let inbox = mb.folder_message_ids("inbox").unwrap();
                let archive = mb.folder_message_ids("archive").unwrap();
                let pick = |v: &[String]| v[(x >> 8) as usize % v.len()].clone();
                let _ = match x % 6 {
                    0 => mb.add_messages("inbox", 1).map(|_| ()),
                    1 if !inbox.is_empty() => {
                        let id = pick(&inbox);
                        let read = mb.message(&id).map(|m| m.is_read).unwrap_or(false);
                        mb.set_read(&id, !read)
                    }
                    2 if !inbox.is_empty() => mb.set_subject(&pick(&inbox), &format!("edit {ops}")),
                    3 if !inbox.is_empty() => mb.move_message(&pick(&inbox), "archive").map(|_| ()),
                    4 if !archive.is_empty() => {
                        mb.move_message(&pick(&archive), "inbox").map(|_| ())
                    }
                    5 if !inbox.is_empty() => mb.delete_message(&pick(&inbox)),
                    _ => Ok(()),
                };
                ops += 1;
                std::thread::sleep(Duration::from_micros(300));
            }
            ops
        })
    };
    let g = Graph::new(&sim, ALICE);
    let mut state: BTreeMap<String, Value> = BTreeMap::new();
    let apply = |state: &mut BTreeMap<String, Value>, items: Vec<Value>| {
        for item in items {
            let id = item["id"].as_str().unwrap().to_owned();
            if item.get("@removed").is_some() {
                state.remove(&id);
            } else {
                state.insert(id, item);
            }
        }
    };
    let (items, _, mut link) = round(
        &g,
        "/me/mailFolders/inbox/messages/delta?$select=subject,isRead",
        7,
    )
    .await;
    apply(&mut state, items);
    for _ in 0..8 {
        let (items, _, next) = round(&g, &link, 5).await;
        apply(&mut state, items);
        link = next;
    }
    stop.store(true, Ordering::Relaxed);
    let ops = mutator.join().unwrap();
    assert!(ops > 20, "the mutator ran ({ops} operations)");
    let (items, _, _) = round(&g, &link, 9).await;
    apply(&mut state, items);

    let truth = mb.folder_messages("inbox").unwrap();
    let truth_ids: BTreeSet<String> = truth.iter().map(|m| m.id.clone()).collect();
    assert_eq!(state.keys().cloned().collect::<BTreeSet<_>>(), truth_ids);
    for m in &truth {
        let s = &state[&m.id];
        assert_eq!(s["subject"], m.subject.as_str(), "{}", m.id);
        assert_eq!(s["isRead"], m.is_read, "{}", m.id);
    }
}

#[tokio::test]
async fn delta_with_immutable_ids_reports_them_in_removals() {
    let sim = sim(6, DeltaErrorCode::SyncStateNotFound).await;
    let g = Graph::new(&sim, ALICE);
    let mb = sim.mailbox(ALICE).unwrap();
    let imm = [
        ("Prefer", "IdType=\"ImmutableId\""),
        ("Prefer", "odata.maxpagesize=50"),
    ];
    let (_, _, body) = g
        .get_with("/me/mailFolders/inbox/messages/delta", &imm)
        .await;
    let first: BTreeSet<String> = ids(body["value"].as_array().unwrap());
    let truth: BTreeSet<String> = mb
        .folder_messages("inbox")
        .unwrap()
        .into_iter()
        .map(|m| m.immutable_id)
        .collect();
    assert_eq!(first, truth);
    let victim = mb.folder_messages("inbox").unwrap().remove(0);
    mb.move_message(&victim.id, "archive").unwrap();
    let (_, h, body) = g
        .get_with(body["@odata.deltaLink"].as_str().unwrap(), &imm)
        .await;
    let applied = h.get("preference-applied").unwrap().to_str().unwrap();
    assert!(
        applied.contains("IdType=\"ImmutableId\"") && applied.contains("odata.maxpagesize=50"),
        "{applied}"
    );
    assert_eq!(
        removed(body["value"].as_array().unwrap()),
        [victim.immutable_id].into_iter().collect()
    );
}

#[tokio::test]
async fn delta_filter_on_received_time_and_change_type() {
    let sim = sim(40, DeltaErrorCode::SyncStateNotFound).await;
    let g = Graph::new(&sim, ALICE);
    let mb = sim.mailbox(ALICE).unwrap();
    let inbox = mb.folder_messages("inbox").unwrap();
    let cut = inbox[9].received.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let start = format!(
        "/me/mailFolders/inbox/messages/delta?$filter={}&$select=subject",
        enc(&format!("receivedDateTime ge {cut}"))
    );
    let (items, _, link) = round(&g, &start, 3).await;
    assert_eq!(
        ids(&items),
        inbox[..10].iter().map(|m| m.id.clone()).collect()
    );
    // A change to an older message stays outside the filter; new mail is in.
    mb.set_read(&inbox[30].id, !inbox[30].is_read).unwrap();
    mb.set_read(&inbox[0].id, !inbox[0].is_read).unwrap();
    let added = mb.add_messages("inbox", 2).unwrap();
    let (items, _, _) = round(&g, &link, 10).await;
    let expect: BTreeSet<String> = added.iter().cloned().chain([inbox[0].id.clone()]).collect();
    assert_eq!(ids(&items), expect);
    let (status, err) = g
        .get(&format!(
            "/me/mailFolders/inbox/messages/delta?$filter={}",
            enc("isRead eq false")
        ))
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("ErrorInvalidUrlQueryFilter"))
    );

    // changeType: only what was created, updated or deleted.
    for (change, expect_new, expect_updated, expect_removed) in [
        ("created", true, false, false),
        ("updated", false, true, false),
        ("deleted", false, false, true),
    ] {
        let (_, _, link) = round(
            &g,
            &format!("/me/mailFolders/inbox/messages/delta?changeType={change}"),
            50,
        )
        .await;
        let now = mb.folder_messages("inbox").unwrap();
        let new = mb.add_messages("inbox", 1).unwrap().remove(0);
        mb.set_subject(&now[0].id, &format!("updated for {change}"))
            .unwrap();
        mb.delete_message(&now[1].id).unwrap();
        let (items, _, _) = round(&g, &link, 50).await;
        assert_eq!(ids(&items).contains(&new), expect_new, "{change}");
        assert_eq!(ids(&items).contains(&now[0].id), expect_updated, "{change}");
        assert_eq!(
            removed(&items).contains(&now[1].id),
            expect_removed,
            "{change}"
        );
    }
    assert_eq!(
        g.get("/me/mailFolders/inbox/messages/delta?changeType=sometimes")
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn delta_flags_attachments_and_lists_them_only_on_request() {
    let sim = start(SimConfig {
        mailboxes: vec![
            MailboxSpec::new(ALICE, 200)
                .all_in("inbox")
                .attachment_percent(60),
        ],
        faults: Faults::none(),
        ..SimConfig::default()
    })
    .await;
    let g = Graph::new(&sim, ALICE);
    // Delta does not take $expand, as Graph.
    let (status, body) = g
        .get("/me/mailFolders/inbox/messages/delta?$expand=attachments")
        .await;
    assert_eq!(status, 400, "{body}");
    // Items carry hasAttachments, never the list; text bodies show inline images
    // as [cid:…].
    let prefer = "odata.maxpagesize=500, outlook.body-content-type=\"text\"";
    let (status, _, page) = g
        .get_with(
            "/me/mailFolders/inbox/messages/delta?$select=hasAttachments,body",
            &[("Prefer", prefer)],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let items = page["value"].as_array().unwrap();
    assert_eq!(items.len(), 200);
    assert!(items.iter().all(|i| i.get("attachments").is_none()));
    let flagged = items.iter().filter(|i| i["hasAttachments"] == true).count();
    // 60 % of the messages have attachments; some only inline images.
    let cid = |i: &&Value| i["body"]["content"].as_str().unwrap().contains("[cid:");
    let inline_only: Vec<&Value> = items
        .iter()
        .filter(|i| i["hasAttachments"] == false)
        .filter(cid)
        .collect();
    assert!((90..=150).contains(&flagged), "{flagged}");
    assert!(!inline_only.is_empty());
    // The list on request, also inside $batch, with $select.
    let id = inline_only[0]["id"].as_str().unwrap();
    let (status, batch) = g
        .post(
            "/$batch",
            serde_json::json!({"requests": [{"id": "1", "method": "GET",
                "url": format!("/me/messages/{}/attachments?$select=id,name,contentType,size,isInline", enc(id))}]}),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    let item = &batch["responses"][0];
    assert_eq!(item["status"], 200, "{item}");
    let list = item["body"]["value"].as_array().unwrap();
    assert!(!list.is_empty());
    assert!(list.iter().all(|a| a["isInline"] == true), "{list:?}");
    assert!(list.iter().all(|a| a.get("contentBytes").is_none()));
}
