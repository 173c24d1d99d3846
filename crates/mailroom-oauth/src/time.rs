//! Injected time: what "now" is and how to wait, so tests control both.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

/// Tells the current time (UTC). Used for token expiry (the 5-minute rule) and the
/// device code deadline.
///
/// Any `Fn() -> DateTime<Utc> + Send + Sync` closure is a `Clock`.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

impl<F> Clock for F
where
    F: Fn() -> DateTime<Utc> + Send + Sync,
{
    fn now(&self) -> DateTime<Utc> {
        self()
    }
}

/// Waits: used between device code polls.
///
/// Any `Fn(Duration) -> impl Future<Output = ()> + Send + 'static` closure (with
/// `Send + Sync`) is a `Sleep`, for example a test sleep that records the waits and
/// advances a simulator's clock instead of waiting.
pub trait Sleep: Send + Sync {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

impl<F, Fut> Sleep for F
where
    F: Fn(Duration) -> Fut + Send + Sync,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(self(duration))
    }
}

/// The system clock ([`Utc::now`]), the default [`Clock`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// [`tokio::time::sleep`], the default [`Sleep`] (instant under tokio's paused time).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioSleep;

impl Sleep for TokioSleep {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Writes `Arc<dyn Clock>`-like fields in `Debug` output.
pub(crate) struct Opaque(pub(crate) &'static str);

impl fmt::Debug for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test(start_paused = true)]
    async fn closures_are_clocks_and_sleeps() {
        let fixed = DateTime::parse_from_rfc3339("2025-01-20T11:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock: Box<dyn Clock> = Box::new(move || fixed);
        assert_eq!(clock.now(), fixed);

        let waits = Arc::new(Mutex::new(Vec::new()));
        let w = waits.clone();
        let sleep: Box<dyn Sleep> = Box::new(move |d: Duration| {
            w.lock().unwrap().push(d);
            async {}
        });
        sleep.sleep(Duration::from_secs(5)).await;
        assert_eq!(*waits.lock().unwrap(), [Duration::from_secs(5)]);

        let start = tokio::time::Instant::now();
        TokioSleep.sleep(Duration::from_secs(60)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(60));
        assert!(SystemClock.now() > fixed);
    }
}
