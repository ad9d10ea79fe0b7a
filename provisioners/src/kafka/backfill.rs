//! What a backfill of one source topic means, read from the cluster: how many events it
//! reads from a start time to the current high watermarks, their approximate size, and
//! whether the topic still holds data as old as the start time (the retention pre-flight).
//!
//! Counts are exact offsets arithmetic: per partition, the high watermark minus the offset
//! of the first record whose timestamp is at or after the start (Kafka's offsets-for-times),
//! or minus the low watermark when reading from the beginning. On topics written by
//! transactional producers the count includes control records, so it is an upper bound.
//! Sizes are an estimate: the average key + value size of a small sample of records read
//! from each partition's start, times the number of events.
//!
//! librdkafka's offset and metadata calls block, so they run on Tokio's blocking pool, each
//! with its own short-lived consumer that joins no group and commits nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::{ClientConfig, Timestamp};
use serde::Serialize;

use super::provision::{KafkaProvisionError, KafkaProvisioner, Result};

/// How long listing the topics may take: short, as plans wait for it and an unreachable
/// cluster shows here first.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one offsets or watermark request may take.
const OFFSET_TIMEOUT: Duration = Duration::from_secs(10);
/// How long reading the records of the size sample and the oldest records may take in all.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Records read per partition to estimate the average record size.
const SAMPLE_PER_PARTITION: i64 = 20;
/// How much younger than `from` the oldest retained record may be before the retention
/// pre-flight warns: clocks and batching make a few seconds of difference meaningless.
pub const RETENTION_SLACK_MS: i64 = 60_000;

/// What backfilling one source topic from `from` means.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceEstimate {
    /// The topic read.
    pub topic: String,
    /// Its number of partitions.
    pub partitions: i32,
    /// Where reading starts (milliseconds since the epoch); `None` from the beginning.
    pub from_ms: Option<i64>,
    /// Events to read, from `from_ms` to the current high watermarks.
    pub events: u64,
    /// Estimated bytes to read (keys and values).
    pub bytes: u64,
    /// Timestamp of the oldest record still held, if any is.
    pub earliest_ms: Option<i64>,
    /// Set when the topic no longer holds data as old as `from_ms`.
    pub retention_warning: Option<String>,
}

impl KafkaProvisioner {
    /// Events to read per partition from the offset of `from_ms` (offsets-for-times; `None`
    /// = from the beginning) to the current high watermark; bytes estimated from the average
    /// key + value size of up to 20 records per partition times the events; `earliest_ms`
    /// from the first record still retained; `retention_warning` when the topic no longer
    /// holds data as old as `from_ms` (its oldest record is more than
    /// [`RETENTION_SLACK_MS`] younger), naming the topic and both instants in RFC 3339.
    ///
    /// Fails with [`KafkaProvisionError::MissingTopic`] when the topic does not exist.
    pub async fn estimate_backfill(
        &self,
        topic: &str,
        from_ms: Option<i64>,
    ) -> Result<SourceEstimate> {
        let partitions = self.partition_count(topic).await?.ok_or_else(|| {
            KafkaProvisionError::MissingTopic {
                topic: topic.to_owned(),
            }
        })?;
        let bootstrap = self.bootstrap.clone();
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            estimate_blocking(&bootstrap, &topic, partitions, from_ms)
        })
        .await
        .map_err(|source| KafkaProvisionError::Blocking { source })?
    }

    /// The partition count of `topic`, `None` if it does not exist.
    ///
    /// Asking never creates it: the admin client does not allow auto-creation.
    pub async fn partition_count(&self, topic: &str) -> Result<Option<i32>> {
        match self
            .topic_metadata_within(&[topic.to_owned()], METADATA_TIMEOUT)
            .await?
            .remove(topic)
        {
            None => Ok(None),
            Some(Ok(count)) => Ok(Some(count)),
            Some(Err(source)) => Err(KafkaProvisionError::Topic {
                operation: "fetch_metadata",
                topic: topic.to_owned(),
                source,
            }),
        }
    }
}

/// One partition's part of the backfill.
#[derive(Debug, Clone, Copy)]
struct PartitionRange {
    partition: i32,
    /// The oldest offset still held.
    low: i64,
    /// The offset the backfill starts at.
    start: i64,
    /// The high watermark: the offset of the next record to be written.
    high: i64,
}

