//! Validation of whole documents: the retail example passes and yields the expected output
//! schemas; each kind of mistake is reported at its path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use serde_json::{Value, json};
use sluice_schemas::validate::{
    CatalogDataset, Context, Problem, parse_documents, semantics, structure,
};
use sluice_schemas::{Document, FieldType};

fn retail(file: &str) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/retail")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace(
            "${SLUICE_TEST_POSTGRES_URL}",
            "postgres://u:p@127.0.0.1:5432/db",
        )
        .replace("${SLUICE_TEST_OPENSEARCH_URL}", "http://127.0.0.1:9200")
        .replace("${SLUICE_TEST_REDIS_URL}", "redis://u:p@127.0.0.1:6379/0");
    parse_documents(text.as_bytes()).unwrap()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
}

fn retail_context() -> Context {
    let mut ctx = Context::new(today());
    for doc in retail("datasets.yaml")
        .iter()
        .chain(retail("targets.yaml").iter())
    {
        match structure(doc).unwrap() {
            Document::Dataset(d) => {
                ctx = ctx.with_dataset(
                    d.metadata.name.clone(),
                    CatalogDataset {
                        owner: d.metadata.owner.clone(),
                        spec: d.spec,
                    },
                );
            }
            Document::TargetCluster(t) => ctx = ctx.with_cluster(t.metadata.name.clone(), t.spec),
            Document::DataProduct(_) => unreachable!(),
        }
    }
    ctx
}

fn retail_product(name: &str) -> Value {
    retail("products.yaml")
        .into_iter()
        .find(|p| p["metadata"]["name"] == name)
        .unwrap()
}

fn problems(doc: &Value) -> Vec<Problem> {
    match structure(doc) {
        Err(problems) => problems,
        Ok(document) => semantics(&document, &retail_context())
            .err()
            .unwrap_or_default(),
    }
}

fn assert_problem(doc: &Value, pointer: &str, fragment: &str) {
    let found = problems(doc);
    assert!(
        found
            .iter()
            .any(|p| p.pointer == pointer && p.message.contains(fragment)),
        "expected a problem at {pointer} containing {fragment:?}, got {found:#?}"
    );
}

#[test]
fn the_retail_example_is_valid() {
    let ctx = retail_context();
    for file in ["datasets.yaml", "targets.yaml", "products.yaml"] {
        for doc in retail(file) {
            let document = structure(&doc).unwrap_or_else(|p| panic!("{file}: {p:#?}"));
            semantics(&document, &ctx).unwrap_or_else(|p| panic!("{file}: {p:#?}"));
        }
    }
}

#[test]
fn output_schema_of_orders_enriched() {
    let doc = structure(&retail_product("orders-enriched")).unwrap();
    let output = semantics(&doc, &retail_context()).unwrap().unwrap();
    let types: Vec<(&str, FieldType, bool)> = output
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.field_type, f.nullable))
        .collect();
    assert_eq!(
        types,
        [
            ("order_id", FieldType::String, false),
            ("amount", FieldType::Number, false),
            ("currency", FieldType::String, true),
            // c is a left lookup join: a missing customer gives null.
            ("customer_name", FieldType::String, true),
            ("paid_at", FieldType::Timestamp, true),
            ("amount_cents", FieldType::Integer, true),
        ]
    );
    let key = output.key.as_ref().unwrap();
    assert_eq!(
        (key.field_type, key.field.as_deref()),
        (FieldType::String, Some("order_id"))
    );
    insta::assert_json_snapshot!(output.to_json_schema());
}

#[test]
fn pii_is_carried_into_the_output() {
    let mut doc = retail_product("orders-enriched");
    doc["spec"]["fields"]["email"] = json!("c.email");
    doc["spec"]["fields"]["contact"] =
        json!({"expr": "o.shipping_email + \"!\"", "type": "string"});
    let output = semantics(&structure(&doc).unwrap(), &retail_context())
        .unwrap()
        .unwrap();
    let pii: Vec<&str> = output
        .fields
        .iter()
        .filter(|f| f.pii)
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(pii, ["email", "contact"]);
}

#[test]
fn structural_mistakes_are_reported_at_their_path() {
    let mut doc = retail_product("orders-enriched");
    doc["spec"]["sources"][0]["nmae"] = json!("typo");
    doc["spec"]["target"]["mode"] = json!("merge");
    doc["spec"]["deletionPolicy"] = json!(3);
    let found = problems(&doc);
    let pointers: Vec<&str> = found.iter().map(|p| p.pointer.as_str()).collect();
    assert!(pointers.contains(&"/spec/sources/0/nmae"), "{found:#?}");
    assert!(pointers.contains(&"/spec/target/mode"), "{found:#?}");
    assert!(pointers.contains(&"/spec/deletionPolicy"), "{found:#?}");
}

