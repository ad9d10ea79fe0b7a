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
use sluice_tests::oracle::{self, Event, FILTER, Rows, expected, workload};

use crate::controller::{Cluster, World, wait_for};

pub(crate) async fn produce(world: &World, events: &[Event]) {
    let producer = world.ns.kafka_producer();
    let topic = world.ns.topic("orders");
    // In the oracle's order: the oracle reads the events as the topic holds them.
    let payloads: Vec<Option<String>> = events
        .iter()
        .map(|(_, value)| value.as_ref().map(Value::to_string))
        .collect();
    let records = events.iter().zip(&payloads).map(|((key, _), payload)| {
        let mut record = FutureRecord::<str, str>::to(&topic).key(key.as_str());
        if let Some(payload) = payload.as_deref() {
            record = record.payload(payload);
        }
        record
    });
    sluice_tests::send_in_order(&producer, records).await;
}

fn fields() -> Value {
    json!({"order_id": "o.id", "amount": "o.amount", "status": "o.status"})
}

pub(crate) fn filtered(world: &World, name: &str, cluster: Cluster) -> Value {
    let mut doc = world.product(name, cluster, fields(), "Delete");
    doc["spec"]["filter"] = json!(FILTER);
    doc["spec"]["slo"] = json!({"freshness": "1h"});
    doc
}

