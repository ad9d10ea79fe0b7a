//! Output values: conversion to each field type and nullability.

use serde_json::{Value, json};
use sluice_schemas::FieldType;
use sluice_schemas::output::{OutputField, OutputKey};

use super::*;
use crate::transform::RecordError;

/// Fields of every output type, by plain paths and by CEL, over [`event`].
fn typed_fields() -> Value {
    json!({
        "n": "e.n",
        "score": "e.score",
        "at": "e.at",
        "flag": "e.flag",
        "tags": "e.tags",
        "meta": "e.meta",
        "city": "e.meta.city",
        "score_cents": {"expr": "int(e.score * 100.0)", "type": "integer"},
        "at_utc": {"expr": "timestamp(e.at)", "type": "timestamp"},
        "shout": {"expr": "e.label.upperAscii() + \"!\"", "type": "string"},
        "big": {"expr": "e.n > 5", "type": "boolean"},
        "half": {"expr": "double(e.n) / 2.0", "type": "number"},
        "tag_count": {"expr": "size(e.tags)", "type": "integer"},
        "summary": {"expr": "{\"n\": e.n, \"tags\": e.tags}", "type": "object"},
        "upper_tags": {"expr": "e.tags.map(t, t.upperAscii())", "type": "array"},
    })
}

/// Nullable fields, over sparse events.
fn sparse_fields() -> Value {
    json!({"n": "e.n", "label": "e.label", "note": "e.note", "zip": "e.meta.zip", "flag": "e.flag"})
}

#[test]
fn plain_paths_and_typed_computed_fields_give_typed_values() {
    let p = compile(&events(typed_fields(), "e.n", None));
    let emitted = p.apply(None, Some(&event())).unwrap().unwrap();
    assert_eq!(
        Value::Object(emitted.row.unwrap()),
        json!({
            "n": 7,
            "score": 2.5,
            "at": "2026-03-01T10:00:00+01:00",
            "flag": true,
            "tags": ["a", "b"],
            "meta": {"city": "Ghent", "zip": "9000"},
            "city": "Ghent",
            "score_cents": 250,
            "at_utc": "2026-03-01T10:00:00+01:00",
            "shout": "SEVEN!",
            "big": true,
            "half": 3.5,
            "tag_count": 2,
            "summary": {"n": 7, "tags": ["a", "b"]},
            "upper_tags": ["A", "B"],
        })
    );
}

#[test]
fn retail_amount_cents_is_an_integer_from_a_double() {
    let p = compile(&product(json!({
        "sources": [{"name": "o", "dataset": "shop.orders"}],
        "key": "o.id",
        "fields": {
            "order_id": "o.id",
            "amount_cents": {"expr": "int(o.amount * 100.0)", "type": "integer"},
            "cents_double": {"expr": "o.amount * 100.0", "type": "integer"},
            "placed_at": {"expr": "o.created_at", "type": "timestamp"},
        },
        "target": {"cluster": "shared-pg", "name": "cents", "mode": "upsert"},
    })));
    let order = json!({"id": "o-1", "customer_id": "c", "amount": 19.75, "created_at": "2026-03-01T10:00:00.000Z"});
    assert_eq!(
        Value::Object(p.apply(None, Some(&order)).unwrap().unwrap().row.unwrap()),
        json!({"order_id": "o-1", "amount_cents": 1975, "cents_double": 1975, "placed_at": "2026-03-01T10:00:00Z"})
    );
    let fractional = json!({"id": "o-1", "customer_id": "c", "amount": 19.755});
    let err = p.apply(None, Some(&fractional)).unwrap_err();
    assert!(
        matches!(&err, RecordError::TypeMismatch { site: crate::transform::Site::Field(f), .. } if f == "cents_double"),
        "{err:?}"
    );
}

#[test]
fn missing_and_null_values_respect_nullability() {
    let p = compile(&events(sparse_fields(), "e.n", None));
    let mut sparse = json!({"n": 1, "at": "2026-03-01T10:00:00Z", "flag": false});
    assert_eq!(
        Value::Object(p.apply(None, Some(&sparse)).unwrap().unwrap().row.unwrap()),
        json!({"n": 1, "label": null, "note": null, "zip": null, "flag": false})
    );
    sparse["flag"] = Value::Null;
    let err = p.apply(None, Some(&sparse)).unwrap_err();
    assert_eq!(
        err.reason(),
        "field `flag` `e.flag` is null, but the field is not nullable"
    );
}

