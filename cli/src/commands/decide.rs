//! `sluice approve` and `sluice reject`.

use reqwest::Method;
use serde_json::{Value, json};
use sluice_schemas::Kind;

use super::{Failure, resource_path, split_product};
use crate::args::ProductRef;
use crate::client::Client;

/// Approves (or rejects) the pending generation of a product and prints the outcome.
pub async fn run(
    client: &Client,
    product: &ProductRef,
    comment: Option<&str>,
    approve: bool,
) -> Result<(), Failure> {
    let (team, name) = split_product(&product.name, product.team.as_deref())?;
    let path = resource_path(Kind::DataProduct, team.as_deref(), Some(&name))?;
    let verb = if approve { "approve" } else { "reject" };
    let body = match comment {
        Some(c) => json!({"comment": c}),
        None => json!({}),
    };
    let answer = client
        .send(Method::POST, &format!("{path}/{verb}"), Some(&body))
        .await?;
    let status = answer.body.get("status").cloned().unwrap_or(Value::Null);
    let phase = status.get("phase").and_then(Value::as_str).unwrap_or("?");
    let message = status.get("message").and_then(Value::as_str).unwrap_or("");
    println!("{}/{name}: {phase} — {message}", team.unwrap_or_default());
    Ok(())
}
