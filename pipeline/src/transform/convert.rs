//! Conversions between record JSON, CEL values and output values of a declared type.
//!
//! Records enter CEL as maps (JSON integers as `int` unless the source schema says `number`,
//! other numbers as `double`); results
//! leave it converted to the output field's type. Conversions are strict: a value of another
//! type is a mismatch, except an integer-valued double for an `integer` field and any number
//! for a `number` field. Numbers are written as doubles and timestamps as RFC 3339 text
//! (UTC as `Z`), whichever way they were computed, so equal rows are equal text.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use cel::Value as Cel;
use cel::objects::Key;
use chrono::{DateTime, FixedOffset, SecondsFormat};
use serde_json::{Map, Number, Value as Json};
use sluice_schemas::FieldType;

/// Why a value cannot be converted: a description of what it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mismatch(pub String);

/// The record (or part of it) as a CEL value. `schema` is the JSON Schema of `value`, if
/// known: where it says `number`, JSON integers become doubles, so that `o.amount * 100.0`
/// works whether the producer wrote `12` or `12.0`.
pub(crate) fn json_to_cel(value: &Json, schema: Option<&Json>) -> Cel {
    match value {
        Json::Null => Cel::Null,
        Json::Bool(b) => Cel::Bool(*b),
        Json::Number(n) => {
            let double = schema.is_some_and(is_number_schema);
            match (n.as_i64(), n.as_u64()) {
                (Some(i), _) if !double => Cel::Int(i),
                (None, Some(u)) if !double => Cel::UInt(u),
                _ => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
            }
        }
        Json::String(s) => Cel::String(Arc::new(s.clone())),
        Json::Array(items) => {
            let items_schema = schema.and_then(|s| s.get("items"));
            Cel::List(Arc::new(
                items.iter().map(|v| json_to_cel(v, items_schema)).collect(),
            ))
        }
        Json::Object(map) => {
            let properties = schema.and_then(|s| s.get("properties"));
            let entries: HashMap<Key, Cel> = map
                .iter()
                .map(|(k, v)| {
                    let field_schema = properties.and_then(|p| p.get(k));
                    (Key::from(k.as_str()), json_to_cel(v, field_schema))
                })
                .collect();
            Cel::from(entries)
        }
    }
}

/// Whether a JSON Schema says `number` (alone or with `null`), not `integer`.
fn is_number_schema(schema: &Json) -> bool {
    match schema.get("type") {
        Some(Json::String(t)) => t == "number",
        Some(Json::Array(types)) => {
            types.iter().any(|t| t == "number") && !types.iter().any(|t| t == "integer")
        }
        _ => false,
    }
}

/// The JSON type name of `value`, for messages.
pub(crate) fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(n) if n.is_f64() => "a number",
        Json::Number(_) => "an integer",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// The CEL type name of `value`, for messages.
pub(crate) fn cel_kind(value: &Cel) -> String {
    format!("a CEL {}", value.type_of())
}

/// A record value of a plain path, converted to `ty`. `value` is not null. A value that is
/// already what `ty` writes (a string for `string`, an integer for `integer`, …) is
/// borrowed, not copied: the job writes it to the output topic and drops it.
pub(crate) fn json_to_output(value: &Json, ty: FieldType) -> Result<Cow<'_, Json>, Mismatch> {
    let mismatch = || Mismatch(json_kind(value).to_owned());
    match (ty, value) {
        (FieldType::String, Json::String(_))
        | (FieldType::Boolean, Json::Bool(_))
        | (FieldType::Object, Json::Object(_))
        | (FieldType::Array, Json::Array(_)) => Ok(Cow::Borrowed(value)),
        // Held as a signed or unsigned integer within the signed range: written as it is.
        (FieldType::Integer, Json::Number(n)) if n.is_i64() => Ok(Cow::Borrowed(value)),
        (FieldType::Integer, Json::Number(n)) => {
            if n.is_u64() {
                Err(Mismatch(
                    "an integer beyond the 64-bit signed range".to_owned(),
                ))
            } else {
                n.as_f64()
                    .and_then(integral)
                    .map(|i| Cow::Owned(Json::from(i)))
                    .ok_or_else(mismatch)
            }
        }
        (FieldType::Number, Json::Number(n)) => n.as_f64().map_or_else(
            || Err(mismatch()),
            |f| finite(f).map(Cow::Owned).ok_or_else(mismatch),
        ),
        (FieldType::Timestamp, Json::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Cow::Owned(Json::String(rfc3339(&t))))
            .map_err(|_| Mismatch("a string that is not an RFC 3339 timestamp".to_owned())),
        _ => Err(mismatch()),
    }
}

