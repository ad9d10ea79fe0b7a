//! `/api/v1/targetclusters`: the stores the platform lets Sluice provision into. The
//! password in a cluster's URL is write-only.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::Value;
use sluice_schemas::Kind;
use sluice_store::ObjectKey;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::datasets::products_using;
use super::{List, ListParams, apply};
use crate::caller::Caller;
use crate::docs::TargetClusterDoc;
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDetails};
use crate::extract::{DocumentBody, IfMatch, Params};
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_clusters))
        .routes(routes!(get_cluster, put_cluster, delete_cluster))
}

/// List target clusters.
#[utoipa::path(get, path = "/api/v1/targetclusters", tag = "targetclusters", params(ListParams),
    responses((status = 200, body = List), (status = 400, body = ProblemDetails)))]
async fn list_clusters(
    State(state): State<AppState>,
    Params(params): Params<ListParams>,
) -> ApiResult<Json<List>> {
    let page = state
        .store
        .list(Kind::TargetCluster, &params.query(None))
        .await?;
    Ok(Json(List::from_page(page, apply::present)))
}

/// Get a target cluster (its URL's password redacted).
#[utoipa::path(get, path = "/api/v1/targetclusters/{name}", tag = "targetclusters",
    params(("name" = String, Path, description = "Cluster name")),
    responses((status = 200, body = TargetClusterDoc), (status = 404, body = ProblemDetails)))]
async fn get_cluster(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    apply::get(&state.store, ObjectKey::target_cluster(name)).await
}

/// Register or update a target cluster (idempotent). Sending back a redacted password keeps
/// the stored one.
#[utoipa::path(put, path = "/api/v1/targetclusters/{name}", tag = "targetclusters",
    params(("name" = String, Path, description = "Cluster name")),
    request_body(content = TargetClusterDoc, description = "The document, as JSON or YAML"),
    responses(
        (status = 200, body = TargetClusterDoc, description = "Updated or unchanged"),
        (status = 201, body = TargetClusterDoc, description = "Created"),
        (status = 409, body = ProblemDetails), (status = 422, body = ProblemDetails),
    ))]
async fn put_cluster(
    State(state): State<AppState>,
    Path(name): Path<String>,
    IfMatch(if_match): IfMatch,
    caller: Caller,
    DocumentBody(body): DocumentBody,
) -> ApiResult<Response> {
    apply::apply(
        &state,
        ObjectKey::target_cluster(name),
        body,
        if_match,
        &caller,
    )
    .await
}

/// Delete a target cluster no product lands in.
#[utoipa::path(delete, path = "/api/v1/targetclusters/{name}", tag = "targetclusters",
    params(("name" = String, Path, description = "Cluster name")),
    responses((status = 200, body = TargetClusterDoc, description = "The deleted document"),
        (status = 404, body = ProblemDetails), (status = 409, body = ProblemDetails)))]
async fn delete_cluster(
    State(state): State<AppState>,
    Path(name): Path<String>,
    IfMatch(if_match): IfMatch,
    caller: Caller,
) -> ApiResult<Response> {
    let users = products_using(&state, |spec| {
        spec.pointer("/target/cluster").and_then(Value::as_str) == Some(&name)
    })
    .await?;
    if !users.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "products {} land in target cluster {name}; delete them first",
                users.join(", ")
            ),
        ));
    }
    apply::delete(
        &state.store,
        ObjectKey::target_cluster(name),
        if_match,
        &caller,
    )
    .await
}
