//! The PostgreSQL sink: one transaction per batch, with at most one conditional `DELETE`
//! and one conditional `INSERT … ON CONFLICT`, over `unnest`ed arrays for small batches and
//! from a `COPY`-loaded temporary staging table for large ones (backfill), which go
//! `COPY`-ed straight into the table when none of their keys is there yet.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use serde_json::Value;
use sluice_provisioners::plan::{KEY_FIELD, OFFSET_FIELD, PARTITION_FIELD, VERSION_FIELD};
use sluice_provisioners::postgres::{PostgresPlan, fit_identifier};
use sluice_provisioners::quote::pg_ident;
use sluice_provisioners::{RowIdentity, TargetConnection};
use sqlx::AssertSqlSafe;

use super::{RowText, SinkError, SinkRecord, error_text, latest_per_key};

/// Batches with at least this many rows to write are loaded with `COPY` into a staging
/// table; smaller ones with the `unnest` upsert (one statement, fewer round trips).
///
/// Measured against local PostgreSQL 15 (time per batch of both paths): at 10,000 and 50,000
/// rows both paths write 65–80k rows/s, within noise of each other — the guarded upsert,
/// not the transfer, is the cost. Below that COPY loses: sqlx flushes the data and the
/// end of the COPY as two small writes, and with Nagle's algorithm and the server's delayed
/// ACK the second waits ~40 ms (100 rows: 2k rows/s against 39k; 1,000 rows: 43k against
/// 49k). So only backfill-sized batches take it.
pub const COPY_MIN_ROWS: usize = 10_000;
/// Batches of at least twice this many rows are applied as two concurrent transactions.
const PARALLEL_WRITE_MIN: usize = 2_000;
/// At most this many COPY batches in a row go through the staging table without trying
/// the straight COPY again, after straight COPYs kept meeting keys already in the table.
const STRAIGHT_COPY_MAX_PAUSE: u32 = 64;
/// The SQLSTATE of a unique violation: a straight COPY met a key already in the table.
const UNIQUE_VIOLATION: &str = "23505";

