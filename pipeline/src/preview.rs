//! The plan's preview: a product's compiled spec run on the latest records of its driving
//! source, giving a few output rows without writing anything, PII masked.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Map, Value};

use crate::transform::{CompiledProduct, Emit};

/// What replaces a PII value in a preview.
pub const MASK: &str = "•••";

/// Output rows of the latest records of `topic` (at most `rows`), computed by `transform`
/// (lookups see no table rows: a preview reads no tables), with the values of the fields
/// named in `pii` replaced by [`MASK`]. Records that do not transform are skipped. Blocks:
/// run it off the async runtime.
pub fn preview(
    bootstrap: &str,
    topic: &str,
    transform: &CompiledProduct,
    pii: &[String],
    rows: usize,
    timeout: Duration,
) -> Result<Vec<Map<String, Value>>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "sluice.preview")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("allow.auto.create.topics", "false")
        .create()
        .map_err(|e| format!("Kafka: {e}"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("Kafka: {e}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(format!("topic `{topic}` does not exist"));
    }
    let per_partition = i64::try_from(rows.div_ceil(partitions.len()).max(1) * 4).unwrap_or(64);
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, *p, timeout)
            .map_err(|e| format!("Kafka: {e}"))?;
        if high > low {
            ends.insert(*p, high);
            assignment
                .add_partition_offset(topic, *p, Offset::Offset((high - per_partition).max(low)))
                .map_err(|e| format!("Kafka: {e}"))?;
        }
    }
    if ends.is_empty() {
        return Ok(Vec::new());
    }
    consumer
        .assign(&assignment)
        .map_err(|e| format!("Kafka: {e}"))?;
    // The latest row per key, newest records last.
    let mut latest: BTreeMap<String, (i64, Map<String, Value>)> = BTreeMap::new();
    let deadline = Instant::now() + timeout;
    while !ends.is_empty() && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let p = message.partition();
                if ends.get(&p).is_some_and(|end| message.offset() + 1 >= *end) {
                    ends.remove(&p);
                }
                let value = message
                    .payload()
                    .and_then(|b| serde_json::from_slice::<Value>(b).ok());
                let time = message.timestamp().to_millis().unwrap_or_default();
                if let Ok(Some(Emit {
                    key,
                    row: Some(row),
                })) = transform.apply(message.key(), value.as_ref())
                {
                    let key = if key.is_empty() {
                        format!("{p}-{}", message.offset())
                    } else {
                        key
                    };
                    latest.insert(key, (time, row));
                }
            }
            Some(Err(e)) => return Err(format!("Kafka: {e}")),
            None => {}
        }
    }
    let mut newest: Vec<(i64, Map<String, Value>)> = latest.into_values().collect();
    newest.sort_by_key(|(time, _)| std::cmp::Reverse(*time));
    Ok(newest
        .into_iter()
        .take(rows)
        .map(|(_, mut row)| {
            for field in pii {
                if let Some(value) = row.get_mut(field)
                    && !value.is_null()
                {
                    *value = Value::String(MASK.to_owned());
                }
            }
            row
        })
        .collect())
}
