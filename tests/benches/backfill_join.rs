//! Stream jobs at scale against the real services of `make services`: N order events
//! (default 10,000,000; JSON values of about 200 bytes, 6 partitions, event times spread over
//! 90 days, Zipf-distributed customer ids) joined with M customers (default 1,000,000, a
//! table dataset), backfilled into PostgreSQL, OpenSearch and Redis by one upsert product
//! each, then followed live; every figure beside a baseline measured in the same run.
//!
//! Setup (not timed): the customers and the orders are produced; every order has its own id
//! (key), so N events make N rows. Each row is the order joined with its customer
//! (`lookup`, left join), computed here by the bench from the generator, not by Sluice.
//!
//! Per target, in turn (`SLUICE_BENCH_TARGETS`, default `postgres,opensearch,redis`):
//! 1. **Sluice**: the product is approved through the in-process API; `Controller::run` and
//!    `Controller::run_jobs` run in this process. Timed from the approval until the phase is
//!    `Live` (the job's sink applied everything up to the backfill's end). CPU time of this
//!    process and of every service process (`/proc/<pid>/stat`, children included for
//!    PostgreSQL) over the phase, peak RSS of this process (VmHWM, reset at the approval),
//!    the highest RSS of the service processes (sampled every 500 ms).
//! 2. **Baselines**, same rows, loaded by the tools people use:
//!    PostgreSQL — `psql \copy` into a table made `LIKE` Sluice's (same columns, types,
//!    primary key), and `\copy` into an unindexed staging table followed by `INSERT … SELECT …
//!    ON CONFLICT … DO UPDATE … WHERE` version guard; OpenSearch — a direct `_bulk` loader
//!    (10,000 documents per request, one request at a time) into an index with Sluice's
//!    index's mappings, shards and replicas; Redis — `redis-cli --pipe` of one `HSET` per row
//!    with the same fields.
//!
//! 3. **Freshness** (`SLUICE_BENCH_FRESHNESS_SECS`, default 300; 0 skips it): new orders at
//!    a steady 10,000 events/s (`SLUICE_BENCH_RATE`) with this target's job the only one
//!    running (each target's product is deleted once its phases are done); every
//!    50th is a tracer whose key a reader polls every 20 ms (PostgreSQL: the view by primary
//!    key; OpenSearch: an `ids` search on the alias, so refresh counts; Redis: the pointer's
//!    version keys), measuring from the moment the event was handed to the producer until
//!    the reader sees it: p50, p99, max. These events are rows too: a later target's
//!    backfill reads them, its throughput counts them.
//!
//! Memory: the job's lookup state is the customers table, kept as JSON bytes per join key
//! (in memory up to `SLUICE_JOB_STATE_MEMORY`, then on disk); its size is counted as the
//! job counts it (key + value bytes + 48 per row) and compared with the rise of this
//! process's RSS over each phase (the process holds the API and the controller too, which
//! are there before the approval).
//!
//! Checks (exits non-zero otherwise): each target holds N rows plus the freshness phases'
//! so far, each baseline N, and 1,000 sampled rows equal the bench's own join. Ratios are
//! Sluice's events per second over the baseline's rows per second (one row per event).
//!
//! `cargo bench -p sluice-tests --bench backfill_join` (also part of `make bench`). Sizes:
//! `SLUICE_BENCH_EVENTS`, `SLUICE_BENCH_CUSTOMERS`; smoke: `SLUICE_BENCH_EVENTS=200000
//! SLUICE_BENCH_CUSTOMERS=20000 SLUICE_BENCH_FRESHNESS_SECS=20`. Everything it creates
//! (topics, consumer groups, schemas, roles, indices, keys, ACL users, temp files) is
//! removed at the end, also on failure.
//!
//! PostgreSQL also has the **Kafka Connect** baseline (`SLUICE_BENCH_CONNECT=0` skips it):
//! the same rows as schema-carrying JSON on a topic of their own (Connect cannot join),
//! loaded by a standalone worker with the Debezium JDBC sink in upsert mode
//! (`tests/bench/connect/jdbc-sink.sh`, its tuned batch size) into a table `LIKE` Sluice's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{Api, Names};

/// The allocator of the `sluice` binary: the job's memory is measured as it ships.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::Method;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Map, Value, json};
use sluice_api::AppState;
use sluice_api::auth::Role;
use sluice_controller::{Controller, ControllerConfig};
use sluice_store::{AuditKey, SecretBox, Store};
use sluice_tests::bench::{clock_ticks, env_or, proc_status_kib, reset_peak_rss};
use sluice_tests::connect::{
    ConnectField, ConnectRun, ConnectType, Envelope, JdbcSinkOptions, KEY_STRUCT, VALUE_STRUCT,
    run_jdbc_sink,
};
use sluice_tests::quote_pg_ident;
use tokio::sync::oneshot;

const ADMIN_TOKEN: &str = "slc_bench-join-admin-token";
const ORDER_PARTITIONS: i32 = 6;
const CUSTOMER_PARTITIONS: i32 = 3;
/// How long one backfill may take before the benchmark gives up.
const LIVE_LIMIT: Duration = Duration::from_secs(3 * 60 * 60);
/// Zipf exponent of the customer ids.
const ZIPF_S: f64 = 1.0;
/// Event times span this many days, ending at the start of the run.
const EVENT_DAYS: i64 = 90;
const STATUSES: [&str; 4] = ["PLACED", "PAID", "SHIPPED", "CANCELLED"];
const CHANNELS: [&str; 3] = ["web", "app", "store"];
const COUNTRIES: [&str; 8] = ["FR", "DE", "ES", "IT", "NL", "BE", "PL", "SE"];
const SEGMENTS: [&str; 3] = ["consumer", "smb", "enterprise"];
/// The output fields, in the order the baselines load them.
const COLUMNS: [&str; 9] = [
    "order_id",
    "customer_id",
    "amount",
    "qty",
    "status",
    "created_at",
    "customer_name",
    "customer_country",
    "customer_segment",
];
/// Documents per `_bulk` request of the OpenSearch baseline (Sluice's batch size).
const BULK_DOCS: usize = 10_000;
/// Every this-many-th freshness event is a tracer the readers look for.
const TRACER_EVERY: usize = 50;
/// Rows compared field by field per target.
const SAMPLE: usize = 1_000;

fn main() {
    // `RUST_LOG` (e.g. `sluice_pipeline=debug`) shows the job's own log, with times since
    // the start, to see where a phase's time goes.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .with_writer(std::io::stderr)
            .init();
    }
    let settings = Settings {
        events: env_or("SLUICE_BENCH_EVENTS", 10_000_000),
        customers: env_or("SLUICE_BENCH_CUSTOMERS", 1_000_000),
        freshness_secs: env_or("SLUICE_BENCH_FRESHNESS_SECS", 300),
        rate: env_or("SLUICE_BENCH_RATE", 10_000),
        connect: env_or("SLUICE_BENCH_CONNECT", 1) != 0,
        targets: std::env::var("SLUICE_BENCH_TARGETS")
            .unwrap_or_else(|_| "postgres,opensearch,redis".to_owned())
            .split(',')
            .filter_map(|t| Target::parse(t.trim()))
            .collect(),
    };
    let names = Names::new("joinbench");
    common::run(
        "backfill_join",
        &names,
        bench(Arc::clone(&names), settings),
        || cleanup(&names),
    );
}

/// What the run measures.
struct Settings {
    events: usize,
    customers: usize,
    freshness_secs: u64,
    rate: usize,
    /// Run the Kafka Connect baseline (`SLUICE_BENCH_CONNECT=0` skips it).
    connect: bool,
    targets: Vec<Target>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Postgres,
    OpenSearch,
    Redis,
}

impl Target {
    fn parse(name: &str) -> Option<Target> {
        match name {
            "postgres" | "pg" => Some(Target::Postgres),
            "opensearch" | "os" | "search" => Some(Target::OpenSearch),
            "redis" => Some(Target::Redis),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Target::Postgres => "PostgreSQL",
            Target::OpenSearch => "OpenSearch",
            Target::Redis => "Redis",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Target::Postgres => "pg",
            Target::OpenSearch => "os",
            Target::Redis => "rd",
        }
    }
}

