//! One product version's stream job: a **transform** stage that reads the source from `from`,
//! applies the compiled spec and writes each result to the product's output topic in Kafka
//! transactions together with its source offsets (exactly once into the output topic), and a
//! **sink** stage that reads the output topic (`read_committed`) and applies it to the target,
//! using each record's output offset as the key's version, committing its offsets only after
//! the target acknowledged. In a job run by one process, the sink takes the records its
//! transform committed from it rather than reading them back ([`handoff`]). Why this is
//! exact: `docs/jobs.md`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use serde::Serialize;
use sluice_provisioners::kafka::CloseAside;
use tokio::sync::watch;

use crate::sink::{RowText, Sink, SinkRecord};
use crate::state::{StateError, StateSettings, TableRows};
use crate::transform::CompiledProduct;

mod bounded_call;
mod handoff;
mod hanging;
mod joined;
mod transform_stage;

pub use bounded_call::CallError;
pub use hanging::HangingError;

use handoff::{Handed, SinkHandoff};
use transform_stage::TransformStage;

/// How long a Kafka call of the job may take.
pub(crate) const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
/// Records per transaction, at most. A commit costs 1–5 ms with the local broker once the
/// transform waits for its own deliveries (`TransformStage::deliver`), so at ~50k events/s
/// a 20,000-record transaction spends about 1 % of its time committing, while every record
/// of the open transaction (read, parsed, produced) is held in memory: 50,000 cost ~80 MiB
/// more RSS than 10,000 in `backfill_join`.
const BATCH: usize = 20_000;
/// Records per sink batch, at most: large enough for the COPY path, small enough that two
/// batches (one written, one read ahead) stay a few tens of MiB. (20,000 was as fast and
/// took up to 200 MiB more RSS in `backfill_join`.)
const SINK_BATCH: usize = 10_000;
/// How long the job's consumers wait before fetching again once their read-ahead is full
/// (librdkafka's `fetch.queue.backoff.ms`, 1 s by default): a job drains its read-ahead in
/// far less, and then stood idle for the rest of the second.
pub(crate) const FETCH_QUEUE_BACKOFF_MS: &str = "10";
/// How long a batch waits to fill.
const BATCH_WINDOW: Duration = Duration::from_millis(100);
/// Once the sink has records, how long a pause in their arrival ends its batch: a
/// transaction's records arrive together, so live records wait for no more than this
/// (not the whole window), while a backfill, read from librdkafka's prefetched queue, still
/// fills whole batches.
const SINK_IDLE: Duration = Duration::from_millis(10);
/// How many records a batch takes between readings of the clock while they are at hand
/// (reading it for every record was a few per cent of a stage's time).
const CLOCK_EVERY: usize = 64;
/// How long [`Job::stop`] waits for each stage, a backstop: a stage notices the stop while
/// it waits for Kafka, and each of its Kafka calls is bounded by [`KAFKA_TIMEOUT`].
const STOP_WAIT: Duration = Duration::from_secs(60);
/// How many committed transactions the transform may hand to the sink ahead of the one the
/// sink writes: beyond that it waits, so the job holds at most a few transactions' records.
const HANDOFF_DEPTH: usize = 2;
/// How long the sink waits before readying its target for live sync again after a failure.
const READY_RETRY: Duration = Duration::from_secs(5);
/// How long the sink waits for the output topic's watermarks before asking again.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a job reads and writes.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// For logs: `team/name vN`.
    pub label: String,
    /// Kafka bootstrap servers.
    pub bootstrap: String,
    /// The source topic.
    pub source_topic: String,
    /// Start of the backfill (milliseconds since the epoch); `None`: from the beginning.
    pub from_ms: Option<i64>,
    /// The product version's output topic.
    pub output_topic: String,
    /// Its dead-letter topic.
    pub dead_letter_topic: String,
    /// Prefix of the job's consumer groups and transactional id, unique per product version.
    pub group: String,
    /// Append mode: output records carry no key.
    pub append: bool,
    /// The tables the product looks rows up in.
    pub tables: Vec<TableSource>,
    /// The driving source's event-time field (its dataset's `timestampField`, an RFC 3339
    /// date-time); `None`: the Kafka record timestamp. Only window joins read event times.
    pub source_time_field: Option<String>,
    /// The stream the product joins in an event-time window, if it has a window join.
    pub window: Option<WindowSource>,
    /// How much memory the lookup tables may take before they move to disk, and where.
    pub state: StateSettings,
    /// Which share of the driving source's partitions (and of the output topic's) this job
    /// runs.
    pub slice: JobSlice,
}

/// One share of a job: a job split in `count` slices runs as `count` jobs, slice `index`
/// reading the driving source's partitions `p` with `p % count == index` and applying the
/// output partitions of the same rule. Each slice has consumer groups and a transactional id
/// of its own, so slices can run in different processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSlice {
    /// This slice, from 0.
    pub index: u32,
    /// How many slices the job has (at least 1).
    pub count: u32,
}

impl JobSlice {
    /// The whole job in one slice.
    pub const WHOLE: JobSlice = JobSlice { index: 0, count: 1 };

    /// Whether `partition` is this slice's.
    pub fn owns(&self, partition: i32) -> bool {
        self.count <= 1
            || i64::from(partition).rem_euclid(i64::from(self.count)) == i64::from(self.index)
    }
}

/// The stream of a window join: read from its `from` like the driving source, each record
/// kept while it may still meet a partner.
#[derive(Debug, Clone)]
pub struct WindowSource {
    /// The join's right alias.
    pub alias: String,
    /// The stream dataset's topic.
    pub topic: String,
    /// Start of its backfill (milliseconds since the epoch); `None`: from the beginning.
    pub from_ms: Option<i64>,
    /// The field the join matches; records are kept by its value as text.
    pub key_field: String,
    /// `within` in milliseconds: how far apart two records' event times may be.
    pub within_ms: i64,
    /// Its event-time field (`timestampField`); `None`: the Kafka record timestamp.
    pub time_field: Option<String>,
}

