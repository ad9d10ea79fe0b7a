//! Transactions of the job that the broker left open: found and closed when the job starts.
//!
//! A Kafka transaction coordinator that restarts completes the transactions it finds
//! prepared or open by writing their markers. Writing them, it skips every partition it
//! cannot find in its metadata, taking it for deleted — and a broker that has just started
//! can look partitions up before its metadata has caught up. Those partitions then hold a
//! transaction that nobody will ever end (a *hanging* transaction): `read_committed`
//! readers of the output topic stop before it, and the group's offsets, pending in it, can
//! no longer be read. The job would stay stopped for good.
//!
//! So once the job's producer is initialised — which ends every transaction its
//! coordinator still knows — any transaction of the same producer id and an older epoch
//! still open in a partition the job writes is hanging by definition, and the job writes its
//! markers itself (Kafka's `WriteTxnMarkers`, as `kafka-transactions.sh abort` does). How:
//! - **abort**, when the group's offsets are among the hanging partitions: the source
//!   records of that transaction are then read and written again, so any output the
//!   coordinator did commit is delivered twice, which the version-guarded sinks absorb;
//! - **commit**, when only output or dead-letter partitions hang: the offsets are settled
//!   one way or the other, and committing can at worst deliver records again, where
//!   aborting could lose the output of offsets already committed.
//!
//! librdkafka has no call for these requests, so they are spoken here with the
//! `kafka-protocol` crate over plain TCP, as the job's Kafka connections are.

use std::collections::BTreeMap;

use kafka_protocol::error::ParseResponseErrorCode;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeTransactionsRequest, FindCoordinatorRequest,
    ProducerId, TopicName, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::kafka_wire::{WireError, call};

/// The topic holding consumer groups' offsets.
const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// The `FindCoordinator` key type of a transactional id.
const TRANSACTION_KEY: i8 = 1;

/// Why hanging transactions could not be looked for or closed.
#[derive(Debug, thiserror::Error)]
pub enum HangingError {
    /// The cluster's metadata could not be read.
    #[error("reading the metadata of `{topic}`: {source}")]
    Metadata {
        /// The topic asked about.
        topic: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A broker could not be reached or answered with an error.
    #[error(transparent)]
    Broker(#[from] WireError),
    /// Transactions were found hanging and could not be ended: the job cannot read its
    /// offsets until they are. `remedy` says what an operator can do.
    #[error(
        "transactions of this job left open by the broker in {partitions} could not be ended \
         ({reason}); {remedy}"
    )]
    Unended {
        /// The partitions, as `topic-partition`.
        partitions: String,
        /// Why the markers could not be written.
        reason: String,
        /// What ends them: `kafka-transactions.sh` calls, or the permission the job needs.
        remedy: String,
    },
}

/// A partition holding an open transaction of the job's producer from an earlier epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hanging {
    /// The partition's topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The transaction's producer epoch.
    pub epoch: i16,
    /// The coordinator epoch the partition last saw from that producer.
    pub coordinator_epoch: i32,
    /// The transaction's first offset in the partition.
    pub start_offset: i64,
}

/// How a hanging transaction is ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// With an abort marker.
    Abort,
    /// With a commit marker.
    Commit,
}

/// What [`close_hanging`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Closed {
    /// The hanging partitions.
    pub partitions: Vec<Hanging>,
    /// How they were ended.
    pub outcome: Outcome,
}

