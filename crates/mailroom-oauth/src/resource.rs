//! Which API a token is for: Microsoft Graph or Outlook IMAP.

use std::fmt;

/// `offline_access`: asks for a refresh token.
pub const OFFLINE_ACCESS: &str = "offline_access";

const GRAPH_SCOPES: [&str; 3] = [
    "https://graph.microsoft.com/Mail.ReadWrite",
    "https://graph.microsoft.com/User.Read",
    OFFLINE_ACCESS,
];

const IMAP_SCOPES: [&str; 2] = [
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    OFFLINE_ACCESS,
];

const GRAPH_HOSTS: [&str; 1] = ["https://graph.microsoft.com"];
const OUTLOOK_HOSTS: [&str; 2] = [
    "https://outlook.office.com",
    "https://outlook.office365.com",
];

/// The API (audience) an access token is issued for.
///
/// The identity platform issues a token for one resource at a time: a Graph token
/// is refused by Outlook IMAP and the other way round, so a [`TokenSession`]
/// never hands out a token of one resource for the other.
///
/// ```
/// use mailroom_oauth::Resource;
///
/// let stored = vec!["https://graph.microsoft.com/Mail.ReadWrite".to_owned(), "offline_access".to_owned()];
/// assert_eq!(Resource::of_scopes(&stored), Some(Resource::Graph));
/// assert_eq!(Resource::of_scopes(&["Mail.Read"]), Some(Resource::Graph));
/// assert_eq!(Resource::of_scopes(Resource::OutlookImap.default_scopes()), Some(Resource::OutlookImap));
/// assert_eq!(Resource::of_scopes(&["Mail.Read", "https://outlook.office.com/IMAP.AccessAsUser.All"]), None);
/// ```
///
/// [`TokenSession`]: crate::TokenSession
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// Microsoft Graph (`https://graph.microsoft.com`), for the Graph mail connector.
    Graph,
    /// Outlook / Exchange Online (`https://outlook.office.com`), for IMAP with XOAUTH2.
    OutlookImap,
}

impl Resource {
    /// The scopes Mailroom asks for this resource:
    /// Graph: `Mail.ReadWrite`, `User.Read`, `offline_access`;
    /// IMAP: `https://outlook.office.com/IMAP.AccessAsUser.All`, `offline_access`.
    pub fn default_scopes(self) -> &'static [&'static str] {
        match self {
            Resource::Graph => &GRAPH_SCOPES,
            Resource::OutlookImap => &IMAP_SCOPES,
        }
    }

    /// [`default_scopes`](Self::default_scopes) as owned strings.
    pub fn scopes(self) -> Vec<String> {
        self.default_scopes()
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    /// The resource URI (the token's audience).
    pub fn uri(self) -> &'static str {
        match self {
            Resource::Graph => GRAPH_HOSTS[0],
            Resource::OutlookImap => OUTLOOK_HOSTS[0],
        }
    }

    /// The resource a set of scopes is for, judged the way the identity platform
    /// does: a scope without a resource prefix (`Mail.Read`) is a Graph scope;
    /// `openid`, `profile`, `email` and `offline_access` belong to none.
    ///
    /// `None` when the scopes are empty, name two resources, or name a resource
    /// that is neither Graph nor Outlook. Only OpenID scopes give Graph, as they
    /// do on the identity platform (a `User.Read` token).
    pub fn of_scopes<S: AsRef<str>>(scopes: &[S]) -> Option<Resource> {
        let mut found = None;
        let mut any = false;
        for scope in scopes {
            let scope = scope.as_ref().trim();
            if scope.is_empty() {
                continue;
            }
            any = true;
            let this = match scope_resource(scope)? {
                Some(r) => r,
                None => continue,
            };
            match found {
                Some(r) if r != this => return None,
                _ => found = Some(this),
            }
        }
        match found {
            Some(r) => Some(r),
            None if any => Some(Resource::Graph),
            None => None,
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Resource::Graph => "graph",
            Resource::OutlookImap => "outlook-imap",
        })
    }
}

/// `Some(None)`: a scope of no resource; `None`: an unknown resource.
fn scope_resource(scope: &str) -> Option<Option<Resource>> {
    let lower = scope.to_ascii_lowercase();
    if is_oidc_scope(&lower) {
        return Some(None);
    }
    let under = |hosts: &[&str]| {
        hosts.iter().any(|h| {
            lower
                .strip_prefix(h)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    };
    if under(&GRAPH_HOSTS) {
        Some(Some(Resource::Graph))
    } else if under(&OUTLOOK_HOSTS) {
        Some(Some(Resource::OutlookImap))
    } else if lower.contains("://") || lower.contains('/') || lower.starts_with("api:") {
        None
    } else {
        Some(Some(Resource::Graph))
    }
}

pub(crate) fn is_oidc_scope(lower: &str) -> bool {
    matches!(lower, "openid" | "profile" | "email" | OFFLINE_ACCESS)
}

/// The scopes to send: as given (trimmed, deduplicated), plus `offline_access`.
pub(crate) fn with_offline_access<S: AsRef<str>>(scopes: &[S]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(scopes.len() + 1);
    for s in scopes {
        let s = s.as_ref().trim();
        if !s.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(s)) {
            out.push(s.to_owned());
        }
    }
    if !out.iter().any(|s| s.eq_ignore_ascii_case(OFFLINE_ACCESS)) {
        out.push(OFFLINE_ACCESS.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(scopes: &[&str], expected: Option<Resource>) {
        assert_eq!(Resource::of_scopes(scopes), expected, "{scopes:?}");
    }

    #[test]
    fn audience_of_scopes() {
        check(Resource::Graph.default_scopes(), Some(Resource::Graph));
        check(
            Resource::OutlookImap.default_scopes(),
            Some(Resource::OutlookImap),
        );
        check(
            &[
                "https://graph.microsoft.com/Mail.ReadWrite",
                "offline_access",
            ],
            Some(Resource::Graph),
        );
        check(&["Mail.Read", "offline_access"], Some(Resource::Graph));
        check(
            &["https://graph.microsoft.com/.default"],
            Some(Resource::Graph),
        );
        check(
            &["https://outlook.office365.com/IMAP.AccessAsUser.All"],
            Some(Resource::OutlookImap),
        );
        check(
            &[
                "HTTPS://OUTLOOK.OFFICE.COM/IMAP.AccessAsUser.All",
                "offline_access",
            ],
            Some(Resource::OutlookImap),
        );
        // Graph's own IMAP permission is still a Graph token.
        check(&["IMAP.AccessAsUser.All"], Some(Resource::Graph));
        check(&["openid", "offline_access"], Some(Resource::Graph));
        check(&[], None);
        check(&["", " "], None);
        check(
            &[
                "Mail.Read",
                "https://outlook.office.com/IMAP.AccessAsUser.All",
            ],
            None,
        );
        check(&["https://management.azure.com/user_impersonation"], None);
        check(
            &["https://graph.microsoft.com.evil.example/Mail.Read"],
            None,
        );
    }

    #[test]
    fn offline_access_added_once() {
        assert_eq!(
            with_offline_access(&["Mail.Read", "mail.read", " "]),
            ["Mail.Read", "offline_access"]
        );
        assert_eq!(
            with_offline_access(&["OFFLINE_ACCESS", "Mail.Read"]),
            ["OFFLINE_ACCESS", "Mail.Read"]
        );
    }
}
