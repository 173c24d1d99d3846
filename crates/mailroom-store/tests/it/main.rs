//! Integration tests of mailroom-store, each run on in-memory SQLite AND on a real
//! PostgreSQL (a fresh schema per test; `cargo xtask ci` starts the server).

mod accounts;
mod claims;
mod connect;
mod examples;
mod folders;
mod leases;
mod overview;
mod pages;
mod push;
mod queries;
mod support;
mod values;

/// The programs in `examples/`, compiled into this binary so that CI runs them.
#[allow(dead_code)]
#[path = "../../examples/embedded_sqlite.rs"]
mod example_embedded_sqlite;
