//! `sluice verify`: compares a product's target with what its sources say it must hold.

use reqwest::Method;
use serde_json::Value;
use sluice_schemas::Kind;

use super::{Failure, resource_path, split_product};
use crate::args::ProductRef;
use crate::client::Client;

/// Asks the server to verify the product, prints the per-range table and fails (exit 1)
/// when the target differs.
pub async fn run(client: &Client, product: &ProductRef) -> Result<(), Failure> {
    let (team, name) = split_product(&product.name, product.team.as_deref())?;
    let path = resource_path(Kind::DataProduct, team.as_deref(), Some(&name))?;
    let answer = client
        .send(Method::POST, &format!("{path}/verify"), None)
        .await?;
    let v = &answer.body;
    let count = |field: &str| v.get(field).and_then(Value::as_u64).unwrap_or(0);
    let ranges = v
        .get("ranges")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !ranges.is_empty() {
        println!("RANGE    EXPECTED     ACTUAL  OUTCOME");
        for range in &ranges {
            let matches = range.get("matches").and_then(Value::as_bool) == Some(true);
            println!(
                "{:<6} {:>10} {:>10}  {}",
                range.get("range").and_then(Value::as_str).unwrap_or("?"),
                range.get("expected").and_then(Value::as_u64).unwrap_or(0),
                range.get("actual").and_then(Value::as_u64).unwrap_or(0),
                if matches { "match" } else { "differ" }
            );
        }
    }
    println!(
        "{:<6} {:>10} {:>10}",
        "total",
        count("expected"),
        count("actual")
    );
    for kind in ["missing", "unexpected", "differing"] {
        let keys: Vec<&str> = v
            .get(kind)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !keys.is_empty() {
            println!("{kind}: {}", keys.join(", "));
        }
    }
    let label = format!("{}/{name}", team.unwrap_or_default());
    if v.get("matches").and_then(Value::as_bool) == Some(true) {
        println!("{label}: matches ({} rows)", count("expected"));
        Ok(())
    } else {
        Err(Failure::Rejected(format!(
            "{label} differs: {} rows expected, {} in the target",
            count("expected"),
            count("actual")
        )))
    }
}
