//! The PostgreSQL plan: schema, versioned table, stable view and reader role, as DDL
//! statements that are each idempotent, so re-running a plan after a crash is safe.
//!
//! Every identifier goes through [`pg_ident`]; every generated name is kept within
//! PostgreSQL's 63-byte limit by [`fit_identifier`].

use serde::Serialize;
use sluice_schemas::{FieldType, Isolation, TargetType};

use crate::plan::{
    KEY_FIELD, OFFSET_FIELD, PARTITION_FIELD, PlanError, RowIdentity, TargetRequest, VERSION_FIELD,
};
use crate::quote::{pg_dollar_quote, pg_ident};

/// PostgreSQL's identifier limit (`NAMEDATALEN - 1`): longer names are silently truncated
/// by the server, so Sluice never sends one.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// The schema a database-isolated product lives in.
const DATABASE_ISOLATION_SCHEMA: &str = "public";

/// The column type of an output field type: string→text, integer→bigint, number→double
/// precision, boolean→boolean, timestamp→timestamptz, object and array→jsonb.
pub fn sql_type(field_type: FieldType) -> &'static str {
    match field_type {
        FieldType::String => "text",
        FieldType::Integer => "bigint",
        FieldType::Number => "double precision",
        FieldType::Boolean => "boolean",
        FieldType::Timestamp => "timestamptz",
        FieldType::Object | FieldType::Array => "jsonb",
    }
}

/// `stem` followed by `suffix`, kept within [`MAX_IDENTIFIER_BYTES`] deterministically.
///
/// A name that fits is returned as is. A longer one keeps as much of `stem` as fits, then
/// `_` and eight hex digits of the 32-bit FNV-1a hash of the whole untruncated name, then
/// `suffix` (e.g. `_v3`, which so stays readable). Two long names that share a prefix still
/// differ, and the same name always gives the same identifier, on every platform and
/// release (FNV-1a is fixed, unlike `std`'s hasher).
pub fn fit_identifier(stem: &str, suffix: &str) -> String {
    let full = format!("{stem}{suffix}");
    if full.len() <= MAX_IDENTIFIER_BYTES {
        return full;
    }
    let hash = format!("_{:08x}", fnv1a_32(full.as_bytes()));
    let mut keep = MAX_IDENTIFIER_BYTES.saturating_sub(hash.len() + suffix.len());
    while !stem.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{hash}{suffix}", &stem[..keep])
}

pub(crate) fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// One column of a product table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostgresColumn {
    /// The column name (unquoted).
    pub name: String,
    /// Its SQL type.
    pub sql_type: &'static str,
    /// Whether it is `NOT NULL`.
    pub not_null: bool,
    /// Whether Sluice keeps it for itself (`_sluice_*`); readers do not see it in the view.
    pub bookkeeping: bool,
}

/// What Sluice creates in PostgreSQL for one product version. Names are unquoted here and
/// quoted in [`statements`](PostgresPlan::statements).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostgresPlan {
    /// How the team is isolated: `schema` or `database`.
    pub isolation: Isolation,
    /// Database isolation: the team's database. `None`: the database of the cluster URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Database isolation: `CREATE DATABASE`, which the provisioner runs on the cluster's
    /// database when the team's database does not exist yet (it can be neither conditional
    /// nor run in a transaction, so it is not one of [`statements`](Self::statements)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_database: Option<String>,
    /// The schema: the team (schema isolation) or `public` (database isolation).
    pub schema: String,
    /// The table of this version, `<name>_v<N>`.
    pub table: String,
    /// The stable view readers use, `<name>`; a rebuild re-points it at the new table.
    /// (`CREATE OR REPLACE VIEW` can only add columns at the end, so a rebuild that drops
    /// or reorders columns swaps the view with `DROP VIEW` and `CREATE VIEW` in one
    /// transaction.)
    pub view: String,
    /// The product's reader role, `sluice_<team>_<product>`.
    pub role: String,
    /// How rows are identified.
    pub identity: RowIdentity,
    /// The table's columns: output fields first, in spec order, then bookkeeping columns.
    pub columns: Vec<PostgresColumn>,
    /// The primary key columns.
    pub primary_key: Vec<String>,
    /// The DDL, in order, each statement idempotent, run in [`database`](Self::database).
    /// No statement carries a secret: the role's password is set when provisioning.
    pub statements: Vec<String>,
}

impl PostgresPlan {
    /// The plan in human-readable lines: what is created, then the statements.
    pub fn summary(&self) -> Vec<String> {
        let q = |name: &str| pg_ident(name).unwrap_or_else(|_| format!("{name:?}"));
        let mut lines = vec![match &self.database {
            None => format!(
                "PostgreSQL, schema isolation: schema {} in the cluster's database",
                q(&self.schema)
            ),
            Some(database) => format!(
                "PostgreSQL, database isolation: database {}, schema {}",
                q(database),
                q(&self.schema)
            ),
        }];
        lines.push(format!(
            "Table {}.{}, read through view {}.{}",
            q(&self.schema),
            q(&self.table),
            q(&self.schema),
            q(&self.view)
        ));
        let key: Vec<String> = self.primary_key.iter().map(|c| q(c)).collect();
        lines.push(format!(
            "Rows identified by {}: primary key ({})",
            self.identity.describe(),
            key.join(", ")
        ));
        lines.push(format!(
            "Reader role {}: may use the schema and read the view; its password is set when \
             provisioning and never appears in a plan",
            q(&self.role)
        ));
        if let Some(create) = &self.create_database {
            lines.push(format!("On the cluster's database, if missing: {create};"));
        }
        lines.push("Statements:".to_owned());
        for statement in &self.statements {
            lines.extend(format!("{statement};").lines().map(str::to_owned));
        }
        lines
    }
}

