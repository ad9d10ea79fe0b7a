//! The per-record transformation of a product's job: its filter, key and field expressions,
//! compiled once per job ([`CompiledProduct::compile`]) and applied to every record of its
//! driving source ([`CompiledProduct::apply_with`], looking join partners up in the tables of
//! [`CompiledProduct::lookups`]).
//!
//! In `upsert` mode the target is a materialized view (DESIGN §3): for each product key it
//! holds the row the spec yields from the *latest* record of that key. So every record is
//! first addressed by its product key, and then says what that key holds now: a row, or no
//! row (filtered out, or deleted by a tombstone). In `append` mode nothing is ever deleted,
//! and only records that pass the filter are written.
//!
//! `lookup` joins are run (DESIGN §3): each record of the driving stream is joined with the
//! current row of each table for its join key, a left join unless `inner: true`. A `window`
//! join (at most one) is an inner join with a record of another stream that the runtime
//! pairs the record with ([`CompiledProduct::window`]). The runtime keeps the tables and the
//! window state; this module only says which ones and reads them through a function.

mod convert;
mod error;
mod expr;
mod join;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::sync::Arc;

use cel::Context;
use serde_json::{Map, Value as Json};
use sluice_schemas::output::OutputSchema;
use sluice_schemas::{DataProductSpec, FieldType, WriteMode};

pub use error::{RecordError, Site, TransformError};
pub use join::{LookupTable, WindowJoin};

use convert::{cel_kind, cel_to_output, json_kind, json_to_cel, json_to_output};
use error::shorten;
use expr::{Compiled, Evaluated, KeyText};
use join::LookupPlan;

/// What one record means for the target, its row built as `R`: a map of the output fields
/// ([`Emit`]) or the JSON text the job writes to the output topic ([`RowJson`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted<R> {
    /// The product key as text (integers in decimal); empty in append mode, where rows are
    /// not addressed by key.
    pub key: String,
    /// The output row, in output-schema field order; `None`: the key has no row (its latest
    /// record is filtered out, or a tombstone), so the target deletes it.
    pub row: Option<R>,
}

/// What one record means for the target, its row as a map of the output fields.
pub type Emit = Emitted<Map<String, Json>>;

/// An output row as the text of a JSON object, fields in output-schema order: what the job
/// writes to the output topic, built without a map (whose hashing, key copies and
/// insertions the job would only throw away).
#[derive(Debug, Clone, PartialEq)]
pub struct RowJson(pub Vec<u8>);

/// How an applied record's row is built from its values.
pub trait RowForm: Sized {
    /// The row of `values`, one per output field of `product`, in output-schema order
    /// (borrowed from the record where it holds them as they are written).
    fn build(product: &CompiledProduct, values: Vec<Cow<'_, Json>>) -> Result<Self, RecordError>;
}

impl RowForm for Map<String, Json> {
    fn build(product: &CompiledProduct, values: Vec<Cow<'_, Json>>) -> Result<Self, RecordError> {
        Ok(product
            .fields
            .iter()
            .zip(values)
            .map(|(field, value)| (field.name.clone(), value.into_owned()))
            .collect())
    }
}

impl RowForm for RowJson {
    fn build(product: &CompiledProduct, values: Vec<Cow<'_, Json>>) -> Result<Self, RecordError> {
        let mut out = Vec::with_capacity(product.row_bytes_hint);
        out.push(b'{');
        for (i, (field, value)) in product.fields.iter().zip(&values).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(field.json_name.as_bytes());
            out.push(b':');
            serde_json::to_writer(&mut out, value.as_ref()).map_err(|e| {
                RecordError::RowNotWritten {
                    reason: e.to_string(),
                }
            })?;
        }
        out.push(b'}');
        Ok(RowJson(out))
    }
}

/// How a tombstone (a record without a value) is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tombstones {
    /// The product key is the source's key field, so the Kafka record key is the product
    /// key.
    RecordKey,
    /// The product key is computed from other fields, which a tombstone does not carry.
    Unaddressable,
}

/// The product key: its expression, type and how tombstones are addressed.
#[derive(Debug)]
struct KeyPlan {
    expr: Compiled,
    key_type: FieldType,
    tombstones: Tombstones,
}

