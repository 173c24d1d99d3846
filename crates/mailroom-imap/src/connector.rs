//! [`ImapConnector`]: the core [`Connector`] over one IMAP connection.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mailroom_core::{
    AccountInfo, Connector, ConnectorError, Credentials, DeleteMode, ErrorKind, FetchQuery, Folder,
    FolderRef, ImapAuth, ImapCredentials, ImapTls, Message, MessagePage, OAuthCredentials,
    PageToken, Password, Protocol, StateSink, SyncCursor, SyncPage, WellKnownFolder,
};
use mailroom_oauth::{ClientApplication, PersistFuture, Resource, TokenPersister, TokenSession};
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

use crate::proto::remote_id::RemoteId;
use crate::proto::uidset::UidSet;
use crate::proto::{conventional_names, quote, quote_mailbox, role_of, utf7};
use crate::session::{Caps, Conn, Failure, Listed, OpError, Reopen, map_imap_error, map_io_error};
use crate::sync::{Limits, record_items, sync_page};
use crate::transport::{self, Guarded, Plain, Stream, XOAuth2, check_tls_policy};

/// Tuning and trust options of an [`ImapConnector`]; the defaults suit most servers.
/// Start from `ImapOptions::default()` and chain the setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImapOptions {
    /// Extra trusted CA certificates (PEM file) for private servers, added to the
    /// Mozilla roots.
    pub ca_file: Option<PathBuf>,
    /// The Microsoft identity platform host for XOAUTH2 token refreshes
    /// ([`oauth::DEFAULT_CLOUD`](crate::oauth::DEFAULT_CLOUD); `mailroom-sim`'s base URL in tests).
    pub authority_url: String,
    /// New messages per sync page and per `fetch_page` (default 500).
    pub page_size: u32,
    /// Bytes of a message read to build its record (default 1 MiB): with
    /// [`whole_messages`](Self::whole_messages), a larger message is read up to this
    /// size and its record carries a warning; otherwise it bounds how much of the text
    /// part is read for the preview and the pieces an attachment's size is counted in.
    pub max_message_bytes: u32,
    /// Build records from whole messages (default `false`): sync and `fetch_page` then
    /// download every message (up to `max_message_bytes`) instead of its header,
    /// BODYSTRUCTURE and the first bytes of its text part. `get_message` always reads
    /// the message whole.
    pub whole_messages: bool,
    /// Time allowed for TCP, TLS, greeting and login (default 30 s).
    pub connect_timeout: Duration,
    /// Time allowed for one command and its responses (default 120 s).
    pub command_timeout: Duration,
    /// Bytes of one server response, its literals included (default 64 MiB, and
    /// always at least `max_message_bytes` + 1 MiB). A literal announced larger is
    /// refused before anything is read or allocated for it; the connection is then
    /// dropped with an [`ErrorKind::Protocol`] error naming the limit.
    pub max_response_bytes: u64,
    /// Time one folder's sync run may take, from its first page to its last (default
    /// 4 h). A server that keeps sending new messages (or UIDs) would otherwise keep a
    /// run going forever, each command within its timeout. Past it, the next page is
    /// refused with an [`ErrorKind::Transient`] error naming this option; the pages
    /// already stored stay, and the next sync goes on from there.
    pub folder_run_deadline: Duration,
}

impl Default for ImapOptions {
    fn default() -> Self {
        ImapOptions {
            ca_file: None,
            authority_url: mailroom_oauth::DEFAULT_CLOUD.to_owned(),
            page_size: 500,
            max_message_bytes: 1024 * 1024,
            whole_messages: false,
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(120),
            max_response_bytes: 64 * 1024 * 1024,
            folder_run_deadline: Duration::from_secs(4 * 3600),
        }
    }
}

impl ImapOptions {
    /// Trusts the CA certificates of this PEM file too.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// The identity platform host used to refresh XOAUTH2 tokens.
    pub fn authority_url(mut self, url: impl Into<String>) -> Self {
        self.authority_url = url.into();
        self
    }

    /// New messages per page (at least 1).
    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// Bytes read per message for its record (at least 4 KiB).
    pub fn max_message_bytes(mut self, n: u32) -> Self {
        self.max_message_bytes = n.max(4096);
        self
    }

    /// Reads whole messages for records (see [`whole_messages`](Self::whole_messages)).
    pub fn whole_messages(mut self, whole: bool) -> Self {
        self.whole_messages = whole;
        self
    }

