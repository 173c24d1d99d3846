//! `mailroom account …`: add (device code flow or IMAP login), list, show, remove, reauth.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::{Context as _, Result};
use chrono::Utc;
use mailroom_core::{
    AccountKind, AccountStatus, ClientSecret, Connector, ConnectorError, Credentials,
    DEFAULT_IMAP_PORT, FolderRef, ImapAuth, ImapCredentials, ImapTls, OAuthCredentials, Password,
};
use mailroom_graph::GraphConnector;
use mailroom_imap::ImapConnector;
use mailroom_oauth::Resource;
use mailroom_store::{Account, AccountUpdate, MessageQuery, NewAccount, SealedCredentials};
use serde_json::{Value, json};

use crate::cli::{AccountCommand, AddCommand, AddImapArgs, AddOutlookArgs, ReauthArgs, TlsArg};
use crate::context::Ctx;
use crate::exit::{Code, Failure};
use crate::output::{self, Table, clip};
use crate::signin::{self, SignIn};

/// Outlook's IMAP endpoint, for `account add outlook --imap`.
const OUTLOOK_IMAP_HOST: &str = "outlook.office365.com";

pub async fn run(ctx: &Ctx, command: AccountCommand) -> Result<()> {
    match command {
        AccountCommand::Add(AddCommand::Outlook(args)) => add_outlook(ctx, args).await,
        AccountCommand::Add(AddCommand::Imap(args)) => add_imap(ctx, args).await,
        AccountCommand::List => list(ctx).await,
        AccountCommand::Show(args) => show(ctx, &args.email).await,
        AccountCommand::Remove(args) => remove(ctx, &args.email, args.yes).await,
        AccountCommand::Reauth(args) => reauth(ctx, args).await,
        AccountCommand::Folders(args) => crate::cmd::synced::run(ctx, args).await,
    }
}

fn check_folders(folders: &[String]) -> Result<()> {
    for f in folders {
        FolderRef::parse(f).map_err(|e| Failure::err(Code::Usage, e.to_string()))?;
    }
    Ok(())
}

fn check_email(email: &str) -> Result<String> {
    let email = email.trim();
    if email.is_empty() || !email.contains('@') {
        return Err(Failure::err(
            Code::Usage,
            format!("{email:?} is not an email address"),
        ));
    }
    Ok(email.to_owned())
}

async fn refuse_duplicate(ctx: &Ctx, email: &str) -> Result<()> {
    if ctx.store().await?.find_account(email).await?.is_some() {
        return Err(Failure::err(
            Code::Failure,
            format!(
                "an account for {email} already exists — remove it first with `mailroom account remove {email}`, or sign in again with `mailroom account reauth {email}`"
            ),
        ));
    }
    Ok(())
}

fn client_secret(flag: bool) -> Result<Option<ClientSecret>> {
    Ok(if flag {
        Some(ClientSecret::new(signin::read_secret_line(
            "client secret",
        )?))
    } else {
        None
    })
}

async fn store_new(
    ctx: &Ctx,
    email: &str,
    kind: AccountKind,
    credentials: &Credentials,
    folders: Vec<String>,
) -> Result<Account> {
    let vault = ctx.vault_for_new_account().await?;
    let sealed = SealedCredentials::new(vault.encrypt(credentials.to_json().as_bytes()))?;
    let account = ctx
        .store()
        .await?
        .create_account(NewAccount {
            email: email.to_owned(),
            kind,
            credentials: sealed,
            sync_folders: folders,
        })
        .await
        .with_context(|| format!("cannot store the account {email}"))?;
    Ok(account)
}

