//! A per-test namespace over every service, removed when dropped.

use std::str::FromStr;
use std::time::Duration;

use rand::Rng;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::FutureProducer;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::services::{HarnessError, Services, services};

/// How long a cleanup step may take before it is abandoned (a stopped service must not hang
/// the test run).
const CLEANUP_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// The two search engines the Elasticsearch provisioner targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchEngine {
    /// OpenSearch (the primary test target).
    OpenSearch,
    /// Elasticsearch 7.17 (core features only: no analysis-common, no painless).
    Elasticsearch,
}

impl SearchEngine {
    /// Both engines.
    pub const ALL: [SearchEngine; 2] = [SearchEngine::OpenSearch, SearchEngine::Elasticsearch];
}

/// A test's private slice of every service.
///
/// Names derive from one unique id, so two tests — or two runs — never collide:
/// Kafka topics `test.<id>.*`, PostgreSQL schema `test_<id>`, Redis keys `test:<id>:*`,
/// OpenSearch indices `test-<id>-*`. Dropping the namespace deletes all of them (set
/// `SLUICE_TEST_KEEP=1` to keep them for a post-mortem).
#[derive(Debug)]
pub struct TestNamespace {
    id: String,
    services: &'static Services,
}

impl TestNamespace {
    /// A fresh namespace; `label` (e.g. the test name) makes leftovers recognisable.
    pub fn new(label: &str) -> Self {
        let label: String = label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .take(24)
            .collect();
        let suffix: u64 = rand::rng().random();
        TestNamespace {
            id: format!("{label}_{suffix:016x}"),
            services: services(),
        }
    }

    /// A fresh namespace over `services` instead of the shared ones (a test's own broker or
    /// database). The services are leaked: a test binary makes a handful of them.
    pub fn with_services(label: &str, services: Services) -> Self {
        let mut namespace = TestNamespace::new(label);
        namespace.services = Box::leak(Box::new(services));
        namespace
    }

