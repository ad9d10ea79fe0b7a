//! Hand-run check of the Kafka Connect baseline through its Rust entry point
//! (`sluice_tests::connect`) against the real services of `make services`: the same check
//! as `tests/bench/connect/selfcheck.sh`, with the records written by
//! [`sluice_tests::connect::Envelope`] and the sink run by
//! [`sluice_tests::connect::run_jdbc_sink`].
//!
//! N events (default 200,000) of an orders-with-customer product over N/4 order ids (so
//! every key is upserted 4 times; event i updates order i mod K) are produced to a fresh
//! topic as JSON with an embedded Connect schema; a table of the product's shape is made
//! in a scratch schema; then, for each batch size, the table is emptied, the Debezium JDBC
//! sink loads the topic, and the table must hold exactly the latest event of every key
//! (count and a sample of rows). Prints one line per batch size.
//!
//! `cargo bench -p sluice-tests --bench connect_baseline`; tune with `SLUICE_BENCH_EVENTS`,
//! `SLUICE_BENCH_KEYS` and `SLUICE_CONNECT_BATCH_SIZES` (space separated; default: the
//! script's tuned batch size only). Not part of `make bench` nor `make test`: every run
//! starts a Connect JVM. Everything it creates is removed at the end, also on failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rdkafka::producer::FutureRecord;
use serde_json::{Map, Value, json};
use sluice_tests::bench::env_or;
use sluice_tests::connect::{
    ConnectField, ConnectType, Envelope, JdbcSinkOptions, KEY_STRUCT, VALUE_STRUCT, run_jdbc_sink,
};
use sluice_tests::{TestNamespace, sql_with_ident};

const STATUSES: [&str; 7] = [
    "new",
    "paid",
    "packed",
    "shipped",
    "delivered",
    "returned",
    "cancelled",
];

