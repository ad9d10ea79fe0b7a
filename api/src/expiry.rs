//! Expiry of products: a product whose `spec.expires` is near is warned about (an `Expiring`
//! condition and an audit entry); past that date it is marked for teardown (phase
//! `Deleting`, condition `Expired`), which the controller carries out per its
//! `deletionPolicy`. Extending `expires` is a narrowing change: it needs no approval.

use chrono::{Duration, NaiveDate, Utc};
use sluice_schemas::{Condition, ConditionStatus, DataProductStatus, Kind, Phase};
use sluice_store::{Audit, ListQuery, Store, StoreError};

/// How long before its expiry date a product is warned about.
pub const WARN_BEFORE_DAYS: i64 = 14;

/// Sweeps now and then every hour, until the process ends.
pub async fn run(store: Store) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let today = Utc::now().date_naive();
        match sweep(&store, today, Duration::days(WARN_BEFORE_DAYS)).await {
            Ok(done) if done != Sweep::default() => tracing::info!(?done, "expiry sweep"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed; retrying in an hour"),
        }
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sweep {
    /// Products newly warned.
    pub warned: Vec<String>,
    /// Products newly marked for teardown.
    pub expired: Vec<String>,
    /// Products whose warning was withdrawn (their expiry was extended).
    pub cleared: Vec<String>,
}

/// Looks at every product once, on `today`, warning `warn_before` ahead of expiry.
pub async fn sweep(
    store: &Store,
    today: NaiveDate,
    warn_before: Duration,
) -> Result<Sweep, StoreError> {
    let audit = Audit::with_new_request_id("sluice (expiry)");
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut result = Sweep::default();
    let mut query = ListQuery {
        limit: ListQuery::MAX_LIMIT,
        ..ListQuery::default()
    };
    loop {
        let page = store.list(Kind::DataProduct, &query).await?;
        for object in &page.items {
            let expires = object
                .spec
                .get("expires")
                .and_then(|e| e.as_str())
                .and_then(|e| NaiveDate::parse_from_str(e, "%Y-%m-%d").ok());
            let Some(mut status) = object
                .status
                .clone()
                .and_then(|s| serde_json::from_value::<DataProductStatus>(s).ok())
            else {
                continue;
            };
            let name = format!("{}/{}", object.key.team(), object.key.name());
            let warned = has_condition(&status, "Expiring");
            let (action, outcome) = match expires {
                Some(date) if today > date && status.deletion_requested.is_none() => {
                    status.phase = Phase::Deleting;
                    status.deletion_requested = Some(now.clone());
                    set_condition(
                        &mut status,
                        "Expired",
                        "PastExpiryDate",
                        &format!("expired on {date}; torn down per deletionPolicy"),
                        &now,
                    );
                    status.message = Some(format!("expired on {date}"));
                    result.expired.push(name);
                    ("expiry.expire", "deleting")
                }
                Some(date) if today + warn_before >= date && today <= date && !warned => {
                    set_condition(
                        &mut status,
                        "Expiring",
                        "ExpiryDateNear",
                        &format!("expires on {date}; extend spec.expires to keep it"),
                        &now,
                    );
                    result.warned.push(name);
                    ("expiry.warn", "warned")
                }
                Some(date) if warned && today + warn_before < date => {
                    status.conditions.retain(|c| c.condition_type != "Expiring");
                    result.cleared.push(name);
                    ("expiry.extend", "cleared")
                }
                None if warned => {
                    status.conditions.retain(|c| c.condition_type != "Expiring");
                    result.cleared.push(name);
                    ("expiry.extend", "cleared")
                }
                _ => continue,
            };
            let value = match serde_json::to_value(&status) {
                Ok(value) => value,
                Err(e) => {
                    tracing::error!(product = %object.key, error = %e, "cannot encode a status; skipped");
                    continue;
                }
            };
            match store
                .record_status(
                    &object.key,
                    value,
                    Some(object.resource_version),
                    &audit,
                    action,
                    outcome,
                )
                .await
            {
                Ok(_) => {}
                // Changed meanwhile: the next sweep sees the new state.
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(e),
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(result),
        }
    }
}

fn has_condition(status: &DataProductStatus, kind: &str) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.condition_type == kind && c.status == ConditionStatus::True)
}

fn set_condition(
    status: &mut DataProductStatus,
    kind: &str,
    reason: &str,
    message: &str,
    now: &str,
) {
    status.conditions.retain(|c| c.condition_type != kind);
    status.conditions.push(Condition {
        condition_type: kind.to_owned(),
        status: ConditionStatus::True,
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time: now.to_owned(),
    });
}
