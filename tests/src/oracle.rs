//! An independent oracle for stream jobs: a generated order workload, the target state it
//! must produce (computed here from the records, not by Sluice's code), and readers of what
//! each target type holds, read the way its readers read it (view, alias, pointer).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::{Services, quote_pg_ident};

/// One source record: its key and value (`None`: a tombstone).
pub type Event = (String, Option<Value>);

/// What a row of the order product holds: amount and status, by order id.
pub type Rows = BTreeMap<String, (f64, String)>;

/// The product filter the oracle implements.
pub const FILTER: &str = r#"o.status == "PLACED" || o.status == "PAID""#;

/// `n` order events over `keys` order ids (`o-<n>`), with statuses the filter keeps or
/// drops and one tombstone in twenty. Deterministic for a seed.
pub fn workload(seed: u64, n: usize, keys: usize) -> Vec<Event> {
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

/// The materialized view of `events` under [`FILTER`]: per key, the row of its latest
/// event, absent when that event is filtered out or a tombstone.
pub fn expected(events: &[Event]) -> Rows {
    let mut latest: BTreeMap<&str, Option<&Value>> = BTreeMap::new();
    for (key, value) in events {
        latest.insert(key, value.as_ref());
    }
    latest
        .into_iter()
        .filter_map(|(key, value)| {
            let value = value?;
            let status = value["status"].as_str()?;
            (status == "PLACED" || status == "PAID").then(|| {
                (
                    key.to_owned(),
                    (
                        value["amount"].as_f64().unwrap_or_default(),
                        status.to_owned(),
                    ),
                )
            })
        })
        .collect()
}

/// Reading a target failed.
#[derive(Debug, thiserror::Error)]
#[error("reading {what}: {reason}")]
pub struct ReadError {
    what: &'static str,
    reason: String,
}

fn read_error(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> ReadError {
    move |e| ReadError {
        what,
        reason: e.to_string(),
    }
}

/// The rows of PostgreSQL view `schema.view` (`order_id`, `amount`, `status`).
pub async fn postgres_rows(
    services: &Services,
    schema: &str,
    view: &str,
) -> Result<Rows, ReadError> {
    let error = read_error("PostgreSQL");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&services.postgres_url)
        .await
        .map_err(|e| error(&e))?;
    let statement = format!(
        "SELECT order_id, amount, status FROM {}.{}",
        quote_pg_ident(schema),
        quote_pg_ident(view)
    );
    let rows: Vec<(String, f64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .fetch_all(&pool)
        .await
        .map_err(|e| error(&e))?;
    pool.close().await;
    Ok(rows
        .into_iter()
        .map(|(key, amount, status)| (key, (amount, status)))
        .collect())
}

/// The documents behind OpenSearch alias `alias`, by `_id`.
pub async fn search_rows(services: &Services, alias: &str) -> Result<Rows, ReadError> {
    let error = read_error("OpenSearch");
    let client = reqwest::Client::new();
    let base = &services.opensearch_url;
    client
        .post(format!("{base}/{alias}/_refresh"))
        .send()
        .await
        .map_err(|e| error(&e))?;
    let body: Value = client
        .get(format!("{base}/{alias}/_search?size=10000"))
        .send()
        .await
        .map_err(|e| error(&e))?
        .json()
        .await
        .map_err(|e| error(&e))?;
    let mut rows = Rows::new();
    for hit in body["hits"]["hits"].as_array().cloned().unwrap_or_default() {
        let source = &hit["_source"];
        let (Some(id), Some(amount), Some(status)) = (
            hit["_id"].as_str(),
            source["amount"].as_f64(),
            source["status"].as_str(),
        ) else {
            return Err(error(&format!("unexpected document {hit}")));
        };
        rows.insert(id.to_owned(), (amount, status.to_owned()));
    }
    Ok(rows)
}

/// The hashes of the Redis version the pointer `<prefix>:current` names, by key.
pub async fn redis_rows(services: &Services, prefix: &str) -> Result<Rows, ReadError> {
    let error = read_error("Redis");
    let mut redis = redis::Client::open(services.redis_url.as_str())
        .map_err(|e| error(&e))?
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| error(&e))?;
    let version: Option<String> = redis::cmd("GET")
        .arg(format!("{prefix}:current"))
        .query_async(&mut redis)
        .await
        .map_err(|e| error(&e))?;
    let Some(version) = version else {
        return Ok(Rows::new());
    };
    let data = format!("{prefix}:{version}:");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{data}*"))
        .query_async(&mut redis)
        .await
        .map_err(|e| error(&e))?;
    let mut rows = Rows::new();
    for key in keys {
        let hash: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .map_err(|e| error(&e))?;
        // Deleted between KEYS and HGETALL (a tombstone or a filtered-out key written
        // meanwhile): no row, as a reader would see it.
        if hash.is_empty() {
            continue;
        }
        let amount = hash
            .get("amount")
            .and_then(|a| a.parse::<f64>().ok())
            .ok_or_else(|| error(&format!("{key} has no amount")))?;
        let status = hash
            .get("status")
            .cloned()
            .ok_or_else(|| error(&format!("{key} has no status")))?;
        rows.insert(key[data.len()..].to_owned(), (amount, status));
    }
    Ok(rows)
}

/// How `got` differs from `want`, in a few words, for assertion messages.
pub fn difference(got: &Rows, want: &Rows) -> String {
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
    format!(
        "target has {} rows, oracle {}; missing {missing:?}, extra {extra:?}, differ {differ:?}",
        got.len(),
        want.len()
    )
}
