//! The controller as an operator runs it, against the real services of `make services`:
//! leader election between replicas on one PostgreSQL metadata database, the periodic
//! check of the registered target clusters (reachability, privileges, no secret in any
//! message), and hostile names refused at the API while legal names that still need
//! quoting are provisioned exactly as named.
//!
//! Every test has its own team, cluster and target names (and the election test its own
//! metadata database), so they run in parallel with the other tests on the shared services.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::Consumer;
use serde_json::{Value, json};
use sluice_api::AppState;
use sluice_api::auth::Role;
use sluice_controller::{Controller, ControllerConfig};
use sluice_store::{Backend, SecretBox, Store};
use sluice_tests::{TestNamespace, sql_with_ident};
use sqlx::PgPool;
use tower::ServiceExt;

use crate::controller::{Cluster, World};
use crate::store::TestDb;

// ---------------------------------------------------------------------------------------------
// Helpers.

/// A unique lowercase suffix for names on the shared services.
fn suffix(ns: &TestNamespace) -> String {
    ns.id().rsplit('_').next().unwrap()[..10].to_owned()
}

/// A random alphanumeric password.
fn password() -> String {
    format!(
        "pw{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

async fn admin_pool() -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&sluice_tests::services().postgres_url)
        .await
        .unwrap()
}

