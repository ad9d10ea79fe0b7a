//! The audit log: an append-only, hash-chained record of every state change.
//!
//! Every write of the store ([`Store::apply`](crate::Store::apply),
//! [`Store::delete`](crate::Store::delete), [`Store::set_status`](crate::Store::set_status))
//! that changes something appends one [`AuditEntry`] in the transaction of the change, and
//! [`Store::append_audit`](crate::Store::append_audit) appends one for actions that are not
//! object writes. If the entry cannot be written, the change is not made (fail closed).
//!
//! # The chain
//!
//! Entries are numbered by `seq`, consecutively from 1. Each carries `prev_hash`, the hash of
//! the entry before it ([`GENESIS_HASH`] for the first), and its own `hash`: the lowercase hex
//! SHA-256 of its *canonical text*, which is the compact JSON object
//!
//! ```text
//! {"seq":N,"time":S,"actor":S,"action":S,"kind":S,"team":S,"name":S,"generation":N|null,
//!  "requestId":S,"outcome":S,"diff":S,"prevHash":S}
//! ```
//!
//! with exactly these keys in this order, no whitespace, every `S` the column's text as a JSON
//! string (escaped as `serde_json` does: `"` `\` and U+0000–U+001F only, with `\b` `\f`
//! `\n` `\r` `\t` and otherwise `\u00xx`; everything else as raw UTF-8) and every `N` a
//! decimal integer. `diff` is hashed as the *stored text* of the diff column, so the hash does
//! not depend on how a JSON library orders or formats a parsed value.
//!
//! # The signed head
//!
//! The single `audit_head` row holds the last entry's `seq` and `hash` and an HMAC-SHA256 of
//! `"sluice-audit-head-v1\n{seq}\n{hash}"` under the [`AuditKey`], rewritten with every
//! entry. Without the key, nobody can move the head, so removing entries from the end of the
//! log (which leaves a perfectly consistent shorter chain) is detected. See `docs/audit.md`.

use std::fmt;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::error::{CorruptValue, StoreError};
use crate::model::{ObjectKey, rfc3339};

/// The `prev_hash` of the first entry: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The message whose HMAC-SHA256 under the operator's secret is the [`AuditKey`].
const KEY_DERIVATION_LABEL: &[u8] = b"sluice-audit-key-v1";

/// What the head HMAC covers: this prefix, then `{seq}\n{hash}`.
const HEAD_LABEL: &str = "sluice-audit-head-v1\n";

/// What replaces the password of a URL in a diff.
const REDACTED: &str = "redacted";

/// Who makes a change, and in answer to which request: given to every mutating method of the
/// store, which records it in the change's audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Audit {
    /// The authenticated principal (a user, a token, `controller`); must not be empty.
    pub actor: String,
    /// The id of the request that caused the change, to correlate with logs; may be empty
    /// when there is none.
    pub request_id: String,
}

impl Audit {
    /// `actor` acting in request `request_id`.
    pub fn new(actor: impl Into<String>, request_id: impl Into<String>) -> Self {
        Audit {
            actor: actor.into(),
            request_id: request_id.into(),
        }
    }

    /// `actor` acting in a request identified by a new random UUID v4.
    pub fn with_new_request_id(actor: impl Into<String>) -> Self {
        Audit::new(actor, Uuid::new_v4().to_string())
    }
}

/// The key that signs the head of the audit log (HMAC-SHA256). Its `Debug` is redacted.
///
/// Derived from an operator secret (e.g. `SLUICE_SECRET_KEY`) as
/// `HMAC-SHA256(secret, "sluice-audit-key-v1")`, so that the same secret can serve other
/// purposes (encrypting secrets at rest) without its audit use being related to them.
#[derive(Clone)]
pub struct AuditKey {
    /// The HMAC keyed with the derived key, cloned for each signature.
    mac: Hmac<Sha256>,
}

impl AuditKey {
    /// The audit key derived from `secret`, which must not be empty.
    pub fn from_secret(secret: &[u8]) -> Result<AuditKey, StoreError> {
        if secret.is_empty() {
            return Err(StoreError::InvalidAuditKey);
        }
        let mut derive =
            Hmac::<Sha256>::new_from_slice(secret).map_err(|_| StoreError::InvalidAuditKey)?;
        derive.update(KEY_DERIVATION_LABEL);
        let derived = derive.finalize().into_bytes();
        let mac =
            Hmac::<Sha256>::new_from_slice(&derived).map_err(|_| StoreError::InvalidAuditKey)?;
        Ok(AuditKey { mac })
    }

