//! The accounts as an operator sees them: one [`AccountRow`] each, without secrets.
//! `/status` serves them as JSON or as an HTML table; `mailroom doctor --json` lists
//! the same rows, so both always agree.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use mailroom_core::AccountStatus;
use mailroom_sync::store::{Account, Store};
use serde::{Deserialize, Serialize};

/// One account, as `/status` and `mailroom doctor --json` show it. Never holds
/// credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRow {
    /// The mailbox address.
    pub account: String,
    /// `outlook`, `imap` or `gmail`.
    pub kind: String,
    /// `active`, `needs_reauth` or `disabled`.
    pub status: String,
    /// When the last successful sync finished.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// Messages stored for the account.
    pub messages: u64,
    /// The last error, in plain words (with the server's request ids).
    pub last_error: Option<String>,
    /// The server's code for the last auth error, e.g. `AADSTS700082`.
    pub auth_error_code: Option<String>,
    /// When the account is next due: the later of its schedule and the server's
    /// last `Retry-After`. `null` for an active account means due now; for an
    /// account that is not active, nothing is scheduled.
    pub next_due: Option<DateTime<Utc>>,
    /// The worker holding the account's lease, if any.
    pub leased_by: Option<String>,
}

impl AccountRow {
    /// The row of `account`, which has `messages` stored messages.
    pub fn new(account: &Account, messages: u64) -> AccountRow {
        let next_due = match (account.next_sync_at, account.throttled_until) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        AccountRow {
            account: account.email.clone(),
            kind: account.kind.to_string(),
            status: account.status.to_string(),
            last_sync_at: account.last_sync_at,
            messages,
            last_error: account.last_error.clone(),
            auth_error_code: account.auth_error_code.clone(),
            next_due,
            leased_by: account.lease_owner.clone(),
        }
    }
}

/// Every account's row, by address (two statements, whatever the number of accounts).
pub async fn accounts(store: &Store) -> Result<Vec<AccountRow>, mailroom_sync::store::Error> {
    let accounts = store.list_accounts().await?;
    let mut rows = rows_of(&accounts, &store.message_counts().await?);
    rows.sort_by(|a, b| a.account.cmp(&b.account));
    Ok(rows)
}

/// The rows of `accounts`, with their message counts from `counts`.
fn rows_of(accounts: &[Account], counts: &HashMap<i64, u64>) -> Vec<AccountRow> {
    accounts
        .iter()
        .map(|a| AccountRow::new(a, counts.get(&a.id).copied().unwrap_or(0)))
        .collect()
}

/// Rows of `/status` per page unless `?limit=` says otherwise.
pub const DEFAULT_PAGE: u64 = 500;

/// The most rows one page of `/status` holds.
pub const MAX_PAGE: u64 = 5000;

/// One page of rows by address: those after `after` (exclusive) when given, only
/// those with `status` when given, at most `limit`; and the address the next page
/// starts after, when there are more. Two statements, each bounded by `limit`.
pub async fn page(
    store: &Store,
    after: Option<&str>,
    status: Option<AccountStatus>,
    limit: u64,
) -> Result<(Vec<AccountRow>, Option<String>), mailroom_sync::store::Error> {
    let mut accounts = store
        .list_accounts_by_email(after, status, limit.saturating_add(1))
        .await?;
    let more = accounts.len() as u64 > limit;
    accounts.truncate(limit as usize);
    let ids: Vec<i64> = accounts.iter().map(|a| a.id).collect();
    let rows = rows_of(&accounts, &store.message_counts_of(&ids).await?);
    let next = more
        .then(|| rows.last().map(|r| r.account.clone()))
        .flatten();
    Ok((rows, next))
}

/// The HTML page of `rows`: one table, inline CSS, no JavaScript; `next` links to
/// the following page.
pub fn html(rows: &[AccountRow], generated_at: DateTime<Utc>, next: Option<&str>) -> String {
    let mut out = String::with_capacity(1024 + rows.len() * 400);
    let time = |t: &Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
    out.push_str(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        "<meta http-equiv=\"refresh\" content=\"30\">\n",
        "<title>Mailroom status</title>\n<style>\n",
        "body{font-family:sans-serif;margin:2em;color:#111;background:#fff}\n",
        "table{border-collapse:collapse}\n",
        "th,td{border:1px solid #444;padding:.4em .8em;text-align:left;vertical-align:top}\n",
        "th{background:#dde4f0}\n",
        "tr.active td.status{color:#0a6b0a}\n",
        "tr.needs_reauth td.status,tr.disabled td.status{color:#a00}\n",
        "td.error{max-width:40em}\n",
        "</style>\n</head>\n<body>\n<h1>Mailroom status</h1>\n"
    ));
    let _ = writeln!(
        out,
        "<p>{} account(s) shown, as of <time>{}</time>. <a href=\"/status?format=html&amp;status=needs_reauth\">Needing a sign-in</a> · <a href=\"/status?format=json\">JSON</a> · <a href=\"/metrics\">metrics</a></p>",
        rows.len(),
        generated_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    out.push_str(concat!(
        "<table id=\"accounts\">\n<thead><tr>",
        "<th>Account</th><th>Status</th><th>Last sync</th><th>Messages</th>",
        "<th>Last error</th><th>Next due</th></tr></thead>\n<tbody>\n"
    ));
    for r in rows {
        let error = match (&r.auth_error_code, &r.last_error) {
            (Some(code), Some(e)) if !e.contains(code.as_str()) => format!("{code}: {e}"),
            (_, Some(e)) => e.clone(),
            (Some(code), None) => code.clone(),
            (None, None) => String::new(),
        };
        let next = match (&r.next_due, r.status.as_str()) {
            (Some(_), _) => time(&r.next_due).unwrap_or_default(),
            (None, "active") => "now".to_owned(),
            (None, _) => "not scheduled".to_owned(),
        };
        let _ = writeln!(
            out,
            "<tr class=\"{status}\"><td>{account}</td><td class=\"status\">{status}</td><td>{last}</td><td>{messages}</td><td class=\"error\">{error}</td><td>{next}</td></tr>",
            status = escape(&r.status),
            account = escape(&r.account),
            last = time(&r.last_sync_at).unwrap_or_else(|| "never".to_owned()),
            messages = r.messages,
            error = escape(&error),
            next = escape(&next),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    if let Some(next) = next {
        let _ = writeln!(
            out,
            "<p><a rel=\"next\" href=\"{}\">Next page</a></p>",
            escape(next)
        );
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// Text made safe for HTML element content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_what_servers_and_users_wrote() {
        let row = AccountRow {
            account: "<b>@x".into(),
            kind: "graph".into(),
            status: "needs_reauth".into(),
            last_sync_at: None,
            messages: 3,
            last_error: Some("cannot refresh token: <script>alert(1)</script>".into()),
            auth_error_code: Some("AADSTS700082".into()),
            next_due: None,
            leased_by: None,
        };
        let page = html(&[row], Utc::now(), Some("/status?after=%3Cb%3E&limit=1"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("AADSTS700082: cannot refresh token: &lt;script&gt;"));
        assert!(page.contains("<td>&lt;b&gt;@x</td>"));
        assert!(page.contains("not scheduled"));
    }
}