impl Names {
    fn cluster(&self, target: Target) -> String {
        format!("{}-{}", target.short(), self.suffix)
    }
    fn orders(&self) -> String {
        format!("ds{}.orders", self.suffix)
    }
    fn customers(&self) -> String {
        format!("ds{}.customers", self.suffix)
    }
    fn product_name(target: Target) -> String {
        format!("orders-{}", target.short())
    }
    /// The target name: PostgreSQL view, OpenSearch alias, Redis key prefix.
    fn target_name(&self, target: Target) -> String {
        format!("orders_{}_{}", target.short(), self.suffix)
    }
    fn product(&self, target: Target) -> Value {
        let options = match target {
            Target::Postgres => json!({}),
            Target::OpenSearch => json!({"shards": 1, "replicas": 0}),
            Target::Redis => json!({"type": "hash"}),
        };
        json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "DataProduct",
            "metadata": {"name": Names::product_name(target), "team": self.team},
            "spec": {
                "sources": [
                    {"name": "o", "dataset": self.orders(), "from": "earliest"},
                    {"name": "c", "dataset": self.customers()}
                ],
                "joins": [{"type": "lookup", "right": "c", "on": "o.customer_id == c.id"}],
                "key": "o.id",
                "fields": {
                    "order_id": "o.id", "customer_id": "o.customer_id", "amount": "o.amount",
                    "qty": "o.qty", "status": "o.status", "created_at": "o.created_at",
                    "customer_name": "c.name", "customer_country": "c.country",
                    "customer_segment": "c.segment"
                },
                "target": {"cluster": self.cluster(target), "name": self.target_name(target),
                           "mode": "upsert", "options": options},
                "deletionPolicy": "Delete"
            }
        })
    }
}

// ---------------------------------------------------------------------------------------
// The workload: deterministic, regenerated wherever it is needed (never all held in memory).

/// A 64-bit mix of `seed` and `i` (splitmix64): the generator's only source of randomness.
fn mix(seed: u64, i: u64) -> u64 {
    let mut x = seed
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(i)
        .wrapping_add(0x632b_e59b_d9b4_e019);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A uniform double in [0, 1) from `x`.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Samples customer numbers with P(rank k) ∝ 1/k^s over `n` customers; ranks are scattered
/// over the customer numbers so the hot customers are not the first ones.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for k in 1..=n {
            sum += 1.0 / (k as f64).powf(s);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Zipf { cdf }
    }

    fn sample(&self, u: f64) -> usize {
        let rank = self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1);
        // A fixed odd multiplier permutes ranks over 0..n only when n is a power of two, so
        // scatter by a hash instead and accept the rare collision (two ranks, one customer).
        (mix(7, rank as u64) % self.cdf.len() as u64) as usize
    }
}

/// Customer `c`: key and value (about 130 bytes).
fn customer(c: usize) -> (String, Value) {
    let id = format!("c-{c:07}");
    let r = mix(1, c as u64);
    let value = json!({
        "id": id,
        "name": format!("Customer {c} {:08x}", r as u32),
        "country": COUNTRIES[(r >> 32) as usize % COUNTRIES.len()],
        "segment": SEGMENTS[(r >> 40) as usize % SEGMENTS.len()],
        "email": format!("customer{c}@example.com"),
    });
    (id, value)
}

/// Order `i` of the backfill: its key, JSON value (about 200 bytes) and event time (ms).
fn order(i: usize, n: usize, zipf: &Zipf, start_ms: i64) -> (String, String, i64) {
    let id = format!("o-{i:09}");
    order_with(&id, mix(2, i as u64), zipf, {
        let span = EVENT_DAYS * 86_400_000;
        start_ms - span + (span as f64 * i as f64 / n.max(1) as f64) as i64
    })
}

/// An order of key `id` from the random word `r`, at event time `at_ms`.
fn order_with(id: &str, r: u64, zipf: &Zipf, at_ms: i64) -> (String, String, i64) {
    let customer = zipf.sample(unit(mix(3, r)));
    let created = chrono::DateTime::from_timestamp_millis(at_ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let value = json!({
        "id": id,
        "customer_id": format!("c-{customer:07}"),
        "amount": (r % 100_000) as f64 / 100.0,
        "qty": 1 + (r >> 20) % 9,
        "status": STATUSES[(r >> 28) as usize % STATUSES.len()],
        "channel": CHANNELS[(r >> 34) as usize % CHANNELS.len()],
        "created_at": created,
        "note": format!("{:016x}{:016x}{:08x}", mix(4, r), mix(5, r), r as u32),
    })
    .to_string();
    (id.to_owned(), value, at_ms)
}

/// The joined row of an order value: field → JSON value, as Sluice writes it.
fn joined(order: &Value, customers: usize) -> Map<String, Value> {
    let customer_id = order["customer_id"].as_str().unwrap_or_default();
    let number: Option<usize> = customer_id.strip_prefix("c-").and_then(|n| n.parse().ok());
    let partner = number.filter(|n| *n < customers).map(|n| customer(n).1);
    let from_partner = |field: &str| {
        partner.as_ref().map_or(Value::Null, |p| {
            p.get(field).cloned().unwrap_or(Value::Null)
        })
    };
    let mut row = Map::new();
    row.insert("order_id".into(), order["id"].clone());
    row.insert("customer_id".into(), order["customer_id"].clone());
    row.insert("amount".into(), order["amount"].clone());
    row.insert("qty".into(), order["qty"].clone());
    row.insert("status".into(), order["status"].clone());
    row.insert("created_at".into(), order["created_at"].clone());
    row.insert("customer_name".into(), from_partner("name"));
    row.insert("customer_country".into(), from_partner("country"));
    row.insert("customer_segment".into(), from_partner("segment"));
    row
}

/// A JSON value as the text the baselines load (strings bare, numbers in decimal).
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// Producing

/// Creates a topic of the namespace that keeps its records whatever their timestamps. With
/// the broker's default (7 days' retention) the orders, whose event times span 90 days,
/// would mostly be deleted: segments roll every 7 days of record time and the retention
/// check removes those older than 7 days — the first run of this bench lost 58 % of them
/// before the job read them.
async fn create_kept_topic(names: &Names, name: &str, partitions: i32) -> Result<String, String> {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
    let topic = names.ns.topic(name);
    let results = names
        .ns
        .kafka_admin()
        .create_topics(
            &[
                NewTopic::new(&topic, partitions, TopicReplication::Fixed(1))
                    .set("retention.ms", "-1"),
            ],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .map_err(|e| format!("creating topic {topic}: {e}"))?;
    for result in results {
        result.map_err(|(name, code)| format!("creating topic {name}: {code}"))?;
    }
    Ok(topic)
}

fn producer(names: &Names) -> FutureProducer {
    names
        .ns
        .kafka_config()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("compression.type", "none")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap()
}

/// Produces the customers; returns the estimated size of the job's lookup state for them.
async fn produce_customers(names: &Names, topic: &str, m: usize) -> usize {
    let producer = producer(names);
    let mut state = 0;
    for start in (0..m).step_by(50_000) {
        let batch: Vec<(String, Value)> = (start..(start + 50_000).min(m)).map(customer).collect();
        let payloads: Vec<String> = batch.iter().map(|(_, v)| v.to_string()).collect();
        let records: Vec<FutureRecord<'_, str, str>> = batch
            .iter()
            .zip(&payloads)
            .map(|((key, _), payload)| {
                FutureRecord::<str, str>::to(topic)
                    .key(key)
                    .payload(payload)
            })
            .collect();
        sluice_tests::send_in_order(&producer, records).await;
        // The job keeps each row as its JSON bytes under its join key, and counts 48 bytes
        // per row besides (`sluice_pipeline::state`); the same accounting here.
        state += batch
            .iter()
            .zip(&payloads)
            .map(|((k, _), p)| k.len() + p.len() + 48)
            .sum::<usize>();
    }
    state
}

/// Produces the N orders (event time as the record timestamp); returns the value bytes.
async fn produce_orders(names: &Names, topic: &str, n: usize, zipf: &Zipf, start_ms: i64) -> usize {
    let producer = producer(names);
    let mut bytes = 0;
    for start in (0..n).step_by(50_000) {
        let batch: Vec<(String, String, i64)> = (start..(start + 50_000).min(n))
            .map(|i| order(i, n, zipf, start_ms))
            .collect();
        let records: Vec<FutureRecord<'_, str, str>> = batch
            .iter()
            .map(|(key, value, at)| {
                FutureRecord::<str, str>::to(topic)
                    .key(key)
                    .payload(value)
                    .timestamp(*at)
            })
            .collect();
        sluice_tests::send_in_order(&producer, records).await;
        bytes += batch.iter().map(|(_, v, _)| v.len()).sum::<usize>();
        if start.is_multiple_of(1_000_000) && start > 0 {
            println!("  produced {start} orders");
        }
    }
    bytes
}

// ---------------------------------------------------------------------------------------
// The in-process API

// ---------------------------------------------------------------------------------------
// Processes: CPU time and RSS of this process and of the services'.

/// A process whose CPU time and memory are reported.
#[derive(Debug, Clone)]
struct Proc {
    name: &'static str,
    pid: u32,
    /// Count the CPU of its children too (PostgreSQL: a process per connection).
    children: bool,
}

/// The service processes: from the pid files `services.sh` writes (Redis: `INFO`).
async fn service_procs(names: &Names) -> Vec<Proc> {
    let state = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.sluice");
    let first_line = |path: std::path::PathBuf| -> Option<u32> {
        std::fs::read_to_string(path)
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    };
    let mut procs = vec![Proc {
        name: "sluice (this process)",
        pid: std::process::id(),
        children: false,
    }];
    let mut add = |name: &'static str, pid: Option<u32>, children: bool| match pid {
        Some(pid) => procs.push(Proc {
            name,
            pid,
            children,
        }),
        None => eprintln!("note: no pid found for {name}; its CPU is not reported"),
    };
    add(
        "Kafka broker",
        first_line(state.join("kafka/kafka.pid")),
        false,
    );
    add(
        "PostgreSQL (all backends)",
        first_line(state.join("postgres/data/postmaster.pid")),
        true,
    );
    add(
        "OpenSearch",
        first_line(state.join("opensearch/opensearch.pid")),
        false,
    );
    let redis_pid = match names.ns.redis().await {
        Ok(mut redis) => redis::cmd("INFO")
            .arg("server")
            .query_async::<String>(&mut redis)
            .await
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("process_id:"))
                    .and_then(|p| p.trim().parse().ok())
            }),
        Err(_) => None,
    };
    add("Redis", redis_pid, false);
    procs
}

