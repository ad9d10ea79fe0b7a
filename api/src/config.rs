//! Server configuration: defaults, an optional YAML file, the local `services.env` and
//! `SLUICE_*` environment variables.
//!
//! Precedence, highest first: environment variables, the `--config` file, the data
//! directory's `services.env` (written by `make services`, so a developer's `sluice serve`
//! finds the local Kafka without setup), built-in defaults. An empty variable counts as unset.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::auth::jwt::{
    DEFAULT_NAME_CLAIM, DEFAULT_ROLE_CLAIM, DEFAULT_TEAM_CLAIM, JwksSource, OidcSettings,
};

/// Environment variable: the address the API listens on.
pub const ENV_LISTEN: &str = "SLUICE_LISTEN";
/// Environment variable: the metadata store (`sqlite://…` or `postgres://…`).
pub const ENV_DATABASE_URL: &str = "SLUICE_DATABASE_URL";
/// Environment variable: the Kafka bootstrap servers.
pub const ENV_KAFKA_BOOTSTRAP: &str = "SLUICE_KAFKA_BOOTSTRAP";
/// Environment variable: the admin API token created on first start.
pub const ENV_ADMIN_TOKEN: &str = "SLUICE_ADMIN_TOKEN";
/// Environment variable: the key that encrypts secrets at rest and signs audit checkpoints.
pub const ENV_SECRET_KEY: &str = "SLUICE_SECRET_KEY";
/// Environment variable: the directory for local state (SQLite file, `services.env`).
pub const ENV_DATA_DIR: &str = "SLUICE_DATA_DIR";
/// Environment variable: the approval policy file (YAML, see `docs/approvals.md`).
pub const ENV_POLICY_FILE: &str = "SLUICE_POLICY_FILE";
/// Environment variable: the OIDC issuer whose JWTs are accepted (`iss`); setting it turns
/// OIDC sign-in on.
pub const ENV_OIDC_ISSUER: &str = "SLUICE_OIDC_ISSUER";
/// Environment variable: the audience OIDC JWTs must be issued for (`aud`).
pub const ENV_OIDC_AUDIENCE: &str = "SLUICE_OIDC_AUDIENCE";
/// Environment variable: the issuer's signing keys, a JWKS file path or `http(s)` URL.
pub const ENV_OIDC_JWKS: &str = "SLUICE_OIDC_JWKS";
/// Environment variable: the JWT claim holding the caller's team (default `team`).
pub const ENV_OIDC_TEAM_CLAIM: &str = "SLUICE_OIDC_TEAM_CLAIM";
/// Environment variable: the JWT claim holding the caller's role (default `role`).
pub const ENV_OIDC_ROLE_CLAIM: &str = "SLUICE_OIDC_ROLE_CLAIM";
/// Environment variable: the JWT claim naming the caller (default `email`, else `sub`).
pub const ENV_OIDC_NAME_CLAIM: &str = "SLUICE_OIDC_NAME_CLAIM";
/// Environment variable: the provider's authorization endpoint, where the console sends
/// people to sign in (authorization code with PKCE).
pub const ENV_OIDC_AUTHORIZE_URL: &str = "SLUICE_OIDC_AUTHORIZE_URL";
/// Environment variable: the provider's token endpoint, where the console exchanges the
/// code for tokens.
pub const ENV_OIDC_TOKEN_URL: &str = "SLUICE_OIDC_TOKEN_URL";
/// Environment variable: the console's OAuth client id at the provider.
pub const ENV_OIDC_CLIENT_ID: &str = "SLUICE_OIDC_CLIENT_ID";

