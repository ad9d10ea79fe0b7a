//! Executing an [`ElasticsearchPlan`] against a real OpenSearch or Elasticsearch 7+ over its
//! REST API: [`ElasticsearchProvisioner::ensure`] the version's index, its mapping and the
//! alias, [`ElasticsearchProvisioner::observe`] what exists, and
//! [`ElasticsearchProvisioner::delete`] what the product owns.
//!
//! Every operation is idempotent and level-triggered: it reads the cluster first and sends
//! only the requests that change something, so a converged `ensure` sends no mutating
//! request at all. Mapping changes are additive only (`PUT /<index>/_mapping` of the
//! missing properties); a property whose type differs from the plan is reported as
//! [`SearchProvisionError::MappingDrift`], since a mapped type can never change in place —
//! that needs a rebuild into version N+1.
//!
//! Index and alias names come from the plan, which checked them with
//! [`es_index_name`](crate::quote::es_index_name), so they are safe in a URL path as is.
//! Errors carry the HTTP status and the engine's error `type` and `reason`, never a request
//! body.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use super::plan::ElasticsearchPlan;

/// How often the index of a live product makes new documents searchable
/// (`index.refresh_interval`), set by [`ElasticsearchProvisioner::go_live`]. The engine's
/// default, one second, stays while the backfill writes: a refresh costs the engine a
/// segment, and the backfill's documents are not searched one by one. Once live, a record
/// becomes searchable at the first refresh after the engine acknowledged it: within this
/// interval, when the engine is not too busy to refresh on time. In one measured minute at
/// 10,000 documents a second, a quarter of a second cost the engine 6 % more CPU than one
/// second (see `docs/benchmarks.md`).
pub const LIVE_REFRESH_INTERVAL: &str = "250ms";

/// The index settings OpenSearch gets on top of the plan's when the provisioner creates an
/// index: no merge on refresh (`index.merge_on_flush.enabled: false`). OpenSearch's default
/// makes every refresh wait, up to ten seconds, for a merge of the segments it just wrote;
/// on a busy node that merge queues behind the background merges, so a document acknowledged
/// in a few hundred milliseconds became searchable only seconds later. The background merge
/// policy still merges those segments, without holding up the refresh. The setting is read
/// when the engine opens the index, so it is given at creation. Elasticsearch has no such
/// setting (and refuses unknown ones), so its indices are created with the plan's settings
/// only. Measured in `docs/benchmarks.md`.
pub const OPENSEARCH_INDEX_SETTINGS: &[(&str, bool)] = &[("merge_on_flush.enabled", false)];

/// How long one request may take before it is abandoned.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take, so an unreachable cluster fails fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an Elasticsearch/OpenSearch provisioning step failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchProvisionError {
    /// The HTTP client could not be built.
    #[error("Elasticsearch/OpenSearch: building the HTTP client failed")]
    Client(#[source] reqwest::Error),
    /// A request did not get a response (connection refused, timeout, ...), or its body
    /// could not be read.
    #[error("Elasticsearch/OpenSearch: {action}: the request failed")]
    Transport {
        /// What was being done, e.g. "creating the index".
        action: &'static str,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The engine answered with an error status.
    #[error("Elasticsearch/OpenSearch: {action}: HTTP {status}: {error_type}: {reason}")]
    Engine {
        /// What was being done.
        action: &'static str,
        /// The HTTP status of the answer.
        status: u16,
        /// The engine's error `type` (e.g. `resource_already_exists_exception`), or
        /// `unknown` when the answer had none.
        error_type: String,
        /// The engine's error `reason`.
        reason: String,
    },
    /// A successful answer did not have the expected shape.
    #[error("Elasticsearch/OpenSearch: {action}: unexpected response")]
    Response {
        /// What was being done.
        action: &'static str,
        /// The JSON decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// An existing property of the index has another type than the plan gives it; mapped
    /// types cannot change in place, so this needs a new version of the index.
    #[error(
        "Elasticsearch/OpenSearch: index `{index}` maps `{field}` as `{found}`, the plan as `{planned}`"
    )]
    MappingDrift {
        /// The index.
        index: String,
        /// The property.
        field: String,
        /// The planned type.
        planned: String,
        /// The type the index has.
        found: String,
    },
    /// The index has another number of primary shards than the plan; it is fixed at
    /// creation, so this needs a new version of the index.
    #[error(
        "Elasticsearch/OpenSearch: index `{index}` has {found} primary shard(s), the plan {planned}"
    )]
    ShardsDrift {
        /// The index.
        index: String,
        /// The planned number of primary shards.
        planned: u64,
        /// The number the index has.
        found: u64,
    },
}

