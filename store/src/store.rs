//! The store: connection, migrations and the object operations.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use sluice_schemas::Kind;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyPool, Row, Transaction};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, OwnedMutexGuard};
use uuid::Uuid;

use crate::audit::{
    self, Audit, AuditEntry, AuditInput, AuditKey, AuditQuery, AuditVerification, object_diff,
};
use crate::error::{CorruptValue, StoreError};
use crate::model::{
    Applied, Backend, ListQuery, ObjectInput, ObjectKey, Outcome, Page, SERVER_METADATA_KEYS,
    SchemaVersion, StoredObject, decode_cursor, encode_cursor, rfc3339,
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Set on every new SQLite connection. (WAL is a property of the file, set once at connect.)
const SQLITE_PRAGMAS: [&str; 3] = [
    "PRAGMA busy_timeout = 15000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
];

/// How many connections a pool opens at most.
const SQLITE_MAX_CONNECTIONS: u32 = 8;
const POSTGRES_MAX_CONNECTIONS: u32 = 16;

// The SQL, identical for both backends: `$n` placeholders (SQLite reads `$n` as the n-th
// argument), no backend-specific syntax. Never built at run time.

/// Takes the store-wide write lock and yields the next resourceVersion.
const BUMP_REVISION: &str =
    "UPDATE store_revision SET value = value + 1 WHERE id = 1 RETURNING value";

macro_rules! object_columns {
    () => {
        "kind, team, name, uid, metadata, spec, status, generation, resource_version, \
         created_at, updated_at"
    };
}

const SELECT_OBJECT: &str = concat!(
    "SELECT ",
    object_columns!(),
    " FROM objects WHERE kind = $1 AND team = $2 AND name = $3"
);

/// `$2` team filter, `$3`/`$4` name prefix and its length in characters, `$5`/`$6` the
/// (team, name) after which the page starts, `$7` the number of rows.
const LIST_OBJECTS: &str = concat!(
    "SELECT ",
    object_columns!(),
    " FROM objects WHERE kind = $1",
    " AND ($2 IS NULL OR team = $2)",
    " AND ($3 IS NULL OR (name >= $3 AND substr(name, 1, $4) = $3))",
    " AND ($5 IS NULL OR team > $5 OR (team = $5 AND name > $6))",
    " ORDER BY team, name LIMIT $7"
);

const INSERT_OBJECT: &str = concat!(
    "INSERT INTO objects (",
    object_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    " ON CONFLICT (kind, team, name) DO NOTHING"
);

const UPDATE_OBJECT: &str = "UPDATE objects \
     SET metadata = $4, spec = $5, generation = $6, resource_version = $7, updated_at = $8 \
     WHERE kind = $1 AND team = $2 AND name = $3 AND resource_version = $9";

const UPDATE_STATUS: &str = "UPDATE objects \
     SET status = $4, resource_version = $5, updated_at = $6 \
     WHERE kind = $1 AND team = $2 AND name = $3 AND resource_version = $7";

const DELETE_OBJECT: &str =
    "DELETE FROM objects WHERE kind = $1 AND team = $2 AND name = $3 AND resource_version = $4";

const LATEST_SCHEMA_VERSION: &str = "SELECT version, schema, created_at FROM schema_versions \
     WHERE dataset = $1 ORDER BY version DESC LIMIT 1";

const INSERT_SCHEMA_VERSION: &str = "INSERT INTO schema_versions (dataset, version, schema, created_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (dataset, version) DO NOTHING";

const SELECT_SCHEMA_VERSIONS: &str = "SELECT version, schema, created_at FROM schema_versions \
     WHERE dataset = $1 ORDER BY version";

const SELECT_SCHEMA_VERSION: &str = "SELECT version, schema, created_at FROM schema_versions \
     WHERE dataset = $1 AND version = $2";

const DELETE_SCHEMA_VERSIONS: &str = "DELETE FROM schema_versions WHERE dataset = $1";

/// The metadata store. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// SQLite only: writers of this process queue here rather than in SQLite's busy handler.
    write_lock: Option<Arc<Mutex<()>>>,
    /// Signs the head of the audit log.
    pub(crate) audit_key: AuditKey,
}

