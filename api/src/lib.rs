//! The Sluice API server.
//!
//! This crate owns the HTTP front door of `sluice serve`: configuration (file, `SLUICE_*`
//! variables and the local `.sluice/services.env`), the router with `/healthz` and
//! `/readyz`, and — as later issues add them — the `/api/v1` resources, OpenAPI document and
//! console assets. It hands decisions to `sluice-controller` and never talks to Kafka or the
//! targets directly.

pub mod config;
mod health;
pub mod server;

pub use config::{Config, ConfigError, Secret};
pub use server::{ServeError, router, serve};
