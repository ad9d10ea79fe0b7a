//! The Sluice stream job runtime (the data plane).
//!
//! This crate owns the jobs that move records: reading a product's sources from Kafka
//! (backfill from `from`, then live), applying its joins, filter and field expressions, and
//! writing exactly the right rows into the target through one sink per
//! [`sluice_schemas::TargetType`]. It runs inside `sluice serve` and in `sluice worker`
//! processes; which jobs run where is the controller's decision, not this crate's.

#![deny(missing_docs)]

pub mod job;
pub mod kafka_wire;
pub mod preview;
mod projected;
pub mod sample;
pub mod sink;
pub mod state;
pub mod transform;
pub mod verify;
mod window;

pub use transform::{
    CompiledProduct, Emit, Emitted, RecordError, RowForm, RowJson, Site, TransformError,
};
