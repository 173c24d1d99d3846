//! The `mailroom` binary end to end against `mailroom-sim`, started in-process.
//!
//! - `flow`: add through the device code flow, sync, list, show, move, delete, worker.
//! - `keys`: key file creation, generate, rotate, drop-old, permissions.
//! - `failures`: exit codes 2, 3, 4 and the plain-words errors.

mod failures;
mod flow;
mod hardening;
mod keys;
mod support;
