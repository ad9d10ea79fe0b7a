//! `DataProduct`: what a team asks for — sources, joins, filter, shape and target.

// The kube derive's printer columns repeat `type_ = "string"`, which clippy mistakes for a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{TargetType, names};

/// One input of a product: a dataset under a short alias used in expressions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    /// The alias expressions use for this source (e.g. `o` in `o.amount`).
    #[schemars(pattern(names::IDENTIFIER))]
    pub name: String,
    /// The catalog name of the dataset.
    #[schemars(pattern(names::DATASET_NAME))]
    pub dataset: String,
    /// Where reading starts: `earliest`, `latest`, a duration back (`90d`) or an RFC 3339
    /// time. Default `earliest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub from: Option<String>,
}

/// The kind of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JoinType {
    /// Stream-table enrichment with the current row of a `table` dataset.
    Lookup,
    /// Stream-stream join of records whose event times lie within `within`.
    Window,
}

/// A join of the driving (first) source with another source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Join {
    /// `lookup` or `window`.
    #[serde(rename = "type")]
    pub join_type: JoinType,
    /// The alias of the source joined in.
    #[schemars(pattern(names::IDENTIFIER))]
    pub right: String,
    /// The join condition (CEL), an equality of one field of each side, e.g.
    /// `o.customer_id == c.id`.
    #[schemars(length(min = 1, max = 4096))]
    pub on: String,
    /// For `window` joins: how far apart in event time the two records may be (e.g. `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(names::DURATION))]
    pub within: Option<String>,
    /// Drop records without a partner instead of filling nulls (lookup default false,
    /// window joins are always inner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner: Option<bool>,
    /// For `lookup` joins: update already-written rows when the table row changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate: Option<bool>,
}

/// The type of an output field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Text.
    String,
    /// A 64-bit signed integer.
    Integer,
    /// A double-precision number.
    Number,
    /// True or false.
    Boolean,
    /// An instant (RFC 3339 text in records).
    Timestamp,
    /// A JSON object.
    Object,
    /// A JSON array.
    Array,
}

impl FieldType {
    /// The spelling used in specs.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Timestamp => "timestamp",
            FieldType::Object => "object",
            FieldType::Array => "array",
        }
    }
}

/// One output field: a CEL expression, with a declared type unless it is a plain path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FieldSpec {
    /// A CEL expression; a plain path (`o.amount`) takes its type from the source schema.
    Expr(#[schemars(length(min = 1, max = 4096))] String),
    /// A CEL expression with its declared output type.
    Typed(TypedField),
}

/// The long form of an output field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TypedField {
    /// The CEL expression computing the field.
    #[schemars(length(min = 1, max = 4096))]
    pub expr: String,
    /// The output type; required unless `expr` is a plain path.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub field_type: Option<FieldType>,
    /// A description of the field, carried into the output schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl FieldSpec {
    /// The CEL expression of this field.
    pub fn expr(&self) -> &str {
        match self {
            FieldSpec::Expr(e) => e,
            FieldSpec::Typed(t) => &t.expr,
        }
    }

    /// The declared type, if any.
    pub fn declared_type(&self) -> Option<FieldType> {
        match self {
            FieldSpec::Expr(_) => None,
            FieldSpec::Typed(t) => t.field_type,
        }
    }
}

/// How rows are written to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// One row per key, the latest; tombstones and filtered-out keys delete the row.
    #[default]
    Upsert,
    /// One row per output record; nothing is ever deleted.
    Append,
}

/// Size of a dedicated store created for one product (Kubernetes mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DedicatedSize {
    /// For development and small tables.
    Small,
    /// For moderate production load.
    Medium,
    /// For heavy production load.
    Large,
}

/// A store created for this product alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DedicatedTarget {
    /// The store type.
    #[serde(rename = "type")]
    pub target_type: TargetType,
    /// Its size (default small).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<DedicatedSize>,
}

/// Where a product's rows land.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    /// A registered TargetCluster (exactly one of `cluster` and `dedicated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(names::DNS_LABEL))]
    pub cluster: Option<String>,
    /// A dedicated store created for this product (Kubernetes mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedicated: Option<DedicatedTarget>,
    /// The PostgreSQL table/view, Elasticsearch alias or Redis key prefix.
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
    /// `upsert` (one row per key) or `append` (every event). Default upsert.
    #[serde(default)]
    pub mode: WriteMode,
    /// Per target type: redis `{type: hash|json, ttl: 7d}`; elasticsearch
    /// `{shards: 1, replicas: 0}`; postgres none.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// What happens to the target when the product is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Drop the target objects.
    #[default]
    Delete,
    /// Keep the target objects; only the job and topics go.
    Retain,
}

/// Service-level objectives of a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Slo {
    /// Alert when live lag exceeds this duration (e.g. `5s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(names::DURATION))]
    pub freshness: Option<String>,
}

/// The spec of a `DataProduct`.
// In Kubernetes mode it is also the spec of the namespaced custom resource
// `DataProductResource` (`kubectl get dataproducts`, short name `dp`), see `crd.rs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, kube::CustomResource)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "DataProduct",
    root = "DataProductResource",
    namespaced,
    status = "crate::crd::KubeProductStatus",
    shortname = "dp",
    category = "sluice",
    schema = "disabled",
    doc = "What a team asks for: sources, joins, filter, shape and target.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Progress", type_ = "string", json_path = ".status.progress"),
    printcolumn(name = "Target", type_ = "string", json_path = ".spec.target.name"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct DataProductSpec {
    /// The inputs; the first is the driving stream, others are joined to it.
    #[schemars(length(min = 1, max = 16))]
    pub sources: Vec<Source>,
    /// Joins of the driving source with the others, applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 15))]
    pub joins: Vec<Join>,
    /// Keep only records for which this CEL expression is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 8192))]
    pub filter: Option<String>,
    /// The output primary key (CEL); required for `upsert` targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub key: Option<String>,
    /// The output shape: field name → CEL expression (or `{expr, type}`).
    #[schemars(extend("minProperties" = 1, "maxProperties" = 512))]
    pub fields: IndexMap<String, FieldSpec>,
    /// Where the rows land.
    pub target: Target,
    /// `Delete` or `Retain` the target when the product is deleted. Default Delete.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Service-level objectives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
    /// The product is torn down after this date (YYYY-MM-DD); owners are warned before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date"))]
    pub expires: Option<String>,
}
