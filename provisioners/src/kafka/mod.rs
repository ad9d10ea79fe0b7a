//! Kafka topics of a data product: its output topic `sluice.<team>.<name>.v<N>`, which
//! other products can consume like any dataset, and its dead-letter topic.
//!
//! [`plan`] derives names, partition counts and configs purely; creating them comes later.

pub mod plan;

pub use plan::{TopicPlan, TopicPurpose, output_topic_name, plan_topics};

#[cfg(test)]
mod tests;