/// utime, stime, cutime, cstime and ppid of `pid`, from /proc/<pid>/stat.
fn stat_of(pid: u32) -> Option<([f64; 4], u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let f = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let ppid = fields.get(1)?.parse().ok()?;
    Some(([f(11), f(12), f(13), f(14)], ppid))
}

/// CPU seconds `p` used so far: its own, with `children` also its reaped children's and
/// its live children's (backends that end in the window count fully, a small overcount).
fn proc_cpu(p: &Proc, ticks: f64) -> f64 {
    let Some((own, _)) = stat_of(p.pid) else {
        return 0.0;
    };
    let mut total = own[0] + own[1];
    if p.children {
        total += own[2] + own[3];
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                if let Some((times, ppid)) = stat_of(pid)
                    && ppid == p.pid
                {
                    total += times[0] + times[1];
                }
            }
        }
    }
    total / ticks
}

/// RSS (KiB) of `p`, with its children's when it counts them.
fn proc_rss_kib(p: &Proc) -> u64 {
    let rss = |pid: u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    };
    let mut total = rss(p.pid);
    if p.children
        && let Ok(entries) = std::fs::read_dir("/proc")
    {
        for entry in entries.flatten() {
            if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok())
                && stat_of(pid).is_some_and(|(_, ppid)| ppid == p.pid)
            {
                total += rss(pid);
            }
        }
    }
    total
}

/// CPU of every process over a phase, and the highest RSS sampled meanwhile.
struct Meter {
    procs: Vec<Proc>,
    ticks: f64,
    cpu_before: Vec<f64>,
    peaks: Arc<Mutex<Vec<u64>>>,
    sampler: tokio::task::JoinHandle<()>,
}

