//! `mailroom account folders`, `account add --all-folders`, `sync --folder [--add]`,
//! vanished folders in `account list` / `show`, and "did you mean".

use serde_json::Value;

use crate::support::{DEMO, Env};

fn states(env: &Env) -> Vec<(String, String)> {
    env.json(&["account", "folders", DEMO])
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_synced_folders_are_the_users_to_manage_and_vanished_ones_are_shown() {
    let env = Env::new(300).await;
    env.add_demo();
    assert_eq!(states(&env), pairs(&[("INBOX", "not synced yet")]));

    // A typo gets "did you mean" from the server's folder list; nothing is added.
    let (_, stderr) = env.expect(1, &["account", "folders", DEMO, "add", "Archiv"]);
    assert!(stderr.contains("did you mean Archive?"), "{stderr}");
    let (_, stderr) = env.expect(1, &["sync", "--folder", "Projects/Alpah"]);
    assert!(stderr.contains("did you mean Projects/Alpha?"), "{stderr}");

    let (stdout, _) = env.expect(
        0,
        &[
            "account",
            "folders",
            DEMO,
            "add",
            "archive",
            "projects/alpha",
        ],
    );
    assert!(
        stdout.contains("now also syncs ARCHIVE, Projects/Alpha"),
        "{stdout}"
    );
    let report = env.json(&["sync"]);
    assert_eq!(report[0]["outcome"], "synced", "{report}");
    assert_eq!(
        report[0]["folders"].as_array().unwrap().len(),
        3,
        "{report}"
    );
    assert_eq!(
        states(&env),
        pairs(&[
            ("Inbox", "synced"),
            ("Archive", "synced"),
            ("Projects/Alpha", "synced")
        ])
    );

    // Deleted on the server: the sync succeeds, and says so; list and show show it.
    let mailbox = env.sim.mailbox(DEMO).unwrap();
    mailbox.delete_folder("Projects/Alpha").unwrap();
    let (_, stderr) = env.expect(0, &["sync"]);
    assert!(
        stderr.contains("folder Projects/Alpha is gone on the server"),
        "{stderr}"
    );
    let accounts = env.json(&["account", "list"]);
    assert_eq!(accounts[0]["gone_folders"][0]["path"], "Projects/Alpha");
    assert_eq!(accounts[0]["last_error"], Value::Null);
    let (stdout, stderr) = env.expect(0, &["account", "list"]);
    assert!(stdout.contains("3 (1 gone)"), "{stdout}");
    assert!(
        stderr.contains("gone on the server: Projects/Alpha"),
        "{stderr}"
    );
    let show = env.json(&["account", "show", DEMO]);
    let alpha = show["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "Projects/Alpha")
        .unwrap()
        .clone();
    assert_eq!(alpha["state"], "gone", "{show}");
    assert!(alpha["gone_since"].is_string());
    let (stdout, _) = env.expect(0, &["account", "show", DEMO]);
    assert!(stdout.contains("gone since"), "{stdout}");

    // A folder the account does not sync: a plain one-off, or added with --add.
    let (_, stderr) = env.expect(0, &["sync", "--folder", "JUNK"]);
    assert!(stderr.contains("synced this once"), "{stderr}");
    assert!(!states(&env).iter().any(|(p, _)| p == "Junk Email"));
    let (_, stderr) = env.expect(0, &["sync", "--folder", "Sent", "--add"]);
    assert!(stderr.contains("now also syncs SENT"), "{stderr}");
    assert!(states(&env).contains(&("Sent Items".into(), "synced".into())));

    // Removing: stops syncing; the local copies go at the next sync (or now with --purge).
    let (stdout, _) = env.expect(0, &["account", "folders", DEMO, "remove", "Archive"]);
    assert!(stdout.contains("deleted by the next sync"), "{stdout}");
    assert!(states(&env).contains(&("Archive".into(), "removed".into())));
    assert!(
        !env.local_ids("Archive").is_empty(),
        "kept until the next sync"
    );
    env.expect(0, &["sync"]);
    let (_, stderr) = env.expect(
        1,
        &["messages", "list", "--account", DEMO, "--folder", "Archive"],
    );
    assert!(
        stderr.contains("mailroom account folders demo@mailroom.test add Archive"),
        "{stderr}"
    );
    let removed = env.json(&["account", "folders", DEMO, "remove", "sent", "--purge"]);
    assert!(
        removed["purged_messages"].as_u64().unwrap() > 0,
        "{removed}"
    );
    let (_, stderr) = env.expect(1, &["account", "folders", DEMO, "remove", "Inbx"]);
    assert!(stderr.contains("did you mean INBOX?"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn all_folders_syncs_every_mail_folder_but_outbox_and_conversation_history() {
    let env = Env::new(200).await;
    env.expect(
        0,
        &[
            "account",
            "add",
            "outlook",
            "--email",
            DEMO,
            "--all-folders",
        ],
    );
    let names: Vec<String> = env.json(&["account", "show", DEMO])["sync_folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let server: Vec<String> = env
        .sim
        .mailbox(DEMO)
        .unwrap()
        .folders()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert!(
        names.contains(&"INBOX".to_owned()) && names.contains(&"Projects/Alpha".to_owned()),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n == "OUTBOX" || n == "Conversation History"),
        "{names:?}"
    );
    assert_eq!(names.len(), server.len() - 2, "{names:?} of {server:?}");
    let report = env.json(&["sync"]);
    assert_eq!(report[0]["outcome"], "synced", "{report}");
    assert_eq!(
        report[0]["upserted"], 200,
        "{report}: every message is in a synced folder"
    );
}
