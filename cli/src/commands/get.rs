//! `sluice get KIND [NAME]` and `sluice describe KIND NAME`.

use reqwest::Method;
use serde_json::Value;
use sluice_schemas::Kind;

use super::{Failure, Target, parse_kind, resource_path, split_product};
use crate::args::OutputFormat;
use crate::client::Client;

/// Lists a kind or shows one resource in the chosen format.
pub async fn run(
    client: &Client,
    kind: &str,
    name: Option<&str>,
    team: Option<&str>,
    output: OutputFormat,
) -> Result<(), Failure> {
    let kind = parse_kind(kind)?;
    let (team, name) = match (kind, name) {
        (Kind::DataProduct, Some(name)) => {
            let (team, name) = split_product(name, team)?;
            (team, Some(name))
        }
        (_, name) => (team.map(str::to_owned), name.map(str::to_owned)),
    };
    let items = match &name {
        Some(name) => {
            let path = resource_path(kind, team.as_deref(), Some(name))?;
            vec![client.send(Method::GET, &path, None).await?.body]
        }
        None => list_all(client, &resource_path(kind, team.as_deref(), None)?).await?,
    };
    let single = name.is_some();
    match output {
        OutputFormat::Json => {
            let value = if single {
                items[0].clone()
            } else {
                serde_json::json!({"items": items})
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        OutputFormat::Yaml => {
            if single {
                print!("{}", serde_yaml::to_string(&items[0]).unwrap_or_default());
            } else {
                for item in &items {
                    print!("---\n{}", serde_yaml::to_string(item).unwrap_or_default());
                }
            }
        }
        OutputFormat::Table => print_table(kind, &items),
    }
    Ok(())
}

async fn list_all(client: &Client, path: &str) -> Result<Vec<Value>, Failure> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let url = match &token {
            Some(t) => format!("{path}?limit=1000&continue={}", urlencode(t)),
            None => format!("{path}?limit=1000"),
        };
        let body = client.send(Method::GET, &url, None).await?.body;
        if let Some(page) = body.get("items").and_then(Value::as_array) {
            items.extend(page.iter().cloned());
        }
        match body.get("continue").and_then(Value::as_str) {
            Some(next) => token = Some(next.to_owned()),
            None => return Ok(items),
        }
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn text(value: &Value, pointer: &str) -> String {
    match value.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(other) => other.to_string(),
    }
}

fn print_table(kind: Kind, items: &[Value]) {
    let (headers, columns): (&[&str], &[&str]) = match kind {
        Kind::Dataset => (
            &[
                "NAME",
                "OWNER",
                "KIND",
                "TOPIC",
                "CLASSIFICATION",
                "COMPATIBILITY",
            ],
            &[
                "/metadata/name",
                "/metadata/owner",
                "/spec/kind",
                "/spec/topic",
                "/spec/classification",
                "/spec/compatibility",
            ],
        ),
        Kind::TargetCluster => (
            &["NAME", "TYPE", "ISOLATION", "URL"],
            &[
                "/metadata/name",
                "/spec/type",
                "/spec/isolation",
                "/spec/url",
            ],
        ),
        Kind::DataProduct => (
            &["TEAM", "NAME", "PHASE", "GENERATION", "TARGET", "MODE"],
            &[
                "/metadata/team",
                "/metadata/name",
                "/status/phase",
                "/metadata/generation",
                "/spec/target/cluster",
                "/spec/target/mode",
            ],
        ),
    };
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| columns.iter().map(|c| text(item, c)).collect())
        .collect();
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row);
    }
}

/// Shows one resource for people: identity, spec summary, status and conditions.
pub async fn describe(
    client: &Client,
    kind: &str,
    name: &str,
    team: Option<&str>,
) -> Result<(), Failure> {
    let target = Target::resolve(kind, name, team)?;
    let doc = client.send(Method::GET, &target.path, None).await?.body;
    println!("Kind:            {}", text(&doc, "/kind"));
    println!("Name:            {}", text(&doc, "/metadata/name"));
    for (label, pointer) in [
        ("Team:", "/metadata/team"),
        ("Owner:", "/metadata/owner"),
        ("Description:", "/metadata/description"),
    ] {
        if doc.pointer(pointer).is_some() {
            println!("{label:<17}{}", text(&doc, pointer));
        }
    }
    println!("Generation:      {}", text(&doc, "/metadata/generation"));
    println!(
        "ResourceVersion: {}",
        text(&doc, "/metadata/resourceVersion")
    );
    println!(
        "Created:         {}",
        text(&doc, "/metadata/creationTimestamp")
    );
    println!("Spec:");
    for line in serde_yaml::to_string(doc.get("spec").unwrap_or(&Value::Null))
        .unwrap_or_default()
        .lines()
    {
        println!("  {line}");
    }
    if let Some(status) = doc.get("status") {
        println!("Phase:           {}", text(status, "/phase"));
        if let Some(message) = status.get("message").and_then(Value::as_str) {
            println!("Message:         {message}");
        }
        for (label, pointer) in [("Target:", "/target"), ("Building:", "/nextTarget")] {
            if let Some(version) = status.pointer(pointer).filter(|v| v.is_object()) {
                let mut line = format!("version {}", text(version, "/version"));
                if version.get("location").is_some() {
                    line.push_str(&format!(" in {}", text(version, "/location")));
                }
                if version.get("reader").is_some() {
                    line.push_str(&format!(", reader {}", text(version, "/reader")));
                }
                if version.get("topic").is_some() {
                    line.push_str(&format!(", topic {}", text(version, "/topic")));
                }
                println!("{label:<17}{line}");
            }
        }
        if let Some(conditions) = status.get("conditions").and_then(Value::as_array) {
            println!("Conditions:");
            for c in conditions {
                println!(
                    "  {:<18} {:<7} {:<24} {}",
                    text(c, "/type"),
                    text(c, "/status"),
                    text(c, "/reason"),
                    text(c, "/message")
                );
            }
        }
    }
    Ok(())
}
