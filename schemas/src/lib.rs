//! The Sluice resource model.
//!
//! This crate owns the documents users write — `Dataset`, `TargetCluster` and `DataProduct`
//! (`apiVersion: sluice.dev/v1alpha1`) — their validation rules and the JSON Schemas
//! published for editors and for the API. It depends on nothing else in the workspace;
//! every other crate speaks in its types.

#![deny(missing_docs)]

mod kind;

pub use kind::{Kind, TargetType, UnknownName};

/// The `apiVersion` every Sluice document carries.
pub const API_VERSION: &str = "sluice.dev/v1alpha1";
