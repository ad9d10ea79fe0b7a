//! The controller process: campaigns for leadership, then runs reconcile passes over the
//! products — woken by changes, on a periodic resync, and when a product's backoff is due —
//! and checks the registered target clusters.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use sluice_provisioners::kafka::KafkaProvisioner;
use sluice_schemas::{DataProductStatus, Kind, TEARDOWN_FINALIZER};
use sluice_store::{Audit, ListQuery, ObjectKey, SecretBox, Store, StoredObject};
use tokio::sync::{Mutex, Notify};

use crate::catalog::ResolvedProduct;
use crate::clusters::ClusterConnections;
use crate::conditions;
use crate::metrics::ControllerMetrics;
use crate::reconcile::{self, Outcome, ReconcileError, decode_status, is_managed};

/// Who the controller is in the audit log.
pub const CONTROLLER_ACTOR: &str = "sluice (controller)";

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Kafka bootstrap servers.
    pub kafka_bootstrap: String,
    /// Replication factor of the topics it creates.
    pub replication: i32,
    /// How often every product is reconciled even without a change.
    pub resync: Duration,
    /// The longest wait before retrying a failing product.
    pub max_backoff: Duration,
    /// How often registered target clusters are checked.
    pub cluster_check: Duration,
    /// How many products are reconciled at once.
    pub concurrency: usize,
    /// How much memory each job's lookup tables may take before they move to disk, and
    /// where.
    pub job_state: sluice_pipeline::state::StateSettings,
    /// How many slices a product version's job is split in (capped by its driving
    /// source's partitions; one for window joins), so several processes share one job.
    pub job_slices: u32,
}

impl ControllerConfig {
    /// The defaults for `kafka_bootstrap`: resync every 30 s, backoff up to 60 s, clusters
    /// checked every 60 s, 8 products at once, replication factor 1, 256 MiB of table rows
    /// per job in memory before they go to the system's temporary directory.
    pub fn new(kafka_bootstrap: impl Into<String>) -> Self {
        ControllerConfig {
            kafka_bootstrap: kafka_bootstrap.into(),
            replication: 1,
            resync: Duration::from_secs(30),
            max_backoff: Duration::from_secs(60),
            cluster_check: Duration::from_secs(60),
            concurrency: 8,
            job_state: sluice_pipeline::state::StateSettings::default(),
            job_slices: 1,
        }
    }
}

/// Why the controller cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The Kafka admin client cannot be built.
    #[error(transparent)]
    Kafka(#[from] sluice_provisioners::kafka::KafkaProvisionError),
}

/// Wakes the controller after a change (apply, approval, deletion) so it does not wait for
/// the next resync. Cheap to clone; wakes coalesce.
#[derive(Debug, Clone, Default)]
pub struct Waker(Arc<Notify>);

impl Waker {
    /// Asks for a pass over changed products.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// What the controller shares with its passes.
pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) secrets: SecretBox,
    pub(crate) kafka: KafkaProvisioner,
    pub(crate) clusters: ClusterConnections,
    pub(crate) config: ControllerConfig,
    pub(crate) metrics: Arc<ControllerMetrics>,
    pub(crate) audit: Audit,
    /// Source topic → partition count, learned once per topic (partitions only grow, and
    /// a later resync picks up growth through `refresh_partitions`).
    partitions: Mutex<HashMap<String, i32>>,
}

/// When a product is looked at again.
#[derive(Debug, Clone, Copy)]
struct Due {
    at: Instant,
    failures: u32,
}

/// The reconciling controller. Build with [`Controller::new`], then [`Controller::run`].
#[derive(Clone)]
pub struct Controller {
    pub(crate) inner: Arc<Inner>,
    waker: Waker,
    /// Per product: when it is due (after a failure or while waiting for a job).
    due: Arc<Mutex<HashMap<ObjectKey, Due>>>,
    /// Per product: the resourceVersion the last pass left it at.
    seen: Arc<Mutex<HashMap<ObjectKey, i64>>>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Products reconciled.
    pub reconciled: usize,
    /// Of those, how many failed (they show it in their status).
    pub failed: usize,
    /// Products torn down and removed.
    pub deleted: usize,
}

