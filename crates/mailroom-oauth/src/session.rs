//! One account's tokens for one resource: cached, refreshed once for everyone.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use mailroom_core::{AccessToken, OAuthCredentials};

use crate::app::{ClientApplication, Refresher, Result};
use crate::error::{Error, ErrorKind};
use crate::resource::Resource;

type SharedRefresh = Shared<BoxFuture<'static, Result<AccessToken>>>;

/// The error a [`TokenPersister`] reports.
pub type PersistError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What [`TokenPersister::persist`] returns.
pub type PersistFuture =
    Pin<Box<dyn Future<Output = std::result::Result<(), PersistError>> + Send>>;

/// Stores a [`TokenSession`]'s credentials the moment a refresh changed them.
///
/// With a refresh token that rotates, the old refresh token is spent as soon as the
/// identity platform answered: a process that dies before the new one is stored has
/// lost the account. A session with a persister awaits
/// [`persist`](Self::persist) right after the token response is parsed and before the
/// new access token is handed to anyone; if it fails, the caller gets an error (the
/// request does not go out with an unpersisted rotation), the new credentials stay in
/// memory, and the next call tries to store them again before doing anything else.
///
/// Set it with [`TokenSession::set_persister`]. Without one, call
/// [`TokenSession::take_refreshed`] after each use and store what it returns.
pub trait TokenPersister: Send + Sync {
    /// Stores `credentials` (the complete set: the rotated refresh token, the new
    /// access token and expiry, unknown fields kept) durably.
    fn persist(&self, credentials: OAuthCredentials) -> PersistFuture;
}

/// A persister's error as an error source.
struct PersistFailed(PersistError);

impl fmt::Debug for PersistFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for PersistFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for PersistFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// The access token of one account for one [`Resource`], kept fresh.
///
/// This is what the Graph and IMAP connectors hold (MSAL's *acquire token silent*):
///
/// - [`access_token`](Self::access_token) returns the stored token while it is valid
///   (it counts as expired 5 minutes before its expiry) **and** was issued for this
///   session's resource (judged by the stored `scopes`); otherwise it redeems the
///   refresh token once for the resource's scopes.
/// - Refreshes are single-flight: however many tasks ask at once, one token request
///   is made and all of them get its result (or its error).
/// - [`refresh_after_unauthorized`](Self::refresh_after_unauthorized) handles an
///   HTTP 401: it refreshes unless another caller already replaced the rejected token.
/// - With a [`TokenPersister`] ([`set_persister`](Self::set_persister)), the new
///   credential set is stored right after each refresh, before the new access token
///   is returned; a failure to store it is an error of the call (kind
///   [`ErrorKind::Transient`]) and the next call stores it first.
/// - Without one, [`take_refreshed`](Self::take_refreshed) gives the new credential
///   set to persist after a refresh: the rotated refresh token replaces the old one,
///   and unknown `extra` fields are kept.
/// - After a refresh failed with [`ErrorKind::ReauthRequired`], the session
///   remembers it and returns that error again without another token request.
///
/// `Send + Sync`, cheap to clone (clones share the same state).
#[derive(Clone)]
pub struct TokenSession {
    inner: Arc<Inner>,
}

struct Inner {
    refresher: Arc<dyn Refresher>,
    resource: Resource,
    state: Mutex<State>,
}

struct State {
    credentials: OAuthCredentials,
    /// The refresh in progress, shared by every caller waiting for it.
    in_flight: Option<SharedRefresh>,
    /// Set by a refresh, cleared by `take_refreshed` or a successful persist.
    refreshed: bool,
    /// Stores the credentials right after a refresh.
    persister: Option<Arc<dyn TokenPersister>>,
    /// A refresh changed the credentials and the persister has not stored them yet.
    unpersisted: bool,
    /// A terminal error (re-auth required) for the current refresh token.
    dead: Option<Error>,
}