/// An open write transaction holding the store-wide write lock.
pub(crate) struct Write {
    pub(crate) tx: Transaction<'static, Any>,
    /// The resourceVersion this write gives the object it changes.
    revision: i64,
    /// Dropped after `tx` (fields drop in order).
    _queued: Option<OwnedMutexGuard<()>>,
}

impl Store {
    /// Connects to the database at `url` and applies the migrations it lacks.
    ///
    /// - `sqlite://PATH?mode=rwc` (or `sqlite:PATH?mode=rwc`): an SQLite file, created with its
    ///   parent directory if missing (`mode=rwc`); put in WAL mode, with a busy timeout and
    ///   foreign keys on. `sqlite::memory:` is an in-memory store on a single connection.
    /// - `postgres://…` or `postgresql://…`: a PostgreSQL database, which must exist.
    ///
    /// `audit_key` signs the head of the audit log; a store opened with another key than the
    /// one that wrote the log refuses changes ([`StoreError::AuditHeadInvalid`]) and
    /// [`Store::verify_audit`] reports the head's signature invalid.
    pub async fn connect(url: &str, audit_key: AuditKey) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::InvalidUrl {
                reason: "expected sqlite://PATH?mode=rwc or postgres://…",
                source: None,
            });
        };
        let (pool, write_lock) = match backend {
            Backend::Sqlite => (connect_sqlite(url).await?, Some(Arc::default())),
            Backend::Postgres => (connect_postgres(url).await?, None),
        };
        migrate(&pool, backend).await?;
        tracing::debug!(backend = backend.as_str(), "metadata store ready");
        Ok(Store {
            pool,
            backend,
            write_lock,
            audit_key,
        })
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection; later calls on this store (and its clones) fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Creates or updates the object at `key`.
    ///
    /// - Missing: created with a new uid, generation 1 → [`Outcome::Created`].
    /// - Spec and metadata equal to the stored ones (JSON equality; key order does not matter):
    ///   nothing is written, resourceVersion stays → [`Outcome::Unchanged`].
    /// - Otherwise → [`Outcome::Updated`]: the resourceVersion changes, the generation is
    ///   incremented only if the spec changed; the status is kept.
    ///
    /// `precondition` is the resourceVersion the caller expects the object to have: if it has
    /// another one, or does not exist, the write fails with [`StoreError::Conflict`] (whose
    /// `actual` is `None` for a missing object) — even if the write would be a no-op.
    ///
    /// For a dataset, `input.schema_version` (when `Some` and the object is written) is
    /// compared with the dataset's latest schema version and, if different, recorded as the
    /// next version in the same transaction. An `Unchanged` apply records nothing.
    ///
    /// A write appends an audit entry by `audit` in its transaction: action `apply`, outcome
    /// `created` or `updated`, the generation after the write and the diff of
    /// `{"metadata", "spec"}` (see [`AuditEntry::diff`]). An `Unchanged` apply and a refused
    /// one (conflict, claim taken) change nothing and are not audited. If the entry cannot be
    /// written the write is not made ([`StoreError::AuditWrite`]).
    pub async fn apply(
        &self,
        key: &ObjectKey,
        input: ObjectInput,
        precondition: Option<i64>,
        audit: &Audit,
    ) -> Result<Applied, StoreError> {
        if input.schema_version.is_some() && key.kind() != Kind::Dataset {
            return Err(StoreError::SchemaVersionNotDataset { kind: key.kind() });
        }
        check_audit(audit)?;
        let metadata = user_metadata(input.metadata);
        let spec = input.spec;
        let mut write = self.begin_write().await?;
        let now = now();
        let current = fetch_object(&mut write.tx, key).await?;
        check_precondition(key, precondition, current.as_ref())?;

        let before = current.as_ref().map(written_state);
        let (outcome, object) = match current {
            None => {
                let object = StoredObject {
                    key: key.clone(),
                    uid: Uuid::new_v4(),
                    metadata,
                    spec,
                    status: None,
                    generation: 1,
                    resource_version: write.revision,
                    created_at: now,
                    updated_at: now,
                };
                let inserted = sqlx::query(INSERT_OBJECT)
                    .bind(key.kind().as_str())
                    .bind(key.team())
                    .bind(key.name())
                    .bind(object.uid.to_string())
                    .bind(object.metadata.to_string())
                    .bind(object.spec.to_string())
                    .bind(None::<String>)
                    .bind(object.generation)
                    .bind(object.resource_version)
                    .bind(rfc3339(object.created_at))
                    .bind(rfc3339(object.updated_at))
                    .execute(&mut *write.tx)
                    .await?
                    .rows_affected();
                if inserted != 1 {
                    return Err(conflict(key, precondition, None));
                }
                (Outcome::Created, object)
            }
            Some(current) if current.spec == spec && current.metadata == metadata => {
                write.tx.rollback().await?;
                return Ok(Applied {
                    outcome: Outcome::Unchanged,
                    object: current,
                    schema_version: None,
                });
            }
            Some(current) => {
                let generation = if current.spec == spec {
                    current.generation
                } else {
                    current.generation + 1
                };
                let object = StoredObject {
                    metadata,
                    spec,
                    generation,
                    resource_version: write.revision,
                    updated_at: now,
                    ..current
                };
                let updated = sqlx::query(UPDATE_OBJECT)
                    .bind(key.kind().as_str())
                    .bind(key.team())
                    .bind(key.name())
                    .bind(object.metadata.to_string())
                    .bind(object.spec.to_string())
                    .bind(object.generation)
                    .bind(object.resource_version)
                    .bind(rfc3339(object.updated_at))
                    .bind(current.resource_version)
                    .execute(&mut *write.tx)
                    .await?
                    .rows_affected();
                if updated != 1 {
                    return Err(conflict(
                        key,
                        Some(current.resource_version),
                        Some(current.resource_version),
                    ));
                }
                (Outcome::Updated, object)
            }
        };

        replace_claims(&mut write.tx, key, &input.claims).await?;
        let schema_version = match input.schema_version {
            Some(schema) => record_schema_version(&mut write.tx, key, &schema, now).await?,
            None => None,
        };
        let outcome_name = match outcome {
            Outcome::Created => "created",
            Outcome::Updated | Outcome::Unchanged => "updated",
        };
        let entry = AuditInput::new(audit, "apply", outcome_name)
            .with_object(key)
            .with_generation(Some(object.generation))
            .with_diff(object_diff(before, Some(written_state(&object))));
        audit::append(&mut write.tx, &self.audit_key, entry, now).await?;
        write.tx.commit().await?;
        tracing::debug!(%key, ?outcome, resource_version = object.resource_version, "applied");
        Ok(Applied {
            outcome,
            object,
            schema_version,
        })
    }

    /// The object at `key`, if it exists.
    pub async fn get(&self, key: &ObjectKey) -> Result<Option<StoredObject>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        fetch_object(&mut conn, key).await
    }

    /// One page of the objects of `kind` that match `query`, ordered by (team, name).
    ///
    /// Pages are keyset-paginated: follow [`Page::next`] until it is `None`. Objects created
    /// or deleted meanwhile may or may not appear, but no object present throughout is
    /// skipped or repeated.
    pub async fn list(&self, kind: Kind, query: &ListQuery) -> Result<Page, StoreError> {
        let limit = query.effective_limit();
        let after = query.after.as_deref().map(decode_cursor).transpose()?;
        let (after_team, after_name) = match after {
            Some((team, name)) => (Some(team), Some(name)),
            None => (None, None),
        };
        let prefix = query.name_prefix.as_deref().filter(|p| !p.is_empty());
        let prefix_chars = prefix.map(|p| i32::try_from(p.chars().count()).unwrap_or(i32::MAX));
        let rows = sqlx::query(LIST_OBJECTS)
            .bind(kind.as_str())
            .bind(query.team.as_deref())
            .bind(prefix)
            .bind(prefix_chars)
            .bind(after_team)
            .bind(after_name)
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let mut items = rows
            .iter()
            .map(decode_object)
            .collect::<Result<Vec<_>, _>>()?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let next = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|last| encode_cursor(last.key.team(), last.key.name()))
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// Deletes the object at `key` and returns it as it was; `Ok(None)` if it did not exist
    /// (and no precondition was given). Deleting a dataset also deletes its schema versions.
    ///
    /// With a `precondition` that is not the object's resourceVersion, or on a missing
    /// object, fails with [`StoreError::Conflict`] and deletes nothing.
    ///
    /// A delete appends an audit entry by `audit` in its transaction: action `delete`,
    /// outcome `deleted`, the deleted object's generation, and the diff from its
    /// `{"metadata", "spec", "status"}` to `null`. Deleting nothing is not audited.
    pub async fn delete(
        &self,
        key: &ObjectKey,
        precondition: Option<i64>,
        audit: &Audit,
    ) -> Result<Option<StoredObject>, StoreError> {
        check_audit(audit)?;
        let mut write = self.begin_write().await?;
        let current = fetch_object(&mut write.tx, key).await?;
        check_precondition(key, precondition, current.as_ref())?;
        let Some(current) = current else {
            write.tx.rollback().await?;
            return Ok(None);
        };
        let deleted = sqlx::query(DELETE_OBJECT)
            .bind(key.kind().as_str())
            .bind(key.team())
            .bind(key.name())
            .bind(current.resource_version)
            .execute(&mut *write.tx)
            .await?
            .rows_affected();
        if deleted != 1 {
            return Err(conflict(
                key,
                Some(current.resource_version),
                Some(current.resource_version),
            ));
        }
        replace_claims(&mut write.tx, key, &[]).await?;
        if key.kind() == Kind::Dataset {
            sqlx::query(DELETE_SCHEMA_VERSIONS)
                .bind(key.name())
                .execute(&mut *write.tx)
                .await?;
        }
        let mut before = written_state(&current);
        if let (Value::Object(state), Some(status)) = (&mut before, &current.status) {
            state.insert("status".to_owned(), status.clone());
        }
        let entry = AuditInput::new(audit, "delete", "deleted")
            .with_object(key)
            .with_generation(Some(current.generation))
            .with_diff(object_diff(Some(before), None));
        audit::append(&mut write.tx, &self.audit_key, entry, now()).await?;
        write.tx.commit().await?;
        tracing::debug!(%key, "deleted");
        Ok(Some(current))
    }

    /// Replaces the status of the object at `key` (`null` clears it) and returns the object.
    /// The resourceVersion changes; the generation, spec and metadata do not. Writing the
    /// status the object already has (JSON equality) writes nothing and keeps the
    /// resourceVersion, so a controller re-asserting its status does not churn versions.
    ///
    /// Fails with [`StoreError::NotFound`] if the object does not exist and no precondition
    /// was given, with [`StoreError::Conflict`] if a precondition was given and the object
    /// has another resourceVersion or does not exist.
    ///
    /// A change appends an audit entry by `audit` in its transaction: action `status`,
    /// outcome `updated`, the object's generation and the diff of `{"status"}` (absent when
    /// cleared). Re-writing the same status is not audited.
    pub async fn set_status(
        &self,
        key: &ObjectKey,
        status: Value,
        precondition: Option<i64>,
        audit: &Audit,
    ) -> Result<StoredObject, StoreError> {
        self.record_status(key, status, precondition, audit, "status", "updated")
            .await
    }

    /// [`Store::set_status`] for a decision that is a status change, audited under its own
    /// `action` and `outcome` (e.g. `approve`/`approved`, `reject`/`rejected`) so the log
    /// says what was decided, not only that the status changed.
    pub async fn record_status(
        &self,
        key: &ObjectKey,
        status: Value,
        precondition: Option<i64>,
        audit: &Audit,
        action: &str,
        outcome: &str,
    ) -> Result<StoredObject, StoreError> {
        check_audit(audit)?;
        let mut write = self.begin_write().await?;
        let now = now();
        let current = fetch_object(&mut write.tx, key).await?;
        check_precondition(key, precondition, current.as_ref())?;
        let Some(current) = current else {
            write.tx.rollback().await?;
            return Err(StoreError::NotFound { key: key.clone() });
        };
        let status = match status {
            Value::Null => None,
            status => Some(status),
        };
        if status == current.status {
            write.tx.rollback().await?;
            return Ok(current);
        }
        let object = StoredObject {
            status,
            resource_version: write.revision,
            updated_at: now,
            ..current
        };
        let updated = sqlx::query(UPDATE_STATUS)
            .bind(key.kind().as_str())
            .bind(key.team())
            .bind(key.name())
            .bind(object.status.as_ref().map(Value::to_string))
            .bind(object.resource_version)
            .bind(rfc3339(object.updated_at))
            .bind(current.resource_version)
            .execute(&mut *write.tx)
            .await?
            .rows_affected();
        if updated != 1 {
            return Err(conflict(
                key,
                Some(current.resource_version),
                Some(current.resource_version),
            ));
        }
        let entry = AuditInput::new(audit, action, outcome)
            .with_object(key)
            .with_generation(Some(object.generation))
            .with_diff(object_diff(
                Some(status_state(current.status.as_ref())),
                Some(status_state(object.status.as_ref())),
            ));
        audit::append(&mut write.tx, &self.audit_key, entry, now).await?;
        write.tx.commit().await?;
        tracing::debug!(%key, resource_version = object.resource_version, "status set");
        Ok(object)
    }

    /// Every recorded schema version of `dataset`, oldest first; empty for an unknown one.
    pub async fn schema_versions(&self, dataset: &str) -> Result<Vec<SchemaVersion>, StoreError> {
        let rows = sqlx::query(SELECT_SCHEMA_VERSIONS)
            .bind(dataset)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| decode_schema_version(dataset, row))
            .collect()
    }

    /// Schema version `version` of `dataset`, if recorded.
    pub async fn schema_version(
        &self,
        dataset: &str,
        version: i64,
    ) -> Result<Option<SchemaVersion>, StoreError> {
        let row = sqlx::query(SELECT_SCHEMA_VERSION)
            .bind(dataset)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| decode_schema_version(dataset, &row))
            .transpose()
    }

    /// Appends `entry` to the audit log in a transaction of its own (serialised with every
    /// other write), for an action that is not an object write: a token created, an
    /// approval, a verification run. Returns the entry as stored.
    pub async fn append_audit(&self, entry: AuditInput) -> Result<AuditEntry, StoreError> {
        let mut write = self.begin_write().await?;
        let entry = audit::append(&mut write.tx, &self.audit_key, entry, now()).await?;
        write.tx.commit().await?;
        Ok(entry)
    }

    /// The audit entries matching `query`, oldest first, at most
    /// [`AuditQuery::effective_limit`] of them; the next page starts after the last `seq`.
    pub async fn audit_entries(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        audit::entries(&mut conn, query).await
    }

    /// Writes every audit entry matching `query` (from `query.after_seq` on, whatever
    /// `query.limit`) to `out` as JSON lines — one camelCase [`AuditEntry`] per line, oldest
    /// first — and returns how many were written.
    pub async fn export_audit<W>(&self, query: &AuditQuery, out: &mut W) -> Result<u64, StoreError>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let mut page = AuditQuery {
            limit: AuditQuery::MAX_LIMIT,
            ..query.clone()
        };
        let mut written = 0;
        loop {
            let entries = self.audit_entries(&page).await?;
            let mut buffer = Vec::new();
            for entry in &entries {
                serde_json::to_writer(&mut buffer, entry)
                    .map_err(|e| StoreError::Export(e.into()))?;
                buffer.push(b'\n');
            }
            out.write_all(&buffer).await.map_err(StoreError::Export)?;
            written += entries.len() as u64;
            match entries.last() {
                Some(last) if entries.len() == AuditQuery::MAX_LIMIT as usize => {
                    page.after_seq = Some(last.seq);
                }
                _ => break,
            }
        }
        out.flush().await.map_err(StoreError::Export)?;
        Ok(written)
    }

    /// Re-walks the whole audit log and checks it: every entry's hash, `seq` consecutive
    /// from 1, every `prev_hash` the hash of the entry before, and the last entry being the
    /// one the signed head names, with a valid signature. Reads one consistent snapshot;
    /// writers are not blocked. See [`AuditVerification`] and
    /// [`AuditBreakReason`](crate::AuditBreakReason) for what it reports.
    pub async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .await?
            }
        };
        let verification = audit::verify(&mut tx, &self.audit_key).await?;
        tx.rollback().await?;
        Ok(verification)
    }

    /// Opens a write transaction and takes the store-wide write lock: on SQLite by queueing
    /// in-process and then `BEGIN IMMEDIATE`, on both by incrementing the revision row (whose
    /// PostgreSQL row lock is held until commit).
    pub(crate) async fn begin_write(&self) -> Result<Write, StoreError> {
        let queued = match &self.write_lock {
            Some(lock) => Some(Arc::clone(lock).lock_owned().await),
            None => None,
        };
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        let revision: i64 = sqlx::query_scalar(BUMP_REVISION)
            .fetch_one(&mut *tx)
            .await?;
        Ok(Write {
            tx,
            revision,
            _queued: queued,
        })
    }
}

