//! Authentication and authorization of every request.
//!
//! A request carries `Authorization: Bearer <token>`: an API token (`slc_…`, issued by
//! Sluice, stored hashed) or an OIDC JWT from the configured issuer. The principal it
//! proves is checked against the access matrix ([`matrix`]) for the matched route, then
//! handed to the handler as a request extension. Public: `/healthz`, `/readyz`, `/metrics`,
//! the API description, the web console's files and [`matrix::PUBLIC`].

pub mod jwt;
pub mod matrix;
pub mod roles;
pub mod tokens;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use roles::{Principal, Role, Via};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// Paths answered without authentication.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/api/v1/openapi.json"
    ) || path == "/api/docs"
        || path.starts_with("/api/docs/")
}

/// The middleware: authenticate, authorize against the matrix, attach the principal.
pub async fn authorize(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if is_public(&path) || matrix::is_public(request.method(), &path) {
        return next.run(request).await;
    }
    let bearer = bearer_token(&request);
    let principal = match authenticate(&state, bearer).await {
        Ok(principal) => principal,
        Err(error) => return unauthenticated(error),
    };
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    if let Some(template) = template {
        let Some(rule) = matrix::rule_for(request.method(), &template) else {
            tracing::error!(method = %request.method(), %template, "route missing from the access matrix");
            return ApiError::new(ErrorCode::Forbidden, "this endpoint has no access rule")
                .into_response();
        };
        let team = path_param(&template, &path, "{team}");
        if !matrix::allows(rule.access, &principal, team.as_deref()) {
            return ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "{} may not {} {}",
                    principal.actor(),
                    request.method(),
                    path
                ),
            )
            .into_response();
        }
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

fn unauthenticated(error: ApiError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"sluice\""),
    );
    response
}

/// The bearer token of a request: `None` without an Authorization header, `Some(None)` when
/// the header is not a bearer token.
fn bearer_token(request: &Request) -> Option<Option<String>> {
    let header = request.headers().get(AUTHORIZATION)?;
    Some(
        header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
    )
}

async fn authenticate(
    state: &AppState,
    bearer: Option<Option<String>>,
) -> Result<Principal, ApiError> {
    let token = bearer
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "send Authorization: Bearer <token>",
            )
        })?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "the Authorization header is not a bearer token",
            )
        })?;
    tokens::verify_bearer(&state.store, state.oidc.as_deref(), &token).await
}

/// The value of `{param}` in `path`, aligned with the route `template`.
fn path_param(template: &str, path: &str, param: &str) -> Option<String> {
    template
        .split('/')
        .zip(path.split('/'))
        .find(|(t, _)| *t == param)
        .map(|(_, v)| v.to_owned())
}
