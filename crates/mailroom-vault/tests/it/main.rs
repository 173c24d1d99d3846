//! Integration tests of mailroom-vault: the Fernet spec's vectors and live interop with
//! Python's `cryptography.fernet`.

mod examples;
mod interop;
mod props;
mod spec;
mod vault;

/// The programs in `examples/`, compiled into this binary so that CI runs them.
#[allow(dead_code)]
#[path = "../../examples/python_interop.rs"]
mod example_python_interop;
