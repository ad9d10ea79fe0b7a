//! Stream-job load benchmark against the real services of `make services`: one product's
//! backfill of N order events into PostgreSQL (upsert, no joins, a filter keeping about
//! half the statuses), against PostgreSQL's own bulk load of the same final rows.
//!
//! Setup (not timed): N order events (default 200,000; JSON values of about 200 bytes,
//! keys over N/4 order ids, no tombstones) are produced to a fresh source topic of 6
//! partitions. The expected final rows — per key the latest event, kept when its status is
//! `PLACED` or `PAID` — are computed here from the produced events, not by Sluice.
//!
//! 1. **Sluice**: dataset and PostgreSQL target cluster registered, one product applied and
//!    approved through the in-process API (router over a SQLite store), `Controller::run`
//!    and `Controller::run_jobs` in this process (default config but a 1 s resync). Timed
//!    from the approval until the product's phase is `Live` (the job reports
//!    `BackfillComplete` only after the sink applied the output topic up to its end). Also:
//!    when the job report first said
//!    `backfillComplete` (polled every 100 ms beside the phase), this
//!    process's CPU time (utime + stime of /proc/self/stat) over the phase, and its peak RSS
//!    (VmHWM of /proc/self/status, reset through /proc/self/clear_refs at the approval).
//! 2. **Baselines**, same run, same final rows, tables of the target's shape in a scratch
//!    schema: (a) `COPY … FROM STDIN` (text format, sqlx `copy_in_raw`) into the final
//!    table; (b) `COPY` into an unindexed staging table, then `INSERT … SELECT … ON CONFLICT
//!    (order_id) DO UPDATE` into the final table.
//!
//! At the end the Sluice target must hold exactly the expected rows, and as many as the
//! baseline table (the process exits non-zero otherwise).
//!
//! `cargo bench -p sluice-tests --bench job_load` (or `make bench`); tune with
//! `SLUICE_BENCH_EVENTS` (default 200000). Everything it creates (topics, consumer groups,
//! schemas, roles, the SQLite directory) is removed at the end, also on failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{Api, Names};

/// The allocator of the `sluice` binary: the job is measured as it ships.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use sluice_tests::bench::{clock_ticks, cpu_seconds, env_or, proc_status_kib, reset_peak_rss};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};
use sluice_api::AppState;
use sluice_api::auth::Role;
use sluice_controller::{Controller, ControllerConfig};
use sluice_store::{AuditKey, ObjectKey, SecretBox, Store};
use sluice_tests::{quote_pg_ident, sql_with_ident};
use tokio::sync::oneshot;

const ADMIN_TOKEN: &str = "slc_bench-job-admin-token";
const SOURCE_PARTITIONS: i32 = 6;
const PRODUCT: &str = "open-orders";
/// How long the backfill may take before the benchmark gives up.
const LIVE_LIMIT: Duration = Duration::from_secs(20 * 60);
const FILTER: &str = r#"o.status == "PLACED" || o.status == "PAID""#;
const STATUSES: [&str; 4] = ["PLACED", "PAID", "SHIPPED", "CANCELLED"];

/// The expected final rows: order id → (amount, status, index of its latest event).
type Rows = BTreeMap<String, (f64, String, u64)>;

fn main() {
    let events: usize = env_or("SLUICE_BENCH_EVENTS", 200_000);
    let names = Names::new("jobbench");
    common::run(
        "job_load",
        &names,
        bench(Arc::clone(&names), events),
        || cleanup(&names),
    );
}

impl Names {
    fn cluster(&self) -> String {
        format!("pg-{}", self.suffix)
    }
    fn dataset(&self) -> String {
        format!("ds{}.orders", self.suffix)
    }
    fn target_name(&self) -> String {
        format!("open_orders_{}", self.suffix)
    }
    fn product(&self) -> Value {
        json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "DataProduct",
            "metadata": {"name": PRODUCT, "team": self.team},
            "spec": {
                "sources": [{"name": "o", "dataset": self.dataset(), "from": "earliest"}],
                "filter": FILTER,
                "key": "o.id",
                "fields": {"order_id": "o.id", "amount": "o.amount", "status": "o.status"},
                "target": {"cluster": self.cluster(), "name": self.target_name(),
                           "mode": "upsert", "options": {}},
                "deletionPolicy": "Delete"
            }
        })
    }
}