/// One output field.
#[derive(Debug)]
struct FieldPlan {
    name: String,
    /// `name` as a JSON string, quoted and escaped.
    json_name: String,
    field_type: FieldType,
    nullable: bool,
    expr: Compiled,
}

/// A product's lookups and its filter, key and field expressions, compiled once.
///
/// It holds no per-record state; [`CompiledProduct::apply_with`] may be called from any
/// number of records in turn.
pub struct CompiledProduct {
    /// The driving source alias.
    source: String,
    /// The driving source alias, then each join's right alias in join order: the position
    /// of each alias's row in a record's rows.
    aliases: Vec<String>,
    /// Every join's right side, in join order.
    joins: Vec<LookupTable>,
    /// How each join is run, parallel to `joins`.
    plans: Vec<LookupPlan>,
    /// The lookup joins' tables only, in join order.
    lookups: Vec<LookupTable>,
    /// The window join, if any.
    window: Option<WindowJoin>,
    mode: WriteMode,
    /// The CEL context every record's scope is a child of.
    base: Context<'static, 'static>,
    filter: Option<Compiled>,
    /// `Some` in upsert mode only.
    key: Option<KeyPlan>,
    /// The source dataset's JSON Schema, if stated: guides number conversion into CEL.
    source_schema: Option<Json>,
    fields: Vec<FieldPlan>,
    /// The bytes a [`RowJson`] starts with room for: its names and punctuation, plus 16
    /// per value.
    row_bytes_hint: usize,
    /// Per alias (as `aliases`): whether some expression reads it through CEL. Records of
    /// the others are never converted to CEL values, the larger part of a record's cost
    /// when every expression is a plain path.
    in_cel: Vec<bool>,
    /// Per alias (as `aliases`): the top-level fields its expressions read, when each reads
    /// it by a plain path below it; `None` when one reads it whole or through CEL.
    reads: Vec<Option<Vec<String>>>,
}

impl std::fmt::Debug for CompiledProduct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledProduct")
            .field("source", &self.source)
            .field("joins", &self.joins)
            .field("window", &self.window)
            .field("plans", &self.plans)
            .field("mode", &self.mode)
            .field("filter", &self.filter)
            .field("key", &self.key)
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}

