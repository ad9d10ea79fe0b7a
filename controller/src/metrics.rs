//! The controller's counters: reconciles, errors, durations and the mutating calls it made,
//! read by `/metrics` and by the benchmarks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Counters of one controller process. All monotonic except `leader`.
#[derive(Debug, Default)]
pub struct ControllerMetrics {
    reconciles: AtomicU64,
    reconcile_errors: AtomicU64,
    reconcile_micros: AtomicU64,
    passes: AtomicU64,
    pass_micros: AtomicU64,
    kafka_mutations: AtomicU64,
    target_mutations: AtomicU64,
    leader: AtomicBool,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Product reconciles run.
    pub reconciles: u64,
    /// Of those, how many failed.
    pub reconcile_errors: u64,
    /// Total time spent reconciling products, in microseconds.
    pub reconcile_micros: u64,
    /// Passes run.
    pub passes: u64,
    /// Total time of those passes, in microseconds.
    pub pass_micros: u64,
    /// Mutating Kafka admin calls (topic creations, partition and config changes, deletions).
    pub kafka_mutations: u64,
    /// Mutating calls to target clusters (DDL/DCL, index and alias writes, ACL and key writes).
    pub target_mutations: u64,
    /// Whether this process leads.
    pub leader: bool,
}

impl ControllerMetrics {
    pub(crate) fn observe_reconcile(&self, took: Duration, failed: bool) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.reconcile_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.reconcile_micros
            .fetch_add(micros(took), Ordering::Relaxed);
    }

    pub(crate) fn observe_pass(&self, took: Duration) {
        self.passes.fetch_add(1, Ordering::Relaxed);
        self.pass_micros.fetch_add(micros(took), Ordering::Relaxed);
    }

    pub(crate) fn count_kafka_mutations(&self, n: u64) {
        self.kafka_mutations.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn count_target_mutations(&self, n: u64) {
        self.target_mutations.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            reconciles: self.reconciles.load(Ordering::Relaxed),
            reconcile_errors: self.reconcile_errors.load(Ordering::Relaxed),
            reconcile_micros: self.reconcile_micros.load(Ordering::Relaxed),
            passes: self.passes.load(Ordering::Relaxed),
            pass_micros: self.pass_micros.load(Ordering::Relaxed),
            kafka_mutations: self.kafka_mutations.load(Ordering::Relaxed),
            target_mutations: self.target_mutations.load(Ordering::Relaxed),
            leader: self.leader.load(Ordering::Relaxed),
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
