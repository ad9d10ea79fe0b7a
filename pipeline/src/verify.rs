//! Verification of a product version's target against its sources (DESIGN §2 "Verify"): a
//! backfill is proven complete, not assumed.
//!
//! - [`expected_rows`] recomputes, from the source topic, what the target must hold: it takes
//!   the source's high watermarks *now*, loads the lookup tables to theirs (as the job does
//!   before its stream), then reads every source partition from the offset of `from` to that
//!   watermark and applies the compiled spec to each record. In upsert mode the result is the
//!   materialized view: per product key, the row of its latest record (none when that record
//!   is filtered out or a tombstone); records the job would dead-letter yield nothing.
//! - [`target_rows`] reads what the version's target holds (PostgreSQL: the version's table;
//!   OpenSearch: the version's index, by scroll; Redis: the version's keys, by `SCAN`), by
//!   product key, without Sluice's bookkeeping fields.
//! - [`compare`] puts both sides in one canonical form (numbers as doubles, timestamps as UTC
//!   RFC 3339, nulls dropped, object members sorted; for Redis hashes every value as the
//!   text the hash holds) and compares them: counts and an order-independent checksum (the
//!   sum modulo 2^64 of `sha256(key, row)`) in each of 16 key ranges (the first hex digit of
//!   `sha256(key)`), and the keys that are missing, unexpected or differing (10 of each at
//!   most).
//!
//! **Append** products are compared by count only: their rows have no product key to pair.
//!
//! **Exactness.** The comparison is exact when the source does not move during the
//! verification (a quiescent source) and the job has applied everything up to the watermarks
//! read: records arriving meanwhile may be in the target but not in the expectation, or the
//! reverse, and are then reported as differences. Lookup tables are read as they are now:
//! without `propagate`, a row written before its partner changed keeps the older partner and
//! is reported as differing. A relative `from` (`7d`) is evaluated anew, so records that
//! aged out of the window since the job started are not expected.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sluice_provisioners::kafka::CloseAside;
use sluice_provisioners::plan::{KEY_FIELD, OFFSET_FIELD, PARTITION_FIELD, VERSION_FIELD};
use sluice_provisioners::postgres::fit_identifier;
use sluice_provisioners::quote::pg_ident;
use sluice_provisioners::redis::RedisEncoding;
use sluice_provisioners::{RowIdentity, TargetConnection, TargetPlan};
use sqlx::AssertSqlSafe;

use crate::job::{JobConfig, KAFKA_TIMEOUT, backfill_bounds, load_tables, partitions_of};
use crate::transform::{CompiledProduct, Emit};

/// Rows by product key (append mode: by output-topic position), without bookkeeping fields.
pub type Rows = BTreeMap<String, Map<String, Value>>;

/// How many keys of each kind of difference a [`Verification`] names.
const NAMED: usize = 10;
/// How long reading the source may go without progress.
const STALL: Duration = Duration::from_secs(30);

/// Why a verification could not be made.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Reading the source failed.
    #[error("reading the source: {0}")]
    Source(String),
    /// Reading the target failed.
    #[error("reading the target: {0}")]
    Target(String),
    /// The connection is not for the plan's target type.
    #[error("a {connection} connection cannot read a {plan} target")]
    PlanMismatch {
        /// The connection's type.
        connection: sluice_schemas::TargetType,
        /// The plan's type.
        plan: sluice_schemas::TargetType,
    },
}

/// What the sources say the target must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpectedRows {
    /// Upsert mode: the materialized view by product key (empty in append mode).
    pub rows: Rows,
    /// Append mode: the number of rows appended (0 in upsert mode).
    pub appended: u64,
    /// Source records read.
    pub read: u64,
    /// Of those, records the job sends to the dead-letter topic.
    pub rejected: u64,
}