/// Environment variable: how often the controller reconciles every product without a change
/// (a duration such as `30s`; default 30 s).
pub const ENV_CONTROLLER_RESYNC: &str = "SLUICE_CONTROLLER_RESYNC";
/// Environment variable: the longest wait before the controller retries a failing product
/// (default 60 s).
pub const ENV_CONTROLLER_MAX_BACKOFF: &str = "SLUICE_CONTROLLER_MAX_BACKOFF";
/// Environment variable: how often registered target clusters are checked (default 60 s).
pub const ENV_CLUSTER_CHECK_INTERVAL: &str = "SLUICE_CLUSTER_CHECK_INTERVAL";
/// Environment variable: the replication factor of the topics Sluice creates (default 1).
pub const ENV_KAFKA_REPLICATION: &str = "SLUICE_KAFKA_REPLICATION";
/// Environment variable: whether `sluice serve` runs stream jobs itself (`in-process`, the
/// default) or leaves them to `sluice worker` processes (`off`).
pub const ENV_JOBS: &str = "SLUICE_JOBS";
/// Environment variable: how many MiB of lookup-table rows (and as many of window-join
/// records, and of `propagate` state) one job keeps in memory before they move to an on-disk store under the data
/// directory (default 256).
pub const ENV_JOB_STATE_MEMORY: &str = "SLUICE_JOB_STATE_MEMORY";
/// Environment variable: how many slices a product version's job is split in, so several
/// processes share one job (default 1; capped by the driving source's partitions).
pub const ENV_JOB_SLICES: &str = "SLUICE_JOB_SLICES";

/// Environment variable: `true` runs the Kubernetes front door (`sluice serve --kubernetes`):
/// DataProduct, Dataset and TargetCluster custom resources sync into the metadata store.
pub const ENV_KUBERNETES: &str = "SLUICE_KUBERNETES";
/// Environment variable: the container image of the worker Deployments created in
/// Kubernetes mode (default `sluice:<version>`).
pub const ENV_WORKER_IMAGE: &str = "SLUICE_WORKER_IMAGE";

/// Environment variable: the namespaces whose DataProduct objects this server takes in,
/// comma separated (default: every namespace).
pub const ENV_KUBERNETES_NAMESPACES: &str = "SLUICE_KUBERNETES_NAMESPACES";

/// Environment variable: a label selector (`team=payments,tier!=test`) that the custom
/// resources this server takes in must match (default: all of them).
pub const ENV_KUBERNETES_SELECTOR: &str = "SLUICE_KUBERNETES_SELECTOR";

const ALL_VARIABLES: [&str; 27] = [
    ENV_KUBERNETES,
    ENV_KUBERNETES_SELECTOR,
    ENV_KUBERNETES_NAMESPACES,
    ENV_WORKER_IMAGE,
    ENV_JOBS,
    ENV_JOB_SLICES,
    ENV_JOB_STATE_MEMORY,
    ENV_KAFKA_REPLICATION,
    ENV_CONTROLLER_RESYNC,
    ENV_CONTROLLER_MAX_BACKOFF,
    ENV_CLUSTER_CHECK_INTERVAL,
    ENV_LISTEN,
    ENV_POLICY_FILE,
    ENV_DATABASE_URL,
    ENV_KAFKA_BOOTSTRAP,
    ENV_ADMIN_TOKEN,
    ENV_SECRET_KEY,
    ENV_DATA_DIR,
    ENV_OIDC_ISSUER,
    ENV_OIDC_AUDIENCE,
    ENV_OIDC_JWKS,
    ENV_OIDC_TEAM_CLAIM,
    ENV_OIDC_ROLE_CLAIM,
    ENV_OIDC_NAME_CLAIM,
    ENV_OIDC_AUTHORIZE_URL,
    ENV_OIDC_TOKEN_URL,
    ENV_OIDC_CLIENT_ID,
];

/// The default listen address: loopback only, so a fresh `sluice serve` exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = ".sluice";

