//! API tokens: random, shown once, stored as a SHA-256 hash with a name, team, role and
//! expiry; revocable. [`verify_bearer`] also dispatches OIDC JWTs to their verifier.

use base64::Engine;
use chrono::Utc;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sluice_store::Store;

use super::jwt::{self, OidcVerifier};
use super::roles::{Principal, Role, Via};
use crate::error::{ApiError, ErrorCode};

/// The prefix of every token Sluice issues, so leaked tokens are recognisable.
pub const TOKEN_PREFIX: &str = "slc_";

/// A new random token: `slc_` and 32 random bytes, base64url.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The stored form of a token: the hex SHA-256 of its text. Tokens carry 256 random bits,
/// so a fast hash is enough; the text itself is never stored.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The principal any bearer token proves, or 401. An API token (`slc_…`) is looked up in
/// the store; a JWT (three dot-separated parts, a JSON header first) is verified by `oidc`
/// when OIDC is configured. Without OIDC a JWT is refused like any unknown token, and other
/// text is looked up in the store (an admin token from `SLUICE_ADMIN_TOKEN` may have any form).
pub async fn verify_bearer(
    store: &Store,
    oidc: Option<&OidcVerifier>,
    token: &str,
) -> Result<Principal, ApiError> {
    if !token.starts_with(TOKEN_PREFIX)
        && let Some(oidc) = oidc
        && jwt::looks_like_jwt(token)
    {
        return oidc.verify(token).await.map_err(|rejection| {
            tracing::debug!(reason = %rejection, "JWT refused");
            ApiError::new(ErrorCode::Unauthenticated, rejection.to_string())
        });
    }
    verify(store, token).await
}

/// The principal an API token proves, or 401.
pub async fn verify(store: &Store, token: &str) -> Result<Principal, ApiError> {
    let refused = || {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "the token is unknown, expired or revoked",
        )
    };
    if token.len() > 4096 {
        return Err(refused());
    }
    let stored = store
        .find_token_by_hash(&hash(token))
        .await
        .map_err(ApiError::from)?
        .ok_or_else(refused)?;
    if stored.revoked_at.is_some() || stored.expires_at.is_some_and(|e| e <= Utc::now()) {
        return Err(refused());
    }
    let role: Role = stored.role.parse().map_err(|_| refused())?;
    Ok(Principal {
        name: stored.name,
        team: stored.team,
        role,
        via: Via::Token,
    })
}