/// Writes one version's table (`<schema>.<name>_v<N>`, not the view).
///
/// **Upsert** (the key is an output field, or the computed key in `_sluice_key`): per batch,
/// only the last record of each key is kept; then, in one transaction, keys without a row
/// are deleted with `DELETE … WHERE key = k AND "_sluice_version" < v` and rows are written
/// with `INSERT … ON CONFLICT (key) DO UPDATE … WHERE t."_sluice_version" <
/// EXCLUDED."_sluice_version"`. Guarantees:
/// - a row is only ever replaced by a record of a higher version: re-delivery of any prefix
///   and older records after newer ones leave the newer row, and never a duplicate;
/// - a delete removes the row only if it is older than the delete;
/// - **limitation**: the table keeps no trace of a delete (the plan has no tombstone
///   column), so an upsert older than a delete that arrives *in a later batch* than the
///   delete (a re-delivered prefix) writes its row again. A re-delivery is in order, so the
///   delete follows it again and the key ends with no row: after any in-order
///   (re-)delivery the table is exactly right, but readers may briefly see the older row
///   between those two batches. Within one batch this cannot happen (only the last record
///   per key is written).
///
/// **Loading.** A batch with fewer rows to write than the COPY threshold binds them as
/// arrays and writes them with one `INSERT … SELECT … FROM unnest(…)` (one round trip). A
/// larger one — the backfill — is sent with `COPY … FROM STDIN` (text format) straight
/// into the table, inside a savepoint of the batch's transaction. That succeeds only when
/// none of the batch's keys has a row yet, and then inserting each row is exactly what the
/// guarded upsert would have done. If a key is there (a re-delivery, or a key written by an
/// earlier batch), the primary key refuses the COPY (unique violation), the savepoint is
/// rolled back and the rows are sent again with `COPY` into a temporary staging table of
/// text columns (per session, `ON COMMIT DELETE ROWS`, not WAL-logged), then written by the
/// same guarded `INSERT … SELECT … ON CONFLICT` from it. After a refused straight COPY the
/// next batches go to the staging table directly, 1, 2, 4 … up to
/// [`STRAIGHT_COPY_MAX_PAUSE`] of them as refusals repeat, so a stream of updates pays the
/// wasted attempt at most once in that many batches. All paths run in the same transaction
/// as the delete and give the same rows and guarantees; the straight one spares the server
/// the staging table and the upsert's conflict checks, about half its work per row.
///
/// **Append** (`_sluice_partition`, `_sluice_offset` as primary key): one
/// `INSERT … ON CONFLICT DO NOTHING` per batch; re-delivered records are skipped, and
/// records without a row are ignored (append never deletes).
///
/// Values are bound as text (or `bigint` for versions and offsets) and cast in SQL to the
/// planned column type: text, bigint (a JSON integer), double precision (any JSON number),
/// boolean, timestamptz (RFC 3339 text, checked before sending), jsonb (any JSON value).
/// JSON `null` or a missing field is SQL `NULL`; a field the plan does not have, a value of
/// the wrong type, or a `NULL` for a `NOT NULL` column is a [`SinkError::Record`].
#[derive(Debug)]
pub struct PostgresSink {
    conn: Arc<TargetConnection>,
    plan: PostgresPlan,
    /// `schema.table`, quoted, for messages.
    target: String,
    /// The output columns, in plan order.
    columns: Vec<Column>,
    /// Output field name → index in `columns`.
    by_field: HashMap<String, usize>,
    mode: Mode,
    /// The upsert or append statement.
    write_sql: String,
    /// The conditional delete (upsert mode only).
    delete_sql: Option<String>,
    /// The COPY path's statements.
    copy: CopyStatements,
    /// Batches with at least this many rows to write take the COPY path.
    copy_min_rows: usize,
    /// When the COPY path next tries a straight COPY into the table.
    straight: StraightCopy,
}

/// Whether a COPY batch tries the straight COPY into the table first: not for a while
/// after straight COPYs met keys already in the table, a pause that doubles with each
/// refusal in a row (up to [`STRAIGHT_COPY_MAX_PAUSE`] batches) and ends with a success.
#[derive(Debug, Default)]
struct StraightCopy {
    /// Batches still to go through the staging table before the next attempt.
    skip: AtomicU32,
    /// The pause after the last refusal, 0 after a success.
    pause: AtomicU32,
    /// Transactions written by a straight COPY so far.
    written: AtomicU64,
}

impl StraightCopy {
    /// Whether this batch tries the straight COPY (counts a skipped batch down).
    fn attempt(&self) -> bool {
        self.skip
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
    }

    fn succeeded(&self) {
        self.pause.store(0, Ordering::Relaxed);
        self.written.fetch_add(1, Ordering::Relaxed);
    }

    fn refused(&self) {
        let pause = self
            .pause
            .load(Ordering::Relaxed)
            .saturating_mul(2)
            .clamp(1, STRAIGHT_COPY_MAX_PAUSE);
        self.pause.store(pause, Ordering::Relaxed);
        self.skip.store(pause, Ordering::Relaxed);
    }
}

/// The COPY path: a straight `COPY` into the table, or stage a batch's rows (as text) in a
/// temporary table with `COPY`, then write them with one `INSERT … SELECT … ON CONFLICT`,
/// guarded as the `unnest` upsert is.
#[derive(Debug)]
struct CopyStatements {
    /// `COPY <table> (<columns>) FROM STDIN` (text format), the staging table's columns in
    /// the same order.
    straight: String,
    /// Creates the session's staging table when it is not there yet (simple protocol).
    create: String,
    /// `COPY <staging> FROM STDIN` (text format).
    copy: String,
    /// The upsert (or append insert) from the staging table.
    insert: String,
}

