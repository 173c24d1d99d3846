//! Integration tests of `mailroom-graph` against `mailroom-sim` (started in-process on
//! port 0 by each test).

mod auth;
mod bounds;
mod bulk;
mod correlation;
mod examples;
mod faults;
mod folders;
mod messages;
mod props;
mod security;
mod support;
mod sync;
mod tls;

/// The programs in `examples/`, compiled into this binary so that CI runs them.
#[allow(dead_code)]
#[path = "../../examples/sign_in_and_read.rs"]
mod example_sign_in_and_read;
