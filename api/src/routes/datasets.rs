//! `/api/v1/datasets`: the catalog of event streams and their schema versions.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_schemas::{Compatibility, DatasetSpec, Kind, compat};
use sluice_store::{ListQuery, ObjectKey, StoredObject};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{List, ListParams, apply};
use crate::caller::Caller;
use crate::docs::DatasetDoc;
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDetails};
use crate::extract::{DocumentBody, IfMatch, Params};
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_datasets))
        .routes(routes!(get_dataset, put_dataset, delete_dataset))
        .routes(routes!(list_schema_versions))
        .routes(routes!(get_schema_version))
        .routes(routes!(check_schema))
        .routes(routes!(list_dataset_products))
        .merge(super::samples::router())
}

/// List datasets.
#[utoipa::path(get, path = "/api/v1/datasets", tag = "datasets", params(ListParams),
    responses((status = 200, body = List), (status = 400, body = ProblemDetails)))]
async fn list_datasets(
    State(state): State<AppState>,
    Params(params): Params<ListParams>,
) -> ApiResult<Json<List>> {
    let page = state.store.list(Kind::Dataset, &params.query(None)).await?;
    Ok(Json(List::from_page(page, apply::present)))
}

/// Get a dataset.
#[utoipa::path(get, path = "/api/v1/datasets/{name}", tag = "datasets",
    params(("name" = String, Path, description = "Catalog name")),
    responses((status = 200, body = DatasetDoc), (status = 404, body = ProblemDetails)))]
async fn get_dataset(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    apply::get(&state.store, ObjectKey::dataset(name)).await
}

/// Create or update a dataset (idempotent). A changed schema is accepted only under the
/// dataset's compatibility rule and becomes a new schema version.
#[utoipa::path(put, path = "/api/v1/datasets/{name}", tag = "datasets",
    params(("name" = String, Path, description = "Catalog name")),
    request_body(content = DatasetDoc, description = "The document, as JSON or YAML"),
    responses(
        (status = 200, body = DatasetDoc, description = "Updated or unchanged"),
        (status = 201, body = DatasetDoc, description = "Created"),
        (status = 409, body = ProblemDetails, description = "Stale resourceVersion"),
        (status = 422, body = ProblemDetails, description = "Invalid document or incompatible schema"),
    ))]
async fn put_dataset(
    State(state): State<AppState>,
    Path(name): Path<String>,
    IfMatch(if_match): IfMatch,
    caller: Caller,
    DocumentBody(body): DocumentBody,
) -> ApiResult<Response> {
    apply::apply(&state, ObjectKey::dataset(name), body, if_match, &caller).await
}

/// Delete a dataset that no product uses.
#[utoipa::path(delete, path = "/api/v1/datasets/{name}", tag = "datasets",
    params(("name" = String, Path, description = "Catalog name")),
    responses((status = 200, body = DatasetDoc, description = "The deleted document"),
        (status = 404, body = ProblemDetails), (status = 409, body = ProblemDetails)))]
async fn delete_dataset(
    State(state): State<AppState>,
    Path(name): Path<String>,
    IfMatch(if_match): IfMatch,
    caller: Caller,
) -> ApiResult<Response> {
    let users = products_using(&state, |spec| {
        spec.get("sources")
            .and_then(Value::as_array)
            .is_some_and(|s| {
                s.iter()
                    .any(|s| s.get("dataset").and_then(Value::as_str) == Some(&name))
            })
    })
    .await?;
    if !users.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "dataset {name} is a source of products {}; delete them first",
                users.join(", ")
            ),
        ));
    }
    apply::delete(&state.store, ObjectKey::dataset(name), if_match, &caller).await
}

/// The `TEAM/NAME` of every product whose spec matches.
pub(crate) async fn products_using(
    state: &AppState,
    uses: impl Fn(&Value) -> bool,
) -> ApiResult<Vec<String>> {
    Ok(products_matching(state, uses)
        .await?
        .iter()
        .map(|object| format!("{}/{}", object.key.team(), object.key.name()))
        .collect())
}

/// Every product whose stored spec matches, by team and name.
async fn products_matching(
    state: &AppState,
    uses: impl Fn(&Value) -> bool,
) -> ApiResult<Vec<StoredObject>> {
    let mut users = Vec::new();
    let mut query = ListQuery {
        limit: ListQuery::MAX_LIMIT,
        ..ListQuery::default()
    };
    loop {
        let page = state.store.list(Kind::DataProduct, &query).await?;
        users.extend(page.items.into_iter().filter(|object| uses(&object.spec)));
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(users),
        }
    }
}

/// The products reading a dataset.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetProducts {
    /// One entry per product, by team and name.
    pub items: Vec<DatasetProduct>,
}

/// A product reading a dataset.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetProduct {
    /// The product's team.
    pub team: String,
    /// The product's name.
    pub name: String,
    /// Its lifecycle phase (`PendingApproval`, `Live`, …), if it has a status.
    pub phase: Option<String>,
    /// The names of its sources (`spec.sources[].name`) that read the dataset.
    pub sources: Vec<String>,
}

/// Lineage: the products whose spec reads the dataset, with the sources that read it. Every
/// caller may see every product (as `GET /api/v1/products`), so all are listed.
#[utoipa::path(get, path = "/api/v1/datasets/{name}/products", tag = "datasets",
    params(("name" = String, Path, description = "Catalog name")),
    responses((status = 200, body = DatasetProducts), (status = 404, body = ProblemDetails)))]
