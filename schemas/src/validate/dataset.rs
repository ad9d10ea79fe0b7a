//! Semantic checks of a `Dataset`.

use serde_json::Value;

use super::{Problem, forbid_meta, shorten};
use crate::validate::fields::field_type;
use crate::{DatasetKind, DatasetSpec, FieldType, ObjectMeta, names};

pub(super) fn check(meta: &ObjectMeta, spec: &DatasetSpec, problems: &mut Vec<Problem>) {
    if !names::is_dataset_name(&meta.name) {
        problems.push(Problem::new(
            "/metadata/name",
            format!(
                "`{}` is not a catalog name: lowercase letters, digits, dots, dashes and underscores, \
                 starting and ending with a letter or digit, at most 128 characters",
                shorten(&meta.name)
            ),
        ));
    }
    if meta.owner.is_none() {
        problems.push(Problem::new(
            "/metadata/owner",
            "is required: the team that owns the dataset",
        ));
    }
    forbid_meta(
        meta,
        "team",
        "datasets have an owner, not a team; use metadata.owner",
        problems,
    );

    if let Err(e) = jsonschema::draft202012::meta::validate(&spec.schema) {
        problems.push(Problem::new(
            format!("/spec/schema{}", e.instance_path().as_str()),
            format!(
                "is not a valid JSON Schema (draft 2020-12): {}",
                shorten(&e.masked().to_string())
            ),
        ));
        return;
    }
    if spec.schema.get("type").and_then(Value::as_str) != Some("object") {
        problems.push(Problem::new(
            "/spec/schema/type",
            "must be `object`: records are JSON objects",
        ));
    }
    let properties = spec.schema.get("properties").and_then(Value::as_object);
    if properties.is_none_or(|p| p.is_empty()) {
        problems.push(Problem::new(
            "/spec/schema/properties",
            "must declare at least one field",
        ));
        return;
    }
    let property = |name: &str| properties.and_then(|p| p.get(name));

    match (&spec.key, spec.kind) {
        (None, DatasetKind::Table) => problems.push(Problem::new(
            "/spec/key",
            "is required for a table: the field whose latest record wins",
        )),
        (Some(key), _) => match property(key).map(field_type) {
            None => problems.push(Problem::new(
                "/spec/key",
                format!("no field `{key}` in the schema"),
            )),
            Some(Ok((FieldType::String | FieldType::Integer, _))) => {}
            Some(Ok((other, _))) => problems.push(Problem::new(
                "/spec/key",
                format!(
                    "field `{key}` is {}; a key must be a string or integer",
                    other.as_str()
                ),
            )),
            Some(Err(e)) => problems.push(Problem::new("/spec/key", format!("field `{key}` {e}"))),
        },
        (None, DatasetKind::Stream) => {}
    }
    if let Some(ts) = &spec.timestamp_field {
        match property(ts).map(field_type) {
            None => problems.push(Problem::new(
                "/spec/timestampField",
                format!("no field `{ts}` in the schema"),
            )),
            Some(Ok((FieldType::Timestamp | FieldType::Integer, _))) => {}
            Some(_) => problems.push(Problem::new(
                "/spec/timestampField",
                format!(
                    "field `{ts}` must be a string with format date-time or an integer (epoch milliseconds)"
                ),
            )),
        }
    }
}
