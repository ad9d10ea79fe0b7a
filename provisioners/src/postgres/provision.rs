//! Executing a [`PostgresPlan`] against a real PostgreSQL: [`ensure`] its objects (or
//! [`ensure_version`], which builds a version without publishing it), [`observe`] what
//! exists, [`grant`] the product's reader a fresh password, [`drop_version`] an old
//! version's table, and [`delete`] what the product owns. Every function is idempotent:
//! running it again after a crash or a success converges to the same state.
//!
//! Ensuring is level-triggered: the catalogs are read first and only the statements that
//! change something are sent (the plan's [`statements`](PostgresPlan::statements) show the
//! whole DDL; a converged product gets none of them, not even a `BEGIN`). Additive changes
//! (new nullable columns) apply in place; anything else is [`ProvisionError::Drift`].
//!
//! The pool passed in must be connected to the database the plan runs in
//! ([`PostgresPlan::database`] for database isolation, which the caller creates first with
//! [`ensure_database`]; else the cluster's database), as a role that may create schemas
//! and roles.
//!
//! Catalog queries take names as bind parameters. DDL cannot: it is built only from
//! identifiers quoted by [`crate::quote`], and goes through [`trusted_sql`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use super::plan::PostgresPlan;
pub use crate::credentials::Credentials;
use crate::quote::{QuoteError, pg_dollar_quote, pg_ident, pg_literal};

/// Length of a generated reader password: 32 alphanumeric characters (about 190 bits).
const PASSWORD_LEN: usize = 32;
/// PBKDF2 iterations of the SCRAM-SHA-256 verifier (PostgreSQL's default).
const SCRAM_ITERATIONS: u32 = 4096;

/// Why a PostgreSQL provisioning step failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A statement or catalog query failed (server unreachable, permission denied, ...).
    #[error("PostgreSQL: {action} failed")]
    Database {
        /// What was being done, e.g. "creating the plan's objects".
        action: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A name of the plan cannot be quoted.
    #[error("PostgreSQL: a name of the plan cannot be quoted")]
    Name(#[from] QuoteError),
    /// The table exists but differs from the plan in a way that cannot change in place
    /// (see [`ensure_version`]): the product needs a new version.
    #[error("PostgreSQL: table {table:?} cannot take the plan in place: {reason}")]
    Drift {
        /// The version's table.
        table: String,
        /// What differs.
        reason: String,
    },
    /// The version's table is what the stable view reads, so it is not dropped.
    #[error("PostgreSQL: view {view:?} still reads table {table:?}; publish another version first")]
    Published {
        /// The version's table.
        table: String,
        /// The stable view.
        view: String,
    },
    /// The password verifier could not be computed.
    #[error("PostgreSQL: computing the password verifier failed")]
    Verifier(#[source] hmac::digest::InvalidLength),
}

/// The result type of this module.
pub type Result<T, E = ProvisionError> = std::result::Result<T, E>;

fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> ProvisionError {
    move |source| ProvisionError::Database { action, source }
}

/// One kind of object a plan creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PostgresObject {
    /// The team's schema.
    Schema,
    /// The version's table.
    Table,
    /// The stable view.
    View,
    /// The reader role.
    Role,
}

/// What [`ensure`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnsureReport {
    /// The objects that did not exist before and do now, in plan order; empty when
    /// everything was already there.
    pub created: Vec<PostgresObject>,
}

/// One column as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedColumn {
    /// The column name.
    pub name: String,
    /// Its type as `format_type` spells it (e.g. `timestamp with time zone`).
    pub sql_type: String,
    /// Whether it is `NOT NULL`.
    pub not_null: bool,
}

/// The plan's table as it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedTable {
    /// Its columns, in table order.
    pub columns: Vec<ObservedColumn>,
    /// Its primary key columns, in key order; empty without a primary key.
    pub primary_key: Vec<String>,
}

