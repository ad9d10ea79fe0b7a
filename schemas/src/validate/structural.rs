//! The structural layer: a document against the published JSON Schema of its kind.

use std::sync::LazyLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use super::{Problem, escape_pointer, shorten};
use crate::published::json_schema;
use crate::{DataProduct, Dataset, Document, Kind, TargetCluster};

static VALIDATORS: LazyLock<[Validator; 3]> = LazyLock::new(|| {
    Kind::ALL.map(|kind| {
        jsonschema::draft202012::new(&json_schema(kind))
            .expect("the published schemas are valid JSON Schemas (tested)")
    })
});

fn validator(kind: Kind) -> &'static Validator {
    let index = Kind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_default();
    &VALIDATORS[index]
}

/// Checks the shape of `value` (status, if present, is ignored) and returns the typed
/// document, or every structural problem found.
pub fn structure(value: &Value) -> Result<Document, Vec<Problem>> {
    let Some(object) = value.as_object() else {
        return Err(vec![Problem::new(
            "",
            "a document must be a mapping with apiVersion, kind, metadata and spec",
        )]);
    };
    let kind = match object.get("kind") {
        None => {
            return Err(vec![Problem::new(
                "/kind",
                "is required: one of Dataset, TargetCluster, DataProduct",
            )]);
        }
        Some(Value::String(k)) => match k.as_str() {
            "Dataset" => Kind::Dataset,
            "TargetCluster" => Kind::TargetCluster,
            "DataProduct" => Kind::DataProduct,
            other => {
                return Err(vec![Problem::new(
                    "/kind",
                    format!(
                        "unknown kind `{}`; expected Dataset, TargetCluster or DataProduct",
                        shorten(other)
                    ),
                )]);
            }
        },
        Some(_) => {
            return Err(vec![Problem::new(
                "/kind",
                "must be a string: Dataset, TargetCluster or DataProduct",
            )]);
        }
    };
    let mut input = value.clone();
    if let Some(object) = input.as_object_mut() {
        object.remove("status");
    }
    let mut problems: Vec<Problem> = validator(kind)
        .iter_errors(&input)
        .flat_map(|e| to_problems(&e))
        .collect();
    if !problems.is_empty() {
        problems.sort_by(|a, b| a.pointer.cmp(&b.pointer).then(a.message.cmp(&b.message)));
        problems.dedup();
        return Err(problems);
    }
    let typed = match kind {
        Kind::Dataset => typed::<Dataset>(input).map(Document::Dataset),
        Kind::TargetCluster => typed::<TargetCluster>(input).map(Document::TargetCluster),
        Kind::DataProduct => typed::<DataProduct>(input).map(Document::DataProduct),
    };
    typed.map_err(|p| vec![p])
}

/// Converts a structurally valid document into its type; what the JSON Schema cannot say
/// (e.g. a number too large for its field) is reported at its path.
fn typed<T: serde::de::DeserializeOwned>(input: Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(input).map_err(|e| {
        let pointer: String = e
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Some(format!("/{index}")),
                serde_path_to_error::Segment::Map { key } => {
                    Some(format!("/{}", escape_pointer(key)))
                }
                serde_path_to_error::Segment::Enum { variant } => {
                    Some(format!("/{}", escape_pointer(variant)))
                }
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        Problem::new(pointer, shorten(&e.into_inner().to_string()))
    })
}

fn to_problems(error: &ValidationError<'_>) -> Vec<Problem> {
    let at = error.instance_path().as_str().to_owned();
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => unexpected
            .iter()
            .map(|field| {
                Problem::new(
                    format!("{at}/{}", escape_pointer(field)),
                    "unknown field; check the spelling against the published schema",
                )
            })
            .collect(),
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            vec![Problem::new(
                format!("{at}/{}", escape_pointer(name)),
                "is required",
            )]
        }
        ValidationErrorKind::AnyOf { context } => {
            // An output field is either an expression string or `{expr, type}`: report the
            // problems of the alternative whose shape the value has.
            let best = context.iter().find(|branch| {
                !branch.iter().any(|e| {
                    matches!(e.kind(), ValidationErrorKind::Type { .. })
                        && e.instance_path().as_str() == at
                })
            });
            match best {
                Some(branch) if !branch.is_empty() => branch.iter().flat_map(to_problems).collect(),
                _ if at.starts_with("/spec/fields/") => vec![Problem::new(
                    at,
                    "must be a CEL expression (a string) or a mapping {expr, type}",
                )],
                _ => {
                    let first = context.first().and_then(|branch| branch.first());
                    let message = first.map_or_else(
                        || "has the wrong type".to_owned(),
                        |e| format!("has the wrong type: {}", e.masked()),
                    );
                    vec![Problem::new(at, message)]
                }
            }
        }
        ValidationErrorKind::Type { .. } => {
            vec![Problem::new(
                at,
                format!("has the wrong type: {}", error.masked()),
            )]
        }
        _ => vec![Problem::new(at, shorten(&error.masked().to_string()))],
    }
}
