//! Schema compatibility: may a new version of a dataset's JSON Schema join its history?
//!
//! Everything is built from one relation, [`can_read`]: *a reader holding schema R can read
//! every record a writer holding schema W may produce*, i.e. every instance W admits is also
//! admitted by R. [`check`] applies it the way Confluent Schema Registry does:
//!
//! - `BACKWARD`: the new schema reads data written with the latest earlier version;
//! - `FORWARD`: the latest earlier version reads data written with the new schema;
//! - `FULL`: both;
//! - `*_TRANSITIVE`: the same, against every earlier version instead of only the latest;
//! - `NONE`: anything goes.
//!
//! # The relation, precisely
//!
//! Reader schemas have their usual JSON Schema (draft 2020-12) meaning. Writer schemas are read
//! with one assumption, the one Avro and Confluent make for records: **a producer writes only the
//! properties its schema declares** (`properties` and `required`), unless the writer's object
//! schema says otherwise — an explicit `additionalProperties` (`true` or a schema), or
//! `patternProperties`, `allOf`/`anyOf`/`oneOf`, `$ref`, `if`/`then`/`else`,
//! `dependentSchemas`, `unevaluatedProperties`, which may all let it write more. Without this
//! assumption no field could ever be added, because an open old schema admits records that
//! already carry the new field with any value.
//!
//! Under that reading `can_read(R, W)` holds when, at every position both walk to:
//!
//! - **types**: every type W allows is allowed by R (`integer` is accepted by `number`, not the
//!   other way round; a missing `type` allows every type; `["string", "null"]` lists several);
//! - **values**: when W has `enum`/`const`, each of its values is validated against R; when R has
//!   `enum`/`const` and W has none, W must be finite (`null`/`boolean`) and fully covered;
//! - **numbers**: each `minimum`/`exclusiveMinimum`/`maximum`/`exclusiveMaximum` of R is implied
//!   by a bound of W; R's `multipleOf` divides W's (or 1 when W writes only integers);
//! - **strings**: R's `minLength`/`maxLength` are implied by W's; R's `pattern` and `format`
//!   appear unchanged in W;
//! - **arrays**: R's `items` can read W's; `minItems`/`maxItems` implied; `uniqueItems` kept;
//! - **objects**: every field W writes is readable by R's property schema (or by R's
//!   `additionalProperties`; `false` rejects it); every field R requires is required by W; a
//!   field only R declares is fine unless W may write undeclared fields, in which case R's
//!   schema must read them;
//! - **annotations** (`title`, `description`, `$comment`, `examples`, `default`, `deprecated`,
//!   `readOnly`, `writeOnly`, `$defs`, `definitions`, `x-*` such as `x-pii`) are irrelevant;
//! - **everything else** (`$ref`, `oneOf`, `anyOf`, `allOf`, `not`, `if`, `patternProperties`,
//!   `prefixItems`, `minProperties`, …) must be identical on both sides, or the pair is reported
//!   as "cannot prove compatible". A `$ref` is identical only if its target is identical too.
//!
//! Constraints are only compared for the kinds of value the writer may produce (a `minLength`
//! added to a reader of `["integer", "null"]` is irrelevant). Checks are conservative: each
//! accepted pair is truly readable, some readable pairs may be reported.

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::Compatibility;

/// Which of the two schemas compared by [`check`] an [`Incompatibility::path`] points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Side {
    /// The proposed new schema.
    New,
    /// The earlier version named by [`Incompatibility::against_version`] (used for things the
    /// new schema no longer has, e.g. a removed field).
    Old,
}

/// Which way a check failed: who reads and who writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// A reader using the new schema cannot read data written with the earlier version.
    Backward,
    /// A reader using the earlier version cannot read data written with the new schema.
    Forward,
}

