//! HTTP around the pure modules: one shared `reqwest::Client`, a per-mailbox gate
//! (at most N requests in flight, and a shared `Retry-After` deadline), bearer
//! tokens from the [`TokenSession`] with one refresh after a 401, retries with
//! back-off through the injected sleep.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use mailroom_core::{ConnectorError, ErrorKind, StateSink};
use mailroom_oauth::{Sleep, TokenSession};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use url::Url;

use crate::config::{Limits, RetryPolicy};
use crate::telemetry;
use crate::wire::error::GraphError;
use crate::wire::retry::{backoff, parse_retry_after};

/// The per-mailbox gate: the permits and the shared "not before" deadline.
#[derive(Debug)]
pub(crate) struct MailboxGate {
    permits: Arc<Semaphore>,
    size: u32,
    not_before: Mutex<Option<Instant>>,
}

type GateKey = (String, String);

/// Gates of the process, by (graph url, mailbox), so that two connectors of one
/// mailbox share the limit.
fn registry() -> &'static Mutex<HashMap<GateKey, Weak<MailboxGate>>> {
    static GATES: OnceLock<Mutex<HashMap<GateKey, Weak<MailboxGate>>>> = OnceLock::new();
    GATES.get_or_init(Default::default)
}

impl MailboxGate {
    pub(crate) fn new(size: u32) -> Arc<MailboxGate> {
        let size = size.max(1);
        Arc::new(MailboxGate {
            permits: Arc::new(Semaphore::new(size as usize)),
            size,
            not_before: Mutex::new(None),
        })
    }

    /// The gate of `mailbox` at `graph_url`, shared with every live connector of it
    /// in this process (the first one's size wins).
    pub(crate) fn shared(graph_url: &str, mailbox: &str, size: u32) -> Arc<MailboxGate> {
        let mut map = registry().lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, g| g.strong_count() > 0);
        let key = (graph_url.to_owned(), mailbox.trim().to_ascii_lowercase());
        if let Some(g) = map.get(&key).and_then(Weak::upgrade) {
            return g;
        }
        let g = MailboxGate::new(size);
        map.insert(key, Arc::downgrade(&g));
        g
    }

    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    fn deadline(&self) -> Option<Instant> {
        *self
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Nobody may send before `now + wait` (the longest deadline wins).
    pub(crate) fn block_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut nb = self
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *nb = Some(nb.map_or(until, |old| old.max(until)));
    }

    /// Waits out the deadline, if any, once; then clears it unless a later one
    /// replaced it (so an injected sleep that does not move tokio's clock still
    /// lets requests through).
    async fn wait(&self, sleep: &dyn Sleep) {
        let Some(deadline) = self.deadline() else {
            return;
        };
        let now = Instant::now();
        if deadline > now {
            sleep.sleep(deadline - now).await;
        }
        let mut nb = self
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *nb == Some(deadline) {
            *nb = None;
        }
    }

    /// `n` permits (1 ≤ n ≤ size), taken only when no `Retry-After` is pending.
    pub(crate) async fn acquire(&self, n: u32, sleep: &dyn Sleep) -> OwnedSemaphorePermit {
        let n = n.clamp(1, self.size);
        loop {
            self.wait(sleep).await;
            let permit = self
                .permits
                .clone()
                .acquire_many_owned(n)
                .await
                .expect("the semaphore is never closed");
            if self.deadline().is_none() {
                return permit;
            }
            // A Retry-After arrived while we queued: wait it out without the permits.
        }
    }
}

/// One HTTP request to Graph, replayable for retries.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: Method,
    pub url: Url,
    pub body: Option<Bytes>,
    pub prefer: Vec<String>,
    /// Mailbox permits held while it runs (a `$batch` holds one per parallel item).
    pub permits: u32,
}

