//! Tests of the sync engine and worker with a scripted in-memory connector and a real
//! store (in-memory SQLite and PostgreSQL); `vanished` also runs the real connectors
//! against mailroom-sim and Dovecot. End-to-end tests against mailroom-sim,
//! Dovecot and the real binary live in the workspace's `tests/` crate.

mod engine;
mod examples;
mod fake;
mod vanished;
mod worker;

/// The programs in `examples/`, compiled into this binary so that CI runs them.
#[allow(dead_code)]
#[path = "../../examples/custom_factory.rs"]
mod example_custom_factory;
