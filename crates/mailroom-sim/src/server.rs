//! The HTTP server, the router and the [`Simulator`] handle.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use percent_encoding::percent_decode_str;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{Faults, MailboxSpec, RefreshFailure, SimConfig};
use crate::counters::Counters;
use crate::graph::handle::Mailbox;
use crate::http::{Req, Resp};
use crate::identity::TokenResponse;
use crate::state::{Shared, lock};
use crate::{Error, Result};

/// A running simulator, listening on 127.0.0.1.
///
/// Dropping it stops the server; [`Simulator::shutdown`] also waits for it.
#[derive(Debug)]
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    ca_pem: Option<String>,
    ca_file: Option<PathBuf>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    notifier: JoinHandle<()>,
}

/// The base URL clients are told: `public_url` (checked: http or https,
/// a host, no path, query or fragment) or the bound address.
fn base_url(public_url: Option<&str>, scheme: &str, addr: SocketAddr) -> Result<String> {
    let Some(raw) = public_url else {
        return Ok(format!("{scheme}://{addr}"));
    };
    let invalid = |why: &str| Error::InvalidPublicUrl(format!("{raw:?}: {why}"));
    let url = url::Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "only scheme, host and port are allowed (no path, query or fragment)",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it must not carry credentials"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

impl Simulator {
    /// Binds 127.0.0.1 on `config.port` (0 = any free port), creates the
    /// configured mailboxes and starts serving (HTTPS with
    /// [`SimConfig::tls`]).
    pub async fn start(config: SimConfig) -> Result<Simulator> {
        let port = config.port;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| Error::Bind { port, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { port, source })?;
        let specs = config.mailboxes.clone();
        if let Some(user) = &config.auto_approve_user
            && !specs.iter().any(|m| m.address.eq_ignore_ascii_case(user))
        {
            return Err(Error::UnknownMailbox(user.clone()));
        }
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let base = base_url(config.public_url.as_deref(), scheme, addr)?;
        let tls = match &config.tls {
            Some(tls) => {
                let host = url::Url::parse(&base)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned));
                Some(crate::tls::identity(tls, host.as_deref())?)
            }
            None => None,
        };
        let ca_pem = tls.as_ref().and_then(|t| t.ca_pem.clone());
        let ca_file = match &ca_pem {
            Some(pem) => {
                let path = std::env::temp_dir().join(format!(
                    "mailroom-sim-{}-{}-ca.pem",
                    std::process::id(),
                    addr.port()
                ));
                std::fs::write(&path, pem).map_err(|e| {
                    Error::Tls(format!("cannot write the CA to {}: {e}", path.display()))
                })?;
                Some(path)
            }
            None => None,
        };
        let shared = Arc::new(Shared::new(config, base));
        for spec in specs {
            shared.add_mailbox(spec)?;
        }
        let notifier = tokio::spawn(crate::graph::subscriptions::notifier(Arc::downgrade(
            &shared,
        )));
        let app = axum::Router::new()
            .fallback(serve_one)
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let stopped = async move {
            let _ = stopped.await;
        };
        let task = match tls {
            None => tokio::spawn(async move {
                let server = axum::serve(listener, app).with_graceful_shutdown(stopped);
                if let Err(e) = server.await {
                    tracing::error!(error = %e, "mailroom-sim server stopped");
                }
            }),
            Some(tls) => {
                let listener = crate::tls::TlsListener::new(listener, tls.config)?;
                tokio::spawn(async move {
                    let server = axum::serve(listener, app).with_graceful_shutdown(stopped);
                    if let Err(e) = server.await {
                        tracing::error!(error = %e, "mailroom-sim server stopped");
                    }
                })
            }
        };
        tracing::info!(%addr, "mailroom-sim listening");
        Ok(Simulator {
            shared,
            addr,
            ca_pem,
            ca_file,
            stop: Some(stop),
            task: Some(task),
            notifier,
        })
    }

    /// PEM of the CA that signed the certificate made at start
    /// ([`Tls::SelfSigned`](crate::Tls::SelfSigned)), for clients to trust.
    pub fn ca_certificate_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The same PEM as a file (in the temporary directory, removed when
    /// the simulator stops), for `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`,
    /// `curl --cacert`.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The identity "authority host" (`http://127.0.0.1:PORT`, or
    /// [`SimConfig::public_url`]); endpoints are under `/{tenant}/oauth2/v2.0/`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The Graph root, `http://127.0.0.1:PORT/v1.0`.
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.shared.base_url)
    }

    /// The RFC 7662 introspection endpoint (for Dovecot's oauth2 passdb).
    pub fn introspection_url(&self) -> String {
        format!("{}/oauth2/introspect", self.shared.base_url)
    }

    /// The verification page of the device code flow.
    pub fn verification_uri(&self) -> String {
        self.shared.verification_uri()
    }

    /// A snapshot of all counters.
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// Zeroes all counters.
    pub fn reset_counters(&self) {
        self.shared.counters.update(|c| *c = Counters::default());
    }

    /// The handle of one mailbox.
    pub fn mailbox(&self, address: &str) -> Result<Mailbox> {
        self.shared
            .known_user(address)
            .map(|cell| Mailbox::new(self.shared.clone(), cell))
    }

    /// Addresses of all mailboxes, in creation order.
    pub fn mailboxes(&self) -> Vec<String> {
        self.shared
            .mailbox_cells()
            .iter()
            .map(|c| c.address.clone())
            .collect()
    }

    /// Creates (generates) one more mailbox.
    pub fn add_mailbox(&self, spec: MailboxSpec) -> Result<Mailbox> {
        let cell = self.shared.add_mailbox(spec)?;
        Ok(Mailbox::new(self.shared.clone(), cell))
    }

    /// Issues tokens for `user` without the device flow (counted in
    /// [`Counters::test_issued_tokens`], not as a device grant). `scopes`
    /// follow the `/token` rules (one resource; `offline_access` for a
    /// refresh token).
    pub fn issue_tokens(
        &self,
        user: &str,
        client_id: &str,
        scopes: &[&str],
    ) -> Result<TokenResponse> {
        self.shared.known_user(user)?;
        let joined = scopes.join(" ");
        let set =
            crate::identity::wire::classify_scopes(&joined).map_err(|e| Error::InvalidScopes {
                scopes: joined.clone(),
                message: format!("AADSTS{}: {}", e.code, e.description),
            })?;
        let t = {
            let mut ident = self.shared.identity();
            self.shared
                .issue_locked(&mut ident, user, client_id, &set, "common")
        };
        self.shared
            .counters
            .update(|c| crate::counters::bump(&mut c.test_issued_tokens, user));
        Ok(t)
    }

    /// Every access token, refresh token and device code this simulator
    /// has handed out, so a test can check that none of them leaked into
    /// logs or error messages.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.shared.issued_secrets()
    }

    /// Approves a pending device code (by its user code) as `user`.
    pub fn approve_device_code(&self, user_code: &str, user: &str) -> Result<()> {
        self.shared.approve_locked(user_code, user)
    }

    /// Declines a pending device code: the next poll gets `authorization_declined`.
    pub fn deny_device_code(&self, user_code: &str) -> Result<()> {
        self.shared.deny_locked(user_code)
    }

    /// Makes every later refresh of `user` fail this way
    /// ([`RefreshFailure::None`] clears it).
    pub fn script_refresh_failure(&self, user: &str, failure: RefreshFailure) -> Result<()> {
        self.shared.known_user(user)?;
        self.shared
            .script_refresh_failure_locked(user, failure, None);
        Ok(())
    }

    /// Makes only the next `times` refreshes of `user` fail this way (e.g.
    /// one [`RefreshFailure::ServerError`] to test a retry).
    pub fn script_refresh_failure_times(
        &self,
        user: &str,
        failure: RefreshFailure,
        times: u32,
    ) -> Result<()> {
        self.shared.known_user(user)?;
        self.shared
            .script_refresh_failure_locked(user, failure, Some(times));
        Ok(())
    }

    /// Expires every live access token of `user`: Graph answers 401
    /// `InvalidAuthenticationToken` and introspection `active: false`.
    /// Returns how many tokens were expired.
    pub fn expire_access_tokens(&self, user: &str) -> Result<usize> {
        self.shared.known_user(user)?;
        Ok(self.shared.expire_access_tokens_locked(user))
    }

    /// Invalidates every delta and skip token handed out for `user`'s
    /// mailbox: their next use gets HTTP 410.
    pub fn expire_delta_tokens(&self, user: &str) -> Result<()> {
        let cell = self.shared.known_user(user)?;
        lock(&cell.store).expire_delta_tokens();
        Ok(())
    }

    /// Moves the simulator's clock forward (token, device code and delta
    /// token expiry, polling intervals, Retry-After).
    pub fn advance_clock(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// Answers the next Graph requests (or `$batch` items) for `mailbox`
    /// with these statuses, in order, then normally again. 429/503/504 carry
    /// the configured `Retry-After`. Deterministic where `error_rate` is not.
    pub fn script_faults(&self, mailbox: &str, statuses: &[u16]) -> Result<()> {
        let cell = self.shared.known_user(mailbox)?;
        lock(&cell.throttle)
            .scripted
            .extend(statuses.iter().copied());
        Ok(())
    }

    /// Replaces the fault injection.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = faults;
    }

    /// The current fault injection.
    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// The change-notification subscriptions alive now.
    pub fn subscriptions(&self) -> Vec<crate::SubscriptionInfo> {
        crate::graph::subscriptions::list(&self.shared)
    }

    /// Sends a lifecycle notification for a subscription to its
    /// `lifecycleNotificationUrl` (in the background); `subscriptionRemoved` also
    /// removes the subscription. False if there is no such subscription or it has
    /// no lifecycle URL.
    pub fn send_lifecycle(&self, subscription_id: &str, event: crate::Lifecycle) -> bool {
        crate::graph::subscriptions::send_lifecycle(&self.shared, subscription_id, event)
    }

    /// Replaces the faults of notification delivery (and the validation deadline).
    pub fn set_notification_faults(&self, faults: crate::NotificationFaults) {
        lock(&self.shared.subs).faults = faults;
    }

    /// Stops serving and waits for the server task.
    pub async fn shutdown(mut self) {
        self.notifier.abort();
        if let Some(path) = self.ca_file.take() {
            let _ = std::fs::remove_file(path);
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            // Graceful: in-flight requests finish; a client that keeps a
            // request open longer does not block shutdown for ever.
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.notifier.abort();
        if let Some(path) = self.ca_file.take() {
            let _ = std::fs::remove_file(path);
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

const MAX_BODY: usize = 16 * 1024 * 1024;

async fn serve_one(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return Response::builder()
                .status(StatusCode::PAYLOAD_TOO_LARGE)
                .body(Body::empty())
                .unwrap_or_default();
        }
    };
    let req = Req {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts.headers,
        body,
    };
    let resp = dispatch(&shared, req).await;
    let mut out = Response::builder().status(resp.status);
    if let Some(h) = out.headers_mut() {
        *h = resp.headers;
    }
    out.body(Body::from(resp.body)).unwrap_or_default()
}

/// Splits a raw path into decoded segments.
pub(crate) fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect()
}

