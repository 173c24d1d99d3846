//! Open a value that Python's `cryptography.fernet` sealed, and seal one that Python
//! opens: what a deployment of the Python system keeps in its database. Nothing but
//! `mailroom-vault` (and std).
//!
//! ```sh
//! python3 -c 'from cryptography.fernet import Fernet; k = Fernet.generate_key(); \
//!   print(k.decode()); print(Fernet(k).encrypt(b"{\"token\": \"t\"}").decode())' > /tmp/pair
//! FERNET_KEYS=$(sed -n 1p /tmp/pair) cargo run -p mailroom-vault --example python_interop -- "$(sed -n 2p /tmp/pair)"
//! ```
//!
//! It prints the plaintext, then a new token under a freshly generated key listed first
//! (a key rotation): `Fernet(new_key).decrypt(token)` or `MultiFernet` opens it in Python.

use std::collections::BTreeMap;

use mailroom_vault::{FernetKey, Vault};

/// What one run made.
#[derive(Debug)]
pub struct Rotated {
    /// The JSON fields of the opened value.
    pub fields: BTreeMap<String, String>,
    /// The key that now encrypts (first in the list), in Python's text form.
    pub new_key: String,
    /// The value sealed again under `new_key`.
    pub token: String,
}

/// Opens `token` with the keys in `key_list` (comma or newline separated, newest first,
/// as `MultiFernet` takes them), then seals it again under a new key.
pub fn run(key_list: &str, token: &str) -> Result<Rotated, mailroom_vault::Error> {
    let vault = Vault::from_key_list(key_list)?;
    // Any serde type works; a map of strings needs no derive.
    let fields: BTreeMap<String, String> = vault.decrypt_json(token)?;

    // Rotation: a new key first; the old ones still open older values.
    let new_key = FernetKey::generate();
    let mut keys = vec![new_key.clone()];
    keys.extend(mailroom_vault::parse_key_list(key_list)?);
    let rotated = Vault::new(keys)?;
    let token = rotated.rotate(token)?;
    Ok(Rotated {
        fields,
        new_key: new_key.secret().to_owned(),
        token,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keys = std::env::var("FERNET_KEYS").map_err(|_| "set FERNET_KEYS to the key list")?;
    let token = std::env::args()
        .nth(1)
        .ok_or("give the token as the argument")?;
    let rotated = run(&keys, &token)?;
    for (name, value) in &rotated.fields {
        println!("{name} = {value}");
    }
    println!("new key: {}", rotated.new_key);
    println!("{}", rotated.token);
    Ok(())
}
