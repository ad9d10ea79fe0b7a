//! Lookup joins: which sources a product reads (one driving stream, and the tables it looks
//! rows up in) and how each join key is computed from what is bound before it.
//!
//! A join's `on` is an equality of one field path of the joined (right) source and one of a
//! source in scope before it (the driving source, or a table joined earlier), either way
//! round: `o.customer_id == c.id`. The right side must be a top-level field of the table: it
//! is the field the runtime keys the table's rows by.

use cel::Env;
use serde_json::Value as Json;
use sluice_schemas::validate::expr::{FieldRef, analyze};
use sluice_schemas::{DataProductSpec, JoinType};

use super::error::{Site, TransformError};
use super::expr::Compiled;

/// A table the product looks rows up in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupTable {
    /// The right source alias of the lookup join (e.g. `c`).
    pub alias: String,
    /// The table's field the join matches (e.g. `id` for `o.customer_id == c.id`); the
    /// runtime keys the table's rows by this field's value as text (integers in decimal).
    pub key_field: String,
    /// `propagate: true`: when a row of the table changes, the output rows joined with it
    /// are computed again.
    pub propagate: bool,
}

/// How one lookup is run on a record.
#[derive(Debug)]
pub(crate) struct LookupPlan {
    /// The left side of `on`, evaluated on the rows bound before this join.
    pub left: Compiled,
    /// `inner: true`: a record without a partner has no row.
    pub inner: bool,
    /// The table's JSON Schema, if stated: guides number conversion into CEL.
    pub schema: Option<Json>,
}

/// The sources of a product and its lookups, in join order.
#[derive(Debug)]
pub(crate) struct Sources {
    /// Every alias in scope of the filter, key and fields: the driving source first, then
    /// each join's right alias in join order. A row's position in a record's rows is its
    /// alias's position here.
    pub aliases: Vec<String>,
    /// The tables, in join order (`aliases[i + 1]` is `tables[i].alias`).
    pub tables: Vec<LookupTable>,
    /// How each table is looked up, parallel to `tables`.
    pub plans: Vec<LookupPlan>,
}

/// Finds the driving source and plans the lookups of `spec`. Window joins are refused
/// first, whatever else is wrong.
pub(crate) fn plan(spec: &DataProductSpec, env: &Env) -> Result<Sources, TransformError> {
    for join in &spec.joins {
        if join.join_type == JoinType::Window {
            return Err(TransformError::WindowJoinsUnsupported {
                right: join.right.clone(),
            });
        }
    }
    if let Some(join) = spec
        .joins
        .iter()
        .find(|j| !spec.sources.iter().any(|s| s.name == j.right))
    {
        return Err(TransformError::Join {
            right: join.right.clone(),
            reason: format!("no source is named `{}`", join.right),
        });
    }
    let driving: Vec<&str> = spec
        .sources
        .iter()
        .map(|s| s.name.as_str())
        .filter(|name| !spec.joins.iter().any(|j| j.right == *name))
        .collect();
    let [driving] = driving.as_slice() else {
        return Err(TransformError::SourceCount(driving.len()));
    };

    let mut aliases = vec![(*driving).to_owned()];
    let mut tables = Vec::with_capacity(spec.joins.len());
    let mut plans = Vec::with_capacity(spec.joins.len());
    for join in &spec.joins {
        let right = join.right.as_str();
        let refuse = |reason: String| TransformError::Join {
            right: right.to_owned(),
            reason,
        };
        if aliases.iter().any(|a| a == right) {
            return Err(refuse(format!("`{right}` is joined twice")));
        }
        let in_scope: Vec<&str> = aliases.iter().map(String::as_str).collect();
        let (left, key_field) = condition(&join.on, right, &in_scope).map_err(refuse)?;
        let left = Compiled::new(env, Site::Join(right.to_owned()), &left.dotted(), &in_scope)?;
        aliases.push(right.to_owned());
        tables.push(LookupTable {
            alias: right.to_owned(),
            key_field,
            propagate: join.propagate == Some(true),
        });
        plans.push(LookupPlan {
            left,
            inner: join.inner == Some(true),
            schema: None,
        });
    }
    Ok(Sources {
        aliases,
        tables,
        plans,
    })
}

/// The left field path and the right key field of a join condition `on` joining `right`.
fn condition(on: &str, right: &str, in_scope: &[&str]) -> Result<(FieldRef, String), String> {
    let expected = || {
        format!(
            "`on` must compare a field of {} with a top-level field of `{right}` (e.g. `{}.customer_id == {right}.id`), not `{on}`",
            in_scope
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(" or "),
            in_scope.first().copied().unwrap_or("o"),
        )
    };
    let analysis = analyze(on).map_err(|e| format!("`on` does not parse: {e}"))?;
    let Some((a, b)) = analysis.equality else {
        return Err(expected());
    };
    let (mut this, other) = if a.root == right { (a, b) } else { (b, a) };
    if this.root != right
        || !in_scope.contains(&other.root.as_str())
        || other.path.is_empty()
        || this.path.len() != 1
    {
        return Err(expected());
    }
    let key_field = this.path.remove(0);
    Ok((other, key_field))
}
