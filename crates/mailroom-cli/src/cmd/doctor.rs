//! `mailroom doctor`: the database, the keys, and per account the credentials, the
//! token and the servers, as ✔/✘ lines with advice.

use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use mailroom_core::{AccountStatus, Credentials, ImapAuth, OAuthCredentials};
use mailroom_oauth::Resource;
use mailroom_server::status::AccountRow;
use mailroom_store::Account;
use mailroom_vault::Vault;
use serde_json::{Value, json};

use crate::cli::DoctorArgs;
use crate::context::Ctx;
use crate::exit::{Code, Failure, code_of};
use crate::output::{self, clip};

#[derive(Debug)]
struct Check {
    scope: String,
    name: &'static str,
    ok: bool,
    /// Not a failure, but not all well either (⚠): the last sync failed, a rotation
    /// is due.
    warning: bool,
    detail: String,
    advice: Option<String>,
    code: Code,
}

#[derive(Debug, Default)]
struct Report {
    checks: Vec<Check>,
    /// The accounts checked, as the worker's `/status` shows them.
    accounts: Vec<AccountRow>,
}

impl Report {
    fn pass(&mut self, scope: &str, name: &'static str, detail: impl Into<String>) {
        self.checks.push(Check {
            scope: scope.to_owned(),
            name,
            ok: true,
            warning: false,
            detail: detail.into(),
            advice: None,
            code: Code::Success,
        });
    }

    /// A warning (⚠): not a failure (exit 0), with advice.
    fn note(&mut self, scope: &str, name: &'static str, detail: impl Into<String>, advice: String) {
        self.checks.push(Check {
            scope: scope.to_owned(),
            name,
            ok: true,
            warning: true,
            detail: detail.into(),
            advice: Some(advice),
            code: Code::Success,
        });
    }

    fn fail(
        &mut self,
        scope: &str,
        name: &'static str,
        code: Code,
        detail: impl Into<String>,
        advice: impl Into<String>,
    ) {
        self.checks.push(Check {
            scope: scope.to_owned(),
            name,
            ok: false,
            warning: false,
            detail: detail.into(),
            advice: Some(advice.into()),
            code,
        });
    }
}

pub async fn run(ctx: &Ctx, args: DoctorArgs) -> Result<()> {
    let mut report = Report::default();
    let db = ctx.database_display();
    let store = match ctx.store().await {
        Ok(store) => store,
        Err(e) => {
            report.fail(
                "mailroom",
                "database",
                code_of(&e),
                output::error_text(&e),
                "check MAILROOM_DATABASE_URL / --database-url and that the server is up",
            );
            return finish(ctx, report);
        }
    };
    let accounts = match &args.account {
        Some(email) => vec![ctx.account(email).await?],
        None => store.list_accounts().await?,
    };
    let counts = store.message_counts().await?;
    report.accounts = accounts
        .iter()
        .map(|a| AccountRow::new(a, counts.get(&a.id).copied().unwrap_or(0)))
        .collect();
    report.accounts.sort_by(|a, b| a.account.cmp(&b.account));
    report.pass(
        "mailroom",
        "database",
        format!(
            "{db}: reachable, schema up to date ({} account(s))",
            accounts.len()
        ),
    );
    let keys = match ctx.load_keys() {
        Ok(keys) => {
            report.pass(
                "mailroom",
                "keys",
                format!("{} key(s) from {}", keys.keys.len(), keys.origin),
            );
            Some(keys)
        }
        // A fresh install: no account, and the key is made by the first `account add`.
        Err(_)
            if accounts.is_empty()
                && args.account.is_none()
                && ctx.key_file.as_ref().is_some_and(|p| !p.exists()) =>
        {
            report.pass(
                "mailroom",
                "keys",
                format!(
                    "no key yet: {} is created on the first `mailroom account add`",
                    ctx.key_file
                        .as_ref()
                        .map_or_else(String::new, |p| p.display().to_string())
                ),
            );
            None
        }
        Err(e) => {
            report.fail(
                "mailroom",
                "keys",
                Code::Failure,
                output::error_text(&e),
                "set MAILROOM_KEY or MAILROOM_KEY_FILE to the key(s) that encrypted the accounts",
            );
            None
        }
    };
    for account in &accounts {
        check_account(
            ctx,
            &mut report,
            account,
            keys.as_ref().map(|k| k.keys.as_slice()),
        )
        .await;
    }
    finish(ctx, report)
}