/// What exists in PostgreSQL of one plan, read from the catalogs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostgresState {
    /// Whether the schema exists.
    pub schema: bool,
    /// The table, if it exists (as an ordinary or partitioned table).
    pub table: Option<ObservedTable>,
    /// The view's columns, if it exists as a view.
    pub view: Option<Vec<String>>,
    /// The role, if it exists: whether it may log in.
    pub role_can_login: Option<bool>,
    /// Whether the role may use the schema and select from the view.
    pub role_can_read_view: bool,
}

impl PostgresState {
    /// The objects of the plan that exist.
    pub fn existing(&self) -> Vec<PostgresObject> {
        [
            (self.schema, PostgresObject::Schema),
            (self.table.is_some(), PostgresObject::Table),
            (self.view.is_some(), PostgresObject::View),
            (self.role_can_login.is_some(), PostgresObject::Role),
        ]
        .into_iter()
        .filter_map(|(exists, object)| exists.then_some(object))
        .collect()
    }
}

/// The one place where SQL text that is not `'static` is sent. Sound because every such
/// statement is built by [`plan_postgres`](super::plan_postgres) or this module from
/// identifiers quoted by [`pg_ident`], PL/pgSQL bodies wrapped by `pg_dollar_quote`, and
/// literals quoted by [`pg_literal`] — never from unquoted input.
fn trusted_sql(statement: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(statement)
}

/// Runs `statement` with the simple protocol (no prepared statement is cached for DDL),
/// counting it in `mutations` as it is sent.
async fn execute(
    conn: &mut PgConnection,
    statement: String,
    action: &'static str,
    mutations: &AtomicU64,
) -> Result<()> {
    mutations.fetch_add(1, Ordering::Relaxed);
    sqlx::raw_sql(trusted_sql(statement))
        .execute(conn)
        .await
        .map_err(db(action))?;
    Ok(())
}

/// Creates whatever of the plan is missing and points the view at the plan's table (see
/// [`ensure_version`] with `publish`), in one transaction: either every object exists
/// afterwards, or nothing changed. This also repairs an object dropped by hand and
/// re-grants a revoked privilege; when everything is in place no statement is sent.
pub async fn ensure(pool: &PgPool, plan: &PostgresPlan) -> Result<EnsureReport> {
    let converged = ensure_version(pool, plan, true, &AtomicU64::new(0)).await?;
    Ok(EnsureReport {
        created: converged.objects,
    })
}

/// Database isolation: creates the team's database ([`PostgresPlan::create_database`]) if
/// it does not exist, on `pool` (the cluster's database); returns whether it was created.
/// `CREATE DATABASE` can be neither conditional nor run in a transaction: a concurrent
/// creation makes it fail, and the next pass finds the database.
pub async fn ensure_database(
    pool: &PgPool,
    plan: &PostgresPlan,
    mutations: &AtomicU64,
) -> Result<bool> {
    const ACTION: &str = "creating the team's database";
    let (Some(database), Some(create)) = (&plan.database, &plan.create_database) else {
        return Ok(false);
    };
    let mut conn = pool.acquire().await.map_err(db(ACTION))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut *conn)
            .await
            .map_err(db(ACTION))?;
    if exists {
        return Ok(false);
    }
    execute(&mut conn, create.clone(), ACTION, mutations).await?;
    Ok(true)
}

/// What [`ensure_version`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionReport {
    /// The objects that did not exist before and do now, in plan order.
    pub objects: Vec<PostgresObject>,
    /// Everything created, added or repaired, in words: `database`, `schema`, `table`,
    /// `column <name>`, `nullable <name>`, `role`, `role login`, `connect grant`,
    /// `usage grant`, `view`, `select grant`, `public connect revoked`.
    pub changes: Vec<String>,
    /// Whether the reader role did not exist and was created (it has no password yet).
    pub role_created: bool,
    /// How many statements were sent.
    pub mutations: u64,
}

