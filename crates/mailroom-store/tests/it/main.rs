//! Integration tests of mailroom-store, each run on in-memory SQLite AND on a real
//! PostgreSQL (a fresh schema per test; `cargo xtask ci` starts the server).

mod accounts;
mod folders;
mod leases;
mod pages;
mod queries;
mod support;
mod values;
