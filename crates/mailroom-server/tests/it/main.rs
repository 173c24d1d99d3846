//! Tests of the worker's HTTP face: a real listener on loopback, a real store
//! (SQLite, and PostgreSQL behind a proxy that can go away), `mailroom-sim` for
//! Graph, and Chromium for the status page.

mod browser;
mod metrics;
mod probes;
mod push;
mod status;
mod support;
