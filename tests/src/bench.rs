//! What the benchmark harnesses share: settings from the environment, this process's CPU
//! time and memory, and the removal of everything a run created for one team.

use std::time::{Duration, Instant};

use rdkafka::admin::AdminOptions;

use crate::{TestNamespace, sql_with_ident};

/// `name` from the environment, parsed, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Clock ticks per second of /proc/self/stat (`getconf CLK_TCK`, 100 when unknown).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// This process's CPU time so far (user + system, all threads), in seconds; 0 when
/// /proc/self/stat cannot be read.
pub fn cpu_seconds(ticks: f64) -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // After the command name (in parentheses, may hold spaces): utime and stime are the
    // 12th and 13th fields.
    let rest = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (field(11) + field(12)) / ticks
}

/// A `kB` field of /proc/self/status (`VmRSS`, `VmHWM`), 0 when missing.
pub fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Resets VmHWM to the current RSS (Linux: "5" to /proc/self/clear_refs); best effort.
pub fn reset_peak_rss() {
    if std::fs::write("/proc/self/clear_refs", "5").is_err() {
        eprintln!("note: could not reset VmHWM; peak RSS includes the setup");
    }
}

/// Removes what a run made for `team`: its products' topics (`sluice.<team>.*`) and job
/// consumer groups, its PostgreSQL schema and `sluice_<team>_*` roles, and the namespace;
/// then waits until the broker lists none of those topics. Problems are printed, not fatal.
pub async fn remove_team(ns: &TestNamespace, team: &str) {
    let admin = ns.kafka_admin();
    let prefix = format!("sluice.{team}.");
    let topics: Vec<String> = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .map(|m| {
            m.topics()
                .iter()
                .map(|t| t.name().to_owned())
                .filter(|t| t.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();
    for chunk in topics.chunks(500) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        if let Err(e) = admin.delete_topics(&refs, &AdminOptions::new()).await {
            eprintln!("cleanup: deleting topics: {e}");
        }
    }
    let group_prefix = format!("sluice.job.{team}.");
    let groups: Vec<String> = admin
        .inner()
        .fetch_group_list(None, Duration::from_secs(10))
        .map(|list| {
            list.groups()
                .iter()
                .map(|g| g.name().to_owned())
                .filter(|g| g.starts_with(&group_prefix))
                .collect()
        })
        .unwrap_or_default();
    if !groups.is_empty() {
        let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
        if let Err(e) = admin.delete_groups(&refs, &AdminOptions::new()).await {
            eprintln!("cleanup: deleting groups: {e}");
        }
    }
    match sqlx::PgPool::connect(&ns.services().postgres_url).await {
        Ok(pool) => {
            if let Err(e) = sqlx::query(sql_with_ident("DROP SCHEMA IF EXISTS ", team, " CASCADE"))
                .execute(&pool)
                .await
            {
                eprintln!("cleanup: dropping schema: {e}");
            }
            let roles: Vec<String> =
                sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1")
                    .bind(format!("sluice\\_{team}\\_%"))
                    .fetch_all(&pool)
                    .await
                    .unwrap_or_default();
            for role in &roles {
                let _ = sqlx::query(sql_with_ident("DROP OWNED BY ", role, ""))
                    .execute(&pool)
                    .await;
                if let Err(e) = sqlx::query(sql_with_ident("DROP ROLE ", role, ""))
                    .execute(&pool)
                    .await
                {
                    eprintln!("cleanup: dropping role {role}: {e}");
                }
            }
            pool.close().await;
        }
        Err(e) => eprintln!("cleanup: PostgreSQL: {e}"),
    }
    for problem in ns.cleanup().await {
        eprintln!("cleanup: {problem}");
    }
    // Topic deletion is asynchronous in the broker: wait until none of ours is listed.
    let ours = |name: &str| name.starts_with(&prefix) || name.starts_with(&ns.topic_prefix());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = admin
            .inner()
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|m| m.topics().iter().filter(|t| ours(t.name())).count())
            .unwrap_or(usize::MAX);
        if left == 0 {
            println!("cleanup: no topic of this run is left");
            return;
        }
        if Instant::now() >= deadline {
            eprintln!("cleanup: {left} topics of this run are still listed");
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