/// One reason a new schema version is incompatible with an earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Incompatibility {
    /// JSON pointer to the offending place, into the schema named by `path_in` (the new schema
    /// whenever the place exists there), e.g. `/properties/amount`.
    pub path: String,
    /// Which schema `path` points into.
    pub path_in: Side,
    /// Dotted path of the field concerned, e.g. `customer.email`; `[]` stands for array items,
    /// `*` for undeclared properties; empty for the record itself.
    pub field: String,
    /// The dataset's compatibility rule that was broken.
    pub rule: Compatibility,
    /// Which direction of the rule failed.
    pub direction: Direction,
    /// The 1-based number of the earlier version the new schema conflicts with.
    pub against_version: usize,
    /// A sentence for humans naming the field, the change and the rule.
    pub message: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// One reason a reader schema cannot read what a writer schema may produce (see [`can_read`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    /// JSON pointer to the place in the reader schema, if the place exists there.
    pub reader_path: Option<String>,
    /// JSON pointer to the place in the writer schema, if the place exists there.
    pub writer_path: Option<String>,
    /// Dotted path of the field concerned (as in [`Incompatibility::field`]).
    pub field: String,
    /// A sentence for humans naming the field and the change.
    pub message: String,
}

/// Checks `new` against the `previous` versions (oldest first; version numbers are 1-based
/// positions in this slice) under `rule`. An empty result means the new version is accepted.
pub fn check(rule: Compatibility, new: &Value, previous: &[Value]) -> Vec<Incompatibility> {
    use Compatibility as C;
    let (backward, forward, transitive) = match rule {
        C::None => return Vec::new(),
        C::Backward => (true, false, false),
        C::BackwardTransitive => (true, false, true),
        C::Forward => (false, true, false),
        C::ForwardTransitive => (false, true, true),
        C::Full => (true, true, false),
        C::FullTransitive => (true, true, true),
    };
    let Some(latest) = previous.len().checked_sub(1) else {
        return Vec::new();
    };
    let first = if transitive { 0 } else { latest };
    let name = rule_name(rule);
    let mut out = Vec::new();
    for (index, old) in previous.iter().enumerate().skip(first) {
        let version = index + 1;
        let old_label = format!("version {version}");
        if backward {
            for reason in can_read_labeled(new, old, "the new schema", &old_label) {
                let (path, path_in) = match (reason.reader_path, reason.writer_path) {
                    (Some(p), _) => (p, Side::New),
                    (None, Some(p)) => (p, Side::Old),
                    (None, None) => (String::new(), Side::New),
                };
                out.push(Incompatibility {
                    path,
                    path_in,
                    field: reason.field,
                    rule,
                    direction: Direction::Backward,
                    against_version: version,
                    message: format!(
                        "{}; {name} requires the new schema to read data written with {old_label}",
                        reason.message
                    ),
                });
            }
        }
        if forward {
            for reason in can_read_labeled(old, new, &old_label, "the new schema") {
                let (path, path_in) = match (reason.writer_path, reason.reader_path) {
                    (Some(p), _) => (p, Side::New),
                    (None, Some(p)) => (p, Side::Old),
                    (None, None) => (String::new(), Side::New),
                };
                out.push(Incompatibility {
                    path,
                    path_in,
                    field: reason.field,
                    rule,
                    direction: Direction::Forward,
                    against_version: version,
                    message: format!(
                        "{}; {name} requires {old_label} to read data written with the new schema",
                        reason.message
                    ),
                });
            }
        }
    }
    out
}

/// Whether a reader holding schema `reader` can read every record a writer holding schema
/// `writer` may produce (see the module documentation for the exact rules). An empty result
/// means it can; otherwise every reason found is returned.
pub fn can_read(reader: &Value, writer: &Value) -> Vec<Reason> {
    can_read_labeled(reader, writer, "the reader", "the writer")
}