/// Converges one version of the product on the plan, observing first and sending only the
/// statements that change something, so a converged call sends none (not even `BEGIN`):
///
/// - database isolation: the team's database (created outside a transaction, as
///   PostgreSQL requires), `PUBLIC` may not connect, the role may;
/// - the schema; the table, or, if it exists, the planned nullable columns it lacks
///   (`ALTER TABLE … ADD COLUMN`) and `DROP NOT NULL` where the plan relaxed a column.
///   Any other difference — a column of another type, a missing or tightened `NOT NULL`
///   column, a column the plan no longer has, another primary key — is
///   [`ProvisionError::Drift`]: it needs a new version;
/// - the role (may log in) and its `USAGE` on the schema;
/// - with `publish` only: the view reads exactly the plan's output columns from this
///   version's table (`CREATE VIEW`; `CREATE OR REPLACE VIEW` when the present columns are
///   a prefix of the planned ones; else `DROP VIEW` and `CREATE VIEW`), and the role may
///   `SELECT` it. Without `publish` the view is not touched, so readers stay on the
///   version they read.
///
/// Every statement runs in one transaction, after observing again inside it.
pub async fn ensure_version(
    pool: &PgPool,
    plan: &PostgresPlan,
    publish: bool,
    mutations: &AtomicU64,
) -> Result<VersionReport> {
    const ACTION: &str = "creating the plan's objects";
    let mut conn = pool.acquire().await.map_err(db(ACTION))?;
    let observed = observe_detail(&mut conn, plan).await?;
    if steps(&observed, plan, publish)?.is_empty() {
        return Ok(VersionReport::default());
    }
    drop(conn);
    let mut report = VersionReport::default();
    let mut tx = pool.begin().await.map_err(db(ACTION))?;
    lock_schema(&mut tx, plan, ACTION).await?;
    let observed = observe_detail(&mut tx, plan).await?;
    for step in steps(&observed, plan, publish)? {
        execute(&mut tx, step.sql, ACTION, mutations).await?;
        report.mutations += 1;
        if let Some(object) = step.object {
            report.objects.push(object);
        }
        if step.object == Some(PostgresObject::Role) {
            report.role_created = true;
        }
        if let Some(change) = step.change {
            report.changes.push(change);
        }
    }
    tx.commit().await.map_err(db(ACTION))?;
    // Plan order (the role is created before the view so it can be granted right after).
    report.objects.sort_by_key(|object| match object {
        PostgresObject::Schema => 0,
        PostgresObject::Table => 1,
        PostgresObject::View => 2,
        PostgresObject::Role => 3,
    });
    Ok(report)
}

/// Makes changes to the plan's schema take turns until the transaction ends. Products of
/// one team share its schema, and PostgreSQL does not serialise catalog changes to one
/// object: `CREATE SCHEMA IF NOT EXISTS`, grants on the schema or `DROP OWNED BY` of two
/// products at once fail with a unique violation or "tuple concurrently updated".
async fn lock_schema(
    conn: &mut PgConnection,
    plan: &PostgresPlan,
    action: &'static str,
) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(&plan.schema)
        .execute(conn)
        .await
        .map_err(db(action))?;
    Ok(())
}

/// Drops this version's table (`<view>_v<N>`) if it exists, and nothing else: not the
/// view, the schema or the role. Refuses ([`ProvisionError::Published`]) while the view
/// reads the table. Returns whether a table was dropped.
pub async fn drop_version(
    pool: &PgPool,
    plan: &PostgresPlan,
    mutations: &AtomicU64,
) -> Result<bool> {
    const ACTION: &str = "dropping the version's table";
    let mut conn = pool.begin().await.map_err(db(ACTION))?;
    lock_schema(&mut conn, plan, ACTION).await?;
    let observed = observe_detail(&mut conn, plan).await?;
    if observed.view_reads_table(plan) {
        return Err(ProvisionError::Published {
            table: plan.table.clone(),
            view: plan.view.clone(),
        });
    }
    if observed.state.table.is_none() {
        return Ok(false);
    }
    let statement = format!(
        "DROP TABLE IF EXISTS {}.{}",
        pg_ident(&plan.schema)?,
        pg_ident(&plan.table)?
    );
    execute(&mut conn, statement, ACTION, mutations).await?;
    conn.commit().await.map_err(db(ACTION))?;
    Ok(true)
}

/// Whether the view reads this version with the planned columns, and what exists.
pub async fn published(pool: &PgPool, plan: &PostgresPlan) -> Result<(PostgresState, bool)> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(db("observing the plan's objects"))?;
    let observed = observe_detail(&mut conn, plan).await?;
    let published = observed.view_is_planned(plan);
    Ok((observed.state, published))
}