/// What the target of `name` holds, read as its readers read it (view, alias, pointer).
pub(crate) async fn rows(world: &World, name: &str, cluster: Cluster) -> Rows {
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
pub(crate) async fn converge(
    world: &World,
    name: &str,
    cluster: Cluster,
    want: &Rows,
    seconds: u64,
) {
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

    world
        .submit(&filtered(&world, name, Cluster::Postgres))
        .await;
    let controller = world.run_controller();
    let jobs = world.run_jobs();

    // The backfill: the product goes Live once the job read and applied every record up to
    // the watermarks taken at its start, and the target is exactly the oracle's view.
    wait_for(&world, name, 90, |s| s["phase"] == "Live").await;
    let want = expected(&history);
    assert!(want.len() > 100, "a workload with rows");
    assert_eq!(rows(&world, name, Cluster::Postgres).await, want);
    // Live, the product measures its lag against its freshness SLO.
    let status = wait_for(&world, name, 30, |s| {
        s["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Fresh" && c["status"] == "True")
        })
    })
    .await;
    assert!(status["lagMs"].is_u64(), "{status:#}");
    let progress = &status["backfill"][0];
    assert_eq!(progress["done"], progress["total"], "{status:#}");
    assert_eq!(progress["total"], json!(history.len()));

    // Live: new events, with the job stopped and restarted half-way (re-delivery).
    let live = workload(11, 2000, 600);
    produce(&world, &live[..1000]).await;
    jobs.stop().await;
    produce(&world, &live[1000..]).await;
    let jobs = world.run_jobs();
    let all: Vec<Event> = history.iter().chain(live.iter()).cloned().collect();
    converge(&world, name, Cluster::Postgres, &expected(&all), 60).await;

    jobs.stop().await;
    controller.stop().await;
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
    let controller = world.run_controller();
    let jobs = world.run_jobs();
    for (name, _) in targets {
        wait_for(&world, name, 90, |s| s["phase"] == "Live").await;
    }
    let want = expected(&history);
    for (name, cluster) in targets {
        assert_eq!(rows(&world, name, cluster).await, want, "{name}");
    }
    // Live, the index makes records searchable sooner than the engine's default second.
    let settings: Value = reqwest::get(format!(
        "{}/{}/_settings",
        world.ns.services().opensearch_url,
        world.target_name("search-orders")
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let indexes = settings.as_object().unwrap();
    assert_eq!(indexes.len(), 1, "{settings:#}");
    for index in indexes.values() {
        assert_eq!(
            index["settings"]["index"]["refresh_interval"],
            sluice_provisioners::elasticsearch::provision::LIVE_REFRESH_INTERVAL,
            "{settings:#}"
        );
        // Created by the controller without OpenSearch's merge on refresh.
        assert_eq!(
            index["settings"]["index"]["merge_on_flush"]["enabled"], "false",
            "{settings:#}"
        );
    }
    let live = workload(5, 800, 300);
    produce(&world, &live).await;
    let all: Vec<Event> = history.iter().chain(live.iter()).cloned().collect();
    for (name, cluster) in targets {
        converge(&world, name, cluster, &expected(&all), 60).await;
    }
    jobs.stop().await;
    controller.stop().await;
    for (name, _) in targets {
        assert_eq!(world.delete(name).await, axum::http::StatusCode::ACCEPTED);
    }
    world.reconcile().await;
    world.cleanup().await;
}

/// Counts the committed records of `topic` and returns their `sluice-error` headers.
pub(crate) async fn dead_letters(world: &World, topic: &str) -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    let consumer: BaseConsumer = world
        .ns
        .kafka_config()
        .set("group.id", format!("test.{}.dlq", world.ns.id()))
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        consumer.subscribe(&[topic.as_str()]).unwrap();
        let mut reasons = Vec::new();
        let mut idle = 0;
        while idle < 20 {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    idle = 0;
                    let reason = message
                        .headers()
                        .and_then(|h| h.iter().find(|h| h.key == "sluice-error"))
                        .and_then(|h| h.value)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default();
                    reasons.push(reason);
                }
                Some(Err(e)) => panic!("{e}"),
                None => idle += 1,
            }
        }
        reasons
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_records_go_to_the_dead_letter_topic_and_nothing_is_lost() {
    let world = World::new("job_dlq").await;
    let name = "all-orders";
    let mut doc = world.product(name, Cluster::Postgres, fields(), "Delete");
    doc["spec"]["target"]["mode"] = json!("append");
    doc["spec"].as_object_mut().unwrap().remove("key");
    // Good records, records that are not JSON, and records of the wrong type.
    let producer = world.ns.kafka_producer();
    let topic = world.ns.topic("orders");
    let mut good = 0usize;
    let mut poison = 0usize;
    for i in 0..300 {
        let key = format!("o-{i}");
        let payload = match i % 10 {
            3 => {
                poison += 1;
                "{not json".to_owned()
            }
            7 => {
                poison += 1;
                json!({"id": key, "amount": "lots", "status": "PAID"}).to_string()
            }
            _ => {
                good += 1;
                json!({"id": key, "amount": i as f64, "status": "PAID"}).to_string()
            }
        };
        producer
            .send(
                FutureRecord::<str, str>::to(&topic)
                    .key(&key)
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    world.submit(&doc).await;
    let controller = world.run_controller();
    let jobs = world.run_jobs();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = world.status(name).await;
        if status["phase"] == "Live" && status["deadLetters"] == json!(poison) {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "{status:#}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // Every source record is either a row or a dead letter, once.
    let pool = world.ns.pg_pool().await.unwrap();
    let statement = format!(
        "SELECT count(*) FROM {}.{}",
        sluice_tests::quote_pg_ident(&world.team),
        sluice_tests::quote_pg_ident(&world.target_name(name))
    );
    let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(statement))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, i64::try_from(good).unwrap(), "{status:#}");
    let dlq = format!("sluice.{}.{name}.v1.dlq", world.team);
    let reasons = dead_letters(&world, &dlq).await;
    assert_eq!(reasons.len(), poison);
    assert_eq!(rows as usize + reasons.len(), 300);
    assert!(
        reasons.iter().any(|r| r.contains("not JSON")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("amount")), "{reasons:?}");

    jobs.stop().await;
    controller.stop().await;
    assert_eq!(world.delete(name).await, axum::http::StatusCode::ACCEPTED);
    world.reconcile().await;
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn from_as_duration_and_timestamp_with_events_arriving_during_the_backfill() {
    let world = World::new("job_from").await;
    let now = chrono::Utc::now();
    let day = chrono::Duration::days(1);
    let producer = world.ns.kafka_producer();
    let topic = world.ns.topic("orders");
    // qty numbers the events: 0.. are 60 days old, 1000.. are a day old, 2000.. arrive while
    // the jobs backfill.
    let send = |i: usize, at: chrono::DateTime<chrono::Utc>| {
        let key = format!("o-{i}");
        let payload =
            json!({"id": key, "amount": i as f64, "status": "PAID", "qty": i}).to_string();
        let producer = producer.clone();
        let topic = topic.clone();
        async move {
            producer
                .send(
                    FutureRecord::<str, str>::to(&topic)
                        .key(&key)
                        .payload(&payload)
                        .timestamp(at.timestamp_millis()),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
                .unwrap();
        }
    };
    futures_util::future::join_all((0..1000).map(|i| send(i, now - day * 60))).await;
    futures_util::future::join_all((1000..2000).map(|i| send(i, now - day))).await;

    let append = |name: &str, from: String| {
        let mut doc = world.product(
            name,
            Cluster::Postgres,
            json!({"order_id": "o.id", "qty": "o.qty"}),
            "Delete",
        );
        doc["spec"]["target"]["mode"] = json!("append");
        doc["spec"].as_object_mut().unwrap().remove("key");
        doc["spec"]["sources"][0]["from"] = json!(from);
        doc
    };
    world.submit(&append("recent", "30d".to_owned())).await;
    let at = (now - day * 45).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    world.submit(&append("since", at)).await;
    let controller = world.run_controller();
    let jobs = world.run_jobs();
    // Produced while the jobs start and backfill: no gap, no replay at the hand-off.
    for batch in (2000..3000).collect::<Vec<_>>().chunks(100) {
        futures_util::future::join_all(batch.iter().map(|i| send(*i, chrono::Utc::now()))).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let pool = world.ns.pg_pool().await.unwrap();
    let want: Vec<i64> = (1000..3000).collect();
    for name in ["recent", "since"] {
        let statement = format!(
            "SELECT qty FROM {}.{} ORDER BY qty",
            sluice_tests::quote_pg_ident(&world.team),
            sluice_tests::quote_pg_ident(&world.target_name(name))
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let got: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(statement.clone()))
                .fetch_all(&pool)
                .await
                .unwrap();
            if got == want {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name}: {} rows, first {:?}, {} duplicates",
                got.len(),
                got.first(),
                got.len() - got.iter().collect::<std::collections::BTreeSet<_>>().len()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // The job counted the backfill from `from`: the day-old events at least.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let status = world.status(name).await;
            let total = status["backfill"][0]["total"].as_u64().unwrap_or_default();
            if status["phase"] == "Live" && (1000..3000).contains(&total) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{status:#}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    jobs.stop().await;
    controller.stop().await;
    for name in ["recent", "since"] {
        assert_eq!(world.delete(name).await, axum::http::StatusCode::ACCEPTED);
    }
    world.reconcile().await;
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lookup_joins_see_the_table_loaded_first_and_then_kept_current() {
    lookup_scenario("job_lookup", false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn propagating_lookups_update_written_rows_even_across_a_restart() {
    lookup_scenario("job_propagate", true).await;
}

/// Orders looked up in customers: backfill with missing partners, then customers renamed
/// while the job is down (it resumes from its committed table offsets) and new orders.
/// Without `propagate` written rows keep the old names; with it every row shows the new.
/// The propagating run keeps its table and its propagation state on disk (a memory budget
/// of 1 KiB each).
async fn lookup_scenario(label: &str, propagate: bool) {
    let world = World::new(label).await;
    let orders = world.ns.create_topic("orders2", 3).await.unwrap();
    let customers = world.ns.create_topic("customers", 1).await.unwrap();
    let put = |name: &str, topic: &str, kind: &str, properties: Value| {
        json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "Dataset",
            "metadata": {"name": format!("ds{}.{name}", world.suffix), "owner": "team-shop"},
            "spec": {"topic": topic, "kind": kind, "key": "id", "classification": "internal",
                     "schema": {"type": "object", "required": ["id"], "properties": properties}}
        })
    };
    world
        .put_admin(&put(
            "orders2",
            &orders,
            "stream",
            json!({"id": {"type": "string"}, "customer_id": {"type": "string"},
                   "amount": {"type": "number"}}),
        ))
        .await;
    world
        .put_admin(&put(
            "customers",
            &customers,
            "table",
            json!({"id": {"type": "string"}, "name": {"type": "string"}}),
        ))
        .await;
    let producer = world.ns.kafka_producer();
    let send = |topic: &str, key: String, value: Value| {
        let producer = producer.clone();
        let topic = topic.to_owned();
        async move {
            let payload = value.to_string();
            producer
                .send(
                    FutureRecord::<str, str>::to(&topic)
                        .key(&key)
                        .payload(&payload),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
                .unwrap();
        }
    };
    // 50 customers; orders also name 10 customers that do not exist (left join: null).
    // Customers and orders carry members the product never reads, which the job skips
    // rather than builds: they must change nothing.
    futures_util::future::join_all((0..50).map(|c| {
        send(
            &customers,
            format!("c-{c}"),
            json!({"email": format!("c{c}@example.com"), "id": format!("c-{c}"),
                   "tags": ["x", {"n": c}], "name": format!("name-{c}")}),
        )
    }))
    .await;
    let order = |i: usize, round: usize| {
        let key = format!("o-{}", i % 300);
        let customer = format!("c-{}", (i * 7 + round) % 60);
        (
            key.clone(),
            json!({"note": {"text": "unread \"member\"", "n": [i]}, "id": key,
                   "customer_id": customer, "amount": (i + round) as f64}),
        )
    };
    let mut latest: BTreeMap<String, Value> = BTreeMap::new();
    let history: Vec<(String, Value)> = (0..1200).map(|i| order(i, 0)).collect();
    futures_util::future::join_all(
        history
            .iter()
            .map(|(key, value)| send(&orders, key.clone(), value.clone())),
    )
    .await;
    latest.extend(history);
    let name = "enriched";
    let doc = json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "DataProduct",
        "metadata": {"name": name, "team": world.team},
        "spec": {
            "sources": [
                {"name": "o", "dataset": format!("ds{}.orders2", world.suffix), "from": "earliest"},
                {"name": "c", "dataset": format!("ds{}.customers", world.suffix)}
            ],
            "joins": [{"type": "lookup", "right": "c", "on": "o.customer_id == c.id",
                       "propagate": propagate}],
            "key": "o.id",
            "fields": {"order_id": "o.id", "amount": "o.amount", "customer_name": "c.name"},
            "target": {"cluster": world.cluster(Cluster::Postgres),
                       "name": world.target_name(name), "mode": "upsert"},
            "deletionPolicy": "Delete"
        }
    });
    world.submit(&doc).await;
    let controller = world.run_controller();
    // `<label>-<pid>-<nanos>.redb`: the kind of store is the label's end.
    let stores = || {
        let mut kinds: Vec<&str> = world
            .state_files()
            .iter()
            .map(|name| {
                let label = name.split('-').next().unwrap_or_default();
                if label.ends_with("_propagate") {
                    "propagation"
                } else {
                    "tables"
                }
            })
            .collect();
        kinds.sort();
        kinds
    };
    let jobs = world.run_jobs_on_disk(propagate);
    let names: BTreeMap<String, String> = (0..50)
        .map(|c| (format!("c-{c}"), format!("name-{c}")))
        .collect();
    let oracle = |latest: &BTreeMap<String, Value>, names: &BTreeMap<String, String>| {
        latest
            .iter()
            .map(|(key, value)| {
                let customer = value["customer_id"].as_str().unwrap();
                (
                    key.clone(),
                    (
                        value["amount"].as_f64().unwrap(),
                        names.get(customer).cloned(),
                    ),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let read = || async {
        let pool = world.ns.pg_pool().await.unwrap();
        let statement = format!(
            "SELECT order_id, amount, customer_name FROM {}.{}",
            sluice_tests::quote_pg_ident(&world.team),
            sluice_tests::quote_pg_ident(&world.target_name(name))
        );
        let rows: Vec<(String, f64, Option<String>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(statement))
                .fetch_all(&pool)
                .await
                .unwrap();
        rows.into_iter()
            .map(|(k, a, n)| (k, (a, n)))
            .collect::<BTreeMap<_, _>>()
    };
    wait_for(&world, name, 60, |s| s["phase"] == "Live").await;
    let want = oracle(&latest, &names);
    assert!(
        want.values().any(|(_, n)| n.is_none()),
        "some orders have no customer"
    );
    assert_eq!(read().await, want);
    let on_disk: &[&str] = if propagate {
        &["propagation", "tables"]
    } else {
        &[]
    };
    assert_eq!(stores(), on_disk, "state on disk while the job runs");

    // Live: customers are renamed while the job is down, then new orders of 100 keys.
    jobs.stop().await;
    assert!(stores().is_empty(), "the on-disk stores go with the job");
    let mut renamed = names.clone();
    for c in 0..25 {
        let id = format!("c-{c}");
        renamed.insert(id.clone(), format!("renamed-{c}"));
        send(
            &customers,
            id.clone(),
            json!({"id": id, "name": format!("renamed-{c}")}),
        )
        .await;
    }
    let jobs = world.run_jobs_on_disk(propagate);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut want = if propagate {
        oracle(&latest, &renamed)
    } else {
        want
    };
    for i in 0..100 {
        let (key, value) = order(i, 1);
        send(&orders, key.clone(), value.clone()).await;
        let customer = value["customer_id"].as_str().unwrap().to_owned();
        want.insert(
            key,
            (
                value["amount"].as_f64().unwrap(),
                renamed.get(&customer).cloned(),
            ),
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = read().await;
        if got == want {
            break;
        }
        let differ: Vec<_> = want
            .iter()
            .filter(|(k, v)| got.get(*k) != Some(*v))
            .take(5)
            .collect();
        assert!(std::time::Instant::now() < deadline, "differ: {differ:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    jobs.stop().await;
    controller.stop().await;
    assert_eq!(world.delete(name).await, axum::http::StatusCode::ACCEPTED);
    world.reconcile().await;
    world.cleanup().await;
}

/// `Live` means the target holds the whole backfill. The sink reads the output topic up to
/// its end at the job's start (what the transform commits from then on is handed to it in
/// process), and a `read_committed` reader cannot pass a transaction still open. Here
/// another producer's transaction, opened before the job starts and held open in every
/// output partition, keeps the sink from reading that far: the product must stay
/// `Backfilling` until the sink could read and apply everything, and be exactly the
/// oracle's view the moment it turns `Live`.
#[tokio::test(flavor = "multi_thread")]
async fn live_waits_until_the_sink_applied_every_committed_backfill_record() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    let world = World::new("job_complete").await;
    let name = "complete";
    let history = workload(41, 3000, 400);
    produce(&world, &history).await;
    world.submit(&filtered(&world, name, Cluster::Redis)).await;
    let controller = world.run_controller();
    let status = wait_for(&world, name, 60, |s| s["target"]["topic"].is_string()).await;
    let output = status["target"]["topic"].as_str().unwrap().to_owned();

    // A transaction opened before the job starts, holding a record in every output
    // partition, left open.
    let stray: BaseProducer = world
        .ns
        .kafka_config()
        .set("transactional.id", format!("test.{}.stray", world.ns.id()))
        .create()
        .unwrap();
    let probe: BaseConsumer = world.ns.kafka_config().create().unwrap();
    let topic = output.clone();
    let stray = tokio::task::spawn_blocking(move || {
        let partitions = probe
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .unwrap()
            .topics()[0]
            .partitions()
            .len();
        stray.init_transactions(Duration::from_secs(30)).unwrap();
        stray.begin_transaction().unwrap();
        for p in 0..partitions {
            let key = format!("o-stray-{p}");
            let payload = json!({"order_id": key, "amount": 1.0, "status": "PAID"}).to_string();
            stray
                .send(
                    BaseRecord::to(&topic)
                        .partition(i32::try_from(p).unwrap())
                        .key(&key)
                        .payload(&payload),
                )
                .unwrap();
        }
        stray.flush(Duration::from_secs(30)).unwrap();
        stray
    })
    .await
    .unwrap();

    // The job backfills: the transform reads everything...
    let jobs = world.run_jobs();
    wait_for(&world, name, 60, |s| {
        let progress = &s["backfill"][0];
        progress["total"] == json!(history.len()) && progress["done"] == progress["total"]
    })
    .await;
    // ...but what it wrote lies behind the open transaction: for as long as it stays open,
    // the product is not Live.
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < until {
        let status = world.status(name).await;
        assert_eq!(status["phase"], "Backfilling", "{status:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The transaction ends (aborted: its records are never applied); at the moment the
    // product turns Live, the target holds the whole backfill.
    tokio::task::spawn_blocking(move || stray.abort_transaction(Duration::from_secs(30)))
        .await
        .unwrap()
        .unwrap();
    wait_for(&world, name, 60, |s| s["phase"] == "Live").await;
    assert_eq!(rows(&world, name, Cluster::Redis).await, expected(&history));

    jobs.stop().await;
    controller.stop().await;
    assert_eq!(world.delete(name).await, axum::http::StatusCode::ACCEPTED);
    world.reconcile().await;
    world.cleanup().await;
}
