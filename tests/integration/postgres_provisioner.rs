//! The PostgreSQL provisioner against the real PostgreSQL of `make services`: plans of the
//! retail product `orders-enriched`, each test in its own team (the namespace's schema, so
//! the namespace drops it) with its own reader roles, dropped at the end.

use std::str::FromStr;

use chrono::NaiveDate;
use serde_json::Value;
use sluice_provisioners::TargetRequest;
use sluice_provisioners::postgres::provision::{
    Credentials, ObservedColumn, PostgresObject, delete, ensure, grant, observe,
};
use sluice_provisioners::postgres::{PostgresPlan, plan_postgres};
use sluice_schemas::output::OutputSchema;
use sluice_schemas::validate::{CatalogDataset, Context, parse_documents, semantics, structure};
use sluice_schemas::{DataProduct, Document, Isolation};
use sluice_tests::{TestNamespace, sql_with_ident};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

fn retail(file: &str) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/retail")
        .join(file);
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("${SLUICE_TEST_POSTGRES_URL}", "postgres://u@127.0.0.1:1/db")
        .replace("${SLUICE_TEST_OPENSEARCH_URL}", "http://127.0.0.1:1")
        .replace("${SLUICE_TEST_ELASTICSEARCH_URL}", "http://127.0.0.1:1")
        .replace("${SLUICE_TEST_REDIS_URL}", "redis://127.0.0.1:1/0");
    parse_documents(text.as_bytes()).unwrap()
}

/// The retail product `orders-enriched`, validated, and its output schema.
fn orders_enriched() -> (DataProduct, OutputSchema) {
    let mut ctx = Context::new(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap());
    for doc in retail("datasets.yaml")
        .iter()
        .chain(&retail("targets.yaml"))
    {
        match structure(doc).unwrap() {
            Document::Dataset(d) => {
                ctx = ctx.with_dataset(
                    d.metadata.name.clone(),
                    CatalogDataset {
                        owner: d.metadata.owner.clone(),
                        spec: d.spec,
                    },
                );
            }
            Document::TargetCluster(t) => ctx = ctx.with_cluster(t.metadata.name.clone(), t.spec),
            Document::DataProduct(_) => unreachable!(),
        }
    }
    let doc = retail("products.yaml")
        .into_iter()
        .find(|p| p["metadata"]["name"] == "orders-enriched")
        .unwrap();
    let document = structure(&doc).unwrap();
    let output = semantics(&document, &ctx).unwrap().unwrap();
    let Document::DataProduct(product) = document else {
        panic!("orders-enriched is not a product")
    };
    (product, output)
}

/// One test's team (the namespace's schema) and the plans made in it.
struct Team {
    ns: TestNamespace,
    product: DataProduct,
    output: OutputSchema,
    pool: PgPool,
}

impl Team {
    async fn new(label: &str) -> Self {
        let ns = TestNamespace::new(label);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&ns.services().postgres_url)
            .await
            .expect("PostgreSQL is unreachable: run `make services`");
        let (product, output) = orders_enriched();
        Team {
            ns,
            product,
            output,
            pool,
        }
    }

    /// The plan of `orders-enriched` in this team, as product `product` with target name
    /// `name`, version `version`.
    fn plan(&self, product: &str, name: &str, version: u32) -> PostgresPlan {
        let team = self.ns.pg_schema();
        let target = &self.product.spec.target;
        plan_postgres(
            &TargetRequest {
                team: &team,
                product,
                version,
                name,
                mode: target.mode,
                options: &target.options,
                output: &self.output,
            },
            Isolation::Schema,
        )
        .unwrap()
    }

    /// The retail plan itself: product `orders-enriched`, view `orders_enriched`.
    fn retail_plan(&self) -> PostgresPlan {
        self.plan(
            &self.product.metadata.name,
            &self.product.spec.target.name,
            1,
        )
    }

    /// Drops the test's roles; the namespace drops the schema.
    async fn cleanup(&self, plans: &[&PostgresPlan]) {
        for plan in plans {
            sqlx::query(sql_with_ident(
                "DROP SCHEMA IF EXISTS ",
                &plan.schema,
                " CASCADE",
            ))
            .execute(&self.pool)
            .await
            .unwrap();
            sqlx::query(sql_with_ident("DROP ROLE IF EXISTS ", &plan.role, ""))
                .execute(&self.pool)
                .await
                .unwrap();
        }
    }
}

/// A connection as the product's reader.
async fn connect_as(credentials: &Credentials) -> Result<PgConnection, sqlx::Error> {
    let options = PgConnectOptions::from_str(&sluice_tests::services().postgres_url)
        .unwrap()
        .username(&credentials.user)
        .password(&credentials.password);
    PgConnection::connect_with(&options).await
}

/// The SQLSTATE of a failed query.
fn sqlstate(result: Result<Vec<sqlx::postgres::PgRow>, sqlx::Error>) -> String {
    match result {
        Ok(rows) => panic!("expected an error, got {} rows", rows.len()),
        Err(e) => e
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned())
            .unwrap_or_else(|| panic!("not a database error: {e}")),
    }
}

