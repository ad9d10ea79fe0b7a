//! Looking up field paths in a dataset's JSON Schema: existence, type, optionality, PII.

use serde_json::Value;

use crate::FieldType;

/// What a field path resolves to in a schema.
#[derive(Debug, Clone)]
pub(crate) struct Resolved<'a> {
    /// The subschema at the path.
    pub schema: &'a Value,
    /// Every step of the path is in its parent's `required` list.
    pub required: bool,
    /// The field, an ancestor, or (for objects) something below it is marked `x-pii`.
    pub pii: bool,
}

/// Resolves `path` (field names below the record) in `schema`.
pub(crate) fn resolve<'a>(schema: &'a Value, path: &[String]) -> Result<Resolved<'a>, String> {
    let mut current = schema;
    let mut required = true;
    let mut pii = is_pii(schema);
    for (i, segment) in path.iter().enumerate() {
        let Some(properties) = current.get("properties").and_then(Value::as_object) else {
            let parent = if i == 0 {
                "the record".to_owned()
            } else {
                format!("`{}`", path[..i].join("."))
            };
            return Err(format!("{parent} has no fields to select `{segment}` from"));
        };
        let Some(next) = properties.get(segment) else {
            let known: Vec<&str> = properties.keys().map(String::as_str).collect();
            let at = if i == 0 {
                String::new()
            } else {
                format!(" in `{}`", path[..i].join("."))
            };
            return Err(format!(
                "no field `{segment}`{at}; known fields: {}",
                known.join(", ")
            ));
        };
        let listed = current
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|v| v.as_str() == Some(segment)));
        required &= listed;
        pii |= is_pii(next);
        current = next;
    }
    Ok(Resolved {
        schema: current,
        required,
        pii: pii || contains_pii(current),
    })
}

fn is_pii(schema: &Value) -> bool {
    schema.get("x-pii").and_then(Value::as_bool) == Some(true)
}

/// Whether anything inside `schema` is marked `x-pii`.
pub(crate) fn contains_pii(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => {
            map.get("x-pii").and_then(Value::as_bool) == Some(true)
                || map.values().any(contains_pii)
        }
        Value::Array(items) => items.iter().any(contains_pii),
        _ => false,
    }
}

/// The Sluice type of a JSON Schema, and whether it admits null.
pub(crate) fn field_type(schema: &Value) -> Result<(FieldType, bool), String> {
    let (names, nullable): (Vec<&str>, bool) = match schema.get("type") {
        Some(Value::String(t)) => (vec![t.as_str()], false),
        Some(Value::Array(types)) => {
            let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            let nullable = names.contains(&"null");
            (
                names.into_iter().filter(|t| *t != "null").collect(),
                nullable,
            )
        }
        _ => return Err("has no `type` in the source schema".to_owned()),
    };
    let [name] = names.as_slice() else {
        return Err(format!("has several types ({})", names.join(", ")));
    };
    let is_date_time = schema.get("format").and_then(Value::as_str) == Some("date-time");
    let ty = match *name {
        "string" if is_date_time => FieldType::Timestamp,
        "string" => FieldType::String,
        "integer" => FieldType::Integer,
        "number" => FieldType::Number,
        "boolean" => FieldType::Boolean,
        "object" => FieldType::Object,
        "array" => FieldType::Array,
        other => return Err(format!("has the unsupported type `{other}`")),
    };
    Ok((ty, nullable))
}