/// The whole estimate, on a blocking thread.
fn estimate_blocking(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    from_ms: Option<i64>,
) -> Result<SourceEstimate> {
    let consumer = super::CloseAside::new(
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "sluice-backfill-estimate")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .map_err(|source| KafkaProvisionError::Client {
                bootstrap: bootstrap.to_owned(),
                source,
            })?,
    );
    let request = |operation: &'static str| {
        move |source: KafkaError| KafkaProvisionError::Request { operation, source }
    };

    let mut ranges = Vec::new();
    for partition in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, OFFSET_TIMEOUT)
            .map_err(request("fetch_watermarks"))?;
        ranges.push(PartitionRange {
            partition,
            low,
            start: low,
            high,
        });
    }
    // The oldest record of each partition: the retention pre-flight, and the partitions
    // that need no offsets-for-times lookup (all they hold is at or after `from`). Brokers
    // answer a lookup for a time before the log start of a truncated log with "none".
    let oldest = read_records(&consumer, topic, &ranges, |r| (r.low, 1))?;
    let earliest_ms = oldest.iter().filter_map(|s| s.timestamp_ms).min();
    if let Some(from_ms) = from_ms {
        let mut wanted = TopicPartitionList::new();
        for range in &ranges {
            let first = oldest
                .iter()
                .find(|s| s.partition == range.partition)
                .and_then(|s| s.timestamp_ms);
            if range.low < range.high && first.is_none_or(|first| first < from_ms) {
                wanted
                    .add_partition_offset(topic, range.partition, Offset::Offset(from_ms.max(0)))
                    .map_err(request("offsets_for_times"))?;
            }
        }
        let found = if wanted.count() == 0 {
            wanted
        } else {
            consumer
                .offsets_for_times(wanted, OFFSET_TIMEOUT)
                .map_err(request("offsets_for_times"))?
        };
        for range in &mut ranges {
            let Some(element) = found.find_partition(topic, range.partition) else {
                continue;
            };
            element.error().map_err(request("offsets_for_times"))?;
            range.start = match element.offset() {
                Offset::Offset(offset) => offset.clamp(range.low, range.high),
                // No record at or after `from_ms`: nothing to read in this partition.
                _ => range.high,
            };
        }
    }
    let events: u64 = ranges
        .iter()
        .map(|r| u64::try_from(r.high - r.start).unwrap_or(0))
        .sum();
    let sample = read_records(&consumer, topic, &ranges, |r| {
        (r.start, SAMPLE_PER_PARTITION)
    })?;
    let bytes = if sample.is_empty() {
        0
    } else {
        let total: u64 = sample.iter().map(|s| s.size).sum();
        let average = total as f64 / sample.len() as f64;
        (average * events as f64).round() as u64
    };

    let retention_warning = match (from_ms, earliest_ms) {
        (Some(from), Some(earliest)) if earliest > from.saturating_add(RETENTION_SLACK_MS) => {
            Some(format!(
                "topic `{topic}` holds records from {} on, but `from` asks for {}: the older \
                 records are gone (retention) or were never written",
                rfc3339(earliest),
                rfc3339(from)
            ))
        }
        _ => None,
    };
    Ok(SourceEstimate {
        topic: topic.to_owned(),
        partitions,
        from_ms,
        events,
        bytes,
        earliest_ms,
        retention_warning,
    })
}

/// One record read: its timestamp and its key + value size.
#[derive(Debug, Clone, Copy)]
struct Sampled {
    partition: i32,
    timestamp_ms: Option<i64>,
    size: u64,
}

/// Reads up to `want(range).1` records of each partition from offset `want(range).0`
/// (never past the high watermark), within [`SAMPLE_TIMEOUT`]; returns what arrived.
fn read_records(
    consumer: &BaseConsumer,
    topic: &str,
    ranges: &[PartitionRange],
    want: impl Fn(&PartitionRange) -> (i64, i64),
) -> Result<Vec<Sampled>> {
    let mut assignment = TopicPartitionList::new();
    let mut remaining: BTreeMap<i32, i64> = BTreeMap::new();
    for range in ranges {
        let (offset, count) = want(range);
        let count = count.min(range.high - offset);
        if count > 0 {
            assignment
                .add_partition_offset(topic, range.partition, Offset::Offset(offset))
                .map_err(|source| KafkaProvisionError::Request {
                    operation: "assign",
                    source,
                })?;
            remaining.insert(range.partition, count);
        }
    }
    let mut records = Vec::new();
    if remaining.is_empty() {
        return Ok(records);
    }
    consumer
        .assign(&assignment)
        .map_err(|source| KafkaProvisionError::Request {
            operation: "assign",
            source,
        })?;
    let deadline = Instant::now() + SAMPLE_TIMEOUT;
    while !remaining.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let Some(polled) = consumer.poll(left.min(Duration::from_millis(200))) else {
            continue;
        };
        // A fetch error on one partition leaves the sample smaller, not the estimate wrong.
        let Ok(message) = polled else { continue };
        let Some(count) = remaining.get_mut(&message.partition()) else {
            continue;
        };
        *count -= 1;
        if *count <= 0 {
            remaining.remove(&message.partition());
        }
        let size = message.key().map_or(0, <[u8]>::len) + message.payload().map_or(0, <[u8]>::len);
        records.push(Sampled {
            partition: message.partition(),
            timestamp_ms: match message.timestamp() {
                Timestamp::NotAvailable => None,
                Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) => Some(ms),
            },
            size: u64::try_from(size).unwrap_or(u64::MAX),
        });
    }
    consumer
        .unassign()
        .map_err(|source| KafkaProvisionError::Request {
            operation: "unassign",
            source,
        })?;
    Ok(records)
}

/// Milliseconds since the epoch in RFC 3339 (UTC, seconds precision).
fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || format!("{ms} ms"),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}