#[derive(Debug)]
struct Column {
    name: String,
    sql_type: &'static str,
    not_null: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Upsert keyed by the output column at this index of `columns`.
    KeyField(usize),
    /// Upsert keyed by `_sluice_key` of this SQL type.
    ComputedKey(&'static str),
    /// Append keyed by partition and offset.
    Append,
}

impl PostgresSink {
    pub(super) fn new(conn: Arc<TargetConnection>, plan: &PostgresPlan) -> Result<Self, SinkError> {
        let refused = |detail: String| SinkError::Refused {
            target: format!("PostgreSQL table {}.{}", plan.schema, plan.table),
            detail,
        };
        let quote = |name: &str| pg_ident(name).map_err(|e| refused(e.to_string()));
        let table = format!("{}.{}", quote(&plan.schema)?, quote(&plan.table)?);
        let columns: Vec<Column> = plan
            .columns
            .iter()
            .filter(|c| !c.bookkeeping)
            .map(|c| Column {
                name: c.name.clone(),
                sql_type: c.sql_type,
                not_null: c.not_null,
            })
            .collect();
        let by_field = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let bookkeeping_type = |name: &str| {
            plan.columns
                .iter()
                .find(|c| c.bookkeeping && c.name == name)
                .map(|c| c.sql_type)
                .ok_or_else(|| refused(format!("the plan has no column {name}")))
        };
        let mode = match &plan.identity {
            RowIdentity::KeyField { field, .. } => {
                let name = fit_identifier(field, "");
                let index = columns
                    .iter()
                    .position(|c| c.name == name)
                    .ok_or_else(|| refused(format!("the plan has no key column {name}")))?;
                Mode::KeyField(index)
            }
            RowIdentity::ComputedKey { .. } => Mode::ComputedKey(bookkeeping_type(KEY_FIELD)?),
            RowIdentity::TopicPosition => Mode::Append,
        };

        // Every array is bound as text[] (values, keys) or bigint[]/integer[] (versions,
        // positions); `u.cN` are generated names, never user input. The COPY path stages the
        // same columns, all as text, in a temporary table whose columns are `cN` too.
        let mut targets = Vec::new();
        let mut arrays = Vec::new();
        let mut selects = Vec::new();
        let mut staged = Vec::new();
        let mut aliases = Vec::new();
        let mut push = |column: &str, array_type: &str, cast: &str| -> Result<(), SinkError> {
            let n = arrays.len();
            targets.push(quote(column)?);
            arrays.push(format!("${}::{array_type}[]", n + 1));
            aliases.push(format!("c{n}"));
            selects.push(format!("u.c{n}::{cast}"));
            staged.push(format!("s.c{n}::{cast}"));
            Ok(())
        };
        for c in &columns {
            push(&c.name, "text", c.sql_type)?;
        }
        match mode {
            Mode::KeyField(_) => {}
            Mode::ComputedKey(key_type) => push(KEY_FIELD, "text", key_type)?,
            Mode::Append => {
                push(PARTITION_FIELD, "integer", "integer")?;
                push(OFFSET_FIELD, "bigint", "bigint")?;
            }
        }
        push(VERSION_FIELD, "bigint", "bigint")?;
        let insert = format!(
            "INSERT INTO {table} AS t ({}) SELECT {} FROM unnest({}) AS u({})",
            targets.join(", "),
            selects.join(", "),
            arrays.join(", "),
            aliases.join(", ")
        );
        // One staging table per column count, per session: any sink of the pool with that
        // many columns may use it, as it is emptied at every commit and only used inside one
        // transaction. `ON COMMIT DELETE ROWS` and being temporary keep it out of the WAL.
        let stage = format!("pg_temp._sluice_stage_{}", aliases.len());
        let stage_create = format!(
            "SET LOCAL client_min_messages = warning; \
             CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ({}) ON COMMIT DELETE ROWS",
            aliases
                .iter()
                .map(|a| format!("{a} text"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let stage_copy = format!("COPY {stage} FROM STDIN");
        let straight_copy = format!("COPY {table} ({}) FROM STDIN", targets.join(", "));
        let stage_insert = format!(
            "INSERT INTO {table} AS t ({}) SELECT {} FROM {stage} AS s",
            targets.join(", "),
            staged.join(", ")
        );
        let version = quote(VERSION_FIELD)?;
        let key = match mode {
            Mode::KeyField(i) => Some((quote(&columns[i].name)?, columns[i].sql_type)),
            Mode::ComputedKey(key_type) => Some((quote(KEY_FIELD)?, key_type)),
            Mode::Append => None,
        };
        let (conflict, delete_sql) = match key {
            None => (" ON CONFLICT DO NOTHING".to_owned(), None),
            Some((key_column, key_type)) => {
                let sets: Vec<String> = targets
                    .iter()
                    .filter(|t| **t != key_column)
                    .map(|t| format!("{t} = EXCLUDED.{t}"))
                    .collect();
                let upsert = format!(
                    " ON CONFLICT ({key_column}) DO UPDATE SET {} \
                     WHERE t.{version} < EXCLUDED.{version}",
                    sets.join(", ")
                );
                let delete = format!(
                    "DELETE FROM {table} AS t USING unnest($1::text[], $2::bigint[]) AS d(k, v) \
                     WHERE t.{key_column} = d.k::{key_type} AND t.{version} < d.v"
                );
                (upsert, Some(delete))
            }
        };
        let write_sql = format!("{insert}{conflict}");
        let copy = CopyStatements {
            straight: straight_copy,
            create: stage_create,
            copy: stage_copy,
            insert: format!("{stage_insert}{conflict}"),
        };
        Ok(PostgresSink {
            conn,
            plan: plan.clone(),
            target: format!("PostgreSQL table {table}"),
            columns,
            by_field,
            mode,
            write_sql,
            delete_sql,
            copy,
            copy_min_rows: COPY_MIN_ROWS,
            straight: StraightCopy::default(),
        })
    }

    /// Applies `batch` in one transaction; see [`PostgresSink`] for how.
    pub async fn write(&self, batch: &[SinkRecord]) -> Result<(), SinkError> {
        let TargetConnection::Postgres(target) = self.conn.as_ref() else {
            return Err(SinkError::Refused {
                target: self.target.clone(),
                detail: "the connection is not a PostgreSQL connection".to_owned(),
            });
        };
        let records: Vec<&SinkRecord> = match self.mode {
            Mode::Append => batch.iter().filter(|r| r.row.is_some()).collect(),
            Mode::KeyField(_) | Mode::ComputedKey(_) => latest_per_key(batch),
        };
        // A large batch goes as two transactions at once, on two connections: the server
        // applies one half while the sink prepares or sends the other. The halves hold
        // different keys (a batch holds each key once, in key order), so they never wait
        // on each other's row locks; each is applied whole or not at all, and the batch's
        // offsets are committed only once both are, so a failed half is written again
        // with the whole batch (the version guard makes the other half's rows no-ops).
        // Whether the rows go by COPY is the batch's size, not its halves'.
        let copy = records.len() >= self.copy_min_rows;
        if records.len() >= 2 * PARALLEL_WRITE_MIN {
            let (left, right) = records.split_at(records.len() / 2);
            let (a, b) = tokio::join!(
                self.write_part(target, left, copy),
                self.write_part(target, right, copy)
            );
            return a.and(b);
        }
        self.write_part(target, &records, copy).await
    }

    /// Applies `records` in one transaction, their rows by COPY into a staging table when
    /// `copy`.
    async fn write_part(
        &self,
        target: &sluice_provisioners::PostgresTarget,
        records: &[&SinkRecord],
        copy: bool,
    ) -> Result<(), SinkError> {
        // The COPY path writes each row's line as it goes; the other binds column arrays.
        let mut lines = copy.then(|| String::with_capacity(records.len() * 256));
        let mut values: Vec<Vec<Option<String>>> = match copy {
            true => Vec::new(),
            false => vec![Vec::new(); self.columns.len()],
        };
        let mut keys = Vec::new();
        let mut partitions = Vec::new();
        let mut offsets = Vec::new();
        let mut versions = Vec::new();
        let mut deleted_keys = Vec::new();
        let mut deleted_versions = Vec::new();
        let mut slots = RowSlots::default();
        for &record in records {
            let Some(row) = &record.row else {
                self.check_key(record)?;
                deleted_keys.push(record.key.clone());
                deleted_versions.push(record.version);
                continue;
            };
            self.fill_slots(record, row, &mut slots)?;
            if matches!(self.mode, Mode::ComputedKey(_)) {
                self.check_key(record)?;
            }
            versions.push(record.version);
            if let Some(lines) = &mut lines {
                slots.push_copy_line(lines, record, &self.mode);
                continue;
            }
            for (column, i) in values.iter_mut().zip(0..) {
                column.push(slots.get(i).map(str::to_owned));
            }
            match self.mode {
                Mode::KeyField(_) => {}
                Mode::ComputedKey(_) => keys.push(record.key.clone()),
                Mode::Append => {
                    partitions.push(record.partition);
                    offsets.push(record.version);
                }
            }
        }

        let pool = target.pool_for(&self.plan);
        let mut tx = pool.begin().await.map_err(|e| self.db_error(e))?;
        if let Some(delete) = &self.delete_sql
            && !deleted_keys.is_empty()
        {
            sqlx::query(AssertSqlSafe(delete.as_str()))
                .bind(deleted_keys)
                .bind(deleted_versions)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db_error(e))?;
        }
        if let Some(text) = lines.filter(|_| !versions.is_empty()) {
            if !(self.straight.attempt() && self.copy_straight(&mut tx, &text).await?) {
                sqlx::raw_sql(AssertSqlSafe(self.copy.create.as_str()))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.db_error(e))?;
                copy_into(&mut tx, &self.copy.copy, &text)
                    .await
                    .map_err(|e| self.db_error(e))?;
                sqlx::query(AssertSqlSafe(self.copy.insert.as_str()))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.db_error(e))?;
            }
        } else if !copy && !versions.is_empty() {
            let mut query = sqlx::query(AssertSqlSafe(self.write_sql.as_str()));
            for column in values {
                query = query.bind(column);
            }
            match self.mode {
                Mode::KeyField(_) => {}
                Mode::ComputedKey(_) => query = query.bind(keys),
                Mode::Append => query = query.bind(partitions).bind(offsets),
            }
            query
                .bind(versions)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db_error(e))?;
        }
        tx.commit().await.map_err(|e| self.db_error(e))
    }

