//! Connecting: a server that is not there is reported at once.

use std::time::{Duration, Instant};

use mailroom_store::Store;

#[tokio::test]
async fn a_refused_postgres_connection_fails_fast() {
    // A port nobody listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://mailroom:secret@127.0.0.1:{port}/mailroom");
    let start = Instant::now();
    let Err(err) = Store::connect(&url).await else {
        panic!("nobody listens on {port}");
    };
    let took = start.elapsed();
    // The pool alone retried until its 30 s acquire timeout.
    assert!(took < Duration::from_secs(5), "{took:?}: {err}");
    let text = err.to_string();
    assert!(
        text.starts_with("cannot connect to postgres://mailroom:"),
        "{text}"
    );
    assert!(!text.contains("secret"), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(err.is_transient(), "{text}");
}
