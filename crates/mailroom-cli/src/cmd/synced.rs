//! `mailroom account folders EMAIL [add|remove …]`: the folders an account syncs, and
//! the helpers other commands share (configured names, "did you mean", `--all-folders`).

use std::collections::{HashMap, HashSet};
use std::io::Write as _;

use anyhow::Result;
use chrono::Utc;
use mailroom_core::{Folder, FolderRef, Protocol, WellKnownFolder};
use mailroom_store::{Account, AccountUpdate, FolderRow, MessageQuery};
use serde_json::{Value, json};

use crate::cli::{AccountFoldersAction, AccountFoldersArgs, RemoveFoldersArgs};
use crate::context::Ctx;
use crate::exit::{Code, Failure};
use crate::output::{self, Table, clip};

pub async fn run(ctx: &Ctx, args: AccountFoldersArgs) -> Result<()> {
    let account = ctx.account(&args.email).await?;
    match args.action {
        None => list(ctx, &account).await,
        Some(AccountFoldersAction::Add(a)) => add(ctx, &account, &a.paths).await,
        Some(AccountFoldersAction::Remove(a)) => remove(ctx, &account, a).await,
    }
}

/// The names an account syncs: its configured list, or INBOX when it has none.
pub fn configured(account: &Account) -> Vec<String> {
    if account.sync_folders.is_empty() {
        vec![WellKnownFolder::Inbox.as_str().to_owned()]
    } else {
        account.sync_folders.clone()
    }
}

/// Whether two user-given names mean the same folder (a role in any of its names, a
/// path in any case, or the same `id:`).
pub fn same_folder(a: &str, b: &str) -> bool {
    match (FolderRef::parse(a), FolderRef::parse(b)) {
        (Ok(FolderRef::Path(x)), Ok(FolderRef::Path(y))) => {
            x.to_string().to_lowercase() == y.to_string().to_lowercase()
        }
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Whether a stored folder is the one a name means.
pub fn row_matches(row: &FolderRow, name: &str) -> bool {
    match FolderRef::parse(name) {
        Ok(FolderRef::WellKnown(role)) => {
            row.folder.role == Some(role) || row.folder.path.eq_ignore_ascii_case(name)
        }
        Ok(FolderRef::Path(path)) => {
            row.folder.path.to_lowercase() == path.to_string().to_lowercase()
        }
        Ok(FolderRef::Id(id)) => row.folder.remote_id == id,
        Err(_) => false,
    }
}

/// The stored row a configured name syncs into: one that exists is preferred to a
/// gone one of the same name, a synced one to one never synced.
pub fn row_for<'a>(rows: &'a [FolderRow], name: &str) -> Option<&'a FolderRow> {
    let matching: Vec<&FolderRow> = rows.iter().filter(|r| row_matches(r, name)).collect();
    matching
        .iter()
        .find(|r| r.gone_since.is_none() && r.cursor.is_some())
        .or_else(|| matching.iter().find(|r| r.gone_since.is_some()))
        .or_else(|| matching.first())
        .copied()
}

/// Edit distance of two strings (by characters).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Up to three candidates close to `name`, the closest only: the same but for case,
/// containing it (or its last segment), or within a few edits (a third of its length,
/// at least 2).
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let wanted = name.trim().trim_matches('/').to_lowercase();
    let last = wanted.rsplit('/').next().unwrap_or(&wanted).to_owned();
    let limit = (wanted.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, String)> = Vec::new();
    let mut seen = HashSet::new();
    for candidate in candidates {
        let lower = candidate.to_lowercase();
        let leaf = lower.rsplit('/').next().unwrap_or(&lower).to_owned();
        let score = if lower == wanted {
            0
        } else if !wanted.is_empty() && (lower.contains(&wanted) || leaf.contains(&last)) {
            1
        } else {
            let d = distance(&wanted, &lower).min(distance(&last, &leaf));
            if d > limit {
                continue;
            }
            1 + d
        };
        if seen.insert(lower) {
            scored.push((score, candidate.to_owned()));
        }
    }
    scored.sort();
    // Only the closest: "Alpah" suggests Alpha, not Beta as well.
    let best = scored.first().map_or(0, |(score, _)| *score);
    scored
        .into_iter()
        .take_while(|(score, _)| *score == best)
        .take(3)
        .map(|(_, c)| c)
        .collect()
}

