//! Window joins end to end: orders joined with their payments in a one-hour event-time
//! window, backfilled, then live with both arrival orders, across a restart of the job (the
//! window state is rebuilt), into PostgreSQL. The target is compared with an **independent
//! oracle** computed here from the produced records: for each order key, its latest order
//! record, paired with the payments of that order whose event times lie within the hour,
//! kept if the filter holds.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};

use crate::controller::{Cluster, World, wait_for};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
/// 2026-01-01T00:00:00Z: the workload's first event time.
const T0: i64 = 1_767_225_600_000;

fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One produced record: topic (`o` or `p`), key, value.
type Produced = (&'static str, String, Value);

/// The workload's records for orders `range`, in event-time order (the order they are
/// produced in, as a shop would: so a payment made before its order arrives first). Order
/// `i` happens at `T0 + i * 10 min`; by `i % 7` its payment is: 0 twenty minutes later, 1
/// thirty minutes earlier, 2 two hours later (outside the window), 3 missing, 4 too small for
/// the filter, 5 ten minutes later, with the order amended five minutes after that (a later
/// record of the same key), 6 exactly one hour later (the window's edge).
fn workload(range: std::ops::Range<i64>) -> Vec<Produced> {
    let mut out = Vec::new();
    for i in range {
        let t = T0 + i * 10 * MINUTE;
        let id = format!("o-{i}");
        let amount = (i % 50) as f64 + 10.0;
        let order = json!({"id": id, "amount": amount, "created_at": at(t)});
        let payment = |offset: i64, paid: f64| {
            json!({"id": format!("p-{i}"), "order_id": id, "amount": paid,
                   "created_at": at(t + offset)})
        };
        let payment = match i % 7 {
            0 => Some(payment(20 * MINUTE, amount)),
            1 => Some(payment(-30 * MINUTE, amount + 1.0)),
            2 => Some(payment(2 * HOUR, amount)),
            3 => None,
            4 => Some(payment(5 * MINUTE, amount - 5.0)),
            5 => Some(payment(10 * MINUTE, amount + 100.0)),
            _ => Some(payment(HOUR, amount)),
        };
        out.push(("o", id.clone(), order));
        if let Some(payment) = payment {
            out.push(("p", format!("p-{i}"), payment));
        }
        if i % 7 == 5 {
            out.push((
                "o",
                id.clone(),
                json!({"id": id, "amount": amount + 50.0, "created_at": at(t + 15 * MINUTE)}),
            ));
        }
    }
    out.sort_by_key(|(_, _, value)| time(value));
    out
}

/// A record's event time.
fn time(value: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(value["created_at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

/// The oracle: order key → (amount, paid) of the row the target must hold.
fn oracle(produced: &[Produced]) -> BTreeMap<String, (f64, f64)> {
    let mut latest: BTreeMap<String, Value> = BTreeMap::new();
    let mut payments: Vec<&Value> = Vec::new();
    for (side, key, value) in produced {
        if *side == "o" {
            latest.insert(key.clone(), value.clone());
        } else {
            payments.push(value);
        }
    }
    let mut rows = BTreeMap::new();
    for (key, order) in &latest {
        let Some(order_time) = order.get("created_at").map(|_| time(order)) else {
            continue;
        };
        for payment in &payments {
            if payment["order_id"] == order["id"]
                && (time(payment) - order_time).abs() <= HOUR
                && payment["amount"].as_f64() >= order["amount"].as_f64()
            {
                rows.insert(
                    key.clone(),
                    (
                        order["amount"].as_f64().unwrap(),
                        payment["amount"].as_f64().unwrap(),
                    ),
                );
            }
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn window_joins_pair_records_within_the_window_in_either_order_across_a_restart() {
    window_scenario("job_window", false).await;
}

/// The same with the window's records on disk: a memory budget of 1 KiB moves them to the
/// job's on-disk store at once.
#[tokio::test(flavor = "multi_thread")]
async fn window_joins_with_their_records_on_disk_pair_the_same() {
    window_scenario("job_window_disk", true).await;
}

async fn window_scenario(label: &str, on_disk: bool) {
    let world = World::with_kafka(label).await;
    let orders = world.ns.create_topic("w_orders", 3).await.unwrap();
    let payments = world.ns.create_topic("w_payments", 2).await.unwrap();
    let dataset = |name: &str, topic: &str, properties: Value| {
        json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "Dataset",
            "metadata": {"name": format!("ds{}.{name}", world.suffix), "owner": "team-shop"},
            "spec": {"topic": topic, "kind": "stream", "key": "id", "timestampField": "created_at",
                     "classification": "internal",
                     "schema": {"type": "object", "required": ["id"], "properties": properties}}
        })
    };
    world
        .put_admin(&dataset(
            "w_orders",
            &orders,
            json!({"id": {"type": "string"}, "amount": {"type": "number"},
                   "created_at": {"type": "string", "format": "date-time"}}),
        ))
        .await;
    world
        .put_admin(&dataset(
            "w_payments",
            &payments,
            json!({"id": {"type": "string"}, "order_id": {"type": "string"},
                   "amount": {"type": "number"},
                   "created_at": {"type": "string", "format": "date-time"}}),
        ))
        .await;
    let producer = world.ns.kafka_producer();
    let produce = |records: Vec<Produced>| {
        let producer = producer.clone();
        let (orders, payments) = (orders.clone(), payments.clone());
        async move {
            // One at a time: the order of production is the order of arrival.
            for (side, key, value) in records {
                let topic = if side == "o" { &orders } else { &payments };
                let payload = value.to_string();
                producer
                    .send(
                        FutureRecord::<str, str>::to(topic)
                            .key(&key)
                            .payload(&payload),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .unwrap();
            }
        }
    };

    // History: 280 orders and their payments, all in Kafka before the product exists, plus
    // an order without an event time (dead-lettered).
    let mut all = workload(0..280);
    produce(all.clone()).await;
    produce(vec![(
        "o",
        "o-bad".into(),
        json!({"id": "o-bad", "amount": 1.0}),
    )])
    .await;

    let name = "paid";
    let doc = json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "DataProduct",
        "metadata": {"name": name, "team": world.team},
        "spec": {
            "sources": [
                {"name": "o", "dataset": format!("ds{}.w_orders", world.suffix), "from": "earliest"},
                {"name": "p", "dataset": format!("ds{}.w_payments", world.suffix), "from": "earliest"}
            ],
            "joins": [{"type": "window", "right": "p", "on": "o.id == p.order_id", "within": "1h"}],
            "filter": "p.amount >= o.amount",
            "key": "o.id",
            "fields": {"order_id": "o.id", "amount": "o.amount", "paid": "p.amount"},
            "target": {"cluster": world.cluster(Cluster::Postgres),
                       "name": world.target_name(name), "mode": "upsert"},
            "deletionPolicy": "Delete"
        }
    });
    world.submit(&doc).await;

    // The plan's preview pairs the latest orders with the latest payments as the job does:
    // every row is an order record with a payment of that order within the hour that the
    // filter keeps; orders whose payment is outside the window, missing or too small show
    // no row.
    let plan = world.plan(name).await;
    let preview = plan["preview"].as_array().cloned().unwrap_or_default();
    assert!(!preview.is_empty(), "no preview rows: {plan:#}");
    for row in &preview {
        let (id, amount, paid) = (&row["order_id"], &row["amount"], &row["paid"]);
        let orders: Vec<&Value> = all
            .iter()
            .filter(|(side, _, v)| *side == "o" && v["id"] == *id && v["amount"] == *amount)
            .map(|(_, _, v)| v)
            .collect();
        let paired = all.iter().any(|(side, _, p)| {
            *side == "p"
                && p["order_id"] == *id
                && p["amount"] == *paid
                && p["amount"].as_f64() >= amount.as_f64()
                && orders.iter().any(|o| (time(p) - time(o)).abs() <= HOUR)
        });
        assert!(
            paired,
            "preview row {row} pairs no order with a payment of it in the window"
        );
        let i: i64 = id.as_str().unwrap()[2..].parse().unwrap();
        assert!(
            ![2, 3, 4].contains(&(i % 7)),
            "preview row {row}: its order meets no payment"
        );
    }

    let controller = world.run_controller();
    let window_stores = || {
        world
            .state_files()
            .iter()
            .filter(|name| name.contains("_window-"))
            .count()
    };
    let jobs = world.run_jobs_on_disk(on_disk);
    let read = || async {
        let pool = world.ns.pg_pool().await.unwrap();
        let statement = format!(
            "SELECT order_id, amount, paid FROM {}.{}",
            sluice_tests::quote_pg_ident(&world.team),
            sluice_tests::quote_pg_ident(&world.target_name(name))
        );
        let rows: Vec<(String, f64, f64)> = sqlx::query_as(sqlx::AssertSqlSafe(statement))
            .fetch_all(&pool)
            .await
            .unwrap();
        rows.into_iter()
            .map(|(k, a, p)| (k, (a, p)))
            .collect::<BTreeMap<_, _>>()
    };
    let converge = |want: BTreeMap<String, (f64, f64)>| {
        let read = &read;
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let got = read().await;
                if got == want {
                    return;
                }
                let missing: Vec<_> = want
                    .keys()
                    .filter(|k| !got.contains_key(*k))
                    .take(5)
                    .collect();
                let unexpected: Vec<_> = got
                    .keys()
                    .filter(|k| !want.contains_key(*k))
                    .take(5)
                    .collect();
                let differing: Vec<_> = want
                    .iter()
                    .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
                    .take(5)
                    .collect();
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} rows, {} expected; missing {missing:?}, unexpected {unexpected:?}, differing {differing:?}",
                    got.len(),
                    want.len()
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    };

    let live = wait_for(&world, name, 90, |s| s["phase"] == "Live").await;
    let sources: Vec<&str> = live["backfill"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["source"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(sources, ["o", "p"], "{live:#}");
    let want = oracle(&all);
    // Every case shows: in the window either side first, at its edge, amended; and not
    // outside it, unpaid or filtered out.
    for (i, present) in [
        (0, true),
        (1, true),
        (2, false),
        (3, false),
        (4, false),
        (5, true),
        (6, true),
    ] {
        for base in [0, 140] {
            let key = format!("o-{}", base + i);
            assert_eq!(want.contains_key(&key), present, "oracle case {key}");
        }
    }
    assert_eq!(
        want["o-5"],
        (15.0 + 50.0, 15.0 + 100.0),
        "the amended order"
    );
    converge(want).await;
    assert_eq!(
        window_stores(),
        usize::from(on_disk),
        "window records on disk while the job runs"
    );
    let dead = wait_for(&world, name, 30, |s| s["deadLetters"].as_u64() >= Some(1)).await;
    assert_eq!(dead["deadLetters"], 1, "{dead:#}");

    // Live, one record at a time: payments made before their order (case 1) arrive first,
    // the others after it.
    let live = workload(280..340);
    produce(live.clone()).await;
    all.extend(live);
    converge(oracle(&all)).await;

    // Across a restart: the job stops in the middle of the events, so orders it read before
    // meet payments produced while it is down or after it is back, and payments it read
    // before (case 1) meet their orders afterwards: the window state must be rebuilt from
    // what was processed.
    let rest = workload(340..420);
    // The cut: after the payment of order 344 (made 30 minutes before it), before the order
    // itself, and after order 343 but before its payment (20 minutes later).
    let cut = rest
        .iter()
        .position(|(side, key, _)| *side == "o" && key == "o-344")
        .unwrap();
    let (before, after) = rest.split_at(cut);
    assert!(before.iter().any(|(_, key, _)| key == "p-344"));
    assert!(before.iter().any(|(_, key, _)| key == "o-343"));
    assert!(after.iter().any(|(_, key, _)| key == "p-343"));
    let (down, up) = after.split_at(after.len() / 3);
    produce(before.to_vec()).await;
    all.extend(before.iter().cloned());
    converge(oracle(&all)).await;
    jobs.stop().await;
    assert_eq!(window_stores(), 0, "the on-disk store goes with the job");
    produce(down.to_vec()).await;
    let jobs = world.run_jobs_on_disk(on_disk);
    produce(up.to_vec()).await;
    all.extend(after.iter().cloned());
    let want = oracle(&all);
    assert!(want.contains_key("o-343") && want.contains_key("o-344"));
    converge(oracle(&all)).await;

    jobs.stop().await;
    controller.stop().await;
    assert_eq!(world.delete(name).await, axum::http::StatusCode::ACCEPTED);
    world.reconcile().await;
    world.cleanup().await;
}
