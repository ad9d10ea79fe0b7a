//! Smoke tests: each service answers the way Sluice will use it, through the same client
//! libraries Sluice uses (rdkafka, sqlx, redis, HTTP for OpenSearch and Elasticsearch).

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use serde_json::json;
use sluice_tests::{SearchEngine, TestNamespace};

#[tokio::test]
async fn kafka_topic_produce_consume() {
    let ns = TestNamespace::new("kafka_smoke");
    let topic = ns.create_topic("orders", 3).await.unwrap();

    let producer = ns.kafka_producer();
    let mut sent = BTreeMap::new();
    for i in 0..50 {
        let key = format!("order-{i}");
        let value = json!({"id": key, "amount": i}).to_string();
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        sent.insert(key, value);
    }

    let consumer = ns.kafka_consumer("reader");
    consumer.subscribe(&[&topic]).unwrap();
    let mut received = BTreeMap::new();
    let mut stream = consumer.stream();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while received.len() < sent.len() {
        let message = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("timed out waiting for records")
            .expect("consumer stream ended")
            .unwrap();
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
        received.insert(key, value);
    }
    assert_eq!(received, sent);

    let metadata = ns
        .kafka_admin()
        .inner()
        .fetch_metadata(Some(&topic), Duration::from_secs(5))
        .unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 3);
}

#[tokio::test]
async fn kafka_does_not_create_topics_on_use() {
    let ns = TestNamespace::new("kafka_autocreate");
    let topic = ns.topic("never-created");
    let producer: rdkafka::producer::FutureProducer = ns
        .kafka_config()
        .set("allow.auto.create.topics", "true")
        .set("topic.metadata.propagation.max.ms", "2000")
        .set("message.timeout.ms", "5000")
        .create()
        .unwrap();
    let result = producer
        .send(
            FutureRecord::to(&topic).key("k").payload("v"),
            Duration::from_secs(5),
        )
        .await;
    assert!(result.is_err(), "producing to {topic} succeeded");
    let metadata = ns
        .kafka_admin()
        .inner()
        .fetch_metadata(None, Duration::from_secs(5))
        .unwrap();
    assert!(
        !metadata.topics().iter().any(|t| t.name() == topic),
        "the broker auto-created {topic}"
    );
}

