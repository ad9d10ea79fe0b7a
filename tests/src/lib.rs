//! Test support for Sluice's integration tests.
//!
//! This crate owns the link between tests and the real services started by
//! `make services`: it reads `.sluice/services.env` ([`services`]) and gives every test its
//! own [`TestNamespace`] — a unique Kafka topic prefix, PostgreSQL schema, Redis key prefix
//! and OpenSearch/Elasticsearch index prefix — that is removed when the namespace is dropped, so tests run
//! in parallel without seeing each other. A missing service fails the test loudly with
//! "run `make services`"; nothing is ever skipped.

pub mod bench;
pub mod connect;
mod namespace;
pub mod oracle;
mod services;

pub use namespace::{SearchEngine, TestNamespace};
pub use services::{HarnessError, Services, services};

/// Quotes a PostgreSQL identifier (doubling embedded quotes), for the harness's own DDL.
pub fn quote_pg_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// A statement made of `before`, one quoted identifier and `after` — the only way the
/// harness puts a name into SQL.
pub fn sql_with_ident(before: &str, ident: &str, after: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe([before, &quote_pg_ident(ident), after].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_cannot_escape_their_quotes() {
        assert_eq!(quote_pg_ident("orders"), r#""orders""#);
        assert_eq!(
            quote_pg_ident(r#"x"; DROP TABLE users; --"#),
            r#""x""; DROP TABLE users; --""#
        );
        assert_eq!(
            sql_with_ident("DROP SCHEMA ", "a\"b", " CASCADE").0,
            r#"DROP SCHEMA "a""b" CASCADE"#
        );
    }
}
