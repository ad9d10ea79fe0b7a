//! Upsert mode: records address their product key first, then say what it holds.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

fn order(id: &str, status: &str) -> Value {
    json!({
        "id": id,
        "customer_id": "c-1",
        "amount": 12.5,
        "currency": "EUR",
        "status": status,
        "created_at": "2026-03-01T10:00:00Z",
        "shipping_email": "a@example.com",
    })
}

/// A name, the record key and value, and what must be written.
type Case = (
    &'static str,
    Option<&'static [u8]>,
    Option<Value>,
    Option<Emit>,
);

#[test]
fn open_orders_cache_keeps_placed_and_paid_orders_only() {
    let cache = compile(&retail_product("open-orders-cache"));
    assert_eq!(cache.source(), "o");
    let open_row = |status: &str| json!({"status": status, "amount": 12.5, "currency": "EUR"});
    let cases: Vec<Case> = vec![
        (
            "placed",
            Some(b"o-17"),
            Some(order("o-17", "PLACED")),
            emit("o-17", Some(open_row("PLACED"))),
        ),
        (
            "paid",
            Some(b"o-17"),
            Some(order("o-17", "PAID")),
            emit("o-17", Some(open_row("PAID"))),
        ),
        (
            "shipped is filtered out: the key disappears",
            Some(b"o-17"),
            Some(order("o-17", "SHIPPED")),
            emit("o-17", None),
        ),
        (
            "cancelled is filtered out",
            Some(b"o-18"),
            Some(order("o-18", "CANCELLED")),
            emit("o-18", None),
        ),
        (
            "tombstone deletes by record key",
            Some(b"o-17"),
            None,
            emit("o-17", None),
        ),
        (
            "the key comes from the value, not the record key",
            Some(b"something-else"),
            Some(order("o-19", "PLACED")),
            emit("o-19", Some(open_row("PLACED"))),
        ),
        (
            "a record without a key is addressed by its value",
            None,
            Some(order("o-20", "PAID")),
            emit("o-20", Some(open_row("PAID"))),
        ),
    ];
    for (name, key, value, expected) in cases {
        assert_eq!(
            cache.apply(key, value.as_ref()).unwrap(),
            expected,
            "{name}"
        );
    }
}

#[test]
fn rows_follow_output_schema_field_order() {
    let cache = compile(&retail_product("open-orders-cache"));
    let emitted = cache
        .apply(None, Some(&order("o-1", "PLACED")))
        .unwrap()
        .unwrap();
    let names: Vec<&str> = emitted
        .row
        .as_ref()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, ["status", "amount", "currency"]);
}

/// Folds records into a target the way a sink would: the oracle of "upsert means a
/// materialized view".
fn materialize(
    product: &CompiledProduct,
    records: &[(Option<&str>, Option<Value>)],
) -> BTreeMap<String, Value> {
    let mut target = BTreeMap::new();
    for (key, value) in records {
        match product
            .apply(key.map(str::as_bytes), value.as_ref())
            .unwrap()
        {
            Some(Emit {
                key,
                row: Some(row),
            }) => {
                target.insert(key, Value::Object(row));
            }
            Some(Emit { key, row: None }) => {
                target.remove(&key);
            }
            None => {}
        }
    }
    target
}