    /// The head HMAC of (`seq`, `hash`), lowercase hex.
    pub(crate) fn sign(&self, seq: i64, hash: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(head_message(seq, hash).as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `hmac` (hex) is the head HMAC of (`seq`, `hash`); compared in constant time.
    pub(crate) fn verifies(&self, seq: i64, hash: &str, hmac: &str) -> bool {
        let Ok(tag) = hex::decode(hmac) else {
            return false;
        };
        let mut mac = self.mac.clone();
        mac.update(head_message(seq, hash).as_bytes());
        mac.verify_slice(&tag).is_ok()
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

fn head_message(seq: i64, hash: &str) -> String {
    format!("{HEAD_LABEL}{seq}\n{hash}")
}

/// An audit entry to append with [`Store::append_audit`](crate::Store::append_audit), for an
/// action that is not an object write (a token created, a verification run, an approval).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditInput {
    /// Who acted; must not be empty.
    pub actor: String,
    /// The request it was part of; may be empty.
    pub request_id: String,
    /// What was done, e.g. `token.create`, `audit.verify`; must not be empty.
    pub action: String,
    /// The kind of the object acted on (not necessarily a stored [`Kind`](crate::Kind), e.g.
    /// `ApiToken`); `""` for none.
    pub kind: String,
    /// Its team; `""` for none.
    pub team: String,
    /// Its name; `""` for none.
    pub name: String,
    /// Its generation, if it has one.
    pub generation: Option<i64>,
    /// How it ended, e.g. `created`, `succeeded`, `refused`; must not be empty.
    pub outcome: String,
    /// Details, any JSON (by convention `{"before": …, "after": …}`; `null` for none). URL
    /// passwords in it are redacted before it is stored.
    pub diff: Value,
}

impl AuditInput {
    /// `action` by `audit.actor` ending in `outcome`, on no particular object, with no diff.
    pub fn new(audit: &Audit, action: impl Into<String>, outcome: impl Into<String>) -> Self {
        AuditInput {
            actor: audit.actor.clone(),
            request_id: audit.request_id.clone(),
            action: action.into(),
            kind: String::new(),
            team: String::new(),
            name: String::new(),
            generation: None,
            outcome: outcome.into(),
            diff: Value::Null,
        }
    }

    /// The same input, about the object `key`.
    pub fn with_object(mut self, key: &ObjectKey) -> Self {
        self.kind = key.kind().as_str().to_owned();
        self.team = key.team().to_owned();
        self.name = key.name().to_owned();
        self
    }

    /// The same input, about something that is not a stored object (e.g. an API token).
    pub fn with_subject(
        mut self,
        kind: impl Into<String>,
        team: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        self.kind = kind.into();
        self.team = team.into();
        self.name = name.into();
        self
    }

    /// The same input, with the object's generation.
    pub fn with_generation(mut self, generation: Option<i64>) -> Self {
        self.generation = generation;
        self
    }

    /// The same input, with `diff` as its details.
    pub fn with_diff(mut self, diff: Value) -> Self {
        self.diff = diff;
        self
    }

    fn validate(&self) -> Result<(), StoreError> {
        let missing = if self.actor.is_empty() {
            "the actor is empty"
        } else if self.action.is_empty() {
            "the action is empty"
        } else if self.outcome.is_empty() {
            "the outcome is empty"
        } else {
            return Ok(());
        };
        Err(StoreError::InvalidAuditEntry { reason: missing })
    }
}

/// One entry of the audit log, as stored. Serialises in camelCase (one JSON line each in
/// [`Store::export_audit`](crate::Store::export_audit)), with `time` exactly as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Its position: consecutive from 1.
    pub seq: i64,
    /// When it was written (UTC, microseconds).
    #[serde(with = "store_time")]
    pub time: DateTime<Utc>,
    /// Who acted.
    pub actor: String,
    /// What was done: `apply`, `delete`, `status` for object writes, or the action given to
    /// [`Store::append_audit`](crate::Store::append_audit).
    pub action: String,
    /// The kind of the object; `""` for none.
    pub kind: String,
    /// Its team; `""` for cluster-scoped kinds and for none.
    pub team: String,
    /// Its name; `""` for none.
    pub name: String,
    /// The object's generation after the change (before it, for a delete).
    pub generation: Option<i64>,
    /// The request that caused it.
    pub request_id: String,
    /// How it ended: `created`, `updated`, `deleted` for object writes.
    pub outcome: String,
    /// What changed: for object writes `{"before": …, "after": …}`, see
    /// [`Store::apply`](crate::Store::apply).
    pub diff: Value,
    /// The hash of the entry before (64 zeros for the first).
    pub prev_hash: String,
    /// This entry's hash (lowercase hex SHA-256 of its canonical text).
    pub hash: String,
}

/// The store's timestamp format (RFC 3339, UTC, microseconds, `Z`) for serde.
mod store_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        time: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&crate::model::rfc3339(*time))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|time| time.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// Which audit entries [`Store::audit_entries`](crate::Store::audit_entries) returns, oldest
/// (lowest `seq`) first. Every filter given must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only entries about objects of this kind.
    pub kind: Option<String>,
    /// Only entries about objects of this team.
    pub team: Option<String>,
    /// Only entries about objects of this name.
    pub name: Option<String>,
    /// Only entries by this actor.
    pub actor: Option<String>,
    /// Only entries written at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only entries written before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only entries after this one: the `seq` of the last entry of the previous page.
    pub after_seq: Option<i64>,
    /// The page size: 0 means [`AuditQuery::DEFAULT_LIMIT`], more than
    /// [`AuditQuery::MAX_LIMIT`] is capped to it.
    pub limit: u32,
}