/// One key range: the keys whose `sha256` starts with the hex digit `range`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeCheck {
    /// The first hex digit of `sha256(key)`.
    pub range: String,
    /// Rows the sources say the range holds.
    pub expected: u64,
    /// Rows the target holds in it.
    pub actual: u64,
    /// Sum modulo 2^64 of `sha256(key, canonical row)` over the expected rows, in hex.
    pub expected_checksum: String,
    /// The same over the target's rows.
    pub actual_checksum: String,
    /// Counts and checksums agree.
    pub matches: bool,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Rows the sources say the target must hold.
    pub expected: u64,
    /// Rows the target holds.
    pub actual: u64,
    /// Per key range (empty for append products, compared by count only).
    pub ranges: Vec<RangeCheck>,
    /// The target holds exactly what it must.
    pub matches: bool,
    /// Keys the target lacks (10 at most).
    pub missing: Vec<String>,
    /// Keys the target has but must not (10 at most).
    pub unexpected: Vec<String>,
    /// Keys whose rows differ (10 at most).
    pub differing: Vec<String>,
    /// Source records read.
    pub source_records: u64,
    /// Of those, records that cannot be processed (dead-lettered by the job).
    pub rejected: u64,
}

impl Verification {
    /// One line: the counts and whether they match.
    pub fn summary(&self) -> String {
        if self.matches {
            format!(
                "matches: {} rows expected, {} in the target",
                self.expected, self.actual
            )
        } else {
            format!(
                "differs: {} rows expected, {} in the target ({} missing, {} unexpected, {} differing shown)",
                self.expected,
                self.actual,
                self.missing.len(),
                self.unexpected.len(),
                self.differing.len()
            )
        }
    }
}

/// Recomputes what the target of the job `config` (with its spec compiled as `transform`)
/// must hold: see the module documentation. Reads with a consumer of its own, committing
/// nothing.
pub async fn expected_rows(
    config: JobConfig,
    transform: CompiledProduct,
) -> Result<ExpectedRows, VerifyError> {
    tokio::task::spawn_blocking(move || read_expected(&config, &transform))
        .await
        .map_err(|e| VerifyError::Source(format!("the reader stopped: {e}")))?
}

fn source_error(context: &str) -> impl FnOnce(rdkafka::error::KafkaError) -> VerifyError + '_ {
    move |e| VerifyError::Source(format!("{context}: {e}"))
}

fn read_expected(
    config: &JobConfig,
    transform: &CompiledProduct,
) -> Result<ExpectedRows, VerifyError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap)
        .set("group.id", format!("{}.verify", config.group))
        .set("fetch.queue.backoff.ms", crate::job::FETCH_QUEUE_BACKOFF_MS)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("allow.auto.create.topics", "false")
        .create()
        .map_err(source_error("creating a consumer"))?;
    let consumer = CloseAside::new(consumer);
    let topic = &config.source_topic;
    let partitions =
        partitions_of(&consumer, topic).map_err(|e| VerifyError::Source(e.to_string()))?;
    // The watermarks first: they bound what is expected.
    let bounds = backfill_bounds(&consumer, topic, &partitions, config.from_ms)
        .map_err(|e| VerifyError::Source(e.to_string()))?;
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for (p, (start, high)) in bounds {
        if high > start {
            ends.insert(p, high);
        }
        assignment
            .add_partition_offset(topic, p, Offset::Offset(start))
            .map_err(source_error("assigning the source partitions"))?;
    }
    // Then the tables, as the job loads them before its stream: to their high watermarks.
    let mut table_ends = BTreeMap::new();
    for table in &config.tables {
        for p in partitions_of(&consumer, &table.topic)
            .map_err(|e| VerifyError::Source(e.to_string()))?
        {
            let (_, high) = consumer
                .fetch_watermarks(&table.topic, p, KAFKA_TIMEOUT)
                .map_err(source_error("reading the table watermarks"))?;
            table_ends.insert((table.topic.clone(), p), high);
        }
    }
    let tables = load_tables(&consumer, config, &table_ends)
        .map_err(|e| VerifyError::Source(e.to_string()))?;
    consumer
        .assign(&assignment)
        .map_err(source_error("assigning the source partitions"))?;

    let mut expected = ExpectedRows::default();
    let mut progress = Instant::now();
    let broken = std::cell::RefCell::new(None);
    while !ends.is_empty() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                progress = Instant::now();
                let p = message.partition();
                let Some(end) = ends.get(&p).copied() else {
                    continue;
                };
                if message.offset() >= end {
                    ends.remove(&p);
                    continue;
                }
                if message.offset() + 1 >= end {
                    ends.remove(&p);
                }
                expected.read += 1;
                let value = match message.payload() {
                    None => None,
                    Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
                        Ok(value) => Some(value),
                        Err(_) => {
                            expected.rejected += 1;
                            continue;
                        }
                    },
                };
                // Rows looked up live as long as the record's transformation.
                let arena = typed_arena::Arena::with_capacity(transform.lookups().len());
                let lookup = tables.lookup(transform, &arena, &broken);
                match transform.apply_with(message.key(), value.as_ref(), &lookup) {
                    Ok(Some(Emit { key, row })) => {
                        if config.append {
                            expected.appended += u64::from(row.is_some());
                        } else {
                            match row {
                                Some(row) => {
                                    expected.rows.insert(key, row);
                                }
                                None => {
                                    expected.rows.remove(&key);
                                }
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(_) => expected.rejected += 1,
                }
            }
            Some(Err(e)) => return Err(VerifyError::Source(e.to_string())),
            None => {
                // A transaction marker or compaction may leave the last offsets undelivered.
                let positions = consumer
                    .position()
                    .map_err(source_error("reading the positions"))?;
                ends.retain(|p, end| {
                    !positions
                        .find_partition(topic, *p)
                        .is_some_and(|e| matches!(e.offset(), Offset::Offset(o) if o >= *end))
                });
                if !ends.is_empty() && progress.elapsed() > STALL {
                    return Err(VerifyError::Source(format!(
                        "no progress for {}s reading partitions {:?}",
                        STALL.as_secs(),
                        ends.keys().collect::<Vec<_>>()
                    )));
                }
            }
        }
    }
    match broken.take() {
        Some(e) => Err(VerifyError::Source(format!("lookup tables: {e}"))),
        None => Ok(expected),
    }
}

