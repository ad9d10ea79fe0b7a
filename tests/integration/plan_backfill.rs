//! Plans through the API with a real Kafka: the backfill estimate of a dataset's topic, the
//! real partition count in the topic plan, the diff of a changed live product against its
//! approved spec, and plans that still answer when Kafka is missing or unreachable.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};
use sluice_api::AppState;
use sluice_api::auth::Role;
use sluice_provisioners::kafka::KafkaProvisioner;
use sluice_tests::TestNamespace;

use crate::api::{Answer, TestApi, path_of, retail_documents};

const DAY_MS: i64 = 86_400_000;
const PARTITIONS: i32 = 3;
/// Records per partition from 60 days ago, then from 1 day ago.
const OLD: i64 = 4;
const NEW: i64 = 6;

fn retail(name: &str) -> Value {
    retail_documents()
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap()
}

/// A topic of the namespace, kept forever, with `OLD` old and `NEW` recent records per
/// partition.
async fn filled_topic(ns: &TestNamespace) -> String {
    let topic = ns.topic("orders");
    let created = ns
        .kafka_admin()
        .create_topics(
            &[
                NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(1))
                    .set("retention.ms", "-1"),
            ],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .unwrap();
    for result in created {
        result.unwrap();
    }
    let producer = ns.kafka_producer();
    let now = chrono::Utc::now().timestamp_millis();
    for partition in 0..PARTITIONS {
        for i in 0..OLD + NEW {
            let timestamp = if i < OLD {
                now - 60 * DAY_MS + i
            } else {
                now - DAY_MS + i
            };
            let key = format!("o-{partition}-{i}");
            let value = json!({"id": key, "customer_id": "c-1", "amount": 12.5, "status": "PAID"})
                .to_string();
            producer
                .send(
                    FutureRecord::to(&topic)
                        .partition(partition)
                        .key(&key)
                        .payload(&value)
                        .timestamp(timestamp),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
        }
    }
    topic
}

/// An API whose plans read Kafka at `bootstrap`.
async fn api_with_kafka(bootstrap: &str) -> TestApi {
    let kafka = Arc::new(KafkaProvisioner::new(bootstrap, 1).unwrap());
    TestApi::with_state(move |store| AppState::new(store).with_kafka(kafka)).await
}

/// The retail catalog, plus dataset `plantest.orders` (shop.orders' schema) on `topic`.
async fn catalog(api: &TestApi, topic: &str) {
    for doc in retail_documents()
        .into_iter()
        .filter(|d| d["kind"] != "DataProduct")
    {
        assert!(api.put_json(&path_of(&doc), &doc).await.status.is_success());
    }
    let mut dataset = retail("shop.orders");
    dataset["metadata"]["name"] = json!("plantest.orders");
    dataset["spec"]["topic"] = json!(topic);
    let answer = api.put_json(&path_of(&dataset), &dataset).await;
    assert!(answer.status.is_success(), "{}", answer.body);
}

/// The open-orders cache, reading `plantest.orders` from 30 days back.
fn product() -> Value {
    let mut doc = retail("open-orders-cache");
    doc["spec"]["sources"] = json!([{"name": "o", "dataset": "plantest.orders", "from": "30d"}]);
    doc
}

async fn send_as(api: &TestApi, token: &str, method: Method, path: &str, body: &Value) -> Answer {
    api.send_as(
        Some(token),
        method,
        path,
        Some("application/json"),
        body.to_string().into_bytes(),
    )
    .await
}

#[tokio::test]
async fn plans_estimate_the_backfill_and_diff_a_changed_live_product() {
    let ns = TestNamespace::new("api_plan_backfill");
    let topic = filled_topic(&ns).await;
    let api = api_with_kafka(&ns.services().kafka_bootstrap).await;
    catalog(&api, &topic).await;
    let requester = api.token(Role::Requester, "team-shop").await;
    let platform = api.token(Role::Approver, "platform").await;
    let doc = product();
    let path = path_of(&doc);

    let applied = send_as(&api, &requester, Method::PUT, &path, &doc).await;
    assert_eq!(applied.status, StatusCode::CREATED, "{}", applied.body);

    // A new product: the backfill from 30 days back reads exactly the recent records.
    let plan = api.get(&format!("{path}/plan")).await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.body);
    let backfill = &plan.body["backfill"];
    let recent = i64::from(PARTITIONS) * NEW;
    assert_eq!(backfill["events"], json!(recent), "{}", plan.body);
    assert_eq!(backfill["sources"][0]["topic"], json!(topic));
    assert_eq!(backfill["sources"][0]["partitions"], json!(PARTITIONS));
    assert!(backfill["bytes"].as_u64().unwrap() > 0);
    assert_eq!(backfill["estimatedSeconds"], json!(1));
    assert_eq!(backfill["warnings"], json!([]));
    assert_eq!(plan.body["warnings"], json!([]));
    assert_eq!(plan.body["diff"], Value::Null);
    // The output topic gets the source's real partition count.
    assert_eq!(plan.body["topics"][0]["partitions"], json!(PARTITIONS));
    assert!(
        plan.body["summary"]
            .to_string()
            .contains(&format!("Backfill: {recent} event(s)")),
        "{}",
        plan.body["summary"]
    );

    // Approved, then changed: the stored generation is newer than the approved one.
    let approved = send_as(
        &api,
        &platform,
        Method::POST,
        &format!("{path}/approve"),
        &json!({}),
    )
    .await;
    assert_eq!(
        approved.body["status"]["approvedGeneration"],
        json!(1),
        "{}",
        approved.body
    );
    let mut changed = doc.clone();
    let fields = changed["spec"]["fields"].as_object_mut().unwrap();
    fields.remove("currency");
    fields.insert("customer_id".to_owned(), json!("o.customer_id"));
    let reapplied = send_as(&api, &requester, Method::PUT, &path, &changed).await;
    assert_eq!(reapplied.status, StatusCode::OK, "{}", reapplied.body);
    assert_eq!(reapplied.body["status"]["approvedGeneration"], json!(1));

    let plan = api.get(&format!("{path}/plan")).await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.body);
    let diff = plan.body["diff"].as_array().expect("a diff");
    let classes: Vec<(&str, &str)> = diff
        .iter()
        .map(|c| (c["path"].as_str().unwrap(), c["class"].as_str().unwrap()))
        .collect();
    assert_eq!(
        classes,
        [
            ("/fields/currency", "destructive"),
            ("/fields/customer_id", "rebuild")
        ],
        "{}",
        plan.body
    );
    assert_eq!(plan.body["requiresNewVersion"], json!(true));
    assert_eq!(plan.body["backfill"]["events"], json!(recent));

    // A dry run of another change is diffed against the approved spec too.
    let mut ttl = doc.clone();
    ttl["spec"]["target"]["options"]["ttl"] = json!("30d");
    ttl["spec"]["sources"][0]["from"] = json!("90d");
    let dry = send_as(
        &api,
        &requester,
        Method::POST,
        &format!("{path}/plan"),
        &ttl,
    )
    .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(
        dry.body["diff"],
        json!([
            {"path": "/sources/0/from", "class": "rebuild",
             "description": "source `o` starts from `90d` instead of `30d`"},
            {"path": "/target/options/ttl", "class": "online",
             "description": "target option `ttl` is `\"30d\"` instead of `\"7d\"`"},
        ]),
        "{}",
        dry.body
    );
    // From 90 days back: every record, and the pre-flight says the topic holds 60 days only.
    assert_eq!(
        dry.body["backfill"]["events"],
        json!(i64::from(PARTITIONS) * (OLD + NEW))
    );
    let warning = dry.body["backfill"]["sources"][0]["retentionWarning"]
        .as_str()
        .expect("a retention warning");
    assert!(warning.contains(&topic), "{warning}");
    assert!(
        dry.body["warnings"][0]
            .as_str()
            .is_some_and(|w| w.starts_with("source `o`: ") && w.contains(&topic)),
        "{}",
        dry.body["warnings"]
    );
}

