//! Claims: names an object holds exclusively (`ObjectInput::claims`); no two objects hold one.

use sluice_schemas::Kind;
use sqlx::Row;

use crate::error::StoreError;
use crate::model::ObjectKey;

const DELETE_CLAIMS: &str = "DELETE FROM object_claims WHERE kind = $1 AND team = $2 AND name = $3";
const INSERT_CLAIM: &str = "INSERT INTO object_claims (claim, kind, team, name) VALUES ($1, $2, $3, $4) \
                            ON CONFLICT (claim) DO NOTHING";
const CLAIM_OWNER: &str = "SELECT kind, team, name FROM object_claims WHERE claim = $1";

/// Makes `claims` the exact set the object at `key` holds; fails if another object holds one.
pub(super) async fn replace_claims(
    conn: &mut sqlx::AnyConnection,
    key: &ObjectKey,
    claims: &[String],
) -> Result<(), StoreError> {
    sqlx::query(DELETE_CLAIMS)
        .bind(key.kind().as_str())
        .bind(key.team())
        .bind(key.name())
        .execute(&mut *conn)
        .await?;
    for claim in claims {
        let inserted = sqlx::query(INSERT_CLAIM)
            .bind(claim.as_str())
            .bind(key.kind().as_str())
            .bind(key.team())
            .bind(key.name())
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if inserted == 0 {
            let row = sqlx::query(CLAIM_OWNER)
                .bind(claim.as_str())
                .fetch_one(&mut *conn)
                .await?;
            let kind: String = row.try_get("kind")?;
            let kind = Kind::ALL
                .into_iter()
                .find(|k| k.as_str() == kind)
                .unwrap_or(key.kind());
            return Err(StoreError::ClaimTaken {
                claim: claim.clone(),
                owner: ObjectKey::new(
                    kind,
                    row.try_get::<String, _>("team")?,
                    row.try_get::<String, _>("name")?,
                ),
            });
        }
    }
    Ok(())
}
