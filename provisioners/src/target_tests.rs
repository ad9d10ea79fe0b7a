//! [`TargetConnection`] against the real services of `make services`: converged ensures send
//! nothing, hand-made damage is repaired and reported, additive changes apply in place and
//! others are drift, versions are built beside each other and published separately,
//! unreachable clusters fail fast without showing passwords, and cluster checks.
//!
//! Every test uses names of its own (random suffixes) and removes what it made.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use sluice_schemas::output::OutputSchema;
use sluice_schemas::{FieldType, Isolation, TargetType, WriteMode};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::plan::{TargetPlan, TargetRequest, plan_target};
use crate::target::{TargetConnection, TargetError};
use crate::test_support::{field, key, service_url, unique};

const PG: &str = "SLUICE_TEST_POSTGRES_URL";
const REDIS: &str = "SLUICE_TEST_REDIS_URL";
const OPENSEARCH: &str = "SLUICE_TEST_OPENSEARCH_URL";
const ELASTICSEARCH: &str = "SLUICE_TEST_ELASTICSEARCH_URL";

/// `id` (the key) and a nullable `amount`, plus `extra`.
fn output(extra: &[(&str, FieldType, bool)]) -> OutputSchema {
    let mut fields = vec![
        field("id", FieldType::String, false),
        field("amount", FieldType::Number, true),
    ];
    fields.extend(extra.iter().map(|(n, t, nullable)| field(n, *t, *nullable)));
    OutputSchema {
        fields,
        key: Some(key("o.id", FieldType::String, Some("id"))),
    }
}

/// One test product's names.
struct Product {
    team: String,
    product: String,
    name: String,
    target_type: TargetType,
    isolation: Isolation,
    options: Map<String, Value>,
}

impl Product {
    fn new(target_type: TargetType) -> Self {
        let (isolation, options) = match target_type {
            TargetType::Postgres => (Isolation::Schema, Map::new()),
            TargetType::Elasticsearch => (
                Isolation::Index,
                json!({"replicas": 0}).as_object().unwrap().clone(),
            ),
            TargetType::Redis => (Isolation::AclPrefix, Map::new()),
        };
        Product {
            team: unique("tt"),
            product: unique("p"),
            name: unique("n"),
            target_type,
            isolation,
            options,
        }
    }

    fn plan(&self, version: u32, output: &OutputSchema) -> TargetPlan {
        let request = TargetRequest {
            team: &self.team,
            product: &self.product,
            version,
            name: &self.name,
            mode: WriteMode::Upsert,
            options: &self.options,
            output,
        };
        plan_target(&request, self.target_type, self.isolation).unwrap()
    }
}

fn connect(target_type: TargetType, key: &str) -> TargetConnection {
    TargetConnection::connect(target_type, &service_url(key)).unwrap()
}

/// Ensures and checks the report's mutations against the connection's counter.
async fn ensure(
    conn: &TargetConnection,
    plan: &TargetPlan,
    publish: bool,
) -> crate::target::TargetEnsureReport {
    let before = conn.mutations();
    let report = conn.ensure(plan, publish).await.unwrap();
    assert_eq!(conn.mutations() - before, report.mutations, "{report:?}");
    report
}

/// A second ensure of a converged plan sends nothing.
async fn assert_converged(conn: &TargetConnection, plan: &TargetPlan, publish: bool) {
    let before = conn.mutations();
    let report = conn.ensure(plan, publish).await.unwrap();
    assert_eq!(report.mutations, 0, "{report:?}");
    assert!(report.created.is_empty(), "{report:?}");
    assert_eq!(conn.mutations(), before);
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

fn pg_plan(plan: &TargetPlan) -> &crate::postgres::PostgresPlan {
    match plan {
        TargetPlan::Postgres(p) => p,
        other => panic!("not a PostgreSQL plan: {other:?}"),
    }
}

async fn pg_admin() -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(&service_url(PG))
        .await
        .expect("PostgreSQL is unreachable: run `make services`")
}

