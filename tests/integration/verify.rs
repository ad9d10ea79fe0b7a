//! `verify` end to end: a workload is backfilled into a target by the controller and the
//! in-process job; the verify endpoint then proves the target matches what the source says
//! (with counts equal to the independent oracle's), and, once a row is changed and another
//! deleted by hand, names both keys and records `Verified=False` on the product.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_tests::oracle::{FILTER, expected, workload};

use crate::controller::{Cluster, World, wait_for};
use crate::jobs::produce;

async fn verify(world: &World, name: &str) -> Value {
    let answer = world
        .api
        .send_as(
            Some(&world.requester),
            Method::POST,
            &format!("/api/v1/products/{}/{name}/verify", world.team),
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body
}

fn verified(status: &Value) -> &Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Verified"))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_verify_matches_the_oracle_then_names_tampered_keys() {
    let world = World::with_kafka("verify_pg").await;
    let name = "verified-orders";
    let history = workload(17, 1500, 300);
    produce(&world, &history).await;
    let mut doc = world.product(
        name,
        Cluster::Postgres,
        json!({"order_id": "o.id", "amount": "o.amount", "status": "o.status"}),
        "Delete",
    );
    doc["spec"]["filter"] = json!(FILTER);
    world.submit(&doc).await;
    let controller = world.run_controller();
    let jobs = world.run_jobs();
    wait_for(&world, name, 90, |s| s["phase"] == "Live").await;

    let want = expected(&history);
    let result = verify(&world, name).await;
    assert_eq!(result["matches"], json!(true), "{result:#}");
    assert_eq!(result["expected"], json!(want.len()), "{result:#}");
    assert_eq!(result["actual"], json!(want.len()), "{result:#}");
    assert_eq!(result["sourceRecords"], json!(history.len()));
    let ranges = result["ranges"].as_array().unwrap();
    assert_eq!(ranges.len(), 16);
    let in_ranges: u64 = ranges.iter().map(|r| r["expected"].as_u64().unwrap()).sum();
    assert_eq!(in_ranges, want.len() as u64);
    let status = world.status(name).await;
    assert_eq!(verified(&status)["status"], "True", "{status:#}");
    assert_eq!(verified(&status)["reason"], "Matches");
    assert_eq!(status["phase"], "Live", "the rest of the status is kept");

    // Tamper with the version's table by hand: one row deleted, one value changed.
    let mut keys = want.keys();
    let (gone, changed) = (keys.next().unwrap().clone(), keys.next().unwrap().clone());
    let pool = world.ns.pg_pool().await.unwrap();
    let table = format!(
        "{}.{}",
        sluice_tests::quote_pg_ident(&world.team),
        sluice_tests::quote_pg_ident(&format!("{}_v1", world.target_name(name)))
    );
    let deleted = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {table} WHERE order_id = $1"
    )))
    .bind(&gone)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(deleted.rows_affected(), 1);
    let updated = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET amount = amount + 1 WHERE order_id = $1"
    )))
    .bind(&changed)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(updated.rows_affected(), 1);
    pool.close().await;

    let result = verify(&world, name).await;
    assert_eq!(result["matches"], json!(false), "{result:#}");
    assert_eq!(result["expected"], json!(want.len()));
    assert_eq!(result["actual"], json!(want.len() - 1));
    assert_eq!(result["missing"], json!([gone]), "{result:#}");
    assert_eq!(result["differing"], json!([changed]), "{result:#}");
    assert_eq!(result["unexpected"], json!([]));
    let differing = result["ranges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["matches"] == json!(false))
        .count();
    assert!((1..=2).contains(&differing), "{result:#}");
    let status = world.status(name).await;
    assert_eq!(verified(&status)["status"], "False", "{status:#}");
    assert_eq!(verified(&status)["reason"], "Differs");
    assert_eq!(status["phase"], "Live");

    // Verification is audited under its own action.
    let audit = world
        .api
        .get(&format!("/api/v1/audit?team={}&name={name}", world.team))
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    let text = audit.body.to_string();
    for word in [r#""verify""#, r#""matches""#, r#""differs""#] {
        assert!(text.contains(word), "{word} not in the audit log: {text}");
    }

    jobs.stop().await;
    controller.stop().await;
    assert_eq!(world.delete(name).await, StatusCode::ACCEPTED);
    world.reconcile().await;
    world.cleanup().await;
}

/// The read-back of OpenSearch and Redis targets matches the recomputed view too, and a
/// key removed by hand from each is named.
#[tokio::test(flavor = "multi_thread")]
async fn search_and_redis_verify_match_then_name_a_removed_key() {
    let world = World::with_kafka("verify_os_redis").await;
    let history = workload(19, 800, 150);
    produce(&world, &history).await;
    let targets = [("v-search", Cluster::Search), ("v-cache", Cluster::Redis)];
    for (name, cluster) in targets {
        let mut doc = world.product(
            name,
            cluster,
            json!({"order_id": "o.id", "amount": "o.amount", "status": "o.status"}),
            "Delete",
        );
        doc["spec"]["filter"] = json!(FILTER);
        world.submit(&doc).await;
    }
    let controller = world.run_controller();
    let jobs = world.run_jobs();
    for (name, _) in targets {
        wait_for(&world, name, 90, |s| s["phase"] == "Live").await;
    }
    let want = expected(&history);
    for (name, _) in targets {
        let result = verify(&world, name).await;
        assert_eq!(result["matches"], json!(true), "{name}: {result:#}");
        assert_eq!(result["actual"], json!(want.len()), "{name}: {result:#}");
    }

    // One key removed by hand from each target.
    let victim = want.keys().next().unwrap().clone();
    jobs.stop().await;
    let index = format!("{}_v1", world.target_name("v-search"));
    let (client, url) = world
        .ns
        .opensearch(&format!("/{index}/_doc/{victim}?refresh=true"));
    assert!(
        client
            .delete(url)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let mut redis = world.ns.redis().await.unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg(format!("{}:v1:{victim}", world.target_name("v-cache")))
        .query_async(&mut redis)
        .await
        .unwrap();
    for (name, _) in targets {
        let result = verify(&world, name).await;
        assert_eq!(result["matches"], json!(false), "{name}: {result:#}");
        assert_eq!(result["missing"], json!([victim]), "{name}: {result:#}");
        let status = world.status(name).await;
        assert_eq!(verified(&status)["status"], "False", "{status:#}");
    }

    controller.stop().await;
    for (name, _) in targets {
        assert_eq!(world.delete(name).await, StatusCode::ACCEPTED);
    }
    world.reconcile().await;
    world.cleanup().await;
}
