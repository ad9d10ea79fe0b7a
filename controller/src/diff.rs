//! The diff of a live product's running spec against a new one, each change classed by how
//! it is applied (see `docs/architecture.md`, "Changing a live product"):
//!
//! - [`ChangeClass::Online`]: applied in place — a new nullable output field (`ALTER TABLE
//!   ADD COLUMN`, `PUT` mapping, a new hash field), a field's description, `deletionPolicy`,
//!   `slo`, `expires`, and the target options that stores change in place (Redis `ttl`,
//!   Elasticsearch `replicas`).
//! - [`ChangeClass::Rebuild`]: version N+1 is built beside N, backfilled, then the stable
//!   name is switched — a field's type, nullability or expression, a new field that is not
//!   nullable, the filter, the sources (datasets, aliases, `from`), the joins, the key, the
//!   mode upsert→append, and every other target option (`shards`, `type`, …).
//! - [`ChangeClass::Destructive`]: readers lose something — an output field removed or
//!   renamed, the target `name`, `cluster` or dedicated store changed (the old stable name
//!   goes away), the mode append→upsert (one row per key instead of every event).
//!
//! Nullability is the output schema's: a new field is nullable when its derived output field
//! is, whatever its declared type.

use serde::Serialize;
use serde_json::Value;
use sluice_schemas::output::{OutputField, OutputSchema};
use sluice_schemas::{DataProductSpec, WriteMode};

/// Target options a store changes in place; any other option change needs a rebuild.
pub const ONLINE_TARGET_OPTIONS: [&str; 2] = ["ttl", "replicas"];

/// How a change to a live product is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeClass {
    /// Applied in place to the running version.
    Online,
    /// A new version is built beside the running one, backfilled, then swapped in.
    Rebuild,
    /// Readers of the product lose something (a field, the stable name, rows).
    Destructive,
}

/// One change between the running spec and a new one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecChange {
    /// JSON pointer into the spec, e.g. `/fields/amount`.
    pub path: String,
    /// How the change is applied.
    pub class: ChangeClass,
    /// What changes, for people.
    pub description: String,
}

/// The changes from `old` (the running spec and its output schema) to `new`, each classed,
/// in spec order: sources, joins, filter, key, fields, target, then the metadata-like parts.
pub fn diff_specs(
    old: &DataProductSpec,
    old_output: &OutputSchema,
    new: &DataProductSpec,
    new_output: &OutputSchema,
) -> Vec<SpecChange> {
    let mut changes = Vec::new();
    let mut push = |path: String, class: ChangeClass, description: String| {
        changes.push(SpecChange {
            path,
            class,
            description,
        });
    };

    // Sources, by alias.
    for (i, source) in new.sources.iter().enumerate() {
        let path = format!("/sources/{i}");
        match old.sources.iter().find(|s| s.name == source.name) {
            None => push(
                path,
                ChangeClass::Rebuild,
                format!(
                    "new source `{}` (dataset `{}`)",
                    source.name, source.dataset
                ),
            ),
            Some(before) => {
                if before.dataset != source.dataset {
                    push(
                        format!("{path}/dataset"),
                        ChangeClass::Rebuild,
                        format!(
                            "source `{}` reads dataset `{}` instead of `{}`",
                            source.name, source.dataset, before.dataset
                        ),
                    );
                }
                if before.from != source.from {
                    push(
                        format!("{path}/from"),
                        ChangeClass::Rebuild,
                        format!(
                            "source `{}` starts from {} instead of {}",
                            source.name,
                            from_text(source.from.as_deref()),
                            from_text(before.from.as_deref())
                        ),
                    );
                }
            }
        }
    }
    for source in &old.sources {
        if !new.sources.iter().any(|s| s.name == source.name) {
            push(
                "/sources".to_owned(),
                ChangeClass::Rebuild,
                format!(
                    "source `{}` (dataset `{}`) removed",
                    source.name, source.dataset
                ),
            );
        }
    }
    if let (Some(before), Some(after)) = (old.sources.first(), new.sources.first())
        && before.name != after.name
        && old.sources.iter().any(|s| s.name == after.name)
    {
        push(
            "/sources/0".to_owned(),
            ChangeClass::Rebuild,
            format!(
                "the driving source is `{}` instead of `{}`",
                after.name, before.name
            ),
        );
    }

    if old.joins != new.joins {
        push(
            "/joins".to_owned(),
            ChangeClass::Rebuild,
            "the joins change".to_owned(),
        );
    }
    if old.filter != new.filter {
        let description = match (&old.filter, &new.filter) {
            (None, Some(f)) => format!("new filter `{f}`"),
            (Some(_), None) => "the filter is removed".to_owned(),
            (_, f) => format!("the filter becomes `{}`", f.as_deref().unwrap_or_default()),
        };
        push("/filter".to_owned(), ChangeClass::Rebuild, description);
    }
    if old.key != new.key || old_output.key != new_output.key {
        push(
            "/key".to_owned(),
            ChangeClass::Rebuild,
            format!(
                "the key becomes {} instead of {}",
                quoted_or(new.key.as_deref(), "none"),
                quoted_or(old.key.as_deref(), "none")
            ),
        );
    }

    diff_fields(old, old_output, new, new_output, &mut push);
    diff_target(old, new, &mut push);

    if old.deletion_policy != new.deletion_policy {
        push(
            "/deletionPolicy".to_owned(),
            ChangeClass::Online,
            format!(
                "deletion policy {:?} instead of {:?}",
                new.deletion_policy, old.deletion_policy
            ),
        );
    }
    if old.slo != new.slo {
        push(
            "/slo".to_owned(),
            ChangeClass::Online,
            "the service-level objectives change".to_owned(),
        );
    }
    if old.expires != new.expires {
        push(
            "/expires".to_owned(),
            ChangeClass::Online,
            format!(
                "expires {} instead of {}",
                new.expires.as_deref().unwrap_or("never"),
                old.expires.as_deref().unwrap_or("never")
            ),
        );
    }
    changes
}

