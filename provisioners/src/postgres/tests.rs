//! PostgreSQL plan tests: DDL per mode and isolation, hostile names, the 63-byte limit.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use serde_json::Map;
use sluice_schemas::output::OutputSchema;
use sluice_schemas::{FieldType, Isolation, WriteMode};

use super::plan::fnv1a_32;
use super::{MAX_IDENTIFIER_BYTES, fit_identifier, plan_postgres};
use crate::plan::{PlanError, RowIdentity};
use crate::test_support::{Token, every_type, field, key, request, sql_tokens_deep};

#[test]
fn upsert_keyed_by_a_field_in_a_team_schema() {
    let output = every_type();
    let options = Map::new();
    let req = request(
        "team-a",
        "things",
        "things",
        WriteMode::Upsert,
        &options,
        &output,
    );
    let plan = plan_postgres(&req, Isolation::Schema).unwrap();
    assert_eq!(plan.primary_key, ["id"]);
    assert_eq!(plan.table, "things_v1");
    assert_eq!(plan.role, "sluice_team-a_things");
    insta::assert_snapshot!(plan.summary().join("\n"));
}

#[test]
fn append_in_a_team_database_is_identified_by_topic_position() {
    let output = OutputSchema {
        fields: vec![
            field("event", FieldType::String, false),
            field("at", FieldType::Timestamp, false),
        ],
        key: None,
    };
    let options = Map::new();
    let req = request(
        "team-a",
        "events",
        "events",
        WriteMode::Append,
        &options,
        &output,
    );
    let plan = plan_postgres(&req, Isolation::Database).unwrap();
    assert_eq!(plan.identity, RowIdentity::TopicPosition);
    assert_eq!(plan.database.as_deref(), Some("team-a"));
    assert_eq!(plan.schema, "public");
    assert_eq!(
        plan.create_database.as_deref(),
        Some("CREATE DATABASE \"team-a\"")
    );
    assert_eq!(plan.primary_key, ["_sluice_partition", "_sluice_offset"]);
    insta::assert_snapshot!(plan.summary().join("\n"));
}

#[test]
fn a_computed_key_gets_a_column_of_its_own() {
    let output = OutputSchema {
        fields: vec![field("total", FieldType::Number, false)],
        key: Some(key("o.a + \":\" + o.b", FieldType::String, None)),
    };
    let options = Map::new();
    let req = request("t", "p", "totals", WriteMode::Upsert, &options, &output);
    let plan = plan_postgres(&req, Isolation::Schema).unwrap();
    assert_eq!(plan.primary_key, ["_sluice_key"]);
    let table = &plan.statements[1];
    assert!(
        table.contains("  \"_sluice_key\" text NOT NULL,\n"),
        "{table}"
    );
    // Readers see the output fields only.
    assert_eq!(
        plan.statements[2],
        "CREATE OR REPLACE VIEW \"t\".\"totals\" AS SELECT \"total\" FROM \"t\".\"totals_v1\""
    );

    let output = OutputSchema {
        key: Some(key("o.n * 2", FieldType::Integer, None)),
        ..output
    };
    let req = request("t", "p", "totals", WriteMode::Upsert, &options, &output);
    let plan = plan_postgres(&req, Isolation::Schema).unwrap();
    assert!(plan.statements[1].contains("\"_sluice_key\" bigint NOT NULL"));
}

#[test]
fn a_nullable_key_field_is_still_not_null() {
    let output = OutputSchema {
        fields: vec![field("id", FieldType::Integer, true)],
        key: Some(key("o.id", FieldType::Integer, Some("id"))),
    };
    let options = Map::new();
    let req = request("t", "p", "n", WriteMode::Upsert, &options, &output);
    let plan = plan_postgres(&req, Isolation::Schema).unwrap();
    assert!(plan.statements[1].contains("\"id\" bigint NOT NULL"));
}

/// Every statement, read by an independent tokenizer, holds only the expected identifiers
/// and no keyword smuggled in through a name.
#[test]
fn hostile_names_stay_inside_their_quotes() {
    let team = "a\"; DROP TABLE x; --";
    let product = "p\" $sluice$; DROP ROLE z; --";
    let name = "t\"; DROP TABLE y; --";
    let column = "f\"); DROP TABLE w; --";
    let output = OutputSchema {
        fields: vec![field(column, FieldType::String, false)],
        key: Some(key("o.f", FieldType::String, Some(column))),
    };
    let options = Map::new();
    let req = request(team, product, name, WriteMode::Upsert, &options, &output);
    for isolation in [Isolation::Schema, Isolation::Database] {
        let plan = plan_postgres(&req, isolation).unwrap();
        let role = format!("sluice_{team}_{product}");
        let table = format!("{name}_v1");
        let expected: HashSet<&str> = [
            team,
            "public",
            name,
            table.as_str(),
            column,
            "_sluice_version",
            role.as_str(),
        ]
        .into();
        let mut statements = plan.statements.clone();
        statements.extend(plan.create_database.clone());
        for statement in &statements {
            for token in sql_tokens_deep(statement) {
                match token {
                    Token::Ident(ident) => {
                        assert!(
                            expected.contains(ident.as_str()),
                            "{ident:?} in {statement}"
                        )
                    }
                    Token::Word(word) => assert_ne!(word, "DROP", "in {statement}"),
                    Token::Literal(_) | Token::Dollar(_) | Token::Punct(_) => {}
                }
            }
        }
        let quoted_team = "\"a\"\"; DROP TABLE x; --\"";
        assert!(plan.statements.contains(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            match isolation {
                Isolation::Schema => quoted_team,
                _ => "\"public\"",
            }
        )));
    }
}

