//! `Dataset`: an event stream in the catalog, with its schema.

// The kube derive's printer columns repeat `type_ = "string"`, which clippy mistakes for a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names;

/// How records of a dataset relate to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// Every record is an event.
    Stream,
    /// The latest record per key wins (a compacted topic); used for lookups.
    Table,
}

/// How sensitive a dataset is; drives who must approve access.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    /// Anyone may read it.
    Public,
    /// Anyone in the company may read it.
    Internal,
    /// Access needs the owner's approval.
    Confidential,
    /// Access needs the owner's approval and is tightly audited.
    Restricted,
}

/// Which new schema versions a dataset accepts, as in Confluent Schema Registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compatibility {
    /// Any change is accepted.
    None,
    /// A reader with the new schema can read data written with the previous one.
    #[default]
    Backward,
    /// `BACKWARD` against every earlier version.
    BackwardTransitive,
    /// A reader with the previous schema can read data written with the new one.
    Forward,
    /// `FORWARD` against every earlier version.
    ForwardTransitive,
    /// Both `BACKWARD` and `FORWARD` against the previous version.
    Full,
    /// Both `BACKWARD` and `FORWARD` against every earlier version.
    FullTransitive,
}

/// The spec of a `Dataset`.
// In Kubernetes mode it is also the spec of the cluster-scoped custom resource
// `DatasetResource` (`kubectl get datasets`, short name `ds`), see `crd.rs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, kube::CustomResource)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "Dataset",
    root = "DatasetResource",
    status = "crate::crd::KubeStatus",
    shortname = "ds",
    category = "sluice",
    schema = "disabled",
    doc = "An event stream in the catalog, with its schema.",
    printcolumn(name = "Topic", type_ = "string", json_path = ".spec.topic"),
    printcolumn(name = "Kind", type_ = "string", json_path = ".spec.kind"),
    printcolumn(
        name = "Classification",
        type_ = "string",
        json_path = ".spec.classification"
    ),
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
pub struct DatasetSpec {
    /// The Kafka topic that holds the records.
    #[schemars(pattern(names::TOPIC))]
    pub topic: String,
    /// `stream` (every record is an event) or `table` (latest record per key wins).
    pub kind: DatasetKind,
    /// The value field that is the record key (required for tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(names::FIELD_NAME))]
    pub key: Option<String>,
    /// A `date-time` field holding the event time; otherwise the Kafka record timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(names::FIELD_NAME))]
    pub timestamp_field: Option<String>,
    /// How sensitive the data is: public, internal, confidential or restricted.
    pub classification: Classification,
    /// Which schema changes are accepted (default BACKWARD).
    #[serde(default)]
    pub compatibility: Compatibility,
    /// JSON Schema (draft 2020-12) of the record value: an object with `properties`.
    /// `x-pii: true` on a property marks personal data.
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub schema: serde_json::Value,
}
