//! Integration tests of `mailroom-oauth` against `mailroom-sim`.

mod device_flow;
mod refresh;
mod secrets;
mod support;
