//! Semantic checks of a `DataProduct` and the derivation of its output schema.

use std::collections::{HashMap, HashSet};

use super::expr::{Analysis, FieldRef, Shape, analyze};
use super::fields::{field_type, resolve};
use super::target::{check_target_name_and_options, dns_label_problem};
use super::{Context, Problem, forbid_meta, shorten};
use crate::output::{OutputField, OutputKey, OutputSchema};
use crate::time::{StartPosition, parse_positive_duration};
use crate::{
    DataProductSpec, DatasetKind, FieldType, JoinType, ObjectMeta, TargetType, WriteMode, names,
};

/// The most output fields a product may have.
const MAX_FIELDS: usize = 512;

/// Output field names Sluice keeps for itself in targets.
const RESERVED_FIELD_PREFIX: &str = "_sluice";

/// What is known about each source while checking expressions.
struct SourceInfo<'a> {
    dataset: &'a str,
    /// The dataset's record schema; `None` when the dataset is unknown (reported once, at
    /// the source, rather than again at every expression that reads it).
    schema: Option<&'a serde_json::Value>,
    /// Joined by a lookup that is not inner: its fields may be null in the output.
    nullable: bool,
}

pub(super) fn check(
    meta: &ObjectMeta,
    spec: &DataProductSpec,
    ctx: &Context,
    problems: &mut Vec<Problem>,
) -> Option<OutputSchema> {
    if !names::is_dns_label(&meta.name) {
        problems.push(dns_label_problem("/metadata/name", &meta.name));
    }
    match &meta.team {
        None => problems.push(Problem::new(
            "/metadata/team",
            "is required: the team that owns the product",
        )),
        Some(team) if !names::is_dns_label(team) => {
            problems.push(dns_label_problem("/metadata/team", team));
        }
        Some(_) => {}
    }
    forbid_meta(
        meta,
        "owner",
        "products belong to metadata.team; remove owner",
        problems,
    );

    let sources = check_sources(spec, ctx, problems);
    check_joins(spec, ctx, &sources, problems);

    if let Some(filter) = &spec.filter
        && let Some(analysis) = check_refs("/spec/filter", filter, &sources, problems)
    {
        let not_boolean = match analysis.shape {
            Shape::Literal(ty) => (ty != "bool").then_some(ty),
            Shape::Collection => Some("a collection"),
            Shape::Arithmetic => Some("an arithmetic result"),
            Shape::Boolean | Shape::Unknown => None,
        };
        if let Some(what) = not_boolean {
            problems.push(Problem::new(
                "/spec/filter",
                format!("must be a boolean expression, not {what}"),
            ));
        }
    }
    if !(1..=MAX_FIELDS).contains(&spec.fields.len()) {
        problems.push(Problem::new(
            "/spec/fields",
            format!(
                "must have 1 to {MAX_FIELDS} fields, not {}",
                spec.fields.len()
            ),
        ));
    }
    let key_analysis = spec
        .key
        .as_ref()
        .and_then(|k| check_refs("/spec/key", k, &sources, problems));
    let mut fields = Vec::new();
    for (name, field) in &spec.fields {
        let pointer = format!("/spec/fields/{}", super::escape_pointer(name));
        let analysis = check_refs(&pointer, field.expr(), &sources, problems);
        if !names::is_identifier(name) || name.starts_with(RESERVED_FIELD_PREFIX) {
            problems.push(Problem::new(
                &pointer,
                format!(
                    "`{}` is not a field name: lowercase letters, digits and underscores, starting \
                     with a letter or underscore, at most 63 characters, not starting with `{RESERVED_FIELD_PREFIX}`",
                    shorten(name)
                ),
            ));
            continue;
        }
        if let Some(analysis) = analysis {
            match output_field(
                name,
                field.expr(),
                field.declared_type(),
                &analysis,
                &sources,
            ) {
                Ok(None) => {}
                Ok(Some(mut out)) => {
                    if let crate::FieldSpec::Typed(t) = field
                        && t.description.is_some()
                    {
                        out.description.clone_from(&t.description);
                    }
                    fields.push(out);
                }
                Err(e) => problems.push(Problem::new(pointer, e)),
            }
        }
    }

    let key =
        match (&spec.key, spec.target.mode) {
            (None, WriteMode::Upsert) => {
                problems.push(Problem::new(
                    "/spec/key",
                    "is required for upsert targets: the expression that identifies a row",
                ));
                None
            }
            (None, WriteMode::Append) => None,
            (Some(expr), _) => key_analysis.and_then(|analysis| {
                match output_key(expr, &analysis, &sources, &fields) {
                    Ok(key) => Some(key),
                    Err(e) => {
                        problems.push(Problem::new("/spec/key", e));
                        None
                    }
                }
            }),
        };

    check_target(meta, spec, ctx, problems);
    if let Some(freshness) = spec.slo.as_ref().and_then(|s| s.freshness.as_deref())
        && let Err(e) = parse_positive_duration(freshness)
    {
        problems.push(Problem::new("/spec/slo/freshness", e.to_string()));
    }
    if let Some(expires) = &spec.expires {
        let well_formed = expires.len() == 10
            && expires.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        let parsed = well_formed
            .then(|| chrono::NaiveDate::parse_from_str(expires, "%Y-%m-%d").ok())
            .flatten();
        match parsed {
            None => problems.push(Problem::new(
                "/spec/expires",
                format!("`{}` is not a date; expected YYYY-MM-DD", shorten(expires)),
            )),
            Some(date) if date < ctx.today => problems.push(Problem::new(
                "/spec/expires",
                format!("{date} is in the past"),
            )),
            Some(_) => {}
        }
    }
    Some(OutputSchema { fields, key })
}

