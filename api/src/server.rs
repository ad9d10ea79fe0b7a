//! Building the application and running the HTTP server until shutdown.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use serde_json::Value;
use sluice_schemas::validate::MAX_DOCUMENT_BYTES;
use sluice_store::{AuditKey, Store, StoreError};
use tokio::net::TcpListener;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::Config;
use crate::error::{ApiError, ErrorCode};
use crate::health;
use crate::openapi::{ApiDoc, finish};
use crate::routes::{datasets, products, schemas, targets};
use crate::state::AppState;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The metadata store could not be opened or migrated.
    #[error("cannot open the metadata store")]
    Store(#[source] StoreError),
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

/// The API routes and the OpenAPI document describing exactly them.
pub fn api() -> (Router<AppState>, Value) {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(datasets::router())
        .merge(targets::router())
        .merge(products::router())
        .merge(schemas::router())
        .split_for_parts();
    (router, finish(openapi))
}

/// The whole HTTP application of `sluice serve` over `state`.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api();
    let docs: Router = SwaggerUi::new("/api/docs")
        .external_url_unchecked("/api/v1/openapi.json", openapi)
        .into();
    api.route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
        .merge(docs)
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this endpoint does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_DOCUMENT_BYTES + 1024))
}

/// Opens the store, binds `config.listen` and serves until `shutdown` resolves, then drains
/// in-flight requests. `on_bound` is told the bound address (useful when the port is 0).
pub async fn serve(
    config: &Config,
    on_bound: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let audit_key = audit_key(config).map_err(ServeError::Store)?;
    let store = Store::connect(&config.database_url, audit_key)
        .await
        .map_err(ServeError::Store)?;
    tracing::info!(backend = store.backend().as_str(), "metadata store ready");
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(ServeError::Serve)?;
    tracing::info!(addr = %bound, "sluice API listening");
    on_bound(bound);
    axum::serve(listener, router(AppState { store }))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Serve)
}

/// Signs the audit log's head when `SLUICE_SECRET_KEY` is not set: development only, since
/// anyone can forge signatures with it.
const INSECURE_DEVELOPMENT_SECRET: &[u8] = b"sluice-insecure-development-audit-secret";

/// The key that signs the head of the audit log, derived from `SLUICE_SECRET_KEY`; without
/// one, a built-in development key (with a warning).
fn audit_key(config: &Config) -> Result<AuditKey, StoreError> {
    match &config.secret_key {
        Some(secret) => AuditKey::from_secret(secret.expose().as_bytes()),
        None => {
            tracing::warn!(
                "SLUICE_SECRET_KEY is not set: the audit log head is signed with a built-in \
                 development key, so cutting entries off its end goes undetected"
            );
            AuditKey::from_secret(INSECURE_DEVELOPMENT_SECRET)
        }
    }
}