impl CompiledProduct {
    /// Compiles `spec` whose validated output schema is `output`.
    ///
    /// A product reads one driving stream source (the one that is never a join's `right`),
    /// looks rows up in the tables its `lookup` joins name ([`CompiledProduct::lookups`]) and
    /// joins at most one other stream in an event-time window ([`CompiledProduct::window`]).
    /// Lookups with `propagate: true` compile, and the runtime recomputes what they affect.
    /// Each join's `on` must compare a field path of a source in scope before it with a
    /// top-level field of the joined source. Upsert products need a key of type string or integer.
    /// Every expression is parsed, checked to read only the product's sources and call only
    /// functions the runtime provides, and compiled here, never per record.
    ///
    /// Tombstones are addressed by their Kafka record key when the product key is a plain
    /// top-level field of the source (`o.id`): the dataset's `key` field, whose value is the
    /// record key. Use [`CompiledProduct::with_source_key`] to state the dataset's key field
    /// when it is known.
    pub fn compile(
        spec: &DataProductSpec,
        output: &OutputSchema,
    ) -> Result<CompiledProduct, TransformError> {
        let env = expr::environment()?;
        let sources = join::plan(spec, &env)?;
        let in_scope: Vec<&str> = sources.aliases.iter().map(String::as_str).collect();
        let base = expr::base_context(Arc::clone(&env))?;

        let filter = spec
            .filter
            .as_deref()
            .map(|text| Compiled::new(&env, Site::Filter, text, &in_scope))
            .transpose()?;

        let key = match spec.target.mode {
            WriteMode::Append => None,
            WriteMode::Upsert => {
                let (Some(text), Some(out_key)) = (spec.key.as_deref(), output.key.as_ref()) else {
                    return Err(TransformError::MissingKey);
                };
                if !matches!(out_key.field_type, FieldType::String | FieldType::Integer) {
                    return Err(TransformError::KeyType(out_key.field_type));
                }
                let expr = Compiled::new(&env, Site::Key, text, &in_scope)?;
                let tombstones = match expr.plain_path() {
                    Some([_]) => Tombstones::RecordKey,
                    _ => Tombstones::Unaddressable,
                };
                Some(KeyPlan {
                    expr,
                    key_type: out_key.field_type,
                    tombstones,
                })
            }
        };

        // The output schema is the shape of rows; a spec field without a column is not
        // written, but a column the spec does not compute means another spec.
        if output
            .fields
            .iter()
            .any(|f| !spec.fields.contains_key(f.name.as_str()))
        {
            return Err(TransformError::SchemaMismatch(
                "it has fields the spec does not compute",
            ));
        }
        let fields = output
            .fields
            .iter()
            .map(|f| {
                let text = spec
                    .fields
                    .get(f.name.as_str())
                    .map_or(f.expr.as_str(), |s| s.expr());
                Ok(FieldPlan {
                    name: f.name.clone(),
                    json_name: Json::String(f.name.clone()).to_string(),
                    field_type: f.field_type,
                    nullable: f.nullable,
                    expr: Compiled::new(&env, Site::Field(f.name.clone()), text, &in_scope)?,
                })
            })
            .collect::<Result<Vec<_>, TransformError>>()?;

        let mut in_cel = vec![false; sources.aliases.len()];
        let mut reads: Vec<Option<Vec<String>>> = vec![Some(Vec::new()); sources.aliases.len()];
        let compiled = filter
            .iter()
            .chain(key.as_ref().map(|k| &k.expr))
            .chain(fields.iter().map(|f| &f.expr))
            .chain(sources.plans.iter().map(|p| &p.left));
        for expr in compiled {
            for &i in expr.cel_reads() {
                if let Some(slot) = in_cel.get_mut(i) {
                    *slot = true;
                }
                if let Some(slot) = reads.get_mut(i) {
                    *slot = None;
                }
            }
            if let Some((i, path)) = expr.path()
                && let Some(slot) = reads.get_mut(i)
            {
                match (slot.as_mut(), path.first()) {
                    (Some(fields), Some(root)) if !fields.contains(root) => {
                        fields.push(root.clone());
                    }
                    // The alias itself, with no field below it: its rows are read whole.
                    (_, None) => *slot = None,
                    _ => {}
                }
            }
        }
        let lookups = sources
            .joins
            .iter()
            .zip(&sources.plans)
            .filter(|(_, plan)| !plan.window)
            .map(|(join, _)| join.clone())
            .collect();
        let row_bytes_hint = 2 + fields.iter().map(|f| f.json_name.len() + 18).sum::<usize>();
        Ok(CompiledProduct {
            source: sources.aliases[0].clone(),
            aliases: sources.aliases.clone(),
            joins: sources.joins,
            plans: sources.plans,
            lookups,
            window: sources.window,
            mode: spec.target.mode,
            base,
            filter,
            key,
            fields,
            row_bytes_hint,
            source_schema: None,
            in_cel,
            reads,
        })
    }

    /// States the source dataset's key field (its `key`, whose value is the Kafka record
    /// key), or that it has none. Tombstones are then addressed by their record key only if
    /// the product key is exactly that field; otherwise they give `Ok(None)`.
    pub fn with_source_key(mut self, key_field: Option<&str>) -> Self {
        if let Some(key) = &mut self.key {
            let is_record_key = matches!(
                (key.expr.plain_path(), key_field),
                (Some([field]), Some(k)) if field == k
            );
            key.tombstones = if is_record_key {
                Tombstones::RecordKey
            } else {
                Tombstones::Unaddressable
            };
        }
        self
    }

    /// States the source dataset's JSON Schema (its current version). Record fields it types
    /// `number` then enter CEL as doubles even when written as integers (`12`), so that
    /// `o.amount * 100.0` works for every record; without it a JSON integer is a CEL `int`,
    /// and mixing it with a double fails that record.
    pub fn with_source_schema(mut self, schema: Json) -> Self {
        self.source_schema = Some(schema);
        self
    }

    /// States the JSON Schema (its current version) of the table looked up as `alias` (or of
    /// the stream joined in a window as `alias`), as [`CompiledProduct::with_source_schema`]
    /// does for the driving source. An alias that is not a join's is ignored.
    pub fn with_table_schema(mut self, alias: &str, schema: Json) -> Self {
        if let Some(i) = self.joins.iter().position(|t| t.alias == alias) {
            self.plans[i].schema = Some(schema);
        }
        self
    }

