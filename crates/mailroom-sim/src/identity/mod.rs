//! The Microsoft identity platform part: `/{tenant}/oauth2/v2.0/devicecode`,
//! `/token`, the verification page and token introspection.

pub(crate) mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::SimInstant;
use crate::config::RefreshFailure;
use crate::counters::bump;
use crate::http::{Req, Resp, parse_form};
use crate::state::{MailboxCell, Shared};
pub use wire::Audience;
use wire::{AadError, ScopeSet};

/// Prefix of access tokens, so a test can grep logs for leaks.
pub const ACCESS_TOKEN_PREFIX: &str = "sim-at-";
/// Prefix of refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "sim-rt-";
/// Prefix of device codes.
pub const DEVICE_CODE_PREFIX: &str = "sim-dc-";

/// A token answer, as `/token` sends it (also returned by
/// [`Simulator::issue_tokens`](crate::Simulator::issue_tokens)).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// Always `Bearer`.
    pub token_type: String,
    /// Granted scopes, space separated.
    pub scope: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Same as `expires_in` (extended lifetime for outages).
    pub ext_expires_in: u64,
    /// The access token (`sim-at-…`).
    pub access_token: String,
    /// The refresh token (`sim-rt-…`), only when `offline_access` was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// An unsigned JWT with the user's claims, when `openid` was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// MSAL's `client_info` (base64url `{"uid","utid"}`), when the request
    /// carried `client_info=1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_info: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("scope", &self.scope)
            .field("expires_in", &self.expires_in)
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum DeviceState {
    Pending,
    Approved(String),
    Declined,
    Redeemed,
}

#[derive(Debug)]
struct DeviceCode {
    user_code: String,
    client_id: String,
    scopes: ScopeSet,
    expires_at: SimInstant,
    interval: Duration,
    last_poll: Option<SimInstant>,
    polls: u32,
    state: DeviceState,
}

/// What the simulator remembers of an access token.
#[derive(Clone, Debug)]
pub(crate) struct AccessToken {
    pub(crate) user: String,
    pub(crate) client_id: String,
    pub(crate) audience: Audience,
    pub(crate) scope: String,
    pub(crate) issued_at: SimInstant,
    pub(crate) expires_at: SimInstant,
    /// Presented and accepted at least once (counted in `access_tokens_used`).
    pub(crate) used: bool,
}

#[derive(Debug)]
struct RefreshToken {
    user: String,
    client_id: String,
    scopes: String,
    issued_at: SimInstant,
    redeemed: bool,
}

/// Identity state: device codes and tokens (its `Debug` shows counts only,
/// so printing a simulator never prints a token).
#[derive(Default)]
pub(crate) struct IdentityState {
    device_codes: HashMap<String, DeviceCode>,
    user_codes: HashMap<String, String>,
    pub(crate) access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    /// Scripted failure per account and how many refreshes it still hits
    /// (`None` = all of them).
    scripted: HashMap<String, (RefreshFailure, Option<u32>)>,
}

impl std::fmt::Debug for IdentityState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityState")
            .field("device_codes", &self.device_codes.len())
            .field("access_tokens", &self.access.len())
            .field("refresh_tokens", &self.refresh.len())
            .field("scripted", &self.scripted)
            .finish()
    }
}

/// Why an access token is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    Missing,
    Unknown,
    Expired,
    WrongAudience,
}