#[test]
fn a_non_nullable_computed_field_refuses_null() {
    let (spec, mut output) = validated(&events(
        json!({"label": {"expr": "e.n > 3 ? e.label : null", "type": "string"}}),
        "e.n",
        None,
    ));
    output.fields[0].nullable = false;
    let p = CompiledProduct::compile(&spec, &output).unwrap();
    assert!(p.apply(None, Some(&event())).unwrap().is_some());
    let mut small = event();
    small["n"] = json!(1);
    assert!(matches!(
        p.apply(None, Some(&small)).unwrap_err(),
        RecordError::NullNotAllowed { field, .. } if field == "label"
    ));
}

#[test]
fn type_mismatches_name_the_field_and_expression() {
    let p = compile(&events(
        json!({
            "n": "e.n",
            "at": "e.at",
            "label": "e.label",
            "tags": "e.tags",
            "computed": {"expr": "e.label + \"x\"", "type": "integer"},
        }),
        "e.label",
        None,
    ));
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "n",
            json!("seven"),
            "field `n` `e.n` gave a string, expected integer",
        ),
        (
            "n",
            json!(7.5),
            "field `n` `e.n` gave a number, expected integer",
        ),
        (
            "at",
            json!("soon"),
            "field `at` `e.at` gave a string that is not an RFC 3339 timestamp, expected timestamp",
        ),
        (
            "at",
            json!(1_700_000_000),
            "field `at` `e.at` gave an integer, expected timestamp",
        ),
        (
            "tags",
            json!("a,b"),
            "field `tags` `e.tags` gave a string, expected array",
        ),
        (
            "label",
            json!("l"),
            "field `computed` `e.label + \"x\"` gave a CEL string, expected integer",
        ),
    ];
    for (field, value, reason) in cases {
        let mut record = event();
        record[field] = value;
        let err = p.apply(None, Some(&record)).unwrap_err();
        assert_eq!(err.reason(), reason, "{field}");
    }
}

#[test]
fn hand_built_schemas_are_followed() {
    // A key with an output field of its own and a computed number; the schema given is the
    // one followed.
    let (spec, _) = validated(&events(json!({"n": "e.n"}), "e.n", None));
    let output = OutputSchema {
        fields: vec![OutputField {
            name: "n".into(),
            field_type: FieldType::Number,
            nullable: false,
            pii: false,
            pii_sources: vec![],
            expr: "e.n".into(),
            description: None,
        }],
        key: Some(OutputKey {
            expr: "e.n".into(),
            field_type: FieldType::Integer,
            field: Some("n".into()),
        }),
    };
    let p = CompiledProduct::compile(&spec, &output).unwrap();
    assert_eq!(
        p.apply(None, Some(&event())).unwrap(),
        emit("7", Some(json!({"n": 7.0})))
    );
}

#[test]
fn the_source_schema_makes_integer_written_numbers_doubles() {
    let doc = product(json!({
        "sources": [{"name": "o", "dataset": "shop.orders"}],
        "key": "o.id",
        "fields": {"amount_cents": {"expr": "int(o.amount * 100.0)", "type": "integer"}},
        "target": {"cluster": "shared-pg", "name": "cents", "mode": "upsert"},
    }));
    let whole = json!({"id": "o-1", "customer_id": "c", "amount": 12});
    let err = compile(&doc).apply(None, Some(&whole)).unwrap_err();
    assert!(matches!(err, RecordError::Evaluation { .. }), "{err:?}");
    let schema = catalog()
        .dataset("shop.orders")
        .unwrap()
        .spec
        .schema
        .clone();
    let p = compile(&doc).with_source_schema(schema);
    assert_eq!(
        p.apply(None, Some(&whole)).unwrap(),
        emit("o-1", Some(json!({"amount_cents": 1200})))
    );
}

/// The JSON text the job writes is the map's serialization, byte for byte: the same fields
/// in the same order, nulls included, tombstones alike.
#[test]
fn rows_as_json_text_are_the_rows_as_maps_serialized() {
    use crate::transform::{Emitted, RowJson};
    let typed = compile(&events(typed_fields(), "e.n", None));
    let sparse = compile(&events(sparse_fields(), "e.n", None));
    let quoted =
        json!({"n": 1, "at": "2026-03-01T10:00:00Z", "flag": false, "label": "say \"hi\"\n"});
    for (p, value) in [
        (&typed, Some(event())),
        (&sparse, Some(quoted)),
        (&typed, None),
    ] {
        let as_map = p.apply(Some(b"7"), value.as_ref());
        let as_text: Result<Option<Emitted<RowJson>>, _> =
            p.apply_as(Some(b"7"), value.as_ref(), &|_, _| None, None);
        let (as_map, as_text) = (as_map.unwrap().unwrap(), as_text.unwrap().unwrap());
        assert_eq!(as_text.key, as_map.key);
        let text = as_text.row.map(|r| String::from_utf8(r.0).unwrap());
        let serialized = as_map.row.map(|m| serde_json::to_string(&m).unwrap());
        assert_eq!(text, serialized, "{value:?}");
    }
}
