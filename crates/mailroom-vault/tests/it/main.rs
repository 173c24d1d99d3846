//! Integration tests of mailroom-vault: the Fernet spec's vectors and live interop with
//! Python's `cryptography.fernet`.

mod interop;
mod spec;
mod vault;