/// ` — did you mean A or B?`, or nothing.
pub fn suggestion(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => format!(" — did you mean {one}?"),
        [init @ .., last] => format!(" — did you mean {} or {last}?", init.join(", ")),
    }
}

/// The names to store for `names`, each checked on the server: a role keeps its
/// role name (INBOX, ARCHIVE, …), a path takes the server's spelling. An unknown
/// name fails with "did you mean" from the server's folder list.
pub async fn check_on_server(
    ctx: &Ctx,
    account: &Account,
    names: &[String],
) -> Result<Vec<String>> {
    for name in names {
        FolderRef::parse(name).map_err(|e| Failure::err(Code::Usage, e.to_string()))?;
    }
    let (syncer, connector) = ctx.connector(account).await?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        let r = FolderRef::parse(name).expect("checked above");
        let resolved = connector.resolve_folder(&r).await;
        match resolved {
            Ok(folder) => out.push(match r {
                FolderRef::WellKnown(role) => role.as_str().to_owned(),
                _ => folder.path,
            }),
            Err(e) if e.is_not_found() => missing.push(name.clone()),
            Err(e) => {
                let _ = connector.disconnect().await;
                return ctx
                    .settle(&syncer, account, connector.as_ref(), Err(e))
                    .await;
            }
        }
    }
    if missing.is_empty() {
        let _ = connector.disconnect().await;
        ctx.settle(&syncer, account, connector.as_ref(), Ok(()))
            .await?;
        return Ok(out);
    }
    let listed = connector.list_folders().await;
    let _ = connector.disconnect().await;
    let folders = ctx
        .settle(&syncer, account, connector.as_ref(), listed)
        .await?;
    let paths: Vec<&str> = folders.iter().map(|f| f.path.as_str()).collect();
    let lines: Vec<String> = missing
        .iter()
        .map(|name| {
            format!(
                "{} has no folder {name:?} on the server{}",
                account.email,
                suggestion(&did_you_mean(name, paths.iter().copied()))
            )
        })
        .collect();
    Err(Failure::err(
        Code::Failure,
        format!(
            "{} (`mailroom folders --account {}` lists them)",
            lines.join("; "),
            account.email
        ),
    ))
}

/// Graph's well-known folders that hold no mail to sync: Outbox (mail waiting to be
/// sent, gone within seconds), Conversation History (Skype/Teams conversation logs)
/// and Sync Issues with its Conflicts / Local Failures / Server Failures (Outlook's
/// conflict copies). Hidden folders and search folders are not listed by Graph's
/// `mailFolders` in the first place.
const GRAPH_LEFT_OUT: [&str; 3] = ["outbox", "conversationhistory", "syncissues"];

/// `--all-folders`: the names of every mail folder the server lists, minus
/// [`GRAPH_LEFT_OUT`] (and their subfolders) and any Outbox role; roles by role name.
pub async fn all_mail_folders(ctx: &Ctx, account: &Account) -> Result<Vec<String>> {
    let (syncer, connector) = ctx.connector(account).await?;
    let listed = async {
        let folders = connector.list_folders().await?;
        let mut left_out = HashSet::new();
        if connector.protocol() == Protocol::Graph {
            for name in GRAPH_LEFT_OUT {
                // Absent in some mailboxes (and in the simulator): nothing to leave out.
                if let Ok(f) = connector.resolve_folder(&FolderRef::id(name)).await {
                    left_out.insert(f.remote_id);
                }
            }
        }
        Ok(pick_mail_folders(&folders, &left_out))
    }
    .await;
    let _ = connector.disconnect().await;
    ctx.settle(&syncer, account, connector.as_ref(), listed)
        .await
}

