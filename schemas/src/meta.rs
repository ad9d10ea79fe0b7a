//! `apiVersion`, `kind` and `metadata`: the envelope every document shares.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names;

/// Identity and description of a resource, plus the fields the server maintains.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// The resource's name: a DNS-1123 label for products and target clusters, a catalog
    /// name (lowercase, dots, dashes, underscores) for datasets.
    #[schemars(length(min = 1, max = 128))]
    pub name: String,
    /// The team a data product belongs to (DNS-1123 label). Products are unique per team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(names::DNS_LABEL))]
    pub team: Option<String>,
    /// The team that owns a dataset and approves access to its classified or PII fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(names::DNS_LABEL))]
    pub owner: Option<String>,
    /// What this resource is for, in a sentence or two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,
    /// Free-form tags for search in the catalog.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 64)))]
    pub tags: Vec<String>,
    /// Key/value labels for selection by tools.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Server-maintained: increments whenever the spec changes. Ignored on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("readOnly" = true))]
    pub generation: Option<i64>,
    /// Server-maintained: changes on every write. Sent back on an update, a stale value
    /// makes the write fail with 409 instead of overwriting someone else's change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Server-maintained: when the resource was first stored (RFC 3339). Ignored on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("readOnly" = true))]
    pub creation_timestamp: Option<String>,
    /// Server-maintained: a unique id of this incarnation of the resource. Ignored on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("readOnly" = true))]
    pub uid: Option<String>,
}

impl ObjectMeta {
    /// Metadata with only a name.
    pub fn named(name: impl Into<String>) -> Self {
        ObjectMeta {
            name: name.into(),
            ..ObjectMeta::default()
        }
    }

    /// The same metadata without the server-maintained fields, as a user wrote it.
    pub fn user_part(&self) -> ObjectMeta {
        ObjectMeta {
            generation: None,
            resource_version: None,
            creation_timestamp: None,
            uid: None,
            ..self.clone()
        }
    }
}
