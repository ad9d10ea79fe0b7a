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

mod arrays;
mod constraints;
mod keywords;
mod location;
mod objects;
mod refs;
mod types;
mod walker;

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::Compatibility;

use location::Loc;
use refs::unstable_refs;
use walker::Walker;

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
