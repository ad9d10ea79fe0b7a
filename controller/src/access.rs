//! How a product's readers reach its data: the target's host, port and database, the
//! stable object readers query (PostgreSQL view, Elasticsearch/OpenSearch alias, Redis key
//! prefix) and the product's own reader credentials — never the cluster's admin ones.
//!
//! Derived from what the controller provisioned: the version readers use
//! (`status.target`), planned again from the spec it was built from, in the registered
//! cluster it names. Nothing here connects to the target.

use std::fmt;

use sluice_provisioners::quote::pg_ident;
use sluice_provisioners::{TargetPlan, TargetRequest, plan_target};
use sluice_schemas::{TargetClusterSpec, TargetType};
use sluice_store::{ObjectKey, SecretBox, SecretError, Store, StoreError};
use url::Url;

use crate::catalog;
use crate::reconcile::decode_status;

/// Where and how the readers of a provisioned product connect.
#[derive(Clone, PartialEq, Eq)]
pub struct ReaderAccess {
    /// The target's type.
    pub target_type: TargetType,
    /// The registered target cluster.
    pub cluster: String,
    /// The cluster's host, from its URL.
    pub host: String,
    /// The cluster's port, from its URL or the scheme's default.
    pub port: u16,
    /// PostgreSQL: the database holding the view; Redis: the database number; otherwise
    /// `None`.
    pub database: Option<String>,
    /// What readers query: `schema.view` (PostgreSQL, each part quoted when it must be),
    /// the alias (Elasticsearch/OpenSearch) or the key prefix (Redis: keys
    /// `<prefix>:v<N>:<key>`, the live `v<N>` in `<prefix>:current`).
    pub object: String,
    /// The product's reader user or role; `None` where the target has no users
    /// (Elasticsearch/OpenSearch without a security plugin).
    pub username: Option<String>,
    /// Its password, in clear: hand it to the product's owners only, never log it.
    pub password: Option<String>,
}