/// Whether the changes need a new version of the target beside the running one (any
/// [`ChangeClass::Rebuild`] or [`ChangeClass::Destructive`] change).
pub fn requires_new_version(changes: &[SpecChange]) -> bool {
    changes.iter().any(|c| c.class != ChangeClass::Online)
}

/// Output fields: removed or renamed (destructive), added (online when nullable), changed.
fn diff_fields(
    old: &DataProductSpec,
    old_output: &OutputSchema,
    new: &DataProductSpec,
    new_output: &OutputSchema,
    push: &mut impl FnMut(String, ChangeClass, String),
) {
    let added: Vec<&OutputField> = new_output
        .fields
        .iter()
        .filter(|f| find(old_output, &f.name).is_none())
        .collect();
    let mut renamed_to: Vec<&str> = Vec::new();
    for field in &old_output.fields {
        if find(new_output, &field.name).is_some() {
            continue;
        }
        let path = field_path(&field.name);
        match added
            .iter()
            .find(|a| a.expr == field.expr && !renamed_to.contains(&a.name.as_str()))
        {
            Some(to) => {
                renamed_to.push(&to.name);
                push(
                    path,
                    ChangeClass::Destructive,
                    format!(
                        "field `{}` is renamed to `{}`: readers of `{}` lose it",
                        field.name, to.name, field.name
                    ),
                );
            }
            None => push(
                path,
                ChangeClass::Destructive,
                format!("field `{}` is removed: readers lose it", field.name),
            ),
        }
    }
    for field in &added {
        if renamed_to.contains(&field.name.as_str()) {
            continue;
        }
        let path = field_path(&field.name);
        if field.nullable {
            push(
                path,
                ChangeClass::Online,
                format!(
                    "new nullable field `{}` ({}), added in place",
                    field.name,
                    field.field_type.as_str()
                ),
            );
        } else {
            push(
                path,
                ChangeClass::Rebuild,
                format!(
                    "new field `{}` ({}) is never null: existing rows have no value for it",
                    field.name,
                    field.field_type.as_str()
                ),
            );
        }
    }
    for field in &new_output.fields {
        let Some(before) = find(old_output, &field.name) else {
            continue;
        };
        let path = field_path(&field.name);
        let old_expr = old.fields.get(&field.name).map(|f| f.expr());
        let new_expr = new.fields.get(&field.name).map(|f| f.expr());
        if before.field_type != field.field_type {
            push(
                path,
                ChangeClass::Rebuild,
                format!(
                    "field `{}` is {} instead of {}",
                    field.name,
                    field.field_type.as_str(),
                    before.field_type.as_str()
                ),
            );
        } else if before.nullable != field.nullable {
            push(
                path,
                ChangeClass::Rebuild,
                format!(
                    "field `{}` {}",
                    field.name,
                    if field.nullable {
                        "may now be null"
                    } else {
                        "is never null now"
                    }
                ),
            );
        } else if before.expr != field.expr || old_expr != new_expr {
            push(
                path,
                ChangeClass::Rebuild,
                format!(
                    "field `{}` is computed as `{}` instead of `{}`",
                    field.name,
                    new_expr.unwrap_or(&field.expr),
                    old_expr.unwrap_or(&before.expr)
                ),
            );
        } else if before.description != field.description {
            push(
                path,
                ChangeClass::Online,
                format!("the description of field `{}` changes", field.name),
            );
        }
    }
}

