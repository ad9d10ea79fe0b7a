//! `sluice demo`: produces the retail example's data into Kafka — customers (a compacted
//! table), orders (a stream of status events) and payments — and registers the example's
//! datasets through the API, so a fresh installation has something to provision from.
//!
//! The records are generated from a seed: the same seed gives the same keys and values;
//! only the event times move with the clock (they are offsets back from now). Every record
//! is valid against its dataset's schema in `examples/retail/datasets.yaml` (compiled in),
//! keyed by the dataset key, with the Kafka record timestamp equal to its `created_at`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use serde_json::{Value, json};
use sluice_schemas::validate::parse_documents;

use super::Failure;
use super::apply::apply_documents;
use crate::args::DemoArgs;
use crate::client::Client;
use crate::input::InputDocument;

/// The retail example's datasets, as published in the repository.
const DATASETS_YAML: &str = include_str!("../../../examples/retail/datasets.yaml");
/// Where [`DATASETS_YAML`] comes from, for messages.
const DATASETS_FILE: &str = "examples/retail/datasets.yaml";

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// How long a metadata request or topic creation may take before Kafka counts as unreachable.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(15);

/// One topic of the demo: the example's topic name, partitions and whether it is compacted.
struct TopicSpec {
    name: &'static str,
    partitions: i32,
    compact: bool,
}

const CUSTOMERS: TopicSpec = TopicSpec {
    name: "crm.customers",
    partitions: 1,
    compact: true,
};
const ORDERS: TopicSpec = TopicSpec {
    name: "shop.orders",
    partitions: 6,
    compact: false,
};
const PAYMENTS: TopicSpec = TopicSpec {
    name: "pay.payments",
    partitions: 6,
    compact: false,
};

/// One record to produce: key, JSON value and Kafka timestamp (ms since the epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The record key (the dataset key's value).
    pub key: String,
    /// The JSON value.
    pub value: String,
    /// The Kafka record timestamp, equal to the value's `created_at` where it has one.
    pub timestamp_ms: i64,
}

/// The generated data, per topic, in production order.
#[derive(Debug, Default)]
pub struct Data {
    /// `crm.customers` records.
    pub customers: Vec<Record>,
    /// `shop.orders` records (several per order).
    pub orders: Vec<Record>,
    /// `pay.payments` records.
    pub payments: Vec<Record>,
}

/// Runs `sluice demo`.
pub async fn run(client: &Client, args: &DemoArgs) -> Result<(), Failure> {
    check_args(args)?;
    let bootstrap = args
        .bootstrap
        .as_deref()
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| {
            Failure::Usage(
                "no Kafka to produce to: pass --bootstrap HOST:PORT or set SLUICE_KAFKA_BOOTSTRAP"
                    .to_owned(),
            )
        })?;
    let started = Instant::now();
    let now_ms = Utc::now().timestamp() * 1000;
    let data = generate(args, now_ms);

    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "10000")
        .set("log_level", "3");
    let producer: BaseProducer<Delivery> = config
        .clone()
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .set("message.timeout.ms", "60000")
        .create_with_context(Delivery::default())
        .map_err(|e| Failure::Rejected(format!("Kafka at {bootstrap}: {e}")))?;
    let metadata = producer
        .client()
        .fetch_metadata(None, KAFKA_TIMEOUT)
        .map_err(|e| Failure::Rejected(format!("cannot reach Kafka at {bootstrap}: {e}")))?;
    let existing: Vec<(String, usize)> = metadata
        .topics()
        .iter()
        .map(|t| (t.name().to_owned(), t.partitions().len()))
        .collect();

    let admin: AdminClient<DefaultClientContext> = config
        .create()
        .map_err(|e| Failure::Rejected(format!("Kafka at {bootstrap}: {e}")))?;
    let prefix = &args.topic_prefix;
    for spec in [&CUSTOMERS, &ORDERS, &PAYMENTS] {
        ensure_topic(
            &admin,
            bootstrap,
            &format!("{prefix}{}", spec.name),
            spec,
            &existing,
        )
        .await?;
    }

    let mut totals = Vec::new();
    for (spec, records) in [
        (&CUSTOMERS, &data.customers),
        (&ORDERS, &data.orders),
        (&PAYMENTS, &data.payments),
    ] {
        let topic = format!("{prefix}{}", spec.name);
        let t0 = Instant::now();
        produce(&producer, bootstrap, &topic, records)?;
        println!(
            "{topic}: produced {} events in {:.1}s",
            records.len(),
            t0.elapsed().as_secs_f64()
        );
        totals.push((topic, records.len()));
    }

    if !args.no_register {
        let documents = dataset_documents(prefix)?;
        apply_documents(client, documents, false, Duration::ZERO)
            .await
            .map_err(|e| match e {
                Failure::Rejected(m) => Failure::Rejected(format!(
                    "registering the datasets: {m} (the data is in Kafka; --no-register skips this)"
                )),
                other => other,
            })?;
    }

    let total: usize = totals.iter().map(|(_, n)| n).sum();
    let width = totals.iter().map(|(t, _)| t.len()).max().unwrap_or(0);
    println!(
        "demo: {total} events in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    for (topic, n) in &totals {
        println!("  {topic:<width$}  {n} events");
    }
    Ok(())
}

