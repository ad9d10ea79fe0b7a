//! One interface over every target type: [`TargetProvisioner`] (one implementation per
//! type: [`PostgresTarget`], [`ElasticsearchProvisioner`], [`RedisTarget`]) and
//! [`TargetConnection`], a connection to one registered cluster whatever its type, which
//! the controller holds per cluster and calls from Tokio tasks.
//!
//! Versions are built beside each other and published separately: `ensure(plan, false)`
//! creates or repairs the version's own objects (PostgreSQL table, schema, role and
//! grants; Elasticsearch index; Redis ACL user) without touching the stable name readers
//! use; `ensure(plan, true)` also points the stable name (PostgreSQL view, Elasticsearch
//! alias, Redis pointer key) at the version, atomically. Every call observes first and
//! sends only what changes something, so a resync of a converged product sends no
//! mutating call at all; [`TargetConnection::mutations`] counts the ones that were sent.
//!
//! Cluster URLs carry credentials: no error or message of this module ever shows a
//! password (URLs are shown by [`redact_url`]).

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use sluice_schemas::TargetType;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::credentials::Credentials;
use crate::elasticsearch::ElasticsearchPlan;
use crate::elasticsearch::provision::{ElasticsearchProvisioner, SearchProvisionError};
use crate::plan::TargetPlan;
use crate::postgres::PostgresPlan;
use crate::postgres::provision as pg;
use crate::redis::RedisPlan;
use crate::redis::provision as rd;

/// How long connecting to a cluster may take (PostgreSQL pool acquisition, Redis connect
/// and each Redis reply, Elasticsearch connect).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many connections a PostgreSQL target keeps per database.
const PG_MAX_CONNECTIONS: u32 = 4;

/// Why an operation on a target failed. Never holds a password: cluster URLs are shown
/// redacted ([`redact_url`]) and sources are the per-type errors, which hold none.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The cluster URL cannot be used.
    #[error("{target_type} cluster URL is not usable: {reason}")]
    Url {
        /// The cluster's type.
        target_type: TargetType,
        /// What is wrong with it (the URL itself is not shown: it holds credentials).
        reason: &'static str,
    },
    /// A connection was made outside a Tokio runtime.
    #[error("{0} targets are connected within a Tokio runtime")]
    NoRuntime(TargetType),
    /// A plan of one type was given to a connection of another.
    #[error("a {plan} plan cannot run on a {connection} cluster")]
    PlanMismatch {
        /// The connection's type.
        connection: TargetType,
        /// The plan's type.
        plan: TargetType,
    },
    /// A PostgreSQL step failed.
    #[error("PostgreSQL cluster {cluster}")]
    Postgres {
        /// The cluster URL, redacted.
        cluster: String,
        /// What failed.
        #[source]
        source: pg::ProvisionError,
    },
    /// An Elasticsearch/OpenSearch step failed.
    #[error("Elasticsearch/OpenSearch cluster {cluster}")]
    Elasticsearch {
        /// The cluster URL, redacted.
        cluster: String,
        /// What failed.
        #[source]
        source: SearchProvisionError,
    },
    /// A Redis step failed.
    #[error("Redis cluster {cluster}")]
    Redis {
        /// The cluster URL, redacted.
        cluster: String,
        /// What failed.
        #[source]
        source: rd::ProvisionError,
    },
    /// `drop_version` of the version the stable name still points at: publish another
    /// version first.
    #[error("{cluster}: {stable} still points at {version}; publish another version first")]
    Published {
        /// The cluster URL, redacted.
        cluster: String,
        /// The stable name (alias, pointer key).
        stable: String,
        /// The version's object (index, key prefix).
        version: String,
    },
    /// Elasticsearch/OpenSearch without a security plugin has no users, so there are no
    /// per-product credentials to grant.
    #[error("{cluster}: Elasticsearch/OpenSearch targets have no per-product users")]
    NoReader {
        /// The cluster URL, redacted.
        cluster: String,
    },
}

impl TargetError {
    /// The error and all its sources, `: `-separated, for status messages and logs (the
    /// `Display` of this error names the cluster only, its sources say what failed).
    pub fn detail(&self) -> String {
        error_text(self)
    }