async fn pg_exec(admin: &PgPool, sql: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(admin)
        .await
        .unwrap();
}

fn q(name: &str) -> String {
    crate::quote::pg_ident(name).unwrap()
}

async fn pg_cleanup(admin: &PgPool, plan: &TargetPlan) {
    let p = pg_plan(plan);
    pg_exec(
        admin,
        format!("DROP SCHEMA IF EXISTS {} CASCADE", q(&p.schema)),
    )
    .await;
    pg_exec(admin, format!("DROP ROLE IF EXISTS {}", q(&p.role))).await;
}

async fn pg_view_ids(admin: &PgPool, plan: &TargetPlan) -> Vec<String> {
    let p = pg_plan(plan);
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM {}.{} ORDER BY id",
        q(&p.schema),
        q(&p.view)
    )))
    .fetch_all(admin)
    .await
    .unwrap()
}

async fn pg_relation_exists(admin: &PgPool, schema: &str, name: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = $2)",
    )
    .bind(schema)
    .bind(name)
    .fetch_one(admin)
    .await
    .unwrap()
}

#[tokio::test]
async fn postgres_converged_ensure_sends_nothing_and_repairs_what_was_dropped() {
    let admin = pg_admin().await;
    let conn = connect(TargetType::Postgres, PG);
    let product = Product::new(TargetType::Postgres);
    let out = output(&[]);
    let plan = product.plan(1, &out);
    let p = pg_plan(&plan);

    let first = ensure(&conn, &plan, true).await;
    assert_eq!(
        first.created,
        strings(&[
            "schema",
            "table",
            "role",
            "usage grant",
            "view",
            "select grant"
        ])
    );
    assert!(first.reader_created);
    assert_converged(&conn, &plan, true).await;
    assert_converged(&conn, &plan, false).await;
    let seen = conn.observe(&plan).await.unwrap();
    assert!(
        seen.exists && seen.published && seen.reader_exists,
        "{seen:?}"
    );

    let credentials = conn.grant(&plan).await.unwrap().unwrap();
    assert_eq!(credentials.user, p.role);

    // Damage by hand; each is repaired and reported, then all is quiet again.
    pg_exec(&admin, format!("DROP VIEW {}.{}", q(&p.schema), q(&p.view))).await;
    let seen = conn.observe(&plan).await.unwrap();
    assert!(seen.exists && !seen.published, "{seen:?}");
    let report = ensure(&conn, &plan, true).await;
    assert_eq!(report.created, strings(&["view", "select grant"]));
    assert!(!report.reader_created);
    assert_converged(&conn, &plan, true).await;

    pg_exec(
        &admin,
        format!(
            "REVOKE USAGE ON SCHEMA {} FROM {}",
            q(&p.schema),
            q(&p.role)
        ),
    )
    .await;
    assert_eq!(
        ensure(&conn, &plan, true).await.created,
        strings(&["usage grant"])
    );

    // Without publish, a dropped view stays dropped: only the version's objects are made.
    pg_exec(
        &admin,
        format!("DROP TABLE {}.{} CASCADE", q(&p.schema), q(&p.table)),
    )
    .await;
    assert_eq!(
        ensure(&conn, &plan, false).await.created,
        strings(&["table"])
    );
    assert!(!pg_relation_exists(&admin, &p.schema, &p.view).await);
    assert_eq!(
        ensure(&conn, &plan, true).await.created,
        strings(&["view", "select grant"])
    );
    assert_converged(&conn, &plan, true).await;

    conn.delete(&plan, false).await.unwrap();
    let seen = conn.observe(&plan).await.unwrap();
    assert!(!seen.exists && !seen.published && !seen.reader_exists);
    pg_cleanup(&admin, &plan).await;
}