fn rule_name(rule: Compatibility) -> &'static str {
    match rule {
        Compatibility::None => "NONE",
        Compatibility::Backward => "BACKWARD",
        Compatibility::BackwardTransitive => "BACKWARD_TRANSITIVE",
        Compatibility::Forward => "FORWARD",
        Compatibility::ForwardTransitive => "FORWARD_TRANSITIVE",
        Compatibility::Full => "FULL",
        Compatibility::FullTransitive => "FULL_TRANSITIVE",
    }
}

fn can_read_labeled(reader: &Value, writer: &Value, r_label: &str, w_label: &str) -> Vec<Reason> {
    if reader == writer {
        return Vec::new();
    }
    let mut walker = Walker {
        r: r_label,
        w: w_label,
        unstable: unstable_refs(reader, writer),
        reasons: Vec::new(),
    };
    walker.walk(reader, writer, &Loc::root());
    walker.reasons
}

// ---------------------------------------------------------------------------------------------
// Keyword classes

/// Keywords without effect on which instances are valid.
fn is_annotation(keyword: &str) -> bool {
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
fn is_understood(keyword: &str) -> bool {
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
const OPENING_KEYWORDS: [&str; 11] = [
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

fn is_trivially_true(schema: &Value) -> bool {
    match schema {
        Value::Bool(b) => *b,
        Value::Object(map) => map
            .iter()
            .all(|(k, v)| is_annotation(k) || (k == "$schema" && same_dialect(Some(v), None))),
        _ => false,
    }
}

fn same_dialect(a: Option<&Value>, b: Option<&Value>) -> bool {
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

// ---------------------------------------------------------------------------------------------
// Types

const NULL: u8 = 1;
const BOOLEAN: u8 = 2;
const INTEGER: u8 = 4;
const NUMBER: u8 = 8;
const STRING: u8 = 16;
const ARRAY: u8 = 32;
const OBJECT: u8 = 64;
const ALL: u8 = NULL | BOOLEAN | INTEGER | NUMBER | STRING | ARRAY | OBJECT;
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
fn type_set(schema: &Map<String, Value>) -> Option<u8> {
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
fn accepted(writer: u8, reader: u8) -> u8 {
    let mut ok = writer & reader;
    if reader & NUMBER != 0 {
        ok |= writer & INTEGER;
    }
    ok
}

fn type_names(set: u8) -> String {
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

fn value_kinds(set: u8) -> String {
    let names: Vec<&str> = TYPE_NAMES
        .iter()
        .filter(|(bit, _)| set & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    names.join(" and ")
}

// ---------------------------------------------------------------------------------------------
// $ref stability: a `$ref` that is identical on both sides is only as good as its target.

fn collect_refs<'v>(value: &'v Value, out: &mut Vec<&'v str>, nested_id: &mut bool, depth: usize) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(s)) => out.push(s),
                    ("$id", Value::String(_)) if depth > 0 => *nested_id = true,
                    _ => {}
                }
                collect_refs(v, out, nested_id, depth + 1);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_refs(item, out, nested_id, depth + 1);
            }
        }
        _ => {}
    }
}

fn has_scheme(uri: &str) -> bool {
    let Some((scheme, _)) = uri.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The `$ref` values whose targets cannot be shown identical in `a` and `b`.
fn unstable_refs(a: &Value, b: &Value) -> HashSet<String> {
    let mut refs = Vec::new();
    let mut nested_id = false;
    collect_refs(a, &mut refs, &mut nested_id, 0);
    collect_refs(b, &mut refs, &mut nested_id, 0);
    let any_id = nested_id || a.get("$id").is_some() || b.get("$id").is_some();
    let mut unstable = HashSet::new();
    let mut stable: Vec<(&str, &Value)> = Vec::new();
    for r in refs {
        let target = if has_scheme(r) {
            // An absolute URI names an external, immutable document — unless the schemas
            // carry identifiers it could point back into.
            if any_id {
                unstable.insert(r.to_owned());
            }
            continue;
        } else if nested_id || r.contains('%') {
            None
        } else if let Some(pointer) = r.strip_prefix('#')
            && (pointer.is_empty() || pointer.starts_with('/'))
        {
            match (a.pointer(pointer), b.pointer(pointer)) {
                (Some(x), Some(y)) if x == y => Some(x),
                _ => None,
            }
        } else {
            None
        };
        match target {
            Some(t) => stable.push((r, t)),
            None => {
                unstable.insert(r.to_owned());
            }
        }
    }
    // A target is only stable if every reference inside it is.
    loop {
        let before = unstable.len();
        for (r, target) in &stable {
            if !unstable.contains(*r) && contains_unstable(target, &unstable) {
                unstable.insert((*r).to_owned());
            }
        }
        if unstable.len() == before {
            return unstable;
        }
    }
}

fn contains_unstable(value: &Value, unstable: &HashSet<String>) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| {
            match (k.as_str(), v) {
                ("$ref", Value::String(s)) if unstable.contains(s) => return true,
                ("$dynamicRef" | "$recursiveRef", _) => return true,
                _ => {}
            }
            contains_unstable(v, unstable)
        }),
        Value::Array(items) => items.iter().any(|v| contains_unstable(v, unstable)),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The walk

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Where the walk is: pointers into each schema (if the place exists there) and the field.
#[derive(Clone)]
struct Loc {
    reader: Option<String>,
    writer: Option<String>,
    field: String,
}

impl Loc {
    fn root() -> Self {
        Loc {
            reader: Some(String::new()),
            writer: Some(String::new()),
            field: String::new(),
        }
    }

    fn child(&self, reader: Option<&str>, writer: Option<&str>, field: String) -> Loc {
        let join = |base: &Option<String>, step: Option<&str>| match (base, step) {
            (Some(b), Some(s)) => Some(format!("{b}{s}")),
            _ => None,
        };
        Loc {
            reader: join(&self.reader, reader),
            writer: join(&self.writer, writer),
            field,
        }
    }

    fn field_child(&self, name: &str) -> String {
        if self.field.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.field)
        }
    }

    fn items_field(&self) -> String {
        format!("{}[]", self.field)
    }

    fn what(&self) -> String {
        if self.field.is_empty() {
            "the record".to_owned()
        } else {
            format!("field `{}`", self.field)
        }
    }

    fn reader_at(&self, keyword: &str) -> Option<String> {
        self.reader
            .as_ref()
            .map(|p| format!("{p}/{}", escape(keyword)))
    }

    fn writer_at(&self, keyword: &str) -> Option<String> {
        self.writer
            .as_ref()
            .map(|p| format!("{p}/{}", escape(keyword)))
    }
}