async fn add_outlook(ctx: &Ctx, args: AddOutlookArgs) -> Result<()> {
    let email = check_email(&args.email)?;
    check_folders(&args.folders)?;
    let client_id = signin::client_id(ctx)?;
    let tenant = signin::tenant(&args.sign_in.tenant)?;
    refuse_duplicate(ctx, &email).await?;
    // Fail on keys before the user signs in for nothing.
    ctx.vault_for_new_account().await?;
    let secret = client_secret(args.sign_in.client_secret_stdin)?;
    let resource = if args.imap {
        Resource::OutlookImap
    } else {
        Resource::Graph
    };
    let oauth = signin::device_flow(
        ctx,
        &email,
        SignIn {
            client_id,
            tenant,
            client_secret: secret,
            resource,
        },
    )
    .await?;
    let mut oauth = oauth;
    let mut me_failed = None;
    if !args.imap && !args.no_verify {
        match check_signed_in_user(ctx, &email, &mut oauth, args.allow_other_user).await? {
            Ok(()) => {}
            Err(e) => me_failed = Some(e),
        }
    }
    let credentials = if args.imap {
        Credentials::Imap(ImapCredentials {
            host: OUTLOOK_IMAP_HOST.to_owned(),
            port: DEFAULT_IMAP_PORT,
            tls: ImapTls::Implicit,
            username: Some(email.clone()),
            auth: ImapAuth::OAuth(oauth),
            extra: Default::default(),
        })
    } else {
        Credentials::OAuth(oauth)
    };
    let account = store_new(
        ctx,
        &email,
        AccountKind::Outlook,
        &credentials,
        args.folders,
    )
    .await?;
    if let Some(e) = me_failed {
        eprintln!(
            "mailroom: warning: stored, but Graph /me failed: {e} — check with `mailroom doctor --account {}`",
            account.email
        );
    }
    let account = if args.all_folders {
        sync_all_folders(ctx, account).await?
    } else {
        account
    };
    report_added(ctx, &account, if args.imap { "imap" } else { "graph" }).await
}

/// Asks Graph `/me` who signed in, before anything is stored. Refuses (nothing stored)
/// when it is somebody else than `email` (unless `allow_other_user`) or when Graph
/// refuses the new token (exit 3: sign in again). Any other failure (network,
/// throttling) is handed back: the account is stored with a warning. A token
/// refreshed meanwhile replaces `oauth`.
async fn check_signed_in_user(
    ctx: &Ctx,
    email: &str,
    oauth: &mut OAuthCredentials,
    allow_other_user: bool,
) -> Result<std::result::Result<(), ConnectorError>> {
    let connector = GraphConnector::from_credentials(
        email,
        oauth.clone(),
        &ctx.global.authority_url,
        ctx.graph_config(),
    )
    .map_err(|e| anyhow::Error::new(e).context("cannot set up Graph"))?;
    let connected = connector.connect().await;
    if let Some(Credentials::OAuth(refreshed)) = connector.take_refreshed_credentials() {
        *oauth = refreshed;
    }
    match connected {
        Ok(info) => match info.address {
            Some(address) if !address.eq_ignore_ascii_case(email) => {
                if allow_other_user {
                    eprintln!(
                        "mailroom: warning: signed in as {address}, not {email}; storing {address}'s tokens under {email} (--allow-other-user)"
                    );
                    Ok(Ok(()))
                } else {
                    Err(Failure::err(
                        Code::Failure,
                        format!(
                            "signed in as {address}, not {email} — nothing was stored; sign in as {email}, or add --allow-other-user to sync {address}'s mailbox under {email}"
                        ),
                    ))
                }
            }
            _ => Ok(Ok(())),
        },
        Err(e) if e.is_reauth_required() => Err(Failure::err(
            Code::Reauth,
            format!(
                "signed in, but Graph /me refused the new token: {e} — nothing was stored; sign in again"
            ),
        )),
        Err(e) => Ok(Err(e)),
    }
}

async fn report_added(ctx: &Ctx, account: &Account, protocol: &str) -> Result<()> {
    if ctx.json() {
        let mut value = account_json(ctx, account).await?;
        value["protocol"] = json!(protocol);
        return output::json(&value);
    }
    println!(
        "added {} ({}, {protocol}); sync it with `mailroom sync --account {}`",
        account.email, account.kind, account.email
    );
    Ok(())
}