impl Call {
    pub(crate) fn get(url: Url, prefer: Vec<String>) -> Call {
        Call {
            method: Method::GET,
            url,
            body: None,
            prefer,
            permits: 1,
        }
    }

    pub(crate) fn post(url: Url, body: Option<Bytes>, prefer: Vec<String>) -> Call {
        Call {
            method: Method::POST,
            url,
            body,
            prefer,
            permits: 1,
        }
    }

    fn idempotent(&self) -> bool {
        matches!(self.method, Method::GET | Method::HEAD | Method::DELETE)
    }
}

/// A successful answer whose body has not been read: it keeps its mailbox permit
/// until dropped (streamed downloads).
pub(crate) struct Opened {
    pub response: reqwest::Response,
    pub permit: OwnedSemaphorePermit,
}

enum Got {
    Bytes(Bytes),
    Opened(Opened),
}

/// The HTTP side of a connector.
pub(crate) struct Transport {
    pub http: reqwest::Client,
    pub base: Url,
    pub session: TokenSession,
    pub gate: Arc<MailboxGate>,
    pub retry: RetryPolicy,
    pub sleep: Arc<dyn Sleep>,
    pub limits: Limits,
    hasher: RandomState,
    /// Told about every `Retry-After` (set by `Connector::set_state_sink`).
    sink: Mutex<Option<Arc<dyn StateSink>>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("base", &self.base.as_str())
            .field("session", &self.session)
            .field("in_flight_limit", &self.gate.size())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub(crate) fn new(
        http: reqwest::Client,
        base: Url,
        session: TokenSession,
        gate: Arc<MailboxGate>,
        retry: RetryPolicy,
        sleep: Arc<dyn Sleep>,
        limits: Limits,
    ) -> Transport {
        Transport {
            http,
            base,
            session,
            gate,
            retry,
            sleep,
            limits,
            hasher: RandomState::new(),
            sink: Mutex::new(None),
        }
    }

    pub(crate) fn set_sink(&self, sink: Arc<dyn StateSink>) {
        *self.sink.lock().unwrap_or_else(PoisonError::into_inner) = Some(sink);
    }

    /// The server said `Retry-After: wait`: holds every request of the mailbox in this
    /// process, and tells the sink (so the next process holds them too) before anyone
    /// waits.
    pub(crate) async fn throttle(&self, wait: Duration) {
        self.gate.block_for(wait);
        let sink = self
            .sink
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(sink) = sink {
            let until = chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            sink.throttled(until).await;
        }
    }

    /// `{base}{path}?{query}`; `path` starts with `/` and is already encoded.
    pub(crate) fn url(&self, path: &str, query: &str) -> Result<Url, ConnectorError> {
        let mut s = String::with_capacity(self.base.as_str().len() + path.len() + query.len() + 1);
        s.push_str(self.base.as_str());
        s.push_str(path);
        if !query.is_empty() {
            s.push('?');
            s.push_str(query);
        }
        let url = Url::parse(&s).map_err(|e| {
            ConnectorError::new(
                ErrorKind::InvalidInput,
                format!("cannot build a graph url: {e}"),
            )
        })?;
        // The URL library resolves dot-segments: a path it changed is not the one
        // asked for (an id `..` would turn `/me/messages/../move` into `/me/move`).
        let base_path = self.base.path().trim_end_matches('/');
        if url.path().strip_prefix(base_path) != Some(path) {
            return Err(ConnectorError::new(
                ErrorKind::InvalidInput,
                format!("cannot build a graph url: the path {path:?} is not kept as it is"),
            ));
        }
        Ok(url)
    }

