//! The JSON Schemas Sluice publishes for its documents, generated from the Rust types.
//!
//! The same schemas validate documents structurally on the server, are committed under
//! `schemas/json/` for editors (a test fails when they drift from the types) and are served
//! by the API.

use schemars::generate::SchemaSettings;
use serde_json::Value;

use crate::{DataProduct, Dataset, Kind, TargetCluster};

/// The base of the `$id` of every published schema.
pub const SCHEMA_ID_BASE: &str = "https://sluice.dev/schemas/v1alpha1/";

/// The file name a kind's schema is published under, e.g. `dataproduct.schema.json`.
pub fn file_name(kind: Kind) -> String {
    format!("{}.schema.json", kind.as_str().to_ascii_lowercase())
}

/// The JSON Schema (draft 2020-12) of a document of `kind`.
pub fn json_schema(kind: Kind) -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let schema = match kind {
        Kind::Dataset => generator.into_root_schema_for::<Dataset>(),
        Kind::TargetCluster => generator.into_root_schema_for::<TargetCluster>(),
        Kind::DataProduct => generator.into_root_schema_for::<DataProduct>(),
    };
    let mut value = schema.to_value();
    if let Some(object) = value.as_object_mut() {
        let id = Value::String(format!("{SCHEMA_ID_BASE}{}", file_name(kind)));
        // `$id` goes first so a reader sees at once what the file is.
        let mut ordered = serde_json::Map::new();
        if let Some(s) = object.remove("$schema") {
            ordered.insert("$schema".into(), s);
        }
        ordered.insert("$id".into(), id);
        ordered.extend(std::mem::take(object));
        *object = ordered;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed schemas under `schemas/json/` must equal what the types generate.
    /// Regenerate with `SLUICE_UPDATE_SCHEMAS=1 cargo test -p sluice-schemas published`.
    #[test]
    fn committed_schemas_match_the_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("json");
        let update = std::env::var_os("SLUICE_UPDATE_SCHEMAS").is_some();
        let mut drifted = Vec::new();
        for kind in Kind::ALL {
            let path = dir.join(file_name(kind));
            let generated = serde_json::to_string_pretty(&json_schema(kind)).unwrap() + "\n";
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &generated).unwrap();
                continue;
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            if committed != generated {
                drifted.push(path.display().to_string());
            }
        }
        assert!(
            drifted.is_empty(),
            "published schemas differ from the types: {drifted:?}; \
             run `SLUICE_UPDATE_SCHEMAS=1 cargo test -p sluice-schemas published` and commit"
        );
    }

    #[test]
    fn schemas_are_valid_draft_2020_12() {
        for kind in Kind::ALL {
            let schema = json_schema(kind);
            jsonschema::draft202012::meta::validate(&schema).unwrap();
            assert_eq!(schema["properties"]["kind"]["const"], kind.as_str());
        }
    }
}
