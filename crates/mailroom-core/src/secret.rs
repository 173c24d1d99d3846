//! Secret newtypes: access tokens, refresh tokens, client secrets and passwords.
//!
//! Each type wraps a [`secrecy::SecretString`] (zeroed on drop), prints as
//! `AccessToken([redacted])` in `Debug`, has no `Display` and no `PartialEq`, and
//! gives the value only through an explicit [`secret()`](AccessToken::secret) call.
//! They serialize as plain JSON strings because the credential JSON contract needs
//! the value; that JSON only ever exists inside an encrypted blob.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }

            /// The secret value. Every call site is a place where the secret leaves
            /// its wrapper: keep them few and never log the result.
            pub fn secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.secret())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::new)
            }
        }
    };
}

secret_type!(
    /// An OAuth2 access token (bearer token).
    AccessToken
);
secret_type!(
    /// An OAuth2 refresh token.
    RefreshToken
);
secret_type!(
    /// The client secret of a confidential client application.
    ClientSecret
);
secret_type!(
    /// A password (IMAP LOGIN/PLAIN, app passwords).
    Password
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_serde_round_trips() {
        let token = AccessToken::new("eyJ0eXAiOiJKV1Qi.secret");
        assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
        let json = serde_json::to_string(&token).unwrap();
        assert_eq!(json, "\"eyJ0eXAiOiJKV1Qi.secret\"");
        let back: AccessToken = serde_json::from_str(&json).unwrap();
        assert_eq!(back.secret(), token.secret());
        assert_eq!(
            format!("{:?}", Password::new("hunter2")),
            "Password([redacted])"
        );
    }
}
