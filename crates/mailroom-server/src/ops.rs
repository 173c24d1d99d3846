//! Operations: `/healthz` (the process answers), and later `/readyz`, `/metrics`,
//! `/status`.

use axum::Router;
use axum::routing::get;

use crate::ServerState;

pub(crate) fn routes() -> Router<ServerState> {
    Router::new().route("/healthz", get(healthz))
}

/// The process is alive: 200 whenever it answers at all.
async fn healthz() -> &'static str {
    "ok\n"
}
