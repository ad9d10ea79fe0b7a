//! Liveness and readiness probes, answered without authentication.

use axum::Json;
use serde_json::{Value, json};

/// `GET /healthz`: the process is up and serving HTTP.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the server is ready to take requests.
///
/// Nothing but the HTTP server exists to depend on yet; the metadata store and Kafka checks
/// join here as those parts arrive.
pub(crate) async fn readyz() -> Json<Value> {
    Json(json!({"status": "ready"}))
}
