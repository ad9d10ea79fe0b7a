//! Approving and rejecting products: `POST …/{name}/approve`, `POST …/{name}/reject` and the
//! inbox `GET /api/v1/approvals` of what the caller may decide.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use sluice_schemas::{DataProductStatus, Kind};
use sluice_store::{ListQuery, ObjectKey};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{List, apply};
use crate::approvals::{self, DecisionError};
use crate::caller::Caller;
use crate::docs::DataProductDoc;
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDetails};
use crate::extract::IfMatch;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(inbox))
}

/// A decision on a product.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionRequest {
    /// Why. Required to reject.
    #[serde(default)]
    pub comment: Option<String>,
    /// The generation reviewed; refused with 409 if another one is pending by now.
    #[serde(default)]
    pub generation: Option<i64>,
}

async fn decide(
    state: &AppState,
    key: ObjectKey,
    caller: &Caller,
    if_match: Option<i64>,
    body: Option<Value>,
    approve: bool,
) -> ApiResult<Response> {
    let request: DecisionRequest = match body {
        Some(Value::Null) | None => DecisionRequest::default(),
        Some(body) => serde_json::from_value(body).map_err(|e| {
            ApiError::new(
                ErrorCode::ValidationFailed,
                format!("invalid decision: {e}"),
            )
        })?,
    };
    let object = state
        .store
        .get(&key)
        .await?
        .ok_or_else(|| ApiError::not_found(apply::describe(&key)))?;
    let mut status: DataProductStatus = object
        .status
        .clone()
        .and_then(|s| serde_json::from_value(s).ok())
        .ok_or_else(|| ApiError::new(ErrorCode::Conflict, "the product has no approval pending"))?;
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let principal = &caller.principal;
    let (action, outcome) = if approve {
        approvals::grant(
            &mut status,
            principal,
            &state.policy,
            request.generation,
            request.comment,
            &now,
        )
        .map_err(decision_error)?;
        approvals::settle_after_grant(&mut status, &object.spec);
        let done = status
            .approval
            .as_ref()
            .is_some_and(|a| a.missing().is_empty());
        (
            "approve",
            if done {
                "approved"
            } else {
                "partially-approved"
            },
        )
    } else {
        let comment = request
            .comment
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| {
                ApiError::new(ErrorCode::ValidationFailed, "a rejection needs a `comment`")
            })?;
        approvals::reject(
            &mut status,
            principal,
            &state.policy,
            request.generation,
            comment,
            &now,
        )
        .map_err(decision_error)?;
        ("reject", "rejected")
    };
    let value = serde_json::to_value(&status)
        .map_err(|e| ApiError::internal("cannot encode status", &e))?;
    let precondition = if_match.or(Some(object.resource_version));
    let object = state
        .store
        .record_status(&key, value, precondition, &caller.audit(), action, outcome)
        .await?;
    Ok(apply::respond(axum::http::StatusCode::OK, &object))
}

/// The body as one document, or `None` when it is empty.
fn optional_document(bytes: &[u8]) -> ApiResult<Option<Value>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut documents = sluice_schemas::validate::parse_documents(bytes).map_err(|p| {
        ApiError::invalid(
            ErrorCode::ValidationFailed,
            "the body does not parse",
            vec![p],
        )
    })?;
    match documents.len() {
        0 => Ok(None),
        1 => Ok(Some(documents.remove(0))),
        n => Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("the body holds {n} documents; send one"),
        )),
    }
}

fn decision_error(e: DecisionError) -> ApiError {
    let code = match e {
        DecisionError::NothingPending | DecisionError::Stale { .. } => ErrorCode::Conflict,
        DecisionError::OwnRequest | DecisionError::NotEligible(_) => ErrorCode::Forbidden,
    };
    ApiError::new(code, e.to_string())
}

/// Approve the pending generation of a product: gives every approval still needed that the
/// caller may give (platform approvers: `platform`; dataset owners: `owner:<team>`).
#[utoipa::path(post, path = "/api/v1/products/{team}/{name}/approve", tag = "approvals",
    params(("team" = String, Path, description = "Team"), ("name" = String, Path, description = "Product name")),
    request_body(content = DecisionRequest),
    responses((status = 200, body = DataProductDoc), (status = 403, body = ProblemDetails),
        (status = 409, body = ProblemDetails)))]
async fn approve(
    State(state): State<AppState>,
    Path((team, name)): Path<(String, String)>,
    caller: Caller,
    IfMatch(if_match): IfMatch,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body = optional_document(&body)?;
    let response = decide(
        &state,
        ObjectKey::data_product(team, name),
        &caller,
        if_match,
        body,
        true,
    )
    .await;
    state.wake_controller();
    response
}

/// Reject the pending generation of a product, with a comment.
#[utoipa::path(post, path = "/api/v1/products/{team}/{name}/reject", tag = "approvals",
    params(("team" = String, Path, description = "Team"), ("name" = String, Path, description = "Product name")),
    request_body(content = DecisionRequest),
    responses((status = 200, body = DataProductDoc), (status = 403, body = ProblemDetails),
        (status = 409, body = ProblemDetails), (status = 422, body = ProblemDetails)))]
async fn reject(
    State(state): State<AppState>,
    Path((team, name)): Path<(String, String)>,
    caller: Caller,
    IfMatch(if_match): IfMatch,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body = optional_document(&body)?;
    decide(
        &state,
        ObjectKey::data_product(team, name),
        &caller,
        if_match,
        body,
        false,
    )
    .await
}

/// The products awaiting an approval the caller may give.
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals",
    responses((status = 200, body = List), (status = 403, body = ProblemDetails)))]
async fn inbox(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<List>> {
    let mut items = Vec::new();
    let mut query = ListQuery {
        limit: ListQuery::MAX_LIMIT,
        ..ListQuery::default()
    };
    loop {
        let page = state.store.list(Kind::DataProduct, &query).await?;
        for object in &page.items {
            let Some(status) = object
                .status
                .clone()
                .and_then(|s| serde_json::from_value::<DataProductStatus>(s).ok())
            else {
                continue;
            };
            let own = status
                .approval
                .as_ref()
                .is_some_and(|a| a.requested_by == caller.principal.actor());
            if !own && !approvals::eligible(&status, &caller.principal, &state.policy).is_empty() {
                items.push(apply::present(object));
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    Ok(Json(List {
        items,
        continue_token: None,
    }))
}