    /// Whether the cluster could not be reached (connection refused, timeout, pool
    /// timeout, name resolution): the controller shows the product degraded and retries.
    pub fn is_unreachable(&self) -> bool {
        match self {
            TargetError::Postgres {
                source: pg::ProvisionError::Database { source, .. },
                ..
            } => match source {
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
                sqlx::Error::Database(e) => e
                    .code()
                    .is_some_and(|code| code.starts_with("08") || code == "57P03"),
                _ => false,
            },
            TargetError::Elasticsearch { source, .. } => match source {
                SearchProvisionError::Transport { source, .. } => {
                    source.is_connect() || source.is_timeout()
                }
                SearchProvisionError::Engine { status, .. } => matches!(status, 502..=504),
                _ => false,
            },
            TargetError::Redis {
                source: rd::ProvisionError::Redis { source, .. },
                ..
            } => redis_unreachable(source),
            _ => false,
        }
    }

    /// Whether the version exists in a shape the plan cannot reach in place (a column or
    /// mapped type changed, a `NOT NULL` column added, another primary key or shard
    /// count): the controller builds a new version. Redis never drifts (see
    /// [`RedisTarget`]).
    pub fn is_drift(&self) -> bool {
        matches!(
            self,
            TargetError::Postgres {
                source: pg::ProvisionError::Drift { .. },
                ..
            } | TargetError::Elasticsearch {
                source: SearchProvisionError::MappingDrift { .. }
                    | SearchProvisionError::ShardsDrift { .. },
                ..
            }
        )
    }
}

fn redis_unreachable(error: &redis::RedisError) -> bool {
    error.is_connection_refusal()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_io_error()
}

/// `url` without its password and query (which may hold one): `postgres://u:pw@h/db?x`
/// becomes `postgres://u@h/db`. Text without a scheme is not shown at all.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<a URL without a scheme>".to_owned();
    };
    let (user, rest) = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            (format!("{user}@"), &rest[at + 1..])
        }
        None => (String::new(), rest),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    format!("{scheme}://{user}{rest}")
}

/// What exists of one plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetObservation {
    /// Whether the version's own object exists: the PostgreSQL table, the Elasticsearch
    /// index, the Redis ACL user (a Redis version has no object of its own besides the
    /// data keys the sink writes).
    pub exists: bool,
    /// Whether the stable name points at this version: the PostgreSQL view reads exactly
    /// this table's planned columns, the alias points at this index only, the pointer key
    /// holds `v<N>`.
    pub published: bool,
    /// Whether the reader exists: the PostgreSQL role, the Redis ACL user; always true for
    /// Elasticsearch/OpenSearch, which has no per-product users.
    pub reader_exists: bool,
    /// What exists, in lines for people.
    pub summary: Vec<String>,
}

/// What `ensure` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetEnsureReport {
    /// How many mutating calls were sent; 0 when everything was in place.
    pub mutations: u64,
    /// What was created, added or repaired, in order: `database`, `schema`, `table`,
    /// `column <name>`, `nullable <name>`, `role`, `role login`, `connect grant`,
    /// `usage grant`, `view`, `select grant` (PostgreSQL); `index`, `field <name>`,
    /// `replicas`, `alias` (Elasticsearch); `user`, `user rights`, `pointer` (Redis).
    pub created: Vec<String>,
    /// Whether the reader role/user did not exist before: the caller must grant new
    /// credentials.
    pub reader_created: bool,
}

/// Health of a registered cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterCheck {
    /// Whether the cluster answers; the error names the cluster (without password).
    pub reachable: Result<(), String>,
    /// Whether Sluice's account may do what provisioning needs; the error says what is
    /// missing. Not checked (an error) when the cluster is unreachable.
    pub privileged: Result<(), String>,
}

impl ClusterCheck {
    fn unreachable(message: String) -> Self {
        ClusterCheck {
            reachable: Err(message),
            privileged: Err("not checked: the cluster is unreachable".to_owned()),
        }
    }
}

/// One implementation per target type. Plans are made with the pure
/// [`plan_target`](crate::plan_target); a provisioner executes them against its cluster.
/// Every method is idempotent.
pub trait TargetProvisioner {
    /// The plan type this provisioner executes.
    type Plan;

    /// Reads what exists of the plan, changing nothing.
    fn observe(
        &self,
        plan: &Self::Plan,
    ) -> impl Future<Output = Result<TargetObservation, TargetError>> + Send;