async fn connect_sqlite(url: &str) -> Result<AnyPool, StoreError> {
    let options = SqliteConnectOptions::from_str(url).map_err(|source| StoreError::InvalidUrl {
        reason: "not a valid SQLite URL",
        source: Some(source),
    })?;
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if !in_memory
        && let Some(parent) = options.get_filename().parent()
        && !parent.as_os_str().is_empty()
    {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|source| StoreError::CreateDirectory {
                path: parent.to_path_buf(),
                source,
            })?;
    }
    let pool_options = AnyPoolOptions::new().after_connect(|conn, _meta| {
        Box::pin(async move {
            for pragma in SQLITE_PRAGMAS {
                sqlx::query(pragma).execute(&mut *conn).await?;
            }
            Ok(())
        })
    });
    // Each connection to `:memory:` would be its own database: keep exactly one, forever.
    let pool_options = if in_memory {
        pool_options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        pool_options.max_connections(SQLITE_MAX_CONNECTIONS)
    };
    let pool = pool_options.connect(url).await?;
    if !in_memory {
        enable_wal(&pool).await?;
    }
    Ok(pool)
}

/// Puts the database file in WAL mode (a persistent property of the file). Switching needs a
/// moment of exclusive access, which `busy_timeout` does not wait for, so it is retried.
async fn enable_wal(pool: &AnyPool) -> Result<(), StoreError> {
    const ATTEMPTS: u32 = 100;
    for attempt in 1..=ATTEMPTS {
        match sqlx::query_scalar::<_, String>("PRAGMA journal_mode = WAL")
            .fetch_one(pool)
            .await
        {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) if attempt == ATTEMPTS => {
                tracing::warn!(%mode, "could not switch the SQLite database to WAL mode");
                return Ok(());
            }
            Err(err) if attempt == ATTEMPTS => return Err(err.into()),
            Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    Ok(())
}

async fn connect_postgres(url: &str) -> Result<AnyPool, StoreError> {
    AnyPoolOptions::new()
        .max_connections(POSTGRES_MAX_CONNECTIONS)
        .connect(url)
        .await
        .map_err(|err| match err {
            sqlx::Error::Configuration(_) => StoreError::InvalidUrl {
                reason: "not a valid PostgreSQL URL",
                source: Some(err),
            },
            err => StoreError::Database(err),
        })
}

async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    /// How often SQLite migrations are retried after losing a race, and how long to wait.
    const SQLITE_ATTEMPTS: u32 = 20;
    const SQLITE_RETRY_DELAY: Duration = Duration::from_millis(25);
    let migrator = match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    };
    let mut attempt = 1;
    loop {
        match migrator.run(pool).await {
            Ok(()) => return Ok(()),
            // PostgreSQL migrations hold an advisory lock; SQLite ones have none, so another
            // process (or store) migrating the same file at the same moment makes ours fail
            // ("table … already exists"; each migration runs in a transaction, so nothing is
            // left half-done). Each loss means the other made progress: run again until it
            // is all applied — a second run sees that work and has less or nothing to do.
            Err(err) if backend == Backend::Sqlite && attempt < SQLITE_ATTEMPTS => {
                tracing::debug!(error = %err, attempt, "retrying SQLite migrations");
                attempt += 1;
                tokio::time::sleep(SQLITE_RETRY_DELAY).await;
            }
            Err(err) => return Err(StoreError::Migrate(err)),
        }
    }
}

