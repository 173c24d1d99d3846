//! From a device-code sign-in to mail, with nothing but `mailroom-graph` and tokio:
//! sign in, build a connector, list folders, read a page of the Inbox, sync the Inbox by
//! delta, move one message to the Archive, and see the move in the next delta round.
//!
//! Against the simulator (no Microsoft account needed; it approves the sign-in itself):
//!
//! ```sh
//! cargo run -p mailroom-sim -- --port 8917 --device-code-interval 1 &
//! MAILROOM_AUTHORITY_URL=http://127.0.0.1:8917 MAILROOM_GRAPH_URL=http://127.0.0.1:8917/v1.0 \
//!     cargo run -p mailroom-graph --example sign_in_and_read
//! ```
//!
//! Against Microsoft, leave both URLs unset and set `MAILROOM_CLIENT_ID` to an app
//! registration that allows public client flows (Mail.ReadWrite, offline_access).

use mailroom_graph::oauth::{Authority, PublicClientApplication, Resource, Tenant, TokenSession};
use mailroom_graph::{
    Change, Connector, DEFAULT_GRAPH_URL, FetchQuery, FolderRef, GraphConfig, GraphConnector,
    SyncCursor, WellKnownFolder,
};

/// What one run saw.
#[derive(Debug)]
pub struct Summary {
    /// Folders in the mailbox.
    pub folders: usize,
    /// Messages on the first page of the Inbox.
    pub inbox_page: usize,
    /// Messages the first (full) delta round delivered.
    pub first_delta: usize,
    /// The message moved to the Archive: its id before and after.
    pub moved: Option<(String, String)>,
    /// Removals the second delta round delivered (the moved message).
    pub second_delta_removals: usize,
}

/// Delta rounds until the folder is up to date; returns the changes and the cursor to
/// store for next time (with the changes, in one transaction, in a real application).
async fn delta_round(
    graph: &GraphConnector,
    mut cursor: Option<SyncCursor>,
) -> Result<(Vec<Change>, SyncCursor), mailroom_graph::ConnectorError> {
    let mut changes = Vec::new();
    loop {
        let page = graph.sync_folder(&FolderRef::INBOX, cursor).await?;
        changes.extend(page.changes);
        if page.complete {
            return Ok((changes, page.cursor));
        }
        cursor = Some(page.cursor);
    }
}

/// The whole walk, against the identity platform at `authority_url` and Graph at
/// `graph_url`.
pub async fn run(
    authority_url: &str,
    graph_url: &str,
    client_id: &str,
) -> Result<Summary, Box<dyn std::error::Error>> {
    // 1. Sign in: the user opens the URL and types the code; we poll until done.
    let app = PublicClientApplication::builder(client_id)
        .authority(Authority::new(authority_url, Tenant::Common)?)
        .build()?;
    let flow = app
        .start_device_flow(Resource::Graph.default_scopes())
        .await?;
    println!("{}", flow.message);
    let credentials = app
        .wait_for_device_flow(&flow, std::future::pending())
        .await?
        .into_credentials(); // encrypt these and store them

    // 2. A connector over a token session: tokens refresh by themselves.
    let session = TokenSession::new(app, credentials, Resource::Graph);
    let graph = GraphConnector::new(GraphConfig::default().graph_url(graph_url), session)?;
    let me = graph.connect().await?;
    println!("signed in as {}", me.address.as_deref().unwrap_or("?"));

    // 3. Folders, by path.
    let folders = graph.list_folders().await?;
    for folder in &folders {
        println!("{:>7} {}", folder.total_count.unwrap_or(0), folder.path);
    }

    // 4. The newest messages of the Inbox, one page.
    let query = FetchQuery {
        limit: Some(10),
        ..FetchQuery::default()
    };
    let page = graph.fetch_page(&FolderRef::INBOX, &query, None).await?;
    for message in &page.messages {
        println!(
            "{} {}",
            message
                .date_received
                .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
            message.subject.as_deref().unwrap_or("(no subject)")
        );
    }

    // 5. Delta: the first round lists the whole folder, and its cursor is kept.
    let (changes, cursor) = delta_round(&graph, None).await?;
    println!("first delta round: {} changes", changes.len());

    // 6. Move one message; the next delta round reports it gone from the Inbox.
    let archive = FolderRef::WellKnown(WellKnownFolder::Archive);
    let moved = match page.messages.first() {
        Some(message) => {
            let new_id = graph.move_message(&message.remote_id, &archive).await?;
            Some((message.remote_id.clone(), new_id))
        }
        None => None,
    };
    let (later, _cursor) = delta_round(&graph, Some(cursor)).await?;
    let removals = later
        .iter()
        .filter(|c| matches!(c, Change::Remove { .. }))
        .count();
    println!(
        "second delta round: {} changes, {removals} removed",
        later.len()
    );

    // 7. A refresh rotates the refresh token: store the new credentials at once.
    if let Some(_rotated) = graph.take_refreshed_credentials() {
        // … encrypt and store `_rotated`, replacing the old credentials
    }
    Ok(Summary {
        folders: folders.len(),
        inbox_page: page.messages.len(),
        first_delta: changes.len(),
        moved,
        second_delta_removals: removals,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let authority = var("MAILROOM_AUTHORITY_URL")
        .unwrap_or_else(|| mailroom_graph::oauth::DEFAULT_CLOUD.to_owned());
    let graph = var("MAILROOM_GRAPH_URL").unwrap_or_else(|| DEFAULT_GRAPH_URL.to_owned());
    let client_id = var("MAILROOM_CLIENT_ID").unwrap_or_else(|| "mailroom-example".to_owned());
    let summary = run(&authority, &graph, &client_id).await?;
    println!("{summary:#?}");
    Ok(())
}