/// Event `i`: its key and its JSON value (about 200 bytes). Deterministic.
fn event(i: usize, keys: usize) -> (String, String) {
    let mut x = (i as u64)
        .wrapping_add(1)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        x ^= x >> 29;
        x = x.wrapping_mul(0xbf58476d1ce4e5b9);
        x ^= x >> 32;
        x
    };
    let key = format!("o-{}", next() as usize % keys);
    let value = json!({
        "id": key,
        "amount": (next() % 100_000) as f64 / 100.0,
        "status": STATUSES[next() as usize % STATUSES.len()],
        "qty": i,
        "customer": format!("c-{:06}", next() % 1_000_000),
        "note": format!("{:0>64}", format!("{:x}{:x}", next(), next())),
        "created_at": "2026-11-26T12:00:00Z",
    })
    .to_string();
    (key, value)
}

/// Produces the N events (not timed against anything) and returns the expected rows and
/// the total value bytes.
async fn produce(names: &Names, topic: &str, n: usize) -> (Rows, usize) {
    let producer = names
        .ns
        .kafka_config()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("compression.type", "none")
        .create::<rdkafka::producer::FutureProducer>()
        .unwrap();
    let keys = (n / 4).max(1);
    let mut rows = Rows::new();
    let mut bytes = 0;
    for start in (0..n).step_by(20_000) {
        let batch: Vec<(String, String)> = (start..(start + 20_000).min(n))
            .map(|i| event(i, keys))
            .collect();
        let records: Vec<FutureRecord<'_, str, str>> = batch
            .iter()
            .map(|(key, value)| FutureRecord::<str, str>::to(topic).key(key).payload(value))
            .collect();
        sluice_tests::send_in_order(&producer, records).await;
        for (offset, (key, value)) in batch.into_iter().enumerate() {
            bytes += value.len();
            let value: Value = serde_json::from_str(&value).unwrap();
            let status = value["status"].as_str().unwrap();
            if status == "PLACED" || status == "PAID" {
                let amount = value["amount"].as_f64().unwrap();
                rows.insert(key, (amount, status.to_owned(), (start + offset) as u64));
            } else {
                rows.remove(&key);
            }
        }
    }
    (rows, bytes)
}

