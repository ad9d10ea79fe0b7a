//! The Redis sink: a batch applied in `MULTI`/`EXEC` transactions of up to 1,000 records,
//! each of which also advances its partitions' applied offsets and runs only if no other
//! writer moved them since they were read (`WATCH`).

use std::collections::BTreeMap;
use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use redis::{ErrorKind, RedisError, ServerErrorKind};
use serde_json::Value;
use sluice_provisioners::TargetConnection;
use sluice_provisioners::plan::VERSION_FIELD;
use sluice_provisioners::redis::{RedisEncoding, RedisPlan};

use super::{SinkError, SinkRecord, error_text, latest_per_key};

/// Records per transaction: large enough that a transaction's two round trips are a small
/// part of its time, small enough that Redis, which runs a transaction whole, never keeps
/// readers waiting more than a few milliseconds.
const TRANSACTION_RECORDS: usize = 1_000;

/// How often a transaction may be thwarted by another writer of the same partitions (a
/// worker that has not yet noticed it lost them) before the write is given up as
/// retryable: each retry reads the offsets anew and applies only what is still missing, so
/// this bounds a tie, not progress.
const MAX_CONFLICTS: usize = 16;

/// The answers of one transaction: `None` when it did not run (a watched key changed).
type Answers = Option<Vec<redis::RedisResult<redis::Value>>>;

/// Writes one version's keys (`<name>:v<N>:<key>`) exactly once each, in the order of the
/// output topic.
///
/// For each output partition, the key `<name>:v<N>~applied:<partition>` holds the highest
/// offset of that partition the target reflects. A batch is cut, in its order, into
/// transactions of up to [`TRANSACTION_RECORDS`] records. Before each, the sink `WATCH`es
/// and reads the applied offsets of the partitions in it and leaves out every record at or
/// below them; the transaction then writes the rest (the latest record of each key) and
/// sets the offsets to the highest of the transaction, all in one `MULTI`/`EXEC`. Redis
/// runs a transaction whole, before any other command, and runs it only if no watched key
/// changed, so records and offsets move together: re-delivery after a crash (the Kafka
/// commit comes after the write) finds its records applied and skips them, and a second
/// writer of the same partitions — a worker that has not yet noticed that it lost them —
/// makes the other's transaction fail, which reads the offsets again and goes on from
/// there. A key always lands in the same output partition, so each key is written in its
/// records' order and never goes back to an older row, not even for a moment, and a
/// deleted key stays deleted. No script is run and nothing is read per record: per record
/// Redis does what a plain pipeline of the same writes would.
///
/// Rows: with `hash` encoding the key is replaced (one `DEL` of all the transaction's
/// replaced and deleted keys, then an `HSET` per row) by a hash of the row's non-null
/// fields (strings as they are, numbers in decimal, booleans `true`/`false`,
/// objects and arrays as JSON text) plus `_sluice_version`; with `json` encoding (`SET`)
/// by a string holding the row as a JSON object, with `_sluice_version` as one more member
/// — exactly the plan's fields, nothing else readers would see. A key of another type is
/// replaced whole. The TTL of the plan, if any, is set on every write. Deletes remove the
/// key.
///
/// The sink keeps a connection of its own: `WATCH` is the state of a connection, which
/// the target's shared connection cannot hold for one writer.
#[derive(Debug)]
pub struct RedisSink {
    conn: Arc<TargetConnection>,
    plan: RedisPlan,
    /// The plan's output fields, for checking rows.
    fields: std::collections::HashSet<String>,
    /// The sink's own connection, made on first use and dropped when it failed. The lock
    /// also keeps two writes of this sink from interleaving their transactions.
    own: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

/// One transaction's commands, for the records of a slice of a batch.
struct Transaction<'a> {
    pipe: redis::Pipeline,
    /// What each command of `pipe` is for.
    owners: Vec<Owner<'a>>,
}

/// What a command of a transaction is for.
#[derive(Clone, Copy)]
enum Owner<'a> {
    /// The `DEL` of the keys the transaction deletes or replaces.
    Deletes,
    /// Writing this record's row.
    Record(&'a SinkRecord),
    /// Setting an applied offset.
    Offset,
}