/// One statement of a convergence, with what it creates.
struct Step {
    sql: String,
    object: Option<PostgresObject>,
    change: Option<String>,
}

impl Step {
    fn new(sql: String, object: Option<PostgresObject>, change: impl Into<String>) -> Self {
        Step {
            sql,
            object,
            change: Some(change.into()),
        }
    }
}

/// `format_type`'s spelling of a planned SQL type.
fn catalog_type(sql_type: &str) -> &str {
    match sql_type {
        "timestamptz" => "timestamp with time zone",
        other => other,
    }
}

/// The statements that take what is observed to the plan; a non-additive difference is
/// [`ProvisionError::Drift`].
fn steps(observed: &Observed, plan: &PostgresPlan, publish: bool) -> Result<Vec<Step>> {
    let q_schema = pg_ident(&plan.schema)?;
    let q_table = format!("{q_schema}.{}", pg_ident(&plan.table)?);
    let q_view = format!("{q_schema}.{}", pg_ident(&plan.view)?);
    let q_role = pg_ident(&plan.role)?;
    let state = &observed.state;
    let mut steps = Vec::new();

    if let Some(database) = &plan.database {
        let q_database = pg_ident(database)?;
        if observed.public_can_connect {
            steps.push(Step::new(
                format!("REVOKE CONNECT, TEMPORARY ON DATABASE {q_database} FROM PUBLIC"),
                None,
                "public connect revoked",
            ));
        }
    }
    if !state.schema {
        steps.push(Step::new(
            format!("CREATE SCHEMA IF NOT EXISTS {q_schema}"),
            Some(PostgresObject::Schema),
            "schema",
        ));
    }
    match &state.table {
        None => {
            let mut lines = Vec::with_capacity(plan.columns.len() + 1);
            for c in &plan.columns {
                let not_null = if c.not_null { " NOT NULL" } else { "" };
                lines.push(format!("  {} {}{not_null}", pg_ident(&c.name)?, c.sql_type));
            }
            lines.push(format!(
                "  PRIMARY KEY ({})",
                quote_list(&plan.primary_key)?
            ));
            steps.push(Step::new(
                format!(
                    "CREATE TABLE IF NOT EXISTS {q_table} (\n{}\n)",
                    lines.join(",\n")
                ),
                Some(PostgresObject::Table),
                "table",
            ));
        }
        Some(table) => {
            let drift = |reason: String| ProvisionError::Drift {
                table: plan.table.clone(),
                reason,
            };
            for column in &plan.columns {
                let planned_type = catalog_type(column.sql_type);
                match table.columns.iter().find(|o| o.name == column.name) {
                    None if column.not_null => {
                        return Err(drift(format!(
                            "column `{}` is missing and the plan has it NOT NULL",
                            column.name
                        )));
                    }
                    None => steps.push(Step::new(
                        format!(
                            "ALTER TABLE {q_table} ADD COLUMN {} {}",
                            pg_ident(&column.name)?,
                            column.sql_type
                        ),
                        None,
                        format!("column {}", column.name),
                    )),
                    Some(found) if found.sql_type != planned_type => {
                        return Err(drift(format!(
                            "column `{}` is `{}`, the plan has `{planned_type}`",
                            column.name, found.sql_type
                        )));
                    }
                    Some(found) if column.not_null && !found.not_null => {
                        return Err(drift(format!(
                            "column `{}` may be null, the plan has it NOT NULL",
                            column.name
                        )));
                    }
                    Some(found) if !column.not_null && found.not_null => steps.push(Step::new(
                        format!(
                            "ALTER TABLE {q_table} ALTER COLUMN {} DROP NOT NULL",
                            pg_ident(&column.name)?
                        ),
                        None,
                        format!("nullable {}", column.name),
                    )),
                    Some(_) => {}
                }
            }
            if let Some(extra) = table
                .columns
                .iter()
                .find(|o| !plan.columns.iter().any(|c| c.name == o.name))
            {
                return Err(drift(format!(
                    "column `{}` is not in the plan any more",
                    extra.name
                )));
            }
            if table.primary_key != plan.primary_key {
                return Err(drift(format!(
                    "the primary key is ({}), the plan has ({})",
                    table.primary_key.join(", "),
                    plan.primary_key.join(", ")
                )));
            }
        }
    }
    match state.role_can_login {
        None => steps.push(Step::new(
            // CREATE ROLE has no IF NOT EXISTS; the block makes it idempotent.
            format!(
                "DO {}",
                pg_dollar_quote(&format!(
                    " BEGIN CREATE ROLE {q_role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END "
                ))?
            ),
            Some(PostgresObject::Role),
            "role",
        )),
        Some(false) => steps.push(Step::new(
            format!("ALTER ROLE {q_role} LOGIN"),
            None,
            "role login",
        )),
        Some(true) => {}
    }
    if let Some(database) = &plan.database
        && !observed.role_can_connect
    {
        steps.push(Step::new(
            format!(
                "GRANT CONNECT ON DATABASE {} TO {q_role}",
                pg_ident(database)?
            ),
            None,
            "connect grant",
        ));
    }
    if !observed.role_can_use_schema {
        steps.push(Step::new(
            format!("GRANT USAGE ON SCHEMA {q_schema} TO {q_role}"),
            None,
            "usage grant",
        ));
    }
    if publish {
        let mut regrant = false;
        if !observed.view_is_planned(plan) {
            let planned = planned_view(plan);
            let select = format!(
                "SELECT {} FROM {q_table}",
                quote_list(&planned.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>())?
            );
            match &observed.view {
                None => steps.push(Step::new(
                    format!("CREATE VIEW {q_view} AS {select}"),
                    Some(PostgresObject::View),
                    "view",
                )),
                Some(view) if planned.starts_with(&view.columns) => steps.push(Step::new(
                    format!("CREATE OR REPLACE VIEW {q_view} AS {select}"),
                    None,
                    "view",
                )),
                Some(_) => {
                    // The columns change other than by appending: CREATE OR REPLACE cannot
                    // do that, so the view is swapped in the same transaction.
                    steps.push(Step {
                        sql: format!("DROP VIEW {q_view}"),
                        object: None,
                        change: None,
                    });
                    steps.push(Step::new(
                        format!("CREATE VIEW {q_view} AS {select}"),
                        None,
                        "view",
                    ));
                    regrant = true;
                }
            }
        }
        if regrant || !observed.role_can_select_view {
            steps.push(Step::new(
                format!("GRANT SELECT ON TABLE {q_view} TO {q_role}"),
                None,
                "select grant",
            ));
        }
    }
    Ok(steps)
}

