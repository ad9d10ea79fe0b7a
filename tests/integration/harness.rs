//! The harness itself: namespaces are disjoint and really cleaned up.

use std::time::Duration;

use serde_json::json;
use sluice_tests::TestNamespace;

#[test]
fn namespaces_never_share_a_name() {
    let a = TestNamespace::new("same label");
    let b = TestNamespace::new("same label");
    assert_ne!(a.id(), b.id());
    assert_ne!(a.topic("x"), b.topic("x"));
    assert_ne!(a.pg_schema(), b.pg_schema());
    assert_ne!(a.redis_prefix(), b.redis_prefix());
    assert_ne!(a.index_prefix(), b.index_prefix());
    // OpenSearch index names must be lowercase and free of characters it refuses.
    assert!(
        a.index("orders")
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    );
    std::mem::forget(a);
    std::mem::forget(b);
}

#[tokio::test]
async fn dropping_a_namespace_removes_what_it_created() {
    let ns = TestNamespace::new("cleanup");
    let topic = ns.create_topic("t", 1).await.unwrap();
    let pool = ns.pg_pool().await.unwrap();
    sqlx::query("CREATE TABLE x (id int)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let mut con = ns.redis().await.unwrap();
    let key = format!("{}k", ns.redis_prefix());
    redis::cmd("SET")
        .arg(&key)
        .arg("v")
        .query_async::<()>(&mut con)
        .await
        .unwrap();
    let index = ns.index("i");
    let (client, url) = ns.opensearch(&index);
    let status = client
        .put(&url)
        .json(&json!({"settings": {"number_of_replicas": 0}}))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());

    let schema = ns.pg_schema();
    let admin = ns.kafka_admin();
    let pg_url = ns.services().postgres_url.clone();
    drop(ns);

    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(5))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut topic_gone = !metadata.topics().iter().any(|t| t.name() == topic);
    while !topic_gone && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let metadata = admin
            .inner()
            .fetch_metadata(None, Duration::from_secs(5))
            .unwrap();
        topic_gone = !metadata.topics().iter().any(|t| t.name() == topic);
    }
    assert!(topic_gone, "topic {topic} survived cleanup");

    let pool = sqlx::PgPool::connect(&pg_url).await.unwrap();
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)",
    )
    .bind(&schema)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(!exists, "schema {schema} survived cleanup");

    let value: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(value, None, "redis key {key} survived cleanup");

    let status = client.head(&url).send().await.unwrap().status();
    assert_eq!(
        status,
        reqwest::StatusCode::NOT_FOUND,
        "index {index} survived cleanup"
    );
}