    /// Creates or repairs the version's objects, sending only what is missing or wrong;
    /// with `publish`, also points the stable name at this version. A non-additive
    /// difference is an error for which [`TargetError::is_drift`] holds.
    fn ensure(
        &self,
        plan: &Self::Plan,
        publish: bool,
    ) -> impl Future<Output = Result<TargetEnsureReport, TargetError>> + Send;

    /// Sets a fresh password on the product's reader and returns it; the previous one
    /// stops working.
    fn grant(
        &self,
        plan: &Self::Plan,
    ) -> impl Future<Output = Result<Credentials, TargetError>> + Send;

    /// Removes this version's objects only (never the stable name, the role or the user);
    /// refuses while the stable name points at this version.
    fn drop_version(
        &self,
        plan: &Self::Plan,
    ) -> impl Future<Output = Result<(), TargetError>> + Send;

    /// Removes the product: every version and the stable name unless `retain`, and
    /// always the reader.
    fn delete(
        &self,
        plan: &Self::Plan,
        retain: bool,
    ) -> impl Future<Output = Result<(), TargetError>> + Send;

    /// Whether the cluster is reachable and Sluice's account privileged enough.
    fn check(&self) -> impl Future<Output = ClusterCheck> + Send;
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

/// A PostgreSQL cluster, reached through lazily connected pools: one on the URL's
/// database, and one per team database for database isolation. The URL's role must be a
/// superuser, or have `CREATEROLE` and `CREATE` on the database (and `CREATEDB` for
/// database isolation).
pub struct PostgresTarget {
    pool: PgPool,
    options: PgConnectOptions,
    cluster: String,
    databases: Mutex<HashMap<String, PgPool>>,
    mutations: Arc<AtomicU64>,
}

impl std::fmt::Debug for PostgresTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTarget")
            .field("cluster", &self.cluster)
            .field("mutations", &self.mutations())
            .finish_non_exhaustive()
    }
}

fn lazy_pool(options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(PG_MAX_CONNECTIONS)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_lazy_with(options)
}