/// What the target of `plan` (one product version) holds, by product key (append mode: by
/// output-topic position `partition-offset`), without bookkeeping fields.
pub async fn target_rows(conn: &TargetConnection, plan: &TargetPlan) -> Result<Rows, VerifyError> {
    match (conn, plan) {
        (TargetConnection::Postgres(target), TargetPlan::Postgres(plan)) => {
            postgres_rows(&target.pool_for(plan), plan).await
        }
        (TargetConnection::Elasticsearch(search), TargetPlan::Elasticsearch(plan)) => {
            search_rows(search.http(), search.base_url(), &plan.index).await
        }
        (TargetConnection::Redis(target), TargetPlan::Redis(plan)) => {
            let mut con = target
                .connection()
                .await
                .map_err(|e| VerifyError::Target(e.to_string()))?;
            redis_rows(&mut con, plan).await
        }
        (connection, plan) => Err(VerifyError::PlanMismatch {
            connection: connection.target_type(),
            plan: plan.target_type(),
        }),
    }
}

async fn postgres_rows(
    pool: &sqlx::PgPool,
    plan: &sluice_provisioners::postgres::PostgresPlan,
) -> Result<Rows, VerifyError> {
    let target = |e: &dyn std::fmt::Display| VerifyError::Target(e.to_string());
    let table = format!(
        "{}.{}",
        pg_ident(&plan.schema).map_err(|e| target(&e))?,
        pg_ident(&plan.table).map_err(|e| target(&e))?
    );
    let texts: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT to_jsonb(t)::text FROM {table} AS t"
    )))
    .fetch_all(pool)
    .await
    .map_err(|e| target(&e))?;
    let bookkeeping: Vec<&str> = plan
        .columns
        .iter()
        .filter(|c| c.bookkeeping)
        .map(|c| c.name.as_str())
        .collect();
    let mut rows = Rows::new();
    for text in texts {
        let Value::Object(mut row) = serde_json::from_str(&text).map_err(|e| target(&e))? else {
            return Err(VerifyError::Target("a row is not a JSON object".to_owned()));
        };
        let key = match &plan.identity {
            RowIdentity::KeyField { field, .. } => key_text(row.get(&fit_identifier(field, ""))),
            RowIdentity::ComputedKey { .. } => key_text(row.get(KEY_FIELD)),
            RowIdentity::TopicPosition => Some(format!(
                "{}-{}",
                row.get(PARTITION_FIELD).unwrap_or(&Value::Null),
                row.get(OFFSET_FIELD).unwrap_or(&Value::Null)
            )),
        }
        .unwrap_or_default();
        row.retain(|name, _| !bookkeeping.contains(&name.as_str()));
        rows.insert(key, row);
    }
    Ok(rows)
}