fn condition<'a>(object: &'a Value, kind: &str) -> &'a Value {
    object["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

/// The JSON pointers of a problem+json answer's `errors`.
fn pointers(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| e["pointer"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `text` as one URL path segment: everything but ASCII letters and digits percent-encoded.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Waits up to `limit` for `check` to hold.
async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Removes a team's PostgreSQL schema and reader roles and its `sluice.<team>.` topics.
async fn drop_team_objects(ns: &TestNamespace, team: &str) {
    let pool = admin_pool().await;
    let _ = sqlx::query(sql_with_ident("DROP SCHEMA IF EXISTS ", team, " CASCADE"))
        .execute(&pool)
        .await;
    let roles: Vec<String> =
        sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1")
            .bind(format!("sluice_{team}_%"))
            .fetch_all(&pool)
            .await
            .unwrap();
    for role in roles {
        let _ = sqlx::query(sql_with_ident("DROP OWNED BY ", &role, ""))
            .execute(&pool)
            .await;
        let _ = sqlx::query(sql_with_ident("DROP ROLE ", &role, ""))
            .execute(&pool)
            .await;
    }
    pool.close().await;
    let consumer: rdkafka::consumer::BaseConsumer = ns.kafka_config().create().unwrap();
    let prefix = format!("sluice.{team}.");
    let topics = tokio::task::spawn_blocking(move || {
        consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .unwrap()
            .topics()
            .iter()
            .map(|t| t.name().to_owned())
            .filter(|t| t.starts_with(&prefix))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    if !topics.is_empty() {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let _ = ns
            .kafka_admin()
            .delete_topics(&names, &AdminOptions::new())
            .await;
    }
    ns.cleanup().await;
}

/// The real API router over a given store (the metadata store of the election test is
/// PostgreSQL, which [`crate::api::TestApi`] does not make).
struct StoreApi {
    router: axum::Router,
    store: Store,
}

impl StoreApi {
    async fn new(store: Store, secrets: SecretBox) -> StoreApi {
        sluice_api::bootstrap_admin(
            &store,
            Some(&sluice_api::Secret::new(crate::api::ADMIN_TOKEN)),
        )
        .await
        .unwrap();
        StoreApi {
            router: sluice_api::router(AppState::new(store.clone()).with_secrets(secrets)),
            store,
        }
    }

    async fn token(&self, role: Role, team: &str) -> String {
        let token = format!("slc_test-{role}-{team}");
        self.store
            .create_token(
                sluice_store::NewToken {
                    name: format!("{role}-{team}"),
                    team: team.to_owned(),
                    role: role.as_str().to_owned(),
                    hash: sluice_api::auth::tokens::hash(&token),
                    expires_at: None,
                },
                &sluice_store::Audit::new("test", ""),
            )
            .await
            .unwrap();
        token
    }

    async fn send(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, body)
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Leader election.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn try_lead_is_exclusive_on_postgres_and_always_granted_on_sqlite() {
    let db = TestDb::new(Backend::Postgres).await;
    let (a, b) = (db.connect().await, db.connect().await);
    let first = a
        .try_lead()
        .await
        .unwrap()
        .expect("the first campaign wins");
    assert!(b.try_lead().await.unwrap().is_none(), "two leaders at once");
    // Not even another connection of the leader's own store: the lock is per connection.
    assert!(a.try_lead().await.unwrap().is_none(), "two leaders at once");
    // Dropping the leadership closes its connection; the server then frees the lock (it
    // notices the closed socket asynchronously, so allow it a moment).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    let second = loop {
        if let Some(lead) = b.try_lead().await.unwrap() {
            break lead;
        }
        assert!(
            Instant::now() < deadline,
            "the lock outlived its leadership"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(a.try_lead().await.unwrap().is_none());
    drop(second);
    a.close().await;
    b.close().await;

    // SQLite is a file owned by one process (the store opens it in WAL mode for that one
    // server): there is no shared server to hold a lock on and no second replica to fend
    // off, so `try_lead` grants leadership every time, even twice at once.
    let db = TestDb::new(Backend::Sqlite).await;
    let (a, b) = (db.connect().await, db.connect().await);
    let one = a.try_lead().await.unwrap();
    let two = b.try_lead().await.unwrap();
    assert!(one.is_some() && two.is_some());
    let mut one = one.unwrap();
    assert!(one.holds().await);
    drop((one, two));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_two_controllers_leads_and_the_other_takes_over_when_it_dies() {
    let ns = TestNamespace::new("ops_lead");
    let sfx = suffix(&ns);
    let team = format!("l{sfx}");
    let db = TestDb::new(Backend::Postgres).await;
    let secrets = SecretBox::ephemeral();
    let api = StoreApi::new(db.connect().await, secrets.clone()).await;

    let mut config = ControllerConfig::new(ns.services().kafka_bootstrap.clone());
    config.resync = Duration::from_millis(300);
    config.max_backoff = Duration::from_millis(500);
    config.cluster_check = Duration::from_secs(60);
    let controllers = [
        Controller::new(db.connect().await, secrets.clone(), config.clone()).unwrap(),
        Controller::new(db.connect().await, secrets.clone(), config).unwrap(),
    ];
    let metrics = controllers.each_ref().map(Controller::metrics);
    let mut stops = Vec::new();
    let mut tasks = Vec::new();
    for controller in &controllers {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(Some(stop));
        tasks.push(Some(tokio::spawn(controller.clone().run(async move {
            let _ = stopped.await;
        }))));
    }
    drop(controllers);

    // Exactly one leads, and stays the only one.
    assert!(
        eventually(Duration::from_secs(5), || metrics
            .iter()
            .any(|m| m.snapshot().leader))
        .await,
        "nobody leads"
    );
    let leader = usize::from(!metrics[0].snapshot().leader);
    let follower = 1 - leader;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(metrics[leader].snapshot().leader);
    assert!(!metrics[follower].snapshot().leader, "two leaders");

    // A product to reconcile: only the leader works on it.
    let admin = crate::api::ADMIN_TOKEN;
    let requester = api.token(Role::Requester, &team).await;
    let approver = api.token(Role::Approver, "platform").await;
    let topic = ns.create_topic("orders", 1).await.unwrap();
    let dataset = format!("ds{sfx}.orders");
    let cluster = format!("pg-{sfx}");
    let docs = [
        json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "Dataset",
            "metadata": {"name": dataset, "owner": "team-shop"},
            "spec": {"topic": topic, "kind": "stream", "key": "id", "classification": "internal",
                     "compatibility": "BACKWARD",
                     "schema": {"type": "object", "required": ["id", "amount"], "properties": {
                         "id": {"type": "string"}, "amount": {"type": "number"}}}}
        }),
        json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "TargetCluster",
            "metadata": {"name": cluster},
            "spec": {"type": "postgres", "url": ns.services().postgres_url,
                     "isolation": "schema", "allowedTeams": ["*"]}
        }),
    ];
    for doc in &docs {
        let (status, body) = api
            .send(admin, Method::PUT, &crate::api::path_of(doc), doc)
            .await;
        assert!(status.is_success(), "{body}");
    }
    let product = json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "DataProduct",
        "metadata": {"name": "led", "team": team},
        "spec": {
            "sources": [{"name": "o", "dataset": dataset, "from": "earliest"}],
            "key": "o.id",
            "fields": {"order_id": "o.id", "amount": "o.amount"},
            "target": {"cluster": cluster, "name": "led", "mode": "upsert", "options": {}},
            "deletionPolicy": "Delete"
        }
    });
    let path = crate::api::path_of(&product);
    let (status, body) = api.send(&requester, Method::PUT, &path, &product).await;
    assert!(status.is_success(), "{body}");
    let (status, body) = api
        .send(
            &approver,
            Method::POST,
            &format!("{path}/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let before = metrics[leader].snapshot().reconciles;
    assert!(
        eventually(Duration::from_secs(10), || metrics[leader]
            .snapshot()
            .reconciles
            >= before + 2)
        .await,
        "the leader does not reconcile: {:?}",
        metrics[leader].snapshot()
    );
    let idle = metrics[follower].snapshot();
    assert_eq!((idle.passes, idle.reconciles), (0, 0), "the follower acted");

    // The leader dies: its task is aborted, which drops its `Leadership` and with it the
    // lock's connection. The follower takes over within its campaign interval.
    let dead = tasks[leader].take().unwrap();
    dead.abort();
    assert!(dead.await.unwrap_err().is_cancelled());
    assert!(
        !metrics[leader].snapshot().leader,
        "a dead controller does not show as leader"
    );
    let passes = metrics[follower].snapshot().passes;
    assert!(
        eventually(Duration::from_secs(5), || {
            let now = metrics[follower].snapshot();
            now.leader && now.passes > passes && now.reconciles > 0
        })
        .await,
        "no takeover: {:?}",
        metrics[follower].snapshot()
    );
    let (status, body) = api.send(admin, Method::GET, &path, &Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"]["target"]["version"], 1, "{body:#}");

    // Graceful stop of the survivor: it steps down.
    stops[follower].take().unwrap().send(()).unwrap();
    tasks[follower].take().unwrap().await.unwrap();
    assert!(!metrics[follower].snapshot().leader);
    api.store.close().await;
    drop_team_objects(&ns, &team).await;
}

// ---------------------------------------------------------------------------------------------
// 2. Cluster checks.

/// A PostgreSQL login role without CREATEROLE, dropped when the guard goes.
struct LowRole {
    name: String,
    password: String,
}

impl LowRole {
    async fn create(name: String) -> LowRole {
        let password = password();
        let pool = admin_pool().await;
        sqlx::query(sql_with_ident(
            "CREATE ROLE ",
            &name,
            &format!(" LOGIN NOCREATEROLE NOSUPERUSER PASSWORD '{password}'"),
        ))
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
        LowRole { name, password }
    }
}

impl Drop for LowRole {
    fn drop(&mut self) {
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let pool = admin_pool().await;
                // Its sessions (the controller's pool) must go before the role can.
                let _ = sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                )
                .bind(&name)
                .execute(&pool)
                .await;
                let result = sqlx::query(sql_with_ident("DROP ROLE IF EXISTS ", &name, ""))
                    .execute(&pool)
                    .await;
                pool.close().await;
                result.map(|_| ())
            })
        });
        match dropped.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("dropping test role {}: {e}", self.name),
            Err(_) => eprintln!("dropping test role {} panicked", self.name),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_checks_report_reachability_and_privileges_without_secrets() {
    let world = World::new("ops_check").await;
    let secret = "hunter2secret";
    let down = format!("pgdown-{}", world.suffix);
    let low = format!("pglow-{}", world.suffix);
    let role = LowRole::create(format!("ops_low_{}", world.suffix)).await;
    let host = world.ns.services().postgres_url.rsplit('@').next().unwrap();
    let host = host.split('/').next().unwrap();
    for (name, url) in [
        (down.clone(), format!("postgres://u:{secret}@127.0.0.1:1/x")),
        (
            low.clone(),
            format!("postgres://{}:{}@{host}/postgres", role.name, role.password),
        ),
    ] {
        let doc = json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "TargetCluster",
            "metadata": {"name": name},
            "spec": {"type": "postgres", "url": url, "isolation": "schema", "allowedTeams": ["*"]}
        });
        let answer = world.api.put_json(&crate::api::path_of(&doc), &doc).await;
        assert!(answer.status.is_success(), "{}", answer.body);
        assert!(!answer.body.to_string().contains(secret), "{}", answer.body);
    }

    world.controller.check_clusters().await;

    // The real clusters: reachable, and Sluice's account may do its work.
    for name in [
        world.cluster(Cluster::Postgres),
        world.cluster(Cluster::Redis),
        world.cluster(Cluster::Search),
    ] {
        let answer = world
            .api
            .get(&format!("/api/v1/targetclusters/{name}"))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        for kind in ["Reachable", "Privileged"] {
            assert_eq!(
                condition(&answer.body, kind)["status"],
                "True",
                "{name} {kind}: {:#}",
                answer.body
            );
        }
    }

    // Unreachable: the message names the host, never the password.
    let answer = world
        .api
        .get(&format!("/api/v1/targetclusters/{down}"))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let reachable = condition(&answer.body, "Reachable");
    assert_eq!(reachable["status"], "False", "{:#}", answer.body);
    assert_eq!(reachable["reason"], "Unreachable", "{:#}", answer.body);
    let message = reachable["message"].as_str().unwrap();
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert_ne!(condition(&answer.body, "Privileged")["status"], "True");
    assert!(
        !answer.body.to_string().contains(secret),
        "{:#}",
        answer.body
    );

    // Reachable, but the role may not create roles (nor schemas in the database).
    let answer = world
        .api
        .get(&format!("/api/v1/targetclusters/{low}"))
        .await;
    assert_eq!(
        condition(&answer.body, "Reachable")["status"],
        "True",
        "{:#}",
        answer.body
    );
    let privileged = condition(&answer.body, "Privileged");
    assert_eq!(privileged["status"], "False", "{:#}", answer.body);
    assert_eq!(privileged["reason"], "MissingPrivileges");
    let message = privileged["message"].as_str().unwrap();
    assert!(message.contains("CREATEROLE"), "{message}");
    assert!(message.contains(&role.name), "{message}");
    assert!(
        !answer.body.to_string().contains(&role.password),
        "{message}"
    );

    // Neither password is anywhere in the audit log, whose entries carry the status diffs.
    let export = world.api.get("/api/v1/audit/export").await;
    assert_eq!(export.status, StatusCode::OK);
    let text = export.body.as_str().unwrap();
    assert!(text.contains(&down), "the check is audited: {text}");
    assert!(!text.contains(secret));
    assert!(!text.contains(&role.password));
    let listed = world.api.get("/api/v1/targetclusters").await;
    assert!(!listed.body.to_string().contains(secret));

    world.cleanup().await;
    drop(world);
    drop(role);
}

// ---------------------------------------------------------------------------------------------
// 3. Hostile names.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_names_are_refused_and_legal_names_are_quoted_end_to_end() {
    let world = World::new("ops_names").await;
    let fields = json!({"order_id": "o.id", "amount": "o.amount"});
    let put = |doc: Value| {
        let world = &world;
        async move {
            world
                .api
                .send_as(
                    Some(&world.requester),
                    Method::PUT,
                    &crate::api::path_of(&doc),
                    Some("application/json"),
                    doc.to_string().into_bytes(),
                )
                .await
        }
    };

    let sql = r#"orders"; DROP TABLE x; --"#;
    let json_breaker = r#"a","b":"c"#;
    let redis = "x* \r\nFLUSHALL";
    let long = "a".repeat(49);
    let mut cases: Vec<(&str, Value, String)> = Vec::new();
    for (label, cluster, target) in [
        ("sql", Cluster::Postgres, sql),
        ("json", Cluster::Postgres, json_breaker),
        ("redis", Cluster::Redis, redis),
        ("redis-sql", Cluster::Redis, sql),
        ("search", Cluster::Search, redis),
        ("long", Cluster::Postgres, long.as_str()),
    ] {
        let mut doc = world.product(&format!("bad-{label}"), cluster, fields.clone(), "Delete");
        doc["spec"]["target"]["name"] = json!(target);
        cases.push((label, doc, "#/spec/target/name".to_owned()));
    }
    for (label, field) in [
        ("fsql", sql),
        ("fjson", json_breaker),
        ("fredis", redis),
        ("flong", &"f".repeat(64)),
    ] {
        let mut doc = world.product(
            &format!("bad-{label}"),
            Cluster::Postgres,
            fields.clone(),
            "Delete",
        );
        doc["spec"]["fields"][field] = json!("o.status");
        let escaped = field.replace('~', "~0").replace('/', "~1");
        cases.push((label, doc, format!("#/spec/fields/{escaped}")));
    }
    for (label, doc, pointer) in &cases {
        let answer = put(doc.clone()).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{label}: {}",
            answer.body
        );
        assert_eq!(
            answer.headers.get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json"
        );
        assert_eq!(pointers(&answer.body), [pointer.as_str()], "{label}");
    }
    // The team inside the document must be the path's, and a label.
    let mut doc = world.product("bad-team", Cluster::Postgres, fields.clone(), "Delete");
    doc["metadata"]["team"] = json!(sql);
    let answer = world
        .api
        .send_as(
            Some(&world.requester),
            Method::PUT,
            &format!("/api/v1/products/{}/bad-team", world.team),
            Some("application/json"),
            doc.to_string().into_bytes(),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.body
    );
    assert_eq!(pointers(&answer.body), ["#/metadata/team"]);
    // So must the product's name (which becomes part of topic and role names), even when
    // the path carries it percent-encoded.
    let mut doc = world.product("bad-name", Cluster::Postgres, fields.clone(), "Delete");
    doc["metadata"]["name"] = json!(sql);
    let answer = world
        .api
        .send_as(
            Some(&world.requester),
            Method::PUT,
            &format!("/api/v1/products/{}/{}", world.team, percent_encode(sql)),
            Some("application/json"),
            doc.to_string().into_bytes(),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.body
    );
    assert_eq!(pointers(&answer.body), ["#/metadata/name"]);
    // Nothing was stored.
    let listed = world
        .api
        .get(&format!("/api/v1/products/{}", world.team))
        .await;
    assert_eq!(listed.body["items"], json!([]), "{:#}", listed.body);

    // The second line: a legal target name that is a reserved word, and columns that are
    // reserved words too, need double quotes in every statement the controller sends.
    let quoted = json!({"select": "o.id", "from": "o.amount", "user": "o.status"});
    let mut doc = world.product("quoted-view", Cluster::Postgres, quoted, "Delete");
    doc["spec"]["key"] = json!("o.id");
    doc["spec"]["target"]["name"] = json!("select");
    world.submit(&doc).await;
    let report = world.controller.reconcile_all().await.unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    let status = world.status("quoted-view").await;
    assert_eq!(
        condition(&json!({"status": status}), "TargetReady")["status"],
        "True",
        "{status:#}"
    );
    let pool = admin_pool().await;
    let relations: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, c.relkind::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'v') ORDER BY 1",
    )
    .bind(&world.team)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        relations,
        vec![
            ("select".to_owned(), "v".to_owned()),
            ("select_v1".to_owned(), "r".to_owned())
        ]
    );
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = 'select' ORDER BY ordinal_position",
    )
    .bind(&world.team)
    .fetch_all(&pool)
    .await
    .unwrap();
    for column in ["select", "from", "user"] {
        assert!(columns.contains(&column.to_owned()), "{columns:?}");
    }
    // Nothing anywhere is named after an injected remainder.
    let injected: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class \
         WHERE relname LIKE '%DROP%' OR relname LIKE 'orders\"%' OR relname LIKE '%FLUSHALL%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(injected, Vec::<String>::new());
    // The reader reads the view by its exact, quoted name.
    let (user, pw) = world.credentials("quoted-view").await;
    let options: sqlx::postgres::PgConnectOptions =
        world.ns.services().postgres_url.parse().unwrap();
    let mut reader = <sqlx::PgConnection as sqlx::Connection>::connect_with(
        &options.username(&user).password(&pw),
    )
    .await
    .unwrap();
    let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {}.\"select\"",
        sluice_tests::quote_pg_ident(&world.team)
    )))
    .fetch_one(&mut reader)
    .await
    .unwrap();
    assert_eq!(rows, 0);
    drop(reader);
    pool.close().await;

    assert_eq!(world.delete("quoted-view").await, StatusCode::ACCEPTED);
    world.reconcile().await;
    world.cleanup().await;
}
