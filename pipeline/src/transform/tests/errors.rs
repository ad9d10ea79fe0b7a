//! Products that cannot be compiled, and records that cannot be transformed.

use serde_json::json;

use super::*;
use crate::transform::{RecordError, Site};

#[test]
fn window_joins_and_propagating_lookups_compile() {
    // The window join is described for the runtime, apart from the lookups.
    let (spec, output) = validated(&retail_product("orders-enriched"));
    let compiled = CompiledProduct::compile(&spec, &output).unwrap();
    assert_eq!(
        compiled.window(),
        Some(&crate::transform::WindowJoin {
            alias: "p".into(),
            key_field: "order_id".into(),
            within_ms: 3_600_000,
        })
    );
    assert_eq!(compiled.lookups().len(), 1);
    assert_eq!(compiled.lookups()[0].alias, "c");
    // A second window join is refused, naming it.
    let mut two = spec.clone();
    let mut second = two.joins[1].clone();
    second.right = "q".into();
    second.on = "o.id == q.order_id".into();
    two.joins.push(second);
    let mut q = two.sources[2].clone();
    q.name = "q".into();
    two.sources.push(q);
    assert!(matches!(
        CompiledProduct::compile(&two, &output).unwrap_err(),
        TransformError::Join { right, reason } if right == "q" && reason.contains("one stream in a window")
    ));
    // Propagating lookups compile; the runtime recomputes the rows a table change affects.
    let (spec, output) = validated(&retail_product("order-search"));
    let compiled = CompiledProduct::compile(&spec, &output).unwrap();
    assert!(compiled.lookups()[0].propagate);
}

#[test]
fn products_must_read_one_source_and_be_keyed_for_upsert() {
    let (mut spec, output) = validated(&retail_product("open-orders-cache"));
    let mut two = spec.clone();
    two.sources.push(two.sources[0].clone());
    assert_eq!(
        CompiledProduct::compile(&two, &output).unwrap_err(),
        TransformError::SourceCount(2)
    );
    let mut keyless = output.clone();
    keyless.key = None;
    assert_eq!(
        CompiledProduct::compile(&spec, &keyless).unwrap_err(),
        TransformError::MissingKey
    );
    spec.key = None;
    assert_eq!(
        CompiledProduct::compile(&spec, &output).unwrap_err(),
        TransformError::MissingKey
    );
}

#[test]
fn unchecked_specs_are_checked_again() {
    let (spec, output) = validated(&retail_product("open-orders-cache"));
    let with = |f: &dyn Fn(&mut DataProductSpec)| {
        let mut spec = spec.clone();
        f(&mut spec);
        CompiledProduct::compile(&spec, &output).unwrap_err()
    };
    assert!(matches!(
        with(&|s| s.filter = Some("o.status ==".into())),
        TransformError::Parse {
            site: Site::Filter,
            ..
        }
    ));
    assert!(matches!(
        with(&|s| s.filter = Some("x.status == \"A\"".into())),
        TransformError::UnknownName { site: Site::Filter, root, .. } if root == "x"
    ));
    assert!(matches!(
        with(&|s| s.key = Some("launch(o.id)".into())),
        TransformError::UnknownFunctions { site: Site::Key, functions } if functions == ["launch"]
    ));
    assert!(matches!(
        with(&|s| {
            s.fields.shift_remove("currency");
        }),
        TransformError::SchemaMismatch(_)
    ));
    let mut object_key = output.clone();
    if let Some(key) = object_key.key.as_mut() {
        key.field_type = sluice_schemas::FieldType::Object;
    }
    assert_eq!(
        CompiledProduct::compile(&spec, &object_key).unwrap_err(),
        TransformError::KeyType(sluice_schemas::FieldType::Object)
    );
}

/// A name, the product, the record key and value, and the expected reason.
type RecordCase<'a> = (
    &'a str,
    &'a CompiledProduct,
    Option<&'a [u8]>,
    Option<Value>,
    &'a str,
);