pub(crate) fn now() -> DateTime<Utc> {
    // Stored with microseconds: the returned object must equal what a later read gives.
    Utc::now().trunc_subsecs(6)
}

/// The metadata without the server-maintained keys.
fn user_metadata(metadata: Value) -> Value {
    match metadata {
        Value::Object(mut map) => {
            for key in SERVER_METADATA_KEYS {
                map.shift_remove(key);
            }
            Value::Object(map)
        }
        other => other,
    }
}

/// Refuses a change whose actor is not named.
fn check_audit(audit: &Audit) -> Result<(), StoreError> {
    if audit.actor.is_empty() {
        return Err(StoreError::InvalidAuditEntry {
            reason: "the actor is empty",
        });
    }
    Ok(())
}

/// What an apply writes: `{"metadata": …, "spec": …}`, as recorded in audit diffs.
fn written_state(object: &StoredObject) -> Value {
    let mut state = serde_json::Map::new();
    state.insert("metadata".to_owned(), object.metadata.clone());
    state.insert("spec".to_owned(), object.spec.clone());
    Value::Object(state)
}

/// What a status write writes: `{"status": …}`, or `{}` without a status.
fn status_state(status: Option<&Value>) -> Value {
    let mut state = serde_json::Map::new();
    if let Some(status) = status {
        state.insert("status".to_owned(), status.clone());
    }
    Value::Object(state)
}

