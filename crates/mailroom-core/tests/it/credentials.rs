//! Property tests of the credential JSON: any input parses or fails without panic,
//! and what is written reads back the same.

use chrono::{DateTime, Utc};
use mailroom_core::{
    AccessToken, ClientSecret, Credentials, ImapAuth, ImapCredentials, ImapTls, OAuthCredentials,
    Password, RefreshToken,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn expiry() -> impl Strategy<Value = Option<DateTime<Utc>>> {
    prop::option::of(
        (0i64..4_102_444_800, 0u32..1_000_000_000)
            .prop_map(|(s, n)| DateTime::from_timestamp(s, n).expect("in range")),
    )
}

/// Keys the credential types do not know, with any JSON values.
fn extra() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(
        "x_[a-z_]{1,10}",
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
            prop::collection::vec(".{0,5}".prop_map(Value::from), 0..3).prop_map(Value::Array),
        ],
        0..4,
    )
    .prop_map(|m| m.into_iter().collect())
}

prop_compose! {
    fn oauth()(
        token in prop::option::of("[!-~]{1,40}"),
        refresh in prop::option::of("[!-~]{1,40}"),
        client_id in "[a-z0-9-]{1,36}",
        secret in prop::option::of("[!-~]{1,30}"),
        tenant in "common|organizations|consumers|[a-z0-9.-]{1,20}",
        scopes in prop::collection::vec("[a-zA-Z0-9:/._-]{1,30}", 0..5),
        expiry in expiry(),
        extra in extra(),
    ) -> OAuthCredentials {
        let mut c = OAuthCredentials::new(client_id);
        c.token = token.map(AccessToken::new);
        c.refresh_token = refresh.map(RefreshToken::new);
        c.client_secret = secret.map(ClientSecret::new);
        c.tenant_id = tenant;
        c.scopes = scopes;
        c.expiry = expiry;
        c.extra = extra;
        c
    }
}

fn credentials() -> impl Strategy<Value = Credentials> {
    let imap = (
        "[a-z0-9.-]{1,30}",
        any::<u16>(),
        prop_oneof![
            Just(ImapTls::Implicit),
            Just(ImapTls::Starttls),
            Just(ImapTls::None)
        ],
        prop::option::of(".{1,20}"),
        prop_oneof![
            ".{1,20}".prop_map(|p| ImapAuth::Password(Password::new(p))),
            // Without a token the JSON would not say it is oauth2 (refused on reading).
            (oauth(), "[!-~]{1,40}").prop_map(|(mut o, rt)| {
                o.refresh_token.get_or_insert(RefreshToken::new(rt));
                ImapAuth::OAuth(o)
            }),
        ],
        extra(),
    )
        .prop_map(|(host, port, tls, username, auth, extra)| {
            Credentials::Imap(ImapCredentials {
                host,
                port,
                tls,
                username,
                auth,
                extra,
            })
        });
    prop_oneof![oauth().prop_map(Credentials::OAuth), imap]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn credentials_round_trip(c in credentials()) {
        let json = c.to_json();
        let back = Credentials::from_json(&json).unwrap();
        // The same object (unknown keys may come back in another order).
        let value = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        prop_assert_eq!(value(&back.to_json()), value(&json));
        if let (Credentials::OAuth(a), Credentials::OAuth(b)) = (&c, &back) {
            // Written as the Python system wrote it: at most microseconds, cut not rounded.
            use mailroom_core::chrono::SubsecRound as _;
            prop_assert_eq!(a.expiry.map(|e| e.trunc_subsecs(6)), b.expiry);
            prop_assert_eq!(
                a.refresh_token.as_ref().map(|t| t.secret().to_owned()),
                b.refresh_token.as_ref().map(|t| t.secret().to_owned())
            );
        }
    }

    #[test]
    fn any_text_parses_without_panic(text in ".{0,200}") {
        let _ = Credentials::from_json(&text);
    }

    /// Objects with the known keys holding values of any type.
    #[test]
    fn any_object_parses_without_panic(
        fields in prop::collection::btree_map(
            prop_oneof![
                Just("type"), Just("token"), Just("refresh_token"), Just("client_id"),
                Just("client_secret"), Just("tenant_id"), Just("scopes"), Just("expiry"),
                Just("host"), Just("port"), Just("tls"), Just("username"), Just("password"),
            ],
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
                ".{0,20}".prop_map(Value::from),
                Just(Value::from("imap")),
                Just(Value::from("2025-01-20T11:30:00")),
                prop::collection::vec(".{0,8}".prop_map(Value::from), 0..3).prop_map(Value::Array),
            ],
            0..13,
        )
    ) {
        // serde_json reads a float back to the nearest value, not always the same one.
        let exact = !fields.values().any(|v| v.as_number().is_some_and(serde_json::Number::is_f64));
        let object: Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let text = Value::Object(object).to_string();
        if let Ok(c) = Credentials::from_json(&text)
            && exact
        {
            let json = c.to_json();
            let again = Credentials::from_json(&json).unwrap().to_json();
            let value = |s: &str| serde_json::from_str::<Value>(s).unwrap();
            prop_assert_eq!(value(&again), value(&json));
        }
    }
}
