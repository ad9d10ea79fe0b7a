//! The OpenAPI 3.1 document: paths from the handlers (utoipa-axum), document schemas from
//! the published JSON Schemas of `sluice-schemas`.

use serde_json::{Map, Value};
use sluice_schemas::{Kind, published};
use utoipa::OpenApi;

/// The static part of the document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice API",
        version = "v1alpha1",
        description = "Self-service data provisioning from event streams: datasets, target \
                       clusters and data products. Errors are application/problem+json \
                       (RFC 9457) with a JSON pointer for each invalid field."
    ),
    tags(
        (name = "session", description = "Who the caller is and how people sign in"),
        (name = "datasets", description = "The catalog of event streams and their schema versions"),
        (name = "targetclusters", description = "Stores Sluice may provision into"),
        (name = "products", description = "Data products: what teams ask for"),
        (name = "schemas", description = "The published JSON Schemas of the documents"),
        (name = "tokens", description = "API tokens (admins only)"),
        (name = "approvals", description = "Approving and rejecting products"),
        (name = "audit", description = "The hash-chained audit log (auditors and admins)"),
    )
)]
pub struct ApiDoc;

/// Finishes the generated document: adds the document schemas as components, with their
/// `$defs` hoisted next to them and references rewritten.
pub fn finish(openapi: utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(&openapi).unwrap_or_else(|_| Value::Object(Map::new()));
    let mut components = Map::new();
    for kind in Kind::ALL {
        let mut schema = published::json_schema(kind);
        if let Some(object) = schema.as_object_mut() {
            object.remove("$schema");
            object.remove("$id");
            if let Some(Value::Object(defs)) = object.remove("$defs") {
                for (name, def) in defs {
                    components.insert(name, def);
                }
            }
        }
        components.insert(kind.as_str().to_owned(), schema);
    }
    if let Some(root) = doc.as_object_mut() {
        let entry = root
            .entry("components")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(comp) = entry.as_object_mut() {
            let schemas = comp
                .entry("schemas")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(schemas) = schemas.as_object_mut() {
                schemas.extend(components);
            }
        }
    }
    rewrite_refs(&mut doc);
    doc
}

fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
            {
                *r = format!("#/components/schemas/{name}");
            }
            map.values_mut().for_each(rewrite_refs);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}
