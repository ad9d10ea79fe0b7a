//! API tokens as the store keeps them: hashed, with a name, team, role and expiry, revocable;
//! creation and revocation are audited in the same transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::audit::{self, Audit, AuditInput};
use crate::error::{CorruptValue, StoreError};
use crate::model::rfc3339;
use crate::store::{Store, now};

/// A token to create; `hash` is the SHA-256 (hex) of the token text, which is never stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// A unique, human-chosen name (e.g. `ci-team-shop`).
    pub name: String,
    /// The team it acts for.
    pub team: String,
    /// The role it has.
    pub role: String,
    /// The hash of the token text.
    pub hash: String,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A stored token (never its text).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredToken {
    /// Its id.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// The team it acts for.
    pub team: String,
    /// Its role.
    pub role: String,
    /// The hash of its text.
    #[serde(skip)]
    pub hash: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// When it expires, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Stores a new token, audited as `token.create`; a name already in use is
    /// [`StoreError::TokenNameTaken`].
    pub async fn create_token(
        &self,
        token: NewToken,
        by: &Audit,
    ) -> Result<StoredToken, StoreError> {
        let mut write = self.begin_write().await?;
        let time = now();
        let stored = StoredToken {
            id: Uuid::new_v4().to_string(),
            name: token.name,
            team: token.team,
            role: token.role,
            hash: token.hash,
            created_at: time,
            created_by: by.actor.clone(),
            expires_at: token.expires_at,
            revoked_at: None,
        };
        let inserted = sqlx::query(
            "INSERT INTO api_tokens (id, name, team, role, hash, created_at, created_by, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL) ON CONFLICT DO NOTHING",
        )
        .bind(stored.id.as_str())
        .bind(stored.name.as_str())
        .bind(stored.team.as_str())
        .bind(stored.role.as_str())
        .bind(stored.hash.as_str())
        .bind(rfc3339(time))
        .bind(stored.created_by.as_str())
        .bind(stored.expires_at.map(rfc3339))
        .execute(&mut *write.tx)
        .await?
        .rows_affected();
        if inserted != 1 {
            return Err(StoreError::TokenNameTaken { name: stored.name });
        }
        let mut entry = AuditInput::new(by, "token.create", "created").with_subject(
            "ApiToken",
            &stored.team,
            &stored.name,
        );
        entry.diff = json!({"after": {"name": stored.name, "team": stored.team, "role": stored.role, "expiresAt": stored.expires_at.map(rfc3339)}});
        audit::append(&mut write.tx, &self.audit_key, entry, time).await?;
        write.tx.commit().await?;
        Ok(stored)
    }

    /// The token whose text hashes to `hash`, if any (revoked and expired ones included).
    pub async fn find_token_by_hash(&self, hash: &str) -> Result<Option<StoredToken>, StoreError> {
        let row = sqlx::query(FIND_BY_HASH)
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode).transpose()
    }

    /// Every token, by name.
    pub async fn list_tokens(&self) -> Result<Vec<StoredToken>, StoreError> {
        let rows = sqlx::query(LIST).fetch_all(&self.pool).await?;
        rows.iter().map(decode).collect()
    }

    /// Revokes the token with this id or name, audited as `token.revoke`; `None` if there is
    /// none. Revoking twice keeps the first revocation time.
    pub async fn revoke_token(
        &self,
        id_or_name: &str,
        by: &Audit,
    ) -> Result<Option<StoredToken>, StoreError> {
        let mut write = self.begin_write().await?;
        let row = sqlx::query(FIND_BY_ID_OR_NAME)
            .bind(id_or_name)
            .fetch_optional(&mut *write.tx)
            .await?;
        let Some(mut token) = row.as_ref().map(decode).transpose()? else {
            return Ok(None);
        };
        if token.revoked_at.is_none() {
            let time = now();
            sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
                .bind(rfc3339(time))
                .bind(token.id.as_str())
                .execute(&mut *write.tx)
                .await?;
            token.revoked_at = Some(time);
            let entry = AuditInput::new(by, "token.revoke", "revoked").with_subject(
                "ApiToken",
                &token.team,
                &token.name,
            );
            audit::append(&mut write.tx, &self.audit_key, entry, time).await?;
            write.tx.commit().await?;
        }
        Ok(Some(token))
    }

    /// Whether any unrevoked token with the `admin` role exists.
    pub async fn has_admin_token(&self) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM api_tokens WHERE role = 'admin' AND revoked_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}

const FIND_BY_HASH: &str = "SELECT id, name, team, role, hash, created_at, created_by, expires_at, revoked_at FROM api_tokens WHERE hash = $1";
const FIND_BY_ID_OR_NAME: &str = "SELECT id, name, team, role, hash, created_at, created_by, expires_at, revoked_at \
                                  FROM api_tokens WHERE id = $1 OR name = $1";
const LIST: &str = "SELECT id, name, team, role, hash, created_at, created_by, expires_at, revoked_at FROM api_tokens ORDER BY name";

fn decode(row: &AnyRow) -> Result<StoredToken, StoreError> {
    let id: String = row.try_get("id")?;
    let time = |column: &'static str,
                value: Option<String>|
     -> Result<Option<DateTime<Utc>>, StoreError> {
        value
            .map(|v| {
                DateTime::parse_from_rfc3339(&v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| StoreError::Corrupt {
                        row: format!("token {id}"),
                        column,
                        source: CorruptValue::Timestamp(e),
                    })
            })
            .transpose()
    };
    let created_at = time("created_at", Some(row.try_get("created_at")?))?.unwrap_or_default();
    Ok(StoredToken {
        name: row.try_get("name")?,
        team: row.try_get("team")?,
        role: row.try_get("role")?,
        hash: row.try_get("hash")?,
        created_at,
        created_by: row.try_get("created_by")?,
        expires_at: time("expires_at", row.try_get("expires_at")?)?,
        revoked_at: time("revoked_at", row.try_get("revoked_at")?)?,
        id,
    })
}
