//! One compiled expression of a product: a plain field path read straight from the record
//! (or looked-up table row) JSON (a missing field is null), or a CEL program evaluated with
//! each source alias bound to its record as a map.

use std::borrow::Cow;
use std::sync::Arc;

use cel::{Context, Env, Program};
use serde_json::Value as Json;
use sluice_schemas::validate::expr::analyze;

use super::convert::{cel_kind, integral, json_kind};
use super::error::{RecordError, Site, TransformError};

/// What an expression evaluates to on one record.
pub(crate) enum Evaluated<'r> {
    /// A value read from the record by a plain path; `None` when a field on the way is
    /// missing or null, or the alias has no row (a lookup without a partner).
    Json(Option<&'r Json>),
    /// A CEL result.
    Cel(cel::Value),
}

/// A key value (a product key or a join key) as text.
pub(crate) struct KeyText<'r> {
    /// Strings as they are (borrowed from the record); integers, and doubles that are
    /// whole, in decimal.
    pub text: Cow<'r, str>,
    /// The value is an integer.
    pub is_integer: bool,
}

impl<'r> Evaluated<'r> {
    /// The value as key text; `Ok(None)` for null; otherwise what the value is, for a type
    /// mismatch.
    pub fn key_text(self) -> Result<Option<KeyText<'r>>, String> {
        let (text, is_integer) = match self {
            Evaluated::Json(None) | Evaluated::Cel(cel::Value::Null) => return Ok(None),
            Evaluated::Json(Some(Json::String(s))) => (Cow::Borrowed(s.as_str()), false),
            Evaluated::Json(Some(Json::Number(n))) if n.is_i64() || n.is_u64() => {
                (Cow::Owned(n.to_string()), true)
            }
            Evaluated::Json(Some(Json::Number(n))) => match n.as_f64().and_then(integral) {
                Some(i) => (Cow::Owned(i.to_string()), true),
                None => return Err(json_kind(&Json::Number(n.clone())).to_owned()),
            },
            Evaluated::Json(Some(other)) => return Err(json_kind(other).to_owned()),
            Evaluated::Cel(cel::Value::String(s)) => (Cow::Owned(s.as_str().to_owned()), false),
            Evaluated::Cel(cel::Value::Int(i)) => (Cow::Owned(i.to_string()), true),
            Evaluated::Cel(cel::Value::UInt(u)) => (Cow::Owned(u.to_string()), true),
            Evaluated::Cel(other) => return Err(cel_kind(&other)),
        };
        Ok(Some(KeyText { text, is_integer }))
    }
}

/// An expression compiled once per job.
#[derive(Debug)]
pub(crate) struct Compiled {
    /// The expression as written.
    pub text: String,
    /// Where it sits in the product.
    pub site: Site,
    kind: Kind,
    /// The positions (in scope) of the aliases a CEL program reads; empty for a plain
    /// path, which reads the record's JSON directly.
    cel_reads: Vec<usize>,
}

#[derive(Debug)]
enum Kind {
    /// A plain path below a source alias: the alias's position in scope (0 is the driving
    /// source) and the fields to select, outermost first.
    Path(usize, Vec<String>),
    /// Anything else.
    Program(Program),
}

/// The CEL environment of every product: the standard library with its macros, the string
/// and list extensions, and optional values — what
/// [`sluice_schemas::validate::expr::KNOWN_FUNCTIONS`] promises.
pub(crate) fn environment() -> Result<Arc<Env>, TransformError> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)
        .map_err(TransformError::Environment)?;
    env.add_extension(cel::extensions::lists)
        .map_err(TransformError::Environment)?;
    Ok(Arc::new(env))
}

/// The context every record's scope is a child of: the environment plus the functions CEL
/// provides as context functions rather than overloads.
pub(crate) fn base_context(env: Arc<Env>) -> Result<Context<'static, 'static>, TransformError> {
    let mut context = Context::with_env(env);
    context
        .add_function("max", cel::functions::max)
        .map_err(TransformError::Environment)?;
    context
        .add_function("min", cel::functions::min)
        .map_err(TransformError::Environment)?;
    Ok(context)
}

