//! Kubernetes mode (`sluice serve --kubernetes`): custom resources are a second front door
//! to the metadata store, which stays the one source of truth.
//!
//! The replica holding the Lease `sluice-controller` runs a kube-runtime controller over
//! the DataProduct objects of every namespace and the objects it owns (worker Deployments,
//! their Secrets and PodDisruptionBudgets). See `docs/kubernetes.md`.

pub mod catalog;
pub mod dedicated;
pub mod lease;
pub mod products;
pub mod workers;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::DynamicObject;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::watcher;
use kube::{Api, Client};
use sluice_schemas::{Condition, ConditionStatus, Kind};

use crate::state::AppState;

/// The store label saying a product comes from a Kubernetes object.
pub const MANAGED_LABEL: &str = "sluice.dev/managed-by";
/// The store label naming the namespace of the object a product comes from.
pub const NAMESPACE_LABEL: &str = "sluice.dev/namespace";
/// The store label naming the cluster-scoped object a catalog entry comes from.
pub const OBJECT_LABEL: &str = "sluice.dev/object";
/// The Lease the replicas elect their leader with.
pub const LEASE_NAME: &str = "sluice-controller";

/// How the front door runs.
#[derive(Debug, Clone)]
pub struct KubeSettings {
    /// The image of worker Deployments.
    pub worker_image: String,
    /// The namespaces whose objects are taken in; empty for all.
    pub namespaces: Vec<String>,
    /// The label selector the objects taken in must match; `None` for all.
    pub selector: Option<String>,
    /// The settings workers get (`SLUICE_DATABASE_URL`, `SLUICE_KAFKA_BOOTSTRAP`, ...).
    pub worker_settings: BTreeMap<String, String>,
}

/// What the reconcilers share.
pub struct Context {
    /// The API's state: the store and the policy products are applied with.
    pub state: AppState,
    /// The Kubernetes client.
    pub client: Client,
    /// Who records Events.
    pub reporter: Reporter,
    /// Settings.
    pub settings: KubeSettings,
    /// Sluice's own namespace: where its Lease and target clusters' credential Secrets are.
    pub namespace: String,
}

/// Why a reconcile pass did not finish.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The Kubernetes API refused or failed a call.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Store(#[source] sluice_store::StoreError),
    /// A namespaced object came without a namespace.
    #[error("the object has no namespace")]
    NoNamespace,
    /// An object came without the name or uid an owner reference needs.
    #[error("the object has no name or uid")]
    Unidentified,
    /// Sluice refused a change (e.g. deleting a product it cannot delete).
    #[error("{0}")]
    Refused(String),
    /// The product is still being torn down; the finalizer stays.
    #[error("{0} is being torn down")]
    TearingDown(String),
    /// The finalizer helper failed.
    #[error(transparent)]
    Finalizer(Box<kube::runtime::finalizer::Error<KubeError>>),
}

/// Why the front door cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("cannot reach Kubernetes (KUBECONFIG or the in-cluster service account): {0}")]
    Client(#[source] kube::Error),
}

/// The client of the cluster: from `KUBECONFIG` (or `~/.kube/config`), or the in-cluster
/// service account.
pub async fn connect() -> Result<Client, StartError> {
    Client::try_default().await.map_err(StartError::Client)
}

/// Runs the front door until `shutdown` resolves: campaigns for the Lease, runs the
/// controller while holding it, and gives it up on the way out.
pub async fn run(
    state: AppState,
    client: Client,
    settings: KubeSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    let namespace = std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let identity = std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| {
            format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "sluice".to_owned()),
                std::process::id()
            )
        });
    let lock = lease::LeaseLock::new(client.clone(), &namespace, LEASE_NAME, &identity);
    let ctx = Arc::new(Context {
        state,
        client: client.clone(),
        reporter: Reporter {
            controller: "sluice".to_owned(),
            instance: Some(identity.clone()),
        },
        settings,
        namespace: namespace.clone(),
    });
    tokio::pin!(shutdown);
    loop {
        // Campaign until this replica holds the Lease.
        loop {
            match lock.try_acquire_or_renew().await {
                Ok(true) => break,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "cannot read the leader Lease"),
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(lease::RENEW_EVERY) => {}
            }
        }
        tracing::info!(
            identity = lock.identity(),
            namespace,
            "holding the Lease: reconciling custom resources"
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let controller = tokio::spawn(run_controller(ctx.clone(), async move {
            let _ = stopped.await;
        }));
        let mut renewed = Instant::now();
        let lost = loop {
            tokio::select! {
                () = &mut shutdown => break false,
                () = tokio::time::sleep(lease::RENEW_EVERY) => {}
            }
            match lock.try_acquire_or_renew().await {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => break true,
                Err(error) => {
                    tracing::warn!(%error, "cannot renew the leader Lease");
                    // Stop acting before another replica may take the Lease over.
                    let margin =
                        Duration::from_secs(u64::from(lease::LEASE_SECONDS.unsigned_abs()))
                            - lease::RENEW_EVERY;
                    if renewed.elapsed() >= margin {
                        break true;
                    }
                }
            }
        };
        let _ = stop.send(());
        let _ = controller.await;
        if lost {
            tracing::warn!("lost the leader Lease: no longer reconciling custom resources");
            continue;
        }
        if let Err(error) = lock.release().await {
            tracing::warn!(%error, "cannot give up the leader Lease; it expires by itself");
        }
        return;
    }
}

