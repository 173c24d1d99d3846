//! [`GraphConnector`]: the [`Connector`] trait over Graph v1.0, and its Graph-only
//! extras (attachments, raw MIME).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use mailroom_core::{
    AccountInfo, Attachment, Connector, ConnectorError, Credentials, DeleteMode, ErrorKind,
    FetchQuery, Folder, FolderPath, FolderRef, Message, MessagePage, OAuthCredentials, PageToken,
    Protocol, StateSink, SyncCursor, SyncPage, WellKnownFolder,
};
use mailroom_oauth::{ClientApplication, PersistFuture, Resource, TokenPersister, TokenSession};
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::config::{GraphConfig, check_graph_url};
use crate::stream::ByteStream;
use crate::sync::DeltaOptions;
use crate::transport::{Call, MailboxGate, Pages, Transport};
use crate::wire::folder::{FOLDER_SELECT, GraphFolder};
use crate::wire::message::{
    ATTACHMENT_SELECT, MESSAGE_SELECT, Page, attachments_expand, parse_attachments, parse_id,
    parse_message, parse_message_page,
};
use crate::wire::odata::{Query, display_name_eq, received_since, segment};

/// `Prefer: outlook.body-content-type="text"`.
pub(crate) const PREFER_TEXT: &str = "outlook.body-content-type=\"text\"";
/// `Prefer: IdType="ImmutableId"`.
pub(crate) const PREFER_IMMUTABLE: &str = "IdType=\"ImmutableId\"";

/// A Microsoft Graph v1.0 mail connection for one mailbox.
///
/// Stores a Graph session's refreshed credentials through a [`StateSink`].
struct SinkPersister(Arc<dyn StateSink>);

impl TokenPersister for SinkPersister {
    fn persist(&self, credentials: OAuthCredentials) -> PersistFuture {
        let sink = Arc::clone(&self.0);
        Box::pin(async move {
            sink.credentials_refreshed(Credentials::OAuth(credentials))
                .await
                .map_err(Into::into)
        })
    }
}

/// Cheap to clone (clones share the connection pool, the token session and the
/// mailbox's request slots) and safe to use from many tasks at once: at most
/// `max_in_flight` (default 4) requests run at a time for the mailbox, whatever the
/// number of callers, and a `Retry-After` holds every caller back.
///
/// Besides the [`Connector`] methods it offers what only Graph has:
/// [`delta`](Self::delta) with options, [`move_many`](Self::move_many) and
/// [`delete_many`](Self::delete_many) through `$batch`,
/// [`attachments`](Self::attachments), [`download_attachment`](Self::download_attachment)
/// and [`raw_mime`](Self::raw_mime).
#[derive(Clone)]
pub struct GraphConnector {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) t: Transport,
    pub(crate) immutable_ids: bool,
    pub(crate) page_size: u32,
    pub(crate) delta_page_size: u32,
    pub(crate) attachment_lists: bool,
    mailbox: Option<String>,
    root_id: OnceCell<String>,
    /// Resolved `Parent/Child` paths → folder id.
    paths: Mutex<HashMap<FolderPath, String>>,
    /// Delta runs under way, by folder: the links they followed.
    pub(crate) runs: Mutex<HashMap<String, Pages>>,
}

impl fmt::Debug for GraphConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphConnector")
            .field("mailbox", &self.inner.mailbox)
            .field("transport", &self.inner.t)
            .field("immutable_ids", &self.inner.immutable_ids)
            .finish_non_exhaustive()
    }
}

/// Shortens an id for messages: `AAMkAGI2THVS…`.
pub(crate) fn short(id: &str) -> String {
    match id.char_indices().nth(16) {
        Some((i, _)) => format!("{}…", &id[..i]),
        None => id.to_owned(),
    }
}

/// `id` as one encoded path segment. An id that cannot be one (empty, `.`, `..`)
/// names nothing: [`ErrorKind::NotFound`], and no request is sent.
pub(crate) fn path_id(id: &str, doing: &str) -> Result<String, ConnectorError> {
    segment(id).ok_or_else(|| not_a_graph_id(id, doing))
}

/// The error of an id that [`path_id`] refuses.
pub(crate) fn not_a_graph_id(id: &str, doing: &str) -> ConnectorError {
    ConnectorError::new(
        ErrorKind::NotFound,
        format!("{doing}: {id:?} is not a graph id"),
    )
}