impl AuditQuery {
    /// The page size when none is given.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// The largest page size.
    pub const MAX_LIMIT: u32 = 1000;

    /// The entries about the object `key` (any incarnation of it).
    pub fn for_object(key: &ObjectKey) -> Self {
        AuditQuery {
            kind: Some(key.kind().as_str().to_owned()),
            team: Some(key.team().to_owned()),
            name: Some(key.name().to_owned()),
            ..AuditQuery::default()
        }
    }

    /// The page size actually used.
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => Self::DEFAULT_LIMIT,
            limit => limit.min(Self::MAX_LIMIT),
        }
    }
}

impl Default for AuditQuery {
    fn default() -> Self {
        AuditQuery {
            kind: None,
            team: None,
            name: None,
            actor: None,
            since: None,
            until: None,
            after_seq: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

/// The result of [`Store::verify_audit`](crate::Store::verify_audit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditVerification {
    /// Whether the whole log is intact and ends at the signed head.
    pub ok: bool,
    /// How many entries the log holds.
    pub entries: u64,
    /// The first problem found, in `seq` order; `None` when `ok`.
    pub first_broken: Option<AuditBreak>,
}

/// Where the audit log stops being trustworthy, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditBreak {
    /// The first entry that cannot be trusted (see [`AuditBreakReason`] for each case).
    pub seq: i64,
    /// What is wrong.
    pub reason: AuditBreakReason,
}

/// What is wrong with the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum AuditBreakReason {
    /// The entry's hash is not the hash of its fields: it was altered (or moved to another
    /// `seq`, e.g. by swapping two entries).
    Altered,
    /// The entry `seq` is missing: the log jumps over it (deleted).
    Missing,
    /// The entry's `prev_hash` is not the hash of the entry before it: the entry before was
    /// replaced, or this one re-hashed.
    ChainBroken,
    /// The log has entries but no signed head; `seq` is the last entry.
    HeadMissing,
    /// The head's HMAC does not verify (altered, or signed with another key); `seq` is the
    /// entry the head names.
    HeadSignatureInvalid,
    /// The signed head names a later entry than the log's last: entries from `seq` on were
    /// cut off the end.
    Truncated,
    /// Entries from `seq` on come after the signed head: appended without the key.
    Unsigned,
    /// The signed head names entry `seq` but with another hash: the log was rewritten.
    HeadMismatch,
}