    /// Bytes of one server response (see [`max_response_bytes`](Self::max_response_bytes)).
    pub fn max_response_bytes(mut self, n: u64) -> Self {
        self.max_response_bytes = n;
        self
    }

    /// The budget of one response actually used.
    fn response_budget(&self) -> u64 {
        self.max_response_bytes
            .max(u64::from(self.max_message_bytes) + 1024 * 1024)
    }

    /// Connect and command timeouts.
    pub fn timeouts(mut self, connect: Duration, command: Duration) -> Self {
        self.connect_timeout = connect;
        self.command_timeout = command;
        self
    }

    /// Time one folder's sync run may take (see
    /// [`folder_run_deadline`](Self::folder_run_deadline)).
    pub fn folder_run_deadline(mut self, deadline: Duration) -> Self {
        self.folder_run_deadline = deadline;
        self
    }
}

enum Login {
    Password(Password),
    OAuth(TokenSession),
}

/// The IMAP connector: password or SASL XOAUTH2, implicit TLS or STARTTLS (plain text
/// only to loopback), one connection serialising the calls.
///
/// Calls after [`disconnect`](Connector::disconnect) open a new connection.
pub struct ImapConnector {
    host: String,
    port: u16,
    tls: ImapTls,
    username: String,
    account_email: String,
    credentials: ImapCredentials,
    login: Login,
    options: ImapOptions,
    tls_connector: Option<TlsConnector>,
    conn: Mutex<Option<Conn>>,
    /// Folder sync runs under way, by folder.
    runs: std::sync::Mutex<HashMap<String, FolderRun>>,
}

/// A folder's sync run: when it started, its pages so far, and the cursor its last page
/// returned. A call with that cursor continues the run; any other starts a new one.
struct FolderRun {
    started: Instant,
    pages: u32,
    next: SyncCursor,
}

impl fmt::Debug for ImapConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapConnector")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field(
                "auth",
                &match self.login {
                    Login::Password(_) => "password",
                    Login::OAuth(_) => "xoauth2",
                },
            )
            .finish_non_exhaustive()
    }
}

/// Runs `$body` (an async block using `$conn: &mut Conn`) on the connection, opening it
/// if needed; a broken connection is dropped, and a stale reused one is replaced and
/// the body retried once.
macro_rules! with_conn {
    ($self:ident, $context:expr, $no_kind:expr, |$conn:ident| $body:expr) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut guard = $self.conn.lock().await;
            let fresh = guard.is_none();
            if fresh {
                *guard = Some($self.open().await?);
            }
            let $conn: &mut Conn = guard.as_mut().expect("connection just opened");
            let result: Result<_, OpError> = $body.await;
            match result {
                Ok(value) => break Ok(value),
                Err(OpError::Done(e)) => break Err(e),
                Err(OpError::Imap(failure)) => {
                    if failure.breaks_session() {
                        *guard = None;
                    }
                    // A reused connection may have been closed meanwhile (idle timeout,
                    // server restart: an EOF or a pending BYE): reconnect and retry once.
                    if matches!(failure, Failure::Connection(_) | Failure::Bye(_))
                        && !fresh
                        && attempt == 1
                    {
                        tracing::debug!("imap connection went stale; reconnecting");
                        continue;
                    }
                    break Err(failure.into_error($context, $no_kind));
                }
            }
        }
    }};
}

/// Stores refreshed XOAUTH2 tokens, as the account's complete IMAP credentials,
/// through a [`StateSink`].
struct SinkPersister {
    sink: Arc<dyn StateSink>,
    credentials: ImapCredentials,
}

impl TokenPersister for SinkPersister {
    fn persist(&self, oauth: OAuthCredentials) -> PersistFuture {
        let sink = Arc::clone(&self.sink);
        let mut credentials = self.credentials.clone();
        credentials.auth = ImapAuth::OAuth(oauth);
        Box::pin(async move {
            sink.credentials_refreshed(Credentials::Imap(credentials))
                .await
                .map_err(Into::into)
        })
    }
}