    /// Tries the straight COPY of `text` into the table inside a savepoint: `Ok(false)` when
    /// a key of it is in the table already (the savepoint is rolled back, the transaction
    /// goes on as before it).
    async fn copy_straight(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        text: &str,
    ) -> Result<bool, SinkError> {
        sqlx::raw_sql("SAVEPOINT sluice_straight_copy")
            .execute(&mut **tx)
            .await
            .map_err(|e| self.db_error(e))?;
        match copy_into(tx, &self.copy.straight, text).await {
            Ok(()) => {
                self.straight.succeeded();
                Ok(true)
            }
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(UNIQUE_VIOLATION) => {
                self.straight.refused();
                sqlx::raw_sql("ROLLBACK TO SAVEPOINT sluice_straight_copy")
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| self.db_error(e))?;
                Ok(false)
            }
            Err(e) => Err(self.db_error(e)),
        }
    }

    /// How many transactions (a batch, or half of a large one) went by a straight COPY.
    pub fn straight_copies(&self) -> u64 {
        self.straight.written.load(Ordering::Relaxed)
    }

    /// Sets from how many rows a batch takes the COPY path (0: always, `usize::MAX`:
    /// never); the default is [`COPY_MIN_ROWS`].
    pub fn set_copy_min_rows(&mut self, rows: usize) {
        self.copy_min_rows = rows.max(1);
    }

    /// A bigint key must be a decimal integer.
    fn check_key(&self, record: &SinkRecord) -> Result<(), SinkError> {
        let key_type = match self.mode {
            Mode::KeyField(i) => self.columns[i].sql_type,
            Mode::ComputedKey(key_type) => key_type,
            Mode::Append => return Ok(()),
        };
        if key_type == "bigint" && record.key.parse::<i64>().is_err() {
            return Err(SinkError::record_error(
                record,
                "the key is not an integer, but the key column is bigint",
            ));
        }
        Ok(())
    }

    /// The row's values as text in `slots`, one per output column, checked against the
    /// column types, the `NOT NULL` columns and the record's key.
    fn fill_slots(
        &self,
        record: &SinkRecord,
        row: &RowText,
        slots: &mut RowSlots,
    ) -> Result<(), SinkError> {
        slots.text.clear();
        slots.slots.clear();
        slots.slots.resize(self.columns.len(), None);
        let RowSlots { text, slots } = slots;
        // Rows carry their fields in the columns' order, so the column after the last one
        // matched is tried first, before hashing the name.
        let mut next = 0;
        row.for_each_field(record, |field, value| {
            let index = match self.columns.get(next) {
                Some(column) if column.name == field => next,
                _ => self
                    .by_field
                    .get(field)
                    .or_else(|| self.by_field.get(&fit_identifier(field, "")))
                    .copied()
                    .ok_or_else(|| {
                        SinkError::record_error(record, format!("field `{field}` has no column"))
                    })?,
            };
            next = index + 1;
            let start = text.len();
            let written =
                column_text(self.columns[index].sql_type, &value, text).map_err(|expected| {
                    SinkError::record_error(
                        record,
                        format!("field `{field}` must be {expected}, got {value}"),
                    )
                })?;
            slots[index] = written.then_some(start..text.len());
            Ok(())
        })?;
        for (column, slot) in self.columns.iter().zip(slots.iter()) {
            if column.not_null && slot.is_none() {
                return Err(SinkError::record_error(
                    record,
                    format!("column {} may not be null", column.name),
                ));
            }
        }
        if let Mode::KeyField(i) = self.mode {
            let value = slots[i].clone().map(|range| &text[range]);
            let same = match (self.columns[i].sql_type, value) {
                ("bigint", Some(v)) => v.parse::<i64>().ok() == record.key.parse::<i64>().ok(),
                (_, Some(v)) => v == record.key,
                (_, None) => false,
            };
            if !same {
                return Err(SinkError::record_error(
                    record,
                    format!(
                        "the row's key field is not the record's key {:?}",
                        record.key
                    ),
                ));
            }
        }
        Ok(())
    }

    fn db_error(&self, error: sqlx::Error) -> SinkError {
        let retryable = match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(e) => e.code().is_some_and(|code| {
                code.starts_with("08") // connection exception
                    || code.starts_with("53") // insufficient resources
                    || code == "40001" // serialization failure
                    || code == "40P01" // deadlock
                    || code.starts_with("57P") // shutdown, cannot connect now
                    || code == "55P03" // lock not available
            }),
            _ => false,
        };
        let detail = error_text(&error);
        if retryable {
            SinkError::Unavailable {
                target: self.target.clone(),
                detail,
            }
        } else {
            SinkError::Refused {
                target: self.target.clone(),
                detail,
            }
        }
    }
}

