//! The reconciling controller against the real services of `make services`: products
//! applied and approved through the API are provisioned into Kafka, PostgreSQL,
//! OpenSearch and Redis exactly as planned, with working least-privilege credentials;
//! objects removed by hand come back; a resync of converged products issues no mutating
//! call; shape changes go online or through a version swap; deletion honours
//! `deletionPolicy`; an unreachable target makes a product Degraded until it returns.
//!
//! Every test has its own team, cluster names, dataset and target names, so they run in
//! parallel on the shared services. Stream jobs are not part of the controller: where a
//! test needs a backfilled version it reports the job's progress through the store, as a
//! worker does.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::Consumer;
use serde_json::{Value, json};
use sluice_api::AppState;
use sluice_api::auth::Role;
use sluice_controller::{Controller, ControllerConfig};
use sluice_store::{ObjectKey, SecretBox};
use sluice_tests::TestNamespace;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};

use crate::api::TestApi;

/// One test's world: an API and a controller over one store, a source topic and dataset,
/// and the three shared clusters registered under names of its own.
pub(crate) struct World {
    pub api: TestApi,
    pub controller: Controller,
    pub ns: TestNamespace,
    pub secrets: SecretBox,
    /// Unique per test: the team, and part of every name.
    pub team: String,
    pub suffix: String,
    /// The team's requester token.
    pub requester: String,
    approver: String,
}

/// How long a stopping controller or job supervisor may take: its jobs' Kafka calls are
/// bounded by 30 s each.
const STOP_LIMIT: std::time::Duration = std::time::Duration::from_secs(90);

/// A controller loop or job supervisor of a world, running until stopped.
pub(crate) struct Background {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Background {
    /// Runs `work` until [`Background::stop`].
    fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(
        work: impl FnOnce(tokio::sync::oneshot::Receiver<()>) -> F,
    ) -> Background {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        Background {
            stop,
            task: tokio::spawn(work(stopped)),
        }
    }

    /// Stops it and waits until it has; panics if it has not within [`STOP_LIMIT`] (a
    /// worker that cannot stop is a failure, not a reason for the test to hang).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        match tokio::time::timeout(STOP_LIMIT, self.task).await {
            Ok(done) => done.unwrap(),
            Err(_) => panic!("the controller or job supervisor did not stop within {STOP_LIMIT:?}"),
        }
    }
}

/// The target clusters a world registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cluster {
    Postgres,
    Search,
    Redis,
}

impl World {
    pub async fn new(label: &str) -> World {
        World::with_redis(label, None).await
    }

    /// A world whose Redis cluster is at `redis_url` instead of the shared one.
    pub async fn with_redis(label: &str, redis_url: Option<String>) -> World {
        World::build(TestNamespace::new(label), redis_url, false).await
    }

    /// A world whose API reads Kafka (plans with estimates, `verify`).
    pub async fn with_kafka(label: &str) -> World {
        World::build(TestNamespace::new(label), None, true).await
    }

    /// A world on `services` instead of the shared ones — a test's own Kafka broker
    /// (controller, jobs and the source topic use it) or its own target clusters.
    pub async fn with_services(label: &str, services: sluice_tests::Services) -> World {
        World::build(TestNamespace::with_services(label, services), None, false).await
    }