/// The result type of this module.
pub type Result<T, E = SearchProvisionError> = std::result::Result<T, E>;

/// The plan's index as it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedIndex {
    /// Top-level mapping properties and their types (`object` for object properties,
    /// which the engine returns without a `type`).
    pub properties: BTreeMap<String, String>,
    /// `index.number_of_shards`.
    pub shards: Option<u64>,
    /// `index.number_of_replicas`.
    pub replicas: Option<u64>,
}

/// What exists in the engine of one plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchState {
    /// The plan's index, if it exists.
    pub index: Option<ObservedIndex>,
    /// The indices the plan's alias points at, sorted; empty when the alias does not exist.
    pub alias_indices: Vec<String>,
}

/// What [`ElasticsearchProvisioner::ensure`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnsureReport {
    /// Whether the index was created.
    pub created_index: bool,
    /// The properties added to an existing index's mapping, sorted.
    pub added_fields: Vec<String>,
    /// Whether the alias was created or moved to the plan's index.
    pub alias_moved: bool,
    /// The number of mutating requests sent; 0 when everything was already in place.
    pub mutations: u32,
}

/// What [`ElasticsearchProvisioner::delete`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteReport {
    /// The indices the alias was removed from, sorted.
    pub alias_removed_from: Vec<String>,
    /// The indices deleted, sorted.
    pub deleted_indices: Vec<String>,
}

/// Creates, observes and deletes a product's index and alias through the REST API of one
/// OpenSearch or Elasticsearch (7+) cluster.
#[derive(Clone)]
pub struct ElasticsearchProvisioner {
    base_url: String,
    http: reqwest::Client,
    /// Mutating requests (`PUT`, `POST`, `DELETE`) sent through this provisioner and its
    /// clones.
    mutations: Arc<AtomicU64>,
}

/// Shows the base URL without its password.
impl std::fmt::Debug for ElasticsearchProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticsearchProvisioner")
            .field("base_url", &crate::target::redact_url(&self.base_url))
            .field("mutations", &self.mutations())
            .finish_non_exhaustive()
    }
}

impl ElasticsearchProvisioner {
    /// A provisioner for the cluster at `base_url` (e.g. `http://127.0.0.1:9200`).
    pub fn new(base_url: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(SearchProvisionError::Client)?;
        Ok(Self::with_client(base_url, http))
    }

