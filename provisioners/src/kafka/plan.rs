//! The topic plan: the output topic and dead-letter topic of one product version.
//!
//! - Output `sluice.<team>.<name>.v<N>`: as many partitions as the widest source (so the
//!   job's parallelism is not narrowed), `cleanup.policy=compact` when keyed (upsert: the
//!   topic is a changelog whose latest record per key is the row) and `delete` otherwise.
//! - Dead letters `sluice.<team>.<name>.v<N>.dlq`: records the job or the sink could not
//!   process, with the reason in headers; one partition and `delete`, as they are few and
//!   only need to be kept long enough to be looked at.

use std::collections::BTreeMap;

use serde::Serialize;
use sluice_schemas::WriteMode;

use crate::plan::PlanError;
use crate::quote::kafka_topic_name;

/// What a topic is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TopicPurpose {
    /// The product's output, published to the catalog.
    Output,
    /// Records that could not be processed.
    DeadLetter,
}

/// One topic to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicPlan {
    /// The topic name, checked against Kafka's rules.
    pub name: String,
    /// What it is for.
    pub purpose: TopicPurpose,
    /// Number of partitions.
    pub partitions: i32,
    /// Topic configs set at creation; the rest take the broker's defaults (replication
    /// factor included).
    pub configs: BTreeMap<String, String>,
}

impl TopicPlan {
    /// The topic in one human-readable line.
    pub fn summary(&self) -> String {
        let configs: Vec<String> = self
            .configs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let purpose = match self.purpose {
            TopicPurpose::Output => "output",
            TopicPurpose::DeadLetter => "dead letters",
        };
        format!(
            "Topic `{}` ({purpose}): {} partition(s), {}",
            self.name,
            self.partitions,
            configs.join(", ")
        )
    }
}

/// The output topic of version `version` of `team`/`product`: `sluice.<team>.<name>.v<N>`.
pub fn output_topic_name(team: &str, product: &str, version: u32) -> Result<String, PlanError> {
    if version == 0 {
        return Err(PlanError::ZeroVersion);
    }
    let name = format!("sluice.{team}.{product}.v{version}");
    Ok(kafka_topic_name(&name)?.to_owned())
}

/// Plans the output and dead-letter topics of version `version` of `team`/`product`.
///
/// `source_partitions` holds the partition count of each source topic; counts that are not
/// positive mean "unknown" and are ignored. The output topic gets the largest count, or 1
/// if none is known.
pub fn plan_topics(
    team: &str,
    product: &str,
    version: u32,
    mode: WriteMode,
    source_partitions: &[i32],
) -> Result<Vec<TopicPlan>, PlanError> {
    let output = output_topic_name(team, product, version)?;
    let dead_letter = kafka_topic_name(&format!("{output}.dlq"))?.to_owned();
    let partitions = source_partitions
        .iter()
        .copied()
        .filter(|&n| n > 0)
        .max()
        .unwrap_or(1);
    let policy = match mode {
        WriteMode::Upsert => "compact",
        WriteMode::Append => "delete",
    };
    let cleanup = |policy: &str| BTreeMap::from([("cleanup.policy".to_owned(), policy.to_owned())]);
    Ok(vec![
        TopicPlan {
            name: output,
            purpose: TopicPurpose::Output,
            partitions,
            configs: cleanup(policy),
        },
        TopicPlan {
            name: dead_letter,
            purpose: TopicPurpose::DeadLetter,
            partitions: 1,
            configs: cleanup("delete"),
        },
    ])
}
