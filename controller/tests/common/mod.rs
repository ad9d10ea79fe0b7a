//! The retail example as the controller's tests read it: its documents, and the catalog
//! (datasets and target clusters) products are validated against.

#![allow(dead_code, clippy::unwrap_used)]

use chrono::NaiveDate;
use serde_json::Value;
use sluice_schemas::Document;
use sluice_schemas::validate::{CatalogDataset, Context, parse_documents, structure};

/// The documents of `examples/retail/<file>`, with placeholder target URLs.
pub fn retail(file: &str) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/retail")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace(
            "${SLUICE_TEST_POSTGRES_URL}",
            "postgres://u@127.0.0.1:5432/db",
        )
        .replace("${SLUICE_TEST_OPENSEARCH_URL}", "http://127.0.0.1:9200")
        .replace("${SLUICE_TEST_REDIS_URL}", "redis://127.0.0.1:6379/0");
    parse_documents(text.as_bytes()).unwrap()
}

/// The retail catalog on 2026-11-26.
pub fn context() -> Context {
    let mut ctx = Context::new(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap());
    for doc in retail("datasets.yaml")
        .iter()
        .chain(&retail("targets.yaml"))
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