/// A value that must never be logged or returned: its `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why the configuration could not be loaded; each variant names the file or variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` file could not be read.
    #[error("cannot read config file {}", path.display())]
    ReadFile {
        /// The file given.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The `--config` file is not valid YAML of the expected shape.
    #[error("invalid config file {}: {source}", path.display())]
    ParseFile {
        /// The file given.
        path: PathBuf,
        /// The parser's reason, with line and column.
        #[source]
        source: serde_yaml::Error,
    },
    /// `services.env` exists but cannot be parsed.
    #[error("invalid {}: {source}", path.display())]
    ServicesEnv {
        /// The file found in the data directory.
        path: PathBuf,
        /// The parser's reason.
        #[source]
        source: dotenvy::Error,
    },
    /// An environment variable holds bytes that are not UTF-8.
    #[error("{key}: value is not valid UTF-8")]
    NotUnicode {
        /// The variable.
        key: &'static str,
    },
    /// A setting has a value of the wrong form.
    #[error("{key}: invalid value `{value}`: {reason}")]
    Invalid {
        /// The variable or file key.
        key: &'static str,
        /// The value given (never a secret).
        value: String,
        /// What form was expected.
        reason: &'static str,
    },
    /// A setting is missing that another one requires.
    #[error("{key} is required when {because} is set")]
    Required {
        /// The missing variable.
        key: &'static str,
        /// The variable that requires it.
        because: &'static str,
    },
}

/// The settings of a `sluice serve` process.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the API listens (`SLUICE_LISTEN`).
    pub listen: SocketAddr,
    /// Directory for local state (`SLUICE_DATA_DIR`, default `.sluice`).
    pub data_dir: PathBuf,
    /// Metadata store URL (`SLUICE_DATABASE_URL`, default a SQLite file in the data dir).
    pub database_url: String,
    /// Kafka bootstrap servers (`SLUICE_KAFKA_BOOTSTRAP`), if configured.
    pub kafka_bootstrap: Option<String>,
    /// Admin token to create on first start (`SLUICE_ADMIN_TOKEN`).
    pub admin_token: Option<Secret>,
    /// Key for secrets at rest and audit signatures (`SLUICE_SECRET_KEY`).
    pub secret_key: Option<Secret>,
    /// OIDC sign-in for people (`SLUICE_OIDC_*`); `None` when `SLUICE_OIDC_ISSUER` is unset.
    pub oidc: Option<OidcSettings>,
    /// The approval policy file (`SLUICE_POLICY_FILE`); the default policy when unset.
    pub policy_file: Option<PathBuf>,
    /// `SLUICE_CONTROLLER_RESYNC`, if set.
    pub controller_resync: Option<std::time::Duration>,
    /// `SLUICE_CONTROLLER_MAX_BACKOFF`, if set.
    pub controller_max_backoff: Option<std::time::Duration>,
    /// `SLUICE_CLUSTER_CHECK_INTERVAL`, if set.
    pub cluster_check_interval: Option<std::time::Duration>,
    /// `SLUICE_KAFKA_REPLICATION`: the replication factor of created topics (default 1).
    pub kafka_replication: i32,
    /// `SLUICE_JOBS`: whether `serve` runs stream jobs in-process (default true).
    pub jobs_in_process: bool,
    /// Whether the Kubernetes front door runs (`SLUICE_KUBERNETES`, `--kubernetes`).
    pub kubernetes: bool,
    /// The image of the worker Deployments in Kubernetes mode (`SLUICE_WORKER_IMAGE`).
    pub worker_image: String,
    /// The namespaces taken in (`SLUICE_KUBERNETES_NAMESPACES`); empty for all.
    pub kubernetes_namespaces: Vec<String>,
    /// The label selector custom resources must match (`SLUICE_KUBERNETES_SELECTOR`).
    pub kubernetes_selector: Option<String>,
    /// `SLUICE_JOB_STATE_MEMORY` in bytes, if set.
    pub job_state_memory: Option<usize>,
    /// `SLUICE_JOB_SLICES`, if set.
    pub job_slices: Option<u32>,
}

/// The `--config` file: the same settings as the variables, in camelCase.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<String>,
    database_url: Option<String>,
    kafka_bootstrap: Option<String>,
    admin_token: Option<String>,
    secret_key: Option<String>,
    policy_file: Option<String>,
    oidc_issuer: Option<String>,
    oidc_audience: Option<String>,
    oidc_jwks: Option<String>,
    oidc_team_claim: Option<String>,
    oidc_role_claim: Option<String>,
    oidc_name_claim: Option<String>,
    oidc_authorize_url: Option<String>,
    oidc_token_url: Option<String>,
    oidc_client_id: Option<String>,
    controller_resync: Option<String>,
    controller_max_backoff: Option<String>,
    cluster_check_interval: Option<String>,
    kafka_replication: Option<String>,
    jobs: Option<String>,
    kubernetes: Option<String>,
    kubernetes_namespaces: Option<String>,
    kubernetes_selector: Option<String>,
    worker_image: Option<String>,
    job_state_memory: Option<String>,
    job_slices: Option<String>,
}

