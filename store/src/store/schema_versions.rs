//! The schema versions of datasets: recorded by [`Store::apply`], read back here.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Store;
use super::objects::conflict;
use crate::error::{CorruptValue, StoreError};
use crate::model::{ObjectKey, SchemaVersion, rfc3339};

const LATEST_SCHEMA_VERSION: &str = "SELECT version, schema, created_at FROM schema_versions \
     WHERE dataset = $1 ORDER BY version DESC LIMIT 1";

const INSERT_SCHEMA_VERSION: &str = "INSERT INTO schema_versions (dataset, version, schema, created_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (dataset, version) DO NOTHING";

const SELECT_SCHEMA_VERSIONS: &str = "SELECT version, schema, created_at FROM schema_versions \
     WHERE dataset = $1 ORDER BY version";

const SELECT_SCHEMA_VERSION: &str = "SELECT version, schema, created_at FROM schema_versions \
     WHERE dataset = $1 AND version = $2";

pub(super) const DELETE_SCHEMA_VERSIONS: &str = "DELETE FROM schema_versions WHERE dataset = $1";

impl Store {
    /// Every recorded schema version of `dataset`, oldest first; empty for an unknown one.
    pub async fn schema_versions(&self, dataset: &str) -> Result<Vec<SchemaVersion>, StoreError> {
        let rows = sqlx::query(SELECT_SCHEMA_VERSIONS)
            .bind(dataset)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| decode_schema_version(dataset, row))
            .collect()
    }

    /// Schema version `version` of `dataset`, if recorded.
    pub async fn schema_version(
        &self,
        dataset: &str,
        version: i64,
    ) -> Result<Option<SchemaVersion>, StoreError> {
        let row = sqlx::query(SELECT_SCHEMA_VERSION)
            .bind(dataset)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| decode_schema_version(dataset, &row))
            .transpose()
    }
}

/// Records `schema` as the next schema version of the dataset `key` unless it equals the
/// latest one; returns the number recorded.
pub(super) async fn record_schema_version(
    conn: &mut sqlx::AnyConnection,
    key: &ObjectKey,
    schema: &Value,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    let dataset = key.name();
    let latest = sqlx::query(LATEST_SCHEMA_VERSION)
        .bind(dataset)
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| decode_schema_version(dataset, &row))
        .transpose()?;
    let version = match latest {
        Some(latest) if &latest.schema == schema => return Ok(None),
        Some(latest) => latest.version + 1,
        None => 1,
    };
    let inserted = sqlx::query(INSERT_SCHEMA_VERSION)
        .bind(dataset)
        .bind(version)
        .bind(schema.to_string())
        .bind(rfc3339(now))
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if inserted != 1 {
        return Err(conflict(key, None, None));
    }
    Ok(Some(version))
}

fn decode_schema_version(dataset: &str, row: &AnyRow) -> Result<SchemaVersion, StoreError> {
    let version: i64 = row.try_get("version")?;
    let corrupt = |column: &'static str, source: CorruptValue| StoreError::Corrupt {
        row: format!("schema version {version} of {dataset}"),
        column,
        source,
    };
    let schema = serde_json::from_str(&row.try_get::<String, _>("schema")?)
        .map_err(|e| corrupt("schema", CorruptValue::Json(e)))?;
    let created_at = DateTime::parse_from_rfc3339(&row.try_get::<String, _>("created_at")?)
        .map_err(|e| corrupt("created_at", CorruptValue::Timestamp(e)))?
        .with_timezone(&Utc);
    Ok(SchemaVersion {
        version,
        schema,
        created_at,
    })
}
