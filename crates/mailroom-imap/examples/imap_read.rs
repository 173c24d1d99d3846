//! Reading and syncing a mailbox over IMAP with nothing but `mailroom-imap` and tokio,
//! logged in with a password or with SASL XOAUTH2 (Outlook's IMAP): connect, list the
//! folders, read the newest messages of the Inbox, then sync the Inbox page by page and
//! once more from the stored cursor.
//!
//! With a password, against any IMAP server (plain text is only allowed to loopback):
//!
//! ```sh
//! MAILROOM_IMAP_HOST=imap.example.com MAILROOM_IMAP_USER=alice@example.com \
//!     MAILROOM_IMAP_PASSWORD=… cargo run -p mailroom-imap --example imap_read
//! ```
//!
//! With XOAUTH2, set `MAILROOM_IMAP_REFRESH_TOKEN` and `MAILROOM_CLIENT_ID` (an app with
//! `https://outlook.office.com/IMAP.AccessAsUser.All`) instead of the password; the
//! access token is fetched by a refresh (from `MAILROOM_AUTHORITY_URL`, default
//! Microsoft's, e.g. `mailroom-sim`'s base URL). Optional: `MAILROOM_IMAP_PORT` (993),
//! `MAILROOM_IMAP_TLS` (`implicit`, `starttls` or `none`), `MAILROOM_IMAP_CA_FILE` (a PEM
//! file for a private CA).

use mailroom_imap::chrono::{DateTime, Utc};
use mailroom_imap::{
    AccessToken, Change, Connector, Credentials, FetchQuery, FolderRef, ImapAuth, ImapConnector,
    ImapCredentials, ImapOptions, ImapTls, OAuthCredentials, Password, RefreshToken, SyncCursor,
};

/// The scope Outlook's IMAP wants in an XOAUTH2 token.
pub const IMAP_SCOPE: &str = "https://outlook.office.com/IMAP.AccessAsUser.All";

/// Where the mailbox lives and who logs in.
#[derive(Debug, Clone)]
pub struct Server {
    /// Host name.
    pub host: String,
    /// Port: 993 for implicit TLS, 143 for STARTTLS.
    pub port: u16,
    /// Transport security.
    pub tls: ImapTls,
    /// Login name (usually the email address).
    pub user: String,
}

/// Credentials for a password login.
pub fn with_password(server: &Server, password: &str) -> ImapCredentials {
    ImapCredentials {
        host: server.host.clone(),
        port: server.port,
        tls: server.tls,
        username: Some(server.user.clone()),
        auth: ImapAuth::Password(Password::new(password)),
        extra: Default::default(),
    }
}

/// Credentials for an XOAUTH2 login. Without an access token (or with `expiry` unknown
/// or past) the connector refreshes first, with `refresh_token`.
pub fn with_xoauth2(
    server: &Server,
    client_id: &str,
    access_token: Option<&str>,
    refresh_token: &str,
    expiry: Option<DateTime<Utc>>,
) -> ImapCredentials {
    let mut oauth = OAuthCredentials::new(client_id);
    oauth.token = access_token.map(AccessToken::new);
    oauth.refresh_token = Some(RefreshToken::new(refresh_token));
    oauth.scopes = vec![IMAP_SCOPE.to_owned(), "offline_access".to_owned()];
    oauth.expiry = expiry;
    ImapCredentials {
        auth: ImapAuth::OAuth(oauth),
        ..with_password(server, "")
    }
}

/// What one run saw.
#[derive(Debug)]
pub struct Summary {
    /// Who the server says we are.
    pub address: Option<String>,
    /// Folder paths of the mailbox.
    pub folders: Vec<String>,
    /// Subjects of the newest messages of the Inbox, newest first.
    pub newest: Vec<String>,
    /// Pages the first sync of the Inbox took.
    pub first_sync_pages: usize,
    /// Messages the first sync delivered.
    pub first_sync_messages: usize,
    /// Changes the second sync (from the stored cursor) delivered.
    pub second_sync_changes: usize,
    /// The refreshed credentials to store, when a token refresh happened (XOAUTH2).
    pub refreshed: Option<Credentials>,
}

