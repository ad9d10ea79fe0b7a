//! Building the router and running the HTTP server until shutdown.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::health;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address from `SLUICE_LISTEN`.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The server stopped with an I/O error while serving.
    #[error("HTTP server failed")]
    Serve(#[source] std::io::Error),
}

/// The full HTTP router of `sluice serve`.
pub fn router() -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
}

/// Binds `config.listen` and serves until `shutdown` resolves, then drains in-flight requests.
///
/// `on_bound` is told the bound address (useful when the configured port is 0).
pub async fn serve(
    config: &Config,
    on_bound: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(ServeError::Serve)?;
    tracing::info!(addr = %bound, "sluice API listening");
    on_bound(bound);
    axum::serve(listener, router())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Serve)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::router;

    async fn get(path: &str) -> (StatusCode, serde_json::Value) {
        let response = router()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, body)
    }

    #[tokio::test]
    async fn healthz_and_readyz_answer_ok() {
        assert_eq!(
            get("/healthz").await,
            (StatusCode::OK, serde_json::json!({"status": "ok"}))
        );
        assert_eq!(
            get("/readyz").await,
            (StatusCode::OK, serde_json::json!({"status": "ready"}))
        );
    }

    #[tokio::test]
    async fn unknown_paths_are_not_found() {
        assert_eq!(get("/nope").await.0, StatusCode::NOT_FOUND);
    }
}
