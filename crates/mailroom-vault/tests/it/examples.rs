//! The crate's examples, run against Python's `cryptography.fernet` as a user would.

use crate::example_python_interop::run;
use crate::interop::python;

#[test]
fn python_interop_opens_a_python_token_and_python_opens_the_rotated_one() {
    let pair = python(
        r#"
from cryptography.fernet import Fernet
key = Fernet.generate_key()
print(key.decode())
print(Fernet(key).encrypt(b'{"token": "EwB", "tenant_id": "common"}').decode())
"#,
        "",
    );
    let (old_key, token) = pair.trim().split_once('\n').unwrap();

    let rotated = run(old_key, token).unwrap();
    assert_eq!(rotated.fields["token"], "EwB");
    assert_eq!(rotated.fields["tenant_id"], "common");
    assert_ne!(rotated.token, token);

    // Python opens the new token with the new key alone, and MultiFernet with both.
    let opened = python(
        r#"
import sys
from cryptography.fernet import Fernet, MultiFernet
new, old, token = sys.stdin.read().split()
alone = Fernet(new.encode()).decrypt(token.encode())
both = MultiFernet([Fernet(new.encode()), Fernet(old.encode())]).decrypt(token.encode())
assert alone == both
print(alone.decode())
"#,
        &format!("{}\n{old_key}\n{}", rotated.new_key, rotated.token),
    );
    // Rotation re-seals the very bytes Python wrote.
    assert_eq!(opened.trim(), r#"{"token": "EwB", "tenant_id": "common"}"#);

    // The old key alone no longer opens it.
    let err = run(old_key, &rotated.token).unwrap_err();
    assert!(err.is_wrong_key(), "{err}");
}