/// The view's planned columns and their catalog types: the plan's output fields.
fn planned_view(plan: &PostgresPlan) -> Vec<(String, String)> {
    plan.columns
        .iter()
        .filter(|c| !c.bookkeeping)
        .map(|c| (c.name.clone(), catalog_type(c.sql_type).to_owned()))
        .collect()
}

fn quote_list(names: &[String]) -> Result<String> {
    let quoted: std::result::Result<Vec<String>, _> = names.iter().map(|n| pg_ident(n)).collect();
    Ok(quoted?.join(", "))
}

/// The view as it exists.
struct ObservedView {
    /// Its columns and their types, in order.
    columns: Vec<(String, String)>,
    /// The relations it reads, as (schema, name).
    reads: Vec<(String, String)>,
}

/// Everything [`steps`] needs to know.
struct Observed {
    state: PostgresState,
    view: Option<ObservedView>,
    role_can_use_schema: bool,
    role_can_select_view: bool,
    role_can_connect: bool,
    public_can_connect: bool,
}

impl Observed {
    fn view_reads_table(&self, plan: &PostgresPlan) -> bool {
        self.view.as_ref().is_some_and(|view| {
            view.reads
                .iter()
                .any(|(schema, name)| *schema == plan.schema && *name == plan.table)
        })
    }

