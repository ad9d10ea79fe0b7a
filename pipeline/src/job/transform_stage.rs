//! The transform stage of a job: reads the product's streams (the driving source and, with a
//! window join, the joined stream) and its lookup tables, transforms, and writes each result
//! to the output topic in Kafka transactions together with the offsets that produced it.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value as Json;
use sluice_provisioners::kafka::CloseAside;

use super::{
    BATCH, BATCH_WINDOW, CLOCK_EVERY, EVENT_TIME_HEADER, FETCH_QUEUE_BACKOFF_MS, JobConfig,
    JobError, JobSlice, KAFKA_TIMEOUT, Shared, Tables, backfill_bounds, kafka, key_text,
    load_tables, output_end_offsets, partitions_of,
};
use typed_arena::Arena;

use super::bounded_call::bounded_call;
use super::handoff::{Delivered, Handed, JobProducer, NOT_HANDED, Produced, pair};
use super::joined::Joined;
use crate::state::StateError;
use crate::transform::{CompiledProduct, Emitted, RowJson};
use crate::window::{Side, WindowState};

/// What a record means for the target, its row as the JSON text the output topic gets.
type Emit = Emitted<RowJson>;

/// How long a failed transaction's abort may take. The abort is a courtesy: the job ends
/// after it and its next start's `init_transactions` aborts whatever is still open, so
/// waiting the full Kafka timeout (while the broker is away, all of it) only delays the
/// restart — by up to 30 s in the Kafka-outage tests.
const ABORT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a transaction's offsets and commit are waited for: both calls' timeouts and a
/// margin (see [`bounded_call`]).
const COMMIT_BOUND: Duration = Duration::from_secs(2 * KAFKA_TIMEOUT.as_secs() + 5);
/// At most this many threads transform a run of driving records.
const MAX_WORKERS: usize = 4;
/// A run of driving records gets a thread more for each this many records: a few records
/// (live traffic) are not worth starting a thread for.
const MIN_RUN_PER_WORKER: usize = 512;
/// Index of the driving stream in [`TransformStage::streams`].
const DRIVING: usize = 0;
/// Index of the window-joined stream, when there is one.
const JOINED: usize = 1;

/// One stream the stage reads.
#[derive(Debug)]
struct Stream {
    topic: String,
    /// The dataset field holding the event time; `None`: the Kafka record timestamp.
    time_field: Option<String>,
    /// Per partition: (start offset of the backfill, high watermark at start).
    bounds: BTreeMap<i32, (i64, i64)>,
}

/// Why a driving record is transformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// A record read for the first time: it joins, is kept for later partners, and its
    /// results are written.
    Live,
    /// A record processed before a restart, read again to rebuild the state: kept, nothing
    /// written (its results already are).
    Replay,
    /// A kept record computed again because a table row it was joined with changed.
    Recompute,
}

/// Reads the streams, transforms, writes to the output topic in transactions.
pub(super) struct TransformStage {
    config: JobConfig,
    transform: CompiledProduct,
    consumer: CloseAside,
    /// Shared with a transactional call left to end by itself ([`bounded_call`]).
    producer: Arc<JobProducer>,
    /// Where committed output records go to the sink of this process, when they do (a job
    /// in one slice; see [`super::handoff`]).
    handoff: Option<tokio::sync::mpsc::Sender<Handed>>,
    /// The open transaction's output records, kept for the handoff.
    produced: RefCell<Vec<Produced>>,
    /// The driving stream, then the window-joined one.
    streams: Vec<Stream>,
    /// The top-level fields of a driving record the job reads, when not all of them: what
    /// the product's expressions read and, with a window join, the event-time field.
    driving_fields: Option<Vec<String>>,
    /// The lookup tables, loaded before the streams are assigned.
    tables: RefCell<Tables>,
    /// For `propagate`: what each product key was last joined with.
    joined: RefCell<Joined>,
    /// Whether any lookup propagates.
    propagates: bool,
    /// The window join's state, with a window join.
    window: Option<RefCell<WindowState>>,
    /// The stream paused to let the other catch up in event time, if any.
    paused: Cell<Option<usize>>,
    /// A failure of the table store met while transforming: the batch is not committed.
    broken: RefCell<Option<StateError>>,
    /// Where each stream partition was assigned from (the consumer tells no position for a
    /// partition before it fetched from it).
    assigned: BTreeMap<(usize, i32), i64>,
    /// Set when the job is stopped: waits for the broker (records to deliver, room in the
    /// producer's queue) end then, so a job whose Kafka is away stops promptly.
    stop: Arc<AtomicBool>,
    /// How many threads may transform a run of driving records
    /// ([`TransformStage::transform_run`]); `None` when records must be transformed in
    /// turn, each seeing what the one before changed (a window join, propagation).
    workers: Option<usize>,
}

/// A record's value parsed (with only `fields`, when `Some`); `None` for a tombstone.
fn parsed_value(
    message: &BorrowedMessage<'_>,
    fields: Option<&[String]>,
) -> Result<Option<Json>, String> {
    message
        .payload()
        .map(|bytes| {
            crate::projected::parse(bytes, fields)
                .map_err(|e| format!("the value is not JSON: {e}"))
        })
        .transpose()
}

