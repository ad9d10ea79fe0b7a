//! What the controller reads from the catalog for a product: the datasets and target
//! cluster its spec names, and the output schema that spec derives — the same validation the
//! API ran when the spec was applied, so a catalog changed since then is noticed.

use chrono::Utc;
use serde_json::Value;
use sluice_schemas::output::OutputSchema;
use sluice_schemas::validate::{self, CatalogDataset, Context};
use sluice_schemas::{DataProduct, Document, TargetClusterSpec};
use sluice_store::{ObjectKey, Store, StoreError};

/// Why the catalog cannot serve a product.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored catalog entry does not decode (the database was altered outside Sluice).
    #[error("stored {what} does not decode: {source}")]
    Corrupt {
        /// What was read.
        what: String,
        /// Why it does not decode.
        #[source]
        source: serde_json::Error,
    },
    /// The spec no longer validates against the catalog.
    #[error("the spec no longer validates: {0}")]
    Invalid(String),
}

/// Loads the catalog entries `document` refers to.
pub async fn context_for(store: &Store, document: &Document) -> Result<Context, CatalogError> {
    let refs = validate::references(document);
    let mut ctx = Context::new(Utc::now().date_naive());
    for name in refs.datasets {
        if let Some(object) = store.get(&ObjectKey::dataset(&name)).await? {
            let spec = decode(object.spec.clone(), || format!("dataset {name}"))?;
            let owner = object
                .metadata
                .get("owner")
                .and_then(Value::as_str)
                .map(str::to_owned);
            ctx = ctx.with_dataset(name, CatalogDataset { owner, spec });
        }
    }
    for name in refs.clusters {
        if let Some(object) = store.get(&ObjectKey::target_cluster(&name)).await? {
            let spec: TargetClusterSpec =
                decode(object.spec.clone(), || format!("target cluster {name}"))?;
            ctx = ctx.with_cluster(name, spec);
        }
    }
    Ok(ctx)
}

/// A product whose spec is `spec` (an approved spec, not necessarily the stored one), with
/// its output schema and the catalog it was validated against.
#[derive(Debug, Clone)]
pub struct ResolvedProduct {
    /// The product with `spec`.
    pub product: DataProduct,
    /// Its derived output schema.
    pub output: OutputSchema,
    /// The catalog entries it refers to.
    pub context: Context,
}

/// Validates `spec` as the spec of the product whose stored document is `document` and
/// derives its output schema.
pub async fn resolve(
    store: &Store,
    document: &Value,
    spec: &Value,
) -> Result<ResolvedProduct, CatalogError> {
    let mut document = document.clone();
    if let Some(map) = document.as_object_mut() {
        map.remove("status");
        map.insert("spec".to_owned(), spec.clone());
    }
    let document = validate::structure(&document).map_err(|problems| {
        CatalogError::Invalid(
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let context = context_for(store, &document).await?;
    let output = validate::semantics(&document, &context).map_err(|problems| {
        CatalogError::Invalid(
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    match (document, output) {
        (Document::DataProduct(product), Some(output)) => Ok(ResolvedProduct {
            product,
            output,
            context,
        }),
        _ => Err(CatalogError::Invalid("not a data product".to_owned())),
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    value: Value,
    what: impl FnOnce() -> String,
) -> Result<T, CatalogError> {
    serde_json::from_value(value).map_err(|source| CatalogError::Corrupt {
        what: what(),
        source,
    })
}
