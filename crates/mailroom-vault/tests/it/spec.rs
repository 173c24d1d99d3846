//! The published Fernet test vectors (https://github.com/fernet/spec: generate.json,
//! verify.json, invalid.json), copied unchanged into `tests/fixtures/fernet-spec-*.json`.

use base64::Engine as _;
use mailroom_vault::{Error, FernetKey, Vault};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vector {
    #[serde(default)]
    desc: String,
    token: String,
    now: String,
    #[serde(default)]
    ttl_sec: u64,
    #[serde(default)]
    src: String,
    #[serde(default)]
    iv: Vec<u8>,
    secret: String,
}

/// This crate's directory. `cargo test` and nextest say it at run time; the path
/// compiled in is only a fallback, because clones sharing a target directory may run a
/// test binary built in another clone.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

fn vectors(name: &str) -> Vec<Vector> {
    let path = manifest_dir().join(format!("tests/fixtures/fernet-spec-{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn unix(now: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(now)
        .unwrap()
        .timestamp() as u64
}

fn vault(secret: &str) -> Vault {
    Vault::new(vec![FernetKey::parse(secret).unwrap()]).unwrap()
}

#[test]
fn generate_vectors_decompose_and_decrypt() {
    for v in vectors("generate") {
        // `Vault::encrypt` draws a random IV, so the exact bytes are checked by the unit
        // test `generate_vectors_are_reproduced_byte_for_byte`; here
        // check the layout the vector fixes (version, timestamp, IV) and the plaintext.
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(&v.token)
            .unwrap();
        assert_eq!(raw[0], 0x80);
        assert_eq!(
            u64::from_be_bytes(raw[1..9].try_into().unwrap()),
            unix(&v.now)
        );
        assert_eq!(&raw[9..25], v.iv.as_slice());
        assert_eq!(
            vault(&v.secret).decrypt(&v.token).unwrap(),
            v.src.as_bytes()
        );
        // Ours has the same layout and length for the same plaintext.
        let ours = base64::engine::general_purpose::URL_SAFE
            .decode(vault(&v.secret).encrypt(v.src.as_bytes()))
            .unwrap();
        assert_eq!((ours[0], ours.len()), (0x80, raw.len()));
    }
}

#[test]
fn verify_vectors() {
    for v in vectors("verify") {
        let got = vault(&v.secret)
            .decrypt_with_ttl(&v.token, v.ttl_sec, unix(&v.now))
            .unwrap();
        assert_eq!(got, v.src.as_bytes());
    }
}

#[test]
fn all_invalid_vectors_are_refused_with_the_right_error() {
    let vectors = vectors("invalid");
    assert_eq!(vectors.len(), 8);
    for v in vectors {
        let err = vault(&v.secret)
            .decrypt_with_ttl(&v.token, v.ttl_sec, unix(&v.now))
            .expect_err(&v.desc);
        let ok = match v.desc.as_str() {
            "incorrect mac" | "payload padding error" | "incorrect IV (causes padding error)" => {
                matches!(err, Error::WrongKey { .. })
            }
            "too short" | "invalid base64" | "payload size not multiple of block size" => {
                matches!(err, Error::MalformedToken(_))
            }
            "far-future TS (unacceptable clock skew)" => matches!(err, Error::FromTheFuture { .. }),
            "expired TTL" => matches!(
                err,
                Error::Expired {
                    age_secs: 90,
                    ttl_secs: 60
                }
            ),
            other => panic!("unexpected vector {other}"),
        };
        assert!(ok, "{}: got {err:?}", v.desc);
    }
}

#[test]
fn stored_values_ignore_ttl_and_clock_skew() {
    // The "expired TTL" and "far-future" vectors are authentic tokens: without a TTL,
    // as for stored credentials, they decrypt.
    for v in vectors("invalid") {
        if v.desc.starts_with("expired") || v.desc.starts_with("far-future") {
            let plaintext = vault(&v.secret).decrypt(&v.token);
            assert!(plaintext.is_ok(), "{}: {plaintext:?}", v.desc);
        }
    }
}

#[test]
fn forged_max_timestamp_does_not_overflow() {
    let v = &vectors("verify")[0];
    let mut raw = base64::engine::general_purpose::URL_SAFE
        .decode(&v.token)
        .unwrap();
    raw[1..9].copy_from_slice(&u64::MAX.to_be_bytes());
    let forged = base64::engine::general_purpose::URL_SAFE.encode(raw);
    let vault = vault(&v.secret);
    assert!(matches!(
        vault.decrypt_with_ttl(&forged, u64::MAX, unix(&v.now)),
        Err(Error::FromTheFuture { .. })
    ));
    // The HMAC covers the timestamp: the forgery is refused, not decrypted.
    assert!(vault.decrypt(&forged).unwrap_err().is_wrong_key());
}
