//! Keys, rotation, credentials and key files.

use mailroom_core::{Credentials, ImapAuth};
use mailroom_vault::{Error, FernetKey, Vault, create_key_file, read_key_file, write_key_file};

const OAUTH_JSON: &str = r#"{"token":"at","refresh_token":"rt","client_id":"app","tenant_id":"common","scopes":["offline_access"],"expiry":"2025-01-20T11:30:00","legacy":1}"#;

#[test]
fn first_key_encrypts_all_decrypt_and_rotation_moves_to_the_first() {
    let (old, new) = (FernetKey::generate(), FernetKey::generate());
    let old_only = Vault::new(vec![old.clone()]).unwrap();
    let blob = old_only.encrypt(b"secret data");

    let both = Vault::new(vec![new.clone(), old]).unwrap();
    assert_eq!(both.decrypt(&blob).unwrap(), b"secret data");
    let rotated = both.rotate(&blob).unwrap();
    let new_only = Vault::new(vec![new]).unwrap();
    assert_eq!(new_only.decrypt(&rotated).unwrap(), b"secret data");
    assert!(new_only.decrypt(&blob).unwrap_err().is_wrong_key());
}

#[test]
fn credentials_round_trip_and_keep_unknown_fields() {
    let vault = Vault::new(vec![FernetKey::generate()]).unwrap();
    let creds = Credentials::from_json(OAUTH_JSON).unwrap();
    let blob = vault.encrypt(creds.to_json().as_bytes());
    let back = vault.decrypt_json::<Credentials>(&blob).unwrap();
    assert_eq!(back.to_json(), creds.to_json());
    let value: serde_json::Value = vault.decrypt_json(&blob).unwrap();
    assert_eq!(value["legacy"], 1);

    let imap = Credentials::from_json(r#"{"type":"imap","host":"h","password":"pw"}"#).unwrap();
    let back = vault
        .decrypt_json::<Credentials>(&vault.encrypt(imap.to_json().as_bytes()))
        .unwrap();
    assert!(
        matches!(back, Credentials::Imap(i) if matches!(&i.auth, ImapAuth::Password(p) if p.secret() == "pw"))
    );
}

fn check(token: &str, expected: &str) {
    let vault = Vault::new(vec![FernetKey::generate()]).unwrap();
    let err = vault.decrypt_json::<Credentials>(token).unwrap_err();
    assert!(err.to_string().contains(expected), "{token:?}: {err}");
}

#[test]
fn corrupted_truncated_and_foreign_values_get_clear_errors() {
    let vault = Vault::new(vec![FernetKey::generate()]).unwrap();
    let good = vault.encrypt(OAUTH_JSON.as_bytes());
    check("", "the value is empty");
    check("====", "decodes to no bytes");
    check("{\"token\": \"plaintext json\"}", "not url-safe base64");
    check(&good[..40], "truncated");
    check(&good[..good.len() - 8], "not a multiple of 16");
    check(&good.replacen('g', "h", 1), "version byte");
    check(&good, "none of the 1 configured key(s) matches");
    let mut flipped = good.clone().into_bytes();
    let i = flipped.len() / 2;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert!(vault.decrypt(&flipped).unwrap_err().is_wrong_key());
    // Decrypts, but is not credential JSON; the message never shows the plaintext.
    let not_json = vault.encrypt(b"hunter2 is my password");
    let err = vault.decrypt_json::<Credentials>(&not_json).unwrap_err();
    assert!(matches!(err, Error::InvalidPlaintext { .. }));
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn key_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys/mailroom.key");
    let key = FernetKey::generate();
    create_key_file(&path, &key).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let keys = read_key_file(&path).unwrap();
    assert_eq!(keys[0].secret(), key.secret());
    assert!(
        create_key_file(&path, &key).is_err(),
        "never overwrites a key"
    );

    let newer = FernetKey::generate();
    write_key_file(&path, &[newer.clone(), key]).unwrap();
    assert_eq!(read_key_file(&path).unwrap().len(), 2);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_key_file(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
