//! The Elasticsearch/OpenSearch plan: the body of `PUT /<index>` (settings and a strict
//! mapping derived from the output schema) and of `POST /_aliases`.
//!
//! Type mapping: string→`keyword`, integer→`long`, number→`double`, boolean→`boolean`,
//! timestamp→`date`, object→`object` with `dynamic: true`, array→`object` with
//! `enabled: false` (see [`property_mapping`] for why). The root mapping is
//! `dynamic: strict`, so a record with a field outside the output schema is refused rather
//! than silently widening the index.

use serde::Serialize;
use serde_json::{Value, json};
use sluice_schemas::FieldType;

use crate::plan::{PlanError, RowIdentity, TargetRequest, VERSION_FIELD, json_lines};
use crate::quote::es_index_name;

/// Field names Elasticsearch/OpenSearch reserve for document metadata; an output field
/// cannot take one.
pub const METADATA_FIELDS: &[&str] = &[
    "_id",
    "_index",
    "_source",
    "_routing",
    "_field_names",
    "_ignored",
    "_doc_count",
    "_tier",
    "_seq_no",
    "_primary_term",
    "_version",
    "_data_stream_timestamp",
    "_meta",
    "_type",
    "_size",
    "_all",
    "_uid",
    "_parent",
    "_timestamp",
    "_ttl",
];

const DEFAULT_SHARDS: u64 = 1;
const DEFAULT_REPLICAS: u64 = 1;

/// The mapping of one property of an output field type.
///
/// - `object` → `{"type": "object", "dynamic": true}`: the output schema does not say what
///   is inside an object, so its sub-fields are mapped as they first appear and stay
///   searchable (`address.city`). `flattened` would be safer against mapping explosion but
///   is Elasticsearch-only (OpenSearch has `flat_object` instead, from 2.7), and the root
///   stays `strict`, so only the inside of declared objects can grow.
/// - `array` → `{"type": "object", "enabled": false}`: Elasticsearch has no array type —
///   every field is multi-valued, but all values must fit one mapping — and the output
///   schema does not give the item type. A disabled object accepts any JSON value (arrays
///   of scalars, of objects, mixed) without parsing it: the array is kept in `_source` and
///   returned to readers, but not searchable. Mapping it as `keyword` would instead refuse
///   every array of objects.
pub fn property_mapping(field_type: FieldType) -> Value {
    match field_type {
        FieldType::String => json!({"type": "keyword"}),
        FieldType::Integer => json!({"type": "long"}),
        FieldType::Number => json!({"type": "double"}),
        FieldType::Boolean => json!({"type": "boolean"}),
        FieldType::Timestamp => json!({"type": "date"}),
        FieldType::Object => json!({"type": "object", "dynamic": true}),
        FieldType::Array => json!({"type": "object", "enabled": false}),
    }
}

/// What Sluice creates in Elasticsearch/OpenSearch for one product version.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ElasticsearchPlan {
    /// The index of this version, `<name>_v<N>`; safe in a URL path as is.
    pub index: String,
    /// The stable alias readers use, `<name>`.
    pub alias: String,
    /// Primary shards (option `shards`, default 1).
    pub shards: u64,
    /// Replicas per shard (option `replicas`, default 1).
    pub replicas: u64,
    /// How documents are identified: upsert — the document `_id` is the output key (the
    /// sink can index with `version_type=external_gte` and the `_sluice_version`, so an
    /// older record never replaces a newer one); append — `<partition>-<offset>` of the
    /// record in the output topic.
    pub identity: RowIdentity,
    /// The body of `PUT /<index>`: settings and mappings.
    pub create_index: Value,
    /// The body of `POST /_aliases` pointing the alias at the index. When a rebuild swaps
    /// versions, the provisioner adds the `remove` of the old index to the same request so
    /// the switch is atomic.
    pub aliases: Value,
}

impl ElasticsearchPlan {
    /// The plan in human-readable lines: index and alias, then both request bodies.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "Elasticsearch/OpenSearch index `{}` ({} shard(s), {} replica(s)), read through alias `{}`",
                self.index, self.shards, self.replicas, self.alias
            ),
            format!("Documents identified by {}", self.identity.describe()),
            format!("PUT /{}", self.index),
        ];
        lines.extend(json_lines(&self.create_index));
        lines.push("POST /_aliases".to_owned());
        lines.extend(json_lines(&self.aliases));
        lines
    }
}

/// Plans the index and alias of `request`. Options: `shards` (≥ 1) and `replicas` (≥ 0),
/// non-negative integers.
pub fn plan_elasticsearch(request: &TargetRequest<'_>) -> Result<ElasticsearchPlan, PlanError> {
    let identity = request.identity()?;
    let alias = es_index_name(request.name)?.to_owned();
    let index = es_index_name(&format!("{}_v{}", request.name, request.version))?.to_owned();
    let shards = count_option(request, "shards", DEFAULT_SHARDS, 1)?;
    let replicas = count_option(request, "replicas", DEFAULT_REPLICAS, 0)?;

    let mut properties = serde_json::Map::new();
    for field in &request.output.fields {
        if METADATA_FIELDS.contains(&field.name.as_str()) {
            return Err(PlanError::MetadataField(field.name.clone()));
        }
        properties.insert(field.name.clone(), property_mapping(field.field_type));
    }
    properties.insert(VERSION_FIELD.to_owned(), json!({"type": "long"}));

    let create_index = json!({
        "settings": {
            "number_of_shards": shards,
            "number_of_replicas": replicas,
        },
        "mappings": {
            "dynamic": "strict",
            "properties": properties,
        },
    });
    let aliases = json!({
        "actions": [{"add": {"index": index, "alias": alias}}],
    });
    Ok(ElasticsearchPlan {
        index,
        alias,
        shards,
        replicas,
        identity,
        create_index,
        aliases,
    })
}

fn count_option(
    request: &TargetRequest<'_>,
    option: &'static str,
    default: u64,
    min: u64,
) -> Result<u64, PlanError> {
    match request.options.get(option) {
        None => Ok(default),
        Some(value) => match value.as_u64() {
            Some(n) if n >= min => Ok(n),
            _ if min == 0 => Err(PlanError::BadOption {
                option,
                expected: "must be a non-negative integer",
            }),
            _ => Err(PlanError::BadOption {
                option,
                expected: "must be a positive integer",
            }),
        },
    }
}