impl fmt::Debug for TokenSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.lock();
        f.debug_struct("TokenSession")
            .field("resource", &self.inner.resource)
            .field("client_id", &st.credentials.client_id)
            .field("tenant_id", &st.credentials.tenant_id)
            .field("expiry", &st.credentials.expiry)
            .field("refreshing", &st.in_flight.is_some())
            .field("refreshed", &st.refreshed)
            .field("persister", &st.persister.is_some())
            .field("unpersisted", &st.unpersisted)
            .field("reauth_required", &st.dead.is_some())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TokenSession {
    /// A session for `credentials` (one account) and `resource`, refreshing through `app`.
    ///
    /// `app` should be the application the credentials belong to
    /// ([`ClientApplication::from_credentials`]).
    pub fn new(
        app: impl Into<ClientApplication>,
        credentials: OAuthCredentials,
        resource: Resource,
    ) -> TokenSession {
        TokenSession::with_refresher(Arc::new(app.into()), credentials, resource)
    }

    pub(crate) fn with_refresher(
        refresher: Arc<dyn Refresher>,
        credentials: OAuthCredentials,
        resource: Resource,
    ) -> TokenSession {
        TokenSession {
            inner: Arc::new(Inner {
                refresher,
                resource,
                state: Mutex::new(State {
                    credentials,
                    in_flight: None,
                    refreshed: false,
                    persister: None,
                    unpersisted: false,
                    dead: None,
                }),
            }),
        }
    }

    /// Stores the credentials through `persister` the moment a refresh changed them,
    /// before the new access token is used (see [`TokenPersister`]). Applies to every
    /// clone of this session; replaces an earlier persister.
    pub fn set_persister(&self, persister: Arc<dyn TokenPersister>) {
        self.inner.lock().persister = Some(persister);
    }

    /// The resource this session's tokens are for.
    pub fn resource(&self) -> Resource {
        self.inner.resource
    }

    /// A valid access token for this session's resource: the stored one, or a new
    /// one from a (single-flight) refresh.
    #[doc(alias = "acquire_token_silent")]
    pub async fn access_token(&self) -> Result<AccessToken> {
        let refresh = {
            let mut st = self.inner.lock();
            if !st.unpersisted
                && let Some(token) = self.usable_token(&st)
            {
                return Ok(token);
            }
            self.join_or_start(&mut st)?
        };
        refresh.await
    }

    /// A new access token after the server refused `rejected` (HTTP 401): refreshes,
    /// unless another caller already replaced `rejected` with a valid token, which is
    /// then returned. So 16 parallel 401s for the same token cause one refresh.
    pub async fn refresh_after_unauthorized(&self, rejected: &AccessToken) -> Result<AccessToken> {
        let refresh = {
            let mut st = self.inner.lock();
            let replaced = st
                .credentials
                .token
                .as_ref()
                .is_some_and(|t| t.secret() != rejected.secret());
            if replaced
                && !st.unpersisted
                && let Some(token) = self.usable_token(&st)
            {
                return Ok(token);
            }
            self.join_or_start(&mut st)?
        };
        refresh.await
    }

    /// The new credential set after a refresh (once per refresh; `None` if nothing
    /// changed since the last call, or the [`TokenPersister`] stored it). Persist it:
    /// the old refresh token is spent.
    pub fn take_refreshed(&self) -> Option<OAuthCredentials> {
        let mut st = self.inner.lock();
        std::mem::take(&mut st.refreshed).then(|| st.credentials.clone())
    }

    /// The current credentials (with the latest tokens).
    pub fn credentials(&self) -> OAuthCredentials {
        self.inner.lock().credentials.clone()
    }

    /// The stored token, if valid now and for this resource.
    fn usable_token(&self, st: &State) -> Option<AccessToken> {
        let creds = &st.credentials;
        if Resource::of_scopes(&creds.scopes) != Some(self.inner.resource) {
            return None;
        }
        creds.valid_token(self.inner.refresher.now()).cloned()
    }

    /// The refresh (or the storing of its result) in flight, or a new one. Called
    /// with the state locked, so two callers can never both start one.
    fn join_or_start(&self, st: &mut State) -> Result<SharedRefresh> {
        if let Some(refresh) = &st.in_flight {
            return Ok(refresh.clone());
        }
        if let Some(err) = &st.dead {
            return Err(err.clone());
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        if st.unpersisted
            && let (Some(persister), Some(token)) =
                (st.persister.clone(), st.credentials.token.clone())
        {
            // An earlier refresh could not be stored: store it before anything else.
            let work = persist(weak, persister, st.credentials.clone(), token)
                .boxed()
                .shared();
            st.in_flight = Some(work.clone());
            return Ok(work);
        }
        let Some(refresh_token) = st.credentials.refresh_token.clone() else {
            return Err(Error::new(
                ErrorKind::ReauthRequired,
                format!(
                    "cannot refresh token for client {}: no refresh token is stored; sign in again",
                    st.credentials.client_id
                ),
            ));
        };
        let resource = self.inner.resource;
        let scopes = if Resource::of_scopes(&st.credentials.scopes) == Some(resource) {
            // The scopes the user consented to; asking for more could need consent.
            st.credentials.scopes.clone()
        } else {
            resource.scopes()
        };
        let request = self.inner.refresher.refresh(refresh_token, scopes);
        let refresh = async move {
            let outcome = request.await;
            count_refresh(&outcome);
            let Some(inner) = weak.upgrade() else {
                return outcome.map(|r| r.access_token().clone());
            };
            let (persister, credentials, token) = {
                let mut st = inner.lock();
                match outcome {
                    Ok(result) => {
                        let token = result.access_token().clone();
                        result.apply_to(&mut st.credentials);
                        st.refreshed = true;
                        let Some(persister) = st.persister.clone() else {
                            st.in_flight = None;
                            return Ok(token);
                        };
                        st.unpersisted = true;
                        (persister, st.credentials.clone(), token)
                    }
                    Err(err) => {
                        st.in_flight = None;
                        if err.is_reauth_required() {
                            st.dead = Some(err.clone());
                        }
                        return Err(err);
                    }
                }
            };
            drop(inner);
            persist(weak, persister, credentials, token).await
        }
        .boxed()
        .shared();
        st.in_flight = Some(refresh.clone());
        Ok(refresh)
    }
}

/// `mailroom_token_refreshes_total{result}` through the [`metrics`] facade (a no-op
/// without a recorder): `ok`, or the error kind (`reauth_required`, `transient`,
/// `throttled`, …).
fn count_refresh<T>(outcome: &Result<T>) {
    let result = match outcome {
        Ok(_) => "ok",
        Err(e) => match e.kind() {
            ErrorKind::ReauthRequired => "reauth_required",
            ErrorKind::Transient => "transient",
            ErrorKind::Throttled => "throttled",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::Cancelled => "cancelled",
            _ => "error",
        },
    };
    metrics::counter!("mailroom_token_refreshes_total", "result" => result).increment(1);
}

/// Stores refreshed credentials through the persister; hands out `token` only once
/// they are stored. Ends the session's work in flight.
async fn persist(
    weak: Weak<Inner>,
    persister: Arc<dyn TokenPersister>,
    credentials: OAuthCredentials,
    token: AccessToken,
) -> Result<AccessToken> {
    let client_id = credentials.client_id.clone();
    let stored = persister.persist(credentials).await;
    let failed = |e: PersistError| {
        Error::new(
            ErrorKind::Transient,
            format!(
                "cannot store the refreshed credentials of client {client_id}; they are kept in memory and stored before the next request"
            ),
        )
        .with_source(PersistFailed(e))
    };
    let Some(inner) = weak.upgrade() else {
        return stored.map(|()| token).map_err(failed);
    };
    let mut st = inner.lock();
    st.in_flight = None;
    match stored {
        Ok(()) => {
            st.unpersisted = false;
            st.refreshed = false;
            Ok(token)
        }
        Err(e) => Err(failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{AuthenticationResult, test_result};
    use crate::error::Operation;
    use chrono::{DateTime, TimeDelta, Utc};
    use mailroom_core::RefreshToken;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// A token service in memory: counts refreshes, rotates tokens, can fail.
    #[derive(Debug)]
    struct Fake {
        now: Mutex<DateTime<Utc>>,
        calls: AtomicU32,
        fail: Mutex<Option<Error>>,
        seen: Mutex<Vec<(String, Vec<String>)>>,
    }

    impl Fake {
        fn new() -> Arc<Fake> {
            Arc::new(Fake {
                now: Mutex::new(t0()),
                calls: AtomicU32::new(0),
                fail: Mutex::new(None),
                seen: Mutex::new(Vec::new()),
            })
        }
        fn advance(&self, by: TimeDelta) {
            *self.now.lock().unwrap() += by;
        }
        fn calls(&self) -> u32 {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl Refresher for Fake {
        fn now(&self) -> DateTime<Utc> {
            *self.now.lock().unwrap()
        }
        fn refresh(
            &self,
            refresh_token: RefreshToken,
            scopes: Vec<String>,
        ) -> BoxFuture<'static, Result<AuthenticationResult>> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            self.seen
                .lock()
                .unwrap()
                .push((refresh_token.secret().to_owned(), scopes.clone()));
            let fail = self.fail.lock().unwrap().clone();
            let expires = self.now() + TimeDelta::hours(1);
            async move {
                // Let every concurrent caller pile up behind this one.
                tokio::time::sleep(Duration::from_millis(50)).await;
                if let Some(err) = fail {
                    return Err(err);
                }
                let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
                Ok(test_result(
                    &format!("at-{n}"),
                    Some(&format!("rt-{n}")),
                    expires,
                    &scopes,
                ))
            }
            .boxed()
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-01-20T11:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn graph_creds(expiry: DateTime<Utc>) -> OAuthCredentials {
        let mut c = OAuthCredentials::new("app");
        c.token = Some(AccessToken::new("at-0"));
        c.refresh_token = Some(RefreshToken::new("rt-0"));
        c.scopes = vec![
            "https://graph.microsoft.com/Mail.ReadWrite".into(),
            "offline_access".into(),
        ];
        c.expiry = Some(expiry);
        c.extra.insert("kept".into(), serde_json::json!(true));
        c
    }

    fn reauth() -> Error {
        Error::from_answer(
            "cannot refresh token for client app",
            Operation::Refresh,
            400,
            br#"{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity.","error_codes":[700082]}"#,
            None,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn cached_until_five_minutes_before_expiry() {
        let fake = Fake::new();
        let s = TokenSession::with_refresher(
            fake.clone(),
            graph_creds(t0() + TimeDelta::minutes(10)),
            Resource::Graph,
        );
        assert_eq!(s.access_token().await.unwrap().secret(), "at-0");
        assert_eq!(fake.calls(), 0);
        assert!(s.take_refreshed().is_none());
        fake.advance(TimeDelta::minutes(5) - TimeDelta::seconds(1));
        assert_eq!(s.access_token().await.unwrap().secret(), "at-0");
        fake.advance(TimeDelta::seconds(1));
        assert_eq!(s.access_token().await.unwrap().secret(), "at-1");
        assert_eq!(fake.calls(), 1);
        // The stored scopes (what the user consented to) are asked again.
        assert_eq!(
            fake.seen.lock().unwrap()[0],
            (
                "rt-0".to_owned(),
                vec![
                    "https://graph.microsoft.com/Mail.ReadWrite".to_owned(),
                    "offline_access".to_owned()
                ]
            )
        );
        let saved = s
            .take_refreshed()
            .expect("refreshed credentials to persist");
        assert_eq!(saved.refresh_token.unwrap().secret(), "rt-1");
        assert_eq!(saved.extra["kept"], true);
        assert!(s.take_refreshed().is_none(), "handed out once");
        assert_eq!(s.access_token().await.unwrap().secret(), "at-1");
        assert_eq!(fake.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn single_flight_under_concurrency() {
        let fake = Fake::new();
        let s = TokenSession::with_refresher(fake.clone(), graph_creds(t0()), Resource::Graph);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.access_token().await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().secret(), "at-1");
        }
        assert_eq!(fake.calls(), 1);
        assert_eq!(s.credentials().refresh_token.unwrap().secret(), "rt-1");
    }

    #[tokio::test(start_paused = true)]
    async fn unauthorized_refreshes_once_per_rejected_token() {
        let fake = Fake::new();
        let s = TokenSession::with_refresher(
            fake.clone(),
            graph_creds(t0() + TimeDelta::hours(1)),
            Resource::Graph,
        );
        let rejected = s.access_token().await.unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let s = s.clone();
                let rejected = rejected.clone();
                tokio::spawn(async move { s.refresh_after_unauthorized(&rejected).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().secret(), "at-1");
        }
        // Late callers with the old token get the new one without a refresh.
        assert_eq!(
            s.refresh_after_unauthorized(&rejected)
                .await
                .unwrap()
                .secret(),
            "at-1"
        );
        assert_eq!(fake.calls(), 1);
        // The new token being refused too refreshes again.
        let second = s.access_token().await.unwrap();
        assert_eq!(
            s.refresh_after_unauthorized(&second)
                .await
                .unwrap()
                .secret(),
            "at-2"
        );
        assert_eq!(fake.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn other_audience_is_never_reused() {
        let fake = Fake::new();
        // Valid Graph token, but the session is for IMAP.
        let s = TokenSession::with_refresher(
            fake.clone(),
            graph_creds(t0() + TimeDelta::hours(1)),
            Resource::OutlookImap,
        );
        assert_eq!(s.access_token().await.unwrap().secret(), "at-1");
        assert_eq!(
            fake.seen.lock().unwrap()[0].1,
            Resource::OutlookImap.scopes()
        );
        assert_eq!(
            Resource::of_scopes(&s.credentials().scopes),
            Some(Resource::OutlookImap)
        );
        // Now cached for IMAP.
        assert_eq!(s.access_token().await.unwrap().secret(), "at-1");
        assert_eq!(fake.calls(), 1);

        // Unknown audience (no scopes stored): refreshed with the resource's scopes.
        let mut creds = graph_creds(t0() + TimeDelta::hours(1));
        creds.scopes.clear();
        let s = TokenSession::with_refresher(fake.clone(), creds, Resource::Graph);
        assert_eq!(s.access_token().await.unwrap().secret(), "at-2");
        assert_eq!(fake.seen.lock().unwrap()[1].1, Resource::Graph.scopes());
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_shared_and_reauth_is_remembered() {
        let fake = Fake::new();
        *fake.fail.lock().unwrap() = Some(reauth());
        let s = TokenSession::with_refresher(fake.clone(), graph_creds(t0()), Resource::Graph);
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.access_token().await })
            })
            .collect();
        for t in tasks {
            let err = t.await.unwrap().unwrap_err();
            assert!(err.is_reauth_required());
            assert_eq!(err.aadsts_code(), Some("AADSTS700082"));
        }
        assert_eq!(fake.calls(), 1);
        assert!(s.access_token().await.unwrap_err().is_reauth_required());
        assert_eq!(fake.calls(), 1, "no retry loop after invalid_grant");
        assert!(s.take_refreshed().is_none());

        // A transient failure is not remembered: the next call tries again.
        let fake = Fake::new();
        *fake.fail.lock().unwrap() = Some(Error::from_answer(
            "cannot refresh token for client app",
            Operation::Refresh,
            503,
            b"",
            None,
        ));
        let s = TokenSession::with_refresher(fake.clone(), graph_creds(t0()), Resource::Graph);
        assert!(s.access_token().await.unwrap_err().is_transient());
        *fake.fail.lock().unwrap() = None;
        assert_eq!(s.access_token().await.unwrap().secret(), "at-2");
        assert_eq!(fake.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn no_refresh_token_means_reauth() {
        let fake = Fake::new();
        let mut creds = graph_creds(t0());
        creds.refresh_token = None;
        let s = TokenSession::with_refresher(fake.clone(), creds, Resource::Graph);
        let err = s.access_token().await.unwrap_err();
        assert!(err.is_reauth_required(), "{err}");
        assert_eq!(fake.calls(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_caller_does_not_cancel_the_refresh() {
        let fake = Fake::new();
        let s = TokenSession::with_refresher(fake.clone(), graph_creds(t0()), Resource::Graph);
        // The first caller gives up before the refresh finishes.
        let gave_up = tokio::time::timeout(Duration::from_millis(10), s.access_token()).await;
        assert!(gave_up.is_err());
        // The next caller joins the same refresh.
        assert_eq!(s.access_token().await.unwrap().secret(), "at-1");
        assert_eq!(fake.calls(), 1);
    }

    /// Records what it stored, and when (which refresh count the fake had reached);
    /// fails while `fail` is set.
    struct Recorder {
        fake: Arc<Fake>,
        stored: Mutex<Vec<(String, u32)>>,
        fail: std::sync::atomic::AtomicBool,
    }

    impl TokenPersister for Recorder {
        fn persist(&self, credentials: OAuthCredentials) -> PersistFuture {
            let rt = credentials.refresh_token.unwrap().secret().to_owned();
            let fail = self.fail.load(Ordering::SeqCst);
            if !fail {
                self.stored.lock().unwrap().push((rt, self.fake.calls()));
            }
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                if fail {
                    return Err("the database is gone".into());
                }
                Ok(())
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_persister_stores_the_rotation_before_the_token_is_handed_out() {
        let fake = Fake::new();
        let s = TokenSession::with_refresher(fake.clone(), graph_creds(t0()), Resource::Graph);
        let rec = Arc::new(Recorder {
            fake: fake.clone(),
            stored: Mutex::new(Vec::new()),
            fail: false.into(),
        });
        s.set_persister(rec.clone());
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.access_token().await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().secret(), "at-1");
        }
        assert_eq!(*rec.stored.lock().unwrap(), [("rt-1".to_owned(), 1)]);
        assert!(s.take_refreshed().is_none(), "already stored");

        // Storing fails: no token is handed out, the rotation stays in memory.
        rec.fail.store(true, Ordering::SeqCst);
        fake.advance(TimeDelta::hours(2));
        let err = s.access_token().await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(
            err.to_string()
                .contains("cannot store the refreshed credentials of client app"),
            "{err}"
        );
        assert_eq!(fake.calls(), 2);
        assert_eq!(s.credentials().refresh_token.unwrap().secret(), "rt-2");
        // The next call stores it first, without another refresh.
        rec.fail.store(false, Ordering::SeqCst);
        assert_eq!(s.access_token().await.unwrap().secret(), "at-2");
        assert_eq!(fake.calls(), 2);
        assert_eq!(
            rec.stored.lock().unwrap().last().unwrap(),
            &("rt-2".to_owned(), 2)
        );
        assert_eq!(s.access_token().await.unwrap().secret(), "at-2");
        assert_eq!(rec.stored.lock().unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_store_blocks_a_401_refresh_too() {
        let fake = Fake::new();
        let s = TokenSession::with_refresher(fake.clone(), graph_creds(t0()), Resource::Graph);
        let rec = Arc::new(Recorder {
            fake: fake.clone(),
            stored: Mutex::new(Vec::new()),
            fail: true.into(),
        });
        s.set_persister(rec.clone());
        assert!(s.access_token().await.is_err());
        let rejected = AccessToken::new("at-0");
        assert!(s.refresh_after_unauthorized(&rejected).await.is_err());
        assert_eq!(
            fake.calls(),
            1,
            "no second rotation on top of an unstored one"
        );
        // Without a persister's success the library fallback still hands it out.
        assert_eq!(
            s.take_refreshed().unwrap().refresh_token.unwrap().secret(),
            "rt-1"
        );
    }

    #[test]
    fn session_is_send_sync_and_debug_is_redacted() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<TokenSession>();
        let s = TokenSession::with_refresher(Fake::new(), graph_creds(t0()), Resource::Graph);
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("at-0") && !debug.contains("rt-0"),
            "{debug}"
        );
    }
}
