//! The plan's preview: a product's compiled spec run on the latest records of its driving
//! source (and of the stream it joins in a window), giving a few output rows without
//! writing anything, PII masked.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::sample::{self, Depth};
use crate::transform::{CompiledProduct, Emit};

/// What replaces a PII value in a preview.
pub const MASK: &str = "•••";

/// The stream a previewed product joins in an event-time window: the preview reads its
/// latest records too and pairs them as the job would.
#[derive(Debug, Clone)]
pub struct PreviewWindow {
    /// The joined stream's topic.
    pub topic: String,
    /// Its event-time field (`timestampField`); `None`: the Kafka record timestamp.
    pub time_field: Option<String>,
    /// The driving stream's event-time field; `None`: the Kafka record timestamp.
    pub driving_time_field: Option<String>,
}

/// A record read for a preview.
struct Latest {
    key: Option<Vec<u8>>,
    value: Option<Value>,
    kafka_ms: Option<i64>,
    partition: i32,
    offset: i64,
}

/// Output rows of the latest records of `topic` (at most `rows`), computed by `transform`
/// (lookups see no table rows: a preview reads no tables), with the values of the fields
/// named in `pii` replaced by [`MASK`]. With a `window` join, the latest records of the
/// joined stream are read as well and each driving record is paired with those of equal
/// join key within `within` of its event time (one row per pair, none without a partner,
/// as the job does). Records that do not transform are skipped. Blocks: run it off the
/// async runtime.
pub fn preview(
    bootstrap: &str,
    topic: &str,
    window: Option<&PreviewWindow>,
    transform: &CompiledProduct,
    pii: &[String],
    rows: usize,
    timeout: Duration,
) -> Result<Vec<Map<String, Value>>, String> {
    let driving = latest_records(bootstrap, topic, rows, timeout)?;
    // Join key → the joined stream's records (event time, value).
    let mut partners: BTreeMap<String, Vec<(i64, Value)>> = BTreeMap::new();
    let joined = match (transform.window(), window) {
        (Some(join), Some(window)) => {
            // More of the joined stream than of the driving one: partners of the latest
            // driving records may lie a little before them.
            for record in latest_records(bootstrap, &window.topic, rows * 4, timeout)? {
                let Some(value) = record.value else { continue };
                let Some(at) = event_ms(window.time_field.as_deref(), &value, record.kafka_ms)
                else {
                    continue;
                };
                if let Some(key) = value.get(&join.key_field).and_then(key_text) {
                    partners.entry(key).or_default().push((at, value));
                }
            }
            Some((join, window))
        }
        _ => None,
    };
    // The latest row per key, newest records last.
    let mut latest: BTreeMap<String, (i64, Map<String, Value>)> = BTreeMap::new();
    let no_rows = |_: &str, _: &str| None;
    for record in driving {
        let time = record.kafka_ms.unwrap_or_default();
        let mut emits = Vec::new();
        match (&joined, &record.value) {
            (Some((join, window)), Some(value)) => {
                let mut traced = Vec::new();
                let Ok(_) = transform.apply_traced(
                    record.key.as_deref(),
                    Some(value),
                    &no_rows,
                    &mut traced,
                ) else {
                    continue;
                };
                let (Some(join_key), Some(at)) = (
                    traced
                        .iter()
                        .find(|(alias, _)| *alias == join.alias)
                        .map(|(_, key)| key.clone()),
                    event_ms(window.driving_time_field.as_deref(), value, record.kafka_ms),
                ) else {
                    continue;
                };
                for (partner_ms, partner) in partners.get(&join_key).into_iter().flatten() {
                    if (partner_ms - at).abs() > join.within_ms {
                        continue;
                    }
                    let paired = |alias: &str, _: &str| (alias == join.alias).then_some(partner);
                    if let Ok(Some(emit)) =
                        transform.apply_with(record.key.as_deref(), Some(value), &paired)
                    {
                        emits.push(emit);
                    }
                }
            }
            _ => {
                if let Ok(Some(emit)) =
                    transform.apply(record.key.as_deref(), record.value.as_ref())
                {
                    emits.push(emit);
                }
            }
        }
        for Emit { key, row } in emits {
            let Some(row) = row else { continue };
            let key = if key.is_empty() {
                format!("{}-{}", record.partition, record.offset)
            } else {
                key
            };
            latest.insert(key, (time, row));
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

/// A join key as the job keeps it: text, integers in decimal.
fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A record's event time: its `field` (RFC 3339), else its Kafka timestamp.
fn event_ms(field: Option<&str>, value: &Value, kafka_ms: Option<i64>) -> Option<i64> {
    match field {
        Some(field) => value
            .get(field)
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp_millis()),
        None => kafka_ms,
    }
}

/// The latest records of `topic`: about `rows` × 4 spread over its partitions, in offset
/// order per partition, values decoded as JSON (`None`: a tombstone or not JSON).
fn latest_records(
    bootstrap: &str,
    topic: &str,
    rows: usize,
    timeout: Duration,
) -> Result<Vec<Latest>, String> {
    let records = sample::latest_records(bootstrap, topic, Depth::Spread(rows * 4), timeout)
        .map_err(|e| e.describe())?;
    Ok(records
        .into_iter()
        .map(|record| Latest {
            value: record
                .payload
                .as_deref()
                .and_then(|b| serde_json::from_slice::<Value>(b).ok()),
            key: record.key,
            kafka_ms: record.timestamp_ms,
            partition: record.partition,
            offset: record.offset,
        })
        .collect())
}