fn pick_mail_folders(folders: &[Folder], left_out: &HashSet<String>) -> Vec<String> {
    let parents: HashMap<&str, Option<&str>> = folders
        .iter()
        .map(|f| (f.remote_id.as_str(), f.parent_id.as_deref()))
        .collect();
    let excluded = |f: &Folder| {
        let mut cur = Some(f.remote_id.as_str());
        let mut hops = 0;
        while let Some(id) = cur {
            if left_out.contains(id) {
                return true;
            }
            hops += 1;
            if hops > 64 {
                break;
            }
            cur = parents.get(id).copied().flatten();
        }
        f.role == Some(WellKnownFolder::Outbox)
    };
    let mut roles_seen = HashSet::new();
    folders
        .iter()
        .filter(|f| !excluded(f))
        .map(|f| match f.role {
            Some(role) if roles_seen.insert(role) => role.as_str().to_owned(),
            _ => f.path.clone(),
        })
        .collect()
}

/// One configured folder's state in words and as JSON.
fn state(row: Option<&FolderRow>) -> &'static str {
    match row {
        None => "not synced yet",
        Some(r) if r.gone_since.is_some() => "gone",
        Some(r) if r.last_error.is_some() => "failing",
        Some(r) if r.cursor.is_none() => "not synced yet",
        Some(_) => "synced",
    }
}

async fn messages_in(ctx: &Ctx, account: &Account, row: Option<&FolderRow>) -> Result<u64> {
    Ok(match row {
        None => 0,
        Some(r) => {
            ctx.store()
                .await?
                .count_messages(&MessageQuery {
                    account_id: Some(account.id),
                    folder_id: Some(r.id),
                    ..MessageQuery::default()
                })
                .await?
        }
    })
}

/// The JSON record of one folder's sync state (also used by `account show`).
pub fn folder_state_json(name: Option<&str>, row: Option<&FolderRow>, messages: u64) -> Value {
    json!({
        "name": name,
        "path": row.map_or_else(|| name.unwrap_or_default().to_owned(), |r| r.folder.path.clone()),
        "role": row.and_then(|r| r.folder.role.map(|role| role.as_str())),
        "state": if row.is_some_and(|r| r.removed_at.is_some()) { "removed" } else { state(row) },
        "messages": messages,
        "last_synced_at": output::json_time(row.and_then(|r| r.last_synced_at)),
        "gone_since": output::json_time(row.and_then(|r| r.gone_since)),
        "missed_syncs": row.map_or(0, |r| r.missed_syncs),
        "error": row.and_then(|r| r.last_error.clone()),
        "removed_at": output::json_time(row.and_then(|r| r.removed_at)),
    })
}

async fn list(ctx: &Ctx, account: &Account) -> Result<()> {
    let rows = ctx.store().await?.list_folders(account.id).await?;
    let mut out = Vec::new();
    for name in configured(account) {
        let row = row_for(&rows, &name);
        let n = messages_in(ctx, account, row).await?;
        out.push(folder_state_json(Some(&name), row, n));
    }
    for row in rows.iter().filter(|r| r.removed_at.is_some()) {
        let n = messages_in(ctx, account, Some(row)).await?;
        out.push(folder_state_json(None, Some(row), n));
    }
    if ctx.json() {
        return output::json(&Value::Array(out));
    }
    let now = Utc::now();
    let mut table = Table::new(&["FOLDER", "STATE", "MESSAGES", "LAST SYNCED", "NOTE"]);
    for f in &out {
        let time = |key: &str| {
            f[key]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| output::relative(t.with_timezone(&Utc), now))
        };
        let note = match f["state"].as_str().unwrap_or("") {
            "gone" => format!(
                "gone on the server since {}{}",
                time("gone_since").unwrap_or_default(),
                if f["missed_syncs"].as_u64().unwrap_or(0) >= 2 {
                    "; local copies deleted"
                } else {
                    "; local copies go at the next sync if still gone"
                }
            ),
            "removed" => "no longer synced; local copies go at the next sync".into(),
            _ => f["error"]
                .as_str()
                .map_or_else(String::new, |e| clip(e, 80)),
        };
        table.row(vec![
            f["path"].as_str().unwrap_or("").to_owned(),
            f["state"].as_str().unwrap_or("").to_owned(),
            f["messages"].to_string(),
            time("last_synced_at").unwrap_or_else(|| "never".into()),
            if note.is_empty() { "-".into() } else { note },
        ]);
    }
    table.print()
}

