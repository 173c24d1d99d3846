//! HTTPS: the certificate (made at start or read from PEM files) and a
//! listener that hands axum finished TLS connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::Tls;
use crate::{Error, Result};

/// A handshake that takes longer is dropped (a client that connects and
/// says nothing must not hold a task for ever).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server side of TLS, and the CA certificate when it was made here.
pub(crate) struct Identity {
    pub(crate) config: Arc<rustls::ServerConfig>,
    /// PEM of the CA that signed a certificate made at start.
    pub(crate) ca_pem: Option<String>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "[pem]"))
            .finish_non_exhaustive()
    }
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Tls(format!("{what}: {e}"))
}

/// Makes or reads the certificate; `extra_host` (the public URL's host) is
/// added to the names of a certificate made here.
pub(crate) fn identity(tls: &Tls, extra_host: Option<&str>) -> Result<Identity> {
    let (chain, key, ca_pem) = match tls {
        Tls::SelfSigned => {
            let (chain, key, ca) = self_signed(extra_host)?;
            (chain, key, Some(ca))
        }
        Tls::Files { cert, key } => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| tls_error(&format!("cannot read {}", cert.display()), e))?;
            if chain.is_empty() {
                return Err(Error::Tls(format!("no certificate in {}", cert.display())));
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| tls_error(&format!("cannot read {}", key.display()), e))?;
            (chain, key, None)
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("cannot set up TLS", e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| tls_error("cannot use the certificate", e))?;
    // The server speaks HTTP/1.1 only; clients offering h2 fall back.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Identity {
        config: Arc::new(config),
        ca_pem,
    })
}

/// A throw-away CA and a server certificate it signed (a CA rather than
/// one self-signed leaf, so strict verifiers accept the chain).
fn self_signed(
    extra_host: Option<&str>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String)> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let err = |e: rcgen::Error| tls_error("cannot make a certificate", e);
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.distinguished_name
        .push(DnType::CommonName, "mailroom-sim test CA");
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;

    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(h) = extra_host.map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        && !names.iter().any(|n| n.eq_ignore_ascii_case(h))
    {
        names.push(h.to_owned());
    }
    let leaf_key = KeyPair::generate().map_err(err)?;
    let mut leaf = CertificateParams::new(names).map_err(err)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "mailroom-sim");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).map_err(err)?;
    let key = PrivateKeyDer::try_from(leaf_key.serialize_der())
        .map_err(|e| tls_error("cannot use the key", e))?;
    Ok((
        vec![leaf_cert.der().clone(), ca_cert.der().clone()],
        key,
        ca_cert.pem(),
    ))
}

/// Accepts TCP connections and completes their handshakes in tasks of
/// their own, so one slow client does not hold up the others.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
    accepting: JoinHandle<()>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl TlsListener {
    pub(crate) fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> Result<Self> {
        let addr = tcp
            .local_addr()
            .map_err(|source| Error::Bind { port: 0, source })?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, go on.
                        tracing::debug!(error = %e, "mailroom-sim cannot accept");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            addr,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accepting task never ends on its own; if it is gone the
            // server is stopping: wait for that.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