impl PostgresTarget {
    /// A target for the cluster at `url` (`postgres://user:password@host:port/database`).
    /// Connects lazily: nothing is sent until the first operation. Must be called within
    /// a Tokio runtime.
    pub fn connect(url: &str) -> Result<Self, TargetError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TargetError::NoRuntime(TargetType::Postgres));
        }
        let options = PgConnectOptions::from_str(url).map_err(|_| TargetError::Url {
            target_type: TargetType::Postgres,
            reason: "not a PostgreSQL connection URL",
        })?;
        Ok(PostgresTarget {
            pool: lazy_pool(options.clone()),
            options,
            cluster: redact_url(url),
            databases: Mutex::new(HashMap::new()),
            mutations: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The pool on the cluster URL's database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The cluster URL, redacted.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Mutating statements sent through this target since it was made.
    pub fn mutations(&self) -> u64 {
        self.mutations.load(Ordering::Relaxed)
    }

    fn error(&self, source: pg::ProvisionError) -> TargetError {
        TargetError::Postgres {
            cluster: self.cluster.clone(),
            source,
        }
    }

    fn db_error(&self, action: &'static str) -> impl FnOnce(sqlx::Error) -> TargetError + '_ {
        move |source| self.error(pg::ProvisionError::Database { action, source })
    }

    /// The pool the plan runs in: the URL's database, or the team's for database
    /// isolation. The pipeline's sink writes rows through it.
    pub fn pool_for(&self, plan: &PostgresPlan) -> PgPool {
        let Some(database) = &plan.database else {
            return self.pool.clone();
        };
        let mut pools = self
            .databases
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pools
            .entry(database.clone())
            .or_insert_with(|| lazy_pool(self.options.clone().database(database)))
            .clone()
    }

    /// Whether the plan's database exists (always, without database isolation).
    async fn database_exists(&self, plan: &PostgresPlan) -> Result<bool, TargetError> {
        let Some(database) = &plan.database else {
            return Ok(true);
        };
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&self.pool)
            .await
            .map_err(self.db_error("looking for the team's database"))
    }
}

impl TargetProvisioner for PostgresTarget {
    type Plan = PostgresPlan;

    async fn observe(&self, plan: &PostgresPlan) -> Result<TargetObservation, TargetError> {
        let q = |name: &str| crate::quote::pg_ident(name).unwrap_or_else(|_| format!("{name:?}"));
        if !self.database_exists(plan).await? {
            let role: Option<bool> =
                sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1")
                    .bind(&plan.role)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(self.db_error("observing the plan's objects"))?;
            return Ok(TargetObservation {
                exists: false,
                published: false,
                reader_exists: role.is_some(),
                summary: vec![format!(
                    "database {} is missing",
                    q(plan.database.as_deref().unwrap_or_default())
                )],
            });
        }
        let pool = self.pool_for(plan);
        let (state, published) = pg::published(&pool, plan)
            .await
            .map_err(|e| self.error(e))?;
        let present = |yes: bool| if yes { "present" } else { "missing" };
        let summary = vec![
            format!("schema {}: {}", q(&plan.schema), present(state.schema)),
            format!(
                "table {}.{}: {}",
                q(&plan.schema),
                q(&plan.table),
                present(state.table.is_some())
            ),
            format!(
                "view {}.{}: {}",
                q(&plan.schema),
                q(&plan.view),
                match (&state.view, published) {
                    (None, _) => "missing",
                    (Some(_), true) => "reads this version",
                    (Some(_), false) => "does not read this version's planned columns",
                }
            ),
            format!(
                "role {}: {}",
                q(&plan.role),
                match state.role_can_login {
                    None => "missing",
                    Some(true) => "present",
                    Some(false) => "present but may not log in",
                }
            ),
        ];
        Ok(TargetObservation {
            exists: state.table.is_some(),
            published,
            reader_exists: state.role_can_login.is_some(),
            summary,
        })
    }

    async fn ensure(
        &self,
        plan: &PostgresPlan,
        publish: bool,
    ) -> Result<TargetEnsureReport, TargetError> {
        let mut report = TargetEnsureReport::default();
        let pool = self.pool.clone();
        if pg::ensure_database(&pool, plan, &self.mutations)
            .await
            .map_err(|e| self.error(e))?
        {
            report.mutations += 1;
            report.created.push("database".to_owned());
        }
        let pool = self.pool_for(plan);
        let done = pg::ensure_version(&pool, plan, publish, &self.mutations)
            .await
            .map_err(|e| self.error(e))?;
        report.mutations += done.mutations;
        report.created.extend(done.changes);
        report.reader_created = done.role_created;
        Ok(report)
    }

    async fn grant(&self, plan: &PostgresPlan) -> Result<Credentials, TargetError> {
        // Roles are cluster-wide: the URL's database will do.
        pg::grant_counted(&self.pool, plan, &self.mutations)
            .await
            .map_err(|e| self.error(e))
    }

    async fn drop_version(&self, plan: &PostgresPlan) -> Result<(), TargetError> {
        if !self.database_exists(plan).await? {
            return Ok(());
        }
        let pool = self.pool_for(plan);
        pg::drop_version(&pool, plan, &self.mutations)
            .await
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    async fn delete(&self, plan: &PostgresPlan, retain: bool) -> Result<(), TargetError> {
        let (pool, retain) = if self.database_exists(plan).await? {
            (self.pool_for(plan), retain)
        } else {
            // Nothing of the product can be left but its role.
            (self.pool.clone(), true)
        };
        pg::delete_counted(&pool, plan, retain, &self.mutations)
            .await
            .map_err(|e| self.error(e))
    }

    async fn check(&self) -> ClusterCheck {
        let row: Result<(String, String, bool, bool, bool), sqlx::Error> = sqlx::query_as(
            "SELECT current_user::text, current_database()::text, r.rolsuper, \
             r.rolcreaterole, has_database_privilege(current_database(), 'CREATE') \
             FROM pg_roles r WHERE r.rolname = current_user",
        )
        .fetch_one(&self.pool)
        .await;
        let (role, database, superuser, createrole, create) = match row {
            Ok(row) => row,
            Err(source) => {
                let error = self.error(pg::ProvisionError::Database {
                    action: "checking the cluster",
                    source,
                });
                return ClusterCheck::unreachable(error_text(&error));
            }
        };
        let mut missing = Vec::new();
        if !superuser && !createrole {
            missing.push("CREATEROLE".to_owned());
        }
        if !superuser && !create {
            missing.push(format!("CREATE on database {database:?}"));
        }
        ClusterCheck {
            reachable: Ok(()),
            privileged: if missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "PostgreSQL cluster {}: role {role:?} lacks {}; grant it or use a superuser",
                    self.cluster,
                    missing.join(" and ")
                ))
            },
        }
    }
}