    /// A link from Graph or from storage (`@odata.nextLink`, a sync cursor), accepted
    /// only under this connector's Graph root: the bearer token never goes elsewhere.
    pub(crate) fn checked_link(&self, link: &str) -> Result<Url, ConnectorError> {
        let refuse = |why: &str| {
            ConnectorError::new(
                ErrorKind::InvalidInput,
                format!(
                    "refusing to follow a link {why}: it is not under {}",
                    self.base
                ),
            )
        };
        let url = Url::parse(link).map_err(|_| refuse("that does not parse"))?;
        let same_origin = url.scheme() == self.base.scheme()
            && url.host() == self.base.host()
            && url.port_or_known_default() == self.base.port_or_known_default();
        let base_path = self.base.path().trim_end_matches('/');
        let under = url.path().starts_with(&format!("{base_path}/"));
        if !same_origin || !under || !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("to another place"));
        }
        Ok(url)
    }

    /// Runs `call` and reads the whole body.
    pub(crate) async fn bytes(&self, call: &Call, doing: &str) -> Result<Bytes, ConnectorError> {
        match self.run(call, doing, false).await? {
            Got::Bytes(b) => Ok(b),
            Got::Opened(_) => unreachable!("not streaming"),
        }
    }

    /// Runs `call` and returns the answer before its body is read (for streams).
    pub(crate) async fn open(&self, call: &Call, doing: &str) -> Result<Opened, ConnectorError> {
        match self.run(call, doing, true).await? {
            Got::Opened(o) => Ok(o),
            Got::Bytes(_) => unreachable!("streaming"),
        }
    }

    fn jitter(&self) -> f64 {
        let n = self.hasher.hash_one(Instant::now());
        (n >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        backoff(
            attempt,
            self.retry.base_backoff,
            self.retry.max_backoff,
            self.jitter(),
        )
    }

    /// Waits `wait` unless that passes `deadline`.
    async fn sleep_before(&self, wait: Duration, deadline: Instant) -> bool {
        if Instant::now() + wait >= deadline {
            return false;
        }
        self.sleep.sleep(wait).await;
        true
    }

    /// A try that ran out of time: its own timeout, or the request's deadline.
    fn timed_out(&self, doing: &str, deadline: bool) -> ConnectorError {
        if deadline {
            return self.past_deadline(doing, None);
        }
        ConnectorError::new(
            ErrorKind::Transient,
            format!(
                "{doing}: no complete answer within the request timeout of {} s",
                self.limits.request_timeout.as_secs_f64()
            ),
        )
    }

    fn past_deadline(&self, doing: &str, last: Option<&str>) -> ConnectorError {
        let secs = self.limits.request_deadline.as_secs_f64();
        let msg = match last {
            Some(last) => format!(
                "{doing}: no answer within the request deadline of {secs} s (last try: {last})"
            ),
            None => format!("{doing}: no answer within the request deadline of {secs} s"),
        };
        ConnectorError::new(ErrorKind::Transient, msg)
    }

    async fn run(&self, call: &Call, doing: &str, streaming: bool) -> Result<Got, ConnectorError> {
        let max_attempts = self.retry.max_attempts.max(1);
        let deadline = Instant::now() + self.limits.request_deadline;
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let permit =
                tokio::time::timeout_at(deadline, self.gate.acquire(call.permits, &*self.sleep))
                    .await
                    .map_err(|_| self.past_deadline(doing, None))?;
            let token = self
                .session
                .access_token()
                .await
                .map_err(|e| ConnectorError::from(e).context(doing))?;
            let mut auth =
                HeaderValue::try_from(format!("Bearer {}", token.secret())).map_err(|_| {
                    ConnectorError::new(
                        ErrorKind::ReauthRequired,
                        format!("{doing}: the stored access token is not a valid header value"),
                    )
                })?;
            auth.set_sensitive(true);
            // A fresh id for every try, echoed by Graph and quoted in our errors and
            // logs: with the answer's `request-id`, what Microsoft support asks for.
            let client_request_id = uuid::Uuid::new_v4().to_string();
            let mut req = self
                .http
                .request(call.method.clone(), call.url.clone())
                .header(AUTHORIZATION, auth)
                .header("client-request-id", &client_request_id);
            if !call.prefer.is_empty() {
                req = req.header("Prefer", call.prefer.join(", "));
            }
            if let Some(body) = &call.body {
                req = req
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            // One try ends at its timeout or at the request's deadline.
            let try_ends = deadline.min(Instant::now() + self.limits.request_timeout);
            let sent_at = Instant::now();
            let sent = tokio::time::timeout_at(try_ends, req.send()).await;
            let response = match sent {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    drop(permit);
                    telemetry::request(call.url.path(), None);
                    // Retry only what surely did not reach the server, or reads.
                    let retryable = e.is_connect() || call.idempotent();
                    let e = e.without_url();
                    if retryable && attempt < max_attempts {
                        let wait = self.backoff(attempt);
                        tracing::debug!(method = %call.method, path = call.url.path(), %client_request_id, attempt, ?wait, error = %e, "graph request failed, retrying");
                        if self.sleep_before(wait, deadline).await {
                            continue;
                        }
                        return Err(self.past_deadline(
                            doing,
                            Some(&format!("{e} (client-request-id {client_request_id})")),
                        ));
                    }
                    tracing::info!(method = %call.method, path = call.url.path(), %client_request_id, attempt, elapsed_ms = sent_at.elapsed().as_millis() as u64, error = %e, "graph request failed");
                    return Err(network_error(doing, e, &client_request_id));
                }
                Err(_) => {
                    drop(permit);
                    telemetry::request(call.url.path(), None);
                    if call.idempotent() && attempt < max_attempts {
                        let wait = self.backoff(attempt);
                        tracing::debug!(method = %call.method, path = call.url.path(), %client_request_id, attempt, ?wait, "graph request timed out, retrying");
                        if self.sleep_before(wait, deadline).await {
                            continue;
                        }
                    }
                    tracing::info!(method = %call.method, path = call.url.path(), %client_request_id, attempt, elapsed_ms = sent_at.elapsed().as_millis() as u64, "graph request timed out");
                    let err = self.timed_out(doing, try_ends >= deadline);
                    return Err(ConnectorError::new(
                        err.kind(),
                        format!("{} (client-request-id {client_request_id})", err.message()),
                    ));
                }
            };
            let status = response.status();
            telemetry::request(call.url.path(), Some(status.as_u16()));
            let request_id = header_text(&response, "request-id");
            tracing::debug!(method = %call.method, path = call.url.path(), status = status.as_u16(), %client_request_id, request_id = request_id.as_deref().unwrap_or(""), attempt, elapsed_ms = sent_at.elapsed().as_millis() as u64, "graph answered");
            if status.is_success() {
                if streaming {
                    return Ok(Got::Opened(Opened { response, permit }));
                }
                let limit = self.limits.max_body_size;
                let read =
                    tokio::time::timeout_at(try_ends, read_body_limited(response, limit)).await;
                drop(permit);
                match read {
                    Ok(Ok(b)) => return Ok(Got::Bytes(b)),
                    Ok(Err(BodyError::TooLarge)) => {
                        return Err(ConnectorError::new(
                            ErrorKind::Protocol,
                            format!(
                                "{doing}: the answer is larger than the limit of {} (GraphConfig::max_body_size)",
                                size_text(limit)
                            ),
                        ));
                    }
                    Ok(Err(BodyError::Network(e))) => {
                        let e = e.without_url();
                        if call.idempotent()
                            && attempt < max_attempts
                            && self.sleep_before(self.backoff(attempt), deadline).await
                        {
                            continue;
                        }
                        return Err(network_error(doing, e, &client_request_id));
                    }
                    Err(_) => {
                        if call.idempotent()
                            && attempt < max_attempts
                            && self.sleep_before(self.backoff(attempt), deadline).await
                        {
                            continue;
                        }
                        return Err(self.timed_out(doing, try_ends >= deadline));
                    }
                }
            }
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            if matches!(status.as_u16(), 429 | 503 | 504) {
                telemetry::throttled(status.as_u16(), retry_after);
            }
            if let Some(wait) = retry_after
                && matches!(status.as_u16(), 429 | 503 | 504)
            {
                // Everyone of this mailbox waits, not just this request; set before
                // the permit goes, so whoever takes it sees the deadline.
                self.throttle(wait).await;
            }
            // An error answer is only read for its message: its start is enough.
            let body =
                tokio::time::timeout_at(try_ends, read_body_prefix(response, MAX_ERROR_BODY))
                    .await
                    .unwrap_or_default();
            drop(permit);
            let graph = GraphError::parse(status.as_u16(), &body)
                .with_header_ids(request_id.as_deref(), Some(&client_request_id));
            tracing::info!(
                method = %call.method,
                path = call.url.path(),
                status = status.as_u16(),
                code = graph.code.as_deref().unwrap_or(""),
                request_id = graph.request_id.as_deref().unwrap_or(""),
                client_request_id = graph.client_request_id.as_deref().unwrap_or(""),
                attempt,
                elapsed_ms = sent_at.elapsed().as_millis() as u64,
                "graph answered with an error"
            );
            match status {
                StatusCode::UNAUTHORIZED if !refreshed => {
                    refreshed = true;
                    attempt -= 1;
                    tracing::debug!(
                        path = call.url.path(),
                        "graph refused the access token, refreshing it once"
                    );
                    self.session
                        .refresh_after_unauthorized(&token)
                        .await
                        .map_err(|e| ConnectorError::from(e).context(doing))?;
                }
                StatusCode::TOO_MANY_REQUESTS
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT => {
                    let too_long = retry_after
                        .is_some_and(|w| w > self.retry.max_wait || Instant::now() + w >= deadline);
                    if attempt >= max_attempts || too_long {
                        let mut err = graph.into_connector_error(doing);
                        if let Some(w) = retry_after {
                            err = err.with_retry_after(w);
                        }
                        return Err(err);
                    }
                    tracing::debug!(
                        path = call.url.path(),
                        status = status.as_u16(),
                        ?retry_after,
                        attempt,
                        "graph throttled, retrying"
                    );
                    if retry_after.is_none()
                        && !self.sleep_before(self.backoff(attempt), deadline).await
                    {
                        return Err(graph.into_connector_error(doing));
                    }
                }
                StatusCode::INTERNAL_SERVER_ERROR | StatusCode::BAD_GATEWAY
                    if call.idempotent() && attempt < max_attempts =>
                {
                    if !self.sleep_before(self.backoff(attempt), deadline).await {
                        return Err(graph.into_connector_error(doing));
                    }
                }
                _ => return Err(graph.into_connector_error(doing)),
            }
        }
    }
}

