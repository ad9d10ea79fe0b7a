//! Building the application and running the HTTP server until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::get;
use serde_json::Value;
use sluice_controller::{Controller, ControllerConfig};
use sluice_schemas::validate::MAX_DOCUMENT_BYTES;
use sluice_store::{AuditKey, SecretBox, SecretError, Store, StoreError};
use tokio::net::TcpListener;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use rand::RngCore;

use crate::auth::jwt::{OidcError, OidcVerifier};
use crate::config::{Config, ENV_OIDC_JWKS, Secret};
use crate::error::{ApiError, ErrorCode};
use crate::health;
use crate::openapi::{ApiDoc, finish};
use crate::routes::{
    approvals, audit, credentials, datasets, product_events, products, schemas, session, targets,
    tokens,
};
use crate::state::AppState;
use crate::{auth, caller};

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The metadata store could not be opened or migrated.
    #[error("cannot open the metadata store")]
    Store(#[source] StoreError),
    /// The approval policy file is missing or invalid.
    #[error("SLUICE_POLICY_FILE: {0}")]
    Policy(#[source] crate::approvals::policy::PolicyError),
    /// The secret key file could not be read or created.
    #[error("cannot read or create the secret key file {}", path.display())]
    SecretKey {
        /// The key file.
        path: std::path::PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// OIDC is configured but its signing keys cannot be loaded (unreadable or invalid JWKS
    /// file, unreachable URL).
    #[error("cannot load the OIDC signing keys from {setting}")]
    Oidc {
        /// The setting to fix.
        setting: &'static str,
        /// What went wrong.
        #[source]
        source: OidcError,
    },
    /// The listen address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address from `SLUICE_LISTEN`.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// Kubernetes mode is on but no cluster can be reached (no kubeconfig, no in-cluster
    /// service account).
    #[error("SLUICE_KUBERNETES is set but {0}")]
    Kubernetes(#[source] crate::kubernetes::StartError),
    /// `sluice worker` needs Kafka.
    #[error("SLUICE_KAFKA_BOOTSTRAP is not set: a worker has no jobs to run without Kafka")]
    NoKafka,
    /// The controller could not start.
    #[error("cannot start the controller")]
    Controller(#[source] sluice_controller::ControllerError),
    /// The server stopped with an I/O error while serving.
    #[error("HTTP server failed")]
    Serve(#[source] std::io::Error),
    /// The key that encrypts stored credentials cannot be derived from the secret key.
    #[error("cannot derive the key of stored secrets from the secret key")]
    Secrets(#[source] SecretError),
}

/// The API routes that need a caller and the OpenAPI document describing exactly the API:
/// them and the public ones ([`auth::matrix::PUBLIC`], served by [`router`] outside the
/// access check).
pub fn api() -> (Router<AppState>, Value) {
    let (router, _, openapi) = api_parts();
    (router, openapi)
}

/// The routes behind the access check, the public API routes, and the document of both.
fn api_parts() -> (Router<AppState>, Router<AppState>, Value) {
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(session::router())
        .merge(datasets::router())
        .merge(targets::router())
        .merge(products::router())
        .merge(product_events::router())
        .merge(credentials::router())
        .merge(schemas::router())
        .merge(tokens::router())
        .merge(audit::router())
        .merge(approvals::router())
        .split_for_parts();
    let (public, public_openapi) = session::public_router().split_for_parts();
    openapi.merge(public_openapi);
    (router, public, finish(openapi))
}

/// The whole HTTP application of `sluice serve` over `state`.
pub fn router(state: AppState) -> Router {
    let (api, public, openapi) = api_parts();
    let docs: Router = SwaggerUi::new("/api/docs")
        .external_url_unchecked("/api/v1/openapi.json", openapi)
        .into();
    let console = crate::console::Console::new(state.oidc.as_deref().map(|v| v.settings()));
    // The access check runs after routing (it needs the matched route), on API routes only;
    // health probes, the API description, the public API routes and the console are public.
    api.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::authorize,
    ))
    .merge(public)
    .route("/healthz", get(health::healthz))
    .route("/readyz", get(health::readyz))
    .route("/metrics", get(crate::metrics::metrics))
    .with_state(state)
    .merge(docs)
    .fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        let console = console.clone();
        async move { console.serve(&method, &uri, &headers) }
    })
    .method_not_allowed_fallback(|| async {
        ApiError::new(
            ErrorCode::MethodNotAllowed,
            "this endpoint does not take that method",
        )
    })
    .layer(DefaultBodyLimit::max(MAX_DOCUMENT_BYTES + 1024))
    .layer(axum::middleware::from_fn(caller::request_id))
}

/// Opens the store, binds `config.listen` and serves until `shutdown` resolves, then drains
/// in-flight requests. `on_bound` is told the bound address (useful when the port is 0).
pub async fn serve(
    config: &Config,
    on_bound: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (audit_key, secrets) = keys(config)?;
    // Before the store: a broken OIDC setup fails the start without touching anything.
    let oidc = match &config.oidc {
        Some(settings) => Some(Arc::new(
            OidcVerifier::new(settings.clone())
                .await
                .map_err(|source| ServeError::Oidc {
                    setting: ENV_OIDC_JWKS,
                    source,
                })?,
        )),
        None => None,
    };
    let store = Store::connect(&config.database_url, audit_key)
        .await
        .map_err(ServeError::Store)?;
    tracing::info!(backend = store.backend().as_str(), "metadata store ready");
    if let Some(token) = bootstrap_admin(&store, config.admin_token.as_ref())
        .await
        .map_err(ServeError::Store)?
    {
        // Printed, not logged: the one time this token is shown.
        println!("sluice: created the first admin token (shown once, store it now): {token}");
    }
    // Before listening: a Kubernetes mode that cannot reach its cluster fails the start.
    let kube_client = if config.kubernetes {
        Some(
            crate::kubernetes::connect()
                .await
                .map_err(ServeError::Kubernetes)?,
        )
    } else {
        None
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(ServeError::Serve)?;
    tracing::info!(addr = %bound, "sluice API listening");
    on_bound(bound);
    let mut state = AppState::new(store).with_secrets(secrets);
    if let Some(path) = &config.policy_file {
        let policy = crate::approvals::Policy::load(path).map_err(ServeError::Policy)?;
        tracing::info!(path = %path.display(), "approval policy loaded");
        state = state.with_policy(policy);
    }
    if let Some(oidc) = oidc {
        state = state.with_oidc(oidc);
    }
    if let Some(bootstrap) = &config.kafka_bootstrap {
        // Plans only read source topics; the replication factor is never used here.
        match sluice_provisioners::kafka::KafkaProvisioner::new(bootstrap, 1) {
            Ok(kafka) => state = state.with_kafka(std::sync::Arc::new(kafka)),
            Err(error) => tracing::warn!(
                %error,
                bootstrap,
                "no Kafka client: plans will have no backfill estimate"
            ),
        }
    }
    let sweeper = tokio::spawn(crate::expiry::run(state.store.clone()));
    let (stop_controller, controller_stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = match controller_config(config) {
        Some(settings) => {
            let controller = Controller::new(state.store.clone(), state.secrets.clone(), settings)
                .map_err(ServeError::Controller)?;
            state = state
                .with_controller(controller.waker())
                .with_controller_metrics(controller.metrics());
            let (stop_jobs_tx, stop_jobs_rx) = tokio::sync::oneshot::channel::<()>();
            let jobs = config.jobs_in_process.then(|| {
                tokio::spawn(controller.clone().run_jobs(async move {
                    let _ = stop_jobs_rx.await;
                }))
            });
            let reconciling = tokio::spawn(controller.run(async move {
                let _ = controller_stopped.await;
            }));
            Some((reconciling, jobs, stop_jobs_tx))
        }
        None => {
            tracing::warn!(
                "SLUICE_KAFKA_BOOTSTRAP is not set: the controller does not run, so approved \
                 products are not provisioned"
            );
            None
        }
    };
    let (stop_kube, kube_stopped) = tokio::sync::oneshot::channel::<()>();
    let kubernetes = kube_client.map(|client| {
        let settings = crate::kubernetes::KubeSettings {
            worker_image: config.worker_image.clone(),
            namespaces: config.kubernetes_namespaces.clone(),
            selector: config.kubernetes_selector.clone(),
            worker_settings: worker_settings(config),
        };
        tokio::spawn(crate::kubernetes::run(
            state.clone(),
            client,
            settings,
            async move {
                let _ = kube_stopped.await;
            },
        ))
    });
    // Live streams end when shutdown begins, or the graceful shutdown would wait for them.
    let streams = state.clone();
    let shutdown = async move {
        shutdown.await;
        streams.close_streams();
    };
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Serve);
    sweeper.abort();
    let _ = stop_kube.send(());
    if let Some(kubernetes) = kubernetes
        && let Err(error) = kubernetes.await
    {
        tracing::error!(%error, "the Kubernetes front door panicked");
    }
    let _ = stop_controller.send(());
    if let Some((reconciling, jobs, stop_jobs)) = controller {
        let _ = stop_jobs.send(());
        let _ = reconciling.await;
        if let Some(jobs) = jobs {
            let _ = jobs.await;
        }
    }
    served
}

/// Runs stream jobs only (`sluice worker`), against the metadata store and Kafka of
/// `config`, until `shutdown` resolves. Jobs are shared with `sluice serve` processes and
/// other workers through leases in the metadata store: each runs in one process at a time.
pub async fn work(
    config: &Config,
    only: Option<sluice_store::ObjectKey>,
    health: Option<SocketAddr>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (audit_key, secrets) = keys(config)?;
    let Some(settings) = controller_config(config) else {
        return Err(ServeError::NoKafka);
    };
    let store = Store::connect(&config.database_url, audit_key)
        .await
        .map_err(ServeError::Store)?;
    let controller = Controller::new(store, secrets, settings).map_err(ServeError::Controller)?;
    // A worker's only endpoint: `/healthz` for the probes of its Deployment.
    let health = match health {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })?;
            let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
            Some(tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, app).await {
                    tracing::warn!(%error, "the health endpoint stopped");
                }
            }))
        }
        None => None,
    };
    controller.run_jobs_of(only, shutdown).await;
    if let Some(health) = health {
        health.abort();
    }
    Ok(())
}