fn check_args(args: &DemoArgs) -> Result<(), Failure> {
    if !(0.0..=1.0).contains(&args.payments_ratio) {
        return Err(Failure::Usage(format!(
            "--payments-ratio must lie between 0 and 1, not {}",
            args.payments_ratio
        )));
    }
    if args.days == 0 {
        return Err(Failure::Usage("--days must be at least 1".to_owned()));
    }
    if args.customers == 0 && args.orders > 0 {
        return Err(Failure::Usage(
            "--customers must be at least 1 when there are orders".to_owned(),
        ));
    }
    let prefix_ok = args
        .topic_prefix
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
        && !args.topic_prefix.starts_with(['.', '-', '_']);
    if !prefix_ok {
        return Err(Failure::Usage(format!(
            "--topic-prefix `{}` must be lowercase letters, digits, dots, dashes or underscores, \
             starting with a letter or digit (it prefixes topic and dataset names)",
            args.topic_prefix
        )));
    }
    Ok(())
}

/// Creates the topic unless it exists; an existing topic is used as it is.
async fn ensure_topic(
    admin: &AdminClient<DefaultClientContext>,
    bootstrap: &str,
    topic: &str,
    spec: &TopicSpec,
    existing: &[(String, usize)],
) -> Result<(), Failure> {
    let kind = if spec.compact { ", compacted" } else { "" };
    if let Some((_, partitions)) = existing.iter().find(|(name, _)| name == topic) {
        println!(
            "{topic}: exists ({partitions} partition{}), used as it is",
            if *partitions == 1 { "" } else { "s" }
        );
        return Ok(());
    }
    // Replication -1: the broker's default replication factor.
    let mut new = NewTopic::new(topic, spec.partitions, TopicReplication::Fixed(-1));
    if spec.compact {
        new = new.set("cleanup.policy", "compact");
    }
    let options = AdminOptions::new().operation_timeout(Some(KAFKA_TIMEOUT));
    let results = admin
        .create_topics([&new], &options)
        .await
        .map_err(|e| Failure::Rejected(format!("cannot create {topic} at {bootstrap}: {e}")))?;
    for result in results {
        match result {
            Ok(_) => println!(
                "{topic}: created ({} partition{}{kind})",
                spec.partitions,
                if spec.partitions == 1 { "" } else { "s" }
            ),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                println!("{topic}: exists, used as it is")
            }
            Err((_, code)) => {
                return Err(Failure::Rejected(format!(
                    "cannot create {topic} at {bootstrap}: {code}"
                )));
            }
        }
    }
    Ok(())
}

/// Counts failed deliveries and keeps the first reason.
#[derive(Default)]
struct Delivery {
    failed: AtomicU64,
    first: Mutex<Option<String>>,
}

impl ClientContext for Delivery {}

impl ProducerContext for Delivery {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut first) = self.first.lock() {
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Produces every record to `topic` and waits until all are acknowledged.
fn produce(
    producer: &BaseProducer<Delivery>,
    bootstrap: &str,
    topic: &str,
    records: &[Record],
) -> Result<(), Failure> {
    for (i, r) in records.iter().enumerate() {
        let mut record = BaseRecord::to(topic)
            .key(r.key.as_str())
            .payload(r.value.as_str())
            .timestamp(r.timestamp_ms);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    producer.poll(Duration::from_millis(50));
                    record = back;
                }
                Err((e, _)) => {
                    return Err(Failure::Rejected(format!(
                        "cannot produce to {topic} at {bootstrap}: {e}"
                    )));
                }
            }
        }
        if i % 1000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(|e| Failure::Rejected(format!("producing to {topic} at {bootstrap}: {e}")))?;
    let context = producer.context();
    let failed = context.failed.swap(0, Ordering::Relaxed);
    if failed > 0 {
        let reason = context
            .first
            .lock()
            .ok()
            .and_then(|mut f| f.take())
            .unwrap_or_default();
        return Err(Failure::Rejected(format!(
            "{failed} events to {topic} at {bootstrap} were not delivered: {reason}"
        )));
    }
    Ok(())
}

