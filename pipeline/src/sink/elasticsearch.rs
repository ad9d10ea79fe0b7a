//! The Elasticsearch/OpenSearch sink: `_bulk` requests with external versions, one per
//! batch (two concurrent ones for a large batch).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use serde_json::json;
use sluice_provisioners::elasticsearch::ElasticsearchPlan;
use sluice_provisioners::elasticsearch::provision::{
    ElasticsearchProvisioner, SearchProvisionError,
};
use sluice_provisioners::plan::VERSION_FIELD;
use sluice_provisioners::{RowIdentity, TargetConnection};

use super::{SinkError, SinkRecord, error_text, latest_per_key};

/// Writes one version's index (`<name>_v<N>`, not the alias) with one `_bulk` request per
/// batch, or two at once for a batch of at least 4,000 documents (each key in one of them).
///
/// **Upsert**: the document `_id` is the key; a row is indexed and a key without a row is
/// deleted, both with `version` = the record's offset and `version_type: external`, and the
/// document carries `_sluice_version` too. The engine applies an operation only if its
/// version is higher than the document's; a re-delivered or older one answers
/// `version_conflict_engine_exception`, which counts as applied. Guarantees:
/// - a document is only ever replaced by a record of a higher version (re-delivery of any
///   prefix, older records after newer ones, never a duplicate);
/// - a delete leaves a versioned tombstone, so an older record arriving after the delete is
///   refused — for as long as the engine keeps tombstones (`index.gc_deletes`, 60 s by
///   default). A re-delivered older record arriving later than that writes its document
///   again until the re-delivered delete follows (re-delivery is in order), so after any
///   in-order (re-)delivery the index is exactly right.
///
/// **Append**: the `_id` is `<partition>-<offset>`, indexed with the offset as external
/// version, so a re-delivered record is a conflict (applied already); records without a
/// row are ignored.
///
/// Documents are the rows as they are (the index mapping does the type mapping: RFC 3339
/// timestamps to `date`, objects and arrays kept as JSON). A document the index refuses (a
/// field outside its strict mapping, a value that does not parse) is a
/// [`SinkError::Record`]; a full queue (429) or an unavailable shard is retryable.
#[derive(Debug)]
pub struct ElasticsearchSink {
    conn: Arc<TargetConnection>,
    index: String,
    append: bool,
}

/// Batches of at least twice this many documents are split over two concurrent `_bulk`
/// requests.
const PARALLEL_BULK_MIN: usize = 2_000;

/// One bulk item's outcome.
enum Outcome {
    Applied,
    Retry(String),
    Refused(String),
    Failed(String),
}

impl ElasticsearchSink {
    pub(super) fn new(conn: Arc<TargetConnection>, plan: &ElasticsearchPlan) -> Self {
        ElasticsearchSink {
            conn,
            index: plan.index.clone(),
            append: plan.identity == RowIdentity::TopicPosition,
        }
    }

    /// Applies `batch` with one `_bulk` request; see [`ElasticsearchSink`] for how.
    pub async fn write(&self, batch: &[SinkRecord]) -> Result<(), SinkError> {
        let TargetConnection::Elasticsearch(search) = self.conn.as_ref() else {
            return Err(self.refused("the connection is not an Elasticsearch connection"));
        };
        let records: Vec<&SinkRecord> = if self.append {
            batch.iter().filter(|r| r.row.is_some()).collect()
        } else {
            latest_per_key(batch)
        };
        if records.is_empty() {
            return Ok(());
        }
        // A large batch goes as two `_bulk` requests at once, so the engine indexes one
        // while the sink builds or reads the other. A batch holds each key once, so the
        // two cannot race on a document's version.
        if records.len() >= 2 * PARALLEL_BULK_MIN {
            let (left, right) = records.split_at(records.len() / 2);
            let (a, b) = tokio::join!(self.bulk(search, left), self.bulk(search, right));
            return a.and(b);
        }
        self.bulk(search, &records).await
    }

    /// Readies the index for live sync (see [`ElasticsearchProvisioner::go_live`]). The
    /// engine unreachable, busy (429) or failing (5xx) is retryable; any other answer is a
    /// refusal.
    pub async fn live(&self) -> Result<(), SinkError> {
        let TargetConnection::Elasticsearch(search) = self.conn.as_ref() else {
            return Err(self.refused("the connection is not an Elasticsearch connection"));
        };
        search.go_live(&self.index).await.map_err(|e| {
            let retryable = match &e {
                SearchProvisionError::Transport { .. } => true,
                SearchProvisionError::Engine { status, .. } => *status == 429 || *status >= 500,
                _ => false,
            };
            if retryable {
                SinkError::Unavailable {
                    target: self.target(),
                    detail: error_text(&e),
                }
            } else {
                self.refused(&error_text(&e))
            }
        })
    }