async fn bench(names: Arc<Names>, n: usize) -> Result<(), String> {
    let services = names.ns.services();
    let ticks = clock_ticks();
    println!(
        "Job load: {n} order events over {} keys, {SOURCE_PARTITIONS} partitions, one upsert \
         product with a filter into PostgreSQL (schema isolation), SQLite store",
        (n / 4).max(1)
    );
    let topic = names
        .ns
        .create_topic("orders", SOURCE_PARTITIONS)
        .await
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    let (want, bytes) = produce(&names, &topic, n).await;
    println!(
        "produced {n} events ({:.1} MB of values, avg {} B) in {:.2}s; {} expected rows \
         ({:.1} % of the events)",
        bytes as f64 / 1e6,
        bytes / n.max(1),
        t.elapsed().as_secs_f64(),
        want.len(),
        want.len() as f64 * 100.0 / n as f64
    );

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
    let dataset = json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "Dataset",
        "metadata": {"name": names.dataset(), "owner": "team-shop"},
        "spec": {
            "topic": topic, "kind": "stream", "key": "id", "classification": "internal",
            "compatibility": "BACKWARD",
            "schema": {"type": "object", "required": ["id", "amount"], "properties": {
                "id": {"type": "string"}, "amount": {"type": "number"},
                "status": {"type": "string"}, "qty": {"type": "integer"},
                "customer": {"type": "string"}, "note": {"type": "string"},
                "created_at": {"type": "string"}}}
        }
    });
    api.send(
        ADMIN_TOKEN,
        Method::PUT,
        &format!("/api/v1/datasets/{}", names.dataset()),
        Some(&dataset),
    )
    .await;
    let cluster = json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "TargetCluster",
        "metadata": {"name": names.cluster()},
        "spec": {"type": "postgres", "url": services.postgres_url, "isolation": "schema",
                 "allowedTeams": ["*"]}
    });
    api.send(
        ADMIN_TOKEN,
        Method::PUT,
        &format!("/api/v1/targetclusters/{}", names.cluster()),
        Some(&cluster),
    )
    .await;
    // Defaults but a 1 s resync: with the default 30 s, a product whose job had not yet
    // reported at its first pass is next looked at by the resync, which would dominate the
    // measured time.
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
    let path = format!("/api/v1/products/{}/{PRODUCT}", names.team);
    api.send(&requester, Method::PUT, &path, Some(&names.product()))
        .await;

    // 1. Sluice: from the approval to Live.
    reset_peak_rss();
    let rss_before = proc_status_kib("VmRSS");
    let cpu_before = cpu_seconds(ticks);
    let started = Instant::now();
    api.send(
        &approver,
        Method::POST,
        &format!("{path}/approve"),
        Some(&json!({})),
    )
    .await;
    controller.waker().wake();
    let key = ObjectKey::data_product(&names.team, PRODUCT);
    let mut reported: Option<Duration> = None;
    let mut last_print = Instant::now();
    let outcome = loop {
        if reported.is_none()
            && store
                .job_reports(&key, 1)
                .await
                .ok()
                .is_some_and(|r| r.iter().any(|(_, r)| r["backfillComplete"] == true))
        {
            reported = Some(started.elapsed());
        }
        let status = api.send(ADMIN_TOKEN, Method::GET, &path, None).await["status"].clone();
        if status["phase"] == "Live" {
            break Ok(status);
        }
        if started.elapsed() > LIVE_LIMIT {
            break Err(format!("not Live after {LIVE_LIMIT:?}: {status:#}"));
        }
        if last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            println!(
                "  {:>6.1}s: phase {}, backfill {}",
                started.elapsed().as_secs_f64(),
                status["phase"],
                status["backfill"]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let live = started.elapsed();
    let cpu = cpu_seconds(ticks) - cpu_before;
    let peak_rss = proc_status_kib("VmHWM");
    let status = outcome?;
    let reported = reported.unwrap_or(live);
    println!(
        "Live after {:.2}s (job report backfillComplete after {:.2}s); CPU {cpu:.2}s; peak RSS \
         {:.0} MiB (RSS at approval {:.0} MiB); backfill {}",
        live.as_secs_f64(),
        reported.as_secs_f64(),
        peak_rss as f64 / 1024.0,
        rss_before as f64 / 1024.0,
        status["backfill"]
    );
    let _ = stop_jobs.send(());
    jobs.await.map_err(|e| e.to_string())?;
    let _ = stop.send(());
    running.await.map_err(|e| e.to_string())?;

    // 2. Baselines: the same final rows, bulk-loaded.
    let pool = names.ns.pg_pool().await.map_err(|e| e.to_string())?;
    let mut copy_text = String::with_capacity(want.len() * 48);
    for (key, (amount, status, version)) in &want {
        copy_text.push_str(&format!("{key}\t{amount}\t{status}\t{version}\n"));
    }
    let shape = " (order_id text PRIMARY KEY, amount double precision NOT NULL, status text, \
                 _sluice_version bigint NOT NULL)";
    for table in ["copy_final", "upsert_final"] {
        sqlx::query(sql_with_ident("CREATE TABLE ", table, shape))
            .execute(&pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    sqlx::query(
        "CREATE TABLE staging (order_id text NOT NULL, amount double precision NOT NULL, \
         status text, _sluice_version bigint NOT NULL)",
    )
    .execute(&pool)
    .await
    .map_err(|e| e.to_string())?;
    let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
    let t = Instant::now();
    copy_in(&mut conn, "copy_final", &copy_text).await?;
    let copy = t.elapsed();
    let t = Instant::now();
    copy_in(&mut conn, "staging", &copy_text).await?;
    let staged = t.elapsed();
    sqlx::query(
        "INSERT INTO upsert_final SELECT * FROM staging ON CONFLICT (order_id) DO UPDATE SET \
         amount = EXCLUDED.amount, status = EXCLUDED.status, \
         _sluice_version = EXCLUDED._sluice_version \
         WHERE upsert_final._sluice_version < EXCLUDED._sluice_version",
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| e.to_string())?;
    let staged_upsert = t.elapsed();
    drop(conn);
    let baseline_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM copy_final")
        .fetch_one(&pool)
        .await
        .map_err(|e| e.to_string())?;
    let upsert_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM upsert_final")
        .fetch_one(&pool)
        .await
        .map_err(|e| e.to_string())?;
    pool.close().await;

    // Correctness: the Sluice target holds exactly the expected rows.
    let got = sluice_tests::oracle::postgres_rows(services, &names.team, &names.target_name())
        .await
        .map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    let expected: BTreeMap<String, (f64, String)> = want
        .iter()
        .map(|(k, (a, s, _))| (k.clone(), (*a, s.clone())))
        .collect();
    if got != expected {
        problems.push(format!(
            "Sluice target differs from the expected rows: {}",
            sluice_tests::oracle::difference(&got, &expected)
        ));
    }
    if got.len() as i64 != baseline_rows || baseline_rows != upsert_rows {
        problems.push(format!(
            "row counts: Sluice {}, COPY {baseline_rows}, COPY + upsert {upsert_rows}",
            got.len()
        ));
    }

    let rows = want.len() as f64;
    let live_s = live.as_secs_f64();
    let copy_s = copy.as_secs_f64();
    let upsert_s = staged_upsert.as_secs_f64();
    let sluice_eps = n as f64 / live_s;
    println!();
    println!("| measurement | time | throughput | vs COPY |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| Sluice backfill, approval → `Live` ({n} source events → {} rows) | {live_s:.2} s \
         | {sluice_eps:.0} source events/s ({:.0} final rows/s) | {:.3}× |",
        want.len(),
        rows / live_s,
        sluice_eps / (rows / copy_s)
    );
    println!(
        "| … until the job report says `backfillComplete` (polled every 100 ms) | {:.2} s \
         | {:.0} source events/s | {:.3}× |",
        reported.as_secs_f64(),
        n as f64 / reported.as_secs_f64(),
        (n as f64 / reported.as_secs_f64()) / (rows / copy_s)
    );
    println!(
        "| baseline: `COPY … FROM STDIN` of the final rows | {copy_s:.2} s | {:.0} input rows/s \
         | 1.000× |",
        rows / copy_s
    );
    println!(
        "| baseline: `COPY` to staging ({:.2} s) + `INSERT … ON CONFLICT DO UPDATE` | \
         {upsert_s:.2} s | {:.0} input rows/s | {:.3}× |",
        staged.as_secs_f64(),
        rows / upsert_s,
        (rows / upsert_s) / (rows / copy_s)
    );
    println!(
        "| Sluice process CPU over the backfill (API, controller, job, polling) | {cpu:.2} s \
         | {:.2} CPU-s per million source events | — |",
        cpu * 1e6 / n as f64
    );
    println!(
        "| Sluice process peak RSS (VmHWM since the approval; {:.0} MiB at approval) | — | \
         {:.0} MiB | — |",
        rss_before as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
    println!(
        "(ratios: Sluice counts source events per second — every produced event, about half \
         filtered out and most superseded by a later event of the same key; COPY counts its \
         input rows, the {} final rows, per second. Rows: Sluice {}, COPY {baseline_rows}, \
         COPY + upsert {upsert_rows})",
        want.len(),
        got.len()
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// `COPY table FROM STDIN` (text format) of `text`, in 1 MiB chunks.
async fn copy_in(conn: &mut sqlx::PgConnection, table: &str, text: &str) -> Result<(), String> {
    let statement = format!("COPY {} FROM STDIN", quote_pg_ident(table));
    let mut copy = conn
        .copy_in_raw(&statement)
        .await
        .map_err(|e| e.to_string())?;
    for chunk in text.as_bytes().chunks(1 << 20) {
        copy.send(chunk).await.map_err(|e| e.to_string())?;
    }
    copy.finish().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Removes the product's topics and consumer groups, its schema and roles, the namespace
/// (source topic, scratch schema) and the SQLite directory.
async fn cleanup(names: &Names) {
    sluice_tests::bench::remove_team(&names.ns, &names.team).await;
    let _ = std::fs::remove_dir_all(&names.dir);
}