#[tokio::test]
async fn postgres_additive_columns_apply_in_place_and_other_changes_are_drift() {
    let admin = pg_admin().await;
    let conn = connect(TargetType::Postgres, PG);
    let product = Product::new(TargetType::Postgres);
    let plan = product.plan(1, &output(&[]));
    let p = pg_plan(&plan);
    ensure(&conn, &plan, true).await;

    // A new nullable field: ALTER TABLE … ADD COLUMN, and the view gains it at the end.
    let wider = product.plan(1, &output(&[("note", FieldType::String, true)]));
    let report = ensure(&conn, &wider, true).await;
    assert_eq!(report.created, strings(&["column note", "view"]));
    assert_eq!(report.mutations, 2);
    assert_converged(&conn, &wider, true).await;
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
    )
    .bind(&p.schema)
    .bind(&p.view)
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(columns, ["id", "amount", "note"]);

    // Non-additive: a NOT NULL column, another type, a removed column, another key.
    let drifts = [
        output(&[
            ("note", FieldType::String, true),
            ("code", FieldType::String, false),
        ]),
        OutputSchema {
            fields: vec![
                field("id", FieldType::String, false),
                field("amount", FieldType::Integer, true),
                field("note", FieldType::String, true),
            ],
            ..output(&[])
        },
        output(&[]),
        OutputSchema {
            key: Some(key("o.note", FieldType::String, Some("note"))),
            ..output(&[("note", FieldType::String, true)])
        },
    ];
    for drifted in &drifts {
        let before = conn.mutations();
        let error = conn
            .ensure(&product.plan(1, drifted), true)
            .await
            .unwrap_err();
        assert!(error.is_drift(), "{error:?}");
        assert!(!error.is_unreachable());
        assert_eq!(conn.mutations(), before, "drift is found before any change");
    }
    assert_converged(&conn, &wider, true).await;
    pg_cleanup(&admin, &plan).await;
}

#[tokio::test]
async fn postgres_version_two_is_built_beside_one_then_published() {
    let admin = pg_admin().await;
    let conn = connect(TargetType::Postgres, PG);
    let product = Product::new(TargetType::Postgres);
    let v1 = product.plan(1, &output(&[]));
    let p1 = pg_plan(&v1);
    ensure(&conn, &v1, true).await;
    pg_exec(
        &admin,
        format!(
            "INSERT INTO {}.{} (id, amount, _sluice_version) VALUES ('v1-row', 1, 1)",
            q(&p1.schema),
            q(&p1.table)
        ),
    )
    .await;

    // Version 2 drops `amount` and adds `note`: the view's columns change other than by
    // appending, so publishing swaps the view (DROP and CREATE in one transaction).
    let v2 = product.plan(
        2,
        &OutputSchema {
            fields: vec![
                field("id", FieldType::String, false),
                field("note", FieldType::String, true),
            ],
            ..output(&[])
        },
    );
    let p2 = pg_plan(&v2);
    let report = ensure(&conn, &v2, false).await;
    assert_eq!(report.created, strings(&["table"]));
    assert_converged(&conn, &v2, false).await;
    assert_eq!(pg_view_ids(&admin, &v1).await, ["v1-row"]);
    assert!(conn.observe(&v1).await.unwrap().published);
    let seen = conn.observe(&v2).await.unwrap();
    assert!(seen.exists && !seen.published);

    pg_exec(
        &admin,
        format!(
            "INSERT INTO {}.{} (id, note, _sluice_version) VALUES ('v2-row', 'x', 1)",
            q(&p2.schema),
            q(&p2.table)
        ),
    )
    .await;
    let report = ensure(&conn, &v2, true).await;
    assert_eq!(report.created, strings(&["view", "select grant"]));
    assert_converged(&conn, &v2, true).await;
    assert_eq!(pg_view_ids(&admin, &v2).await, ["v2-row"]);
    assert!(!conn.observe(&v1).await.unwrap().published);
    assert!(conn.observe(&v2).await.unwrap().published);

    // The reader reads the new view.
    let credentials = conn.grant(&v2).await.unwrap().unwrap();
    let reader_url = {
        let options: sqlx::postgres::PgConnectOptions = service_url(PG).parse().unwrap();
        options
            .username(&credentials.user)
            .password(&credentials.password)
    };
    let mut reader = <sqlx::PgConnection as sqlx::Connection>::connect_with(&reader_url)
        .await
        .unwrap();
    let notes: Vec<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT note FROM {}.{}",
        q(&p2.schema),
        q(&p2.view)
    )))
    .fetch_all(&mut reader)
    .await
    .unwrap();
    assert_eq!(notes, [Some("x".to_owned())]);
    sqlx::Connection::close(reader).await.unwrap();

    // The live version is not dropped; the old one is, and only it.
    let error = conn.drop_version(&v2).await.unwrap_err();
    assert!(!error.is_drift() && !error.is_unreachable(), "{error:?}");
    conn.drop_version(&v1).await.unwrap();
    assert!(!pg_relation_exists(&admin, &p1.schema, &p1.table).await);
    assert!(pg_relation_exists(&admin, &p2.schema, &p2.table).await);
    assert_eq!(pg_view_ids(&admin, &v2).await, ["v2-row"]);
    let before = conn.mutations();
    conn.drop_version(&v1).await.unwrap();
    assert_eq!(conn.mutations(), before, "dropping again sends nothing");
    let seen = conn.observe(&v2).await.unwrap();
    assert!(seen.exists && seen.published && seen.reader_exists);

    pg_cleanup(&admin, &v1).await;
}

