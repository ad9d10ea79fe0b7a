//! `sluice plan -f FILE|DIR`: what applying would do, nothing stored.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::Value;

use super::{Failure, describe_problem, resource_path};
use crate::client::{Client, ClientError};
use crate::input::read_all;

/// Prints the plan of every product in the files; other kinds are listed as not planned.
pub async fn run(client: &Client, files: &[PathBuf]) -> Result<(), Failure> {
    let env = |name: &str| std::env::var(name).ok();
    let documents = read_all(files, &env).map_err(|e| Failure::Rejected(e.to_string()))?;
    let mut refused = 0;
    for doc in &documents {
        if doc.value.get("kind").and_then(Value::as_str) != Some("DataProduct") {
            println!("{}: only products have plans; skipped", doc.origin());
            continue;
        }
        let meta = doc.value.get("metadata");
        let team = meta
            .and_then(|m| m.get("team"))
            .and_then(Value::as_str)
            .unwrap_or("_");
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("_");
        let path = format!(
            "{}/plan",
            resource_path(sluice_schemas::Kind::DataProduct, Some(team), Some(name))?
        );
        match client.send(Method::POST, &path, Some(&doc.value)).await {
            Ok(answer) => print_plan(&format!("{team}/{name}"), &answer.body),
            Err(ClientError::Api(problem)) => {
                refused += 1;
                eprintln!("{}", describe_problem(&doc.origin(), &problem));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if refused > 0 {
        return Err(Failure::Rejected(format!(
            "{refused} document(s) cannot be planned"
        )));
    }
    Ok(())
}

fn print_plan(product: &str, plan: &Value) {
    println!("Plan for {product}:");
    for line in plan
        .get("summary")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for l in line.as_str().unwrap_or_default().lines() {
            println!("  {l}");
        }
    }
    if let Some(properties) = plan
        .pointer("/outputSchema/properties")
        .and_then(Value::as_object)
    {
        println!("  Output schema:");
        for (name, schema) in properties {
            let ty = match schema.get("type") {
                Some(Value::Array(types)) => types
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" | "),
                Some(Value::String(t)) => t.clone(),
                _ => "?".to_owned(),
            };
            let pii = if schema.get("x-pii").is_some() {
                "  (PII)"
            } else {
                ""
            };
            println!("    {name:<24} {ty}{pii}");
        }
    }
}