pub(crate) fn protocol_error(doing: &str, e: &serde_json::Error, body: &[u8]) -> ConnectorError {
    ConnectorError::new(
        ErrorKind::Protocol,
        format!(
            "{doing}: unexpected answer from graph ({e}): {}",
            crate::wire::error::trimmed(body)
        ),
    )
}

impl GraphConnector {
    /// A connector for the account whose tokens `session` holds (a
    /// [`Resource::Graph`] session).
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] for a Graph URL that is not `https`
    /// (`http` only for loopback hosts) or an HTTP client that cannot be built.
    pub fn new(
        config: GraphConfig,
        session: TokenSession,
    ) -> Result<GraphConnector, ConnectorError> {
        GraphConnector::build(config, session, None)
    }

    /// A connector from stored credentials: the application they belong to (public
    /// or confidential, their tenant) on the identity cloud at `authority_cloud_url`
    /// (`https://login.microsoftonline.com`), sharing the config's HTTP client.
    /// Connectors of the same `email` in this process share its request slots.
    pub fn from_credentials(
        email: &str,
        credentials: OAuthCredentials,
        authority_cloud_url: &str,
        config: GraphConfig,
    ) -> Result<GraphConnector, ConnectorError> {
        let http = match &config.http {
            Some(c) => c.clone(),
            None => default_client()?,
        };
        let app = ClientApplication::builder_from_credentials(&credentials, authority_cloud_url)
            .and_then(|b| b.http_client(http.clone()).build())
            .map_err(|e| {
                ConnectorError::from(e).context(format!("cannot set up graph for {email}"))
            })?;
        let session = TokenSession::new(app, credentials, Resource::Graph);
        GraphConnector::build(config.http_client(http), session, Some(email.to_owned()))
    }

    fn build(
        config: GraphConfig,
        session: TokenSession,
        mailbox: Option<String>,
    ) -> Result<GraphConnector, ConnectorError> {
        let base = check_graph_url(&config.graph_url)?;
        let http = match config.http {
            Some(c) => c,
            None => default_client()?,
        };
        let gate = match &mailbox {
            Some(m) => MailboxGate::shared(base.as_str(), m, config.max_in_flight),
            None => MailboxGate::new(config.max_in_flight),
        };
        let t = Transport::new(
            http,
            base,
            session,
            gate,
            config.retry,
            config.sleep,
            config.limits,
        );
        Ok(GraphConnector {
            inner: Arc::new(Inner {
                t,
                immutable_ids: config.immutable_ids,
                page_size: config.page_size,
                delta_page_size: config.delta_page_size,
                attachment_lists: config.attachment_lists,
                mailbox,
                root_id: OnceCell::new(),
                paths: Mutex::new(HashMap::new()),
                runs: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The Graph root this connector talks to.
    pub fn graph_url(&self) -> &str {
        self.inner.t.base.as_str()
    }

    /// The token session (to read the current credentials).
    pub fn session(&self) -> &TokenSession {
        &self.inner.t.session
    }

    pub(crate) fn prefer(&self, text_body: bool) -> Vec<String> {
        let mut p = Vec::with_capacity(2);
        if text_body {
            p.push(PREFER_TEXT.to_owned());
        }
        if self.inner.immutable_ids {
            p.push(PREFER_IMMUTABLE.to_owned());
        }
        p
    }

    pub(crate) async fn get_bytes(
        &self,
        path: &str,
        query: &Query,
        prefer: Vec<String>,
        doing: &str,
    ) -> Result<Bytes, ConnectorError> {
        let url = self.inner.t.url(path, query.as_str())?;
        self.inner.t.bytes(&Call::get(url, prefer), doing).await
    }

    /// The id naming `folder` in a path or a `destinationId`: a well-known name as
    /// it is, an id as it is, a path resolved on the server (and remembered).
    pub(crate) async fn folder_key(&self, folder: &FolderRef) -> Result<String, ConnectorError> {
        Ok(match folder {
            FolderRef::WellKnown(role) => role.graph_name().to_owned(),
            FolderRef::Id(id) => id.clone(),
            FolderRef::Path(path) => {
                let cached = self
                    .inner
                    .paths
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(path)
                    .cloned();
                match cached {
                    Some(id) => id,
                    None => self.resolve_path(path).await?.remote_id,
                }
            }
        })
    }

    async fn get_folder(&self, seg: &str, doing: &str) -> Result<GraphFolder, ConnectorError> {
        let q = Query::new().pair("$select", FOLDER_SELECT);
        let body = self
            .get_bytes(&format!("/me/mailFolders/{seg}"), &q, Vec::new(), doing)
            .await?;
        serde_json::from_slice(&body).map_err(|e| protocol_error(doing, &e, &body))
    }

    /// Every page of a folder listing (`/me/mailFolders` or `…/childFolders`).
    async fn list_children(
        &self,
        parent: Option<&str>,
        filter: Option<String>,
        doing: &str,
    ) -> Result<Vec<GraphFolder>, ConnectorError> {
        let path = match parent {
            None => "/me/mailFolders".to_owned(),
            Some(id) => format!("/me/mailFolders/{}/childFolders", path_id(id, doing)?),
        };
        let q = Query::new()
            .pair("$select", FOLDER_SELECT)
            .pair("$top", &self.inner.page_size.min(250).to_string())
            .opt("$filter", filter.as_deref());
        let mut url = self.inner.t.url(&path, q.as_str())?;
        let mut out = Vec::new();
        let mut pages = Pages::new(&self.inner.t.limits, None);
        loop {
            let body = self
                .inner
                .t
                .bytes(&Call::get(url, Vec::new()), doing)
                .await?;
            let page: Page<GraphFolder> =
                serde_json::from_slice(&body).map_err(|e| protocol_error(doing, &e, &body))?;
            out.extend(page.value);
            match page.next_link {
                Some(next) => {
                    pages.follow(&next, doing)?;
                    url = self.inner.t.checked_link(&next)?;
                }
                None => return Ok(out),
            }
        }
    }

    /// The id of the root folder (`msgfolderroot`), the parent of top-level folders.
    async fn root_id(&self) -> Result<&str, ConnectorError> {
        self.inner
            .root_id
            .get_or_try_init(|| async {
                let f = self
                    .get_folder("msgfolderroot", "cannot read the root folder")
                    .await?;
                Ok::<_, ConnectorError>(f.id)
            })
            .await
            .map(String::as_str)
    }

    /// Folder ids of the well-known roles, in one `$batch`.
    async fn role_ids(&self) -> Result<HashMap<String, WellKnownFolder>, ConnectorError> {
        use crate::wire::batch::{BatchCall, parse_response, request_body};
        let doing = "cannot look up the well-known folders";
        let calls: Vec<BatchCall> = WellKnownFolder::ALL
            .iter()
            .map(|r| BatchCall {
                method: "GET",
                url: format!("/me/mailFolders/{}?$select=id", r.graph_name()),
                body: None,
                prefer: None,
            })
            .collect();
        let width = (self.inner.t.gate.size() as usize).min(calls.len());
        let body = request_body(&calls, width);
        let url = self.inner.t.url("/$batch", "")?;
        let mut call = Call::post(url, Some(Bytes::from(body)), Vec::new());
        call.permits = width as u32;
        let answer = self.inner.t.bytes(&call, doing).await?;
        let items = parse_response(&answer).map_err(|e| protocol_error(doing, &e, &answer))?;
        let mut out = HashMap::new();
        for item in items {
            let Some(role) = item
                .id
                .parse::<usize>()
                .ok()
                .and_then(|i| WellKnownFolder::ALL.get(i))
            else {
                continue;
            };
            if item.is_success()
                && let Some(body) = item.body()
                && let Some(id) = body["id"].as_str()
            {
                out.insert(id.to_owned(), *role);
            }
            // A role the mailbox lacks (404) or a throttled item just has no role here.
        }
        Ok(out)
    }

    /// Resolves `Parent/Child` by walking `childFolders` with `displayName eq '…'`.
    async fn resolve_path(&self, path: &FolderPath) -> Result<Folder, ConnectorError> {
        let doing = format!("cannot find folder {path}");
        let mut parent: Option<GraphFolder> = None;
        let mut walked: Vec<String> = Vec::new();
        for (depth, name) in path.segments().iter().enumerate() {
            let parent_id = parent.as_ref().map(|p| p.id.clone());
            let found = self
                .list_children(parent_id.as_deref(), Some(display_name_eq(name)), &doing)
                .await?;
            let exact = found.iter().position(|f| f.display_name == *name);
            let next = match exact.or((!found.is_empty()).then_some(0)) {
                Some(i) => found.into_iter().nth(i),
                None if depth == 0 => match WellKnownFolder::parse(name) {
                    // `INBOX/Receipts` in a mailbox whose inbox has a localized name.
                    Some(role) => Some(self.get_folder(role.graph_name(), &doing).await?),
                    None => None,
                },
                None => None,
            };
            let Some(next) = next else {
                let under = if walked.is_empty() {
                    "at the top of the mailbox".to_owned()
                } else {
                    format!("under {}", walked.join("/"))
                };
                return Err(ConnectorError::new(
                    ErrorKind::NotFound,
                    format!("{doing}: no folder named {name:?} {under}"),
                ));
            };
            walked.push(next.display_name.clone());
            parent = Some(next);
        }
        let folder = parent.expect("a path has at least one segment");
        self.inner
            .paths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.clone(), folder.id.clone());
        Ok(folder.into_folder(walked.join("/"), None))
    }

    /// The display path of a folder known by id, walking parents up to the root.
    async fn path_of(&self, folder: &GraphFolder, doing: &str) -> Result<String, ConnectorError> {
        let root = self.root_id().await?.to_owned();
        let mut names = vec![folder.display_name.clone()];
        let mut parent = folder.parent_folder_id.clone();
        // Folder trees are shallow; the bound only guards against a cycle.
        for _ in 0..32 {
            match parent {
                Some(p) if p != root => {
                    let f = self.get_folder(&path_id(&p, doing)?, doing).await?;
                    names.push(f.display_name);
                    parent = f.parent_folder_id;
                }
                _ => break,
            }
        }
        names.reverse();
        Ok(names.join("/"))
    }

    /// Attachment metadata of a message (no content).
    pub async fn attachments(&self, message_id: &str) -> Result<Vec<Attachment>, ConnectorError> {
        let doing = format!("cannot list attachments of message {}", short(message_id));
        let q = Query::new().pair("$select", ATTACHMENT_SELECT);
        let mut url = self.inner.t.url(
            &format!("/me/messages/{}/attachments", path_id(message_id, &doing)?),
            q.as_str(),
        )?;
        let mut out = Vec::new();
        let mut pages = Pages::new(&self.inner.t.limits, None);
        loop {
            let body = self
                .inner
                .t
                .bytes(&Call::get(url, self.prefer(false)), &doing)
                .await?;
            let (list, next) =
                parse_attachments(&body).map_err(|e| protocol_error(&doing, &e, &body))?;
            out.extend(list);
            match next {
                Some(n) => {
                    pages.follow(&n, &doing)?;
                    url = self.inner.t.checked_link(&n)?;
                }
                None => return Ok(out),
            }
        }
    }

    /// The content of an attachment (`…/attachments/{id}/$value`), streamed.
    pub async fn download_attachment(
        &self,
        message_id: &str,
        attachment_id: &str,
    ) -> Result<ByteStream, ConnectorError> {
        let doing = format!(
            "cannot download attachment {} of message {}",
            short(attachment_id),
            short(message_id)
        );
        let url = self.inner.t.url(
            &format!(
                "/me/messages/{}/attachments/{}/$value",
                path_id(message_id, &doing)?,
                path_id(attachment_id, &doing)?
            ),
            "",
        )?;
        let opened = self
            .inner
            .t
            .open(&Call::get(url, Vec::new()), &doing)
            .await?;
        Ok(ByteStream::new(opened, doing))
    }

    /// The message as MIME (`/messages/{id}/$value`, RFC 822), streamed.
    pub async fn raw_mime(&self, message_id: &str) -> Result<ByteStream, ConnectorError> {
        let doing = format!("cannot download message {}", short(message_id));
        let url = self.inner.t.url(
            &format!("/me/messages/{}/$value", path_id(message_id, &doing)?),
            "",
        )?;
        let opened = self
            .inner
            .t
            .open(&Call::get(url, Vec::new()), &doing)
            .await?;
        Ok(ByteStream::new(opened, doing))
    }

    /// Moves a message and returns its id in the destination (a new id unless
    /// immutable ids are configured).
    pub(crate) async fn move_to(
        &self,
        id: &str,
        dest: &str,
        doing: &str,
    ) -> Result<String, ConnectorError> {
        let url = self
            .inner
            .t
            .url(&format!("/me/messages/{}/move", path_id(id, doing)?), "")?;
        let body = serde_json::to_vec(&serde_json::json!({ "destinationId": dest }))
            .expect("json serializes");
        let call = Call::post(url, Some(Bytes::from(body)), self.prefer(false));
        let answer = self.inner.t.bytes(&call, doing).await?;
        parse_id(&answer).map_err(|e| protocol_error(doing, &e, &answer))
    }
}

pub(crate) fn default_client() -> Result<reqwest::Client, ConnectorError> {
    mailroom_oauth::http_client_builder()
        .user_agent(concat!("mailroom-graph/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(15))
        .read_timeout(std::time::Duration::from_secs(120))
        .build()
        .map_err(|e| {
            ConnectorError::new(
                ErrorKind::InvalidConfig,
                format!("cannot create the http client: {e}"),
            )
            .with_source(e)
        })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Me {
    display_name: Option<String>,
    mail: Option<String>,
    user_principal_name: Option<String>,
}

#[async_trait]
impl Connector for GraphConnector {
    fn protocol(&self) -> Protocol {
        Protocol::Graph
    }

    /// Refreshes the token if needed and reads `/me`.
    async fn connect(&self) -> Result<AccountInfo, ConnectorError> {
        let doing = match &self.inner.mailbox {
            Some(m) => format!("cannot connect to graph as {m}"),
            None => "cannot connect to graph".to_owned(),
        };
        let q = Query::new().pair("$select", "displayName,mail,userPrincipalName");
        let body = self.get_bytes("/me", &q, Vec::new(), &doing).await?;
        let me: Me =
            serde_json::from_slice(&body).map_err(|e| protocol_error(&doing, &e, &body))?;
        Ok(AccountInfo {
            address: me.mail.filter(|m| !m.is_empty()).or(me.user_principal_name),
            display_name: me.display_name,
        })
    }

    /// The whole hierarchy: top-level folders, then `childFolders` of each folder
    /// that has some, one request at a time (folder trees are small, and a
    /// throttling answer then holds back every later request); roles from one
    /// `$batch`.
    async fn list_folders(&self) -> Result<Vec<Folder>, ConnectorError> {
        let doing = "cannot list folders";
        let roles = self.role_ids().await?;
        let mut out = Vec::new();
        // Depth first, children right after their parent.
        let mut stack: Vec<(GraphFolder, String)> = self
            .list_children(None, None, doing)
            .await?
            .into_iter()
            .rev()
            .map(|f| {
                let path = f.display_name.clone();
                (f, path)
            })
            .collect();
        // A folder listed twice would make the walk a cycle.
        let mut seen = std::collections::HashSet::new();
        while let Some((f, path)) = stack.pop() {
            if !seen.insert(f.id.clone()) {
                return Err(ConnectorError::new(
                    ErrorKind::Protocol,
                    format!(
                        "{doing}: graph listed folder {} twice (at {path}): refusing to loop",
                        short(&f.id)
                    ),
                ));
            }
            if f.child_folder_count > 0 {
                let kids = self.list_children(Some(&f.id), None, doing).await?;
                for k in kids.into_iter().rev() {
                    let p = format!("{path}/{}", k.display_name);
                    stack.push((k, p));
                }
            }
            let role = roles.get(&f.id).copied();
            out.push(f.into_folder(path, role));
        }
        Ok(out)
    }

    async fn resolve_folder(&self, folder: &FolderRef) -> Result<Folder, ConnectorError> {
        let doing = format!("cannot find folder {folder}");
        match folder {
            FolderRef::WellKnown(role) => {
                let f = self.get_folder(role.graph_name(), &doing).await?;
                let path = self.path_of(&f, &doing).await?;
                Ok(f.into_folder(path, Some(*role)))
            }
            FolderRef::Id(id) => {
                let f = self.get_folder(&path_id(id, &doing)?, &doing).await?;
                let path = self.path_of(&f, &doing).await?;
                Ok(f.into_folder(path, None))
            }
            FolderRef::Path(path) => self.resolve_path(path).await,
        }
    }

    /// Newest first, `$top` ≤ 1000 per page, `$filter=receivedDateTime ge …` for
    /// `since`, text bodies cut to 2000 characters, attachment metadata expanded.
    async fn fetch_page(
        &self,
        folder: &FolderRef,
        query: &FetchQuery,
        page: Option<PageToken>,
    ) -> Result<MessagePage, ConnectorError> {
        let doing = format!("cannot list messages of folder {folder}");
        if query.limit == Some(0) {
            return Ok(MessagePage::default());
        }
        let url = match page {
            Some(token) => self.inner.t.checked_link(&token.0)?,
            None => {
                let seg = path_id(&self.folder_key(folder).await?, &doing)?;
                let size = query
                    .page_size
                    .unwrap_or(self.inner.page_size)
                    .clamp(1, 1000);
                let top = match query.limit {
                    Some(l) => size.min(u32::try_from(l).unwrap_or(u32::MAX)),
                    None => size,
                };
                let since = query.since.map(received_since);
                let q = Query::new()
                    .pair("$select", MESSAGE_SELECT)
                    .pair("$expand", &attachments_expand())
                    .opt("$filter", since.as_deref())
                    .pair("$orderby", "receivedDateTime desc")
                    .pair("$top", &top.to_string());
                self.inner
                    .t
                    .url(&format!("/me/mailFolders/{seg}/messages"), q.as_str())?
            }
        };
        let body = self
            .inner
            .t
            .bytes(&Call::get(url, self.prefer(true)), &doing)
            .await?;
        let (mut messages, next) =
            parse_message_page(&body).map_err(|e| protocol_error(&doing, &e, &body))?;
        let mut next = next.map(PageToken);
        if let Some(limit) = query.limit
            && messages.len() >= limit
        {
            messages.truncate(limit);
            next = None;
        }
        Ok(MessagePage { messages, next })
    }

    async fn get_message(&self, remote_id: &str) -> Result<Message, ConnectorError> {
        let doing = format!("cannot read message {}", short(remote_id));
        let q = Query::new()
            .pair("$select", MESSAGE_SELECT)
            .pair("$expand", &attachments_expand());
        let body = self
            .get_bytes(
                &format!("/me/messages/{}", path_id(remote_id, &doing)?),
                &q,
                self.prefer(true),
                &doing,
            )
            .await?;
        parse_message(&body).map_err(|e| protocol_error(&doing, &e, &body))
    }

    async fn move_message(
        &self,
        remote_id: &str,
        destination: &FolderRef,
    ) -> Result<String, ConnectorError> {
        let doing = format!("cannot move message {} to {destination}", short(remote_id));
        let dest = self
            .folder_key(destination)
            .await
            .map_err(|e| e.context(&doing))?;
        self.move_to(remote_id, &dest, &doing).await
    }

    /// Soft: moves to Deleted Items. Hard: `permanentDelete` (not recoverable by the
    /// user).
    async fn delete_message(
        &self,
        remote_id: &str,
        mode: DeleteMode,
    ) -> Result<(), ConnectorError> {
        let doing = format!("cannot delete message {}", short(remote_id));
        match mode {
            DeleteMode::Soft => self
                .move_to(remote_id, WellKnownFolder::Deleted.graph_name(), &doing)
                .await
                .map(drop),
            DeleteMode::Hard => {
                let url = self.inner.t.url(
                    &format!(
                        "/me/messages/{}/permanentDelete",
                        path_id(remote_id, &doing)?
                    ),
                    "",
                )?;
                self.inner
                    .t
                    .bytes(&Call::post(url, None, Vec::new()), &doing)
                    .await
                    .map(drop)
            }
        }
    }

    /// Graph delta, see [`GraphConnector::delta`].
    async fn sync_folder(
        &self,
        folder: &FolderRef,
        cursor: Option<SyncCursor>,
    ) -> Result<SyncPage, ConnectorError> {
        self.delta(folder, cursor, &DeltaOptions::default()).await
    }

    /// Graph delta with `$filter=receivedDateTime ge {since}`.
    async fn start_sync_since(
        &self,
        folder: &FolderRef,
        since: DateTime<Utc>,
    ) -> Result<SyncPage, ConnectorError> {
        self.delta(folder, None, &DeltaOptions::default().since(since))
            .await
    }

    fn take_refreshed_credentials(&self) -> Option<Credentials> {
        self.inner
            .t
            .session
            .take_refreshed()
            .map(Credentials::OAuth)
    }

    /// Refreshed tokens go to `sink` before they are used; every `Retry-After` too.
    fn set_state_sink(&self, sink: Arc<dyn StateSink>) {
        self.inner
            .t
            .session
            .set_persister(Arc::new(SinkPersister(Arc::clone(&sink))));
        self.inner.t.set_sink(sink);
    }

    /// Nothing to close: Graph is stateless HTTP and idle pooled connections close
    /// when the last clone is dropped. Later calls keep working.
    async fn disconnect(&self) -> Result<(), ConnectorError> {
        Ok(())
    }
}
