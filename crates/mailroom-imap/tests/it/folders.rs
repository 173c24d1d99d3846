use mailroom_core::{Connector, ErrorKind, FolderRef, WellKnownFolder};

use crate::support::*;

#[tokio::test]
async fn list_maps_special_use_roles() {
    let d = dovecot();
    let c = connector(&d, "alice");
    let folders = c.list_folders().await.unwrap();
    let role_of = |name: &str| {
        folders
            .iter()
            .find(|f| f.remote_id == name)
            .unwrap_or_else(|| panic!("no {name} in {folders:?}"))
            .role
    };
    assert_eq!(role_of("INBOX"), Some(WellKnownFolder::Inbox));
    assert_eq!(role_of("Sent"), Some(WellKnownFolder::Sent));
    assert_eq!(role_of("Entwürfe"), Some(WellKnownFolder::Drafts));
    assert_eq!(role_of("Trash"), Some(WellKnownFolder::Deleted));
    assert_eq!(role_of("Junk"), Some(WellKnownFolder::Junk));
    assert_eq!(role_of("Archive"), Some(WellKnownFolder::Archive));

    for (role, name) in [
        (WellKnownFolder::Drafts, "Entwürfe"),
        (WellKnownFolder::Deleted, "Trash"),
        (WellKnownFolder::Inbox, "INBOX"),
    ] {
        let f = c.resolve_folder(&FolderRef::WellKnown(role)).await.unwrap();
        assert_eq!(f.remote_id, name);
    }
    let err = c
        .resolve_folder(&FolderRef::WellKnown(WellKnownFolder::Outbox))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn utf7_names_round_trip() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    // Created through the connector's encoder (mailroom_imap::proto::quote_mailbox).
    for name in [
        "日本語",
        "A&B",
        "Projekte",
        "Projekte/Größe 2025",
        "Work:2025",
    ] {
        a.create(name).await.unwrap();
    }
    a.append("日本語", &mail(1), "").await.unwrap();
    a.append("Projekte/Größe 2025", &mail(2), "").await.unwrap();
    a.append("Work:2025", &mail(3), "").await.unwrap();

    let c = connector(&d, "alice");
    let folders = c.list_folders().await.unwrap();
    let names: Vec<_> = folders.iter().map(|f| f.remote_id.as_str()).collect();
    for want in [
        "Entwürfe",
        "日本語",
        "A&B",
        "Projekte/Größe 2025",
        "Work:2025",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    let nested = folders
        .iter()
        .find(|f| f.remote_id == "Projekte/Größe 2025")
        .unwrap();
    assert_eq!(nested.name, "Größe 2025");
    assert_eq!(nested.path, "Projekte/Größe 2025");
    assert_eq!(nested.parent_id.as_deref(), Some("Projekte"));
    assert_eq!(nested.total_count, Some(1), "LIST-STATUS counts");
    assert_eq!(nested.unread_count, Some(1));

    // Paths and ids resolve, and the decoded names work for reading.
    let f = c
        .resolve_folder(&FolderRef::parse("Projekte/Größe 2025").unwrap())
        .await
        .unwrap();
    assert_eq!(f.remote_id, "Projekte/Größe 2025");
    for (folder, subject) in [
        (FolderRef::parse("日本語").unwrap(), "Message 1"),
        (FolderRef::id("Work:2025"), "Message 3"),
    ] {
        let page = c
            .fetch_page(&folder, &Default::default(), None)
            .await
            .unwrap();
        assert_eq!(page.messages.len(), 1, "{folder}");
        let m = &page.messages[0];
        assert_eq!(m.subject.as_deref(), Some(subject));
        // remote ids parse from the right: a ':' in the mailbox name is fine.
        let again = c.get_message(&m.remote_id).await.unwrap();
        assert_eq!(again.subject.as_deref(), Some(subject));
    }
    let err = c
        .resolve_folder(&FolderRef::parse("Nope/Never").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = c
        .sync_folder(&FolderRef::id("Nope"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn names_with_quotes_and_backslashes_are_data() {
    let d = dovecot();
    let mut a = admin(&d, "alice").await;
    let name = r#"A&B "quoted""#;
    a.create(name).await.unwrap();
    a.append(name, &mail(1), "").await.unwrap();

    let c = connector(&d, "alice");
    let folders = c.list_folders().await.unwrap();
    let names: Vec<_> = folders.iter().map(|f| f.remote_id.as_str()).collect();
    assert!(names.contains(&name), "{name} not in {names:?}");
    let f = folders.iter().find(|f| f.remote_id == name).unwrap();
    assert_eq!(f.name, name);
    assert_eq!(
        f.total_count,
        Some(1),
        "LIST-STATUS counts by the same name"
    );
    // The listed name works for every command.
    let page = c.sync_folder(&FolderRef::id(name), None).await.unwrap();
    assert_eq!(page.changes.len(), 1);
    let page = c
        .fetch_page(&FolderRef::parse(name).unwrap(), &Default::default(), None)
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 1);
    assert_eq!(
        c.resolve_folder(&FolderRef::id(name))
            .await
            .unwrap()
            .remote_id,
        name
    );
}

#[tokio::test]
async fn a_refusal_with_utf8_text_is_not_found() {
    let d = dovecot();
    let c = connector(&d, "alice");
    // Dovecot answers `NO [NONEXISTENT] Mailbox doesn't exist: 日本語-nirgends` with
    // the name in raw UTF-8, which IMAP4rev1 text does not allow.
    let err = c
        .sync_folder(&FolderRef::id("日本語-nirgends"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(!err.to_string().contains("cannot parse"), "{err}");
    // The connection is still good.
    assert!(c.list_folders().await.is_ok());
}
