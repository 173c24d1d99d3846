//! The `mailroom` binary end to end against `mailroom-sim`, started in-process.
//!
//! - `flow`: add through the device code flow, sync, list, show, move, delete, worker.
//! - `keys`: key file creation, generate, rotate, drop-old, permissions.
//! - `failures`: exit codes 2, 3, 4 and the plain-words errors.
//! - `folders`: the synced folders (add, remove, --all-folders, sync --folder), vanished ones.

mod failures;
mod flow;
mod folders;
mod hardening;
mod keys;
mod push;
mod support;