    /// The driving source alias this product reads records of.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The tables this product looks rows up in, in join order (empty without lookups).
    pub fn lookups(&self) -> &[LookupTable] {
        &self.lookups
    }

    /// The top-level fields of the rows of the table looked up as `alias` that this product
    /// reads, when it reads only those (every expression reading `alias` is a plain path
    /// below it); `None` when it reads the rows whole (a CEL program reads `alias`), or
    /// `alias` is not a lookup's. The runtime then need not build the other members of a
    /// row it finds.
    pub fn table_fields(&self, alias: &str) -> Option<&[String]> {
        if !self.lookups.iter().any(|t| t.alias == alias) {
            return None;
        }
        let i = self.aliases.iter().position(|a| a == alias)?;
        self.reads.get(i)?.as_deref()
    }

    /// The top-level fields of a driving-source record that this product reads, when it
    /// reads only those (every expression reading the driving source is a plain path below
    /// it); `None` when it reads records whole (a CEL program reads the driving source).
    /// The runtime then need not build a record's other members; a record it keeps (a
    /// window join's, `propagate`'s) is transformed again by this product only.
    pub fn source_fields(&self) -> Option<&[String]> {
        self.reads.first()?.as_deref()
    }

    /// The stream this product joins in an event-time window, if any. Its partner rows come
    /// through the same `lookup` function as table rows: for the window join's alias and the
    /// record's join key, the runtime answers with the partner it pairs the record with.
    pub fn window(&self) -> Option<&WindowJoin> {
        self.window.as_ref()
    }

    /// The write mode the product was compiled for.
    pub fn mode(&self) -> WriteMode {
        self.mode
    }

    /// Transforms one driving-source record as if no table had rows: for products without
    /// lookups, what [`CompiledProduct::apply_with`] does.
    pub fn apply(
        &self,
        record_key: Option<&[u8]>,
        value: Option<&Json>,
    ) -> Result<Option<Emit>, RecordError> {
        self.apply_with(record_key, value, &|_, _| None)
    }

