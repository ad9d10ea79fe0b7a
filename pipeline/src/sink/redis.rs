//! The Redis sink: Lua script calls of up to 50 records each, pipelined.

use std::sync::{Arc, Mutex, PoisonError};

use redis::{ErrorKind, RedisError, ServerErrorKind};
use serde_json::Value;
use sluice_provisioners::TargetConnection;
use sluice_provisioners::plan::VERSION_FIELD;
use sluice_provisioners::redis::{RedisEncoding, RedisPlan};

use super::{RowFields, SinkError, SinkRecord, error_text, latest_per_key};

/// What a tombstone marker key is named after: `<name>:v<N>` + this + `<key>`.
pub const TOMBSTONE_INFIX: &str = "~deleted:";

/// Records per pipeline ([`RedisSink::write`]).
const PIPELINE_RECORDS: usize = 1_000;

/// A pipeline sent on a task of its own: its answers, one per call.
type Pipelined = tokio::task::JoinHandle<redis::RedisResult<Vec<redis::RedisResult<i64>>>>;

/// Records per script call: a call's own cost in Redis (looking the script up, building
/// its KEYS and ARGV, entering Lua, the reply) is paid once per group, not per record.
const GROUP_RECORDS: usize = 50;

/// What the counter of a version's deletes is named after: `<name>:v<N>` + this.
pub const DELETES_SUFFIX: &str = "~deletes";

/// The conditional writes of a group of records.
///
/// KEYS: the version's delete counter, then per record its data key and its tombstone
/// marker. ARGV[1]: the TTL in seconds, 0 for none; ARGV[2]: the encoding, `h` (hash) or
/// `j` (JSON); then per record: its version, `w` (write) or `d` (delete), how many values
/// follow, and those values (hash field/value pairs, or the JSON text). A record is applied
/// only if neither the stored row nor a delete marker holds a version at least as new.
///
/// Per record that is one read of the stored version and one write, as long as the
/// version never had a delete: the delete counter (one read per call) says whether any
/// marker can exist, and a marker is only looked up for a key without a row, since
/// writing a row removes its marker. A key of another type is replaced whole.
const SCRIPT: &str = r#"
local ttl = tonumber(ARGV[1])
local hash = ARGV[2] == 'h'
local deletes = KEYS[1]
local markers = redis.call('EXISTS', deletes) == 1
local at = 3
for k = 2, #KEYS, 2 do
  local key, marker = KEYS[k], KEYS[k + 1]
  local version, op, n = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2])
  local first = at + 3
  at = first + n
  local v = tonumber(version)
  local cur = nil
  local held = false
  local stored
  if hash then
    stored = redis.pcall('HGET', key, '_sluice_version')
  else
    stored = redis.pcall('GET', key)
  end
  if type(stored) == 'table' then
    held = true
  elseif stored then
    held = true
    if hash then
      cur = tonumber(stored)
    else
      local ok, doc = pcall(cjson.decode, stored)
      if ok and type(doc) == 'table' then cur = tonumber(doc['_sluice_version']) end
    end
  end
  local newer = cur == nil or cur < v
  local dead = nil
  if newer and cur == nil and markers then
    dead = tonumber(redis.call('GET', marker))
    newer = dead == nil or dead < v
  end
  if newer then
    if op == 'd' then
      redis.call('DEL', key)
      if ttl > 0 then
        redis.call('SET', marker, version, 'EX', ttl)
      else
        redis.call('SET', marker, version)
      end
      if not markers then
        redis.call('SET', deletes, '1')
        markers = true
      end
    else
      if hash then
        if held then redis.call('DEL', key) end
        redis.call('HSET', key, unpack(ARGV, first, first + n - 1))
        if ttl > 0 then redis.call('EXPIRE', key, ttl) end
      elseif ttl > 0 then
        redis.call('SET', key, ARGV[first], 'EX', ttl)
      else
        redis.call('SET', key, ARGV[first])
      end
      if dead ~= nil then redis.call('DEL', marker) end
    end
  end
end
return 0
"#;

/// A record's row as the script call writes it.
enum Row {
    /// The row's fields (hash encoding).
    Hash(RowFields),
    /// The row's JSON text with the version member (JSON encoding).
    Json(String),
}