impl ImapConnector {
    /// A connector for stored IMAP credentials. `account_email` is the login when the
    /// credentials have no `username`. XOAUTH2 credentials refresh through
    /// [`ImapOptions::authority_url`] for the Outlook IMAP resource.
    ///
    /// Fails with `InvalidConfig` for plain text to a non-loopback host, an unreadable
    /// CA file, or unusable OAuth2 client settings. Does not connect.
    pub fn new(
        credentials: ImapCredentials,
        account_email: &str,
        options: ImapOptions,
    ) -> Result<ImapConnector, ConnectorError> {
        let session = match &credentials.auth {
            ImapAuth::Password(_) => None,
            ImapAuth::OAuth(oauth) => {
                let app = ClientApplication::from_credentials(oauth, &options.authority_url)
                    .map_err(|e| {
                        ConnectorError::from(e)
                            .context(format!("cannot set up xoauth2 for {account_email}"))
                    })?;
                Some(TokenSession::new(app, oauth.clone(), Resource::OutlookImap))
            }
        };
        ImapConnector::build(credentials, account_email, options, session)
    }

    /// Like [`new`](Self::new), with a token session the caller built (its own
    /// application, HTTP client or clock). The credentials must be XOAUTH2 ones.
    pub fn with_token_session(
        credentials: ImapCredentials,
        account_email: &str,
        options: ImapOptions,
        session: TokenSession,
    ) -> Result<ImapConnector, ConnectorError> {
        if !matches!(credentials.auth, ImapAuth::OAuth(_)) {
            return Err(ConnectorError::new(
                ErrorKind::InvalidConfig,
                format!(
                    "cannot use a token session for {account_email}: the imap credentials hold a password"
                ),
            ));
        }
        ImapConnector::build(credentials, account_email, options, Some(session))
    }

