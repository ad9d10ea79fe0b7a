//! The backfill estimate of a product: for each source, the events its topic holds from the
//! source's `from` on (Kafka offsets), their estimated size, and the retention pre-flight;
//! then totals and a duration at a nominal rate.
//!
//! The duration is an estimate at [`BACKFILL_EVENTS_PER_SECOND`], a nominal rate, until
//! stream jobs measure real rates. A source that cannot be estimated becomes a warning;
//! when Kafka cannot be reached at all the remaining sources are not tried.

use serde::Serialize;
use sluice_provisioners::kafka::{KafkaProvisionError, KafkaProvisioner, SourceEstimate};
use sluice_schemas::time::StartPosition;

/// The nominal backfill rate, in events per second, that durations are estimated with. It is
/// an assumption (one job reading a few partitions of small JSON records), not a measurement:
/// stream jobs will report real rates in the product's status.
pub const BACKFILL_EVENTS_PER_SECOND: u64 = 50_000;

/// What backfilling a product's sources means.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackfillEstimate {
    /// One estimate per source that could be estimated, in source order.
    pub sources: Vec<SourceEstimate>,
    /// Events to read, all sources together.
    pub events: u64,
    /// Estimated bytes to read, all sources together.
    pub bytes: u64,
    /// Estimated duration at [`BACKFILL_EVENTS_PER_SECOND`], rounded up.
    pub estimated_seconds: u64,
    /// Retention pre-flight warnings, and sources that could not be estimated and why.
    pub warnings: Vec<String>,
}

/// Estimates the backfill of `sources` — (alias, topic, start in milliseconds since the
/// epoch, `None` from the beginning) — through `kafka`. Never fails: a source that cannot be
/// estimated is left out with a warning, and when the cluster cannot be reached the
/// remaining sources are skipped with one warning.
pub async fn estimate_backfill(
    kafka: &KafkaProvisioner,
    sources: &[(String, String, Option<i64>)],
) -> BackfillEstimate {
    let mut estimate = BackfillEstimate {
        sources: Vec::new(),
        events: 0,
        bytes: 0,
        estimated_seconds: 0,
        warnings: Vec::new(),
    };
    for (alias, topic, from_ms) in sources {
        match kafka.estimate_backfill(topic, *from_ms).await {
            Ok(source) => {
                if let Some(warning) = &source.retention_warning {
                    estimate
                        .warnings
                        .push(format!("source `{alias}`: {warning}"));
                }
                estimate.events = estimate.events.saturating_add(source.events);
                estimate.bytes = estimate.bytes.saturating_add(source.bytes);
                estimate.sources.push(source);
            }
            Err(error) if unreachable(&error) => {
                estimate.warnings.push(format!(
                    "Kafka at {} cannot be reached, no backfill estimate: {}",
                    kafka.bootstrap(),
                    error_chain(&error)
                ));
                break;
            }
            Err(error) => estimate.warnings.push(format!(
                "source `{alias}` (topic `{topic}`) cannot be estimated: {}",
                error_chain(&error)
            )),
        }
    }
    estimate.estimated_seconds = estimate.events.div_ceil(BACKFILL_EVENTS_PER_SECOND);
    estimate
}

/// Where a source's `from` (`earliest`, `latest`, a duration back or an RFC 3339 time)
/// starts reading, in milliseconds since the epoch, relative to `now_ms`; `None` from the
/// beginning (also for a value that does not parse: validation refuses those).
pub fn from_ms(from: Option<&str>, now_ms: i64) -> Option<i64> {
    match from.map(StartPosition::parse) {
        None | Some(Ok(StartPosition::Earliest)) | Some(Err(_)) => None,
        Some(Ok(StartPosition::Latest)) => Some(now_ms),
        Some(Ok(StartPosition::Ago(back))) => {
            Some(now_ms.saturating_sub(i64::try_from(back.as_millis()).unwrap_or(i64::MAX)))
        }
        Some(Ok(StartPosition::At(at))) => Some(at.timestamp_millis()),
    }
}

/// Whether the error means the cluster itself is out of reach, rather than one topic.
fn unreachable(error: &KafkaProvisionError) -> bool {
    matches!(
        error,
        KafkaProvisionError::Client { .. }
            | KafkaProvisionError::Request {
                operation: "fetch_metadata",
                ..
            }
            | KafkaProvisionError::Blocking { .. }
    )
}

/// The error and its sources, joined by `: `.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_000_000_000;

    #[test]
    fn start_positions_become_instants() {
        assert_eq!(from_ms(None, NOW), None);
        assert_eq!(from_ms(Some("earliest"), NOW), None);
        assert_eq!(from_ms(Some("latest"), NOW), Some(NOW));
        assert_eq!(from_ms(Some("1d"), NOW), Some(NOW - 86_400_000));
        assert_eq!(
            from_ms(Some("2026-01-01T00:00:00Z"), NOW),
            Some(1_767_225_600_000)
        );
        assert_eq!(from_ms(Some("not a time"), NOW), None);
    }
}
