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
    assert_eq!(expiry.trim(), "2025-01-20T11:30:00");
}

// The Python system's expiry check on a stored row: decrypt, `fromisoformat`, compare
// with the naive `datetime.utcnow()`. Also checks the string against the grammar of
// `fromisoformat` before Python 3.11 (`YYYY-MM-DD*HH[:MM[:SS[.fff[fff]]]]` plus an
// optional offset, no `Z`) and that it is naive, as the Python system wrote it.
// Prints the expiry string, then whether the token counts as expired.
const PY_CHECK_EXPIRY: &str = r#"
import datetime, json, re, sys
from cryptography.fernet import Fernet
key, token = sys.stdin.read().split("\n", 1)
creds = json.loads(Fernet(key.encode()).decrypt(token.strip().encode()))
expiry = creds["expiry"]
BEFORE_3_11 = r"\d{4}-\d{2}-\d{2}.\d{2}(:\d{2}(:\d{2}(\.\d{3}(\d{3})?)?)?)?([+-]\d{2}:\d{2}(:\d{2}(\.\d{6})?)?)?"
assert re.fullmatch(BEFORE_3_11, expiry, re.ASCII), f"fromisoformat before 3.11 rejects {expiry!r}"
parsed = datetime.datetime.fromisoformat(expiry)
assert parsed.tzinfo is None, f"{expiry!r} is not naive"
expired = datetime.datetime.utcnow() >= parsed - datetime.timedelta(minutes=5)
print(expiry)
print(expired)
"#;

// The Python system's sign-in: `expiry` from `utcnow() + expires_in`, `isoformat()`.
const PY_SIGN_IN: &str = r#"
import datetime, json, sys
from cryptography.fernet import Fernet
key = sys.stdin.read().strip()
expiry = datetime.datetime.utcnow() + datetime.timedelta(seconds=3599)
creds = {"token": "at", "refresh_token": "rt", "client_id": "app", "tenant_id": "common",
         "scopes": ["offline_access"], "expiry": expiry.isoformat()}
print(expiry.isoformat())
print(Fernet(key.encode()).encrypt(json.dumps(creds).encode()).decode())
"#;

/// Python's verdict on a row Mailroom stored: `(expiry string, expired?)`.
fn python_checks(vault: &Vault, key: &FernetKey, creds: &Credentials) -> (String, bool) {
    let blob = vault.encrypt(creds.to_json().as_bytes());
    let out = python(PY_CHECK_EXPIRY, &format!("{}\n{blob}", key.secret()));
    let mut lines = out.lines();
    let expiry = lines.next().unwrap().to_owned();
    let expired = match lines.next() {
        Some("True") => true,
        Some("False") => false,
        other => panic!("unexpected python output {other:?}"),
    };
    (expiry, expired)
}

#[test]
fn python_reads_and_compares_every_expiry_mailroom_writes() {
    let key = FernetKey::generate();
    let vault = Vault::new(vec![key.clone()]).unwrap();
    let mut creds = Credentials::from_json(PYTHON_CREDENTIALS).unwrap();
    let now = chrono::Utc::now();
    // What a fresh sign-in or refresh stores: now + expires_in, with nanoseconds.
    let fresh = now + chrono::TimeDelta::nanoseconds(3_599_123_456_789);
    let cases = [
        (fresh, false),
        (now + chrono::TimeDelta::hours(1), false),
        (now - chrono::TimeDelta::minutes(1), true),
        (now + chrono::TimeDelta::minutes(4), true),
    ];
    for (expiry, expired) in cases {
        creds.oauth_mut().unwrap().expiry = Some(expiry);
        let (written, python_expired) = python_checks(&vault, &key, &creds);
        assert_eq!(python_expired, expired, "{written}");
        // Mailroom's own reading of what it wrote agrees to the microsecond.
        let back = vault
            .decrypt_json::<Credentials>(&vault.encrypt(creds.to_json().as_bytes()))
            .unwrap();
        let back = back.oauth().unwrap().expiry.unwrap();
        assert_eq!(
            back.timestamp_micros(),
            expiry.timestamp_micros(),
            "{written}"
        );
    }
    // Whole seconds are written without a fraction, as Python's isoformat() does.
    creds.oauth_mut().unwrap().expiry =
        Some(chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap());
    let (written, _) = python_checks(&vault, &key, &creds);
    assert_eq!(written.len(), "2025-01-20T11:30:00".len(), "{written}");
    // The same for an IMAP XOAUTH2 row.
    let imap = Credentials::from_json(
        r#"{"type":"imap","host":"outlook.office365.com","token":"at","refresh_token":"rt","client_id":"c","expiry":"2030-01-01T00:00:00.5Z"}"#,
    )
    .unwrap();
    let (written, expired) = python_checks(&vault, &key, &imap);
    assert_eq!(
        (written.as_str(), expired),
        ("2030-01-01T00:00:00.500000", false)
    );
}

#[test]
fn mailroom_reads_python_expiry_and_writes_it_back_unchanged() {
    let key = FernetKey::generate();
    let vault = Vault::new(vec![key.clone()]).unwrap();
    let out = python(PY_SIGN_IN, key.secret());
    let (python_expiry, blob) = out.trim().split_once('\n').unwrap();
    let creds = vault.decrypt_json::<Credentials>(blob.trim()).unwrap();
    let oauth = creds.oauth().unwrap();
    let expiry = oauth.expiry.unwrap();
    // Naive means UTC: about an hour from now, whatever this machine's time zone.
    let left = expiry - chrono::Utc::now();
    assert!(
        left > chrono::TimeDelta::minutes(55) && left <= chrono::TimeDelta::hours(1),
        "{python_expiry} is {left} from now"
    );
    assert!(!oauth.is_expired(chrono::Utc::now()));
    // Written back byte-for-byte as Python wrote it, and Python still agrees.
    let (written, expired) = python_checks(&vault, &key, &creds);
    assert_eq!(written, python_expiry);
    assert!(!expired);
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
