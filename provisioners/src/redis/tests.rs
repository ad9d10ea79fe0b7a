//! Redis plan tests: key layout, encodings, TTL, the reader's ACL rule, escaping.

#![allow(clippy::unwrap_used)]

use serde_json::{Map, json};
use sluice_schemas::{FieldType, TargetType, WriteMode};

use super::{READER_COMMANDS_HASH, RedisEncoding, plan_redis};
use crate::plan::PlanError;
use crate::test_support::{every_type, field, key, request};

#[test]
fn json_encoding_with_a_ttl() {
    let output = sluice_schemas::output::OutputSchema {
        fields: vec![
            field("status", FieldType::String, false),
            field("amount", FieldType::Number, true),
        ],
        key: Some(key("o.id", FieldType::String, None)),
    };
    let options = json!({"type": "json", "ttl": "1h30m"});
    let req = request(
        "team-a",
        "cache",
        "open_orders",
        WriteMode::Upsert,
        options.as_object().unwrap(),
        &output,
    );
    let plan = plan_redis(&req).unwrap();
    assert_eq!(plan.encoding, RedisEncoding::Json);
    assert_eq!(plan.ttl_seconds, Some(5_400));
    assert_eq!(plan.data_key("o-1:x"), "open_orders:v1:o-1:x");
    assert_eq!(plan.pointer_key, "open_orders:current");
    assert_eq!(plan.pointer_value, "v1");
    assert_eq!(
        plan.acl_rule,
        "user sluice_team-a_cache reset on resetchannels ~open_orders:* +get +mget +strlen \
         +exists +type +ttl +pttl +ping"
    );
    insta::assert_snapshot!(plan.summary().join("\n"));
}

#[test]
fn hash_encoding_is_the_default_and_grants_hash_reads() {
    let output = every_type();
    let options = Map::new();
    let req = request("t", "p", "things", WriteMode::Upsert, &options, &output);
    let plan = plan_redis(&req).unwrap();
    assert_eq!(plan.encoding, RedisEncoding::Hash);
    assert_eq!(plan.ttl_seconds, None);
    assert_eq!(
        plan.fields.last().map(String::as_str),
        Some("_sluice_version")
    );
    for command in READER_COMMANDS_HASH {
        assert!(plan.acl_rules.contains(&format!("+{command}")));
    }
    // Nothing that lists keys outside the prefix, writes or administers.
    for rule in &plan.acl_rules {
        assert!(!rule.contains('@'), "no command categories: {rule}");
        for forbidden in [
            "+scan", "+keys", "+set", "+del", "+acl", "+config", "allkeys",
        ] {
            assert_ne!(rule, forbidden);
        }
    }
}

#[test]
fn a_sub_second_ttl_rounds_up() {
    let output = every_type();
    let options = json!({"ttl": "1500ms"});
    let req = request(
        "t",
        "p",
        "n",
        WriteMode::Upsert,
        options.as_object().unwrap(),
        &output,
    );
    assert_eq!(plan_redis(&req).unwrap().ttl_seconds, Some(2));
}

#[test]
fn glob_characters_in_a_prefix_cannot_widen_the_acl_pattern() {
    let output = every_type();
    let options = Map::new();
    let req = request("t", "p", "a*b?[c]\\", WriteMode::Upsert, &options, &output);
    let plan = plan_redis(&req).unwrap();
    assert_eq!(plan.acl_rules[3], "~a\\*b\\?\\[c\\]\\\\:*");
    // The data keys themselves are literal.
    assert_eq!(plan.data_key("k"), "a*b?[c]\\:v1:k");
}

#[test]
fn names_that_would_add_acl_rules_are_refused() {
    let output = every_type();
    let options = Map::new();
    for (team, name) in [
        ("t", "x +@all"),
        ("t", "a\"; DROP TABLE x; --"),
        ("t", "a\nb"),
        ("t x +@all", "n"),
        ("t", ""),
    ] {
        let req = request(team, "p", name, WriteMode::Upsert, &options, &output);
        assert!(
            matches!(plan_redis(&req), Err(PlanError::Name(_))),
            "{team:?} {name:?}"
        );
    }
}

#[test]
fn impossible_requests_are_refused() {
    let output = every_type();
    let options = Map::new();
    let req = request("t", "p", "n", WriteMode::Append, &options, &output);
    assert_eq!(
        plan_redis(&req),
        Err(PlanError::AppendUnsupported(TargetType::Redis))
    );
    for options in [
        json!({"type": "list"}),
        json!({"ttl": 7}),
        json!({"ttl": "0s"}),
    ] {
        let options = options.as_object().unwrap();
        let req = request("t", "p", "n", WriteMode::Upsert, options, &output);
        assert!(plan_redis(&req).is_err(), "{options:?}");
    }
}
