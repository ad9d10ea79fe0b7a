//! Semantic checks of a `TargetCluster`, and of a product's `target` against its type.

use serde_json::Value;

use super::{Problem, forbid_meta, shorten};
use crate::{Isolation, ObjectMeta, TargetClusterSpec, TargetType, names};

pub(super) fn check_cluster(
    meta: &ObjectMeta,
    spec: &TargetClusterSpec,
    problems: &mut Vec<Problem>,
) {
    if !names::is_dns_label(&meta.name) {
        problems.push(dns_label_problem("/metadata/name", &meta.name));
    }
    forbid_meta(
        meta,
        "team",
        "target clusters are shared; use spec.allowedTeams",
        problems,
    );
    forbid_meta(
        meta,
        "owner",
        "target clusters belong to the platform; remove owner",
        problems,
    );

    let schemes: &[&str] = match spec.target_type {
        TargetType::Postgres => &["postgres://", "postgresql://"],
        TargetType::Elasticsearch => &["http://", "https://"],
        TargetType::Redis => &["redis://", "rediss://"],
    };
    if !schemes.iter().any(|s| spec.url.starts_with(s)) || spec.url.chars().any(char::is_whitespace)
    {
        problems.push(Problem::new(
            "/spec/url",
            format!(
                "is not a {} URL; expected it to start with {}",
                spec.target_type,
                schemes.join(" or ")
            ),
        ));
    }
    let allowed: &[Isolation] = match spec.target_type {
        TargetType::Postgres => &[Isolation::Database, Isolation::Schema],
        TargetType::Elasticsearch => &[Isolation::Index],
        TargetType::Redis => &[Isolation::AclPrefix],
    };
    if !allowed.contains(&spec.isolation) {
        let names: Vec<String> = allowed
            .iter()
            .map(|i| {
                serde_json::to_value(i)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect();
        problems.push(Problem::new(
            "/spec/isolation",
            format!(
                "{} clusters support isolation {}",
                spec.target_type,
                names.join(" or ")
            ),
        ));
    }
    for (i, team) in spec.allowed_teams.iter().enumerate() {
        if team != "*" && !names::is_dns_label(team) {
            problems.push(dns_label_problem(&format!("/spec/allowedTeams/{i}"), team));
        }
    }
}

pub(super) fn dns_label_problem(pointer: &str, name: &str) -> Problem {
    Problem::new(
        pointer,
        format!(
            "`{}` is not a DNS-1123 label: lowercase letters, digits and dashes, starting and \
             ending with a letter or digit, at most 63 characters",
            shorten(name)
        ),
    )
}

/// Checks a product's target name and options for the store type it lands in.
pub(super) fn check_target_name_and_options(
    target_type: TargetType,
    name: &str,
    options: &serde_json::Map<String, Value>,
    problems: &mut Vec<Problem>,
) {
    let (ok, rule) = match target_type {
        TargetType::Postgres => (
            names::is_postgres_table(name),
            "a PostgreSQL target name is lowercase letters, digits and underscores, starting with a letter or underscore, at most 48 characters",
        ),
        TargetType::Elasticsearch => (
            names::is_index_name(name),
            "an index name is lowercase letters, digits, dashes and underscores, starting with a letter or digit, at most 100 characters",
        ),
        TargetType::Redis => (
            names::is_redis_prefix(name),
            "a Redis key prefix is lowercase letters, digits, dots, dashes and underscores, starting with a letter or digit, at most 100 characters",
        ),
    };
    if !ok {
        problems.push(Problem::new(
            "/spec/target/name",
            format!("`{}` is not allowed: {rule}", shorten(name)),
        ));
    }
    for (key, value) in options {
        let at = format!("/spec/target/options/{}", super::escape_pointer(key));
        let problem = match (target_type, key.as_str()) {
            (TargetType::Redis, "type") => match value.as_str() {
                Some("hash" | "json") => None,
                _ => Some("must be `hash` or `json`".to_owned()),
            },
            (TargetType::Redis, "ttl") => {
                match value.as_str().map(crate::time::parse_positive_duration) {
                    Some(Ok(_)) => None,
                    Some(Err(e)) => Some(e.to_string()),
                    None => Some("must be a duration such as 7d".to_owned()),
                }
            }
            (TargetType::Elasticsearch, "shards") => int_in(value, 1, 1024),
            (TargetType::Elasticsearch, "replicas") => int_in(value, 0, 16),
            (TargetType::Postgres, _) => Some("postgres targets take no options".to_owned()),
            (TargetType::Redis, _) => {
                Some("unknown option; redis targets take `type` and `ttl`".to_owned())
            }
            (TargetType::Elasticsearch, _) => Some(
                "unknown option; elasticsearch targets take `shards` and `replicas`".to_owned(),
            ),
        };
        if let Some(message) = problem {
            problems.push(Problem::new(at, message));
        }
    }
}

fn int_in(value: &Value, min: i64, max: i64) -> Option<String> {
    match value.as_i64() {
        Some(n) if (min..=max).contains(&n) => None,
        _ => Some(format!("must be an integer from {min} to {max}")),
    }
}