/// A CEL result converted to `ty`. `value` is not null.
pub(crate) fn cel_to_output(value: &Cel, ty: FieldType) -> Result<Json, Mismatch> {
    let mismatch = || Mismatch(cel_kind(value));
    match (ty, value) {
        (FieldType::String, Cel::String(s)) => Ok(Json::String(s.as_str().to_owned())),
        (FieldType::Boolean, Cel::Bool(b)) => Ok(Json::Bool(*b)),
        (FieldType::Integer, Cel::Int(i)) => Ok(Json::from(*i)),
        (FieldType::Integer, Cel::UInt(u)) => i64::try_from(*u)
            .map(Json::from)
            .map_err(|_| Mismatch("an integer beyond the 64-bit signed range".to_owned())),
        (FieldType::Integer, Cel::Float(f)) => integral(*f)
            .map(Json::from)
            .ok_or_else(|| Mismatch(format!("the double {f}, which is not a 64-bit integer"))),
        (FieldType::Number, Cel::Int(i)) => finite(*i as f64).ok_or_else(mismatch),
        (FieldType::Number, Cel::UInt(u)) => finite(*u as f64).ok_or_else(mismatch),
        (FieldType::Number, Cel::Float(f)) => {
            finite(*f).ok_or_else(|| Mismatch(format!("the double {f}")))
        }
        (FieldType::Timestamp, Cel::Timestamp(t)) => Ok(Json::String(rfc3339(t))),
        (FieldType::Timestamp, Cel::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Json::String(rfc3339(&t)))
            .map_err(|_| Mismatch("a string that is not an RFC 3339 timestamp".to_owned())),
        (FieldType::Object, Cel::Map(_)) | (FieldType::Array, Cel::List(_)) => cel_to_json(value),
        _ => Err(mismatch()),
    }
}

/// Any CEL value as JSON, for the contents of `object` and `array` fields.
fn cel_to_json(value: &Cel) -> Result<Json, Mismatch> {
    Ok(match value {
        Cel::Null => Json::Null,
        Cel::Bool(b) => Json::Bool(*b),
        Cel::Int(i) => Json::from(*i),
        Cel::UInt(u) => Json::from(*u),
        Cel::Float(f) => finite(*f).ok_or_else(|| Mismatch(format!("the double {f}")))?,
        Cel::String(s) => Json::String(s.as_str().to_owned()),
        Cel::Timestamp(t) => Json::String(rfc3339(t)),
        Cel::List(items) => Json::Array(items.iter().map(cel_to_json).collect::<Result<_, _>>()?),
        Cel::Map(map) => {
            let mut entries: Vec<(String, Json)> = map
                .map
                .iter()
                .map(|(k, v)| Ok((key_text(k), cel_to_json(v)?)))
                .collect::<Result<_, Mismatch>>()?;
            // CEL maps are unordered; sorted keys make equal values equal text.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Json::Object(entries.into_iter().collect::<Map<String, Json>>())
        }
        other => return Err(Mismatch(format!("{} inside", cel_kind(other)))),
    })
}

fn key_text(key: &Key) -> String {
    match key {
        Key::Int(i) => i.to_string(),
        Key::Uint(u) => u.to_string(),
        Key::Bool(b) => b.to_string(),
        Key::String(s) => s.as_str().to_owned(),
    }
}

/// `f` as an `i64` if it is a whole number in range.
pub(crate) fn integral(f: f64) -> Option<i64> {
    // 2^63 is exactly representable; every double below it (and at or above -2^63) fits.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (f.is_finite() && f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f)).then_some(f as i64)
}

fn finite(f: f64) -> Option<Json> {
    Number::from_f64(f).map(Json::Number)
}