/// Plans the PostgreSQL objects of `request` under `isolation` (`schema` or `database`).
///
/// - `schema`: schema `<team>` in the cluster's database.
/// - `database`: database `<team>` (created first, `PUBLIC` may not connect), schema
///   `public`.
///
/// The table `<name>_v<N>` has one column per output field (`NOT NULL` unless nullable),
/// then the row identity — upsert: primary key on the key field, or on an extra
/// `_sluice_key` column when the key is computed; append: `_sluice_partition integer,
/// _sluice_offset bigint` as primary key, so records are appended idempotently by their
/// output-topic position — and `_sluice_version bigint NOT NULL` (the output-topic offset of
/// the row's record, for conditional upserts). The view `<name>` selects the output fields
/// only; the role `sluice_<team>_<product>` may log in, use the schema and read the view.
pub fn plan_postgres(
    request: &TargetRequest<'_>,
    isolation: Isolation,
) -> Result<PostgresPlan, PlanError> {
    let identity = request.identity()?;
    let (database, schema) = match isolation {
        Isolation::Schema => (None, fit_identifier(request.team, "")),
        Isolation::Database => (
            Some(fit_identifier(request.team, "")),
            DATABASE_ISOLATION_SCHEMA.to_owned(),
        ),
        Isolation::AclPrefix | Isolation::Index => {
            return Err(PlanError::Isolation {
                target_type: TargetType::Postgres,
                isolation,
            });
        }
    };
    let table = fit_identifier(request.name, &format!("_v{}", request.version));
    let view = fit_identifier(request.name, "");
    let role = fit_identifier(&format!("sluice_{}_{}", request.team, request.product), "");

    let mut columns: Vec<PostgresColumn> = request
        .output
        .fields
        .iter()
        .map(|f| PostgresColumn {
            name: fit_identifier(&f.name, ""),
            sql_type: sql_type(f.field_type),
            not_null: !f.nullable,
            bookkeeping: false,
        })
        .collect();
    let bookkeeping = |name: &str, sql_type: &'static str| PostgresColumn {
        name: name.to_owned(),
        sql_type,
        not_null: true,
        bookkeeping: true,
    };
    let primary_key = match &identity {
        RowIdentity::KeyField { field, .. } => {
            let name = fit_identifier(field, "");
            // A primary key column is NOT NULL whatever the field says.
            for column in columns.iter_mut().filter(|c| c.name == name) {
                column.not_null = true;
            }
            vec![name]
        }
        RowIdentity::ComputedKey { key_type, .. } => {
            columns.push(bookkeeping(KEY_FIELD, sql_type(*key_type)));
            vec![KEY_FIELD.to_owned()]
        }
        RowIdentity::TopicPosition => {
            columns.push(bookkeeping(PARTITION_FIELD, "integer"));
            columns.push(bookkeeping(OFFSET_FIELD, "bigint"));
            vec![PARTITION_FIELD.to_owned(), OFFSET_FIELD.to_owned()]
        }
    };
    columns.push(bookkeeping(VERSION_FIELD, "bigint"));

    let q_schema = pg_ident(&schema)?;
    let q_table = format!("{q_schema}.{}", pg_ident(&table)?);
    let q_view = format!("{q_schema}.{}", pg_ident(&view)?);
    let q_role = pg_ident(&role)?;

    let mut column_lines = Vec::with_capacity(columns.len() + 1);
    for c in &columns {
        let not_null = if c.not_null { " NOT NULL" } else { "" };
        column_lines.push(format!("  {} {}{not_null}", pg_ident(&c.name)?, c.sql_type));
    }
    let key_list = quote_list(&primary_key)?;
    column_lines.push(format!("  PRIMARY KEY ({key_list})"));
    let user_columns: Vec<String> = columns
        .iter()
        .filter(|c| !c.bookkeeping)
        .map(|c| c.name.clone())
        .collect();

    let mut statements = Vec::new();
    let mut create_database = None;
    if let Some(database) = &database {
        let q_database = pg_ident(database)?;
        create_database = Some(format!("CREATE DATABASE {q_database}"));
        statements.push(format!(
            "REVOKE CONNECT, TEMPORARY ON DATABASE {q_database} FROM PUBLIC"
        ));
    }
    statements.push(format!("CREATE SCHEMA IF NOT EXISTS {q_schema}"));
    statements.push(format!(
        "CREATE TABLE IF NOT EXISTS {q_table} (\n{}\n)",
        column_lines.join(",\n")
    ));
    statements.push(format!(
        "CREATE OR REPLACE VIEW {q_view} AS SELECT {} FROM {q_table}",
        quote_list(&user_columns)?
    ));
    // CREATE ROLE has no IF NOT EXISTS; the block makes it idempotent.
    statements.push(format!(
        "DO {}",
        pg_dollar_quote(&format!(
            " BEGIN CREATE ROLE {q_role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END "
        ))?
    ));
    if let Some(database) = &database {
        statements.push(format!(
            "GRANT CONNECT ON DATABASE {} TO {q_role}",
            pg_ident(database)?
        ));
    }
    statements.push(format!("GRANT USAGE ON SCHEMA {q_schema} TO {q_role}"));
    statements.push(format!("GRANT SELECT ON TABLE {q_view} TO {q_role}"));

    Ok(PostgresPlan {
        isolation,
        database,
        create_database,
        schema,
        table,
        view,
        role,
        identity,
        columns,
        primary_key,
        statements,
    })
}

fn quote_list(names: &[String]) -> Result<String, PlanError> {
    let quoted: Result<Vec<String>, _> = names.iter().map(|n| pg_ident(n)).collect();
    Ok(quoted?.join(", "))
}
