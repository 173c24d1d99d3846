//! Microsoft Graph change notifications: `POST /graph/notifications` and
//! `POST /graph/lifecycle` (the paths [`mailroom_sync::push`] subscribes with).
//!
//! - A validation request (`?validationToken=…`) is answered at once with the
//!   decoded token as `text/plain` and 200, on both paths, as Graph requires within
//!   10 seconds.
//! - A notification body (at most [`MAX_BODY`] bytes) is handed to
//!   [`Push::accept`](mailroom_sync::Push::accept) and answered 202 at once; the
//!   checks (known subscription, `clientState` compared in constant time) and the
//!   database work happen after the answer, in the worker.
//! - Without push configured the paths answer 404. Nothing here logs a token, a
//!   `clientState` or a body.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use mailroom_sync::push::{LIFECYCLE_PATH, NOTIFICATION_PATH};

use crate::ServerState;

/// The largest notification body accepted (Graph batches notifications; a batch is
/// far below this).
pub const MAX_BODY: usize = 1 << 20;

/// The longest validation token echoed.
const MAX_TOKEN: usize = 2048;

pub(crate) fn routes() -> Router<ServerState> {
    Router::new()
        .route(NOTIFICATION_PATH, post(notifications))
        .route(LIFECYCLE_PATH, post(lifecycle))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

async fn notifications(
    State(state): State<ServerState>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    receive(&state, &query, body, false)
}

async fn lifecycle(
    State(state): State<ServerState>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    receive(&state, &query, body, true)
}

fn receive(
    state: &ServerState,
    query: &HashMap<String, String>,
    body: Bytes,
    lifecycle: bool,
) -> Response {
    let Some(push) = &state.push else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some(token) = query.get("validationToken") {
        if token.len() > MAX_TOKEN {
            return StatusCode::BAD_REQUEST.into_response();
        }
        tracing::info!(lifecycle, "answered a subscription validation request");
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            token.clone(),
        )
            .into_response();
    }
    push.accept(body.to_vec(), lifecycle);
    StatusCode::ACCEPTED.into_response()
}