/// Writes one version's keys (`<name>:v<N>:<key>`) with Lua script calls of up to
/// [`GROUP_RECORDS`] records each, pipelined. For each record the script compares the
/// stored version and writes only if the record is newer; a script runs whole before any
/// other command, so each key changes atomically.
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
/// with the plan's TTL if any. A later write of a higher version removes the marker. The
/// version's first delete sets a counter key `<name>:v<N>~deletes` (outside the data keys'
/// namespace too): until it exists no marker can, and the script looks none up.
///
/// Keys of the version's namespace are the sink's: one of another type (a string where
/// rows are hashes, or the other way round) is replaced whole by the next row.
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
    /// The version's delete counter (`<name>:v<N>~deletes`).
    deletes_key: String,
    /// `h` or `j`: the script's encoding argument.
    encoding: &'static str,
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
            deletes_key: format!("{stem}{DELETES_SUFFIX}"),
            encoding: match plan.encoding {
                RedisEncoding::Hash => "h",
                RedisEncoding::Json => "j",
            },
            sha: Mutex::new(None),
        }
    }

    /// The tombstone marker key of `key`.
    pub fn tombstone_key(&self, key: &str) -> String {
        format!("{}{key}", self.tombstone_prefix)
    }

    /// Applies `batch` with script calls of [`GROUP_RECORDS`] keys, pipelined; see
    /// [`RedisSink`] for how.
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
                for group in chunk.chunks(GROUP_RECORDS) {
                    self.push_call(&mut pipe, &sha, group)?;
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
        for (group, result) in records.chunks(GROUP_RECORDS).zip(results) {
            if let Err(e) = result {
                let error = self.redis_error(&e);
                return Err(match (error.is_retryable(), group) {
                    (true, _) => error,
                    (false, [record]) => SinkError::record_error(record, error_text(&e)),
                    // The server refused a call of several records, which the script does
                    // not tell apart (none is refused for what it holds: rows are checked
                    // against the plan before they are sent).
                    (false, _) => SinkError::Refused {
                        target: self.target(),
                        detail: format!(
                            "the script call for keys {:?} to {:?}: {}",
                            group.first().map_or("", |r| r.key.as_str()),
                            group.last().map_or("", |r| r.key.as_str()),
                            error_text(&e)
                        ),
                    },
                });
            }
        }
        Ok(false)
    }

    /// Adds the script call of `group` to `pipe`; fails, adding nothing, on a row the plan
    /// refuses. Arguments go into the pipeline's buffer as they are, without a list of
    /// strings per record in between.
    fn push_call(
        &self,
        pipe: &mut redis::Pipeline,
        sha: &str,
        group: &[&SinkRecord],
    ) -> Result<(), SinkError> {
        let rows = group
            .iter()
            .map(|record| self.fields(record))
            .collect::<Result<Vec<_>, _>>()?;
        pipe.cmd("EVALSHA")
            .arg(sha)
            .arg(1 + 2 * group.len())
            .arg(&self.deletes_key);
        let mut key = String::new();
        for record in group {
            key.clear();
            key.push_str(&self.plan.key_prefix);
            key.push_str(&record.key);
            pipe.arg(key.as_str());
            key.clear();
            key.push_str(&self.tombstone_prefix);
            key.push_str(&record.key);
            pipe.arg(key.as_str());
        }
        pipe.arg(self.plan.ttl_seconds.unwrap_or(0))
            .arg(self.encoding);
        for (record, row) in group.iter().zip(rows) {
            pipe.arg(record.version);
            match row {
                None => {
                    pipe.arg("d").arg(0);
                }
                Some(Row::Json(text)) => {
                    pipe.arg("w").arg(1).arg(text);
                }
                Some(Row::Hash(fields)) => {
                    let present = fields.iter().filter(|(_, v)| !v.is_null()).count();
                    pipe.arg("w").arg(2 * present + 2);
                    for (field, value) in &fields {
                        match value {
                            Value::Null => continue,
                            Value::String(s) => pipe.arg(field).arg(s),
                            Value::Bool(b) => {
                                pipe.arg(field).arg(if *b { "true" } else { "false" })
                            }
                            Value::Number(n) => match n.as_i64() {
                                Some(i) => pipe.arg(field).arg(i),
                                None => pipe.arg(field).arg(n.to_string()),
                            },
                            Value::Array(_) | Value::Object(_) => {
                                pipe.arg(field).arg(value.to_string())
                            }
                        };
                    }
                    pipe.arg(VERSION_FIELD).arg(record.version);
                }
            }
        }
        Ok(())
    }

    /// What `record` writes, checked against the plan: `None` for a delete.
    fn fields(&self, record: &SinkRecord) -> Result<Option<Row>, SinkError> {
        let Some(row_text) = &record.row else {
            return Ok(None);
        };
        let row = row_text.parse(record)?;
        self.check_fields(record, &row)?;
        Ok(Some(match self.plan.encoding {
            RedisEncoding::Hash => Row::Hash(row),
            RedisEncoding::Json => Row::Json(row_text.with_member(VERSION_FIELD, record.version)),
        }))
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