impl Transaction<'_> {
    fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}

/// The lowest and highest offset of each partition in a slice of a batch.
type Span = BTreeMap<i32, (i64, i64)>;

/// The span of `records`: which partitions a transaction of them touches, and where.
fn span_of(records: &[SinkRecord]) -> Span {
    let mut span = Span::new();
    for r in records {
        let (low, high) = span.entry(r.partition).or_insert((r.version, r.version));
        *low = (*low).min(r.version);
        *high = (*high).max(r.version);
    }
    span
}

impl RedisSink {
    pub(super) fn new(conn: Arc<TargetConnection>, plan: &RedisPlan) -> Self {
        RedisSink {
            conn,
            fields: plan.fields.iter().cloned().collect(),
            plan: plan.clone(),
            own: tokio::sync::Mutex::new(None),
        }
    }

    /// The key holding `partition`'s applied offset.
    pub fn applied_key(&self, partition: i32) -> String {
        self.plan.applied_key(partition)
    }

    /// Applies `batch`; see [`RedisSink`] for how. Each transaction after the first is
    /// built while the one before is in flight, so building the commands overlaps Redis
    /// running them.
    pub async fn write(&self, batch: &[SinkRecord]) -> Result<(), SinkError> {
        let TargetConnection::Redis(target) = self.conn.as_ref() else {
            return Err(SinkError::Refused {
                target: self.target(),
                detail: "the connection is not a Redis connection".to_owned(),
            });
        };
        let mut own = self.own.lock().await;
        let con = match own.as_ref() {
            Some(con) => con.clone(),
            None => {
                let con = target
                    .own_connection()
                    .await
                    .map_err(|e| SinkError::Unavailable {
                        target: self.target(),
                        detail: error_text(&e),
                    })?;
                *own = Some(con.clone());
                con
            }
        };
        let written = self.write_on(con, batch).await;
        if written.is_err() {
            // A failed write may have left keys watched (or the connection broken): the
            // next write starts on a new connection.
            *own = None;
        }
        written
    }

    async fn write_on(
        &self,
        mut con: MultiplexedConnection,
        batch: &[SinkRecord],
    ) -> Result<(), SinkError> {
        let slices: Vec<(&[SinkRecord], Span)> = batch
            .chunks(TRANSACTION_RECORDS)
            .map(|slice| (slice, span_of(slice)))
            .collect();
        // Built before the applied offsets are read, as if none of its records were
        // applied yet (true but after a restart or beside a second writer); built again
        // if some are.
        let mut next = slices
            .first()
            .map(|(slice, span)| self.transaction(slice, span, None))
            .transpose()?;
        for (i, (slice, span)) in slices.iter().enumerate() {
            let mut built = next.take();
            let mut following = None;
            let mut conflicts = 0;
            loop {
                let applied = self.watch(&mut con, span).await?;
                let fresh = span
                    .iter()
                    .all(|(p, (low, _))| applied.get(p).is_none_or(|a| a < low));
                let tx = match built.take() {
                    Some(tx) if fresh => tx,
                    _ => self.transaction(slice, span, Some(&applied))?,
                };
                if tx.is_empty() {
                    let _: () = redis::cmd("UNWATCH")
                        .query_async(&mut con)
                        .await
                        .map_err(|e| self.redis_error(&e))?;
                    break;
                }
                let sent = tx.pipe.query_async::<Answers>(&mut con);
                let (answers, built_next) = tokio::join!(sent, async {
                    match (&following, slices.get(i + 1)) {
                        (None, Some((slice, span))) => Some(self.transaction(slice, span, None)),
                        _ => None,
                    }
                });
                if built_next.is_some() {
                    following = built_next;
                }
                match answers.map_err(|e| self.redis_error(&e))? {
                    Some(results) => {
                        self.check(&tx, results)?;
                        break;
                    }
                    None if conflicts < MAX_CONFLICTS => conflicts += 1,
                    None => {
                        return Err(SinkError::Unavailable {
                            target: self.target(),
                            detail: format!(
                                "another writer kept moving the applied offsets of partitions \
                                 {:?} ({MAX_CONFLICTS} transactions in a row did not run)",
                                span.keys().collect::<Vec<_>>()
                            ),
                        });
                    }
                }
            }
            next = following.transpose()?;
        }
        Ok(())
    }