    /// The unique id every name of this namespace contains.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The service locations.
    pub fn services(&self) -> &'static Services {
        self.services
    }

    /// The prefix of every Kafka topic of this namespace.
    pub fn topic_prefix(&self) -> String {
        format!("test.{}.", self.id)
    }

    /// A Kafka topic name inside this namespace.
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.topic_prefix())
    }

    /// The PostgreSQL schema of this namespace.
    pub fn pg_schema(&self) -> String {
        format!("test_{}", self.id)
    }

    /// The prefix of every Redis key of this namespace.
    pub fn redis_prefix(&self) -> String {
        format!("test:{}:", self.id)
    }

    /// The prefix of every OpenSearch index of this namespace.
    pub fn index_prefix(&self) -> String {
        format!("test-{}-", self.id.replace('_', "-"))
    }

    /// An OpenSearch index name inside this namespace.
    pub fn index(&self, name: &str) -> String {
        format!("{}{name}", self.index_prefix())
    }

    /// A librdkafka configuration pointing at the local broker.
    pub fn kafka_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.services.kafka_bootstrap);
        config
    }

    /// A Kafka admin client.
    pub fn kafka_admin(&self) -> AdminClient<DefaultClientContext> {
        self.kafka_config()
            .create()
            .expect("a Kafka admin client can always be configured")
    }

    /// A Kafka producer that waits for all replicas.
    pub fn kafka_producer(&self) -> FutureProducer {
        self.kafka_config()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .create()
            .expect("a Kafka producer can always be configured")
    }

    /// A Kafka consumer in a group private to this namespace, reading from the earliest offset.
    pub fn kafka_consumer(&self, group: &str) -> StreamConsumer {
        self.kafka_config()
            .set("group.id", format!("test.{}.{group}", self.id))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .expect("a Kafka consumer can always be configured")
    }

    /// Creates a topic of this namespace and waits until the broker has it.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<String, HarnessError> {
        let topic = self.topic(name);
        let results = self
            .kafka_admin()
            .create_topics(
                &[NewTopic::new(
                    &topic,
                    partitions,
                    TopicReplication::Fixed(1),
                )],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await
            .map_err(|e| self.unreachable("Kafka", e))?;
        for result in results {
            if let Err((name, code)) = result {
                return Err(
                    self.unreachable("Kafka", format!("creating topic {name} failed: {code}"))
                );
            }
        }
        Ok(topic)
    }

    /// A PostgreSQL pool whose `search_path` is this namespace's schema, created if needed.
    pub async fn pg_pool(&self) -> Result<PgPool, HarnessError> {
        let options = PgConnectOptions::from_str(&self.services.postgres_url)
            .map_err(|e| self.unreachable("PostgreSQL", e))?;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(|e| self.unreachable("PostgreSQL", e))?;
        sqlx::query(crate::sql_with_ident(
            "CREATE SCHEMA IF NOT EXISTS ",
            &self.pg_schema(),
            "",
        ))
        .execute(&admin)
        .await
        .map_err(|e| self.unreachable("PostgreSQL", e))?;
        admin.close().await;
        PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options.options([("search_path", self.pg_schema())]))
            .await
            .map_err(|e| self.unreachable("PostgreSQL", e))
    }

    /// A multiplexed Redis connection as the admin ACL user.
    pub async fn redis(&self) -> Result<redis::aio::MultiplexedConnection, HarnessError> {
        redis::Client::open(self.services.redis_url.as_str())
            .map_err(|e| self.unreachable("Redis", e))?
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| self.unreachable("Redis", e))
    }

    /// An HTTP client for OpenSearch, and the URL of `path` on it.
    pub fn opensearch(&self, path: &str) -> (reqwest::Client, String) {
        self.search(SearchEngine::OpenSearch, path)
    }

    /// An HTTP client for the given search engine, and the URL of `path` on it.
    pub fn search(&self, engine: SearchEngine, path: &str) -> (reqwest::Client, String) {
        let base = match engine {
            SearchEngine::OpenSearch => &self.services.opensearch_url,
            SearchEngine::Elasticsearch => &self.services.elasticsearch_url,
        };
        (
            reqwest::Client::new(),
            format!("{base}/{}", path.trim_start_matches('/')),
        )
    }

    /// Removes everything of this namespace from every service; idempotent.
    pub async fn cleanup(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let results = [
            ("Kafka", bounded(self.cleanup_kafka()).await),
            ("PostgreSQL", bounded(self.cleanup_postgres()).await),
            ("Redis", bounded(self.cleanup_redis()).await),
            (
                "OpenSearch",
                bounded(self.cleanup_search(SearchEngine::OpenSearch)).await,
            ),
            (
                "Elasticsearch",
                bounded(self.cleanup_search(SearchEngine::Elasticsearch)).await,
            ),
        ];
        for (service, result) in results {
            if let Err(e) = result {
                problems.push(format!("{service}: {e}"));
            }
        }
        problems
    }

    async fn cleanup_kafka(&self) -> Result<(), String> {
        let admin = self.kafka_admin();
        let prefix = self.topic_prefix();
        let metadata = admin
            .inner()
            .fetch_metadata(None, Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        let topics: Vec<String> = metadata
            .topics()
            .iter()
            .map(|t| t.name().to_owned())
            .filter(|name| name.starts_with(&prefix))
            .collect();
        if topics.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        admin
            .delete_topics(&names, &AdminOptions::new())
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    async fn cleanup_postgres(&self) -> Result<(), String> {
        let options =
            PgConnectOptions::from_str(&self.services.postgres_url).map_err(|e| e.to_string())?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query(crate::sql_with_ident(
            "DROP SCHEMA IF EXISTS ",
            &self.pg_schema(),
            " CASCADE",
        ))
        .execute(&pool)
        .await
        .map_err(|e| e.to_string())?;
        pool.close().await;
        Ok(())
    }

    async fn cleanup_redis(&self) -> Result<(), String> {
        let mut con = self.redis().await.map_err(|e| e.to_string())?;
        let pattern = format!("{}*", self.redis_prefix());
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut con)
                .await
                .map_err(|e| e.to_string())?;
            if !keys.is_empty() {
                redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async::<()>(&mut con)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    async fn cleanup_search(&self, engine: SearchEngine) -> Result<(), String> {
        let (client, url) = self.search(
            engine,
            &format!(
                "_cat/indices/{}*?format=json&h=index&expand_wildcards=all",
                self.index_prefix()
            ),
        );
        let indices: Vec<serde_json::Value> = client
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        for index in indices.iter().filter_map(|i| i["index"].as_str()) {
            let (client, url) = self.search(engine, index);
            let status = client
                .delete(url)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .status();
            if !(status.is_success() || status == reqwest::StatusCode::NOT_FOUND) {
                return Err(format!("DELETE {index}: {status}"));
            }
        }
        Ok(())
    }

    fn unreachable(
        &self,
        service: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> HarnessError {
        let address = match service {
            "Kafka" => self.services.kafka_bootstrap.clone(),
            "OpenSearch" => self.services.opensearch_url.clone(),
            "Elasticsearch" => self.services.elasticsearch_url.clone(),
            "Redis" => strip_password(&self.services.redis_url),
            _ => strip_password(&self.services.postgres_url),
        };
        HarnessError::Unreachable {
            service,
            address,
            source: source.into(),
        }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::env::var_os("SLUICE_TEST_KEEP").is_some() {
            eprintln!("SLUICE_TEST_KEEP set: keeping test namespace {}", self.id);
            return;
        }
        // Drop may run inside a Tokio runtime that is itself being torn down, so the cleanup
        // gets a runtime of its own on a separate thread.
        let namespace = TestNamespace {
            id: std::mem::take(&mut self.id),
            services: self.services,
        };
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime can be built");
            let problems = runtime.block_on(namespace.cleanup());
            for problem in &problems {
                eprintln!("cleanup of test namespace {}: {problem}", namespace.id);
            }
            // Disarm the inner value's own Drop.
            std::mem::forget(namespace);
        });
        let _ = handle.join();
    }
}

/// Runs a cleanup step with a time limit, so a stopped service cannot hang the test run.
async fn bounded(step: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    tokio::time::timeout(CLEANUP_STEP_TIMEOUT, step)
        .await
        .unwrap_or_else(|_| Err("timed out".to_owned()))
}

fn strip_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let user = url[s + 3..at].split(':').next().unwrap_or_default();
            format!("{}://{user}@{}", &url[..s], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