/// The pages of one run over server-given links (`@odata.nextLink`): each link is
/// followed once, at most `max` pages, until `deadline` (if any).
#[derive(Debug)]
pub(crate) struct Pages {
    seen: std::collections::HashSet<u64>,
    hasher: RandomState,
    pages: u32,
    max: u32,
    started: Instant,
    deadline: Option<Duration>,
    /// The link handed out last (a delta run resumes from it).
    pub last: Option<String>,
}

impl Pages {
    pub(crate) fn new(limits: &Limits, deadline: Option<Duration>) -> Pages {
        Pages {
            seen: Default::default(),
            hasher: RandomState::new(),
            pages: 1,
            max: limits.max_pages_per_run.max(1),
            started: Instant::now(),
            deadline,
            last: None,
        }
    }

    /// Counts `link`, the page this run starts from, as followed.
    pub(crate) fn starting_at(mut self, link: &str) -> Pages {
        self.seen.insert(self.hasher.hash_one(link));
        self
    }

    /// Accepts `link` as the next page to read, or says why the run must stop.
    pub(crate) fn follow(&mut self, link: &str, doing: &str) -> Result<(), ConnectorError> {
        if !self.seen.insert(self.hasher.hash_one(link)) {
            return Err(ConnectorError::new(
                ErrorKind::Protocol,
                format!(
                    "{doing}: graph sent a @odata.nextLink already followed (page {} of this run): refusing to loop",
                    self.pages + 1
                ),
            ));
        }
        if self.pages >= self.max {
            return Err(ConnectorError::new(
                ErrorKind::Protocol,
                format!(
                    "{doing}: more than {} pages in one run (GraphConfig::max_pages_per_run)",
                    self.max
                ),
            ));
        }
        if let Some(d) = self.deadline
            && self.started.elapsed() > d
        {
            return Err(ConnectorError::new(
                ErrorKind::Transient,
                format!(
                    "{doing}: the folder run passed its deadline of {} s after {} pages (GraphConfig::folder_run_deadline)",
                    d.as_secs_f64(),
                    self.pages
                ),
            ));
        }
        self.pages += 1;
        self.last = Some(link.to_owned());
        Ok(())
    }
}