impl FileConfig {
    fn get(&self, key: &str) -> Option<&str> {
        let value = match key {
            ENV_LISTEN => &self.listen,
            ENV_DATA_DIR => &self.data_dir,
            ENV_DATABASE_URL => &self.database_url,
            ENV_KAFKA_BOOTSTRAP => &self.kafka_bootstrap,
            ENV_ADMIN_TOKEN => &self.admin_token,
            ENV_SECRET_KEY => &self.secret_key,
            ENV_POLICY_FILE => &self.policy_file,
            ENV_OIDC_ISSUER => &self.oidc_issuer,
            ENV_OIDC_AUDIENCE => &self.oidc_audience,
            ENV_OIDC_JWKS => &self.oidc_jwks,
            ENV_OIDC_TEAM_CLAIM => &self.oidc_team_claim,
            ENV_OIDC_ROLE_CLAIM => &self.oidc_role_claim,
            ENV_OIDC_NAME_CLAIM => &self.oidc_name_claim,
            ENV_OIDC_AUTHORIZE_URL => &self.oidc_authorize_url,
            ENV_OIDC_TOKEN_URL => &self.oidc_token_url,
            ENV_OIDC_CLIENT_ID => &self.oidc_client_id,
            ENV_CONTROLLER_RESYNC => &self.controller_resync,
            ENV_CONTROLLER_MAX_BACKOFF => &self.controller_max_backoff,
            ENV_CLUSTER_CHECK_INTERVAL => &self.cluster_check_interval,
            ENV_KAFKA_REPLICATION => &self.kafka_replication,
            ENV_JOBS => &self.jobs,
            ENV_KUBERNETES => &self.kubernetes,
            ENV_KUBERNETES_NAMESPACES => &self.kubernetes_namespaces,
            ENV_KUBERNETES_SELECTOR => &self.kubernetes_selector,
            ENV_WORKER_IMAGE => &self.worker_image,
            ENV_JOB_STATE_MEMORY => &self.job_state_memory,
            ENV_JOB_SLICES => &self.job_slices,
            _ => &None,
        };
        value.as_deref()
    }
}

