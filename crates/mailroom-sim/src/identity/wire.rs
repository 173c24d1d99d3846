//! Pure pieces of the identity platform: error bodies, scopes and audiences,
//! tenants, user codes. No clock, no state.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::rng::Rng;

/// Characters of a user code, as the Microsoft identity platform uses
/// (consonants only, no look-alikes).
pub(crate) const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

/// The resource an access token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Microsoft Graph (`https://graph.microsoft.com`).
    Graph,
    /// Outlook / Exchange Online (`https://outlook.office.com`), for IMAP,
    /// POP and SMTP with XOAUTH2.
    Outlook,
}

impl Audience {
    /// The resource URI, as put in `aud` by the introspection endpoint.
    pub fn uri(self) -> &'static str {
        match self {
            Audience::Graph => "https://graph.microsoft.com",
            Audience::Outlook => "https://outlook.office.com",
        }
    }
}

/// An identity platform error: status, OAuth `error`, AADSTS code and text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AadError {
    pub(crate) status: u16,
    pub(crate) error: &'static str,
    pub(crate) code: u32,
    pub(crate) description: String,
    pub(crate) suberror: Option<&'static str>,
}

impl AadError {
    pub(crate) fn new(
        status: u16,
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> Self {
        AadError {
            status,
            error,
            code,
            description: description.into(),
            suberror: None,
        }
    }

    pub(crate) fn with_suberror(mut self, suberror: &'static str) -> Self {
        self.suberror = Some(suberror);
        self
    }

    pub(crate) fn missing_parameter(name: &str) -> Self {
        AadError::new(
            400,
            "invalid_request",
            900_144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    /// The JSON body, in the field order the identity platform uses.
    pub(crate) fn body(
        &self,
        timestamp: DateTime<Utc>,
        trace_id: &str,
        correlation_id: &str,
        error_uri_base: &str,
    ) -> Value {
        let ts = timestamp.format("%Y-%m-%d %H:%M:%SZ").to_string();
        let mut m = Map::new();
        m.insert("error".into(), json!(self.error));
        m.insert(
            "error_description".into(),
            json!(format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {ts}",
                self.code, self.description
            )),
        );
        m.insert("error_codes".into(), json!([self.code]));
        m.insert("timestamp".into(), json!(ts));
        m.insert("trace_id".into(), json!(trace_id));
        m.insert("correlation_id".into(), json!(correlation_id));
        m.insert(
            "error_uri".into(),
            json!(format!("{error_uri_base}/error?code={}", self.code)),
        );
        if let Some(sub) = self.suberror {
            m.insert("suberror".into(), json!(sub));
        }
        Value::Object(m)
    }
}

/// Scopes of a request, checked and split by resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScopeSet {
    pub(crate) audience: Audience,
    /// Resource scopes, as granted (fully qualified for non-Graph resources).
    pub(crate) resource_scopes: Vec<String>,
    /// `openid`, `profile`, `email`, in request order.
    pub(crate) oidc: Vec<String>,
    pub(crate) offline_access: bool,
}

impl ScopeSet {
    /// The `scope` of a token answer: resource scopes then OIDC ones
    /// (`offline_access` is not echoed, as Entra ID does).
    pub(crate) fn granted(&self) -> String {
        let mut all = self.resource_scopes.clone();
        all.extend(self.oidc.iter().cloned());
        all.join(" ")
    }

