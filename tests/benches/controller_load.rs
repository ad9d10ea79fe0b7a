//! Controller load benchmark against the real services of `make services`: N data products
//! (default 1000) of one team into the shared PostgreSQL cluster (schema isolation, one
//! target name per product), metadata store on SQLite in a temporary directory.
//!
//! 1. Reconcile throughput: every product is applied and approved through the in-process
//!    API (router), then the controller's `run` loop (default config: resync 30 s, 8 at
//!    once) is woken and timed until every product has `TargetReady=True`. Baseline in the
//!    same run: the same work done bare — per product one `CREATE TABLE` through sqlx and
//!    one `create_topics` of its two topics through the rdkafka admin, sequentially.
//! 2. Idle resync: with every product converged (and its job reported backfilled, as a
//!    worker does, so they are Live), one settling `reconcile_all()` and then 3 timed
//!    passes; no Kafka or target mutation may happen (the process exits non-zero if one
//!    does).
//! 3. Steady-state CPU: this process's CPU time (utime + stime of /proc/self/stat) over a
//!    window of `run` with the default resync, against the same window with the controller
//!    not running (the same process, just sleeping).
//!
//! `cargo bench -p sluice-tests --bench controller_load` (or `make bench`); tune with
//! `SLUICE_BENCH_PRODUCTS` (default 1000) and `SLUICE_BENCH_IDLE_SECONDS` (default 60).
//! Everything it creates (topics, schemas, roles) is removed at the end, also on failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{Api, Names};

/// The allocator of the `sluice` binary: the job is measured as it ships.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use sluice_tests::bench::{clock_ticks, cpu_seconds, env_or};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use serde_json::{Value, json};
use sluice_api::AppState;
use sluice_api::auth::Role;
use sluice_controller::{Controller, ControllerConfig, MetricsSnapshot};
use sluice_schemas::Kind;
use sluice_store::{AuditKey, ListQuery, ObjectKey, SecretBox, Store};
use sluice_tests::sql_with_ident;
use tokio::sync::oneshot;

const ADMIN_TOKEN: &str = "slc_bench-controller-admin-token";
/// Partitions of the source topic, hence of every output topic.
const SOURCE_PARTITIONS: i32 = 1;
/// How long convergence may take before the benchmark gives up and reports what it got.
const CONVERGE_LIMIT: Duration = Duration::from_secs(30 * 60);

fn main() {
    let products: usize = env_or("SLUICE_BENCH_PRODUCTS", 1000);
    let idle: u64 = env_or("SLUICE_BENCH_IDLE_SECONDS", 60);
    let names = Names::new("ctlbench");
    common::run(
        "controller_load",
        &names,
        bench(Arc::clone(&names), products, Duration::from_secs(idle)),
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
    fn product_name(i: usize) -> String {
        format!("p{i:05}")
    }
    fn target_name(&self, i: usize) -> String {
        format!("p{i:05}_{}", self.suffix)
    }
    fn product(&self, i: usize) -> Value {
        json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "DataProduct",
            "metadata": {"name": Self::product_name(i), "team": self.team},
            "spec": {
                "sources": [{"name": "o", "dataset": self.dataset(), "from": "earliest"}],
                "key": "o.id",
                "fields": {"order_id": "o.id", "amount": "o.amount", "status": "o.status"},
                "target": {"cluster": self.cluster(), "name": self.target_name(i),
                           "mode": "upsert", "options": {}},
                "deletionPolicy": "Delete"
            }
        })
    }
}

