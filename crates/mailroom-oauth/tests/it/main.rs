//! Integration tests of `mailroom-oauth` against `mailroom-sim`.

mod device_flow;
mod examples;
mod refresh;
mod secrets;
mod support;

/// The programs in `examples/`, compiled into this binary so that CI runs them.
#[allow(dead_code)]
#[path = "../../examples/device_code_and_refresh.rs"]
mod example_device_code_and_refresh;
