//! One product version's stream job: a **transform** stage that reads the source from `from`,
//! applies the compiled spec and writes each result to the product's output topic in Kafka
//! transactions together with its source offsets (exactly once into the output topic), and a
//! **sink** stage that reads the output topic (`read_committed`) and applies it to the target,
//! using each record's output offset as the key's version, committing its offsets only after
//! the target acknowledged. Why this is exact: `docs/jobs.md`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde::Serialize;
use tokio::sync::watch;

use crate::sink::{Sink, SinkRecord};
use crate::transform::{CompiledProduct, Emit};

/// How long a Kafka call of the job may take.
pub(crate) const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);
/// Records per transaction, at most. Each commit costs a near-constant ~100 ms with the
/// local broker (measured: `send_offsets_to_transaction` a few ms, `commit_transaction`
/// ~100 ms whatever the size), so larger transactions amortise it: 50,000 gave 27.7k
/// events/s against 22.6k for 10,000 in `backfill_join` (500k events), for ~80 MiB more RSS.
const BATCH: usize = 50_000;
/// Records per sink batch, at most: large enough for the COPY path, small enough that two
/// batches (one written, one read ahead) stay a few tens of MiB.
const SINK_BATCH: usize = 20_000;
/// How long a batch waits to fill.
const BATCH_WINDOW: Duration = Duration::from_millis(100);

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

/// The current rows of the lookup tables: by alias, by join-key value.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    rows: BTreeMap<String, std::collections::HashMap<String, serde_json::Value>>,
}

/// What `propagate` needs: the latest stream record of each product key, and which product
/// keys each table row was joined with.
#[derive(Debug, Default)]
struct Joined {
    /// Product key → (record key, value) of its latest stream record.
    latest: std::collections::HashMap<String, (Option<Vec<u8>>, serde_json::Value)>,
    /// Product key → the (alias, join key) pairs its latest record was joined with.
    partners: std::collections::HashMap<String, Vec<(String, String)>>,
    /// (alias, join key) → the product keys joined with that table row.
    by_partner: std::collections::HashMap<(String, String), std::collections::BTreeSet<String>>,
}