/// The example's dataset documents, with `prefix` before each name and topic.
fn dataset_documents(prefix: &str) -> Result<Vec<InputDocument>, Failure> {
    let values = parse_documents(DATASETS_YAML.as_bytes())
        .map_err(|p| Failure::Rejected(format!("{DATASETS_FILE}: {}", p.message)))?;
    Ok(values
        .into_iter()
        .filter(|v| v.get("kind").and_then(Value::as_str) == Some("Dataset"))
        .map(|v| with_prefix(v, prefix))
        .enumerate()
        .map(|(i, value)| InputDocument {
            file: DATASETS_FILE.to_owned(),
            index: i + 1,
            value,
        })
        .collect())
}

fn with_prefix(mut value: Value, prefix: &str) -> Value {
    if prefix.is_empty() {
        return value;
    }
    for pointer in ["/metadata/name", "/spec/topic"] {
        if let Some(Value::String(s)) = value.pointer_mut(pointer) {
            *s = format!("{prefix}{s}");
        }
    }
    value
}

/// SplitMix64: a small, fast generator whose output depends on the seed alone (no crate
/// version can change the demo data).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One of `choices`, by weight.
    fn weighted<'a>(&mut self, choices: &[(&'a str, f64)]) -> &'a str {
        let total: f64 = choices.iter().map(|(_, w)| w).sum();
        let mut x = self.unit() * total;
        for (choice, weight) in choices {
            if x < *weight {
                return choice;
            }
            x -= weight;
        }
        choices.last().map(|(c, _)| *c).unwrap_or_default()
    }

    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[(self.next_u64() % choices.len() as u64) as usize]
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

const FIRST: &[&str] = &[
    "Ada", "Ben", "Chloé", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal",
    "Lena", "Mateo", "Nora", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Uma", "Viktor",
    "Wen", "Yara", "Zoé",
];
const LAST: &[&str] = &[
    "Abe", "Becker", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Hansen", "Ito", "Jansen",
    "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi", "Schmidt", "Tanaka",
    "Weber",
];

