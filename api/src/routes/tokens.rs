//! `/api/v1/tokens`: API tokens for CI pipelines and the CLI. A token is shown once, when
//! created; only its hash is kept.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_store::{NewToken, StoreError, StoredToken};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Role, tokens};
use crate::caller::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDetails};
use crate::extract::DocumentBody;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    /// A unique name, e.g. `ci-team-shop`.
    pub name: String,
    /// The team the token acts for (DNS-1123 label).
    pub team: String,
    /// viewer, requester, owner, approver, admin or auditor.
    pub role: Role,
    /// Seconds until it expires; never if absent.
    #[serde(default)]
    pub expires_in_seconds: Option<u64>,
}

/// A token as listed (never its text).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its team.
    pub team: String,
    /// Its role.
    pub role: String,
    /// Who created it.
    pub created_by: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// When it expires, if ever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// When it was revoked, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// A created token: the only time its text is returned.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    /// The bearer token. Store it now; it cannot be shown again.
    pub token: String,
    /// What was stored.
    #[serde(flatten)]
    pub info: TokenInfo,
}

fn info(t: StoredToken) -> TokenInfo {
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    TokenInfo {
        id: t.id,
        name: t.name,
        team: t.team,
        role: t.role,
        created_by: t.created_by,
        created_at: time(t.created_at),
        expires_at: t.expires_at.map(time),
        revoked_at: t.revoked_at.map(time),
    }
}

/// List tokens (never their text).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenInfo>), (status = 401, body = ProblemDetails), (status = 403, body = ProblemDetails)))]
async fn list_tokens(State(state): State<AppState>) -> ApiResult<Json<Vec<TokenInfo>>> {
    let tokens = state.store.list_tokens().await?;
    Ok(Json(tokens.into_iter().map(info).collect()))
}

/// Create a token; its text is in the response and nowhere else.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body(content = TokenRequest),
    responses((status = 201, body = CreatedToken), (status = 409, body = ProblemDetails),
        (status = 422, body = ProblemDetails)))]
async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    DocumentBody(body): DocumentBody,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let request: TokenRequest = serde_json::from_value(body).map_err(|e| {
        ApiError::new(
            ErrorCode::ValidationFailed,
            format!("invalid token request: {e}"),
        )
    })?;
    if !sluice_schemas::names::is_dns_label(&request.team) {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "team must be a DNS-1123 label",
        ));
    }
    if request.name.is_empty()
        || request.name.len() > 128
        || request.name.chars().any(char::is_control)
    {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "name must be 1 to 128 printable characters",
        ));
    }
    let expires_at = match request.expires_in_seconds {
        Some(seconds) => Some(
            i64::try_from(seconds)
                .ok()
                .and_then(chrono::Duration::try_seconds)
                .and_then(|d| Utc::now().checked_add_signed(d))
                .ok_or_else(|| {
                    ApiError::new(ErrorCode::ValidationFailed, "expiresInSeconds is too large")
                })?,
        ),
        None => None,
    };
    let token = tokens::generate();
    let stored = state
        .store
        .create_token(
            NewToken {
                name: request.name,
                team: request.team,
                role: request.role.as_str().to_owned(),
                hash: tokens::hash(&token),
                expires_at,
            },
            &caller.audit(),
        )
        .await
        .map_err(|e| match e {
            StoreError::TokenNameTaken { name } => ApiError::new(
                ErrorCode::Conflict,
                format!("a token named `{name}` exists already"),
            ),
            other => ApiError::from(other),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token,
            info: info(stored),
        }),
    ))
}

/// Revoke a token by id or name.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id or name")),
    responses((status = 200, body = TokenInfo), (status = 404, body = ProblemDetails)))]
async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<TokenInfo>> {
    state
        .store
        .revoke_token(&id, &caller.audit())
        .await?
        .map(|t| Json(info(t)))
        .ok_or_else(|| ApiError::not_found(format!("token {id}")))
}