fn normalize_user_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl Shared {
    /// An error answer; its `correlation_id` is the request's
    /// `client-request-id` when it sent one, as with Entra ID.
    fn aad_error(&self, err: &AadError, req: &Req) -> Resp {
        let (trace, corr) = {
            let mut rng = self.rng();
            let trace = rng.uuid();
            let corr = req
                .header("client-request-id")
                .filter(|c| !c.is_empty())
                .map_or_else(|| rng.uuid(), str::to_owned);
            (trace, corr)
        };
        let body = err.body(self.clock.now_utc(), &trace, &corr, &self.base_url);
        Resp::json(
            StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST),
            &body,
        )
        .with_header("cache-control", "no-store, no-cache")
        .with_header("x-ms-request-id", &trace)
    }

    pub(crate) fn aad_error_public(
        &self,
        req: &Req,
        status: u16,
        error: &'static str,
        code: u32,
        description: &str,
    ) -> Resp {
        self.aad_error(&AadError::new(status, error, code, description), req)
    }

    /// Accepts `common`, `organizations`, `consumers`, GUIDs, the
    /// configured tenant domains and the domains of the mailboxes.
    pub(crate) fn check_tenant(&self, tenant: &str) -> Result<(), AadError> {
        wire::check_tenant(tenant, &|domain| {
            self.config
                .tenant_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(domain))
                || self.mailbox_cells().iter().any(|c| {
                    c.address
                        .rsplit_once('@')
                        .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain))
                })
        })
    }

    /// `POST /{tenant}/oauth2/v2.0/devicecode`
    pub(crate) fn devicecode(&self, tenant: &str, req: &Req) -> Resp {
        match self.try_devicecode(tenant, req) {
            Ok(v) => {
                Resp::json(StatusCode::OK, &v).with_header("cache-control", "no-store, no-cache")
            }
            Err(e) => self.aad_error(&e, req),
        }
    }

    fn try_devicecode(&self, tenant: &str, req: &Req) -> Result<Value, AadError> {
        self.check_tenant(tenant)?;
        let form = Form::new(req);
        let client_id = form.require("client_id")?;
        let scopes = wire::classify_scopes(form.get("scope").unwrap_or(""))?;
        let now = self.clock.now();
        let (device_code, user_code) = {
            // Lock order: identity before rng.
            let mut ident = self.identity();
            let mut rng = self.rng();
            let device_code = format!("{DEVICE_CODE_PREFIX}{}", rng.token(96));
            let user_code = loop {
                let c = wire::user_code(&mut rng);
                if !ident.user_codes.contains_key(&c) {
                    break c;
                }
            };
            ident
                .user_codes
                .insert(user_code.clone(), device_code.clone());
            ident.device_codes.insert(
                device_code.clone(),
                DeviceCode {
                    user_code: user_code.clone(),
                    client_id: client_id.to_owned(),
                    scopes,
                    expires_at: now.plus(self.config.device_code_lifetime),
                    interval: self.config.device_code_interval,
                    last_poll: None,
                    polls: 0,
                    state: DeviceState::Pending,
                },
            );
            (device_code, user_code)
        };
        self.counters.update(|c| c.device_codes_issued += 1);
        let uri = self.verification_uri();
        Ok(json!({
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": uri,
            "expires_in": self.config.device_code_lifetime.as_secs(),
            "interval": self.config.device_code_interval.as_secs(),
            "message": wire::device_code_message(&uri, &user_code),
        }))
    }

    pub(crate) fn verification_uri(&self) -> String {
        format!("{}/devicelogin", self.base_url)
    }

    /// `POST /{tenant}/oauth2/v2.0/token`
    pub(crate) fn token(&self, tenant: &str, req: &Req) -> Resp {
        match self.try_token(tenant, req) {
            Ok(t) => Resp::json(
                StatusCode::OK,
                &serde_json::to_value(&t).unwrap_or_default(),
            )
            .with_header("cache-control", "no-store, no-cache")
            .with_header("pragma", "no-cache"),
            Err(e) => self.aad_error(&e, req),
        }
    }

    fn try_token(&self, tenant: &str, req: &Req) -> Result<TokenResponse, AadError> {
        let form = Form::new(req);
        let mut t = self.grant(tenant, req)?;
        if form.get("client_info") == Some("1") {
            use base64::Engine as _;
            let user = self
                .identity()
                .access
                .get(&t.access_token)
                .map(|a| a.user.clone());
            let uid = user
                .and_then(|u| self.mailbox_cell(&u))
                .map(|c| c.user_id.clone())
                .unwrap_or_default();
            let info = json!({"uid": uid, "utid": TENANT_ID});
            t.client_info = Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(serde_json::to_vec(&info).unwrap_or_default()),
            );
        }
        Ok(t)
    }

    fn grant(&self, tenant: &str, req: &Req) -> Result<TokenResponse, AadError> {
        self.check_tenant(tenant)?;
        let form = Form::new(req);
        let grant_type = form.require("grant_type")?;
        let client_id = form.require("client_id")?;
        match grant_type {
            "urn:ietf:params:oauth:grant-type:device_code" | "device_code" => {
                self.check_client(client_id, &form)?;
                let code = form
                    .get("device_code")
                    .or_else(|| form.get("code"))
                    .ok_or_else(|| AadError::missing_parameter("device_code"))?;
                self.device_code_grant(tenant, client_id, code)
            }
            "refresh_token" => {
                self.check_client(client_id, &form)?;
                let rt = form.require("refresh_token")?;
                self.refresh_grant(tenant, client_id, rt, form.get("scope"))
            }
            other => Err(AadError::new(
                400,
                "unsupported_grant_type",
                70_003,
                format!("The app requested an unsupported grant type '{other}'."),
            )),
        }
    }

    /// Public clients must not send a secret; confidential ones must send theirs.
    fn check_client(&self, client_id: &str, form: &Form) -> Result<(), AadError> {
        let sent = form.get("client_secret");
        match (self.config.confidential_clients.get(client_id), sent) {
            (None, Some(_)) => Err(AadError::new(
                401,
                "invalid_client",
                700_025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            )),
            (Some(_), None) => Err(AadError::new(
                401,
                "invalid_client",
                7_000_218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )),
            (Some(secret), Some(given)) if secret != given => Err(AadError::new(
                401,
                "invalid_client",
                7_000_215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            )),
            _ => Ok(()),
        }
    }

    fn device_code_grant(
        &self,
        tenant: &str,
        client_id: &str,
        code: &str,
    ) -> Result<TokenResponse, AadError> {
        let now = self.clock.now();
        self.counters.update(|c| c.device_code_polls += 1);
        let auto_user = self.auto_approve_user();
        let mut ident = self.identity();
        let Some(dc) = ident.device_codes.get_mut(code) else {
            return Err(AadError::new(
                400,
                "bad_verification_code",
                70_018,
                "Invalid verification code due to the user typing in the wrong user code for the device code flow. Authorization isn't approved.",
            ));
        };
        if dc.client_id != client_id {
            return Err(AadError::new(
                400,
                "invalid_grant",
                70_000,
                "Provided grant is invalid or malformed. The device code was issued to another client.",
            ));
        }
        if matches!(dc.state, DeviceState::Redeemed) {
            return Err(AadError::new(
                400,
                "invalid_grant",
                54_005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ));
        }
        if now >= dc.expires_at {
            return Err(AadError::new(
                400,
                "expired_token",
                70_019,
                "The provided value for the input parameter 'device_code' is not valid. Device code expired.",
            ));
        }
        if let Some(last) = dc.last_poll
            && now.since(last) < dc.interval
        {
            dc.interval += Duration::from_secs(5);
            dc.last_poll = Some(now);
            drop(ident);
            self.counters.update(|c| c.slow_downs += 1);
            return Err(AadError::new(
                400,
                "slow_down",
                70_016,
                "OAuth 2.0 device flow error. Polling too frequently; the interval has been increased by 5 seconds.",
            ));
        }
        dc.last_poll = Some(now);
        if matches!(dc.state, DeviceState::Pending) {
            dc.polls += 1;
            if let (Some(n), Some(user)) = (self.config.auto_approve_after_polls, auto_user)
                && dc.polls >= n
            {
                dc.state = DeviceState::Approved(user);
            }
        }
        match std::mem::replace(&mut dc.state, DeviceState::Redeemed) {
            DeviceState::Pending => {
                dc.state = DeviceState::Pending;
                Err(AadError::new(
                    400,
                    "authorization_pending",
                    70_016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                ))
            }
            DeviceState::Declined => {
                dc.state = DeviceState::Declined;
                Err(AadError::new(
                    400,
                    "authorization_declined",
                    65_004,
                    "User declined to consent to access the app.",
                ))
            }
            DeviceState::Redeemed => Err(AadError::new(
                400,
                "invalid_grant",
                54_005,
                "OAuth2 Authorization code was already redeemed.",
            )),
            DeviceState::Approved(user) => {
                let scopes = dc.scopes.clone();
                let user_code = dc.user_code.clone();
                ident.user_codes.remove(&user_code);
                let t = self.issue_locked(&mut ident, &user, client_id, &scopes, tenant);
                drop(ident);
                self.counters
                    .update(|c| bump(&mut c.device_code_grants, &user));
                Ok(t)
            }
        }
    }

    fn refresh_grant(
        &self,
        tenant: &str,
        client_id: &str,
        rt: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse, AadError> {
        let now = self.clock.now();
        let mut ident = self.identity();
        let Some(rec) = ident.refresh.get(rt) else {
            return Err(AadError::new(
                400,
                "invalid_grant",
                9_002_313,
                "Invalid request. Request is malformed or invalid.",
            ));
        };
        let user = rec.user.clone();
        let fail = |e: AadError| {
            self.counters
                .update(|c| bump(&mut c.refresh_failures, &user));
            Err(e)
        };
        if rec.client_id != client_id {
            return fail(AadError::new(
                400,
                "invalid_grant",
                70_000,
                "Provided grant is invalid or malformed. The refresh token was issued to a different client.",
            ));
        }
        let issued = self
            .clock
            .utc(rec.issued_at)
            .format("%Y-%m-%dT%H:%M:%S%.6f0Z")
            .to_string();
        let scripted = match ident.scripted.get_mut(&user) {
            Some((f, Some(left))) => {
                let f = *f;
                *left = left.saturating_sub(1);
                if *left == 0 {
                    ident.scripted.remove(&user);
                }
                f
            }
            Some((f, None)) => *f,
            None => RefreshFailure::None,
        };
        if let Some(e) = scripted_error(scripted, client_id, &issued) {
            return fail(e);
        }
        let Some(rec) = ident.refresh.get(rt) else {
            return fail(AadError::new(
                400,
                "invalid_grant",
                9_002_313,
                "Invalid request. Request is malformed or invalid.",
            ));
        };
        if rec.redeemed {
            let strict = self.config.strict_refresh_rotation;
            self.counters.update(|c| {
                bump(&mut c.refresh_token_replays, &user);
                c.refresh_token_replays_total += 1;
            });
            if strict {
                return fail(AadError::new(
                    400,
                    "invalid_grant",
                    70_000,
                    "Provided grant is invalid or malformed. The refresh token has already been redeemed.",
                ));
            }
        }
        let age = now.since(rec.issued_at);
        if age >= self.config.refresh_token_lifetime {
            return fail(AadError::new(
                400,
                "invalid_grant",
                700_082,
                format!(
                    "The refresh token has expired due to inactivity. The token was issued on {issued} and was inactive for {}.",
                    humanize(self.config.refresh_token_lifetime)
                ),
            ));
        }
        let scopes = match scope {
            Some(s) if !s.trim().is_empty() => wire::classify_scopes(s),
            _ => wire::classify_scopes(&rec.scopes),
        };
        let mut scopes = match scopes {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        // A refresh always yields a new refresh token (rotation), even if
        // the client forgot `offline_access` in this request.
        scopes.offline_access = true;
        if let Some(r) = ident.refresh.get_mut(rt) {
            r.redeemed = true;
        }
        let t = self.issue_locked(&mut ident, &user, client_id, &scopes, tenant);
        drop(ident);
        self.counters.update(|c| bump(&mut c.refreshes, &user));
        Ok(t)
    }

    /// Issues an access token (and a refresh token with `offline_access`).
    pub(crate) fn issue_locked(
        &self,
        ident: &mut IdentityState,
        user: &str,
        client_id: &str,
        scopes: &ScopeSet,
        tenant: &str,
    ) -> TokenResponse {
        let now = self.clock.now();
        let lifetime = self.config.access_token_lifetime;
        let (at, rt) = {
            let mut rng = self.rng();
            (
                format!("{ACCESS_TOKEN_PREFIX}{}", rng.token(120)),
                format!("{REFRESH_TOKEN_PREFIX}{}", rng.token(180)),
            )
        };
        let user = user.to_ascii_lowercase();
        ident.access.insert(
            at.clone(),
            AccessToken {
                user: user.clone(),
                client_id: client_id.to_owned(),
                audience: scopes.audience,
                scope: scopes.granted(),
                issued_at: now,
                expires_at: now.plus(lifetime),
                used: false,
            },
        );
        let refresh_token = scopes.offline_access.then(|| {
            ident.refresh.insert(
                rt.clone(),
                RefreshToken {
                    user: user.clone(),
                    client_id: client_id.to_owned(),
                    scopes: scopes.requested(),
                    issued_at: now,
                    redeemed: false,
                },
            );
            rt
        });
        let id_token = scopes.oidc.iter().any(|s| s == "openid").then(|| {
            let cell = self.mailbox_cell(&user);
            let iat = self.clock.now_utc().timestamp();
            let (oid, name) = cell
                .as_ref()
                .map(|c| (c.user_id.clone(), c.display_name.clone()))
                .unwrap_or_default();
            wire::id_token(&json!({
                "aud": client_id,
                "iss": format!("{}/{}/v2.0", self.base_url, TENANT_ID),
                "iat": iat,
                "nbf": iat,
                "exp": iat + lifetime.as_secs() as i64,
                "name": name,
                "oid": oid,
                "preferred_username": user,
                "email": user,
                "sub": oid,
                "tid": if tenant.len() == 36 { tenant } else { TENANT_ID },
                "ver": "2.0",
            }))
        });
        TokenResponse {
            token_type: "Bearer".to_owned(),
            scope: scopes.granted(),
            expires_in: lifetime.as_secs(),
            ext_expires_in: lifetime.as_secs(),
            access_token: at,
            refresh_token,
            id_token,
            client_info: None,
        }
    }

    /// Every access token, refresh token and device code handed out.
    pub(crate) fn issued_secrets(&self) -> Vec<String> {
        let ident = self.identity();
        let mut out: Vec<String> = ident
            .access
            .keys()
            .chain(ident.refresh.keys())
            .chain(ident.device_codes.keys())
            .cloned()
            .collect();
        out.sort();
        out
    }

    /// Scripts a refresh failure for the next `times` refreshes of `user`
    /// (`None` = until cleared).
    pub(crate) fn script_refresh_failure_locked(
        &self,
        user: &str,
        failure: RefreshFailure,
        times: Option<u32>,
    ) {
        let mut ident = self.identity();
        if failure == RefreshFailure::None || times == Some(0) {
            ident.scripted.remove(&user.to_ascii_lowercase());
        } else {
            ident
                .scripted
                .insert(user.to_ascii_lowercase(), (failure, times));
        }
    }

    pub(crate) fn expire_access_tokens_locked(&self, user: &str) -> usize {
        let user = user.to_ascii_lowercase();
        let now = self.clock.now();
        let mut n = 0;
        for t in self.identity().access.values_mut() {
            if t.user == user && t.expires_at > now {
                t.expires_at = now;
                n += 1;
            }
        }
        n
    }

    /// Approves a pending device code for `user`.
    pub(crate) fn approve_locked(&self, user_code: &str, user: &str) -> crate::Result<()> {
        if self.mailbox_cell(user).is_none() {
            return Err(crate::Error::UnknownMailbox(user.to_owned()));
        }
        self.set_device_state(user_code, DeviceState::Approved(user.to_ascii_lowercase()))
    }

    pub(crate) fn deny_locked(&self, user_code: &str) -> crate::Result<()> {
        self.set_device_state(user_code, DeviceState::Declined)
    }

    fn set_device_state(&self, user_code: &str, state: DeviceState) -> crate::Result<()> {
        let code = normalize_user_code(user_code);
        let mut ident = self.identity();
        let device = ident
            .user_codes
            .get(&code)
            .cloned()
            .ok_or_else(|| crate::Error::UnknownUserCode(code.clone()))?;
        let now = self.clock.now();
        match ident.device_codes.get_mut(&device) {
            Some(dc) if matches!(dc.state, DeviceState::Pending) && now < dc.expires_at => {
                dc.state = state;
                Ok(())
            }
            _ => Err(crate::Error::UnknownUserCode(code)),
        }
    }

    /// Finds the access token of a request and checks it is for `audience`.
    pub(crate) fn check_access_token(
        &self,
        token: Option<&str>,
        audience: Audience,
    ) -> Result<AccessToken, TokenProblem> {
        let token = token.ok_or(TokenProblem::Missing)?;
        let mut ident = self.identity();
        let rec = ident.access.get_mut(token).ok_or(TokenProblem::Unknown)?;
        if self.clock.now() >= rec.expires_at {
            return Err(TokenProblem::Expired);
        }
        if rec.audience != audience {
            return Err(TokenProblem::WrongAudience);
        }
        let first_use = !std::mem::replace(&mut rec.used, true);
        let rec = rec.clone();
        drop(ident);
        if first_use {
            self.counters
                .update(|c| bump(&mut c.access_tokens_used, &rec.user));
        }
        Ok(rec)
    }

    /// RFC 7662 introspection, as Dovecot's oauth2 passdb calls it
    /// (`introspection_mode = post`, `get` or `auth`).
    pub(crate) fn introspect(&self, req: &Req) -> Resp {
        let form = Form::new(req);
        let query = parse_form(req.query.as_bytes());
        let token = form
            .get("token")
            .map(str::to_owned)
            .or_else(|| {
                query
                    .iter()
                    .find(|(k, _)| k == "token")
                    .map(|(_, v)| v.clone())
            })
            .or_else(|| bearer(req).map(str::to_owned));
        let body = match self.check_access_token(token.as_deref(), Audience::Outlook) {
            Ok(t) => {
                let exp = self.clock.utc(t.expires_at).timestamp();
                let iat = self.clock.utc(t.issued_at).timestamp();
                json!({
                    "active": true,
                    "username": t.user,
                    "scope": t.scope,
                    "client_id": t.client_id,
                    "token_type": "Bearer",
                    "exp": exp,
                    "iat": iat,
                    "aud": t.audience.uri(),
                    "sub": t.user,
                })
            }
            Err(_) => json!({"active": false}),
        };
        Resp::json(StatusCode::OK, &body)
    }

    /// `GET /{tenant}/v2.0/.well-known/openid-configuration`
    pub(crate) fn openid_configuration(&self, tenant: &str, req: &Req) -> Resp {
        if let Err(e) = self.check_tenant(tenant) {
            return self.aad_error(&e, req);
        }
        let b = &self.base_url;
        Resp::json(
            StatusCode::OK,
            &json!({
                "token_endpoint": format!("{b}/{tenant}/oauth2/v2.0/token"),
                "device_authorization_endpoint": format!("{b}/{tenant}/oauth2/v2.0/devicecode"),
                "authorization_endpoint": format!("{b}/{tenant}/oauth2/v2.0/authorize"),
                "introspection_endpoint": format!("{b}/oauth2/introspect"),
                "jwks_uri": format!("{b}/{tenant}/discovery/v2.0/keys"),
                "issuer": format!("{b}/{TENANT_ID}/v2.0"),
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "grant_types_supported": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
            }),
        )
    }

    /// `GET /{tenant}/discovery/v2.0/keys`: the signing keys. Id tokens are
    /// unsigned (`alg: none`), so the set is empty.
    pub(crate) fn jwks(&self, tenant: &str, req: &Req) -> Resp {
        if let Err(e) = self.check_tenant(tenant) {
            return self.aad_error(&e, req);
        }
        Resp::json(StatusCode::OK, &json!({"keys": []}))
    }

    /// `GET /{tenant}/discovery/instance?authorization_endpoint=…` (MSAL's
    /// instance discovery, API versions 1.0 and 1.1): the simulator is its
    /// own single cloud, known under the host (without port) of its public
    /// URL.
    pub(crate) fn instance_discovery(&self, req: &Req) -> Resp {
        let query = parse_form(req.query.as_bytes());
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.as_str())
        };
        let version = param("api-version").unwrap_or("1.1");
        let Some(endpoint) = param("authorization_endpoint") else {
            return self.aad_error(&AadError::missing_parameter("authorization_endpoint"), req);
        };
        // Hosts without ports: msal sends `https://{host}/{tenant}/…`
        // whatever the port of its authority.
        let host = url::Url::parse(&self.base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        let asked = url::Url::parse(endpoint).ok();
        let tenant = asked.as_ref().and_then(|u| {
            let same_host = u.host_str().is_some_and(|h| h.eq_ignore_ascii_case(&host));
            let first = u.path_segments()?.next()?.to_owned();
            (same_host && !first.is_empty()).then_some(first)
        });
        let Some(tenant) = tenant else {
            return self.aad_error(
                &AadError::new(
                    400,
                    "invalid_instance",
                    50_049,
                    "Unknown or invalid instance.",
                ),
                req,
            );
        };
        Resp::json(
            StatusCode::OK,
            &json!({
                "tenant_discovery_endpoint": format!(
                    "{}/{tenant}/v2.0/.well-known/openid-configuration",
                    self.base_url
                ),
                "api-version": version,
                "metadata": [{
                    "preferred_network": host,
                    "preferred_cache": host,
                    "aliases": [host],
                }],
            }),
        )
    }

    /// The verification page: GET shows a form, POST approves or declines.
    pub(crate) fn devicelogin(&self, req: &Req) -> Resp {
        let mut note = String::new();
        if req.method == Method::POST {
            let form = Form::new(req);
            let code = form.get("user_code").unwrap_or("");
            let user = form.get("mailbox").unwrap_or("");
            let result = if form.get("action") == Some("decline") {
                self.deny_locked(code)
                    .map(|()| "Declined: the application was not signed in.".to_owned())
            } else {
                self.approve_locked(code, user).map(|()| {
                    format!("Approved: you have signed in as {} on your device. You can close this window.", html_escape(user))
                })
            };
            note = match result {
                Ok(msg) => format!("<p id=\"result\" class=\"ok\">{msg}</p>"),
                Err(e) => format!(
                    "<p id=\"result\" class=\"error\">{}</p>",
                    html_escape(&e.to_string())
                ),
            };
        }
        let options: String = self
            .mailbox_cells()
            .iter()
            .map(|c| {
                format!(
                    "<option value=\"{0}\">{0}</option>",
                    html_escape(&c.address)
                )
            })
            .collect();
        Resp::html(
            StatusCode::OK,
            format!(
                "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Enter code - mailroom-sim</title></head>\
                 <body><h1>Enter code</h1><p>Enter the code displayed on your app or device.</p>{note}\
                 <form method=\"post\" action=\"/devicelogin\">\
                 <label>Code <input name=\"user_code\" autocomplete=\"off\"></label>\
                 <label>Sign in as <select name=\"mailbox\">{options}</select></label>\
                 <button name=\"action\" value=\"approve\">Approve</button>\
                 <button name=\"action\" value=\"decline\">Decline</button></form></body></html>\n"
            ),
        )
    }

    fn auto_approve_user(&self) -> Option<String> {
        self.config
            .auto_approve_user
            .clone()
            .or_else(|| self.mailbox_cells().first().map(|c| c.address.clone()))
            .map(|u| u.to_ascii_lowercase())
    }

    /// Is this mailbox known (for control endpoints)?
    pub(crate) fn known_user(&self, user: &str) -> crate::Result<Arc<MailboxCell>> {
        self.mailbox_cell(user)
            .ok_or_else(|| crate::Error::UnknownMailbox(user.to_owned()))
    }
}