/// Runs `statement` (a `COPY … FROM STDIN`) with `text` as its data.
async fn copy_into(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    statement: &str,
    text: &str,
) -> Result<(), sqlx::Error> {
    let mut copy = tx.copy_in_raw(statement).await?;
    copy.send(text.as_bytes()).await?;
    copy.finish().await.map(drop)
}

/// One row's values as text, one slot per output column (`None`: SQL `NULL`): every
/// value's text in one buffer, reused from row to row, so a row costs no allocation per
/// value.
#[derive(Debug, Default)]
struct RowSlots {
    text: String,
    slots: Vec<Option<std::ops::Range<usize>>>,
}

impl RowSlots {
    /// Column `i`'s text.
    fn get(&self, i: usize) -> Option<&str> {
        self.slots
            .get(i)
            .cloned()
            .flatten()
            .map(|range| &self.text[range])
    }

    /// Appends the row as a line of `COPY`'s text format, columns in the order of the
    /// table and the staging table: the values, then the computed key or the partition
    /// and offset, then the version.
    fn push_copy_line(&self, out: &mut String, record: &SinkRecord, mode: &Mode) {
        use std::fmt::Write as _;
        for i in 0..self.slots.len() {
            match self.get(i) {
                Some(text) => push_copy_escaped(out, text),
                None => out.push_str("\\N"),
            }
            out.push('\t');
        }
        // Writing to a `String` cannot fail.
        let _ = match mode {
            Mode::KeyField(_) => Ok(()),
            Mode::ComputedKey(_) => {
                push_copy_escaped(out, &record.key);
                out.push('\t');
                Ok(())
            }
            Mode::Append => write!(out, "{}\t{}\t", record.partition, record.version),
        };
        // Every line ends with the version: written without `fmt`'s machinery.
        out.push_str(itoa::Buffer::new().format(record.version));
        out.push('\n');
    }
}

