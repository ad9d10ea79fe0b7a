//! The object operations of [`Store`]: apply, get, list and delete.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sluice_schemas::Kind;
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::claims::replace_claims;
use super::schema_versions::{DELETE_SCHEMA_VERSIONS, record_schema_version};
use super::{Store, now};
use crate::audit::{self, Audit, AuditInput, object_diff};
use crate::error::{CorruptValue, StoreError};
use crate::model::{
    Applied, ListQuery, ObjectInput, ObjectKey, Outcome, Page, SERVER_METADATA_KEYS, StoredObject,
    decode_cursor, encode_cursor, rfc3339,
};

macro_rules! object_columns {
    () => {
        "kind, team, name, uid, metadata, spec, status, generation, resource_version, \
         created_at, updated_at"
    };
}

const SELECT_OBJECT: &str = concat!(
    "SELECT ",
    object_columns!(),
    " FROM objects WHERE kind = $1 AND team = $2 AND name = $3"
);

/// `$2` team filter, `$3`/`$4` name prefix and its length in characters, `$5`/`$6` the
/// (team, name) after which the page starts, `$7` the number of rows.
const LIST_OBJECTS: &str = concat!(
    "SELECT ",
    object_columns!(),
    " FROM objects WHERE kind = $1",
    " AND ($2 IS NULL OR team = $2)",
    " AND ($3 IS NULL OR (name >= $3 AND substr(name, 1, $4) = $3))",
    " AND ($5 IS NULL OR team > $5 OR (team = $5 AND name > $6))",
    " ORDER BY team, name LIMIT $7"
);

const INSERT_OBJECT: &str = concat!(
    "INSERT INTO objects (",
    object_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    " ON CONFLICT (kind, team, name) DO NOTHING"
);

const UPDATE_OBJECT: &str = "UPDATE objects \
     SET metadata = $4, spec = $5, generation = $6, resource_version = $7, updated_at = $8 \
     WHERE kind = $1 AND team = $2 AND name = $3 AND resource_version = $9";

const DELETE_OBJECT: &str =
    "DELETE FROM objects WHERE kind = $1 AND team = $2 AND name = $3 AND resource_version = $4";

impl Store {
    /// Creates or updates the object at `key`.
    ///
    /// - Missing: created with a new uid, generation 1 → [`Outcome::Created`].
    /// - Spec and metadata equal to the stored ones (JSON equality; key order does not matter):
    ///   nothing is written, resourceVersion stays → [`Outcome::Unchanged`].
    /// - Otherwise → [`Outcome::Updated`]: the resourceVersion changes, the generation is
    ///   incremented only if the spec changed; the status is kept.
    ///
    /// `precondition` is the resourceVersion the caller expects the object to have: if it has
    /// another one, or does not exist, the write fails with [`StoreError::Conflict`] (whose
    /// `actual` is `None` for a missing object) — even if the write would be a no-op.
    ///
    /// For a dataset, `input.schema_version` (when `Some` and the object is written) is
    /// compared with the dataset's latest schema version and, if different, recorded as the
    /// next version in the same transaction. An `Unchanged` apply records nothing.
    ///
    /// A write appends an audit entry by `audit` in its transaction: action `apply`, outcome
    /// `created` or `updated`, the generation after the write and the diff of
    /// `{"metadata", "spec"}` (see [`AuditEntry::diff`](crate::AuditEntry::diff)). An
    /// `Unchanged` apply and a refused one (conflict, claim taken) change nothing and are not
    /// audited. If the entry cannot be written the write is not made
    /// ([`StoreError::AuditWrite`]).
    pub async fn apply(
        &self,
        key: &ObjectKey,
        input: ObjectInput,
        precondition: Option<i64>,
        audit: &Audit,
    ) -> Result<Applied, StoreError> {
        if input.schema_version.is_some() && key.kind() != Kind::Dataset {
            return Err(StoreError::SchemaVersionNotDataset { kind: key.kind() });
        }
        check_audit(audit)?;
        let metadata = user_metadata(input.metadata);
        let spec = input.spec;
        let mut write = self.begin_write().await?;
        let now = now();
        let current = fetch_object(&mut write.tx, key).await?;
        check_precondition(key, precondition, current.as_ref())?;

        let before = current.as_ref().map(written_state);
        let (outcome, object) = match current {
            None => {
                let object = StoredObject {
                    key: key.clone(),
                    uid: Uuid::new_v4(),
                    metadata,
                    spec,
                    status: None,
                    generation: 1,
                    resource_version: write.revision,
                    created_at: now,
                    updated_at: now,
                };
                let inserted = sqlx::query(INSERT_OBJECT)
                    .bind(key.kind().as_str())
                    .bind(key.team())
                    .bind(key.name())
                    .bind(object.uid.to_string())
                    .bind(object.metadata.to_string())
                    .bind(object.spec.to_string())
                    .bind(None::<String>)
                    .bind(object.generation)
                    .bind(object.resource_version)
                    .bind(rfc3339(object.created_at))
                    .bind(rfc3339(object.updated_at))
                    .execute(&mut *write.tx)
                    .await?
                    .rows_affected();
                if inserted != 1 {
                    return Err(conflict(key, precondition, None));
                }
                (Outcome::Created, object)
            }
            Some(current) if current.spec == spec && current.metadata == metadata => {
                write.tx.rollback().await?;
                return Ok(Applied {
                    outcome: Outcome::Unchanged,
                    object: current,
                    schema_version: None,
                });
            }
            Some(current) => {
                let generation = if current.spec == spec {
                    current.generation
                } else {
                    current.generation + 1
                };
                let object = StoredObject {
                    metadata,
                    spec,
                    generation,
                    resource_version: write.revision,
                    updated_at: now,
                    ..current
                };
                let updated = sqlx::query(UPDATE_OBJECT)
                    .bind(key.kind().as_str())
                    .bind(key.team())
                    .bind(key.name())
                    .bind(object.metadata.to_string())
                    .bind(object.spec.to_string())
                    .bind(object.generation)
                    .bind(object.resource_version)
                    .bind(rfc3339(object.updated_at))
                    .bind(current.resource_version)
                    .execute(&mut *write.tx)
                    .await?
                    .rows_affected();
                if updated != 1 {
                    return Err(conflict(
                        key,
                        Some(current.resource_version),
                        Some(current.resource_version),
                    ));
                }
                (Outcome::Updated, object)
            }
        };

        replace_claims(&mut write.tx, key, &input.claims).await?;
        let schema_version = match input.schema_version {
            Some(schema) => record_schema_version(&mut write.tx, key, &schema, now).await?,
            None => None,
        };
        let outcome_name = match outcome {
            Outcome::Created => "created",
            Outcome::Updated | Outcome::Unchanged => "updated",
        };
        let entry = AuditInput::new(audit, "apply", outcome_name)
            .with_object(key)
            .with_generation(Some(object.generation))
            .with_diff(object_diff(before, Some(written_state(&object))));
        audit::append(&mut write.tx, &self.audit_key, entry, now).await?;
        write.tx.commit().await?;
        self.notify_changed();
        tracing::debug!(%key, ?outcome, resource_version = object.resource_version, "applied");
        Ok(Applied {
            outcome,
            object,
            schema_version,
        })
    }

