//! The chain: an entry's canonical text and hash, and appending an entry under a new signed
//! head.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::diff::redact;
use super::{AuditEntry, AuditInput, AuditKey, GENESIS_HASH};
use crate::error::{CorruptValue, StoreError};
use crate::model::rfc3339;

pub(super) const SELECT_HEAD: &str = "SELECT seq, hash, hmac FROM audit_head WHERE id = 1";

const ANY_ENTRY: &str = "SELECT seq FROM audit_log LIMIT 1";

const INSERT_ENTRY: &str = concat!(
    "INSERT INTO audit_log (",
    entry_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
);

const UPSERT_HEAD: &str = "INSERT INTO audit_head (id, seq, hash, hmac) VALUES (1, $1, $2, $3) \
     ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, hmac = excluded.hmac";

/// An entry's columns exactly as stored.
pub(super) struct RawEntry {
    pub(super) seq: i64,
    pub(super) time: String,
    pub(super) actor: String,
    pub(super) action: String,
    pub(super) kind: String,
    pub(super) team: String,
    pub(super) name: String,
    pub(super) generation: Option<i64>,
    pub(super) request_id: String,
    pub(super) outcome: String,
    pub(super) diff: String,
    pub(super) prev_hash: String,
    pub(super) hash: String,
}

impl RawEntry {
    pub(super) fn from_row(row: &AnyRow) -> Result<RawEntry, sqlx::Error> {
        Ok(RawEntry {
            seq: row.try_get("seq")?,
            time: row.try_get("time")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            kind: row.try_get("kind")?,
            team: row.try_get("team")?,
            name: row.try_get("name")?,
            generation: row.try_get("generation")?,
            request_id: row.try_get("request_id")?,
            outcome: row.try_get("outcome")?,
            diff: row.try_get("diff")?,
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
        })
    }

    /// The canonical text the hash covers (see the module documentation).
    pub(super) fn canonical_text(&self) -> String {
        let mut out = String::with_capacity(320 + self.diff.len());
        out.push_str("{\"seq\":");
        out.push_str(&self.seq.to_string());
        push_string_field(&mut out, "time", &self.time);
        push_string_field(&mut out, "actor", &self.actor);
        push_string_field(&mut out, "action", &self.action);
        push_string_field(&mut out, "kind", &self.kind);
        push_string_field(&mut out, "team", &self.team);
        push_string_field(&mut out, "name", &self.name);
        out.push_str(",\"generation\":");
        match self.generation {
            Some(generation) => out.push_str(&generation.to_string()),
            None => out.push_str("null"),
        }
        push_string_field(&mut out, "requestId", &self.request_id);
        push_string_field(&mut out, "outcome", &self.outcome);
        push_string_field(&mut out, "diff", &self.diff);
        push_string_field(&mut out, "prevHash", &self.prev_hash);
        out.push('}');
        out
    }