    /// Sends `records` in one `_bulk` request and reads every item's outcome.
    async fn bulk(
        &self,
        search: &ElasticsearchProvisioner,
        records: &[&SinkRecord],
    ) -> Result<(), SinkError> {
        let body = self.body(records)?;
        // Only each item's status and error come back: the full answer repeats index,
        // id, version, shards and sequence numbers for every document, which costs more to
        // parse (and hold) than the documents cost to send.
        let response = search
            .http()
            .post(format!(
                "{}/_bulk?filter_path=items.*.status,items.*.error.type,items.*.error.reason",
                search.base_url()
            ))
            .header("Content-Type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        if !response.status().is_success() {
            return Err(self.answered("_bulk", response).await);
        }
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        let answer: BulkAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| self.refused(&format!("_bulk answered unreadable JSON: {e}")))?;
        let items = answer.items;
        if items.len() != records.len() {
            return Err(self.refused("_bulk answered a different number of items"));
        }
        let mut first_failure = None;
        for (record, item) in records.iter().zip(&items) {
            match outcome(item) {
                Outcome::Applied => {}
                Outcome::Retry(detail) => {
                    return Err(SinkError::Unavailable {
                        target: self.target(),
                        detail: format!("key {:?}: {detail}", record.key),
                    });
                }
                Outcome::Refused(detail) => return Err(self.refused(&detail)),
                Outcome::Failed(reason) => {
                    first_failure.get_or_insert_with(|| SinkError::record_error(record, reason));
                }
            }
        }
        first_failure.map_or(Ok(()), Err)
    }

    /// The NDJSON body of one `_bulk` request: an action line per record and, for a row,
    /// its document with the version field appended. The row is written as it is, not
    /// copied into a new object first.
    fn body(&self, records: &[&SinkRecord]) -> Result<String, SinkError> {
        let mut body = String::with_capacity(records.len() * 320);
        for record in records {
            let id = if self.append {
                format!("{}-{}", record.partition, record.version)
            } else {
                record.key.clone()
            };
            let meta = json!({
                "_index": self.index,
                "_id": id,
                "version": record.version,
                "version_type": "external",
            });
            let action = if record.row.is_some() {
                "index"
            } else {
                "delete"
            };
            body.push_str(&json!({ action: meta }).to_string());
            body.push('\n');
            if let Some(row) = &record.row {
                // The row's text, as the output topic holds it: `{` … `}`, or `{}` for a row
                // without fields; the version field goes in before the closing brace.
                let doc = row.as_str();
                let inner = doc[1..doc.len() - 1].trim();
                body.push('{');
                body.push_str(inner);
                if !inner.is_empty() {
                    body.push(',');
                }
                body.push_str(&format!("\"{VERSION_FIELD}\":{}}}", record.version));
                body.push('\n');
            }
        }
        Ok(body)
    }

    /// The error of a request to `api` that the engine answered with an error status: a
    /// full queue (429) or a server error is retryable, anything else refused.
    async fn answered(&self, api: &str, response: reqwest::Response) -> SinkError {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let detail = format!("{api} answered {status}: {}", truncate(&text));
        if status.as_u16() == 429 || status.is_server_error() {
            SinkError::Unavailable {
                target: self.target(),
                detail,
            }
        } else {
            self.refused(&detail)
        }
    }

    fn target(&self) -> String {
        format!("index `{}`", self.index)
    }

    fn refused(&self, detail: &str) -> SinkError {
        SinkError::Refused {
            target: self.target(),
            detail: detail.to_owned(),
        }
    }

    fn transport(&self, error: &reqwest::Error) -> SinkError {
        if error.is_builder() {
            self.refused(&error_text(error))
        } else {
            SinkError::Unavailable {
                target: self.target(),
                detail: error_text(error),
            }
        }
    }
}

/// The part of a `_bulk` answer the sink reads (see the request's `filter_path`).
#[derive(Deserialize)]
struct BulkAnswer {
    #[serde(default)]
    items: Vec<HashMap<String, BulkItem>>,
}

/// One item's outcome: its HTTP status and, when it failed, the error's type and reason.
#[derive(Deserialize)]
struct BulkItem {
    #[serde(default)]
    status: u64,
    error: Option<BulkError>,
}

#[derive(Deserialize)]
struct BulkError {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    reason: String,
}

/// What one `_bulk` item says: applied (including a version conflict: a version at least
/// as new is there, and a delete of a missing document), retryable, or refused.
fn outcome(item: &HashMap<String, BulkItem>) -> Outcome {
    let Some(result) = item.values().next() else {
        return Outcome::Failed("an unreadable _bulk item".to_owned());
    };
    let status = result.status;
    let Some(error) = &result.error else {
        return if (200..300).contains(&status) || status == 404 {
            Outcome::Applied
        } else {
            Outcome::Failed(format!("status {status}"))
        };
    };
    let detail = format!("{}: {}", error.kind, error.reason);
    match error.kind.as_str() {
        "version_conflict_engine_exception" => Outcome::Applied,
        "index_not_found_exception" => Outcome::Refused(detail),
        _ if status == 429 || status >= 500 => Outcome::Retry(detail),
        _ => Outcome::Failed(detail),
    }
}

fn truncate(text: &str) -> &str {
    let mut end = text.len().min(500);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
