//! Executing a [`PostgresPlan`] against a real PostgreSQL: [`ensure`] its objects,
//! [`observe`] what exists, [`grant`] the product's reader a fresh password, and [`delete`]
//! what the product owns. Every function is idempotent: running it again after a crash or
//! a success converges to the same state.
//!
//! The pool passed in must be connected to the database the plan runs in
//! ([`PostgresPlan::database`] for database isolation, which the caller creates first with
//! [`PostgresPlan::create_database`]; else the cluster's database), as a role that may
//! create schemas and roles.
//!
//! Catalog queries take names as bind parameters. DDL cannot: it is the plan's text, built
//! only from identifiers quoted by [`crate::quote`], and goes through [`trusted_sql`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use super::plan::PostgresPlan;
pub use crate::credentials::Credentials;
use crate::quote::{QuoteError, pg_ident, pg_literal};

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

/// Runs `statement` with the simple protocol (no prepared statement is cached for DDL).
async fn execute(conn: &mut PgConnection, statement: String, action: &'static str) -> Result<()> {
    sqlx::raw_sql(trusted_sql(statement))
        .execute(conn)
        .await
        .map_err(db(action))?;
    Ok(())
}

/// Creates whatever of the plan is missing, running all of
/// [`statements`](PostgresPlan::statements) in one transaction: either every object exists
/// afterwards, or nothing changed. Each statement is idempotent (`IF NOT EXISTS`,
/// `CREATE OR REPLACE`, a `DO` block that ignores an existing role, `GRANT`), so this also
/// repairs an object dropped by hand and re-grants a revoked privilege.
pub async fn ensure(pool: &PgPool, plan: &PostgresPlan) -> Result<EnsureReport> {
    const ACTION: &str = "creating the plan's objects";
    let mut tx = pool.begin().await.map_err(db(ACTION))?;
    let before = observe_on(&mut tx, plan).await?.existing();
    for statement in &plan.statements {
        execute(&mut tx, statement.clone(), ACTION).await?;
    }
    let after = observe_on(&mut tx, plan).await?.existing();
    tx.commit().await.map_err(db(ACTION))?;
    Ok(EnsureReport {
        created: after.into_iter().filter(|o| !before.contains(o)).collect(),
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
    execute(&mut conn, statement, "setting the reader's password").await?;
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
    const ACTION: &str = "deleting the plan's objects";
    let mut tx = pool.begin().await.map_err(db(ACTION))?;
    let q_schema = pg_ident(&plan.schema)?;
    if !retain {
        execute(
            &mut tx,
            format!("DROP VIEW IF EXISTS {q_schema}.{}", pg_ident(&plan.view)?),
            ACTION,
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
        execute(&mut tx, format!("DROP OWNED BY {q_role}"), ACTION).await?;
        execute(&mut tx, format!("DROP ROLE {q_role}"), ACTION).await?;
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