/// A table source of a lookup join: read from its beginning to its high watermark before
/// any stream record is joined, then kept current.
#[derive(Debug, Clone)]
pub struct TableSource {
    /// The join's right alias.
    pub alias: String,
    /// The table dataset's topic.
    pub topic: String,
    /// The field the join matches; rows are kept by its value as text.
    pub key_field: String,
}

/// The current rows of the lookup tables: by alias, by join-key value, in memory or on disk
/// ([`crate::state`]).
#[derive(Debug)]
pub(crate) struct Tables {
    rows: TableRows,
}

impl Tables {
    /// Empty tables kept as `settings` say; `label` names the job.
    pub(crate) fn new(settings: StateSettings, label: &str) -> Self {
        Tables {
            rows: TableRows::new(settings, label),
        }
    }

    /// Applies one table record: an upsert of its row, or a tombstone removing the row
    /// whose key the record key holds.
    /// Returns the join key of the row that changed.
    pub(crate) fn apply(
        &mut self,
        table: &TableSource,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
    ) -> Result<Option<String>, StateError> {
        let parsed = payload.and_then(|p| row_key(p, &table.key_field));
        match (parsed, payload) {
            (Some(key), Some(bytes)) => {
                let Some(k) = key else {
                    return Ok(None);
                };
                self.rows.put(&table.alias, &k, bytes)?;
                Ok(Some(k))
            }
            (_, None) => {
                let Some(k) = key.map(|k| String::from_utf8_lossy(k).into_owned()) else {
                    return Ok(None);
                };
                self.rows.remove(&table.alias, &k)?;
                Ok(Some(k))
            }
            // A table record that is not JSON cannot be looked up: skipped, and counted
            // nowhere, as it is not an input row of the product.
            (None, Some(_)) => Ok(None),
        }
    }

    /// Writes buffered changes of tables kept on disk.
    pub(crate) fn flush(&mut self) -> Result<(), StateError> {
        self.rows.flush()
    }

    /// Whether the tables moved to disk.
    pub(crate) fn on_disk(&self) -> bool {
        self.rows.on_disk()
    }

    /// Bytes of table rows held in memory, roughly.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.rows.memory_bytes()
    }

    /// A lookup function for `transform`'s [`CompiledProduct::apply_with`]: rows are parsed
    /// into `arena`, which outlives the call, with only the fields `transform` reads of them
    /// ([`CompiledProduct::table_fields`]); a store failure is left in `failure` (the lookup
    /// then finds nothing, and the caller must not use the result).
    pub(crate) fn lookup<'a>(
        &'a self,
        transform: &'a CompiledProduct,
        arena: &'a typed_arena::Arena<serde_json::Value>,
        failure: &'a std::cell::RefCell<Option<StateError>>,
    ) -> impl Fn(&str, &str) -> Option<&'a serde_json::Value> + 'a {
        move |alias, key| match self.rows.get(alias, key, transform.table_fields(alias)) {
            Ok(row) => row.map(|r| &*arena.alloc(r)),
            Err(e) => {
                failure.replace(Some(e));
                None
            }
        }
    }
}

/// The value of `field` in the JSON object `row` as join-key text ([`key_text`]; `Some(None)`
/// when it has none, or one of another type), or `None` when `row` is not a JSON object.
/// Only that field's value is built ([`crate::projected`]): the other fields are checked
/// and skipped, which makes loading a table several times cheaper than parsing each row
/// whole.
fn row_key(row: &[u8], field: &str) -> Option<Option<String>> {
    match crate::projected::parse(row, Some(&[field])).ok()? {
        serde_json::Value::Object(members) => Some(key_text(members.get(field))),
        _ => None,
    }
}

/// A join-key value as text: strings as they are, integers in decimal.
fn key_text(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Backfill progress of the job's source.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceProgress {
    /// The source alias.
    pub source: String,
    /// Events read of those to backfill.
    pub done: u64,
    /// Events to backfill: from the start positions to the watermarks taken at start.
    pub total: u64,
    /// Events per second since the job started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Estimated seconds to the end of the backfill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
}

/// What a job reports: the shape the controller reads from job reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobProgress {
    /// The job runs.
    pub running: bool,
    /// Every source was read up to its start watermarks and the sink applied all of it.
    pub backfill_complete: bool,
    /// Per source.
    pub sources: Vec<SourceProgress>,
    /// Records sent to the dead-letter topic.
    pub dead_letters: u64,
    /// Records applied to the target.
    pub applied: u64,
    /// Live lag in milliseconds: from the event time of the newest record the sink applied
    /// to when it was applied; 0 when the sink has nothing left to apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
    /// The last error, while it lasts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A job in several slices: once this slice's transform has read its backfill, the end
    /// offsets of the output topic then (by partition). The sinks are complete once they
    /// reach, for their partitions, the highest of every slice's ([`Job::set_sink_target`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transform_done: Option<BTreeMap<i32, i64>>,
}

