use chrono::Duration;
use mailroom_core::WellKnownFolder;
use mailroom_store::MessageQuery;

use crate::support::{account, folder, inbox, message, stores, t0};

#[tokio::test]
async fn filters_and_paging() {
    for store in stores().await {
        let b = store.backend();
        let a = account(&store, "q@example.com").await;
        let other = account(&store, "other@example.com").await;
        let f = inbox(&store, &a).await;
        let f_other = inbox(&store, &other).await;
        store
            .upsert_messages(a.id, f.id, &(0..50).map(message).collect::<Vec<_>>())
            .await
            .unwrap();
        store
            .upsert_messages(
                other.id,
                f_other.id,
                &(0..5).map(message).collect::<Vec<_>>(),
            )
            .await
            .unwrap();

        let base = MessageQuery {
            account_id: Some(a.id),
            ..Default::default()
        };
        let page1 = store
            .list_messages(&MessageQuery {
                limit: 10,
                ..base.clone()
            })
            .await
            .unwrap();
        let page2 = store
            .list_messages(&MessageQuery {
                limit: 10,
                offset: 10,
                ..base.clone()
            })
            .await
            .unwrap();
        assert_eq!(
            page1[0].message.remote_id,
            message(49).remote_id,
            "{b:?}: newest first"
        );
        assert_eq!(page2[0].message.remote_id, message(39).remote_id);

        let since = MessageQuery {
            since: Some(t0() + Duration::seconds(45)),
            ..base.clone()
        };
        assert_eq!(store.count_messages(&since).await.unwrap(), 5);
        let before = MessageQuery {
            before: Some(t0() + Duration::seconds(10)),
            ..base.clone()
        };
        assert_eq!(store.count_messages(&before).await.unwrap(), 10);
        let unread = MessageQuery {
            unread_only: true,
            ..base.clone()
        };
        assert_eq!(store.count_messages(&unread).await.unwrap(), 25);
        let text = MessageQuery {
            text: Some("RÉUNION N°7 ".to_lowercase()),
            ..base.clone()
        };
        let hits = store.list_messages(&text).await.unwrap();
        assert_eq!(hits.len(), 1, "{b:?}: {hits:?}");
        let by_sender = MessageQuery {
            text: Some("ZOE12@".into()),
            ..base.clone()
        };
        assert_eq!(store.count_messages(&by_sender).await.unwrap(), 1);
        let wildcard = MessageQuery {
            text: Some("%".into()),
            ..base.clone()
        };
        assert_eq!(
            store.count_messages(&wildcard).await.unwrap(),
            0,
            "{b:?}: % is literal"
        );
        assert_eq!(
            store
                .count_messages(&MessageQuery::default())
                .await
                .unwrap(),
            55
        );
    }
}

#[tokio::test]
async fn folders_upsert_by_remote_id() {
    for store in stores().await {
        let a = account(&store, "f@example.com").await;
        let mut sent = folder("sent-id", Some(WellKnownFolder::Sent));
        let rows = store
            .upsert_folders(
                a.id,
                &[
                    folder("inbox-id", Some(WellKnownFolder::Inbox)),
                    sent.clone(),
                ],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        sent.name = "Gesendet".into();
        sent.total_count = Some(7);
        let again = store.upsert_folders(a.id, &[sent]).await.unwrap();
        assert_eq!(again[0].id, rows[1].id);
        assert_eq!(again[0].folder.name, "Gesendet");
        assert_eq!(again[0].folder.role, Some(WellKnownFolder::Sent));
        assert_eq!(again[0].folder.total_count, Some(7));
        assert_eq!(store.list_folders(a.id).await.unwrap().len(), 2);
    }
}
