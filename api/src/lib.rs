//! The Sluice API server.
//!
//! This crate owns the HTTP front door of `sluice serve`: configuration (file, `SLUICE_*`
//! variables and the local `.sluice/services.env`), the `/api/v1` resources (one module per
//! resource under [`routes`]), the OpenAPI 3.1 document and its interactive docs at
//! `/api/docs`, problem+json errors, `/healthz` and `/readyz`, and the web console's files
//! (embedded from `web/dist`). It validates with `sluice-schemas`, persists through
//! `sluice-store` and plans through `sluice-controller`; it reaches Kafka and the targets
//! only through those crates and `sluice-pipeline` (plan previews, dataset samples).

pub mod approvals;
pub mod auth;
mod caller;
pub mod config;
mod console;
mod docs;
pub mod error;
pub mod expiry;
mod extract;
mod health;
pub mod kubernetes;
mod metrics;
pub mod openapi;
pub mod routes;
mod secrets;
pub mod server;
pub mod state;

pub use config::{Config, ConfigError, Secret};
pub use server::{ServeError, api, bootstrap_admin, router, serve, work};
pub use state::AppState;