/// The side of a window join stream `i` is.
fn side_of(i: usize) -> Side {
    if i == DRIVING {
        Side::Driving
    } else {
        Side::Joined
    }
}

/// Where a job starts reading a stream.
struct StreamStart {
    bounds: BTreeMap<i32, (i64, i64)>,
    /// Per partition, the position to read from (committed, else the backfill start).
    positions: BTreeMap<i32, i64>,
}

/// The backfill bounds of `topic` (from `from_ms`, up to the high watermarks now) and where
/// the job resumes reading it.
fn stream_start(
    consumer: &BaseConsumer,
    topic: &str,
    from_ms: Option<i64>,
    slice: JobSlice,
) -> Result<StreamStart, JobError> {
    let partitions: Vec<i32> = partitions_of(consumer, topic)?
        .into_iter()
        .filter(|p| slice.owns(*p))
        .collect();
    let mut all = TopicPartitionList::new();
    for p in &partitions {
        all.add_partition(topic, *p);
    }
    let committed = consumer
        .committed_offsets(all, KAFKA_TIMEOUT)
        .map_err(kafka("reading the job's committed source offsets"))?;
    let bounds = backfill_bounds(consumer, topic, &partitions, from_ms)?;
    let positions = bounds
        .iter()
        .map(|(p, (start_of_backfill, _))| {
            let resumed = committed
                .find_partition(topic, *p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            (*p, resumed.unwrap_or(*start_of_backfill))
        })
        .collect();
    Ok(StreamStart { bounds, positions })
}

/// The event time of `value`: its `field` (an RFC 3339 date-time), else the Kafka record
/// timestamp.
fn event_time(field: Option<&str>, value: &Json, kafka_ms: Option<i64>) -> Result<i64, String> {
    match field {
        Some(field) => value
            .get(field)
            .and_then(Json::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp_millis())
            .ok_or_else(|| {
                format!("the event time field `{field}` is missing or not an RFC 3339 date-time")
            }),
        None => kafka_ms.ok_or_else(|| "the record has no timestamp".to_owned()),
    }
}

impl TransformStage {
    pub(super) fn new(
        config: &JobConfig,
        transform: CompiledProduct,
        stop: Arc<AtomicBool>,
        handoff: Option<tokio::sync::mpsc::Sender<Handed>>,
    ) -> Result<Self, JobError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap)
            .set("group.id", format!("{}.transform", config.group))
            // A transaction's worth of records read ahead is enough, not librdkafka's
            // default 64 MiB of prefetched records (see the sink's consumer).
            .set("queued.max.messages.kbytes", "16384")
            // When the read-ahead is full, librdkafka waits `fetch.queue.backoff.ms`
            // (1 s by default) before fetching again, though the queue drains in a fraction
            // of that: with the default, loading 1M table rows of 130 B took 7.4 s at a
            // quarter of a core, waiting.
            .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("allow.auto.create.topics", "false")
            .create()
            .map_err(kafka("creating the source consumer"))?;
        let consumer = CloseAside::new(consumer);
        let producer: JobProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.bootstrap)
            .set("transactional.id", format!("{}.transform", config.group))
            .set("allow.auto.create.topics", "false")
            .create_with_context(Delivered::default())
            .map_err(kafka("creating the transactional producer"))?;
        producer
            .init_transactions(KAFKA_TIMEOUT)
            .map_err(kafka("initialising transactions"))?;
        end_hanging_transactions(config, &consumer)?;

        let mut wanted = vec![(
            config.source_topic.clone(),
            config.source_time_field.clone(),
            config.from_ms,
        )];
        if let Some(window) = &config.window {
            wanted.push((
                window.topic.clone(),
                window.time_field.clone(),
                window.from_ms,
            ));
        }
        let mut streams = Vec::with_capacity(wanted.len());
        let mut positions: BTreeMap<(usize, i32), i64> = BTreeMap::new();
        let mut resumed: BTreeMap<(usize, i32), (i64, i64)> = BTreeMap::new();
        let mut assignment = TopicPartitionList::new();
        for (i, (topic, time_field, from_ms)) in wanted.into_iter().enumerate() {
            // A window join's job runs in one slice; the joined stream is read whole.
            let slice = if i == DRIVING {
                config.slice
            } else {
                JobSlice::WHOLE
            };
            let start = stream_start(&consumer, &topic, from_ms, slice)?;
            tracing::debug!(job = %config.label, %topic, positions = ?start.positions, bounds = ?start.bounds, "transform starts");
            for (p, position) in &start.positions {
                positions.insert((i, *p), *position);
                let (start_of_backfill, _) = start.bounds[p];
                if *position > start_of_backfill {
                    resumed.insert((i, *p), (start_of_backfill, *position));
                }
                assignment
                    .add_partition_offset(&topic, *p, Offset::Offset(*position))
                    .map_err(kafka("assigning the source partitions"))?;
            }
            streams.push(Stream {
                topic,
                time_field,
                bounds: start.bounds,
            });
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
        let window = config.window.as_ref().map(|w| {
            let positions = &positions;
            let backfilling = streams.iter().enumerate().flat_map(|(i, s)| {
                s.bounds
                    .iter()
                    .filter(move |(p, (_, high))| {
                        positions.get(&(i, **p)).is_some_and(|at| at < high)
                    })
                    .map(move |(p, _)| (side_of(i), *p))
            });
            RefCell::new(WindowState::new(
                w.within_ms,
                backfilling.collect::<Vec<_>>(),
                config.state.clone(),
                &config.label,
            ))
        });
        let driving_fields = transform.source_fields().map(|read| {
            let mut fields = read.to_vec();
            if config.window.is_some()
                && let Some(time) = &config.source_time_field
                && !fields.contains(time)
            {
                fields.push(time.clone());
            }
            fields
        });
        let stage = TransformStage {
            config: config.clone(),
            transform,
            consumer,
            producer: Arc::new(producer),
            handoff,
            produced: RefCell::new(Vec::new()),
            streams,
            driving_fields,
            tables: RefCell::new(tables),
            joined: RefCell::new(Joined::new(config.state.clone(), &config.label)),
            propagates,
            window,
            paused: Cell::new(None),
            broken: RefCell::new(None),
            assigned: positions.clone(),
            stop,
            workers: (!propagates && config.window.is_none()).then(|| {
                std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS))
            }),
        };
        if stage.propagates || stage.window.is_some() {
            stage.rebuild(&resumed)?;
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
                .map_err(kafka("recording the table load"))?;
            bounded_call(
                &stage.producer,
                &stage.stop,
                COMMIT_BOUND,
                move |producer| {
                    producer
                        .send_offsets_to_transaction(&assignment, &metadata, KAFKA_TIMEOUT)
                        .and_then(|()| producer.commit_transaction(KAFKA_TIMEOUT))
                },
            )
            .map_err(|source| JobError::Call {
                context: "recording the table load",
                source,
            })?;
        }
        Ok(stage)
    }

    /// Which stream a topic is, if it is one.
    fn stream_of(&self, topic: &str) -> Option<usize> {
        self.streams.iter().position(|s| s.topic == topic)
    }

    /// Rebuilds the state a restart lost — what `propagate` needs and the window join's
    /// records — by reading the stream records the job already processed (from the backfill
    /// start to the committed offsets) again, writing nothing.
    fn rebuild(&self, resumed: &BTreeMap<(usize, i32), (i64, i64)>) -> Result<(), JobError> {
        if resumed.is_empty() {
            return Ok(());
        }
        let mut assignment = TopicPartitionList::new();
        for ((i, p), (start, _)) in resumed {
            assignment
                .add_partition_offset(&self.streams[*i].topic, *p, Offset::Offset(*start))
                .map_err(kafka("re-reading the processed streams"))?;
        }
        self.consumer
            .assign(&assignment)
            .map_err(kafka("re-reading the processed streams"))?;
        let mut left: BTreeMap<(usize, i32), i64> =
            resumed.iter().map(|(at, (_, end))| (*at, *end)).collect();
        let mut quiet_since = Instant::now();
        while !left.is_empty() {
            match self.consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    quiet_since = Instant::now();
                    let Some(i) = self.stream_of(message.topic()) else {
                        continue;
                    };
                    let at = (i, message.partition());
                    let Some(end) = left.get(&at).copied() else {
                        continue;
                    };
                    if message.offset() < end {
                        // Errors were dead-lettered the first time; nothing to keep.
                        let _ = self.stream_record(i, &message, Pass::Replay);
                    }
                    if message.offset() + 1 >= end {
                        left.remove(&at);
                    }
                }
                Some(Err(e)) => {
                    return Err(JobError::Kafka {
                        context: "re-reading the processed streams",
                        source: e,
                    });
                }
                None => {
                    // A transaction marker may be the last offset before the end: it is
                    // never delivered, but the position passes it.
                    let positions = self
                        .consumer
                        .position()
                        .map_err(kafka("re-reading the processed streams"))?;
                    left.retain(|(i, p), end| {
                        !positions
                            .find_partition(&self.streams[*i].topic, *p)
                            .is_some_and(|e| matches!(e.offset(), Offset::Offset(o) if o >= *end))
                    });
                    if quiet_since.elapsed() > KAFKA_TIMEOUT {
                        return Err(JobError::Kafka {
                            context: "re-reading the processed streams (no records arrive)",
                            source: rdkafka::error::KafkaError::Canceled,
                        });
                    }
                }
            }
        }
        if let Some(window) = &self.window {
            self.held(window.borrow_mut().sweep());
        }
        match self.broken.take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    pub(super) fn run(self, shared: &Shared) {
        let started = Instant::now();
        let mut positions = self.assigned.clone();
        let mut dead_letters = 0u64;
        let mut first_done: Vec<Option<u64>> = vec![None; self.streams.len()];
        let mut transform_done: Option<BTreeMap<i32, i64>> = None;
        let mut backfill_handed = false;
        while !self.stopping() {
            let handed = match self.one_batch(&mut positions, &mut dead_letters) {
                Ok(handed) => handed,
                Err(message) if self.stopping() => {
                    // What was not committed is done again by the job's next start.
                    tracing::debug!(job = %self.config.label, "{message}; stopped");
                    return;
                }
                Err(message) => {
                    // The transaction was aborted. The job ends here and is started again
                    // from what was committed (offsets, tables, join state): the one path
                    // that rebuilds state, used at every start.
                    tracing::warn!(job = %self.config.label, "{message}; restarting the job");
                    shared.progress.send_modify(|p| p.error = Some(message));
                    return;
                }
            };
            let elapsed = started.elapsed().as_secs_f64();
            let mut all_caught_up = true;
            let mut figures = Vec::with_capacity(self.streams.len());
            for (i, first) in first_done.iter_mut().enumerate() {
                let (done, total) = self.backfilled(i, &positions);
                let first = *first.get_or_insert(done);
                let rate = (elapsed > 0.5).then(|| (done.saturating_sub(first)) as f64 / elapsed);
                let eta = rate
                    .filter(|r| *r > 0.0)
                    .map(|r| ((total.saturating_sub(done)) as f64 / r).ceil() as u64);
                let caught_up = done >= total;
                all_caught_up &= caught_up;
                figures.push((done, total, rate, if caught_up { Some(0) } else { eta }));
            }
            self.align(&positions);
            if let Some(window) = &self.window {
                let mut window = window.borrow_mut();
                for (i, stream) in self.streams.iter().enumerate() {
                    for (p, (_, high)) in &stream.bounds {
                        if positions.get(&(i, *p)).is_some_and(|at| at >= high) {
                            window.backfilled(side_of(i), *p);
                        }
                    }
                }
            }
            if all_caught_up
                && transform_done.is_none()
                && shared
                    .sink_target
                    .lock()
                    .map(|t| t.is_none())
                    .unwrap_or(false)
            {
                match output_end_offsets(&self.config) {
                    // A job in several slices waits for every slice's transform: the sink
                    // target comes from all of them (`Job::set_sink_target`).
                    Ok(end) if self.config.slice.count > 1 => {
                        if transform_done.is_none() {
                            transform_done = Some(end);
                        }
                    }
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
                for (source, (done, total, rate, eta)) in p.sources.iter_mut().zip(&figures) {
                    source.done = *done;
                    source.total = *total;
                    source.rate = *rate;
                    source.eta_seconds = *eta;
                }
                // The error shown is the sink's, if any (a failing transform ends the job):
                // the sink clears it once the target takes its writes again.
                p.dead_letters = dead_letters;
                if p.transform_done.is_none() {
                    p.transform_done.clone_from(&transform_done);
                }
            });
            if let Some(sink) = &self.handoff {
                let backfill_done = all_caught_up && !backfill_handed;
                let records = handed.as_ref().is_some_and(|h| !h.records.is_empty());
                if records || backfill_done {
                    let mut handed = handed.unwrap_or_default();
                    handed.backfill_done = backfill_done;
                    backfill_handed |= backfill_done;
                    // After the progress above: the backfill may be complete as soon as the
                    // sink has this. Waits while the sink is two batches behind; returns at
                    // once when the sink has ended (the job is stopping, or starts again).
                    if sink.blocking_send(handed).is_err() {
                        tracing::debug!(job = %self.config.label, "the sink has ended; so does the transform");
                        return;
                    }
                }
            }
        }
    }

    /// Events done and to do of stream `i`'s backfill, from the positions.
    fn backfilled(&self, i: usize, positions: &BTreeMap<(usize, i32), i64>) -> (u64, u64) {
        let mut done = 0u64;
        let mut total = 0u64;
        for (p, (start, high)) in &self.streams[i].bounds {
            let span = u64::try_from(high - start).unwrap_or(0);
            let at = positions
                .get(&(i, *p))
                .copied()
                .unwrap_or(*start)
                .min(*high);
            done += u64::try_from(at - start).unwrap_or(0);
            total += span;
        }
        (done, total)
    }

    /// Keeps the two streams of a window join near each other in event time while both
    /// backfill: the stream more than `within` ahead of the other is paused until the other
    /// catches up or runs out of backfill, so the state holds about one window of records
    /// rather than whatever one stream read ahead.
    fn align(&self, positions: &BTreeMap<(usize, i32), i64>) {
        let (Some(window), Some(config)) = (&self.window, &self.config.window) else {
            return;
        };
        let (driving, joined) = {
            let w = window.borrow();
            (w.max_ms(Side::Driving), w.max_ms(Side::Joined))
        };
        let backfilling = |i: usize| {
            self.streams[i].bounds.iter().any(|(p, (start, high))| {
                positions.get(&(i, *p)).copied().unwrap_or(*start) < *high
            })
        };
        let ahead = match (driving, joined) {
            (Some(d), Some(j)) if d > j.saturating_add(config.within_ms) && backfilling(JOINED) => {
                Some(DRIVING)
            }
            (Some(d), Some(j))
                if j > d.saturating_add(config.within_ms) && backfilling(DRIVING) =>
            {
                Some(JOINED)
            }
            _ => None,
        };
        if ahead == self.paused.get() {
            return;
        }
        let partitions = |i: usize| {
            let mut list = TopicPartitionList::new();
            for p in self.streams[i].bounds.keys() {
                list.add_partition(&self.streams[i].topic, *p);
            }
            list
        };
        if let Some(i) = self.paused.get()
            && let Err(e) = self.consumer.resume(&partitions(i))
        {
            tracing::warn!(job = %self.config.label, error = %e, "resuming a stream");
            return;
        }
        self.paused.set(None);
        if let Some(i) = ahead {
            match self.consumer.pause(&partitions(i)) {
                Ok(()) => self.paused.set(Some(i)),
                Err(e) => tracing::warn!(job = %self.config.label, error = %e, "pausing a stream"),
            }
        }
    }

    /// Reads up to a batch, writes it and its offsets in one transaction.
    fn one_batch(
        &self,
        positions: &mut BTreeMap<(usize, i32), i64>,
        dead_letters: &mut u64,
    ) -> Result<Option<Handed>, String> {
        let started = Instant::now();
        let deadline = started + BATCH_WINDOW;
        let mut messages = Vec::new();
        // Records at hand are taken without waiting, and then the clock is read only every
        // `CLOCK_EVERY` records (reading it twice per record was a few per cent of the
        // stage); only a poll that must wait is given what is left of the window.
        while messages.len() < BATCH {
            let polled = match self.consumer.poll(Duration::ZERO) {
                Some(polled) => polled,
                None => {
                    // A polled record is the consumer's past: it must not be polled and
                    // then dropped, so the window's end is checked before polling.
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match self.consumer.poll(left) {
                        Some(polled) => polled,
                        None => break,
                    }
                }
            };
            match polled {
                Ok(message) => messages.push(message),
                Err(e) => return Err(format!("reading the source: {e}")),
            }
            if messages.len() % CLOCK_EVERY == 0 && Instant::now() >= deadline {
                break;
            }
        }
        if messages.is_empty() {
            return Ok(None);
        }
        let records = messages.len();
        let read = started.elapsed();
        self.producer
            .begin_transaction()
            .map_err(|e| format!("beginning a transaction: {e}"))?;
        self.produced.borrow_mut().clear();
        self.producer.context().clear();
        let mut next: BTreeMap<(usize, i32), i64> = BTreeMap::new();
        let mut table_next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        let mut rejected = 0u64;
        let mut at = 0;
        while at < messages.len() {
            let message = &messages[at];
            at += 1;
            // Read once: each call checks the name's UTF-8 again.
            let topic = message.topic();
            if let Some(table) = self.config.tables.iter().find(|t| t.topic == topic) {
                table_next.insert(
                    (table.topic.clone(), message.partition()),
                    message.offset() + 1,
                );
                let changed = self
                    .tables
                    .borrow_mut()
                    .apply(table, message.key(), message.payload())
                    .map_err(|e| e.to_string())?;
                if let Some(row) = changed
                    && self.propagates_from(&table.alias)
                {
                    self.propagate(&table.alias, &row)?;
                }
                continue;
            }
            let Some(i) = self.stream_of(topic) else {
                continue;
            };
            if let (DRIVING, Some(workers)) = (i, self.workers) {
                // The run of driving records from here to the next record of another topic.
                let start = at - 1;
                let end = messages[at..]
                    .iter()
                    .position(|m| m.topic() != topic)
                    .map_or(messages.len(), |n| at + n);
                let run = &messages[start..end];
                for (message, outcome) in run.iter().zip(self.transform_run(run, workers)) {
                    next.insert((i, message.partition()), message.offset() + 1);
                    rejected += self.write_outcome(message, outcome)?;
                }
                at = end;
                continue;
            }
            next.insert((i, message.partition()), message.offset() + 1);
            let outcome = self.stream_record(i, message, Pass::Live);
            rejected += self.write_outcome(message, outcome)?;
        }
        drop(messages);
        if let Some(window) = &self.window {
            self.held(window.borrow_mut().sweep());
        }
        let flushed = self
            .tables
            .borrow_mut()
            .flush()
            .and_then(|()| self.joined.borrow_mut().flush());
        if let Some(e) = self.broken.take().map(Err).unwrap_or(flushed).err() {
            self.abort();
            return Err(format!("job state: {e}"));
        }
        let mut offsets = TopicPartitionList::new();
        for ((i, p), o) in &next {
            offsets
                .add_partition_offset(&self.streams[*i].topic, *p, Offset::Offset(*o))
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
        let processed = started.elapsed();
        if let Err(e) = self.deliver() {
            self.abort();
            return Err(e);
        }
        let delivered = started.elapsed();
        let committed = bounded_call(&self.producer, &self.stop, COMMIT_BOUND, move |producer| {
            if offsets.count() > 0 {
                producer.send_offsets_to_transaction(&offsets, &metadata, KAFKA_TIMEOUT)?;
            }
            producer.commit_transaction(KAFKA_TIMEOUT)
        });
        if let Err(e) = committed {
            self.abort();
            return Err(format!("committing a transaction: {e}"));
        }
        // Where a batch's time goes: reading, transforming and producing, waiting for the
        // broker to acknowledge the records, committing.
        tracing::debug!(
            job = %self.config.label,
            records,
            read_ms = read.as_millis() as u64,
            process_ms = (processed - read).as_millis() as u64,
            deliver_ms = (delivered - processed).as_millis() as u64,
            commit_ms = (started.elapsed() - delivered).as_millis() as u64,
            ?next,
            "transaction committed"
        );
        positions.extend(next);
        *dead_letters += rejected;
        match self.handoff {
            Some(_) => pair(self.producer.context(), self.produced.take()).map(Some),
            None => Ok(None),
        }
    }

    /// Writes what a record means for the output (in the open transaction), or the record
    /// to the dead-letter topic when it could not be processed; how many records that
    /// rejected (0 or 1).
    fn write_outcome(
        &self,
        message: &BorrowedMessage<'_>,
        outcome: Result<Vec<Emit>, String>,
    ) -> Result<u64, String> {
        match outcome {
            Ok(emits) => {
                for Emit { key, row } in emits {
                    self.emit(key, row, message.timestamp().to_millis())?;
                }
                Ok(0)
            }
            Err(reason) => {
                self.dead_letter(message, &reason)?;
                Ok(1)
            }
        }
    }

    /// Sends a record that cannot be processed to the dead-letter topic, with the reason
    /// and where it came from in headers.
    fn dead_letter(&self, message: &BorrowedMessage<'_>, reason: &str) -> Result<(), String> {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "sluice-error",
                value: Some(reason),
            })
            .insert(Header {
                key: "sluice-source-topic",
                value: Some(message.topic()),
            })
            .insert(Header {
                key: "sluice-source-partition",
                value: Some(&message.partition().to_string()),
            })
            .insert(Header {
                key: "sluice-source-offset",
                value: Some(&message.offset().to_string()),
            });
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&self.config.dead_letter_topic, NOT_HANDED).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        self.send(record)
    }

    /// What a record of stream `i` means for the output (nothing written on a replay).
    fn stream_record(
        &self,
        i: usize,
        message: &BorrowedMessage<'_>,
        pass: Pass,
    ) -> Result<Vec<Emit>, String> {
        let fields = match i {
            DRIVING => self.driving_fields.as_deref(),
            _ => None,
        };
        let value = parsed_value(message, fields)?;
        let kafka_ms = message.timestamp().to_millis();
        let event_ms = match (&self.window, &value) {
            (Some(_), Some(value)) => Some(event_time(
                self.streams[i].time_field.as_deref(),
                value,
                kafka_ms,
            )?),
            _ => None,
        };
        let partition = message.partition();
        if i == DRIVING {
            self.transform_one(message.key(), value, event_ms, partition, pass)
        } else {
            self.joined_record(message.key(), value, event_ms, partition, pass)
        }
    }

    /// What each record of `run` (driving records, in their order) means for the output, in
    /// the same order, computed on up to `workers` threads: with neither a
    /// window join nor propagation, a driving record's result depends on the lookup tables
    /// alone, which only table records change, and none is in the run. The results are
    /// then produced in the records' order, as if computed one by one.
    fn transform_run(
        &self,
        run: &[BorrowedMessage<'_>],
        workers: usize,
    ) -> Vec<Result<Vec<Emit>, String>> {
        let tables = self.tables.borrow();
        let (tables, transform) = (&*tables, &self.transform);
        let fields = self.driving_fields.as_deref();
        let one = |message: &BorrowedMessage<'_>, failure: &RefCell<Option<StateError>>| {
            let value = parsed_value(message, fields)?;
            let arena = Arena::with_capacity(transform.lookups().len());
            let lookup = tables.lookup(transform, &arena, failure);
            transform
                .apply_as(message.key(), value.as_ref(), &lookup, None)
                .map(|emit| emit.into_iter().collect())
                .map_err(|e| e.reason())
        };
        let workers = workers.min(run.len().div_ceil(MIN_RUN_PER_WORKER)).max(1);
        let part = run.len().div_ceil(workers).max(1);
        let mut parts = run.chunks(part);
        let first = parts.next().unwrap_or_default();
        let mut outcomes = Vec::with_capacity(run.len());
        let mut failures = Vec::new();
        std::thread::scope(|scope| {
            let others: Vec<_> = parts
                .map(|records| {
                    scope.spawn(move || {
                        let failure = RefCell::new(None);
                        let out: Vec<_> = records.iter().map(|m| one(m, &failure)).collect();
                        (out, failure.into_inner())
                    })
                })
                .collect();
            let failure = RefCell::new(None);
            outcomes.extend(first.iter().map(|m| one(m, &failure)));
            failures.push(failure.into_inner());
            for other in others {
                match other.join() {
                    Ok((out, failure)) => {
                        outcomes.extend(out);
                        failures.push(failure);
                    }
                    // Transforming never panics; if it did, the stage fails as it would
                    // have on this thread.
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
        if let Some(e) = failures.into_iter().flatten().next() {
            self.broken.borrow_mut().get_or_insert(e);
        }
        outcomes
    }

    /// Transforms one driving record (`value` `None`: a tombstone): joined with the lookup
    /// tables and, with a window join, with every record of the joined stream it meets —
    /// one result per pair, or "no row" for its key when it meets none (window joins are
    /// inner). Remembers what it was joined with when lookups propagate.
    fn transform_one(
        &self,
        record_key: Option<&[u8]>,
        value: Option<Json>,
        event_ms: Option<i64>,
        partition: i32,
        pass: Pass,
    ) -> Result<Vec<Emit>, String> {
        let tables = self.tables.borrow();
        // Sized for one row per lookup: a product without lookups allocates nothing here.
        let arena = Arena::with_capacity(self.transform.lookups().len());
        let lookup = tables.lookup(&self.transform, &arena, &self.broken);
        // What the record was joined with is read by a window join and by propagation.
        let mut partners = Vec::new();
        let traced = self.transform.window().is_some() || self.propagates;
        let alone = self
            .transform
            .apply_as(
                record_key,
                value.as_ref(),
                &lookup,
                traced.then_some(&mut partners),
            )
            .map_err(|e| e.reason())?;
        let mut emitted = Vec::new();
        match (self.transform.window(), &self.window, &value, event_ms) {
            (Some(join), Some(state), Some(value), Some(at)) => {
                let join_key = partners
                    .iter()
                    .find(|(alias, _)| *alias == join.alias)
                    .map(|(_, key)| key.clone());
                let mut state = state.borrow_mut();
                if pass != Pass::Recompute {
                    state.observe(Side::Driving, partition, at);
                }
                let met: Vec<Json> = match (&join_key, pass) {
                    (Some(key), Pass::Live | Pass::Recompute) => self
                        .held(state.partners(Side::Driving, key, at))
                        .into_iter()
                        .map(|(_, value)| value)
                        .collect(),
                    _ => Vec::new(),
                };
                if met.is_empty() {
                    emitted.extend(alone);
                }
                for partner in &met {
                    let paired = |alias: &str, key: &str| {
                        if alias == join.alias {
                            Some(partner)
                        } else {
                            lookup(alias, key)
                        }
                    };
                    if let Some(emit) = self
                        .transform
                        .apply_as(record_key, Some(value), &paired, None)
                        .map_err(|e| e.reason())?
                    {
                        emitted.push(emit);
                    }
                }
                if pass != Pass::Recompute {
                    match join_key {
                        Some(key) => self.held(state.keep(
                            Side::Driving,
                            key,
                            record_key.map(<[u8]>::to_vec),
                            value,
                            at,
                        )),
                        None => {
                            if let Some(record_key) = record_key {
                                self.held(state.forget(Side::Driving, record_key));
                            }
                        }
                    }
                }
            }
            (Some(_), Some(state), None, _) => {
                if pass != Pass::Recompute
                    && let Some(record_key) = record_key
                {
                    self.held(state.borrow_mut().forget(Side::Driving, record_key));
                }
                emitted.extend(alone);
            }
            _ => emitted.extend(alone),
        }
        if self.propagates && pass != Pass::Recompute {
            let keys: BTreeSet<&str> = emitted.iter().map(|e| e.key.as_str()).collect();
            for key in keys {
                let record = value.as_ref().map(|v| (record_key, v, event_ms));
                self.held(self.joined.borrow_mut().remember(key, record, &partners));
            }
        }
        Ok(emitted)
    }

    /// A record of the window-joined stream: kept for later driving records, and joined
    /// with every kept driving record it meets (one result per pair). A tombstone forgets
    /// the record of its key; a record without a join key meets nothing.
    fn joined_record(
        &self,
        record_key: Option<&[u8]>,
        value: Option<Json>,
        event_ms: Option<i64>,
        partition: i32,
        pass: Pass,
    ) -> Result<Vec<Emit>, String> {
        let (Some(join), Some(state)) = (self.transform.window(), &self.window) else {
            return Ok(Vec::new());
        };
        let mut state = state.borrow_mut();
        let (Some(value), Some(at)) = (value, event_ms) else {
            if let Some(record_key) = record_key {
                self.held(state.forget(Side::Joined, record_key));
            }
            return Ok(Vec::new());
        };
        if !value.is_object() {
            return Err("the value is not a JSON object".to_owned());
        }
        state.observe(Side::Joined, partition, at);
        let Some(join_key) = key_text(value.get(&join.key_field)) else {
            if let Some(record_key) = record_key {
                self.held(state.forget(Side::Joined, record_key));
            }
            return Ok(Vec::new());
        };
        let mut emitted = Vec::new();
        if pass == Pass::Live {
            let met = self.held(state.partners(Side::Joined, &join_key, at));
            let tables = self.tables.borrow();
            let arena = Arena::with_capacity(self.transform.lookups().len());
            let lookup = tables.lookup(&self.transform, &arena, &self.broken);
            let paired = |alias: &str, key: &str| {
                if alias == join.alias {
                    Some(&value)
                } else {
                    lookup(alias, key)
                }
            };
            for (driving_key, driving) in &met {
                if let Some(emit) = self
                    .transform
                    .apply_as(driving_key.as_deref(), Some(driving), &paired, None)
                    .map_err(|e| e.reason())?
                {
                    emitted.push(emit);
                }
            }
        }
        self.held(state.keep(
            Side::Joined,
            join_key,
            record_key.map(<[u8]>::to_vec),
            &value,
            at,
        ));
        Ok(emitted)
    }

    /// The outcome of a change or read of the job's state: a failure of its on-disk store is
    /// kept in `broken` (the batch is then aborted, and the job restarts), and the default
    /// stands in meanwhile.
    fn held<T: Default>(&self, outcome: Result<T, StateError>) -> T {
        outcome.unwrap_or_else(|e| {
            self.broken.borrow_mut().get_or_insert(e);
            T::default()
        })
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
        let keys = self.held(self.joined.borrow_mut().joined_with(alias, row));
        for key in keys {
            let Some((record_key, value, event_ms)) =
                self.held(self.joined.borrow_mut().latest(&key))
            else {
                continue;
            };
            // The partition is only read when a record is observed, which a recompute is not.
            match self.transform_one(
                record_key.as_deref(),
                Some(value),
                event_ms,
                0,
                Pass::Recompute,
            ) {
                Ok(emits) => {
                    for Emit { key, row } in emits {
                        self.emit(key, row, None)?;
                    }
                }
                // The record transformed before; with the new partner it does not (a type
                // the table now holds): its key has no row rather than a stale one.
                Err(reason) => {
                    tracing::warn!(job = %self.config.label, %key, %reason, "propagation failed");
                    self.emit(key.to_string(), None, None)?;
                }
            }
        }
        Ok(())
    }

    /// Writes the result for `key` to the output topic (in the open transaction), and keeps
    /// it for the sink when the job hands records over. `event_ms` is the source event's
    /// time, carried to the output record so the sink can tell how far behind the events
    /// the target is.
    fn emit(&self, key: String, row: Option<RowJson>, event_ms: Option<i64>) -> Result<(), String> {
        let payload = row.map(|r| r.0);
        let index = match self.handoff {
            Some(_) => self.produced.borrow().len(),
            None => NOT_HANDED,
        };
        let mut record: BaseRecord<'_, str, [u8], usize> =
            BaseRecord::with_opaque_to(&self.config.output_topic, index);
        let mut digits = itoa::Buffer::new();
        if let Some(ms) = event_ms {
            // One header: room for one, not librdkafka's default of five.
            record = record.headers(OwnedHeaders::new_with_capacity(1).insert(Header {
                key: EVENT_TIME_HEADER,
                value: Some(digits.format(ms)),
            }));
        }
        if !self.config.append {
            record = record.key(key.as_str());
        }
        if let Some(payload) = payload.as_deref() {
            record = record.payload(payload);
        }
        self.send(record)?;
        if self.handoff.is_some() {
            self.produced.borrow_mut().push(Produced {
                key,
                row: payload,
                event_ms,
            });
        }
        Ok(())
    }

    /// Waits until every record of the open transaction is delivered. The producer's own
    /// flush (which committing runs first) waits in steps of 100 ms, which every batch
    /// would pay; serving delivery reports in 1 ms steps returns as soon as they are in.
    fn deliver(&self) -> Result<(), String> {
        let deadline = Instant::now() + KAFKA_TIMEOUT;
        while self.producer.in_flight_count() > 0 {
            if Instant::now() > deadline {
                return Err("delivering the batch's records timed out".to_owned());
            }
            if self.stopping() {
                return Err("the job stopped while the batch's records were delivered".to_owned());
            }
            self.producer.poll(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Aborts the open transaction, unless the job is being stopped: the abort is a
    /// courtesy (see [`ABORT_TIMEOUT`]) that a stopping job, its broker perhaps away, need
    /// not wait for.
    fn abort(&self) {
        self.produced.borrow_mut().clear();
        self.producer.context().clear();
        if !self.stopping() {
            let _ = self.producer.abort_transaction(ABORT_TIMEOUT);
        }
    }

    /// Whether the job is being stopped.
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sends one record, waiting while the producer's queue is full (until the job stops).
    fn send<K, P>(&self, record: BaseRecord<'_, K, P, usize>) -> Result<(), String>
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
                    if self.stopping() {
                        return Err(
                            "the job stopped while the producer's queue was full".to_owned()
                        );
                    }
                    self.producer.poll(Duration::from_millis(5));
                    record = back;
                }
                Err((e, _)) => return Err(format!("producing: {e}")),
            }
        }
    }
}

/// Ends the transactions of this job that a broker left open (see [`super::hanging`]),
/// which would otherwise keep the job from reading its offsets for good. A lookup that
/// fails (a broker that refuses these requests, one still starting) leaves the job to
/// start as it would have; transactions found and not ended stop it, saying how to end
/// them.
fn end_hanging_transactions(config: &JobConfig, consumer: &BaseConsumer) -> Result<(), JobError> {
    let transactional_id = format!("{}.transform", config.group);
    let topics = [
        config.output_topic.as_str(),
        config.dead_letter_topic.as_str(),
    ];
    match super::hanging::close_hanging(consumer, &transactional_id, &transactional_id, &topics) {
        Ok(None) => Ok(()),
        Ok(Some(closed)) => {
            tracing::warn!(
                job = %config.label,
                outcome = ?closed.outcome,
                partitions = ?closed.partitions,
                "ended transactions of this job that the broker had left open"
            );
            Ok(())
        }
        Err(e @ super::HangingError::Unended { .. }) => Err(JobError::Hanging(e)),
        Err(e) => {
            tracing::warn!(job = %config.label, error = %e, "cannot look for transactions left open");
            Ok(())
        }
    }
}