    fn build(
        credentials: ImapCredentials,
        account_email: &str,
        options: ImapOptions,
        session: Option<TokenSession>,
    ) -> Result<ImapConnector, ConnectorError> {
        check_tls_policy(&credentials.host, credentials.tls)?;
        let tls_connector = match credentials.tls {
            ImapTls::None => None,
            ImapTls::Implicit | ImapTls::Starttls => {
                Some(transport::tls_connector(options.ca_file.as_deref())?)
            }
        };
        let login = match (&credentials.auth, session) {
            (ImapAuth::Password(p), _) => Login::Password(p.clone()),
            (ImapAuth::OAuth(_), Some(s)) => Login::OAuth(s),
            (ImapAuth::OAuth(_), None) => unreachable!("callers build a session for oauth"),
        };
        let username = credentials
            .username
            .clone()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| account_email.to_owned());
        Ok(ImapConnector {
            host: credentials.host.clone(),
            port: credentials.port,
            tls: credentials.tls,
            username,
            account_email: account_email.to_owned(),
            credentials,
            login,
            options,
            tls_connector,
            conn: Mutex::new(None),
            runs: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// When the run that a page from `cursor` belongs to started, and its pages so far;
    /// an error once that run has passed [`ImapOptions::folder_run_deadline`].
    fn continue_run(
        &self,
        key: &str,
        cursor: Option<&SyncCursor>,
        context: &str,
    ) -> Result<(Instant, u32), ConnectorError> {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let run = runs
            .get(key)
            .filter(|run| Some(&run.next) == cursor)
            .map(|run| (run.started, run.pages));
        let Some((started, pages)) = run else {
            runs.remove(key);
            return Ok((Instant::now(), 0));
        };
        let deadline = self.options.folder_run_deadline;
        if started.elapsed() > deadline {
            runs.remove(key);
            return Err(ConnectorError::new(
                ErrorKind::Transient,
                format!(
                    "{context}: the folder run passed its deadline of {} s after {pages} pages \
                     (ImapOptions::folder_run_deadline)",
                    deadline.as_secs_f64()
                ),
            ));
        }
        Ok((started, pages))
    }

    fn limits(&self) -> Limits {
        Limits {
            page_size: self.options.page_size,
            max_message_bytes: self.options.max_message_bytes,
            whole_messages: self.options.whole_messages,
        }
    }

    /// A new logged-in connection, apart from the shared one.
    pub(crate) async fn open_connection(&self) -> Result<Conn, ConnectorError> {
        self.open().await
    }

    /// `user@host:port`, for errors.
    pub(crate) fn describe(&self) -> String {
        self.what()
    }

    /// The decoded mailbox name of `folder` on `conn`.
    pub(crate) async fn mailbox_name(
        &self,
        conn: &mut Conn,
        folder: &FolderRef,
    ) -> Result<String, ConnectorError> {
        match Self::mailbox_of(conn, folder).await {
            Ok(m) => Ok(m),
            Err(OpError::Done(e)) => Err(e),
            Err(OpError::Imap(f)) => {
                Err(f.into_error("cannot find the folder", ErrorKind::NotFound))
            }
        }
    }

    fn what(&self) -> String {
        format!("{}@{}:{}", self.username, self.host, self.port)
    }

    async fn open(&self) -> Result<Conn, ConnectorError> {
        let timeout = self.options.connect_timeout;
        match tokio::time::timeout(timeout, self.open_inner()).await {
            Ok(result) => result,
            Err(_) => Err(ConnectorError::new(
                ErrorKind::Transient,
                format!(
                    "cannot connect to {}:{}: no answer within {} s",
                    self.host,
                    self.port,
                    timeout.as_secs()
                ),
            )),
        }
    }

    async fn open_inner(&self) -> Result<Conn, ConnectorError> {
        let context = format!("cannot connect to {}:{}", self.host, self.port);
        let tcp = transport::tcp(&self.host, self.port).await?;
        let budget = self.options.response_budget();
        let stream = match self.tls {
            ImapTls::None => Stream::Plain(tcp),
            ImapTls::Implicit => {
                let connector = self.tls_connector.as_ref().expect("tls connector");
                transport::handshake(connector, &self.host, tcp).await?
            }
            ImapTls::Starttls => {
                let mut client = async_imap::Client::new(Guarded::new(tcp, budget));
                greeting(&mut client, &context).await?;
                client
                    .run_command_and_check_ok("STARTTLS", None)
                    .await
                    .map_err(|e| {
                        map_imap_error(e).into_error(
                            format!("{context}: STARTTLS refused"),
                            ErrorKind::InvalidConfig,
                        )
                    })?;
                let connector = self.tls_connector.as_ref().expect("tls connector");
                transport::handshake(connector, &self.host, client.into_inner().into_inner())
                    .await?
            }
        };
        let mut client = async_imap::Client::new(Guarded::new(stream, budget));
        if self.tls != ImapTls::Starttls {
            greeting(&mut client, &context).await?;
        }
        let mut session = self.authenticate(client).await?;
        let caps = session.capabilities().await.map_err(|e| {
            map_imap_error(e).into_error(format!("{context}: CAPABILITY"), ErrorKind::Protocol)
        })?;
        let caps = Caps::from_atoms(caps.iter().filter_map(|c| match c {
            async_imap::types::Capability::Atom(a) => Some(a.as_str()),
            _ => None,
        }));
        let mut conn = Conn::new(session, caps, self.options.command_timeout);
        if conn.caps.qresync && conn.simple("ENABLE QRESYNC").await.is_err() {
            conn.caps.qresync = false;
        }
        tracing::debug!(host = %self.host, caps = ?conn.caps, "imap session open");
        Ok(conn)
    }

    async fn authenticate(
        &self,
        client: async_imap::Client<Guarded<Stream>>,
    ) -> Result<async_imap::Session<Guarded<Stream>>, ConnectorError> {
        let context = format!("cannot log in to imap as {}", self.what());
        let refused = |e: async_imap::error::Error| {
            map_imap_error(e).into_error(&context, ErrorKind::ReauthRequired)
        };
        match &self.login {
            Login::Password(password) => {
                let simple = |s: &str| s.chars().all(|c| (' '..='~').contains(&c));
                let result = if simple(&self.username) && simple(password.secret()) {
                    client.login(&self.username, password.secret()).await
                } else {
                    client
                        .authenticate("PLAIN", Plain::new(&self.username, password.secret()))
                        .await
                };
                result.map_err(|(e, _)| refused(e))
            }
            Login::OAuth(session) => {
                let token = session
                    .access_token()
                    .await
                    .map_err(|e| ConnectorError::from(e).context(&context))?;
                match client
                    .authenticate("XOAUTH2", XOAuth2::new(&self.username, token.secret()))
                    .await
                {
                    Ok(s) => Ok(s),
                    Err((async_imap::error::Error::No(m), client)) => {
                        tracing::info!(user = %self.username, "imap refused the access token; refreshing it");
                        let _ = m;
                        let fresh = session
                            .refresh_after_unauthorized(&token)
                            .await
                            .map_err(|e| ConnectorError::from(e).context(&context))?;
                        client
                            .authenticate("XOAUTH2", XOAuth2::new(&self.username, fresh.secret()))
                            .await
                            .map_err(|(e, _)| refused(e))
                    }
                    Err((e, _)) => Err(refused(e)),
                }
            }
        }
    }

    /// The decoded mailbox name of a folder reference; looks the folder up (LIST) for
    /// roles and paths.
    async fn mailbox_of(conn: &mut Conn, folder: &FolderRef) -> Result<String, OpError> {
        match folder {
            FolderRef::WellKnown(WellKnownFolder::Inbox) => Ok("INBOX".to_owned()),
            FolderRef::Id(id) => Ok(id.clone()),
            other => Ok(Self::resolve(conn, other).await?.remote_id),
        }
    }

    async fn folders(conn: &mut Conn) -> Result<Vec<Folder>, OpError> {
        let (listed, statuses) = conn.list().await?;
        Ok(listed
            .iter()
            .filter(|l| {
                !l.attributes
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case("\\NonExistent"))
            })
            .map(|l| {
                let status = statuses.iter().find(|(name, _, _)| *name == l.wire_name);
                folder_of(l, status.and_then(|s| s.1), status.and_then(|s| s.2))
            })
            .collect())
    }

    async fn resolve(conn: &mut Conn, folder: &FolderRef) -> Result<Folder, OpError> {
        let folders = Self::folders(conn).await?;
        let found = match folder {
            FolderRef::WellKnown(role) => {
                folders.iter().find(|f| f.role == Some(*role)).or_else(|| {
                    conventional_names(*role).iter().find_map(|name| {
                        folders
                            .iter()
                            .find(|f| f.role.is_none() && f.path.eq_ignore_ascii_case(name))
                    })
                })
            }
            FolderRef::Path(path) => {
                let want = path.segments().join("/");
                folders.iter().find(|f| {
                    f.path == want
                        || (f.path.eq_ignore_ascii_case(&want)
                            && f.role == Some(WellKnownFolder::Inbox))
                })
            }
            FolderRef::Id(id) => folders.iter().find(|f| f.remote_id == *id),
        };
        found.cloned().ok_or_else(|| {
            OpError::Done(ConnectorError::new(
                ErrorKind::NotFound,
                format!("no imap folder {folder}"),
            ))
        })
    }

    fn parse_id(remote_id: &str) -> Result<RemoteId, ConnectorError> {
        RemoteId::parse(remote_id).ok_or_else(|| {
            ConnectorError::new(
                ErrorKind::InvalidInput,
                format!("{remote_id:?} is not an imap message id (mailbox:UIDVALIDITY:UID)"),
            )
        })
    }

    /// Selects the message's mailbox and checks the message is still there.
    async fn select_message(conn: &mut Conn, id: &RemoteId) -> Result<(), OpError> {
        let sel = conn.ensure_selected(&utf7::encode(&id.mailbox)).await?;
        let gone = || {
            OpError::Done(ConnectorError::new(
                ErrorKind::NotFound,
                format!("imap message {id} no longer exists"),
            ))
        };
        if sel.uid_validity != id.uid_validity {
            return Err(gone());
        }
        let found = conn.fetch(&format!("UID FETCH {} (UID)", id.uid)).await?;
        if !found.iter().any(|f| f.uid == Some(id.uid)) {
            return Err(gone());
        }
        Ok(())
    }

    async fn move_op(conn: &mut Conn, id: &RemoteId, destination: &str) -> Result<String, OpError> {
        Self::select_message(conn, id).await?;
        if destination == id.mailbox {
            return Ok(id.to_string());
        }
        let dest = quote_mailbox(destination)
            .map_err(|e| ConnectorError::new(ErrorKind::InvalidInput, e.to_string()))?;
        // Without UIDPLUS the new UID is found again by Message-ID.
        let message_id = if conn.caps.uidplus {
            None
        } else {
            message_id_of(conn, id.uid).await?
        };
        let done = if conn.caps.move_ {
            conn.simple(&format!("UID MOVE {} {dest}", id.uid)).await?
        } else {
            let done = conn.simple(&format!("UID COPY {} {dest}", id.uid)).await?;
            expunge_uid(conn, id.uid).await?;
            done
        };
        if let Some((uid_validity, _, dst)) = done.copy_uid
            && let Some(uid) = UidSet::from_uids(dst.iter().flat_map(|m| match m {
                async_imap::imap_proto::rfc4315::UidSetMember::Uid(u) => *u..=*u,
                async_imap::imap_proto::rfc4315::UidSetMember::UidRange(r) => r.clone(),
            }))
            .iter()
            .next()
        {
            return Ok(RemoteId::new(destination, uid_validity, uid).to_string());
        }
        let Some(message_id) = message_id else {
            return Err(OpError::Done(ConnectorError::new(
                ErrorKind::Unsupported,
                format!(
                    "moved {id} to {destination}, but the server did not tell its new uid and the message has no Message-ID"
                ),
            )));
        };
        let sel = conn.select(&utf7::encode(destination)).await?;
        let criteria = format!(
            "HEADER Message-ID {}",
            quote(&message_id, "a Message-ID")
                .map_err(|e| ConnectorError::new(ErrorKind::Protocol, e.to_string()))?
        );
        let uid = conn
            .uid_search(&criteria)
            .await?
            .into_iter()
            .max()
            .ok_or_else(|| {
                ConnectorError::new(
                    ErrorKind::NotFound,
                    format!("moved {id} to {destination} but cannot find it there"),
                )
            })?;
        Ok(RemoteId::new(destination, sel.uid_validity, uid).to_string())
    }
}

impl Reopen for ImapConnector {
    fn reopen(&self) -> futures::future::BoxFuture<'_, Result<Conn, ConnectorError>> {
        Box::pin(self.open())
    }
}