fn check_sources<'a>(
    spec: &'a DataProductSpec,
    ctx: &'a Context,
    problems: &mut Vec<Problem>,
) -> HashMap<&'a str, SourceInfo<'a>> {
    let mut sources = HashMap::new();
    let mut seen = HashSet::new();
    for (i, source) in spec.sources.iter().enumerate() {
        let at = format!("/spec/sources/{i}");
        if !seen.insert(source.name.as_str()) {
            problems.push(Problem::new(
                format!("{at}/name"),
                format!("source `{}` is declared twice", source.name),
            ));
        }
        if names::CEL_RESERVED.contains(&source.name.as_str()) {
            problems.push(Problem::new(
                format!("{at}/name"),
                format!(
                    "`{}` is a CEL keyword and cannot name a source",
                    source.name
                ),
            ));
        }
        if let Some(from) = &source.from
            && let Err(e) = StartPosition::parse(from)
        {
            problems.push(Problem::new(format!("{at}/from"), e.to_string()));
        }
        if ctx.dataset(&source.dataset).is_none() {
            problems.push(Problem::new(
                format!("{at}/dataset"),
                format!("no dataset `{}` in the catalog", shorten(&source.dataset)),
            ));
        }
        let nullable = spec.joins.iter().any(|j| {
            j.right == source.name && j.join_type == JoinType::Lookup && j.inner != Some(true)
        });
        sources.insert(
            source.name.as_str(),
            SourceInfo {
                dataset: source.dataset.as_str(),
                schema: ctx.dataset(&source.dataset).map(|d| &d.spec.schema),
                nullable,
            },
        );
    }
    sources
}