#[tokio::test]
async fn a_missing_topic_is_a_warning_not_an_error() {
    let ns = TestNamespace::new("api_plan_missing");
    let api = api_with_kafka(&ns.services().kafka_bootstrap).await;
    let topic = ns.topic("never-created");
    catalog(&api, &topic).await;
    let doc = product();
    let plan = api
        .send(
            Method::POST,
            &format!("{}/plan", path_of(&doc)),
            Some("application/json"),
            doc.to_string().into_bytes(),
        )
        .await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.body);
    assert_eq!(plan.body["backfill"], Value::Null);
    let warnings = plan.body["warnings"].to_string();
    assert!(
        warnings.contains(&topic) && warnings.contains("does not exist"),
        "{warnings}"
    );
    assert_eq!(plan.body["topics"][0]["partitions"], json!(1));
}

#[tokio::test]
async fn plans_answer_without_kafka_and_say_why() {
    // Not configured.
    let api = TestApi::new().await;
    api.apply_retail().await;
    let plan = api
        .get("/api/v1/products/team-payments/orders-enriched/plan")
        .await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.body);
    assert_eq!(plan.body["backfill"], Value::Null);
    assert!(
        plan.body["warnings"]
            .to_string()
            .contains("SLUICE_KAFKA_BOOTSTRAP"),
        "{}",
        plan.body
    );

    // Configured, but nothing listens there.
    let api = api_with_kafka("127.0.0.1:1").await;
    api.apply_retail().await;
    let plan = api
        .get("/api/v1/products/team-payments/orders-enriched/plan")
        .await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.body);
    assert_eq!(plan.body["backfill"], Value::Null);
    let warnings = plan.body["warnings"].to_string();
    assert!(warnings.contains("127.0.0.1:1"), "{warnings}");
}