/// Finds the transactions of `transactional_id` (whose consumer group is `group`) left open
/// in `topics` or in the group's offsets, and ends them; `None` when there were none.
/// Call it after the producer's `init_transactions` and before the job reads its offsets.
pub(crate) fn close_hanging(
    consumer: &BaseConsumer,
    transactional_id: &str,
    group: &str,
    topics: &[&str],
) -> Result<Option<Closed>, HangingError> {
    let cluster = Cluster::read(consumer, topics)?;
    let Some((producer_id, epoch)) = cluster.producer_of(transactional_id)? else {
        return Ok(None);
    };
    let offsets_partition = cluster.offsets_partition(group);
    let mut wanted: Vec<(String, i32)> = cluster
        .leaders
        .keys()
        .filter(|(topic, _)| topics.contains(&topic.as_str()))
        .cloned()
        .collect();
    if let Some(p) = offsets_partition {
        wanted.push((OFFSETS_TOPIC.to_owned(), p));
    }
    let hanging = cluster.open_transactions(&wanted, producer_id, epoch)?;
    if hanging.is_empty() {
        return Ok(None);
    }
    let outcome = outcome_for(&hanging, offsets_partition);
    if let Err(e) = cluster.write_markers(producer_id, &hanging, outcome) {
        let bootstrap = cluster.any_broker().unwrap_or("BROKER").to_owned();
        return Err(HangingError::Unended {
            partitions: hanging
                .iter()
                .map(|h| format!("{}-{}", h.topic, h.partition))
                .collect::<Vec<_>>()
                .join(", "),
            reason: e.to_string(),
            remedy: match outcome {
                Outcome::Abort => format!(
                    "end them with: {}",
                    hanging
                        .iter()
                        .map(|h| format!(
                            "kafka-transactions.sh --bootstrap-server {bootstrap} abort \
                             --topic {} --partition {} --start-offset {}",
                            h.topic, h.partition, h.start_offset
                        ))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                // `kafka-transactions.sh` can only abort, and aborting output whose offsets
                // are committed loses it: the job must write the commit markers itself.
                Outcome::Commit => "they must be committed, which kafka-transactions.sh cannot \
                                    do: allow Sluice's Kafka principal ClusterAction on the \
                                    cluster and the job commits them when it next starts"
                    .to_owned(),
            },
        });
    }
    Ok(Some(Closed {
        partitions: hanging,
        outcome,
    }))
}

/// Abort when the group's offsets hang with the rest (see the module's comment); else
/// commit.
fn outcome_for(hanging: &[Hanging], offsets_partition: Option<i32>) -> Outcome {
    let offsets_hang = hanging
        .iter()
        .any(|h| h.topic == OFFSETS_TOPIC && Some(h.partition) == offsets_partition);
    if offsets_hang {
        Outcome::Abort
    } else {
        Outcome::Commit
    }
}

/// The partition of `__consumer_offsets` that holds `group`'s offsets, as Kafka places it:
/// the group id's Java string hash, made non-negative, modulo the partition count.
fn offsets_partition_of(group: &str, partitions: i32) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    // Kafka's `Utils.abs`: the one hash with no positive counterpart counts as 0.
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions.max(1)
}

/// The brokers and partition leaders of the topics a job writes.
struct Cluster {
    /// Broker id → `host:port`.
    brokers: BTreeMap<i32, String>,
    /// (topic, partition) → leader broker id.
    leaders: BTreeMap<(String, i32), i32>,
    /// How many partitions `__consumer_offsets` has, if it exists.
    offsets_partitions: Option<i32>,
}

impl Cluster {
    fn read(consumer: &BaseConsumer, topics: &[&str]) -> Result<Self, HangingError> {
        let mut brokers = BTreeMap::new();
        let mut leaders = BTreeMap::new();
        let mut offsets_partitions = None;
        for topic in topics.iter().copied().chain([OFFSETS_TOPIC]) {
            let metadata = consumer
                .fetch_metadata(Some(topic), super::KAFKA_TIMEOUT)
                .map_err(|source| HangingError::Metadata {
                    topic: topic.to_owned(),
                    source,
                })?;
            for broker in metadata.brokers() {
                brokers.insert(broker.id(), format!("{}:{}", broker.host(), broker.port()));
            }
            for t in metadata.topics().iter().filter(|t| t.error().is_none()) {
                if t.name() == OFFSETS_TOPIC {
                    offsets_partitions = i32::try_from(t.partitions().len()).ok();
                }
                for p in t.partitions() {
                    leaders.insert((t.name().to_owned(), p.id()), p.leader());
                }
            }
        }
        Ok(Cluster {
            brokers,
            leaders,
            offsets_partitions,
        })
    }

    fn offsets_partition(&self, group: &str) -> Option<i32> {
        self.offsets_partitions
            .filter(|n| *n > 0)
            .map(|n| offsets_partition_of(group, n))
    }

