//! One module per command family.

pub mod account;
pub mod doctor;
pub mod folders;
pub mod key;
pub mod messages;
pub mod sync;
pub mod synced;
pub mod worker;

use anyhow::Result;
use chrono::{DateTime, Local, NaiveDate, TimeZone as _, Utc};

use crate::exit::{Code, Failure};

/// `--since`: `2025-01-31` (local midnight), an RFC 3339 time, or a duration ago (`7d`).
pub fn parse_since(text: &str) -> Result<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
        if let Some(t) = Local.from_local_datetime(&midnight).earliest() {
            return Ok(t.with_timezone(&Utc));
        }
        return Ok(midnight.and_utc());
    }
    if let Ok(ago) = humantime::parse_duration(text) {
        let ago = chrono::Duration::from_std(ago).unwrap_or(chrono::Duration::MAX);
        return Ok(Utc::now()
            .checked_sub_signed(ago)
            .unwrap_or(DateTime::<Utc>::MIN_UTC));
    }
    Err(Failure::err(
        Code::Usage,
        format!(
            "invalid date {text:?}: use 2025-01-31, 2025-01-31T08:00:00Z, or a duration ago like 7d"
        ),
    ))
}

/// Resolves at the first SIGINT (Ctrl-C) or SIGTERM, with the signal's name.
pub async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
