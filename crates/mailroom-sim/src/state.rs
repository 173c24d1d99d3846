//! Shared state of a running simulator.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::clock::{Clock, SimInstant};
use crate::config::{Faults, MailboxSpec, SimConfig};
use crate::counters::CounterCell;
use crate::graph::store::Store;
use crate::identity::IdentityState;
use crate::rng::Rng;

/// Lock a mutex, ignoring poisoning (a panicking handler must not wedge the
/// simulator for every later test).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Per-mailbox throttling state.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    pub(crate) in_flight: u32,
    pub(crate) retry_not_before: Option<SimInstant>,
    pub(crate) window_start: Option<SimInstant>,
    pub(crate) window_count: u32,
    /// Statuses to answer the next requests with, in order.
    pub(crate) scripted: std::collections::VecDeque<u16>,
}

/// One mailbox: its owner and its content.
#[derive(Debug)]
pub(crate) struct MailboxCell {
    pub(crate) address: String,
    pub(crate) display_name: String,
    pub(crate) user_id: String,
    pub(crate) store: Mutex<Store>,
    pub(crate) throttle: Mutex<Throttle>,
}

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) clock: Clock,
    rng: Mutex<Rng>,
    identity: Mutex<IdentityState>,
    mailboxes: RwLock<BTreeMap<String, Arc<MailboxCell>>>,
    order: RwLock<Vec<String>>,
    pub(crate) counters: CounterCell,
    pub(crate) base_url: String,
    /// Change-notification subscriptions and their delivery faults.
    pub(crate) subs: Mutex<crate::graph::subscriptions::Subs>,
}

impl Shared {
    pub(crate) fn new(config: SimConfig, base_url: String) -> Shared {
        let faults = config.faults.clone();
        let rng = Rng::new(config.seed);
        Shared {
            config,
            faults: Mutex::new(faults),
            clock: Clock::new(),
            rng: Mutex::new(rng),
            identity: Mutex::new(IdentityState::default()),
            mailboxes: RwLock::new(BTreeMap::new()),
            order: RwLock::new(Vec::new()),
            counters: CounterCell::default(),
            base_url,
            subs: Mutex::new(Default::default()),
        }
    }

    /// Lock order: identity, then a mailbox's store, then rng.
    pub(crate) fn rng(&self) -> MutexGuard<'_, Rng> {
        lock(&self.rng)
    }

    pub(crate) fn identity(&self) -> MutexGuard<'_, IdentityState> {
        lock(&self.identity)
    }

    pub(crate) fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    pub(crate) fn mailbox_cell(&self, address: &str) -> Option<Arc<MailboxCell>> {
        self.mailboxes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&address.to_ascii_lowercase())
            .cloned()
    }

    /// Mailboxes in creation order.
    pub(crate) fn mailbox_cells(&self) -> Vec<Arc<MailboxCell>> {
        let order = self.order.read().unwrap_or_else(|e| e.into_inner());
        let map = self.mailboxes.read().unwrap_or_else(|e| e.into_inner());
        order.iter().filter_map(|a| map.get(a).cloned()).collect()
    }

    pub(crate) fn add_mailbox(&self, spec: MailboxSpec) -> crate::Result<Arc<MailboxCell>> {
        let key = spec.address.to_ascii_lowercase();
        if !key.contains('@') {
            return Err(crate::Error::InvalidMailbox(spec.address.clone()));
        }
        let mut map = self.mailboxes.write().unwrap_or_else(|e| e.into_inner());
        if map.contains_key(&key) {
            return Err(crate::Error::DuplicateMailbox(spec.address.clone()));
        }
        let user_id = crate::rng::Rng::derive(spec.seed, &[0x75_73_65_72]).uuid();
        let store = Store::generate(&spec, self.clock.now_utc())?;
        let cell = Arc::new(MailboxCell {
            address: key.clone(),
            display_name: spec.display_name.clone(),
            user_id,
            store: Mutex::new(store),
            throttle: Mutex::new(Throttle::default()),
        });
        map.insert(key.clone(), cell.clone());
        self.order
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(key);
        Ok(cell)
    }
}
