//! The latest records of a topic, read without joining a consumer group or committing
//! anything — what plan previews and the catalog's sample records show — and the masking
//! of the fields a dataset's schema marks `x-pii`.
//!
//! librdkafka assigns partitions only to a consumer with a `group.id`, so the reader has one
//! ([`SAMPLE_GROUP`]); it never subscribes (so never joins the group: no rebalance touches
//! anyone) and never commits or stores an offset (so the group never exists on the broker).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use sluice_provisioners::kafka::CloseAside;

use crate::preview::MASK;

/// The `group.id` of sample readers: librdkafka needs one to assign partitions. Nothing is
/// ever committed under it and it never joins, so the broker never records it.
pub const SAMPLE_GROUP: &str = "sluice.sample";

/// One record read from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestRecord {
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its Kafka timestamp in milliseconds since the epoch, when it has one.
    pub timestamp_ms: Option<i64>,
    /// Its key bytes, if any.
    pub key: Option<Vec<u8>>,
    /// Its value bytes; `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
}

/// How many of the latest records to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The last `n` records of every partition: enough to find the newest `n` of the topic.
    PerPartition(usize),
    /// About `n` records in all, spread evenly over the partitions.
    Spread(usize),
}

impl Depth {
    fn per_partition(self, partitions: usize) -> i64 {
        let n = match self {
            Depth::PerPartition(n) => n,
            Depth::Spread(n) => n.div_ceil(partitions.max(1)),
        };
        i64::try_from(n.max(1)).unwrap_or(i64::MAX)
    }
}

/// Why the latest records could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The topic does not exist (or this client may not see it).
    #[error("topic `{topic}` does not exist")]
    NoTopic {
        /// The topic asked for.
        topic: String,
    },
    /// Kafka refused or did not answer in time.
    #[error("Kafka: {step}")]
    Kafka {
        /// What was being done.
        step: &'static str,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
}

impl SampleError {
    /// The error with its causes, one line (Kafka errors carry no credentials).
    pub fn describe(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

fn kafka(step: &'static str) -> impl FnOnce(KafkaError) -> SampleError {
    move |source| SampleError::Kafka { step, source }
}

/// The latest records of `topic` (as many as `depth` says), in offset order per partition,
/// read as committed (aborted transactions skipped). Everything — metadata, watermarks and
/// the reads — is bounded by `timeout` in all; records not read by then are left out.
/// Blocks: run it off the async runtime.
pub fn latest_records(
    bootstrap: &str,
    topic: &str,
    depth: Depth,
    timeout: Duration,
) -> Result<Vec<LatestRecord>, SampleError> {
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", SAMPLE_GROUP)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("allow.auto.create.topics", "false")
        .create()
        .map_err(kafka("creating a consumer"))?;
    let consumer = CloseAside::new(consumer);
    let metadata = consumer
        .fetch_metadata(Some(topic), left())
        .map_err(kafka("reading the topic's metadata"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(SampleError::NoTopic {
            topic: topic.to_owned(),
        });
    }
    let per_partition = depth.per_partition(partitions.len());
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, *p, left())
            .map_err(kafka("reading the topic's offsets"))?;
        if high > low {
            ends.insert(*p, high);
            let start = high.saturating_sub(per_partition).max(low);
            assignment
                .add_partition_offset(topic, *p, Offset::Offset(start))
                .map_err(kafka("assigning the topic's partitions"))?;
        }
    }
    let mut records = Vec::new();
    if ends.is_empty() {
        return Ok(records);
    }
    consumer
        .assign(&assignment)
        .map_err(kafka("assigning the topic's partitions"))?;
    while !ends.is_empty() && !left().is_zero() {
        match consumer.poll(left().min(Duration::from_millis(100))) {
            Some(Ok(message)) => {
                let p = message.partition();
                if ends.get(&p).is_some_and(|end| message.offset() + 1 >= *end) {
                    ends.remove(&p);
                }
                records.push(LatestRecord {
                    partition: p,
                    offset: message.offset(),
                    timestamp_ms: message.timestamp().to_millis(),
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().map(<[u8]>::to_vec),
                });
            }
            // The end of a partition as read committed (past its last transaction marker).
            Some(Err(KafkaError::PartitionEOF(p))) => {
                ends.remove(&p);
            }
            Some(Err(e)) => return Err(kafka("reading the topic")(e)),
            None => {}
        }
    }
    Ok(records)
}

/// The newest `limit` of `records`, newest first: by Kafka timestamp (records without one
/// last), then by offset, then by partition.
pub fn newest_first(mut records: Vec<LatestRecord>, limit: usize) -> Vec<LatestRecord> {
    records.sort_by(|a, b| {
        b.timestamp_ms
            .cmp(&a.timestamp_ms)
            .then(b.offset.cmp(&a.offset))
            .then(a.partition.cmp(&b.partition))
    });
    records.truncate(limit);
    records
}

/// Whether anything in `schema` is marked `x-pii`.
pub fn has_pii(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => {
            map.get("x-pii").and_then(Value::as_bool) == Some(true) || map.values().any(has_pii)
        }
        Value::Array(items) => items.iter().any(has_pii),
        _ => false,
    }
}