impl Compiled {
    /// Parses `text`, checks that it reads only the aliases `in_scope` and calls only known
    /// functions, and compiles it. The position of an alias in `in_scope` is the position of
    /// its row in [`Compiled::evaluate`]'s `rows`.
    pub fn new(
        env: &Env,
        site: Site,
        text: &str,
        in_scope: &[&str],
    ) -> Result<Self, TransformError> {
        let parse_error = |reason: String| TransformError::Parse {
            site: site.clone(),
            expr: text.to_owned(),
            reason,
        };
        let analysis = analyze(text).map_err(parse_error)?;
        if let Some(r) = analysis
            .refs
            .iter()
            .find(|r| !in_scope.contains(&r.root.as_str()))
        {
            return Err(TransformError::UnknownName {
                site,
                root: r.root.clone(),
                in_scope: in_scope.iter().map(|&a| a.to_owned()).collect(),
            });
        }
        if !analysis.unknown_functions.is_empty() {
            return Err(TransformError::UnknownFunctions {
                site,
                functions: analysis.unknown_functions,
            });
        }
        let path_alias = analysis
            .plain_path
            .as_ref()
            .and_then(|p| in_scope.iter().position(|&a| a == p.root));
        // The analysis names every free variable, and each is in scope (checked above).
        let cel_reads = match (&analysis.plain_path, path_alias) {
            (Some(_), Some(_)) => Vec::new(),
            _ => in_scope
                .iter()
                .enumerate()
                .filter(|(_, alias)| analysis.refs.iter().any(|r| r.root == **alias))
                .map(|(i, _)| i)
                .collect(),
        };
        let kind = match (analysis.plain_path, path_alias) {
            (Some(path), Some(alias)) => Kind::Path(alias, path.path),
            _ => Kind::Program(env.compile(text).map_err(|e| {
                parse_error(e.to_string().lines().next().unwrap_or_default().to_owned())
            })?),
        };
        Ok(Compiled {
            text: text.to_owned(),
            site,
            kind,
            cel_reads,
        })
    }

    /// The positions (in scope) of the aliases this expression needs as CEL values: none
    /// for a plain path.
    pub fn cel_reads(&self) -> &[usize] {
        &self.cel_reads
    }

    /// The alias (its position in scope) and the fields this expression selects below it,
    /// if it is a plain path; `None` for a CEL program (see [`Compiled::cel_reads`]).
    pub fn path(&self) -> Option<(usize, &[String])> {
        match &self.kind {
            Kind::Path(alias, path) => Some((*alias, path)),
            Kind::Program(_) => None,
        }
    }

    /// The fields this expression selects below the driving source alias, if it is a plain
    /// path of it.
    pub fn plain_path(&self) -> Option<&[String]> {
        match &self.kind {
            Kind::Path(0, path) => Some(path),
            Kind::Path(..) | Kind::Program(_) => None,
        }
    }

    /// Evaluates the expression on `rows` (the JSON object of each alias in scope, in order;
    /// `None` for a lookup without a partner) whose CEL bindings are `scope`.
    pub fn evaluate<'r>(
        &self,
        rows: &[Option<&'r Json>],
        scope: &Context<'_, '_>,
    ) -> Result<Evaluated<'r>, RecordError> {
        match &self.kind {
            Kind::Path(alias, path) => match rows.get(*alias).copied().flatten() {
                Some(record) => self.select(record, path).map(Evaluated::Json),
                None => Ok(Evaluated::Json(None)),
            },
            Kind::Program(program) => {
                program
                    .execute(scope)
                    .map(Evaluated::Cel)
                    .map_err(|source| RecordError::Evaluation {
                        site: self.site.clone(),
                        expr: self.text.clone(),
                        source: Box::new(source),
                    })
            }
        }
    }

    fn select<'r>(
        &self,
        record: &'r Json,
        path: &[String],
    ) -> Result<Option<&'r Json>, RecordError> {
        let mut current = record;
        for (i, field) in path.iter().enumerate() {
            current = match current {
                Json::Object(map) => match map.get(field) {
                    Some(Json::Null) | None => return Ok(None),
                    Some(next) => next,
                },
                other => {
                    return Err(RecordError::NotTraversable {
                        site: self.site.clone(),
                        expr: self.text.clone(),
                        at: path[..i].join("."),
                        found: json_kind(other),
                    });
                }
            };
        }
        Ok(Some(current))
    }
}
