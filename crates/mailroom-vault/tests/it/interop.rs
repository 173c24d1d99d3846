//! Live interop with Python's `cryptography.fernet`, in both directions.
//!
//! Needs `python3` with `cryptography` (`pip install cryptography`; `cargo xtask ci`
//! installs it). A missing Python fails the test: it never skips.

use std::io::Write as _;
use std::process::{Command, Stdio};

use mailroom_core::Credentials;
use mailroom_vault::{FernetKey, Vault};

/// Runs a Python snippet with `input` on stdin and returns its stdout.
pub(crate) fn python(script: &str, input: &str) -> String {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the interop tests (cargo xtask ci installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed (is `cryptography` installed? `pip install cryptography`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

// The Python system's own code path: json.dumps then Fernet(key).encrypt.
const PY_ENCRYPT: &str = r#"
import json, sys
from cryptography.fernet import Fernet
key, payload = sys.stdin.read().split("\n", 1)
print(Fernet(key.encode()).encrypt(json.dumps(json.loads(payload)).encode()).decode())
"#;

const PY_DECRYPT: &str = r#"
import json, sys
from cryptography.fernet import Fernet
key, token = sys.stdin.read().split("\n", 1)
print(json.dumps(json.loads(Fernet(key.encode()).decrypt(token.strip().encode()))))
"#;

const PY_EXPIRY: &str = r#"
import datetime, json, sys
from cryptography.fernet import Fernet
key, token = sys.stdin.read().split("\n", 1)
creds = json.loads(Fernet(key.encode()).decrypt(token.strip().encode()))
print(datetime.datetime.fromisoformat(creds["expiry"]).isoformat())
"#;

const PYTHON_CREDENTIALS: &str = r#"{"token": "EwBYA8l6BAAURSNgAESL4AKxR7", "refresh_token": "0.AXEA7Dk", "client_id": "12345678-aaaa", "client_secret": "xxx", "tenant_id": "common", "scopes": ["https://graph.microsoft.com/Mail.Read", "https://graph.microsoft.com/Mail.ReadWrite"], "expiry": "2025-01-20T11:30:00"}"#;

#[test]
fn python_blob_decrypts_to_the_same_credentials() {
    let key = FernetKey::generate();
    let blob = python(
        PY_ENCRYPT,
        &format!("{}\n{PYTHON_CREDENTIALS}", key.secret()),
    );
    let vault = Vault::new(vec![key]).unwrap();
    let creds = vault.decrypt_json::<Credentials>(blob.trim()).unwrap();
    let expected = Credentials::from_json(PYTHON_CREDENTIALS).unwrap();
    assert_eq!(creds.to_json(), expected.to_json());
    let oauth = creds.oauth().unwrap();
    assert_eq!(
        oauth.token.as_ref().unwrap().secret(),
        "EwBYA8l6BAAURSNgAESL4AKxR7"
    );
    assert_eq!(oauth.client_secret.as_ref().unwrap().secret(), "xxx");
    assert_eq!(oauth.scopes.len(), 2);
}

#[test]
fn our_blob_decrypts_in_python() {
    let key = FernetKey::generate();
    let vault = Vault::new(vec![key.clone()]).unwrap();
    let creds = Credentials::from_json(
        r#"{"type":"imap","host":"imap.example.com","username":"zoë","password":"pässword","extra":[1,2]}"#,
    )
    .unwrap();
    let blob = vault.encrypt(creds.to_json().as_bytes());
    let json = python(PY_DECRYPT, &format!("{}\n{blob}", key.secret()));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["type"], "imap");
    assert_eq!(value["username"], "zoë");
    assert_eq!(value["password"], "pässword");
    assert_eq!(value["extra"], serde_json::json!([1, 2]));
    // And Python's datetime reads the expiry we write.
    let oauth = Credentials::from_json(PYTHON_CREDENTIALS).unwrap();
    let blob = vault.encrypt(oauth.to_json().as_bytes());
    let expiry = python(PY_EXPIRY, &format!("{}\n{blob}", key.secret()));
    assert_eq!(expiry.trim(), "2025-01-20T11:30:00+00:00");
}

#[test]
fn python_rotated_multifernet_blob_decrypts_with_our_key_list() {
    let (old, new) = (FernetKey::generate(), FernetKey::generate());
    let blob = python(
        PY_ENCRYPT,
        &format!("{}\n{PYTHON_CREDENTIALS}", old.secret()),
    );
    let vault = Vault::from_key_list(&format!("{},{}", new.secret(), old.secret())).unwrap();
    let rotated = vault.rotate(blob.trim()).unwrap();
    let json = python(PY_DECRYPT, &format!("{}\n{rotated}", new.secret()));
    assert!(json.contains("\"client_id\": \"12345678-aaaa\""), "{json}");
}