/// Why a job cannot start.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A Kafka client or call failed.
    #[error("Kafka: {context}: {source}")]
    Kafka {
        /// What was being done.
        context: &'static str,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A transactional call of the producer failed or did not answer in time.
    #[error("Kafka: {context}: {source}")]
    Call {
        /// What was being done.
        context: &'static str,
        /// Why it failed.
        #[source]
        source: CallError,
    },
    /// The transform thread could not be started.
    #[error("cannot start the transform thread")]
    Thread(#[source] std::io::Error),
    /// A topic the job needs does not exist.
    #[error("topic `{0}` does not exist")]
    MissingTopic(String),
    /// The lookup tables' store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A transaction of the job that the broker left open could not be ended.
    #[error("Kafka: {0}")]
    Hanging(#[source] HangingError),
}

fn kafka(context: &'static str) -> impl FnOnce(rdkafka::error::KafkaError) -> JobError {
    move |source| JobError::Kafka { context, source }
}

/// A running job. Dropping it stops it (without waiting).
pub struct Job {
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    label: String,
    slice: JobSlice,
    progress: watch::Receiver<JobProgress>,
    transform: Option<std::thread::JoinHandle<()>>,
    sink: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("progress", &*self.progress.borrow())
            .finish_non_exhaustive()
    }
}

/// Shared between the two stages.
struct Shared {
    progress: watch::Sender<JobProgress>,
    /// Set by the transform when it reached its start watermarks (the output topic's high
    /// watermarks at that moment); from then on the sink finds where the backfill ends in
    /// the output topic (`SinkStage::backfill_end`).
    sink_target: std::sync::Mutex<Option<BTreeMap<i32, i64>>>,
}

impl Job {
    /// Starts the job (needs a tokio runtime). The transform runs on a thread of its own
    /// (rdkafka's transactional calls block); the sink on the runtime.
    pub fn start(
        config: JobConfig,
        transform: CompiledProduct,
        sink: Sink,
    ) -> Result<Job, JobError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (sender, progress) = watch::channel(JobProgress {
            running: true,
            sources: std::iter::once(transform.source())
                .chain(config.window.as_ref().map(|w| w.alias.as_str()))
                .map(|source| SourceProgress {
                    source: source.to_owned(),
                    ..SourceProgress::default()
                })
                .collect(),
            ..JobProgress::default()
        });
        let shared = Arc::new(Shared {
            progress: sender,
            sink_target: std::sync::Mutex::new(None),
        });
        // One process runs the whole job: every output record from now on is one its
        // transform commits, handed to its sink in process.
        let (hand, handed) = match config.slice.count {
            1 => {
                let (hand, handed) = tokio::sync::mpsc::channel(HANDOFF_DEPTH);
                (Some(hand), Some(handed))
            }
            _ => (None, None),
        };
        // The transform first: its producer fences every earlier one before the sink takes
        // the output topic's end as where the handoff starts.
        let stage = TransformStage::new(&config, transform, Arc::clone(&stop), hand)?;
        let sink_stage = SinkStage::new(&config, sink, handed)?;
        let transform = {
            let shared = Arc::clone(&shared);
            let label = config.label.clone();
            std::thread::Builder::new()
                .name(format!("sluice-job {label}"))
                .spawn(move || stage.run(&shared))
                .map_err(JobError::Thread)?
        };
        let sink = {
            let stop = Arc::clone(&stop);
            let shared = Arc::clone(&shared);
            tokio::spawn(async move { sink_stage.run(&stop, &shared).await })
        };
        Ok(Job {
            stop,
            shared,
            label: config.label.clone(),
            slice: config.slice,
            progress,
            transform: Some(transform),
            sink: Some(sink),
        })
    }

    /// A job in several slices: the output offsets the sink must reach for the backfill to
    /// be complete — per partition, the highest `transform_done` of all slices (only this
    /// slice's partitions are kept). Set once; later calls change nothing.
    pub fn set_sink_target(&self, target: &BTreeMap<i32, i64>) {
        if let Ok(mut current) = self.shared.sink_target.lock()
            && current.is_none()
        {
            *current = Some(
                target
                    .iter()
                    .filter(|(p, _)| self.slice.owns(**p))
                    .map(|(p, o)| (*p, *o))
                    .collect(),
            );
        }
    }

    /// The job's latest progress.
    pub fn progress(&self) -> JobProgress {
        self.progress.borrow().clone()
    }

    /// Resolves when the backfill is complete (at once if it is, never if the job ends
    /// first), so whoever reports the job's progress can report that turn without waiting
    /// for its next round.
    pub fn backfill_completed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut progress = self.progress.clone();
        async move {
            if progress.wait_for(|p| p.backfill_complete).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Whether both stages still run.
    pub fn is_running(&self) -> bool {
        self.transform.as_ref().is_some_and(|t| !t.is_finished())
            && self.sink.as_ref().is_some_and(|s| !s.is_finished())
    }

    /// Stops both stages and waits for them, each for at most [`STOP_WAIT`]: a stage that
    /// has not ended by then is left to end by itself (it stops at its next check, and what
    /// it might still write is fenced or version-guarded against its successor's writes).
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(sink) = self.sink.take()
            && tokio::time::timeout(STOP_WAIT, sink).await.is_err()
        {
            tracing::warn!(job = %self.label, "the sink did not stop within {STOP_WAIT:?}; left to end by itself");
        }
        if let Some(transform) = self.transform.take() {
            let deadline = Instant::now() + STOP_WAIT;
            while !transform.is_finished() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if transform.is_finished() {
                let _ = transform.join();
            } else {
                tracing::warn!(job = %self.label, "the transform did not stop within {STOP_WAIT:?}; left to end by itself");
            }
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads every table from its beginning up to `ends` (per topic and partition), with
/// `consumer` assigned to the tables only for the time of the load.
pub(crate) fn load_tables(
    consumer: &BaseConsumer,
    config: &JobConfig,
    ends: &BTreeMap<(String, i32), i64>,
) -> Result<Tables, JobError> {
    let started = Instant::now();
    let mut tables = Tables::new(config.state.clone(), &config.label);
    for table in &config.tables {
        let mut assignment = TopicPartitionList::new();
        let mut left = BTreeMap::new();
        for p in partitions_of(consumer, &table.topic)? {
            let (low, _) = consumer
                .fetch_watermarks(&table.topic, p, KAFKA_TIMEOUT)
                .map_err(kafka("reading the table watermarks"))?;
            let end = ends.get(&(table.topic.clone(), p)).copied().unwrap_or(low);
            if end > low {
                left.insert(p, end);
            }
            assignment
                .add_partition_offset(&table.topic, p, Offset::Offset(low))
                .map_err(kafka("assigning the table partitions"))?;
        }
        consumer
            .assign(&assignment)
            .map_err(kafka("assigning the table partitions"))?;
        let deadline = Instant::now() + KAFKA_TIMEOUT;
        while !left.is_empty() {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    let p = message.partition();
                    if left.get(&p).is_some_and(|end| message.offset() < *end) {
                        tables.apply(table, message.key(), message.payload())?;
                    }
                    if left.get(&p).is_some_and(|end| message.offset() + 1 >= *end) {
                        left.remove(&p);
                    }
                }
                Some(Err(e)) => {
                    return Err(JobError::Kafka {
                        context: "loading a table",
                        source: e,
                    });
                }
                // Compaction or a transaction marker may leave the last offset undelivered.
                None if Instant::now() > deadline => break,
                None => {
                    let positions = consumer.position().map_err(kafka("loading a table"))?;
                    left.retain(|p, end| {
                        !positions
                            .find_partition(&table.topic, *p)
                            .is_some_and(|e| matches!(e.offset(), Offset::Offset(o) if o >= *end))
                    });
                }
            }
        }
    }
    tables.flush()?;
    if tables.on_disk() {
        tracing::info!(job = %config.label, "lookup tables are kept on disk");
    } else {
        tracing::debug!(
            job = %config.label,
            bytes = tables.memory_bytes(),
            seconds = started.elapsed().as_secs_f64(),
            "lookup tables loaded"
        );
    }
    Ok(tables)
}

/// Where the backfill of `partitions` of `topic` starts and ends: per partition, the offset
/// of `from_ms` (offsets-for-times; the beginning without it, the end when nothing is that
/// recent) and the high watermark now.
pub(crate) fn backfill_bounds(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
    from_ms: Option<i64>,
) -> Result<BTreeMap<i32, (i64, i64)>, JobError> {
    let from = match from_ms {
        Some(ms) => {
            let mut wanted = TopicPartitionList::new();
            for p in partitions {
                wanted
                    .add_partition_offset(topic, *p, Offset::Offset(ms))
                    .map_err(kafka("finding the offsets of `from`"))?;
            }
            Some(
                consumer
                    .offsets_for_times(wanted, KAFKA_TIMEOUT)
                    .map_err(kafka("finding the offsets of `from`"))?,
            )
        }
        None => None,
    };
    let mut bounds = BTreeMap::new();
    for p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, *p, KAFKA_TIMEOUT)
            .map_err(kafka("reading the source watermarks"))?;
        let start = match from
            .as_ref()
            .and_then(|f| f.find_partition(topic, *p))
            .map(|e| e.offset())
        {
            Some(Offset::Offset(o)) => o.max(low),
            Some(Offset::End) => high,
            _ => low,
        };
        bounds.insert(*p, (start, high));
    }
    Ok(bounds)
}

