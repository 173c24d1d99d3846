//! `mailroom folders`: the server's folder list, with roles and counts.

use anyhow::Result;
use serde_json::{Value, json};

use crate::cli::FoldersArgs;
use crate::context::Ctx;
use crate::output::{self, Table};

pub async fn run(ctx: &Ctx, args: FoldersArgs) -> Result<()> {
    let account = ctx.account_or_only(args.account.as_deref()).await?;
    let (syncer, connector) = ctx.connector(&account).await?;
    let listed = connector.list_folders().await;
    let _ = connector.disconnect().await;
    let mut folders = ctx
        .settle(&syncer, &account, connector.as_ref(), listed)
        .await?;
    folders.sort_by(|a, b| {
        (a.role.is_none(), a.role, a.path.to_lowercase()).cmp(&(
            b.role.is_none(),
            b.role,
            b.path.to_lowercase(),
        ))
    });
    let local = ctx.store().await?.list_folders(account.id).await?;
    let synced = |remote_id: &str| {
        local
            .iter()
            .find(|f| f.folder.remote_id == remote_id && f.cursor.is_some())
    };
    if ctx.json() {
        let out: Vec<Value> = folders
            .iter()
            .map(|f| {
                json!({
                    "path": f.path,
                    "name": f.name,
                    "role": f.role.map(|r| r.as_str()),
                    "total": f.total_count,
                    "unread": f.unread_count,
                    "remote_id": f.remote_id,
                    "synced": synced(&f.remote_id).is_some(),
                    "last_synced_at": output::json_time(synced(&f.remote_id).and_then(|r| r.last_synced_at)),
                })
            })
            .collect();
        return output::json(&Value::Array(out));
    }
    let count = |n: Option<u64>| n.map_or_else(|| "-".into(), |n| n.to_string());
    let mut table = Table::new(&["FOLDER", "ROLE", "TOTAL", "UNREAD", "SYNCED"]);
    for f in &folders {
        table.row(vec![
            f.path.clone(),
            f.role.map_or("-", |r| r.as_str()).to_owned(),
            count(f.total_count),
            count(f.unread_count),
            synced(&f.remote_id).map_or_else(|| "-".into(), |r| output::opt_time(r.last_synced_at)),
        ]);
    }
    table.print()
}
