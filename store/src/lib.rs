//! The Sluice metadata store: the one source of truth.
//!
//! This crate owns persistence of every resource (spec, metadata, status, generation and
//! resource version), the schema versions of each dataset, and — as governance arrives — the
//! audit log, in an embedded SQLite file by default or PostgreSQL in production, with one set
//! of migrations per backend.