// ---------------------------------------------------------------------------------------
// Elasticsearch/OpenSearch

impl ElasticsearchProvisioner {
    fn target_error(&self, source: SearchProvisionError) -> TargetError {
        TargetError::Elasticsearch {
            cluster: redact_url(self.base_url()),
            source,
        }
    }
}

/// Elasticsearch/OpenSearch without a security plugin: there are no users, so `grant` is
/// [`TargetError::NoReader`] and the reader always "exists".
impl TargetProvisioner for ElasticsearchProvisioner {
    type Plan = ElasticsearchPlan;

    async fn observe(&self, plan: &ElasticsearchPlan) -> Result<TargetObservation, TargetError> {
        let state = ElasticsearchProvisioner::observe(self, plan)
            .await
            .map_err(|e| self.target_error(e))?;
        let published = state.alias_indices == [plan.index.as_str()];
        let summary = vec![
            format!(
                "index `{}`: {}",
                plan.index,
                if state.index.is_some() {
                    "present"
                } else {
                    "missing"
                }
            ),
            if state.alias_indices.is_empty() {
                format!("alias `{}`: missing", plan.alias)
            } else {
                format!(
                    "alias `{}`: points at {}",
                    plan.alias,
                    state.alias_indices.join(", ")
                )
            },
        ];
        Ok(TargetObservation {
            exists: state.index.is_some(),
            published,
            reader_exists: true,
            summary,
        })
    }

    async fn ensure(
        &self,
        plan: &ElasticsearchPlan,
        publish: bool,
    ) -> Result<TargetEnsureReport, TargetError> {
        let done = self
            .ensure_version(plan, publish)
            .await
            .map_err(|e| self.target_error(e))?;
        let mut created = Vec::new();
        if done.created_index {
            created.push("index".to_owned());
        }
        created.extend(done.added_fields.iter().map(|f| format!("field {f}")));
        let counted = u32::from(done.created_index)
            + u32::from(!done.added_fields.is_empty())
            + u32::from(done.alias_moved);
        if done.mutations > counted {
            created.push("replicas".to_owned());
        }
        if done.alias_moved {
            created.push("alias".to_owned());
        }
        Ok(TargetEnsureReport {
            mutations: u64::from(done.mutations),
            created,
            reader_created: false,
        })
    }

    async fn grant(&self, _plan: &ElasticsearchPlan) -> Result<Credentials, TargetError> {
        Err(TargetError::NoReader {
            cluster: redact_url(self.base_url()),
        })
    }

    async fn drop_version(&self, plan: &ElasticsearchPlan) -> Result<(), TargetError> {
        let state = ElasticsearchProvisioner::observe(self, plan)
            .await
            .map_err(|e| self.target_error(e))?;
        if state.alias_indices.contains(&plan.index) {
            return Err(TargetError::Published {
                cluster: redact_url(self.base_url()),
                stable: format!("alias `{}`", plan.alias),
                version: format!("index `{}`", plan.index),
            });
        }
        if state.index.is_some() {
            ElasticsearchProvisioner::drop_version(self, plan)
                .await
                .map_err(|e| self.target_error(e))?;
        }
        Ok(())
    }

    async fn delete(&self, plan: &ElasticsearchPlan, retain: bool) -> Result<(), TargetError> {
        ElasticsearchProvisioner::delete(self, plan, retain)
            .await
            .map(|_| ())
            .map_err(|e| self.target_error(e))
    }

