//! `mailroom messages list|show`, `mailroom move`, `mailroom delete`.

use std::collections::HashMap;
use std::io::Write as _;

use anyhow::{Context as _, Result};
use futures::StreamExt as _;
use mailroom_core::{Credentials, DeleteMode, EmailAddress, FolderRef};
use mailroom_graph::GraphConnector;
use mailroom_store::{Account, FolderRow, MessageQuery, StoredMessage};
use serde_json::{Map, Value, json};

use crate::cli::{DeleteArgs, ListMessagesArgs, MessagesCommand, MoveArgs, ShowMessageArgs};
use crate::cmd::parse_since;
use crate::context::Ctx;
use crate::exit::{Code, Failure};
use crate::output::{self, Table, clip};

pub async fn run(ctx: &Ctx, command: MessagesCommand) -> Result<()> {
    match command {
        MessagesCommand::List(args) => list(ctx, args).await,
        MessagesCommand::Show(args) => show(ctx, args).await,
    }
}

/// The local folder a user-given name means: a role, a path, or `id:…`.
pub fn match_folder<'a>(rows: &'a [FolderRow], name: &str) -> Result<Option<&'a FolderRow>> {
    let reference = FolderRef::parse(name).map_err(|e| Failure::err(Code::Usage, e.to_string()))?;
    let by_path = |p: &str| {
        rows.iter().find(|r| {
            r.folder.path.eq_ignore_ascii_case(p) || r.folder.name.eq_ignore_ascii_case(p)
        })
    };
    Ok(match &reference {
        FolderRef::WellKnown(role) => rows
            .iter()
            .find(|r| r.folder.role == Some(*role))
            .or_else(|| by_path(name.trim())),
        FolderRef::Path(p) => by_path(&p.to_string()),
        FolderRef::Id(id) => rows.iter().find(|r| &r.folder.remote_id == id),
    })
}

fn address(a: &EmailAddress) -> String {
    match (&a.name, &a.address) {
        (Some(n), _) if !n.trim().is_empty() => n.clone(),
        (_, Some(addr)) => addr.clone(),
        _ => String::new(),
    }
}

/// The JSON record of a stored message.
pub fn message_json(m: &StoredMessage, account: &str, folder: Option<&str>) -> Result<Value> {
    let mut out = Map::new();
    out.insert("id".into(), json!(m.id));
    out.insert("account".into(), json!(account));
    out.insert("folder".into(), json!(folder));
    if let Value::Object(fields) = serde_json::to_value(&m.message)? {
        for (k, v) in fields {
            if k != "folder_id" {
                out.insert(k, v);
            }
        }
    }
    Ok(Value::Object(out))
}

/// Account emails and folder paths by id, for display.
struct Names {
    accounts: HashMap<i64, String>,
    folders: HashMap<i64, String>,
}

impl Names {
    async fn load(ctx: &Ctx, accounts: &[Account]) -> Result<Names> {
        let store = ctx.store().await?;
        let mut folders = HashMap::new();
        for a in accounts {
            for f in store.list_folders(a.id).await? {
                folders.insert(f.id, f.folder.path.clone());
            }
        }
        Ok(Names {
            accounts: accounts.iter().map(|a| (a.id, a.email.clone())).collect(),
            folders,
        })
    }

    fn account(&self, id: i64) -> &str {
        self.accounts.get(&id).map_or("?", String::as_str)
    }

    fn folder(&self, id: i64) -> Option<&str> {
        self.folders.get(&id).map(String::as_str)
    }
}

