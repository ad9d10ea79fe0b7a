//! PostgreSQL targets: a table per product version (`<name>_v<N>`) in the team's schema or
//! database, behind a stable view (`<name>`) that readers use, and a least-privilege
//! reader role per product.
//!
//! [`plan`] derives the DDL purely from the output schema; [`provision`] executes it.

pub mod plan;
pub mod provision;

pub use plan::{
    MAX_IDENTIFIER_BYTES, PostgresColumn, PostgresPlan, fit_identifier, plan_postgres, sql_type,
};

#[cfg(test)]
mod tests;