/// Routes one request (from the socket or a `$batch`).
pub(crate) async fn dispatch(shared: &Arc<Shared>, req: Req) -> Resp {
    let segs = segments(&req.path);
    let seg: Vec<&str> = segs.iter().map(String::as_str).collect();
    if seg.first() == Some(&"_sim") {
        return crate::control::handle(shared, &req, &seg[1..]);
    }
    let (route, resp) = if seg.first() == Some(&"v1.0") {
        // Graph sleeps the latency while the request counts as in flight.
        crate::graph::handle_graph(shared, req, &seg[1..]).await
    } else {
        let latency = shared.faults().latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let (route, mut resp) = identity_route(shared, &req, &seg);
        // Entra ID names every answer (`x-ms-request-id`, the trace id of
        // error bodies) and echoes the caller's `client-request-id`.
        if resp.header("x-ms-request-id").is_none() {
            let id = shared.rng().uuid();
            resp.set_header("x-ms-request-id", &id);
        }
        if let Some(id) = req.header("client-request-id") {
            resp.set_header("client-request-id", id);
        }
        (route, resp)
    };
    shared.counters.update(|c| {
        *c.requests_by_route.entry(route).or_default() += 1;
        *c.responses_by_status
            .entry(resp.status.as_u16())
            .or_default() += 1;
    });
    resp
}