async fn add(ctx: &Ctx, account: &Account, names: &[String]) -> Result<()> {
    let checked = check_on_server(ctx, account, names).await?;
    let added = add_to_config(ctx, account, &checked).await?;
    if ctx.json() {
        let account = ctx.store().await?.get_account(account.id).await?;
        return output::json(
            &json!({"account": account.email, "added": added, "sync_folders": configured(&account)}),
        );
    }
    if added.is_empty() {
        println!("{} already syncs {}", account.email, checked.join(", "));
    } else {
        println!(
            "{} now also syncs {}; the next `mailroom sync` or worker pass fetches them",
            account.email,
            added.join(", ")
        );
    }
    Ok(())
}

/// Adds checked names to the account's synced folders (a row the user had removed is
/// kept, with its messages); returns the names that were not configured yet.
pub async fn add_to_config(ctx: &Ctx, account: &Account, names: &[String]) -> Result<Vec<String>> {
    let store = ctx.store().await?;
    let mut list = configured(account);
    let mut added = Vec::new();
    for name in names {
        if !list.iter().any(|c| same_folder(c, name)) {
            list.push(name.clone());
            added.push(name.clone());
        }
    }
    let rows = store.list_folders(account.id).await?;
    let back: Vec<i64> = rows
        .iter()
        .filter(|r| r.removed_at.is_some() && names.iter().any(|n| row_matches(r, n)))
        .map(|r| r.id)
        .collect();
    store
        .set_folders_removed(account.id, &back, false, Utc::now())
        .await?;
    if !added.is_empty() {
        store
            .update_account(
                account.id,
                AccountUpdate {
                    sync_folders: Some(list),
                    ..AccountUpdate::default()
                },
            )
            .await?;
    }
    Ok(added)
}

async fn remove(ctx: &Ctx, account: &Account, args: RemoveFoldersArgs) -> Result<()> {
    let store = ctx.store().await?;
    let list = configured(account);
    let mut keep = list.clone();
    let mut removed = Vec::new();
    for name in &args.paths {
        FolderRef::parse(name).map_err(|e| Failure::err(Code::Usage, e.to_string()))?;
        let Some(i) = keep.iter().position(|c| same_folder(c, name)) else {
            return Err(Failure::err(
                Code::Failure,
                format!(
                    "{} does not sync a folder {name:?} (it syncs {}){}",
                    account.email,
                    list.join(", "),
                    suggestion(&did_you_mean(name, list.iter().map(String::as_str)))
                ),
            ));
        };
        removed.push(keep.remove(i));
    }
    if keep.is_empty() {
        return Err(Failure::err(
            Code::Failure,
            format!(
                "{} must sync at least one folder: add another first, or remove the account with `mailroom account remove {}`",
                account.email, account.email
            ),
        ));
    }
    store
        .update_account(
            account.id,
            AccountUpdate {
                sync_folders: Some(keep),
                ..AccountUpdate::default()
            },
        )
        .await?;
    let rows = store.list_folders(account.id).await?;
    let ids: Vec<i64> = rows
        .iter()
        .filter(|r| removed.iter().any(|n| row_matches(r, n)))
        .map(|r| r.id)
        .collect();
    let purged = if args.purge {
        Some(store.delete_folders(account.id, &ids).await?)
    } else {
        store
            .set_folders_removed(account.id, &ids, true, Utc::now())
            .await?;
        None
    };
    if ctx.json() {
        return output::json(&json!({
            "account": account.email,
            "removed": removed,
            "purged_messages": purged,
        }));
    }
    let mut out = std::io::stdout().lock();
    match purged {
        Some(n) => writeln!(
            out,
            "{} no longer syncs {}; {n} local messages deleted",
            account.email,
            removed.join(", ")
        )?,
        None => writeln!(
            out,
            "{} no longer syncs {}; their local copies are deleted by the next sync (or now with `mailroom account folders {} remove --purge …`)",
            account.email,
            removed.join(", "),
            account.email
        )?,
    }
    Ok(())
}
