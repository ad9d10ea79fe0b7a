//! The backfill estimate and retention pre-flight against the real broker: records with
//! explicit old and new timestamps, counted from a start time; a topic whose oldest records
//! were deleted; a missing topic.

use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::producer::FutureRecord;
use rdkafka::topic_partition_list::Offset;
use sluice_provisioners::kafka::{KafkaProvisionError, KafkaProvisioner};
use sluice_tests::TestNamespace;

const DAY_MS: i64 = 86_400_000;
const PARTITIONS: i32 = 3;
/// Records per partition with an old timestamp, then with a recent one.
const OLD: i64 = 4;
const NEW: i64 = 5;
const VALUE_BYTES: usize = 200;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A topic of the namespace that keeps records forever (so the broker's retention does not
/// remove the deliberately old ones).
async fn create_topic(ns: &TestNamespace, name: &str) -> String {
    let topic = ns.topic(name);
    let results = ns
        .kafka_admin()
        .create_topics(
            &[
                NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(1))
                    .set("retention.ms", "-1"),
            ],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .unwrap();
    for result in results {
        result.unwrap();
    }
    topic
}

/// Writes `OLD` records stamped 30 days ago then `NEW` stamped 1 day ago to every
/// partition; returns the two base timestamps.
async fn fill(ns: &TestNamespace, topic: &str) -> (i64, i64) {
    let producer = ns.kafka_producer();
    let now = now_ms();
    let (old, new) = (now - 30 * DAY_MS, now - DAY_MS);
    let value = "x".repeat(VALUE_BYTES);
    for partition in 0..PARTITIONS {
        for i in 0..OLD + NEW {
            let timestamp = if i < OLD { old + i } else { new + i };
            let key = format!("key-{partition}-{i:03}");
            producer
                .send(
                    FutureRecord::to(topic)
                        .partition(partition)
                        .key(&key)
                        .payload(&value)
                        .timestamp(timestamp),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
        }
    }
    (old, new)
}

fn provisioner(ns: &TestNamespace) -> KafkaProvisioner {
    KafkaProvisioner::new(&ns.services().kafka_bootstrap, 1).unwrap()
}

#[tokio::test]
async fn counts_events_after_from_and_estimates_their_size() {
    let ns = TestNamespace::new("kbackfill_count");
    let topic = create_topic(&ns, "orders").await;
    let (old, new) = fill(&ns, &topic).await;
    let kafka = provisioner(&ns);

    assert_eq!(
        kafka.partition_count(&topic).await.unwrap(),
        Some(PARTITIONS)
    );

    // From between the old and the new records: exactly the new ones.
    let from = now_ms() - 10 * DAY_MS;
    let middle = kafka.estimate_backfill(&topic, Some(from)).await.unwrap();
    let expected = u64::try_from(i64::from(PARTITIONS) * NEW).unwrap();
    assert_eq!(middle.events, expected, "{middle:?}");
    assert_eq!(middle.partitions, PARTITIONS);
    assert_eq!(middle.from_ms, Some(from));
    assert_eq!(middle.topic, topic);
    let per_record = (VALUE_BYTES + "key-0-000".len()) as u64;
    assert!(
        middle.bytes >= expected * per_record / 2 && middle.bytes <= expected * per_record * 2,
        "{} bytes for {expected} records of {per_record} bytes",
        middle.bytes
    );
    assert_eq!(middle.earliest_ms, Some(old), "{middle:?}");
    assert_eq!(middle.retention_warning, None);

    // From the beginning: everything; from the future: nothing.
    let all = kafka.estimate_backfill(&topic, None).await.unwrap();
    assert_eq!(
        all.events,
        u64::try_from(i64::from(PARTITIONS) * (OLD + NEW)).unwrap()
    );
    assert_eq!(all.earliest_ms, Some(old));
    assert!(all.bytes > middle.bytes);
    let future = kafka
        .estimate_backfill(&topic, Some(now_ms() + DAY_MS))
        .await
        .unwrap();
    assert_eq!((future.events, future.bytes), (0, 0));
    // From just before the new records: still only those.
    let recent = kafka
        .estimate_backfill(&topic, Some(new - 1))
        .await
        .unwrap();
    assert_eq!(recent.events, expected);
}

#[tokio::test]
async fn deleted_history_raises_the_retention_warning() {
    let ns = TestNamespace::new("kbackfill_retention");
    let topic = create_topic(&ns, "payments").await;
    let (old, new) = fill(&ns, &topic).await;
    let kafka = provisioner(&ns);

    // Remove the old records, as retention would.
    let mut offsets = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        offsets
            .add_partition_offset(&topic, partition, Offset::Offset(OLD))
            .unwrap();
    }
    let deleted = ns
        .kafka_admin()
        .delete_records(&offsets, &AdminOptions::new())
        .await
        .unwrap();
    for element in deleted.elements() {
        element.error().unwrap();
    }

    let asked = old - DAY_MS;
    let estimate = kafka.estimate_backfill(&topic, Some(asked)).await.unwrap();
    assert_eq!(
        estimate.events,
        u64::try_from(i64::from(PARTITIONS) * NEW).unwrap()
    );
    assert!(
        estimate.earliest_ms.is_some_and(|e| e >= new),
        "{estimate:?}"
    );
    let warning = estimate.retention_warning.expect("a retention warning");
    assert!(warning.contains(&topic), "{warning}");
    let asked_text = chrono::DateTime::from_timestamp_millis(asked)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    assert!(warning.contains(&asked_text), "{warning}");

    // Reading from the beginning asks for nothing older than what is there.
    let all = kafka.estimate_backfill(&topic, None).await.unwrap();
    assert_eq!(all.retention_warning, None);
    assert_eq!(all.events, estimate.events);
}

#[tokio::test]
async fn a_missing_topic_is_a_clear_error() {
    let ns = TestNamespace::new("kbackfill_missing");
    let topic = ns.topic("nowhere");
    let kafka = provisioner(&ns);
    assert_eq!(kafka.partition_count(&topic).await.unwrap(), None);
    let error = kafka.estimate_backfill(&topic, None).await.unwrap_err();
    assert!(
        matches!(&error, KafkaProvisionError::MissingTopic { topic: t } if *t == topic),
        "{error:?}"
    );
    assert!(error.to_string().contains(&topic), "{error}");
    // Asking did not create it.
    assert_eq!(kafka.partition_count(&topic).await.unwrap(), None);
}