/// The tenant id put in id tokens.
pub(crate) const TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

fn scripted_error(f: RefreshFailure, client_id: &str, issued: &str) -> Option<AadError> {
    Some(match f {
        RefreshFailure::None => return None,
        RefreshFailure::Expired => AadError::new(
            400,
            "invalid_grant",
            700_082,
            format!("The refresh token has expired due to inactivity. The token was issued on {issued} and was inactive for 90.00:00:00."),
        ),
        RefreshFailure::Revoked => AadError::new(
            400,
            "invalid_grant",
            50_173,
            format!("The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{issued}' and the TokensValidFrom date (before which tokens are not valid) for this user is later."),
        ),
        RefreshFailure::ConsentRequired => AadError::new(
            400,
            "invalid_grant",
            65_001,
            format!("The user or administrator has not consented to use the application with ID '{client_id}' named 'Mailroom'. Send an interactive authorization request for this user and resource."),
        )
        .with_suberror("consent_required"),
        RefreshFailure::MfaRequired => AadError::new(
            400,
            "invalid_grant",
            50_076,
            "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '00000003-0000-0000-c000-000000000000'.",
        )
        .with_suberror("basic_action"),
        RefreshFailure::SignInFrequency => AadError::new(
            400,
            "invalid_grant",
            70_043,
            format!("The refresh token has expired or is invalid due to sign-in frequency checks by conditional access. The token was issued on {issued} and the maximum allowed lifetime for this request is 3600."),
        ),
        RefreshFailure::ServerError => AadError::new(
            500,
            "server_error",
            50_000,
            "There was an error issuing a token or an issue with our sign-in service.",
        ),
    })
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    format!(
        "{}.{:02}:{:02}:{:02}",
        s / 86_400,
        s % 86_400 / 3600,
        s % 3600 / 60,
        s % 60
    )
}

pub(crate) fn bearer(req: &Req) -> Option<&str> {
    let v = req.header("authorization")?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub(crate) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn basic_credentials(req: &Req) -> Option<(String, String)> {
    use base64::Engine as _;
    let v = req.header("authorization")?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (id, secret) = raw.split_once(':')?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((decode(id), decode(secret)))
}

/// A form body, with empty values treated as absent.
struct Form(Vec<(String, String)>);

impl Form {
    /// The form body; HTTP Basic client credentials (`client_secret_basic`,
    /// RFC 6749 §2.3.1) count as `client_id`/`client_secret` fields.
    fn new(req: &Req) -> Form {
        let mut fields = parse_form(&req.body);
        if let Some((id, secret)) = basic_credentials(req) {
            for (k, v) in [("client_id", id), ("client_secret", secret)] {
                if !fields.iter().any(|(f, x)| f == k && !x.is_empty()) {
                    fields.push((k.to_owned(), v));
                }
            }
        }
        Form(fields)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn require(&self, name: &str) -> Result<&str, AadError> {
        self.get(name)
            .ok_or_else(|| AadError::missing_parameter(name))
    }
}