#[tokio::test]
async fn postgres_check_names_a_role_without_privileges() {
    let admin = pg_admin().await;
    let conn = connect(TargetType::Postgres, PG);
    let check = conn.check().await;
    assert_eq!(check.reachable, Ok(()));
    assert_eq!(check.privileged, Ok(()));

    let role = unique("sluice_weak_");
    let password = unique("pw");
    pg_exec(
        &admin,
        format!(
            "CREATE ROLE {} LOGIN PASSWORD {}",
            q(&role),
            crate::quote::pg_literal(&password).unwrap()
        ),
    )
    .await;
    let url = {
        let base = service_url(PG);
        let (scheme, rest) = base.split_once("://").unwrap();
        let host = &rest[rest.rfind('@').unwrap() + 1..];
        format!("{scheme}://{role}:{password}@{host}")
    };
    let weak = TargetConnection::connect(TargetType::Postgres, &url).unwrap();
    let check = weak.check().await;
    assert_eq!(check.reachable, Ok(()));
    let message = check.privileged.unwrap_err();
    assert!(message.contains(&role), "{message}");
    assert!(message.contains("CREATEROLE"), "{message}");
    assert!(!message.contains(&password), "{message}");
    drop(weak);
    pg_exec(&admin, format!("DROP ROLE IF EXISTS {}", q(&role))).await;
}

// ---------------------------------------------------------------------------------------
// Unreachable clusters and checks of every type

/// An error and all its sources, as a log line with `{:#}`-like detail would show them.
fn full_text(error: &TargetError) -> String {
    let mut text = format!("{error} / {error:?}");
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        text.push_str(&format!(" / {e}"));
        source = e.source();
    }
    text
}