    fn any_broker(&self) -> Result<&str, HangingError> {
        self.brokers
            .values()
            .next()
            .map(String::as_str)
            .ok_or_else(|| broker_error("-", "the metadata names no broker"))
    }

    fn broker(&self, id: i32) -> Result<&str, HangingError> {
        self.brokers
            .get(&id)
            .map(String::as_str)
            .ok_or_else(|| broker_error(&id.to_string(), "not in the metadata (no leader?)"))
    }

    /// The producer id and epoch the coordinator holds for `transactional_id` now, if it
    /// knows it.
    fn producer_of(&self, transactional_id: &str) -> Result<Option<(i64, i16)>, HangingError> {
        let any = self.any_broker()?;
        let found: kafka_protocol::messages::FindCoordinatorResponse = call(
            any,
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default()
                .with_key_type(TRANSACTION_KEY)
                .with_coordinator_keys(vec![StrBytes::from_string(transactional_id.to_owned())]),
        )?;
        let coordinator = found
            .coordinators
            .first()
            .ok_or_else(|| broker_error(any, "no coordinator in the answer"))?;
        if let Some(e) = coordinator.error_code.err() {
            return Err(broker_error(any, format!("finding the coordinator: {e}")));
        }
        let address = format!("{}:{}", coordinator.host.as_str(), coordinator.port);
        let described: kafka_protocol::messages::DescribeTransactionsResponse = call(
            &address,
            ApiKey::DescribeTransactions,
            0,
            &DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(
                StrBytes::from_string(transactional_id.to_owned()),
            )]),
        )?;
        let Some(state) = described.transaction_states.first() else {
            return Ok(None);
        };
        match state.error_code.err() {
            None => Ok(Some((state.producer_id.0, state.producer_epoch))),
            Some(kafka_protocol::error::ResponseError::TransactionalIdNotFound) => Ok(None),
            Some(e) => Err(broker_error(
                &address,
                format!("describing the transaction: {e}"),
            )),
        }
    }

    /// The partitions among `wanted` holding an open transaction of `producer_id` from an
    /// epoch before `epoch`.
    fn open_transactions(
        &self,
        wanted: &[(String, i32)],
        producer_id: i64,
        epoch: i16,
    ) -> Result<Vec<Hanging>, HangingError> {
        let mut hanging = Vec::new();
        for (leader, partitions) in self.by_leader(wanted) {
            let address = self.broker(leader)?;
            let request = DescribeProducersRequest::default().with_topics(
                partitions
                    .iter()
                    .map(|(topic, ps)| {
                        TopicRequest::default()
                            .with_name(topic_name(topic))
                            .with_partition_indexes(ps.clone())
                    })
                    .collect(),
            );
            let described: kafka_protocol::messages::DescribeProducersResponse =
                call(address, ApiKey::DescribeProducers, 0, &request)?;
            for topic in &described.topics {
                for partition in &topic.partitions {
                    if let Some(e) = partition.error_code.err() {
                        return Err(broker_error(
                            address,
                            format!(
                                "describing the producers of {}-{}: {e}",
                                topic.name.0.as_str(),
                                partition.partition_index
                            ),
                        ));
                    }
                    for producer in &partition.active_producers {
                        let Ok(its_epoch) = i16::try_from(producer.producer_epoch) else {
                            continue;
                        };
                        if producer.producer_id.0 == producer_id
                            && producer.current_txn_start_offset >= 0
                            && its_epoch < epoch
                        {
                            hanging.push(Hanging {
                                topic: topic.name.0.as_str().to_owned(),
                                partition: partition.partition_index,
                                epoch: its_epoch,
                                coordinator_epoch: producer.coordinator_epoch,
                                start_offset: producer.current_txn_start_offset,
                            });
                        }
                    }
                }
            }
        }
        Ok(hanging)
    }

    /// Writes `outcome`'s marker for `producer_id` into each of the `hanging` partitions.
    fn write_markers(
        &self,
        producer_id: i64,
        hanging: &[Hanging],
        outcome: Outcome,
    ) -> Result<(), HangingError> {
        // Per leader, one marker per (epoch, coordinator epoch) naming its partitions there.
        type Markers = BTreeMap<(i16, i32), BTreeMap<String, Vec<i32>>>;
        let mut by_leader: BTreeMap<i32, Markers> = BTreeMap::new();
        for h in hanging {
            if let Some(leader) = self.leaders.get(&(h.topic.clone(), h.partition)) {
                by_leader
                    .entry(*leader)
                    .or_default()
                    .entry((h.epoch, h.coordinator_epoch))
                    .or_default()
                    .entry(h.topic.clone())
                    .or_default()
                    .push(h.partition);
            }
        }
        for (leader, markers) in by_leader {
            let address = self.broker(leader)?;
            let request = WriteTxnMarkersRequest::default().with_markers(
                markers
                    .into_iter()
                    .map(|((epoch, coordinator_epoch), topics)| {
                        WritableTxnMarker::default()
                            .with_producer_id(ProducerId(producer_id))
                            .with_producer_epoch(epoch)
                            .with_transaction_result(outcome == Outcome::Commit)
                            .with_coordinator_epoch(coordinator_epoch)
                            .with_topics(
                                topics
                                    .into_iter()
                                    .map(|(topic, partitions)| {
                                        WritableTxnMarkerTopic::default()
                                            .with_name(topic_name(&topic))
                                            .with_partition_indexes(partitions)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
            let written: kafka_protocol::messages::WriteTxnMarkersResponse =
                call(address, ApiKey::WriteTxnMarkers, 1, &request)?;
            for marker in &written.markers {
                for topic in &marker.topics {
                    for partition in &topic.partitions {
                        if let Some(e) = partition.error_code.err() {
                            return Err(broker_error(
                                address,
                                format!(
                                    "writing the transaction marker into {}-{}: {e}",
                                    topic.name.0.as_str(),
                                    partition.partition_index
                                ),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// `wanted`, grouped by leader and then by topic.
    fn by_leader(&self, wanted: &[(String, i32)]) -> BTreeMap<i32, BTreeMap<String, Vec<i32>>> {
        let mut out: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        for (topic, partition) in wanted {
            if let Some(leader) = self.leaders.get(&(topic.clone(), *partition)) {
                out.entry(*leader)
                    .or_default()
                    .entry(topic.clone())
                    .or_default()
                    .push(*partition);
            }
        }
        out
    }
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

fn broker_error(broker: &str, message: impl Into<String>) -> HangingError {
    HangingError::Broker(WireError {
        broker: broker.to_owned(),
        message: message.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offsets_partition_follows_the_java_string_hash() {
        // "hello".hashCode() is 99162322 in Java; 99162322 % 50 = 22.
        assert_eq!(offsets_partition_of("hello", 50), 22);
        // "polygenelubricants".hashCode() is Integer.MIN_VALUE: Kafka counts it as 0.
        assert_eq!(offsets_partition_of("polygenelubricants", 50), 0);
        // Negative hashes are made positive: every result lies in range.
        for group in ["a", "sluice.job.t1.orders.v1.transform", "ü-group", ""] {
            let p = offsets_partition_of(group, 50);
            assert!((0..50).contains(&p), "{group}: {p}");
        }
        assert_eq!(offsets_partition_of("anything", 1), 0);
    }

    fn hang(topic: &str, partition: i32) -> Hanging {
        Hanging {
            topic: topic.to_owned(),
            partition,
            epoch: 0,
            coordinator_epoch: 0,
            start_offset: 10,
        }
    }

    #[test]
    fn offsets_that_hang_are_aborted_outputs_alone_are_committed() {
        let outputs = [hang("out", 0), hang("out", 2)];
        assert_eq!(outcome_for(&outputs, Some(7)), Outcome::Commit);
        let with_offsets = [hang("out", 0), hang(OFFSETS_TOPIC, 7)];
        assert_eq!(outcome_for(&with_offsets, Some(7)), Outcome::Abort);
        // Another group's offsets partition is not this job's offsets.
        let other = [hang("out", 0), hang(OFFSETS_TOPIC, 3)];
        assert_eq!(outcome_for(&other, Some(7)), Outcome::Commit);
    }
}