impl Controller {
    /// A controller over `store`, opening cluster URLs and sealing credentials with
    /// `secrets`.
    pub fn new(
        store: Store,
        secrets: SecretBox,
        config: ControllerConfig,
    ) -> Result<Self, ControllerError> {
        let kafka = KafkaProvisioner::new(&config.kafka_bootstrap, config.replication)?;
        Ok(Controller {
            inner: Arc::new(Inner {
                store,
                secrets,
                kafka,
                clusters: ClusterConnections::default(),
                config,
                metrics: Arc::default(),
                audit: Audit::with_new_request_id(CONTROLLER_ACTOR),
                partitions: Mutex::default(),
            }),
            waker: Waker::default(),
            due: Arc::default(),
            seen: Arc::default(),
        })
    }

    /// The handle that wakes this controller.
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// The controller's counters, for `/metrics` and benchmarks.
    pub fn metrics(&self) -> Arc<ControllerMetrics> {
        Arc::clone(&self.inner.metrics)
    }

    /// Mutating calls issued to the target clusters through this controller's connections.
    pub async fn target_mutations(&self) -> u64 {
        self.inner.clusters.mutations().await
    }

    /// Runs until `shutdown` resolves: campaigns for leadership, then reconciles while it
    /// holds. Losing leadership (the lock's connection broke) stops acting and campaigns
    /// again.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        loop {
            let mut leadership = loop {
                match self.inner.store.try_lead().await {
                    Ok(Some(lead)) => break lead,
                    Ok(None) => tracing::debug!("another controller leads; waiting"),
                    Err(e) => tracing::warn!(error = %e, "cannot campaign for leadership"),
                }
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            };
            tracing::info!("controller leads: reconciling");
            // Cleared however this stops leading: lost lock, shutdown, or the task aborted.
            let _leading = LeaderFlag::raise(&self.inner.metrics);
            let mut last_resync: Option<Instant> = None;
            let mut last_check: Option<Instant> = None;
            let mut checked = HashMap::new();
            loop {
                if !leadership.holds().await {
                    tracing::warn!("controller lost leadership");
                    break;
                }
                let full = last_resync.is_none_or(|t| t.elapsed() >= self.inner.config.resync);
                if full {
                    last_resync = Some(Instant::now());
                }
                let all = last_check.is_none_or(|t| t.elapsed() >= self.inner.config.cluster_check);
                if all {
                    last_check = Some(Instant::now());
                }
                // Shutdown does not wait for a pass to finish: stopping half-way is what a
                // crash does, and the next leader's pass completes the work.
                let work = async {
                    if let Err(e) = self.pass(full).await {
                        tracing::warn!(error = %e, "reconcile pass failed");
                    }
                    crate::clusters::check(&self.inner, &mut checked, all).await;
                };
                tokio::select! {
                    () = &mut shutdown => return,
                    () = work => {}
                }
                let until_resync = self
                    .inner
                    .config
                    .resync
                    .saturating_sub(last_resync.map_or(Duration::ZERO, |t| t.elapsed()));
                let wait = match self.next_due().await {
                    Some(due) => until_resync.min(due.saturating_duration_since(Instant::now())),
                    None => until_resync,
                };
                tokio::select! {
                    () = &mut shutdown => return,
                    () = self.waker.0.notified() => {}
                    () = tokio::time::sleep(wait.max(Duration::from_millis(50))) => {}
                }
            }
            drop(leadership);
        }
    }

    /// One pass over every product the controller manages, ignoring backoff: what a
    /// resync does. For tests and benchmarks; [`Controller::run`] calls it itself.
    pub async fn reconcile_all(&self) -> Result<PassReport, sluice_store::StoreError> {
        self.due.lock().await.clear();
        self.pass(true).await
    }

    /// Checks every registered target cluster now and records the result on it.
    pub async fn check_clusters(&self) {
        crate::clusters::check(&self.inner, &mut HashMap::new(), true).await;
    }

    async fn next_due(&self) -> Option<Instant> {
        self.due.lock().await.values().map(|d| d.at).min()
    }

    /// Reconciles the products that need it: all of them on a `full` pass, otherwise those
    /// changed since the last pass and those whose backoff is due.
    async fn pass(&self, full: bool) -> Result<PassReport, sluice_store::StoreError> {
        let started = Instant::now();
        let mut candidates = Vec::new();
        let mut query = ListQuery {
            limit: ListQuery::MAX_LIMIT,
            ..ListQuery::default()
        };
        {
            let due = self.due.lock().await;
            let seen = self.seen.lock().await;
            let now = Instant::now();
            loop {
                let page = self.inner.store.list(Kind::DataProduct, &query).await?;
                for object in page.items {
                    let Some(status) = decode_status(&object) else {
                        continue;
                    };
                    if !is_managed(&status) {
                        continue;
                    }
                    let changed = seen.get(&object.key) != Some(&object.resource_version);
                    let is_due = due.get(&object.key).is_some_and(|d| d.at <= now);
                    let backing_off = due.get(&object.key).is_some_and(|d| d.at > now);
                    if full
                        || is_due
                        || (changed && !backing_off)
                        || status.deletion_requested.is_some() && changed
                    {
                        candidates.push(object);
                    }
                }
                match page.next {
                    Some(next) => query.after = Some(next),
                    None => break,
                }
            }
        }
        let report = Arc::new(Mutex::new(PassReport::default()));
        futures::stream::iter(candidates)
            .for_each_concurrent(self.inner.config.concurrency.max(1), |object| {
                let report = Arc::clone(&report);
                async move {
                    let outcome = self.reconcile_one(&object).await;
                    let mut report = report.lock().await;
                    report.reconciled += 1;
                    match outcome {
                        Err(()) => report.failed += 1,
                        Ok(Outcome::Deleted) => report.deleted += 1,
                        Ok(_) => {}
                    }
                }
            })
            .await;
        self.inner.metrics.observe_pass(started.elapsed());
        let report = report.lock().await.clone();
        Ok(report)
    }

    /// Reconciles one product and schedules when to look at it again.
    async fn reconcile_one(&self, object: &StoredObject) -> Result<Outcome, ()> {
        let started = Instant::now();
        let result = reconcile::reconcile(&self.inner, object).await;
        self.inner
            .metrics
            .observe_reconcile(started.elapsed(), result.is_err());
        let key = object.key.clone();
        // What the pass left the object at, so an unchanged product is not picked up again.
        let after = self.inner.store.get(&key).await.ok().flatten();
        let mut due = self.due.lock().await;
        let mut seen = self.seen.lock().await;
        match &after {
            Some(after) => {
                seen.insert(key.clone(), after.resource_version);
            }
            None => {
                seen.remove(&key);
            }
        }
        match result {
            Ok(Outcome::Settled) => {
                due.remove(&key);
                Ok(Outcome::Settled)
            }
            Ok(Outcome::Requeue(after)) => {
                due.insert(
                    key,
                    Due {
                        at: Instant::now() + after,
                        failures: 0,
                    },
                );
                Ok(Outcome::Requeue(after))
            }
            Ok(Outcome::Deleted) => {
                due.remove(&key);
                seen.remove(&key);
                Ok(Outcome::Deleted)
            }
            Err(e) => {
                let failures = due.get(&key).map_or(0, |d| d.failures) + 1;
                let delay = backoff(failures, self.inner.config.max_backoff);
                match &e {
                    ReconcileError::Unreachable(m) | ReconcileError::Failed(m) => {
                        tracing::info!(product = %key, retry_in = ?delay, "{m}");
                    }
                    ReconcileError::Store(e) => {
                        tracing::warn!(product = %key, retry_in = ?delay, error = %e, "metadata store error");
                    }
                }
                due.insert(
                    key,
                    Due {
                        at: Instant::now() + delay,
                        failures,
                    },
                );
                Err(())
            }
        }
    }
}