#[tokio::test]
async fn unreachable_clusters_fail_fast_without_showing_passwords() {
    for (target_type, url) in [
        (TargetType::Postgres, "postgres://u:secretpw@127.0.0.1:1/x"),
        (TargetType::Redis, "redis://u:secretpw@127.0.0.1:1/0"),
        (TargetType::Elasticsearch, "http://u:secretpw@127.0.0.1:1"),
    ] {
        let plan = Product::new(target_type).plan(1, &output(&[]));
        let conn = TargetConnection::connect(target_type, url).unwrap();
        let started = Instant::now();
        let error = conn.ensure(&plan, true).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(8), "{target_type}");
        assert!(error.is_unreachable(), "{target_type}: {error:?}");
        assert!(!error.is_drift());
        let text = full_text(&error);
        assert!(!text.contains("secretpw"), "{text}");
        assert!(!error.detail().contains("secretpw"));
        eprintln!(
            "{target_type}: {} after {:?}",
            error.detail(),
            started.elapsed()
        );
        assert!(text.contains("127.0.0.1:1"), "names the cluster: {text}");

        let error = conn.observe(&plan).await.unwrap_err();
        assert!(error.is_unreachable(), "{target_type}: {error:?}");
        let check = conn.check().await;
        let message = check.reachable.unwrap_err();
        assert!(!message.contains("secretpw"), "{message}");
        assert!(message.contains("127.0.0.1:1"), "{message}");
        assert!(check.privileged.is_err());
        assert!(!format!("{conn:?}").contains("secretpw"));
        assert!(started.elapsed() < Duration::from_secs(20), "{target_type}");
        assert_eq!(conn.mutations(), 0);
    }

    // A plan of another type is refused, not sent.
    let conn = connect(TargetType::Redis, REDIS);
    let plan = Product::new(TargetType::Postgres).plan(1, &output(&[]));
    assert!(matches!(
        conn.ensure(&plan, true).await,
        Err(TargetError::PlanMismatch { .. })
    ));
}

#[tokio::test]
async fn checks_of_the_real_services_pass() {
    for (target_type, key) in [
        (TargetType::Postgres, PG),
        (TargetType::Redis, REDIS),
        (TargetType::Elasticsearch, OPENSEARCH),
        (TargetType::Elasticsearch, ELASTICSEARCH),
    ] {
        let conn = connect(target_type, key);
        assert_eq!(conn.target_type(), target_type);
        let check = conn.check().await;
        assert_eq!(check.reachable, Ok(()), "{key}");
        assert_eq!(check.privileged, Ok(()), "{key}");
    }
}

#[test]
fn connection_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    fn sync<T: Send + Sync>() {}
    sync::<TargetConnection>();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let conn =
        TargetConnection::connect(TargetType::Postgres, "postgres://u@127.0.0.1:1/x").unwrap();
    let plan = Product::new(TargetType::Postgres).plan(1, &output(&[]));
    send(&conn.observe(&plan));
    send(&conn.ensure(&plan, true));
    send(&conn.grant(&plan));
    send(&conn.drop_version(&plan));
    send(&conn.delete(&plan, false));
    send(&conn.check());
}

// ---------------------------------------------------------------------------------------
// Elasticsearch/OpenSearch

async fn es_get(base: &str, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{base}/{path}")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn alias_indices(base: &str, alias: &str) -> Vec<String> {
    let (status, body) = es_get(base, &format!("_alias/{alias}")).await;
    if status == 404 {
        return Vec::new();
    }
    let mut indices: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
    indices.sort();
    indices
}

fn es_plan(plan: &TargetPlan) -> &crate::elasticsearch::ElasticsearchPlan {
    match plan {
        TargetPlan::Elasticsearch(p) => p,
        other => panic!("not an Elasticsearch plan: {other:?}"),
    }
}