fn rfc3339(t: &DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn converts_record_values_strictly() {
        let cases: &[(Json, FieldType, Result<Json, &str>)] = &[
            (json!("a"), FieldType::String, Ok(json!("a"))),
            (json!(1), FieldType::String, Err("an integer")),
            (json!(7), FieldType::Integer, Ok(json!(7))),
            (json!(7.0), FieldType::Integer, Ok(json!(7))),
            (json!(7.5), FieldType::Integer, Err("a number")),
            (
                json!(u64::MAX),
                FieldType::Integer,
                Err("an integer beyond the 64-bit signed range"),
            ),
            (json!(7), FieldType::Number, Ok(json!(7.0))),
            (json!(7.25), FieldType::Number, Ok(json!(7.25))),
            (json!("7"), FieldType::Number, Err("a string")),
            (json!(true), FieldType::Boolean, Ok(json!(true))),
            (json!("true"), FieldType::Boolean, Err("a string")),
            (
                json!("2026-03-01T10:00:00+00:00"),
                FieldType::Timestamp,
                Ok(json!("2026-03-01T10:00:00Z")),
            ),
            (
                json!("2026-03-01T10:00:00.5+02:00"),
                FieldType::Timestamp,
                Ok(json!("2026-03-01T10:00:00.500+02:00")),
            ),
            (
                json!("yesterday"),
                FieldType::Timestamp,
                Err("a string that is not an RFC 3339 timestamp"),
            ),
            (
                json!({"b": 1, "a": 2}),
                FieldType::Object,
                Ok(json!({"b": 1, "a": 2})),
            ),
            (json!([1, "x"]), FieldType::Array, Ok(json!([1, "x"]))),
            (json!([1]), FieldType::Object, Err("an array")),
        ];
        for (input, ty, expected) in cases {
            let got = json_to_output(input, *ty)
                .map(Cow::into_owned)
                .map_err(|m| m.0);
            let expected = expected.clone().map_err(str::to_owned);
            assert_eq!(got, expected, "{input} as {}", ty.as_str());
        }
    }

    #[test]
    fn converts_cel_results_strictly() {
        let ts = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap();
        let cases: &[(Cel, FieldType, Result<Json, &str>)] = &[
            (Cel::Int(5), FieldType::Integer, Ok(json!(5))),
            (Cel::UInt(5), FieldType::Integer, Ok(json!(5))),
            (Cel::Float(1250.0), FieldType::Integer, Ok(json!(1250))),
            (
                Cel::Float(f64::NAN),
                FieldType::Number,
                Err("the double NaN"),
            ),
            (Cel::Int(5), FieldType::Number, Ok(json!(5.0))),
            (Cel::Int(5), FieldType::String, Err("a CEL int")),
            (Cel::Bool(false), FieldType::Boolean, Ok(json!(false))),
            (
                Cel::Timestamp(ts),
                FieldType::Timestamp,
                Ok(json!("2026-03-01T10:00:00Z")),
            ),
            (
                Cel::Timestamp(ts),
                FieldType::String,
                Err("a CEL timestamp"),
            ),
            (
                Cel::List(Arc::new(vec![Cel::Int(1), Cel::Timestamp(ts)])),
                FieldType::Array,
                Ok(json!([1, "2026-03-01T10:00:00Z"])),
            ),
            (
                json_to_cel(&json!({"z": 1, "a": {"k": [true, null]}}), None),
                FieldType::Object,
                Ok(json!({"a": {"k": [true, null]}, "z": 1})),
            ),
            (
                Cel::List(Arc::new(vec![Cel::Bytes(Arc::new(vec![1]))])),
                FieldType::Array,
                Err("a CEL bytes inside"),
            ),
        ];
        for (input, ty, expected) in cases {
            let got = cel_to_output(input, *ty).map_err(|m| m.0);
            let expected = expected.clone().map_err(str::to_owned);
            assert_eq!(got, expected, "{input:?} as {}", ty.as_str());
        }
    }

    #[test]
    fn number_fields_of_the_source_schema_enter_cel_as_doubles() {
        let schema = json!({"type": "object", "properties": {
            "amount": {"type": "number"},
            "qty": {"type": "integer"},
            "prices": {"type": "array", "items": {"type": ["number", "null"]}},
        }});
        let record = json!({"amount": 12, "qty": 3, "prices": [1, null], "other": 4});
        let Cel::Map(map) = json_to_cel(&record, Some(&schema)) else {
            panic!("not a map");
        };
        let get = |k: &str| map.map.get(&Key::from(k)).cloned();
        assert_eq!(get("amount"), Some(Cel::Float(12.0)));
        assert_eq!(get("qty"), Some(Cel::Int(3)));
        assert_eq!(
            get("prices"),
            Some(Cel::List(Arc::new(vec![Cel::Float(1.0), Cel::Null])))
        );
        assert_eq!(get("other"), Some(Cel::Int(4)));
        assert_eq!(json_to_cel(&json!(12), None), Cel::Int(12));
    }

    #[test]
    fn integral_accepts_only_whole_doubles_in_range() {
        assert_eq!(integral(-3.0), Some(-3));
        assert_eq!(integral(0.5), None);
        assert_eq!(integral(9.3e18), None);
        assert_eq!(integral(-9_223_372_036_854_775_808.0), Some(i64::MIN));
        assert_eq!(integral(f64::INFINITY), None);
    }
}
