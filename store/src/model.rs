//! The values the store takes and returns.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use sluice_schemas::{API_VERSION, Kind};
use uuid::Uuid;

use crate::error::StoreError;

/// Which database a [`Store`](crate::Store) runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An embedded SQLite file (the default, single-binary mode).
    Sqlite,
    /// PostgreSQL (production).
    Postgres,
}

impl Backend {
    /// The backend's name: `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The address of an object: kind, team and name.
///
/// The team is always `""` for the cluster-scoped kinds (`Dataset`, `TargetCluster`) —
/// [`ObjectKey::new`] enforces it — and the product's team for a `DataProduct`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    kind: Kind,
    team: String,
    name: String,
}

impl ObjectKey {
    /// The key of `name` of `kind` in `team`; the team is dropped for cluster-scoped kinds.
    pub fn new(kind: Kind, team: impl Into<String>, name: impl Into<String>) -> Self {
        let team = if is_team_scoped(kind) {
            team.into()
        } else {
            String::new()
        };
        ObjectKey {
            kind,
            team,
            name: name.into(),
        }
    }

    /// The key of a dataset.
    pub fn dataset(name: impl Into<String>) -> Self {
        ObjectKey::new(Kind::Dataset, "", name)
    }

    /// The key of a target cluster.
    pub fn target_cluster(name: impl Into<String>) -> Self {
        ObjectKey::new(Kind::TargetCluster, "", name)
    }

    /// The key of a data product of `team`.
    pub fn data_product(team: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey::new(Kind::DataProduct, team, name)
    }

    /// The object's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The object's team; `""` for cluster-scoped kinds.
    pub fn team(&self) -> &str {
        &self.team
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for ObjectKey {
    /// `Dataset shop.orders`, `DataProduct team-payments/orders-enriched`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.team.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.team, self.name)
        }
    }
}

/// Whether objects of `kind` belong to a team (only data products do).
pub(crate) fn is_team_scoped(kind: Kind) -> bool {
    match kind {
        Kind::DataProduct => true,
        Kind::Dataset | Kind::TargetCluster => false,
    }
}

/// What a caller writes with [`Store::apply`](crate::Store::apply).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInput {
    /// The user part of the metadata (`name`, `team`, `owner`, `description`, `tags`,
    /// `labels`). The server-maintained keys `uid`, `generation`, `resourceVersion` and
    /// `creationTimestamp` are ignored if present, so a document read back can be re-applied.
    pub metadata: Value,
    /// The spec.
    pub spec: Value,
    /// For a dataset: its current record schema. When it differs from the latest stored
    /// schema version, a new version is recorded in the same transaction as the object.
    pub schema_version: Option<Value>,
    /// Names this object holds exclusively (opaque strings, e.g. `target:shared-pg:team:orders`).
    /// Replaced on every write; a claim another object holds fails the write with
    /// [`StoreError::ClaimTaken`](crate::StoreError::ClaimTaken).
    pub claims: Vec<String>,
}

impl ObjectInput {
    /// Metadata and spec, without a schema version.
    pub fn new(metadata: Value, spec: Value) -> Self {
        ObjectInput {
            metadata,
            spec,
            schema_version: None,
            claims: Vec::new(),
        }
    }

    /// The same input, holding `claims` exclusively.
    pub fn with_claims(mut self, claims: Vec<String>) -> Self {
        self.claims = claims;
        self
    }

    /// The same input, recording `schema` as the dataset's schema.
    pub fn with_schema_version(mut self, schema: Value) -> Self {
        self.schema_version = Some(schema);
        self
    }
}

/// The metadata keys the server maintains; never stored in the user part.
pub(crate) const SERVER_METADATA_KEYS: [&str; 4] =
    ["uid", "generation", "resourceVersion", "creationTimestamp"];

/// An object as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    /// Its address.
    pub key: ObjectKey,
    /// The id of this incarnation: new on every creation.
    pub uid: Uuid,
    /// The user part of the metadata.
    pub metadata: Value,
    /// The spec.
    pub spec: Value,
    /// The status last written by [`Store::set_status`](crate::Store::set_status), if any.
    pub status: Option<Value>,
    /// 1 on creation, incremented whenever the spec changes.
    pub generation: i64,
    /// Changes on every write; see [`StoredObject::resource_version_string`].
    pub resource_version: i64,
    /// When this incarnation was created.
    pub created_at: DateTime<Utc>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

impl StoredObject {
    /// The resourceVersion as clients see it: an opaque string.
    pub fn resource_version_string(&self) -> String {
        self.resource_version.to_string()
    }

    /// Parses a resourceVersion a client sent back; `None` if it is not one this store
    /// hands out (which can then never match).
    pub fn parse_resource_version(value: &str) -> Option<i64> {
        value.parse().ok()
    }

