//! Convergence of the controller and exactness of the stream jobs under SIGKILL: `sluice serve` (API and controller in one
//! process) is killed at random moments while it provisions products into the real Kafka,
//! PostgreSQL, OpenSearch and Redis of `make services`, 20 times in a row; after the last
//! restart every product reaches `TargetReady` with exactly the planned objects — no
//! leftovers, no duplicates — and its stored credentials work. Deleting everything, with one
//! more kill during the teardown, leaves nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use sluice_store::{AuditKey, ObjectKey, SecretBox, Store};
use sluice_tests::oracle::{self, Event, FILTER, Rows, expected, workload};

const ADMIN_TOKEN: &str = "slc_convergence-admin-token-0123456789";
const SECRET_KEY: &str = "convergence-test-secret-key-0123456789";
const KILLS: usize = 20;

/// One `sluice serve` process over a data dir that outlives it.
struct Serve {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// `SLUICE_JOBS` for the server: `off` leaves the jobs to workers.
    jobs: &'static str,
}

impl Serve {
    fn new() -> Serve {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("sluice-converge-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        Serve {
            dir,
            port,
            child: None,
            jobs: "in-process",
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `sluice <verb>` with this server's data dir, keys and Kafka, logging to the dir.
    fn process(&self, verb: &str) -> Child {
        self.process_with(verb, &[])
    }

    /// `sluice <verb> <args>`, as [`Serve::process`].
    fn process_with(&self, verb: &str, args: &[&str]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{verb}.log")))
            .unwrap();
        let services = sluice_tests::services();
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg(verb)
            .args(args)
            .env("SLUICE_DATA_DIR", &self.dir)
            .env("SLUICE_JOBS", self.jobs)
            .env("SLUICE_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("SLUICE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("SLUICE_SECRET_KEY", SECRET_KEY)
            .env("SLUICE_KAFKA_BOOTSTRAP", &services.kafka_bootstrap)
            .env("SLUICE_CONTROLLER_RESYNC", "300ms")
            .env("SLUICE_CONTROLLER_MAX_BACKOFF", "1s")
            .env("SLUICE_LOG", "info")
            .env_remove("SLUICE_DATABASE_URL")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn start(&mut self) {
        self.child = Some(self.process("serve"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "sluice serve did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown code runs.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn sluice(&self, token: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .env("SLUICE_DATA_DIR", &self.dir)
            .env("SLUICE_URL", self.url())
            .env("SLUICE_TOKEN", token)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn must(&self, token: &str, args: &[&str]) -> String {
        let (ok, text) = self.sluice(token, args);
        assert!(ok, "sluice {args:?}: {text}");
        text
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Postgres,
    Search,
    Redis,
}

struct Names {
    suffix: String,
    team: String,
}

impl Names {
    fn product(i: usize) -> String {
        format!("p{i:02}")
    }
    fn kind(i: usize) -> Kind {
        [Kind::Postgres, Kind::Search, Kind::Redis][i % 3]
    }
    fn target(&self, i: usize) -> String {
        format!("p{i:02}_{}", self.suffix)
    }
    fn cluster(&self, kind: Kind) -> String {
        format!("{kind:?}-{}", self.suffix).to_lowercase()
    }
}

fn write(dir: &std::path::Path, file: &str, text: &str) -> String {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn product_yaml(names: &Names, dataset: &str, i: usize, filter: Option<&str>) -> String {
    let kind = Names::kind(i);
    let filter = filter
        .map(|f| format!("  filter: '{f}'\n"))
        .unwrap_or_default();
    let options = match kind {
        Kind::Postgres => "{}",
        Kind::Search => "{shards: 1, replicas: 0}",
        Kind::Redis => "{type: hash}",
    };
    format!(
        "apiVersion: sluice.dev/v1alpha1\nkind: DataProduct\nmetadata: {{name: {p}, team: {team}}}\n\
         spec:\n  sources: [{{name: o, dataset: {dataset}, from: earliest}}]\n  key: o.id\n{filter}\
         \x20 fields: {{order_id: o.id, amount: o.amount, status: o.status}}\n\
         \x20 target: {{cluster: {cluster}, name: {target}, mode: upsert, options: {options}}}\n\
         \x20 deletionPolicy: Delete\n",
        p = Names::product(i),
        team = names.team,
        cluster = names.cluster(kind),
        target = names.target(i),
    )
}

/// The dataset on `topic` and the three target clusters of `make services`.
fn catalog_yaml(names: &Names, dataset: &str, topic: &str) -> String {
    let services = sluice_tests::services();
    format!(
        "apiVersion: sluice.dev/v1alpha1\nkind: Dataset\nmetadata: {{name: {dataset}, owner: team-shop}}\n\
         spec:\n  topic: {topic}\n  kind: stream\n  key: id\n  classification: internal\n\
         \x20 schema: {{type: object, required: [id, amount], properties: {{id: {{type: string}}, amount: {{type: number}}, status: {{type: string}}}}}}\n\
         ---\napiVersion: sluice.dev/v1alpha1\nkind: TargetCluster\nmetadata: {{name: {pg}}}\n\
         spec: {{type: postgres, url: '{pg_url}', isolation: schema, allowedTeams: ['*']}}\n\
         ---\napiVersion: sluice.dev/v1alpha1\nkind: TargetCluster\nmetadata: {{name: {os}}}\n\
         spec: {{type: elasticsearch, url: '{os_url}', isolation: index, allowedTeams: ['*']}}\n\
         ---\napiVersion: sluice.dev/v1alpha1\nkind: TargetCluster\nmetadata: {{name: {rd}}}\n\
         spec: {{type: redis, url: '{rd_url}', isolation: acl-prefix, allowedTeams: ['*']}}\n",
        pg = names.cluster(Kind::Postgres),
        os = names.cluster(Kind::Search),
        rd = names.cluster(Kind::Redis),
        pg_url = services.postgres_url,
        os_url = services.opensearch_url,
        rd_url = services.redis_url,
    )
}

fn kafka_config() -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set(
        "bootstrap.servers",
        &sluice_tests::services().kafka_bootstrap,
    );
    config
}

async fn topics_of(team: &str) -> BTreeSet<String> {
    let consumer: BaseConsumer = kafka_config().create().unwrap();
    let prefix = format!("sluice.{team}.");
    tokio::task::spawn_blocking(move || {
        consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .unwrap()
            .topics()
            .iter()
            .map(|t| t.name().to_owned())
            .filter(|t| t.starts_with(&prefix))
            .collect()
    })
    .await
    .unwrap()
}

/// What exists of the team's products in every system, as sorted names.
#[derive(Debug, PartialEq, Eq)]
struct World {
    topics: BTreeSet<String>,
    relations: BTreeSet<String>,
    roles: BTreeSet<String>,
    indices: BTreeSet<String>,
    redis_users: BTreeSet<String>,
    redis_keys: BTreeSet<String>,
}

async fn observe(
    names: &Names,
    pg: &sqlx::PgPool,
    redis: &mut redis::aio::MultiplexedConnection,
) -> World {
    let relations: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'v')",
    )
    .bind(&names.team)
    .fetch_all(pg)
    .await
    .unwrap();
    let roles: Vec<String> =
        sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1")
            .bind(format!("sluice_{}_%", names.team))
            .fetch_all(pg)
            .await
            .unwrap();
    let services = sluice_tests::services();
    let indices: Value = reqwest::get(format!(
        "{}/_cat/indices/*{}*?format=json",
        services.opensearch_url, names.suffix
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let users: Vec<String> = redis::cmd("ACL")
        .arg("USERS")
        .query_async(redis)
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*_{}:*", names.suffix))
        .query_async(redis)
        .await
        .unwrap();
    World {
        topics: topics_of(&names.team).await,
        relations: relations.into_iter().collect(),
        roles: roles.into_iter().collect(),
        indices: indices
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["index"].as_str().unwrap().to_owned())
            .collect(),
        redis_users: users
            .into_iter()
            .filter(|u| u.starts_with(&format!("sluice_{}_", names.team)))
            .collect(),
        redis_keys: keys.into_iter().collect(),
    }
}

/// What must exist once every product is provisioned.
fn planned(names: &Names) -> World {
    let mut world = World {
        topics: BTreeSet::new(),
        relations: BTreeSet::new(),
        roles: BTreeSet::new(),
        indices: BTreeSet::new(),
        redis_users: BTreeSet::new(),
        redis_keys: BTreeSet::new(),
    };
    for i in 0..KILLS {
        let p = Names::product(i);
        let target = names.target(i);
        world.topics.insert(format!("sluice.{}.{p}.v1", names.team));
        world
            .topics
            .insert(format!("sluice.{}.{p}.v1.dlq", names.team));
        let reader = format!("sluice_{}_{p}", names.team);
        match Names::kind(i) {
            Kind::Postgres => {
                world.relations.insert(target.clone());
                world.relations.insert(format!("{target}_v1"));
                world.roles.insert(reader);
            }
            Kind::Search => {
                world.indices.insert(format!("{target}_v1"));
            }
            Kind::Redis => {
                world.redis_users.insert(reader);
                world.redis_keys.insert(format!("{target}:current"));
            }
        }
    }
    world
}

fn empty() -> World {
    World {
        topics: BTreeSet::new(),
        relations: BTreeSet::new(),
        roles: BTreeSet::new(),
        indices: BTreeSet::new(),
        redis_users: BTreeSet::new(),
        redis_keys: BTreeSet::new(),
    }
}

/// The statuses of the team's products, by name.
fn statuses(serve: &Serve, team: &str) -> Vec<(String, Value)> {
    let (ok, text) = serve.sluice(
        ADMIN_TOKEN,
        &["get", "dataproduct", "--team", team, "-o", "json"],
    );
    if !ok {
        return Vec::new();
    }
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let items = value["items"].as_array().cloned().unwrap_or_default();
    items
        .into_iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_owned(),
                p["status"].clone(),
            )
        })
        .collect()
}

fn target_ready(status: &Value) -> bool {
    status["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "TargetReady" && c["status"] == "True")
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_20_times_while_provisioning_it_converges_to_exactly_the_plan() {
    let services = sluice_tests::services();
    let suffix = format!("{:010x}", rand::rng().random::<u64>() & 0xff_ffff_ffff);
    let names = Names {
        team: format!("k{suffix}"),
        suffix: suffix.clone(),
    };
    let mut serve = Serve::new();
    let dir = serve.dir.clone();

    // The source topic and the catalog.
    let topic = format!("test.converge.{suffix}.orders");
    let admin: AdminClient<DefaultClientContext> = kafka_config().create().unwrap();
    admin
        .create_topics(
            &[NewTopic::new(&topic, 2, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    let dataset = format!("cv{suffix}.orders");
    let catalog = catalog_yaml(&names, &dataset, &topic);
    let catalog_file = write(&dir, "catalog.yaml", &catalog);
    serve.start();
    serve.must(ADMIN_TOKEN, &["apply", "-f", &catalog_file]);
    let token = |team: &str, role: &str| -> String {
        let text = serve.must(
            ADMIN_TOKEN,
            &[
                "token", "create", "--team", team, "--role", role, "-o", "json",
            ],
        );
        serde_json::from_str::<Value>(&text).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let requester = token(&names.team, "requester");
    let approver = token("platform", "approver");

    // 20 products, one more before each kill; each kill lands at a random moment of the
    // provisioning the restarted process resumes.
    let mut rng = rand::rng();
    for i in 0..KILLS {
        if serve.child.is_none() {
            serve.start();
        }
        let file = write(
            &dir,
            &format!("{}.yaml", Names::product(i)),
            &product_yaml(&names, &dataset, i, None),
        );
        serve.must(&requester, &["apply", "-f", &file]);
        let product = format!("{}/{}", names.team, Names::product(i));
        serve.must(&approver, &["approve", &product]);
        std::thread::sleep(Duration::from_millis(rng.random_range(0..1500)));
        serve.kill();
    }

    // The last restart converges.
    serve.start();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let statuses = statuses(&serve, &names.team);
        if statuses.len() == KILLS && statuses.iter().all(|(_, s)| target_ready(s)) {
            break;
        }
        assert!(Instant::now() < deadline, "not converged: {statuses:#?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let pg = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&services.postgres_url)
        .await
        .unwrap();
    let mut redis = redis::Client::open(services.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    assert_eq!(observe(&names, &pg, &mut redis).await, planned(&names));
    // The controller's counters are on /metrics: this process leads and made the changes.
    let metrics = reqwest::get(format!("{}/metrics", serve.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("sluice_controller_leader 1"), "{metrics}");
    assert!(
        metrics.contains("sluice_controller_mutations_total{system=\"kafka\"}"),
        "{metrics}"
    );
    let described = serve.must(
        ADMIN_TOKEN,
        &[
            "describe",
            "product",
            &Names::product(0),
            "--team",
            &names.team,
        ],
    );
    let view = format!("view \"{}\".\"{}\"", names.team, names.target(0));
    assert!(
        described.contains(&format!("Target:          version 1 in {view}")),
        "{described}"
    );
    assert!(described.contains("TargetReady        True"), "{described}");

    // Every stored credential works: the last grant of each reader was the one stored.
    let store = Store::connect(
        &format!("sqlite://{}/sluice.db?mode=rwc", dir.display()),
        AuditKey::from_secret(SECRET_KEY.as_bytes()).unwrap(),
    )
    .await
    .unwrap();
    let secrets = SecretBox::from_secret(SECRET_KEY.as_bytes()).unwrap();
    for i in 0..KILLS {
        let key = ObjectKey::data_product(&names.team, Names::product(i));
        let stored = store.credentials(&key).await.unwrap();
        match Names::kind(i) {
            Kind::Search => assert!(stored.is_none()),
            Kind::Postgres => {
                let stored = stored.unwrap();
                let password = secrets.open(&stored.sealed_password).unwrap();
                let options: sqlx::postgres::PgConnectOptions =
                    services.postgres_url.parse().unwrap();
                let options = options.username(&stored.username).password(&password);
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect_with(&options)
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e}", stored.username));
                let statement = format!(
                    "SELECT count(*) FROM \"{}\".\"{}\"",
                    names.team,
                    names.target(i)
                );
                let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(statement))
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                assert_eq!(count, 0);
            }
            Kind::Redis => {
                let stored = stored.unwrap();
                let password = secrets.open(&stored.sealed_password).unwrap();
                let host = services.redis_url.rsplit('@').next().unwrap();
                let url = format!("redis://{}:{password}@{host}", stored.username);
                let mut reader = redis::Client::open(url)
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e}", stored.username));
                let pointer: Option<String> = redis::cmd("GET")
                    .arg(format!("{}:current", names.target(i)))
                    .query_async(&mut reader)
                    .await
                    .unwrap();
                assert_eq!(pointer.as_deref(), Some("v1"));
            }
        }
    }
    store.close().await;

    // Delete everything; one more kill in the middle of the teardown.
    for i in 0..KILLS {
        let product = format!("{}/{}", names.team, Names::product(i));
        serve.must(ADMIN_TOKEN, &["delete", "dataproduct", &product]);
    }
    std::thread::sleep(Duration::from_millis(rng.random_range(0..800)));
    serve.kill();
    serve.start();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !statuses(&serve, &names.team).is_empty() {
        assert!(Instant::now() < deadline, "teardown did not finish");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(observe(&names, &pg, &mut redis).await, empty());

    serve.kill();
    let _ = admin
        .delete_topics(&[topic.as_str()], &AdminOptions::new())
        .await;
    drop_team_schema(&pg, &names.team).await;
}

/// Drops the team's schema and everything in it (the test's cleanup; errors are ignored).
async fn drop_team_schema(pg: &sqlx::PgPool, team: &str) {
    let statement = sluice_tests::sql_with_ident("DROP SCHEMA IF EXISTS ", team, " CASCADE");
    let _ = sqlx::query(statement).execute(pg).await;
}

/// Produces `events` to `topic`, each key's records in order, and waits for every delivery.
async fn produce(topic: &str, events: &[Event]) {
    let producer: FutureProducer = kafka_config()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let payloads: Vec<Option<String>> = events
        .iter()
        .map(|(_, v)| v.as_ref().map(Value::to_string))
        .collect();
    let records = events.iter().zip(&payloads).map(|((key, _), payload)| {
        let mut record = FutureRecord::<str, str>::to(topic).key(key.as_str());
        if let Some(payload) = payload.as_deref() {
            record = record.payload(payload);
        }
        record
    });
    sluice_tests::send_in_order(&producer, records).await;
}

/// What product `i`'s target holds, read as its readers read it.
async fn target_rows(names: &Names, i: usize) -> Result<Rows, oracle::ReadError> {
    let services = sluice_tests::services();
    match Names::kind(i) {
        Kind::Postgres => oracle::postgres_rows(services, &names.team, &names.target(i)).await,
        Kind::Search => oracle::search_rows(services, &names.target(i)).await,
        Kind::Redis => oracle::redis_rows(services, &names.target(i)).await,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_20_times_while_syncing_every_target_ends_equal_to_the_oracle() {
    const PRODUCTS: usize = 3;
    let suffix = format!("{:010x}", rand::rng().random::<u64>() & 0xff_ffff_ffff);
    let names = Names {
        team: format!("x{suffix}"),
        suffix: suffix.clone(),
    };
    let mut serve = Serve::new();
    let dir = serve.dir.clone();
    let topic = format!("test.exact.{suffix}.orders");
    let admin: AdminClient<DefaultClientContext> = kafka_config().create().unwrap();
    admin
        .create_topics(
            &[NewTopic::new(&topic, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    // History to backfill, and live events produced between and during the kills.
    let history = workload(21, 3000, 400);
    let live = workload(22, 2000, 400);
    produce(&topic, &history).await;

    let dataset = format!("ex{suffix}.orders");
    let catalog_file = write(
        &dir,
        "catalog.yaml",
        &catalog_yaml(&names, &dataset, &topic),
    );
    serve.start();
    serve.must(ADMIN_TOKEN, &["apply", "-f", &catalog_file]);
    let token = |team: &str, role: &str| -> String {
        let text = serve.must(
            ADMIN_TOKEN,
            &[
                "token", "create", "--team", team, "--role", role, "-o", "json",
            ],
        );
        serde_json::from_str::<Value>(&text).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let requester = token(&names.team, "requester");
    let approver = token("platform", "approver");
    for i in 0..PRODUCTS {
        let file = write(
            &dir,
            &format!("{}.yaml", Names::product(i)),
            &product_yaml(&names, &dataset, i, Some(FILTER)),
        );
        serve.must(&requester, &["apply", "-f", &file]);
        serve.must(
            &approver,
            &["approve", &format!("{}/{}", names.team, Names::product(i))],
        );
    }

    // 20 kills at random moments: the first ones land in the backfill, the later ones in
    // live sync; live events are produced while the process is down and while it is up.
    let mut rng = rand::rng();
    for (kill, chunk) in live.chunks(live.len() / KILLS).enumerate() {
        std::thread::sleep(Duration::from_millis(rng.random_range(0..1200)));
        serve.kill();
        if kill % 2 == 0 {
            produce(&topic, chunk).await;
            serve.start();
        } else {
            serve.start();
            produce(&topic, chunk).await;
        }
    }

    let all: Vec<Event> = history.iter().chain(live.iter()).cloned().collect();
    let want = expected(&all);
    assert!(want.len() > 100);
    let deadline = Instant::now() + Duration::from_secs(120);
    for i in 0..PRODUCTS {
        loop {
            let got = target_rows(&names, i).await;
            if got.as_ref().is_ok_and(|g| g == &want) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {}",
                Names::product(i),
                match &got {
                    Ok(got) => oracle::difference(got, &want),
                    Err(e) => e.to_string(),
                }
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    // And the products say so: their jobs reached the end of their (resumed) backfills.
    loop {
        let phases = statuses(&serve, &names.team);
        if phases.len() == PRODUCTS && phases.iter().all(|(_, s)| s["phase"] == "Live") {
            break;
        }
        assert!(Instant::now() < deadline, "{phases:#?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Progress is on /metrics too.
    let metrics = reqwest::get(format!("{}/metrics", serve.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = format!(
        "sluice_product_backfill_events{{team=\"{}\",name=\"{}\",source=\"o\",state=\"total\"}}",
        names.team,
        Names::product(0)
    );
    assert!(metrics.contains(&line), "{line} missing from\n{metrics}");

    for i in 0..PRODUCTS {
        let product = format!("{}/{}", names.team, Names::product(i));
        serve.must(ADMIN_TOKEN, &["delete", "dataproduct", &product]);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !statuses(&serve, &names.team).is_empty() {
        assert!(Instant::now() < deadline, "teardown did not finish");
        std::thread::sleep(Duration::from_millis(300));
    }
    serve.kill();
    let _ = admin
        .delete_topics(&[topic.as_str()], &AdminOptions::new())
        .await;
    let pg = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&sluice_tests::services().postgres_url)
        .await
        .unwrap();
    drop_team_schema(&pg, &names.team).await;
}

/// A `sluice worker` process, SIGKILLed when dropped.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until product `i`'s target holds exactly `want`.
async fn synced(names: &Names, i: usize, want: &Rows, seconds: u64) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let got = target_rows(names, i).await;
        if got.as_ref().is_ok_and(|g| g == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            match &got {
                Ok(got) => oracle::difference(got, want),
                Err(e) => e.to_string(),
            }
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_run_the_jobs_and_take_over_from_a_dead_one() {
    let suffix = format!("{:010x}", rand::rng().random::<u64>() & 0xff_ffff_ffff);
    let names = Names {
        team: format!("w{suffix}"),
        suffix: suffix.clone(),
    };
    let mut serve = Serve::new();
    serve.jobs = "off";
    let dir = serve.dir.clone();
    let topic = format!("test.workers.{suffix}.orders");
    let admin: AdminClient<DefaultClientContext> = kafka_config().create().unwrap();
    admin
        .create_topics(
            &[NewTopic::new(&topic, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    let history = workload(41, 1000, 200);
    produce(&topic, &history).await;
    let dataset = format!("wk{suffix}.orders");
    let catalog_file = write(
        &dir,
        "catalog.yaml",
        &catalog_yaml(&names, &dataset, &topic),
    );
    serve.start();
    serve.must(ADMIN_TOKEN, &["apply", "-f", &catalog_file]);
    // Product 0 lands in PostgreSQL; applied and approved by the admin here (the approval
    // rules are tested elsewhere).
    let file = write(
        &dir,
        "p00.yaml",
        &product_yaml(&names, &dataset, 0, Some(FILTER)),
    );
    let requester = serde_json::from_str::<Value>(&serve.must(
        ADMIN_TOKEN,
        &[
            "token",
            "create",
            "--team",
            &names.team,
            "--role",
            "requester",
            "-o",
            "json",
        ],
    ))
    .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    serve.must(&requester, &["apply", "-f", &file]);
    serve.must(ADMIN_TOKEN, &["approve", &format!("{}/p00", names.team)]);

    // A worker for another product (as a product's Deployment runs it) takes no job of
    // this one, and answers its probe.
    let health = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let other = format!("{}/other", names.team);
    let _other = Worker(serve.process_with(
        "worker",
        &["--product", &other, "--health-listen", &health.to_string()],
    ));
    let probe = async {
        let url = format!("http://{health}/healthz");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(&url).await {
                return r.status().as_u16();
            }
            assert!(
                Instant::now() < deadline,
                "the worker's /healthz never answered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert_eq!(probe.await, 200);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        target_rows(&names, 0)
            .await
            .map_or(true, |rows| rows.is_empty()),
        "a worker for {other} ran the job of p00"
    );
    let (code, message) = {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["worker", "--product", "no-slash"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(2), "{message}");
    assert!(
        message.contains("--product: `no-slash` is not TEAM/NAME"),
        "{message}"
    );

    // The server runs no job: two workers share them, one limited to this product.
    let mut a = Some(Worker(
        serve.process_with("worker", &["--product", &format!("{}/p00", names.team)]),
    ));
    let mut b = Some(Worker(serve.process("worker")));
    synced(&names, 0, &expected(&history), 60).await;

    // Kill one worker, then the other (restarting the first): whichever held the job, the
    // survivor takes it over once the lease expires, and nothing is lost or duplicated.
    let first = workload(42, 300, 200);
    a.take();
    produce(&topic, &first).await;
    let mut all: Vec<Event> = history.iter().chain(first.iter()).cloned().collect();
    synced(&names, 0, &expected(&all), 60).await;
    a = Some(Worker(serve.process("worker")));
    let second = workload(43, 300, 200);
    b.take();
    produce(&topic, &second).await;
    all.extend(second);
    synced(&names, 0, &expected(&all), 60).await;

    drop(a);
    serve.must(
        ADMIN_TOKEN,
        &["delete", "dataproduct", &format!("{}/p00", names.team)],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !statuses(&serve, &names.team).is_empty() {
        assert!(Instant::now() < deadline, "teardown did not finish");
        std::thread::sleep(Duration::from_millis(300));
    }
    serve.kill();
    let _ = admin
        .delete_topics(&[topic.as_str()], &AdminOptions::new())
        .await;
    let pg = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&sluice_tests::services().postgres_url)
        .await
        .unwrap();
    drop_team_schema(&pg, &names.team).await;
}