async fn add_imap(ctx: &Ctx, args: AddImapArgs) -> Result<()> {
    let email = check_email(&args.email)?;
    check_folders(&args.folders)?;
    refuse_duplicate(ctx, &email).await?;
    let tls = match args.tls {
        TlsArg::Implicit => ImapTls::Implicit,
        TlsArg::Starttls => ImapTls::Starttls,
        TlsArg::None => ImapTls::None,
    };
    let port = args.port.unwrap_or(match tls {
        ImapTls::Implicit => DEFAULT_IMAP_PORT,
        _ => 143,
    });
    ctx.vault_for_new_account().await?;
    let auth = if args.password_stdin {
        ImapAuth::Password(Password::new(signin::read_secret_line("password")?))
    } else {
        let client_id = signin::client_id(ctx)?;
        let tenant = signin::tenant(&args.sign_in.tenant)?;
        let secret = client_secret(args.sign_in.client_secret_stdin)?;
        ImapAuth::OAuth(
            signin::device_flow(
                ctx,
                &email,
                SignIn {
                    client_id,
                    tenant,
                    client_secret: secret,
                    resource: Resource::OutlookImap,
                },
            )
            .await?,
        )
    };
    let mut credentials = ImapCredentials {
        host: args.host.trim().to_owned(),
        port,
        tls,
        username: args.username.filter(|u| !u.trim().is_empty()),
        auth,
        extra: Default::default(),
    };
    if !args.no_verify {
        let connector = ImapConnector::new(credentials.clone(), &email, ctx.imap_options())
            .map_err(|e| {
                let message = format!("cannot use this IMAP server: {e}");
                anyhow::Error::new(e).context(message)
            })?;
        let connected = connector.connect().await;
        let _ = connector.disconnect().await;
        if let Some(Credentials::Imap(refreshed)) = connector.take_refreshed_credentials() {
            credentials = refreshed;
        }
        connected.map_err(|e| {
            let message = format!(
                "cannot log in to {}:{} as {}: {e} — nothing was stored (use --no-verify to store anyway)",
                credentials.host,
                credentials.port,
                credentials.username.as_deref().unwrap_or(&email)
            );
            anyhow::Error::new(e).context(message)
        })?;
        eprintln!("  ✔ logged in to {}:{}", credentials.host, credentials.port);
    }
    let account = store_new(
        ctx,
        &email,
        AccountKind::Imap,
        &Credentials::Imap(credentials),
        args.folders,
    )
    .await?;
    let account = if args.all_folders {
        sync_all_folders(ctx, account).await?
    } else {
        account
    };
    report_added(ctx, &account, "imap").await
}

/// `--all-folders`: the account syncs every mail folder the server lists now. The
/// account is kept (with INBOX) when the listing fails: the user can retry with
/// `mailroom account folders EMAIL add …`.
async fn sync_all_folders(ctx: &Ctx, account: Account) -> Result<Account> {
    let folders = crate::cmd::synced::all_mail_folders(ctx, &account)
        .await
        .with_context(|| {
            format!(
                "stored {} with INBOX only: cannot list its folders for --all-folders (add them with `mailroom account folders {} add …`)",
                account.email, account.email
            )
        })?;
    let account = ctx
        .store()
        .await?
        .update_account(
            account.id,
            AccountUpdate {
                sync_folders: Some(folders),
                ..AccountUpdate::default()
            },
        )
        .await?;
    if !ctx.json() {
        eprintln!(
            "  ✔ syncs {} folders: {}",
            account.sync_folders.len(),
            clip(&account.sync_folders.join(", "), 200)
        );
    }
    Ok(account)
}

/// The JSON record of an account (no credentials).
pub async fn account_json(ctx: &Ctx, a: &Account) -> Result<Value> {
    let messages = ctx
        .store()
        .await?
        .count_messages(&MessageQuery {
            account_id: Some(a.id),
            ..MessageQuery::default()
        })
        .await?;
    let gone: Vec<Value> = ctx
        .store()
        .await?
        .list_folders(a.id)
        .await?
        .iter()
        .filter(|f| f.gone_since.is_some())
        .map(|f| {
            json!({
                "path": f.folder.path,
                "gone_since": output::json_time(f.gone_since),
                "local_copies_deleted": f.missed_syncs >= 2,
            })
        })
        .collect();
    Ok(json!({
        "id": a.id,
        "email": a.email,
        "kind": a.kind.as_str(),
        "status": a.status.as_str(),
        "last_sync_at": output::json_time(a.last_sync_at),
        "next_sync_at": output::json_time(a.next_sync_at),
        "last_error": a.last_error,
        "auth_error_code": a.auth_error_code,
        "sync_folders": crate::cmd::synced::configured(a),
        "gone_folders": gone,
        "messages": messages,
        "lease_owner": a.lease_owner,
        "created_at": output::json_time(Some(a.created_at)),
    }))
}

