//! The Mailroom worker's HTTP face: one listener for everything the worker serves.
//!
//! - Operations ([`ops`]): `/healthz`, `/readyz`, `/metrics`, `/status`.
//! - Microsoft Graph change notifications ([`notifications`]): the validation
//!   handshake, and notification bodies handed to [`mailroom_sync::Push`].
//!
//! This crate only receives HTTP and hands over to [`mailroom_sync`]: it decides
//! nothing about syncing. It speaks plain HTTP; TLS belongs to the reverse proxy in
//! front of it, and the default address is loopback.
//!
//! ```no_run
//! use mailroom_server::{CancellationToken, Server, ServerState};
//!
//! # async fn demo(state: ServerState) -> std::io::Result<()> {
//! let server = Server::bind("127.0.0.1:0".parse().unwrap(), state).await?;
//! println!("listening on http://{}", server.local_addr());
//! let shutdown = CancellationToken::new();
//! server.run(shutdown).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

use std::net::SocketAddr;

use axum::Router;
use mailroom_sync::{Push, Syncer};

/// The sync engine this server hands over to (its `Syncer`, `Push`, store, …), so
/// that this crate alone builds a whole worker.
pub use mailroom_sync as sync;
/// How the listener is told to stop, shared with the worker.
pub use mailroom_sync::CancellationToken;

pub mod notifications;
pub mod ops;
pub mod status;

/// The default listening address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9780";

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct ServerState {
    /// The worker's syncer (its store answers `/readyz` and `/status`).
    pub syncer: Syncer,
    /// The metrics recorder and the worker's liveness, for the operations routes.
    pub ops: ops::Ops,
    /// Where Graph change notifications go (`None`: the notification paths answer 404).
    pub push: Option<Push>,
}

/// Every route of the listener, on one router.
pub fn router(state: ServerState) -> Router {
    Router::new()
        .merge(ops::routes())
        .merge(notifications::routes())
        .with_state(state)
}

/// A bound listener, ready to serve.
#[derive(Debug)]
pub struct Server {
    listener: tokio::net::TcpListener,
    state: ServerState,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port: see [`Server::local_addr`]).
    pub async fn bind(addr: SocketAddr, state: ServerState) -> std::io::Result<Server> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        Ok(Server { listener, state })
    }

    /// Serves on a listener bound already (to learn the address before building the
    /// state, say).
    pub fn with_listener(listener: tokio::net::TcpListener, state: ServerState) -> Server {
        Server { listener, state }
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// Serves until `shutdown` is cancelled, then lets requests in flight finish.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let addr = self.local_addr();
        tracing::info!(%addr, "HTTP listener started");
        if let Some(handle) = self.state.ops.metrics().cloned() {
            // Histograms are drained at each scrape, and here when nobody scrapes.
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(std::time::Duration::from_secs(10)) => handle.run_upkeep(),
                        () = shutdown.cancelled() => break,
                    }
                }
            });
        }
        axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }
}
