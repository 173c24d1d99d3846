//! Integration tests of `mailroom-imap` against a real, private Dovecot
//! (`mailroom_imap::testing::Dovecot`) and, for XOAUTH2, `mailroom-sim`.

mod auth;
mod examples;
mod fetch;
mod folders;
mod garbled;
mod idle;
mod metrics;
mod mutate;
mod pages;
mod partial;
mod props;
mod support;
mod sync;
mod tls;
mod xoauth2;

/// The programs in `examples/`, compiled into this binary so that CI runs them.
#[allow(dead_code)]
#[path = "../../examples/imap_read.rs"]
mod example_imap_read;
