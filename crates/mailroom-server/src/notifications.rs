//! Microsoft Graph change notifications (to come): the validation handshake, and
//! notifications handed over to the worker.

use axum::Router;

use crate::ServerState;

pub(crate) fn routes() -> Router<ServerState> {
    Router::new()
}
