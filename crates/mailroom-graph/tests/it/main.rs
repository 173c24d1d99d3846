//! Integration tests of `mailroom-graph` against `mailroom-sim` (started in-process on
//! port 0 by each test).

mod auth;
mod bulk;
mod faults;
mod folders;
mod messages;
mod security;
mod support;
mod sync;
