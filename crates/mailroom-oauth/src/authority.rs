//! Where tokens come from: a cloud host plus a tenant.

use std::fmt;
use std::str::FromStr;

use url::{Host, Url};
use uuid::Uuid;

use crate::error::{Error, ErrorKind};

/// The public Microsoft cloud's sign-in host, used when no other is given.
pub const DEFAULT_CLOUD: &str = "https://login.microsoftonline.com";

/// Which directory signs the user in: the `{tenant}` part of
/// `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
///
/// Parse one with [`str::parse`]; [`Display`](fmt::Display) writes it back in the
/// form the identity platform expects (keywords in lower case, GUIDs hyphenated).
///
/// ```
/// use mailroom_oauth::Tenant;
///
/// assert_eq!("Consumers".parse::<Tenant>()?, Tenant::Consumers);
/// let id: Tenant = "9188040D-6C67-4C5B-B112-36A304B66DAD".parse()?;
/// assert_eq!(id.to_string(), "9188040d-6c67-4c5b-b112-36a304b66dad");
/// assert!(matches!("contoso.onmicrosoft.com".parse()?, Tenant::Domain(_)));
/// assert!("not a tenant".parse::<Tenant>().is_err());
/// # Ok::<(), mailroom_oauth::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Tenant {
    /// `common`: work, school and personal Microsoft accounts.
    Common,
    /// `organizations`: work and school accounts only.
    Organizations,
    /// `consumers`: personal Microsoft accounts (Outlook.com, Hotmail) only.
    Consumers,
    /// One directory by its tenant id.
    Id(Uuid),
    /// One directory by one of its verified domains (`contoso.onmicrosoft.com`),
    /// always lower case.
    Domain(String),
}

impl Tenant {
    /// True for `common`, `organizations` and `consumers`, which are not one directory.
    pub fn is_multi_tenant(&self) -> bool {
        matches!(
            self,
            Tenant::Common | Tenant::Organizations | Tenant::Consumers
        )
    }
}

impl Default for Tenant {
    /// `common`, the Python system's default `tenant_id`.
    fn default() -> Self {
        Tenant::Common
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tenant::Common => f.write_str("common"),
            Tenant::Organizations => f.write_str("organizations"),
            Tenant::Consumers => f.write_str("consumers"),
            Tenant::Id(id) => write!(f, "{}", id.hyphenated()),
            Tenant::Domain(domain) => f.write_str(domain),
        }
    }
}

impl FromStr for Tenant {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        match lower.as_str() {
            "common" => return Ok(Tenant::Common),
            "organizations" => return Ok(Tenant::Organizations),
            "consumers" => return Ok(Tenant::Consumers),
            _ => {}
        }
        if let Ok(id) = Uuid::try_parse(&lower) {
            return Ok(Tenant::Id(id));
        }
        if is_domain(&lower) {
            return Ok(Tenant::Domain(lower));
        }
        Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "invalid tenant {s:?}: expected common, organizations, consumers, a tenant id (GUID) or a domain name"
            ),
        ))
    }
}

/// A DNS name with at least two labels of letters, digits and inner hyphens.
fn is_domain(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    s.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_alphabetic()))
}

/// A cloud host plus a [`Tenant`]: everything needed to find the token endpoints.
///
/// `https` is required, except for a loopback host (`127.0.0.0/8`, `::1`,
/// `localhost`) where `http` is accepted, so tests can use a local simulator.
///
/// ```
/// use mailroom_oauth::{Authority, Tenant};
///
/// let work = Authority::public_cloud(Tenant::Organizations);
/// assert_eq!(
///     work.token_url().as_str(),
///     "https://login.microsoftonline.com/organizations/oauth2/v2.0/token"
/// );
/// let sim = Authority::new("http://127.0.0.1:8080/", Tenant::Consumers)?;
/// assert_eq!(sim.device_code_url().as_str(), "http://127.0.0.1:8080/consumers/oauth2/v2.0/devicecode");
/// assert!(Authority::new("http://login.example.com", Tenant::Common).is_err());
/// # Ok::<(), mailroom_oauth::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Authority {
    /// Cloud host (and optional path prefix), without a trailing slash.
    cloud: String,
    tenant: Tenant,
}