#[test]
fn nul_in_a_name_is_refused() {
    let output = every_type();
    let options = Map::new();
    let req = request("t", "p", "a\0b", WriteMode::Upsert, &options, &output);
    assert!(matches!(
        plan_postgres(&req, Isolation::Schema),
        Err(PlanError::Name(_))
    ));
}

#[test]
fn long_names_are_truncated_with_a_hash_within_63_bytes() {
    // Short names are kept as they are.
    assert_eq!(fit_identifier("orders", "_v1"), "orders_v1");
    assert_eq!(
        fit_identifier(&"a".repeat(60), "_v1"),
        format!("{}_v1", "a".repeat(60))
    );

    // The longest role name validation allows: two 63-character DNS labels.
    let team = format!("team-{}", "t".repeat(58));
    let product = format!("prod-{}", "p".repeat(58));
    let full = format!("sluice_{team}_{product}");
    let role = fit_identifier(&full, "");
    assert_eq!(role.len(), MAX_IDENTIFIER_BYTES);
    // Oracle: the kept prefix, `_`, then FNV-1a of the whole name as 8 hex digits.
    let expected = format!("{}_{:08x}", &full[..54], fnv1a_32(full.as_bytes()));
    assert_eq!(role, expected);
    assert_eq!(fit_identifier(&full, ""), role, "deterministic");
    let other = fit_identifier(&format!("sluice_{team}_{}", "q".repeat(63)), "");
    assert_ne!(role, other, "long names sharing a prefix stay distinct");

    // The version suffix survives truncation.
    let table = fit_identifier(&"n".repeat(70), "_v12");
    assert_eq!(table.len(), MAX_IDENTIFIER_BYTES);
    assert!(table.ends_with("_v12"), "{table}");
    assert_ne!(table, fit_identifier(&"n".repeat(70), "_v13"));

    // Multi-byte characters are never split.
    let wide = fit_identifier(&"é".repeat(40), "");
    assert!(wide.len() <= MAX_IDENTIFIER_BYTES);

    // The plan applies it to the role.
    let output = every_type();
    let options = Map::new();
    let req = request(
        &team,
        &product,
        "things",
        WriteMode::Upsert,
        &options,
        &output,
    );
    let plan = plan_postgres(&req, Isolation::Schema).unwrap();
    assert_eq!(plan.role, role);
    assert!(
        plan.statements
            .iter()
            .any(|s| s.ends_with(&format!("TO \"{role}\"")))
    );
}

#[test]
fn fnv1a_matches_the_published_test_vectors() {
    assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
    assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
    assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
}

#[test]
fn impossible_requests_are_refused() {
    let options = Map::new();
    let mut output = every_type();
    output.key = None;
    let req = request("t", "p", "n", WriteMode::Upsert, &options, &output);
    assert_eq!(
        plan_postgres(&req, Isolation::Schema),
        Err(PlanError::MissingKey)
    );

    let mut output = every_type();
    output
        .fields
        .push(field("_sluice_version", FieldType::Integer, false));
    let req = request("t", "p", "n", WriteMode::Upsert, &options, &output);
    assert_eq!(
        plan_postgres(&req, Isolation::Schema),
        Err(PlanError::ReservedField("_sluice_version".to_owned()))
    );

    let mut output = every_type();
    output.key = Some(key("o.at", FieldType::Timestamp, Some("at")));
    let req = request("t", "p", "n", WriteMode::Upsert, &options, &output);
    assert_eq!(
        plan_postgres(&req, Isolation::Schema),
        Err(PlanError::KeyType(FieldType::Timestamp))
    );

    let output = every_type();
    let mut req = request("t", "p", "n", WriteMode::Upsert, &options, &output);
    assert!(matches!(
        plan_postgres(&req, Isolation::AclPrefix),
        Err(PlanError::Isolation { .. })
    ));
    req.version = 0;
    assert_eq!(
        plan_postgres(&req, Isolation::Schema),
        Err(PlanError::ZeroVersion)
    );
}