/// `SELECT * FROM schema.relation` with both names quoted.
fn select_all(schema: &str, relation: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!(
        "SELECT * FROM {}.{}",
        sluice_tests::quote_pg_ident(schema),
        sluice_tests::quote_pg_ident(relation)
    ))
}

fn column(name: &str, sql_type: &str, not_null: bool) -> ObservedColumn {
    ObservedColumn {
        name: name.to_owned(),
        sql_type: sql_type.to_owned(),
        not_null,
    }
}

#[tokio::test]
async fn ensure_creates_exactly_the_planned_objects_and_twice_changes_nothing() {
    let team = Team::new("pgprov_ensure").await;
    let plan = team.retail_plan();
    assert_eq!(observe(&team.pool, &plan).await.unwrap().existing(), []);

    let report = ensure(&team.pool, &plan).await.unwrap();
    assert_eq!(
        report.created,
        [
            PostgresObject::Schema,
            PostgresObject::Table,
            PostgresObject::View,
            PostgresObject::Role
        ]
    );
    // The oracle: the retail output schema (see schemas/tests/validation.rs) mapped by
    // DESIGN §3's type table, as PostgreSQL's `format_type` spells the types.
    let expected_columns = vec![
        column("order_id", "text", true),
        column("amount", "double precision", true),
        column("currency", "text", false),
        column("customer_name", "text", false),
        column("paid_at", "timestamp with time zone", false),
        column("amount_cents", "bigint", false),
        column("_sluice_version", "bigint", true),
    ];
    let state = observe(&team.pool, &plan).await.unwrap();
    let table = state.table.clone().unwrap();
    assert_eq!(table.columns, expected_columns);
    assert_eq!(table.primary_key, ["order_id"]);
    assert_eq!(
        state.view.clone().unwrap(),
        [
            "order_id",
            "amount",
            "currency",
            "customer_name",
            "paid_at",
            "amount_cents"
        ]
    );
    assert_eq!(state.role_can_login, Some(true));
    assert!(state.role_can_read_view);

    // The same facts through information_schema, independently of `observe`.
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text, is_nullable::text \
         FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 \
         ORDER BY ordinal_position",
    )
    .bind(&plan.schema)
    .bind("orders_enriched_v1")
    .fetch_all(&team.pool)
    .await
    .unwrap();
    let from_information_schema: Vec<ObservedColumn> = columns
        .into_iter()
        .map(|(name, data_type, nullable)| column(&name, &data_type, nullable == "NO"))
        .collect();
    assert_eq!(from_information_schema, expected_columns);
    let relations: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, table_type::text FROM information_schema.tables \
         WHERE table_schema = $1 ORDER BY table_name",
    )
    .bind(&plan.schema)
    .fetch_all(&team.pool)
    .await
    .unwrap();
    assert_eq!(
        relations,
        [
            ("orders_enriched".to_owned(), "VIEW".to_owned()),
            ("orders_enriched_v1".to_owned(), "BASE TABLE".to_owned())
        ]
    );

    let again = ensure(&team.pool, &plan).await.unwrap();
    assert_eq!(again.created, []);
    assert_eq!(observe(&team.pool, &plan).await.unwrap(), state);

    team.cleanup(&[&plan]).await;
}

#[tokio::test]
async fn credentials_read_their_own_view_and_nothing_else() {
    let team = Team::new("pgprov_grant").await;
    let mine = team.retail_plan();
    let other = team.plan("orders-copy", "orders_copy", 1);
    ensure(&team.pool, &mine).await.unwrap();
    ensure(&team.pool, &other).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {}.{} (order_id, amount, _sluice_version) VALUES ('o-1', 12.5, 7)",
        sluice_tests::quote_pg_ident(&mine.schema),
        sluice_tests::quote_pg_ident(&mine.table)
    )))
    .execute(&team.pool)
    .await
    .unwrap();

    let credentials = grant(&team.pool, &mine).await.unwrap();
    assert_eq!(credentials.user, mine.role);
    assert!(credentials.password.len() >= 32);
    assert!(!format!("{credentials:?}").contains(&credentials.password));
    let mut reader = connect_as(&credentials).await.unwrap();

    let rows: Vec<(String, f64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT order_id, amount FROM {}.{}",
        sluice_tests::quote_pg_ident(&mine.schema),
        sluice_tests::quote_pg_ident(&mine.view)
    )))
    .fetch_all(&mut reader)
    .await
    .unwrap();
    assert_eq!(rows, [("o-1".to_owned(), 12.5)]);

    // The plan grants SELECT on the view only: the table (with its bookkeeping columns)
    // and another product's view are refused (42501 insufficient_privilege).
    let table = sqlx::query(select_all(&mine.schema, &mine.table))
        .fetch_all(&mut reader)
        .await;
    assert_eq!(sqlstate(table), "42501");
    let other_view = sqlx::query(select_all(&other.schema, &other.view))
        .fetch_all(&mut reader)
        .await;
    assert_eq!(sqlstate(other_view), "42501");
    // Nor may it write to its own view.
    let write = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {}.{} RETURNING order_id",
        sluice_tests::quote_pg_ident(&mine.schema),
        sluice_tests::quote_pg_ident(&mine.view)
    )))
    .fetch_all(&mut reader)
    .await;
    assert_eq!(sqlstate(write), "42501");
    reader.close().await.unwrap();

    // A second grant rotates the password: the old one stops working.
    let rotated = grant(&team.pool, &mine).await.unwrap();
    assert_ne!(rotated.password, credentials.password);
    assert!(connect_as(&credentials).await.is_err());
    connect_as(&rotated).await.unwrap().close().await.unwrap();

    team.cleanup(&[&mine, &other]).await;
}