    async fn check(&self) -> ClusterCheck {
        match self.health().await {
            Ok(()) => ClusterCheck {
                reachable: Ok(()),
                // Without a security plugin every client may do everything.
                privileged: Ok(()),
            },
            Err(e) => ClusterCheck::unreachable(error_text(&self.target_error(e))),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Redis

/// A Redis server (7 or later, with ACLs), reached through one multiplexed connection
/// made on first use and kept; a connection that failed is dropped and made again on the
/// next call. Connecting and every reply time out after 5 s, so an unreachable server
/// fails fast. The URL's user must be allowed `ACL SETUSER`/`GETUSER`/`DELUSER`, `GET`,
/// `SET`, `SCAN` and `UNLINK` on every key, and for the sink's writes `WATCH`, `UNWATCH`,
/// `MGET`, `MULTI`, `EXEC`, `DEL`, `HSET` and `EXPIRE`.
///
/// Redis has no schema, so nothing drifts: rows are written by the sink under the
/// version's key layout `<name>:v<N>:`, and a change of fields or encoding (hash ↔ json)
/// for an existing version is not observable per key; `ensure` takes the plan as is, and
/// only the key layout (a new version) separates incompatible rows.
pub struct RedisTarget {
    client: redis::Client,
    cluster: String,
    connection: Mutex<Option<MultiplexedConnection>>,
    mutations: Arc<AtomicU64>,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget")
            .field("cluster", &self.cluster)
            .field("mutations", &self.mutations())
            .finish_non_exhaustive()
    }
}

impl RedisTarget {
    /// A target for the server at `url` (`redis://user:password@host:port/db`). Connects
    /// lazily: nothing is sent until the first operation.
    pub fn connect(url: &str) -> Result<Self, TargetError> {
        let client = redis::Client::open(url).map_err(|_| TargetError::Url {
            target_type: TargetType::Redis,
            reason: "not a Redis connection URL",
        })?;
        Ok(RedisTarget {
            client,
            cluster: redact_url(url),
            connection: Mutex::new(None),
            mutations: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The cluster URL, redacted.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Mutating commands sent through this target since it was made.
    pub fn mutations(&self) -> u64 {
        self.mutations.load(Ordering::Relaxed)
    }

    fn error(&self, source: rd::ProvisionError) -> TargetError {
        TargetError::Redis {
            cluster: self.cluster.clone(),
            source,
        }
    }

    /// The cached connection, or a new one. The pipeline's sink writes rows through it and
    /// calls [`discard_connection`](Self::discard_connection) when it failed.
    pub async fn connection(&self) -> Result<MultiplexedConnection, TargetError> {
        let cached = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(con) = cached {
            return Ok(con);
        }
        let con = self.own_connection().await?;
        *self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(con.clone());
        Ok(con)
    }

    /// A new connection of the caller's own, not shared: for commands whose effect is the
    /// connection's state, such as the sink's `WATCH` before a transaction. Same timeouts
    /// as [`connection`](Self::connection).
    pub async fn own_connection(&self) -> Result<MultiplexedConnection, TargetError> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|source| {
                self.error(rd::ProvisionError::Redis {
                    action: "connecting",
                    source,
                })
            })
    }

    /// Drops the cached connection (after it failed), so the next call connects anew.
    pub fn discard_connection(&self) {
        *self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Maps a step's error, dropping the cached connection if it failed.
    fn settle<T>(&self, result: rd::Result<T>) -> Result<T, TargetError> {
        result.map_err(|e| {
            if let rd::ProvisionError::Redis { source, .. } = &e
                && redis_unreachable(source)
            {
                *self
                    .connection
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
            }
            self.error(e)
        })
    }

    async fn cmd<T: redis::FromRedisValue>(
        &self,
        con: &mut MultiplexedConnection,
        args: &[&str],
        action: &'static str,
    ) -> Result<T, TargetError> {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        self.settle(
            cmd.query_async(con)
                .await
                .map_err(|source| rd::ProvisionError::Redis { action, source }),
        )
    }

    async fn privileged(&self, con: &mut MultiplexedConnection) -> Result<(), String> {
        let me: String = self
            .cmd(con, &["ACL", "WHOAMI"], "reading its own user")
            .await
            .map_err(|e| error_text(&e))?;
        let probes: [&[&str]; 6] = [
            &["ACL", "SETUSER", "sluice_probe"],
            &["ACL", "GETUSER", "sluice_probe"],
            &["ACL", "DELUSER", "sluice_probe"],
            &["SET", "sluice_probe", "x"],
            &["SCAN", "0"],
            &["UNLINK", "sluice_probe"],
        ];
        let mut denied = Vec::new();
        for probe in probes {
            let mut args = vec!["ACL", "DRYRUN", me.as_str()];
            args.extend_from_slice(probe);
            let reply: redis::Value = self
                .cmd(con, &args, "checking its own rights")
                .await
                .map_err(|e| {
                    format!(
                        "Redis cluster {}: user {me:?} may not run ACL DRYRUN, so it cannot \
                         manage ACL users ({})",
                        self.cluster,
                        error_text(&e)
                    )
                })?;
            if !matches!(reply, redis::Value::Okay)
                && !matches!(&reply, redis::Value::SimpleString(s) if s == "OK")
            {
                denied.push(probe[..probe.len().min(2)].join(" "));
            }
        }
        if denied.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "Redis cluster {}: user {me:?} may not run {}",
                self.cluster,
                denied.join(", ")
            ))
        }
    }
}

impl TargetProvisioner for RedisTarget {
    type Plan = RedisPlan;