fn identity_route(shared: &Shared, req: &Req, seg: &[&str]) -> (String, Resp) {
    let m = &req.method;
    let post_only = |route: &str, f: &dyn Fn() -> Resp| -> (String, Resp) {
        let resp = if *m == Method::POST {
            f()
        } else {
            shared.aad_error_public(
                req,
                400,
                "invalid_request",
                900_561,
                "The endpoint only accepts POST requests. Received a GET request.",
            )
        };
        (format!("{m} {route}"), resp)
    };
    match seg {
        [tenant, "oauth2", "v2.0", "devicecode"] => {
            post_only("/{tenant}/oauth2/v2.0/devicecode", &|| {
                shared.devicecode(tenant, req)
            })
        }
        [tenant, "oauth2", "v2.0", "token"] => {
            post_only("/{tenant}/oauth2/v2.0/token", &|| shared.token(tenant, req))
        }
        ["oauth2", "introspect"] => (format!("{m} /oauth2/introspect"), shared.introspect(req)),
        ["devicelogin"] => (format!("{m} /devicelogin"), shared.devicelogin(req)),
        ["error"] => (
            format!("{m} /error"),
            Resp::html(
                StatusCode::OK,
                format!(
                    "<!doctype html><title>Error</title><p>mailroom-sim: AADSTS{} (see the error_description of the answer).</p>\n",
                    crate::identity::html_escape(
                        &crate::http::parse_form(req.query.as_bytes())
                            .into_iter()
                            .find(|(k, _)| k == "code")
                            .map(|(_, v)| v)
                            .unwrap_or_default()
                    )
                ),
            ),
        ),
        [tenant, "v2.0", ".well-known", "openid-configuration"] => (
            format!("{m} /{{tenant}}/v2.0/.well-known/openid-configuration"),
            shared.openid_configuration(tenant, req),
        ),
        [tenant, "discovery", "v2.0", "keys"] => (
            format!("{m} /{{tenant}}/discovery/v2.0/keys"),
            shared.jwks(tenant, req),
        ),
        [_, "discovery", "instance"] => (
            format!("{m} /{{tenant}}/discovery/instance"),
            shared.instance_discovery(req),
        ),
        _ => (
            format!("{m} (unknown)"),
            Resp::new(StatusCode::NOT_FOUND)
                .with_header("content-type", "text/plain; charset=utf-8")
                .with_body("mailroom-sim: no such endpoint\n"),
        ),
    }
}
