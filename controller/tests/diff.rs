//! Diffs of the retail example products against changed versions of themselves, each
//! change validated the way the API validates it and classed online, rebuild or destructive.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{context, retail};

use serde_json::{Value, json};
use sluice_controller::diff::{ChangeClass, SpecChange, diff_specs, requires_new_version};
use sluice_schemas::DataProductSpec;
use sluice_schemas::output::OutputSchema;
use sluice_schemas::validate::{semantics, structure};
use sluice_schemas::{DataProduct, Document};

/// A retail product with `change` applied to its document, validated, with its output.
fn validated(name: &str, change: impl FnOnce(&mut Value)) -> (DataProductSpec, OutputSchema) {
    let mut doc = retail("products.yaml")
        .into_iter()
        .find(|p| p["metadata"]["name"] == name)
        .unwrap();
    change(&mut doc);
    let document = structure(&doc).unwrap();
    let output = semantics(&document, &context())
        .unwrap_or_else(|problems| panic!("{problems:?}"))
        .unwrap();
    let Document::DataProduct(DataProduct { spec, .. }) = document else {
        panic!("{name} is not a product")
    };
    (spec, output)
}

/// The changes from the retail product `name` to the same product changed by `change`.
fn diff(name: &str, change: impl FnOnce(&mut Value)) -> Vec<SpecChange> {
    let (old, old_output) = validated(name, |_| {});
    let (new, new_output) = validated(name, change);
    diff_specs(&old, &old_output, &new, &new_output)
}

/// The (path, class) pairs of `changes`.
fn classes(changes: &[SpecChange]) -> Vec<(&str, ChangeClass)> {
    changes.iter().map(|c| (c.path.as_str(), c.class)).collect()
}

use ChangeClass::{Destructive, Online, Rebuild};

#[test]
fn the_same_spec_has_no_changes() {
    let changes = diff("orders-enriched", |_| {});
    assert_eq!(changes, []);
    assert!(!requires_new_version(&changes));
}

#[test]
fn a_new_nullable_field_and_metadata_are_online() {
    let changes = diff("orders-enriched", |doc| {
        let spec = &mut doc["spec"];
        // `status` is optional in shop.orders: the output field is nullable.
        spec["fields"]["status"] = json!("o.status");
        // Computed with a declared non-null type, but derived nullable.
        spec["fields"]["customer_tier"] = json!({"expr": "c.tier", "type": "string"});
        spec["fields"]["order_id"] = json!({"expr": "o.id", "description": "The order"});
        spec["deletionPolicy"] = json!("Retain");
        spec["slo"] = json!({"freshness": "5s"});
        spec["expires"] = json!("2027-06-30");
    });
    let mut want = vec![
        ("/fields/order_id", Online),
        ("/fields/status", Online),
        ("/fields/customer_tier", Online),
        ("/deletionPolicy", Online),
        ("/slo", Online),
        ("/expires", Online),
    ];
    want.sort_by_key(|(p, _)| *p);
    assert_eq!(sorted(classes(&changes)), want);
    assert!(!requires_new_version(&changes));
    let status = changes.iter().find(|c| c.path == "/fields/status").unwrap();
    assert!(status.description.contains("nullable"), "{status:?}");
}

fn sorted(mut pairs: Vec<(&str, ChangeClass)>) -> Vec<(&str, ChangeClass)> {
    pairs.sort_by_key(|(p, _)| *p);
    pairs
}

#[test]
fn redis_ttl_and_search_replicas_are_online() {
    let ttl = diff("open-orders-cache", |doc| {
        doc["spec"]["target"]["options"]["ttl"] = json!("30d");
    });
    assert_eq!(classes(&ttl), [("/target/options/ttl", Online)]);
    let replicas = diff("order-search", |doc| {
        doc["spec"]["target"]["options"]["replicas"] = json!(1);
    });
    assert_eq!(classes(&replicas), [("/target/options/replicas", Online)]);
    assert!(!requires_new_version(&replicas));
}

#[test]
fn a_new_field_that_is_never_null_needs_a_rebuild() {
    // `customer_id` is required in shop.orders, and `o` drives the product.
    let changes = diff("orders-enriched", |doc| {
        doc["spec"]["fields"]["customer_id"] = json!("o.customer_id");
    });
    assert_eq!(classes(&changes), [("/fields/customer_id", Rebuild)]);
    assert!(requires_new_version(&changes));
}

