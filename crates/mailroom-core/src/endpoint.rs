//! Rules for the servers Mailroom talks to, shared by every connector. (The check of a
//! service's base URL, which needs a URL parser, is `mailroom_oauth::check_service_url`.)

use std::net::IpAddr;

/// True for `localhost` and loopback IP addresses (IPv6 with or without brackets):
/// the only hosts Mailroom talks to without TLS.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A server's answer as it goes into an error message: lossy UTF-8, trimmed, cut at
/// `max` bytes on a character boundary (marked with `…`).
pub fn body_excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "example.com",
            "10.0.0.1",
            "localhost.example.com",
            "::2",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn excerpts_cut_on_char_boundaries() {
        assert_eq!(body_excerpt(b"  {\"error\": 1}\n", 100), "{\"error\": 1}");
        assert_eq!(body_excerpt("ééé".as_bytes(), 3), "é…");
        assert_eq!(body_excerpt(&[0xff, b'a'], 10), "\u{fffd}a");
    }
}
