//! The plan of a data product version: the topics, the target objects and the output
//! schema Sluice will create, derived purely (no I/O) from the approved spec, its output
//! schema and the target cluster, so anyone can see it before approval and tests can
//! snapshot it.
//!
//! Extension points: the parts of the plan that need observations of the world — the
//! backfill estimate (events and bytes to read, from Kafka offsets), the retention
//! pre-flight of each source's `from`, a preview of output rows, and for a live product the
//! diff against the running version with each change classed online/rebuild/destructive —
//! are computed by the controller from those observations and added to [`Plan`] as fields of
//! their own beside the pure parts made here; [`plan_product`] stays pure.

use serde::Serialize;
use serde_json::Value;
use sluice_provisioners::kafka::{TopicPlan, plan_topics};
use sluice_provisioners::{TargetPlan, TargetRequest, plan_target};
use sluice_schemas::output::OutputSchema;
use sluice_schemas::{DataProduct, TargetClusterSpec, TargetType};

/// What Sluice will create for one version of a data product.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The product version planned, from 1.
    pub version: u32,
    /// The Kafka topics: the output topic, then the dead-letter topic.
    pub topics: Vec<TopicPlan>,
    /// The target objects: DDL, index mapping or key layout.
    pub target: TargetPlan,
    /// The derived output schema (JSON Schema of one output row).
    pub output_schema: Value,
}

impl Plan {
    /// The plan in human-readable lines, as `sluice plan` prints it.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = vec![format!("Version {}", self.version), "Topics:".to_owned()];
        lines.extend(self.topics.iter().map(|t| format!("  {}", t.summary())));
        lines.push(format!("Target ({}):", self.target.target_type()));
        lines.extend(self.target.summary().into_iter().map(|l| format!("  {l}")));
        lines
    }
}

/// Why a product cannot be planned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// Products belong to a team; validation requires `metadata.team`.
    #[error("product `{product}` has no team")]
    MissingTeam {
        /// The product's name.
        product: String,
    },
    /// The target cluster does not admit the product's team.
    #[error("team `{team}` may not provision into target cluster `{cluster}`")]
    TeamNotAllowed {
        /// The product's team.
        team: String,
        /// The cluster named by the product.
        cluster: String,
    },
    /// The store given is not of the type the product's dedicated target asks for.
    #[error("the product asks for a dedicated {wanted} store but was given a {given} store")]
    TargetTypeMismatch {
        /// The type the product asks for.
        wanted: TargetType,
        /// The type of the store given.
        given: TargetType,
    },
    /// A topic or the target cannot be planned.
    #[error(transparent)]
    Provision(#[from] sluice_provisioners::PlanError),
}

/// Plans version `version` of `product`, whose validated output schema is `output`, into
/// `cluster` — the registered cluster `spec.target.cluster` names, or for a dedicated
/// target the spec of the store created for it. `source_partitions` holds the partition
/// count of each source topic (not positive: unknown); the output topic gets the largest.
pub fn plan_product(
    product: &DataProduct,
    output: &OutputSchema,
    cluster: &TargetClusterSpec,
    source_partitions: &[i32],
    version: u32,
) -> Result<Plan, PlanError> {
    let name = &product.metadata.name;
    let team = product
        .metadata
        .team
        .as_deref()
        .ok_or_else(|| PlanError::MissingTeam {
            product: name.clone(),
        })?;
    let target = &product.spec.target;
    if let Some(cluster_name) = &target.cluster
        && !cluster.allows(team)
    {
        return Err(PlanError::TeamNotAllowed {
            team: team.to_owned(),
            cluster: cluster_name.clone(),
        });
    }
    if let Some(dedicated) = &target.dedicated
        && dedicated.target_type != cluster.target_type
    {
        return Err(PlanError::TargetTypeMismatch {
            wanted: dedicated.target_type,
            given: cluster.target_type,
        });
    }

    let topics = plan_topics(team, name, version, target.mode, source_partitions)?;
    let request = TargetRequest {
        team,
        product: name,
        version,
        name: &target.name,
        mode: target.mode,
        options: &target.options,
        output,
    };
    let target = plan_target(&request, cluster.target_type, cluster.isolation)?;
    Ok(Plan {
        version,
        topics,
        target,
        output_schema: output.to_json_schema(),
    })
}
