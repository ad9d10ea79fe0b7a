//! The Redis sink: one Lua script call per record, pipelined per batch.

use std::sync::{Arc, Mutex, PoisonError};

use redis::{ErrorKind, RedisError, ServerErrorKind};
use serde_json::Value;
use sluice_provisioners::TargetConnection;
use sluice_provisioners::plan::VERSION_FIELD;
use sluice_provisioners::redis::{RedisEncoding, RedisPlan};

use super::{SinkError, SinkRecord, error_text, latest_per_key};

/// What a tombstone marker key is named after: `<name>:v<N>` + this + `<key>`.
pub const TOMBSTONE_INFIX: &str = "~deleted:";

/// Records per pipeline ([`RedisSink::write`]).
const PIPELINE_RECORDS: usize = 1_000;

/// A pipeline sent on a task of its own: its answers, one per call.
type Pipelined = tokio::task::JoinHandle<redis::RedisResult<Vec<redis::RedisResult<i64>>>>;

/// The conditional write of one record.
///
/// KEYS[1]: the data key; KEYS[2]: its tombstone marker. ARGV[1]: the version; ARGV[2]:
/// `h` (hash row), `j` (JSON row) or `d` (delete); ARGV[3]: TTL in seconds, 0 for none;
/// ARGV[4..]: hash field/value pairs, or the JSON text. Returns 1 if applied, 0 if the
/// stored version (of the row or of a delete) is at least as new.
const SCRIPT: &str = r#"
local v = tonumber(ARGV[1])
local cur = nil
local t = redis.call('TYPE', KEYS[1])
t = t['ok'] or t
if t == 'hash' then
  cur = redis.call('HGET', KEYS[1], '_sluice_version')
elseif t == 'string' then
  local ok, doc = pcall(cjson.decode, redis.call('GET', KEYS[1]))
  if ok and type(doc) == 'table' then cur = doc['_sluice_version'] end
end
cur = tonumber(cur)
if cur ~= nil and cur >= v then return 0 end
local dead = tonumber(redis.call('GET', KEYS[2]))
if dead ~= nil and dead >= v then return 0 end
local ttl = tonumber(ARGV[3])
if t ~= 'none' then redis.call('DEL', KEYS[1]) end
if ARGV[2] == 'd' then
  if ttl > 0 then
    redis.call('SET', KEYS[2], ARGV[1], 'EX', ttl)
  else
    redis.call('SET', KEYS[2], ARGV[1])
  end
  return 1
end
if ARGV[2] == 'h' then
  redis.call('HSET', KEYS[1], unpack(ARGV, 4))
else
  redis.call('SET', KEYS[1], ARGV[4])
end
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
if dead ~= nil then redis.call('DEL', KEYS[2]) end
return 1
"#;

/// Writes one version's keys (`<name>:v<N>:<key>`) with one Lua script call per record,
/// all of a batch in one pipeline. The script compares the stored version and writes only
/// if the record is newer, so each key changes atomically.
///
/// Rows: with `hash` encoding the key is replaced by a hash of the row's non-null fields
/// (strings as they are, numbers in decimal, booleans `true`/`false`, objects and arrays
/// as JSON text) plus `_sluice_version`; with `json` encoding by a string holding the row
/// as a JSON object, with `_sluice_version` as one more member — exactly the plan's
/// fields, nothing else readers would see. The TTL of the plan, if any, is set on every
/// write.
///
/// Deletes: a key without a row is removed, and a tombstone marker
/// `<name>:v<N>~deleted:<key>` (a string holding the delete's version; outside the data
/// keys' `<name>:v<N>:` namespace, so it can never be a product key) remembers the delete,
/// with the plan's TTL if any. A later write of a higher version removes the marker.
///
/// Guarantees: a row is only ever replaced by a record of a higher version, and a deleted
/// key stays deleted against any older record — re-delivery of any prefix and older
/// records after newer ones (or after a delete) leave the right state, with no transient
/// older row. Caveats: with a TTL, markers expire with the data, so a record older than an
/// expired delete can write its row again (as it could after the row itself expired);
/// markers are removed with the whole product (`<name>:*`) but not by dropping one version
/// (`<name>:v<N>:*`), so without a TTL a dropped version leaves its markers behind.
#[derive(Debug)]
pub struct RedisSink {
    conn: Arc<TargetConnection>,
    plan: RedisPlan,
    tombstone_prefix: String,
    /// The SHA1 of [`SCRIPT`] once loaded.
    sha: Mutex<Option<String>>,
}

impl RedisSink {
    pub(super) fn new(conn: Arc<TargetConnection>, plan: &RedisPlan) -> Self {
        let stem = plan
            .key_prefix
            .strip_suffix(':')
            .unwrap_or(&plan.key_prefix);
        RedisSink {
            conn,
            plan: plan.clone(),
            tombstone_prefix: format!("{stem}{TOMBSTONE_INFIX}"),
            sha: Mutex::new(None),
        }
    }

    /// The tombstone marker key of `key`.
    pub fn tombstone_key(&self, key: &str) -> String {
        format!("{}{key}", self.tombstone_prefix)
    }

