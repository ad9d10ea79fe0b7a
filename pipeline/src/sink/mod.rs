//! Sinks: apply output-topic records to a product version's target, one sink per target
//! type, every write idempotent and version-guarded.
//!
//! The job writes every output record to the product's output topic; a sink reads that
//! topic and applies records to the target using the record's output-topic offset as a
//! per-key version (a key always lands in the same output partition, so its offsets only
//! grow). A row is replaced only by a record of a higher version, so re-applying a prefix
//! of the record sequence (re-delivery after a crash) never duplicates a row nor puts an
//! older row back in place of a newer one. (Redis keeps that version per output partition,
//! moved in the same transaction as the rows, rather than per key.) What each target
//! guarantees beyond that — chiefly whether a delete keeps a late older record from
//! bringing its row back — is written on [`PostgresSink`], [`ElasticsearchSink`] and
//! [`RedisSink`].

mod elasticsearch;
mod postgres;
mod redis;
#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;

use serde_json::{Map, Value};
use sluice_provisioners::{TargetConnection, TargetPlan};
use sluice_schemas::TargetType;

pub use elasticsearch::ElasticsearchSink;
pub use postgres::PostgresSink;
pub use redis::RedisSink;

/// One record to apply: the product key (text), its version (output-topic offset), the row
/// or `None` for "this key has no row" (a tombstone, or a key whose latest record was
/// filtered out).
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRecord {
    /// The product key as text (an integer key in decimal).
    pub key: String,
    /// The record's offset in the output topic: the per-key version.
    pub version: i64,
    /// The row (output field name → value), or `None`: the key has no row.
    pub row: Option<RowText>,
    /// The record's output-topic partition; identifies rows in append mode.
    pub partition: i32,
}

/// A row as the output topic holds it: the text of one JSON object. Batches keep rows as
/// text and each is parsed only while its batch is written: a parsed row takes several
/// times the memory of its text, and two batches are held at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct RowText(Box<str>);

impl RowText {
    /// The row in `text`, which must be a JSON object (checked by its braces; the full
    /// parse happens at write time).
    pub fn new(text: &str) -> Option<RowText> {
        let text = text.trim();
        (text.starts_with('{') && text.ends_with('}')).then(|| RowText(text.into()))
    }

    /// The row a job's transform wrote: its JSON text, taken without a copy. `None` when it
    /// is not a JSON object after all.
    pub(crate) fn from_output(text: String) -> Option<RowText> {
        (text.starts_with('{') && text.ends_with('}')).then(|| RowText(text.into_boxed_str()))
    }

    /// The row of `map`.
    pub fn from_map(map: &Map<String, Value>) -> RowText {
        RowText(Value::Object(map.clone()).to_string().into())
    }

    /// The JSON text: `{…}`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Calls `each` with every field of the row, in its order, without collecting them:
    /// the PostgreSQL sink writes each value's text as it comes, and field names without
    /// escapes are borrowed from the text rather than copied. A field written twice is
    /// passed twice, its last value last. Values are read as `V`: a [`Value`], or
    /// [`serde::de::IgnoredAny`] to check names only, building nothing. An error of `each`
    /// ends the walk and is returned; a row that is not a JSON object after all is an error
    /// of the record.
    pub fn for_each_field<V: serde::de::DeserializeOwned>(
        &self,
        record: &SinkRecord,
        mut each: impl FnMut(&str, V) -> Result<(), SinkError>,
    ) -> Result<(), SinkError> {
        use serde::de::Error as _;
        struct Walk<'a, F, V> {
            each: &'a mut F,
            failed: &'a mut Option<SinkError>,
            value: std::marker::PhantomData<V>,
        }
        impl<'de, V: serde::de::DeserializeOwned, F: FnMut(&str, V) -> Result<(), SinkError>>
            serde::de::Visitor<'de> for Walk<'_, F, V>
        {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                while let Some(name) = map.next_key_seed(FieldName)? {
                    let value: V = map.next_value()?;
                    if let Err(e) = (self.each)(&name, value) {
                        *self.failed = Some(e);
                        return Err(A::Error::custom("a field was refused"));
                    }
                }
                Ok(())
            }
        }
        let mut failed = None;
        let mut de = serde_json::Deserializer::from_str(&self.0);
        let walk = Walk {
            each: &mut each,
            failed: &mut failed,
            value: std::marker::PhantomData,
        };
        let walked = serde::Deserializer::deserialize_map(&mut de, walk).and_then(|()| de.end());
        if let Some(e) = failed {
            return Err(e);
        }
        walked.map_err(|e| {
            SinkError::record_error(record, format!("the row is not a JSON object: {e}"))
        })
    }

    /// The row's JSON text with `field` set to the integer `value` as its last member (the
    /// row is written by the job and never has it).
    pub fn with_member(&self, field: &str, value: i64) -> String {
        let body = self.0[..self.0.len() - 1].trim_end();
        let comma = if body.ends_with('{') { "" } else { "," };
        format!("{body}{comma}\"{field}\":{value}}}")
    }
}

/// A field name as it is in the row's text when it has no escapes, else unescaped.
struct FieldName;

impl<'de> serde::de::DeserializeSeed<'de> for FieldName {
    type Value = std::borrow::Cow<'de, str>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FieldName {
    type Value = std::borrow::Cow<'de, str>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a field name")
    }
    fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(name))
    }
    fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(name.to_owned()))
    }
}