#[test]
fn types_expressions_and_the_pipeline_need_a_rebuild() {
    let changes = diff("orders-enriched", |doc| {
        let spec = &mut doc["spec"];
        spec["fields"]["amount_cents"] = json!({"expr": "o.amount * 100.0", "type": "number"});
        spec["fields"]["currency"] = json!("o.status");
        spec["filter"] = json!("o.status != \"CANCELLED\"");
        spec["sources"][0]["from"] = json!("30d");
        spec["joins"][1]["within"] = json!("2h");
    });
    assert_eq!(
        sorted(classes(&changes)),
        sorted(vec![
            ("/sources/0/from", Rebuild),
            ("/joins", Rebuild),
            ("/filter", Rebuild),
            ("/fields/currency", Rebuild),
            ("/fields/amount_cents", Rebuild),
        ])
    );
    let cents = changes
        .iter()
        .find(|c| c.path == "/fields/amount_cents")
        .unwrap();
    assert!(cents.description.contains("number"), "{cents:?}");
    assert!(requires_new_version(&changes));
}

#[test]
fn key_mode_and_store_options_need_a_rebuild() {
    let key = diff("open-orders-cache", |doc| {
        doc["spec"]["key"] = json!("o.customer_id");
    });
    assert_eq!(classes(&key), [("/key", Rebuild)]);
    let append = diff("orders-enriched", |doc| {
        doc["spec"]["target"]["mode"] = json!("append");
    });
    assert_eq!(classes(&append), [("/target/mode", Rebuild)]);
    let shards = diff("order-search", |doc| {
        doc["spec"]["target"]["options"]["shards"] = json!(3);
    });
    assert_eq!(classes(&shards), [("/target/options/shards", Rebuild)]);
    let encoding = diff("open-orders-cache", |doc| {
        doc["spec"]["target"]["options"]["type"] = json!("json");
    });
    assert_eq!(classes(&encoding), [("/target/options/type", Rebuild)]);
    let sources = diff("order-search", |doc| {
        doc["spec"]["sources"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "p", "dataset": "pay.payments"}));
        doc["spec"]["joins"].as_array_mut().unwrap().push(
            json!({"type": "window", "right": "p", "on": "o.id == p.order_id", "within": "1h"}),
        );
    });
    assert_eq!(
        classes(&sources),
        [("/sources/2", Rebuild), ("/joins", Rebuild)]
    );
}

#[test]
fn removed_or_renamed_fields_and_a_new_stable_name_are_destructive() {
    let changes = diff("orders-enriched", |doc| {
        let fields = doc["spec"]["fields"].as_object_mut().unwrap();
        fields.remove("customer_name");
        fields.remove("currency");
        fields.insert("currency_code".to_owned(), json!("o.currency"));
    });
    assert_eq!(
        classes(&changes),
        [
            ("/fields/currency", Destructive),
            ("/fields/customer_name", Destructive)
        ]
    );
    assert!(
        changes[0]
            .description
            .contains("renamed to `currency_code`"),
        "{changes:?}"
    );
    assert!(requires_new_version(&changes));

    let renamed = diff("orders-enriched", |doc| {
        doc["spec"]["target"]["name"] = json!("paid_orders");
    });
    assert_eq!(classes(&renamed), [("/target/name", Destructive)]);
    assert!(renamed[0].description.contains("orders_enriched"));

    let moved = diff("orders-enriched", |doc| {
        doc["spec"]["target"]["cluster"] = json!("shared-redis");
    });
    assert_eq!(classes(&moved), [("/target/cluster", Destructive)]);

    let upsert = {
        let (mut old, old_output) = validated("orders-enriched", |_| {});
        old.target.mode = sluice_schemas::WriteMode::Append;
        let (new, new_output) = validated("orders-enriched", |_| {});
        diff_specs(&old, &old_output, &new, &new_output)
    };
    assert_eq!(classes(&upsert), [("/target/mode", Destructive)]);
}

#[test]
fn changes_serialize_in_camel_case() {
    let changes = diff("orders-enriched", |doc| {
        doc["spec"]["target"]["name"] = json!("paid_orders");
    });
    let json = serde_json::to_value(&changes).unwrap();
    assert_eq!(json[0]["class"], "destructive");
    assert_eq!(json[0]["path"], "/target/name");
}