/// Appends `text` escaped for `COPY`'s text format: a backslash, and the characters that
/// separate columns and rows, are written as backslash sequences; everything else (quotes,
/// any Unicode) goes as it is, since the text format knows no quoting.
fn push_copy_escaped(out: &mut String, text: &str) {
    let mut rest = text;
    // The special characters are ASCII, so the text between them is whole characters.
    while let Some(at) = rest.find(['\\', '\t', '\n', '\r']) {
        out.push_str(&rest[..at]);
        out.push_str(match rest.as_bytes()[at] {
            b'\\' => "\\\\",
            b'\t' => "\\t",
            b'\n' => "\\n",
            _ => "\\r",
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

/// Appends `value` to `out` as the text PostgreSQL casts to `sql_type`: `Ok(false)` for
/// JSON `null` (SQL `NULL`, nothing appended); `Err` says what was expected.
fn column_text(sql_type: &str, value: &Value, out: &mut String) -> Result<bool, &'static str> {
    use std::fmt::Write as _;
    if value.is_null() {
        return Ok(false);
    }
    // Writing to a `String` cannot fail.
    match sql_type {
        "text" => out.push_str(value.as_str().ok_or("a string")?),
        "bigint" => {
            out.push_str(itoa::Buffer::new().format(value.as_i64().ok_or("an integer (64-bit)")?));
        }
        // Integers as they are, other numbers as the shortest text that reads back as the
        // same double, without `fmt`'s machinery.
        "double precision" => match value {
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => out.push_str(itoa::Buffer::new().format(i)),
                (None, Some(u), _) => out.push_str(itoa::Buffer::new().format(u)),
                (None, None, Some(f)) if f.is_finite() => {
                    out.push_str(ryu::Buffer::new().format_finite(f));
                }
                _ => return Err("a number"),
            },
            _ => return Err("a number"),
        },
        "boolean" => out.push_str(match value.as_bool().ok_or("true or false")? {
            true => "true",
            false => "false",
        }),
        // Checked, and then sent as written: PostgreSQL reads RFC 3339 as it is, and
        // writing the parsed time back out cost the sink more than checking it.
        "timestamptz" => out.push_str(
            value
                .as_str()
                .filter(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
                .ok_or("an RFC 3339 timestamp")?,
        ),
        "jsonb" => {
            let _ = write!(out, "{value}");
        }
        _ => return Err("of a supported column type"),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{STRAIGHT_COPY_MAX_PAUSE, StraightCopy, push_copy_escaped};
    use serde_json::{Value, json};

    /// The text `column_text` writes for `value`, `None` for SQL `NULL`.
    fn column_text(sql_type: &str, value: &Value) -> Result<Option<String>, &'static str> {
        let mut out = "before|".to_owned();
        let written = super::column_text(sql_type, value, &mut out)?;
        let text = out.strip_prefix("before|").map(str::to_owned);
        Ok(text.filter(|_| written))
    }

    #[test]
    fn copy_text_escapes_backslashes_and_separators_only() {
        let mut out = String::new();
        push_copy_escaped(&mut out, "a\\b\tc\nd\re \"q\" é\t");
        assert_eq!(out, "a\\\\b\\tc\\nd\\re \"q\" é\\t");
        push_copy_escaped(&mut out, "");
        push_copy_escaped(&mut out, "plain");
        assert_eq!(out, "a\\\\b\\tc\\nd\\re \"q\" é\\tplain");
    }

    #[test]
    fn straight_copies_pause_longer_after_each_refusal_in_a_row() {
        let straight = StraightCopy::default();
        assert!(straight.attempt());
        let mut pauses = Vec::new();
        for _ in 0..9 {
            straight.refused();
            let mut skipped = 0;
            while !straight.attempt() {
                skipped += 1;
            }
            pauses.push(skipped);
        }
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 64, 64, 64]);
        assert_eq!(STRAIGHT_COPY_MAX_PAUSE, 64);
        // A success ends the pausing: the next refusal pauses one batch again.
        straight.succeeded();
        assert!(straight.attempt());
        straight.refused();
        assert!(!straight.attempt());
        assert!(straight.attempt());
    }

    #[test]
    fn values_are_checked_against_column_types() {
        assert_eq!(column_text("text", &json!("a")), Ok(Some("a".to_owned())));
        assert!(column_text("text", &json!(1)).is_err());
        assert_eq!(column_text("bigint", &json!(-7)), Ok(Some("-7".to_owned())));
        assert!(column_text("bigint", &json!(1.5)).is_err());
        assert_eq!(
            column_text("double precision", &json!(1.5)),
            Ok(Some("1.5".to_owned()))
        );
        // Integers are written as they are; other numbers as text that reads back as the
        // same double.
        let integers = json!([0, -3, 9_007_199_254_740_993_i64, u64::MAX]);
        for n in integers.as_array().unwrap() {
            assert_eq!(column_text("double precision", n), Ok(Some(n.to_string())));
        }
        for f in [12.0, 0.1, -0.0, 1e300, 2.5e-8, f64::MAX, f64::MIN_POSITIVE] {
            let text = column_text("double precision", &json!(f)).unwrap().unwrap();
            assert_eq!(
                text.parse::<f64>().unwrap().to_bits(),
                f.to_bits(),
                "{text}"
            );
        }
        assert!(column_text("double precision", &json!("1")).is_err());
        assert_eq!(
            column_text("boolean", &json!(true)),
            Ok(Some("true".to_owned()))
        );
        assert_eq!(
            column_text("timestamptz", &json!("2024-05-01T10:00:00Z")),
            Ok(Some("2024-05-01T10:00:00Z".to_owned()))
        );
        assert_eq!(
            column_text("timestamptz", &json!("2024-05-01T12:00:00.123456+02:00")),
            Ok(Some("2024-05-01T12:00:00.123456+02:00".to_owned()))
        );
        assert!(column_text("timestamptz", &json!("now")).is_err());
        assert_eq!(
            column_text("jsonb", &json!({"a": [1]})),
            Ok(Some(r#"{"a":[1]}"#.to_owned()))
        );
        assert_eq!(column_text("jsonb", &json!(null)), Ok(None));
    }
}
