//! The derived output schema of a data product: the shape of its rows, from which target
//! DDL, index mappings and key layouts are derived.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::FieldType;

/// One output field of a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputField {
    /// The field (column) name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Whether it may be null (optional source field, left-join partner, computed value).
    pub nullable: bool,
    /// Whether it carries personal data (taken from or computed with an `x-pii` field).
    pub pii: bool,
    /// The datasets whose `x-pii` fields it takes: their owners must approve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pii_sources: Vec<String>,
    /// The CEL expression computing it.
    pub expr: String,
    /// A description, from the spec or the source schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The output key of a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputKey {
    /// The key expression.
    pub expr: String,
    /// Its type: `string` or `integer`.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// The output field whose expression is the key, if there is one (then that column is
    /// the primary key; otherwise targets keep the key in a column of their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The rows a product produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputSchema {
    /// The fields, in spec order.
    pub fields: Vec<OutputField>,
    /// The key, for keyed products.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<OutputKey>,
}

impl OutputSchema {
    /// The output schema as a JSON Schema (draft 2020-12) of one output row.
    pub fn to_json_schema(&self) -> Value {
        let mut properties = serde_json::Map::new();
        let mut required = Vec::new();
        for field in &self.fields {
            let (ty, format) = match field.field_type {
                FieldType::Timestamp => ("string", Some("date-time")),
                other => (other.as_str(), None),
            };
            let mut prop = serde_json::Map::new();
            prop.insert(
                "type".into(),
                if field.nullable {
                    json!([ty, "null"])
                } else {
                    json!(ty)
                },
            );
            if let Some(format) = format {
                prop.insert("format".into(), json!(format));
            }
            if let Some(description) = &field.description {
                prop.insert("description".into(), json!(description));
            }
            if field.pii {
                prop.insert("x-pii".into(), json!(true));
            }
            properties.insert(field.name.clone(), Value::Object(prop));
            if !field.nullable {
                required.push(json!(field.name));
            }
        }
        let mut schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        });
        if let Some(key) = &self.key {
            schema["x-sluice-key"] = json!({"expr": key.expr, "type": key.field_type});
        }
        schema
    }
}