    async fn build(ns: TestNamespace, redis_url: Option<String>, kafka: bool) -> World {
        sluice_tests::log_from_env();
        let suffix = ns.id().rsplit('_').next().unwrap()[..10].to_owned();
        let team = format!("t{suffix}");
        let secrets = SecretBox::ephemeral();
        let sealing = secrets.clone();
        let bootstrap = kafka.then(|| ns.services().kafka_bootstrap.clone());
        let api = TestApi::with_state(move |store| {
            let state = AppState::new(store).with_secrets(sealing);
            match bootstrap {
                Some(b) => state.with_kafka(std::sync::Arc::new(
                    sluice_provisioners::kafka::KafkaProvisioner::new(&b, 1).unwrap(),
                )),
                None => state,
            }
        })
        .await;
        let mut config = ControllerConfig::new(ns.services().kafka_bootstrap.clone());
        config.max_backoff = Duration::from_millis(500);
        config.resync = Duration::from_millis(500);
        config.cluster_check = Duration::from_millis(500);
        let controller = Controller::new(api.store.clone(), secrets.clone(), config).unwrap();
        let requester = api.token(Role::Requester, &team).await;
        let approver = api.token(Role::Approver, "platform").await;
        let world = World {
            api,
            controller,
            secrets,
            team,
            suffix,
            requester,
            approver,
            ns,
        };
        let topic = world.ns.create_topic("orders", 3).await.unwrap();
        let dataset = json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "Dataset",
            "metadata": {"name": world.dataset(), "owner": "team-shop"},
            "spec": {
                "topic": topic, "kind": "stream", "key": "id", "classification": "internal",
                "compatibility": "BACKWARD",
                "schema": {"type": "object", "required": ["id", "amount"], "properties": {
                    "id": {"type": "string"}, "amount": {"type": "number"},
                    "status": {"type": "string"}, "note": {"type": "string"},
                    "qty": {"type": "integer"}}}
            }
        });
        world.put_admin(&dataset).await;
        let services = world.ns.services();
        let redis = redis_url.unwrap_or_else(|| services.redis_url.clone());
        for (cluster, kind, url, isolation) in [
            (
                Cluster::Postgres,
                "postgres",
                services.postgres_url.clone(),
                "schema",
            ),
            (
                Cluster::Search,
                "elasticsearch",
                services.opensearch_url.clone(),
                "index",
            ),
            (Cluster::Redis, "redis", redis, "acl-prefix"),
        ] {
            let doc = json!({
                "apiVersion": "sluice.dev/v1alpha1", "kind": "TargetCluster",
                "metadata": {"name": world.cluster(cluster)},
                "spec": {"type": kind, "url": url, "isolation": isolation, "allowedTeams": ["*"]}
            });
            world.put_admin(&doc).await;
        }
        world
    }

    pub fn dataset(&self) -> String {
        format!("ds{}.orders", self.suffix)
    }

    pub fn cluster(&self, cluster: Cluster) -> String {
        let kind = match cluster {
            Cluster::Postgres => "pg",
            Cluster::Search => "search",
            Cluster::Redis => "redis",
        };
        format!("{kind}-{}", self.suffix)
    }

    /// The target name of product `name` (unique on the shared clusters).
    pub fn target_name(&self, name: &str) -> String {
        format!("{}_{}", name.replace('-', "_"), self.suffix)
    }

    /// A product reading the dataset into `cluster`, with `fields` (name → expression).
    pub fn product(&self, name: &str, cluster: Cluster, fields: Value, policy: &str) -> Value {
        let options = match cluster {
            Cluster::Search => json!({"shards": 1, "replicas": 0}),
            Cluster::Redis => json!({"type": "hash"}),
            Cluster::Postgres => json!({}),
        };
        json!({
            "apiVersion": "sluice.dev/v1alpha1", "kind": "DataProduct",
            "metadata": {"name": name, "team": self.team},
            "spec": {
                "sources": [{"name": "o", "dataset": self.dataset(), "from": "earliest"}],
                "key": "o.id",
                "fields": fields,
                "target": {"cluster": self.cluster(cluster), "name": self.target_name(name),
                           "mode": "upsert", "options": options},
                "deletionPolicy": policy
            }
        })
    }

    pub fn key(&self, name: &str) -> ObjectKey {
        ObjectKey::data_product(&self.team, name)
    }

    /// The last report of each slice of the job of version 1 of product `name`, by slice,
    /// as the job wrote it (the product's status shows it only at the controller's next
    /// pass).
    pub async fn job_reports(&self, name: &str) -> Vec<(u32, Value)> {
        self.api
            .store
            .job_reports(&self.key(name), 1)
            .await
            .unwrap()
    }

    pub async fn put_admin(&self, doc: &Value) {
        let answer = self.api.put_json(&crate::api::path_of(doc), doc).await;
        assert!(answer.status.is_success(), "{}", answer.body);
    }

    /// `PUT`s `doc` as the team's requester.
    pub async fn apply(&self, doc: &Value) -> crate::api::Answer {
        self.api
            .send_as(
                Some(&self.requester),
                Method::PUT,
                &crate::api::path_of(doc),
                Some("application/json"),
                doc.to_string().into_bytes(),
            )
            .await
    }

    /// Writes `name`'s status every 2 ms, as a running job reports its progress, until `stop`
    /// is set or the product's deletion is requested; answers how many writes landed.
    pub fn report_progress(
        &self,
        name: &str,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> tokio::task::JoinHandle<u32> {
        let store = self.api.store.clone();
        let key = self.key(name);
        tokio::spawn(async move {
            let mut writes = 0u32;
            for lag in 0u64.. {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let current = store.get(&key).await.unwrap().unwrap();
                let mut status = current.status.clone().unwrap();
                if !status["deletionRequested"].is_null() {
                    break;
                }
                status["lagMs"] = json!(lag);
                let audit = sluice_store::Audit::new("controller", "progress");
                match store
                    .set_status(&key, status, Some(current.resource_version), &audit)
                    .await
                {
                    Ok(_) => writes += 1,
                    Err(e) if e.is_conflict() => {}
                    Err(e) => panic!("{e}"),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            writes
        })
    }

    /// Applies `doc` as the team's requester and approves it as the platform.
    pub async fn submit(&self, doc: &Value) {
        let path = crate::api::path_of(doc);
        let applied = self.apply(doc).await;
        assert!(applied.status.is_success(), "{}", applied.body);
        if applied.body["status"]["approvedGeneration"] == applied.body["metadata"]["generation"] {
            return;
        }
        let approved = self
            .api
            .send_as(
                Some(&self.approver),
                Method::POST,
                &format!("{path}/approve"),
                Some("application/json"),
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    }

    pub async fn status(&self, name: &str) -> Value {
        let answer = self
            .api
            .get(&format!("/api/v1/products/{}/{name}", self.team))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["status"].clone()
    }

    /// The plan of the stored spec.
    pub async fn plan(&self, name: &str) -> Value {
        let answer = self
            .api
            .get(&format!("/api/v1/products/{}/{name}/plan", self.team))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body
    }

    /// Runs the controller's loop in the background (with the world's short timings).
    pub fn run_controller(&self) -> Background {
        let controller = self.controller.clone();
        Background::spawn(|stopped| {
            controller.run(async move {
                let _ = stopped.await;
            })
        })
    }

    /// Runs the stream jobs in the background.
    pub fn run_jobs(&self) -> Background {
        let controller = self.controller.clone();
        Background::spawn(|stopped| {
            controller.run_jobs(async move {
                let _ = stopped.await;
            })
        })
    }

    /// Runs the jobs, as [`World::run_jobs`], with their lookup tables kept as `state`
    /// says.
    pub fn run_jobs_with_state(&self, state: sluice_controller::StateSettings) -> Background {
        self.run_jobs_with(|config| config.job_state = state)
    }

    /// Where [`World::run_jobs_on_disk`] keeps the jobs' state stores.
    pub fn state_dir(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("sluice-state-{}", self.suffix))
    }

    /// Runs the jobs as [`World::run_jobs`] does, or, when `on_disk`, with a state memory
    /// budget of 1 KiB, so every state store a job has moves to disk (in
    /// [`World::state_dir`]) at once.
    pub fn run_jobs_on_disk(&self, on_disk: bool) -> Background {
        if on_disk {
            self.run_jobs_with_state(sluice_controller::StateSettings {
                dir: self.state_dir(),
                memory_bytes: 1024,
            })
        } else {
            self.run_jobs()
        }
    }

    /// The file names in [`World::state_dir`], sorted.
    pub fn state_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.state_dir())
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Runs the jobs, as [`World::run_jobs`], in a process whose settings `change` sets.
    pub fn run_jobs_with(&self, change: impl FnOnce(&mut ControllerConfig)) -> Background {
        let mut config = ControllerConfig::new(self.ns.services().kafka_bootstrap.clone());
        change(&mut config);
        let controller =
            Controller::new(self.api.store.clone(), self.secrets.clone(), config).unwrap();
        Background::spawn(|stopped| {
            controller.run_jobs(async move {
                let _ = stopped.await;
            })
        })
    }

    pub async fn reconcile(&self) {
        self.controller.reconcile_all().await.unwrap();
    }

    /// The product's reader credentials, unsealed.
    pub async fn credentials(&self, name: &str) -> (String, String) {
        let stored = self
            .api
            .store
            .credentials(&self.key(name))
            .await
            .unwrap()
            .expect("credentials stored");
        (
            stored.username,
            self.secrets.open(&stored.sealed_password).unwrap(),
        )
    }

    /// Reports the job of `version` as backfilled, as a worker would.
    pub async fn report_backfilled(&self, name: &str, version: u32) {
        self.api
            .store
            .put_job_report(
                &self.key(name),
                version,
                0,
                &json!({"running": true, "backfillComplete": true}),
            )
            .await
            .unwrap();
    }

    pub async fn topics(&self) -> Vec<String> {
        let consumer: rdkafka::consumer::BaseConsumer = self.ns.kafka_config().create().unwrap();
        let metadata = tokio::task::spawn_blocking(move || {
            consumer
                .fetch_metadata(None, Duration::from_secs(10))
                .unwrap()
                .topics()
                .iter()
                .map(|t| t.name().to_owned())
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
        let prefix = format!("sluice.{}.", self.team);
        let mut mine: Vec<String> = metadata
            .into_iter()
            .filter(|t| t.starts_with(&prefix))
            .collect();
        mine.sort();
        mine
    }

    pub async fn delete(&self, name: &str) -> StatusCode {
        self.api
            .send(
                Method::DELETE,
                &format!("/api/v1/products/{}/{name}", self.team),
                None,
                Vec::new(),
            )
            .await
            .status
    }

    /// Removes the test's topics and PostgreSQL schema and roles, whatever the test left.
    pub async fn cleanup(&self) {
        sluice_tests::bench::remove_team(&self.ns, &self.team).await;
    }
}

/// `before` + `"schema"."name"` (both quoted) + `after`.
fn qualified(before: &str, schema: &str, name: &str, after: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!(
        "{before}{}.{}{after}",
        sluice_tests::quote_pg_ident(schema),
        sluice_tests::quote_pg_ident(name)
    ))
}

fn condition<'a>(status: &'a Value, kind: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

fn is_true(status: &Value, kind: &str) -> bool {
    condition(status, kind)["status"] == "True"
}

fn basic_fields() -> Value {
    json!({"order_id": "o.id", "amount": "o.amount", "status": "o.status"})
}

/// Connects to PostgreSQL as `user` with `password`.
async fn pg_as(world: &World, user: &str, password: &str) -> PgConnection {
    let admin: sqlx::postgres::PgConnectOptions = world.ns.services().postgres_url.parse().unwrap();
    let options = admin.username(user).password(password);
    PgConnection::connect_with(&options).await.unwrap()
}

async fn pg_admin(world: &World) -> sqlx::PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(&world.ns.services().postgres_url)
        .await
        .unwrap()
}

async fn relations(world: &World) -> Vec<String> {
    let pool = pg_admin(world).await;
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'v') ORDER BY 1",
    )
    .bind(&world.team)
    .fetch_all(&pool)
    .await
    .unwrap()
}