/// A key value as text: strings as they are, integers in decimal.
fn key_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn search_rows(http: &reqwest::Client, base: &str, index: &str) -> Result<Rows, VerifyError> {
    let target = |e: &dyn std::fmt::Display| VerifyError::Target(format!("index `{index}`: {e}"));
    // Written documents become searchable at the next refresh.
    http.post(format!("{base}/{index}/_refresh"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| target(&e))?;
    let mut rows = Rows::new();
    let mut answer: Value = http
        .post(format!("{base}/{index}/_search?scroll=1m"))
        .json(&serde_json::json!({"size": 1000, "sort": ["_doc"]}))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| target(&e))?
        .json()
        .await
        .map_err(|e| target(&e))?;
    let mut scroll_id = None;
    loop {
        if let Some(id) = answer.get("_scroll_id").and_then(Value::as_str) {
            scroll_id = Some(id.to_owned());
        }
        let hits = answer
            .pointer("/hits/hits")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if hits.is_empty() {
            break;
        }
        for hit in hits {
            let id = hit.get("_id").and_then(Value::as_str).unwrap_or_default();
            let mut source = match hit.get("_source") {
                Some(Value::Object(source)) => source.clone(),
                _ => Map::new(),
            };
            source.remove(VERSION_FIELD);
            rows.insert(id.to_owned(), source);
        }
        let Some(id) = &scroll_id else { break };
        answer = http
            .post(format!("{base}/_search/scroll"))
            .json(&serde_json::json!({"scroll": "1m", "scroll_id": id}))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| target(&e))?
            .json()
            .await
            .map_err(|e| target(&e))?;
    }
    if let Some(id) = scroll_id {
        let _ = http
            .delete(format!("{base}/_search/scroll"))
            .json(&serde_json::json!({"scroll_id": id}))
            .send()
            .await;
    }
    Ok(rows)
}

/// `text` with the glob characters of `SCAN … MATCH` escaped.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

async fn redis_rows(
    con: &mut redis::aio::MultiplexedConnection,
    plan: &sluice_provisioners::redis::RedisPlan,
) -> Result<Rows, VerifyError> {
    let target = |e: &redis::RedisError| {
        VerifyError::Target(format!("Redis keys `{}*`: {e}", plan.key_prefix))
    };
    let pattern = format!("{}*", glob_escape(&plan.key_prefix));
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(con)
            .await
            .map_err(|e| target(&e))?;
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    keys.sort();
    keys.dedup();
    let mut rows = Rows::new();
    for chunk in keys.chunks(500) {
        let mut pipe = redis::pipe();
        for key in chunk {
            match plan.encoding {
                RedisEncoding::Hash => pipe.cmd("HGETALL").arg(key),
                RedisEncoding::Json => pipe.cmd("GET").arg(key),
            };
        }
        let mut row_of = |key: &str, mut row: Map<String, Value>| {
            row.remove(VERSION_FIELD);
            let key = key.strip_prefix(&plan.key_prefix).unwrap_or(key);
            rows.insert(key.to_owned(), row);
        };
        match plan.encoding {
            RedisEncoding::Hash => {
                let values: Vec<BTreeMap<String, String>> =
                    pipe.query_async(con).await.map_err(|e| target(&e))?;
                for (key, hash) in chunk.iter().zip(values) {
                    // A key that expired between SCAN and HGETALL holds no row.
                    if hash.is_empty() {
                        continue;
                    }
                    row_of(
                        key,
                        hash.into_iter()
                            .map(|(f, v)| (f, Value::String(v)))
                            .collect(),
                    );
                }
            }
            RedisEncoding::Json => {
                let values: Vec<Option<String>> =
                    pipe.query_async(con).await.map_err(|e| target(&e))?;
                for (key, text) in chunk.iter().zip(values) {
                    let Some(text) = text else { continue };
                    let row = match serde_json::from_str::<Value>(&text) {
                        Ok(Value::Object(row)) => row,
                        // Not a row: it differs from whatever is expected.
                        _ => Map::from_iter([("_unreadable".to_owned(), Value::String(text))]),
                    };
                    row_of(key, row);
                }
            }
        }
    }
    Ok(rows)
}

