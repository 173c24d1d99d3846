//! A hostile Graph server (written here, on a loopback port): links that loop, answers
//! without end, answers that drip. Every call ends with a clear error, in bounded time
//! and memory. Tokens come from the simulator.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mailroom_core::{Connector, ErrorKind, FolderRef};
use mailroom_graph::{GraphConfig, GraphConnector, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{Harness, config};

/// What the hostile server does with one request (its path and query).
#[derive(Clone)]
enum Answer {
    /// 200 with this JSON.
    Json(String),
    /// 200 announcing `len` bytes and sending them (`announce`: with
    /// `Content-Length`; else until the connection closes).
    Endless { len: usize, announce: bool },
    /// 200 headers, then one byte every `every`.
    Drip { every: Duration },
}

struct Hostile {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl Hostile {
    async fn start(script: impl Fn(&str, &str) -> Answer + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1.0", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(script);
        let base = url.clone();
        let count = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let script = script.clone();
                let base = base.clone();
                let count = count.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, &*script, &base, &count).await;
                });
            }
        });
        Hostile { url, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn serve(
    mut stream: TcpStream,
    script: &(dyn Fn(&str, &str) -> Answer + Send + Sync),
    base: &str,
    count: &AtomicUsize,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    count.fetch_add(1, Ordering::SeqCst);
    let head = String::from_utf8_lossy(&head);
    let target = head.split(' ').nth(1).unwrap_or("/");
    let target = target.strip_prefix("/v1.0").unwrap_or(target);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match script(path, query) {
        Answer::Json(body) => {
            let body = body.replace("{base}", base);
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(reply.as_bytes()).await?;
        }
        Answer::Endless { len, announce } => {
            let length = if announce {
                format!("content-length: {len}\r\n")
            } else {
                String::new()
            };
            stream
                .write_all(
                    format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{length}connection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await?;
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < len {
                let n = chunk.len().min(len - sent);
                stream.write_all(&chunk[..n]).await?;
                sent += n;
            }
        }
        Answer::Drip { every } => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\nconnection: close\r\n\r\n")
                .await?;
            for _ in 0..1000 {
                tokio::time::sleep(every).await;
                stream.write_all(b" ").await?;
            }
        }
    }
    stream.shutdown().await
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        ..RetryPolicy::default()
    }
}

async fn connector(h: &Harness, hostile: &Hostile, config: GraphConfig) -> GraphConnector {
    h.connector_with(config.graph_url(&hostile.url).retry(quick()))
}

/// A delta page whose next link is `next`.
fn delta_page(next: &str) -> Answer {
    Answer::Json(format!(
        r#"{{"value":[],"@odata.nextLink":"{{base}}/me/mailFolders/inbox/messages/delta?$skiptoken={next}"}}"#
    ))
}

/// Calls `sync_folder` as a sync engine does (again while not complete), at most
/// `calls` times; the error that ended the run.
async fn run_folder(graph: &GraphConnector, calls: usize) -> mailroom_core::ConnectorError {
    let mut cursor = None;
    for _ in 0..calls {
        match graph.sync_folder(&FolderRef::INBOX, cursor.take()).await {
            Ok(page) => {
                assert!(!page.complete);
                cursor = Some(page.cursor);
            }
            Err(e) => return e,
        }
    }
    panic!("the run went on for {calls} pages");
}

#[tokio::test]
async fn a_next_link_that_repeats_ends_the_run() {
    let h = Harness::start(config(1)).await;
    // A link to itself.
    let hostile = Hostile::start(|_, _| delta_page("same")).await;
    let graph = connector(&h, &hostile, GraphConfig::default()).await;
    let e = run_folder(&graph, 100).await;
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(e.to_string().contains("already followed"), "{e}");
    assert!(hostile.requests() <= 3, "{}", hostile.requests());

    // A cycle of two.
    let hostile = Hostile::start(|_, q| delta_page(if q.contains("=a") { "b" } else { "a" })).await;
    let graph = connector(&h, &hostile, GraphConfig::default()).await;
    let e = run_folder(&graph, 100).await;
    assert!(e.to_string().contains("already followed"), "{e}");
    assert!(hostile.requests() <= 4, "{}", hostile.requests());

    // Attachment and folder listings follow links the same way.
    let hostile = Hostile::start(|path, _| {
        Answer::Json(format!(
            r#"{{"value":[],"@odata.nextLink":"{{base}}{path}?$skiptoken=same"}}"#
        ))
    })
    .await;
    let graph = connector(&h, &hostile, GraphConfig::default()).await;
    let e = graph.attachments("AAMk1").await.unwrap_err();
    assert!(e.to_string().contains("already followed"), "{e}");
    assert!(hostile.requests() <= 3, "{}", hostile.requests());
}

#[tokio::test]
async fn pages_per_run_are_capped() {
    let h = Harness::start(config(1)).await;
    let n = Arc::new(AtomicUsize::new(0));
    let hostile =
        Hostile::start(move |_, _| delta_page(&n.fetch_add(1, Ordering::SeqCst).to_string())).await;
    let graph = connector(&h, &hostile, GraphConfig::default().max_pages_per_run(5)).await;
    let e = run_folder(&graph, 100).await;
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    assert!(
        e.to_string().contains("more than 5 pages in one run"),
        "{e}"
    );
    assert_eq!(hostile.requests(), 5);
}

#[tokio::test]
async fn a_folder_run_has_a_deadline() {
    let h = Harness::start(config(1)).await;
    let n = Arc::new(AtomicUsize::new(0));
    let hostile = Hostile::start(move |_, _| {
        std::thread::sleep(Duration::from_millis(60));
        delta_page(&n.fetch_add(1, Ordering::SeqCst).to_string())
    })
    .await;
    let graph = connector(
        &h,
        &hostile,
        GraphConfig::default().folder_run_deadline(Duration::from_millis(300)),
    )
    .await;
    let e = run_folder(&graph, 1000).await;
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    assert!(e.to_string().contains("passed its deadline"), "{e}");
    assert!(hostile.requests() < 100, "{}", hostile.requests());
}

#[tokio::test]
async fn answers_are_read_up_to_a_limit() {
    let h = Harness::start(config(1)).await;
    for announce in [true, false] {
        // 64 MiB would be read whole before; the limit is 1 MiB.
        let hostile = Hostile::start(move |_, _| Answer::Endless {
            len: 64 << 20,
            announce,
        })
        .await;
        let graph = connector(&h, &hostile, GraphConfig::default().max_body_size(1 << 20)).await;
        let e = graph.get_message("AAMk1").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
        assert!(
            e.to_string()
                .contains("the answer is larger than the limit of 1 MiB"),
            "{e}"
        );
        // Not retried: the same answer would come again.
        assert_eq!(hostile.requests(), 1);
    }
}

#[tokio::test]
async fn a_dripping_server_meets_the_request_deadline() {
    let h = Harness::start(config(1)).await;
    let hostile = Hostile::start(|_, _| Answer::Drip {
        every: Duration::from_millis(50),
    })
    .await;
    // Six tries of 1 s each would take 6 s; the deadline is 1.5 s.
    let graph = connector(
        &h,
        &hostile,
        GraphConfig::default()
            .request_timeout(Duration::from_secs(1))
            .request_deadline(Duration::from_millis(1500)),
    )
    .await;
    let start = Instant::now();
    let e = graph.get_message("AAMk1").await.unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
    assert!(
        e.to_string()
            .contains("within the request deadline of 1.5 s"),
        "{e}"
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(hostile.requests() <= 2, "{}", hostile.requests());
}
