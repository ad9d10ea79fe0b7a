//! Status: what the server and controller report about a resource. Never written by users.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a data product is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Waiting for the approvals its policy requires.
    PendingApproval,
    /// Approved; provisioning has not started.
    Approved,
    /// Topics, target objects and credentials are being created.
    Provisioning,
    /// The job is reading history up to the watermarks taken at its start.
    Backfilling,
    /// Caught up and following the sources.
    Live,
    /// Running, but a condition is false (e.g. the target is unreachable).
    Degraded,
    /// Stopped on an error that needs a person.
    Failed,
    /// An approver refused it.
    Rejected,
    /// Being torn down.
    Deleting,
}

/// The truth value of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    Unknown,
}

/// A Kubernetes-style condition: `Approved`, `TopicsReady`, `TargetReady`, `JobRunning`,
/// `BackfillComplete`, `Ready`, ...
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    /// The condition's name.
    #[serde(rename = "type")]
    pub condition_type: String,
    /// True, False or Unknown.
    pub status: ConditionStatus,
    /// A machine-readable CamelCase reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// A human-readable explanation.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
}

/// Backfill progress of one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceProgress {
    /// The source alias.
    pub source: String,
    /// Events read so far.
    pub done: u64,
    /// Events to read up to the watermarks taken at job start.
    pub total: u64,
    /// Events per second recently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Estimated seconds to completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
}

/// Status of a `DataProduct`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataProductStatus {
    /// The lifecycle phase.
    pub phase: Phase,
    /// The generation of the spec Sluice last processed (validated and put through the
    /// approval policy); the generation the target was built from is `target.generation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The generation that is approved (and running, once provisioned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_generation: Option<i64>,
    /// Conditions, one per type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Backfill progress per source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backfill: Vec<SourceProgress>,
    /// Records of the live version's job that could not be processed and went to its
    /// dead-letter topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letters: Option<u64>,
    /// Live lag in milliseconds (event time to written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
    /// A one-line summary for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The approval of the latest generation: who must approve, who did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// The spec of the approved generation, against which changes are judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub approved_spec: Option<serde_json::Value>,
    /// What must happen before the record may go: the controller adds
    /// [`TEARDOWN_FINALIZER`] before it creates anything outside Sluice, and removes it
    /// (with the record) once the product's topics and target are torn down.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    /// When deletion was asked for (RFC 3339); the controller then tears the product down
    /// per `deletionPolicy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_requested: Option<String>,
    /// The version of the target readers use, and the spec it was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ProvisionedVersion>,
    /// The version being built beside `target` for a change that needs a rebuild; it
    /// replaces `target` once backfilled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_target: Option<ProvisionedVersion>,
}

/// The finalizer that keeps a product's record until its topics and target are torn down.
pub const TEARDOWN_FINALIZER: &str = "sluice.dev/teardown";

/// One version of a product's topics and target objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProvisionedVersion {
    /// The version number, from 1: part of the output topic and of the target objects'
    /// names (`<name>_v<N>`).
    pub version: u32,
    /// The product generation whose spec this version was built from.
    pub generation: i64,
    /// That spec.
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub spec: serde_json::Value,
    /// The output topic of this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Where readers find it: the view, alias or key prefix, as a one-line description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The reader's user or role in the target (its password is sealed, never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader: Option<String>,
}

/// The approval of one generation of a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Approval {
    /// The generation asked for.
    pub generation: i64,
    /// Who applied it (who may not approve it).
    pub requested_by: String,
    /// Approvals needed: `platform`, or `owner:<team>` for a dataset owner.
    pub required: Vec<String>,
    /// Approvals given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted: Vec<Decision>,
    /// The rejection, if it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Decision>,
    /// Why approvals were needed (classified sources, PII fields, widening changes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

impl Approval {
    /// The required approvals not yet given.
    pub fn missing(&self) -> Vec<&str> {
        self.required
            .iter()
            .filter(|r| !self.granted.iter().any(|g| &g.approver == *r))
            .map(String::as_str)
            .collect()
    }
}

/// One approval or rejection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Decision {
    /// The approval it satisfies (`platform`, `owner:<team>`), or `*` for a rejection.
    pub approver: String,
    /// Who decided (`policy` when a rule did).
    pub by: String,
    /// Their comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When (RFC 3339).
    pub time: String,
}

impl DataProductStatus {
    /// The status of a product that was just applied and awaits approval.
    pub fn pending(generation: i64) -> Self {
        DataProductStatus {
            phase: Phase::PendingApproval,
            observed_generation: Some(generation),
            approved_generation: None,
            conditions: Vec::new(),
            backfill: Vec::new(),
            dead_letters: None,
            lag_ms: None,
            message: Some("waiting for approval".to_owned()),
            approval: None,
            approved_spec: None,
            finalizers: Vec::new(),
            deletion_requested: None,
            target: None,
            next_target: None,
        }
    }
}

/// Status of a `Dataset`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatasetStatus {
    /// The number of the current schema version (1 for the first).
    pub schema_version: i64,
    /// Conditions, e.g. `TopicExists`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Status of a `TargetCluster`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetClusterStatus {
    /// Conditions, e.g. `Reachable`, `Privileged`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
