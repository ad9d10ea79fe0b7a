//! The store: connection, migrations and the write transaction.
//!
//! The operations are in the submodules: [`objects`] (apply, get, list, delete), [`status`],
//! [`schema_versions`], [`claims`] and [`audit_log`] (the audit methods of [`Store`]).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use crate::audit::AuditKey;
use crate::error::StoreError;
use crate::model::Backend;

mod audit_log;
mod claims;
mod objects;
mod runtime;
mod schema_versions;
mod status;

pub use runtime::{Leadership, StoredCredentials};

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

/// The metadata store. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// SQLite only: writers of this process queue here rather than in SQLite's busy handler.
    write_lock: Option<Arc<Mutex<()>>>,
    /// Signs the head of the audit log.
    pub(crate) audit_key: AuditKey,
    /// Told after every committed object write of this process (see [`Store::changes`]).
    changed: Arc<watch::Sender<()>>,
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
            changed: Arc::new(watch::channel(()).0),
        })
    }

    /// A receiver that is marked changed after every object write this process (through
    /// this store or a clone of it) commits: an apply, a delete or a status change. A cheap
    /// wake-up for watchers such as live status streams, which then read what they watch;
    /// writes of other processes sharing the database are not seen, so watchers also poll.
    pub fn changes(&self) -> watch::Receiver<()> {
        self.changed.subscribe()
    }

    /// Wakes the receivers of [`Store::changes`].
    pub(crate) fn notify_changed(&self) {
        self.changed.send_replace(());
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