impl Config {
    /// Loads the configuration of this process: its environment and an optional file.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut env = HashMap::new();
        for key in ALL_VARIABLES {
            match std::env::var(key) {
                Ok(value) => {
                    env.insert(key.to_owned(), value);
                }
                Err(std::env::VarError::NotPresent) => {}
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(ConfigError::NotUnicode { key });
                }
            }
        }
        Self::from_sources(file, &env)
    }

    /// Loads the configuration from an explicit environment map and an optional file.
    pub fn from_sources(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let file = match file {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let explicit = |key: &str| -> Option<String> {
            non_empty(env.get(key).map(String::as_str))
                .or_else(|| non_empty(file.get(key)))
                .map(str::to_owned)
        };

        let data_dir = PathBuf::from(explicit(ENV_DATA_DIR).unwrap_or(DEFAULT_DATA_DIR.into()));
        let services = read_services_env(&data_dir.join("services.env"))?;
        let lookup = |key: &str| -> Option<String> {
            explicit(key)
                .or_else(|| non_empty(services.get(key).map(String::as_str)).map(Into::into))
        };

        let listen_text = lookup(ENV_LISTEN).unwrap_or(DEFAULT_LISTEN.into());
        let listen = listen_text
            .parse::<SocketAddr>()
            .map_err(|_| ConfigError::Invalid {
                key: ENV_LISTEN,
                value: listen_text.clone(),
                reason: "expected HOST:PORT with an IP address, e.g. 127.0.0.1:8080",
            })?;

        let database_url = lookup(ENV_DATABASE_URL).unwrap_or_else(|| {
            format!("sqlite://{}?mode=rwc", data_dir.join("sluice.db").display())
        });
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                key: ENV_DATABASE_URL,
                value: redact_url(&database_url),
                reason: "expected a sqlite: or postgres:// URL",
            });
        }

        let oidc = oidc_settings(&lookup)?;

        Ok(Config {
            listen,
            data_dir,
            database_url,
            kafka_bootstrap: lookup(ENV_KAFKA_BOOTSTRAP),
            admin_token: lookup(ENV_ADMIN_TOKEN).map(Secret),
            secret_key: lookup(ENV_SECRET_KEY).map(Secret),
            oidc,
            policy_file: lookup(ENV_POLICY_FILE).map(PathBuf::from),
            controller_resync: interval(&lookup, ENV_CONTROLLER_RESYNC)?,
            controller_max_backoff: interval(&lookup, ENV_CONTROLLER_MAX_BACKOFF)?,
            cluster_check_interval: interval(&lookup, ENV_CLUSTER_CHECK_INTERVAL)?,
            kafka_replication: replication(&lookup)?,
            jobs_in_process: match lookup(ENV_JOBS).as_deref() {
                None | Some("in-process") => true,
                Some("off") => false,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        key: ENV_JOBS,
                        value: other.to_owned(),
                        reason: "expected `in-process` or `off`",
                    });
                }
            },
            kubernetes: match lookup(ENV_KUBERNETES).as_deref() {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        key: ENV_KUBERNETES,
                        value: other.to_owned(),
                        reason: "expected `true` or `false`",
                    });
                }
            },
            kubernetes_namespaces: lookup(ENV_KUBERNETES_NAMESPACES)
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            kubernetes_selector: lookup(ENV_KUBERNETES_SELECTOR),
            worker_image: lookup(ENV_WORKER_IMAGE)
                .unwrap_or_else(|| format!("sluice:{}", env!("CARGO_PKG_VERSION"))),
            job_state_memory: match lookup(ENV_JOB_STATE_MEMORY) {
                None => None,
                Some(text) => Some(
                    text.parse::<usize>()
                        .ok()
                        .and_then(|mib| mib.checked_mul(1 << 20))
                        .ok_or(ConfigError::Invalid {
                            key: ENV_JOB_STATE_MEMORY,
                            value: text.clone(),
                            reason: "expected a number of MiB",
                        })?,
                ),
            },
            job_slices: match lookup(ENV_JOB_SLICES) {
                None => None,
                Some(text) => Some(
                    text.parse::<u32>()
                        .ok()
                        .filter(|n| (1..=1024).contains(n))
                        .ok_or(ConfigError::Invalid {
                            key: ENV_JOB_SLICES,
                            value: text.clone(),
                            reason: "expected a number of slices from 1 to 1024",
                        })?,
                ),
            },
        })
    }
}

/// `SLUICE_KAFKA_REPLICATION`: a replication factor from 1 to 32767 (default 1).
fn replication(lookup: &dyn Fn(&str) -> Option<String>) -> Result<i32, ConfigError> {
    let Some(text) = lookup(ENV_KAFKA_REPLICATION) else {
        return Ok(1);
    };
    text.parse::<i16>()
        .ok()
        .filter(|n| *n >= 1)
        .map(i32::from)
        .ok_or(ConfigError::Invalid {
            key: ENV_KAFKA_REPLICATION,
            value: text.clone(),
            reason: "expected a replication factor from 1 to 32767",
        })
}

/// A positive duration setting such as `30s` or `5m`.
fn interval(
    lookup: &dyn Fn(&str) -> Option<String>,
    key: &'static str,
) -> Result<Option<std::time::Duration>, ConfigError> {
    let Some(text) = lookup(key) else {
        return Ok(None);
    };
    let parsed =
        sluice_schemas::time::parse_positive_duration(&text).map_err(|_| ConfigError::Invalid {
            key,
            value: text.clone(),
            reason: "expected a positive duration such as 500ms, 30s or 5m",
        })?;
    Ok(Some(parsed))
}