#[tokio::test]
async fn delete_drops_the_product_or_retains_its_data() {
    let team = Team::new("pgprov_delete").await;
    let v1 = team.retail_plan();
    let v2 = team.plan(
        &team.product.metadata.name,
        &team.product.spec.target.name,
        2,
    );
    ensure(&team.pool, &v1).await.unwrap();
    // A rebuild's version 2 beside version 1; the view now reads version 2.
    assert_eq!(
        ensure(&team.pool, &v2).await.unwrap().created,
        [PostgresObject::Table]
    );

    delete(&team.pool, &v2, true).await.unwrap();
    for plan in [&v1, &v2] {
        let state = observe(&team.pool, plan).await.unwrap();
        assert!(state.table.is_some() && state.view.is_some());
        assert_eq!(
            state.role_can_login, None,
            "the reader role is always dropped"
        );
    }

    delete(&team.pool, &v2, false).await.unwrap();
    delete(&team.pool, &v2, false).await.unwrap();
    for plan in [&v1, &v2] {
        assert_eq!(
            observe(&team.pool, plan).await.unwrap().existing(),
            [PostgresObject::Schema]
        );
    }
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1",
    )
    .bind(&v1.schema)
    .fetch_one(&team.pool)
    .await
    .unwrap();
    assert_eq!(left, 0, "no table, view or index of the product is left");

    team.cleanup(&[&v1]).await;
}

#[tokio::test]
async fn ensure_repairs_what_was_dropped_or_revoked_by_hand() {
    let team = Team::new("pgprov_repair").await;
    let plan = team.retail_plan();
    ensure(&team.pool, &plan).await.unwrap();
    let healthy = observe(&team.pool, &plan).await.unwrap();

    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP VIEW {}.{}",
        sluice_tests::quote_pg_ident(&plan.schema),
        sluice_tests::quote_pg_ident(&plan.view)
    )))
    .execute(&team.pool)
    .await
    .unwrap();
    let broken = observe(&team.pool, &plan).await.unwrap();
    assert_eq!(broken.view, None);
    assert!(!broken.role_can_read_view);

    let report = ensure(&team.pool, &plan).await.unwrap();
    assert_eq!(report.created, [PostgresObject::View]);
    assert_eq!(observe(&team.pool, &plan).await.unwrap(), healthy);

    sqlx::query(sqlx::AssertSqlSafe(format!(
        "REVOKE USAGE ON SCHEMA {} FROM {}",
        sluice_tests::quote_pg_ident(&plan.schema),
        sluice_tests::quote_pg_ident(&plan.role)
    )))
    .execute(&team.pool)
    .await
    .unwrap();
    assert!(!observe(&team.pool, &plan).await.unwrap().role_can_read_view);
    assert_eq!(ensure(&team.pool, &plan).await.unwrap().created, []);
    assert_eq!(observe(&team.pool, &plan).await.unwrap(), healthy);

    team.cleanup(&[&plan]).await;
}

#[tokio::test]
async fn hostile_names_stay_quoted_end_to_end() {
    let team = Team::new("pgprov_hostile").await;
    let plan = team.plan("p\"x", "we\"ird; DROP TABLE t; --", 1);
    ensure(&team.pool, &plan).await.unwrap();

    let relations: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'v') ORDER BY c.relname",
    )
    .bind(&plan.schema)
    .fetch_all(&team.pool)
    .await
    .unwrap();
    assert_eq!(
        relations,
        [
            "we\"ird; DROP TABLE t; --".to_owned(),
            "we\"ird; DROP TABLE t; --_v1".to_owned()
        ]
    );
    let role: Option<String> =
        sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE rolname = $1")
            .bind(format!("sluice_{}_p\"x", plan.schema))
            .fetch_optional(&team.pool)
            .await
            .unwrap();
    assert_eq!(role.as_deref(), Some(plan.role.as_str()));

    let credentials = grant(&team.pool, &plan).await.unwrap();
    let mut reader = connect_as(&credentials).await.unwrap();
    let rows = sqlx::query(select_all(&plan.schema, &plan.view))
        .fetch_all(&mut reader)
        .await
        .unwrap();
    assert!(rows.is_empty());
    reader.close().await.unwrap();

    delete(&team.pool, &plan, false).await.unwrap();
    assert_eq!(
        observe(&team.pool, &plan).await.unwrap().existing(),
        [PostgresObject::Schema]
    );
    team.cleanup(&[&plan]).await;
}