    /// `WATCH`es the applied offsets of `span`'s partitions and reads them.
    async fn watch(
        &self,
        con: &mut MultiplexedConnection,
        span: &Span,
    ) -> Result<BTreeMap<i32, i64>, SinkError> {
        let keys: Vec<String> = span.keys().map(|p| self.applied_key(*p)).collect();
        let (values,): (Vec<Option<String>>,) = redis::pipe()
            .cmd("WATCH")
            .arg(&keys)
            .ignore()
            .cmd("MGET")
            .arg(&keys)
            .query_async(con)
            .await
            .map_err(|e| self.redis_error(&e))?;
        let mut applied = BTreeMap::new();
        for ((partition, key), value) in span.keys().zip(&keys).zip(values) {
            let Some(text) = value else { continue };
            let offset = text.parse::<i64>().map_err(|_| SinkError::Refused {
                target: self.target(),
                detail: format!("key `{key}` should hold an offset but holds {text:?}"),
            })?;
            applied.insert(*partition, offset);
        }
        Ok(applied)
    }

    /// The transaction of `slice` (whose span is `span`): with `applied` (the offsets
    /// read), of its records above them and the offsets that are behind; without, of all
    /// of its records. Fails, building nothing, on a row the plan refuses.
    fn transaction<'a>(
        &self,
        slice: &'a [SinkRecord],
        span: &Span,
        applied: Option<&BTreeMap<i32, i64>>,
    ) -> Result<Transaction<'a>, SinkError> {
        let is_new = |r: &SinkRecord| {
            applied.is_none_or(|a| a.get(&r.partition).is_none_or(|a| *a < r.version))
        };
        let mut records = latest_per_key(slice);
        if applied.is_some() {
            records.retain(|r| is_new(r));
        }
        // Room for a write and an `EXPIRE` per record, the `DEL` and a few offsets.
        let mut pipe = redis::Pipeline::with_capacity(2 * records.len() + 8);
        pipe.atomic().ignore_errors();
        let mut owners = Vec::with_capacity(records.len() + 2);
        let mut key = Vec::new();
        // One `DEL` of every key the transaction deletes or replaces by a hash, ahead of
        // its writes (a key is in a transaction once): one command for all of them costs
        // Redis and the sink less than one each.
        let hash = self.plan.encoding == RedisEncoding::Hash;
        let mut cleared = records
            .iter()
            .filter(|r| hash || r.row.is_none())
            .peekable();
        if cleared.peek().is_some() {
            pipe.cmd("DEL");
            for record in cleared {
                pipe.arg(self.data_key(&mut key, record));
            }
            owners.push(Owner::Deletes);
        }
        for record in records {
            if record.row.is_some() {
                let key = self.data_key(&mut key, record);
                self.push_write(&mut pipe, &mut owners, key, record)?;
            }
        }
        for (partition, (_, high)) in span {
            let behind = applied.is_none_or(|a| a.get(partition).is_none_or(|a| a < high));
            if behind {
                pipe.cmd("SET").arg(self.applied_key(*partition)).arg(*high);
                owners.push(Owner::Offset);
            }
        }
        Ok(Transaction { pipe, owners })
    }

    /// `record`'s data key, written into `buffer`.
    fn data_key<'b>(&self, buffer: &'b mut Vec<u8>, record: &SinkRecord) -> &'b [u8] {
        buffer.clear();
        buffer.extend_from_slice(self.plan.key_prefix.as_bytes());
        buffer.extend_from_slice(record.key.as_bytes());
        buffer
    }

    /// Adds the commands that write `record`'s row under `key` to `pipe` (the transaction's
    /// `DEL` has removed whatever a hash row replaces). Fields are taken as the row's text
    /// is read, each checked against the plan.
    fn push_write<'a>(
        &self,
        pipe: &mut redis::Pipeline,
        owners: &mut Vec<Owner<'a>>,
        key: &[u8],
        record: &'a SinkRecord,
    ) -> Result<(), SinkError> {
        let Some(row_text) = &record.row else {
            return Ok(());
        };
        let ttl = self.plan.ttl_seconds;
        // Rows carry the plan's fields in its order: each name is first compared with the
        // field after the last one matched, and only another one is looked up by hash.
        let mut next = 0;
        let mut check = |field: &str| {
            let known = field != VERSION_FIELD
                && if self.plan.fields.get(next).is_some_and(|f| f == field) {
                    next += 1;
                    true
                } else {
                    self.fields.contains(field)
                };
            if known {
                Ok(())
            } else {
                Err(SinkError::record_error(
                    record,
                    format!("field `{field}` is not an output field of the plan"),
                ))
            }
        };
        match self.plan.encoding {
            RedisEncoding::Json => {
                row_text.for_each_field(record, |field, _: serde::de::IgnoredAny| check(field))?;
                let text = row_text.with_member(VERSION_FIELD, record.version);
                pipe.cmd("SET").arg(key).arg(text);
                if let Some(ttl) = ttl {
                    pipe.arg("EX").arg(ttl);
                }
            }
            RedisEncoding::Hash => {
                // Sized from the row's text, which holds every name and value written,
                // so the command's buffers are allocated once, not grown field by field.
                let mut hset = redis::Cmd::with_capacity(
                    2 * self.fields.len() + 2,
                    key.len() + row_text.as_str().len() + 48,
                );
                hset.arg("HSET").arg(key);
                row_text.for_each_field(record, |field, value: Value| {
                    check(field)?;
                    match value {
                        Value::Null => {}
                        Value::String(s) => {
                            hset.arg(field).arg(s);
                        }
                        Value::Bool(b) => {
                            hset.arg(field).arg(if b { "true" } else { "false" });
                        }
                        Value::Number(n) => {
                            match n.as_i64() {
                                Some(i) => hset.arg(field).arg(i),
                                None => hset.arg(field).arg(n.to_string()),
                            };
                        }
                        value @ (Value::Array(_) | Value::Object(_)) => {
                            hset.arg(field).arg(value.to_string());
                        }
                    }
                    Ok(())
                })?;
                hset.arg(VERSION_FIELD).arg(record.version);
                pipe.add_command(hset);
                if let Some(ttl) = ttl {
                    owners.push(Owner::Record(record));
                    pipe.cmd("EXPIRE").arg(key).arg(ttl);
                }
            }
        }
        owners.push(Owner::Record(record));
        Ok(())
    }

    /// Checks the answers of a transaction that ran. Redis refuses a transaction whole when
    /// it refuses a command as it is queued (a denied command, the memory limit), which is
    /// the error of the whole request; a command that fails as the transaction runs does
    /// not undo the others, and none of these writes can (each replaces its key whatever
    /// it held), so such an error is named, with its key, as the target's fault.
    fn check(
        &self,
        tx: &Transaction<'_>,
        results: Vec<redis::RedisResult<redis::Value>>,
    ) -> Result<(), SinkError> {
        if results.len() != tx.owners.len() {
            return Err(SinkError::Unavailable {
                target: self.target(),
                detail: format!(
                    "the transaction answered {} results for {} commands",
                    results.len(),
                    tx.owners.len()
                ),
            });
        }
        for (owner, result) in tx.owners.iter().zip(results) {
            if let Err(e) = result {
                let what = match owner {
                    Owner::Record(record) => {
                        format!("writing key `{}{}`", self.plan.key_prefix, record.key)
                    }
                    Owner::Deletes => "deleting the keys it replaces".to_owned(),
                    Owner::Offset => "setting an applied offset".to_owned(),
                };
                return Err(SinkError::Refused {
                    target: self.target(),
                    detail: format!("{what} failed inside a transaction: {}", error_text(&e)),
                });
            }
        }
        Ok(())
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