#[test]
fn the_target_holds_each_keys_latest_record() {
    let cache = compile(&retail_product("open-orders-cache"));
    let records = [
        (Some("o-1"), Some(order("o-1", "PLACED"))),
        (Some("o-2"), Some(order("o-2", "PLACED"))),
        (Some("o-3"), Some(order("o-3", "PLACED"))),
        (Some("o-1"), Some(order("o-1", "PAID"))),
        (Some("o-2"), Some(order("o-2", "SHIPPED"))),
        (Some("o-3"), None),
        (Some("o-4"), Some(order("o-4", "CANCELLED"))),
        (Some("o-5"), Some(order("o-5", "SHIPPED"))),
        (Some("o-5"), Some(order("o-5", "PLACED"))),
    ];
    let target = materialize(&cache, &records);
    let expected: BTreeMap<String, Value> = [
        (
            "o-1",
            json!({"status": "PAID", "amount": 12.5, "currency": "EUR"}),
        ),
        (
            "o-5",
            json!({"status": "PLACED", "amount": 12.5, "currency": "EUR"}),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(target, expected);
}

fn by_customer_and_order() -> Value {
    product(json!({
        "sources": [{"name": "o", "dataset": "shop.orders"}],
        "key": r#"o.customer_id + ":" + o.id"#,
        "filter": r#"o.status != "CANCELLED""#,
        "fields": {"order_id": "o.id", "status": "o.status"},
        "target": {"cluster": "shared-pg", "name": "by_customer", "mode": "upsert"},
    }))
}

#[test]
fn a_computed_key_is_evaluated_and_tombstones_address_nothing() {
    let p = compile(&by_customer_and_order());
    assert_eq!(
        p.apply(Some(b"o-17"), Some(&order("o-17", "PLACED")))
            .unwrap(),
        emit(
            "c-1:o-17",
            Some(json!({"order_id": "o-17", "status": "PLACED"}))
        )
    );
    assert_eq!(
        p.apply(Some(b"o-17"), Some(&order("o-17", "CANCELLED")))
            .unwrap(),
        emit("c-1:o-17", None)
    );
    assert_eq!(p.apply(Some(b"o-17"), None).unwrap(), None);
}

#[test]
fn integer_keys_are_decimal_text_and_tombstone_keys_are_parsed() {
    let p = compile(&events(
        json!({"n": "e.n", "label": "e.label"}),
        "e.n",
        None,
    ));
    let emitted = p.apply(Some(b"7"), Some(&event())).unwrap().unwrap();
    assert_eq!(emitted.key, "7");
    assert_eq!(p.apply(Some(b"7"), None).unwrap(), emit("7", None));
    assert_eq!(p.apply(Some(b"-0042"), None).unwrap(), emit("-42", None));
    let mut whole_double = event();
    whole_double["n"] = json!(7.0);
    assert_eq!(
        p.apply(None, Some(&whole_double)).unwrap().unwrap().key,
        "7"
    );
}

#[test]
fn a_computed_integer_key_is_text() {
    let p = compile(&events(json!({"label": "e.label"}), "e.n * 10", None));
    let emitted = p.apply(None, Some(&event())).unwrap().unwrap();
    assert_eq!(emitted.key, "70");
    assert_eq!(p.apply(Some(b"7"), None).unwrap(), None);
}

#[test]
fn the_source_key_decides_which_tombstones_are_addressable() {
    let on_id = || compile(&retail_product("open-orders-cache"));
    let by_customer = product(json!({
        "sources": [{"name": "o", "dataset": "shop.orders"}],
        "key": "o.customer_id",
        "fields": {"customer_id": "o.customer_id", "last_order": "o.id"},
        "target": {"cluster": "shared-pg", "name": "last_orders", "mode": "upsert"},
    }));
    let cases: Vec<(&str, CompiledProduct, Option<Emit>)> = vec![
        ("assumed: a top-level key field", on_id(), emit("o-9", None)),
        (
            "stated: the key field",
            on_id().with_source_key(Some("id")),
            emit("o-9", None),
        ),
        (
            "stated: another key field",
            compile(&by_customer).with_source_key(Some("id")),
            None,
        ),
        ("stated: no key field", on_id().with_source_key(None), None),
    ];
    for (name, p, expected) in cases {
        assert_eq!(p.apply(Some(b"o-9"), None).unwrap(), expected, "{name}");
    }
}

#[test]
fn a_filter_reading_a_field_the_record_lacks_is_a_record_error() {
    let cache = compile(&retail_product("open-orders-cache"));
    let mut no_status = order("o-1", "PLACED");
    no_status.as_object_mut().unwrap().remove("status");
    let err = cache.apply(None, Some(&no_status)).unwrap_err();
    assert!(
        err.reason().starts_with("filter `o.status =="),
        "{}",
        err.reason()
    );
}