async fn check_account(
    ctx: &Ctx,
    report: &mut Report,
    account: &Account,
    keys: Option<&[mailroom_vault::FernetKey]>,
) {
    let scope = account.email.as_str();
    let reauth = format!("run `mailroom account reauth {}`", account.email);
    match account.status {
        AccountStatus::NeedsReauth => report.fail(
            scope,
            "status",
            Code::Reauth,
            format!(
                "needs_reauth{}: {}",
                account
                    .auth_error_code
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default(),
                clip(
                    account
                        .last_error
                        .as_deref()
                        .unwrap_or("sign-in no longer valid"),
                    300
                )
            ),
            reauth.clone(),
        ),
        status => match &account.last_error {
            Some(e) => report.note(
                scope,
                "status",
                format!(
                    "{status} ({}); the last sync failed: {}",
                    account.kind,
                    clip(e, 300)
                ),
                "see the checks below; `mailroom sync --account` retries".into(),
            ),
            None => report.pass(
                scope,
                "status",
                format!(
                    "{status} ({}), last sync {}",
                    account.kind,
                    account
                        .last_sync_at
                        .map_or_else(|| "never".into(), |t| output::relative(t, Utc::now()))
                ),
            ),
        },
    }
    let Some(keys) = keys else {
        return;
    };
    // Which key opens it: the first is best, a later one means a rotation is due.
    let mut credentials = None;
    for (i, key) in keys.iter().enumerate() {
        let vault = Vault::new(vec![key.clone()]).expect("one key");
        match vault.decrypt_json::<Credentials>(account.credentials.as_str()) {
            Ok(c) => {
                credentials = Some(c);
                let detail = format!("decrypt with key {} of {}", i + 1, keys.len());
                if i == 0 {
                    report.pass(scope, "credentials", detail);
                } else {
                    report.note(
                        scope,
                        "credentials",
                        detail,
                        "re-encrypt with the newest key: `mailroom key rotate --reseal-only`"
                            .into(),
                    );
                }
                break;
            }
            Err(e) if e.is_wrong_key() => {}
            Err(e) => {
                report.fail(
                    scope,
                    "credentials",
                    Code::Failure,
                    output::error_text(&ctx.decrypt_error(&account.email, &e)),
                    "the stored value is damaged: remove the account and add it again",
                );
                return;
            }
        }
    }
    let Some(credentials) = credentials else {
        report.fail(
            scope,
            "credentials",
            Code::Failure,
            format!(
                "none of the {} configured key(s) decrypts them (in use: {})",
                keys.len(),
                ctx.key_origin()
            ),
            "check MAILROOM_KEY / MAILROOM_KEY_FILE: the key that encrypted them is missing",
        );
        return;
    };
    let oauth = match &credentials {
        Credentials::OAuth(o) => Some((o, Resource::Graph)),
        Credentials::Imap(i) => {
            report.pass(
                scope,
                "server",
                format!(
                    "imap {}:{} ({:?}), login {}, {}",
                    i.host,
                    i.port,
                    i.tls,
                    i.username.as_deref().unwrap_or(&account.email),
                    match i.auth {
                        ImapAuth::Password(_) => "password",
                        ImapAuth::OAuth(_) => "XOAUTH2",
                    }
                ),
            );
            match &i.auth {
                ImapAuth::OAuth(o) => Some((o, Resource::OutlookImap)),
                ImapAuth::Password(_) => None,
            }
        }
    };
    if let Some((o, expected)) = oauth {
        check_token(report, scope, o, expected, &reauth);
        check_authority(ctx, report, scope).await;
    }
    check_server(ctx, report, account, &credentials, &reauth).await;
}

fn check_token(
    report: &mut Report,
    scope: &str,
    o: &OAuthCredentials,
    expected: Resource,
    reauth: &str,
) {
    let now = Utc::now();
    let audience = Resource::of_scopes(&o.scopes);
    let expiry = match o.expiry {
        Some(t) if t > now && o.is_expired(now) => format!(
            "expires {} ({}), inside the 5-minute refresh window: refreshed on next use",
            output::time(t),
            output::relative(t, now)
        ),
        Some(t) if o.is_expired(now) => {
            format!("expired {} ({})", output::time(t), output::relative(t, now))
        }
        Some(t) => format!("expires {} ({})", output::time(t), output::relative(t, now)),
        None => "expiry unknown".into(),
    };
    let detail = format!(
        "for {}: {expiry}; scopes {}; client {} (tenant {}{}); refresh token {}",
        audience.map_or("an unknown audience", Resource::uri),
        if o.scopes.is_empty() {
            "-".into()
        } else {
            o.scopes.join(" ")
        },
        o.client_id,
        o.tenant_id,
        if o.client_secret.is_some() {
            ", confidential"
        } else {
            ", public"
        },
        if o.refresh_token.is_some() {
            "stored"
        } else {
            "missing"
        },
    );
    if audience.is_some_and(|a| a != expected) {
        report.fail(
            scope,
            "token",
            Code::Reauth,
            detail,
            format!(
                "the token is for the wrong API ({}): {reauth}",
                expected.uri()
            ),
        );
    } else if o.refresh_token.is_none() && o.is_expired(now) {
        report.fail(
            scope,
            "token",
            Code::Reauth,
            detail,
            format!("no refresh token and the access token expired: {reauth}"),
        );
    } else {
        report.pass(scope, "token", detail);
    }
}