/// Syncs `folder` until it is up to date; returns (pages, changes, cursor). A real
/// application stores each page's changes and cursor in one transaction.
async fn sync_inbox(
    imap: &ImapConnector,
    mut cursor: Option<SyncCursor>,
) -> Result<(usize, Vec<Change>, SyncCursor), mailroom_imap::ConnectorError> {
    let (mut pages, mut changes) = (0, Vec::new());
    loop {
        let page = imap.sync_folder(&FolderRef::INBOX, cursor).await?;
        pages += 1;
        changes.extend(page.changes);
        if page.complete {
            return Ok((pages, changes, page.cursor));
        }
        cursor = Some(page.cursor);
    }
}

/// The whole walk, for stored credentials; `email` is the login when the credentials
/// have no user name.
pub async fn run(
    credentials: ImapCredentials,
    email: &str,
    options: ImapOptions,
) -> Result<Summary, Box<dyn std::error::Error>> {
    // 1. Build the connector (no I/O yet) and log in.
    let imap = ImapConnector::new(credentials, email, options)?;
    let me = imap.connect().await?;
    println!("logged in as {}", me.address.as_deref().unwrap_or(email));

    // 2. Folders: special-use roles are mapped (Sent, Trash, Junk, Archive, Drafts).
    let folders = imap.list_folders().await?;
    for folder in &folders {
        let role = folder.role.map(|r| format!(" ({r:?})")).unwrap_or_default();
        println!(
            "{:>7} {}{role}",
            folder.total_count.unwrap_or(0),
            folder.path
        );
    }

    // 3. The newest messages of the Inbox (read without marking them read).
    let query = FetchQuery {
        limit: Some(5),
        ..FetchQuery::default()
    };
    let page = imap.fetch_page(&FolderRef::INBOX, &query, None).await?;
    let newest: Vec<String> = page
        .messages
        .iter()
        .map(|m| m.subject.clone().unwrap_or_default())
        .collect();
    for message in &page.messages {
        println!(
            "{} {}",
            message.remote_id,
            message.subject.as_deref().unwrap_or("(no subject)")
        );
    }

    // 4. Sync: the first run enumerates the folder page by page; the cursor it ends
    //    with (stored as `cursor.as_str()`) makes the next run fetch only what changed.
    let (first_sync_pages, changes, cursor) = sync_inbox(&imap, None).await?;
    let first_sync_messages = changes
        .iter()
        .filter(|c| matches!(c, Change::Upsert(_)))
        .count();
    println!("first sync: {first_sync_messages} messages in {first_sync_pages} pages");
    let (_, later, _cursor) = sync_inbox(&imap, Some(cursor)).await?;
    println!("second sync: {} changes", later.len());

    // 5. XOAUTH2 rotates tokens on refresh: store the new credentials at once.
    let refreshed = imap.take_refreshed_credentials();
    if refreshed.is_some() {
        println!("tokens were refreshed: store the new credentials");
    }
    imap.disconnect().await?;
    Ok(Summary {
        address: me.address,
        folders: folders.into_iter().map(|f| f.path).collect(),
        newest,
        first_sync_pages,
        first_sync_messages,
        second_sync_changes: later.len(),
        refreshed,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let need = |name: &str| var(name).ok_or_else(|| format!("set {name}"));
    let tls = match var("MAILROOM_IMAP_TLS").as_deref() {
        None | Some("implicit") => ImapTls::Implicit,
        Some("starttls") => ImapTls::Starttls,
        Some("none") => ImapTls::None,
        Some(other) => return Err(format!("unknown MAILROOM_IMAP_TLS {other:?}").into()),
    };
    let default_port = if tls == ImapTls::Implicit { 993 } else { 143 };
    let server = Server {
        host: need("MAILROOM_IMAP_HOST")?,
        port: var("MAILROOM_IMAP_PORT").map_or(Ok(default_port), |p| p.parse())?,
        tls,
        user: need("MAILROOM_IMAP_USER")?,
    };
    let credentials = match var("MAILROOM_IMAP_PASSWORD") {
        Some(password) => with_password(&server, &password),
        None => with_xoauth2(
            &server,
            &need("MAILROOM_CLIENT_ID")?,
            None,
            &need("MAILROOM_IMAP_REFRESH_TOKEN")?,
            None,
        ),
    };
    let mut options = ImapOptions::default();
    if let Some(authority) = var("MAILROOM_AUTHORITY_URL") {
        options = options.authority_url(authority);
    }
    if let Some(ca_file) = var("MAILROOM_IMAP_CA_FILE") {
        options = options.ca_file(ca_file);
    }
    let summary = run(credentials, &server.user, options).await?;
    println!("{summary:#?}");
    Ok(())
}