    /// The object at `key`, if it exists.
    pub async fn get(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        fetch_object(&mut conn, key).await
    }

    /// One page of the objects of `kind` that match `query`, ordered by (team, name).
    ///
    /// Pages are keyset-paginated: follow [`Page::next`] until it is `None`. Objects created
    /// or deleted meanwhile may or may not appear, but no object present throughout is
    /// skipped or repeated.
    pub async fn list(&self, kind: Kind, query: &ListQuery) -> Result<Page, StoreError> {
        let limit = query.effective_limit();
        let after = query.after.as_deref().map(decode_cursor).transpose()?;
        let (after_team, after_name) = match after {
            Some((team, name)) => (Some(team), Some(name)),
            None => (None, None),
        };
        let prefix = query.name_prefix.as_deref().filter(|p| !p.is_empty());
        let prefix_chars = prefix.map(|p| i32::try_from(p.chars().count()).unwrap_or(i32::MAX));
        let rows = sqlx::query(LIST_OBJECTS)
            .bind(kind.as_str())
            .bind(query.team.as_deref())
            .bind(prefix)
            .bind(prefix_chars)
            .bind(after_team)
            .bind(after_name)
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let mut items = rows
            .iter()
            .map(decode_object)
            .collect::<Result<Vec<_>, _>>()?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let next = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|last| encode_cursor(last.key.team(), last.key.name()))
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// Deletes the object at `key` and returns it as it was; `Ok(None)` if it did not exist
    /// (and no precondition was given). Deleting a dataset also deletes its schema versions.
    ///
    /// With a `precondition` that is not the object's resourceVersion, or on a missing
    /// object, fails with [`StoreError::Conflict`] and deletes nothing.
    ///
    /// A delete appends an audit entry by `audit` in its transaction: action `delete`,
    /// outcome `deleted`, the deleted object's generation, and the diff from its
    /// `{"metadata", "spec", "status"}` to `null`. Deleting nothing is not audited.
    pub async fn delete(
        &self,
        key: &ObjectKey,
        precondition: Option<i64>,
        audit: &Audit,
    ) -> Result<Option<StoredObject>, StoreError> {
        check_audit(audit)?;
        let mut write = self.begin_write().await?;
        let current = fetch_object(&mut write.tx, key).await?;
        check_precondition(key, precondition, current.as_ref())?;
        let Some(current) = current else {
            write.tx.rollback().await?;
            return Ok(None);
        };
        let deleted = sqlx::query(DELETE_OBJECT)
            .bind(key.kind().as_str())
            .bind(key.team())
            .bind(key.name())
            .bind(current.resource_version)
            .execute(&mut *write.tx)
            .await?
            .rows_affected();
        if deleted != 1 {
            return Err(conflict(
                key,
                Some(current.resource_version),
                Some(current.resource_version),
            ));
        }
        replace_claims(&mut write.tx, key, &[]).await?;
        if key.kind() == Kind::Dataset {
            sqlx::query(DELETE_SCHEMA_VERSIONS)
                .bind(key.name())
                .execute(&mut *write.tx)
                .await?;
        }
        let mut before = written_state(&current);
        if let (Value::Object(state), Some(status)) = (&mut before, &current.status) {
            state.insert("status".to_owned(), status.clone());
        }
        let entry = AuditInput::new(audit, "delete", "deleted")
            .with_object(key)
            .with_generation(Some(current.generation))
            .with_diff(object_diff(Some(before), None));
        audit::append(&mut write.tx, &self.audit_key, entry, now()).await?;
        write.tx.commit().await?;
        self.notify_changed();
        tracing::debug!(%key, "deleted");
        Ok(Some(current))
    }
}

