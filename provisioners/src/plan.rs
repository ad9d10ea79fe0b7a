//! What every target plan shares: the request ([`TargetRequest`]), how rows are identified
//! in a target ([`RowIdentity`]), the plan of any target type ([`TargetPlan`]) and why a plan
//! cannot be made ([`PlanError`]).
//!
//! Plans are pure: derived from the product and its output schema with no I/O, so they can
//! be shown before approval, snapshot-tested, and executed later by the provisioners.

use serde::Serialize;
use serde_json::{Map, Value};
use sluice_schemas::output::OutputSchema;
use sluice_schemas::time::TimeError;
use sluice_schemas::{FieldType, Isolation, TargetType, WriteMode};

use crate::elasticsearch::{ElasticsearchPlan, plan_elasticsearch};
use crate::postgres::{PostgresPlan, plan_postgres};
use crate::quote::QuoteError;
use crate::redis::{RedisPlan, plan_redis};

/// The prefix of every name Sluice keeps for itself in a target (columns, properties, hash
/// fields). Validation refuses output fields that start with it; plans check again.
pub const RESERVED_PREFIX: &str = "_sluice";
/// The bookkeeping column/property holding a row's version: the offset of the output-topic
/// record it was written from, so a conditional upsert never replaces a newer row with an
/// older one.
pub const VERSION_FIELD: &str = "_sluice_version";
/// The column holding a computed output key that is not itself an output field.
pub const KEY_FIELD: &str = "_sluice_key";
/// The column holding, in append mode, the output-topic partition a row was written from.
pub const PARTITION_FIELD: &str = "_sluice_partition";
/// The column holding, in append mode, the output-topic offset a row was written from.
pub const OFFSET_FIELD: &str = "_sluice_offset";

/// Why a plan cannot be made. Validation rules most of these out; plans check again rather
/// than emit something wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// A name cannot be put into the target's language.
    #[error(transparent)]
    Name(#[from] QuoteError),
    /// Versions count from 1.
    #[error("product versions count from 1; got 0")]
    ZeroVersion,
    /// The cluster's isolation does not fit its type.
    #[error("{target_type} targets cannot be isolated by `{}`", isolation_name(.isolation))]
    Isolation {
        /// The target type.
        target_type: TargetType,
        /// The isolation asked for.
        isolation: Isolation,
    },
    /// An upsert target needs an output key.
    #[error("upsert targets need an output key (`spec.key`)")]
    MissingKey,
    /// The output key has a type no target can key by.
    #[error("an output key of type {} cannot identify a row; expected string or integer", .0.as_str())]
    KeyType(FieldType),
    /// The output key names an output field that does not exist.
    #[error("the output key names field `{0}`, which is not an output field")]
    UnknownKeyField(String),
    /// An output field uses a name Sluice keeps for itself.
    #[error("output field `{0}` starts with `{RESERVED_PREFIX}`, which Sluice keeps for itself")]
    ReservedField(String),
    /// An output field appears twice.
    #[error("output field `{0}` appears twice")]
    DuplicateField(String),
    /// An output field is named like an Elasticsearch metadata field.
    #[error("output field `{0}` is an Elasticsearch/OpenSearch metadata field name")]
    MetadataField(String),
    /// The target type cannot take this write mode.
    #[error("{0} targets hold one value per key; use upsert")]
    AppendUnsupported(TargetType),
    /// A target option has a bad value.
    #[error("target option `{option}` {expected}")]
    BadOption {
        /// The option's name.
        option: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// A duration option does not parse.
    #[error("target option `{option}` is not a usable duration")]
    BadDuration {
        /// The option's name.
        option: &'static str,
        /// Why it does not parse.
        #[source]
        source: TimeError,
    },
}

/// One version of one product's target, as the plans of every target type need it.
#[derive(Debug, Clone, Copy)]
pub struct TargetRequest<'a> {
    /// The owning team (a DNS-1123 label after validation).
    pub team: &'a str,
    /// The product's name (a DNS-1123 label after validation).
    pub product: &'a str,
    /// The version being planned, from 1; a rebuild plans version N+1 beside N.
    pub version: u32,
    /// `spec.target.name`: the PostgreSQL view, Elasticsearch alias or Redis key prefix.
    pub name: &'a str,
    /// `upsert` or `append`.
    pub mode: WriteMode,
    /// `spec.target.options`.
    pub options: &'a Map<String, Value>,
    /// The derived output schema.
    pub output: &'a OutputSchema,
}

impl TargetRequest<'_> {
    /// How rows of this request are identified in the target, after checking the output
    /// fields (no reserved or duplicate names) and the version.
    pub fn identity(&self) -> Result<RowIdentity, PlanError> {
        if self.version == 0 {
            return Err(PlanError::ZeroVersion);
        }
        let mut seen = std::collections::HashSet::new();
        for field in &self.output.fields {
            if field.name.starts_with(RESERVED_PREFIX) {
                return Err(PlanError::ReservedField(field.name.clone()));
            }
            if !seen.insert(field.name.as_str()) {
                return Err(PlanError::DuplicateField(field.name.clone()));
            }
        }
        RowIdentity::of(self.mode, self.output)
    }
}

