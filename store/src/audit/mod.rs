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
//!
//! The chain (canonical text, hashing, appending) is in `chain`, reading entries back in
//! `query`, re-walking and checking the log in `verify`, and the diffs entries carry in `diff`.

use std::fmt;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::ObjectKey;

macro_rules! entry_columns {
    () => {
        "seq, time, actor, action, kind, team, name, generation, request_id, outcome, diff, \
         prev_hash, hash"
    };
}

mod chain;
mod diff;
mod query;
mod verify;

#[cfg(test)]
mod tests;

pub(crate) use chain::append;
pub(crate) use diff::object_diff;
pub(crate) use query::entries;
pub(crate) use verify::verify;

/// The `prev_hash` of the first entry: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The message whose HMAC-SHA256 under the operator's secret is the [`AuditKey`].
const KEY_DERIVATION_LABEL: &[u8] = b"sluice-audit-key-v1";

/// What the head HMAC covers: this prefix, then `{seq}\n{hash}`.
const HEAD_LABEL: &str = "sluice-audit-head-v1\n";

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
