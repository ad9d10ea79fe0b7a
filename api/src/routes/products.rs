//! `/api/v1/products`: data products, addressed by team and name, with their plans.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use sluice_schemas::output::OutputSchema;
use sluice_schemas::{DataProduct, Document, Kind, TargetClusterSpec};
use sluice_store::{ListQuery, ObjectKey};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{List, apply};
use crate::caller::Caller;
use crate::docs::DataProductDoc;
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDetails};
use crate::extract::{DocumentBody, IfMatch, Params};
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_products))
        .routes(routes!(list_team_products))
        .routes(routes!(get_product, put_product, delete_product))
        .routes(routes!(get_product_status))
        .routes(routes!(get_plan, post_plan))
}

/// Paging and filtering of product lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductListParams {
    /// Only this team's products.
    pub team: Option<String>,
    /// Only products in this phase (e.g. `PendingApproval`, `Live`).
    pub phase: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// The `continue` token of the previous page.
    #[serde(rename = "continue")]
    #[param(rename = "continue")]
    pub continue_token: Option<String>,
    /// Only names starting with this.
    pub name_prefix: Option<String>,
}

/// List products of every team (filter with `team`, `phase`, `namePrefix`).
#[utoipa::path(get, path = "/api/v1/products", tag = "products", params(ProductListParams),
    responses((status = 200, body = List), (status = 400, body = ProblemDetails)))]
async fn list_products(
    State(state): State<AppState>,
    Params(params): Params<ProductListParams>,
) -> ApiResult<Json<List>> {
    list(&state, params.team.clone(), &params).await
}

/// List one team's products.
#[utoipa::path(get, path = "/api/v1/products/{team}", tag = "products",
    params(("team" = String, Path, description = "Team"), ProductListParams),
    responses((status = 200, body = List), (status = 400, body = ProblemDetails)))]
async fn list_team_products(
    State(state): State<AppState>,
    Path(team): Path<String>,
    Params(params): Params<ProductListParams>,
) -> ApiResult<Json<List>> {
    if params.team.as_ref().is_some_and(|t| *t != team) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "`team` differs from the team in the path",
        ));
    }
    list(&state, Some(team), &params).await
}

async fn list(
    state: &AppState,
    team: Option<String>,
    params: &ProductListParams,
) -> ApiResult<Json<List>> {
    let mut query = ListQuery {
        team,
        name_prefix: params.name_prefix.clone(),
        limit: params.limit.unwrap_or(ListQuery::DEFAULT_LIMIT),
        after: params.continue_token.clone(),
    };
    let Some(phase) = &params.phase else {
        let page = state.store.list(Kind::DataProduct, &query).await?;
        return Ok(Json(List::from_page(page, apply::present)));
    };
    // The phase lives in the status: filter page by page until the page is full.
    let want = query.effective_limit() as usize;
    let mut items = Vec::new();
    loop {
        let page = state.store.list(Kind::DataProduct, &query).await?;
        for object in &page.items {
            if object
                .status
                .as_ref()
                .and_then(|s| s.get("phase"))
                .and_then(Value::as_str)
                == Some(phase)
            {
                items.push(apply::present(object));
            }
        }
        match page.next {
            Some(next) if items.len() < want => query.after = Some(next),
            next => {
                return Ok(Json(List {
                    items,
                    continue_token: next,
                }));
            }
        }
    }
}

/// Get a product with its status.
#[utoipa::path(get, path = "/api/v1/products/{team}/{name}", tag = "products",
    params(("team" = String, Path, description = "Team"), ("name" = String, Path, description = "Product name")),
    responses((status = 200, body = DataProductDoc), (status = 404, body = ProblemDetails)))]
async fn get_product(
    State(state): State<AppState>,
    Path((team, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    apply::get(&state.store, ObjectKey::data_product(team, name)).await
}

/// Apply a product (idempotent): create it, or update it. A spec change increments the
/// generation and waits for approval.
#[utoipa::path(put, path = "/api/v1/products/{team}/{name}", tag = "products",
    params(("team" = String, Path, description = "Team"), ("name" = String, Path, description = "Product name")),
    request_body(content = DataProductDoc, description = "The document, as JSON or YAML"),
    responses(
        (status = 200, body = DataProductDoc, description = "Updated or unchanged"),
        (status = 201, body = DataProductDoc, description = "Created"),
        (status = 409, body = ProblemDetails), (status = 422, body = ProblemDetails),
    ))]
async fn put_product(
    State(state): State<AppState>,
    Path((team, name)): Path<(String, String)>,
    IfMatch(if_match): IfMatch,
    caller: Caller,
    DocumentBody(body): DocumentBody,
) -> ApiResult<Response> {
    apply::apply(
        &state,
        ObjectKey::data_product(team, name),
        body,
        if_match,
        &caller,
    )
    .await
}