fn check_precondition(
    key: &ObjectKey,
    precondition: Option<i64>,
    current: Option<&StoredObject>,
) -> Result<(), StoreError> {
    let actual = current.map(|object| object.resource_version);
    match precondition {
        Some(expected) if actual != Some(expected) => Err(conflict(key, Some(expected), actual)),
        _ => Ok(()),
    }
}

fn conflict(key: &ObjectKey, expected: Option<i64>, actual: Option<i64>) -> StoreError {
    StoreError::Conflict {
        key: key.clone(),
        expected,
        actual,
    }
}

async fn fetch_object(
    conn: &mut sqlx::AnyConnection,
    key: &ObjectKey,
) -> Result<Option<StoredObject>, StoreError> {
    let row = sqlx::query(SELECT_OBJECT)
        .bind(key.kind().as_str())
        .bind(key.team())
        .bind(key.name())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(decode_object).transpose()
}

/// Records `schema` as the next schema version of the dataset `key` unless it equals the
/// latest one; returns the number recorded.
async fn record_schema_version(
    conn: &mut sqlx::AnyConnection,
    key: &ObjectKey,
    schema: &Value,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    let dataset = key.name();
    let latest = sqlx::query(LATEST_SCHEMA_VERSION)
        .bind(dataset)
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| decode_schema_version(dataset, &row))
        .transpose()?;
    let version = match latest {
        Some(latest) if &latest.schema == schema => return Ok(None),
        Some(latest) => latest.version + 1,
        None => 1,
    };
    let inserted = sqlx::query(INSERT_SCHEMA_VERSION)
        .bind(dataset)
        .bind(version)
        .bind(schema.to_string())
        .bind(rfc3339(now))
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if inserted != 1 {
        return Err(conflict(key, None, None));
    }
    Ok(Some(version))
}

