//! The Sluice controller (the control plane's decision maker).
//!
//! This crate owns reconciliation: for every approved data product it compares the desired
//! state (the approved spec) with what exists (topics, target objects, running job), acts
//! through `sluice-provisioners`, records status and conditions, and requeues with capped
//! exponential backoff. It is level-triggered and idempotent, so a restart at any moment
//! converges to the same result. One controller acts at a time ([`sluice_store::Leadership`]).

pub mod access;
pub mod catalog;
mod clusters;
pub mod conditions;
pub mod diff;
pub mod estimate;
mod jobs;
pub mod metrics;
pub mod plan;
mod reconcile;
mod runner;
pub mod verify;

pub use clusters::{PRIVILEGED, REACHABLE};
pub use metrics::{ControllerMetrics, MetricsSnapshot};
pub use reconcile::{Outcome, ReconcileError};
pub use runner::{
    CONTROLLER_ACTOR, Controller, ControllerConfig, ControllerError, PassReport, Waker,
};
pub use sluice_pipeline::state::StateSettings;