fn error_text(a: &Account) -> String {
    match (&a.auth_error_code, &a.last_error) {
        (Some(code), Some(e)) if !e.contains(code.as_str()) => format!("{code}: {e}"),
        (_, Some(e)) => e.clone(),
        (Some(code), None) => code.clone(),
        (None, None) => "-".into(),
    }
}

async fn list(ctx: &Ctx) -> Result<()> {
    let store = ctx.store().await?;
    let accounts = store.list_accounts().await?;
    if ctx.json() {
        let mut out = Vec::new();
        for a in &accounts {
            out.push(account_json(ctx, a).await?);
        }
        return output::json(&Value::Array(out));
    }
    if accounts.is_empty() {
        eprintln!("no accounts yet — add one with `mailroom account add outlook --email …`");
        return Ok(());
    }
    let now = Utc::now();
    let mut table = Table::new(&[
        "EMAIL",
        "KIND",
        "STATUS",
        "LAST SYNC",
        "FOLDERS",
        "MESSAGES",
        "LAST ERROR",
    ]);
    let mut gone_notes = Vec::new();
    for a in &accounts {
        let gone: Vec<String> = store
            .list_folders(a.id)
            .await?
            .into_iter()
            .filter(|f| f.gone_since.is_some())
            .map(|f| f.folder.path)
            .collect();
        let configured = crate::cmd::synced::configured(a).len();
        let folders = if gone.is_empty() {
            configured.to_string()
        } else {
            gone_notes.push(format!(
                "{}: gone on the server: {} — see `mailroom account folders {}`",
                a.email,
                gone.join(", "),
                a.email
            ));
            format!("{configured} ({} gone)", gone.len())
        };
        let messages = store
            .count_messages(&MessageQuery {
                account_id: Some(a.id),
                ..MessageQuery::default()
            })
            .await?;
        table.row(vec![
            a.email.clone(),
            a.kind.to_string(),
            a.status.to_string(),
            a.last_sync_at
                .map_or_else(|| "never".into(), |t| output::relative(t, now)),
            folders,
            messages.to_string(),
            clip(&error_text(a), 80),
        ]);
    }
    table.print()?;
    for note in gone_notes {
        eprintln!("{note}");
    }
    for a in accounts
        .iter()
        .filter(|a| a.status == AccountStatus::NeedsReauth)
    {
        eprintln!(
            "{} needs a new sign-in: `mailroom account reauth {}`",
            a.email, a.email
        );
    }
    Ok(())
}

/// What the credentials say, without secrets.
pub fn credentials_summary(credentials: &Credentials) -> Value {
    let oauth = |o: &OAuthCredentials| {
        json!({
            "client_id": o.client_id,
            "tenant": o.tenant_id,
            "confidential_client": o.client_secret.is_some(),
            "scopes": o.scopes,
            "audience": Resource::of_scopes(&o.scopes).map(Resource::uri),
            "expiry": output::json_time(o.expiry),
            "expired": o.is_expired(Utc::now()),
            "refresh_token": o.refresh_token.is_some(),
        })
    };
    match credentials {
        Credentials::OAuth(o) => json!({"protocol": "graph", "oauth": oauth(o)}),
        Credentials::Imap(i) => json!({
            "protocol": "imap",
            "host": i.host,
            "port": i.port,
            "tls": format!("{:?}", i.tls).to_lowercase(),
            "username": i.username,
            "auth": match &i.auth { ImapAuth::Password(_) => json!("password"), ImapAuth::OAuth(o) => json!({"xoauth2": oauth(o)}) },
        }),
    }
}