impl Joined {
    /// Records that `key`'s latest record is `record`, joined with `partners`
    /// (`None`: a tombstone; the key is forgotten).
    fn remember(
        &mut self,
        key: &str,
        record: Option<(Option<Vec<u8>>, serde_json::Value)>,
        partners: Vec<(String, String)>,
    ) {
        for old in self.partners.remove(key).unwrap_or_default() {
            if let Some(keys) = self.by_partner.get_mut(&old) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_partner.remove(&old);
                }
            }
        }
        match record {
            Some(record) => {
                for partner in &partners {
                    self.by_partner
                        .entry(partner.clone())
                        .or_default()
                        .insert(key.to_owned());
                }
                self.latest.insert(key.to_owned(), record);
                self.partners.insert(key.to_owned(), partners);
            }
            None => {
                self.latest.remove(key);
            }
        }
    }

    /// The product keys joined with row `key` of table `alias`.
    fn joined_with(&self, alias: &str, key: &str) -> Vec<String> {
        self.by_partner
            .get(&(alias.to_owned(), key.to_owned()))
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl Tables {
    /// Applies one table record: an upsert of its row, or a tombstone removing the row
    /// whose key the record key holds.
    /// Returns the join key of the row that changed.
    pub(crate) fn apply(
        &mut self,
        table: &TableSource,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
    ) -> Option<String> {
        let rows = self.rows.entry(table.alias.clone()).or_default();
        match payload.and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok()) {
            Some(row) => {
                let k = key_text(row.get(&table.key_field))?;
                rows.insert(k.clone(), row);
                Some(k)
            }
            None if payload.is_none() => {
                let k = key.map(|k| String::from_utf8_lossy(k).into_owned())?;
                rows.remove(&k);
                Some(k)
            }
            // A table record that is not JSON cannot be looked up: skipped, and counted
            // nowhere, as it is not an input row of the product.
            None => None,
        }
    }

    pub(crate) fn get(&self, alias: &str, key: &str) -> Option<&serde_json::Value> {
        self.rows.get(alias).and_then(|rows| rows.get(key))
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
    /// The transform thread could not be started.
    #[error("cannot start the transform thread")]
    Thread(#[source] std::io::Error),
    /// A topic the job needs does not exist.
    #[error("topic `{0}` does not exist")]
    MissingTopic(String),
}

fn kafka(context: &'static str) -> impl FnOnce(rdkafka::error::KafkaError) -> JobError {
    move |source| JobError::Kafka { context, source }
}

/// A running job. Dropping it stops it (without waiting).
pub struct Job {
    stop: Arc<AtomicBool>,
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
    /// Set by the transform when it reached its start watermarks: the output topic's end
    /// offsets at that moment, which the sink must reach.
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
            sources: vec![SourceProgress {
                source: transform.source().to_owned(),
                ..SourceProgress::default()
            }],
            ..JobProgress::default()
        });
        let shared = Arc::new(Shared {
            progress: sender,
            sink_target: std::sync::Mutex::new(None),
        });
        let stage = TransformStage::new(&config, transform)?;
        let sink_stage = SinkStage::new(&config, sink)?;
        let transform = {
            let stop = Arc::clone(&stop);
            let shared = Arc::clone(&shared);
            let label = config.label.clone();
            std::thread::Builder::new()
                .name(format!("sluice-job {label}"))
                .spawn(move || stage.run(&stop, &shared))
                .map_err(JobError::Thread)?
        };
        let sink = {
            let stop = Arc::clone(&stop);
            let shared = Arc::clone(&shared);
            tokio::spawn(async move { sink_stage.run(&stop, &shared).await })
        };
        Ok(Job {
            stop,
            progress,
            transform: Some(transform),
            sink: Some(sink),
        })
    }

    /// The job's latest progress.
    pub fn progress(&self) -> JobProgress {
        self.progress.borrow().clone()
    }

    /// Whether both stages still run.
    pub fn is_running(&self) -> bool {
        self.transform.as_ref().is_some_and(|t| !t.is_finished())
            && self.sink.as_ref().is_some_and(|s| !s.is_finished())
    }

    /// Stops both stages and waits for them.
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(sink) = self.sink.take() {
            let _ = sink.await;
        }
        if let Some(transform) = self.transform.take() {
            let _ = tokio::task::spawn_blocking(move || transform.join()).await;
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads the source, transforms, writes to the output topic in transactions.
struct TransformStage {
    config: JobConfig,
    transform: CompiledProduct,
    consumer: BaseConsumer,
    producer: BaseProducer,
    /// Per source partition: (start offset, high watermark at start).
    bounds: BTreeMap<i32, (i64, i64)>,
    /// The lookup tables, loaded before the stream is assigned.
    tables: std::cell::RefCell<Tables>,
    /// For `propagate`: what each product key was last joined with.
    joined: std::cell::RefCell<Joined>,
    /// Whether any lookup propagates.
    propagates: bool,
}

impl TransformStage {
    fn new(config: &JobConfig, transform: CompiledProduct) -> Result<Self, JobError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap)
            .set("group.id", format!("{}.transform", config.group))
            // A transaction's worth of records read ahead is enough (see the sink's).
            .set("queued.max.messages.kbytes", "16384")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("allow.auto.create.topics", "false")
            .create()
            .map_err(kafka("creating the source consumer"))?;
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap)
            .set("transactional.id", format!("{}.transform", config.group))
            .set("allow.auto.create.topics", "false")
            .create()
            .map_err(kafka("creating the transactional producer"))?;
        producer
            .init_transactions(KAFKA_TIMEOUT)
            .map_err(kafka("initialising transactions"))?;

        let partitions = partitions_of(&consumer, &config.source_topic)?;
        let mut all = TopicPartitionList::new();
        for p in &partitions {
            all.add_partition(&config.source_topic, *p);
        }
        let committed = consumer
            .committed_offsets(all, KAFKA_TIMEOUT)
            .map_err(kafka("reading the job's committed source offsets"))?;
        let from = match config.from_ms {
            Some(ms) => {
                let mut wanted = TopicPartitionList::new();
                for p in &partitions {
                    wanted
                        .add_partition_offset(&config.source_topic, *p, Offset::Offset(ms))
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
        let mut resumed_at = BTreeMap::new();
        let mut assignment = TopicPartitionList::new();
        for p in partitions {
            let (low, high) = consumer
                .fetch_watermarks(&config.source_topic, p, KAFKA_TIMEOUT)
                .map_err(kafka("reading the source watermarks"))?;
            let resumed = committed
                .find_partition(&config.source_topic, p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            let start_of_backfill = match from
                .as_ref()
                .and_then(|f| f.find_partition(&config.source_topic, p))
                .map(|e| e.offset())
            {
                Some(Offset::Offset(o)) => o.max(low),
                Some(Offset::End) => high,
                _ => low,
            };
            let position = resumed.unwrap_or(start_of_backfill);
            bounds.insert(p, (start_of_backfill, high));
            if position > start_of_backfill {
                resumed_at.insert(p, (start_of_backfill, position));
            }
            assignment
                .add_partition_offset(&config.source_topic, p, Offset::Offset(position))
                .map_err(kafka("assigning the source partitions"))?;
        }
        // Tables first: read up to the offsets the job committed (else to their high
        // watermarks) before any stream record is joined, so backfilled rows see the tables
        // as they were at load time, never empty; reading goes on from there.
        let mut table_ends = BTreeMap::new();
        let mut uncommitted_tables = false;
        for table in &config.tables {
            let mut all = TopicPartitionList::new();
            let partitions = partitions_of(&consumer, &table.topic)?;
            for p in &partitions {
                all.add_partition(&table.topic, *p);
            }
            let committed = consumer
                .committed_offsets(all, KAFKA_TIMEOUT)
                .map_err(kafka("reading the job's committed table offsets"))?;
            for p in partitions {
                let end = match committed
                    .find_partition(&table.topic, p)
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(o)) => o,
                    _ => {
                        uncommitted_tables = true;
                        consumer
                            .fetch_watermarks(&table.topic, p, KAFKA_TIMEOUT)
                            .map_err(kafka("reading the table watermarks"))?
                            .1
                    }
                };
                table_ends.insert((table.topic.clone(), p), end);
                assignment
                    .add_partition_offset(&table.topic, p, Offset::Offset(end))
                    .map_err(kafka("assigning the table partitions"))?;
            }
        }
        let tables = load_tables(&consumer, config, &table_ends)?;
        let propagates = transform.lookups().iter().any(|l| l.propagate);
        let stage = TransformStage {
            config: config.clone(),
            transform,
            consumer,
            producer,
            bounds,
            tables: std::cell::RefCell::new(tables),
            joined: std::cell::RefCell::new(Joined::default()),
            propagates,
        };
        if propagates {
            stage.rebuild_joined(&resumed_at)?;
        }
        stage
            .consumer
            .assign(&assignment)
            .map_err(kafka("assigning the source partitions"))?;
        if uncommitted_tables {
            // Record how far the tables were loaded, so a restart loads them to the same
            // point and propagates every later change, even one made while it was down.
            let metadata = stage.consumer.group_metadata().ok_or(JobError::Kafka {
                context: "recording the table load",
                source: rdkafka::error::KafkaError::Canceled,
            })?;
            stage
                .producer
                .begin_transaction()
                .and_then(|()| {
                    stage.producer.send_offsets_to_transaction(
                        &assignment,
                        &metadata,
                        KAFKA_TIMEOUT,
                    )
                })
                .and_then(|()| stage.producer.commit_transaction(KAFKA_TIMEOUT))
                .map_err(kafka("recording the table load"))?;
        }
        Ok(stage)
    }

    /// Rebuilds what `propagate` needs after a restart: the stream records the job already
    /// processed (from the backfill start to the committed offsets), read again without
    /// writing anything.
    fn rebuild_joined(&self, resumed_at: &BTreeMap<i32, (i64, i64)>) -> Result<(), JobError> {
        if resumed_at.is_empty() {
            return Ok(());
        }
        let mut assignment = TopicPartitionList::new();
        for (p, (start, _)) in resumed_at {
            assignment
                .add_partition_offset(&self.config.source_topic, *p, Offset::Offset(*start))
                .map_err(kafka("re-reading the processed stream"))?;
        }
        self.consumer
            .assign(&assignment)
            .map_err(kafka("re-reading the processed stream"))?;
        let mut left: BTreeMap<i32, i64> =
            resumed_at.iter().map(|(p, (_, end))| (*p, *end)).collect();
        let deadline = Instant::now() + KAFKA_TIMEOUT * 4;
        while !left.is_empty() && Instant::now() < deadline {
            match self.consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    let p = message.partition();
                    let Some(end) = left.get(&p).copied() else {
                        continue;
                    };
                    if message.offset() < end {
                        let value = message
                            .payload()
                            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok());
                        if message.payload().is_none() || value.is_some() {
                            // Errors were dead-lettered the first time; nothing to remember.
                            let _ = self.transform_one(message.key(), value);
                        }
                    }
                    if message.offset() + 1 >= end {
                        left.remove(&p);
                    }
                }
                Some(Err(e)) => {
                    return Err(JobError::Kafka {
                        context: "re-reading the processed stream",
                        source: e,
                    });
                }
                None => {}
            }
        }
        Ok(())
    }

    fn run(self, stop: &AtomicBool, shared: &Shared) {
        let started = Instant::now();
        let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
        if let Ok(assigned) = self.consumer.position() {
            for e in assigned.elements_for_topic(&self.config.source_topic) {
                if let Offset::Offset(o) = e.offset() {
                    positions.insert(e.partition(), o);
                }
            }
        }
        let mut dead_letters = 0u64;
        let mut first_done: Option<u64> = None;
        while !stop.load(Ordering::SeqCst) {
            match self.one_batch(&mut positions, &mut dead_letters) {
                Ok(()) => {}
                Err(message) => {
                    // The transaction was aborted. The job ends here and is started again
                    // from what was committed (offsets, tables, join state): the one path
                    // that rebuilds state, used at every start.
                    tracing::warn!(job = %self.config.label, "{message}; restarting the job");
                    shared.progress.send_modify(|p| p.error = Some(message));
                    return;
                }
            }
            let (done, total) = self.backfilled(&positions);
            let first = *first_done.get_or_insert(done);
            let elapsed = started.elapsed().as_secs_f64();
            let rate = (elapsed > 0.5).then(|| (done.saturating_sub(first)) as f64 / elapsed);
            let eta = rate
                .filter(|r| *r > 0.0)
                .map(|r| ((total.saturating_sub(done)) as f64 / r).ceil() as u64);
            let caught_up = done >= total;
            if caught_up
                && shared
                    .sink_target
                    .lock()
                    .map(|t| t.is_none())
                    .unwrap_or(false)
            {
                match output_end_offsets(&self.consumer, &self.config.output_topic) {
                    Ok(end) => {
                        if let Ok(mut target) = shared.sink_target.lock() {
                            *target = Some(end);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(job = %self.config.label, error = %e, "output watermarks")
                    }
                }
            }
            shared.progress.send_modify(|p| {
                if let Some(source) = p.sources.first_mut() {
                    source.done = done;
                    source.total = total;
                    source.rate = rate;
                    source.eta_seconds = if caught_up { Some(0) } else { eta };
                }
                p.dead_letters = dead_letters;
                p.error = None;
            });
        }
    }

    /// Events done and to do of the backfill, from the positions.
    fn backfilled(&self, positions: &BTreeMap<i32, i64>) -> (u64, u64) {
        let mut done = 0u64;
        let mut total = 0u64;
        for (p, (start, high)) in &self.bounds {
            let span = u64::try_from(high - start).unwrap_or(0);
            let at = positions.get(p).copied().unwrap_or(*start).min(*high);
            done += u64::try_from(at - start).unwrap_or(0);
            total += span;
        }
        (done, total)
    }

    /// Reads up to a batch, writes it and its source offsets in one transaction.
    fn one_batch(
        &self,
        positions: &mut BTreeMap<i32, i64>,
        dead_letters: &mut u64,
    ) -> Result<(), String> {
        let deadline = Instant::now() + BATCH_WINDOW;
        let mut messages = Vec::new();
        while messages.len() < BATCH {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.consumer.poll(left) {
                Some(Ok(message)) => messages.push(message.detach()),
                Some(Err(e)) => return Err(format!("reading the source: {e}")),
                None => break,
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        if messages.is_empty() {
            return Ok(());
        }
        self.producer
            .begin_transaction()
            .map_err(|e| format!("beginning a transaction: {e}"))?;
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let mut table_next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        let mut rejected = 0u64;
        for message in &messages {
            if let Some(table) = self
                .config
                .tables
                .iter()
                .find(|t| t.topic == message.topic())
            {
                table_next.insert(
                    (table.topic.clone(), message.partition()),
                    message.offset() + 1,
                );
                let changed =
                    self.tables
                        .borrow_mut()
                        .apply(table, message.key(), message.payload());
                if let Some(row) = changed
                    && self.propagates_from(&table.alias)
                {
                    self.propagate(&table.alias, &row)?;
                }
                continue;
            }
            next.insert(message.partition(), message.offset() + 1);
            let value = match message.payload() {
                None => Ok(None),
                Some(bytes) => serde_json::from_slice::<serde_json::Value>(bytes)
                    .map(Some)
                    .map_err(|e| format!("the value is not JSON: {e}")),
            };
            let outcome = value.and_then(|value| self.transform_one(message.key(), value));
            match outcome {
                Ok(Some(Emit { key, row })) => {
                    self.emit(&key, row, message.timestamp().to_millis())?;
                }
                Ok(None) => {}
                Err(reason) => {
                    rejected += 1;
                    let headers = OwnedHeaders::new()
                        .insert(Header {
                            key: "sluice-error",
                            value: Some(reason.as_str()),
                        })
                        .insert(Header {
                            key: "sluice-source-topic",
                            value: Some(self.config.source_topic.as_str()),
                        })
                        .insert(Header {
                            key: "sluice-source-partition",
                            value: Some(&message.partition().to_string()),
                        })
                        .insert(Header {
                            key: "sluice-source-offset",
                            value: Some(&message.offset().to_string()),
                        });
                    let mut record: BaseRecord<'_, [u8], [u8]> =
                        BaseRecord::to(&self.config.dead_letter_topic).headers(headers);
                    if let Some(key) = message.key() {
                        record = record.key(key);
                    }
                    if let Some(payload) = message.payload() {
                        record = record.payload(payload);
                    }
                    self.send(record)?;
                }
            }
        }
        let mut offsets = TopicPartitionList::new();
        for (p, o) in &next {
            offsets
                .add_partition_offset(&self.config.source_topic, *p, Offset::Offset(*o))
                .map_err(|e| format!("recording offsets: {e}"))?;
        }
        // Table offsets are committed too: a restart loads each table up to them and reads
        // on from there, so a table change is propagated exactly once.
        for ((topic, p), o) in &table_next {
            offsets
                .add_partition_offset(topic, *p, Offset::Offset(*o))
                .map_err(|e| format!("recording offsets: {e}"))?;
        }
        let metadata = self
            .consumer
            .group_metadata()
            .ok_or_else(|| "the source consumer has no group metadata".to_owned())?;
        let committed = if offsets.count() == 0 {
            self.producer.commit_transaction(KAFKA_TIMEOUT)
        } else {
            self.producer
                .send_offsets_to_transaction(&offsets, &metadata, KAFKA_TIMEOUT)
                .and_then(|()| self.producer.commit_transaction(KAFKA_TIMEOUT))
        };
        if let Err(e) = committed {
            let _ = self.producer.abort_transaction(KAFKA_TIMEOUT);
            return Err(format!("committing a transaction: {e}"));
        }
        positions.extend(next);
        *dead_letters += rejected;
        Ok(())
    }

    /// Transforms one stream record (`value` `None`: a tombstone), remembering what it was
    /// joined with when lookups propagate.
    fn transform_one(
        &self,
        record_key: Option<&[u8]>,
        value: Option<serde_json::Value>,
    ) -> Result<Option<Emit>, String> {
        let tables = self.tables.borrow();
        let lookup = |alias: &str, key: &str| tables.get(alias, key);
        let mut partners = Vec::new();
        let emitted = self
            .transform
            .apply_traced(record_key, value.as_ref(), &lookup, &mut partners)
            .map_err(|e| e.reason())?;
        drop(tables);
        if self.propagates
            && let Some(Emit { key, .. }) = &emitted
        {
            let record = value.map(|v| (record_key.map(<[u8]>::to_vec), v));
            self.joined.borrow_mut().remember(key, record, partners);
        }
        Ok(emitted)
    }

    /// Whether changes of table `alias` are propagated.
    fn propagates_from(&self, alias: &str) -> bool {
        self.transform
            .lookups()
            .iter()
            .any(|l| l.alias == alias && l.propagate)
    }

    /// Computes again the output rows joined with row `row` of table `alias`.
    fn propagate(&self, alias: &str, row: &str) -> Result<(), String> {
        let keys = self.joined.borrow().joined_with(alias, row);
        for key in keys {
            let Some((record_key, value)) = self.joined.borrow().latest.get(&key).cloned() else {
                continue;
            };
            match self.transform_one(record_key.as_deref(), Some(value)) {
                Ok(Some(Emit { key, row })) => self.emit(&key, row, None)?,
                Ok(None) => {}
                // The record transformed before; with the new partner it does not (a type
                // the table now holds): its key has no row rather than a stale one.
                Err(reason) => {
                    tracing::warn!(job = %self.config.label, %key, %reason, "propagation failed");
                    self.emit(&key, None, None)?;
                }
            }
        }
        Ok(())
    }

    /// Writes the result for `key` to the output topic (in the open transaction).
    /// `event_ms` is the source event's time, carried to the output record so the sink can
    /// tell how far behind the events the target is.
    fn emit(
        &self,
        key: &str,
        row: Option<serde_json::Map<String, serde_json::Value>>,
        event_ms: Option<i64>,
    ) -> Result<(), String> {
        let payload = row.map(|r| serde_json::Value::Object(r).to_string());
        let mut record: BaseRecord<'_, str, str> = BaseRecord::to(&self.config.output_topic);
        if let Some(ms) = event_ms {
            record = record.timestamp(ms);
        }
        if !self.config.append {
            record = record.key(key);
        }
        if let Some(payload) = payload.as_deref() {
            record = record.payload(payload);
        }
        self.send(record)
    }

    /// Sends one record, waiting while the producer's queue is full.
    fn send<K, P>(&self, record: BaseRecord<'_, K, P>) -> Result<(), String>
    where
        K: rdkafka::message::ToBytes + ?Sized,
        P: rdkafka::message::ToBytes + ?Sized,
    {
        let mut record = record;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    self.producer.poll(Duration::from_millis(50));
                    record = back;
                }
                Err((e, _)) => return Err(format!("producing: {e}")),
            }
        }
    }
}