fn decode_object(row: &AnyRow) -> Result<StoredObject, StoreError> {
    let kind_name: String = row.try_get("kind")?;
    let team: String = row.try_get("team")?;
    let name: String = row.try_get("name")?;
    let label = if team.is_empty() {
        format!("{kind_name} {name}")
    } else {
        format!("{kind_name} {team}/{name}")
    };
    let corrupt = |column: &'static str, source: CorruptValue| StoreError::Corrupt {
        row: label.clone(),
        column,
        source,
    };
    let kind = Kind::from_str(&kind_name).map_err(|e| corrupt("kind", CorruptValue::Kind(e)))?;
    let uid: String = row.try_get("uid")?;
    let uid = Uuid::parse_str(&uid).map_err(|e| corrupt("uid", CorruptValue::Uid(e)))?;
    let json = |column: &'static str, text: &str| {
        serde_json::from_str::<Value>(text).map_err(|e| corrupt(column, CorruptValue::Json(e)))
    };
    let timestamp = |column: &'static str, text: &str| {
        DateTime::parse_from_rfc3339(text)
            .map(|time| time.with_timezone(&Utc))
            .map_err(|e| corrupt(column, CorruptValue::Timestamp(e)))
    };
    let metadata = json("metadata", &row.try_get::<String, _>("metadata")?)?;
    let spec = json("spec", &row.try_get::<String, _>("spec")?)?;
    let status = match row.try_get::<Option<String>, _>("status")? {
        Some(text) => Some(json("status", &text)?),
        None => None,
    };
    let created_at = timestamp("created_at", &row.try_get::<String, _>("created_at")?)?;
    let updated_at = timestamp("updated_at", &row.try_get::<String, _>("updated_at")?)?;
    Ok(StoredObject {
        key: ObjectKey::new(kind, team, name),
        uid,
        metadata,
        spec,
        status,
        generation: row.try_get("generation")?,
        resource_version: row.try_get("resource_version")?,
        created_at,
        updated_at,
    })
}