async fn check_authority(ctx: &Ctx, report: &mut Report, scope: &str) {
    let url = &ctx.global.authority_url;
    let answer = ctx
        .http()
        .get(url)
        .timeout(Duration::from_secs(15))
        .send()
        .await;
    match answer {
        Ok(_) => report.pass(scope, "authority", format!("{url}: reachable")),
        Err(e) => report.fail(
            scope,
            "authority",
            Code::Transient,
            format!("cannot reach {url}: {}", e.without_url()),
            "check the network, a proxy, or MAILROOM_AUTHORITY_URL",
        ),
    }
}

async fn check_server(
    ctx: &Ctx,
    report: &mut Report,
    account: &Account,
    credentials: &Credentials,
    reauth: &str,
) {
    let scope = account.email.as_str();
    let (what, place) = match credentials {
        Credentials::OAuth(_) => ("Graph /me", ctx.global.graph_url.clone()),
        Credentials::Imap(i) => ("IMAP login", format!("{}:{}", i.host, i.port)),
    };
    let result = async {
        let syncer = ctx.syncer().await?;
        let connector = syncer.connector_for(account)?;
        let connected = connector.connect().await;
        let _ = connector.disconnect().await;
        // A refresh during the check rotated the refresh token: keep the new one.
        if let Some(c) = connector.take_refreshed_credentials() {
            syncer.store_credentials(account.id, &c).await?;
        }
        Ok::<_, anyhow::Error>(connected)
    }
    .await;
    match result {
        Ok(Ok(info)) => {
            let who = info.address.unwrap_or_else(|| "?".into());
            if who != "?" && !who.eq_ignore_ascii_case(&account.email) {
                report.note(
                    scope,
                    "server",
                    format!("{what} at {place}: signed in as {who}"),
                    format!(
                        "that is not {}: {reauth} with the right account",
                        account.email
                    ),
                );
            } else {
                report.pass(
                    scope,
                    "server",
                    format!("{what} at {place}: signed in as {who}"),
                );
            }
        }
        Ok(Err(e)) => {
            let code = Code::of_kind(e.kind());
            let advice = match code {
                Code::Reauth => reauth.to_owned(),
                Code::Transient => "retry later; check the network and the server URL".into(),
                _ => "check the account's settings (`mailroom account show`)".into(),
            };
            report.fail(
                scope,
                "server",
                code,
                format!("{what} at {place}: {e}"),
                advice,
            );
        }
        Err(e) => report.fail(
            scope,
            "server",
            code_of(&e),
            format!("{what}: {}", output::error_text(&e)),
            "see the error",
        ),
    }
}

fn finish(ctx: &Ctx, report: Report) -> Result<()> {
    let failed: Vec<&Check> = report.checks.iter().filter(|c| !c.ok).collect();
    if ctx.json() {
        let checks: Vec<Value> = report
            .checks
            .iter()
            .map(|c| {
                json!({
                    "scope": c.scope,
                    "check": c.name,
                    "ok": c.ok,
                    "warning": c.warning,
                    "detail": c.detail,
                    "advice": c.advice,
                })
            })
            .collect();
        output::json(&json!({
            "ok": failed.is_empty(),
            "checks": checks,
            "accounts": report.accounts,
        }))?;
    } else {
        let mut scope = "";
        for c in &report.checks {
            let indent = if c.scope == "mailroom" {
                ""
            } else {
                if c.scope != scope {
                    println!("{}", c.scope);
                }
                "  "
            };
            scope = &c.scope;
            let mark = match (c.ok, c.warning) {
                (false, _) => "✘",
                (true, true) => "⚠",
                (true, false) => "✔",
            };
            println!("{indent}{mark} {}: {}", c.name, c.detail);
            if let Some(advice) = &c.advice {
                println!("{indent}  → {advice}");
            }
        }
        if failed.is_empty() {
            println!("all checks passed");
        } else {
            println!("{} problem(s) found", failed.len());
        }
    }
    let code = failed.iter().fold(Code::Success, |w, c| w.worst(c.code));
    if code == Code::Success {
        return Ok(());
    }
    Err(Failure::err(
        code,
        format!("doctor found {} problem(s) (see above)", failed.len()),
    ))
}
