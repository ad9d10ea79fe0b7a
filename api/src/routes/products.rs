//! `/api/v1/products`: data products, addressed by team and name, with their plans.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use sluice_controller::diff::{SpecChange, diff_specs, requires_new_version};
use sluice_controller::estimate::{self, BACKFILL_EVENTS_PER_SECOND, BackfillEstimate};
use sluice_schemas::output::OutputSchema;
use sluice_schemas::validate::Context;
use sluice_schemas::{DataProduct, Document, Kind, TargetClusterSpec};
use sluice_store::{ListQuery, ObjectKey};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{List, apply};
use crate::caller::Caller;
use crate::config::ENV_KAFKA_BOOTSTRAP;
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
        .routes(routes!(post_verify))
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

/// Verify the product: compare the target of the version readers use with what the sources
/// say it must hold (counts and order-independent checksums in 16 key ranges; append
/// products by count), and record the outcome on the product as the condition `Verified`.
/// Exact for a quiescent source: records arriving during the verification show as
/// differences.
#[utoipa::path(post, path = "/api/v1/products/{team}/{name}/verify", tag = "products",
    params(("team" = String, Path, description = "Team"), ("name" = String, Path, description = "Product name")),
    responses((status = 200, body = Value, description = "The verification: `expected`, `actual`, `ranges`, `matches`, `missing`, `unexpected`, `differing`"),
        (status = 404, body = ProblemDetails),
        (status = 409, body = ProblemDetails, description = "No version is provisioned yet"),
        (status = 422, body = ProblemDetails, description = "The product's job cannot be built"),
        (status = 503, body = ProblemDetails, description = "Kafka or the target cannot be read")))]
async fn post_verify(
    State(state): State<AppState>,
    Path((team, name)): Path<(String, String)>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    use sluice_controller::verify::{VerifyProductError, verify_product};
    let key = ObjectKey::data_product(team, name);
    let kafka = state.kafka.as_deref();
    let verification = verify_product(&state.store, &state.secrets, kafka, &key, &caller.audit())
        .await
        .map_err(|e| match e {
            VerifyProductError::NotFound(_) => ApiError::not_found(apply::describe(&key)),
            VerifyProductError::NotProvisioned(m) => ApiError::new(ErrorCode::Conflict, m),
            VerifyProductError::Invalid(m) => ApiError::new(ErrorCode::ValidationFailed, m),
            VerifyProductError::Unavailable(e) => {
                ApiError::new(ErrorCode::Unavailable, e.to_string())
            }
            VerifyProductError::NoKafka => ApiError::new(
                ErrorCode::Unavailable,
                format!("verify reads the sources: set {ENV_KAFKA_BOOTSTRAP}"),
            ),
            VerifyProductError::Store(e) => e.into(),
        })?;
    serde_json::to_value(&verification)
        .map(Json)
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
}

/// How long a plan waits for Kafka before answering without a backfill estimate.
const PLAN_KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// The plan of the stored spec: topics, target DDL / mapping / key layout, output schema,
/// the backfill estimate with its retention pre-flight, and — when the stored generation is
/// newer than the approved one — the diff against the approved spec, each change classed.
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
    let (document, output, ctx) = apply::validate_for(&state.store, &key, &document).await?;
    let running = running_spec(object.status.as_ref(), Some(object.generation));
    plan_of(&state, &key, document, output, &ctx, running).await
}

/// A dry run: validate the spec in the body and return its plan, with the backfill estimate
/// and — when the product has an approved generation whose spec differs — the diff against
/// it, each change classed. Nothing is stored.
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
    let (document, output, ctx) = apply::validate_for(&state.store, &key, &body).await?;
    let stored = state.store.get(&key).await?;
    let running = running_spec(stored.as_ref().and_then(|o| o.status.as_ref()), None);
    plan_of(&state, &key, document, output, &ctx, running).await
}

/// What a plan is compared with: the spec the running version was built from (else the
/// approved spec, not yet provisioned) when it is older than `generation` (`None`: any),
/// and the number of the running version, if one is provisioned.
struct Running {
    spec: Option<Value>,
    version: Option<u32>,
}

fn running_spec(status: Option<&Value>, generation: Option<i64>) -> Running {
    let Some(status) = status else {
        return Running {
            spec: None,
            version: None,
        };
    };
    let newer = |of: &Value| {
        of.as_i64()
            .is_some_and(|g| generation.is_none_or(|n| g < n))
    };
    let target = status.get("target").filter(|t| t.is_object());
    let version = target
        .and_then(|t| t.get("version"))
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok());
    let spec = match target {
        Some(target) => target
            .get("generation")
            .filter(|g| newer(g))
            .and_then(|_| target.get("spec").cloned()),
        None => status
            .get("approvedGeneration")
            .filter(|g| newer(g))
            .and_then(|_| status.get("approvedSpec").cloned()),
    };
    Running { spec, version }
}