    /// The hash this entry should have.
    pub(super) fn computed_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_text().as_bytes()))
    }

    pub(super) fn into_entry(self) -> Result<AuditEntry, StoreError> {
        let row = format!("audit entry {}", self.seq);
        let time = DateTime::parse_from_rfc3339(&self.time)
            .map_err(|e| StoreError::Corrupt {
                row: row.clone(),
                column: "time",
                source: CorruptValue::Timestamp(e),
            })?
            .with_timezone(&Utc);
        let diff = serde_json::from_str(&self.diff).map_err(|e| StoreError::Corrupt {
            row,
            column: "diff",
            source: CorruptValue::Json(e),
        })?;
        Ok(AuditEntry {
            seq: self.seq,
            time,
            actor: self.actor,
            action: self.action,
            kind: self.kind,
            team: self.team,
            name: self.name,
            generation: self.generation,
            request_id: self.request_id,
            outcome: self.outcome,
            diff,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// Appends `,"name":"value"` with `value` as a JSON string.
fn push_string_field(out: &mut String, name: &str, value: &str) {
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
    out.push_str(&Value::from(value).to_string());
}

/// Appends `input` to the log in the caller's write transaction (which holds the store-wide
/// write lock) and moves the signed head to it. Every failure is an error, so the caller's
/// transaction — and the change it makes — is not committed.
pub(crate) async fn append(
    conn: &mut AnyConnection,
    key: &AuditKey,
    input: AuditInput,
    time: DateTime<Utc>,
) -> Result<AuditEntry, StoreError> {
    input.validate()?;
    let (last_seq, prev_hash) = chain_tip(conn, key).await?;
    let diff = redact(input.diff);
    let mut raw = RawEntry {
        seq: last_seq + 1,
        time: rfc3339(time),
        actor: input.actor,
        action: input.action,
        kind: input.kind,
        team: input.team,
        name: input.name,
        generation: input.generation,
        request_id: input.request_id,
        outcome: input.outcome,
        diff: diff.to_string(),
        prev_hash,
        hash: String::new(),
    };
    raw.hash = raw.computed_hash();
    sqlx::query(INSERT_ENTRY)
        .bind(raw.seq)
        .bind(raw.time.as_str())
        .bind(raw.actor.as_str())
        .bind(raw.action.as_str())
        .bind(raw.kind.as_str())
        .bind(raw.team.as_str())
        .bind(raw.name.as_str())
        .bind(raw.generation)
        .bind(raw.request_id.as_str())
        .bind(raw.outcome.as_str())
        .bind(raw.diff.as_str())
        .bind(raw.prev_hash.as_str())
        .bind(raw.hash.as_str())
        .execute(&mut *conn)
        .await
        .map_err(|source| StoreError::AuditWrite { source })?;
    sqlx::query(UPSERT_HEAD)
        .bind(raw.seq)
        .bind(raw.hash.as_str())
        .bind(key.sign(raw.seq, &raw.hash))
        .execute(&mut *conn)
        .await
        .map_err(|source| StoreError::AuditWrite { source })?;
    Ok(AuditEntry {
        seq: raw.seq,
        time,
        actor: raw.actor,
        action: raw.action,
        kind: raw.kind,
        team: raw.team,
        name: raw.name,
        generation: raw.generation,
        request_id: raw.request_id,
        outcome: raw.outcome,
        diff,
        prev_hash: raw.prev_hash,
        hash: raw.hash,
    })
}

/// The (seq, hash) the next entry chains to: the signed head's. Appending is refused when the
/// head is missing while entries exist, or its signature does not verify — signing a new head
/// over such a log would launder whatever was done to it. A valid head that does not match
/// the last row is chained to as it is, so cut-off entries stay visible as a gap.
async fn chain_tip(conn: &mut AnyConnection, key: &AuditKey) -> Result<(i64, String), StoreError> {
    let head = sqlx::query(SELECT_HEAD)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|source| StoreError::AuditWrite { source })?;
    match head {
        Some(row) => {
            let (seq, hash, hmac) =
                decode_head(&row).map_err(|source| StoreError::AuditWrite { source })?;
            if key.verifies(seq, &hash, &hmac) {
                Ok((seq, hash))
            } else {
                Err(StoreError::AuditHeadInvalid {
                    reason: "has an invalid signature (altered, or signed with another key)",
                })
            }
        }
        None => {
            let any = sqlx::query(ANY_ENTRY)
                .fetch_optional(&mut *conn)
                .await
                .map_err(|source| StoreError::AuditWrite { source })?;
            match any {
                Some(_) => Err(StoreError::AuditHeadInvalid {
                    reason: "is missing although the log has entries",
                }),
                None => Ok((0, GENESIS_HASH.to_owned())),
            }
        }
    }
}

pub(super) fn decode_head(row: &AnyRow) -> Result<(i64, String, String), sqlx::Error> {
    Ok((
        row.try_get("seq")?,
        row.try_get("hash")?,
        row.try_get("hmac")?,
    ))
}