/// The OIDC settings: off without an issuer; with one, the audience and JWKS are required.
fn oidc_settings(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<OidcSettings>, ConfigError> {
    let Some(issuer) = lookup(ENV_OIDC_ISSUER) else {
        // Any other OIDC setting without an issuer is a half-done configuration.
        for key in [
            ENV_OIDC_AUDIENCE,
            ENV_OIDC_JWKS,
            ENV_OIDC_AUTHORIZE_URL,
            ENV_OIDC_TOKEN_URL,
            ENV_OIDC_CLIENT_ID,
        ] {
            if lookup(key).is_some() {
                return Err(ConfigError::Required {
                    key: ENV_OIDC_ISSUER,
                    because: key,
                });
            }
        }
        return Ok(None);
    };
    let required = |key: &'static str| {
        lookup(key).ok_or(ConfigError::Required {
            key,
            because: ENV_OIDC_ISSUER,
        })
    };
    let audience = required(ENV_OIDC_AUDIENCE)?;
    let jwks_text = required(ENV_OIDC_JWKS)?;
    let jwks = JwksSource::parse(&jwks_text);
    if let JwksSource::Url(url) = &jwks
        && url::Url::parse(url).map_or(true, |u| u.host_str().is_none())
    {
        return Err(ConfigError::Invalid {
            key: ENV_OIDC_JWKS,
            value: redact_url(url),
            reason: "expected a JWKS file path or an http(s) URL with a host",
        });
    }
    let claim = |key: &'static str, default: &str| -> Result<String, ConfigError> {
        match lookup(key) {
            None => Ok(default.to_owned()),
            Some(name) if name.trim() == name => Ok(name),
            Some(name) => Err(ConfigError::Invalid {
                key,
                value: name,
                reason: "a claim name has no surrounding spaces",
            }),
        }
    };
    let mut settings = OidcSettings::new(issuer.trim(), audience.trim(), jwks);
    settings.team_claim = claim(ENV_OIDC_TEAM_CLAIM, DEFAULT_TEAM_CLAIM)?;
    settings.role_claim = claim(ENV_OIDC_ROLE_CLAIM, DEFAULT_ROLE_CLAIM)?;
    settings.name_claim = claim(ENV_OIDC_NAME_CLAIM, DEFAULT_NAME_CLAIM)?;
    // The console's sign-in: both endpoints or neither.
    let endpoint = |key: &'static str| -> Result<Option<String>, ConfigError> {
        let Some(text) = lookup(key) else {
            return Ok(None);
        };
        let text = text.trim().to_owned();
        match url::Url::parse(&text) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some()
                    && url.password().is_none() =>
            {
                Ok(Some(text))
            }
            _ => Err(ConfigError::Invalid {
                key,
                value: redact_url(&text),
                reason: "expected an http(s) URL with a host and no credentials",
            }),
        }
    };
    settings.authorization_endpoint = endpoint(ENV_OIDC_AUTHORIZE_URL)?;
    settings.token_endpoint = endpoint(ENV_OIDC_TOKEN_URL)?;
    match (&settings.authorization_endpoint, &settings.token_endpoint) {
        (Some(_), None) => {
            return Err(ConfigError::Required {
                key: ENV_OIDC_TOKEN_URL,
                because: ENV_OIDC_AUTHORIZE_URL,
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::Required {
                key: ENV_OIDC_AUTHORIZE_URL,
                because: ENV_OIDC_TOKEN_URL,
            });
        }
        _ => {}
    }
    settings.client_id = lookup(ENV_OIDC_CLIENT_ID).map(|id| id.trim().to_owned());
    Ok(Some(settings))
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    serde_yaml::from_str(&text).map_err(|source| ConfigError::ParseFile {
        path: path.to_owned(),
        source,
    })
}

fn read_services_env(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let iter = match dotenvy::from_path_iter(path) {
        Ok(iter) => iter,
        Err(e) if e.not_found() => return Ok(HashMap::new()),
        Err(source) => {
            return Err(ConfigError::ServicesEnv {
                path: path.to_owned(),
                source,
            });
        }
    };
    iter.collect::<Result<HashMap<_, _>, _>>()
        .map_err(|source| ConfigError::ServicesEnv {
            path: path.to_owned(),
            source,
        })
}

/// Drops the password from a URL so it can appear in an error message.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:<redacted>{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