impl AuditBreakReason {
    /// A sentence saying what is wrong.
    pub fn describe(self) -> &'static str {
        match self {
            AuditBreakReason::Altered => "the entry's hash does not match its content",
            AuditBreakReason::Missing => "the entry is missing",
            AuditBreakReason::ChainBroken => {
                "the entry's previous hash does not match the entry before it"
            }
            AuditBreakReason::HeadMissing => "the signed head of the log is missing",
            AuditBreakReason::HeadSignatureInvalid => "the signature of the log's head is invalid",
            AuditBreakReason::Truncated => {
                "the log was truncated: the signed head names a later entry"
            }
            AuditBreakReason::Unsigned => "the entry comes after the signed head of the log",
            AuditBreakReason::HeadMismatch => {
                "the entry's hash is not the one the signed head of the log names"
            }
        }
    }
}

impl fmt::Display for AuditBreakReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

// ---------------------------------------------------------------------------------------------
// Storage.

macro_rules! entry_columns {
    () => {
        "seq, time, actor, action, kind, team, name, generation, request_id, outcome, diff, \
         prev_hash, hash"
    };
}

const SELECT_HEAD: &str = "SELECT seq, hash, hmac FROM audit_head WHERE id = 1";

const ANY_ENTRY: &str = "SELECT seq FROM audit_log LIMIT 1";

const INSERT_ENTRY: &str = concat!(
    "INSERT INTO audit_log (",
    entry_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
);

const UPSERT_HEAD: &str = "INSERT INTO audit_head (id, seq, hash, hmac) VALUES (1, $1, $2, $3) \
     ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, hmac = excluded.hmac";

/// `$1`..`$3` kind, team, name, `$4` actor, `$5`/`$6` since/until, `$7` after seq, `$8` limit.
const QUERY_ENTRIES: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM audit_log WHERE ($1 IS NULL OR kind = $1)",
    " AND ($2 IS NULL OR team = $2)",
    " AND ($3 IS NULL OR name = $3)",
    " AND ($4 IS NULL OR actor = $4)",
    " AND ($5 IS NULL OR time >= $5)",
    " AND ($6 IS NULL OR time < $6)",
    " AND ($7 IS NULL OR seq > $7)",
    " ORDER BY seq LIMIT $8"
);

/// The entries after `$1`, in order, at most `$2`.
const WALK_ENTRIES: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
);

/// How many entries the verifier reads at a time.
const WALK_PAGE: i64 = 1000;

/// An entry's columns exactly as stored.
struct RawEntry {
    seq: i64,
    time: String,
    actor: String,
    action: String,
    kind: String,
    team: String,
    name: String,
    generation: Option<i64>,
    request_id: String,
    outcome: String,
    diff: String,
    prev_hash: String,
    hash: String,
}

impl RawEntry {
    fn from_row(row: &AnyRow) -> Result<RawEntry, sqlx::Error> {
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
    fn canonical_text(&self) -> String {
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
    fn computed_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_text().as_bytes()))
    }

    fn into_entry(self) -> Result<AuditEntry, StoreError> {
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

fn decode_head(row: &AnyRow) -> Result<(i64, String, String), sqlx::Error> {
    Ok((
        row.try_get("seq")?,
        row.try_get("hash")?,
        row.try_get("hmac")?,
    ))
}

/// The entries matching `query`, oldest first.
pub(crate) async fn entries(
    conn: &mut AnyConnection,
    query: &AuditQuery,
) -> Result<Vec<AuditEntry>, StoreError> {
    let rows = sqlx::query(QUERY_ENTRIES)
        .bind(query.kind.as_deref())
        .bind(query.team.as_deref())
        .bind(query.name.as_deref())
        .bind(query.actor.as_deref())
        .bind(query.since.map(rfc3339))
        .bind(query.until.map(rfc3339))
        .bind(query.after_seq)
        .bind(i64::from(query.effective_limit()))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| RawEntry::from_row(row)?.into_entry())
        .collect()
}

