//! A scripted connector: one folder of `n` messages, synced in pages of `page_size`,
//! with failures and token refreshes injected at chosen calls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mailroom_core::{
    AccessToken, AccountInfo, Change, Connector, ConnectorError, Credentials, DeleteMode,
    ErrorKind, FetchQuery, Folder, FolderRef, Message, MessagePage, PageToken, Protocol,
    SyncCursor, SyncPage, WellKnownFolder,
};
use mailroom_store::Store;

/// The lease expiries a connector saw, one per `sync_folder` call.
pub type LeaseLog = Arc<Mutex<Vec<Option<chrono::DateTime<chrono::Utc>>>>>;

#[derive(Debug, Default)]
pub struct Script {
    /// Fail the Nth `sync_folder` call (0-based) with this error kind (and code).
    pub fail_sync_call: Option<(usize, ErrorKind, Option<&'static str>)>,
    /// Fail `connect` with this error kind (and code).
    pub fail_connect: Option<(ErrorKind, Option<&'static str>)>,
    /// Hand back refreshed credentials with this access token at connect.
    pub refresh_at_connect: Option<&'static str>,
    /// The folder's id on the server (default "inbox").
    pub folder_id: Option<&'static str>,
    /// On the Nth `sync_folder` call, lease the account (whose syncing worker's lease
    /// has expired) to another worker before answering.
    pub steal_lease_at_call: Option<(usize, Store)>,
    /// On the Nth `sync_folder` call, hand back refreshed credentials with this access
    /// token, 200 ms into the call (a refresh still running when the page before it
    /// is stored).
    pub slow_refresh_at_call: Option<(usize, &'static str)>,
    /// At every `sync_folder` call, record the lease expiry of the store's only
    /// account.
    pub record_lease: Option<(Store, LeaseLog)>,
}

/// Calls seen by every connector a test's factory made.
#[derive(Debug, Default)]
pub struct Calls {
    pub connect: AtomicUsize,
    pub resolve: AtomicUsize,
}

pub struct FakeConnector {
    pub messages: usize,
    pub page_size: usize,
    pub script: Script,
    pub credentials: Credentials,
    pub sync_calls: AtomicUsize,
    pub refreshed: Mutex<Option<Credentials>>,
    pub calls: Arc<Calls>,
}

impl FakeConnector {
    pub fn new(
        messages: usize,
        page_size: usize,
        credentials: Credentials,
        script: Script,
    ) -> Self {
        FakeConnector {
            messages,
            page_size,
            script,
            credentials,
            sync_calls: AtomicUsize::new(0),
            refreshed: Mutex::new(None),
            calls: Arc::default(),
        }
    }

    pub fn counting(mut self, calls: &Arc<Calls>) -> Self {
        self.calls = calls.clone();
        self
    }

    /// Hands back the credentials with `token` as if a refresh had returned it.
    fn hand_back_refreshed(&self, token: &str) {
        let mut creds = self.credentials.clone();
        creds.oauth_mut().unwrap().token = Some(AccessToken::new(token));
        *self.refreshed.lock().unwrap() = Some(creds);
    }

    fn folder_id(&self) -> &'static str {
        self.script.folder_id.unwrap_or("inbox")
    }
}

pub fn message(i: usize) -> Message {
    Message {
        remote_id: format!("msg-{i:05}"),
        subject: Some(format!("subject {i}")),
        date_received: Some(chrono::Utc::now()),
        ..Message::default()
    }
}

fn err(kind: ErrorKind, code: Option<&str>) -> ConnectorError {
    let e = ConnectorError::new(kind, format!("scripted {kind} failure"));
    match code {
        Some(c) => e.with_code(c),
        None => e,
    }
}

#[async_trait]
impl Connector for FakeConnector {
    fn protocol(&self) -> Protocol {
        Protocol::Graph
    }

    async fn connect(&self) -> Result<AccountInfo, ConnectorError> {
        self.calls.connect.fetch_add(1, Ordering::SeqCst);
        if let Some(token) = self.script.refresh_at_connect {
            self.hand_back_refreshed(token);
        }
        if let Some((kind, code)) = self.script.fail_connect {
            return Err(err(kind, code));
        }
        Ok(AccountInfo::default())
    }

    async fn list_folders(&self) -> Result<Vec<Folder>, ConnectorError> {
        Ok(vec![self.resolve_folder(&FolderRef::INBOX).await?])
    }

    async fn resolve_folder(&self, _folder: &FolderRef) -> Result<Folder, ConnectorError> {
        self.calls.resolve.fetch_add(1, Ordering::SeqCst);
        Ok(Folder {
            remote_id: self.folder_id().into(),
            name: "Inbox".into(),
            path: "Inbox".into(),
            parent_id: None,
            role: Some(WellKnownFolder::Inbox),
            total_count: Some(self.messages as u64),
            unread_count: None,
        })
    }

    async fn fetch_page(
        &self,
        _: &FolderRef,
        _: &FetchQuery,
        _: Option<PageToken>,
    ) -> Result<MessagePage, ConnectorError> {
        Err(ConnectorError::new(ErrorKind::Unsupported, "not scripted"))
    }

    async fn get_message(&self, _: &str) -> Result<Message, ConnectorError> {
        Err(ConnectorError::new(ErrorKind::Unsupported, "not scripted"))
    }

    async fn move_message(&self, _: &str, _: &FolderRef) -> Result<String, ConnectorError> {
        Err(ConnectorError::new(ErrorKind::Unsupported, "not scripted"))
    }

    async fn delete_message(&self, _: &str, _: DeleteMode) -> Result<(), ConnectorError> {
        Err(ConnectorError::new(ErrorKind::Unsupported, "not scripted"))
    }

    async fn sync_folder(
        &self,
        folder: &FolderRef,
        cursor: Option<SyncCursor>,
    ) -> Result<SyncPage, ConnectorError> {
        let call = self.sync_calls.fetch_add(1, Ordering::SeqCst);
        if *folder != FolderRef::id(self.folder_id()) {
            return Err(ConnectorError::new(
                ErrorKind::NotFound,
                format!("no folder {folder}"),
            ));
        }
        if let Some((n, kind, code)) = self.script.fail_sync_call
            && n == call
        {
            return Err(err(kind, code).context(format!("cannot sync folder {folder}")));
        }
        if let Some((n, store)) = &self.script.steal_lease_at_call
            && *n == call
        {
            let now = chrono::Utc::now();
            let stolen = store
                .claim_due_accounts("thief", 1, now, now + chrono::Duration::hours(1))
                .await
                .unwrap();
            assert_eq!(stolen.len(), 1, "the lease was taken over");
        }
        if let Some((store, seen)) = &self.script.record_lease {
            let accounts = store.list_accounts().await.unwrap();
            assert_eq!(
                accounts.len(),
                1,
                "record_lease needs a store of one account"
            );
            seen.lock().unwrap().push(accounts[0].lease_expires_at);
        }
        if let Some((n, token)) = self.script.slow_refresh_at_call
            && n == call
        {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            self.hand_back_refreshed(token);
        }
        let start: usize = match &cursor {
            None => 0,
            Some(c) => c
                .as_str()
                .strip_prefix("next:")
                .map_or(self.messages, |n| n.parse().unwrap()),
        };
        let end = (start + self.page_size).min(self.messages);
        let complete = end == self.messages;
        Ok(SyncPage {
            changes: (start..end).map(|i| Change::Upsert(message(i))).collect(),
            cursor: SyncCursor(if complete {
                "delta:done".into()
            } else {
                format!("next:{end}")
            }),
            reset: cursor.is_none(),
            complete,
        })
    }

    fn take_refreshed_credentials(&self) -> Option<Credentials> {
        self.refreshed.lock().unwrap().take()
    }

    async fn disconnect(&self) -> Result<(), ConnectorError> {
        Ok(())
    }
}