fn decode_schema_version(dataset: &str, row: &AnyRow) -> Result<SchemaVersion, StoreError> {
    let version: i64 = row.try_get("version")?;
    let corrupt = |column: &'static str, source: CorruptValue| StoreError::Corrupt {
        row: format!("schema version {version} of {dataset}"),
        column,
        source,
    };
    let schema = serde_json::from_str(&row.try_get::<String, _>("schema")?)
        .map_err(|e| corrupt("schema", CorruptValue::Json(e)))?;
    let created_at = DateTime::parse_from_rfc3339(&row.try_get::<String, _>("created_at")?)
        .map_err(|e| corrupt("created_at", CorruptValue::Timestamp(e)))?
        .with_timezone(&Utc);
    Ok(SchemaVersion {
        version,
        schema,
        created_at,
    })
}

const DELETE_CLAIMS: &str = "DELETE FROM object_claims WHERE kind = $1 AND team = $2 AND name = $3";
const INSERT_CLAIM: &str = "INSERT INTO object_claims (claim, kind, team, name) VALUES ($1, $2, $3, $4) \
                            ON CONFLICT (claim) DO NOTHING";
const CLAIM_OWNER: &str = "SELECT kind, team, name FROM object_claims WHERE claim = $1";

/// Makes `claims` the exact set the object at `key` holds; fails if another object holds one.
async fn replace_claims(
    conn: &mut sqlx::AnyConnection,
    key: &ObjectKey,
    claims: &[String],
) -> Result<(), StoreError> {
    sqlx::query(DELETE_CLAIMS)
        .bind(key.kind().as_str())
        .bind(key.team())
        .bind(key.name())
        .execute(&mut *conn)
        .await?;
    for claim in claims {
        let inserted = sqlx::query(INSERT_CLAIM)
            .bind(claim.as_str())
            .bind(key.kind().as_str())
            .bind(key.team())
            .bind(key.name())
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if inserted == 0 {
            let row = sqlx::query(CLAIM_OWNER)
                .bind(claim.as_str())
                .fetch_one(&mut *conn)
                .await?;
            let kind: String = row.try_get("kind")?;
            let kind = Kind::ALL
                .into_iter()
                .find(|k| k.as_str() == kind)
                .unwrap_or(key.kind());
            return Err(StoreError::ClaimTaken {
                claim: claim.clone(),
                owner: ObjectKey::new(
                    kind,
                    row.try_get::<String, _>("team")?,
                    row.try_get::<String, _>("name")?,
                ),
            });
        }
    }
    Ok(())
}
