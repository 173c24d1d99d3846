//! Which connector serves an account.

use std::sync::Arc;

use mailroom_core::{
    AccountKind, Connector, ConnectorError, Credentials, DEFAULT_IMAP_PORT, ImapAuth,
    ImapCredentials, ImapTls,
};
use mailroom_graph::{GraphConfig, GraphConnector};
use mailroom_imap::{ImapConnector, ImapOptions};
use mailroom_store::Account;

use crate::push::SubscriptionApi;

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

    /// An IMAP connector of `account` for IDLE watching (see [`crate::IdleWatchers`]),
    /// or `None` when this factory does not serve the account over IMAP (the default).
    fn idle_connector(
        &self,
        account: &Account,
        credentials: Credentials,
    ) -> Option<Result<ImapConnector, ConnectorError>> {
        let _ = (account, credentials);
        None
    }

    /// The change-notification calls for `account`, when its server has them (Graph);
    /// `None` (the default): the account is polled only.
    fn subscriptions(
        &self,
        account: &Account,
        credentials: Credentials,
    ) -> Result<Option<Arc<dyn SubscriptionApi>>, ConnectorError> {
        let _ = (account, credentials);
        Ok(None)
    }
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

/// Gmail's IMAP server, for `gmail` accounts whose credentials do not name a host.
pub const GMAIL_IMAP_HOST: &str = "imap.gmail.com";

/// The production factory: Graph for OAuth2 Outlook accounts, IMAP otherwise.
#[derive(Debug, Clone)]
pub struct DefaultFactory {
    /// Identity platform host (`https://login.microsoftonline.com`, or the simulator).
    pub authority_url: String,
    /// Graph settings (URL, shared HTTP client, immutable ids, …).
    pub graph: GraphConfig,
    /// IMAP settings (CA file, page size, …); its `authority_url` is set from
    /// [`authority_url`](Self::authority_url).
    pub imap: ImapOptions,
}

impl DefaultFactory {
    /// A factory for this identity platform host and Graph root. Its Graph connectors
    /// share `graph`'s HTTP client, or one client made here when `graph` has none.
    pub fn new(authority_url: impl Into<String>, graph: GraphConfig, imap: ImapOptions) -> Self {
        let authority_url = authority_url.into();
        // When the client cannot be built, each connector says so itself.
        let graph = graph.clone().with_shared_http_client().unwrap_or(graph);
        let imap = imap.authority_url(authority_url.clone());
        DefaultFactory {
            authority_url,
            graph,
            imap,
        }
    }
}

impl DefaultFactory {
    /// The IMAP credentials `account` is served with, if it is served over IMAP.
    fn imap_credentials(account: &Account, credentials: Credentials) -> Option<ImapCredentials> {
        match (account.kind, credentials) {
            (_, Credentials::Imap(creds)) => Some(creds),
            (AccountKind::Gmail, Credentials::OAuth(oauth)) => Some(ImapCredentials {
                host: GMAIL_IMAP_HOST.to_owned(),
                port: DEFAULT_IMAP_PORT,
                tls: ImapTls::Implicit,
                username: Some(account.email.clone()),
                auth: ImapAuth::OAuth(oauth),
                extra: Default::default(),
            }),
            _ => None,
        }
    }
}

impl ConnectorFactory for DefaultFactory {
    fn idle_connector(
        &self,
        account: &Account,
        credentials: Credentials,
    ) -> Option<Result<ImapConnector, ConnectorError>> {
        let creds = Self::imap_credentials(account, credentials)?;
        Some(ImapConnector::new(creds, &account.email, self.imap.clone()))
    }

    fn subscriptions(
        &self,
        account: &Account,
        credentials: Credentials,
    ) -> Result<Option<Arc<dyn SubscriptionApi>>, ConnectorError> {
        match (account.kind, credentials) {
            (AccountKind::Outlook, Credentials::OAuth(oauth)) => {
                Ok(Some(Arc::new(GraphConnector::from_credentials(
                    &account.email,
                    oauth,
                    &self.authority_url,
                    self.graph.clone(),
                )?)))
            }
            _ => Ok(None),
        }
    }

    fn connector(
        &self,
        account: &Account,
        credentials: Credentials,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        let imap = |creds: ImapCredentials| -> Result<Arc<dyn Connector>, ConnectorError> {
            Ok(Arc::new(ImapConnector::new(
                creds,
                &account.email,
                self.imap.clone(),
            )?))
        };
        match (account.kind, credentials) {
            (_, Credentials::Imap(creds)) => imap(creds),
            (AccountKind::Outlook, Credentials::OAuth(oauth)) => {
                Ok(Arc::new(GraphConnector::from_credentials(
                    &account.email,
                    oauth,
                    &self.authority_url,
                    self.graph.clone(),
                )?))
            }
            // Gmail with an OAuth2 token the caller keeps fresh: XOAUTH2 on Gmail's IMAP.
            (AccountKind::Gmail, Credentials::OAuth(oauth)) => imap(ImapCredentials {
                host: GMAIL_IMAP_HOST.to_owned(),
                port: DEFAULT_IMAP_PORT,
                tls: ImapTls::Implicit,
                username: Some(account.email.clone()),
                auth: ImapAuth::OAuth(oauth),
                extra: Default::default(),
            }),
            (AccountKind::Imap, Credentials::OAuth(_)) => Err(ConnectorError::new(
                mailroom_core::ErrorKind::InvalidConfig,
                format!(
                    "account {} is an imap account but its credentials have no \"type\": \"imap\" (host, port, login)",
                    account.email
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connectors of a factory built without an HTTP client share one (a worker
    /// otherwise built a client, and a connection, for every account sync).
    #[test]
    fn a_factory_without_an_http_client_makes_one_for_all_its_connectors() {
        let bare = GraphConfig::default();
        assert!(format!("{bare:?}").contains("http: false"), "{bare:?}");
        let factory = DefaultFactory::new(
            "https://login.microsoftonline.com",
            bare,
            ImapOptions::default(),
        );
        assert!(
            format!("{:?}", factory.graph).contains("http: true"),
            "{:?}",
            factory.graph
        );
    }
}
