//! The identity platform's JSON, as the `oauth2` crate's extension types: error
//! bodies with `error_codes`/`suberror`, token answers with `ext_expires_in`,
//! device code answers with `message`. Pure: no I/O, no clock.

use std::fmt;

use oauth2::basic::BasicTokenType;
use oauth2::{ExtraDeviceAuthorizationFields, ExtraTokenFields, StandardTokenResponse};
use serde::{Deserialize, Serialize};

/// An error body of the identity platform (`/devicecode` and `/token`):
///
/// ```json
/// {"error": "invalid_grant",
///  "error_description": "AADSTS700082: The refresh token has expired … \r\nTrace ID: …",
///  "error_codes": [700082], "timestamp": "…", "trace_id": "…", "correlation_id": "…",
///  "error_uri": "…", "suberror": "…"}
/// ```
///
/// Every field is optional, so that any JSON object reaches our classification.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub(crate) struct AadErrorBody {
    #[serde(default)]
    pub(crate) error: Option<String>,
    #[serde(default)]
    pub(crate) error_description: Option<String>,
    #[serde(default)]
    pub(crate) error_codes: Vec<u64>,
    #[serde(default)]
    pub(crate) suberror: Option<String>,
    #[serde(default)]
    pub(crate) correlation_id: Option<String>,
    #[serde(default)]
    pub(crate) trace_id: Option<String>,
    #[serde(default)]
    pub(crate) error_uri: Option<String>,
}

impl AadErrorBody {
    /// `AADSTS700082`, from `error_codes` or else from the description's prefix.
    pub(crate) fn aadsts_code(&self) -> Option<String> {
        if let Some(code) = self.error_codes.first() {
            return Some(format!("AADSTS{code}"));
        }
        let d = self.error_description.as_deref()?.trim_start();
        let digits: String = d
            .strip_prefix("AADSTS")?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        (!digits.is_empty()).then(|| format!("AADSTS{digits}"))
    }

    /// The description's first line: Microsoft's text without trace ids and timestamps.
    pub(crate) fn first_line(&self) -> Option<String> {
        let d = self.error_description.as_deref()?;
        let line = d.split(['\r', '\n']).next().unwrap_or("").trim();
        let line = match line.find(" Trace ID:") {
            Some(i) => line[..i].trim_end(),
            None => line,
        };
        (!line.is_empty()).then(|| line.to_owned())
    }
}

impl fmt::Display for AadErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let error = self.error.as_deref().unwrap_or("unknown error");
        match self.first_line() {
            Some(line) => write!(f, "{error}: {line}"),
            None => f.write_str(error),
        }
    }
}

impl oauth2::ErrorResponse for AadErrorBody {}

/// Fields of a token answer beyond RFC 6749 that the identity platform sends.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub(crate) struct AadTokenFields {
    /// Extended lifetime of the access token, for outages of the token service.
    #[serde(default, deserialize_with = "number_or_string")]
    pub(crate) ext_expires_in: Option<u64>,
}

impl ExtraTokenFields for AadTokenFields {}

/// A token answer of the identity platform.
pub(crate) type AadTokenResponse = StandardTokenResponse<AadTokenFields, BasicTokenType>;

/// Fields of a device code answer beyond RFC 8628.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub(crate) struct AadDeviceFields {
    /// The text to show the user ("To sign in, use a web browser to open …").
    #[serde(default)]
    pub(crate) message: Option<String>,
}

impl ExtraDeviceAuthorizationFields for AadDeviceFields {}

/// Old v1 endpoints sent numbers as strings (`"expires_in": "3599"`).
fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Number(u64),
        Text(String),
    }
    Ok(match Option::<N>::deserialize(d)? {
        Some(N::Number(n)) => Some(n),
        Some(N::Text(s)) => s.trim().parse().ok(),
        None => None,
    })
}

/// Parses `Retry-After`: seconds, possibly fractional. (HTTP dates are not sent by
/// the identity platform; they are ignored.)
pub(crate) fn parse_retry_after(value: &str) -> Option<std::time::Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth2::TokenResponse as _;

    #[test]
    fn error_body_fields() {
        let body: AadErrorBody = serde_json::from_str(
            r#"{"error":"invalid_grant","error_description":"AADSTS65001: The user or administrator has not consented to use the application with ID 'app' named 'Mailroom'. Send an interactive authorization request for this user and resource.\r\nTrace ID: t\r\nCorrelation ID: c\r\nTimestamp: 2025-01-20 11:30:00Z","error_codes":[65001],"timestamp":"2025-01-20 11:30:00Z","trace_id":"t","correlation_id":"c","suberror":"consent_required","claims":"{}"}"#,
        )
        .unwrap();
        assert_eq!(body.aadsts_code().as_deref(), Some("AADSTS65001"));
        assert_eq!(body.suberror.as_deref(), Some("consent_required"));
        let line = body.first_line().unwrap();
        assert!(
            line.starts_with("AADSTS65001: The user or administrator"),
            "{line}"
        );
        assert!(line.ends_with("for this user and resource."), "{line}");
        assert!(body.to_string().starts_with("invalid_grant: AADSTS65001"));

        // Single-line descriptions (some endpoints) and codes only in the text.
        let body: AadErrorBody = serde_json::from_str(
            r#"{"error":"invalid_grant","error_description":"AADSTS70008: The provided authorization code or refresh token has expired due to inactivity. Trace ID: t Correlation ID: c"}"#,
        )
        .unwrap();
        assert_eq!(body.aadsts_code().as_deref(), Some("AADSTS70008"));
        assert_eq!(
            body.first_line().as_deref(),
            Some(
                "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity."
            )
        );
        let empty = AadErrorBody::default();
        assert_eq!((empty.aadsts_code(), empty.first_line()), (None, None));
        assert_eq!(empty.to_string(), "unknown error");
    }

    #[test]
    fn token_answer_with_microsoft_fields() {
        let t: AadTokenResponse = serde_json::from_str(
            r#"{"token_type":"Bearer","scope":"https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/User.Read","expires_in":3599,"ext_expires_in":"3599","access_token":"at","refresh_token":"rt","id_token":"x.y.z"}"#,
        )
        .unwrap();
        assert_eq!(t.access_token().secret(), "at");
        assert_eq!(t.refresh_token().unwrap().secret(), "rt");
        assert_eq!(t.expires_in(), Some(std::time::Duration::from_secs(3599)));
        assert_eq!(t.extra_fields().ext_expires_in, Some(3599));
        assert_eq!(t.scopes().unwrap().len(), 2);
        assert!(!format!("{t:?}").contains("\"at\""));
    }

    #[test]
    fn device_answer_with_message() {
        let d: oauth2::DeviceAuthorizationResponse<AadDeviceFields> = serde_json::from_str(
            r#"{"user_code":"BCDFGHJK","device_code":"dc","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":5,"message":"To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code BCDFGHJK to authenticate."}"#,
        )
        .unwrap();
        assert_eq!(d.user_code().secret(), "BCDFGHJK");
        assert_eq!(d.interval(), std::time::Duration::from_secs(5));
        assert!(
            d.extra_fields()
                .message
                .as_deref()
                .unwrap()
                .contains("BCDFGHJK")
        );
    }

    #[test]
    fn retry_after_values() {
        use std::time::Duration;
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
