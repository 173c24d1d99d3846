//! The library handle of one mailbox.

use std::sync::Arc;

use crate::state::{MailboxCell, Shared};

/// Ground truth of one mailbox, readable and mutable from tests.
#[derive(Clone, Debug)]
pub struct Mailbox {
    shared: Arc<Shared>,
    cell: Arc<MailboxCell>,
}

/// One message as the ground truth sees it.
#[derive(Clone, Debug)]
pub struct MessageInfo {}

/// A message to add to a mailbox.
#[derive(Clone, Debug, Default)]
pub struct NewMessage {}

impl Mailbox {
    pub(crate) fn new(shared: Arc<Shared>, cell: Arc<MailboxCell>) -> Mailbox {
        Mailbox { shared, cell }
    }

    /// The mailbox address (lowercase).
    pub fn address(&self) -> &str {
        let _ = &self.shared;
        &self.cell.address
    }
}