/// The plan body: the pure plan (with the real source partition counts when Kafka answers),
/// `backfill` (or null, with a warning saying why), `diff` against `approved` (or null) and
/// `requiresNewVersion`, every `warnings` entry, and the human-readable `summary`.
async fn plan_of(
    state: &AppState,
    key: &ObjectKey,
    document: Document,
    output: Option<OutputSchema>,
    ctx: &Context,
    running: Running,
) -> ApiResult<Json<Value>> {
    let (Document::DataProduct(product), Some(output)) = (document, output) else {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "only products have plans",
        ));
    };
    let cluster = target_cluster_of(state, &product).await?;
    let mut warnings = Vec::new();
    let backfill = backfill_of(state, &product, ctx, &mut warnings).await;
    let partitions: Vec<i32> = product
        .spec
        .sources
        .iter()
        .map(|source| {
            let topic = topic_of(ctx, &source.dataset)?;
            backfill
                .as_ref()?
                .sources
                .iter()
                .find(|estimate| estimate.topic == topic)
                .map(|estimate| estimate.partitions)
        })
        .map(|count| count.unwrap_or(-1))
        .collect();
    let diff = match running.spec {
        Some(spec) => diff_of(state, key, &product, &output, spec, &mut warnings).await?,
        None => None,
    };
    // The version this spec lands in: the running one, or the next when it needs a rebuild.
    let version = match running.version {
        Some(n) if diff.as_deref().is_some_and(requires_new_version) => n + 1,
        Some(n) => n,
        None => 1,
    };
    let plan =
        sluice_controller::plan::plan_product(&product, &output, &cluster, &partitions, version)
            .map_err(|e| ApiError::new(ErrorCode::ValidationFailed, format!("cannot plan: {e}")))?;

    let mut summary = plan.summary();
    if let Some(backfill) = &backfill {
        summary.push(format!(
            "Backfill: {} event(s), about {} byte(s), about {} s at {} events/s (nominal)",
            backfill.events, backfill.bytes, backfill.estimated_seconds, BACKFILL_EVENTS_PER_SECOND
        ));
        summary.extend(backfill.sources.iter().map(|source| {
            format!(
                "  Topic `{}`: {} event(s) in {} partition(s)",
                source.topic, source.events, source.partitions
            )
        }));
    }
    if let Some(changes) = &diff {
        let how = if requires_new_version(changes) {
            "a new version beside the running one"
        } else {
            "applied in place"
        };
        summary.push(format!("Changes from the approved spec ({how}):"));
        summary.extend(
            changes
                .iter()
                .map(|c| format!("  {:?} {}: {}", c.class, c.path, c.description)),
        );
    }
    summary.extend(warnings.iter().map(|w| format!("Warning: {w}")));

    let preview = preview_of(state, &product, &output, ctx, &mut warnings).await;
    let mut body = serde_json::to_value(&plan)
        .map_err(|e| ApiError::internal("cannot encode the plan", &e))?;
    let encode = |value: Result<Value, serde_json::Error>| {
        value.map_err(|e| ApiError::internal("cannot encode the plan", &e))
    };
    let backfill_json = encode(serde_json::to_value(&backfill))?;
    let diff_json = encode(serde_json::to_value(&diff))?;
    if let Some(map) = body.as_object_mut() {
        map.insert("backfill".into(), backfill_json);
        map.insert(
            "requiresNewVersion".into(),
            Value::from(diff.as_deref().is_some_and(requires_new_version)),
        );
        map.insert("diff".into(), diff_json);
        map.insert("preview".into(), Value::from(preview));
        map.insert("warnings".into(), Value::from(warnings));
        map.insert("summary".into(), Value::from(summary));
    }
    Ok(Json(body))
}

/// How many rows a plan previews.
const PREVIEW_ROWS: usize = 5;