async fn role_exists(world: &World, role: &str) -> bool {
    let pool = pg_admin(world).await;
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(role)
        .fetch_one(&pool)
        .await
        .unwrap()
}

/// Submits, approves and provisions a PostgreSQL product (deletion policy `Delete`) per name.
async fn provision_postgres_products(world: &World, names: &[&str]) {
    for name in names {
        world
            .submit(&world.product(name, Cluster::Postgres, basic_fields(), "Delete"))
            .await;
    }
    world.reconcile().await;
}

/// A `DELETE` without `If-Match` is a request to delete whatever the product's status is
/// then: a status written between the API's read and its write (a running job reports its
/// progress every second) is no conflict to the caller.
#[tokio::test(flavor = "multi_thread")]
async fn deleting_without_if_match_is_not_refused_for_a_status_written_meanwhile() {
    let world = World::new("ctl_delrace").await;
    let names = ["race-a", "race-b", "race-c", "race-d", "race-e"];
    provision_postgres_products(&world, &names).await;
    for name in names {
        assert_eq!(
            world.status(name).await["finalizers"],
            json!(["sluice.dev/teardown"])
        );
        // Progress reports, as a job writes them, until the deletion is requested.
        let reporting = world.report_progress(name, Default::default());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(world.delete(name).await, StatusCode::ACCEPTED, "{name}");
        let writes = reporting.await.unwrap();
        assert!(
            writes > 0,
            "{name}: no progress was reported before the deletion"
        );
        assert_eq!(world.status(name).await["phase"], "Deleting", "{name}");
    }
    world.reconcile().await;
    world.cleanup().await;
}

