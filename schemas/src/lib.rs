//! The Sluice resource model.
//!
//! This crate owns the documents users write — [`Dataset`], [`TargetCluster`] and
//! [`DataProduct`] (`apiVersion: sluice.dev/v1alpha1`) — their validation (structural against
//! the published JSON Schemas, then semantic against the catalog), the derived output schema
//! of a product, schema compatibility rules, and the JSON Schemas published for editors and
//! the API. It depends on nothing else in the workspace; every other crate speaks in its
//! types.

#![deny(missing_docs)]

pub mod compat;
pub mod crd;
pub mod dataset;
mod document;
mod kind;
pub mod meta;
pub mod names;
pub mod output;
pub mod product;
pub mod published;
pub mod status;
pub mod target_cluster;
pub mod time;
pub mod validate;

pub use dataset::{Classification, Compatibility, DatasetKind, DatasetSpec};
pub use document::{DataProduct, Dataset, Document, TargetCluster};
pub use kind::{Kind, TargetType, UnknownName};
pub use meta::ObjectMeta;
pub use product::{
    DataProductSpec, FieldSpec, FieldType, Join, JoinType, Source, Target, WriteMode,
};
pub use status::{
    Approval, Condition, ConditionStatus, DataProductStatus, Decision, Phase, ProvisionedVersion,
    TEARDOWN_FINALIZER, TargetClusterStatus,
};
pub use target_cluster::{Isolation, TargetClusterSpec};

/// The `apiVersion` every Sluice document carries.
pub const API_VERSION: &str = "sluice.dev/v1alpha1";
