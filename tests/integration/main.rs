//! Sluice's integration tests: one binary, run against the real services of
//! `make services`. Every test works in its own [`sluice_tests::TestNamespace`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod approvals;
mod audit;
mod authz;
mod console_api;
mod controller;
mod controller_ops;
mod corpus;
mod expiry;
mod faults;
mod harness;
mod job_slices;
mod jobs;
mod kafka_backfill;
mod kafka_provisioner;
mod oidc;
mod plan_backfill;
mod postgres_provisioner;
mod redis_provisioner;
mod search_provisioner;
mod secrets;
mod smoke;
mod store;
mod verify;
mod window_joins;