/// What a [`Meter`] measured: per process, CPU seconds and peak RSS (KiB).
struct Usage {
    rows: Vec<(&'static str, f64, u64)>,
}

impl Meter {
    fn start(procs: &[Proc], ticks: f64) -> Meter {
        let procs = procs.to_vec();
        let cpu_before = procs.iter().map(|p| proc_cpu(p, ticks)).collect();
        let peaks = Arc::new(Mutex::new(vec![0u64; procs.len()]));
        let sampler = {
            let procs = procs.clone();
            let peaks = Arc::clone(&peaks);
            tokio::spawn(async move {
                loop {
                    let now: Vec<u64> = procs.iter().map(proc_rss_kib).collect();
                    if let Ok(mut peaks) = peaks.lock() {
                        for (peak, rss) in peaks.iter_mut().zip(now) {
                            *peak = (*peak).max(rss);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
        };
        Meter {
            procs,
            ticks,
            cpu_before,
            peaks,
            sampler,
        }
    }

    fn stop(self) -> Usage {
        self.sampler.abort();
        let peaks = self.peaks.lock().map(|p| p.clone()).unwrap_or_default();
        let rows = self
            .procs
            .iter()
            .zip(&self.cpu_before)
            .zip(peaks)
            .map(|((p, before), peak)| {
                let peak = if p.pid == std::process::id() {
                    // This process's own high-water mark, reset at the phase's start.
                    proc_status_kib("VmHWM").max(peak)
                } else {
                    peak
                };
                (p.name, proc_cpu(p, self.ticks) - before, peak)
            })
            .collect();
        Usage { rows }
    }
}

// ---------------------------------------------------------------------------------------
// The run

/// One line of the results table.
struct Line {
    what: String,
    seconds: Option<f64>,
    rate: String,
    ratio: String,
}

async fn bench(names: Arc<Names>, settings: Settings) -> Result<(), String> {
    let services = names.ns.services();
    let ticks = clock_ticks();
    let (n, m) = (settings.events, settings.customers);
    println!(
        "Backfill with a lookup join: {n} orders (6 partitions, {EVENT_DAYS} days, Zipf s={ZIPF_S} \
         over {m} customers) → {:?}; freshness {} s at {} events/s",
        settings.targets, settings.freshness_secs, settings.rate
    );
    let procs = service_procs(&names).await;
    let start_ms = now_ms();
    let zipf = Arc::new(Zipf::new(m.max(1), ZIPF_S));

    let orders_topic = create_kept_topic(&names, "orders", ORDER_PARTITIONS).await?;
    let customers_topic = create_kept_topic(&names, "customers", CUSTOMER_PARTITIONS).await?;
    let t = Instant::now();
    let state_bytes = produce_customers(&names, &customers_topic, m).await;
    let bytes = produce_orders(&names, &orders_topic, n, &zipf, start_ms).await;
    println!(
        "produced {m} customers and {n} orders ({:.1} MB of order values, avg {} B) in {:.1}s; \
         lookup state estimate {:.0} MiB",
        bytes as f64 / 1e6,
        bytes / n.max(1),
        t.elapsed().as_secs_f64(),
        state_bytes as f64 / 1_048_576.0
    );

    // Store, API, datasets, clusters, controller.
    let store = Store::connect(
        &format!("sqlite://{}/sluice.db?mode=rwc", names.dir.display()),
        AuditKey::from_secret(b"sluice-bench-audit-secret").unwrap(),
    )
    .await
    .unwrap();
    sluice_api::bootstrap_admin(&store, Some(&sluice_api::Secret::new(ADMIN_TOKEN)))
        .await
        .unwrap();
    let secrets = SecretBox::ephemeral();
    let api = Api {
        router: sluice_api::router(AppState::new(store.clone()).with_secrets(secrets.clone())),
        store: store.clone(),
    };
    let requester = api.token(Role::Requester, &names.team).await;
    let approver = api.token(Role::Approver, "platform").await;
    let dataset = |name: String, topic: &str, kind: &str, properties: Value| {
        json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "Dataset",
            "metadata": {"name": name, "owner": "team-shop"},
            "spec": {"topic": topic, "kind": kind, "key": "id", "classification": "internal",
                     "compatibility": "BACKWARD",
                     "schema": {"type": "object", "required": ["id"], "properties": properties}}
        })
    };
    for doc in [
        dataset(
            names.orders(),
            &orders_topic,
            "stream",
            json!({"id": {"type": "string"}, "customer_id": {"type": "string"},
                   "amount": {"type": "number"}, "qty": {"type": "integer"},
                   "status": {"type": "string"}, "channel": {"type": "string"},
                   "created_at": {"type": "string", "format": "date-time"},
                   "note": {"type": "string"}}),
        ),
        dataset(
            names.customers(),
            &customers_topic,
            "table",
            json!({"id": {"type": "string"}, "name": {"type": "string"},
                   "country": {"type": "string"}, "segment": {"type": "string"},
                   "email": {"type": "string"}}),
        ),
    ] {
        let path = format!(
            "/api/v1/datasets/{}",
            doc["metadata"]["name"].as_str().unwrap()
        );
        api.send(ADMIN_TOKEN, Method::PUT, &path, Some(&doc)).await;
    }
    for target in &settings.targets {
        let (kind, url, isolation) = match target {
            Target::Postgres => ("postgres", services.postgres_url.clone(), "schema"),
            Target::OpenSearch => ("elasticsearch", services.opensearch_url.clone(), "index"),
            Target::Redis => ("redis", services.redis_url.clone(), "acl-prefix"),
        };
        let doc = json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "TargetCluster",
            "metadata": {"name": names.cluster(*target)},
            "spec": {"type": kind, "url": url, "isolation": isolation, "allowedTeams": ["*"]}
        });
        let path = format!("/api/v1/targetclusters/{}", names.cluster(*target));
        api.send(ADMIN_TOKEN, Method::PUT, &path, Some(&doc)).await;
    }
    // A 1 s resync, as in job_load: a product whose job had not reported at its first pass
    // would otherwise wait for the default 30 s resync.
    let mut config = ControllerConfig::new(services.kafka_bootstrap.clone());
    config.resync = Duration::from_secs(1);
    let controller =
        Controller::new(store.clone(), secrets.clone(), config).map_err(|e| e.to_string())?;
    let metrics = controller.metrics();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(controller.clone().run(async move {
        let _ = stopped.await;
    }));
    let (stop_jobs, jobs_stopped) = oneshot::channel::<()>();
    let jobs = tokio::spawn(controller.clone().run_jobs(async move {
        let _ = jobs_stopped.await;
    }));
    while metrics.snapshot().passes < 1 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut lines: Vec<Line> = Vec::new();
    let mut usages: Vec<(String, usize, Usage)> = Vec::new();
    let mut memory: Vec<String> = Vec::new();
    let mut freshness: Vec<Freshness> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut ctx = Ctx {
        names: Arc::clone(&names),
        n,
        extra: 0,
        m,
        zipf: Arc::clone(&zipf),
        start_ms,
    };
    for target in settings.targets.clone() {
        let product = Names::product_name(target);
        let path = format!("/api/v1/products/{}/{product}", names.team);
        // The shared server's `maxmemory` (2 GB, `tests/services/redis.sh`) does not hold
        // Sluice's keys at the issue's 10M rows (some 340 B each): lifted while the Redis
        // target is measured, put back after it (a run that fails on the way leaves it
        // lifted until the server restarts).
        let redis_limit = match target {
            Target::Redis => Some(lift_maxmemory(&names).await?),
            _ => None,
        };
        api.send(&requester, Method::PUT, &path, Some(&names.product(target)))
            .await;
        reset_peak_rss();
        let rss_before = proc_status_kib("VmRSS");
        let meter = Meter::start(&procs, ticks);
        let started = Instant::now();
        api.send(
            &approver,
            Method::POST,
            &format!("{path}/approve"),
            Some(&json!({})),
        )
        .await;
        controller.waker().wake();
        let mut last_print = Instant::now();
        loop {
            let status = api.send(ADMIN_TOKEN, Method::GET, &path, None).await["status"].clone();
            if status["phase"] == "Live" {
                break;
            }
            if started.elapsed() > LIVE_LIMIT {
                return Err(format!(
                    "{product} not Live after {LIVE_LIMIT:?}: {status:#}"
                ));
            }
            if last_print.elapsed() >= Duration::from_secs(10) {
                last_print = Instant::now();
                println!(
                    "  {:>7.1}s: {product} phase {}, backfill {}",
                    started.elapsed().as_secs_f64(),
                    status["phase"],
                    status["backfill"]
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let live = started.elapsed().as_secs_f64();
        let usage = meter.stop();
        let peak = proc_status_kib("VmHWM");
        // The job read the backfill's events and those of earlier freshness phases.
        let events = ctx.rows();
        let eps = events as f64 / live;
        println!(
            "{}: Live after {live:.1}s ({events} events, {eps:.0} events/s)",
            target.label()
        );
        memory.push(format!(
            "{}: this process peak RSS {:.0} MiB, {:.0} MiB at the approval (rise {:.0} MiB); \
             lookup state estimate {:.0} MiB → limit 1.5 × state + 64 MiB = {:.0} MiB",
            target.label(),
            peak as f64 / 1024.0,
            rss_before as f64 / 1024.0,
            peak.saturating_sub(rss_before) as f64 / 1024.0,
            state_bytes as f64 / 1_048_576.0,
            1.5 * state_bytes as f64 / 1_048_576.0 + 64.0
        ));
        usages.push((
            format!("{} backfill (Sluice)", target.label()),
            events,
            usage,
        ));
        lines.push(Line {
            what: format!(
                "{}: Sluice backfill, approval → Live ({events} events)",
                target.label()
            ),
            seconds: Some(live),
            rate: format!("{eps:.0} events/s"),
            ratio: "—".to_owned(),
        });
        let outcome = match target {
            Target::Postgres => postgres_phase(&ctx, eps, &mut lines).await,
            Target::OpenSearch => search_phase(&ctx, eps, &mut lines).await,
            Target::Redis => redis_phase(&ctx, eps, &mut lines).await,
        };
        if let Err(e) = outcome {
            problems.push(format!("{}: {e}", target.label()));
        }
        if target == Target::Postgres && settings.connect {
            let like = format!(
                "{}.{}",
                quote_pg_ident(&names.team),
                quote_pg_ident(&format!("{}_v1", names.target_name(target)))
            );
            match connect_phase(&ctx, &like).await {
                Ok(run) => {
                    lines.push(Line {
                        what: format!(
                            "PostgreSQL baseline: Kafka Connect, Debezium JDBC sink (standalone, \
                             upsert, batch.size {}; {:.1} s of worker startup)",
                            run.batch_size, run.startup_seconds
                        ),
                        seconds: Some(run.seconds),
                        rate: format!(
                            "{:.0} events/s ({:.0} after startup)",
                            run.events_per_s, run.load_events_per_s
                        ),
                        ratio: format!(
                            "{:.2}× ({:.2}× after its startup)",
                            eps / run.events_per_s,
                            eps / run.load_events_per_s
                        ),
                    });
                    usages.push((
                        "PostgreSQL baseline: Kafka Connect".to_owned(),
                        ctx.n,
                        Usage {
                            rows: vec![("Connect worker JVM", run.cpu_seconds, run.peak_rss_kib)],
                        },
                    ));
                }
                Err(e) => problems.push(format!("Kafka Connect baseline: {e}")),
            }
        }

        // Freshness of this target, its job the only one running.
        if settings.freshness_secs > 0 {
            let meter = Meter::start(&procs, ticks);
            let measured = freshness_phase(
                &ctx,
                &orders_topic,
                target,
                settings.rate,
                settings.freshness_secs,
            )
            .await?;
            let produced = settings.rate * settings.freshness_secs as usize;
            ctx.extra += produced;
            usages.push((
                format!(
                    "{} live, {} events/s for {} s",
                    target.label(),
                    settings.rate,
                    settings.freshness_secs
                ),
                produced,
                meter.stop(),
            ));
            freshness.push(measured);
        }

        // Each target is measured with its own job alone: the product is deleted (its job
        // stops, its target is dropped) before the next target's product is approved.
        // Its rows were checked above.
        api.send(ADMIN_TOKEN, Method::DELETE, &path, None).await;
        controller.waker().wake();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let (status, _) = api.exchange(ADMIN_TOKEN, Method::GET, &path, None).await;
            if status == axum::http::StatusCode::NOT_FOUND {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("{product} not deleted after 180 s"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if let Some(limit) = redis_limit {
            let mut redis = names.ns.redis().await.map_err(|e| e.to_string())?;
            set_maxmemory(&mut redis, &limit).await?;
        }
    }

    let _ = stop_jobs.send(());
    jobs.await.map_err(|e| e.to_string())?;
    let _ = stop.send(());
    running.await.map_err(|e| e.to_string())?;

    // Results.
    println!();
    println!(
        "## {n} orders ⋈ {m} customers ({:.0} B per order value)",
        bytes as f64 / n.max(1) as f64
    );
    println!();
    println!("| measurement | time | throughput | Sluice vs baseline |");
    println!("| --- | ---: | ---: | ---: |");
    for line in &lines {
        println!(
            "| {} | {} | {} | {} |",
            line.what,
            line.seconds.map_or("—".to_owned(), |s| format!("{s:.2} s")),
            line.rate,
            line.ratio
        );
    }
    println!();
    println!("| phase | process | CPU-s | CPU-s per million events | peak RSS |");
    println!("| --- | --- | ---: | ---: | ---: |");
    for (phase, events, usage) in &usages {
        let events = *events as f64;
        for (name, cpu, peak) in &usage.rows {
            println!(
                "| {phase} | {name} | {cpu:.1} | {:.1} | {:.0} MiB |",
                cpu * 1e6 / events.max(1.0),
                *peak as f64 / 1024.0
            );
        }
    }
    println!(
        "(service processes are shared with other users of `make services`: their CPU is an \
         upper bound of what this run cost them)"
    );
    println!();
    for line in &memory {
        println!("memory: {line}");
    }
    if !freshness.is_empty() {
        println!();
        println!(
            "| freshness (producer → visible) | tracers | p50 ms | p99 ms | max ms | unseen |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        for f in &freshness {
            println!(
                "| {} | {} | {:.0} | {:.0} | {:.0} | {} |",
                f.target.label(),
                f.seen.len(),
                percentile(&f.seen, 0.50),
                percentile(&f.seen, 0.99),
                f.seen.iter().copied().fold(0.0, f64::max),
                f.unseen
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// What the phases share.
struct Ctx {
    names: Arc<Names>,
    n: usize,
    /// Events produced by the freshness phases so far (each is one more row).
    extra: usize,
    m: usize,
    zipf: Arc<Zipf>,
    start_ms: i64,
}

impl Ctx {
    /// The rows a target must hold: the backfill's and the freshness phases' so far.
    fn rows(&self) -> usize {
        self.n + self.extra
    }

    /// Row `i` of the expected result (joined, as Sluice must write it).
    fn row(&self, i: usize) -> Map<String, Value> {
        let (_, value, _) = order(i, self.n, &self.zipf, self.start_ms);
        joined(&serde_json::from_str(&value).unwrap(), self.m)
    }

    /// Indices of the rows compared field by field.
    fn sample(&self) -> Vec<usize> {
        (0..SAMPLE.min(self.n))
            .map(|j| (mix(9, j as u64) % self.n as u64) as usize)
            .collect()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// A baseline's line: it loaded `n` rows in `seconds`; `sluice` is Sluice's events/s.
fn ratio_line(what: String, seconds: f64, n: usize, sluice: f64) -> Line {
    let rate = n as f64 / seconds;
    Line {
        what,
        seconds: Some(seconds),
        rate: format!("{rate:.0} rows/s"),
        ratio: format!("{:.2}×", sluice / rate),
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

/// Runs `psql` with `commands` (each a `-c`), failing on the first error.
async fn psql(url: &str, commands: &[String]) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new("psql");
    cmd.arg(url)
        .arg("-X")
        .arg("-q")
        .arg("-v")
        .arg("ON_ERROR_STOP=1");
    for c in commands {
        cmd.arg("-c").arg(c);
    }
    let out = cmd.output().await.map_err(|e| format!("psql: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("psql: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Appends `text` escaped for COPY's text format.
fn push_copy(out: &mut String, text: Option<&str>) {
    match text {
        None => out.push_str("\\N"),
        Some(t) => {
            for c in t.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
    }
}

async fn postgres_phase(ctx: &Ctx, sluice: f64, lines: &mut Vec<Line>) -> Result<(), String> {
    let names = &ctx.names;
    let services = names.ns.services();
    let pool = names.ns.pg_pool().await.map_err(|e| e.to_string())?;
    let scratch = names.ns.pg_schema();
    let target = names.target_name(Target::Postgres);
    let table = format!(
        "{}.{}",
        quote_pg_ident(&names.team),
        quote_pg_ident(&format!("{target}_v1"))
    );
    // Sluice's rows, counted and sampled through the view.
    let view = format!(
        "{}.{}",
        quote_pg_ident(&names.team),
        quote_pg_ident(&target)
    );
    let count: i64 =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {view}")))
            .fetch_one(&pool)
            .await
            .map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    if count != ctx.rows() as i64 {
        problems.push(format!(
            "Sluice's table holds {count} rows, not {}",
            ctx.rows()
        ));
    }
    let sample = ctx.sample();
    let keys: Vec<String> = sample.iter().map(|i| format!("o-{i:09}")).collect();
    let got: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT (to_jsonb(v) - '_sluice_version')::text FROM {view} v WHERE order_id = ANY($1)"
    )))
    .bind(&keys)
    .fetch_all(&pool)
    .await
    .map_err(|e| e.to_string())?;
    let got: HashMap<String, Value> = got
        .iter()
        .filter_map(|t| serde_json::from_str::<Value>(t).ok())
        .map(|v| (v["order_id"].as_str().unwrap_or_default().to_owned(), v))
        .collect();
    for i in &sample {
        let want = ctx.row(*i);
        let key = format!("o-{i:09}");
        let Some(row) = got.get(&key) else {
            problems.push(format!("row {key} is missing"));
            break;
        };
        if !same_row(&want, row) {
            problems.push(format!(
                "row {key}: Sluice {row}, expected {}",
                Value::Object(want)
            ));
            break;
        }
    }

    // The baselines' input: the same rows, COPY text, in a file (not timed).
    let file = names.dir.join("rows.tsv");
    {
        use std::io::Write;
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(&file).map_err(|e| e.to_string())?);
        let mut line = String::with_capacity(512);
        for i in 0..ctx.n {
            line.clear();
            let row = ctx.row(i);
            for c in COLUMNS {
                push_copy(&mut line, row.get(c).and_then(text_of).as_deref());
                line.push('\t');
            }
            line.push_str(&i.to_string());
            line.push('\n');
            out.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
        }
        out.flush().map_err(|e| e.to_string())?;
    }
    let copy_final = format!("{}.copy_final", quote_pg_ident(&scratch));
    let upsert_final = format!("{}.upsert_final", quote_pg_ident(&scratch));
    let staging = format!("{}.staging", quote_pg_ident(&scratch));
    let column_list = format!("{}, _sluice_version", COLUMNS.join(", "));
    for statement in [
        format!("CREATE TABLE {copy_final} (LIKE {table} INCLUDING ALL)"),
        format!("CREATE TABLE {upsert_final} (LIKE {table} INCLUDING ALL)"),
        format!("CREATE UNLOGGED TABLE {staging} (LIKE {table} INCLUDING DEFAULTS)"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    let url = &services.postgres_url;
    let path = file.display().to_string().replace('\'', "''");
    let t = Instant::now();
    psql(
        url,
        &[format!("\\copy {copy_final} ({column_list}) FROM '{path}'")],
    )
    .await?;
    let copy = t.elapsed().as_secs_f64();
    let t = Instant::now();
    psql(
        url,
        &[format!("\\copy {staging} ({column_list}) FROM '{path}'")],
    )
    .await?;
    let staged = t.elapsed().as_secs_f64();
    let sets: Vec<String> = COLUMNS[1..]
        .iter()
        .chain(std::iter::once(&"_sluice_version"))
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    psql(
        url,
        &[format!(
            "INSERT INTO {upsert_final} AS t ({column_list}) SELECT {column_list} FROM {staging} \
             ON CONFLICT (order_id) DO UPDATE SET {} \
             WHERE t._sluice_version < EXCLUDED._sluice_version",
            sets.join(", ")
        )],
    )
    .await?;
    let staged_upsert = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&file);
    for (what, table) in [("COPY", &copy_final), ("COPY + upsert", &upsert_final)] {
        let rows: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&pool)
                .await
                .map_err(|e| e.to_string())?;
        if rows != ctx.n as i64 {
            problems.push(format!("{what} baseline holds {rows} rows, not {}", ctx.n));
        }
    }
    // Free the disk before the next phase: the baselines' tables are not needed any more.
    for t in [&copy_final, &upsert_final, &staging] {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {t}")))
            .execute(&pool)
            .await;
    }
    pool.close().await;
    lines.push(ratio_line(
        "PostgreSQL baseline: `psql \\copy` into a table LIKE Sluice's".to_owned(),
        copy,
        ctx.n,
        sluice,
    ));
    lines.push(ratio_line(
        format!(
            "PostgreSQL baseline: `\\copy` to staging ({staged:.2} s) + `INSERT … ON CONFLICT DO \
             UPDATE … WHERE` version"
        ),
        staged_upsert,
        ctx.n,
        sluice,
    ));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Whether a row read back equals the expected one (numbers as doubles, timestamps as
/// instants, missing and null alike).
fn same_row(want: &Map<String, Value>, got: &Value) -> bool {
    COLUMNS.iter().all(|c| {
        let w = want.get(*c).unwrap_or(&Value::Null);
        let g = got.get(*c).unwrap_or(&Value::Null);
        match (w, g) {
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (Value::Number(a), Value::String(b)) => b.parse::<f64>().ok() == a.as_f64(),
            (Value::String(a), Value::String(b)) if *c == "created_at" => {
                let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
                parse(a).is_some() && parse(a) == parse(b)
            }
            _ => w == g,
        }
    })
}

// ---------------------------------------------------------------------------------------
// OpenSearch

async fn search_phase(ctx: &Ctx, sluice: f64, lines: &mut Vec<Line>) -> Result<(), String> {
    let names = &ctx.names;
    let base = names.ns.services().opensearch_url.clone();
    let client = reqwest::Client::new();
    let alias = names.target_name(Target::OpenSearch);
    let error = |e: reqwest::Error| e.to_string();
    client
        .post(format!("{base}/{alias}/_refresh"))
        .send()
        .await
        .map_err(error)?;
    let mut problems = Vec::new();
    let count: Value = client
        .get(format!("{base}/{alias}/_count"))
        .send()
        .await
        .map_err(error)?
        .json()
        .await
        .map_err(error)?;
    let count = count["count"].as_u64().unwrap_or(0);
    if count != ctx.rows() as u64 {
        problems.push(format!(
            "Sluice's index holds {count} documents, not {}",
            ctx.rows()
        ));
    }
    let sample = ctx.sample();
    let ids: Vec<String> = sample.iter().map(|i| format!("o-{i:09}")).collect();
    let got: Value = client
        .post(format!("{base}/{alias}/_mget"))
        .json(&json!({"ids": ids}))
        .send()
        .await
        .map_err(error)?
        .json()
        .await
        .map_err(error)?;
    for (i, doc) in sample
        .iter()
        .zip(got["docs"].as_array().cloned().unwrap_or_default())
    {
        let want = ctx.row(*i);
        if !same_row(&want, &doc["_source"]) {
            problems.push(format!(
                "document o-{i:09}: Sluice {doc}, expected {}",
                Value::Object(want)
            ));
            break;
        }
    }

    // Baseline: an index with the same mappings, shards, replicas and merge settings as Sluice's.
    let index = names.ns.index("bulk");
    let sluice_index = format!("{alias}_v1");
    let settings: Value = client
        .get(format!("{base}/{sluice_index}"))
        .send()
        .await
        .map_err(error)?
        .json()
        .await
        .map_err(error)?;
    let source = &settings[&sluice_index];
    let mut index_settings = json!({
        "number_of_shards": source["settings"]["index"]["number_of_shards"],
        "number_of_replicas": source["settings"]["index"]["number_of_replicas"],
    });
    // OpenSearch's merge on refresh, which Sluice turns off where it creates the index.
    if let Some(merge_on_flush) = source["settings"]["index"].get("merge_on_flush") {
        index_settings["merge_on_flush"] = merge_on_flush.clone();
    }
    let body = json!({
        "settings": {"index": index_settings},
        "mappings": source["mappings"],
    });
    let created = client
        .put(format!("{base}/{index}"))
        .json(&body)
        .send()
        .await
        .map_err(error)?;
    if !created.status().is_success() {
        return Err(format!(
            "creating the baseline index: {}",
            created.text().await.unwrap_or_default()
        ));
    }
    let t = Instant::now();
    let mut start = 0;
    while start < ctx.n {
        let end = (start + BULK_DOCS).min(ctx.n);
        let mut body = String::with_capacity((end - start) * 400);
        for i in start..end {
            let mut row = ctx.row(i);
            row.retain(|_, v| !v.is_null());
            row.insert("_sluice_version".into(), json!(i));
            body.push_str(&json!({"index": {"_id": format!("o-{i:09}")}}).to_string());
            body.push('\n');
            body.push_str(&Value::Object(row).to_string());
            body.push('\n');
        }
        let answer: Value = client
            .post(format!("{base}/{index}/_bulk"))
            .header("Content-Type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .map_err(error)?
            .json()
            .await
            .map_err(error)?;
        if answer["errors"] == true {
            return Err(format!(
                "baseline _bulk failed: {}",
                answer.to_string().chars().take(500).collect::<String>()
            ));
        }
        start = end;
    }
    let bulk = t.elapsed().as_secs_f64();
    client
        .post(format!("{base}/{index}/_refresh"))
        .send()
        .await
        .map_err(error)?;
    let baseline: Value = client
        .get(format!("{base}/{index}/_count"))
        .send()
        .await
        .map_err(error)?
        .json()
        .await
        .map_err(error)?;
    if baseline["count"].as_u64() != Some(ctx.n as u64) {
        problems.push(format!(
            "baseline index holds {}, not {}",
            baseline["count"], ctx.n
        ));
    }
    let _ = client.delete(format!("{base}/{index}")).send().await;
    lines.push(ratio_line(
        format!(
            "OpenSearch baseline: direct `_bulk` loader ({BULK_DOCS} docs per request), same \
             mappings"
        ),
        bulk,
        ctx.n,
        sluice,
    ));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

// ---------------------------------------------------------------------------------------
// Redis

/// Appends one command in the Redis protocol.
fn push_resp(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

async fn redis_phase(ctx: &Ctx, sluice: f64, lines: &mut Vec<Line>) -> Result<(), String> {
    let names = &ctx.names;
    let mut redis = names.ns.redis().await.map_err(|e| e.to_string())?;
    let prefix = names.target_name(Target::Redis);
    let error = |e: redis::RedisError| e.to_string();
    let version: String = redis::cmd("GET")
        .arg(format!("{prefix}:current"))
        .query_async(&mut redis)
        .await
        .map_err(error)?;
    let data = format!("{prefix}:{version}:");
    let mut problems = Vec::new();
    let sample = ctx.sample();
    for i in &sample {
        let hash: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(format!("{data}o-{i:09}"))
            .query_async(&mut redis)
            .await
            .map_err(error)?;
        let got: Map<String, Value> = hash
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let want: Map<String, Value> = ctx
            .row(*i)
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, Value::String(text_of(&v).unwrap_or_default())))
            .collect();
        if !same_row(&want, &Value::Object(got.clone())) {
            problems.push(format!("key o-{i:09}: Sluice {got:?}, expected {want:?}"));
            break;
        }
    }
    let count = count_keys(&mut redis, &format!("{data}*")).await?;
    if count != ctx.rows() {
        problems.push(format!("Sluice wrote {count} keys, not {}", ctx.rows()));
    }

    // Baseline: `redis-cli --pipe` of one HSET per row, from a file (written, not timed).
    let base = format!("{}:pipe:", names.ns.redis_prefix());
    let file = names.dir.join("rows.resp");
    {
        use std::io::Write;
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(&file).map_err(|e| e.to_string())?);
        let mut buf = Vec::with_capacity(1024);
        for i in 0..ctx.n {
            buf.clear();
            let row = ctx.row(i);
            let key = format!("{base}o-{i:09}");
            let mut owned: Vec<(String, String)> = row
                .iter()
                .filter_map(|(k, v)| text_of(v).map(|t| (k.clone(), t)))
                .collect();
            owned.push(("_sluice_version".to_owned(), i.to_string()));
            let mut args: Vec<&[u8]> = vec![b"HSET", key.as_bytes()];
            for (k, v) in &owned {
                args.push(k.as_bytes());
                args.push(v.as_bytes());
            }
            push_resp(&mut buf, &args);
            out.write_all(&buf).map_err(|e| e.to_string())?;
        }
        out.flush().map_err(|e| e.to_string())?;
    }
    // `maxmemory` is lifted while the Redis target is measured (see `bench`).
    let pipe = pipe_baseline(ctx, &mut redis, &file, &base, &mut problems).await?;
    lines.push(ratio_line(
        "Redis baseline: `redis-cli --pipe`, one `HSET` per row, same fields".to_owned(),
        pipe,
        ctx.n,
        sluice,
    ));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Lifts the `maxmemory` of the shared Redis server; returns the value it had.
async fn lift_maxmemory(names: &Names) -> Result<String, String> {
    let mut redis = names.ns.redis().await.map_err(|e| e.to_string())?;
    let limit: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query_async(&mut redis)
        .await
        .map_err(|e| format!("CONFIG GET maxmemory: {e}"))?;
    set_maxmemory(&mut redis, "0").await?;
    Ok(limit.get(1).cloned().unwrap_or_else(|| "0".to_owned()))
}

/// `maxmemory` of the Redis server behind `redis` set to `value`.
async fn set_maxmemory(
    redis: &mut redis::aio::MultiplexedConnection,
    value: &str,
) -> Result<(), String> {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(value)
        .query_async::<()>(redis)
        .await
        .map_err(|e| format!("CONFIG SET maxmemory {value}: {e}"))
}

/// The Redis baseline's timed part: `redis-cli --pipe` of `file`, then its keys (under
/// `base`) counted and deleted; the seconds the pipe took.
async fn pipe_baseline(
    ctx: &Ctx,
    redis: &mut redis::aio::MultiplexedConnection,
    file: &std::path::Path,
    base: &str,
    problems: &mut Vec<String>,
) -> Result<f64, String> {
    let url = ctx.names.ns.services().redis_url.clone();
    let t = Instant::now();
    let input = std::fs::File::open(file).map_err(|e| e.to_string())?;
    let out = tokio::process::Command::new("redis-cli")
        .arg("-u")
        .arg(&url)
        .arg("--no-auth-warning")
        .arg("--pipe")
        .stdin(input)
        .output()
        .await
        .map_err(|e| format!("redis-cli (is it installed?): {e}"))?;
    let pipe = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(file);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() || !said.contains("errors: 0") {
        problems.push(format!(
            "redis-cli --pipe: {said} {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let baseline = count_keys(redis, &format!("{base}*")).await?;
    if baseline != ctx.n {
        problems.push(format!("baseline wrote {baseline} keys, not {}", ctx.n));
    }
    delete_keys(redis, &format!("{base}*")).await?;
    Ok(pipe)
}

/// One `SCAN` step over the keys matching `pattern`: the next cursor (0 at the end) and the
/// keys of this step.
async fn scan_step(
    redis: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
    cursor: u64,
) -> Result<(u64, Vec<String>), String> {
    redis::cmd("SCAN")
        .arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(10_000)
        .query_async(redis)
        .await
        .map_err(|e| e.to_string())
}

/// Keys matching `pattern`, counted with SCAN.
async fn count_keys(
    redis: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
) -> Result<usize, String> {
    let (mut cursor, mut count) = (0u64, 0);
    loop {
        let (next, keys) = scan_step(redis, pattern, cursor).await?;
        count += keys.len();
        cursor = next;
        if cursor == 0 {
            return Ok(count);
        }
    }
}

/// Unlinks the keys matching `pattern`.
async fn delete_keys(
    redis: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
) -> Result<(), String> {
    let mut cursor = 0u64;
    loop {
        let (next, keys) = scan_step(redis, pattern, cursor).await?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<()>(redis)
                .await
                .map_err(|e| e.to_string())?;
        }
        cursor = next;
        if cursor == 0 {
            return Ok(());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Kafka Connect (Debezium JDBC sink)

/// The Connect key of a row: the product key.
const CONNECT_KEY: &[ConnectField<'static>] = &[("order_id", ConnectType::String, false)];
/// The Connect value of a row: every column of Sluice's table, version included (the
/// column is `NOT NULL`).
const CONNECT_VALUE: &[ConnectField<'static>] = &[
    ("order_id", ConnectType::String, false),
    ("customer_id", ConnectType::String, true),
    ("amount", ConnectType::Float64, true),
    ("qty", ConnectType::Int64, true),
    ("status", ConnectType::String, true),
    ("created_at", ConnectType::ZonedTimestamp, true),
    ("customer_name", ConnectType::String, true),
    ("customer_country", ConnectType::String, true),
    ("customer_segment", ConnectType::String, true),
    ("_sluice_version", ConnectType::Int64, false),
];

/// The Kafka Connect baseline: Debezium's JDBC sink cannot join, so the same pre-joined
/// rows are produced (not timed) as schema-carrying JSON records to a topic of their own
/// (6 partitions, as the orders), then a standalone worker (`tests/bench/connect/
/// jdbc-sink.sh`, upsert mode, its tuned batch size) loads them into a table `LIKE`
/// Sluice's. Returns its run (the script measures the worker's CPU and peak RSS).
async fn connect_phase(ctx: &Ctx, like: &str) -> Result<ConnectRun, String> {
    let names = &ctx.names;
    let services = names.ns.services();
    let topic = names
        .ns
        .create_topic("connect-rows", ORDER_PARTITIONS)
        .await
        .map_err(|e| e.to_string())?;
    let key_env = Envelope::new(KEY_STRUCT, CONNECT_KEY);
    let value_env = Envelope::new(VALUE_STRUCT, CONNECT_VALUE);
    let producer = producer(names);
    let mut pending = Vec::new();
    for i in 0..ctx.n {
        let mut row = ctx.row(i);
        row.insert("_sluice_version".into(), json!(i));
        let (k, v) = (key_env.wrap(&row), value_env.wrap(&row));
        pending.push(
            producer
                .send_result(FutureRecord::<str, str>::to(&topic).key(&k).payload(&v))
                .map_err(|(e, _)| format!("producing: {e}"))?,
        );
        if pending.len() >= 20_000 || i + 1 == ctx.n {
            for d in pending.drain(..) {
                if !matches!(d.await, Ok(Ok(_))) {
                    return Err("a Connect record was not delivered".to_owned());
                }
            }
        }
    }
    let pool = names.ns.pg_pool().await.map_err(|e| e.to_string())?;
    let scratch = names.ns.pg_schema();
    let table = format!("{}.connect_final", quote_pg_ident(&scratch));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {table} (LIKE {like} INCLUDING ALL)"
    )))
    .execute(&pool)
    .await
    .map_err(|e| e.to_string())?;
    let mut opts = JdbcSinkOptions::new(
        &services.kafka_bootstrap,
        &topic,
        &services.postgres_url,
        &format!("{scratch}.connect_final"),
    );
    opts.expect = Some(ctx.n as u64);
    opts.timeout = Duration::from_secs(3 * 60 * 60);
    let run = tokio::task::spawn_blocking(move || run_jdbc_sink(&opts))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let rows: i64 =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&pool)
            .await
            .map_err(|e| e.to_string())?;
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
        .execute(&pool)
        .await;
    pool.close().await;
    // The topic is large (a schema per record): removed now, not at the end.
    let _ = names
        .ns
        .kafka_admin()
        .delete_topics(&[topic.as_str()], &rdkafka::admin::AdminOptions::new())
        .await;
    if rows != ctx.n as i64 {
        return Err(format!(
            "the Connect baseline's table holds {rows} rows, not {}",
            ctx.n
        ));
    }
    Ok(run)
}

// ---------------------------------------------------------------------------------------
// Freshness

/// Latencies (ms) of the tracers a target's reader saw, and how many it never saw.
struct Freshness {
    target: Target,
    seen: Vec<f64>,
    unseen: usize,
}

/// The tracers produced and not yet seen by one reader: key → when it was produced.
type Pending = Arc<Mutex<BTreeMap<String, Instant>>>;

async fn freshness_phase(
    ctx: &Ctx,
    topic: &str,
    target: Target,
    rate: usize,
    seconds: u64,
) -> Result<Freshness, String> {
    println!(
        "{}: freshness, {rate} events/s for {seconds} s",
        target.label()
    );
    let targets = [target];
    // Ids continue over the phases: each phase writes new rows.
    let first = ctx.extra;
    let pendings: Vec<Pending> = targets.iter().map(|_| Pending::default()).collect();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for (target, pending) in targets.iter().zip(&pendings) {
        readers.push(tokio::spawn(reader(
            Arc::clone(&ctx.names),
            *target,
            Arc::clone(pending),
            Arc::clone(&done),
        )));
    }
    let producer = producer(&ctx.names);
    let total = rate * seconds as usize;
    let tick = Duration::from_millis(10);
    let per_tick = (rate / 100).max(1);
    let started = Instant::now();
    let mut sent = 0usize;
    let mut deliveries = Vec::new();
    while sent < total {
        // Catch up with the schedule (a tick may be late on a busy machine).
        let due = ((started.elapsed().as_secs_f64() / tick.as_secs_f64()) as usize + 1) * per_tick;
        while sent < due.min(total) {
            let id = format!("f-{:09}", first + sent);
            let (key, value, _) =
                order_with(&id, mix(6, (first + sent) as u64), &ctx.zipf, now_ms());
            let at = Instant::now();
            match producer.send_result(
                FutureRecord::<str, str>::to(topic)
                    .key(&key)
                    .payload(&value),
            ) {
                Ok(delivery) => deliveries.push(delivery),
                Err((e, _)) => return Err(format!("producing: {e}")),
            }
            if sent.is_multiple_of(TRACER_EVERY) {
                for pending in &pendings {
                    if let Ok(mut p) = pending.lock() {
                        p.insert(key.clone(), at);
                    }
                }
            }
            sent += 1;
        }
        if deliveries.len() > 20_000 {
            for d in deliveries.drain(..) {
                if !matches!(d.await, Ok(Ok(_))) {
                    return Err("a freshness event was not delivered".to_owned());
                }
            }
        }
        tokio::time::sleep(tick).await;
    }
    for d in deliveries {
        if !matches!(d.await, Ok(Ok(_))) {
            return Err("a freshness event was not delivered".to_owned());
        }
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "freshness: produced {total} events in {took:.1}s ({:.0}/s)",
        total as f64 / took
    );
    // Let the readers find the last tracers.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline
        && pendings
            .iter()
            .any(|p| p.lock().map(|p| !p.is_empty()).unwrap_or(false))
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut out = Vec::new();
    for ((target, reader), pending) in targets.iter().zip(readers).zip(&pendings) {
        let seen = reader.await.map_err(|e| e.to_string())??;
        let unseen = pending.lock().map(|p| p.len()).unwrap_or(0);
        out.push(Freshness {
            target: *target,
            seen,
            unseen,
        });
    }
    out.pop()
        .ok_or_else(|| "no freshness reader answered".to_owned())
}

/// Polls `target` every 20 ms for the pending tracers; returns the latencies (ms) seen.
async fn reader(
    names: Arc<Names>,
    target: Target,
    pending: Pending,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> Result<Vec<f64>, String> {
    let services = names.ns.services();
    let name = names.target_name(target);
    let mut seen_ms = Vec::new();
    let pool = match target {
        Target::Postgres => Some(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&services.postgres_url)
                .await
                .map_err(|e| e.to_string())?,
        ),
        _ => None,
    };
    let mut redis = match target {
        Target::Redis => Some(names.ns.redis().await.map_err(|e| e.to_string())?),
        _ => None,
    };
    let client = reqwest::Client::new();
    let view = format!("{}.{}", quote_pg_ident(&names.team), quote_pg_ident(&name));
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        let keys: Vec<String> = pending
            .lock()
            .map(|p| p.keys().take(2_000).cloned().collect())
            .unwrap_or_default();
        if keys.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let visible: Vec<String> = match target {
            Target::Postgres => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT order_id FROM {view} WHERE order_id = ANY($1)"
            )))
            .bind(&keys)
            .fetch_all(pool.as_ref().unwrap())
            .await
            .map_err(|e| e.to_string())?,
            Target::OpenSearch => {
                let answer: Value = client
                    .post(format!("{}/{name}/_search", services.opensearch_url))
                    .json(
                        &json!({"query": {"ids": {"values": keys}}, "size": keys.len(),
                                  "_source": false}),
                    )
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                answer["hits"]["hits"]
                    .as_array()
                    .map(|hits| {
                        hits.iter()
                            .filter_map(|h| h["_id"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            Target::Redis => {
                let redis = redis.as_mut().unwrap();
                let version: Option<String> = redis::cmd("GET")
                    .arg(format!("{name}:current"))
                    .query_async(redis)
                    .await
                    .map_err(|e| e.to_string())?;
                let version = version.unwrap_or_default();
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.cmd("EXISTS").arg(format!("{name}:{version}:{k}"));
                }
                let exists: Vec<i64> = pipe.query_async(redis).await.map_err(|e| e.to_string())?;
                keys.iter()
                    .zip(exists)
                    .filter(|(_, e)| *e > 0)
                    .map(|(k, _)| k.clone())
                    .collect()
            }
        };
        let now = Instant::now();
        if let Ok(mut p) = pending.lock() {
            for k in visible {
                if let Some(at) = p.remove(&k) {
                    seen_ms.push(now.duration_since(at).as_secs_f64() * 1000.0);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(pool) = pool {
        pool.close().await;
    }
    Ok(seen_ms)
}

fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

// ---------------------------------------------------------------------------------------
// Cleanup

/// Removes the products' topics, groups, schema and roles (team removal), their OpenSearch
/// indices, Redis keys and ACL users, the namespace and the temporary directory.
async fn cleanup(names: &Names) {
    let services = names.ns.services();
    let client = reqwest::Client::new();
    let alias = names.target_name(Target::OpenSearch);
    let _ = client
        .delete(format!("{}/{alias}_v*", services.opensearch_url))
        .send()
        .await;
    // Redis may be slow to answer right after millions of writes (a snapshot, eviction of
    // the baseline's keys): retry the connection for a minute rather than leave keys behind.
    let mut redis = None;
    for _ in 0..30 {
        match names.ns.redis().await {
            Ok(connection) => {
                redis = Some(connection);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
    if redis.is_none() {
        eprintln!(
            "cleanup: Redis unreachable; keys {}* remain",
            names.target_name(Target::Redis)
        );
    }
    if let Some(mut redis) = redis {
        let prefix = names.target_name(Target::Redis);
        if let Err(e) = delete_keys(&mut redis, &format!("{prefix}*")).await {
            eprintln!("cleanup: Redis keys: {e}");
        }
        let users: Vec<String> = redis::cmd("ACL")
            .arg("USERS")
            .query_async(&mut redis)
            .await
            .unwrap_or_default();
        let ours = format!("sluice_{}_", names.team);
        for user in users.iter().filter(|u| u.starts_with(&ours)) {
            let _ = redis::cmd("ACL")
                .arg("DELUSER")
                .arg(user)
                .query_async::<()>(&mut redis)
                .await;
        }
    }
    sluice_tests::bench::remove_team(&names.ns, &names.team).await;
    let _ = std::fs::remove_dir_all(&names.dir);
}
