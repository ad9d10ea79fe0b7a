//! Elasticsearch plan tests: mappings of every type, options, refused names.

#![allow(clippy::unwrap_used)]

use serde_json::{Map, json};
use sluice_schemas::output::OutputSchema;
use sluice_schemas::{FieldType, WriteMode};

use super::plan_elasticsearch;
use crate::plan::{PlanError, RowIdentity};
use crate::test_support::{every_type, field, request};

#[test]
fn every_type_is_mapped_under_a_strict_root() {
    let output = every_type();
    let options = json!({"shards": 3, "replicas": 0});
    let options = options.as_object().unwrap();
    let req = request(
        "team-a",
        "things",
        "things",
        WriteMode::Upsert,
        options,
        &output,
    );
    let plan = plan_elasticsearch(&req).unwrap();
    assert_eq!(
        (plan.index.as_str(), plan.alias.as_str()),
        ("things_v1", "things")
    );
    let mappings = &plan.create_index["mappings"];
    assert_eq!(mappings["dynamic"], "strict");
    // Oracle: the mapping table of DESIGN.md section 3 and the module docs.
    let expected = [
        ("id", json!({"type": "keyword"})),
        ("count", json!({"type": "long"})),
        ("price", json!({"type": "double"})),
        ("active", json!({"type": "boolean"})),
        ("at", json!({"type": "date"})),
        ("address", json!({"type": "object", "dynamic": true})),
        ("tags", json!({"type": "object", "enabled": false})),
        ("_sluice_version", json!({"type": "long"})),
    ];
    let properties = mappings["properties"].as_object().unwrap();
    assert_eq!(properties.len(), expected.len());
    for (name, mapping) in expected {
        assert_eq!(properties[name], mapping, "{name}");
    }
    assert_eq!(
        plan.create_index["settings"],
        json!({"number_of_shards": 3, "number_of_replicas": 0})
    );
    insta::assert_snapshot!(plan.summary().join("\n"));
}

#[test]
fn defaults_and_append_identity() {
    let output = OutputSchema {
        fields: vec![field("event", FieldType::String, false)],
        key: None,
    };
    let options = Map::new();
    let req = request("t", "p", "events", WriteMode::Append, &options, &output);
    let plan = plan_elasticsearch(&req).unwrap();
    assert_eq!((plan.shards, plan.replicas), (1, 1));
    assert_eq!(plan.identity, RowIdentity::TopicPosition);
    assert_eq!(
        plan.aliases,
        json!({"actions": [{"add": {"index": "events_v1", "alias": "events"}}]})
    );
}

#[test]
fn hostile_or_invalid_names_are_refused() {
    let output = every_type();
    let options = Map::new();
    for name in [
        "a\"; DROP TABLE x; --",
        "Orders",
        "_all",
        "a/b",
        "a*",
        "a,b",
        "..",
        "",
    ] {
        let req = request("t", "p", name, WriteMode::Upsert, &options, &output);
        assert!(
            matches!(plan_elasticsearch(&req), Err(PlanError::Name(_))),
            "{name:?}"
        );
    }
    let mut output = every_type();
    output.fields.push(field("_id", FieldType::String, true));
    let req = request("t", "p", "n", WriteMode::Upsert, &options, &output);
    assert_eq!(
        plan_elasticsearch(&req),
        Err(PlanError::MetadataField("_id".to_owned()))
    );
}

#[test]
fn bad_options_are_refused() {
    let output = every_type();
    for options in [
        json!({"shards": 0}),
        json!({"shards": "1"}),
        json!({"replicas": -1}),
    ] {
        let options = options.as_object().unwrap();
        let req = request("t", "p", "n", WriteMode::Upsert, options, &output);
        assert!(
            matches!(plan_elasticsearch(&req), Err(PlanError::BadOption { .. })),
            "{options:?}"
        );
    }
}
