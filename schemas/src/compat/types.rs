//! JSON Schema `type` as a bit set: parsing, which writer types a reader accepts, and naming
//! type sets in messages.

use serde_json::{Map, Value};

pub(super) const NULL: u8 = 1;
pub(super) const BOOLEAN: u8 = 2;
pub(super) const INTEGER: u8 = 4;
pub(super) const NUMBER: u8 = 8;
pub(super) const STRING: u8 = 16;
pub(super) const ARRAY: u8 = 32;
pub(super) const OBJECT: u8 = 64;
pub(super) const ALL: u8 = NULL | BOOLEAN | INTEGER | NUMBER | STRING | ARRAY | OBJECT;
const TYPE_NAMES: [(u8, &str); 7] = [
    (NULL, "null"),
    (BOOLEAN, "boolean"),
    (INTEGER, "integer"),
    (NUMBER, "number"),
    (STRING, "string"),
    (ARRAY, "array"),
    (OBJECT, "object"),
];

fn type_bit(name: &str) -> Option<u8> {
    TYPE_NAMES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(bit, _)| *bit)
}

/// The declared types; `None` when `type` is malformed.
pub(super) fn type_set(schema: &Map<String, Value>) -> Option<u8> {
    match schema.get("type") {
        None => Some(ALL),
        Some(Value::String(s)) => type_bit(s),
        Some(Value::Array(items)) => items.iter().try_fold(0, |acc, item| {
            item.as_str().and_then(type_bit).map(|bit| acc | bit)
        }),
        Some(_) => None,
    }
}

/// The writer types a reader with types `reader` accepts.
pub(super) fn accepted(writer: u8, reader: u8) -> u8 {
    let mut ok = writer & reader;
    if reader & NUMBER != 0 {
        ok |= writer & INTEGER;
    }
    ok
}

pub(super) fn type_names(set: u8) -> String {
    let names: Vec<&str> = TYPE_NAMES
        .iter()
        .filter(|(bit, _)| set & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    match names.as_slice() {
        [] => "no type".to_owned(),
        [one] => (*one).to_owned(),
        _ => format!("[{}]", names.join(", ")),
    }
}

pub(super) fn value_kinds(set: u8) -> String {
    let names: Vec<&str> = TYPE_NAMES
        .iter()
        .filter(|(bit, _)| set & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    names.join(" and ")
}