    fn view_is_planned(&self, plan: &PostgresPlan) -> bool {
        self.view.as_ref().is_some_and(|view| {
            view.reads == [(plan.schema.clone(), plan.table.clone())]
                && view.columns == planned_view(plan)
        })
    }
}

async fn observe_detail(conn: &mut PgConnection, plan: &PostgresPlan) -> Result<Observed> {
    const ACTION: &str = "observing the plan's objects";
    let state = observe_on(&mut *conn, plan).await?;
    let view = if state.view.is_some() {
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'v' \
             AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        )
        .bind(&plan.schema)
        .bind(&plan.view)
        .fetch_all(&mut *conn)
        .await
        .map_err(db(ACTION))?;
        let reads: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT rn.nspname::text, rc.relname::text FROM pg_rewrite r \
             JOIN pg_class v ON v.oid = r.ev_class \
             JOIN pg_namespace vn ON vn.oid = v.relnamespace \
             JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid \
              AND d.refclassid = 'pg_class'::regclass \
             JOIN pg_class rc ON rc.oid = d.refobjid \
             JOIN pg_namespace rn ON rn.oid = rc.relnamespace \
             WHERE vn.nspname = $1 AND v.relname = $2 AND rc.oid <> v.oid \
             ORDER BY 1, 2",
        )
        .bind(&plan.schema)
        .bind(&plan.view)
        .fetch_all(&mut *conn)
        .await
        .map_err(db(ACTION))?;
        Some(ObservedView { columns, reads })
    } else {
        None
    };
    let (role_can_use_schema, role_can_select_view, role_can_connect, public_can_connect): (
        bool,
        bool,
        bool,
        bool,
    ) = sqlx::query_as(
        "SELECT \
             COALESCE((SELECT has_schema_privilege(r.oid, n.oid, 'USAGE') \
               FROM pg_roles r, pg_namespace n WHERE r.rolname = $1 AND n.nspname = $2), false), \
             COALESCE((SELECT has_table_privilege(r.oid, c.oid, 'SELECT') \
               FROM pg_roles r, pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
               WHERE r.rolname = $1 AND n.nspname = $2 AND c.relname = $3 \
               AND c.relkind = 'v'), false), \
             COALESCE((SELECT has_database_privilege(r.oid, d.oid, 'CONNECT') \
               FROM pg_roles r, pg_database d \
               WHERE r.rolname = $1 AND d.datname = current_database()), false), \
             EXISTS (SELECT 1 FROM pg_database d, \
               aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) a \
               WHERE d.datname = current_database() AND a.grantee = 0 \
               AND a.privilege_type IN ('CONNECT', 'TEMPORARY'))",
    )
    .bind(&plan.role)
    .bind(&plan.schema)
    .bind(&plan.view)
    .fetch_one(&mut *conn)
    .await
    .map_err(db(ACTION))?;
    Ok(Observed {
        state,
        view,
        role_can_use_schema,
        role_can_select_view,
        role_can_connect,
        public_can_connect,
    })
}

/// Reads what exists of the plan from the catalogs (`pg_namespace`, `pg_class`,
/// `pg_attribute`, `pg_index`, `pg_roles`), with every name as a bind parameter.
pub async fn observe(pool: &PgPool, plan: &PostgresPlan) -> Result<PostgresState> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(db("observing the plan's objects"))?;
    observe_on(&mut conn, plan).await
}

