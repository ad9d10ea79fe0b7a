//! One compiled expression of a product: a plain field path read straight from the record
//! JSON (a missing field is null), or a CEL program evaluated with the source alias bound
//! to the record as a map.

use std::sync::Arc;

use cel::{Context, Env, Program};
use serde_json::Value as Json;
use sluice_schemas::validate::expr::analyze;

use super::convert::json_kind;
use super::error::{RecordError, Site, TransformError};

/// What an expression evaluates to on one record.
pub(crate) enum Evaluated<'r> {
    /// A value read from the record by a plain path; `None` when a field on the way is
    /// missing or null.
    Json(Option<&'r Json>),
    /// A CEL result.
    Cel(cel::Value),
}

/// An expression compiled once per job.
#[derive(Debug)]
pub(crate) struct Compiled {
    /// The expression as written.
    pub text: String,
    /// Where it sits in the product.
    pub site: Site,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// A plain path below the source alias: the fields to select, outermost first.
    Path(Vec<String>),
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
    /// Parses `text`, checks that it reads only `source` and calls only known functions, and
    /// compiles it.
    pub fn new(env: &Env, site: Site, text: &str, source: &str) -> Result<Self, TransformError> {
        let parse_error = |reason: String| TransformError::Parse {
            site: site.clone(),
            expr: text.to_owned(),
            reason,
        };
        let analysis = analyze(text).map_err(parse_error)?;
        if let Some(r) = analysis.refs.iter().find(|r| r.root != source) {
            return Err(TransformError::UnknownName {
                site,
                root: r.root.clone(),
                source_alias: source.to_owned(),
            });
        }
        if !analysis.unknown_functions.is_empty() {
            return Err(TransformError::UnknownFunctions {
                site,
                functions: analysis.unknown_functions,
            });
        }
        let kind = match analysis.plain_path {
            Some(path) if path.root == source => Kind::Path(path.path),
            _ => Kind::Program(env.compile(text).map_err(|e| {
                parse_error(e.to_string().lines().next().unwrap_or_default().to_owned())
            })?),
        };
        Ok(Compiled {
            text: text.to_owned(),
            site,
            kind,
        })
    }

    /// The fields this expression selects below the source alias, if it is a plain path.
    pub fn plain_path(&self) -> Option<&[String]> {
        match &self.kind {
            Kind::Path(path) => Some(path),
            Kind::Program(_) => None,
        }
    }

    /// Evaluates the expression on `record` (the JSON object) whose CEL binding is `scope`.
    pub fn evaluate<'r>(
        &self,
        record: &'r Json,
        scope: &Context<'_, '_>,
    ) -> Result<Evaluated<'r>, RecordError> {
        match &self.kind {
            Kind::Path(path) => self.select(record, path).map(Evaluated::Json),
            Kind::Program(program) => {
                program
                    .execute(scope)
                    .map(Evaluated::Cel)
                    .map_err(|source| RecordError::Evaluation {
                        site: self.site.clone(),
                        expr: self.text.clone(),
                        source,
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
