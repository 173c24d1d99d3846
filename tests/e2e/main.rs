//! Mailroom end to end: the real `mailroom` binary, run as separate processes, against
//! `mailroom-sim` (started in this process on a free port), a private Dovecot and the
//! test PostgreSQL (`cargo xtask ci` starts it; `MAILROOM_TEST_POSTGRES_URL` points
//! elsewhere). A test that needs a server starts it or fails saying how — none skips.
//!
//! - `full_flow`: add → sync → list → move → delete → sync on SQLite equals the
//!   simulator; an idle sync costs one Graph request per folder.
//! - `no_loss`: 300 messages (and changes) between two syncs; a sync SIGKILLed at
//!   random points 20 times, with mail changing in between, ends equal to the server.
//! - `crash`: `mailroom sync` SIGKILLed 50 times 100–250 ms after refreshes,
//!   under strict rotation and Retry-After faults, loses no account (every rotated
//!   refresh token was stored before use).
//! - `tokens`: strict refresh token rotation across three expiries; a revoked grant
//!   stops one account of three and only that one.
//! - `scale_out`: 200 accounts, three worker processes on one PostgreSQL schema; a
//!   SIGKILLed worker's leases run out and another worker finishes its accounts.
//! - `ops`: request ids in `account show`, `--log-format json`, and the worker's
//!   `/status` agreeing with `mailroom doctor --json`; `/readyz`, `/metrics`.
//! - `imap`: password and XOAUTH2 (introspected by Dovecot through the simulator)
//!   accounts against Dovecot; expunges and appends between syncs.
//!
//! Every test ends by checking that no token, refresh token, device code or key
//! appears in anything the binary printed (`support::Env`'s drop).

mod crash;
mod full_flow;
mod imap;
mod no_loss;
mod ops;
mod scale_out;
mod support;
mod tokens;