/// The metadata without the server-maintained keys.
fn user_metadata(metadata: Value) -> Value {
    match metadata {
        Value::Object(mut map) => {
            for key in SERVER_METADATA_KEYS {
                map.shift_remove(key);
            }
            Value::Object(map)
        }
        other => other,
    }
}

/// Refuses a change whose actor is not named.
pub(super) fn check_audit(audit: &Audit) -> Result<(), StoreError> {
    if audit.actor.is_empty() {
        return Err(StoreError::InvalidAuditEntry {
            reason: "the actor is empty",
        });
    }
    Ok(())
}

/// What an apply writes: `{"metadata": …, "spec": …}`, as recorded in audit diffs.
fn written_state(object: &StoredObject) -> Value {
    let mut state = serde_json::Map::new();
    state.insert("metadata".to_owned(), object.metadata.clone());
    state.insert("spec".to_owned(), object.spec.clone());
    Value::Object(state)
}

pub(super) fn check_precondition(
    key: &ObjectKey,
    precondition: Option<i64>,
    current: Option<&StoredObject>,
) -> Result<(), StoreError> {
    let actual = current.map(|object| object.resource_version);
    match precondition {
        Some(expected) if actual != Some(expected) => Err(conflict(key, Some(expected), actual)),
        _ => Ok(()),
    }
}

pub(super) fn conflict(key: &ObjectKey, expected: Option<i64>, actual: Option<i64>) -> StoreError {
    StoreError::Conflict {
        key: key.clone(),
        expected,
        actual,
    }
}

pub(super) async fn fetch_object(
    conn: &mut sqlx::AnyConnection,
    key: &ObjectKey,
) -> Result<Option<StoredObject>, StoreError> {
    let row = sqlx::query(SELECT_OBJECT)
        .bind(key.kind().as_str())
        .bind(key.team())
        .bind(key.name())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(decode_object).transpose()
}

fn decode_object(row: &AnyRow) -> Result<StoredObject, StoreError> {
    let kind_name: String = row.try_get("kind")?;
    let team: String = row.try_get("team")?;
    let name: String = row.try_get("name")?;
    let label = if team.is_empty() {
        format!("{kind_name} {name}")
    } else {
        format!("{kind_name} {team}/{name}")
    };
    let corrupt = |column: &'static str, source: CorruptValue| StoreError::Corrupt {
        row: label.clone(),
        column,
        source,
    };
    let kind = Kind::from_str(&kind_name).map_err(|e| corrupt("kind", CorruptValue::Kind(e)))?;
    let uid: String = row.try_get("uid")?;
    let uid = Uuid::parse_str(&uid).map_err(|e| corrupt("uid", CorruptValue::Uid(e)))?;
    let json = |column: &'static str, text: &str| {
        serde_json::from_str::<Value>(text).map_err(|e| corrupt(column, CorruptValue::Json(e)))
    };
    let timestamp = |column: &'static str, text: &str| {
        DateTime::parse_from_rfc3339(text)
            .map(|time| time.with_timezone(&Utc))
            .map_err(|e| corrupt(column, CorruptValue::Timestamp(e)))
    };
    let metadata = json("metadata", &row.try_get::<String, _>("metadata")?)?;
    let spec = json("spec", &row.try_get::<String, _>("spec")?)?;
    let status = match row.try_get::<Option<String>, _>("status")? {
        Some(text) => Some(json("status", &text)?),
        None => None,
    };
    let created_at = timestamp("created_at", &row.try_get::<String, _>("created_at")?)?;
    let updated_at = timestamp("updated_at", &row.try_get::<String, _>("updated_at")?)?;
    Ok(StoredObject {
        key: ObjectKey::new(kind, team, name),
        uid,
        metadata,
        spec,
        status,
        generation: row.try_get("generation")?,
        resource_version: row.try_get("resource_version")?,
        created_at,
        updated_at,
    })
}