struct Walker<'a> {
    r: &'a str,
    w: &'a str,
    unstable: HashSet<String>,
    reasons: Vec<Reason>,
}

/// A numeric bound: value and whether it is exclusive.
type Bound = (f64, bool);

impl Walker<'_> {
    fn report(
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
    fn report_kw(
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

    fn walk(&mut self, reader: &Value, writer: &Value, loc: &Loc) {
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

    fn numbers(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, types: u8, loc: &Loc) {
        let Some(reader) = self.number_keywords(r, w, loc) else {
            return;
        };
        let writer = number_keywords(w);
        let describe = |bounds: &[(&str, Bound)]| -> String {
            if bounds.is_empty() {
                "no such bound".to_owned()
            } else {
                bounds
                    .iter()
                    .map(|(k, (v, _))| format!("`{k}: {v}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            }
        };
        for (k, (m, excl)) in &reader.lower {
            let implied = writer.lower.iter().any(|(_, (v, w_excl))| {
                if *excl {
                    *v > *m || (*w_excl && *v >= *m)
                } else {
                    *v >= *m
                }
            });
            if !implied {
                let message = format!(
                    "{} requires `{k}: {m}` but {} has {}",
                    self.r,
                    self.w,
                    describe(&writer.lower)
                );
                self.report_kw(loc, r, w, k, message);
            }
        }
        for (k, (m, excl)) in &reader.upper {
            let implied = writer.upper.iter().any(|(_, (v, w_excl))| {
                if *excl {
                    *v < *m || (*w_excl && *v <= *m)
                } else {
                    *v <= *m
                }
            });
            if !implied {
                let message = format!(
                    "{} requires `{k}: {m}` but {} has {}",
                    self.r,
                    self.w,
                    describe(&writer.upper)
                );
                self.report_kw(loc, r, w, k, message);
            }
        }
        if let Some(m) = reader.multiple_of {
            let integral =
                |x: f64| x.is_finite() && (x - x.round()).abs() <= 1e-9 * x.abs().max(1.0);
            let implied = writer.multiple_of.is_some_and(|v| integral(v / m))
                || (types & NUMBER == 0 && integral(1.0 / m));
            if !implied {
                let message = format!(
                    "{} requires `multipleOf: {m}` which {} does not guarantee",
                    self.r, self.w
                );
                self.report_kw(loc, r, w, "multipleOf", message);
            }
        }
    }

    /// The reader's numeric keywords; malformed ones are reported (unless identical in the
    /// writer, then they constrain both alike and are skipped).
    fn number_keywords(
        &mut self,
        r: &Map<String, Value>,
        w: &Map<String, Value>,
        loc: &Loc,
    ) -> Option<NumberKeywords> {
        for k in [
            "minimum",
            "exclusiveMinimum",
            "maximum",
            "exclusiveMaximum",
            "multipleOf",
        ] {
            if let Some(v) = r.get(k)
                && !v.is_number()
                && w.get(k) != Some(v)
            {
                let message = format!("cannot prove compatible: `{k}` is malformed");
                self.report_kw(loc, r, w, k, message);
                return None;
            }
        }
        Some(number_keywords(r))
    }

    fn strings(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, loc: &Loc) {
        let count = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_f64);
        if let Some(min) = count(r, "minLength")
            && min > 0.0
            && count(w, "minLength").is_none_or(|v| v < min)
        {
            let message = format!(
                "{} requires `minLength: {min}` but {} allows shorter strings",
                self.r, self.w
            );
            self.report_kw(loc, r, w, "minLength", message);
        }
        if let Some(max) = count(r, "maxLength")
            && count(w, "maxLength").is_none_or(|v| v > max)
        {
            let message = format!(
                "{} requires `maxLength: {max}` but {} allows longer strings",
                self.r, self.w
            );
            self.report_kw(loc, r, w, "maxLength", message);
        }
        for k in ["pattern", "format"] {
            if let Some(value) = r.get(k)
                && w.get(k) != Some(value)
            {
                let had = match w.get(k) {
                    Some(old) => format!("{} has `{k}: {old}`", self.w),
                    None => format!("{} has none", self.w),
                };
                let message = format!("{} requires `{k}: {value}` but {had}", self.r);
                self.report_kw(loc, r, w, k, message);
            }
        }
        for k in ["minLength", "maxLength"] {
            if let Some(v) = r.get(k)
                && v.as_f64().is_none()
                && w.get(k) != Some(v)
            {
                let message = format!("cannot prove compatible: `{k}` is malformed");
                self.report_kw(loc, r, w, k, message);
            }
        }
    }

    fn arrays(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, loc: &Loc) {
        let count = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_f64);
        if let Some(min) = count(r, "minItems")
            && min > 0.0
            && count(w, "minItems").is_none_or(|v| v < min)
        {
            let message = format!(
                "{} requires `minItems: {min}` but {} allows fewer items",
                self.r, self.w
            );
            self.report_kw(loc, r, w, "minItems", message);
        }
        if let Some(max) = count(r, "maxItems")
            && count(w, "maxItems").is_none_or(|v| v > max)
        {
            let message = format!(
                "{} requires `maxItems: {max}` but {} allows more items",
                self.r, self.w
            );
            self.report_kw(loc, r, w, "maxItems", message);
        }
        if r.get("uniqueItems") == Some(&Value::Bool(true))
            && w.get("uniqueItems") != Some(&Value::Bool(true))
        {
            let message = format!(
                "{} requires `uniqueItems: true` but {} allows duplicates",
                self.r, self.w
            );
            self.report_kw(loc, r, w, "uniqueItems", message);
        }
        match (r.get("items"), w.get("items")) {
            (Some(Value::Array(_)), _) | (_, Some(Value::Array(_))) => {
                if r.get("items") != w.get("items") {
                    let message = "cannot prove compatible: tuple `items` changed".to_owned();
                    self.report_kw(loc, r, w, "items", message);
                }
            }
            (reader, writer) => {
                let child = loc.child(
                    reader.map(|_| "/items"),
                    writer.map(|_| "/items"),
                    loc.items_field(),
                );
                let t = Value::Bool(true);
                self.walk(reader.unwrap_or(&t), writer.unwrap_or(&t), &child);
            }
        }
    }

    fn objects(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, loc: &Loc) {
        let empty = Map::new();
        let t = Value::Bool(true);
        let Some(r_props) = self.properties(r, w, loc) else {
            return;
        };
        let r_props = r_props.unwrap_or(&empty);
        let w_props = w
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let r_req = required(r);
        let w_req = required(w);
        let r_ap = r.get("additionalProperties");
        let w_ap = w.get("additionalProperties");

        // What the writer may write besides its declared fields, and why.
        let opening = OPENING_KEYWORDS.iter().find(|k| match w.get(**k) {
            None => false,
            Some(v) => !(**k == "unevaluatedProperties" && v == &Value::Bool(false)),
        });
        let extra: Option<(&Value, String)> = match (opening, w_ap) {
            (Some(k), _) => Some((&t, format!("it uses `{k}`"))),
            (None, None | Some(Value::Bool(false))) => None,
            (None, Some(ap)) => Some((ap, format!("`additionalProperties: {ap}`"))),
        };

        // Every field the writer writes.
        let mut written: Vec<&str> = w_props.keys().map(String::as_str).collect();
        for k in &w_req {
            if !w_props.contains_key(*k) {
                written.push(k);
            }
        }
        for name in &written {
            let (w_schema, w_step) = match w_props.get(*name) {
                Some(s) => (s, Some(format!("/properties/{}", escape(name)))),
                None => match w_ap {
                    Some(ap) => (ap, Some("/additionalProperties".to_owned())),
                    None => (&t, None),
                },
            };
            let field = loc.field_child(name);
            if let Some(r_schema) = r_props.get(*name) {
                let child = loc.child(
                    Some(format!("/properties/{}", escape(name)).as_str()),
                    w_step.as_deref(),
                    field,
                );
                self.walk(r_schema, w_schema, &child);
                continue;
            }
            match r_ap {
                None | Some(Value::Bool(true)) => {}
                Some(Value::Bool(false)) => {
                    let child = loc.child(None, w_step.as_deref(), field);
                    let message = format!(
                        "{} writes it but {} does not declare it and has `additionalProperties: false`",
                        self.w, self.r
                    );
                    let writer = child.writer.clone().or_else(|| loc.writer_at("required"));
                    self.report(&child, None, writer, message);
                }
                Some(ap) => {
                    let child = loc.child(Some("/additionalProperties"), w_step.as_deref(), field);
                    self.walk(ap, w_schema, &child);
                }
            }
        }

        // Fields only the reader declares: the writer may still write them if it is open.
        if let Some((x, why)) = &extra {
            for (name, r_schema) in r_props {
                if written.contains(&name.as_str()) {
                    continue;
                }
                let field = loc.field_child(name);
                let w_step = w_ap
                    .filter(|_| opening.is_none())
                    .map(|_| "/additionalProperties");
                let child = loc.child(
                    Some(format!("/properties/{}", escape(name)).as_str()),
                    w_step,
                    field,
                );
                if is_trivially_true(x) {
                    if !is_trivially_true(r_schema) {
                        let message = format!(
                            "{} declares it, but {} may write undeclared fields with any value ({why})",
                            self.r, self.w
                        );
                        self.report(&child, child.reader.clone(), child.writer.clone(), message);
                    }
                } else {
                    self.walk(r_schema, x, &child);
                }
            }
            // And undeclared ones the reader does not declare either.
            match r_ap {
                None | Some(Value::Bool(true)) => {}
                Some(Value::Bool(false)) => {
                    let message = format!(
                        "{} may write undeclared fields ({why}) but {} has `additionalProperties: false`",
                        self.w, self.r
                    );
                    self.report(
                        loc,
                        loc.reader_at("additionalProperties"),
                        loc.writer.clone(),
                        message,
                    );
                }
                Some(ap) => {
                    let w_step = w_ap
                        .filter(|_| opening.is_none())
                        .map(|_| "/additionalProperties");
                    let child =
                        loc.child(Some("/additionalProperties"), w_step, loc.field_child("*"));
                    self.walk(ap, x, &child);
                }
            }
        }

        for name in r_req {
            if w_req.contains(&name) {
                continue;
            }
            let r_path = if r_props.contains_key(name) {
                loc.reader_at("properties")
                    .map(|p| format!("{p}/{}", escape(name)))
            } else {
                loc.reader_at("required")
            };
            let (w_path, how) = if w_props.contains_key(name) {
                let p = loc
                    .writer_at("properties")
                    .map(|p| format!("{p}/{}", escape(name)));
                (p, format!("optional in {}", self.w))
            } else {
                (None, format!("not written by {}", self.w))
            };
            let child = Loc {
                reader: r_path.clone(),
                writer: w_path.clone(),
                field: loc.field_child(name),
            };
            let message = format!("required by {} but {how}", self.r);
            self.report(&child, r_path, w_path, message);
        }
    }

    /// The reader's `properties` map; `Some(None)` when absent, `None` (reported) when
    /// `properties` or `required` is malformed on either side.
    fn properties<'m>(
        &mut self,
        r: &'m Map<String, Value>,
        w: &Map<String, Value>,
        loc: &Loc,
    ) -> Option<Option<&'m Map<String, Value>>> {
        for k in ["properties", "required"] {
            let malformed = |m: &Map<String, Value>| match (k, m.get(k)) {
                ("properties", Some(v)) => !v.is_object(),
                ("required", Some(v)) => {
                    !v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
                }
                _ => false,
            };
            if malformed(r) || malformed(w) {
                let message = format!("cannot prove compatible: `{k}` is malformed");
                self.report_kw(loc, r, w, k, message);
                return None;
            }
        }
        Some(r.get("properties").and_then(Value::as_object))
    }
}

fn required(schema: &Map<String, Value>) -> Vec<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

struct NumberKeywords {
    lower: Vec<(&'static str, Bound)>,
    upper: Vec<(&'static str, Bound)>,
    multiple_of: Option<f64>,
}

fn number_keywords(schema: &Map<String, Value>) -> NumberKeywords {
    let get = |k: &str| schema.get(k).and_then(Value::as_f64);
    let bounds = |pairs: [(&'static str, bool); 2]| {
        pairs
            .into_iter()
            .filter_map(|(k, excl)| get(k).map(|v| (k, (v, excl))))
            .collect()
    };
    NumberKeywords {
        lower: bounds([("minimum", false), ("exclusiveMinimum", true)]),
        upper: bounds([("maximum", false), ("exclusiveMaximum", true)]),
        multiple_of: get("multipleOf").filter(|m| *m > 0.0),
    }
}

fn validator(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| e.to_string())
}
