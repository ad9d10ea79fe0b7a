//! `GET /api/v1/products/{team}/{name}/credentials`: where the owning team's applications
//! read a provisioned product, and the product's own reader credentials.
//!
//! Only owners of the product's team and admins may call it (see `auth::matrix`). The
//! password is the product's least-privilege reader password, unsealed for this answer: it
//! is never logged, the answer is `Cache-Control: no-store`, and every successful read is
//! audited as `credentials.read` (the user, never the password). The target cluster's
//! admin credentials are never part of it: host and port come from the cluster URL, whose
//! user and password are not read.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, PRAGMA};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use sluice_controller::access::{AccessError, reader_access};
use sluice_store::{AuditInput, ObjectKey};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::apply;
use crate::caller::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDetails};
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_product_credentials))
}

/// How the owning team's applications read a product.
#[derive(Serialize, ToSchema)]
pub struct ProductCredentials {
    /// Where the data is.
    pub target: ReaderTarget,
    /// The product's reader user or role; `null` where the target has no users
    /// (Elasticsearch/OpenSearch without a security plugin).
    pub username: Option<String>,
    /// Its password; `null` with `username`.
    pub password: Option<String>,
}

impl std::fmt::Debug for ProductCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductCredentials")
            .field("target", &self.target)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The store a product lives in and the object readers query.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReaderTarget {
    /// The target cluster's type (`postgres`, `elasticsearch` — also for OpenSearch —, or
    /// `redis`).
    #[serde(rename = "type")]
    pub target_type: String,
    /// The registered target cluster.
    pub cluster: String,
    /// Its host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// PostgreSQL: the database; Redis: the database number; otherwise `null`.
    pub database: Option<String>,
    /// What to read: PostgreSQL `schema.view` (parts quoted where SQL needs it), the
    /// Elasticsearch/OpenSearch alias, or the Redis key prefix (keys `<prefix>:v<N>:<key>`,
    /// with the live `v<N>` in `<prefix>:current`).
    pub object: String,
}

/// The product's reader credentials and connection details, for its owning team: host,
/// port and database of the target, the object to read, and the product's own
/// least-privilege user and password (none for Elasticsearch/OpenSearch). Never the
/// cluster's admin credentials. Every read is audited (`credentials.read`).
#[utoipa::path(get, path = "/api/v1/products/{team}/{name}/credentials", tag = "products",
    params(("team" = String, Path, description = "Team"), ("name" = String, Path, description = "Product name")),
    responses((status = 200, body = ProductCredentials, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403, body = ProblemDetails, description = "Not an owner of the product's team, nor an admin"),
        (status = 404, body = ProblemDetails, description = "No such product, or not provisioned yet"),
        (status = 409, body = ProblemDetails, description = "The provisioned version cannot be located (its cluster or a source dataset is gone)")))]
async fn get_product_credentials(
    State(state): State<AppState>,
    Path((team, name)): Path<(String, String)>,
    caller: Caller,
) -> ApiResult<Response> {
    let key = ObjectKey::data_product(team, name);
    let access = reader_access(&state.store, &state.secrets, &key)
        .await
        .map_err(|e| match e {
            AccessError::NotFound(_) => ApiError::not_found(apply::describe(&key)),
            AccessError::NotProvisioned(_) => ApiError::new(
                ErrorCode::NotFound,
                format!(
                    "{} is not provisioned yet: it has no reader credentials",
                    apply::describe(&key)
                ),
            ),
            AccessError::Invalid(message) => ApiError::new(ErrorCode::Conflict, message),
            AccessError::Unseal(e) => ApiError::internal("cannot unseal the reader's password", &e),
            AccessError::Store(e) => e.into(),
        })?;
    let entry = AuditInput::new(&caller.audit(), "credentials.read", "read")
        .with_object(&key)
        .with_diff(json!({"user": access.username, "cluster": access.cluster}));
    state.store.append_audit(entry).await?;
    let body = ProductCredentials {
        target: ReaderTarget {
            target_type: access.target_type.as_str().to_owned(),
            cluster: access.cluster,
            host: access.host,
            port: access.port,
            database: access.database,
            object: access.object,
        },
        username: access.username,
        password: access.password,
    };
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}
