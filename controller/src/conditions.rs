//! The conditions the controller maintains on a product, Kubernetes style: a condition's
//! `lastTransitionTime` changes only when its status does, so re-asserting the same state
//! writes nothing.

use sluice_schemas::{Condition, ConditionStatus, DataProductStatus};

/// The product's approved generation is known to the controller.
pub const APPROVED: &str = "Approved";
/// The output and dead-letter topics exist as planned.
pub const TOPICS_READY: &str = "TopicsReady";
/// The target objects and the reader's credentials exist as planned.
pub const TARGET_READY: &str = "TargetReady";
/// A worker runs the product's stream job.
pub const JOB_RUNNING: &str = "JobRunning";
/// The job has read every source up to the watermarks taken at its start.
pub const BACKFILL_COMPLETE: &str = "BackfillComplete";
/// Everything above holds: readers get complete, live data.
pub const READY: &str = "Ready";
/// The live lag is within the product's `slo.freshness` (only with an SLO, once Live).
pub const FRESH: &str = "Fresh";
/// The last `sluice verify` found the target holding exactly what the sources say
/// (`Matches`) or not (`Differs`). Written by the verify endpoint, not by the controller.
pub const VERIFIED: &str = "Verified";

/// Sets condition `kind` on `status`, keeping its transition time when its truth value does
/// not change.
pub fn set(
    status: &mut DataProductStatus,
    kind: &str,
    truth: ConditionStatus,
    reason: &str,
    message: impl Into<String>,
    now: &str,
) {
    let message = message.into();
    match status
        .conditions
        .iter_mut()
        .find(|c| c.condition_type == kind)
    {
        Some(condition) => {
            if condition.status != truth {
                condition.last_transition_time = now.to_owned();
                condition.status = truth;
            }
            condition.reason = reason.to_owned();
            condition.message = message;
        }
        None => status.conditions.push(Condition {
            condition_type: kind.to_owned(),
            status: truth,
            reason: reason.to_owned(),
            message,
            last_transition_time: now.to_owned(),
        }),
    }
}

/// Whether condition `kind` is true on `status`.
pub fn is_true(status: &DataProductStatus, kind: &str) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.condition_type == kind && c.status == ConditionStatus::True)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn transition_time_moves_only_when_the_truth_changes() {
        let mut status = DataProductStatus::pending(1);
        set(&mut status, READY, ConditionStatus::False, "A", "a", "t1");
        set(&mut status, READY, ConditionStatus::False, "B", "b", "t2");
        assert_eq!(status.conditions[0].last_transition_time, "t1");
        assert_eq!(status.conditions[0].reason, "B");
        set(&mut status, READY, ConditionStatus::True, "C", "c", "t3");
        assert_eq!(status.conditions[0].last_transition_time, "t3");
        assert!(is_true(&status, READY));
        assert_eq!(status.conditions.len(), 1);
    }
}