fn check_joins(
    spec: &DataProductSpec,
    ctx: &Context,
    sources: &HashMap<&str, SourceInfo<'_>>,
    problems: &mut Vec<Problem>,
) {
    let Some(driving) = spec.sources.first() else {
        return;
    };
    let mut in_scope: Vec<&str> = vec![driving.name.as_str()];
    let mut joined = HashSet::new();
    for (i, join) in spec.joins.iter().enumerate() {
        let at = format!("/spec/joins/{i}");
        let Some(right) = spec.sources.iter().find(|s| s.name == join.right) else {
            problems.push(Problem::new(
                format!("{at}/right"),
                format!("no source named `{}`", join.right),
            ));
            continue;
        };
        if right.name == driving.name {
            problems.push(Problem::new(
                format!("{at}/right"),
                format!(
                    "`{}` is the driving source (the first); join other sources to it",
                    right.name
                ),
            ));
            continue;
        }
        if !joined.insert(join.right.as_str()) {
            problems.push(Problem::new(
                format!("{at}/right"),
                format!("`{}` is joined twice", join.right),
            ));
        }
        let right_kind = ctx.dataset(&right.dataset).map(|d| d.spec.kind);
        match join.join_type {
            JoinType::Lookup => {
                if right_kind == Some(DatasetKind::Stream) {
                    problems.push(Problem::new(
                        format!("{at}/right"),
                        format!("`{}` is a stream; a lookup joins a table dataset (use a window join for streams)", right.dataset),
                    ));
                }
                if join.within.is_some() {
                    problems.push(Problem::new(
                        format!("{at}/within"),
                        "only window joins have `within`",
                    ));
                }
                if right.from.is_some() {
                    let index = spec
                        .sources
                        .iter()
                        .position(|s| s.name == right.name)
                        .unwrap_or_default();
                    problems.push(Problem::new(
                        format!("/spec/sources/{index}/from"),
                        "a lookup table is always loaded whole; remove `from`",
                    ));
                }
            }
            JoinType::Window => {
                match &join.within {
                    None => problems.push(Problem::new(
                        format!("{at}/within"),
                        "is required for window joins: how far apart in event time the records may be (e.g. 1h)",
                    )),
                    Some(within) => {
                        if let Err(e) = parse_positive_duration(within) {
                            problems.push(Problem::new(format!("{at}/within"), e.to_string()));
                        }
                    }
                }
                if join.propagate.is_some() {
                    problems.push(Problem::new(
                        format!("{at}/propagate"),
                        "only lookup joins propagate",
                    ));
                }
                if join.inner == Some(false) {
                    problems.push(Problem::new(
                        format!("{at}/inner"),
                        "window joins are always inner",
                    ));
                }
                if right_kind == Some(DatasetKind::Table) {
                    problems.push(Problem::new(
                        format!("{at}/right"),
                        format!(
                            "`{}` is a table; use a lookup join for tables",
                            right.dataset
                        ),
                    ));
                }
            }
        }
        match analyze(&join.on) {
            Err(e) => problems.push(Problem::new(format!("{at}/on"), format!("CEL: {e}"))),
            Ok(analysis) => {
                let shape_ok = match &analysis.equality {
                    Some((a, b)) => {
                        let (this, other) = if a.root == join.right { (a, b) } else { (b, a) };
                        this.root == join.right
                            && in_scope.contains(&other.root.as_str())
                            && !this.path.is_empty()
                            && !other.path.is_empty()
                    }
                    None => false,
                };
                if !shape_ok {
                    problems.push(Problem::new(
                        format!("{at}/on"),
                        format!(
                            "must compare one field of `{}` with one field of {} (e.g. `{}.customer_id == {}.id`)",
                            join.right,
                            in_scope.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" or "),
                            in_scope[0],
                            join.right
                        ),
                    ));
                }
                for r in &analysis.refs {
                    if let Err(e) = check_ref(r, sources) {
                        problems.push(Problem::new(format!("{at}/on"), e));
                    }
                }
            }
        }
        in_scope.push(join.right.as_str());
    }
    for (i, source) in spec.sources.iter().enumerate().skip(1) {
        if !joined.contains(source.name.as_str()) {
            problems.push(Problem::new(
                format!("/spec/sources/{i}"),
                format!(
                    "source `{}` is never joined; add a join with `right: {}`",
                    source.name, source.name
                ),
            ));
        }
    }
}

