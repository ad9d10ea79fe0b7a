//! Stream jobs end to end against the real Kafka and targets: a generated workload is
//! produced to the source topic, a product is approved, the controller provisions it and
//! the in-process job backfills and then follows the source. The target's content is
//! compared row by row with an **independent oracle**: the expected materialized view,
//! computed here from the produced records (latest record per key; filtered-out or
//! tombstoned keys have no row), not by Sluice's code.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};

use crate::controller::{Cluster, World};

/// One generated source record: key, and the value (`None`: a tombstone).
type Event = (String, Option<Value>);

/// `n` events over `keys` order ids, with statuses that the product's filter keeps or
/// drops and some tombstones. Deterministic for a seed.
fn workload(seed: u64, n: usize, keys: usize) -> Vec<Event> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let statuses = ["PLACED", "PAID", "SHIPPED", "CANCELLED"];
    (0..n)
        .map(|i| {
            let key = format!("o-{}", next() % keys);
            let roll = next() % 20;
            let value = (roll != 0).then(|| {
                json!({
                    "id": key,
                    "amount": (next() % 100_000) as f64 / 100.0,
                    "status": statuses[next() % statuses.len()],
                    "qty": i,
                })
            });
            (key, value)
        })
        .collect()
}

/// The oracle: for each key, the row the latest event yields, if any.
fn expected(events: &[Event]) -> BTreeMap<String, (f64, String)> {
    let mut latest: BTreeMap<String, Option<&Value>> = BTreeMap::new();
    for (key, value) in events {
        latest.insert(key.clone(), value.as_ref());
    }
    latest
        .into_iter()
        .filter_map(|(key, value)| {
            let value = value?;
            let status = value["status"].as_str()?.to_owned();
            (status == "PLACED" || status == "PAID")
                .then(|| (key, (value["amount"].as_f64().unwrap_or_default(), status)))
        })
        .collect()
}

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
    doc["spec"]["filter"] = json!(r#"o.status == "PLACED" || o.status == "PAID""#);
    doc
}

async fn pg_rows(world: &World, name: &str) -> BTreeMap<String, (f64, String)> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&world.ns.services().postgres_url)
        .await
        .unwrap();
    let statement = format!(
        "SELECT order_id, amount, status FROM {}.{}",
        sluice_tests::quote_pg_ident(&world.team),
        sluice_tests::quote_pg_ident(&world.target_name(name))
    );
    let rows: Vec<(String, f64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.into_iter()
        .map(|(key, amount, status)| (key, (amount, status)))
        .collect()
}

/// What the target of `name` holds, read as its readers read it (view, alias, pointer).
async fn rows(world: &World, name: &str, cluster: Cluster) -> BTreeMap<String, (f64, String)> {
    match cluster {
        Cluster::Postgres => pg_rows(world, name).await,
        Cluster::Search => search_rows(world, name).await,
        Cluster::Redis => redis_rows(world, name).await,
    }
}

async fn search_rows(world: &World, name: &str) -> BTreeMap<String, (f64, String)> {
    let alias = world.target_name(name);
    let (client, refresh) = world.ns.opensearch(&format!("/{alias}/_refresh"));
    client.post(refresh).send().await.unwrap();
    let (client, url) = world.ns.opensearch(&format!("/{alias}/_search?size=10000"));
    let body: Value = client.get(url).send().await.unwrap().json().await.unwrap();
    body["hits"]["hits"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|hit| {
            let source = &hit["_source"];
            (
                hit["_id"].as_str().unwrap().to_owned(),
                (
                    source["amount"].as_f64().unwrap(),
                    source["status"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

async fn redis_rows(world: &World, name: &str) -> BTreeMap<String, (f64, String)> {
    let prefix = world.target_name(name);
    let mut redis = world.ns.redis().await.unwrap();
    let version: Option<String> = redis::cmd("GET")
        .arg(format!("{prefix}:current"))
        .query_async(&mut redis)
        .await
        .unwrap();
    let Some(version) = version else {
        return BTreeMap::new();
    };
    let data = format!("{prefix}:{version}:");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{data}*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut rows = BTreeMap::new();
    for key in keys {
        let hash: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        rows.insert(
            key[data.len()..].to_owned(),
            (
                hash["amount"].parse::<f64>().unwrap(),
                hash["status"].clone(),
            ),
        );
    }
    rows
}

/// Polls until the target holds exactly `want`, for up to `seconds`.
async fn converge(
    world: &World,
    name: &str,
    cluster: Cluster,
    want: &BTreeMap<String, (f64, String)>,
    seconds: u64,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let got = rows(world, name, cluster).await;
        if &got == want {
            return;
        }
        if std::time::Instant::now() > deadline {
            let missing: Vec<_> = want
                .keys()
                .filter(|k| !got.contains_key(*k))
                .take(5)
                .collect();
            let extra: Vec<_> = got
                .keys()
                .filter(|k| !want.contains_key(*k))
                .take(5)
                .collect();
            let differ: Vec<_> = want
                .iter()
                .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
                .take(5)
                .collect();
            panic!(
                "target has {} rows, oracle {}; missing {missing:?}, extra {extra:?}, differ {differ:?}; status {:#}",
                got.len(),
                want.len(),
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
    assert_eq!(pg_rows(&world, name).await, want);
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