/// What is read of an error answer: enough for Graph's `error.code` and message.
const MAX_ERROR_BODY: u64 = 64 * 1024;

pub(crate) enum BodyError {
    TooLarge,
    Network(reqwest::Error),
}

/// Reads a body chunk by chunk, failing as soon as it passes `limit` bytes (an
/// announced `Content-Length` over it fails before anything is read).
pub(crate) async fn read_body_limited(
    mut response: reqwest::Response,
    limit: u64,
) -> Result<Bytes, BodyError> {
    let announced = response.content_length();
    if announced.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    let capacity = announced.unwrap_or(0).min(limit).min(16 * 1024 * 1024);
    let mut buf = bytes::BytesMut::with_capacity(capacity as usize);
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Network)? {
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The first `limit` bytes of a body at most (what a network error left, if any).
async fn read_body_prefix(mut response: reqwest::Response, limit: u64) -> Bytes {
    let mut buf = bytes::BytesMut::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = (limit as usize).saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() as u64 >= limit {
            break;
        }
    }
    buf.freeze()
}

/// `128 MiB`, `64 KiB`, `100 bytes`.
pub(crate) fn size_text(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// `e` is already without its URL (which may carry a skip token).
fn network_error(doing: &str, e: reqwest::Error, client_request_id: &str) -> ConnectorError {
    ConnectorError::new(
        ErrorKind::Transient,
        format!("{doing}: {e} (client-request-id {client_request_id})"),
    )
    .with_source(e)
}

/// A header of the answer as text, if it is text.
fn header_text(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_oauth::TokioSleep;

    #[tokio::test(start_paused = true)]
    async fn the_gate_limits_and_waits_for_retry_after() {
        let gate = MailboxGate::new(4);
        let a = gate.acquire(3, &TokioSleep).await;
        assert_eq!(gate.permits.available_permits(), 1);
        let b = gate.acquire(9, &TokioSleep);
        tokio::pin!(b);
        assert!(
            futures::poll!(b.as_mut()).is_pending(),
            "clamped to 4, 1 free"
        );
        drop(a);
        let b = b.await;
        drop(b);
        gate.block_for(Duration::from_millis(1500));
        let start = Instant::now();
        let _c = gate.acquire(1, &TokioSleep).await;
        assert!(start.elapsed() >= Duration::from_millis(1500));
        assert_eq!(gate.deadline(), None);
    }

    #[test]
    fn shared_gates_per_mailbox() {
        let a = MailboxGate::shared("http://127.0.0.1:1/v1.0", "Alice@x.test", 4);
        let b = MailboxGate::shared("http://127.0.0.1:1/v1.0", "alice@x.test ", 2);
        let c = MailboxGate::shared("http://127.0.0.1:2/v1.0", "alice@x.test", 4);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(b.size(), 4);
    }
}