/// The partitions of `topic`.
pub(crate) fn partitions_of(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i32>, JobError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), KAFKA_TIMEOUT)
        .map_err(kafka("reading topic metadata"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(JobError::MissingTopic(topic.to_owned()));
    }
    Ok(partitions)
}

/// The high watermark of `partitions` of `topic` (every partition when `None`), read by a
/// client of its own: a consumer that is fetching answers such requests only after its
/// fetches, which wait up to half a second per partition asked for when nothing new comes.
fn high_watermarks(
    bootstrap: &str,
    topic: &str,
    partitions: Option<Vec<i32>>,
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>, JobError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("isolation.level", "read_uncommitted")
        .set("allow.auto.create.topics", "false")
        .create()
        .map_err(kafka("creating a watermark reader"))?;
    let partitions = match partitions {
        Some(partitions) => partitions,
        None => partitions_of(&consumer, topic)?,
    };
    let mut ends = BTreeMap::new();
    for p in partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, timeout)
            .map_err(kafka("reading the output high watermarks"))?;
        ends.insert(p, high);
    }
    Ok(ends)
}

/// The end offset of every partition of the output topic.
fn output_end_offsets(config: &JobConfig) -> Result<BTreeMap<i32, i64>, JobError> {
    high_watermarks(&config.bootstrap, &config.output_topic, None, KAFKA_TIMEOUT)
}

/// Reads the output topic and applies it to the target.
struct SinkStage {
    config: JobConfig,
    consumer: Arc<CloseAside>,
    sink: Sink,
    /// Per output partition, where the sink starts: its committed offset, else the
    /// partition's first offset.
    start: BTreeMap<i32, i64>,
    /// The transform's handoff, in a job run by one process.
    handoff: Option<SinkHandoff>,
    /// The output partitions, as assigned (paused once the sink takes handed records).
    assignment: TopicPartitionList,
}

