//! The protocol side: Graph JSON and query text in, values out. No sockets, no
//! clocks (callers pass "now"), so everything here is tested with fixtures.

pub mod batch;
pub mod error;
pub mod folder;
pub mod html;
pub mod message;
pub mod odata;
pub mod retry;
pub mod subscription;