async fn greeting(
    client: &mut async_imap::Client<
        impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + fmt::Debug + Send,
    >,
    context: &str,
) -> Result<(), ConnectorError> {
    use async_imap::imap_proto::{Outcome, Response, Status};
    let response = client
        .read_response()
        .await
        .map_err(|e| map_io_error(&e).into_error(context, ErrorKind::Protocol))?;
    let Some(response) = response else {
        return Err(ConnectorError::new(
            ErrorKind::Transient,
            format!("{context}: closed before the greeting"),
        ));
    };
    match response.parsed() {
        Response::Data {
            status: Status::Ok | Status::PreAuth,
            ..
        } => Ok(()),
        Response::Data {
            status: Status::Bye,
            outcome: Outcome { information, .. },
        } => Err(ConnectorError::new(
            ErrorKind::Transient,
            format!(
                "{context}: server refused the connection: {}",
                crate::proto::guard::decode_text(information.as_deref().unwrap_or("BYE"))
            ),
        )),
        other => Err(ConnectorError::new(
            ErrorKind::Protocol,
            format!("{context}: unexpected greeting {other:?}"),
        )),
    }
}

async fn message_id_of(conn: &mut Conn, uid: u32) -> Result<Option<String>, Failure> {
    // The header sits at the start of the message: 64 KiB of it is plenty.
    let records = conn
        .fetch_messages(
            &format!("UID FETCH {uid} (UID BODY.PEEK[]<0.65536>)"),
            "",
            0,
            65536,
            0,
        )
        .await?;
    Ok(records.into_iter().next().and_then(|m| {
        m.message_id
            .map(|id| id.trim_start_matches('<').trim_end_matches('>').to_owned())
    }))
}