    /// Transforms one record of the driving source (Kafka key bytes, value JSON or `None`
    /// for a tombstone) into what must be written for its product key, looking join
    /// partners up with `lookup(alias, key)`: the current row of the table joined as
    /// `alias` whose [`LookupTable::key_field`] is `key` (as text, integers in decimal), or
    /// `None` when it has none.
    ///
    /// Lookups run in join order: each join key (the left side of `on`, e.g.
    /// `o.customer_id`) is evaluated on the rows bound so far and the table's row bound to
    /// its alias, in CEL and in plain paths. A join key that is null, or a key without a row,
    /// leaves the alias null: plain paths below it are null (fields from a lookup's right
    /// side are nullable in the output schema), and CEL sees `c == null`, so expressions
    /// reading fields of `c` must guard it (`c != null && c.tier == "gold"`), as they must
    /// guard a missing field of the record. With `inner: true`, a record without a partner
    /// has no row: `Emit { key, row: None }` in upsert mode, `Ok(None)` in append mode.
    ///
    /// Upsert mode:
    /// - a record with a value is addressed by the key expression; if the filter is false the
    ///   result is `Emit { key, row: None }` (the key disappears), otherwise the row;
    /// - a tombstone is addressed by its Kafka record key (UTF-8 text; for an integer key, an
    ///   integer in decimal) when the product key is the source's key field, and gives
    ///   `Emit { key, row: None }`. When the product key is computed from other fields a
    ///   tombstone addresses nothing and gives `Ok(None)`. Tombstones look nothing up.
    ///
    /// Append mode: there is no key-driven deletion. Filtered-out records and tombstones give
    /// `Ok(None)`; other records `Emit { key: "", row: Some(..) }`. The key expression is not
    /// evaluated.
    ///
    /// A record that cannot be processed (a value that is not a JSON object, an expression
    /// that fails, a type mismatch, a null in a field that is not nullable, a key that is
    /// null or not a string/integer, a join key that is not a string/integer, a table row
    /// that is not an object) gives a [`RecordError`]; this never panics.
    pub fn apply_with<'t>(
        &self,
        record_key: Option<&[u8]>,
        value: Option<&Json>,
        lookup: &dyn Fn(&str, &str) -> Option<&'t Json>,
    ) -> Result<Option<Emit>, RecordError> {
        self.apply_as(record_key, value, lookup, None)
    }

    /// [`CompiledProduct::apply_with`], also telling which table rows the record was joined
    /// with: `(alias, join key)` for every lookup whose join key is not null, so the runtime
    /// can find the output rows to compute again when such a row changes (`propagate`).
    pub fn apply_traced<'t>(
        &self,
        record_key: Option<&[u8]>,
        value: Option<&Json>,
        lookup: &dyn Fn(&str, &str) -> Option<&'t Json>,
        joined: &mut Vec<(String, String)>,
    ) -> Result<Option<Emit>, RecordError> {
        self.apply_as(record_key, value, lookup, Some(joined))
    }

    /// [`CompiledProduct::apply_with`], the row built as `R` (the job writes [`RowJson`]
    /// rows to the output topic without building maps), and with `joined` `Some`, what
    /// [`CompiledProduct::apply_traced`] tells; `None` spares that list's copies of aliases
    /// and keys when nothing reads it.
    pub fn apply_as<'t, R: RowForm>(
        &self,
        record_key: Option<&[u8]>,
        value: Option<&Json>,
        lookup: &dyn Fn(&str, &str) -> Option<&'t Json>,
        mut joined: Option<&mut Vec<(String, String)>>,
    ) -> Result<Option<Emitted<R>>, RecordError> {
        let Some(value) = value else {
            return self.tombstone(record_key);
        };
        if !value.is_object() {
            return Err(RecordError::NotAnObject {
                found: json_kind(value),
            });
        }
        let mut scope = self.base.new_inner_scope();
        if self.in_cel.first().copied().unwrap_or(true) {
            scope.add_variable_from_value(
                self.source.as_str(),
                json_to_cel(value, self.source_schema.as_ref()),
            );
        }
        let mut rows: Vec<Option<&Json>> = Vec::with_capacity(self.aliases.len());
        rows.push(Some(value));
        let mut partnerless = false;
        for (table, plan) in self.joins.iter().zip(&self.plans) {
            let row = match self.join_key(plan, &rows, &scope)? {
                Some(key) => {
                    let row = Self::partner(table, &key, lookup)?;
                    if let Some(joined) = joined.as_deref_mut() {
                        joined.push((table.alias.clone(), key.into_owned()));
                    }
                    row
                }
                None => None,
            };
            partnerless |= plan.inner && row.is_none();
            if self.in_cel.get(rows.len()).copied().unwrap_or(true) {
                scope.add_variable_from_value(
                    table.alias.as_str(),
                    row.map_or(cel::Value::Null, |r| json_to_cel(r, plan.schema.as_ref())),
                );
            }
            rows.push(row);
        }

        let key = match &self.key {
            Some(plan) => Some(self.key_of(plan, &rows, &scope)?),
            None => None,
        };
        let keep = !partnerless
            && match &self.filter {
                Some(filter) => self.passes(filter, &rows, &scope)?,
                None => true,
            };
        match (key, keep) {
            (Some(key), false) => Ok(Some(Emitted { key, row: None })),
            (None, false) => Ok(None),
            (key, true) => Ok(Some(Emitted {
                key: key.unwrap_or_default(),
                row: Some(R::build(self, self.row_values(&rows, &scope)?)?),
            })),
        }
    }

    /// The join key of a lookup as text; `None` when it is null.
    fn join_key<'r>(
        &self,
        plan: &LookupPlan,
        rows: &[Option<&'r Json>],
        scope: &Context<'_, '_>,
    ) -> Result<Option<Cow<'r, str>>, RecordError> {
        plan.left
            .evaluate(rows, scope)?
            .key_text()
            .map(|key| key.map(|k| k.text))
            .map_err(|found| RecordError::TypeMismatch {
                site: plan.left.site.clone(),
                expr: plan.left.text.clone(),
                expected: "a string or integer",
                found,
            })
    }

    /// The row `table` holds for `key`, if any; it must be an object.
    fn partner<'t>(
        table: &LookupTable,
        key: &str,
        lookup: &dyn Fn(&str, &str) -> Option<&'t Json>,
    ) -> Result<Option<&'t Json>, RecordError> {
        match lookup(&table.alias, key) {
            Some(row) if !row.is_object() => Err(RecordError::TableRowNotAnObject {
                alias: table.alias.clone(),
                key: shorten(key, 100),
                found: json_kind(row),
            }),
            row => Ok(row),
        }
    }

    fn tombstone<R>(&self, record_key: Option<&[u8]>) -> Result<Option<Emitted<R>>, RecordError> {
        let Some(plan) = &self.key else {
            return Ok(None);
        };
        if plan.tombstones == Tombstones::Unaddressable {
            return Ok(None);
        }
        let bytes = record_key.ok_or(RecordError::TombstoneWithoutKey)?;
        let text = std::str::from_utf8(bytes).map_err(RecordError::RecordKeyNotText)?;
        let key = match plan.key_type {
            FieldType::Integer => text
                .trim()
                .parse::<i64>()
                .map_err(|_| RecordError::RecordKeyNotInteger {
                    key: shorten(text, 100),
                })?
                .to_string(),
            _ => text.to_owned(),
        };
        Ok(Some(Emitted { key, row: None }))
    }

    fn key_of(
        &self,
        plan: &KeyPlan,
        rows: &[Option<&Json>],
        scope: &Context<'_, '_>,
    ) -> Result<String, RecordError> {
        let mismatch = |found: String| RecordError::TypeMismatch {
            site: Site::Key,
            expr: plan.expr.text.clone(),
            expected: if plan.key_type == FieldType::Integer {
                "an integer"
            } else {
                "a string or integer"
            },
            found,
        };
        let null = || RecordError::NullKey {
            expr: plan.expr.text.clone(),
        };
        let KeyText { text, is_integer } = plan
            .expr
            .evaluate(rows, scope)?
            .key_text()
            .map_err(mismatch)?
            .ok_or_else(null)?;
        if plan.key_type == FieldType::Integer && !is_integer {
            return Err(mismatch("a string".to_owned()));
        }
        Ok(text.into_owned())
    }

    fn passes(
        &self,
        filter: &Compiled,
        rows: &[Option<&Json>],
        scope: &Context<'_, '_>,
    ) -> Result<bool, RecordError> {
        let found = match filter.evaluate(rows, scope)? {
            Evaluated::Cel(cel::Value::Bool(b)) | Evaluated::Json(Some(&Json::Bool(b))) => {
                return Ok(b);
            }
            Evaluated::Cel(other) => cel_kind(&other),
            Evaluated::Json(Some(other)) => json_kind(other).to_owned(),
            Evaluated::Json(None) => "null".to_owned(),
        };
        Err(RecordError::TypeMismatch {
            site: Site::Filter,
            expr: filter.text.clone(),
            expected: "a boolean",
            found,
        })
    }

    /// The output fields' values, in output-schema order; those a record holds as they are
    /// written are borrowed from it.
    fn row_values<'r>(
        &self,
        rows: &[Option<&'r Json>],
        scope: &Context<'_, '_>,
    ) -> Result<Vec<Cow<'r, Json>>, RecordError> {
        let mut row = Vec::with_capacity(self.fields.len());
        for field in &self.fields {
            let converted = match field.expr.evaluate(rows, scope)? {
                Evaluated::Json(None) | Evaluated::Cel(cel::Value::Null) => None,
                Evaluated::Json(Some(v)) => Some(json_to_output(v, field.field_type)),
                Evaluated::Cel(v) => Some(cel_to_output(&v, field.field_type).map(Cow::Owned)),
            };
            let value = match converted {
                None if field.nullable => Cow::Owned(Json::Null),
                None => {
                    return Err(RecordError::NullNotAllowed {
                        field: field.name.clone(),
                        expr: field.expr.text.clone(),
                    });
                }
                Some(Ok(v)) => v,
                Some(Err(mismatch)) => {
                    return Err(RecordError::TypeMismatch {
                        site: field.expr.site.clone(),
                        expr: field.expr.text.clone(),
                        expected: field.field_type.as_str(),
                        found: mismatch.0,
                    });
                }
            };
            row.push(value);
        }
        Ok(row)
    }
}
