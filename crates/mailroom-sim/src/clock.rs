//! The simulator's clock: monotonic time plus a manual offset.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A point on the simulator's clock, as time elapsed since start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SimInstant(pub(crate) Duration);

impl SimInstant {
    pub(crate) fn plus(self, d: Duration) -> SimInstant {
        SimInstant(self.0 + d)
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub(crate) fn since(self, earlier: SimInstant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

/// Real monotonic time (tokio's, so paused-time tests stay exact) plus an
/// offset moved by [`Simulator::advance_clock`](crate::Simulator::advance_clock).
#[derive(Debug)]
pub(crate) struct Clock {
    start: tokio::time::Instant,
    start_wall: DateTime<Utc>,
    offset: Mutex<Duration>,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            start: tokio::time::Instant::now(),
            start_wall: Utc::now(),
            offset: Mutex::new(Duration::ZERO),
        }
    }

    pub(crate) fn now(&self) -> SimInstant {
        let offset = *self.offset.lock().unwrap_or_else(|e| e.into_inner());
        SimInstant(self.start.elapsed() + offset)
    }

    pub(crate) fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }

    /// Wall-clock time of an instant.
    pub(crate) fn utc(&self, at: SimInstant) -> DateTime<Utc> {
        self.start_wall + chrono::Duration::from_std(at.0).unwrap_or(chrono::Duration::zero())
    }

    pub(crate) fn now_utc(&self) -> DateTime<Utc> {
        self.utc(self.now())
    }
}