    /// A provisioner using an existing HTTP client (e.g. one with credentials set).
    pub fn with_client(base_url: &str, http: reqwest::Client) -> Self {
        ElasticsearchProvisioner {
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
            mutations: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The cluster's base URL, as given (credentials included, if it has any).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The HTTP client (timeouts and any credentials set), for the pipeline's sink.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// How many mutating requests (`PUT`, `POST`, `DELETE`) were sent through this
    /// provisioner (and its clones) since it was made.
    pub fn mutations(&self) -> u64 {
        self.mutations.load(Ordering::Relaxed)
    }

    /// Checks that the cluster answers `GET /_cluster/health`.
    pub async fn health(&self) -> Result<()> {
        self.request(
            Method::GET,
            "_cluster/health",
            None,
            "reading the cluster health",
            false,
        )
        .await
        .map(|_| ())
    }

    /// Deletes this version's index if it exists, and nothing else; returns whether it
    /// existed. The caller makes sure the alias no longer points at it (deleting an index
    /// also removes it from every alias).
    pub async fn drop_version(&self, plan: &ElasticsearchPlan) -> Result<bool> {
        if self
            .request(Method::HEAD, &plan.index, None, "checking the index", true)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        // A concurrent delete may have won: a 404 is success.
        self.request(
            Method::DELETE,
            &plan.index,
            None,
            "deleting the version's index",
            true,
        )
        .await?;
        Ok(true)
    }

    /// Reads what exists of the plan: the index (its mapping properties, shards and
    /// replicas) and the indices the alias points at.
    pub async fn observe(&self, plan: &ElasticsearchPlan) -> Result<SearchState> {
        const ACTION: &str = "observing the index";
        let index = self
            .request(Method::GET, &plan.index, None, ACTION, true)
            .await?
            .map(|body| observed_index(body.get(&plan.index).unwrap_or(&Value::Null)));
        Ok(SearchState {
            index,
            alias_indices: self.alias_indices(&plan.alias).await?,
        })
    }

    /// Converges the cluster on the plan: creates the index if missing (on OpenSearch with
    /// [`OPENSEARCH_INDEX_SETTINGS`] added to the plan's); adds the planned
    /// properties its mapping lacks (additive only — a property of another type is a
    /// [`SearchProvisionError::MappingDrift`], a different shard count a
    /// [`SearchProvisionError::ShardsDrift`]); sets the replicas if they differ; and points
    /// the alias at the index and at nothing else, in one atomic `POST /_aliases` so readers
    /// never see the alias missing or on two versions at once. Sends no mutating request
    /// when everything is in place.
    pub async fn ensure(&self, plan: &ElasticsearchPlan) -> Result<EnsureReport> {
        self.ensure_version(plan, true).await
    }

    /// [`ensure`](Self::ensure), touching the alias only with `publish`: without it, the
    /// version's index is created or converged while readers stay on the version the
    /// alias points at.
    pub async fn ensure_version(
        &self,
        plan: &ElasticsearchPlan,
        publish: bool,
    ) -> Result<EnsureReport> {
        let mut report = EnsureReport::default();
        let state = self.observe(plan).await?;
        match &state.index {
            None => {
                let mut body = plan.create_index.clone();
                // A cluster that does not tell its version (credentials limited to the
                // product's indices) gets the plan's settings, which every engine takes.
                let opensearch = self.is_opensearch().await.unwrap_or_else(|e| {
                    tracing::warn!(
                        index = %plan.index,
                        error = %e,
                        "the cluster's version could not be read; creating the index with \
                         the plan's settings only"
                    );
                    false
                });
                if opensearch {
                    for (setting, value) in OPENSEARCH_INDEX_SETTINGS {
                        body["settings"][*setting] = json!(value);
                    }
                }
                self.request(
                    Method::PUT,
                    &plan.index,
                    Some(&body),
                    "creating the index",
                    false,
                )
                .await?;
                report.created_index = true;
                report.mutations += 1;
            }
            Some(observed) => self.converge_index(plan, observed, &mut report).await?,
        }

        if publish && state.alias_indices != [plan.index.as_str()] {
            let mut actions: Vec<Value> = state
                .alias_indices
                .iter()
                .filter(|index| **index != plan.index)
                .map(|index| json!({"remove": {"index": index, "alias": plan.alias}}))
                .collect();
            actions.push(json!({"add": {"index": plan.index, "alias": plan.alias}}));
            self.request(
                Method::POST,
                "_aliases",
                Some(&json!({ "actions": actions })),
                "pointing the alias at the index",
                false,
            )
            .await?;
            report.alias_moved = true;
            report.mutations += 1;
        }
        Ok(report)
    }

    async fn converge_index(
        &self,
        plan: &ElasticsearchPlan,
        observed: &ObservedIndex,
        report: &mut EnsureReport,
    ) -> Result<()> {
        if let Some(found) = observed.shards.filter(|found| *found != plan.shards) {
            return Err(SearchProvisionError::ShardsDrift {
                index: plan.index.clone(),
                planned: plan.shards,
                found,
            });
        }
        let planned = plan.create_index["mappings"]["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut missing = serde_json::Map::new();
        for (field, mapping) in planned {
            let planned_type = mapping_type(&mapping);
            match observed.properties.get(&field) {
                Some(found) if *found == planned_type => {}
                Some(found) => {
                    return Err(SearchProvisionError::MappingDrift {
                        index: plan.index.clone(),
                        field,
                        planned: planned_type,
                        found: found.clone(),
                    });
                }
                None => {
                    missing.insert(field, mapping);
                }
            }
        }
        if !missing.is_empty() {
            report.added_fields = missing.keys().cloned().collect();
            self.request(
                Method::PUT,
                &format!("{}/_mapping", plan.index),
                Some(&json!({ "properties": missing })),
                "adding properties to the mapping",
                false,
            )
            .await?;
            report.mutations += 1;
        }
        if observed.replicas != Some(plan.replicas) {
            self.request(
                Method::PUT,
                &format!("{}/_settings", plan.index),
                Some(&json!({"index": {"number_of_replicas": plan.replicas}})),
                "setting the number of replicas",
                false,
            )
            .await?;
            report.mutations += 1;
        }
        Ok(())
    }

    /// Whether the cluster is OpenSearch (its `GET /` names the distribution; Elasticsearch's
    /// does not).
    pub async fn is_opensearch(&self) -> Result<bool> {
        let root = self
            .request(
                Method::GET,
                "",
                None,
                "reading the cluster's version",
                false,
            )
            .await?
            .unwrap_or(Value::Null);
        Ok(root["version"]["distribution"].as_str() == Some("opensearch"))
    }

    /// Readies a version's `index` for live sync, once its backfill is complete: it then
    /// refreshes every [`LIVE_REFRESH_INTERVAL`]. Idempotent.
    pub async fn go_live(&self, index: &str) -> Result<()> {
        self.request(
            Method::PUT,
            &format!("{index}/_settings"),
            Some(&json!({"index": {"refresh_interval": LIVE_REFRESH_INTERVAL}})),
            "setting the live refresh interval",
            false,
        )
        .await
        .map(drop)
    }

    /// Removes the product from the cluster. Unless `retain`, removes the alias from every
    /// index it points at and deletes every version's index of the product (`<alias>_v<N>`,
    /// and the plan's index); with `retain` nothing is touched, so readers keep the data.
    /// What is already gone is skipped, so this is idempotent.
    pub async fn delete(&self, plan: &ElasticsearchPlan, retain: bool) -> Result<DeleteReport> {
        let mut report = DeleteReport::default();
        if retain {
            return Ok(report);
        }
        let alias_indices = self.alias_indices(&plan.alias).await?;
        if !alias_indices.is_empty() {
            let actions: Vec<Value> = alias_indices
                .iter()
                .map(|index| json!({"remove": {"index": index, "alias": plan.alias}}))
                .collect();
            self.request(
                Method::POST,
                "_aliases",
                Some(&json!({ "actions": actions })),
                "removing the alias",
                false,
            )
            .await?;
            report.alias_removed_from = alias_indices;
        }

        const LIST: &str = "listing the product's indices";
        let listed = self
            .request(
                Method::GET,
                &format!("{}_v*/_alias?expand_wildcards=open,closed", plan.alias),
                None,
                LIST,
                true,
            )
            .await?
            .unwrap_or_default();
        let prefix = format!("{}_v", plan.alias);
        let mut indices: BTreeSet<String> = listed
            .as_object()
            .into_iter()
            .flat_map(|map| map.keys())
            .filter(|name| {
                name.strip_prefix(&prefix)
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .cloned()
            .collect();
        if self
            .request(Method::HEAD, &plan.index, None, "checking the index", true)
            .await?
            .is_some()
        {
            indices.insert(plan.index.clone());
        }
        for index in &indices {
            // A concurrent delete may have won: a 404 is success.
            self.request(Method::DELETE, index, None, "deleting an index", true)
                .await?;
        }
        report.deleted_indices = indices.into_iter().collect();
        Ok(report)
    }

    /// The indices `alias` points at, sorted; empty when it does not exist.
    async fn alias_indices(&self, alias: &str) -> Result<Vec<String>> {
        let body = self
            .request(
                Method::GET,
                &format!("_alias/{alias}"),
                None,
                "reading the alias",
                true,
            )
            .await?;
        let mut indices: Vec<String> = body
            .as_ref()
            .and_then(Value::as_object)
            .map(|map| map.keys().cloned().collect())
            .unwrap_or_default();
        indices.sort();
        Ok(indices)
    }

    /// Sends one request and decodes its JSON answer (`Value::Null` for an empty body).
    /// With `missing_ok`, a 404 is `Ok(None)`.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        action: &'static str,
        missing_ok: bool,
    ) -> Result<Option<Value>> {
        let url = format!("{}/{path}", self.base_url);
        if !matches!(method, Method::GET | Method::HEAD) {
            self.mutations.fetch_add(1, Ordering::Relaxed);
        }
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        // The URL may hold credentials: errors never carry it.
        let transport = |source: reqwest::Error| SearchProvisionError::Transport {
            action,
            source: source.without_url(),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        if status == StatusCode::NOT_FOUND && missing_ok {
            return Ok(None);
        }
        if !status.is_success() {
            let (error_type, reason) = engine_error(&bytes);
            return Err(SearchProvisionError::Engine {
                action,
                status: status.as_u16(),
                error_type,
                reason,
            });
        }
        if bytes.is_empty() {
            return Ok(Some(Value::Null));
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| SearchProvisionError::Response { action, source })
    }
}

/// The `type` and `reason` of an engine's error answer: `{"error": {"type", "reason"}}`,
/// or `{"error": "<text>"}` (e.g. a missing alias on Elasticsearch).
fn engine_error(bytes: &[u8]) -> (String, String) {
    let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let error = &body["error"];
    match error {
        Value::String(reason) => ("unknown".to_owned(), reason.clone()),
        Value::Object(_) => (
            error["type"].as_str().unwrap_or("unknown").to_owned(),
            error["reason"].as_str().unwrap_or("").to_owned(),
        ),
        _ => ("unknown".to_owned(), String::new()),
    }
}

/// The type of a property mapping; object properties are returned without one.
fn mapping_type(mapping: &Value) -> String {
    mapping["type"].as_str().unwrap_or("object").to_owned()
}

/// Reads one index of a `GET /<index>` answer.
fn observed_index(index: &Value) -> ObservedIndex {
    let properties = index["mappings"]["properties"]
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(name, mapping)| (name.clone(), mapping_type(mapping)))
                .collect()
        })
        .unwrap_or_default();
    let setting = |name: &str| -> Option<u64> {
        let value = &index["settings"]["index"][name];
        value
            .as_u64()
            .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
    };
    ObservedIndex {
        properties,
        shards: setting("number_of_shards"),
        replicas: setting("number_of_replicas"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_of_both_shapes_are_read() {
        let (t, r) = engine_error(
            br#"{"error":{"type":"index_not_found_exception","reason":"no such index [x]"},"status":404}"#,
        );
        assert_eq!(
            (t.as_str(), r.as_str()),
            ("index_not_found_exception", "no such index [x]")
        );
        let (t, r) = engine_error(br#"{"error":"alias [x] missing","status":404}"#);
        assert_eq!((t.as_str(), r.as_str()), ("unknown", "alias [x] missing"));
        let (t, r) = engine_error(b"not json");
        assert_eq!((t.as_str(), r.as_str()), ("unknown", ""));
    }

    #[test]
    fn observed_index_reads_string_settings_and_untyped_objects() {
        let observed = observed_index(&json!({
            "mappings": {"properties": {
                "id": {"type": "keyword"},
                "address": {"dynamic": "true"},
                "tags": {"type": "object", "enabled": false},
            }},
            "settings": {"index": {"number_of_shards": "2", "number_of_replicas": "0"}},
        }));
        assert_eq!(observed.properties["id"], "keyword");
        assert_eq!(observed.properties["address"], "object");
        assert_eq!(observed.properties["tags"], "object");
        assert_eq!((observed.shards, observed.replicas), (Some(2), Some(0)));
    }
}
