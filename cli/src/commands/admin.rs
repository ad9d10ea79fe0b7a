//! `sluice token create|list|revoke` and `sluice audit verify|list|export`.

use reqwest::Method;
use serde_json::{Value, json};

use super::Failure;
use crate::args::{AuditCommand, AuditFilter, OutputFormat, TokenCommand};
use crate::client::Client;

/// The token verbs.
pub async fn token(client: &Client, action: &TokenCommand) -> Result<(), Failure> {
    match action {
        TokenCommand::Create {
            name,
            expires_in,
            team,
            role,
            output,
        } => {
            let name = name.clone().unwrap_or_else(|| format!("{role}-{team}"));
            let mut body = json!({"name": name, "team": team, "role": role});
            if let Some(seconds) = expires_in {
                body["expiresInSeconds"] = json!(seconds);
            }
            let answer = client
                .send(Method::POST, "/api/v1/tokens", Some(&body))
                .await?;
            let token = answer.body["token"].as_str().unwrap_or_default();
            match output {
                Some(OutputFormat::Json) => println!("{}", json!({"token": token})),
                Some(OutputFormat::Yaml) => println!("token: {token}"),
                _ => {
                    println!("{token}");
                    eprintln!(
                        "token `{name}` for {role}@{team} created; it is shown only this once"
                    );
                }
            }
            Ok(())
        }
        TokenCommand::List => {
            let answer = client.send(Method::GET, "/api/v1/tokens", None).await?;
            println!(
                "{:<28} {:<20} {:<10} {:<22} STATE",
                "NAME", "TEAM", "ROLE", "CREATED"
            );
            for t in answer.body.as_array().into_iter().flatten() {
                let state = if t.get("revokedAt").is_some() {
                    "revoked"
                } else if t.get("expiresAt").is_some() {
                    "expires"
                } else {
                    "active"
                };
                println!(
                    "{:<28} {:<20} {:<10} {:<22} {state}",
                    text(t, "name"),
                    text(t, "team"),
                    text(t, "role"),
                    text(t, "createdAt")
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            client
                .send(
                    Method::DELETE,
                    &format!("/api/v1/tokens/{}", encode(id)),
                    None,
                )
                .await?;
            println!("token {id} revoked");
            Ok(())
        }
    }
}

/// The audit verbs; `sluice audit` alone verifies.
pub async fn audit(client: &Client, action: Option<&AuditCommand>) -> Result<(), Failure> {
    match action {
        None | Some(AuditCommand::Verify) => {
            let answer = client
                .send(Method::POST, "/api/v1/audit/verify", None)
                .await?;
            let entries = answer.body["entries"].as_u64().unwrap_or(0);
            if answer.body["ok"] == json!(true) {
                println!("audit log verified: {entries} entries, chain and signed head intact");
                Ok(())
            } else {
                let broken = &answer.body["firstBroken"];
                Err(Failure::Rejected(format!(
                    "audit log BROKEN at entry {}: {} ({entries} entries)",
                    broken["seq"],
                    broken["reason"].as_str().unwrap_or("unknown")
                )))
            }
        }
        Some(AuditCommand::List(filter)) => {
            for entry in fetch(client, filter).await? {
                println!(
                    "{:>6}  {}  {:<32} {:<14} {}/{}/{} {}",
                    entry["seq"],
                    text(&entry, "time"),
                    text(&entry, "actor"),
                    text(&entry, "action"),
                    text(&entry, "kind"),
                    text(&entry, "team"),
                    text(&entry, "name"),
                    text(&entry, "outcome")
                );
            }
            Ok(())
        }
        Some(AuditCommand::Export(filter)) => {
            let path = format!("/api/v1/audit/export{}", query(filter, None));
            let answer = client.send_raw(Method::GET, &path).await?;
            print!("{answer}");
            Ok(())
        }
    }
}

async fn fetch(client: &Client, filter: &AuditFilter) -> Result<Vec<Value>, Failure> {
    let mut all = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let path = format!("/api/v1/audit{}", query(filter, after));
        let page = client.send(Method::GET, &path, None).await?.body;
        let items = page.as_array().cloned().unwrap_or_default();
        let full = items.len() == 1000;
        after = items.last().and_then(|e| e["seq"].as_i64());
        all.extend(items);
        if !full {
            return Ok(all);
        }
    }
}

fn query(filter: &AuditFilter, after: Option<i64>) -> String {
    let mut parts = vec!["limit=1000".to_owned()];
    for (key, value) in [
        ("kind", &filter.kind),
        ("team", &filter.team),
        ("name", &filter.name),
        ("actor", &filter.actor),
        ("since", &filter.since),
        ("until", &filter.until),
    ] {
        if let Some(v) = value {
            parts.push(format!("{key}={}", encode(v)));
        }
    }
    if let Some(after) = after {
        parts.push(format!("after={after}"));
    }
    format!("?{}", parts.join("&"))
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