/// How rows are put in canonical form for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Canon {
    /// Values as JSON, field names as output fields.
    Json,
    /// Field names as PostgreSQL column names.
    Columns,
    /// Every value as the text a Redis hash holds.
    Text,
}

impl Canon {
    fn for_plan(plan: &TargetPlan) -> Canon {
        match plan {
            TargetPlan::Postgres(_) => Canon::Columns,
            TargetPlan::Redis(p) if p.encoding == RedisEncoding::Hash => Canon::Text,
            _ => Canon::Json,
        }
    }

    /// `row` in canonical form: members sorted, nulls dropped, numbers as doubles,
    /// timestamps in UTC; for [`Canon::Text`] every value as text.
    fn row(self, row: &Map<String, Value>) -> BTreeMap<String, Value> {
        row.iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(name, value)| {
                let name = match self {
                    Canon::Columns => fit_identifier(name, ""),
                    _ => name.clone(),
                };
                let value = match self {
                    Canon::Text => Value::String(canonical_text(value)),
                    _ => canonical(value),
                };
                (name, value)
            })
            .collect()
    }
}

/// A value in canonical JSON form.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| value.clone(), Value::Number),
        Value::String(s) => Value::String(canonical_string(s)),
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        Value::Object(map) => {
            let sorted: BTreeMap<&String, Value> =
                map.iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Null | Value::Bool(_) => value.clone(),
    }
}

/// A string; an RFC 3339 timestamp in UTC with the fewest fraction digits.
fn canonical_string(s: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        Err(_) => s.to_owned(),
    }
}

/// A value as text, as a Redis hash holds it, in canonical form: text that reads as a
/// number is that number's double, so `12`, `12.0` and `"12"` agree.
fn canonical_text(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        Value::Array(_) | Value::Object(_) => {
            return canonical(value).to_string();
        }
    };
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => format!("{n:?}"),
        _ => match serde_json::from_str::<Value>(&text) {
            Ok(v @ (Value::Array(_) | Value::Object(_))) => canonical(&v).to_string(),
            _ => canonical_string(&text),
        },
    }
}

/// The range of `key`: the first hex digit of `sha256(key)`.
fn range_of(key: &str) -> usize {
    usize::from(Sha256::digest(key.as_bytes())[0] >> 4)
}