/// How a target identifies a row, so that re-delivered records overwrite instead of
/// duplicating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum RowIdentity {
    /// Upsert: the output key, which is the output field `field`.
    KeyField {
        /// The output field that is the key.
        field: String,
        /// Its type (string or integer).
        key_type: FieldType,
    },
    /// Upsert: the output key computed by `expr`, which is not an output field, so targets
    /// keep it in a place of their own (PostgreSQL: the `_sluice_key` column).
    ComputedKey {
        /// The key expression.
        expr: String,
        /// Its type (string or integer).
        key_type: FieldType,
    },
    /// Append: the record's position (partition, offset) in the output topic, so appending
    /// is idempotent across re-delivery.
    TopicPosition,
}

impl RowIdentity {
    /// The identity of rows written in `mode` with `output`'s key.
    pub fn of(mode: WriteMode, output: &OutputSchema) -> Result<RowIdentity, PlanError> {
        if mode == WriteMode::Append {
            return Ok(RowIdentity::TopicPosition);
        }
        let key = output.key.as_ref().ok_or(PlanError::MissingKey)?;
        if !matches!(key.field_type, FieldType::String | FieldType::Integer) {
            return Err(PlanError::KeyType(key.field_type));
        }
        match &key.field {
            Some(field) => {
                if !output.fields.iter().any(|f| &f.name == field) {
                    return Err(PlanError::UnknownKeyField(field.clone()));
                }
                Ok(RowIdentity::KeyField {
                    field: field.clone(),
                    key_type: key.field_type,
                })
            }
            None => Ok(RowIdentity::ComputedKey {
                expr: key.expr.clone(),
                key_type: key.field_type,
            }),
        }
    }

    /// The identity in words, for summaries.
    pub fn describe(&self) -> String {
        match self {
            RowIdentity::KeyField { field, .. } => format!("the output key, field `{field}`"),
            RowIdentity::ComputedKey { expr, .. } => format!("the output key `{expr}`"),
            RowIdentity::TopicPosition => {
                "the record's output-topic partition and offset (append)".to_owned()
            }
        }
    }
}

/// The plan of a product's target, whatever its type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum TargetPlan {
    /// A PostgreSQL schema, versioned table, stable view and reader role.
    Postgres(PostgresPlan),
    /// An Elasticsearch/OpenSearch versioned index and stable alias.
    Elasticsearch(ElasticsearchPlan),
    /// A Redis versioned key layout, pointer key and reader ACL user.
    Redis(RedisPlan),
}

impl TargetPlan {
    /// The target type planned.
    pub fn target_type(&self) -> TargetType {
        match self {
            TargetPlan::Postgres(_) => TargetType::Postgres,
            TargetPlan::Elasticsearch(_) => TargetType::Elasticsearch,
            TargetPlan::Redis(_) => TargetType::Redis,
        }
    }

    /// The plan in human-readable lines: PostgreSQL DDL, the Elasticsearch index body and
    /// alias actions as pretty JSON, the Redis key layout and ACL rule.
    pub fn summary(&self) -> Vec<String> {
        match self {
            TargetPlan::Postgres(p) => p.summary(),
            TargetPlan::Elasticsearch(p) => p.summary(),
            TargetPlan::Redis(p) => p.summary(),
        }
    }
}

/// Plans the target of `request` in a cluster of `target_type` isolated by `isolation`.
pub fn plan_target(
    request: &TargetRequest<'_>,
    target_type: TargetType,
    isolation: Isolation,
) -> Result<TargetPlan, PlanError> {
    let wrong_isolation = || PlanError::Isolation {
        target_type,
        isolation,
    };
    match target_type {
        TargetType::Postgres => plan_postgres(request, isolation).map(TargetPlan::Postgres),
        TargetType::Elasticsearch if isolation == Isolation::Index => {
            plan_elasticsearch(request).map(TargetPlan::Elasticsearch)
        }
        TargetType::Redis if isolation == Isolation::AclPrefix => {
            plan_redis(request).map(TargetPlan::Redis)
        }
        TargetType::Elasticsearch | TargetType::Redis => Err(wrong_isolation()),
    }
}

/// The spelling of an isolation in specs.
fn isolation_name(isolation: &Isolation) -> &'static str {
    match isolation {
        Isolation::Database => "database",
        Isolation::Schema => "schema",
        Isolation::AclPrefix => "acl-prefix",
        Isolation::Index => "index",
    }
}

/// Splits pretty-printed JSON into summary lines.
pub(crate) fn json_lines(value: &Value) -> Vec<String> {
    serde_json::to_string_pretty(value)
        .unwrap_or_else(|_| value.to_string())
        .lines()
        .map(str::to_owned)
        .collect()
}
