//! `TargetCluster`: a store the platform lets Sluice provision into.

// The kube derive's printer columns repeat `type_ = "string"`, which clippy mistakes for a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::TargetType;

/// How products of different teams are kept apart in a shared store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// PostgreSQL: a database per team.
    Database,
    /// PostgreSQL: a schema per team.
    Schema,
    /// Redis: an ACL user per product limited to its key prefix.
    AclPrefix,
    /// Elasticsearch/OpenSearch: indices and aliases per product.
    Index,
}

/// The spec of a `TargetCluster`.
// In Kubernetes mode it is also the spec of the cluster-scoped custom resource
// `TargetClusterResource` (`kubectl get targetclusters`, short name `tc`), see `crd.rs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, kube::CustomResource)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "TargetCluster",
    root = "TargetClusterResource",
    status = "crate::crd::KubeStatus",
    shortname = "tc",
    category = "sluice",
    schema = "disabled",
    doc = "A store the platform lets Sluice provision into.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Isolation", type_ = "string", json_path = ".spec.isolation"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct TargetClusterSpec {
    /// The store type: postgres, elasticsearch or redis.
    #[serde(rename = "type")]
    pub target_type: TargetType,
    /// Where the store is (postgres://, http(s)://, redis://). A password in the URL is
    /// stored as a secret and never returned.
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,
    /// The name of the secret holding admin credentials; never returned by the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(crate::names::DNS_LABEL))]
    pub credentials_secret: Option<String>,
    /// How teams are isolated: database or schema (postgres), acl-prefix (redis), index.
    pub isolation: Isolation,
    /// Teams that may provision into this cluster; `"*"` for all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_teams: Vec<String>,
}

impl TargetClusterSpec {
    /// Whether `team` may provision into this cluster.
    pub fn allows(&self, team: &str) -> bool {
        self.allowed_teams.iter().any(|t| t == "*" || t == team)
    }
}
