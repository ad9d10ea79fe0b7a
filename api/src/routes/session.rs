//! Who the caller is (`/api/v1/me`) and how people sign in (`/api/v1/auth/config`, public):
//! what the web console asks first.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Role, Via};
use crate::caller::Caller;
use crate::error::ProblemDetails;
use crate::state::AppState;

/// The routes that need a caller.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_me))
}

/// The routes answered without authentication (see `auth::matrix::PUBLIC`).
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_auth_config))
}

/// The caller, as the server authenticated them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The token's name or the person's name claim (else `sub`).
    pub name: String,
    /// Their team; `null` when the credential names none.
    pub team: Option<String>,
    /// Their role.
    pub role: Role,
    /// How they signed in: an API token or an OIDC JWT.
    pub via: Via,
}

/// Who the caller is: name, team, role and how they signed in.
#[utoipa::path(get, path = "/api/v1/me", tag = "session",
    responses((status = 200, body = Me), (status = 401, body = ProblemDetails)))]
async fn get_me(caller: Caller) -> Json<Me> {
    let principal = caller.principal;
    Json(Me {
        name: principal.name,
        team: Some(principal.team).filter(|t| !t.is_empty()),
        role: principal.role,
        via: principal.via,
    })
}

/// How people sign in.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthConfig {
    /// OIDC sign-in, or `null` when only API tokens are accepted.
    pub oidc: Option<OidcConfig>,
}

/// The OIDC provider whose JWTs the server accepts, and where the console signs people in.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcConfig {
    /// The issuer (`iss`) of accepted tokens.
    pub issuer: String,
    /// The audience (`aud`) accepted tokens must include.
    pub audience: String,
    /// The provider's authorization endpoint (authorization code with PKCE), or `null` when
    /// not configured (`SLUICE_OIDC_AUTHORIZE_URL`).
    pub authorization_endpoint: Option<String>,
    /// The provider's token endpoint, or `null` when not configured (`SLUICE_OIDC_TOKEN_URL`).
    pub token_endpoint: Option<String>,
    /// The console's OAuth client id at the provider, or `null` when not configured
    /// (`SLUICE_OIDC_CLIENT_ID`).
    pub client_id: Option<String>,
}

/// How people sign in: whether OIDC is on, its issuer and audience, and the endpoints the
/// console uses for the authorization code flow with PKCE. Public: answered without a
/// token.
#[utoipa::path(get, path = "/api/v1/auth/config", tag = "session", security(()),
    responses((status = 200, body = AuthConfig)))]
async fn get_auth_config(State(state): State<AppState>) -> Json<AuthConfig> {
    let oidc = state.oidc.as_deref().map(|verifier| {
        let settings = verifier.settings();
        OidcConfig {
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            authorization_endpoint: settings.authorization_endpoint.clone(),
            token_endpoint: settings.token_endpoint.clone(),
            client_id: settings.client_id.clone(),
        }
    });
    Json(AuthConfig { oidc })
}
