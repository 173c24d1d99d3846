//! Tests of the sync engine and worker with a scripted in-memory connector and a real
//! store (in-memory SQLite and PostgreSQL); `vanished` also runs the real connectors
//! against mailroom-sim and Dovecot. End-to-end tests against mailroom-sim,
//! Dovecot and the real binary live in the workspace's `tests/` crate.

mod engine;
mod fake;
mod vanished;
mod worker;
