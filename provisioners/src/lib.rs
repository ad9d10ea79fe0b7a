//! Sluice provisioners.
//!
//! This crate owns everything Sluice creates outside itself: the Kafka topics of a data
//! product and the objects in its target store — a PostgreSQL schema, table, view and role;
//! an OpenSearch/Elasticsearch index and alias; a Redis key layout and ACL user. There is one
//! provisioner per [`sluice_schemas::TargetType`], each able to plan, ensure, observe, grant
//! and delete idempotently. It knows nothing of the metadata store or of approval: the
//! controller decides, provisioners act. [`target`] puts the three target types behind one
//! interface ([`TargetConnection`], [`TargetProvisioner`]): versions built beside each
//! other, published separately, and converged with no mutating call when nothing changed.
//!
//! Planning is pure: [`plan_target`] and [`kafka::plan_topics`] derive what to create from a
//! product and its output schema, with no I/O. Every name they emit goes through the one
//! quoting or checking function of its dialect in [`quote`].

#![deny(missing_docs)]

pub mod credentials;
pub mod elasticsearch;
pub mod kafka;
pub mod plan;
pub mod postgres;
pub mod quote;
pub mod redis;
pub mod target;

#[cfg(test)]
mod target_tests;
#[cfg(test)]
mod test_support;

pub use credentials::Credentials;
pub use plan::{PlanError, RowIdentity, TargetPlan, TargetRequest, plan_target};
pub use quote::QuoteError;
pub use target::{
    ClusterCheck, PostgresTarget, RedisTarget, TargetConnection, TargetEnsureReport, TargetError,
    TargetObservation, TargetProvisioner, redact_url,
};
