//! Integration tests of `mailroom-core` through its public API.

mod credentials;
