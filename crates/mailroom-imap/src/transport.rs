//! TCP + TLS (rustls) streams and the IMAP login: implicit TLS, STARTTLS, plain text
//! to loopback only; LOGIN/PLAIN with a password, SASL XOAUTH2 with a bearer token.

use std::fmt;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use mailroom_core::{ConnectorError, ErrorKind, ImapTls};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The byte stream under an IMAP session: plain TCP (loopback only) or TLS.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stream::Plain(_) => f.write_str("Stream::Plain"),
            Stream::Tls(_) => f.write_str("Stream::Tls"),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A stream whose incoming bytes pass a [`Guard`](crate::proto::guard::Guard) before
/// the IMAP parser reads them: a response over the budget fails the read with an
/// [`io::ErrorKind::InvalidData`] error naming the limit.
pub struct Guarded<S> {
    inner: S,
    guard: crate::proto::guard::Guard,
    /// Checked bytes not yet read by the parser.
    ready: Vec<u8>,
    pos: usize,
    failed: Option<crate::proto::guard::TooLarge>,
}

impl<S> Guarded<S> {
    /// `inner` with a budget of `limit` bytes per response.
    pub fn new(inner: S, limit: u64) -> Self {
        Guarded {
            inner,
            guard: crate::proto::guard::Guard::new(limit),
            ready: Vec::new(),
            pos: 0,
            failed: None,
        }
    }

    /// The stream inside (for STARTTLS: nothing may be pending then).
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S> fmt::Debug for Guarded<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Guarded")
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pos < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.pos);
                buf.put_slice(&this.ready[this.pos..this.pos + n]);
                this.pos += n;
                if this.pos == this.ready.len() {
                    this.ready.clear();
                    this.pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = &this.failed {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e.clone())));
            }
            let mut raw = [0u8; 16 * 1024];
            let mut raw_buf = ReadBuf::new(&mut raw);
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut raw_buf))?;
            let got = raw_buf.filled();
            if got.is_empty() {
                return Poll::Ready(Ok(()));
            }
            if let Err(e) = this.guard.feed(got, &mut this.ready) {
                // Nothing more reaches the parser: not even the bytes checked before.
                this.ready.clear();
                this.pos = 0;
                this.failed = Some(e);
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

pub use mailroom_core::endpoint::is_loopback_host;

/// Refuses plain text to anything but loopback.
pub fn check_tls_policy(host: &str, tls: ImapTls) -> Result<(), ConnectorError> {
    if tls == ImapTls::None && !is_loopback_host(host) {
        return Err(ConnectorError::new(
            ErrorKind::InvalidConfig,
            format!(
                "cannot connect to {host} without tls: plain-text imap is only allowed to loopback hosts; use \"implicit\" or \"starttls\""
            ),
        ));
    }
    Ok(())
}

/// Builds the rustls client config: the Mozilla roots plus the certificates of
/// `ca_file` (PEM), with the ring provider.
pub fn tls_connector(ca_file: Option<&Path>) -> Result<TlsConnector, ConnectorError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let invalid = |e: String| {
            ConnectorError::new(
                ErrorKind::InvalidConfig,
                format!("cannot read ca file {}: {e}", path.display()),
            )
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| invalid(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(e.to_string()))?;
        if certs.is_empty() {
            return Err(invalid("no certificate in it".to_owned()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| invalid(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            ConnectorError::new(ErrorKind::InvalidConfig, format!("cannot set up tls: {e}"))
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Opens TCP to `host:port`.
pub async fn tcp(host: &str, port: u16) -> Result<TcpStream, ConnectorError> {
    let stream = TcpStream::connect((host, port)).await.map_err(|e| {
        ConnectorError::new(
            ErrorKind::Transient,
            format!("cannot connect to {host}:{port}: {e}"),
        )
        .with_source(e)
    })?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Runs the TLS handshake over `tcp`.
pub async fn handshake(
    connector: &TlsConnector,
    host: &str,
    tcp: TcpStream,
) -> Result<Stream, ConnectorError> {
    let name = ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    )
    .map_err(|e| {
        ConnectorError::new(
            ErrorKind::InvalidConfig,
            format!("{host} is not a valid tls server name: {e}"),
        )
    })?;
    let tls = connector.connect(name, tcp).await.map_err(|e| {
        // Certificate problems are configuration, not luck: retrying will not help.
        let kind = if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
            ErrorKind::InvalidConfig
        } else {
            ErrorKind::Transient
        };
        ConnectorError::new(kind, format!("tls handshake with {host} failed: {e}")).with_source(e)
    })?;
    Ok(Stream::Tls(Box::new(tls)))
}

/// The SASL XOAUTH2 exchange: the initial response, then an empty answer to the
/// server's error challenge so that it ends the exchange with a tagged NO.
pub struct XOAuth2 {
    response: Option<String>,
}

impl XOAuth2 {
    /// An exchange for `user` with `access_token`.
    pub fn new(user: &str, access_token: &str) -> Self {
        XOAuth2 {
            response: Some(crate::proto::xoauth2_response(user, access_token)),
        }
    }
}

impl fmt::Debug for XOAuth2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("XOAuth2([redacted])")
    }
}

impl async_imap::Authenticator for XOAuth2 {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> String {
        self.response.take().unwrap_or_default()
    }
}

/// SASL PLAIN: `\0user\0password` (used for passwords that LOGIN cannot quote).
pub struct Plain {
    response: Option<String>,
}

impl Plain {
    /// An exchange for `user` with `password`.
    pub fn new(user: &str, password: &str) -> Self {
        Plain {
            response: Some(format!("\0{user}\0{password}")),
        }
    }
}

impl fmt::Debug for Plain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Plain([redacted])")
    }
}

impl async_imap::Authenticator for Plain {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> String {
        self.response.take().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_imap::Authenticator;

    #[test]
    fn plain_text_only_to_loopback() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.5.6.7",
            "::1",
            "[::1]",
        ] {
            assert!(check_tls_policy(host, ImapTls::None).is_ok(), "{host}");
        }
        for host in [
            "imap.example.com",
            "10.0.0.1",
            "192.168.1.2",
            "localhost.example.com",
            "0.0.0.0",
        ] {
            let err = check_tls_policy(host, ImapTls::None).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{host}");
            assert!(
                err.to_string().contains("only allowed to loopback"),
                "{err}"
            );
            assert!(check_tls_policy(host, ImapTls::Implicit).is_ok());
            assert!(check_tls_policy(host, ImapTls::Starttls).is_ok());
        }
    }

    #[test]
    fn sasl_exchanges_answer_once_then_empty() {
        let mut x = XOAuth2::new("u@example.com", "tok");
        assert_eq!(
            x.process(b""),
            "user=u@example.com\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(x.process(b"{\"status\":\"401\"}"), "");
        assert_eq!(format!("{x:?}"), "XOAuth2([redacted])");
        let mut p = Plain::new("u", "pässword");
        assert_eq!(p.process(b""), "\0u\0pässword");
        assert_eq!(p.process(b""), "");
    }

    #[test]
    fn bad_ca_file_is_a_config_error() {
        let dir = std::env::temp_dir().join(format!("mailroom-imap-ca-{}", std::process::id()));
        std::fs::write(&dir, "not a certificate").unwrap();
        let err = tls_connector(Some(&dir)).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.to_string().starts_with("cannot read ca file"), "{err}");
        let _ = std::fs::remove_file(&dir);
        let err = tls_connector(Some(Path::new("/nonexistent/ca.pem")))
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    }
}
