//! `sluice demo` against the real Kafka of `make services` and a real `sluice serve`: the
//! three retail topics are created with their partition counts, hold exactly the events the
//! summary reports, every record is valid against its dataset's schema with its timestamp in
//! the `--days` window, and the datasets are in the catalog. Topics carry a unique prefix
//! and are deleted at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

mod common;
use common::Serve;

const ADMIN_TOKEN: &str = "slc_demo-test-admin-token-0123456789ab";
const SECRET_KEY: &str = "demo-test-secret-key-0123456789abcdef";
const DAYS: i64 = 90;

/// Deletes the test's topics however the test ends.
struct Topics(Vec<String>);

impl Drop for Topics {
    fn drop(&mut self) {
        let admin: AdminClient<DefaultClientContext> = kafka_config().create().unwrap();
        let names: Vec<&str> = self.0.iter().map(String::as_str).collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = runtime.block_on(admin.delete_topics(&names, &AdminOptions::new()));
    }
}

fn kafka_config() -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set(
        "bootstrap.servers",
        &sluice_tests::services().kafka_bootstrap,
    );
    config
}

/// Every record of `topic`: (key, value, timestamp ms), read to the high watermarks.
fn read_all(topic: &str) -> (usize, Vec<(String, Value, i64)>) {
    let consumer: BaseConsumer = kafka_config()
        .set("group.id", format!("sluice-demo-test-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let partitions = metadata.topics()[0].partitions().len();
    let mut assignment = TopicPartitionList::new();
    let mut remaining = 0i64;
    for p in 0..partitions as i32 {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap();
        remaining += high - low;
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (records.len() as i64) < remaining {
        assert!(Instant::now() < deadline, "{topic}: read {}", records.len());
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
            let value: Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
            let ts = message.timestamp().to_millis().unwrap();
            records.push((key, value, ts));
        }
    }
    (partitions, records)
}

/// `topic  N events` lines of the summary.
fn summary_counts(stdout: &str) -> HashMap<String, usize> {
    stdout
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [topic, n, "events"] => Some(((*topic).to_owned(), n.parse().ok()?)),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn demo_produces_valid_retail_data_and_registers_the_datasets() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let prefix = format!("demo-t{}-{nanos}.", std::process::id());
    let topics = Topics(
        ["shop.orders", "crm.customers", "pay.payments"]
            .iter()
            .map(|t| format!("{prefix}{t}"))
            .collect(),
    );
    let serve = Serve::start("demo-test", ADMIN_TOKEN, SECRET_KEY, &[]);

    let started_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let stdout = serve.must(&[
        "demo",
        "--orders",
        "500",
        "--customers",
        "50",
        "--seed",
        "7",
        "--topic-prefix",
        &prefix,
    ]);
    let finished_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let counts = summary_counts(&stdout);

    let schemas = retail_schemas();

    for (name, partitions_wanted) in [
        ("shop.orders", 6),
        ("crm.customers", 1),
        ("pay.payments", 6),
    ] {
        let topic = format!("{prefix}{name}");
        let (partitions, records) = read_all(&topic);
        assert_eq!(partitions, partitions_wanted, "{topic} partitions");
        assert_eq!(
            Some(&records.len()),
            counts.get(&topic),
            "{topic}: records vs summary\n{stdout}"
        );
        assert!(!records.is_empty(), "{topic} is empty");
        let validator = jsonschema::validator_for(&schemas[name]).unwrap();
        for (key, value, ts) in &records {
            let errors: Vec<String> = validator
                .iter_errors(value)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{topic}: {value}: {errors:?}");
            assert_eq!(value["id"], *key, "{topic}: keyed by the dataset key");
            assert!(
                *ts >= started_ms - DAYS * 86_400_000 - 1000 && *ts <= finished_ms,
                "{topic}: timestamp {ts} outside the last {DAYS} days"
            );
            if let Some(created) = value.get("created_at").and_then(Value::as_str) {
                let created = chrono_ms(created);
                assert_eq!(created, *ts, "{topic}: record timestamp is created_at");
            }
        }
        if name == "shop.orders" {
            let placed = records
                .iter()
                .filter(|(_, v, _)| v["status"] == "PLACED")
                .count();
            assert_eq!(placed, 500, "one PLACED event per order");
        }
        if name == "crm.customers" {
            assert_eq!(records.len(), 50);
        }
    }

    let listed = serve.must(&["get", "datasets"]);
    for name in ["shop.orders", "crm.customers", "pay.payments"] {
        assert!(
            listed.contains(&format!("{prefix}{name}")),
            "{prefix}{name} not listed:\n{listed}"
        );
    }
    drop(topics);
}

/// The schema of each retail dataset, by its unprefixed name.
fn retail_schemas() -> HashMap<String, Value> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/retail/datasets.yaml"
    ))
    .unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let doc: Value = serde::Deserialize::deserialize(doc).unwrap();
            (
                doc["metadata"]["name"].as_str().unwrap().to_owned(),
                doc["spec"]["schema"].clone(),
            )
        })
        .collect()
}

/// Milliseconds since the epoch of an RFC 3339 time with millisecond precision and `Z`.
fn chrono_ms(text: &str) -> i64 {
    // YYYY-MM-DDTHH:MM:SS.mmmZ, parsed by hand (the test needs no date crate).
    let n = |range: std::ops::Range<usize>| -> i64 { text[range].parse().unwrap() };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (hh, mm, ss, ms) = (n(11..13), n(14..16), n(17..19), n(20..23));
    assert!(text.ends_with('Z'), "{text}");
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms
}