/// Reads every table from its beginning up to `ends` (per topic and partition), with
/// `consumer` assigned to the tables only for the time of the load.
pub(crate) fn load_tables(
    consumer: &BaseConsumer,
    config: &JobConfig,
    ends: &BTreeMap<(String, i32), i64>,
) -> Result<Tables, JobError> {
    let mut tables = Tables::default();
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
                        tables.apply(table, message.key(), message.payload());
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
    Ok(tables)
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

/// The end offset of every partition of the output topic.
fn output_end_offsets(
    consumer: &BaseConsumer,
    topic: &str,
) -> Result<BTreeMap<i32, i64>, JobError> {
    let mut ends = BTreeMap::new();
    for p in partitions_of(consumer, topic)? {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, KAFKA_TIMEOUT)
            .map_err(kafka("reading the output watermarks"))?;
        ends.insert(p, high);
    }
    Ok(ends)
}

/// Reads the output topic and applies it to the target.
struct SinkStage {
    config: JobConfig,
    consumer: Arc<BaseConsumer>,
    sink: Sink,
    /// Per output partition, where the sink starts: its committed offset, else the
    /// partition's first offset.
    start: BTreeMap<i32, i64>,
}

impl SinkStage {
    fn new(config: &JobConfig, sink: Sink) -> Result<Self, JobError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap)
            .set("group.id", format!("{}.sink", config.group))
            // The sink needs about one batch read ahead, not librdkafka's default 64 MiB
            // of prefetched records: this bounds the job's memory beside the join state.
            .set("queued.max.messages.kbytes", "16384")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("allow.auto.create.topics", "false")
            .create()
            .map_err(kafka("creating the sink consumer"))?;
        let partitions = partitions_of(&consumer, &config.output_topic)?;
        let mut all = TopicPartitionList::new();
        for p in &partitions {
            all.add_partition(&config.output_topic, *p);
        }
        let committed = consumer
            .committed_offsets(all, KAFKA_TIMEOUT)
            .map_err(kafka("reading the sink's committed offsets"))?;
        let mut assignment = TopicPartitionList::new();
        let mut start = BTreeMap::new();
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
        Ok(SinkStage {
            config: config.clone(),
            consumer: Arc::new(consumer),
            sink,
            start,
        })
    }

    async fn run(self, stop: &AtomicBool, shared: &Shared) {
        let consumer = Arc::clone(&self.consumer);
        let mut applied = 0u64;
        // Where the sink is, tracked here: the consumer reports no position for a partition
        // it has not fetched from yet.
        let mut positions = self.start.clone();
        // The next batch is read (and its JSON parsed) on a blocking thread while the
        // current one is written, so the target and the broker work at the same time.
        let poll = |consumer: &Arc<BaseConsumer>| {
            let polling = Arc::clone(consumer);
            tokio::task::spawn_blocking(move || poll_batch(&polling))
        };
        let mut next = poll(&consumer);
        while !stop.load(Ordering::SeqCst) {
            let batch = next.await;
            next = poll(&consumer);
            let batch = match batch {
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
                let mut offsets = TopicPartitionList::new();
                for (p, o) in &batch.next {
                    let _ = offsets.add_partition_offset(
                        &self.config.output_topic,
                        *p,
                        Offset::Offset(*o),
                    );
                }
                // Asynchronous: the write is acknowledged, so a commit lost in a crash only
                // re-delivers records the target already holds (version-guarded, a no-op),
                // and the sink need not wait a broker round trip per batch.
                if let Err(e) = consumer.commit(&offsets, CommitMode::Async) {
                    tracing::warn!(job = %self.config.label, error = %e, "sink offset commit failed");
                }
                applied += batch.records.len() as u64;
                positions.extend(batch.next.iter().map(|(p, o)| (*p, *o)));
            }
            let complete = caught_up(&positions, shared);
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
                if !batch.records.is_empty() {
                    p.error = None;
                }
            });
        }
    }
}

