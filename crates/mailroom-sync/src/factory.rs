//! Which connector serves an account.

use std::sync::Arc;

use mailroom_core::{Connector, ConnectorError, Credentials};
use mailroom_store::Account;

/// Builds the connector for an account from its decrypted credentials.
///
/// The rule (the Python system's): an `outlook` account with OAuth2 credentials uses
/// Graph; credentials with `"type": "imap"` use IMAP whatever the kind (the fallback);
/// `imap` accounts use IMAP; `gmail` uses IMAP on imap.gmail.com (app password or a
/// caller-supplied XOAUTH2 token).
pub trait ConnectorFactory: Send + Sync {
    /// The connector for `account`.
    fn connector(
        &self,
        account: &Account,
        credentials: Credentials,
    ) -> Result<Arc<dyn Connector>, ConnectorError>;
}

impl<F> ConnectorFactory for F
where
    F: Fn(&Account, Credentials) -> Result<Arc<dyn Connector>, ConnectorError> + Send + Sync,
{
    fn connector(
        &self,
        account: &Account,
        credentials: Credentials,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        self(account, credentials)
    }
}
