//! Unit tests of the transformation. Output schemas are derived by the real validator from
//! the retail example catalog (plus a test dataset), so the tests exercise the same inputs a
//! job gets; expected rows are written out by hand.

mod append;
mod errors;
mod joins;
mod types;
mod upsert;

use chrono::NaiveDate;
use serde_json::{Map, Value, json};
use sluice_schemas::output::OutputSchema;
use sluice_schemas::validate::{CatalogDataset, Context, parse_documents, structure, validate};
use sluice_schemas::{DataProductSpec, Document};

use super::{CompiledProduct, Emit, TransformError};

/// A dataset with every field type, keyed by an integer.
const EVENTS: &str = r#"
apiVersion: sluice.dev/v1alpha1
kind: Dataset
metadata: {name: test.events, owner: team-shop}
spec:
  topic: test.events
  kind: stream
  key: n
  classification: internal
  compatibility: BACKWARD
  schema:
    type: object
    required: [n, at, flag]
    properties:
      n: {type: integer}
      score: {type: number}
      at: {type: string, format: date-time}
      flag: {type: boolean}
      label: {type: string}
      note: {type: [string, "null"]}
      tags: {type: array, items: {type: string}}
      meta:
        type: object
        required: [city]
        properties:
          city: {type: string}
          zip: {type: string}
"#;

/// A table keyed by an integer, for lookups from `test.events`.
const LABELS: &str = r#"
apiVersion: sluice.dev/v1alpha1
kind: Dataset
metadata: {name: test.labels, owner: team-shop}
spec:
  topic: test.labels
  kind: table
  key: n
  classification: internal
  compatibility: BACKWARD
  schema:
    type: object
    required: [n]
    properties:
      n: {type: integer}
      label: {type: string}
      weight: {type: number}
"#;

fn retail(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/retail")
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "${SLUICE_TEST_POSTGRES_URL}",
            "postgres://u:p@127.0.0.1:5432/db",
        )
        .replace("${SLUICE_TEST_OPENSEARCH_URL}", "http://127.0.0.1:9200")
        .replace("${SLUICE_TEST_REDIS_URL}", "redis://u:p@127.0.0.1:6379/0")
}

fn catalog() -> Context {
    let mut ctx = Context::new(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap());
    let text = [
        retail("datasets.yaml"),
        retail("targets.yaml"),
        EVENTS.to_owned(),
        LABELS.to_owned(),
    ]
    .join("\n---\n");
    for doc in parse_documents(text.as_bytes()).unwrap() {
        match structure(&doc).unwrap() {
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

/// The spec and derived output schema of a product document, validated against the catalog.
fn validated(doc: &Value) -> (DataProductSpec, OutputSchema) {
    match validate(doc, &catalog()) {
        Ok((Document::DataProduct(p), Some(output))) => (p.spec, output),
        other => panic!("not a valid product: {other:?}"),
    }
}

/// A product document with `spec`.
fn product(spec: Value) -> Value {
    json!({
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "DataProduct",
        "metadata": {"name": "t", "team": "team-shop"},
        "spec": spec,
    })
}

/// The retail example product `name`.
fn retail_product(name: &str) -> Value {
    parse_documents(retail("products.yaml").as_bytes())
        .unwrap()
        .into_iter()
        .find(|p| p["metadata"]["name"] == name)
        .unwrap()
}

fn compile(doc: &Value) -> CompiledProduct {
    let (spec, output) = validated(doc);
    CompiledProduct::compile(&spec, &output).unwrap()
}

/// A product over `test.events` (alias `e`) with these fields, key and filter, upserted
/// into Postgres.
fn events(fields: Value, key: &str, filter: Option<&str>) -> Value {
    let mut spec = json!({
        "sources": [{"name": "e", "dataset": "test.events"}],
        "key": key,
        "fields": fields,
        "target": {"cluster": "shared-pg", "name": "events", "mode": "upsert"},
    });
    if let Some(filter) = filter {
        spec["filter"] = json!(filter);
    }
    product(spec)
}

/// A full `test.events` record.
fn event() -> Value {
    json!({
        "n": 7,
        "score": 2.5,
        "at": "2026-03-01T10:00:00+01:00",
        "flag": true,
        "label": "seven",
        "note": null,
        "tags": ["a", "b"],
        "meta": {"city": "Ghent", "zip": "9000"},
    })
}

fn row(value: Value) -> Option<Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        other => panic!("not an object: {other}"),
    }
}

fn emit(key: &str, value: Option<Value>) -> Option<Emit> {
    Some(Emit {
        key: key.to_owned(),
        row: value.and_then(row),
    })
}

#[test]
fn compiled_products_and_errors_cross_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<CompiledProduct>();
    assert_send_sync::<super::RecordError>();
    assert_send_sync::<TransformError>();
}