/// Shows this process as the leader on `/metrics` while it lives.
struct LeaderFlag<'a>(&'a ControllerMetrics);

impl<'a> LeaderFlag<'a> {
    fn raise(metrics: &'a ControllerMetrics) -> Self {
        metrics.set_leader(true);
        LeaderFlag(metrics)
    }
}

impl Drop for LeaderFlag<'_> {
    fn drop(&mut self) {
        self.0.set_leader(false);
    }
}

/// Capped exponential backoff: 1 s, 2 s, 4 s … up to `max`.
pub(crate) fn backoff(failures: u32, max: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(max)
}

impl Inner {
    /// The partition count of each source topic of `resolved` (0 when unknown).
    pub(crate) async fn source_partitions(&self, resolved: &ResolvedProduct) -> Vec<i32> {
        let mut counts = Vec::new();
        for source in &resolved.product.spec.sources {
            let Some(dataset) = resolved.context.dataset(&source.dataset) else {
                continue;
            };
            let topic = dataset.spec.topic.clone();
            if let Some(n) = self.partitions.lock().await.get(&topic) {
                counts.push(*n);
                continue;
            }
            match self.kafka.partition_count(&topic).await {
                Ok(Some(n)) => {
                    self.partitions.lock().await.insert(topic, n);
                    counts.push(n);
                }
                Ok(None) => counts.push(0),
                Err(e) => {
                    tracing::debug!(%topic, error = %e, "source partitions unknown");
                    counts.push(0);
                }
            }
        }
        counts
    }