#[test]
fn semantic_mistakes_are_reported_at_their_path() {
    let product = || retail_product("orders-enriched");

    let mut doc = product();
    doc["spec"]["sources"][1]["dataset"] = json!("crm.clients");
    assert_problem(&doc, "/spec/sources/1/dataset", "no dataset `crm.clients`");

    let mut doc = product();
    doc["spec"]["filter"] = json!("o.stauts == \"PAID\"");
    assert_problem(&doc, "/spec/filter", "no field `stauts`");

    let mut doc = product();
    doc["spec"]["filter"] = json!("x.amount > 1");
    assert_problem(&doc, "/spec/filter", "`x` is not a declared source");

    let mut doc = product();
    doc["spec"]["fields"]["amount"] = json!("o.amount +");
    assert_problem(&doc, "/spec/fields/amount", "CEL:");

    let mut doc = product();
    doc["spec"]["fields"]["total"] = json!("o.amount * 2.0");
    assert_problem(&doc, "/spec/fields/total", "needs a type");

    let mut doc = product();
    doc["spec"]["fields"]["amount"] = json!({"expr": "o.amount", "type": "string"});
    assert_problem(
        &doc,
        "/spec/fields/amount",
        "declared type string but `o.amount` is number",
    );

    let mut doc = product();
    doc["spec"].as_object_mut().unwrap().remove("key");
    assert_problem(&doc, "/spec/key", "required for upsert");

    let mut doc = product();
    doc["spec"]["joins"][1]
        .as_object_mut()
        .unwrap()
        .remove("within");
    assert_problem(&doc, "/spec/joins/1/within", "required for window joins");

    let mut doc = product();
    doc["spec"]["joins"][0]["on"] = json!("o.customer_id != c.id");
    assert_problem(&doc, "/spec/joins/0/on", "must compare one field");

    let mut doc = product();
    doc["spec"]["target"]["name"] = json!("orders; DROP TABLE x");
    assert_problem(&doc, "/spec/target/name", "is not allowed");

    let mut doc = product();
    doc["spec"]["target"]["cluster"] = json!("nowhere");
    assert_problem(&doc, "/spec/target/cluster", "no target cluster `nowhere`");

    let mut doc = product();
    doc["spec"]["sources"][0]["from"] = json!("last tuesday");
    assert_problem(&doc, "/spec/sources/0/from", "not a start position");

    let mut doc = product();
    doc["spec"]["expires"] = json!("2020-01-01");
    assert_problem(&doc, "/spec/expires", "in the past");

    let mut doc = product();
    doc["metadata"]["name"] = json!("Orders_Enriched");
    assert_problem(&doc, "/metadata/name", "DNS-1123");

    let mut doc = product();
    doc["spec"]["target"]["options"] = json!({"ttl": "7d"});
    assert_problem(
        &doc,
        "/spec/target/options/ttl",
        "postgres targets take no options",
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let mut doc = retail_product("orders-enriched");
    doc["spec"]["filter"] = json!("o.nope > 1");
    doc["spec"]["fields"]["x"] = json!("q.y");
    doc["spec"]["target"]["cluster"] = json!("nowhere");
    let found = problems(&doc);
    assert!(found.len() >= 3, "{found:#?}");
}

#[test]
fn dataset_mistakes_are_reported() {
    let mut doc = retail("datasets.yaml").remove(1);
    doc["spec"]["key"] = json!("customer_id");
    doc["metadata"].as_object_mut().unwrap().remove("owner");
    doc["spec"]["schema"]["properties"]["id"]["type"] = json!("strnig");
    let found = problems(&doc);
    let pointers: Vec<&str> = found.iter().map(|p| p.pointer.as_str()).collect();
    assert!(pointers.contains(&"/metadata/owner"), "{found:#?}");
    assert!(
        pointers.iter().any(|p| p.starts_with("/spec/schema")),
        "{found:#?}"
    );
}

#[test]
fn target_cluster_mistakes_are_reported() {
    let mut doc = retail("targets.yaml").remove(0);
    doc["spec"]["url"] = json!("mysql://x");
    doc["spec"]["isolation"] = json!("acl-prefix");
    let found = problems(&doc);
    let pointers: Vec<&str> = found.iter().map(|p| p.pointer.as_str()).collect();
    assert_eq!(pointers, ["/spec/url", "/spec/isolation"], "{found:#?}");
}