/// What the worker Deployments of Kubernetes mode are configured with: the same metadata
/// store, Kafka and keys as this process.
fn worker_settings(config: &Config) -> std::collections::BTreeMap<String, String> {
    use crate::config::{
        ENV_DATABASE_URL, ENV_JOB_STATE_MEMORY, ENV_KAFKA_BOOTSTRAP, ENV_KAFKA_REPLICATION,
        ENV_SECRET_KEY,
    };
    let mut settings = std::collections::BTreeMap::new();
    settings.insert(ENV_DATABASE_URL.to_owned(), config.database_url.clone());
    if let Some(bootstrap) = &config.kafka_bootstrap {
        settings.insert(ENV_KAFKA_BOOTSTRAP.to_owned(), bootstrap.clone());
    }
    if let Some(key) = &config.secret_key {
        settings.insert(ENV_SECRET_KEY.to_owned(), key.expose().to_owned());
    }
    settings.insert(
        ENV_KAFKA_REPLICATION.to_owned(),
        config.kafka_replication.to_string(),
    );
    if let Some(bytes) = config.job_state_memory {
        settings.insert(ENV_JOB_STATE_MEMORY.to_owned(), (bytes >> 20).to_string());
    }
    settings
}

/// The controller's settings, when Kafka is configured.
fn controller_config(config: &Config) -> Option<ControllerConfig> {
    let bootstrap = config.kafka_bootstrap.as_ref()?;
    let mut settings = ControllerConfig::new(bootstrap.clone());
    settings.replication = config.kafka_replication;
    if let Some(resync) = config.controller_resync {
        settings.resync = resync;
    }
    if let Some(max) = config.controller_max_backoff {
        settings.max_backoff = max;
    }
    if let Some(check) = config.cluster_check_interval {
        settings.cluster_check = check;
    }
    settings.job_state.dir = config.data_dir.join("state");
    if let Some(bytes) = config.job_state_memory {
        settings.job_state.memory_bytes = bytes;
    }
    if let Some(slices) = config.job_slices {
        settings.job_slices = slices;
    }
    Some(settings)
}