/// Walks the whole log in `seq` order and checks it against the signed head. `conn` should
/// be in a transaction with one snapshot, so that entries written meanwhile are not seen
/// without their head.
pub(crate) async fn verify(
    conn: &mut AnyConnection,
    key: &AuditKey,
) -> Result<AuditVerification, StoreError> {
    let head = sqlx::query(SELECT_HEAD)
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| decode_head(&row))
        .transpose()?;
    let mut walk = Walk::default();
    let mut after = i64::MIN;
    loop {
        let rows = sqlx::query(WALK_ENTRIES)
            .bind(after)
            .bind(WALK_PAGE)
            .fetch_all(&mut *conn)
            .await?;
        for row in &rows {
            let entry = RawEntry::from_row(row)?;
            after = entry.seq;
            walk.check(&entry);
        }
        if i64::try_from(rows.len()).unwrap_or(i64::MAX) < WALK_PAGE {
            break;
        }
    }
    let first_broken = match walk.first_broken.take() {
        Some(broken) => Some(broken),
        None => walk.check_head(head, key),
    };
    Ok(AuditVerification {
        ok: first_broken.is_none(),
        entries: walk.entries,
        first_broken,
    })
}

/// The state of a walk along the chain.
struct Walk {
    entries: u64,
    /// The seq and hash of the last entry seen (0 and the genesis hash before the first).
    last_seq: i64,
    last_hash: String,
    first_broken: Option<AuditBreak>,
}

impl Default for Walk {
    fn default() -> Self {
        Walk {
            entries: 0,
            last_seq: 0,
            last_hash: GENESIS_HASH.to_owned(),
            first_broken: None,
        }
    }
}

impl Walk {
    fn check(&mut self, entry: &RawEntry) {
        self.entries += 1;
        if self.first_broken.is_none() {
            let expected = self.last_seq + 1;
            let broken = if entry.seq > expected {
                Some((expected, AuditBreakReason::Missing))
            } else if entry.seq < expected || entry.computed_hash() != entry.hash {
                Some((entry.seq, AuditBreakReason::Altered))
            } else if entry.prev_hash != self.last_hash {
                Some((entry.seq, AuditBreakReason::ChainBroken))
            } else {
                None
            };
            self.first_broken = broken.map(|(seq, reason)| AuditBreak { seq, reason });
        }
        self.last_seq = entry.seq;
        self.last_hash.clone_from(&entry.hash);
    }

    /// Checks the signed head against the end of an intact chain.
    fn check_head(
        &self,
        head: Option<(i64, String, String)>,
        key: &AuditKey,
    ) -> Option<AuditBreak> {
        let broken = |seq, reason| Some(AuditBreak { seq, reason });
        let Some((seq, hash, hmac)) = head else {
            return if self.entries == 0 {
                None
            } else {
                broken(self.last_seq, AuditBreakReason::HeadMissing)
            };
        };
        if !key.verifies(seq, &hash, &hmac) {
            broken(seq, AuditBreakReason::HeadSignatureInvalid)
        } else if seq > self.last_seq {
            broken(self.last_seq + 1, AuditBreakReason::Truncated)
        } else if seq < self.last_seq {
            broken(seq + 1, AuditBreakReason::Unsigned)
        } else if hash != self.last_hash {
            broken(seq, AuditBreakReason::HeadMismatch)
        } else {
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Diffs.

/// The diff of an object write: `{"before": B, "after": A}` where `before` and `after` are the
/// object's states (`null` when it does not exist) pruned to what differs: members equal on
/// both sides are left out, recursively through objects; a member only in `before` was
/// removed, one only in `after` was added; arrays and scalars that differ appear whole.
pub(crate) fn object_diff(before: Option<Value>, after: Option<Value>) -> Value {
    let (before, after) = match (before, after) {
        (Some(before), Some(after)) => prune(&before, &after),
        (before, after) => (before.unwrap_or(Value::Null), after.unwrap_or(Value::Null)),
    };
    let mut diff = Map::new();
    diff.insert("before".to_owned(), before);
    diff.insert("after".to_owned(), after);
    Value::Object(diff)
}

fn prune(before: &Value, after: &Value) -> (Value, Value) {
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        return (before.clone(), after.clone());
    };
    let mut kept_before = Map::new();
    let mut kept_after = Map::new();
    for (key, old) in b {
        match a.get(key) {
            Some(new) if new == old => {}
            Some(new) => {
                let (old, new) = prune(old, new);
                kept_before.insert(key.clone(), old);
                kept_after.insert(key.clone(), new);
            }
            None => {
                kept_before.insert(key.clone(), old.clone());
            }
        }
    }
    for (key, new) in a {
        if !b.contains_key(key) {
            kept_after.insert(key.clone(), new.clone());
        }
    }
    (Value::Object(kept_before), Value::Object(kept_after))
}

/// `value` with the password of every URL in it (any string that parses as a URL with a
/// password, e.g. a target cluster's `postgres://user:pw@host/db`) replaced by `redacted`:
/// credentials never reach the audit log.
fn redact(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(redact_url(text)),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, redact(value)))
                .collect(),
        ),
        other => other,
    }
}