async fn show(ctx: &Ctx, email: &str) -> Result<()> {
    let account = ctx.account(email).await?;
    let store = ctx.store().await?;
    let folders = store.list_folders(account.id).await?;
    let mut record = account_json(ctx, &account).await?;
    // The credentials are optional here: the record is useful without the keys.
    let credentials = match ctx.vault().await {
        Ok(vault) => match ctx.decrypt(&vault, &account) {
            Ok(c) => credentials_summary(&c),
            Err(e) => json!({"error": output::error_text(&e)}),
        },
        Err(e) => json!({"error": output::error_text(&e)}),
    };
    let subscriptions = store.list_subscriptions(account.id).await?;
    let mut folder_values = Vec::new();
    for f in &folders {
        let count = store
            .count_messages(&MessageQuery {
                account_id: Some(account.id),
                folder_id: Some(f.id),
                ..MessageQuery::default()
            })
            .await?;
        let mut value = crate::cmd::synced::folder_state_json(None, Some(f), count);
        value["cursor"] = json!(f.cursor.is_some());
        value["push"] = push_json(subscriptions.iter().find(|s| s.folder_id == f.id));
        if let Some(object) = value.as_object_mut() {
            object.remove("name");
        }
        folder_values.push(value);
    }
    record["credentials"] = credentials;
    record["folders"] = Value::Array(folder_values);
    if ctx.json() {
        return output::json(&record);
    }
    let now = Utc::now();
    println!("{}", account.email);
    println!("  kind          {}", account.kind);
    println!("  status        {}", account.status);
    println!(
        "  last sync     {}",
        account.last_sync_at.map_or_else(
            || "never".into(),
            |t| format!("{} ({})", output::time(t), output::relative(t, now))
        )
    );
    println!(
        "  next sync     {}",
        account
            .next_sync_at
            .map_or_else(|| "now".into(), output::time)
    );
    println!("  last error    {}", error_text(&account));
    println!("  messages      {}", record["messages"]);
    let c = &record["credentials"];
    if let Some(e) = c["error"].as_str() {
        println!("  credentials   ✘ {e}");
    } else {
        println!("  protocol      {}", c["protocol"].as_str().unwrap_or("?"));
        let oauth = if c["oauth"].is_object() {
            Some(&c["oauth"])
        } else if c["auth"]["xoauth2"].is_object() {
            Some(&c["auth"]["xoauth2"])
        } else {
            None
        };
        if c["protocol"] == "imap" {
            println!(
                "  server        {}:{} ({})",
                c["host"].as_str().unwrap_or("?"),
                c["port"],
                c["tls"].as_str().unwrap_or("?")
            );
        }
        if let Some(o) = oauth {
            println!(
                "  client        {} (tenant {}{})",
                o["client_id"].as_str().unwrap_or("?"),
                o["tenant"].as_str().unwrap_or("?"),
                if o["confidential_client"] == true {
                    ", confidential"
                } else {
                    ""
                }
            );
            println!(
                "  token         expires {}{}",
                o["expiry"].as_str().unwrap_or("?"),
                if o["expired"] == true {
                    " (expired: refreshed on next use)"
                } else {
                    ""
                }
            );
        }
    }
    if !folders.is_empty() {
        println!();
        let mut table = Table::new(&["FOLDER", "ROLE", "STATE", "MESSAGES", "LAST SYNCED", "PUSH"]);
        for f in record["folders"].as_array().into_iter().flatten() {
            let state = match f["state"].as_str().unwrap_or("") {
                "gone" => format!("gone since {}", f["gone_since"].as_str().unwrap_or("?")),
                other => other.to_owned(),
            };
            table.row(vec![
                f["path"].as_str().unwrap_or("").to_owned(),
                f["role"].as_str().unwrap_or("-").to_owned(),
                state,
                f["messages"].to_string(),
                f["last_synced_at"].as_str().unwrap_or("never").to_owned(),
                push_text(&f["push"]),
            ]);
        }
        table.print()?;
    }
    Ok(())
}

/// A folder's change-notification subscription, for `account show`.
fn push_json(sub: Option<&mailroom_store::PushSubscription>) -> Value {
    let Some(sub) = sub else {
        return Value::Null;
    };
    json!({
        "status": sub.status.as_str(),
        "subscription_id": sub.subscription_id,
        "expires_at": sub.expires_at.map(output::time),
        "error": sub.last_error,
        "dirty_since": sub.dirty_at.map(output::time),
    })
}

fn push_text(push: &Value) -> String {
    match push["status"].as_str() {
        None => "-".to_owned(),
        Some("active") => format!(
            "active until {}",
            push["expires_at"].as_str().unwrap_or("?")
        ),
        Some("failed") => format!(
            "failed, polling: {}",
            push["error"].as_str().unwrap_or("unknown error")
        ),
        Some(other) => other.to_owned(),
    }
}