/// Replaces with [`MASK`] every non-null value of `record` that `schema` marks `x-pii` (a
/// property, an object holding one is descended into, array items likewise), and adds the
/// dotted path of each field replaced to `masked` (array items as `field[]`). A record that
/// is not an object while the schema marks fields `x-pii` is replaced whole (its path:
/// `""`), as it cannot be masked field by field.
pub fn mask_pii(schema: &Value, record: &mut Value, masked: &mut Vec<String>) {
    if !has_pii(schema) {
        return;
    }
    if !record.is_object() && !record.is_null() {
        *record = Value::String(MASK.to_owned());
        note(masked, String::new());
        return;
    }
    mask_at(schema, record, "", masked);
}

fn mask_at(schema: &Value, value: &mut Value, path: &str, masked: &mut Vec<String>) {
    if value.is_null() {
        return;
    }
    if schema.get("x-pii").and_then(Value::as_bool) == Some(true) {
        *value = Value::String(MASK.to_owned());
        note(masked, path.to_owned());
        return;
    }
    match value {
        Value::Object(fields) => {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                return;
            };
            for (name, property) in properties {
                if !has_pii(property) {
                    continue;
                }
                if let Some(field) = fields.get_mut(name) {
                    let path = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}.{name}")
                    };
                    mask_at(property, field, &path, masked);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items").filter(|s| has_pii(s)) {
                let path = format!("{path}[]");
                for item in items {
                    mask_at(item_schema, item, &path, masked);
                }
            }
        }
        _ => {}
    }
}

fn note(masked: &mut Vec<String>, path: String) {
    if !masked.contains(&path) {
        masked.push(path);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn record(partition: i32, offset: i64, timestamp_ms: Option<i64>) -> LatestRecord {
        LatestRecord {
            partition,
            offset,
            timestamp_ms,
            key: None,
            payload: None,
        }
    }

    #[test]
    fn newest_first_orders_by_time_across_partitions_and_keeps_the_limit() {
        let records = vec![
            record(0, 5, Some(100)),
            record(1, 2, Some(300)),
            record(0, 6, Some(200)),
            record(2, 9, None),
            record(1, 3, Some(300)),
        ];
        let newest = newest_first(records, 4);
        let order: Vec<(i32, i64)> = newest.iter().map(|r| (r.partition, r.offset)).collect();
        assert_eq!(order, vec![(1, 3), (1, 2), (0, 6), (0, 5)]);
    }

    #[test]
    fn spread_depth_divides_over_partitions_and_reads_at_least_one() {
        assert_eq!(Depth::Spread(20).per_partition(3), 7);
        assert_eq!(Depth::Spread(0).per_partition(3), 1);
        assert_eq!(Depth::PerPartition(10).per_partition(3), 10);
    }

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "id": {"type": "string"},
            "email": {"type": "string", "x-pii": true},
            "address": {"type": "object", "properties": {
                "city": {"type": "string"},
                "street": {"type": "string", "x-pii": true}}},
            "contacts": {"type": "array", "items": {"type": "object", "properties": {
                "phone": {"type": "string", "x-pii": true}}}},
            "note": {"type": ["string", "null"], "x-pii": true}
        }})
    }

    #[test]
    fn pii_fields_are_masked_at_any_depth_and_listed_once() {
        let mut masked = Vec::new();
        let mut first = json!({
            "id": "o1", "email": "a@example.com",
            "address": {"city": "Oslo", "street": "Main 1"},
            "contacts": [{"phone": "1"}, {"phone": "2"}],
            "note": null
        });
        mask_pii(&schema(), &mut first, &mut masked);
        assert_eq!(
            first,
            json!({
                "id": "o1", "email": MASK,
                "address": {"city": "Oslo", "street": MASK},
                "contacts": [{"phone": MASK}, {"phone": MASK}],
                "note": null
            })
        );
        let mut second = json!({"id": "o2", "email": "b@example.com"});
        mask_pii(&schema(), &mut second, &mut masked);
        assert_eq!(second, json!({"id": "o2", "email": MASK}));
        assert_eq!(masked, vec!["email", "address.street", "contacts[].phone"]);
    }

    #[test]
    fn a_value_that_is_not_an_object_is_masked_whole_when_the_schema_has_pii() {
        let mut masked = Vec::new();
        let mut raw = Value::String("not json: a@example.com".into());
        mask_pii(&schema(), &mut raw, &mut masked);
        assert_eq!(raw, json!(MASK));
        assert_eq!(masked, vec![String::new()]);
        let mut clean = Value::String("anything".into());
        let mut none = Vec::new();
        mask_pii(&json!({"properties": {"id": {}}}), &mut clean, &mut none);
        assert_eq!(clean, json!("anything"));
        assert!(none.is_empty());
    }
}
