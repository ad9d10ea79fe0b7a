//! Status writes of [`Store`]: replacing an object's status, audited as a status change or
//! as a decision.

use serde_json::Value;

use super::objects::{check_audit, check_precondition, conflict, fetch_object};
use super::{Store, now};
use crate::audit::{self, Audit, AuditInput, object_diff};
use crate::error::StoreError;
use crate::model::{ObjectKey, StoredObject, rfc3339};

const UPDATE_STATUS: &str = "UPDATE objects \
     SET status = $4, resource_version = $5, updated_at = $6 \
     WHERE kind = $1 AND team = $2 AND name = $3 AND resource_version = $7";

impl Store {
    /// Replaces the status of the object at `key` (`null` clears it) and returns the object.
    /// The resourceVersion changes; the generation, spec and metadata do not. Writing the
    /// status the object already has (JSON equality) writes nothing and keeps the
    /// resourceVersion, so a controller re-asserting its status does not churn versions.
    ///
    /// Fails with [`StoreError::NotFound`] if the object does not exist and no precondition
    /// was given, with [`StoreError::Conflict`] if a precondition was given and the object
    /// has another resourceVersion or does not exist.
    ///
    /// A change appends an audit entry by `audit` in its transaction: action `status`,
    /// outcome `updated`, the object's generation and the diff of `{"status"}` (absent when
    /// cleared). Re-writing the same status is not audited, nor a change of only the
    /// progress fields `backfill`, `deadLetters` and `lagMs` (telemetry, not a decision).
    pub async fn set_status(
        &self,
        key: &ObjectKey,
        status: Value,
        precondition: Option<i64>,
        audit: &Audit,
    ) -> Result<StoredObject, StoreError> {
        self.record_status(key, status, precondition, audit, "status", "updated")
            .await
    }

    /// [`Store::set_status`] for a decision that is a status change, audited under its own
    /// `action` and `outcome` (e.g. `approve`/`approved`, `reject`/`rejected`) so the log
    /// says what was decided, not only that the status changed.
    pub async fn record_status(
        &self,
        key: &ObjectKey,
        status: Value,
        precondition: Option<i64>,
        audit: &Audit,
        action: &str,
        outcome: &str,
    ) -> Result<StoredObject, StoreError> {
        check_audit(audit)?;
        let mut write = self.begin_write().await?;
        let now = now();
        let current = fetch_object(&mut write.tx, key).await?;
        check_precondition(key, precondition, current.as_ref())?;
        let Some(current) = current else {
            write.tx.rollback().await?;
            return Err(StoreError::NotFound { key: key.clone() });
        };
        let status = match status {
            Value::Null => None,
            status => Some(status),
        };
        if status == current.status {
            write.tx.rollback().await?;
            return Ok(current);
        }
        let object = StoredObject {
            status,
            resource_version: write.revision,
            updated_at: now,
            ..current
        };
        let updated = sqlx::query(UPDATE_STATUS)
            .bind(key.kind().as_str())
            .bind(key.team())
            .bind(key.name())
            .bind(object.status.as_ref().map(Value::to_string))
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
        // Progress (events done, rates, lag) is telemetry, not a decision: a write that only
        // moves it is not audited, so a backfill does not flood the log.
        if without_progress(current.status.as_ref()) != without_progress(object.status.as_ref()) {
            let entry = AuditInput::new(audit, action, outcome)
                .with_object(key)
                .with_generation(Some(object.generation))
                .with_diff(object_diff(
                    Some(status_state(current.status.as_ref())),
                    Some(status_state(object.status.as_ref())),
                ));
            audit::append(&mut write.tx, &self.audit_key, entry, now).await?;
        }
        write.tx.commit().await?;
        self.notify_changed();
        tracing::debug!(%key, resource_version = object.resource_version, "status set");
        Ok(object)
    }
}

/// The progress fields of a status, which change without anyone deciding anything.
const PROGRESS_FIELDS: [&str; 3] = ["backfill", "deadLetters", "lagMs"];

/// A status without its progress fields.
fn without_progress(status: Option<&Value>) -> Option<Value> {
    status.map(|status| match status {
        Value::Object(map) => {
            let mut map = map.clone();
            for field in PROGRESS_FIELDS {
                map.shift_remove(field);
            }
            Value::Object(map)
        }
        other => other.clone(),
    })
}

/// What a status write writes: `{"status": …}`, or `{}` without a status.
fn status_state(status: Option<&Value>) -> Value {
    let mut state = serde_json::Map::new();
    if let Some(status) = status {
        state.insert("status".to_owned(), status.clone());
    }
    Value::Object(state)
}