#[tokio::test]
async fn a_policy_may_refuse_sources_that_no_longer_hold_from() {
    let ns = TestNamespace::new("api_plan_refuse");
    let topic = filled_topic(&ns).await;
    let kafka = Arc::new(KafkaProvisioner::new(&ns.services().kafka_bootstrap, 1).unwrap());
    let policy: sluice_api::approvals::Policy =
        serde_yaml::from_str("refuseRetentionGaps: true").unwrap();
    let api = TestApi::with_state(move |store| {
        AppState::new(store).with_kafka(kafka).with_policy(policy)
    })
    .await;
    catalog(&api, &topic).await;
    let requester = api.token(Role::Requester, "team-shop").await;
    let path = path_of(&product());

    // The topic holds 60 days: 90 days back is refused, at the source's `from`.
    let mut greedy = product();
    greedy["spec"]["sources"][0]["from"] = json!("90d");
    let refused = send_as(&api, &requester, Method::PUT, &path, &greedy).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    let errors = refused.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{}", refused.body);
    assert!(
        errors[0]["pointer"]
            .as_str()
            .unwrap()
            .ends_with("/spec/sources/0/from")
    );
    assert!(errors[0]["detail"].as_str().unwrap().contains(&topic));
    assert_eq!(api.get(&path).await.status, StatusCode::NOT_FOUND);

    // 30 days back is held: applied.
    let applied = send_as(&api, &requester, Method::PUT, &path, &product()).await;
    assert_eq!(applied.status, StatusCode::CREATED, "{}", applied.body);
    ns.cleanup().await;
}

#[tokio::test]
async fn plans_preview_the_latest_rows_with_pii_masked() {
    let ns = TestNamespace::new("api_plan_preview");
    let topic = filled_topic(&ns).await;
    let producer = ns.kafka_producer();
    for i in 0..3 {
        let key = format!("late-{i}");
        let value = json!({"id": key, "customer_id": "c-1", "amount": 5.0, "status": "PAID",
                           "shipping_email": format!("someone{i}@example.com")})
        .to_string();
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&value),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let api = api_with_kafka(&ns.services().kafka_bootstrap).await;
    catalog(&api, &topic).await;
    let requester = api.token(Role::Requester, "team-shop").await;
    let mut doc = product();
    doc["spec"]["fields"]["email"] = json!("o.shipping_email");
    let plan = send_as(
        &api,
        &requester,
        Method::POST,
        &format!("{}/plan", path_of(&doc)),
        &doc,
    )
    .await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.body);
    let preview = plan.body["preview"].as_array().unwrap();
    assert!(
        !preview.is_empty() && preview.len() <= 5,
        "{}",
        plan.body["preview"]
    );
    // The newest rows come first: the three late orders, their email masked.
    for row in &preview[..3] {
        assert_eq!(row["email"], json!("•••"), "{row}");
        assert_eq!(row["status"], json!("PAID"));
    }
    assert!(!plan.body["preview"].to_string().contains("example.com"));
    ns.cleanup().await;
}