/// Parses an expression and checks every field path it reads; `None` when it is unusable.
fn check_refs(
    pointer: &str,
    expr: &str,
    sources: &HashMap<&str, SourceInfo<'_>>,
    problems: &mut Vec<Problem>,
) -> Option<Analysis> {
    match analyze(expr) {
        Err(e) => {
            problems.push(Problem::new(pointer, format!("CEL: {e}")));
            None
        }
        Ok(analysis) => {
            let mut ok = true;
            for r in &analysis.refs {
                if let Err(e) = check_ref(r, sources) {
                    problems.push(Problem::new(pointer, e));
                    ok = false;
                }
            }
            for f in &analysis.unknown_functions {
                problems.push(Problem::new(
                    pointer,
                    format!("CEL: unknown function `{}`", shorten(f)),
                ));
                ok = false;
            }
            ok.then_some(analysis)
        }
    }
}

fn check_ref(r: &FieldRef, sources: &HashMap<&str, SourceInfo<'_>>) -> Result<(), String> {
    let Some(source) = sources.get(r.root.as_str()) else {
        let mut known: Vec<&str> = sources.keys().copied().collect();
        known.sort_unstable();
        return Err(format!(
            "`{}` is not a declared source; sources are {}",
            shorten(&r.root),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    };
    let Some(schema) = source.schema else {
        // The unknown dataset is reported at the source; its fields cannot be checked.
        return Ok(());
    };
    resolve(schema, &r.path)
        .map(|_| ())
        .map_err(|e| format!("`{}`: {e} (dataset {})", r.dotted(), source.dataset))
}

fn output_field(
    name: &str,
    expr: &str,
    declared: Option<FieldType>,
    analysis: &Analysis,
    sources: &HashMap<&str, SourceInfo<'_>>,
) -> Result<Option<OutputField>, String> {
    let mut pii_sources: Vec<String> = analysis
        .refs
        .iter()
        .filter_map(|r| {
            let source = sources.get(r.root.as_str())?;
            let resolved = resolve(source.schema?, &r.path).ok()?;
            resolved.pii.then(|| source.dataset.to_owned())
        })
        .collect();
    pii_sources.sort();
    pii_sources.dedup();
    let pii = !pii_sources.is_empty();
    let plain = analysis
        .plain_path
        .as_ref()
        .and_then(|r| sources.get(r.root.as_str()).map(|s| (r, s)));
    match plain {
        Some((_, SourceInfo { schema: None, .. })) => Ok(None),
        Some((
            r,
            source @ SourceInfo {
                schema: Some(schema),
                ..
            },
        )) => {
            let resolved = resolve(schema, &r.path)?;
            let (schema_type, nullable_type) = field_type(resolved.schema)
                .map_err(|e| format!("`{}` {e}; declare `type`", r.dotted()))?;
            let field_type = match declared {
                None => schema_type,
                Some(d) if d == schema_type => d,
                Some(FieldType::Timestamp) if schema_type == FieldType::String => {
                    FieldType::Timestamp
                }
                Some(d) => {
                    return Err(format!(
                        "declared type {} but `{}` is {} in the source schema",
                        d.as_str(),
                        r.dotted(),
                        schema_type.as_str()
                    ));
                }
            };
            Ok(Some(OutputField {
                name: name.to_owned(),
                field_type,
                nullable: nullable_type || !resolved.required || source.nullable,
                pii,
                pii_sources: pii_sources.clone(),
                expr: expr.to_owned(),
                description: resolved
                    .schema
                    .get("description")
                    .and_then(|d| d.as_str())
                    .map(str::to_owned),
            }))
        }
        None => {
            if let (Shape::Literal(literal), Some(declared)) = (analysis.shape, declared) {
                let fits = match declared {
                    FieldType::String | FieldType::Timestamp => literal == "string",
                    FieldType::Integer => matches!(literal, "int" | "uint"),
                    FieldType::Number => matches!(literal, "int" | "uint" | "double"),
                    FieldType::Boolean => literal == "bool",
                    FieldType::Object | FieldType::Array => false,
                };
                if !fits && literal != "null" {
                    return Err(format!(
                        "declared type {} but the expression is a {literal} literal",
                        declared.as_str()
                    ));
                }
            }
            let field_type = declared.ok_or_else(|| {
                "a computed field needs a type: write `{expr: ..., type: string|integer|number|boolean|timestamp|object|array}`"
                    .to_owned()
            })?;
            Ok(Some(OutputField {
                name: name.to_owned(),
                field_type,
                nullable: true,
                pii,
                pii_sources: pii_sources.clone(),
                expr: expr.to_owned(),
                description: None,
            }))
        }
    }
}

fn output_key(
    expr: &str,
    analysis: &Analysis,
    sources: &HashMap<&str, SourceInfo<'_>>,
    fields: &[OutputField],
) -> Result<OutputKey, String> {
    let field_type = match analysis.plain_path.as_ref() {
        Some(r) => {
            let source = sources
                .get(r.root.as_str())
                .ok_or_else(|| format!("`{}` is not a declared source", r.root))?;
            let Some(schema) = source.schema else {
                return Ok(OutputKey {
                    expr: expr.to_owned(),
                    field_type: FieldType::String,
                    field: None,
                });
            };
            let resolved = resolve(schema, &r.path)?;
            let (ty, _) =
                field_type(resolved.schema).map_err(|e| format!("`{}` {e}", r.dotted()))?;
            if !matches!(ty, FieldType::String | FieldType::Integer) {
                return Err(format!(
                    "`{}` is {}; a key must be a string or integer",
                    r.dotted(),
                    ty.as_str()
                ));
            }
            ty
        }
        // A computed key is turned into text, the one type every target can key by.
        None => FieldType::String,
    };
    let normalized = |e: &str| e.split_whitespace().collect::<String>();
    let field = fields
        .iter()
        .find(|f| normalized(&f.expr) == normalized(expr))
        .map(|f| f.name.clone());
    Ok(OutputKey {
        expr: expr.to_owned(),
        field_type,
        field,
    })
}

fn check_target(
    meta: &ObjectMeta,
    spec: &DataProductSpec,
    ctx: &Context,
    problems: &mut Vec<Problem>,
) {
    let target = &spec.target;
    let target_type = match (&target.cluster, &target.dedicated) {
        (Some(_), Some(_)) => {
            problems.push(Problem::new(
                "/spec/target",
                "give either `cluster` or `dedicated`, not both",
            ));
            None
        }
        (None, None) => {
            problems.push(Problem::new(
                "/spec/target/cluster",
                "is required: the TargetCluster to land in (or `dedicated` in Kubernetes mode)",
            ));
            None
        }
        (Some(name), None) => match ctx.cluster(name) {
            None => {
                problems.push(Problem::new(
                    "/spec/target/cluster",
                    format!("no target cluster `{}`", shorten(name)),
                ));
                None
            }
            Some(cluster) => {
                if let Some(team) = &meta.team
                    && !cluster.allows(team)
                {
                    problems.push(Problem::new(
                        "/spec/target/cluster",
                        format!("team `{team}` may not provision into `{name}`"),
                    ));
                }
                Some(cluster.target_type)
            }
        },
        (None, Some(dedicated)) => {
            if !ctx.dedicated_allowed {
                problems.push(Problem::new(
                    "/spec/target/dedicated",
                    "dedicated targets need Kubernetes mode; use a registered `cluster`",
                ));
            }
            Some(dedicated.target_type)
        }
    };
    if let Some(target_type) = target_type {
        check_target_name_and_options(target_type, &target.name, &target.options, problems);
        if target_type == TargetType::Redis && target.mode == WriteMode::Append {
            problems.push(Problem::new(
                "/spec/target/mode",
                "redis targets hold one value per key; use upsert",
            ));
        }
    }
}
