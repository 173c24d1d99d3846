//! A simulator with Alice's mailbox, connectors pointed at it, log capture, and an
//! in-test model of a synced folder.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use mailroom_core::{AccessToken, Change, Message, OAuthCredentials, RefreshToken, SyncPage};
use mailroom_graph::{GraphConfig, GraphConnector, RetryPolicy};
use mailroom_oauth::Resource;
use mailroom_sim::{Faults, MailboxSpec, MessageInfo, SimConfig, Simulator};

pub const ALICE: &str = "alice@contoso.test";
pub const APP: &str = "11111111-2222-3333-4444-555555555555";

/// Everything every test of this binary logged (TRACE, all targets).
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

/// The process-wide log capture (a global subscriber: tests run on many threads).
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

/// Every token the tests saw issued, for the leak test.
pub fn issued_tokens() -> &'static Mutex<Vec<String>> {
    static TOKENS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    TOKENS.get_or_init(Default::default)
}

pub fn remember(creds: &OAuthCredentials) {
    let mut t = issued_tokens().lock().unwrap();
    if let Some(a) = &creds.token {
        t.push(a.secret().to_owned());
    }
    if let Some(r) = &creds.refresh_token {
        t.push(r.secret().to_owned());
    }
}

/// Alice's mailbox with `messages` generated messages spread over the folders.
pub fn config(messages: usize) -> SimConfig {
    SimConfig::default().mailboxes(vec![MailboxSpec::new(ALICE, messages)])
}

pub struct Harness {
    pub sim: Simulator,
}

impl Harness {
    pub async fn start(config: SimConfig) -> Harness {
        logs();
        Harness {
            sim: Simulator::start(config)
                .await
                .expect("the simulator starts"),
        }
    }

    pub fn set_faults(&self, faults: Faults) {
        self.sim.set_faults(faults);
    }

    /// Stored credentials for tokens the simulator issues directly.
    pub fn credentials(&self) -> OAuthCredentials {
        let t = self
            .sim
            .issue_tokens(ALICE, APP, Resource::Graph.default_scopes())
            .expect("tokens");
        let mut c = OAuthCredentials::new(APP);
        c.token = Some(AccessToken::new(t.access_token.clone()));
        c.refresh_token = Some(RefreshToken::new(
            t.refresh_token.clone().expect("offline_access"),
        ));
        c.scopes = Resource::Graph.scopes();
        c.expiry = Some(Utc::now() + TimeDelta::seconds(t.expires_in as i64));
        remember(&c);
        c
    }

    /// The default config pointed at the simulator.
    pub fn graph_config(&self) -> GraphConfig {
        GraphConfig::default().graph_url(self.sim.graph_url())
    }

    pub fn connector_with(&self, config: GraphConfig) -> GraphConnector {
        GraphConnector::from_credentials(ALICE, self.credentials(), &self.sim.base_url(), config)
            .expect("a connector")
    }

    pub fn connector(&self) -> GraphConnector {
        self.connector_with(self.graph_config())
    }

    pub fn mailbox(&self) -> mailroom_sim::Mailbox {
        self.sim.mailbox(ALICE).expect("alice's mailbox")
    }

    pub fn truth(&self, folder: &str) -> Vec<MessageInfo> {
        self.mailbox().folder_messages(folder).expect("folder")
    }
}

/// A retry policy for tests with injected faults: many quick tries.
pub fn patient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 12,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        ..RetryPolicy::default()
    }
}

/// What a store would hold for one folder, applying pages as `mailroom-store` does.
#[derive(Debug, Default)]
pub struct Model {
    pub messages: BTreeMap<String, Message>,
    since_reset: Option<HashSet<String>>,
    /// Upserts of one id within one reset enumeration beyond the first.
    pub duplicates: usize,
    pub pages: usize,
    pub resets: usize,
}

impl Model {
    pub fn apply(&mut self, page: &SyncPage) {
        self.pages += 1;
        if page.reset {
            self.resets += 1;
            self.since_reset = Some(HashSet::new());
        }
        for change in &page.changes {
            match change {
                Change::Upsert(m) => {
                    if let Some(seen) = &mut self.since_reset
                        && !seen.insert(m.remote_id.clone())
                    {
                        self.duplicates += 1;
                    }
                    self.messages.insert(m.remote_id.clone(), m.clone());
                }
                Change::Remove { remote_id } => {
                    self.messages.remove(remote_id);
                }
                Change::ReadState { remote_id, is_read } => {
                    if let Some(m) = self.messages.get_mut(remote_id) {
                        m.is_read = *is_read;
                    }
                }
            }
        }
        if page.complete
            && let Some(seen) = self.since_reset.take()
        {
            self.messages.retain(|id, _| seen.contains(id));
        }
    }

    /// The model in the ground truth's terms: (id, subject, read, folder, attachments,
    /// sender address).
    pub fn summary(&self) -> Vec<(String, String, bool, String, bool, Option<String>)> {
        self.messages
            .values()
            .map(|m| {
                (
                    m.remote_id.clone(),
                    m.subject.clone().unwrap_or_default(),
                    m.is_read,
                    m.folder_id.clone().unwrap_or_default(),
                    m.has_attachments,
                    m.sender.as_ref().and_then(|s| s.address.clone()),
                )
            })
            .collect()
    }
}

/// The ground truth of a folder in [`Model::summary`]'s terms.
pub fn truth_summary(
    truth: &[MessageInfo],
) -> Vec<(String, String, bool, String, bool, Option<String>)> {
    let mut v: Vec<_> = truth
        .iter()
        .map(|m| {
            (
                m.id.clone(),
                m.subject.clone(),
                m.is_read,
                m.folder_id.clone(),
                m.has_attachments,
                m.from.as_ref().map(|p| p.address.clone()),
            )
        })
        .collect();
    v.sort();
    v
}

/// Syncs a folder until `complete`, applying every page to `model`.
pub async fn sync_until_complete(
    graph: &GraphConnector,
    folder: &mailroom_core::FolderRef,
    cursor: Option<mailroom_core::SyncCursor>,
    model: &mut Model,
) -> mailroom_core::SyncCursor {
    use mailroom_core::Connector as _;
    let mut cursor = cursor;
    loop {
        let page = graph
            .sync_folder(folder, cursor.take())
            .await
            .expect("a sync page");
        model.apply(&page);
        if page.complete {
            return page.cursor;
        }
        cursor = Some(page.cursor);
    }
}