async fn remove(ctx: &Ctx, email: &str, yes: bool) -> Result<()> {
    let account = ctx.account(email).await?;
    let store = ctx.store().await?;
    if !yes {
        let messages = store
            .count_messages(&MessageQuery {
                account_id: Some(account.id),
                ..MessageQuery::default()
            })
            .await?;
        if !std::io::stdin().is_terminal() {
            return Err(Failure::err(
                Code::Usage,
                format!(
                    "not removing {} ({messages} synced messages) without confirmation: pass --yes",
                    account.email
                ),
            ));
        }
        eprint!(
            "Remove {} and its {messages} synced messages from the database? [y/N] ",
            account.email
        );
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(Failure::err(Code::Failure, "not removed"));
        }
    }
    // Its change-notification subscriptions go first (best effort on the server).
    if !store.list_subscriptions(account.id).await?.is_empty() {
        let syncer = ctx.syncer().await?;
        syncer.unsubscribe_account(&account).await?;
    }
    store.remove_account(account.id).await?;
    if ctx.json() {
        return output::json(&json!({"removed": account.email, "id": account.id}));
    }
    println!(
        "removed {} (the mailbox on the server is untouched)",
        account.email
    );
    Ok(())
}

async fn reauth(ctx: &Ctx, args: ReauthArgs) -> Result<()> {
    let account = ctx.account(&args.email).await?;
    let vault = ctx.vault().await?;
    let stored = match ctx.decrypt(&vault, &account) {
        Ok(c) => Some(c),
        // An Outlook Graph account can start afresh with new credentials; others
        // need the stored server details.
        Err(e) if account.kind == AccountKind::Outlook => {
            eprintln!(
                "mailroom: warning: {}; signing in afresh for Graph",
                output::error_text(&e)
            );
            None
        }
        Err(e) => return Err(e),
    };
    let stored_oauth = stored.as_ref().and_then(Credentials::oauth).cloned();
    let resource = match &stored {
        Some(Credentials::Imap(i)) if matches!(i.auth, ImapAuth::Password(_)) => {
            return Err(Failure::err(
                Code::Failure,
                format!(
                    "{} logs in with a password, not a sign-in: remove it and add it again with the new password (`mailroom account remove {}` then `mailroom account add imap …`)",
                    account.email, account.email
                ),
            ));
        }
        Some(Credentials::Imap(_)) => Resource::OutlookImap,
        _ => Resource::Graph,
    };
    let client_id = ctx
        .global
        .client_id
        .clone()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| stored_oauth.as_ref().map(|o| o.client_id.clone()))
        .map_or_else(|| signin::client_id(ctx), Ok)?;
    let tenant = match (&args.tenant, &stored_oauth) {
        (Some(t), _) => signin::tenant(t)?,
        (None, Some(o)) => signin::tenant(&o.tenant_id)?,
        (None, None) => mailroom_oauth::Tenant::Common,
    };
    let client_secret = if args.client_secret_stdin {
        client_secret(true)?
    } else {
        stored_oauth.as_ref().and_then(|o| o.client_secret.clone())
    };
    let oauth = signin::device_flow(
        ctx,
        &account.email,
        SignIn {
            client_id,
            tenant,
            client_secret,
            resource,
        },
    )
    .await?;
    let mut oauth = oauth;
    let mut me_failed = None;
    if resource == Resource::Graph
        && !args.no_verify
        && let Err(e) =
            check_signed_in_user(ctx, &account.email, &mut oauth, args.allow_other_user).await?
    {
        me_failed = Some(e);
    }
    let credentials = match stored {
        Some(Credentials::Imap(mut imap)) => {
            imap.auth = ImapAuth::OAuth(oauth);
            Credentials::Imap(imap)
        }
        _ => Credentials::OAuth(oauth),
    };
    let store = ctx.store().await?;
    let sealed = SealedCredentials::new(vault.encrypt(credentials.to_json().as_bytes()))?;
    store.update_credentials(account.id, &sealed).await?;
    let account = store
        .update_account(
            account.id,
            AccountUpdate {
                status: Some(AccountStatus::Active),
                last_error: Some(None),
                auth_error_code: Some(None),
                next_sync_at: Some(None),
                ..AccountUpdate::default()
            },
        )
        .await?;
    if let Some(e) = me_failed {
        eprintln!(
            "mailroom: warning: stored, but Graph /me failed: {e} — check with `mailroom doctor --account {}`",
            account.email
        );
    }
    if ctx.json() {
        return output::json(&account_json(ctx, &account).await?);
    }
    println!(
        "{} is active again; it syncs at the next `mailroom sync` or worker pass",
        account.email
    );
    Ok(())
}
