//! Test support for Sluice's integration tests.
//!
//! This crate owns the link between tests and the real services started by
//! `make services`: it reads `.sluice/services.env` ([`services`]) and gives every test its
//! own [`TestNamespace`] — a unique Kafka topic prefix, PostgreSQL schema, Redis key prefix
//! and OpenSearch/Elasticsearch index prefix — that is removed when the namespace is dropped, so tests run
//! in parallel without seeing each other. A missing service fails the test loudly with
//! "run `make services`"; nothing is ever skipped. Fault tests run a broker or a database of
//! their own ([`OwnKafka`], [`OwnPostgres`]) that they can stop and start again.

pub mod bench;
pub mod connect;
mod namespace;
pub mod oracle;
mod own_kafka;
mod own_postgres;
mod own_search;
mod ports;
mod produce;
mod services;

pub use namespace::{SearchEngine, TestNamespace};
pub use own_kafka::{OwnKafka, OwnKafkaError};
pub use own_postgres::{OwnPostgres, OwnPostgresError};
pub use own_search::{OwnSearch, OwnSearchError};
pub use ports::reserve_port;
pub use produce::send_in_order;
pub use services::{HarnessError, Services, services};

/// Sends the tracing events of the code under test to stderr, filtered by
/// `SLUICE_TEST_LOG` (an `EnvFilter` directive such as `sluice_pipeline=debug`), when that
/// variable is set; otherwise does nothing. For chasing a failure: run the test with
/// `--nocapture`. Safe to call from every test; the first call wins.
pub fn log_from_env() {
    if let Ok(filter) = std::env::var("SLUICE_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

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