const KEY: &[ConnectField<'static>] = &[("order_id", ConnectType::Int64, false)];
const VALUE: &[ConnectField<'static>] = &[
    ("order_id", ConnectType::Int64, false),
    ("amount", ConnectType::Float64, true),
    ("status", ConnectType::String, true),
    ("customer_name", ConnectType::String, true),
    ("created_at", ConnectType::ZonedTimestamp, true),
];

/// Event `i` of `keys` order ids, as Sluice's output row.
fn event(i: u64, keys: u64) -> Map<String, Value> {
    let k = i % keys;
    let row = json!({
        "order_id": k,
        "amount": (i as f64).mul_add(0.01, 1.0),
        "status": STATUSES[(i % 7) as usize],
        "customer_name": format!("customer {}", (k * 31) % 1000),
        "created_at": format!(
            "2026-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            1 + i % 12, 1 + i % 28, i % 24, i % 60, (i / 60) % 60
        ),
    });
    row.as_object().unwrap().clone()
}

#[tokio::main]
async fn main() {
    let events: u64 = env_or("SLUICE_BENCH_EVENTS", 200_000);
    let keys: u64 = env_or("SLUICE_BENCH_KEYS", (events / 4).max(1));
    assert!(keys >= 1 && keys <= events, "need 1 <= keys <= events");
    let batches: Vec<Option<u32>> = std::env::var("SLUICE_CONNECT_BATCH_SIZES")
        .ok()
        .map(|s| {
            s.split_whitespace()
                .map(|b| Some(b.parse().expect("batch sizes are numbers")))
                .collect()
        })
        .filter(|v: &Vec<_>| !v.is_empty())
        .unwrap_or_else(|| vec![None]);

    let ns = TestNamespace::new("connect");
    let outcome = run(&ns, events, keys, &batches).await;
    let problems = ns.cleanup().await;
    if !problems.is_empty() {
        eprintln!("cleanup problems: {problems:?}");
    }
    if let Err(e) = outcome {
        eprintln!("connect_baseline failed: {e}");
        std::process::exit(1);
    }
}

async fn run(
    ns: &TestNamespace,
    events: u64,
    keys: u64,
    batches: &[Option<u32>],
) -> Result<(), String> {
    let topic = ns
        .create_topic("orders-with-customer-connect", 1)
        .await
        .map_err(|e| e.to_string())?;
    let pool = ns.pg_pool().await.map_err(|e| e.to_string())?;
    let schema = ns.pg_schema();
    let table = format!("{schema}.orders_with_customer");
    sqlx::query(
        "CREATE TABLE orders_with_customer (order_id bigint PRIMARY KEY, amount double \
         precision, status text, customer_name text, created_at timestamptz)",
    )
    .execute(&pool)
    .await
    .map_err(|e| e.to_string())?;

    eprintln!("producing {events} events over {keys} keys to {topic}");
    let key_env = Envelope::new(KEY_STRUCT, KEY);
    let value_env = Envelope::new(VALUE_STRUCT, VALUE);
    let producer = ns.kafka_producer();
    let mut pending = Vec::new();
    for i in 0..events {
        let row = event(i, keys);
        let (k, v) = (key_env.wrap(&row), value_env.wrap(&row));
        let delivery = producer
            .send_result(FutureRecord::to(&topic).key(&k).payload(&v))
            .map_err(|(e, _)| format!("produce: {e}"))?;
        pending.push(delivery);
        if pending.len() >= 20_000 || i + 1 == events {
            for d in pending.drain(..) {
                d.await
                    .map_err(|_| "produce: cancelled".to_owned())?
                    .map_err(|(e, _)| format!("produce: {e}"))?;
            }
        }
    }

    let services = ns.services();
    for &batch in batches {
        sqlx::query("TRUNCATE orders_with_customer")
            .execute(&pool)
            .await
            .map_err(|e| e.to_string())?;
        let mut opts = JdbcSinkOptions::new(
            &services.kafka_bootstrap,
            &topic,
            &services.postgres_url,
            &table,
        );
        opts.expect = Some(keys);
        opts.batch_size = batch;
        opts.timeout = Duration::from_secs(900);
        let run = tokio::task::spawn_blocking(move || run_jdbc_sink(&opts))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        check(&pool, &schema, events, keys).await?;
        println!(
            "batch.size {:>6}: {} events -> {} rows, {:.1} s ({:.1} s startup), {:.0} events/s \
             after startup ({:.0} overall), JVM CPU {:.1} s ({:.1} s loading), peak RSS {} MiB",
            run.batch_size,
            run.events,
            run.rows,
            run.seconds,
            run.startup_seconds,
            run.load_events_per_s,
            run.events_per_s,
            run.cpu_seconds,
            run.load_cpu_seconds,
            run.peak_rss_kib / 1024
        );
    }
    Ok(())
}

/// The table holds one row per key, the latest event's, for a sample of keys.
async fn check(pool: &sqlx::PgPool, schema: &str, events: u64, keys: u64) -> Result<(), String> {
    let count: i64 = sqlx::query_scalar(sql_with_ident(
        "SELECT count(*) FROM ",
        schema,
        ".orders_with_customer",
    ))
    .fetch_one(pool)
    .await
    .map_err(|e| e.to_string())?;
    if count != keys as i64 {
        return Err(format!("{count} rows, expected {keys}"));
    }
    for k in [0, 1, keys / 2, keys - 1] {
        let last = (events - 1 - k) / keys * keys + k;
        let want = event(last, keys);
        let (amount, status, name, epoch): (f64, String, String, i64) = sqlx::query_as(
            "SELECT amount, status, customer_name, extract(epoch FROM created_at)::bigint \
             FROM orders_with_customer WHERE order_id = $1",
        )
        .bind(k as i64)
        .fetch_one(pool)
        .await
        .map_err(|e| format!("row {k}: {e}"))?;
        let want_epoch = chrono::DateTime::parse_from_rfc3339(want["created_at"].as_str().unwrap())
            .unwrap()
            .timestamp();
        if amount != want["amount"].as_f64().unwrap()
            || status != want["status"]
            || name != want["customer_name"]
            || epoch != want_epoch
        {
            return Err(format!(
                "row {k}: got ({amount}, {status}, {name}, {epoch}), want {want:?}"
            ));
        }
    }
    Ok(())
}
