//! `/api/v1/audit`: query, export and verify the hash-chained audit log.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use sluice_store::{AuditInput, AuditQuery};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::caller::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDetails};
use crate::extract::Params;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_entries))
        .routes(routes!(export_entries))
        .routes(routes!(verify))
}

/// Filters of the audit log.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Object kind, e.g. `DataProduct`.
    pub kind: Option<String>,
    /// Object team.
    pub team: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// Actor, exactly as recorded.
    pub actor: Option<String>,
    /// Entries at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Entries before this time (RFC 3339).
    pub until: Option<String>,
    /// Entries after this sequence number.
    pub after: Option<i64>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
}

impl AuditParams {
    fn query(&self) -> ApiResult<AuditQuery> {
        let time = |field: &str, value: &Option<String>| -> ApiResult<Option<DateTime<Utc>>> {
            value
                .as_deref()
                .map(|v| {
                    DateTime::parse_from_rfc3339(v)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|_| {
                            ApiError::new(
                                ErrorCode::BadRequest,
                                format!("`{field}` is not an RFC 3339 time"),
                            )
                        })
                })
                .transpose()
        };
        Ok(AuditQuery {
            kind: self.kind.clone(),
            team: self.team.clone(),
            name: self.name.clone(),
            actor: self.actor.clone(),
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
            after_seq: self.after,
            limit: self.limit.unwrap_or(AuditQuery::DEFAULT_LIMIT),
        })
    }
}

/// Query the audit log, oldest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = Value), (status = 400, body = ProblemDetails), (status = 403, body = ProblemDetails)))]
async fn list_entries(
    State(state): State<AppState>,
    Params(params): Params<AuditParams>,
) -> ApiResult<Json<Value>> {
    let entries = state.store.audit_entries(&params.query()?).await?;
    serde_json::to_value(entries)
        .map(Json)
        .map_err(|e| ApiError::internal("cannot encode audit entries", &e))
}

/// Export the audit log as JSON lines.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(AuditParams),
    responses((status = 200, content_type = "application/x-ndjson", body = String)))]
async fn export_entries(
    State(state): State<AppState>,
    Params(params): Params<AuditParams>,
) -> ApiResult<Response> {
    let mut query = params.query()?;
    query.limit = AuditQuery::MAX_LIMIT;
    let mut out = Vec::new();
    loop {
        let page = state.store.audit_entries(&query).await?;
        for entry in &page {
            let line = serde_json::to_string(entry)
                .map_err(|e| ApiError::internal("cannot encode audit entries", &e))?;
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        match page.last() {
            Some(last) if page.len() == AuditQuery::MAX_LIMIT as usize => {
                query.after_seq = Some(last.seq)
            }
            _ => break,
        }
    }
    Ok(([(CONTENT_TYPE, "application/x-ndjson")], Body::from(out)).into_response())
}

/// Re-walk the hash chain and the signed head; report the first broken entry. The check
/// itself is audited.
#[utoipa::path(post, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = Value), (status = 403, body = ProblemDetails)))]
async fn verify(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let result = state.store.verify_audit().await?;
    let outcome = if result.ok { "verified" } else { "broken" };
    // Recording the check on a broken log may itself be refused: the answer still stands.
    if let Err(e) = state
        .store
        .append_audit(AuditInput::new(&caller.audit(), "audit.verify", outcome))
        .await
    {
        tracing::warn!(error = %e, "could not record the audit verification");
    }
    serde_json::to_value(result)
        .map(Json)
        .map_err(|e| ApiError::internal("cannot encode the verification", &e))
}
