//! Rules for the servers Mailroom talks to, shared by every connector.

use std::net::IpAddr;

use url::{Host, Url};

/// True for `localhost` and loopback IP addresses (IPv6 with or without brackets):
/// the only hosts Mailroom talks to without TLS.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks the base URL of a service (identity platform, Graph): `https`, or `http`
/// only for a loopback host (a simulator); no credentials, query or fragment. Returns
/// the parsed URL, or the reason it is refused.
pub fn check_service_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| e.to_string())?;
    let loopback = match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("no host".into()),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err("http is only accepted for loopback hosts; use https".into()),
        other => return Err(format!("unsupported scheme {other:?}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the url are not allowed".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a query or fragment is not allowed".into());
    }
    Ok(url)
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
    fn service_urls() {
        assert!(check_service_url("https://graph.microsoft.com/v1.0").is_ok());
        assert!(check_service_url("http://127.0.0.1:8080/v1.0").is_ok());
        assert!(check_service_url("http://[::1]:8080").is_ok());
        for (bad, why) in [
            ("http://graph.microsoft.com/v1.0", "loopback"),
            ("ftp://example.com", "scheme"),
            ("https://user:pw@example.com", "credentials"),
            ("https://example.com/?a=b", "query"),
            ("https://example.com/#x", "fragment"),
            ("not a url", "relative URL"),
        ] {
            let err = check_service_url(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn excerpts_cut_on_char_boundaries() {
        assert_eq!(body_excerpt(b"  {\"error\": 1}\n", 100), "{\"error\": 1}");
        assert_eq!(body_excerpt("ééé".as_bytes(), 3), "é…");
        assert_eq!(body_excerpt(&[0xff, b'a'], 10), "\u{fffd}a");
    }
}