    /// Applies `batch` with one script call per key, pipelined; see [`RedisSink`] for how.
    ///
    /// The calls go as pipelines of [`PIPELINE_RECORDS`] records, each built while the one
    /// before is in flight: building the calls' arguments overlaps Redis running them, and
    /// at most two pipelines' commands are held at a time, not the whole batch's. The keys
    /// of a batch are distinct, so the order in which pipelines land does not matter.
    pub async fn write(&self, batch: &[SinkRecord]) -> Result<(), SinkError> {
        let TargetConnection::Redis(target) = self.conn.as_ref() else {
            return Err(SinkError::Refused {
                target: self.target(),
                detail: "the connection is not a Redis connection".to_owned(),
            });
        };
        let records = latest_per_key(batch);
        let con = target
            .connection()
            .await
            .map_err(|e| SinkError::Unavailable {
                target: self.target(),
                detail: error_text(&e),
            })?;
        // A server that restarted or flushed its scripts answers NOSCRIPT: load and retry.
        for attempt in 0..2 {
            let sha = self.sha(&mut con.clone()).await.inspect_err(|e| {
                if e.is_retryable() {
                    target.discard_connection();
                }
            })?;
            let mut no_script = false;
            let mut in_flight: Option<(&[&SinkRecord], Pipelined)> = None;
            for chunk in records.chunks(PIPELINE_RECORDS) {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for record in chunk {
                    pipe.cmd("EVALSHA")
                        .arg(&sha)
                        .arg(2)
                        .arg(self.call_args(record)?);
                }
                let mut con = con.clone();
                let sent = tokio::spawn(async move { pipe.query_async(&mut con).await });
                if let Some((before, pipelined)) = in_flight.replace((chunk, sent)) {
                    no_script |= self.applied(before, pipelined.await)?;
                }
            }
            if let Some((last, pipelined)) = in_flight {
                no_script |= self.applied(last, pipelined.await)?;
            }
            if !no_script {
                return Ok(());
            }
            if attempt == 0 {
                *self.sha.lock().unwrap_or_else(PoisonError::into_inner) = None;
            }
        }
        Err(SinkError::Refused {
            target: self.target(),
            detail: "the server keeps forgetting the sink's script (NOSCRIPT)".to_owned(),
        })
    }

    /// Checks the answers of one pipeline of `records`' calls: `Ok(true)` when the server
    /// did not know the script (the pipeline applied nothing and must be sent again).
    fn applied(
        &self,
        records: &[&SinkRecord],
        answers: Result<redis::RedisResult<Vec<redis::RedisResult<i64>>>, tokio::task::JoinError>,
    ) -> Result<bool, SinkError> {
        let TargetConnection::Redis(target) = self.conn.as_ref() else {
            return Ok(false);
        };
        let results = answers
            .map_err(|e| SinkError::Unavailable {
                target: self.target(),
                detail: format!("the pipeline's task ended: {e}"),
            })?
            .map_err(|e| {
                let error = self.redis_error(&e);
                if error.is_retryable() {
                    target.discard_connection();
                }
                error
            })?;
        if results.iter().any(|r| {
            r.as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::Server(ServerErrorKind::NoScript))
        }) {
            return Ok(true);
        }
        for (record, result) in records.iter().zip(results) {
            if let Err(e) = result {
                let error = self.redis_error(&e);
                return Err(if error.is_retryable() {
                    error
                } else {
                    SinkError::record_error(record, error_text(&e))
                });
            }
        }
        Ok(false)
    }

    /// KEYS and ARGV of one record's script call.
    fn call_args(&self, record: &SinkRecord) -> Result<Vec<String>, SinkError> {
        let ttl = self.plan.ttl_seconds.unwrap_or(0).to_string();
        let mut args = vec![
            self.plan.data_key(&record.key),
            self.tombstone_key(&record.key),
            record.version.to_string(),
        ];
        let Some(row_text) = &record.row else {
            args.extend(["d".to_owned(), ttl]);
            return Ok(args);
        };
        let row = row_text.parse(record)?;
        self.check_fields(record, &row)?;
        match self.plan.encoding {
            RedisEncoding::Hash => {
                args.extend(["h".to_owned(), ttl]);
                for (field, value) in &row {
                    let text = match value {
                        Value::Null => continue,
                        Value::String(s) => s.clone(),
                        Value::Bool(b) => b.to_string(),
                        Value::Number(n) => n.to_string(),
                        Value::Array(_) | Value::Object(_) => value.to_string(),
                    };
                    args.push(field.clone());
                    args.push(text);
                }
                args.push(VERSION_FIELD.to_owned());
                args.push(record.version.to_string());
            }
            RedisEncoding::Json => {
                args.extend([
                    "j".to_owned(),
                    ttl,
                    row_text.with_member(VERSION_FIELD, record.version),
                ]);
            }
        }
        Ok(args)
    }

    /// Every field of the row is one of the plan's output fields.
    fn check_fields(&self, record: &SinkRecord, row: &[(String, Value)]) -> Result<(), SinkError> {
        for (field, _) in row {
            if field == VERSION_FIELD || !self.plan.fields.contains(field) {
                return Err(SinkError::record_error(
                    record,
                    format!("field `{field}` is not an output field of the plan"),
                ));
            }
        }
        Ok(())
    }

    /// The SHA1 of the script, loading it first if needed.
    async fn sha(&self, con: &mut redis::aio::MultiplexedConnection) -> Result<String, SinkError> {
        if let Some(sha) = self
            .sha
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok(sha);
        }
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(SCRIPT)
            .query_async(con)
            .await
            .map_err(|e| self.redis_error(&e))?;
        *self.sha.lock().unwrap_or_else(PoisonError::into_inner) = Some(sha.clone());
        Ok(sha)
    }

    fn target(&self) -> String {
        format!("Redis keys `{}*`", self.plan.key_prefix)
    }

    fn redis_error(&self, error: &RedisError) -> SinkError {
        let retryable = error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || matches!(
                error.kind(),
                ErrorKind::Server(
                    ServerErrorKind::TryAgain
                        | ServerErrorKind::BusyLoading
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ClusterDown
                )
            );
        let detail = error_text(error);
        if retryable {
            SinkError::Unavailable {
                target: self.target(),
                detail,
            }
        } else {
            SinkError::Refused {
                target: self.target(),
                detail,
            }
        }
    }
}