/// `sha256(key, row)`'s first 8 bytes, the row in canonical form.
fn row_hash(key: &str, row: &BTreeMap<String, Value>) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(key.as_bytes());
    hasher.update([0u8]);
    hasher.update(serde_json::to_string(row).unwrap_or_default().as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Compares what the sources say (`expected`) with what the target of `plan` holds
/// (`actual`, from [`target_rows`]); see the module documentation.
pub fn compare(expected: &ExpectedRows, actual: &Rows, plan: &TargetPlan) -> Verification {
    let append = matches!(
        plan,
        TargetPlan::Postgres(sluice_provisioners::postgres::PostgresPlan {
            identity: RowIdentity::TopicPosition,
            ..
        }) | TargetPlan::Elasticsearch(sluice_provisioners::elasticsearch::ElasticsearchPlan {
            identity: RowIdentity::TopicPosition,
            ..
        })
    );
    let mut verification = Verification {
        expected: 0,
        actual: actual.len() as u64,
        ranges: Vec::new(),
        matches: false,
        missing: Vec::new(),
        unexpected: Vec::new(),
        differing: Vec::new(),
        source_records: expected.read,
        rejected: expected.rejected,
    };
    if append {
        verification.expected = expected.appended;
        verification.matches = verification.expected == verification.actual;
        return verification;
    }
    verification.expected = expected.rows.len() as u64;
    let canon = Canon::for_plan(plan);
    let mut counts = [[0u64; 2]; 16];
    let mut sums = [[0u64; 2]; 16];
    for (key, row) in &expected.rows {
        let canonical = canon.row(row);
        let r = range_of(key);
        counts[r][0] += 1;
        sums[r][0] = sums[r][0].wrapping_add(row_hash(key, &canonical));
        match actual.get(key) {
            None => push_named(&mut verification.missing, key),
            Some(got) if canon.row(got) != canonical => {
                push_named(&mut verification.differing, key)
            }
            Some(_) => {}
        }
    }
    for (key, row) in actual {
        let r = range_of(key);
        counts[r][1] += 1;
        sums[r][1] = sums[r][1].wrapping_add(row_hash(key, &canon.row(row)));
        if !expected.rows.contains_key(key) {
            push_named(&mut verification.unexpected, key);
        }
    }
    verification.ranges = (0..16)
        .map(|r| RangeCheck {
            range: format!("{r:x}"),
            expected: counts[r][0],
            actual: counts[r][1],
            expected_checksum: format!("{:016x}", sums[r][0]),
            actual_checksum: format!("{:016x}", sums[r][1]),
            matches: counts[r][0] == counts[r][1] && sums[r][0] == sums[r][1],
        })
        .collect();
    verification.matches = verification.ranges.iter().all(|r| r.matches)
        && verification.missing.is_empty()
        && verification.unexpected.is_empty()
        && verification.differing.is_empty();
    verification
}

fn push_named(list: &mut Vec<String>, key: &str) {
    if list.len() < NAMED {
        list.push(key.to_owned());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn row(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn canonical_forms_agree_across_spellings() {
        let emitted = row(
            json!({"a": 12, "t": "2024-05-01T12:00:00+02:00", "n": null, "j": {"y": 1, "x": [2]}}),
        );
        let read =
            row(json!({"j": {"x": [2.0], "y": 1.0}, "a": 12.0, "t": "2024-05-01T10:00:00Z"}));
        assert_eq!(Canon::Json.row(&emitted), Canon::Json.row(&read));
        let hash =
            row(json!({"a": "12", "t": "2024-05-01T10:00:00+00:00", "j": "{\"x\":[2],\"y\":1}"}));
        assert_eq!(Canon::Text.row(&emitted), Canon::Text.row(&hash));
        assert_ne!(
            Canon::Json.row(&emitted),
            Canon::Json.row(&row(json!({"a": 13})))
        );
    }

    #[test]
    fn checksums_do_not_depend_on_order_and_name_the_differences() {
        let plan = TargetPlan::Redis(sluice_provisioners::redis::RedisPlan {
            prefix: "p".into(),
            key_prefix: "p:v1:".into(),
            key_pattern: "p:v1:*".into(),
            pointer_key: "p:current".into(),
            pointer_value: "v1".into(),
            encoding: RedisEncoding::Json,
            fields: vec!["a".into()],
            ttl_seconds: None,
            identity: RowIdentity::KeyField {
                field: "id".into(),
                key_type: sluice_schemas::FieldType::String,
            },
            user: "u".into(),
            acl_rules: Vec::new(),
            acl_rule: String::new(),
        });
        let rows: Rows = (0..100)
            .map(|i| (format!("k{i}"), row(json!({"a": i}))))
            .collect();
        let expected = ExpectedRows {
            rows: rows.clone(),
            ..ExpectedRows::default()
        };
        let same = compare(&expected, &rows, &plan);
        assert!(same.matches, "{same:?}");
        assert_eq!(same.ranges.len(), 16);
        assert_eq!(same.ranges.iter().map(|r| r.expected).sum::<u64>(), 100);

        let mut tampered = rows.clone();
        tampered.remove("k1");
        tampered.insert("k2".into(), row(json!({"a": -1})));
        tampered.insert("zz".into(), row(json!({"a": 0})));
        let differs = compare(&expected, &tampered, &plan);
        assert!(!differs.matches);
        assert_eq!(differs.missing, ["k1"]);
        assert_eq!(differs.differing, ["k2"]);
        assert_eq!(differs.unexpected, ["zz"]);
        assert!(differs.ranges.iter().any(|r| !r.matches));
    }
}