    async fn observe(&self, plan: &RedisPlan) -> Result<TargetObservation, TargetError> {
        let con = self.connection().await?;
        let state = self.settle(rd::observe(&con, plan).await)?;
        let published = state.pointer.as_deref() == Some(plan.pointer_value.as_str());
        let summary = vec![
            format!(
                "pointer `{}`: {}",
                plan.pointer_key,
                state.pointer.as_deref().unwrap_or("missing")
            ),
            format!(
                "ACL user `{}`: {}",
                plan.user,
                match &state.user {
                    None => "missing",
                    Some(user) if user.matches(plan) => "present",
                    Some(_) => "present with other rights",
                }
            ),
        ];
        Ok(TargetObservation {
            exists: state.user.is_some(),
            published,
            reader_exists: state.user.is_some(),
            summary,
        })
    }

    async fn ensure(
        &self,
        plan: &RedisPlan,
        publish: bool,
    ) -> Result<TargetEnsureReport, TargetError> {
        let con = self.connection().await?;
        let done = self.settle(rd::ensure_version(&con, plan, publish, &self.mutations).await)?;
        let mut created = Vec::new();
        if done.user_created {
            created.push("user".to_owned());
        }
        if done.user_aligned {
            created.push("user rights".to_owned());
        }
        if done.pointer_set {
            created.push("pointer".to_owned());
        }
        Ok(TargetEnsureReport {
            mutations: u64::from(done.mutations),
            created,
            reader_created: done.user_created,
        })
    }

    async fn grant(&self, plan: &RedisPlan) -> Result<Credentials, TargetError> {
        let con = self.connection().await?;
        self.settle(rd::grant_counted(&con, plan, &self.mutations).await)
    }

    async fn drop_version(&self, plan: &RedisPlan) -> Result<(), TargetError> {
        let con = self.connection().await?;
        let state = self.settle(rd::observe(&con, plan).await)?;
        if state.pointer.as_deref() == Some(plan.pointer_value.as_str()) {
            return Err(TargetError::Published {
                cluster: self.cluster.clone(),
                stable: format!("pointer `{}`", plan.pointer_key),
                version: format!("keys `{}*`", plan.key_prefix),
            });
        }
        self.settle(rd::drop_version(&con, plan, &self.mutations).await)
            .map(|_| ())
    }

    async fn delete(&self, plan: &RedisPlan, retain: bool) -> Result<(), TargetError> {
        let con = self.connection().await?;
        self.settle(rd::delete_counted(&con, plan, retain, &self.mutations).await)
            .map(|_| ())
    }