#[tokio::test]
async fn postgres_query_through_sqlx() {
    let ns = TestNamespace::new("pg_smoke");
    let pool = ns.pg_pool().await.unwrap();
    sqlx::query("CREATE TABLE orders (id text PRIMARY KEY, amount double precision NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    for (id, amount) in [("a", 1.5), ("b", 2.25), ("c", 3.0)] {
        sqlx::query("INSERT INTO orders (id, amount) VALUES ($1, $2)")
            .bind(id)
            .bind(amount)
            .execute(&pool)
            .await
            .unwrap();
    }
    let (count, total): (i64, f64) = sqlx::query_as("SELECT count(*), sum(amount) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((count, total), (3, 6.75));

    let schema: String = sqlx::query_scalar(
        "SELECT table_schema::text FROM information_schema.tables WHERE table_name = 'orders' \
         AND table_schema = current_schema()",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        schema,
        ns.pg_schema(),
        "the table landed outside the namespace"
    );
}

#[tokio::test]
async fn redis_hash_round_trip_with_acls() {
    let ns = TestNamespace::new("redis_smoke");
    let mut con = ns.redis().await.unwrap();
    let key = format!("{}order:1", ns.redis_prefix());
    redis::cmd("HSET")
        .arg(&key)
        .arg("amount")
        .arg("12.5")
        .arg("currency")
        .arg("EUR")
        .query_async::<()>(&mut con)
        .await
        .unwrap();
    let amount: String = redis::cmd("HGET")
        .arg(&key)
        .arg("amount")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(amount, "12.5");

    // ACLs are on: the admin user is who we are, and an anonymous client is refused.
    let whoami: String = redis::cmd("ACL")
        .arg("WHOAMI")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_ne!(whoami, "default");
    let mut anonymous_url = reqwest::Url::parse(&ns.services().redis_url).unwrap();
    anonymous_url.set_username("").unwrap();
    anonymous_url.set_password(None).unwrap();
    let anonymous = redis::Client::open(anonymous_url.as_str()).unwrap();
    let refused = match anonymous.get_multiplexed_async_connection().await {
        Err(_) => true,
        Ok(mut con) => redis::cmd("GET")
            .arg(&key)
            .query_async::<Option<String>>(&mut con)
            .await
            .is_err(),
    };
    assert!(refused, "an unauthenticated Redis client could read data");
}

#[tokio::test]
async fn search_index_bulk_search() {
    for engine in SearchEngine::ALL {
        search_index_bulk_search_on(engine).await;
    }
}

async fn search_index_bulk_search_on(engine: SearchEngine) {
    let ns = TestNamespace::new("search_smoke");
    let index = ns.index("orders");
    let (client, url) = ns.search(engine, &index);
    let created = client
        .put(&url)
        .json(&json!({
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {"properties": {
                "id": {"type": "keyword"},
                "amount": {"type": "double"},
                "status": {"type": "keyword"}
            }}
        }))
        .send()
        .await
        .unwrap();
    assert!(
        created.status().is_success(),
        "{}",
        created.text().await.unwrap()
    );

    let mut bulk = String::new();
    for i in 0..20 {
        let status = if i % 4 == 0 { "CANCELLED" } else { "PAID" };
        bulk.push_str(&json!({"index": {"_index": index, "_id": format!("o{i}")}}).to_string());
        bulk.push('\n');
        bulk.push_str(&json!({"id": format!("o{i}"), "amount": i, "status": status}).to_string());
        bulk.push('\n');
    }
    let (_, bulk_url) = ns.search(engine, "_bulk?refresh=true");
    let response: serde_json::Value = client
        .post(bulk_url)
        .header("content-type", "application/x-ndjson")
        .body(bulk)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["errors"], json!(false), "{response}");

    let (_, search_url) = ns.search(engine, &format!("{index}/_search"));
    let found: serde_json::Value = client
        .post(search_url)
        .json(&json!({"query": {"term": {"status": "PAID"}}, "size": 0, "track_total_hits": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["hits"]["total"]["value"], json!(15), "{found}");
}

#[tokio::test]
async fn search_alias_swap_and_external_versions() {
    for engine in SearchEngine::ALL {
        search_alias_swap_and_external_versions_on(engine).await;
    }
}

async fn search_alias_swap_and_external_versions_on(engine: SearchEngine) {
    let ns = TestNamespace::new("search_alias");
    let (client, _) = ns.search(engine, "");
    let alias = ns.index("orders");
    let (v1, v2) = (ns.index("orders-v1"), ns.index("orders-v2"));
    for index in [&v1, &v2] {
        let (_, url) = ns.search(engine, index);
        let status = client
            .put(url)
            .json(&json!({"settings": {"number_of_shards": 1, "number_of_replicas": 0}}))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success());
    }

    // An external version lets a newer write win and a late, older retry lose.
    let put = |index: &str, version: u64, amount: u64| {
        let (client, url) = ns.search(
            engine,
            &format!("{index}/_doc/o1?version={version}&version_type=external&refresh=true"),
        );
        async move {
            client
                .put(url)
                .json(&json!({"amount": amount}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert!(put(&v1, 7, 70).await.is_success());
    assert_eq!(put(&v1, 3, 30).await, reqwest::StatusCode::CONFLICT);
    let (_, url) = ns.search(engine, &format!("{v1}/_doc/o1"));
    let doc: serde_json::Value = client.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["_source"]["amount"], json!(70));
    assert!(put(&v2, 1, 1).await.is_success());

    // The alias moves from v1 to v2 in one atomic request.
    let (_, aliases) = ns.search(engine, "_aliases");
    let swap = |from: &str, to: &str| {
        json!({"actions": [
            {"remove": {"index": from, "alias": alias}},
            {"add": {"index": to, "alias": alias}}
        ]})
    };
    let add_first = json!({"actions": [{"add": {"index": v1, "alias": alias}}]});
    for body in [add_first, swap(&v1, &v2)] {
        let status = client
            .post(&aliases)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success());
    }
    let (_, url) = ns.search(engine, &format!("{alias}/_doc/o1"));
    let doc: serde_json::Value = client.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["_index"], json!(v2));
    assert_eq!(doc["_source"]["amount"], json!(1));
}
