//! PostgreSQL targets: a table per product version (`<name>_v<N>`) in the team's schema or
//! database, behind a stable view (`<name>`) that readers use, and a least-privilege
//! reader role per product.
//!
//! [`plan`] derives the DDL purely from the output schema; executing it comes later.

pub mod plan;

pub use plan::{
    MAX_IDENTIFIER_BYTES, PostgresColumn, PostgresPlan, fit_identifier, plan_postgres, sql_type,
};

#[cfg(test)]
mod tests;