async fn list_dataset_products(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<DatasetProducts>> {
    ensure_dataset(&state, &name).await?;
    let sources_of = |spec: &Value| -> Vec<String> {
        spec.get("sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|s| s.get("dataset").and_then(Value::as_str) == Some(name.as_str()))
            .filter_map(|s| s.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect()
    };
    let users = products_matching(&state, |spec| !sources_of(spec).is_empty()).await?;
    Ok(Json(DatasetProducts {
        items: users
            .iter()
            .map(|object| DatasetProduct {
                team: object.key.team().to_owned(),
                name: object.key.name().to_owned(),
                phase: object
                    .status
                    .as_ref()
                    .and_then(|s| s.get("phase"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                sources: sources_of(&object.spec),
            })
            .collect(),
    }))
}

/// One schema version of a dataset.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemaVersionDoc {
    /// 1 for the first, then consecutive.
    pub version: i64,
    /// The JSON Schema of the record value.
    pub schema: Value,
    /// When it was recorded (RFC 3339).
    pub created_at: String,
}

/// List the schema versions of a dataset, oldest first.
#[utoipa::path(get, path = "/api/v1/datasets/{name}/schemas", tag = "datasets",
    params(("name" = String, Path, description = "Catalog name")),
    responses((status = 200, body = Vec<SchemaVersionDoc>), (status = 404, body = ProblemDetails)))]
async fn list_schema_versions(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<SchemaVersionDoc>>> {
    ensure_dataset(&state, &name).await?;
    let versions = state.store.schema_versions(&name).await?;
    Ok(Json(versions.into_iter().map(to_doc).collect()))
}

/// Get one schema version of a dataset.
#[utoipa::path(get, path = "/api/v1/datasets/{name}/schemas/{version}", tag = "datasets",
    params(("name" = String, Path, description = "Catalog name"), ("version" = i64, Path, description = "Version number")),
    responses((status = 200, body = SchemaVersionDoc), (status = 404, body = ProblemDetails)))]
async fn get_schema_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<SchemaVersionDoc>> {
    let version: i64 = version
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::BadRequest, "the version must be a number"))?;
    ensure_dataset(&state, &name).await?;
    state
        .store
        .schema_versions(&name)
        .await?
        .into_iter()
        .find(|v| v.version == version)
        .map(|v| Json(to_doc(v)))
        .ok_or_else(|| ApiError::not_found(format!("schema version {version} of dataset {name}")))
}

/// A compatibility check request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompatibilityCheck {
    /// The candidate JSON Schema.
    pub schema: Value,
    /// The rule to check under; default: the dataset's own.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub compatibility: Option<Compatibility>,
}

/// The outcome of a compatibility check.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompatibilityResult {
    /// Whether the candidate would be accepted.
    pub compatible: bool,
    /// The rule checked.
    pub compatibility: String,
    /// Why not, one entry per broken field.
    pub problems: Vec<crate::error::FieldError>,
}

/// Check whether a candidate schema would be accepted as the dataset's next version.
#[utoipa::path(post, path = "/api/v1/datasets/{name}/schemas/check", tag = "datasets",
    params(("name" = String, Path, description = "Catalog name")),
    request_body(content = CompatibilityCheck),
    responses((status = 200, body = CompatibilityResult), (status = 404, body = ProblemDetails),
        (status = 422, body = ProblemDetails)))]
async fn check_schema(
    State(state): State<AppState>,
    Path(name): Path<String>,
    DocumentBody(body): DocumentBody,
) -> ApiResult<Json<CompatibilityResult>> {
    let request: CompatibilityCheck = serde_json::from_value(body).map_err(|e| {
        ApiError::new(
            ErrorCode::ValidationFailed,
            format!("invalid check request: {e}"),
        )
    })?;
    let object = state
        .store
        .get(&ObjectKey::dataset(&name))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("dataset {name}")))?;
    let spec: DatasetSpec = serde_json::from_value(object.spec)
        .map_err(|e| ApiError::internal("stored dataset does not decode", &e))?;
    let rule = request.compatibility.unwrap_or(spec.compatibility);
    let previous: Vec<Value> = state
        .store
        .schema_versions(&name)
        .await?
        .into_iter()
        .map(|v| v.schema)
        .collect();
    let broken = compat::check(rule, &request.schema, &previous);
    Ok(Json(CompatibilityResult {
        compatible: broken.is_empty(),
        compatibility: serde_json::to_value(rule)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        problems: broken
            .into_iter()
            .map(|i| crate::error::FieldError {
                pointer: match i.path_in {
                    compat::Side::New => format!("#/schema{}", i.path),
                    compat::Side::Old => "#/schema".to_owned(),
                },
                detail: i.message,
            })
            .collect(),
    }))
}

async fn ensure_dataset(state: &AppState, name: &str) -> ApiResult<()> {
    match state.store.get(&ObjectKey::dataset(name)).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!("dataset {name}"))),
    }
}

fn to_doc(v: sluice_store::SchemaVersion) -> SchemaVersionDoc {
    SchemaVersionDoc {
        version: v.version,
        schema: v.schema,
        created_at: v
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    }
}