impl Authority {
    /// An authority on the cloud at `cloud_url` (for example
    /// `https://login.microsoftonline.com`, `https://login.microsoftonline.us`, or a
    /// simulator's `http://127.0.0.1:PORT`).
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] for an unparsable URL, a scheme other
    /// than `https` (`http` only for loopback hosts), credentials, a query or a fragment.
    pub fn new(cloud_url: &str, tenant: Tenant) -> Result<Authority, Error> {
        let invalid = |why: &str| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("invalid authority url {cloud_url:?}: {why}"),
            )
        };
        let url = check_service_url(cloud_url).map_err(|why| invalid(&why))?;
        let cloud = url.as_str().trim_end_matches('/').to_owned();
        Ok(Authority { cloud, tenant })
    }

    /// An authority on the public Microsoft cloud ([`DEFAULT_CLOUD`]).
    pub fn public_cloud(tenant: Tenant) -> Authority {
        Authority {
            cloud: DEFAULT_CLOUD.to_owned(),
            tenant,
        }
    }

    /// The cloud host URL, without a trailing slash.
    pub fn cloud_url(&self) -> &str {
        &self.cloud
    }

    /// The tenant.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The same cloud with another tenant.
    pub fn with_tenant(&self, tenant: Tenant) -> Authority {
        Authority {
            cloud: self.cloud.clone(),
            tenant,
        }
    }

    /// `{cloud}/{tenant}/oauth2/v2.0/token`
    pub fn token_url(&self) -> Url {
        self.endpoint("token")
    }

    /// `{cloud}/{tenant}/oauth2/v2.0/devicecode`
    pub fn device_code_url(&self) -> Url {
        self.endpoint("devicecode")
    }

    fn endpoint(&self, name: &str) -> Url {
        Url::parse(&format!(
            "{}/{}/oauth2/v2.0/{name}",
            self.cloud, self.tenant
        ))
        .expect("a valid cloud url and tenant make a valid endpoint url")
    }
}

impl Default for Authority {
    /// `https://login.microsoftonline.com/common`
    fn default() -> Self {
        Authority::public_cloud(Tenant::Common)
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.cloud, self.tenant)
    }
}

/// Checks the base URL of a service (identity platform, Graph) — the one policy every
/// Mailroom HTTP client applies: `https`, or `http`
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check_tenant(input: &str, expected: Option<Tenant>) {
        let got = input.parse::<Tenant>().ok();
        assert_eq!(got, expected, "{input:?}");
    }

    #[test]
    fn tenants() {
        let guid = Uuid::parse_str("9188040d-6c67-4c5b-b112-36a304b66dad").unwrap();
        check_tenant("common", Some(Tenant::Common));
        check_tenant(" ORGANIZATIONS ", Some(Tenant::Organizations));
        check_tenant("consumers", Some(Tenant::Consumers));
        check_tenant(
            "9188040D-6C67-4C5B-B112-36A304B66DAD",
            Some(Tenant::Id(guid)),
        );
        check_tenant(
            "contoso.onmicrosoft.com",
            Some(Tenant::Domain("contoso.onmicrosoft.com".into())),
        );
        check_tenant("Fabrikam.COM", Some(Tenant::Domain("fabrikam.com".into())));
        check_tenant("", None);
        check_tenant("contoso", None);
        check_tenant("contoso..com", None);
        check_tenant("-contoso.com", None);
        check_tenant("contoso.com/evil", None);
        check_tenant("10.0.0.1", None);
        check_tenant("9188040d-6c67-4c5b-b112", None);
        assert_eq!(
            Tenant::Id(guid).to_string(),
            "9188040d-6c67-4c5b-b112-36a304b66dad"
        );
        assert!(Tenant::Consumers.is_multi_tenant() && !Tenant::Id(guid).is_multi_tenant());
        let err = "no way".parse::<Tenant>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(
            err.to_string().starts_with("invalid tenant \"no way\""),
            "{err}"
        );
    }

    fn check_authority(url: &str, expected_token_url: Option<&str>) {
        let got = Authority::new(url, Tenant::Common).map(|a| a.token_url().to_string());
        match expected_token_url {
            Some(want) => assert_eq!(got.unwrap(), want, "{url}"),
            None => assert!(got.is_err(), "{url} should be refused"),
        }
    }

    #[test]
    fn authorities() {
        check_authority(
            "https://login.microsoftonline.com",
            Some("https://login.microsoftonline.com/common/oauth2/v2.0/token"),
        );
        check_authority(
            "https://login.microsoftonline.us/",
            Some("https://login.microsoftonline.us/common/oauth2/v2.0/token"),
        );
        check_authority(
            "http://127.0.0.1:4000",
            Some("http://127.0.0.1:4000/common/oauth2/v2.0/token"),
        );
        check_authority(
            "http://127.8.9.10:4000/prefix/",
            Some("http://127.8.9.10:4000/prefix/common/oauth2/v2.0/token"),
        );
        check_authority(
            "http://[::1]:4000",
            Some("http://[::1]:4000/common/oauth2/v2.0/token"),
        );
        check_authority(
            "http://LOCALHOST:4000",
            Some("http://localhost:4000/common/oauth2/v2.0/token"),
        );
        check_authority("http://login.microsoftonline.com", None);
        check_authority("http://10.0.0.1", None);
        check_authority("ftp://127.0.0.1", None);
        check_authority("https://user:pw@login.example.com", None);
        check_authority("https://login.example.com/?x=1", None);
        check_authority("login.microsoftonline.com", None);
        let err = Authority::new("http://example.com", Tenant::Common).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(
            err.to_string().contains("only accepted for loopback"),
            "{err}"
        );

        let a = Authority::default();
        assert_eq!(a.to_string(), "https://login.microsoftonline.com/common");
        assert_eq!(
            a.with_tenant(Tenant::Consumers).device_code_url().as_str(),
            "https://login.microsoftonline.com/consumers/oauth2/v2.0/devicecode"
        );
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
}