async fn list(ctx: &Ctx, args: ListMessagesArgs) -> Result<()> {
    let store = ctx.store().await?;
    let accounts = match &args.account {
        Some(email) => vec![ctx.account(email).await?],
        None => store.list_accounts().await?,
    };
    let mut query = MessageQuery {
        account_id: args.account.as_ref().map(|_| accounts[0].id),
        since: args.since.as_deref().map(parse_since).transpose()?,
        unread_only: args.unread,
        text: args.search.clone().filter(|s| !s.is_empty()),
        limit: args.limit,
        offset: args.offset,
        ..MessageQuery::default()
    };
    if let Some(name) = &args.folder {
        let account = match accounts.as_slice() {
            [one] => one,
            [] => {
                return Err(Failure::err(
                    Code::Failure,
                    "no accounts yet — add one with `mailroom account add outlook --email …`",
                ));
            }
            _ => {
                return Err(Failure::err(
                    Code::Usage,
                    "--folder needs --account when there are several accounts",
                ));
            }
        };
        let rows = store.list_folders(account.id).await?;
        let row = match_folder(&rows, name)?.ok_or_else(|| {
            let known: Vec<&str> = rows.iter().map(|r| r.folder.path.as_str()).collect();
            let configured = crate::cmd::synced::configured(account);
            let near = crate::cmd::synced::did_you_mean(
                name,
                known.iter().copied().chain(configured.iter().map(String::as_str)),
            );
            let advice = if configured
                .iter()
                .any(|c| crate::cmd::synced::same_folder(c, name))
            {
                format!(
                    "it is configured but not synced yet: run `mailroom sync --account {}`",
                    account.email
                )
            } else {
                format!(
                    "to keep it synced, add it with `mailroom account folders {} add {name}`, then `mailroom sync --account {}`",
                    account.email, account.email
                )
            };
            Failure::err(
                Code::Failure,
                format!(
                    "{} has no synced folder {name:?} (synced: {}){} — {advice}",
                    account.email,
                    if known.is_empty() { "none".into() } else { known.join(", ") },
                    crate::cmd::synced::suggestion(&near),
                ),
            )
        })?;
        query.account_id = Some(account.id);
        query.folder_id = Some(row.id);
    }
    let messages = store.list_messages(&query).await?;
    let names = Names::load(ctx, &accounts).await?;
    if ctx.json() {
        let out = messages
            .iter()
            .map(|m| message_json(m, names.account(m.account_id), names.folder(m.folder_id)))
            .collect::<Result<Vec<_>>>()?;
        return output::json(&Value::Array(out));
    }
    let several = accounts.len() > 1 && query.account_id.is_none();
    let mut header = vec!["ID", "RECEIVED", "FLAGS", "FROM", "SUBJECT", "FOLDER"];
    if several {
        header.push("ACCOUNT");
    }
    let mut table = Table::new(&header);
    for m in &messages {
        let r = &m.message;
        let flags = format!(
            "{}{}{}",
            if r.is_read { '-' } else { 'U' },
            if r.has_attachments { 'A' } else { '-' },
            if r.is_draft { 'D' } else { '-' }
        );
        let mut row = vec![
            m.id.to_string(),
            output::opt_time(r.date_received),
            flags,
            clip(&r.sender.as_ref().map(address).unwrap_or_default(), 24),
            clip(r.subject.as_deref().unwrap_or("(no subject)"), 60),
            names.folder(m.folder_id).unwrap_or("?").to_owned(),
        ];
        if several {
            row.push(names.account(m.account_id).to_owned());
        }
        table.row(row);
    }
    if messages.is_empty() {
        eprintln!("no messages match");
        return Ok(());
    }
    table.print()?;
    let total = store.count_messages(&query).await?;
    let shown_to = args.offset + messages.len() as u64;
    if total > shown_to || args.offset > 0 {
        eprintln!(
            "showing {}–{shown_to} of {total}{}",
            args.offset + 1,
            if total > shown_to {
                format!("; more with --offset {shown_to}")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// A message named on the command line: its account, its local record if any, and
/// its server id.
struct Target {
    account: Account,
    stored: Option<StoredMessage>,
    remote_id: String,
}

async fn find_message(ctx: &Ctx, id: &str, account: Option<&str>) -> Result<Target> {
    let store = ctx.store().await?;
    let id = id.trim();
    let wanted = match account {
        Some(email) => Some(ctx.account(email).await?),
        None => None,
    };
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = id
            .parse()
            .map_err(|_| Failure::err(Code::Usage, format!("message id {id} is too large")))?;
        let stored = store.get_message_by_id(n).await.map_err(|e| match e {
            mailroom_store::Error::NotFound(_) => Failure::err(
                Code::Failure,
                format!("no message {id} in the local database — see `mailroom messages list`"),
            ),
            e => e.into(),
        })?;
        let owner = store.get_account(stored.account_id).await?;
        if let Some(w) = &wanted
            && w.id != owner.id
        {
            return Err(Failure::err(
                Code::Failure,
                format!("message {id} belongs to {}, not {}", owner.email, w.email),
            ));
        }
        return Ok(Target {
            remote_id: stored.message.remote_id.clone(),
            account: owner,
            stored: Some(stored),
        });
    }
    let candidates = match wanted {
        Some(a) => vec![a],
        None => store.list_accounts().await?,
    };
    let single = candidates.len() == 1;
    for a in &candidates {
        match store.get_message(a.id, id).await {
            Ok(stored) => {
                return Ok(Target {
                    account: a.clone(),
                    stored: Some(stored),
                    remote_id: id.to_owned(),
                });
            }
            Err(mailroom_store::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if single && account.is_some() {
        // Not synced locally, but the server may have it.
        return Ok(Target {
            account: candidates.into_iter().next().expect("one account"),
            stored: None,
            remote_id: id.to_owned(),
        });
    }
    Err(Failure::err(
        Code::Failure,
        format!(
            "no message {} in the local database — use an ID from `mailroom messages list`, or pass --account EMAIL to act on the server id",
            clip(id, 40)
        ),
    ))
}

async fn show(ctx: &Ctx, args: ShowMessageArgs) -> Result<()> {
    let target = find_message(ctx, &args.id, args.account.as_deref()).await?;
    if args.raw {
        return raw(ctx, &target).await;
    }
    let Some(stored) = &target.stored else {
        return Err(Failure::err(
            Code::Failure,
            format!(
                "message {} is not in the local database — sync first, or use --raw to fetch it from the server",
                clip(&target.remote_id, 40)
            ),
        ));
    };
    let folder = ctx.store().await?.get_folder(stored.folder_id).await.ok();
    let folder_path = folder.as_ref().map(|f| f.folder.path.as_str());
    if ctx.json() {
        return output::json(&message_json(stored, &target.account.email, folder_path)?);
    }
    let m = &stored.message;
    let people = |list: &[EmailAddress]| {
        if list.is_empty() {
            "-".to_owned()
        } else {
            list.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "ID            {}", stored.id)?;
    writeln!(out, "Account       {}", target.account.email)?;
    writeln!(out, "Folder        {}", folder_path.unwrap_or("?"))?;
    writeln!(out, "Server id     {}", m.remote_id)?;
    writeln!(
        out,
        "Message-ID    {}",
        m.message_id.as_deref().unwrap_or("-")
    )?;
    writeln!(
        out,
        "Subject       {}",
        m.subject.as_deref().unwrap_or("(no subject)")
    )?;
    writeln!(
        out,
        "From          {}",
        m.sender
            .as_ref()
            .map_or_else(|| "-".into(), ToString::to_string)
    )?;
    writeln!(out, "To            {}", people(&m.to))?;
    writeln!(out, "Cc            {}", people(&m.cc))?;
    writeln!(out, "Received      {}", output::opt_time(m.date_received))?;
    writeln!(out, "Sent          {}", output::opt_time(m.sent_at))?;
    writeln!(
        out,
        "State         {}{}",
        if m.is_read { "read" } else { "unread" },
        if m.is_draft { ", draft" } else { "" }
    )?;
    if m.attachments.is_empty() {
        writeln!(out, "Attachments   {}", m.attachment_count)?;
    } else {
        writeln!(out, "Attachments   {}", m.attachments.len())?;
        for a in &m.attachments {
            writeln!(
                out,
                "  - {} ({}, {} bytes{})",
                a.name.as_deref().unwrap_or("(unnamed)"),
                a.content_type.as_deref().unwrap_or("?"),
                a.size,
                if a.is_inline { ", inline" } else { "" }
            )?;
        }
    }
    if let Some(c) = &m.conversation_id {
        writeln!(out, "Conversation  {c}")?;
    }
    for w in &m.warnings {
        writeln!(out, "Warning       {w}")?;
    }
    writeln!(out)?;
    writeln!(out, "{}", m.body.as_deref().unwrap_or("(no preview)"))?;
    Ok(())
}

/// `messages show --raw`: the MIME message from the server, streamed to stdout.
async fn raw(ctx: &Ctx, target: &Target) -> Result<()> {
    let account = &target.account;
    let vault = ctx.vault().await?;
    let Credentials::OAuth(oauth) = ctx.decrypt(&vault, account)? else {
        return Err(Failure::err(
            Code::Failure,
            format!(
                "--raw is only available for Graph accounts; {} uses IMAP",
                account.email
            ),
        ));
    };
    let syncer = ctx.syncer().await?;
    let graph = GraphConnector::from_credentials(
        &account.email,
        oauth,
        &ctx.global.authority_url,
        ctx.graph_config(),
    )?;
    let opened = graph.raw_mime(&target.remote_id).await;
    let mut stream = ctx.settle(&syncer, account, &graph, opened).await?;
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        out.write_all(&chunk).context("cannot write to stdout")?;
    }
    out.flush()?;
    Ok(())
}

pub async fn move_message(ctx: &Ctx, args: MoveArgs) -> Result<()> {
    let dest = FolderRef::parse(&args.dest_folder)
        .map_err(|e| Failure::err(Code::Usage, e.to_string()))?;
    let target = find_message(ctx, &args.id, args.account.as_deref()).await?;
    let account = &target.account;
    let store = ctx.store().await?;
    let (syncer, connector) = ctx.connector(account).await?;
    let c = connector.as_ref();
    let moved = c.move_message(&target.remote_id, &dest).await;
    let new_remote_id = ctx.settle(&syncer, account, c, moved).await?;
    store
        .remove_messages(account.id, std::slice::from_ref(&target.remote_id))
        .await?;
    // Show the message in its new folder right away if that folder is synced here.
    let mut new_local_id = None;
    let mut folder_path = args.dest_folder.clone();
    let resolved = c.resolve_folder(&dest).await;
    match ctx.settle(&syncer, account, c, resolved).await {
        Ok(folder) => {
            folder_path = folder.path.clone();
            let rows = store.list_folders(account.id).await?;
            if let Some(row) = rows
                .iter()
                .find(|r| r.folder.remote_id == folder.remote_id && r.cursor.is_some())
            {
                let fetched = c.get_message(&new_remote_id).await;
                match ctx.settle(&syncer, account, c, fetched).await {
                    Ok(message) => {
                        store
                            .upsert_messages(account.id, row.id, std::slice::from_ref(&message))
                            .await?;
                        new_local_id =
                            Some(store.get_message(account.id, &new_remote_id).await?.id);
                    }
                    Err(e) => eprintln!(
                        "mailroom: warning: moved, but cannot read it back ({}); the next sync brings it",
                        output::error_text(&e)
                    ),
                }
            }
        }
        Err(e) => eprintln!(
            "mailroom: warning: moved, but cannot look up the folder: {}",
            output::error_text(&e)
        ),
    }
    let _ = c.disconnect().await;
    if ctx.json() {
        return output::json(&json!({
            "account": account.email,
            "id": target.stored.as_ref().map(|s| s.id),
            "remote_id": target.remote_id,
            "folder": folder_path,
            "new_remote_id": new_remote_id,
            "new_id": new_local_id,
        }));
    }
    let name = target
        .stored
        .as_ref()
        .map_or_else(|| clip(&target.remote_id, 24), |s| s.id.to_string());
    match new_local_id {
        Some(id) => println!("moved {name} to {folder_path} (now ID {id})"),
        None => println!("moved {name} to {folder_path}"),
    }
    Ok(())
}

pub async fn delete_message(ctx: &Ctx, args: DeleteArgs) -> Result<()> {
    let target = find_message(ctx, &args.id, args.account.as_deref()).await?;
    let account = &target.account;
    let (syncer, connector) = ctx.connector(account).await?;
    let mode = if args.permanent {
        DeleteMode::Hard
    } else {
        DeleteMode::Soft
    };
    let deleted = connector.delete_message(&target.remote_id, mode).await;
    let _ = connector.disconnect().await;
    ctx.settle(&syncer, account, connector.as_ref(), deleted)
        .await?;
    ctx.store()
        .await?
        .remove_messages(account.id, std::slice::from_ref(&target.remote_id))
        .await?;
    if ctx.json() {
        return output::json(&json!({
            "account": account.email,
            "id": target.stored.as_ref().map(|s| s.id),
            "remote_id": target.remote_id,
            "permanent": args.permanent,
        }));
    }
    let name = target
        .stored
        .as_ref()
        .map_or_else(|| clip(&target.remote_id, 24), |s| s.id.to_string());
    if args.permanent {
        println!("deleted {name} for good");
    } else {
        println!("deleted {name} (moved to Deleted Items / Trash)");
    }
    Ok(())
}