/// A few output rows of the spec run on the latest records of the driving source (and of
/// a window join's stream), PII masked; empty (with a warning saying why) when they cannot
/// be computed.
async fn preview_of(
    state: &AppState,
    product: &DataProduct,
    output: &OutputSchema,
    ctx: &Context,
    warnings: &mut Vec<String>,
) -> Vec<Value> {
    let Some(kafka) = &state.kafka else {
        return Vec::new();
    };
    let transform = match sluice_pipeline::CompiledProduct::compile(&product.spec, output) {
        Ok(transform) => transform,
        Err(e) => {
            warnings.push(format!("no preview: {e}"));
            return Vec::new();
        }
    };
    let Some(source) = product
        .spec
        .sources
        .iter()
        .find(|s| s.name == transform.source())
    else {
        return Vec::new();
    };
    let Some(dataset) = ctx.dataset(&source.dataset) else {
        return Vec::new();
    };
    // A window join's stream is read too, and paired with the driving records.
    let window = transform.window().and_then(|join| {
        let source = product.spec.sources.iter().find(|s| s.name == join.alias)?;
        let stream = ctx.dataset(&source.dataset)?;
        Some((
            join.alias.clone(),
            stream.spec.schema.clone(),
            sluice_pipeline::preview::PreviewWindow {
                topic: stream.spec.topic.clone(),
                time_field: stream.spec.timestamp_field.clone(),
                driving_time_field: dataset.spec.timestamp_field.clone(),
            },
        ))
    });
    let mut transform = transform
        .with_source_key(dataset.spec.key.as_deref())
        .with_source_schema(dataset.spec.schema.clone());
    if let Some((alias, schema, _)) = &window {
        transform = transform.with_table_schema(alias, schema.clone());
    }
    let window = window.map(|(_, _, window)| window);
    let pii: Vec<String> = output
        .fields
        .iter()
        .filter(|f| !f.pii_sources.is_empty())
        .map(|f| f.name.clone())
        .collect();
    let bootstrap = kafka.bootstrap().to_owned();
    let topic = dataset.spec.topic.clone();
    let rows = tokio::task::spawn_blocking(move || {
        sluice_pipeline::preview::preview(
            &bootstrap,
            &topic,
            window.as_ref(),
            &transform,
            &pii,
            PREVIEW_ROWS,
            Duration::from_secs(5),
        )
    })
    .await;
    match rows {
        Ok(Ok(rows)) => rows.into_iter().map(Value::Object).collect(),
        Ok(Err(e)) => {
            warnings.push(format!("no preview: {e}"));
            Vec::new()
        }
        Err(e) => {
            warnings.push(format!("no preview: {e}"));
            Vec::new()
        }
    }
}

/// The topic of catalog dataset `dataset`.
fn topic_of(ctx: &Context, dataset: &str) -> Option<String> {
    ctx.dataset(dataset).map(|d| d.spec.topic.clone())
}

/// The backfill estimate of the product's sources, or `None` with a warning saying why
/// (Kafka not configured, not answering, or no source could be estimated). Every warning
/// of the estimate is added to `warnings`.
pub(crate) async fn backfill_of(
    state: &AppState,
    product: &DataProduct,
    ctx: &Context,
    warnings: &mut Vec<String>,
) -> Option<BackfillEstimate> {
    let Some(kafka) = &state.kafka else {
        warnings.push(format!(
            "Kafka is not configured ({ENV_KAFKA_BOOTSTRAP}): no backfill estimate, source \
             partition counts unknown"
        ));
        return None;
    };
    let now = Utc::now().timestamp_millis();
    let mut sources = Vec::new();
    for source in &product.spec.sources {
        match topic_of(ctx, &source.dataset) {
            Some(topic) => sources.push((
                source.name.clone(),
                topic,
                estimate::from_ms(source.from.as_deref(), now),
            )),
            None => warnings.push(format!(
                "source `{}`: dataset `{}` is not in the catalog",
                source.name, source.dataset
            )),
        }
    }
    let Ok(backfill) = tokio::time::timeout(
        PLAN_KAFKA_TIMEOUT,
        estimate::estimate_backfill(kafka, &sources),
    )
    .await
    else {
        warnings.push(format!(
            "Kafka at {} did not answer within {} s: no backfill estimate",
            kafka.bootstrap(),
            PLAN_KAFKA_TIMEOUT.as_secs()
        ));
        return None;
    };
    warnings.extend(backfill.warnings.iter().cloned());
    (!backfill.sources.is_empty()).then_some(backfill)
}

/// The changes from the approved spec to `product`'s, or `None` when they are the same or
/// the approved spec no longer validates against the catalog (then with a warning).
async fn diff_of(
    state: &AppState,
    key: &ObjectKey,
    product: &DataProduct,
    output: &OutputSchema,
    approved: Value,
    warnings: &mut Vec<String>,
) -> ApiResult<Option<Vec<SpecChange>>> {
    let mut document = serde_json::to_value(product)
        .map_err(|e| ApiError::internal("cannot encode the product", &e))?;
    document["spec"] = approved;
    let (old, old_output) = match apply::validate_for(&state.store, key, &document).await {
        Ok((Document::DataProduct(old), Some(old_output), _)) => (old, old_output),
        Ok(_) => return Ok(None),
        Err(error) => {
            let details = error.details();
            let mut reason = details.detail;
            for field in details.errors {
                reason.push_str(&format!("; {}: {}", field.pointer, field.detail));
            }
            warnings.push(format!(
                "the approved spec no longer validates against the catalog, no diff: {reason}"
            ));
            return Ok(None);
        }
    };
    if old.spec == product.spec {
        return Ok(None);
    }
    Ok(Some(diff_specs(
        &old.spec,
        &old_output,
        &product.spec,
        output,
    )))
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
