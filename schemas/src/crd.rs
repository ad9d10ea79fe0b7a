//! Kubernetes mode: the custom resources `Dataset`, `TargetCluster` and `DataProduct`
//! (`sluice.dev/v1alpha1`) and their CustomResourceDefinitions.
//!
//! The resources are derived (kube's `CustomResource`) from the same spec types the API
//! takes, and so is their OpenAPI schema: the JSON Schema of those types is rewritten into a
//! Kubernetes *structural* schema, which the API server then enforces on every object.
//! What a structural schema cannot say (a field that is either a string or an object, the
//! JSON Schema of a dataset's records, per-target options) is kept as
//! `x-kubernetes-preserve-unknown-fields` and checked by Sluice's own validation when the
//! controller takes the object in, with the error reported on the object's status.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::status::{Approval, Condition, Phase, SourceProgress};

pub use crate::dataset::DatasetResource;
pub use crate::product::DataProductResource;
pub use crate::target_cluster::TargetClusterResource;

/// The API group of Sluice's custom resources.
pub const GROUP: &str = "sluice.dev";

/// The namespace label naming the team a namespace belongs to; without it, the namespace's
/// name is the team.
pub const TEAM_LABEL: &str = "sluice.dev/team";

/// The status of a `DataProduct` custom resource: what `kubectl get` and `describe` show.
///
/// A subset of the product's status in Sluice's metadata store (the source of truth),
/// copied there by the controller after every change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeProductStatus {
    /// The lifecycle phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The `metadata.generation` of the object that Sluice last took in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Backfill progress over all sources (`42%`), `100%` once live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Conditions, one per type (`Approved`, `TopicsReady`, `TargetReady`, `JobRunning`,
    /// `BackfillComplete`, `Ready`, `Accepted`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Backfill progress per source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backfill: Vec<SourceProgress>,
    /// Live lag in milliseconds (event time to written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
    /// Records that went to the dead-letter topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letters: Option<u64>,
    /// A one-line summary for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The approval of the latest generation: who must approve, who did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// The output topic readers of Kafka use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Where readers find the rows: the view, alias or key prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The reader's user or role in the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader: Option<String>,
}

/// The status of a `Dataset` or `TargetCluster` custom resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeStatus {
    /// The `metadata.generation` of the object that Sluice last took in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions; `Ready` says whether Sluice accepted the object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// A one-line summary for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The three CustomResourceDefinitions, in the order they are installed.
pub fn definitions() -> Vec<CustomResourceDefinition> {
    vec![
        with_schema::<crate::DatasetSpec, KubeStatus>(
            DatasetResource::crd(),
            "An event stream in the catalog, with its schema.",
        ),
        with_schema::<crate::TargetClusterSpec, KubeStatus>(
            TargetClusterResource::crd(),
            "A store the platform lets Sluice provision into.",
        ),
        with_schema::<crate::DataProductSpec, KubeProductStatus>(
            DataProductResource::crd(),
            "What a team asks for: sources, joins, filter, shape and target.",
        ),
    ]
}

/// The file a definition is written to by `sluice crd`: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// A definition as the YAML `sluice crd` writes, with a header saying where it comes from.
///
/// Keys and list items that YAML 1.1 reads as booleans (`on`, `yes`, ...) are quoted: kubectl's parser is
/// YAML 1.1, and the join condition `on` would otherwise arrive as `true`.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    let yaml = serde_yaml::to_string(crd)?;
    let mut text =
        String::from("# Generated by `sluice crd` from the Rust types in schemas/; do not edit.\n");
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        let body = &line[indent..];
        if let Some(item) = body.strip_prefix("- ")
            && yaml11_boolean(item)
        {
            text.push_str(&format!("{}- \"{item}\"\n", &line[..indent]));
            continue;
        }
        match body.split_once(':') {
            Some((key, rest))
                if (rest.is_empty() || rest.starts_with(' ')) && yaml11_boolean(key) =>
            {
                text.push_str(&format!("{}\"{key}\":{rest}\n", &line[..indent]));
            }
            _ => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    Ok(text)
}

/// Whether YAML 1.1 reads `word` as a boolean.
fn yaml11_boolean(word: &str) -> bool {
    matches!(
        word.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false"
    )
}

/// Fills in the version's OpenAPI schema from the spec and status types.
fn with_schema<S: JsonSchema, T: JsonSchema>(
    mut crd: CustomResourceDefinition,
    description: &str,
) -> CustomResourceDefinition {
    let root = json!({
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": structural(&json_schema_of::<S>()),
            "status": structural(&json_schema_of::<T>()),
        }
    });
    // The rewrite only ever produces JSONSchemaProps' own fields, so this cannot fail
    // unless a new kind of schema node appears; the CRD tests catch that at build time.
    let props: Option<JSONSchemaProps> = serde_json::from_value(root).ok();
    for version in &mut crd.spec.versions {
        version.schema = Some(
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceValidation {
                open_api_v3_schema: props.clone(),
            },
        );
    }
    crd
}

/// The JSON Schema of `T` with every subschema inlined.
fn json_schema_of<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    generator.into_root_schema_for::<T>().to_value()
}

