//! Joins: which sources a product reads (one driving stream, the tables it looks rows up in
//! and at most one stream it joins in an event-time window) and how each join key is
//! computed from what is bound before it.
//!
//! A join's `on` is an equality of one field path of the joined (right) source and one of a
//! source in scope before it (the driving source, or a table joined earlier), either way
//! round: `o.customer_id == c.id`. The right side must be a top-level field of the table: it
//! is the field the runtime keys the table's rows by.

use cel::Env;
use serde_json::Value as Json;
use sluice_schemas::time::parse_positive_duration;
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

/// The stream a product joins in an event-time window (`type: window`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowJoin {
    /// The right source alias of the window join (e.g. `p`).
    pub alias: String,
    /// The joined stream's field the join matches (e.g. `order_id` for
    /// `o.id == p.order_id`); records are kept by its value as text (integers in decimal).
    pub key_field: String,
    /// `within`: how far apart in event time two records may be and still meet, in
    /// milliseconds.
    pub within_ms: i64,
}

/// How one lookup is run on a record.
#[derive(Debug)]
pub(crate) struct LookupPlan {
    /// The left side of `on`, evaluated on the rows bound before this join.
    pub left: Compiled,
    /// `inner: true` (always for a window join): a record without a partner has no row.
    pub inner: bool,
    /// A window join: its partner is the record the runtime pairs the record with, not a
    /// table row.
    pub window: bool,
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
    /// Every join's right side, in join order (`aliases[i + 1]` is `joins[i].alias`); a
    /// window join's as a [`LookupTable`] that never propagates.
    pub joins: Vec<LookupTable>,
    /// How each join is run, parallel to `joins`.
    pub plans: Vec<LookupPlan>,
    /// The window join, if there is one.
    pub window: Option<WindowJoin>,
}

/// Finds the driving source and plans the joins of `spec`: any number of lookups and at most
/// one window join.
pub(crate) fn plan(spec: &DataProductSpec, env: &Env) -> Result<Sources, TransformError> {
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
    let mut joins = Vec::with_capacity(spec.joins.len());
    let mut plans = Vec::with_capacity(spec.joins.len());
    let mut window = None;
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
        let is_window = join.join_type == JoinType::Window;
        if is_window {
            if window.is_some() {
                return Err(refuse(
                    "a product can join one stream in a window; this is the second".to_owned(),
                ));
            }
            let within = join
                .within
                .as_deref()
                .ok_or_else(|| refuse("a window join needs `within`".to_owned()))?;
            let within =
                parse_positive_duration(within).map_err(|e| refuse(format!("`within`: {e}")))?;
            window = Some(WindowJoin {
                alias: right.to_owned(),
                key_field: key_field.clone(),
                within_ms: i64::try_from(within.as_millis()).unwrap_or(i64::MAX),
            });
        }
        aliases.push(right.to_owned());
        joins.push(LookupTable {
            alias: right.to_owned(),
            key_field,
            propagate: !is_window && join.propagate == Some(true),
        });
        plans.push(LookupPlan {
            left,
            // Window joins are inner (DESIGN §3): a record without a partner has no row.
            inner: is_window || join.inner == Some(true),
            window: is_window,
            schema: None,
        });
    }
    Ok(Sources {
        aliases,
        joins,
        plans,
        window,
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
