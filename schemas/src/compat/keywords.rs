//! Keyword classes: annotations, keywords the comparison understands, keywords that open an
//! object schema to undeclared properties, and trivially-true schemas.

use serde_json::Value;

/// Keywords without effect on which instances are valid.
pub(super) fn is_annotation(keyword: &str) -> bool {
    keyword.starts_with("x-")
        || matches!(
            keyword,
            "title"
                | "description"
                | "$comment"
                | "examples"
                | "default"
                | "deprecated"
                | "readOnly"
                | "writeOnly"
                | "$defs"
                | "definitions"
        )
}

/// Keywords this module reasons about.
pub(super) fn is_understood(keyword: &str) -> bool {
    matches!(
        keyword,
        "$schema"
            | "type"
            | "enum"
            | "const"
            | "minimum"
            | "maximum"
            | "exclusiveMinimum"
            | "exclusiveMaximum"
            | "multipleOf"
            | "minLength"
            | "maxLength"
            | "pattern"
            | "format"
            | "items"
            | "minItems"
            | "maxItems"
            | "uniqueItems"
            | "properties"
            | "required"
            | "additionalProperties"
    )
}

/// Keywords through which an object schema may admit properties beyond `properties`.
pub(super) const OPENING_KEYWORDS: [&str; 11] = [
    "patternProperties",
    "allOf",
    "anyOf",
    "oneOf",
    "$ref",
    "$dynamicRef",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "unevaluatedProperties",
];

const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

pub(super) fn is_trivially_true(schema: &Value) -> bool {
    match schema {
        Value::Bool(b) => *b,
        Value::Object(map) => map
            .iter()
            .all(|(k, v)| is_annotation(k) || (k == "$schema" && same_dialect(Some(v), None))),
        _ => false,
    }
}

pub(super) fn same_dialect(a: Option<&Value>, b: Option<&Value>) -> bool {
    fn norm(v: Option<&Value>) -> Option<&str> {
        match v {
            None => Some(DIALECT),
            Some(Value::String(s)) => Some(s.strip_suffix('#').unwrap_or(s)),
            Some(_) => None,
        }
    }
    match (norm(a), norm(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}