async fn observe_on(conn: &mut PgConnection, plan: &PostgresPlan) -> Result<PostgresState> {
    const ACTION: &str = "observing the plan's objects";
    let schema: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(&plan.schema)
            .fetch_one(&mut *conn)
            .await
            .map_err(db(ACTION))?;

    const COLUMNS: &str = "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), \
         a.attnotnull FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = ANY($3) \
         AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";
    const RELKIND: &str = "SELECT EXISTS (SELECT 1 FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = ANY($3))";
    let tables = vec!["r".to_owned(), "p".to_owned()];
    let table_exists: bool = sqlx::query_scalar(RELKIND)
        .bind(&plan.schema)
        .bind(&plan.table)
        .bind(&tables)
        .fetch_one(&mut *conn)
        .await
        .map_err(db(ACTION))?;
    let table = if table_exists {
        let columns: Vec<(String, String, bool)> = sqlx::query_as(COLUMNS)
            .bind(&plan.schema)
            .bind(&plan.table)
            .bind(&tables)
            .fetch_all(&mut *conn)
            .await
            .map_err(db(ACTION))?;
        let primary_key: Vec<String> = sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
             WHERE i.indisprimary AND n.nspname = $1 AND c.relname = $2 ORDER BY k.ord",
        )
        .bind(&plan.schema)
        .bind(&plan.table)
        .fetch_all(&mut *conn)
        .await
        .map_err(db(ACTION))?;
        Some(ObservedTable {
            columns: columns
                .into_iter()
                .map(|(name, sql_type, not_null)| ObservedColumn {
                    name,
                    sql_type,
                    not_null,
                })
                .collect(),
            primary_key,
        })
    } else {
        None
    };

    let views = vec!["v".to_owned()];
    let view_exists: bool = sqlx::query_scalar(RELKIND)
        .bind(&plan.schema)
        .bind(&plan.view)
        .bind(&views)
        .fetch_one(&mut *conn)
        .await
        .map_err(db(ACTION))?;
    let view = if view_exists {
        let columns: Vec<(String, String, bool)> = sqlx::query_as(COLUMNS)
            .bind(&plan.schema)
            .bind(&plan.view)
            .bind(&views)
            .fetch_all(&mut *conn)
            .await
            .map_err(db(ACTION))?;
        Some(columns.into_iter().map(|(name, _, _)| name).collect())
    } else {
        None
    };

    let role_can_login: Option<bool> =
        sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1")
            .bind(&plan.role)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db(ACTION))?;
    let role_can_read_view: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_roles r, pg_namespace n \
         JOIN pg_class c ON c.relnamespace = n.oid \
         WHERE r.rolname = $1 AND n.nspname = $2 AND c.relname = $3 AND c.relkind = 'v' \
         AND has_schema_privilege(r.oid, n.oid, 'USAGE') \
         AND has_table_privilege(r.oid, c.oid, 'SELECT'))",
    )
    .bind(&plan.role)
    .bind(&plan.schema)
    .bind(&plan.view)
    .fetch_one(&mut *conn)
    .await
    .map_err(db(ACTION))?;

    Ok(PostgresState {
        schema,
        table,
        view,
        role_can_login,
        role_can_read_view,
    })
}

/// Sets a fresh random password on the product's reader role (which [`ensure`] created)
/// and returns it; any previous password stops working.
///
/// The statement carries no password: it sets a SCRAM-SHA-256 verifier computed here
/// (salted and iterated, as `psql`'s `\password` does), so neither sqlx's statement log nor
/// the server's log ever sees the password itself.
pub async fn grant(pool: &PgPool, plan: &PostgresPlan) -> Result<Credentials> {
    grant_counted(pool, plan, &AtomicU64::new(0)).await
}

/// [`grant`], counting the statement in `mutations`.
pub async fn grant_counted(
    pool: &PgPool,
    plan: &PostgresPlan,
    mutations: &AtomicU64,
) -> Result<Credentials> {
    let password: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(PASSWORD_LEN)
        .map(char::from)
        .collect();
    let salt: [u8; 16] = rand::rng().random();
    let verifier = scram_sha_256_verifier(&password, &salt, SCRAM_ITERATIONS)?;
    let statement = format!(
        "ALTER ROLE {} WITH LOGIN PASSWORD {}",
        pg_ident(&plan.role)?,
        pg_literal(&verifier)?
    );
    let mut conn = pool
        .acquire()
        .await
        .map_err(db("setting the reader's password"))?;
    execute(
        &mut conn,
        statement,
        "setting the reader's password",
        mutations,
    )
    .await?;
    Ok(Credentials {
        user: plan.role.clone(),
        password,
    })
}

