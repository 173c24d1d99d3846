//! Integration tests of `mailroom-imap` against a real, private Dovecot
//! (`mailroom_imap::testing::Dovecot`) and, for XOAUTH2, `mailroom-sim`.

mod auth;
mod fetch;
mod folders;
mod garbled;
mod mutate;
mod support;
mod sync;
mod tls;
mod xoauth2;
