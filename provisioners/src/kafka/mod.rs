//! Kafka topics of a data product: its output topic `sluice.<team>.<name>.v<N>`, which
//! other products can consume like any dataset, and its dead-letter topic.
//!
//! [`plan`] derives names, partition counts and configs purely; [`provision`] makes the
//! cluster match those plans, idempotently; [`backfill`] reads what backfilling a source
//! topic means (events, bytes, retention pre-flight); [`close_aside`] keeps the close of a
//! group consumer, which waits out a Kafka outage, off the caller's thread.

pub mod backfill;
pub mod close_aside;
pub mod plan;
pub mod provision;

pub use backfill::{RETENTION_SLACK_MS, SourceEstimate};
pub use close_aside::CloseAside;
pub use plan::{TopicPlan, TopicPurpose, output_topic_name, plan_topics};
pub use provision::{
    DeleteReport, EnsureReport, KafkaProvisionError, KafkaProvisioner, ObservedTopic, TopicChange,
    TopicState, diff_topic,
};

#[cfg(test)]
mod tests;