#[test]
fn malformed_records_are_record_errors() {
    let cache = compile(&retail_product("open-orders-cache"));
    let ints = compile(&events(json!({"n": "e.n"}), "e.n", None));
    let placed = |id: Value| json!({"id": id, "customer_id": "c", "amount": 1, "status": "PLACED"});
    let cases: Vec<RecordCase<'_>> = vec![
        (
            "array value",
            &cache,
            None,
            Some(json!([1])),
            "the record value is an array, not a JSON object",
        ),
        (
            "string value",
            &cache,
            None,
            Some(json!("x")),
            "the record value is a string, not a JSON object",
        ),
        (
            "null key",
            &cache,
            None,
            Some(placed(Value::Null)),
            "key `o.id` is null",
        ),
        (
            "missing key",
            &cache,
            None,
            Some(json!({"status": "PAID"})),
            "key `o.id` is null",
        ),
        (
            "object key",
            &cache,
            None,
            Some(placed(json!({"a": 1}))),
            "key `o.id` gave an object, expected a string or integer",
        ),
        (
            "string for an integer key",
            &ints,
            None,
            Some(json!({"n": "7"})),
            "key `e.n` gave a string, expected an integer",
        ),
        (
            "fractional integer key",
            &ints,
            None,
            Some(json!({"n": 7.5})),
            "key `e.n` gave a number, expected an integer",
        ),
        (
            "tombstone without key",
            &cache,
            None,
            None,
            "the tombstone has no record key",
        ),
        (
            "tombstone key not UTF-8",
            &cache,
            Some(&[0xff, 0xfe]),
            None,
            "the tombstone's record key is not UTF-8 text",
        ),
        (
            "tombstone key not an integer",
            &ints,
            Some(b"seven"),
            None,
            "the tombstone's record key `seven` is not an integer, as the product key is",
        ),
    ];
    for (name, p, key, value, reason) in cases {
        let err = p.apply(key, value.as_ref()).unwrap_err();
        assert_eq!(err.reason(), reason, "{name}");
    }
}

#[test]
fn failing_expressions_are_record_errors_on_one_line() {
    let p = compile(&events(
        json!({"ratio": {"expr": "e.n / (e.n - 7)", "type": "integer"}}),
        "e.n",
        Some("e.label.size() > 0"),
    ));
    let err = p.apply(None, Some(&event())).unwrap_err();
    assert!(matches!(&err, RecordError::Evaluation { site: Site::Field(f), .. } if f == "ratio"));
    assert!(
        err.reason()
            .starts_with("field `ratio` `e.n / (e.n - 7)` failed: "),
        "{}",
        err.reason()
    );

    let mut multiline = event();
    multiline["label"] = json!(7);
    let err = p.apply(None, Some(&multiline)).unwrap_err();
    assert!(
        err.reason()
            .starts_with("filter `e.label.size() > 0` failed: "),
        "{}",
        err.reason()
    );
    assert!(!err.reason().contains('\n'));
}

#[test]
fn a_filter_that_is_not_boolean_is_a_record_error() {
    let (mut spec, output) = validated(&events(json!({"n": "e.n"}), "e.n", None));
    spec.filter = Some("e.label".into());
    let p = CompiledProduct::compile(&spec, &output).unwrap();
    let err = p.apply(None, Some(&event())).unwrap_err();
    assert_eq!(
        err.reason(),
        "filter `e.label` gave a string, expected a boolean"
    );
    let mut flagged = event();
    flagged["label"] = json!(true);
    assert_eq!(p.apply(None, Some(&flagged)).unwrap().unwrap().key, "7");
}

#[test]
fn long_reasons_are_shortened() {
    let long = "x".repeat(2000);
    let p = compile(&events(json!({"n": "e.n"}), "e.n", None));
    let err = p.apply(None, Some(&json!({"n": long}))).unwrap_err();
    assert!(err.reason().chars().count() <= 501);
    let err = RecordError::RecordKeyNotInteger { key: "a\nb".into() };
    assert!(!err.reason().contains('\n'));
}
