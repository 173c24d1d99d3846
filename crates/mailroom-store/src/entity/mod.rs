//! sea-orm entities. Private to this crate: the public API speaks `mailroom-core` types.

pub(crate) mod account;
pub(crate) mod attachment;
pub(crate) mod folder;
pub(crate) mod message;
pub(crate) mod push_subscription;