/// Customers are chosen with Zipf-like weights: `c-1` orders most, a long tail rarely.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: u64, exponent: f64) -> Zipf {
        let mut sum = 0.0;
        let cumulative = (1..=n)
            .map(|k| {
                sum += 1.0 / (k as f64).powf(exponent);
                sum
            })
            .collect();
        Zipf { cumulative }
    }

    /// A 0-based rank.
    fn sample(&self, rng: &mut Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = rng.unit() * total;
        self.cumulative
            .partition_point(|c| *c <= x)
            .min(self.cumulative.len().saturating_sub(1))
    }
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Generates the demo data for `args`, with event times up to `now_ms`.
pub fn generate(args: &DemoArgs, now_ms: i64) -> Data {
    let mut rng = Rng(args.seed);
    let start_ms = now_ms - i64::from(args.days) * DAY_MS;
    let mut data = Data::default();

    // Customers: written during the first hour of the window, before any order.
    let mut emails = Vec::new();
    for n in 1..=args.customers {
        let first = rng.pick(FIRST);
        let last = rng.pick(LAST);
        let email = format!(
            "{}.{}{n}@example.com",
            ascii_lower(first),
            ascii_lower(last)
        );
        let tier = rng.weighted(&[
            ("bronze", 60.0),
            ("silver", 25.0),
            ("gold", 12.0),
            ("platinum", 3.0),
        ]);
        let country = rng.weighted(&[
            ("DE", 30.0),
            ("FR", 20.0),
            ("GB", 15.0),
            ("US", 15.0),
            ("NL", 8.0),
            ("ES", 7.0),
            ("JP", 5.0),
        ]);
        let id = format!("c-{n}");
        let value = json!({
            "id": id,
            "name": format!("{first} {last}"),
            "email": email,
            "tier": tier,
            "country": country,
        });
        data.customers.push(Record {
            key: id,
            value: value.to_string(),
            timestamp_ms: start_ms + (n as i64 - 1) * HOUR_MS / args.customers as i64,
        });
        emails.push(email);
    }

    // Orders: placed uniformly between one hour into the window and one hour before now
    // (so that payments, up to an hour later, are not in the future), ids in time order.
    let mut placed: Vec<i64> = (0..args.orders)
        .map(|_| rng.range(start_ms + HOUR_MS, now_ms - HOUR_MS))
        .collect();
    placed.sort_unstable();
    let zipf = Zipf::new(args.customers, 1.07);
    let mut paid = Vec::new();
    for (i, created) in placed.into_iter().enumerate() {
        let id = format!("o-{}", i + 1);
        let customer = zipf.sample(&mut rng);
        let amount = cents((45f64.ln() + 0.8 * rng.normal()).exp().clamp(1.0, 5000.0));
        let currency = rng.weighted(&[("EUR", 70.0), ("USD", 20.0), ("GBP", 10.0)]);
        let statuses: &[&str] = if rng.chance(0.12) {
            &["PLACED", "CANCELLED"]
        } else if now_ms - created > 3 * DAY_MS && rng.chance(0.97) || rng.chance(0.5) {
            &["PLACED", "PAID", "SHIPPED"]
        } else {
            &["PLACED", "PAID"]
        };
        for status in statuses {
            let value = json!({
                "id": id,
                "customer_id": format!("c-{}", customer + 1),
                "amount": amount,
                "currency": currency,
                "status": status,
                "created_at": rfc3339(created),
                "shipping_email": emails[customer],
            });
            data.orders.push(Record {
                key: id.clone(),
                value: value.to_string(),
                timestamp_ms: created,
            });
        }
        if statuses.contains(&"PAID") {
            paid.push((id, amount, created));
        }
    }

    // Payments: for a share of the paid orders, within an hour after the order; mostly
    // the order amount, sometimes with a tip, rarely a partial payment.
    let mut payments = Vec::new();
    for (order_id, amount, created) in paid {
        if !rng.chance(args.payments_ratio) {
            continue;
        }
        let at = created + rng.range(30_000, HOUR_MS - 60_000);
        let paid_amount = match rng.unit() {
            x if x < 0.90 => amount,
            x if x < 0.97 => cents(amount + 1.0 + rng.unit() * 9.0),
            _ => cents(amount * 0.5),
        };
        let method = rng.weighted(&[("card", 70.0), ("paypal", 20.0), ("bank_transfer", 10.0)]);
        payments.push((at, order_id, paid_amount, method));
    }
    payments.sort_by_key(|p| p.0);
    for (i, (at, order_id, amount, method)) in payments.into_iter().enumerate() {
        let id = format!("p-{}", i + 1);
        let value = json!({
            "id": id,
            "order_id": order_id,
            "amount": amount,
            "method": method,
            "created_at": rfc3339(at),
        });
        data.payments.push(Record {
            key: id,
            value: value.to_string(),
            timestamp_ms: at,
        });
    }
    data
}

fn ascii_lower(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'é' => 'e',
            'í' => 'i',
            c => c.to_ascii_lowercase(),
        })
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(seed: u64) -> DemoArgs {
        DemoArgs {
            orders: 300,
            customers: 40,
            payments_ratio: 0.8,
            days: 30,
            bootstrap: None,
            seed,
            topic_prefix: String::new(),
            no_register: true,
        }
    }

    #[test]
    fn same_seed_same_data_and_lifecycles_are_complete() {
        let now = 1_780_000_000_000;
        let a = generate(&args(7), now);
        let b = generate(&args(7), now);
        assert_eq!(a.orders, b.orders);
        assert_eq!(a.payments, b.payments);
        assert_ne!(a.orders, generate(&args(8), now).orders);
        assert_eq!(a.customers.len(), 40);
        let first: Vec<Value> = a
            .orders
            .iter()
            .map(|r| serde_json::from_str(&r.value).unwrap())
            .collect();
        let placed = first.iter().filter(|v| v["status"] == "PLACED").count();
        assert_eq!(placed, 300);
        for r in a.orders.iter().chain(&a.payments).chain(&a.customers) {
            assert!(r.timestamp_ms <= now && r.timestamp_ms >= now - 30 * DAY_MS);
        }
        // Skewed: the most popular customer has far more than an even share.
        let top = first
            .iter()
            .filter(|v| v["status"] == "PLACED" && v["customer_id"] == "c-1")
            .count();
        assert!(top > 300 / 40 * 2, "c-1 has {top} orders");
    }

    #[test]
    fn prefix_rewrites_names_and_topics() {
        let docs = dataset_documents("t1.").unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].value["metadata"]["name"], "t1.shop.orders");
        assert_eq!(docs[0].value["spec"]["topic"], "t1.shop.orders");
    }
}
