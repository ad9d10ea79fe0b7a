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

const ALL_VARIABLES: [&str; 6] = [
    ENV_LISTEN,
    ENV_DATABASE_URL,
    ENV_KAFKA_BOOTSTRAP,
    ENV_ADMIN_TOKEN,
    ENV_SECRET_KEY,
    ENV_DATA_DIR,
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

        Ok(Config {
            listen,
            data_dir,
            database_url,
            kafka_bootstrap: lookup(ENV_KAFKA_BOOTSTRAP),
            admin_token: lookup(ENV_ADMIN_TOKEN).map(Secret),
            secret_key: lookup(ENV_SECRET_KEY).map(Secret),
        })
    }
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
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sluice-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn defaults_listen_on_loopback_with_sqlite_in_the_data_dir() {
        let dir = temp_dir("defaults");
        let config =
            Config::from_sources(None, &env(&[(ENV_DATA_DIR, dir.to_str().unwrap())])).unwrap();
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            config.database_url,
            format!("sqlite://{}/sluice.db?mode=rwc", dir.display())
        );
        assert_eq!(config.kafka_bootstrap, None);
        assert!(config.admin_token.is_none());
    }

    #[test]
    fn environment_beats_file_beats_services_env() {
        let dir = temp_dir("precedence");
        std::fs::write(
            dir.join("services.env"),
            "SLUICE_KAFKA_BOOTSTRAP=127.0.0.1:1111\nSLUICE_LISTEN=127.0.0.1:1\nSLUICE_TEST_REDIS_URL=redis://x\n",
        )
        .unwrap();
        let file = dir.join("sluice.yaml");
        std::fs::write(&file, "listen: 127.0.0.1:2222\nsecretKey: from-file\n").unwrap();

        let config = Config::from_sources(
            Some(&file),
            &env(&[
                (ENV_DATA_DIR, dir.to_str().unwrap()),
                (ENV_SECRET_KEY, "from-env"),
                (ENV_ADMIN_TOKEN, ""),
            ]),
        )
        .unwrap();
        assert_eq!(config.kafka_bootstrap.as_deref(), Some("127.0.0.1:1111"));
        assert_eq!(config.listen, "127.0.0.1:2222".parse().unwrap());
        assert_eq!(config.secret_key.unwrap().expose(), "from-env");
        assert!(
            config.admin_token.is_none(),
            "an empty variable counts as unset"
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let dir = temp_dir("bad");
        let err = Config::from_sources(
            None,
            &env(&[
                (ENV_DATA_DIR, dir.to_str().unwrap()),
                (ENV_LISTEN, "localhost"),
            ]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("SLUICE_LISTEN: invalid value `localhost`"),
            "{err}"
        );

        let err = Config::from_sources(
            None,
            &env(&[
                (ENV_DATA_DIR, dir.to_str().unwrap()),
                (ENV_DATABASE_URL, "mysql://root:hunter2@db/x"),
            ]),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("SLUICE_DATABASE_URL"), "{text}");
        assert!(!text.contains("hunter2"), "password leaked: {text}");
    }

    #[test]
    fn unknown_file_keys_are_rejected_with_their_name() {
        let dir = temp_dir("unknown");
        let file = dir.join("sluice.yaml");
        std::fs::write(&file, "listen: 127.0.0.1:1\nlisten_addr: nope\n").unwrap();
        let err = Config::from_sources(Some(&file), &env(&[(ENV_DATA_DIR, dir.to_str().unwrap())]))
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown field `listen_addr`"),
            "{err}"
        );
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(
            format!("{secret} {secret:?}"),
            "<redacted> Secret(<redacted>)"
        );
        let dir = temp_dir("secrets");
        let config = Config::from_sources(
            None,
            &env(&[
                (ENV_DATA_DIR, dir.to_str().unwrap()),
                (ENV_ADMIN_TOKEN, "hunter2"),
            ]),
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