/// The target: its name, cluster or store (destructive), mode, and options.
fn diff_target(
    old: &DataProductSpec,
    new: &DataProductSpec,
    push: &mut impl FnMut(String, ChangeClass, String),
) {
    let (before, after) = (&old.target, &new.target);
    if before.name != after.name {
        push(
            "/target/name".to_owned(),
            ChangeClass::Destructive,
            format!(
                "the target is named `{}` instead of `{}`: readers of `{}` lose it",
                after.name, before.name, before.name
            ),
        );
    }
    if before.cluster != after.cluster {
        push(
            "/target/cluster".to_owned(),
            ChangeClass::Destructive,
            format!(
                "the target moves to cluster {} from {}: readers of the old cluster lose it",
                quoted_or(after.cluster.as_deref(), "none"),
                quoted_or(before.cluster.as_deref(), "none")
            ),
        );
    }
    if before.dedicated != after.dedicated {
        push(
            "/target/dedicated".to_owned(),
            ChangeClass::Destructive,
            "the dedicated store changes: readers of the old store lose it".to_owned(),
        );
    }
    match (before.mode, after.mode) {
        (WriteMode::Append, WriteMode::Upsert) => push(
            "/target/mode".to_owned(),
            ChangeClass::Destructive,
            "mode upsert instead of append: one row per key is kept, earlier rows are lost"
                .to_owned(),
        ),
        (WriteMode::Upsert, WriteMode::Append) => push(
            "/target/mode".to_owned(),
            ChangeClass::Rebuild,
            "mode append instead of upsert: every event becomes a row".to_owned(),
        ),
        _ => {}
    }
    let keys = before.options.keys().chain(
        after
            .options
            .keys()
            .filter(|k| !before.options.contains_key(*k)),
    );
    for key in keys {
        let (was, is) = (before.options.get(key), after.options.get(key));
        if was == is {
            continue;
        }
        let class = if ONLINE_TARGET_OPTIONS.contains(&key.as_str()) {
            ChangeClass::Online
        } else {
            ChangeClass::Rebuild
        };
        push(
            format!("/target/options/{}", escape_pointer(key)),
            class,
            format!(
                "target option `{key}` is {} instead of {}",
                option_text(is),
                option_text(was)
            ),
        );
    }
}

/// The output field called `name`.
fn find<'a>(output: &'a OutputSchema, name: &str) -> Option<&'a OutputField> {
    output.fields.iter().find(|f| f.name == name)
}

/// The pointer of a field in the spec.
fn field_path(name: &str) -> String {
    format!("/fields/{}", escape_pointer(name))
}

/// Escapes one JSON pointer token (RFC 6901).
fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn from_text(from: Option<&str>) -> String {
    format!("`{}`", from.unwrap_or("earliest"))
}

fn quoted_or(value: Option<&str>, none: &str) -> String {
    value.map_or_else(|| none.to_owned(), |v| format!("`{v}`"))
}

fn option_text(value: Option<&Value>) -> String {
    value.map_or_else(|| "unset".to_owned(), |v| format!("`{v}`"))
}
