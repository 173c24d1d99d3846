//! Mailbox content.

use chrono::{DateTime, Utc};

use crate::config::MailboxSpec;

/// The content of one mailbox.
#[derive(Debug, Default)]
pub(crate) struct Store {
    delta_epoch: u64,
}

impl Store {
    pub(crate) fn generate(_spec: &MailboxSpec, _now: DateTime<Utc>) -> crate::Result<Store> {
        Ok(Store::default())
    }

    pub(crate) fn expire_delta_tokens(&mut self) {
        self.delta_epoch += 1;
    }
}
