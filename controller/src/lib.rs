//! The Sluice controller (the control plane's decision maker).
//!
//! This crate owns reconciliation: for every approved data product it compares the desired
//! state (the approved spec) with what exists (topics, target objects, running job), acts
//! through `sluice-provisioners` and `sluice-pipeline`, records status and conditions, and
//! requeues with backoff. It is level-triggered and idempotent, so a restart at any moment
//! converges to the same result.

pub mod diff;
pub mod estimate;
pub mod plan;