#[tokio::test]
async fn search_versions_are_built_beside_each_other_and_the_alias_moves() {
    for key in [OPENSEARCH, ELASTICSEARCH] {
        let base = service_url(key);
        let conn = connect(TargetType::Elasticsearch, key);
        let product = Product::new(TargetType::Elasticsearch);
        let v1 = product.plan(1, &output(&[]));
        let p1 = es_plan(&v1);

        let report = ensure(&conn, &v1, true).await;
        assert_eq!(report.created, strings(&["index", "alias"]), "{key}");
        assert!(!report.reader_created);
        assert_converged(&conn, &v1, true).await;
        assert_eq!(conn.grant(&v1).await.unwrap(), None);

        // Deleted by hand: index and alias come back.
        reqwest::Client::new()
            .delete(format!("{base}/{}", p1.index))
            .send()
            .await
            .unwrap();
        assert!(!conn.observe(&v1).await.unwrap().exists);
        assert_eq!(
            ensure(&conn, &v1, true).await.created,
            strings(&["index", "alias"])
        );

        // Additive field in place; a changed type is drift.
        let wider = product.plan(1, &output(&[("note", FieldType::String, true)]));
        assert_eq!(
            ensure(&conn, &wider, true).await.created,
            strings(&["field note"])
        );
        assert_converged(&conn, &wider, true).await;
        let retyped = product.plan(1, &output(&[("note", FieldType::Integer, true)]));
        let error = conn.ensure(&retyped, true).await.unwrap_err();
        assert!(error.is_drift(), "{error:?}");

        // Version 2 beside version 1, then published.
        let v2 = product.plan(2, &output(&[("note", FieldType::Integer, true)]));
        let p2 = es_plan(&v2);
        assert_eq!(ensure(&conn, &v2, false).await.created, strings(&["index"]));
        assert_converged(&conn, &v2, false).await;
        assert_eq!(alias_indices(&base, &p1.alias).await, [p1.index.as_str()]);
        assert!(!conn.observe(&v2).await.unwrap().published);
        assert_eq!(ensure(&conn, &v2, true).await.created, strings(&["alias"]));
        assert_converged(&conn, &v2, true).await;
        assert_eq!(alias_indices(&base, &p1.alias).await, [p2.index.as_str()]);
        assert!(conn.observe(&v2).await.unwrap().published);

        assert!(matches!(
            conn.drop_version(&v2).await,
            Err(TargetError::Published { .. })
        ));
        conn.drop_version(&v1).await.unwrap();
        conn.drop_version(&v1).await.unwrap();
        assert_eq!(es_get(&base, &p1.index).await.0, 404);
        assert_eq!(es_get(&base, &p2.index).await.0, 200);
        assert_eq!(alias_indices(&base, &p1.alias).await, [p2.index.as_str()]);

        conn.delete(&v2, false).await.unwrap();
        assert_eq!(es_get(&base, &p2.index).await.0, 404);
    }
}

// ---------------------------------------------------------------------------------------
// Redis

fn redis_plan(plan: &TargetPlan) -> &crate::redis::RedisPlan {
    match plan {
        TargetPlan::Redis(p) => p,
        other => panic!("not a Redis plan: {other:?}"),
    }
}

async fn redis_admin() -> redis::aio::MultiplexedConnection {
    redis::Client::open(service_url(REDIS))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("Redis is unreachable: run `make services`")
}

