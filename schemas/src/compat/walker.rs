//! The core relation: walking a reader and a writer schema side by side, checking types and
//! enumerated values and dispatching to the per-kind comparisons.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::Reason;
use super::keywords::{is_annotation, is_trivially_true, is_understood, same_dialect};
use super::location::Loc;
use super::refs::contains_unstable;
use super::types::{
    ALL, ARRAY, BOOLEAN, INTEGER, NULL, NUMBER, OBJECT, STRING, accepted, type_names, type_set,
    value_kinds,
};

pub(super) struct Walker<'a> {
    pub(super) r: &'a str,
    pub(super) w: &'a str,
    pub(super) unstable: HashSet<String>,
    pub(super) reasons: Vec<Reason>,
}

impl Walker<'_> {
    pub(super) fn report(
        &mut self,
        loc: &Loc,
        reader: Option<String>,
        writer: Option<String>,
        message: String,
    ) {
        self.reasons.push(Reason {
            reader_path: reader,
            writer_path: writer,
            field: loc.field.clone(),
            message: format!("{}: {message}", loc.what()),
        });
    }

    /// Reports at `keyword` in each schema that has it, else at the schema itself.
    pub(super) fn report_kw(
        &mut self,
        loc: &Loc,
        r: &Map<String, Value>,
        w: &Map<String, Value>,
        keyword: &str,
        message: String,
    ) {
        let reader = if r.contains_key(keyword) {
            loc.reader_at(keyword)
        } else {
            loc.reader.clone()
        };
        let writer = if w.contains_key(keyword) {
            loc.writer_at(keyword)
        } else {
            loc.writer.clone()
        };
        self.report(loc, reader, writer, message);
    }

    pub(super) fn walk(&mut self, reader: &Value, writer: &Value, loc: &Loc) {
        if writer == &Value::Bool(false) || is_trivially_true(reader) {
            return;
        }
        if reader == writer && !contains_unstable(reader, &self.unstable) {
            return;
        }
        let empty = Map::new();
        let r = match reader {
            Value::Object(map) => map,
            Value::Bool(false) => {
                let message = format!(
                    "{} forbids it (schema `false`) but {} may write it",
                    self.r, self.w
                );
                self.report(loc, loc.reader.clone(), loc.writer.clone(), message);
                return;
            }
            _ => {
                let message = format!("cannot prove compatible: {} has a malformed schema", self.r);
                self.report(loc, loc.reader.clone(), loc.writer.clone(), message);
                return;
            }
        };
        let w = match writer {
            Value::Object(map) => map,
            Value::Bool(_) => &empty,
            _ => {
                let message = format!("cannot prove compatible: {} has a malformed schema", self.w);
                self.report(loc, loc.reader.clone(), loc.writer.clone(), message);
                return;
            }
        };
        self.unknown_keywords(r, w, loc);
        // A malformed writer `enum` is ignored, which only widens what it may write.
        if w.contains_key("const") || w.get("enum").is_some_and(Value::is_array) {
            self.writer_values(r, w, loc);
            return;
        }
        let rt = match type_set(r) {
            Some(types) => types,
            // The same malformed `type` on both sides constrains both alike.
            None if r.get("type") == w.get("type") => ALL,
            None => {
                let message = "cannot prove compatible: `type` is malformed".to_owned();
                self.report_kw(loc, r, w, "type", message);
                return;
            }
        };
        // A malformed writer `type` is ignored, which only widens what it may write.
        let wt = type_set(w).unwrap_or(ALL);
        let ok = accepted(wt, rt);
        if ok != wt {
            let message = if w.contains_key("type") {
                format!(
                    "{} writes {} values, which {} (type {}) does not accept",
                    self.w,
                    value_kinds(wt & !ok),
                    self.r,
                    type_names(rt)
                )
            } else {
                format!(
                    "{} does not restrict the type, but {} accepts only {}",
                    self.w,
                    self.r,
                    type_names(rt)
                )
            };
            self.report_kw(loc, r, w, "type", message);
        }
        if r.contains_key("enum") || r.contains_key("const") {
            self.reader_values(r, ok, loc);
        }
        if ok & (INTEGER | NUMBER) != 0 {
            self.numbers(r, w, ok, loc);
        }
        if ok & STRING != 0 {
            self.strings(r, w, loc);
        }
        if ok & ARRAY != 0 {
            self.arrays(r, w, loc);
        }
        if ok & OBJECT != 0 {
            self.objects(r, w, loc);
        }
    }

    /// Keywords the module does not understand must be identical on both sides.
    fn unknown_keywords(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, loc: &Loc) {
        if !same_dialect(r.get("$schema"), w.get("$schema")) {
            let message = "cannot prove compatible: `$schema` changed".to_owned();
            self.report_kw(loc, r, w, "$schema", message);
        }
        let keys = r.keys().chain(w.keys().filter(|k| !r.contains_key(*k)));
        let mut changed = Vec::new();
        for k in keys {
            if is_annotation(k) || is_understood(k) {
                continue;
            }
            let message = match (r.get(k), w.get(k)) {
                (Some(a), Some(b)) if a == b => {
                    let mut own = Map::new();
                    own.insert(k.clone(), a.clone());
                    if !contains_unstable(&Value::Object(own), &self.unstable) {
                        continue;
                    }
                    match a {
                        _ if k == "$dynamicRef" || k == "$recursiveRef" => {
                            format!("`{k}` resolves dynamically and the schemas differ")
                        }
                        Value::String(target) if k == "$ref" => {
                            format!("the target of `$ref: {target}` changed")
                        }
                        _ => format!("`{k}` is unchanged but a `$ref` target inside it changed"),
                    }
                }
                (Some(_), Some(_)) => format!("`{k}` changed"),
                (Some(_), None) => format!("`{k}` changed (only {} has it)", self.r),
                (None, _) => format!("`{k}` changed (only {} has it)", self.w),
            };
            changed.push((k.clone(), message));
        }
        for (k, detail) in changed {
            let message = format!("cannot prove compatible: {detail}");
            self.report_kw(loc, r, w, &k, message);
        }
    }

    /// The writer lists its values: each must be valid for the reader.
    fn writer_values(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, loc: &Loc) {
        let (keyword, values): (&str, Vec<&Value>) = match (w.get("const"), w.get("enum")) {
            (Some(c), _) => ("const", vec![c]),
            (None, Some(Value::Array(items))) => ("enum", items.iter().collect()),
            _ => return,
        };
        // Unknown keywords were compared above; validate against the understood ones.
        let reader: Map<String, Value> = r
            .iter()
            .filter(|(k, _)| is_understood(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let r_path = ["enum", "const"]
            .into_iter()
            .find(|k| r.contains_key(*k))
            .map_or_else(|| loc.reader.clone(), |k| loc.reader_at(k));
        let validator = match validator(&Value::Object(reader)) {
            Ok(v) => v,
            Err(e) => {
                let message = format!(
                    "cannot prove compatible: {} cannot be evaluated ({e})",
                    self.r
                );
                self.report(loc, r_path.clone(), loc.writer_at(keyword), message);
                return;
            }
        };
        for value in values {
            if let Err(e) = validator.validate(value) {
                let message = format!(
                    "{} may write {value}, which {} rejects ({e})",
                    self.w, self.r
                );
                self.report(loc, r_path.clone(), loc.writer_at(keyword), message);
            }
        }
    }

    /// The reader lists its values but the writer does not: only a finite writer can comply.
    fn reader_values(&mut self, r: &Map<String, Value>, writer_types: u8, loc: &Loc) {
        let keyword = if r.contains_key("const") {
            "const"
        } else {
            "enum"
        };
        let finite = writer_types & !(NULL | BOOLEAN) == 0;
        if finite {
            let mut values = Vec::new();
            if writer_types & NULL != 0 {
                values.push(Value::Null);
            }
            if writer_types & BOOLEAN != 0 {
                values.extend([Value::Bool(false), Value::Bool(true)]);
            }
            let only_values: Map<String, Value> = ["enum", "const"]
                .into_iter()
                .filter_map(|k| r.get(k).map(|v| (k.to_owned(), v.clone())))
                .collect();
            match validator(&Value::Object(only_values)) {
                Ok(v) if values.iter().all(|value| v.is_valid(value)) => return,
                _ => {}
            }
        }
        let message = format!(
            "{} restricts it to the values of `{keyword}`, but {} allows any {} value",
            self.r,
            self.w,
            value_kinds(writer_types)
        );
        self.report(loc, loc.reader_at(keyword), loc.writer.clone(), message);
    }
}

pub(super) fn validator(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| e.to_string())
}