    /// All scopes to remember with a refresh token.
    pub(crate) fn requested(&self) -> String {
        let mut s = self.granted();
        if self.offline_access {
            s.push_str(" offline_access");
        }
        s
    }
}

const GRAPH: &str = "https://graph.microsoft.com";
const OUTLOOK: [&str; 2] = [
    "https://outlook.office.com",
    "https://outlook.office365.com",
];

/// Splits a `scope` parameter and finds its one resource.
pub(crate) fn classify_scopes(scope: &str) -> Result<ScopeSet, AadError> {
    let mut audience: Option<(Audience, String)> = None;
    let mut resource_scopes = Vec::new();
    let mut oidc = Vec::new();
    let mut offline_access = false;
    let words: Vec<&str> = scope.split_whitespace().collect();
    if words.is_empty() {
        return Err(AadError::missing_parameter("scope"));
    }
    for word in &words {
        let lower = word.to_ascii_lowercase();
        let (aud, resource, granted) = match lower.as_str() {
            "offline_access" => {
                offline_access = true;
                continue;
            }
            "openid" | "profile" | "email" => {
                if !oidc.contains(&lower) {
                    oidc.push(lower);
                }
                continue;
            }
            _ if lower.starts_with(GRAPH) => {
                let rest = &word[GRAPH.len()..];
                if !(rest.is_empty() || rest.starts_with('/')) {
                    return Err(invalid_scope(word));
                }
                (Audience::Graph, GRAPH.to_owned(), (*word).to_owned())
            }
            _ if OUTLOOK.iter().any(|o| lower.starts_with(o)) => {
                let base = OUTLOOK
                    .iter()
                    .find(|o| lower.starts_with(*o))
                    .copied()
                    .unwrap_or(OUTLOOK[0]);
                (Audience::Outlook, base.to_owned(), (*word).to_owned())
            }
            _ if word.contains("://") || word.starts_with("api:") => {
                return Err(AadError::new(
                    400,
                    "invalid_resource",
                    500_011,
                    format!(
                        "The resource principal named {} was not found in the tenant. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                        resource_of(word)
                    ),
                ));
            }
            _ if word.contains('/') || word.is_empty() => return Err(invalid_scope(word)),
            // A bare scope name belongs to Microsoft Graph, the default resource.
            _ => (Audience::Graph, GRAPH.to_owned(), format!("{GRAPH}/{word}")),
        };
        match &audience {
            Some((_, r)) if *r != resource => {
                return Err(AadError::new(
                    400,
                    "invalid_scope",
                    28_000,
                    format!(
                        "Provided value for the input parameter scope is not valid because it contains more than one resource. Scope {scope} is not valid."
                    ),
                ));
            }
            _ => audience = Some((aud, resource)),
        }
        if !resource_scopes.contains(&granted) {
            resource_scopes.push(granted);
        }
    }
    let audience = match audience {
        Some((a, _)) => a,
        None => {
            // Only OIDC scopes: the token is for Graph's User.Read.
            resource_scopes.push(format!("{GRAPH}/User.Read"));
            Audience::Graph
        }
    };
    Ok(ScopeSet {
        audience,
        resource_scopes,
        oidc,
        offline_access,
    })
}

fn resource_of(scope: &str) -> &str {
    match scope.rfind('/') {
        Some(i) if i > scope.find("://").map_or(0, |p| p + 2) => &scope[..i],
        _ => scope,
    }
}

fn invalid_scope(word: &str) -> AadError {
    AadError::new(
        400,
        "invalid_scope",
        70_011,
        format!(
            "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {word} is not valid."
        ),
    )
}

/// Accepts `common`, `organizations`, `consumers`, GUIDs and the domain
/// names `known_domain` knows; anything else is AADSTS90002, as Entra ID
/// answers for a domain no tenant has verified.
pub(crate) fn check_tenant(
    tenant: &str,
    known_domain: &dyn Fn(&str) -> bool,
) -> Result<(), AadError> {
    let known = matches!(tenant, "common" | "organizations" | "consumers");
    if known
        || is_guid(tenant)
        || (tenant.contains('.') && is_domain(tenant) && known_domain(tenant))
    {
        Ok(())
    } else {
        Err(AadError::new(
            400,
            "invalid_request",
            90_002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        ))
    }
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_domain(s: &str) -> bool {
    s.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// An 8-character user code.
pub(crate) fn user_code(rng: &mut Rng) -> String {
    (0..8)
        .map(|_| char::from(USER_CODE_ALPHABET[rng.index(USER_CODE_ALPHABET.len())]))
        .collect()
}

/// The `message` of a device code answer, worded like Entra ID's.
pub(crate) fn device_code_message(verification_uri: &str, user_code: &str) -> String {
    format!(
        "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
    )
}

/// An unsigned JWT (`alg: none`) with the usual v2.0 id token claims.
pub(crate) fn id_token(claims: &Value) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"typ":"JWT","alg":"none"}"#);
    let payload = b64.encode(serde_json::to_vec(claims).unwrap_or_default());
    format!("{header}.{payload}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aud(scope: &str) -> Result<Audience, u32> {
        classify_scopes(scope)
            .map(|s| s.audience)
            .map_err(|e| e.code)
    }

    #[test]
    fn scopes_find_their_resource() {
        assert_eq!(aud("Mail.ReadWrite offline_access"), Ok(Audience::Graph));
        assert_eq!(
            aud("https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/User.Read"),
            Ok(Audience::Graph)
        );
        assert_eq!(
            aud("https://outlook.office.com/IMAP.AccessAsUser.All offline_access"),
            Ok(Audience::Outlook)
        );
        assert_eq!(aud("openid profile"), Ok(Audience::Graph));
        assert_eq!(
            aud("https://graph.microsoft.com/.default"),
            Ok(Audience::Graph)
        );
    }

    #[test]
    fn two_resources_in_one_request_fail_like_entra() {
        assert_eq!(
            aud("Mail.Read https://outlook.office.com/IMAP.AccessAsUser.All"),
            Err(28_000)
        );
        assert_eq!(aud(""), Err(900_144));
        assert_eq!(aud("https://example.invalid/x"), Err(500_011));
    }

    #[test]
    fn granted_scope_qualifies_graph_names_and_drops_offline_access() {
        let s = classify_scopes("Mail.ReadWrite offline_access openid").unwrap();
        assert_eq!(
            s.granted(),
            "https://graph.microsoft.com/Mail.ReadWrite openid"
        );
        assert!(s.offline_access);
    }

    #[test]
    fn tenants() {
        let known = |d: &str| d == "contoso.onmicrosoft.com";
        for ok in [
            "common",
            "organizations",
            "consumers",
            "contoso.onmicrosoft.com",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
        ] {
            assert!(check_tenant(ok, &known).is_ok(), "{ok}");
        }
        for bad in [
            "contoso",
            "foo bar",
            "72f988bf-86f1-41af",
            ".",
            "a..b",
            "fabrikam.onmicrosoft.com",
        ] {
            assert_eq!(check_tenant(bad, &known).unwrap_err().code, 90_002, "{bad}");
        }
    }

    #[test]
    fn error_body_has_the_entra_fields() {
        let e = AadError::new(400, "authorization_pending", 70_016, "pending");
        let b = e.body(Utc::now(), "t", "c", "http://x");
        let keys: Vec<_> = b.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "error",
                "error_description",
                "error_codes",
                "timestamp",
                "trace_id",
                "correlation_id",
                "error_uri"
            ]
        );
        assert!(
            b["error_description"]
                .as_str()
                .unwrap()
                .starts_with("AADSTS70016: pending\r\nTrace ID: t")
        );
    }

    #[test]
    fn user_codes_use_the_alphabet() {
        let code = user_code(&mut Rng::new(1));
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
    }
}