    /// Writes the controller's part of `status` onto the product's latest status, retrying
    /// when another writer (the API) got there first.
    pub(crate) async fn save_status(
        &self,
        key: &ObjectKey,
        status: &DataProductStatus,
    ) -> Result<(), ReconcileError> {
        for _ in 0..5 {
            let Some(object) = self.store.get(key).await? else {
                return Ok(());
            };
            let mut fresh = decode_status(&object).unwrap_or_else(|| status.clone());
            merge_owned(&mut fresh, status);
            let value = serde_json::to_value(&fresh)
                .map_err(|e| ReconcileError::Failed(format!("cannot encode status: {e}")))?;
            match self
                .store
                .record_status(
                    key,
                    value,
                    Some(object.resource_version),
                    &self.audit,
                    "status",
                    "updated",
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ReconcileError::Unreachable(
            "the product kept changing while its status was written".to_owned(),
        ))
    }
}

/// Copies what the controller owns from `ours` onto `fresh`: phase (unless the API moved
/// it to a decision of its own meanwhile), its conditions, message, finalizers, versions,
/// progress and lag. Approval fields and other writers' conditions stay as they are.
fn merge_owned(fresh: &mut DataProductStatus, ours: &DataProductStatus) {
    use sluice_schemas::Phase;
    let deleting = fresh.deletion_requested.is_some();
    if !deleting || ours.phase == Phase::Deleting {
        fresh.phase = ours.phase;
    }
    const OWNED: [&str; 7] = [
        conditions::FRESH,
        conditions::APPROVED,
        conditions::TOPICS_READY,
        conditions::TARGET_READY,
        conditions::JOB_RUNNING,
        conditions::BACKFILL_COMPLETE,
        conditions::READY,
    ];
    fresh
        .conditions
        .retain(|c| !OWNED.contains(&c.condition_type.as_str()));
    fresh.conditions.extend(
        ours.conditions
            .iter()
            .filter(|c| OWNED.contains(&c.condition_type.as_str()))
            .cloned(),
    );
    let pending = fresh.approval.as_ref().is_some_and(|a| {
        a.rejected.is_none()
            && !a.missing().is_empty()
            && Some(a.generation) != fresh.approved_generation
    });
    if !pending {
        fresh.message.clone_from(&ours.message);
    }
    let mut finalizers = fresh.finalizers.clone();
    if ours.finalizers.iter().any(|f| f == TEARDOWN_FINALIZER)
        && !finalizers.iter().any(|f| f == TEARDOWN_FINALIZER)
    {
        finalizers.push(TEARDOWN_FINALIZER.to_owned());
    }
    fresh.finalizers = finalizers;
    fresh.target.clone_from(&ours.target);
    fresh.next_target.clone_from(&ours.next_target);
    fresh.backfill.clone_from(&ours.backfill);
    fresh.dead_letters = ours.dead_letters;
    fresh.lag_ms = ours.lag_ms;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let max = Duration::from_secs(60);
        assert_eq!(backoff(1, max), Duration::from_secs(1));
        assert_eq!(backoff(2, max), Duration::from_secs(2));
        assert_eq!(backoff(4, max), Duration::from_secs(8));
        assert_eq!(backoff(7, max), Duration::from_secs(60));
        assert_eq!(backoff(1000, max), Duration::from_secs(60));
    }
}
