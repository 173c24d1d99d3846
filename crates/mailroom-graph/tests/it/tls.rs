//! HTTPS with rustls on ring: the default client verifies certificates (no crypto
//! provider missing, no panic), and a caller's own client from the re-exported
//! `reqwest` reaches a server its extra root trusts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mailroom_core::{Connector, ErrorKind};
use mailroom_graph::{GraphConfig, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{ALICE, Harness, config};

/// A one-route HTTPS server (`GET /v1.0/me`) with a certificate for 127.0.0.1 signed
/// by its own test CA.
struct TlsGraph {
    url: String,
    ca_pem: String,
    answered: Arc<AtomicUsize>,
}

impl TlsGraph {
    async fn start() -> TlsGraph {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Mailroom graph test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let answered = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&answered);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = format!(r#"{{"displayName":"Alice","mail":"{ALICE}"}}"#);
                    let status = if head.starts_with(b"GET /v1.0/me ")
                        || head.starts_with(b"GET /v1.0/me?")
                    {
                        "200 OK"
                    } else {
                        "404 Not Found"
                    };
                    let answer = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    if tls.write_all(answer.as_bytes()).await.is_ok() {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    let _ = tls.shutdown().await;
                });
            }
        });
        TlsGraph {
            url: format!("https://127.0.0.1:{port}/v1.0"),
            ca_pem: ca.pem(),
            answered,
        }
    }

    fn config(&self) -> GraphConfig {
        GraphConfig::default()
            .graph_url(&self.url)
            .retry(RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            })
    }
}

#[tokio::test]
async fn the_default_client_refuses_an_unknown_certificate() {
    let h = Harness::start(config(1)).await;
    let server = TlsGraph::start().await;
    // No crypto provider installed by the test: the connector's default client must
    // bring one (ring), and must not trust the test CA.
    let err = h
        .connector_with(server.config())
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    assert_eq!(server.answered.load(Ordering::SeqCst), 0, "{err}");
    // The handshake failed on the certificate, not on anything else.
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");
}

#[tokio::test]
async fn a_callers_client_of_the_reexported_reqwest_works_over_tls() {
    let h = Harness::start(config(1)).await;
    let server = TlsGraph::start().await;
    // What `GraphConfig::http_client` tells a caller to build a client with.
    let ca = mailroom_graph::reqwest::Certificate::from_pem(server.ca_pem.as_bytes()).unwrap();
    let http: mailroom_graph::reqwest::Client = mailroom_graph::http_client_builder()
        .tls_certs_merge([ca])
        .build()
        .unwrap();
    let me = h
        .connector_with(server.config().http_client(http))
        .connect()
        .await
        .unwrap();
    assert_eq!(me.address.as_deref(), Some(ALICE));
    assert_eq!(server.answered.load(Ordering::SeqCst), 1);
}