fn redact_url(text: String) -> String {
    if !text.contains("://") {
        return text;
    }
    match url::Url::parse(&text) {
        Ok(mut url) if url.password().is_some() => match url.set_password(Some(REDACTED)) {
            Ok(()) => url.to_string(),
            Err(()) => REDACTED.to_owned(),
        },
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn raw(seq: i64, diff: &str) -> RawEntry {
        RawEntry {
            seq,
            time: "2025-01-02T03:04:05.678901Z".to_owned(),
            actor: "alice \"a\"\n".to_owned(),
            action: "apply".to_owned(),
            kind: "Dataset".to_owned(),
            team: String::new(),
            name: "shop.orders".to_owned(),
            generation: Some(2),
            request_id: "r-1".to_owned(),
            outcome: "updated".to_owned(),
            diff: diff.to_owned(),
            prev_hash: GENESIS_HASH.to_owned(),
            hash: String::new(),
        }
    }

    #[test]
    fn canonical_text_is_fixed() {
        let entry = raw(7, r#"{"before":{"a":1},"after":{"a":2}}"#);
        assert_eq!(
            entry.canonical_text(),
            concat!(
                r#"{"seq":7,"time":"2025-01-02T03:04:05.678901Z","actor":"alice \"a\"\n","#,
                r#""action":"apply","kind":"Dataset","team":"","name":"shop.orders","#,
                r#""generation":2,"requestId":"r-1","outcome":"updated","#,
                r#""diff":"{\"before\":{\"a\":1},\"after\":{\"a\":2}}","#,
                r#""prevHash":"0000000000000000000000000000000000000000000000000000000000000000"}"#
            )
        );
        // It is what serde_json makes of the same fields in this order.
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Same<'a> {
            seq: i64,
            time: &'a str,
            actor: &'a str,
            action: &'a str,
            kind: &'a str,
            team: &'a str,
            name: &'a str,
            generation: Option<i64>,
            request_id: &'a str,
            outcome: &'a str,
            diff: &'a str,
            prev_hash: &'a str,
        }
        let mut entry = raw(1, "null");
        entry.generation = None;
        entry.actor = "\u{1}é\t\\".to_owned();
        let same = Same {
            seq: entry.seq,
            time: &entry.time,
            actor: &entry.actor,
            action: &entry.action,
            kind: &entry.kind,
            team: &entry.team,
            name: &entry.name,
            generation: entry.generation,
            request_id: &entry.request_id,
            outcome: &entry.outcome,
            diff: &entry.diff,
            prev_hash: &entry.prev_hash,
        };
        assert_eq!(
            entry.canonical_text(),
            serde_json::to_string(&same).unwrap()
        );
    }

    #[test]
    fn hash_is_sha256_of_the_canonical_text() {
        let entry = raw(1, "null");
        let expected = hex::encode(Sha256::digest(entry.canonical_text().as_bytes()));
        assert_eq!(entry.computed_hash(), expected);
        assert_eq!(entry.computed_hash().len(), 64);
        assert_ne!(entry.computed_hash(), raw(2, "null").computed_hash());
    }

    #[test]
    fn head_signatures_depend_on_key_seq_and_hash() {
        let key = AuditKey::from_secret(b"secret").unwrap();
        let other = AuditKey::from_secret(b"secret2").unwrap();
        let hash = raw(1, "null").computed_hash();
        let tag = key.sign(1, &hash);
        assert!(key.verifies(1, &hash, &tag));
        assert!(!other.verifies(1, &hash, &tag));
        assert!(!key.verifies(2, &hash, &tag));
        assert!(!key.verifies(1, GENESIS_HASH, &tag));
        assert!(!key.verifies(1, &hash, "zz"));
        assert!(matches!(
            AuditKey::from_secret(b""),
            Err(StoreError::InvalidAuditKey)
        ));
        assert_eq!(format!("{key:?}"), "AuditKey(<redacted>)");
        // HMAC-SHA256(secret, label) as the key, then HMAC over the head message.
        let mut derive = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        derive.update(b"sluice-audit-key-v1");
        let derived = derive.finalize().into_bytes();
        let mut mac = Hmac::<Sha256>::new_from_slice(&derived).unwrap();
        mac.update(format!("sluice-audit-head-v1\n1\n{hash}").as_bytes());
        assert_eq!(tag, hex::encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn diffs_keep_only_what_changed() {
        let before = json!({"metadata": {"name": "a", "tags": ["x"]}, "spec": {"k": 1, "gone": true, "deep": {"same": 1, "v": 1}}});
        let after = json!({"metadata": {"name": "a", "tags": ["x", "y"]}, "spec": {"k": 1, "new": null, "deep": {"same": 1, "v": 2}}});
        assert_eq!(
            object_diff(Some(before.clone()), Some(after.clone())),
            json!({
                "before": {"metadata": {"tags": ["x"]}, "spec": {"gone": true, "deep": {"v": 1}}},
                "after": {"metadata": {"tags": ["x", "y"]}, "spec": {"new": null, "deep": {"v": 2}}},
            })
        );
        assert_eq!(
            object_diff(None, Some(after.clone())),
            json!({"before": null, "after": after})
        );
        assert_eq!(
            object_diff(Some(before.clone()), None),
            json!({"before": before, "after": null})
        );
    }

    #[test]
    fn url_passwords_are_redacted() {
        let value = json!({"spec": {"url": "postgres://admin:s3cret@db:5432/x", "other": "http://h/p", "list": ["redis://:pw@r:6379"]}});
        let text = redact(value).to_string();
        assert!(!text.contains("s3cret") && !text.contains(":pw@"), "{text}");
        assert!(
            text.contains("postgres://admin:redacted@db:5432/x"),
            "{text}"
        );
        assert!(text.contains("http://h/p"), "{text}");
    }

    #[test]
    fn walks_name_the_first_break() {
        let key = AuditKey::from_secret(b"k").unwrap();
        let mut chain = Vec::new();
        let mut prev = GENESIS_HASH.to_owned();
        for seq in 1..=4 {
            let mut entry = raw(seq, "null");
            entry.prev_hash = prev;
            entry.hash = entry.computed_hash();
            prev = entry.hash.clone();
            chain.push(entry);
        }
        let walk = |entries: &[&RawEntry]| {
            let mut walk = Walk::default();
            for entry in entries {
                walk.check(entry);
            }
            walk
        };
        let all: Vec<&RawEntry> = chain.iter().collect();
        let head = |seq: i64, hash: &str| Some((seq, hash.to_owned(), key.sign(seq, hash)));
        let intact = walk(&all);
        assert_eq!(intact.first_broken, None);
        assert_eq!(intact.check_head(head(4, &chain[3].hash), &key), None);
        let reason = |b: Option<AuditBreak>| b.map(|b| (b.seq, b.reason));
        assert_eq!(
            reason(intact.check_head(None, &key)),
            Some((4, AuditBreakReason::HeadMissing))
        );
        assert_eq!(
            reason(intact.check_head(head(6, &chain[3].hash), &key)),
            Some((5, AuditBreakReason::Truncated))
        );
        assert_eq!(
            reason(intact.check_head(head(3, &chain[2].hash), &key)),
            Some((4, AuditBreakReason::Unsigned))
        );
        assert_eq!(
            reason(intact.check_head(head(4, &chain[2].hash), &key)),
            Some((4, AuditBreakReason::HeadMismatch))
        );
        assert_eq!(
            reason(intact.check_head(Some((4, chain[3].hash.clone(), "00".into())), &key)),
            Some((4, AuditBreakReason::HeadSignatureInvalid))
        );
        let gap = walk(&[&chain[0], &chain[2], &chain[3]]);
        assert_eq!(
            reason(gap.first_broken),
            Some((2, AuditBreakReason::Missing))
        );
        assert_eq!(gap.entries, 3);
    }
}