impl SinkStage {
    fn new(
        config: &JobConfig,
        sink: Sink,
        handed: Option<tokio::sync::mpsc::Receiver<Handed>>,
    ) -> Result<Self, JobError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap)
            .set("group.id", format!("{}.sink", config.group))
            // The sink needs about one batch read ahead, not librdkafka's default 64 MiB
            // of prefetched records: this bounds the job's memory beside the join state.
            .set("queued.max.messages.kbytes", "16384")
            .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("allow.auto.create.topics", "false")
            .create()
            .map_err(kafka("creating the sink consumer"))?;
        let consumer = CloseAside::new(consumer);
        let partitions: Vec<i32> = partitions_of(&consumer, &config.output_topic)?
            .into_iter()
            .filter(|p| config.slice.owns(*p))
            .collect();
        let mut all = TopicPartitionList::new();
        for p in &partitions {
            all.add_partition(&config.output_topic, *p);
        }
        let committed = consumer
            .committed_offsets(all, KAFKA_TIMEOUT)
            .map_err(kafka("reading the sink's committed offsets"))?;
        let mut assignment = TopicPartitionList::new();
        let mut start = BTreeMap::new();
        // The end of the log, past records of transactions still open (which this
        // `read_committed` consumer's watermarks would stop before): everything below it
        // is read, so a transaction of another producer open now is waited for.
        let until = match handed {
            Some(_) => high_watermarks(
                &config.bootstrap,
                &config.output_topic,
                Some(partitions.clone()),
                KAFKA_TIMEOUT,
            )?,
            None => BTreeMap::new(),
        };
        for p in partitions {
            let at = match committed
                .find_partition(&config.output_topic, p)
                .map(|e| e.offset())
            {
                Some(Offset::Offset(o)) => o,
                _ => {
                    consumer
                        .fetch_watermarks(&config.output_topic, p, KAFKA_TIMEOUT)
                        .map_err(kafka("reading the output watermarks"))?
                        .0
                }
            };
            start.insert(p, at);
            assignment
                .add_partition_offset(&config.output_topic, p, Offset::Offset(at))
                .map_err(kafka("assigning the output partitions"))?;
        }
        consumer
            .assign(&assignment)
            .map_err(kafka("assigning the output partitions"))?;
        tracing::debug!(job = %config.label, ?start, handed_from = ?until, "sink starts");
        Ok(SinkStage {
            config: config.clone(),
            consumer: Arc::new(consumer),
            sink,
            start,
            handoff: handed.map(|handed| SinkHandoff { handed, until }),
            assignment,
        })
    }

    async fn run(mut self, stop: &AtomicBool, shared: &Shared) {
        let consumer = Arc::clone(&self.consumer);
        let mut applied = 0u64;
        // Where the sink is, tracked here: the consumer reports no position for a partition
        // it has not fetched from yet.
        let mut positions = self.start.clone();
        // What the sink must have passed for the backfill to be complete, once known.
        let mut goal: Option<BTreeMap<i32, i64>> = None;
        let mut handoff = self.handoff.take();
        // Below where the handoff starts, the topic is read; records from there on are
        // handed by the transform.
        let until = handoff.as_ref().map(|h| Arc::new(h.until.clone()));
        // Whether the sink takes handed records now (it has read the topic up to `until`).
        let mut taking = false;
        // With the handoff: whether the transform has handed its backfill's last records.
        let mut handed_done = false;
        // When to ready the target for live sync (see `Sink::live`) once the backfill is
        // complete; `None` once done.
        let mut ready_at = Some(Instant::now());
        // The next batch is read (and its JSON parsed) on a blocking thread while the
        // current one is written, so the target and the broker work at the same time.
        let poll = |consumer: &Arc<CloseAside>| {
            let polling = Arc::clone(consumer);
            let until = until.clone();
            tokio::task::spawn_blocking(move || poll_batch(&polling, until.as_deref()))
        };
        let mut next = Some(poll(&consumer));
        while !stop.load(Ordering::SeqCst) {
            if !taking
                && let Some(until) = &until
                && passed(until, &positions)
            {
                // Whatever the read in flight brings lies past `until`: it is handed too.
                if let Some(reading) = next.take() {
                    let _ = reading.await;
                }
                if let Err(e) = consumer.pause(&self.assignment) {
                    tracing::warn!(job = %self.config.label, error = %e, "pausing the sink's reads");
                }
                tracing::debug!(job = %self.config.label, ?positions, "the sink takes handed records");
                taking = true;
            }
            let batch = match (&mut handoff, next.take()) {
                (Some(handoff), None) => {
                    match tokio::time::timeout(BATCH_WINDOW, handoff.handed.recv()).await {
                        Ok(Some(mut handed)) => {
                            // What else waits is written with it, as a read of the topic
                            // takes every record at hand: a sink slower than the transform
                            // then writes fewer, larger batches rather than falling behind.
                            while let Ok(more) = handoff.handed.try_recv() {
                                handed.absorb(more);
                            }
                            handed_done |= handed.backfill_done;
                            Batch::handed(handed)
                        }
                        // The transform has ended: the job is stopping or starts again,
                        // and its next start reads on from what this sink committed.
                        Ok(None) => return,
                        Err(_) => Batch::default(),
                    }
                }
                (_, Some(reading)) => {
                    let batch = reading.await;
                    next = Some(poll(&consumer));
                    match batch {
                        Ok(Ok(batch)) => batch,
                        Ok(Err(message)) => {
                            shared.progress.send_modify(|p| p.error = Some(message));
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                        Err(e) => {
                            shared
                                .progress
                                .send_modify(|p| p.error = Some(format!("sink poll: {e}")));
                            continue;
                        }
                    }
                }
                (None, None) => return,
            };
            if !batch.records.is_empty() {
                // Retried until the target takes it: nothing is skipped, so nothing is lost.
                loop {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    match self.sink.write(&batch.records).await {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::warn!(job = %self.config.label, error = %e, "sink write failed; retrying");
                            shared
                                .progress
                                .send_modify(|p| p.error = Some(format!("target: {e}")));
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
                tracing::debug!(
                    job = %self.config.label,
                    records = batch.records.len(),
                    first = ?batch.first,
                    next = ?batch.next,
                    "sink batch applied"
                );
                let mut offsets = TopicPartitionList::new();
                for (p, o) in &batch.next {
                    let _ = offsets.add_partition_offset(
                        &self.config.output_topic,
                        *p,
                        Offset::Offset(*o),
                    );
                }
                // Asynchronous (it never blocks, even while Kafka is down): the write is
                // acknowledged, so a commit lost in a crash only re-delivers records the
                // target already holds (version-guarded, a no-op), and the sink need not
                // wait a broker round trip per batch.
                if let Err(e) = consumer.commit(&offsets, CommitMode::Async) {
                    tracing::warn!(job = %self.config.label, error = %e, "sink offset commit failed");
                }
                if taking {
                    // The consumer is not read for records any more; this serves its
                    // commits' answers, which would otherwise pile up in its queue.
                    let _ = consumer.poll(Duration::ZERO);
                }
                applied += batch.records.len() as u64;
                positions.extend(batch.next.iter().map(|(p, o)| (*p, *o)));
            }
            // The consumer's position when this batch was read also moves past what is
            // never delivered: commit and abort markers, aborted records. (Taken then, not
            // now: the next batch is being read already and is not written yet.)
            for (p, o) in &batch.position {
                let known = positions.entry(*p).or_insert(*o);
                *known = (*known).max(*o);
            }
            let complete = if taking {
                handed_done
            } else {
                if goal.is_none() && until.is_none() && transform_caught_up(shared) {
                    goal = self.backfill_end().await;
                }
                goal.as_ref().is_some_and(|g| passed(g, &positions))
            };
            if complete && ready_at.is_some_and(|at| Instant::now() >= at) {
                // Before the product shows `Live`: its readers then see live records within
                // the target's live delay. A failure only delays that (the records are
                // written all the same): an unavailable target is tried again a few seconds
                // later; a refusal (rights, a missing index) would only be refused again.
                match self.sink.live().await {
                    Ok(()) => ready_at = None,
                    Err(e) if !e.is_retryable() => {
                        tracing::warn!(
                            job = %self.config.label,
                            error = %e,
                            "the target refused to be readied for live sync; it keeps its settings"
                        );
                        ready_at = None;
                    }
                    Err(e) => {
                        tracing::warn!(
                            job = %self.config.label,
                            error = %e,
                            "readying the target for live sync failed; trying again"
                        );
                        ready_at = Some(Instant::now() + READY_RETRY);
                    }
                }
            }
            let lag_ms = if batch.records.is_empty() {
                Some(0)
            } else {
                batch.newest_ms.map(|ms| {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                        .unwrap_or_default();
                    u64::try_from(now - ms).unwrap_or(0)
                })
            };
            shared.progress.send_modify(|p| {
                p.applied = applied;
                if lag_ms.is_some() {
                    p.lag_ms = lag_ms;
                }
                if complete {
                    p.backfill_complete = true;
                }
                // Read and (if anything) written: whatever failed before works again.
                p.error = None;
            });
        }
    }
}

impl SinkStage {
    /// Where the backfill ends in the output topic, asked once the transform has read every
    /// source partition to its start watermark and committed what it wrote: the **high
    /// watermark** of each output partition now, which lies past every record of every
    /// committed transaction. (Not the last *stable* offset, which stops before the last
    /// transaction while that transaction's commit markers are still being written —
    /// complete by it, the sink could miss that transaction.) `None` when Kafka does not
    /// answer; asked again on the next round.
    async fn backfill_end(&self) -> Option<BTreeMap<i32, i64>> {
        let (bootstrap, topic) = (
            self.config.bootstrap.clone(),
            self.config.output_topic.clone(),
        );
        let partitions: Vec<i32> = self.start.keys().copied().collect();
        let ends = tokio::task::spawn_blocking(move || {
            high_watermarks(&bootstrap, &topic, Some(partitions), WATERMARK_TIMEOUT)
        })
        .await;
        match ends {
            Ok(Ok(ends)) => Some(ends),
            Ok(Err(e)) => {
                tracing::warn!(job = %self.config.label, error = %e, "backfill end unknown yet");
                None
            }
            Err(_) => None,
        }
    }
}

/// Whether the transform has reached the watermarks taken at its start.
fn transform_caught_up(shared: &Shared) -> bool {
    shared
        .sink_target
        .lock()
        .map(|t| t.is_some())
        .unwrap_or(false)
}

/// Whether the sink, at `positions` (the next offset it reads, per partition), has passed
/// `goal` in every partition: everything below it is applied or was never to be delivered.
fn passed(goal: &BTreeMap<i32, i64>, positions: &BTreeMap<i32, i64>) -> bool {
    goal.iter()
        .all(|(p, end)| positions.get(p).is_some_and(|at| at >= end))
}

/// A batch read from the output topic, or handed by the transform.
#[derive(Debug, Default)]
struct Batch {
    records: Vec<SinkRecord>,
    /// The newest event time of the batch's records (ms since the epoch), as the last
    /// record of each partition's run tells it.
    newest_ms: Option<i64>,
    /// Per partition, the offset of the first record read.
    first: BTreeMap<i32, i64>,
    /// Per partition, the offset after the last record read.
    next: BTreeMap<i32, i64>,
    /// Per partition, the consumer's position when the batch was read: past its records
    /// and past the transaction markers and aborted records before them.
    position: BTreeMap<i32, i64>,
}

impl Batch {
    /// The batch of a handoff: its records' offsets tell where the sink is.
    fn handed(handed: Handed) -> Batch {
        let mut first = BTreeMap::new();
        let mut next = BTreeMap::new();
        for record in &handed.records {
            first.entry(record.partition).or_insert(record.version);
            next.insert(record.partition, record.version + 1);
        }
        Batch {
            records: handed.records,
            newest_ms: handed.newest_ms,
            first,
            next,
            position: BTreeMap::new(),
        }
    }
}

/// Reads a batch from the output topic; with `until`, only records below it (per partition):
/// those from there on are handed by the transform.
fn poll_batch(
    consumer: &BaseConsumer,
    until: Option<&BTreeMap<i32, i64>>,
) -> Result<Batch, String> {
    let deadline = Instant::now() + BATCH_WINDOW;
    let mut records = Vec::new();
    // Per partition, in the order first read: its first offset and the offset after its
    // last record. Records come in runs of one partition (a fetch's worth), so the run's
    // entry is found again only when the partition changes.
    let mut spans: Vec<(i32, i64, i64)> = Vec::new();
    let mut span = 0;
    let mut newest_ms: Option<i64> = None;
    // The last record of the current run: only it has its event time read, as the newest
    // of its run (a partition's records are in the order their events were processed), not
    // every record's headers.
    let mut last: Option<rdkafka::message::BorrowedMessage<'_>> = None;
    let mut newest = |message: &rdkafka::message::BorrowedMessage<'_>| {
        if let Some(ms) = event_ms(message) {
            newest_ms = Some(newest_ms.map_or(ms, |n: i64| n.max(ms)));
        }
    };
    // As in the transform: records at hand are taken without waiting and the clock is read
    // every `CLOCK_EVERY` records; only a poll that must wait is given the time left.
    while records.len() < SINK_BATCH {
        let polled = match consumer.poll(Duration::ZERO) {
            Some(polled) => polled,
            None => {
                let mut left = deadline.saturating_duration_since(Instant::now());
                if !records.is_empty() {
                    left = left.min(SINK_IDLE);
                }
                if left.is_zero() {
                    break;
                }
                match consumer.poll(left) {
                    Some(polled) => polled,
                    None => break,
                }
            }
        };
        match polled {
            Ok(message)
                if until.is_some_and(|u| {
                    u.get(&message.partition())
                        .is_none_or(|end| message.offset() >= *end)
                }) =>
            {
                // Handed, not read: skipped, and the clock read each time, so a batch
                // that meets only these still ends with its window.
                if Instant::now() >= deadline {
                    break;
                }
                continue;
            }
            Ok(message) => {
                let (partition, offset) = (message.partition(), message.offset());
                if spans.get(span).is_none_or(|s| s.0 != partition) {
                    span = match spans.iter().position(|s| s.0 == partition) {
                        Some(i) => i,
                        None => {
                            spans.push((partition, offset, offset + 1));
                            spans.len() - 1
                        }
                    };
                }
                spans[span].2 = offset + 1;
                let key = message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .unwrap_or_default();
                let row = match message.payload() {
                    None => None,
                    Some(bytes) => match std::str::from_utf8(bytes).ok().and_then(RowText::new) {
                        Some(row) => Some(row),
                        None => {
                            return Err(format!(
                                "output record at offset {offset} is not a JSON object"
                            ));
                        }
                    },
                };
                records.push(SinkRecord {
                    key,
                    version: offset,
                    row,
                    partition,
                });
                if let Some(before) = last.replace(message)
                    && before.partition() != partition
                {
                    newest(&before);
                }
            }
            // The records read so far are the consumer's past already: dropped here, they
            // would never be applied. They go to the target; the error, if it lasts, comes
            // back on the next poll.
            Err(e) if records.is_empty() => {
                return Err(format!("reading the output topic: {e}"));
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the output topic; applying what was read");
                break;
            }
        }
        if records.len() % CLOCK_EVERY == 0 && Instant::now() >= deadline {
            break;
        }
    }
    if let Some(last) = last.take() {
        newest(&last);
    }
    let mut position = BTreeMap::new();
    if let Ok(at) = consumer.position() {
        for e in at.elements() {
            if let Offset::Offset(o) = e.offset() {
                // Past `until` is the handoff's: the topic was read up to it, no further.
                let o = match until.and_then(|u| u.get(&e.partition())) {
                    Some(end) => o.min(*end),
                    None => o,
                };
                position.insert(e.partition(), o);
            }
        }
    }
    Ok(Batch {
        records,
        newest_ms,
        first: spans.iter().map(|&(p, first, _)| (p, first)).collect(),
        next: spans.iter().map(|&(p, _, next)| (p, next)).collect(),
        position,
    })
}

/// The header of an output record holding its source event's time (ms since the epoch, in
/// decimal). A header, not the record timestamp: output topics that delete by time would
/// otherwise drop a backfill of old events before the sink read it.
pub(crate) const EVENT_TIME_HEADER: &str = "sluice-event-ms";

/// The source event time an output record carries, if any.
fn event_ms(message: &rdkafka::message::BorrowedMessage<'_>) -> Option<i64> {
    use rdkafka::message::Headers;
    message
        .headers()?
        .iter()
        .find(|h| h.key == EVENT_TIME_HEADER)
        .and_then(|h| std::str::from_utf8(h.value?).ok()?.parse().ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::row_key;

    /// A batch read from two partitions tells, per partition, its first offset and the one
    /// after its last record, and the newest event time its partitions' last records carry.
    /// Real Kafka.
    #[tokio::test]
    async fn a_batch_tells_its_offsets_and_newest_event_time_per_partition() {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        use rdkafka::message::{Header, OwnedHeaders};
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

        let bootstrap = crate::sink::tests::service_url("SLUICE_KAFKA_BOOTSTRAP");
        let topic = crate::sink::tests::unique("sluice-poll-batch-");
        let admin: AdminClient<_> = super::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .unwrap();
        let created = admin
            .create_topics(
                &[NewTopic::new(&topic, 2, TopicReplication::Fixed(1))],
                &AdminOptions::new(),
            )
            .await
            .unwrap();
        assert!(created.iter().all(Result::is_ok), "{created:?}");
        let producer: BaseProducer = super::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .unwrap();
        let sent = [
            (0, "a", 100),
            (0, "b", 300),
            (0, "c", 200),
            (1, "d", 50),
            (1, "e", 400),
        ];
        for (partition, key, ms) in sent {
            let ms = ms.to_string();
            let row = format!(r#"{{"id":"{key}"}}"#);
            producer
                .send(
                    BaseRecord::to(&topic)
                        .partition(partition)
                        .key(key)
                        .payload(&row)
                        .headers(OwnedHeaders::new().insert(Header {
                            key: super::EVENT_TIME_HEADER,
                            value: Some(&ms),
                        })),
                )
                .unwrap();
        }
        producer.flush(super::KAFKA_TIMEOUT).unwrap();

        let consumer: super::BaseConsumer = super::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &topic)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut assignment = super::TopicPartitionList::new();
        for p in [0, 1] {
            assignment
                .add_partition_offset(&topic, p, super::Offset::Offset(0))
                .unwrap();
        }
        super::Consumer::assign(&consumer, &assignment).unwrap();
        let (mut records, mut first, mut next, mut newest) = (
            Vec::new(),
            std::collections::BTreeMap::new(),
            std::collections::BTreeMap::new(),
            None,
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while records.len() < sent.len() && std::time::Instant::now() < deadline {
            let batch = super::poll_batch(&consumer, None).unwrap();
            for (p, o) in &batch.first {
                first.entry(*p).or_insert(*o);
            }
            next.extend(batch.next.clone());
            newest = newest.max(batch.newest_ms);
            records.extend(batch.records);
        }
        let mut read: Vec<(i32, i64, String)> = records
            .iter()
            .map(|r| (r.partition, r.version, r.key.clone()))
            .collect();
        read.sort();
        assert_eq!(
            read,
            [
                (0, 0, "a".to_owned()),
                (0, 1, "b".to_owned()),
                (0, 2, "c".to_owned()),
                (1, 0, "d".to_owned()),
                (1, 1, "e".to_owned()),
            ]
        );
        assert!(records.iter().all(|r| {
            r.row
                .as_ref()
                .is_some_and(|row| row.as_str() == format!(r#"{{"id":"{}"}}"#, r.key))
        }));
        assert_eq!(first, std::collections::BTreeMap::from([(0, 0), (1, 0)]));
        assert_eq!(next, std::collections::BTreeMap::from([(0, 3), (1, 2)]));
        assert_eq!(newest, Some(400));

        // Read again with a limit (where a handoff starts): only the records below it, and
        // a position that stops at it, though the consumer read further.
        super::Consumer::assign(&consumer, &assignment).unwrap();
        let until = std::collections::BTreeMap::from([(0, 2), (1, 1)]);
        let (mut below, mut position) = (Vec::new(), std::collections::BTreeMap::new());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while position != until && std::time::Instant::now() < deadline {
            let batch = super::poll_batch(&consumer, Some(&until)).unwrap();
            assert!(
                batch.position.iter().all(|(p, o)| *o <= until[p]),
                "{batch:?}"
            );
            position.extend(batch.position);
            below.extend(batch.records.iter().map(|r| (r.partition, r.version)));
        }
        below.sort_unstable();
        assert_eq!(below, [(0, 0), (0, 1), (1, 0)]);
        assert_eq!(position, until);
        let _ = admin
            .delete_topics(&[topic.as_str()], &AdminOptions::new())
            .await;
    }

    /// The key is read as a parsed row would give it, and what is not a JSON object is
    /// told apart.
    #[test]
    fn a_table_row_key_is_read_without_parsing_the_row() {
        let key = |row: &str| row_key(row.as_bytes(), "id");
        let text = |k: &str| Some(Some(k.to_owned()));
        assert_eq!(key(r#"{"name": "Ada", "id": "c-1"}"#), text("c-1"));
        assert_eq!(
            key(r#"{"id": 42, "tags": [1, {"id": "inner"}]}"#),
            text("42")
        );
        assert_eq!(key(r#"{"tags": {"id": "inner"}, "id": -7}"#), text("-7"));
        assert_eq!(key(r#"{"i\u0064": "escaped name"}"#), text("escaped name"));
        assert_eq!(key(r#"{"id": "first", "id": "last"}"#), text("last"));
        assert_eq!(key(r#"{"id": "a\"b"}"#), text("a\"b"));
        // No usable key: the row has no partner key.
        for row in [
            r#"{"name": "Ada"}"#,
            r#"{"id": null}"#,
            r#"{"id": {"x": 1}}"#,
            r#"{"id": true}"#,
            "{}",
        ] {
            assert_eq!(key(row), Some(None), "{row}");
        }
        // Not a JSON object.
        for row in [
            "[1, 2]",
            "\"id\"",
            "12",
            "{\"id\": \"c-1\"",
            "{\"id\": \"c-1\"} x",
            "not json",
            "",
        ] {
            assert_eq!(key(row), None, "{row}");
        }
        // The same as parsing the row whole.
        let row = r#"{"id": 1.5, "n": "x"}"#;
        let parsed: serde_json::Value = serde_json::from_str(row).unwrap();
        assert_eq!(key(row), Some(super::key_text(parsed.get("id"))));
    }
}