/// Delete a product.
#[utoipa::path(delete, path = "/api/v1/products/{team}/{name}", tag = "products",
    params(("team" = String, Path, description = "Team"), ("name" = String, Path, description = "Product name")),
    responses((status = 200, body = DataProductDoc, description = "Deleted: nothing had been provisioned"),
        (status = 202, body = DataProductDoc, description = "Deletion requested: the controller tears the product down per its deletionPolicy, then removes it"),
        (status = 404, body = ProblemDetails), (status = 409, body = ProblemDetails)))]
async fn delete_product(
    State(state): State<AppState>,
    Path((team, name)): Path<(String, String)>,
    IfMatch(if_match): IfMatch,
    caller: Caller,
) -> ApiResult<Response> {
    let response = apply::delete_product(
        &state.store,
        ObjectKey::data_product(team, name),
        if_match,
        &caller,
    )
    .await;
    state.wake_controller();
    response
}

/// Get only a product's status.
#[utoipa::path(get, path = "/api/v1/products/{team}/{name}/status", tag = "products",
    params(("team" = String, Path, description = "Team"), ("name" = String, Path, description = "Product name")),
    responses((status = 200, body = Value), (status = 404, body = ProblemDetails)))]
async fn get_product_status(
    State(state): State<AppState>,
    Path((team, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let key = ObjectKey::data_product(team, name);
    let object = state
        .store
        .get(&key)
        .await?
        .ok_or_else(|| ApiError::not_found(apply::describe(&key)))?;
    Ok(Json(object.status.unwrap_or(Value::Null)))
}

/// The plan of the stored spec: topics, target DDL / mapping / key layout, output schema.
#[utoipa::path(get, path = "/api/v1/products/{team}/{name}/plan", tag = "products",
    params(("team" = String, Path, description = "Team"), ("name" = String, Path, description = "Product name")),
    responses((status = 200, body = Value), (status = 404, body = ProblemDetails),
        (status = 422, body = ProblemDetails, description = "The stored spec no longer validates against the catalog")))]
async fn get_plan(
    State(state): State<AppState>,
    Path((team, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let key = ObjectKey::data_product(team, name);
    let object = state
        .store
        .get(&key)
        .await?
        .ok_or_else(|| ApiError::not_found(apply::describe(&key)))?;
    let mut document = object.document();
    if let Some(map) = document.as_object_mut() {
        map.remove("status");
    }
    let (document, output, _) = apply::validate_for(&state.store, &key, &document).await?;
    plan_of(&state, document, output).await
}

/// A dry run: validate the spec in the body and return its plan. Nothing is stored.
#[utoipa::path(post, path = "/api/v1/products/{team}/{name}/plan", tag = "products",
    params(("team" = String, Path, description = "Team"), ("name" = String, Path, description = "Product name")),
    request_body(content = DataProductDoc, description = "The document, as JSON or YAML"),
    responses((status = 200, body = Value), (status = 422, body = ProblemDetails)))]
async fn post_plan(
    State(state): State<AppState>,
    Path((team, name)): Path<(String, String)>,
    DocumentBody(body): DocumentBody,
) -> ApiResult<Json<Value>> {
    let key = ObjectKey::data_product(team, name);
    let (document, output, _) = apply::validate_for(&state.store, &key, &body).await?;
    plan_of(&state, document, output).await
}

async fn plan_of(
    state: &AppState,
    document: Document,
    output: Option<OutputSchema>,
) -> ApiResult<Json<Value>> {
    let (Document::DataProduct(product), Some(output)) = (document, output) else {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "only products have plans",
        ));
    };
    let cluster = target_cluster_of(state, &product).await?;
    let plan = sluice_controller::plan::plan_product(&product, &output, &cluster, &[], 1)
        .map_err(|e| ApiError::new(ErrorCode::ValidationFailed, format!("cannot plan: {e}")))?;
    let mut body = serde_json::to_value(&plan)
        .map_err(|e| ApiError::internal("cannot encode the plan", &e))?;
    if let Some(map) = body.as_object_mut() {
        map.insert("summary".into(), Value::from(plan.summary()));
    }
    Ok(Json(body))
}

async fn target_cluster_of(
    state: &AppState,
    product: &DataProduct,
) -> ApiResult<TargetClusterSpec> {
    let name = product.spec.target.cluster.as_deref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::ValidationFailed,
            "dedicated targets are planned in Kubernetes mode",
        )
    })?;
    let object = state
        .store
        .get(&ObjectKey::target_cluster(name))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("target cluster {name}")))?;
    serde_json::from_value(object.spec)
        .map_err(|e| ApiError::internal("stored target cluster does not decode", &e))
}