/// Why a batch was not (fully) applied.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The connection and the plan are for different target types.
    #[error("a {connection} connection cannot write a {plan} target")]
    PlanMismatch {
        /// The connection's type.
        connection: TargetType,
        /// The plan's type.
        plan: TargetType,
    },
    /// The target could not be reached, timed out or is busy: retry the batch.
    #[error("{target} is unavailable: {detail}")]
    Unavailable {
        /// The target (cluster, table, index or key prefix).
        target: String,
        /// What happened.
        detail: String,
    },
    /// One record cannot be applied as it is (a value does not fit its column, a field is
    /// unknown, the target refused the document): it goes to the dead-letter topic.
    #[error("record of key {key:?} (version {version}) cannot be written: {reason}")]
    Record {
        /// The record's key.
        key: String,
        /// The record's version.
        version: i64,
        /// Why.
        reason: String,
    },
    /// The target refused the batch for a reason that retrying will not fix (a missing
    /// table or index, missing rights, ...).
    #[error("{target} refused the batch: {detail}")]
    Refused {
        /// The target (cluster, table, index or key prefix).
        target: String,
        /// What happened.
        detail: String,
    },
}

impl SinkError {
    /// Whether retrying the same batch may succeed (connection failures, timeouts, a busy
    /// target); otherwise the record (see [`record`](Self::record)) goes to the
    /// dead-letter topic.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SinkError::Unavailable { .. })
    }

    /// The key and version of the one record at fault, when the error is about one record.
    pub fn record(&self) -> Option<(&str, i64)> {
        match self {
            SinkError::Record { key, version, .. } => Some((key, *version)),
            _ => None,
        }
    }

    pub(crate) fn record_error(record: &SinkRecord, reason: impl Into<String>) -> SinkError {
        SinkError::Record {
            key: record.key.clone(),
            version: record.version,
            reason: reason.into(),
        }
    }
}

/// A sink for one product version's target.
#[derive(Debug)]
pub enum Sink {
    /// Writes a PostgreSQL table.
    Postgres(PostgresSink),
    /// Writes an Elasticsearch/OpenSearch index.
    Elasticsearch(ElasticsearchSink),
    /// Writes Redis keys.
    Redis(RedisSink),
}

impl Sink {
    /// A sink writing `plan`'s version through `conn` (the target cluster's connection).
    pub fn new(conn: Arc<TargetConnection>, plan: &TargetPlan) -> Result<Sink, SinkError> {
        match (conn.as_ref(), plan) {
            (TargetConnection::Postgres(_), TargetPlan::Postgres(p)) => {
                PostgresSink::new(conn.clone(), p).map(Sink::Postgres)
            }
            (TargetConnection::Elasticsearch(_), TargetPlan::Elasticsearch(p)) => {
                Ok(Sink::Elasticsearch(ElasticsearchSink::new(conn.clone(), p)))
            }
            (TargetConnection::Redis(_), TargetPlan::Redis(p)) => {
                Ok(Sink::Redis(RedisSink::new(conn.clone(), p)))
            }
            (connection, plan) => Err(SinkError::PlanMismatch {
                connection: connection.target_type(),
                plan: plan.target_type(),
            }),
        }
    }

    /// Applies a batch (in output-topic order) and returns once the target acknowledged all
    /// of it. Idempotent: applying any prefix of the records again, or an older record
    /// after a newer one, leaves the newer row.
    pub async fn write(&self, batch: &[SinkRecord]) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        match self {
            Sink::Postgres(s) => s.write(batch).await,
            Sink::Elasticsearch(s) => s.write(batch).await,
            Sink::Redis(s) => s.write(batch).await,
        }
    }

    /// Readies the target for live sync once the product's backfill is complete: an
    /// Elasticsearch/OpenSearch index then refreshes more often (see
    /// [`ElasticsearchSink::live`]); PostgreSQL and Redis show a write as soon as it is
    /// acknowledged and need nothing. Idempotent.
    pub async fn live(&self) -> Result<(), SinkError> {
        match self {
            Sink::Elasticsearch(s) => s.live().await,
            Sink::Postgres(_) | Sink::Redis(_) => Ok(()),
        }
    }
}

/// The last record of each key in `batch` (the one of the highest version; the later one
/// on a tie), in key order, so that writes take row locks in one order.
pub(crate) fn latest_per_key(batch: &[SinkRecord]) -> Vec<&SinkRecord> {
    // Found by hash and sorted once at the end: cheaper than keeping a sorted map, which
    // compares key text at every level of every lookup.
    let mut at: hashbrown::HashMap<&str, usize> = hashbrown::HashMap::with_capacity(batch.len());
    let mut latest: Vec<&SinkRecord> = Vec::with_capacity(batch.len());
    for record in batch {
        match at.entry(record.key.as_str()) {
            hashbrown::hash_map::Entry::Occupied(seen) => {
                let seen = &mut latest[*seen.get()];
                if seen.version <= record.version {
                    *seen = record;
                }
            }
            hashbrown::hash_map::Entry::Vacant(new) => {
                new.insert(latest.len());
                latest.push(record);
            }
        }
    }
    latest.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    latest
}

/// An error and its sources, `: `-separated.
pub(crate) fn error_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