    /// The full document: `apiVersion`, `kind`, the metadata with the server-maintained
    /// fields (`uid`, `generation`, `resourceVersion` as a string, `creationTimestamp` in
    /// RFC 3339), `spec` and, when set, `status`.
    pub fn document(&self) -> Value {
        let mut metadata = match &self.metadata {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        metadata.insert("uid".to_owned(), Value::from(self.uid.to_string()));
        metadata.insert("generation".to_owned(), Value::from(self.generation));
        metadata.insert(
            "resourceVersion".to_owned(),
            Value::from(self.resource_version_string()),
        );
        metadata.insert(
            "creationTimestamp".to_owned(),
            Value::from(rfc3339(self.created_at)),
        );
        let mut document = Map::new();
        document.insert("apiVersion".to_owned(), Value::from(API_VERSION));
        document.insert("kind".to_owned(), Value::from(self.key.kind().as_str()));
        document.insert("metadata".to_owned(), Value::Object(metadata));
        document.insert("spec".to_owned(), self.spec.clone());
        if let Some(status) = &self.status {
            document.insert("status".to_owned(), status.clone());
        }
        Value::Object(document)
    }
}

/// What [`Store::apply`](crate::Store::apply) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The object did not exist and was created.
    Created,
    /// The object existed and its spec or metadata changed.
    Updated,
    /// Spec and metadata were already as given: nothing was written.
    Unchanged,
}

/// The result of [`Store::apply`](crate::Store::apply).
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// What happened.
    pub outcome: Outcome,
    /// The object as stored afterwards.
    pub object: StoredObject,
    /// The number of the schema version recorded by this write, if one was.
    pub schema_version: Option<i64>,
}

/// One version of a dataset's record schema.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaVersion {
    /// 1 for the first schema of a dataset, then consecutive.
    pub version: i64,
    /// The JSON Schema.
    pub schema: Value,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// Which objects of a kind [`Store::list`](crate::Store::list) returns, and which page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Only objects of this team (only data products have one).
    pub team: Option<String>,
    /// Only objects whose name starts with this (compared literally, case-sensitively).
    pub name_prefix: Option<String>,
    /// The page size: 0 means [`ListQuery::DEFAULT_LIMIT`], more than
    /// [`ListQuery::MAX_LIMIT`] is capped to it.
    pub limit: u32,
    /// Where the page starts: the `next` cursor of the previous page.
    pub after: Option<String>,
}

impl ListQuery {
    /// The page size when none is given.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// The largest page size.
    pub const MAX_LIMIT: u32 = 1000;

    /// The page size actually used.
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => Self::DEFAULT_LIMIT,
            limit => limit.min(Self::MAX_LIMIT),
        }
    }
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            team: None,
            name_prefix: None,
            limit: Self::DEFAULT_LIMIT,
            after: None,
        }
    }
}

/// One page of a list, ordered by (team, name) — by the UTF-8 bytes of each, on both
/// backends.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The objects of this page.
    pub items: Vec<StoredObject>,
    /// The cursor of the next page (for [`ListQuery::after`]); `None` on the last page.
    pub next: Option<String>,
}

/// Formats a timestamp as the store does: RFC 3339, UTC, microseconds, `Z`.
pub(crate) fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A cursor is the hex encoding of the JSON array `[team, name]` of the last item returned.
pub(crate) fn encode_cursor(team: &str, name: &str) -> String {
    let json = Value::from(vec![team, name]).to_string();
    let mut out = String::with_capacity(json.len() * 2);
    for byte in json.bytes() {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// The (team, name) position a cursor stands for.
pub(crate) fn decode_cursor(cursor: &str) -> Result<(String, String), StoreError> {
    let digits = cursor.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(StoreError::InvalidCursor);
    }
    let mut bytes = Vec::with_capacity(digits.len() / 2);
    for pair in digits.chunks_exact(2) {
        let high = hex_value(pair[0]).ok_or(StoreError::InvalidCursor)?;
        let low = hex_value(pair[1]).ok_or(StoreError::InvalidCursor)?;
        bytes.push(high << 4 | low);
    }
    let (team, name): (String, String) =
        serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)?;
    Ok((team, name))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = encode_cursor("team-a", "näme\"x");
        assert_eq!(
            decode_cursor(&cursor).unwrap(),
            ("team-a".to_owned(), "näme\"x".to_owned())
        );
        for bad in [
            "",
            "0",
            "zz",
            "5b5d",
            &encode_cursor("a", "b").to_uppercase(),
        ] {
            assert!(
                matches!(decode_cursor(bad), Err(StoreError::InvalidCursor)),
                "{bad}"
            );
        }
    }

    #[test]
    fn cluster_scoped_keys_have_no_team() {
        assert_eq!(ObjectKey::new(Kind::Dataset, "x", "d").team(), "");
        assert_eq!(ObjectKey::data_product("t", "p").team(), "t");
        assert_eq!(
            ObjectKey::data_product("t", "p").to_string(),
            "DataProduct t/p"
        );
        assert_eq!(
            ObjectKey::dataset("shop.orders").to_string(),
            "Dataset shop.orders"
        );
    }

    #[test]
    fn limits_default_and_cap() {
        let query = |limit| ListQuery {
            limit,
            ..ListQuery::default()
        };
        assert_eq!(query(0).effective_limit(), 100);
        assert_eq!(query(7).effective_limit(), 7);
        assert_eq!(query(5000).effective_limit(), 1000);
    }
}