/// `\Deleted` + `UID EXPUNGE` (plain `EXPUNGE` without UIDPLUS).
async fn expunge_uid(conn: &mut Conn, uid: u32) -> Result<(), Failure> {
    conn.simple(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"))
        .await?;
    if conn.caps.uidplus {
        conn.simple(&format!("UID EXPUNGE {uid}")).await?;
    } else {
        conn.simple("EXPUNGE").await?;
    }
    Ok(())
}

fn folder_of(listed: &Listed, total: Option<u64>, unread: Option<u64>) -> Folder {
    let name = utf7::decode_lossy(&listed.wire_name);
    let segments: Vec<&str> = match listed.delimiter.as_deref() {
        Some(d) if !d.is_empty() => name.split(d).collect(),
        _ => vec![name.as_str()],
    };
    let attributes: Vec<&str> = listed.attributes.iter().map(String::as_str).collect();
    let parent_id = (segments.len() > 1).then(|| {
        let d = listed.delimiter.as_deref().unwrap_or("/");
        segments[..segments.len() - 1].join(d)
    });
    Folder {
        role: role_of(&name, &attributes),
        path: segments.join("/"),
        name: segments.last().copied().unwrap_or_default().to_owned(),
        parent_id,
        total_count: total,
        unread_count: unread,
        remote_id: name.clone(),
    }
}

fn imap_date(d: DateTime<Utc>) -> String {
    d.format("%d-%b-%Y").to_string()
}

#[async_trait]
impl Connector for ImapConnector {
    fn protocol(&self) -> Protocol {
        Protocol::Imap
    }

    async fn connect(&self) -> Result<AccountInfo, ConnectorError> {
        let context = format!("cannot reach imap account {}", self.what());
        with_conn!(self, &context, ErrorKind::Other, |conn| async {
            conn.simple("NOOP").await?;
            Ok::<_, OpError>(())
        })?;
        let address = if self.username.contains('@') {
            self.username.clone()
        } else {
            self.account_email.clone()
        };
        Ok(AccountInfo {
            address: Some(address),
            display_name: None,
        })
    }

    async fn list_folders(&self) -> Result<Vec<Folder>, ConnectorError> {
        let context = format!("cannot list folders of {}", self.what());
        with_conn!(self, &context, ErrorKind::Other, |conn| Self::folders(conn))
    }

    async fn resolve_folder(&self, folder: &FolderRef) -> Result<Folder, ConnectorError> {
        let context = format!("cannot find folder {folder} of {}", self.what());
        with_conn!(self, &context, ErrorKind::NotFound, |conn| Self::resolve(
            conn, folder
        ))
    }

    async fn fetch_page(
        &self,
        folder: &FolderRef,
        query: &FetchQuery,
        page: Option<PageToken>,
    ) -> Result<MessagePage, ConnectorError> {
        let context = format!("cannot list messages of {folder} of {}", self.what());
        let page_size = query.page_size.unwrap_or(self.options.page_size).max(1) as usize;
        let want = query.limit.map_or(page_size, |l| l.min(page_size));
        if want == 0 {
            return Ok(MessagePage::default());
        }
        let token = match &page {
            None => None,
            Some(t) => Some(
                t.0.split_once(':')
                    .and_then(|(v, b)| Some((v.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
                    .ok_or_else(|| {
                        ConnectorError::new(ErrorKind::InvalidInput, "not an imap page token")
                    })?,
            ),
        };
        let limits = self.limits();
        with_conn!(self, &context, ErrorKind::NotFound, |conn| async {
            let mailbox = Self::mailbox_of(conn, folder).await?;
            let sel = conn.select(&utf7::encode(&mailbox)).await?;
            let mut criteria = match token {
                Some((uv, _)) if uv != sel.uid_validity => {
                    return Err(OpError::Done(ConnectorError::new(
                        ErrorKind::InvalidInput,
                        "page token is stale: the folder's UIDVALIDITY changed; start again",
                    )));
                }
                Some((_, before)) if before <= 1 => return Ok(MessagePage::default()),
                Some((_, before)) => format!("UID 1:{}", before - 1),
                None => "ALL".to_owned(),
            };
            if let Some(since) = query.since {
                // SEARCH SINCE compares dates in each message's own time zone: ask
                // from the day before, then filter on the exact instant below.
                let day_before = since - chrono::TimeDelta::days(1);
                criteria.push_str(&format!(" SINCE {}", imap_date(day_before)));
            }
            let mut uids = conn.uid_search(&criteria).await?;
            uids.sort_unstable_by(|a, b| b.cmp(a));
            let more = uids.len() > want;
            uids.truncate(want);
            let Some(&lowest) = uids.last() else {
                return Ok(MessagePage::default());
            };
            let set = UidSet::from_uids(uids).to_string();
            let mut messages = crate::sync::read_records(
                conn,
                &format!("UID FETCH {set}"),
                &mailbox,
                sel.uid_validity,
                limits,
                0,
                self,
            )
            .await?;
            messages.sort_by_key(|m| {
                std::cmp::Reverse(RemoteId::parse(&m.remote_id).map_or(0, |id| id.uid))
            });
            if let Some(since) = query.since {
                messages.retain(|m| m.date_received.is_none_or(|d| d >= since));
            }
            let limit_reached = query.limit.is_some_and(|l| l <= want);
            let next = (more && !limit_reached)
                .then(|| PageToken(format!("{}:{lowest}", sel.uid_validity)));
            Ok(MessagePage { messages, next })
        })
    }

    async fn get_message(&self, remote_id: &str) -> Result<Message, ConnectorError> {
        let id = Self::parse_id(remote_id)?;
        let context = format!("cannot read imap message {id}");
        let cap = self.options.max_message_bytes;
        with_conn!(self, &context, ErrorKind::NotFound, |conn| async {
            let sel = conn.ensure_selected(&utf7::encode(&id.mailbox)).await?;
            let gone = || {
                OpError::Done(ConnectorError::new(
                    ErrorKind::NotFound,
                    format!("imap message {id} no longer exists"),
                ))
            };
            if sel.uid_validity != id.uid_validity {
                return Err(gone());
            }
            let messages = conn
                .fetch_messages(
                    &format!("UID FETCH {} {}", id.uid, record_items(cap)),
                    &id.mailbox,
                    id.uid_validity,
                    cap,
                    0,
                )
                .await?;
            messages
                .into_iter()
                .find(|m| m.remote_id == remote_id)
                .ok_or_else(gone)
        })
    }

    async fn move_message(
        &self,
        remote_id: &str,
        destination: &FolderRef,
    ) -> Result<String, ConnectorError> {
        let id = Self::parse_id(remote_id)?;
        let context = format!("cannot move imap message {id} to {destination}");
        with_conn!(self, &context, ErrorKind::Other, |conn| async {
            let dest = Self::mailbox_of(conn, destination).await?;
            Self::move_op(conn, &id, &dest).await
        })
    }

    async fn delete_message(
        &self,
        remote_id: &str,
        mode: DeleteMode,
    ) -> Result<(), ConnectorError> {
        let id = Self::parse_id(remote_id)?;
        let context = format!("cannot delete imap message {id}");
        with_conn!(self, &context, ErrorKind::Other, |conn| async {
            if mode == DeleteMode::Soft {
                let trash = Self::resolve(conn, &FolderRef::WellKnown(WellKnownFolder::Deleted))
                    .await
                    .map_err(|e| match e {
                        OpError::Done(e) if e.is_not_found() => OpError::Done(ConnectorError::new(
                            ErrorKind::Unsupported,
                            "the server has no trash folder (\\Trash); delete permanently instead",
                        )),
                        other => other,
                    })?;
                if trash.remote_id != id.mailbox {
                    Self::move_op(conn, &id, &trash.remote_id).await?;
                    return Ok(());
                }
            }
            Self::select_message(conn, &id).await?;
            expunge_uid(conn, id.uid).await?;
            Ok(())
        })
    }

    async fn sync_folder(
        &self,
        folder: &FolderRef,
        cursor: Option<SyncCursor>,
    ) -> Result<SyncPage, ConnectorError> {
        let context = format!("cannot sync {folder} of {}", self.what());
        let key = folder.to_string();
        let (started, pages) = self.continue_run(&key, cursor.as_ref(), &context)?;
        let limits = self.limits();
        let page = with_conn!(self, &context, ErrorKind::NotFound, |conn| async {
            let mailbox = Self::mailbox_of(conn, folder).await?;
            sync_page(conn, &mailbox, cursor.as_ref(), limits, self).await
        })?;
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if page.complete {
            runs.remove(&key);
        } else {
            let next = page.cursor.clone();
            let pages = pages + 1;
            runs.insert(
                key,
                FolderRun {
                    started,
                    pages,
                    next,
                },
            );
        }
        Ok(page)
    }

    fn take_refreshed_credentials(&self) -> Option<Credentials> {
        let Login::OAuth(session) = &self.login else {
            return None;
        };
        let oauth = session.take_refreshed()?;
        let mut credentials = self.credentials.clone();
        credentials.auth = ImapAuth::OAuth(oauth);
        Some(Credentials::Imap(credentials))
    }

    /// XOAUTH2 tokens go to `sink` as complete IMAP credentials before they are used.
    /// (IMAP has no `Retry-After`.)
    fn set_state_sink(&self, sink: Arc<dyn StateSink>) {
        if let Login::OAuth(session) = &self.login {
            session.set_persister(Arc::new(SinkPersister {
                sink,
                credentials: self.credentials.clone(),
            }));
        }
    }

    async fn disconnect(&self) -> Result<(), ConnectorError> {
        if let Some(conn) = self.conn.lock().await.take() {
            conn.logout().await;
        }
        Ok(())
    }
}