impl fmt::Debug for ReaderAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReaderAccess")
            .field("target_type", &self.target_type)
            .field("cluster", &self.cluster)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("object", &self.object)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why a product's reader access cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// There is no such product.
    #[error("{0} does not exist")]
    NotFound(ObjectKey),
    /// Nothing is provisioned for readers yet (no version, or its reader's credentials are
    /// not granted yet).
    #[error("{0} is not provisioned yet")]
    NotProvisioned(ObjectKey),
    /// The provisioned version cannot be planned again (its cluster or a dataset is gone,
    /// or the target is dedicated).
    #[error("{0}")]
    Invalid(String),
    /// The stored password cannot be unsealed (the secret key changed).
    #[error("the reader's password cannot be unsealed")]
    Unseal(#[source] SecretError),
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The reader access of the product `key`, its password unsealed with `secrets`.
pub async fn reader_access(
    store: &Store,
    secrets: &SecretBox,
    key: &ObjectKey,
) -> Result<ReaderAccess, AccessError> {
    let object = store
        .get(key)
        .await?
        .ok_or_else(|| AccessError::NotFound(key.clone()))?;
    let version = decode_status(&object)
        .and_then(|s| s.target)
        .ok_or_else(|| AccessError::NotProvisioned(key.clone()))?;
    let invalid = |e: &dyn fmt::Display| AccessError::Invalid(e.to_string());
    let resolved = catalog::resolve(store, &object.document(), &version.spec)
        .await
        .map_err(|e| invalid(&e))?;
    let product = &resolved.product;
    let cluster = product.spec.target.cluster.clone().ok_or_else(|| {
        AccessError::Invalid("dedicated targets are reached in Kubernetes mode".to_owned())
    })?;
    let cluster_spec: TargetClusterSpec =
        match store.get(&ObjectKey::target_cluster(&cluster)).await? {
            Some(stored) => serde_json::from_value(stored.spec).map_err(|e| invalid(&e))?,
            None => {
                return Err(AccessError::Invalid(format!(
                    "target cluster {cluster} no longer exists"
                )));
            }
        };
    let request = TargetRequest {
        team: key.team(),
        product: key.name(),
        version: version.version,
        name: &product.spec.target.name,
        mode: product.spec.target.mode,
        options: &product.spec.target.options,
        output: &resolved.output,
    };
    let plan = plan_target(&request, cluster_spec.target_type, cluster_spec.isolation)
        .map_err(|e| invalid(&e))?;
    let endpoint = Endpoint::of(&cluster_spec)
        .ok_or_else(|| AccessError::Invalid(format!("target cluster {cluster} has no host")))?;
    let (database, object_name, reader) = match &plan {
        TargetPlan::Postgres(p) => (
            p.database.clone().or(endpoint.path),
            format!("{}.{}", sql_name(&p.schema), sql_name(&p.view)),
            Some(p.role.clone()),
        ),
        TargetPlan::Elasticsearch(p) => (None, p.alias.clone(), None),
        TargetPlan::Redis(p) => (endpoint.path, p.prefix.clone(), Some(p.user.clone())),
    };
    let (username, password) = match reader {
        None => (None, None),
        Some(reader) => {
            let stored = store
                .credentials(key)
                .await?
                .filter(|c| c.username == reader)
                .ok_or_else(|| AccessError::NotProvisioned(key.clone()))?;
            let password = secrets
                .open(&stored.sealed_password)
                .map_err(AccessError::Unseal)?;
            (Some(stored.username), Some(password))
        }
    };
    Ok(ReaderAccess {
        target_type: cluster_spec.target_type,
        cluster,
        host: endpoint.host,
        port: endpoint.port,
        database,
        object: object_name,
        username,
        password,
    })
}

/// The host, port and database path of a cluster URL (its user and password are not read).
struct Endpoint {
    host: String,
    port: u16,
    /// The first path segment, if any: the PostgreSQL database or the Redis database number.
    path: Option<String>,
}

impl Endpoint {
    fn of(cluster: &TargetClusterSpec) -> Option<Endpoint> {
        let url = Url::parse(&cluster.url).ok()?;
        let host = url.host_str()?.trim_matches(['[', ']']).to_owned();
        let default_port = match (cluster.target_type, url.scheme()) {
            (TargetType::Postgres, _) => 5432,
            (TargetType::Redis, _) => 6379,
            (TargetType::Elasticsearch, "https") => 443,
            (TargetType::Elasticsearch, _) => 80,
        };
        let path = url
            .path_segments()
            .and_then(|mut segments| segments.next())
            .filter(|segment| !segment.is_empty())
            .map(percent_decode);
        Some(Endpoint {
            host,
            port: url.port().unwrap_or(default_port),
            path,
        })
    }
}

/// `%XX` escapes of a URL path segment decoded (invalid UTF-8 kept as it was).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(Some(h)), Some(Some(l))) = (
                bytes.get(i + 1).map(|b| hex(*b)),
                bytes.get(i + 2).map(|b| hex(*b)),
            )
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_owned())
}

/// A PostgreSQL name as a reader types it: bare when it is a plain lowercase identifier,
/// quoted otherwise.
fn sql_name(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_owned()
    } else {
        pg_ident(name).unwrap_or_else(|_| name.to_owned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sluice_schemas::Isolation;

    use super::*;

    fn cluster(target_type: TargetType, url: &str) -> TargetClusterSpec {
        TargetClusterSpec {
            target_type,
            url: url.to_owned(),
            credentials_secret: None,
            isolation: Isolation::Schema,
            allowed_teams: vec![],
        }
    }

    #[test]
    fn endpoints_come_from_the_url_with_default_ports_and_never_the_password() {
        let pg = Endpoint::of(&cluster(
            TargetType::Postgres,
            "postgres://admin:s3cret@db.internal/ana%20lytics",
        ))
        .unwrap();
        assert_eq!((pg.host.as_str(), pg.port), ("db.internal", 5432));
        assert_eq!(pg.path.as_deref(), Some("ana lytics"));
        let redis = Endpoint::of(&cluster(TargetType::Redis, "redis://u:p@[::1]:16379/2")).unwrap();
        assert_eq!((redis.host.as_str(), redis.port), ("::1", 16379));
        assert_eq!(redis.path.as_deref(), Some("2"));
        let es = Endpoint::of(&cluster(
            TargetType::Elasticsearch,
            "https://search.internal",
        ))
        .unwrap();
        assert_eq!(
            (es.host.as_str(), es.port, es.path),
            ("search.internal", 443, None)
        );
    }

    #[test]
    fn sql_names_are_quoted_only_when_they_must_be() {
        assert_eq!(sql_name("orders_v"), "orders_v");
        assert_eq!(sql_name("team-payments"), "\"team-payments\"");
        assert_eq!(sql_name("Orders"), "\"Orders\"");
        assert_eq!(sql_name("1st"), "\"1st\"");
    }
}