async fn redis_run<T: redis::FromRedisValue>(
    con: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> T {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(con).await.unwrap()
}

#[tokio::test]
async fn redis_versions_swap_by_pointer_and_old_keys_are_unlinked() {
    let mut admin = redis_admin().await;
    let conn = connect(TargetType::Redis, REDIS);
    let product = Product::new(TargetType::Redis);
    let v1 = product.plan(1, &output(&[]));
    let p1 = redis_plan(&v1);

    let report = ensure(&conn, &v1, true).await;
    assert_eq!(report.created, strings(&["user", "pointer"]));
    assert!(report.reader_created);
    assert_converged(&conn, &v1, true).await;
    let credentials = conn.grant(&v1).await.unwrap().unwrap();
    assert_eq!(credentials.user, p1.user);

    // A user removed by hand is recreated, and the caller told to grant again.
    redis_run::<u64>(&mut admin, &["ACL", "DELUSER", &p1.user]).await;
    assert!(!conn.observe(&v1).await.unwrap().reader_exists);
    let report = ensure(&conn, &v1, true).await;
    assert_eq!(report.created, strings(&["user"]));
    assert!(report.reader_created);
    assert_converged(&conn, &v1, true).await;

    // Version 2 (even with another encoding: Redis cannot observe drift) beside version 1.
    let json_options = json!({"type": "json"}).as_object().unwrap().clone();
    let v2 = Product {
        options: json_options,
        team: product.team.clone(),
        product: product.product.clone(),
        name: product.name.clone(),
        ..Product::new(TargetType::Redis)
    }
    .plan(2, &output(&[]));
    let p2 = redis_plan(&v2);
    for i in 0..25 {
        let k1 = p1.data_key(&format!("k{i}"));
        let k2 = p2.data_key(&format!("k{i}"));
        redis_run::<()>(&mut admin, &["HSET", &k1, "id", "x"]).await;
        redis_run::<()>(&mut admin, &["SET", &k2, "{}"]).await;
    }
    // The sink's applied offsets of both versions.
    redis_run::<()>(&mut admin, &["SET", &p1.applied_key(0), "24"]).await;
    redis_run::<()>(&mut admin, &["SET", &p2.applied_key(0), "24"]).await;
    // The user keeps the published version's rights until version 2 is published.
    assert_converged(&conn, &v2, false).await;
    assert_converged(&conn, &v1, true).await;
    let pointer: String = redis_run(&mut admin, &["GET", &p1.pointer_key]).await;
    assert_eq!(pointer, "v1");
    assert!(!conn.observe(&v2).await.unwrap().published);
    assert_eq!(
        ensure(&conn, &v2, true).await.created,
        strings(&["user rights", "pointer"]),
        "json reader commands"
    );
    assert_converged(&conn, &v2, true).await;
    let pointer: String = redis_run(&mut admin, &["GET", &p1.pointer_key]).await;
    assert_eq!(pointer, "v2");

    assert!(matches!(
        conn.drop_version(&v2).await,
        Err(TargetError::Published { .. })
    ));
    conn.drop_version(&v1).await.unwrap();
    let before = conn.mutations();
    conn.drop_version(&v1).await.unwrap();
    assert_eq!(conn.mutations(), before, "nothing left to unlink");
    let (v1_left, v2_left): (u64, u64) = (
        redis_run(
            &mut admin,
            &[
                "EXISTS",
                &p1.data_key("k0"),
                &p1.data_key("k24"),
                &p1.applied_key(0),
            ],
        )
        .await,
        redis_run(
            &mut admin,
            &[
                "EXISTS",
                &p2.data_key("k0"),
                &p2.data_key("k24"),
                &p2.applied_key(0),
            ],
        )
        .await,
    );
    assert_eq!((v1_left, v2_left), (0, 3));
    let pointer: String = redis_run(&mut admin, &["GET", &p1.pointer_key]).await;
    assert_eq!(pointer, "v2");
    assert!(conn.observe(&v2).await.unwrap().reader_exists);

    conn.delete(&v2, false).await.unwrap();
    let left: u64 = redis_run(&mut admin, &["EXISTS", &p2.data_key("k0"), &p2.pointer_key]).await;
    assert_eq!(left, 0);
    assert!(!conn.observe(&v2).await.unwrap().reader_exists);
}

#[tokio::test]
async fn postgres_database_isolation_converges_and_then_sends_nothing() {
    let admin = pg_admin().await;
    let conn = connect(TargetType::Postgres, PG);
    let product = Product {
        isolation: Isolation::Database,
        ..Product::new(TargetType::Postgres)
    };
    let plan = product.plan(1, &output(&[]));
    let p = pg_plan(&plan);
    let database = p.database.clone().unwrap();

    let report = ensure(&conn, &plan, true).await;
    assert_eq!(
        report.created,
        strings(&[
            "database",
            "public connect revoked",
            "table",
            "role",
            "connect grant",
            "usage grant",
            "view",
            "select grant"
        ])
    );
    assert_converged(&conn, &plan, true).await;
    let seen = conn.observe(&plan).await.unwrap();
    assert!(
        seen.exists && seen.published && seen.reader_exists,
        "{seen:?}"
    );

    conn.delete(&plan, false).await.unwrap();
    assert!(!conn.observe(&plan).await.unwrap().reader_exists);
    drop(conn);
    pg_exec(
        &admin,
        format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", q(&database)),
    )
    .await;
    pg_exec(&admin, format!("DROP ROLE IF EXISTS {}", q(&p.role))).await;
}