/// The key that signs the head of the audit log and the one that seals stored credentials,
/// both derived from `SLUICE_SECRET_KEY` (or the key file), each with its own label.
fn keys(config: &Config) -> Result<(AuditKey, SecretBox), ServeError> {
    let secret = secret_key(config)?;
    let audit_key = AuditKey::from_secret(secret.expose().as_bytes()).map_err(ServeError::Store)?;
    let secrets =
        SecretBox::from_secret(secret.expose().as_bytes()).map_err(ServeError::Secrets)?;
    Ok((audit_key, secrets))
}

/// `SLUICE_SECRET_KEY`, or the key file in the data directory, created with a random key
/// (readable by the owner only) on first start.
fn secret_key(config: &Config) -> Result<Secret, ServeError> {
    if let Some(secret) = &config.secret_key {
        return Ok(secret.clone());
    }
    let path = config.data_dir.join("secret.key");
    let io_error = |source| ServeError::SecretKey {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(Secret::new(text.trim())),
        Ok(_) => {
            return Err(io_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the key file is empty",
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(e)),
    }
    std::fs::create_dir_all(&config.data_dir).map_err(io_error)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = hex::encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(io_error)?;
    std::io::Write::write_all(&mut file, key.as_bytes()).map_err(io_error)?;
    tracing::info!(
        path = %path.display(),
        "created a secret key; keep it with the metadata store: it signs the audit log and encrypts stored secrets"
    );
    Ok(Secret::new(key))
}

/// Makes sure an admin can get in: registers `SLUICE_ADMIN_TOKEN` when given (idempotent),
/// else creates a random admin token when none exists and returns it to be shown once.
pub async fn bootstrap_admin(
    store: &Store,
    given: Option<&Secret>,
) -> Result<Option<String>, StoreError> {
    let audit = sluice_store::Audit::with_new_request_id("sluice (bootstrap)");
    let (token, name) = match given {
        Some(secret) => {
            let hash = auth::tokens::hash(secret.expose());
            if store.find_token_by_hash(&hash).await?.is_some() {
                return Ok(None);
            }
            (
                secret.expose().to_owned(),
                format!("admin-from-env-{}", &hash[..8]),
            )
        }
        None if store.has_admin_token().await? => return Ok(None),
        None => (auth::tokens::generate(), "admin".to_owned()),
    };
    let new = sluice_store::NewToken {
        name,
        team: "platform".to_owned(),
        role: auth::Role::Admin.as_str().to_owned(),
        hash: auth::tokens::hash(&token),
        expires_at: None,
    };
    match store.create_token(new, &audit).await {
        Ok(_) => Ok(given.is_none().then_some(token)),
        // Another replica registered it at the same moment.
        Err(StoreError::TokenNameTaken { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
