//! `sluice apply -f FILE|DIR [--wait]`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use sluice_schemas::Kind;

use super::{Failure, describe_problem, resource_path};
use crate::client::{Client, ClientError};
use crate::input::{InputDocument, read_all};

/// Applies every document, datasets first, then target clusters, then products; reports
/// each, and fails (exit 1) if any was refused.
pub async fn run(
    client: &Client,
    files: &[PathBuf],
    wait: bool,
    timeout: Duration,
) -> Result<(), Failure> {
    let env = |name: &str| std::env::var(name).ok();
    let documents = read_all(files, &env).map_err(|e| Failure::Rejected(e.to_string()))?;
    apply_documents(client, documents, wait, timeout).await
}

/// Applies documents already read (the `apply` path without files; `sluice demo` uses it):
/// datasets first, then target clusters, then products; reports each, and fails (exit 1) if
/// any was refused.
pub async fn apply_documents(
    client: &Client,
    mut documents: Vec<InputDocument>,
    wait: bool,
    timeout: Duration,
) -> Result<(), Failure> {
    if documents.is_empty() {
        return Err(Failure::Usage(
            "no documents found in the given files".to_owned(),
        ));
    }
    documents.sort_by_key(|d| kind_order(&d.value));

    let mut refused = Vec::new();
    let mut products = Vec::new();
    for doc in &documents {
        match apply_one(client, doc).await {
            Ok((label, outcome, product)) => {
                println!("{label} {outcome}");
                products.extend(product);
            }
            Err(ClientError::Api(problem)) => {
                refused.push(describe_problem(&doc.origin(), &problem))
            }
            Err(e @ ClientError::Unreachable { .. }) => {
                return Err(Failure::Rejected(e.to_string()));
            }
        }
    }
    for line in &refused {
        eprintln!("{line}");
    }
    if !refused.is_empty() {
        return Err(Failure::Rejected(format!(
            "{} of {} documents refused",
            refused.len(),
            documents.len()
        )));
    }
    if wait {
        for path in products {
            wait_live(client, &path, timeout).await?;
        }
    }
    Ok(())
}

fn kind_order(value: &Value) -> usize {
    match value.get("kind").and_then(Value::as_str) {
        Some("Dataset") => 0,
        Some("TargetCluster") => 1,
        Some("DataProduct") => 2,
        _ => 3,
    }
}

async fn apply_one(
    client: &Client,
    doc: &InputDocument,
) -> Result<(String, String, Option<String>), ClientError> {
    let kind_text = doc
        .value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let meta = doc.value.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let team = meta.and_then(|m| m.get("team")).and_then(Value::as_str);
    let kind = kind_text
        .parse::<Kind>()
        .ok()
        .filter(|_| !kind_text.is_empty());
    // A document the server cannot route is still sent where its kind says, so that the
    // server's validation explains every problem; unknown kinds go to the product endpoint.
    let path = match kind {
        Some(kind) => resource_path(
            kind,
            team.or(Some("_")),
            Some(if name.is_empty() { "_" } else { name }),
        ),
        None => resource_path(Kind::DataProduct, Some("_"), Some("_")),
    }
    .unwrap_or_default();
    let answer = client.send(Method::PUT, &path, Some(&doc.value)).await?;
    let label = match kind {
        Some(Kind::DataProduct) => format!("dataproduct/{}/{name}", team.unwrap_or_default()),
        Some(k) => format!("{}/{name}", k.as_str().to_ascii_lowercase()),
        None => format!("?/{name}"),
    };
    let outcome = answer.outcome.unwrap_or_else(|| "applied".to_owned());
    let outcome = if outcome == "updated" {
        "configured".to_owned()
    } else {
        outcome
    };
    let product = (kind == Some(Kind::DataProduct)).then_some(path);
    Ok((label, outcome, product))
}

async fn wait_live(client: &Client, path: &str, timeout: Duration) -> Result<(), Failure> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let answer = client.send(Method::GET, path, None).await?;
        let status = answer.body.get("status").cloned().unwrap_or(Value::Null);
        let phase = status
            .get("phase")
            .and_then(Value::as_str)
            .unwrap_or("Unknown")
            .to_owned();
        let progress = progress_of(&status);
        let line = format!("{path}: {phase}{progress}");
        if line != last {
            eprintln!("{line}");
            last = line;
        }
        match phase.as_str() {
            "Live" => return Ok(()),
            "Failed" | "Rejected" => {
                let message = status
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                return Err(Failure::Rejected(format!("{path} is {phase}: {message}")));
            }
            _ => {}
        }
        if started.elapsed() > timeout {
            return Err(Failure::Rejected(format!(
                "{path} not Live after {}s (phase {phase})",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn progress_of(status: &Value) -> String {
    let Some(sources) = status.get("backfill").and_then(Value::as_array) else {
        return String::new();
    };
    let (done, total) = sources.iter().fold((0u64, 0u64), |(d, t), s| {
        (
            d + s.get("done").and_then(Value::as_u64).unwrap_or(0),
            t + s.get("total").and_then(Value::as_u64).unwrap_or(0),
        )
    });
    if total == 0 {
        String::new()
    } else {
        format!(
            " {:.0}% ({done}/{total} events)",
            done as f64 * 100.0 / total as f64
        )
    }
}