/// A `PUT` without a precondition applies to whatever the object is then: a status written
/// between the API's read and its write is no conflict to the caller (the Kubernetes front
/// door re-applies an object's document while its job reports progress).
#[tokio::test(flavor = "multi_thread")]
async fn applying_without_a_precondition_is_not_refused_for_a_status_written_meanwhile() {
    let world = World::new("ctl_applyrace").await;
    let names = ["apply-a", "apply-b", "apply-c", "apply-d", "apply-e"];
    provision_postgres_products(&world, &names).await;
    for name in names {
        // Progress reports, as a job writes them, until the test stops them.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reporting = world.report_progress(name, std::sync::Arc::clone(&stop));
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The same document again, then one with a new description: neither carries a
        // resourceVersion, so both apply to whatever is current.
        let mut doc = world.product(name, Cluster::Postgres, basic_fields(), "Delete");
        for description in [None, Some(format!("{name}, described while it runs"))] {
            if let Some(text) = &description {
                doc["metadata"]["description"] = json!(text);
            }
            let applied = world.apply(&doc).await;
            assert_eq!(applied.status, StatusCode::OK, "{name}: {}", applied.body);
            if let Some(text) = description {
                assert_eq!(applied.body["metadata"]["description"], text, "{name}");
            }
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let writes = reporting.await.unwrap();
        assert!(writes > 0, "{name}: no progress was reported meanwhile");
    }
    world.cleanup().await;
}

#[tokio::test]
async fn postgres_products_are_provisioned_with_private_credentials_and_deleted_per_policy() {
    let world = World::new("ctl_pg").await;
    world
        .submit(&world.product("orders-a", Cluster::Postgres, basic_fields(), "Delete"))
        .await;
    world
        .submit(&world.product("orders-b", Cluster::Postgres, basic_fields(), "Retain"))
        .await;
    world.reconcile().await;

    for name in ["orders-a", "orders-b"] {
        let status = world.status(name).await;
        assert_eq!(status["phase"], "Backfilling", "{status:#}");
        for kind in ["Approved", "TopicsReady", "TargetReady"] {
            assert!(is_true(&status, kind), "{kind}: {status:#}");
        }
        assert_eq!(condition(&status, "JobRunning")["status"], "Unknown");
        assert_eq!(status["finalizers"], json!(["sluice.dev/teardown"]));
        assert_eq!(status["target"]["version"], 1);
    }
    // Exactly the planned topics: output (compacted, partitions of the source) and DLQ.
    let a = format!("sluice.{}.orders-a.v1", world.team);
    let b = format!("sluice.{}.orders-b.v1", world.team);
    assert_eq!(
        world.topics().await,
        vec![a.clone(), format!("{a}.dlq"), b.clone(), format!("{b}.dlq")]
    );
    // Exactly the planned relations: a versioned table and a stable view per product.
    let (ta, tb) = (world.target_name("orders-a"), world.target_name("orders-b"));
    let mut expected = vec![
        ta.clone(),
        format!("{ta}_v1"),
        tb.clone(),
        format!("{tb}_v1"),
    ];
    expected.sort();
    assert_eq!(relations(&world).await, expected);

    // Each product's credentials read its own view, not the table, not the other's view.
    let (user_a, password_a) = world.credentials("orders-a").await;
    let mut conn = pg_as(&world, &user_a, &password_a).await;
    let own: i64 = sqlx::query_scalar(qualified("SELECT count(*) FROM ", &world.team, &ta, ""))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(own, 0);
    let other = sqlx::query(qualified("SELECT * FROM ", &world.team, &tb, ""))
        .fetch_all(&mut conn)
        .await
        .unwrap_err();
    assert!(other.to_string().contains("permission denied"), "{other}");
    let table = sqlx::query(qualified(
        "SELECT * FROM ",
        &world.team,
        &format!("{ta}_v1"),
        "",
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap_err();
    assert!(table.to_string().contains("permission denied"), "{table}");
    drop(conn);

    // A resync of converged products issues no mutating call and writes nothing.
    let audit_len = |world: &World| {
        let store = world.api.store.clone();
        let team = world.team.clone();
        async move {
            store
                .audit_entries(&sluice_store::AuditQuery {
                    team: Some(team),
                    limit: 1000,
                    ..Default::default()
                })
                .await
                .unwrap()
                .len()
        }
    };
    let before = (
        world.controller.metrics().snapshot(),
        world.controller.target_mutations().await,
        audit_len(&world).await,
    );
    world.reconcile().await;
    world.reconcile().await;
    let after = (
        world.controller.metrics().snapshot(),
        world.controller.target_mutations().await,
        audit_len(&world).await,
    );
    // The counters do count: provisioning two products made topics and target objects.
    assert!(before.0.kafka_mutations >= 4, "{:?}", before.0);
    assert!(
        before.0.target_mutations > 0 && before.1 > 0,
        "{:?}",
        before
    );
    assert_eq!(after.2, before.2, "an idle resync wrote to the audit log");
    assert_eq!(after.0.kafka_mutations, before.0.kafka_mutations);
    assert_eq!(after.0.target_mutations, before.0.target_mutations);
    assert_eq!(after.1, before.1);

    // Deleted behind its back: the view, a table and a topic come back on the next pass.
    let pool = pg_admin(&world).await;
    sqlx::query(qualified("DROP VIEW ", &world.team, &ta, ""))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(qualified(
        "DROP TABLE ",
        &world.team,
        &format!("{tb}_v1"),
        " CASCADE",
    ))
    .execute(&pool)
    .await
    .unwrap();
    world
        .ns
        .kafka_admin()
        .delete_topics(&[a.as_str()], &AdminOptions::new())
        .await
        .unwrap();
    let mut restored = false;
    for _ in 0..20 {
        world.reconcile().await;
        if relations(&world).await == expected && world.topics().await.contains(&a) {
            restored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        restored,
        "{:?} {:?}",
        relations(&world).await,
        world.topics().await
    );

    // A report about another incarnation of the product (one deleted before) is not its.
    world
        .api
        .store
        .put_job_report(
            &world.key("orders-a"),
            1,
            0,
            &json!({"running": true, "backfillComplete": true,
                    "productUid": "00000000-0000-4000-8000-000000000000"}),
        )
        .await
        .unwrap();
    world.reconcile().await;
    assert_eq!(world.status("orders-a").await["phase"], "Backfilling");

    // A worker reports the backfill done: the product goes Live.
    world.report_backfilled("orders-a", 1).await;
    world.reconcile().await;
    let status = world.status("orders-a").await;
    assert_eq!(status["phase"], "Live", "{status:#}");
    assert!(is_true(&status, "Ready"));
    assert!(is_true(&status, "BackfillComplete"));

    // Its job cannot start again (after a crash, say): the product is Degraded with the
    // job's reason, not Live; once the job runs again it is Live.
    world
        .api
        .store
        .put_job_report(
            &world.key("orders-a"),
            1,
            0,
            &json!({"running": false, "backfillComplete": true,
                    "error": "Kafka: reading the job's committed source offsets: timed out"}),
        )
        .await
        .unwrap();
    world.reconcile().await;
    let status = world.status("orders-a").await;
    assert_eq!(status["phase"], "Degraded", "{status:#}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("the job cannot run") && m.contains("timed out")),
        "{status:#}"
    );
    assert_eq!(condition(&status, "JobRunning")["reason"], "JobFailed");
    assert!(!is_true(&status, "Ready"));
    world.report_backfilled("orders-a", 1).await;
    world.reconcile().await;
    assert_eq!(world.status("orders-a").await["phase"], "Live");

    // Delete: objects and credentials go. Retain: the data stays, the reader goes.
    assert_eq!(world.delete("orders-a").await, StatusCode::ACCEPTED);
    assert_eq!(world.delete("orders-b").await, StatusCode::ACCEPTED);
    assert_eq!(world.status("orders-a").await["phase"], "Deleting");
    world.reconcile().await;
    for name in ["orders-a", "orders-b"] {
        let answer = world
            .api
            .get(&format!("/api/v1/products/{}/{name}", world.team))
            .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
        assert!(
            world
                .api
                .store
                .credentials(&world.key(name))
                .await
                .unwrap()
                .is_none()
        );
    }
    assert_eq!(world.topics().await, Vec::<String>::new());
    let mut kept = vec![tb.clone(), format!("{tb}_v1")];
    kept.sort();
    assert_eq!(relations(&world).await, kept);
    assert!(!role_exists(&world, &user_a).await);
    assert!(!role_exists(&world, &format!("sluice_{}_orders-b", world.team)).await);

    // Every action of the controller is in the audit log, by the controller.
    let entries = world
        .api
        .store
        .audit_entries(&sluice_store::AuditQuery {
            actor: Some(sluice_controller::CONTROLLER_ACTOR.to_owned()),
            team: Some(world.team.clone()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: std::collections::BTreeSet<&str> =
        entries.iter().map(|e| e.action.as_str()).collect();
    for action in [
        "provision.topics",
        "provision.target",
        "credentials.grant",
        "status",
        "teardown.version",
        "delete",
    ] {
        assert!(
            actions.contains(action),
            "{action} missing from {actions:?}"
        );
    }
    world.cleanup().await;
}

/// An OpenSearch/Elasticsearch document request as the cluster admin.
async fn search(world: &World, method: reqwest::Method, path: &str) -> (u16, Value) {
    let (client, url) = world.ns.opensearch(path);
    let response = client.request(method, url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn search_products_get_a_versioned_index_behind_their_alias() {
    let world = World::new("ctl_search").await;
    world
        .submit(&world.product("docs", Cluster::Search, basic_fields(), "Retain"))
        .await;
    world.reconcile().await;
    let status = world.status("docs").await;
    assert!(is_true(&status, "TargetReady"), "{status:#}");
    let alias = world.target_name("docs");
    let index = format!("{alias}_v1");
    let (code, body) = search(&world, reqwest::Method::GET, &format!("/_alias/{alias}")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec![&index]
    );
    let (_, mapping) = search(&world, reqwest::Method::GET, &format!("/{index}/_mapping")).await;
    let properties = &mapping[&index]["mappings"]["properties"];
    assert_eq!(properties["order_id"]["type"], "keyword");
    assert_eq!(properties["amount"]["type"], "double");
    // No per-product users without the security plugin: nothing is stored.
    assert!(
        world
            .api
            .store
            .credentials(&world.key("docs"))
            .await
            .unwrap()
            .is_none()
    );

    // Converged: a resync writes nothing. Removed by hand: recreated.
    let before = world.controller.target_mutations().await;
    world.reconcile().await;
    assert_eq!(world.controller.target_mutations().await, before);
    let (code, _) = search(&world, reqwest::Method::DELETE, &format!("/{index}")).await;
    assert_eq!(code, 200);
    world.reconcile().await;
    let (code, body) = search(&world, reqwest::Method::GET, &format!("/_alias/{alias}")).await;
    assert_eq!(code, 200, "{body}");

    // Retain: topics go, index and alias stay.
    assert_eq!(world.delete("docs").await, StatusCode::ACCEPTED);
    world.reconcile().await;
    assert_eq!(world.topics().await, Vec::<String>::new());
    let (code, _) = search(&world, reqwest::Method::GET, &format!("/_alias/{alias}")).await;
    assert_eq!(code, 200);
    let (code, _) = search(&world, reqwest::Method::DELETE, &format!("/{index}")).await;
    assert_eq!(code, 200);
    world.cleanup().await;
}

/// A Redis connection as `user`.
async fn redis_as(url: &str, user: &str, password: &str) -> redis::aio::MultiplexedConnection {
    // The admin URL's host and database, with the reader's credentials (alphanumeric).
    let at = url.rsplit('@').next().unwrap();
    let at = at.strip_prefix("redis://").unwrap_or(at);
    redis::Client::open(format!("redis://{user}:{password}@{at}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn redis_products_get_a_pointer_and_a_reader_limited_to_their_keys() {
    let world = World::new("ctl_redis").await;
    for name in ["cache-a", "cache-b"] {
        world
            .submit(&world.product(name, Cluster::Redis, basic_fields(), "Delete"))
            .await;
    }
    world.reconcile().await;
    let mut admin = world.ns.redis().await.unwrap();
    let (pa, pb) = (world.target_name("cache-a"), world.target_name("cache-b"));
    for prefix in [&pa, &pb] {
        let pointer: Option<String> = redis::cmd("GET")
            .arg(format!("{prefix}:current"))
            .query_async(&mut admin)
            .await
            .unwrap();
        assert_eq!(pointer.as_deref(), Some("v1"));
        let _: () = redis::cmd("HSET")
            .arg(format!("{prefix}:v1:k1"))
            .arg("amount")
            .arg("1.5")
            .query_async(&mut admin)
            .await
            .unwrap();
    }
    let (user, password) = world.credentials("cache-a").await;
    let mut reader = redis_as(&world.ns.services().redis_url, &user, &password).await;
    let own: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{pa}:v1:k1"))
        .query_async(&mut reader)
        .await
        .unwrap();
    assert_eq!(own.get("amount").map(String::as_str), Some("1.5"));
    let other: redis::RedisResult<Value> = redis::cmd("HGETALL")
        .arg(format!("{pb}:v1:k1"))
        .query_async(&mut reader)
        .await
        .map(|_: redis::Value| Value::Null);
    let other = other.unwrap_err().to_string();
    assert!(
        other.to_lowercase().contains("noperm") || other.contains("permission"),
        "{other}"
    );
    let write: redis::RedisResult<()> = redis::cmd("SET")
        .arg(format!("{pa}:v1:k2"))
        .arg("x")
        .query_async(&mut reader)
        .await;
    let write = write.unwrap_err().to_string();
    assert!(
        write.to_lowercase().contains("noperm") || write.contains("permission"),
        "{write}"
    );

    // A user deleted by hand comes back with new credentials that work.
    let _: () = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query_async(&mut admin)
        .await
        .unwrap();
    world.reconcile().await;
    let (again, password2) = world.credentials("cache-a").await;
    assert_eq!(again, user);
    assert_ne!(password2, password);
    let mut reader = redis_as(&world.ns.services().redis_url, &user, &password2).await;
    let _: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("{pa}:v1:k1"))
        .query_async(&mut reader)
        .await
        .unwrap();

    // Delete: keys, pointer and user go.
    for name in ["cache-a", "cache-b"] {
        assert_eq!(world.delete(name).await, StatusCode::ACCEPTED);
    }
    world.reconcile().await;
    for prefix in [&pa, &pb] {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query_async(&mut admin)
            .await
            .unwrap();
        assert!(keys.is_empty(), "{keys:?}");
    }
    let users: Vec<String> = redis::cmd("ACL")
        .arg("USERS")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(!users.contains(&user));
    world.cleanup().await;
}

#[tokio::test]
async fn shape_changes_go_online_or_through_a_version_swap_on_every_target() {
    let world = World::new("ctl_shape").await;
    let clusters = [
        ("pgshape", Cluster::Postgres),
        ("osshape", Cluster::Search),
        ("rdshape", Cluster::Redis),
    ];
    for (name, cluster) in clusters {
        world
            .submit(&world.product(name, cluster, basic_fields(), "Delete"))
            .await;
    }
    world.reconcile().await;

    // Additive: a new nullable field is applied in place; the version stays.
    let mut added = basic_fields();
    added["note"] = json!("o.note");
    for (name, cluster) in clusters {
        world
            .submit(&world.product(name, cluster, added.clone(), "Delete"))
            .await;
    }
    // The plan says how each change lands before the controller acts.
    let plan = world.plan("pgshape").await;
    assert_eq!(plan["version"], 1, "{plan:#}");
    assert_eq!(plan["requiresNewVersion"], false, "{plan:#}");
    assert_eq!(plan["diff"][0]["class"], "online", "{plan:#}");
    world.reconcile().await;
    for (name, _) in clusters {
        let status = world.status(name).await;
        assert_eq!(status["target"]["version"], 1, "{name}: {status:#}");
        assert!(status["nextTarget"].is_null(), "{name}: {status:#}");
        assert!(is_true(&status, "TargetReady"), "{name}: {status:#}");
    }
    let pool = pg_admin(&world).await;
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
    )
    .bind(&world.team)
    .bind(world.target_name("pgshape"))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(columns.contains(&"note".to_owned()), "{columns:?}");
    let index1 = format!("{}_v1", world.target_name("osshape"));
    let (_, mapping) = search(&world, reqwest::Method::GET, &format!("/{index1}/_mapping")).await;
    assert_eq!(
        mapping[&index1]["mappings"]["properties"]["note"]["type"],
        "keyword"
    );

    // Not additive (a field changes type): version 2 is built beside version 1, readers
    // stay on 1 until 2 is backfilled, then the stable name moves and 1 is removed.
    let mut retyped = added.clone();
    retyped["amount"] = json!({"expr": "string(o.amount)", "type": "string"});
    for (name, cluster) in clusters {
        world
            .submit(&world.product(name, cluster, retyped.clone(), "Delete"))
            .await;
    }
    let plan = world.plan("pgshape").await;
    assert_eq!(plan["version"], 2, "{plan:#}");
    assert_eq!(plan["requiresNewVersion"], true, "{plan:#}");
    world.reconcile().await;
    let pg = world.target_name("pgshape");
    for (name, _) in clusters {
        let status = world.status(name).await;
        assert_eq!(status["target"]["version"], 1, "{name}: {status:#}");
        assert_eq!(status["nextTarget"]["version"], 2, "{name}: {status:#}");
        assert!(
            status["message"]
                .as_str()
                .unwrap()
                .contains("version 2 is being built"),
            "{status:#}"
        );
    }
    let mut tables = relations(&world).await;
    tables.sort();
    assert_eq!(
        tables,
        vec![pg.clone(), format!("{pg}_v1"), format!("{pg}_v2")]
    );
    let view_reads: String = sqlx::query_scalar(
        "SELECT string_agg(DISTINCT table_name::text, ',') FROM information_schema.view_table_usage \
         WHERE view_schema = $1 AND view_name = $2",
    )
    .bind(&world.team)
    .bind(&pg)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(view_reads, format!("{pg}_v1"));
    let alias = world.target_name("osshape");
    let (_, on) = search(&world, reqwest::Method::GET, &format!("/_alias/{alias}")).await;
    assert!(on.get(&index1).is_some(), "{on}");
    let mut admin = world.ns.redis().await.unwrap();
    let rd = world.target_name("rdshape");
    let pointer: String = redis::cmd("GET")
        .arg(format!("{rd}:current"))
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(pointer, "v1");
    let topics = world.topics().await;
    for (name, _) in clusters {
        assert!(topics.contains(&format!("sluice.{}.{name}.v2", world.team)));
    }

    for (name, _) in clusters {
        world.report_backfilled(name, 2).await;
    }
    world.reconcile().await;
    for (name, _) in clusters {
        let status = world.status(name).await;
        assert_eq!(status["target"]["version"], 2, "{name}: {status:#}");
        assert!(status["nextTarget"].is_null(), "{name}: {status:#}");
        assert_eq!(status["phase"], "Live", "{name}: {status:#}");
    }
    assert_eq!(
        relations(&world).await,
        vec![pg.clone(), format!("{pg}_v2")]
    );
    let (_, on) = search(&world, reqwest::Method::GET, &format!("/_alias/{alias}")).await;
    assert_eq!(
        on.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec![&format!("{alias}_v2")]
    );
    let (code, _) = search(&world, reqwest::Method::GET, &format!("/{index1}")).await;
    assert_eq!(code, 404);
    let pointer: String = redis::cmd("GET")
        .arg(format!("{rd}:current"))
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(pointer, "v2");
    let topics = world.topics().await;
    assert!(!topics.iter().any(|t| t.contains(".v1")), "{topics:?}");

    for (name, _) in clusters {
        assert_eq!(world.delete(name).await, StatusCode::ACCEPTED);
    }
    world.reconcile().await;
    assert_eq!(world.topics().await, Vec::<String>::new());
    world.cleanup().await;
}

/// A Redis server of this test's own, so the test can stop and restart it.
pub(crate) struct OwnRedis {
    pub port: u16,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
    /// Every write is on disk before it is acknowledged (`appendfsync always`), so a
    /// restart keeps the data, as a production store does.
    durable: bool,
}

impl OwnRedis {
    /// A server that loses everything when it stops.
    pub fn start() -> OwnRedis {
        OwnRedis::start_with(false)
    }

    /// A server whose data survives a kill.
    pub fn start_durable() -> OwnRedis {
        OwnRedis::start_with(true)
    }

    fn start_with(durable: bool) -> OwnRedis {
        let port = sluice_tests::reserve_port().unwrap();
        let dir = std::env::temp_dir().join(format!("sluice-redis-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = OwnRedis {
            port,
            dir,
            child: None,
            durable,
        };
        redis.spawn();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn spawn(&mut self) {
        let persistence: &[&str] = if self.durable {
            &[
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ]
        } else {
            &["--save", "", "--appendonly", "no"]
        };
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(persistence)
            .arg("--dir")
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (installed by make services)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls the product's status until `done` holds, for up to `seconds`.
pub(crate) async fn wait_for(
    world: &World,
    name: &str,
    seconds: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let status = world.status(name).await;
        if done(&status) {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting after {seconds}s: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn an_unreachable_target_degrades_the_product_until_it_returns() {
    let mut redis = OwnRedis::start();
    let world = World::with_redis("ctl_down", Some(redis.url())).await;
    world
        .submit(&world.product("cache", Cluster::Redis, basic_fields(), "Delete"))
        .await;
    let running = world.run_controller();
    let ready = |s: &Value| is_true(s, "TargetReady") && s["phase"] == "Backfilling";
    wait_for(&world, "cache", 20, ready).await;

    // The service stops: the product turns Degraded, saying why.
    redis.kill();
    let degraded = wait_for(&world, "cache", 20, |s| s["phase"] == "Degraded").await;
    let message = degraded["message"].as_str().unwrap();
    assert!(message.contains("Redis"), "{message}");
    assert!(
        message.contains(&format!("127.0.0.1:{}", redis.port)),
        "{message}"
    );
    assert_eq!(condition(&degraded, "TargetReady")["status"], "False");
    assert_eq!(condition(&degraded, "TargetReady")["reason"], "Unreachable");

    // It comes back (empty: the restart lost every key and user) and the controller
    // recreates the pointer and the reader, with new credentials, by itself.
    let (_, old_password) = world.credentials("cache").await;
    redis.spawn();
    wait_for(&world, "cache", 30, ready).await;
    let (user, password) = world.credentials("cache").await;
    assert_ne!(password, old_password);
    let mut reader = redis_as(&redis.url(), &user, &password).await;
    let pointer: Option<String> = redis::cmd("GET")
        .arg(format!("{}:current", world.target_name("cache")))
        .query_async(&mut reader)
        .await
        .unwrap();
    assert_eq!(pointer.as_deref(), Some("v1"));

    running.stop().await;
    world.cleanup().await;
}

#[tokio::test]
async fn clusters_are_checked_when_registered_not_only_periodically() {
    let world = World::new("ctl_register").await;
    let mut config = ControllerConfig::new(world.ns.services().kafka_bootstrap.clone());
    config.resync = Duration::from_millis(300);
    config.cluster_check = Duration::from_secs(3600);
    let controller =
        Controller::new(world.api.store.clone(), world.secrets.clone(), config).unwrap();
    let running = Background::spawn(|stopped| {
        controller.run(async move {
            let _ = stopped.await;
        })
    });
    let name = format!("late-{}", world.suffix);
    let doc = json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "TargetCluster",
        "metadata": {"name": name},
        "spec": {"type": "redis", "url": "redis://127.0.0.1:1/0", "isolation": "acl-prefix"}
    });
    // Registered after the first (periodic) check of every cluster.
    tokio::time::sleep(Duration::from_millis(600)).await;
    world.put_admin(&doc).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let cluster = world
            .api
            .get(&format!("/api/v1/targetclusters/{name}"))
            .await;
        let reachable = condition(&cluster.body["status"], "Reachable");
        if reachable["status"] == "False" {
            assert!(
                reachable["message"]
                    .as_str()
                    .unwrap()
                    .contains("127.0.0.1:1")
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{:#}", cluster.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.stop().await;
    world.cleanup().await;
}

#[tokio::test]
async fn an_expired_product_is_torn_down_by_the_controller() {
    let world = World::new("ctl_expiry").await;
    let today = chrono::Utc::now().date_naive();
    let mut doc = world.product("short", Cluster::Postgres, basic_fields(), "Delete");
    doc["spec"]["expires"] = json!((today + chrono::Duration::days(30)).to_string());
    world.submit(&doc).await;
    world.reconcile().await;
    let status = world.status("short").await;
    assert!(is_true(&status, "TargetReady"), "{status:#}");
    assert_eq!(world.topics().await.len(), 2);

    // The hourly sweep runs on a day past the expiry: the product is marked for teardown
    // and the controller removes it with its topics and target objects.
    let done = sluice_api::expiry::sweep(
        &world.api.store,
        today + chrono::Duration::days(31),
        chrono::Duration::days(14),
    )
    .await
    .unwrap();
    assert_eq!(done.expired, vec![format!("{}/short", world.team)]);
    assert_eq!(world.status("short").await["phase"], "Deleting");
    world.reconcile().await;
    let answer = world
        .api
        .get(&format!("/api/v1/products/{}/short", world.team))
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    assert_eq!(world.topics().await, Vec::<String>::new());
    assert_eq!(relations(&world).await, Vec::<String>::new());
    world.cleanup().await;
}

#[tokio::test]
async fn a_newer_change_replaces_a_version_still_being_built() {
    let world = World::new("ctl_abandon").await;
    let name = "rebuilt";
    world
        .submit(&world.product(name, Cluster::Postgres, basic_fields(), "Delete"))
        .await;
    world.reconcile().await;
    let table = world.target_name(name);

    // Version 2 starts building for a retyped field...
    let mut v2 = basic_fields();
    v2["amount"] = json!({"expr": "string(o.amount)", "type": "string"});
    world
        .submit(&world.product(name, Cluster::Postgres, v2, "Delete"))
        .await;
    world.reconcile().await;
    assert_eq!(world.status(name).await["nextTarget"]["version"], 2);
    assert!(relations(&world).await.contains(&format!("{table}_v2")));

    // ...and a newer change arrives before it is backfilled: version 2 is dropped, version
    // 3 is built from the newest spec, readers stay on version 1 throughout.
    let mut v3 = basic_fields();
    v3["amount"] = json!({"expr": "int(o.amount)", "type": "integer"});
    world
        .submit(&world.product(name, Cluster::Postgres, v3, "Delete"))
        .await;
    world.reconcile().await;
    let status = world.status(name).await;
    assert_eq!(status["target"]["version"], 1, "{status:#}");
    assert_eq!(status["nextTarget"]["version"], 3, "{status:#}");
    let mut expected = vec![table.clone(), format!("{table}_v1"), format!("{table}_v3")];
    expected.sort();
    assert_eq!(relations(&world).await, expected);
    let topics = world.topics().await;
    assert!(!topics.iter().any(|t| t.contains(".v2")), "{topics:?}");

    world.report_backfilled(name, 3).await;
    world.reconcile().await;
    let status = world.status(name).await;
    assert_eq!(status["target"]["version"], 3, "{status:#}");
    assert_eq!(
        relations(&world).await,
        vec![table.clone(), format!("{table}_v3")]
    );
    let pool = pg_admin(&world).await;
    let amount: String = sqlx::query_scalar(
        "SELECT data_type::text FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = $2 AND column_name = 'amount'",
    )
    .bind(&world.team)
    .bind(&table)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(amount, "bigint");

    assert_eq!(world.delete(name).await, StatusCode::ACCEPTED);
    world.reconcile().await;
    assert_eq!(relations(&world).await, Vec::<String>::new());
    world.cleanup().await;
}