/// Integer formats Kubernetes knows; schemars' unsigned ones map onto them.
fn kube_format(format: &str) -> Option<&'static str> {
    match format {
        "int32" | "uint8" | "uint16" | "int8" | "int16" => Some("int32"),
        "int64" | "uint32" | "uint64" | "int" | "uint" => Some("int64"),
        "double" => Some("double"),
        "float" => Some("float"),
        "date" => Some("date"),
        "date-time" => Some("date-time"),
        "uri" => Some("uri"),
        "email" => Some("email"),
        "uuid" => Some("uuid"),
        _ => None,
    }
}

/// Rewrites a JSON Schema (draft 2020-12, inlined) into a Kubernetes structural schema.
///
/// - `type: [T, "null"]` and a `null` branch of `anyOf`/`oneOf` become `nullable: true`;
/// - a `oneOf` of string constants (an enum with documented variants) becomes `enum`;
/// - any other union, and objects of free form, become `x-kubernetes-preserve-unknown-fields`
///   (Sluice's own validation checks them);
/// - `const` becomes a one-value `enum`;
/// - what structural schemas forbid or Kubernetes ignores (`$schema`, `readOnly`,
///   `default`, `additionalProperties: false`, `uniqueItems`, unknown formats) is dropped.
///   Unknown fields are still refused: clients validate fields strictly by default.
pub fn structural(schema: &Value) -> Value {
    let Some(node) = schema.as_object() else {
        // `true` (anything) and `false` (nothing, never produced for our types).
        return json!({"x-kubernetes-preserve-unknown-fields": true});
    };
    let mut out = Map::new();
    if let Some(branches) = node
        .get("anyOf")
        .or_else(|| node.get("oneOf"))
        .and_then(Value::as_array)
    {
        let (nulls, others): (Vec<&Value>, Vec<&Value>) =
            branches.iter().partition(|b| is_null_schema(b));
        if let [only] = others.as_slice() {
            out = structural(only).as_object().cloned().unwrap_or_default();
        } else if let Some(values) = string_constants(&others) {
            out.insert("type".into(), json!("string"));
            out.insert("enum".into(), Value::Array(values));
        } else {
            out.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
        }
        if !nulls.is_empty() {
            out.insert("nullable".into(), json!(true));
        }
    }
    for (key, value) in node {
        match key.as_str() {
            "anyOf" | "oneOf" | "$schema" | "$defs" | "definitions" | "readOnly" | "writeOnly"
            | "examples" | "default" | "$comment" | "$id" | "deprecated" | "uniqueItems" => {}
            "const" => {
                out.insert("enum".into(), json!([value]));
            }
            "type" => match value {
                Value::Array(types) => {
                    let real: Vec<&Value> = types
                        .iter()
                        .filter(|t| t.as_str() != Some("null"))
                        .collect();
                    if real.len() < types.len() {
                        out.insert("nullable".into(), json!(true));
                    }
                    match real.as_slice() {
                        [only] => {
                            out.insert("type".into(), (*only).clone());
                        }
                        _ => {
                            out.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
                        }
                    }
                }
                other => {
                    out.insert("type".into(), other.clone());
                }
            },
            "enum" => {
                let values: Vec<Value> = value
                    .as_array()
                    .map(|v| v.iter().filter(|x| !x.is_null()).cloned().collect())
                    .unwrap_or_default();
                if values.len() < value.as_array().map_or(0, Vec::len) {
                    out.insert("nullable".into(), json!(true));
                }
                out.insert("enum".into(), Value::Array(values));
            }
            "format" => {
                if let Some(format) = value.as_str().and_then(kube_format) {
                    out.insert("format".into(), json!(format));
                }
            }
            "properties" => {
                let props: Map<String, Value> = value
                    .as_object()
                    .map(|p| p.iter().map(|(k, v)| (k.clone(), structural(v))).collect())
                    .unwrap_or_default();
                out.insert("properties".into(), Value::Object(props));
            }
            "items" => {
                out.insert("items".into(), structural(value));
            }
            "additionalProperties" => match value {
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    out.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
                }
                schema => {
                    out.insert("additionalProperties".into(), structural(schema));
                }
            },
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    // An object with neither properties nor a value schema is free-form.
    if out.get("type").and_then(Value::as_str) == Some("object")
        && !out.contains_key("properties")
        && !out.contains_key("additionalProperties")
    {
        out.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
    }
    // Kubernetes wants a type on every node that does not preserve unknown fields.
    if !out.contains_key("type") && !out.contains_key("x-kubernetes-preserve-unknown-fields") {
        out.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
    }
    Value::Object(out)
}

fn is_null_schema(branch: &Value) -> bool {
    branch.get("type").and_then(Value::as_str) == Some("null")
        || branch.get("const") == Some(&Value::Null)
        || branch
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|values| values.iter().all(Value::is_null))
}

/// The values of a union whose every branch is string constants, if it is one.
fn string_constants(branches: &[&Value]) -> Option<Vec<Value>> {
    let mut values = Vec::new();
    for branch in branches {
        if let Some(value) = branch.get("const").filter(|v| v.is_string()) {
            values.push(value.clone());
        } else if let Some(many) = branch.get("enum").and_then(Value::as_array) {
            if !many.iter().all(Value::is_string) {
                return None;
            }
            values.extend(many.iter().cloned());
        } else {
            return None;
        }
    }
    Some(values)
}
