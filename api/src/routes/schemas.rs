//! `/api/v1/schemas`: the published JSON Schemas of the documents, for editors and tools.

use axum::Json;
use axum::extract::Path;
use serde::Serialize;
use serde_json::Value;
use sluice_schemas::{Kind, published};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ProblemDetails};
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_schemas))
        .routes(routes!(get_schema))
}

/// A published schema.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchemaLink {
    /// The document kind.
    pub kind: String,
    /// Where to fetch its JSON Schema.
    pub url: String,
    /// The schema's `$id`.
    pub id: String,
}

/// List the published JSON Schemas.
#[utoipa::path(get, path = "/api/v1/schemas", tag = "schemas",
    responses((status = 200, body = Vec<SchemaLink>)))]
async fn list_schemas() -> Json<Vec<SchemaLink>> {
    Json(
        Kind::ALL
            .into_iter()
            .map(|kind| SchemaLink {
                kind: kind.as_str().to_owned(),
                url: format!("/api/v1/schemas/{}", published::file_name(kind)),
                id: format!(
                    "{}{}",
                    published::SCHEMA_ID_BASE,
                    published::file_name(kind)
                ),
            })
            .collect(),
    )
}

/// Get the JSON Schema (draft 2020-12) of a kind: `dataset`, `targetcluster`,
/// `dataproduct` (with or without `.schema.json`).
#[utoipa::path(get, path = "/api/v1/schemas/{kind}", tag = "schemas",
    params(("kind" = String, Path, description = "dataset, targetcluster or dataproduct")),
    responses((status = 200, body = Value), (status = 404, body = ProblemDetails)))]
async fn get_schema(Path(kind): Path<String>) -> ApiResult<Json<Value>> {
    let name = kind.trim_end_matches(".schema.json");
    Kind::ALL
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(name))
        .map(|k| Json(published::json_schema(k)))
        .ok_or_else(|| ApiError::not_found(format!("schema of kind `{name}`")))
}