/// Whether the sink, at `positions`, applied everything the transform wrote up to the end
/// of its backfill.
fn caught_up(positions: &BTreeMap<i32, i64>, shared: &Shared) -> bool {
    let Ok(target) = shared.sink_target.lock() else {
        return false;
    };
    let Some(target) = target.as_ref() else {
        return false;
    };
    target.iter().all(|(p, end)| {
        // The last offset of a partition is a transaction marker, never delivered.
        let at = positions.get(p).copied().unwrap_or(0);
        *end == 0 || at >= end - 1
    })
}

/// A batch read from the output topic.
struct Batch {
    records: Vec<SinkRecord>,
    /// The newest event time of the batch's records (ms since the epoch).
    newest_ms: Option<i64>,
    /// Per partition, the offset after the last record read.
    next: BTreeMap<i32, i64>,
}

fn poll_batch(consumer: &BaseConsumer) -> Result<Batch, String> {
    let deadline = Instant::now() + BATCH_WINDOW;
    let mut records = Vec::new();
    let mut next = BTreeMap::new();
    let mut newest_ms: Option<i64> = None;
    while records.len() < SINK_BATCH {
        let left = deadline.saturating_duration_since(Instant::now());
        match consumer.poll(left) {
            Some(Ok(message)) => {
                next.insert(message.partition(), message.offset() + 1);
                if let Some(ms) = message.timestamp().to_millis() {
                    newest_ms = Some(newest_ms.map_or(ms, |n| n.max(ms)));
                }
                let key = message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .unwrap_or_default();
                let row = match message.payload() {
                    None => None,
                    Some(bytes) => match serde_json::from_slice::<serde_json::Value>(bytes) {
                        Ok(serde_json::Value::Object(map)) => Some(map),
                        _ => {
                            return Err(format!(
                                "output record at offset {} is not a JSON object",
                                message.offset()
                            ));
                        }
                    },
                };
                records.push(SinkRecord {
                    key,
                    version: message.offset(),
                    row,
                    partition: message.partition(),
                });
            }
            Some(Err(e)) => return Err(format!("reading the output topic: {e}")),
            None => break,
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    Ok(Batch {
        records,
        newest_ms,
        next,
    })
}