    async fn check(&self) -> ClusterCheck {
        let mut con = match self.connection().await {
            Ok(con) => con,
            Err(e) => return ClusterCheck::unreachable(error_text(&e)),
        };
        if let Err(e) = self
            .cmd::<String>(&mut con, &["PING"], "pinging the server")
            .await
        {
            return ClusterCheck::unreachable(error_text(&e));
        }
        ClusterCheck {
            reachable: Ok(()),
            privileged: self.privileged(&mut con).await,
        }
    }
}

/// An error and its sources, `: `-separated, for messages.
fn error_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

// ---------------------------------------------------------------------------------------
// Any type

/// A connection to one registered target cluster, whatever its type.
#[derive(Debug)]
pub enum TargetConnection {
    /// A PostgreSQL cluster.
    Postgres(PostgresTarget),
    /// An Elasticsearch or OpenSearch cluster.
    Elasticsearch(ElasticsearchProvisioner),
    /// A Redis server.
    Redis(RedisTarget),
}

macro_rules! dispatch {
    ($self:ident, $plan:ident, $target:ident, $typed:ident => $body:expr) => {
        match ($self, $plan) {
            (TargetConnection::Postgres($target), TargetPlan::Postgres($typed)) => $body,
            (TargetConnection::Elasticsearch($target), TargetPlan::Elasticsearch($typed)) => $body,
            (TargetConnection::Redis($target), TargetPlan::Redis($typed)) => $body,
            (connection, plan) => Err(TargetError::PlanMismatch {
                connection: connection.target_type(),
                plan: plan.target_type(),
            }),
        }
    };
}

impl TargetConnection {
    /// A connection to the cluster of `target_type` at `url`, the cluster URL with its
    /// credentials in clear (the caller unsealed it). Connects lazily, so this never
    /// blocks on the network; PostgreSQL needs a Tokio runtime to be running.
    pub fn connect(target_type: TargetType, url: &str) -> Result<TargetConnection, TargetError> {
        match target_type {
            TargetType::Postgres => PostgresTarget::connect(url).map(TargetConnection::Postgres),
            TargetType::Elasticsearch => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(TargetError::Url {
                        target_type,
                        reason: "not an http(s) URL",
                    });
                }
                ElasticsearchProvisioner::new(url)
                    .map(TargetConnection::Elasticsearch)
                    .map_err(|source| TargetError::Elasticsearch {
                        cluster: redact_url(url),
                        source,
                    })
            }
            TargetType::Redis => RedisTarget::connect(url).map(TargetConnection::Redis),
        }
    }

    /// The cluster's type.
    pub fn target_type(&self) -> TargetType {
        match self {
            TargetConnection::Postgres(_) => TargetType::Postgres,
            TargetConnection::Elasticsearch(_) => TargetType::Elasticsearch,
            TargetConnection::Redis(_) => TargetType::Redis,
        }
    }

    /// Mutating calls issued through this connection since it was made: DDL/DCL
    /// statements, `PUT`/`POST`/`DELETE` requests, Redis writes and ACL changes.
    pub fn mutations(&self) -> u64 {
        match self {
            TargetConnection::Postgres(t) => t.mutations(),
            TargetConnection::Elasticsearch(t) => t.mutations(),
            TargetConnection::Redis(t) => t.mutations(),
        }
    }

    /// See [`TargetProvisioner::observe`].
    pub async fn observe(&self, plan: &TargetPlan) -> Result<TargetObservation, TargetError> {
        dispatch!(self, plan, t, p => TargetProvisioner::observe(t, p).await)
    }

    /// See [`TargetProvisioner::ensure`].
    pub async fn ensure(
        &self,
        plan: &TargetPlan,
        publish: bool,
    ) -> Result<TargetEnsureReport, TargetError> {
        dispatch!(self, plan, t, p => TargetProvisioner::ensure(t, p, publish).await)
    }

    /// See [`TargetProvisioner::grant`]. `None` for Elasticsearch/OpenSearch: without a
    /// security plugin there are no users, so no per-product credentials.
    pub async fn grant(&self, plan: &TargetPlan) -> Result<Option<Credentials>, TargetError> {
        match (self, plan) {
            (TargetConnection::Elasticsearch(_), TargetPlan::Elasticsearch(_)) => Ok(None),
            _ => dispatch!(self, plan, t, p => TargetProvisioner::grant(t, p).await.map(Some)),
        }
    }

    /// See [`TargetProvisioner::drop_version`].
    pub async fn drop_version(&self, plan: &TargetPlan) -> Result<(), TargetError> {
        dispatch!(self, plan, t, p => TargetProvisioner::drop_version(t, p).await)
    }

    /// See [`TargetProvisioner::delete`].
    pub async fn delete(&self, plan: &TargetPlan, retain: bool) -> Result<(), TargetError> {
        dispatch!(self, plan, t, p => TargetProvisioner::delete(t, p, retain).await)
    }

    /// See [`TargetProvisioner::check`].
    pub async fn check(&self) -> ClusterCheck {
        match self {
            TargetConnection::Postgres(t) => t.check().await,
            TargetConnection::Elasticsearch(t) => t.check().await,
            TargetConnection::Redis(t) => t.check().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(
            redact_url("postgres://u:secretpw@127.0.0.1:1/x?password=p2"),
            "postgres://u@127.0.0.1:1/x"
        );
        assert_eq!(redact_url("redis://:pw@h:6379/0"), "redis://@h:6379/0");
        assert_eq!(redact_url("http://h:9200"), "http://h:9200");
        assert_eq!(redact_url("http://a:p@ss@h:9200/"), "http://a@h:9200/");
        assert_eq!(redact_url("nonsense:pw"), "<a URL without a scheme>");
    }

    #[test]
    fn connections_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<TargetConnection>();
        send_sync::<TargetError>();
    }
}
