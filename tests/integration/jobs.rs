//! Stream jobs end to end against the real Kafka and targets: a generated workload is
//! produced to the source topic, a product is approved, the controller provisions it and
//! the in-process job backfills and then follows the source. The target's content is
//! compared row by row with an **independent oracle**: the expected materialized view,
//! computed here from the produced records (latest record per key; filtered-out or
//! tombstoned keys have no row), not by Sluice's code.

use std::time::Duration;

use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};
use sluice_tests::oracle::{self, Event, FILTER, Rows, expected, workload};

use crate::controller::{Cluster, World};

async fn produce(world: &World, events: &[Event]) {
    let producer = world.ns.kafka_producer();
    let topic = world.ns.topic("orders");
    // Sent without waiting one by one (the idempotent producer keeps each key's order),
    // then every delivery awaited.
    let payloads: Vec<Option<String>> = events
        .iter()
        .map(|(_, value)| value.as_ref().map(Value::to_string))
        .collect();
    let sends = events.iter().zip(&payloads).map(|((key, _), payload)| {
        let mut record = FutureRecord::<str, str>::to(&topic).key(key.as_str());
        if let Some(payload) = payload.as_deref() {
            record = record.payload(payload);
        }
        producer.send(record, Duration::from_secs(30))
    });
    for delivered in futures_util::future::join_all(sends).await {
        delivered.map_err(|(e, _)| e).unwrap();
    }
}

fn fields() -> Value {
    json!({"order_id": "o.id", "amount": "o.amount", "status": "o.status"})
}

fn filtered(world: &World, name: &str, cluster: Cluster) -> Value {
    let mut doc = world.product(name, cluster, fields(), "Delete");
    doc["spec"]["filter"] = json!(FILTER);
    doc
}

/// What the target of `name` holds, read as its readers read it (view, alias, pointer).
async fn rows(world: &World, name: &str, cluster: Cluster) -> Rows {
    let services = world.ns.services();
    let target = world.target_name(name);
    match cluster {
        Cluster::Postgres => oracle::postgres_rows(services, &world.team, &target).await,
        Cluster::Search => oracle::search_rows(services, &target).await,
        Cluster::Redis => oracle::redis_rows(services, &target).await,
    }
    .unwrap()
}

/// Polls until the target holds exactly `want`, for up to `seconds`.
async fn converge(world: &World, name: &str, cluster: Cluster, want: &Rows, seconds: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let got = rows(world, name, cluster).await;
        if &got == want {
            return;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "{}; status {:#}",
                oracle::difference(&got, want),
                world.status(name).await
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_backfill_then_live_matches_the_oracle_through_a_job_restart() {
    let world = World::new("job_pg").await;
    let name = "open-orders";
    let history = workload(7, 4000, 600);
    produce(&world, &history).await;

    let started = std::time::Instant::now();
    world
        .submit(&filtered(&world, name, Cluster::Postgres))
        .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(world.controller.clone().run(async move {
        let _ = stopped.await;
    }));
    let (stop_jobs, jobs_stopped) = tokio::sync::oneshot::channel::<()>();
    let jobs = tokio::spawn(world.controller.clone().run_jobs(async move {
        let _ = jobs_stopped.await;
    }));

    // The backfill: the product goes Live once the job read and applied every record up to
    // the watermarks taken at its start, and the target is exactly the oracle's view.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let status = world.status(name).await;
        if status["phase"] == "Live" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not Live: {status:#}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!("live after {:?}", started.elapsed());
    let want = expected(&history);
    assert!(want.len() > 100, "a workload with rows");
    assert_eq!(rows(&world, name, Cluster::Postgres).await, want);
    let status = world.status(name).await;
    let progress = &status["backfill"][0];
    assert_eq!(progress["done"], progress["total"], "{status:#}");
    assert_eq!(progress["total"], json!(history.len()));

    // Live: new events, with the job stopped and restarted half-way (re-delivery).
    let live = workload(11, 2000, 600);
    produce(&world, &live[..1000]).await;
    let _ = stop_jobs.send(());
    jobs.await.unwrap();
    produce(&world, &live[1000..]).await;
    let (stop_jobs, jobs_stopped) = tokio::sync::oneshot::channel::<()>();
    let jobs = tokio::spawn(world.controller.clone().run_jobs(async move {
        let _ = jobs_stopped.await;
    }));
    let all: Vec<Event> = history.iter().chain(live.iter()).cloned().collect();
    converge(&world, name, Cluster::Postgres, &expected(&all), 60).await;
    eprintln!("converged after {:?}", started.elapsed());

    let _ = stop_jobs.send(());
    jobs.await.unwrap();
    let _ = stop.send(());
    controller.await.unwrap();
    assert_eq!(world.delete(name).await, axum::http::StatusCode::ACCEPTED);
    world.reconcile().await;
    world.cleanup().await;
}

/// Backfill and live on OpenSearch and Redis: the same oracle, read through the alias and
/// the pointer.
#[tokio::test(flavor = "multi_thread")]
async fn search_and_redis_backfill_then_live_match_the_oracle() {
    let world = World::new("job_os_redis").await;
    let history = workload(3, 1500, 300);
    produce(&world, &history).await;
    let targets = [
        ("search-orders", Cluster::Search),
        ("cache-orders", Cluster::Redis),
    ];
    for (name, cluster) in targets {
        world.submit(&filtered(&world, name, cluster)).await;
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(world.controller.clone().run(async move {
        let _ = stopped.await;
    }));
    let (stop_jobs, jobs_stopped) = tokio::sync::oneshot::channel::<()>();
    let jobs = tokio::spawn(world.controller.clone().run_jobs(async move {
        let _ = jobs_stopped.await;
    }));
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    for (name, _) in targets {
        loop {
            let status = world.status(name).await;
            if status["phase"] == "Live" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "not Live: {status:#}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let want = expected(&history);
    for (name, cluster) in targets {
        assert_eq!(rows(&world, name, cluster).await, want, "{name}");
    }
    let live = workload(5, 800, 300);
    produce(&world, &live).await;
    let all: Vec<Event> = history.iter().chain(live.iter()).cloned().collect();
    for (name, cluster) in targets {
        converge(&world, name, cluster, &expected(&all), 60).await;
    }
    let _ = stop_jobs.send(());
    jobs.await.unwrap();
    let _ = stop.send(());
    controller.await.unwrap();
    for (name, _) in targets {
        assert_eq!(world.delete(name).await, axum::http::StatusCode::ACCEPTED);
    }
    world.reconcile().await;
    world.cleanup().await;
}
