//! What the sync benches (`sync.rs`, `fleet.rs`) share: the simulator app, tokens
//! sealed into credentials, process CPU, Graph request counts, and
//! `pg_stat_statements` differences.

use mailroom_core::{AccessToken, Credentials, OAuthCredentials, RefreshToken};
use mailroom_sim::{Counters, TokenResponse};
use mailroom_store::testing::StatementStats;
use mailroom_vault::Vault;
use serde_json::json;
use std::collections::HashMap;

/// The app id the benches sign in with.
pub const CLIENT_ID: &str = "bench-app";

/// The sealed credentials of `user`, with a token the simulator's control API at
/// `control_url` issued (no device code).
pub async fn sealed_credentials(
    http: &reqwest::Client,
    control_url: &str,
    user: &str,
    vault: &Vault,
) -> String {
    let body = json!({
        "user": user,
        "client_id": CLIENT_ID,
        "scopes": ["Mail.ReadWrite", "User.Read", "offline_access"],
    });
    let tokens: TokenResponse = http
        .post(format!("{control_url}/tokens"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut oauth = OAuthCredentials::new(CLIENT_ID);
    oauth.token = Some(AccessToken::new(tokens.access_token));
    oauth.refresh_token = tokens.refresh_token.map(RefreshToken::new);
    oauth.scopes = tokens.scope.split(' ').map(str::to_owned).collect();
    oauth.expiry = Some(chrono::Utc::now() + chrono::Duration::seconds(tokens.expires_in as i64));
    vault.encrypt(Credentials::OAuth(oauth).to_json().as_bytes())
}

/// Requests the simulator counted on Graph routes.
pub fn graph_requests(counters: &Counters) -> u64 {
    counters
        .requests_by_route
        .iter()
        .filter(|(route, _)| route.contains("/v1.0/"))
        .map(|(_, n)| n)
        .sum()
}

/// Every statement `pg_stat_statements` tracks on the test server; `None` when it is
/// not loaded.
pub async fn statement_stats() -> Option<HashMap<i64, StatementStats>> {
    let base = mailroom_store::testing::postgres_base_url();
    mailroom_store::testing::statement_stats(&base)
        .await
        .ok()
        .flatten()
}

/// The statements run between two [`statement_stats`] (calls, execution time and
/// rows since `before`), those that ran at least once; `None` when either is `None`.
pub fn statements_since(
    before: Option<HashMap<i64, StatementStats>>,
    after: Option<HashMap<i64, StatementStats>>,
) -> Option<Vec<StatementStats>> {
    let (before, after) = (before?, after?);
    Some(
        after
            .into_iter()
            .filter_map(|(id, a)| {
                let b = before.get(&id);
                let grown = StatementStats {
                    calls: a.calls - b.map_or(0, |b| b.calls),
                    total_exec_time: a.total_exec_time - b.map_or(0.0, |b| b.total_exec_time),
                    rows: a.rows - b.map_or(0, |b| b.rows),
                    query: a.query.split_whitespace().collect::<Vec<_>>().join(" "),
                };
                (grown.calls > 0).then_some(grown)
            })
            .collect(),
    )
}