async fn bench(names: Arc<Names>, n: usize, idle: Duration) -> Result<(), String> {
    let services = names.ns.services();
    println!(
        "Controller load: {n} products of team {} into the shared PostgreSQL cluster \
         (schema isolation), SQLite store, source topic of {SOURCE_PARTITIONS} partition(s)",
        names.team
    );

    // Baseline first, removed again before the controller runs, so neither sees the
    // other's topics in the cluster metadata.
    let baseline = baseline(&names, n).await;
    println!(
        "baseline: {n} CREATE TABLE + {} topics (sequential) in {:.2}s",
        2 * n,
        baseline.as_secs_f64()
    );
    names.ns.cleanup().await;

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
    let sealing = secrets.clone();
    let api = Api {
        router: sluice_api::router(AppState::new(store.clone()).with_secrets(sealing)),
        store: store.clone(),
    };
    let requester = api.token(Role::Requester, &names.team).await;
    let approver = api.token(Role::Approver, "platform").await;

    let topic = names
        .ns
        .create_topic("orders", SOURCE_PARTITIONS)
        .await
        .map_err(|e| e.to_string())?;
    let dataset = json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "Dataset",
        "metadata": {"name": names.dataset(), "owner": "team-shop"},
        "spec": {
            "topic": topic, "kind": "stream", "key": "id", "classification": "internal",
            "compatibility": "BACKWARD",
            "schema": {"type": "object", "required": ["id", "amount"], "properties": {
                "id": {"type": "string"}, "amount": {"type": "number"},
                "status": {"type": "string"}}}
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

    let controller = Controller::new(
        store.clone(),
        secrets.clone(),
        ControllerConfig::new(services.kafka_bootstrap.clone()),
    )
    .map_err(|e| e.to_string())?;
    let metrics = controller.metrics();

    // 1. Reconcile throughput. The run loop starts first (its initial pass sees nothing)
    // and sleeps until woken after the approvals.
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(controller.clone().run(async move {
        let _ = stopped.await;
    }));
    while metrics.snapshot().passes < 1 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let applied_at = Instant::now();
    for i in 0..n {
        let name = Names::product_name(i);
        let path = format!("/api/v1/products/{}/{name}", names.team);
        api.send(&requester, Method::PUT, &path, Some(&names.product(i)))
            .await;
        api.send(
            &approver,
            Method::POST,
            &format!("{path}/approve"),
            Some(&json!({})),
        )
        .await;
    }
    let applying = applied_at.elapsed();
    println!(
        "applied and approved {n} products through the API in {:.2}s ({:.0}/s)",
        applying.as_secs_f64(),
        n as f64 / applying.as_secs_f64()
    );
    let before = metrics.snapshot();
    let started = Instant::now();
    controller.waker().wake();
    let mut last_print = Instant::now();
    let ready = loop {
        let counts = count(&store).await?;
        if counts.target_ready >= n {
            break counts.target_ready;
        }
        if started.elapsed() > CONVERGE_LIMIT {
            break counts.target_ready;
        }
        if last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            let m = metrics.snapshot();
            println!(
                "  {:>6.1}s: {}/{n} TargetReady, {} reconciles ({} failed), {} passes",
                started.elapsed().as_secs_f64(),
                counts.target_ready,
                m.reconciles - before.reconciles,
                m.reconcile_errors - before.reconcile_errors,
                m.passes - before.passes
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let converge = started.elapsed();
    let at_ready = metrics.snapshot();
    println!(
        "converged {ready}/{n} in {:.2}s: {} reconciles ({} failed), {} passes finished, \
         {} Kafka mutations, {} target mutations",
        converge.as_secs_f64(),
        at_ready.reconciles - before.reconciles,
        at_ready.reconcile_errors - before.reconcile_errors,
        at_ready.passes - before.passes,
        at_ready.kafka_mutations - before.kafka_mutations,
        at_ready.target_mutations - before.target_mutations,
    );
    // The run loop looks at its shutdown only between passes: a pass under way (products
    // requeued to poll for their job) finishes first.
    let stopping = Instant::now();
    let _ = stop.send(());
    running.await.map_err(|e| e.to_string())?;
    let after = metrics.snapshot();
    let target_mutations_converged = controller.target_mutations().await;
    println!(
        "run loop stopped after {:.2}s; {} more reconciles meanwhile, {} Kafka / {} target \
         mutations among them",
        stopping.elapsed().as_secs_f64(),
        after.reconciles - at_ready.reconciles,
        after.kafka_mutations - at_ready.kafka_mutations,
        after.target_mutations - at_ready.target_mutations,
    );
    if ready < n {
        return Err(format!(
            "only {ready} of {n} products reached TargetReady within {CONVERGE_LIMIT:?}"
        ));
    }

    // 2. Idle resync. Every job reports its backfill complete (as a worker would), one
    // pass settles the products to Live, then 3 timed passes; none may mutate anything.
    for i in 0..n {
        store
            .put_job_report(
                &ObjectKey::data_product(&names.team, Names::product_name(i)),
                1,
                0,
                &json!({"running": true, "backfillComplete": true}),
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    let settle_started = Instant::now();
    let settled = controller
        .reconcile_all()
        .await
        .map_err(|e| e.to_string())?;
    let settle = settle_started.elapsed();
    let live = count(&store).await?.live;
    println!(
        "settling pass (Backfilling → Live): {:.2}s, {} reconciled, {} failed, {live}/{n} Live",
        settle.as_secs_f64(),
        settled.reconciled,
        settled.failed
    );
    let mut idle_passes = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let report = controller
            .reconcile_all()
            .await
            .map_err(|e| e.to_string())?;
        idle_passes.push(t.elapsed());
        if report.reconciled != n || report.failed != 0 {
            return Err(format!("idle pass: {report:?}"));
        }
    }
    let idle_after = metrics.snapshot();
    let target_mutations_idle = controller.target_mutations().await;
    let mut problems = mutation_problems(
        "settling and idle passes",
        &after,
        &idle_after,
        target_mutations_converged,
        target_mutations_idle,
    );
    if live != n {
        problems.push(format!("only {live} of {n} products are Live"));
    }

    // 3. Steady-state CPU: the same window sleeping, then with the run loop.
    let ticks = clock_ticks();
    let cpu_before = cpu_seconds(ticks);
    let t = Instant::now();
    tokio::time::sleep(idle).await;
    let baseline_cpu = (cpu_seconds(ticks) - cpu_before) / t.elapsed().as_secs_f64();

    let (stop, stopped) = oneshot::channel::<()>();
    let passes_before_run = metrics.snapshot().passes;
    let running = tokio::spawn(controller.clone().run(async move {
        let _ = stopped.await;
    }));
    // The run loop's first pass is a full one at start; the window starts after it.
    let first_started = Instant::now();
    while metrics.snapshot().passes <= passes_before_run {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_pass = first_started.elapsed();
    let window_before = metrics.snapshot();
    let target_mutations_window_before = controller.target_mutations().await;
    let cpu_before = cpu_seconds(ticks);
    let t = Instant::now();
    tokio::time::sleep(idle).await;
    let window = t.elapsed().as_secs_f64();
    let controller_cpu = (cpu_seconds(ticks) - cpu_before) / window;
    let window_after = metrics.snapshot();
    let target_mutations_window_after = controller.target_mutations().await;
    let _ = stop.send(());
    running.await.map_err(|e| e.to_string())?;
    problems.extend(mutation_problems(
        "run window",
        &window_before,
        &window_after,
        target_mutations_window_before,
        target_mutations_window_after,
    ));

    let base = baseline.as_secs_f64();
    let conv = converge.as_secs_f64();
    let passes_in_window = window_after.passes - window_before.passes;
    let avg_pass_ms = if passes_in_window > 0 {
        (window_after.pass_micros - window_before.pass_micros) as f64
            / passes_in_window as f64
            / 1000.0
    } else {
        0.0
    };
    println!();
    println!("| measurement | figure | baseline | ratio |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| reconcile {n} products to TargetReady (`run`, woken) | {conv:.2} s ({:.1} products/s) \
         | {base:.2} s ({:.1}/s) bare tables + topics | {:.2}× |",
        n as f64 / conv,
        n as f64 / base,
        conv / base
    );
    for (i, p) in idle_passes.iter().enumerate() {
        println!(
            "| idle `reconcile_all()` pass {} over {n} Live products | {:.2} s ({:.1} ms/product) \
             | — | — |",
            i + 1,
            p.as_secs_f64(),
            p.as_secs_f64() * 1000.0 / n as f64
        );
    }
    println!(
        "| Kafka / target mutations in settling + 3 idle passes | {} / {} | 0 | — |",
        idle_after.kafka_mutations - after.kafka_mutations,
        idle_after.target_mutations - after.target_mutations
    );
    println!(
        "| CPU, `run` with resync 30 s, {window:.0} s window ({passes_in_window} full passes, \
         avg {avg_pass_ms:.0} ms) | {:.2} % of a core | {:.2} % sleeping | {:+.2} pts |",
        controller_cpu * 100.0,
        baseline_cpu * 100.0,
        (controller_cpu - baseline_cpu) * 100.0
    );
    println!(
        "(run loop's first full pass at start: {:.2}s; settling pass: {:.2}s; \
         apply + approve through the API: {:.2}s)",
        first_pass.as_secs_f64(),
        settle.as_secs_f64(),
        applying.as_secs_f64()
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// What must not have moved between two snapshots of a converged set.
fn mutation_problems(
    what: &str,
    before: &MetricsSnapshot,
    after: &MetricsSnapshot,
    target_before: u64,
    target_after: u64,
) -> Vec<String> {
    let mut problems = Vec::new();
    if after.kafka_mutations != before.kafka_mutations {
        problems.push(format!(
            "{what}: {} Kafka mutations",
            after.kafka_mutations - before.kafka_mutations
        ));
    }
    if after.target_mutations != before.target_mutations {
        problems.push(format!(
            "{what}: {} target mutations (metrics)",
            after.target_mutations - before.target_mutations
        ));
    }
    if target_after != target_before {
        problems.push(format!(
            "{what}: {} target mutations (connections)",
            target_after - target_before
        ));
    }
    problems
}

#[derive(Debug, Default)]
struct Counts {
    target_ready: usize,
    live: usize,
}

/// How many products have `TargetReady=True`, and how many are Live.
async fn count(store: &Store) -> Result<Counts, String> {
    let mut counts = Counts::default();
    let mut query = ListQuery {
        limit: ListQuery::MAX_LIMIT,
        ..ListQuery::default()
    };
    loop {
        let page = store
            .list(Kind::DataProduct, &query)
            .await
            .map_err(|e| e.to_string())?;
        for object in &page.items {
            let Some(status) = &object.status else {
                continue;
            };
            let ready = status["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "TargetReady" && c["status"] == "True")
            });
            counts.target_ready += usize::from(ready);
            counts.live += usize::from(status["phase"] == "Live");
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(counts),
        }
    }
}

/// The bare work: per product one table and one `create_topics` of two topics, in order.
async fn baseline(names: &Names, n: usize) -> Duration {
    let pool = names.ns.pg_pool().await.unwrap();
    let admin = names.ns.kafka_admin();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let started = Instant::now();
    for i in 0..n {
        sqlx::query(sql_with_ident(
            "CREATE TABLE ",
            &format!("base_{i}"),
            " (order_id text PRIMARY KEY, amount double precision, status text)",
        ))
        .execute(&pool)
        .await
        .unwrap();
        let output = names.ns.topic(&format!("base-{i}"));
        let dlq = format!("{output}.dlq");
        let topics = [
            NewTopic::new(&output, SOURCE_PARTITIONS, TopicReplication::Fixed(1)),
            NewTopic::new(&dlq, 1, TopicReplication::Fixed(1)),
        ];
        for result in admin.create_topics(&topics, &options).await.unwrap() {
            result.unwrap();
        }
    }
    let took = started.elapsed();
    pool.close().await;
    took
}

/// Removes the products' topics, schema and roles, the namespace (source and baseline
/// topics, baseline schema) and the SQLite directory.
async fn cleanup(names: &Names) {
    sluice_tests::bench::remove_team(&names.ns, &names.team).await;
    let _ = std::fs::remove_dir_all(&names.dir);
}