/// The SCRAM-SHA-256 verifier of `password` (RFC 5802/7677) in PostgreSQL's format,
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. The password is ASCII
/// alphanumeric, which SASLprep leaves unchanged.
fn scram_sha_256_verifier(password: &str, salt: &[u8], iterations: u32) -> Result<String> {
    let mac = |key: &[u8], data: &[&[u8]]| -> Result<[u8; 32]> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(ProvisionError::Verifier)?;
        for part in data {
            mac.update(part);
        }
        Ok(mac.finalize().into_bytes().into())
    };
    // PBKDF2-HMAC-SHA256 with one 32-byte block: U1 = HMAC(P, salt || INT(1)), Ui = HMAC(P, Ui-1).
    let mut u = mac(password.as_bytes(), &[salt, &1u32.to_be_bytes()])?;
    let mut salted = u;
    for _ in 1..iterations {
        u = mac(password.as_bytes(), &[&u])?;
        for (s, x) in salted.iter_mut().zip(u) {
            *s ^= x;
        }
    }
    let client_key = mac(&salted, &[b"Client Key"])?;
    let stored_key = Sha256::digest(client_key);
    let server_key = mac(&salted, &[b"Server Key"])?;
    Ok(format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        BASE64.encode(salt),
        BASE64.encode(stored_key),
        BASE64.encode(server_key)
    ))
}

/// Removes the product from PostgreSQL, in one transaction.
///
/// Unless `retain`, drops the view, the plan's table and every other version's table of
/// the same name (`<view>_v<N>` in the schema). The reader role is always dropped (after
/// `DROP OWNED BY`, which revokes its privileges in this database): a deleted product
/// keeps no credentials, even when its data is retained. The team's schema stays, as other
/// products may live in it. Objects already gone are skipped, so this is idempotent.
pub async fn delete(pool: &PgPool, plan: &PostgresPlan, retain: bool) -> Result<()> {
    delete_counted(pool, plan, retain, &AtomicU64::new(0)).await
}

/// [`delete`], counting every statement in `mutations`.
pub async fn delete_counted(
    pool: &PgPool,
    plan: &PostgresPlan,
    retain: bool,
    mutations: &AtomicU64,
) -> Result<()> {
    const ACTION: &str = "deleting the plan's objects";
    let mut tx = pool.begin().await.map_err(db(ACTION))?;
    lock_schema(&mut tx, plan, ACTION).await?;
    let q_schema = pg_ident(&plan.schema)?;
    if !retain {
        execute(
            &mut tx,
            format!("DROP VIEW IF EXISTS {q_schema}.{}", pg_ident(&plan.view)?),
            ACTION,
            mutations,
        )
        .await?;
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname",
        )
        .bind(&plan.schema)
        .fetch_all(&mut *tx)
        .await
        .map_err(db(ACTION))?;
        let prefix = format!("{}_v", plan.view);
        let mut tables: Vec<&String> = names
            .iter()
            .filter(|name| {
                name.strip_prefix(&prefix)
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect();
        if !tables.contains(&&plan.table) {
            tables.push(&plan.table);
        }
        for table in tables {
            execute(
                &mut tx,
                format!("DROP TABLE IF EXISTS {q_schema}.{}", pg_ident(table)?),
                ACTION,
                mutations,
            )
            .await?;
        }
    }
    let role_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&plan.role)
            .fetch_one(&mut *tx)
            .await
            .map_err(db(ACTION))?;
    if role_exists {
        let q_role = pg_ident(&plan.role)?;
        execute(
            &mut tx,
            format!("DROP OWNED BY {q_role}"),
            ACTION,
            mutations,
        )
        .await?;
        execute(&mut tx, format!("DROP ROLE {q_role}"), ACTION, mutations).await?;
    }
    tx.commit().await.map_err(db(ACTION))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn scram_verifier_matches_rfc_7677() {
        // RFC 7677 section 3's password and salt; the expected keys were computed
        // independently with Python's `hashlib.pbkdf2_hmac` and `hmac`.
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let verifier = scram_sha_256_verifier("pencil", &salt, 4096).unwrap();
        assert_eq!(
            verifier,
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$\
             WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:\
             wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let credentials = Credentials {
            user: "sluice_t_p".to_owned(),
            password: "s3cret".to_owned(),
        };
        assert!(!format!("{credentials:?}").contains("s3cret"));
    }
}
