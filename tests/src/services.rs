//! Where the local services are: `.sluice/services.env`, overridable by the environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The variables `make services` writes, in the order a message lists them.
const KEYS: [&str; 5] = [
    "SLUICE_KAFKA_BOOTSTRAP",
    "SLUICE_TEST_POSTGRES_URL",
    "SLUICE_TEST_REDIS_URL",
    "SLUICE_TEST_OPENSEARCH_URL",
    "SLUICE_TEST_ELASTICSEARCH_URL",
];

/// Why the services could not be located or reached.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// `services.env` is missing or unreadable.
    #[error("cannot read {} — run `make services` first", path.display())]
    NoServicesEnv {
        /// Where it was looked for.
        path: PathBuf,
        /// The reason.
        #[source]
        source: dotenvy::Error,
    },
    /// A variable is missing from both the environment and `services.env`.
    #[error("{key} is not set in {} — run `make services` first", path.display())]
    MissingKey {
        /// The variable.
        key: &'static str,
        /// The file consulted.
        path: PathBuf,
    },
    /// A service did not answer.
    #[error("{service} at {address} is not reachable — run `make services`")]
    Unreachable {
        /// Which service.
        service: &'static str,
        /// The address tried (no password).
        address: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Connection details of the local services.
#[derive(Debug, Clone)]
pub struct Services {
    /// Kafka bootstrap servers, e.g. `127.0.0.1:19092`.
    pub kafka_bootstrap: String,
    /// PostgreSQL admin URL.
    pub postgres_url: String,
    /// Redis URL with the admin ACL user.
    pub redis_url: String,
    /// OpenSearch base URL, e.g. `http://127.0.0.1:19200`.
    pub opensearch_url: String,
    /// Elasticsearch base URL, e.g. `http://127.0.0.1:19201`.
    pub elasticsearch_url: String,
    /// The kubeconfig of the test Kubernetes API server.
    pub kubeconfig: String,
    /// Where `kubectl` and `helm` for it are.
    pub kube_bin: String,
}

impl Services {
    /// The `services.env` this build reads: `$SLUICE_SERVICES_ENV`, or the workspace's
    /// `.sluice/services.env`.
    pub fn env_file() -> PathBuf {
        std::env::var_os("SLUICE_SERVICES_ENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join(".sluice")
                    .join("services.env")
            })
    }

    /// Reads the service locations; a variable set in the environment wins over the file.
    pub fn load() -> Result<Self, HarnessError> {
        let path = Self::env_file();
        let file: HashMap<String, String> = dotenvy::from_path_iter(&path)
            .and_then(|iter| iter.collect())
            .map_err(|source| HarnessError::NoServicesEnv {
                path: path.clone(),
                source,
            })?;
        let get = |key: &'static str| -> Result<String, HarnessError> {
            std::env::var(key)
                .ok()
                .filter(|v| !v.is_empty())
                .or_else(|| file.get(key).cloned())
                .ok_or_else(|| HarnessError::MissingKey {
                    key,
                    path: path.clone(),
                })
        };
        let [kafka, postgres, redis, opensearch, elasticsearch] = KEYS;
        Ok(Services {
            kafka_bootstrap: get(kafka)?,
            postgres_url: get(postgres)?,
            redis_url: get(redis)?,
            opensearch_url: get(opensearch)?.trim_end_matches('/').to_owned(),
            elasticsearch_url: get(elasticsearch)?.trim_end_matches('/').to_owned(),
            kubeconfig: get("KUBECONFIG")?,
            kube_bin: get("SLUICE_TEST_KUBE_BIN")?,
        })
    }
}

/// The services of this test run, loaded once; panics with "run `make services`" when they
/// are not set up, because a test without its services must fail, not skip.
pub fn services() -> &'static Services {
    static SERVICES: OnceLock<Services> = OnceLock::new();
    SERVICES.get_or_init(|| match Services::load() {
        Ok(services) => services,
        Err(err) => panic!("{err}"),
    })
}