/// The kube-runtime controllers: over DataProducts and the objects they own, and over
/// Datasets and TargetClusters.
async fn run_controller(ctx: Arc<Context>, stop: impl Future<Output = ()> + Send + 'static) {
    let stop = futures_util::FutureExt::shared(Box::pin(stop));
    let catalog = |kind: Kind| {
        let reconcile = match kind {
            Kind::TargetCluster => {
                |o, c| Box::pin(catalog::reconcile_target_cluster(o, c)) as CatalogFuture
            }
            _ => |o, c| Box::pin(catalog::reconcile_dataset(o, c)) as CatalogFuture,
        };
        Controller::new_with(
            Api::<DynamicObject>::all_with(ctx.client.clone(), &catalog::resource(kind)),
            selected(&ctx.settings),
            catalog::resource(kind),
        )
        .graceful_shutdown_on(stop.clone())
        .run(reconcile, catalog_error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile of a catalog object did not finish");
            }
        })
    };
    tokio::join!(
        products_controller(ctx.clone(), stop.clone()),
        catalog(Kind::Dataset),
        catalog(Kind::TargetCluster),
    );
}

/// The annotation whose value becomes an entry's description.
pub const DESCRIPTION_ANNOTATION: &str = "sluice.dev/description";
/// The annotation with an entry's tags, comma separated.
pub const TAGS_ANNOTATION: &str = "sluice.dev/tags";

/// Sets `metadata`'s description and tags from an object's annotations.
pub(crate) fn describe(metadata: &mut serde_json::Value, annotations: &BTreeMap<String, String>) {
    if let Some(description) = annotations.get(DESCRIPTION_ANNOTATION) {
        metadata["description"] = serde_json::json!(description);
    }
    if let Some(tags) = annotations.get(TAGS_ANNOTATION) {
        let tags: Vec<&str> = tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        metadata["tags"] = serde_json::json!(tags);
    }
}

/// A condition of `kind`, keeping its `lastTransitionTime` from `previous` while its status
/// and message stay the same.
pub(crate) fn condition(
    previous: &[Condition],
    kind: &str,
    status: ConditionStatus,
    reason: &str,
    message: String,
) -> Condition {
    let since = previous
        .iter()
        .find(|c| c.condition_type == kind && c.status == status && c.message == message)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    Condition {
        condition_type: kind.to_owned(),
        status,
        reason: reason.to_owned(),
        message,
        last_transition_time: since,
    }
}

/// `name` cut to `max` characters with a hash of the whole, when longer: Kubernetes names
/// and label values have limits that product names may pass once prefixed.
pub(crate) fn short_name(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let digest = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(name));
    let keep = name[..max - 9].trim_end_matches('-');
    format!("{keep}-{}", &hex::encode(digest)[..8])
}

/// The watch over the custom resources this server takes in.
fn selected(settings: &KubeSettings) -> watcher::Config {
    match &settings.selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    }
}

type CatalogFuture = std::pin::Pin<Box<dyn Future<Output = Result<Action, KubeError>> + Send>>;

/// Retries a catalog object after a pause.
fn catalog_error_policy(object: Arc<DynamicObject>, error: &KubeError, _: Arc<Context>) -> Action {
    tracing::warn!(
        name = object.metadata.name.as_deref().unwrap_or(""),
        %error,
        "catalog object reconcile failed; retrying"
    );
    Action::requeue(Duration::from_secs(10))
}

/// The controller over DataProducts and the objects they own.
async fn products_controller(
    ctx: Arc<Context>,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=sluice");
    Controller::new_with(
        Api::<products::ProductObject>::all_with(client.clone(), &products::resource()),
        selected(&ctx.settings),
        products::resource(),
    )
    .owns(Api::<Deployment>::all(client.clone()), owned.clone())
    .owns(Api::<Secret>::all(client.clone()), owned.clone())
    .owns(
        Api::<PodDisruptionBudget>::all(client.clone()),
        owned.clone(),
    )
    .owns(Api::<StatefulSet>::all(client.clone()), owned.clone())
    .owns(Api::<Service>::all(client), owned)
    .graceful_shutdown_on(stop)
    .run(products::reconcile, error_policy, ctx)
    .for_each(|result| async move {
        if let Err(error) = result {
            tracing::debug!(%error, "reconcile of a DataProduct object did not finish");
        }
    })
    .await;
}

/// Retries: soon while a teardown is under way, with a pause after a failure.
fn error_policy(
    object: Arc<products::ProductObject>,
    error: &KubeError,
    _: Arc<Context>,
) -> Action {
    let teardown = matches!(error, KubeError::Finalizer(e)
        if matches!(&**e, kube::runtime::finalizer::Error::CleanupFailed(KubeError::TearingDown(_))));
    if teardown {
        return Action::requeue(Duration::from_secs(2));
    }
    tracing::warn!(
        namespace = object.metadata.namespace.as_deref().unwrap_or(""),
        name = object.metadata.name.as_deref().unwrap_or(""),
        %error,
        "DataProduct reconcile failed; retrying"
    );
    Action::requeue(Duration::from_secs(10))
}
