//! `Retry-After` values and exponential back-off. Pure: the caller passes "now" and
//! the random draw.

use std::time::{Duration, SystemTime};

/// Longest wait a `Retry-After` can ask for before it is taken as nonsense.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Parses a `Retry-After` header value: delay seconds, whole (`2`) or fractional
/// (`0.5`, as some Microsoft services send), or an HTTP date (`Wed, 21 Oct 2015
/// 07:28:00 GMT`), turned into a wait from `now` (zero if the date is past).
///
/// Returns `None` for anything else (negative, not a number, not a date).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = value.parse().ok()?;
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        return Some(Duration::from_secs_f64(
            secs.min(MAX_RETRY_AFTER.as_secs_f64()),
        ));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// The back-off before retry number `attempt` (1 for the first retry) without a
/// `Retry-After`: `base · 2^(attempt-1)`, capped at `max`, with "equal jitter" — half
/// of it fixed, half drawn from `unit` (a random number in `[0, 1)`), so concurrent
/// clients spread out while the wait still grows.
pub fn backoff(attempt: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(max);
    let half = full / 2;
    // NaN passes `clamp` as it is, and `mul_f64(NaN)` panics.
    let unit = if unit.is_nan() {
        0.0
    } else {
        unit.clamp(0.0, 1.0)
    };
    half + half.mul_f64(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(value: &str, expected: Option<Duration>) {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(parse_retry_after(value, now), expected, "{value:?}");
    }

    #[test]
    fn retry_after_forms() {
        check("2", Some(Duration::from_secs(2)));
        check(" 0 ", Some(Duration::ZERO));
        check("0.5", Some(Duration::from_millis(500)));
        check("1.25", Some(Duration::from_millis(1250)));
        check(
            "Wed, 21 Oct 2015 07:28:30 GMT",
            Some(Duration::from_secs(30)),
        );
        check(
            "Wednesday, 21-Oct-15 07:29:00 GMT",
            Some(Duration::from_secs(60)),
        );
        check("Wed, 21 Oct 2015 07:00:00 GMT", Some(Duration::ZERO));
        check("99999999", Some(MAX_RETRY_AFTER));
        check("-1", None);
        check("soon", None);
        check("1.2.3", None);
        check("", None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_bounded() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(8);
        assert_eq!(backoff(1, base, max, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(1, base, max, f64::NAN), Duration::from_millis(250));
        assert_eq!(backoff(1, base, max, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(2, base, max, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(3, base, max, 0.5), Duration::from_millis(1500));
        assert_eq!(backoff(10, base, max, 1.0), max);
        assert_eq!(backoff(u32::MAX, base, max, 0.0), max / 2);
    }
}
