//! Microsoft Graph v1.0 mail.

pub(crate) mod handle;
pub(crate) mod store;

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;

use crate::http::{Req, Resp};
use crate::state::Shared;

/// Routes a `/v1.0/...` request; returns the route template and the answer.
pub(crate) async fn handle_graph(_shared: &Arc<Shared>, req: Req, _seg: &[&str]) -> (String, Resp) {
    (
        format!("{} /v1.0/(unknown)", req.method),
        Resp::json(
            StatusCode::NOT_FOUND,
            &json!({"error": {"code": "NotFound"}}),
        ),
    )
}
