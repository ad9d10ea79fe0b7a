//! API load benchmark: `PUT` and `GET` of products with 200 concurrent clients over loopback
//! HTTP, against the real server on SQLite and on PostgreSQL. `GET /healthz` in the same run
//! is the baseline every figure is compared with.
//!
//! `cargo bench -p sluice-tests --bench api_load` (or `make bench`); tune with
//! `SLUICE_BENCH_SECONDS` (default 10 per phase) and `SLUICE_BENCH_CLIENTS` (default 200).
//! PostgreSQL comes from `make services`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sluice_tests::bench::env_or;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_api::AppState;
use sluice_store::{AuditKey, Store};

const PRODUCTS_PER_CLIENT: usize = 5;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let seconds: u64 = env_or("SLUICE_BENCH_SECONDS", 10);
    let clients: usize = env_or("SLUICE_BENCH_CLIENTS", 200);
    println!("API load: {clients} concurrent clients, {seconds}s per phase, loopback HTTP/1.1");
    println!(
        "{:<10} {:<14} {:>10} {:>10} {:>10} {:>12}",
        "backend", "operation", "req/s", "p50 ms", "p99 ms", "vs healthz"
    );
    let dir = std::env::temp_dir().join(format!("sluice-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = format!("sqlite://{}/bench.db?mode=rwc", dir.display());
    let (pg_url, pg_cleanup) = fresh_postgres_database().await;
    for (backend, url) in [("sqlite", sqlite.as_str()), ("postgres", pg_url.as_str())] {
        let store = Store::connect(
            url,
            AuditKey::from_secret(b"sluice-bench-audit-secret").unwrap(),
        )
        .await
        .unwrap();
        let token = "slc_bench-admin-token";
        sluice_api::bootstrap_admin(&store, Some(&sluice_api::Secret::new(token)))
            .await
            .unwrap();
        let base = serve(store).await;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .pool_max_idle_per_host(clients)
            .build()
            .unwrap();
        setup(&client, &base, clients).await;
        let phase = Duration::from_secs(seconds);
        let health = load(&client, &base, clients, phase, Op::Health).await;
        let put = load(&client, &base, clients, phase, Op::Put).await;
        let get = load(&client, &base, clients, phase, Op::Get).await;
        for (name, r) in [
            ("GET /healthz", &health),
            ("PUT product", &put),
            ("GET product", &get),
        ] {
            println!(
                "{backend:<10} {name:<14} {:>10.0} {:>10.2} {:>10.2} {:>11.2}x",
                r.rate,
                r.p50_ms,
                r.p99_ms,
                r.rate / health.rate
            );
        }
    }
    pg_cleanup.await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn serve(store: Store) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, sluice_api::router(AppState::new(store)))
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

/// A fresh database on the `make services` PostgreSQL, and a future that drops it.
async fn fresh_postgres_database() -> (String, impl Future<Output = ()>) {
    let admin_url = sluice_tests::services().postgres_url.clone();
    let name = format!("bench_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
    sqlx::query(sluice_tests::sql_with_ident("CREATE DATABASE ", &name, ""))
        .execute(&admin)
        .await
        .unwrap();
    let url = match admin_url.rfind('/') {
        Some(slash) => format!("{}/{name}", &admin_url[..slash]),
        None => panic!("unexpected PostgreSQL URL"),
    };
    let cleanup = async move {
        let _ = sqlx::query(sluice_tests::sql_with_ident(
            "DROP DATABASE IF EXISTS ",
            &name,
            " WITH (FORCE)",
        ))
        .execute(&admin)
        .await;
    };
    (url, cleanup)
}

fn product(client: usize, i: usize, description: &str) -> Value {
    json!({
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {"name": format!("load-{client}-{i}"), "team": "team-load", "description": description},
        "spec": {
            "sources": [{"name": "o", "dataset": "shop.orders", "from": "7d"}],
            "filter": "o.status == \"PLACED\" || o.status == \"PAID\"",
            "key": "o.id",
            "fields": {"status": "o.status", "amount": "o.amount", "currency": "o.currency"},
            "target": {"cluster": "shared-redis", "name": format!("load_{client}_{i}"), "mode": "upsert"}
        }
    })
}

async fn setup(client: &reqwest::Client, base: &str, clients: usize) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/retail");
    for file in ["datasets.yaml", "targets.yaml"] {
        let text = std::fs::read_to_string(dir.join(file))
            .unwrap()
            .replace(
                "${SLUICE_TEST_POSTGRES_URL}",
                "postgres://u:p@127.0.0.1:1/db",
            )
            .replace("${SLUICE_TEST_OPENSEARCH_URL}", "http://127.0.0.1:2")
            .replace("${SLUICE_TEST_REDIS_URL}", "redis://u:p@127.0.0.1:3/0");
        for doc in sluice_schemas::validate::parse_documents(text.as_bytes()).unwrap() {
            let name = doc["metadata"]["name"].as_str().unwrap();
            let kind = if doc["kind"] == "Dataset" {
                "datasets"
            } else {
                "targetclusters"
            };
            let r = client
                .put(format!("{base}/api/v1/{kind}/{name}"))
                .json(&doc)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
        }
    }
    for c in 0..clients {
        for i in 0..PRODUCTS_PER_CLIENT {
            let r = client
                .put(format!("{base}/api/v1/products/team-load/load-{c}-{i}"))
                .json(&product(c, i, "initial"))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        }
    }
}

#[derive(Clone, Copy)]
enum Op {
    Health,
    Put,
    Get,
}

struct Result {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn load(
    client: &reqwest::Client,
    base: &str,
    clients: usize,
    phase: Duration,
    op: Op,
) -> Result {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, base, stop) = (client.clone(), base.to_owned(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let i = n % PRODUCTS_PER_CLIENT;
                let t = Instant::now();
                let response = match op {
                    Op::Health => client.get(format!("{base}/healthz")).send().await,
                    Op::Get => {
                        client
                            .get(format!("{base}/api/v1/products/team-load/load-{c}-{i}"))
                            .send()
                            .await
                    }
                    Op::Put => {
                        client
                            .put(format!("{base}/api/v1/products/team-load/load-{c}-{i}"))
                            .json(&product(c, i, &format!("revision {n}")))
                            .send()
                            .await
                    }
                };
                let response = response.unwrap();
                let status = response.status();
                let _ = response.bytes().await;
                assert!(status.is_success(), "{status}");
                latencies.push(t.elapsed());
                n += 1;
            }
            latencies
        }));
    }
    tokio::time::sleep(phase).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
    Result {
        rate: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}
