//! A simulator plus a test clock and sleep that move the simulator's clock instead
//! of waiting, so device code polling and token expiry run instantly and exactly.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use mailroom_core::{AccessToken, OAuthCredentials, RefreshToken};
use mailroom_oauth::{
    ApplicationBuilder, Authority, ClientSecret, ConfidentialClientApplication,
    PublicClientApplication, Resource, Tenant,
};
use mailroom_sim::{MailboxSpec, SimConfig, Simulator};

pub const ALICE: &str = "alice@contoso.test";
pub const APP: &str = "11111111-2222-3333-4444-555555555555";
pub const CONF_APP: &str = "66666666-7777-8888-9999-000000000000";
pub const CONF_SECRET: &str = "conf-secret-value~42";

/// What the test sleep does with a requested wait.
pub enum Wait {
    /// Move both clocks forward by this much and return at once.
    Advance(Duration),
    /// Never return (the caller must cancel).
    Hang,
}

type Hook = Box<dyn FnMut(usize, Duration) -> Wait + Send>;

pub struct Harness {
    pub sim: Arc<Simulator>,
    now: Arc<Mutex<DateTime<Utc>>>,
    waits: Arc<Mutex<Vec<Duration>>>,
    hook: Arc<Mutex<Option<Hook>>>,
}

/// The default configuration: Alice's mailbox, a confidential client.
pub fn config() -> SimConfig {
    SimConfig::default()
        .mailboxes(vec![MailboxSpec::new(ALICE, 1)])
        .confidential_client(CONF_APP, CONF_SECRET)
}

/// Everything every test of this binary logged (at TRACE, all targets), for the
/// test that greps it for tokens.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process-wide log capture, installed by the first harness. (A global
/// subscriber, not a thread-local one: tests run in parallel, and per-thread
/// subscribers miss events whose interest another thread cached first.)
pub fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("only this binary sets one");
        logs
    })
}

impl Harness {
    pub async fn start(config: SimConfig) -> Harness {
        logs();
        let sim = Simulator::start(config).await.expect("simulator starts");
        Harness {
            sim: Arc::new(sim),
            now: Arc::new(Mutex::new(Utc::now())),
            waits: Arc::new(Mutex::new(Vec::new())),
            hook: Arc::new(Mutex::new(None)),
        }
    }

    /// Decides what each wait does (by index, from 0); default: advance by the wait.
    pub fn on_wait(&self, hook: impl FnMut(usize, Duration) -> Wait + Send + 'static) {
        *self.hook.lock().unwrap() = Some(Box::new(hook));
    }

    /// The waits the code under test asked for, in order.
    pub fn waits(&self) -> Vec<Duration> {
        self.waits.lock().unwrap().clone()
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }

    /// Moves the test clock and the simulator's clock forward together.
    pub fn advance(&self, by: Duration) {
        advance(&self.sim, &self.now, by);
    }

    pub fn authority(&self, tenant: Tenant) -> Authority {
        Authority::new(&self.sim.base_url(), tenant).expect("loopback authority")
    }

    /// Points a builder at the simulator with the test clock and sleep.
    pub fn wire<App>(
        &self,
        builder: ApplicationBuilder<App>,
        tenant: Tenant,
    ) -> ApplicationBuilder<App> {
        let now = self.now.clone();
        let (sim, now2, waits, hook) = (
            self.sim.clone(),
            self.now.clone(),
            self.waits.clone(),
            self.hook.clone(),
        );
        builder
            .authority(self.authority(tenant))
            .clock(move || *now.lock().unwrap())
            .sleep(move |wait: Duration| -> BoxFuture<'static, ()> {
                let index = {
                    let mut w = waits.lock().unwrap();
                    w.push(wait);
                    w.len() - 1
                };
                let action = match hook.lock().unwrap().as_mut() {
                    Some(h) => h(index, wait),
                    None => Wait::Advance(wait),
                };
                match action {
                    Wait::Advance(by) => {
                        advance(&sim, &now2, by);
                        futures::future::ready(()).boxed()
                    }
                    Wait::Hang => futures::future::pending().boxed(),
                }
            })
    }

    pub fn public_app(&self, client_id: &str, tenant: Tenant) -> PublicClientApplication {
        self.wire(PublicClientApplication::builder(client_id), tenant)
            .build()
            .expect("public app")
    }

    pub fn confidential_app(
        &self,
        client_id: &str,
        secret: &str,
        tenant: Tenant,
    ) -> ConfidentialClientApplication {
        self.wire(
            ConfidentialClientApplication::builder(client_id, ClientSecret::new(secret)),
            tenant,
        )
        .build()
        .expect("confidential app")
    }

    /// Credentials as the Python system stored them, for tokens the simulator issues
    /// directly (no device flow).
    pub fn issued_credentials(
        &self,
        user: &str,
        client_id: &str,
        resource: Resource,
    ) -> OAuthCredentials {
        let t = self
            .sim
            .issue_tokens(user, client_id, resource.default_scopes())
            .expect("simulator issues tokens");
        let mut creds = OAuthCredentials::new(client_id);
        creds.token = Some(AccessToken::new(t.access_token.clone()));
        creds.refresh_token = Some(RefreshToken::new(
            t.refresh_token
                .clone()
                .expect("offline_access gives a refresh token"),
        ));
        creds.scopes = resource.scopes();
        creds.expiry = Some(self.now() + TimeDelta::seconds(t.expires_in as i64));
        creds
    }

    /// `GET /v1.0/me` with a bearer token: the HTTP status.
    pub async fn graph_me(&self, token: &AccessToken) -> u16 {
        http()
            .get(format!("{}/me", self.sim.graph_url()))
            .bearer_auth(token.secret())
            .send()
            .await
            .expect("graph answers")
            .status()
            .as_u16()
    }

    /// The simulator's RFC 7662 introspection (Outlook audience only): is the token active?
    pub async fn outlook_accepts(&self, token: &AccessToken) -> bool {
        let v: serde_json::Value = http()
            .post(self.sim.introspection_url())
            .form(&[("token", token.secret())])
            .send()
            .await
            .expect("introspection answers")
            .json()
            .await
            .expect("introspection json");
        v["active"] == true
    }
}

fn advance(sim: &Simulator, now: &Mutex<DateTime<Utc>>, by: Duration) {
    sim.advance_clock(by);
    *now.lock().unwrap() += TimeDelta::from_std(by).unwrap();
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A plain client; our reqwest has no rustls crypto provider of its own, so this
/// makes ring the process default first.
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
