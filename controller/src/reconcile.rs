//! One reconcile pass over one product: observe, act idempotently, record status.
//!
//! The pass is level-triggered: it derives everything from the product's approved spec, the
//! versions recorded in its status and what the targets show, never from what an earlier
//! pass meant to do. It records which versions exist *before* creating anything, so a
//! process killed at any point leaves nothing the next pass does not know to finish or
//! remove.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_provisioners::kafka::TopicPlan;
use sluice_provisioners::{TargetConnection, TargetError};
use sluice_schemas::product::DeletionPolicy;
use sluice_schemas::status::SourceProgress;
use sluice_schemas::{
    ConditionStatus, DataProductStatus, Phase, ProvisionedVersion, TEARDOWN_FINALIZER,
    TargetClusterSpec,
};
use sluice_store::{AuditInput, ObjectKey, StoreError, StoredObject};

use crate::catalog::{self, CatalogError, ResolvedProduct};
use crate::conditions::{
    self, APPROVED, BACKFILL_COMPLETE, FRESH, JOB_RUNNING, READY, TARGET_READY, TOPICS_READY,
};
use crate::diff::{diff_specs, requires_new_version};
use crate::plan::{Plan, plan_product};
use crate::runner::Inner;

/// How often a product waiting for its job is looked at again, besides the resync.
const JOB_POLL: Duration = Duration::from_secs(5);
/// How long Kafka may take to answer one metadata request before the product is Degraded:
/// much less than the admin requests' own timeout, so an outage shows within seconds.
const KAFKA_PROBE: Duration = Duration::from_secs(5);

/// Why a pass could not finish. The product's status says it too; the runner requeues
/// with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A system the product needs does not answer; the product is Degraded until it does.
    #[error("{0}")]
    Unreachable(String),
    /// Something a person must fix (an invalid spec, a target refusing a change).
    #[error("{0}")]
    Failed(String),
}

impl From<CatalogError> for ReconcileError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Store(e) => ReconcileError::Store(e),
            other => ReconcileError::Failed(other.to_string()),
        }
    }
}

/// What the runner should do with a product after a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to wait for: look again at the next resync.
    Settled,
    /// Waiting for something outside the controller (a job's progress): look again soon.
    Requeue(Duration),
    /// The product was torn down and its record removed.
    Deleted,
}

/// The status of a stored product, if it has one the controller understands.
pub(crate) fn decode_status(object: &StoredObject) -> Option<DataProductStatus> {
    object
        .status
        .clone()
        .and_then(|s| serde_json::from_value(s).ok())
}

/// Whether the controller has anything to do with a product in `status`.
pub(crate) fn is_managed(status: &DataProductStatus) -> bool {
    status.deletion_requested.is_some()
        || status.approved_generation.is_some()
        || !status.finalizers.is_empty()
}

/// Reconciles the product `object`.
pub(crate) async fn reconcile(
    inner: &Inner,
    object: &StoredObject,
) -> Result<Outcome, ReconcileError> {
    let Some(status) = decode_status(object) else {
        return Ok(Outcome::Settled);
    };
    if status.deletion_requested.is_some() {
        return teardown(inner, object, status).await;
    }
    let (Some(spec), Some(generation)) = (status.approved_spec.clone(), status.approved_generation)
    else {
        return Ok(Outcome::Settled);
    };
    let mut pass = Pass {
        inner,
        key: object.key.clone(),
        uid: object.uid.to_string(),
        status,
        now: now(),
    };
    let result = pass.provision(object, spec, generation).await;
    match &result {
        Ok(_) => {}
        Err(ReconcileError::Unreachable(message)) => {
            pass.status.phase = Phase::Degraded;
            pass.status.message = Some(message.clone());
            pass.not_ready("Unreachable", message);
            pass.save().await?;
        }
        Err(ReconcileError::Failed(message)) => {
            pass.status.phase = Phase::Failed;
            pass.status.message = Some(message.clone());
            pass.not_ready("Failed", message);
            pass.save().await?;
        }
        Err(ReconcileError::Store(_)) => {}
    }
    result
}

/// The state of one pass over one product.
struct Pass<'a> {
    inner: &'a Inner,
    key: ObjectKey,
    /// The incarnation of the product: job reports of another one are not its.
    uid: String,
    /// The status as this pass wants it; saved at checkpoints.
    status: DataProductStatus,
    now: String,
}

/// A version of the product resolved into a plan.
struct Planned {
    version: ProvisionedVersion,
    plan: Plan,
    /// The cluster this version lives in.
    conn: Arc<TargetConnection>,
    /// Its deletion policy.
    retain: bool,
}

impl Pass<'_> {
    async fn provision(
        &mut self,
        object: &StoredObject,
        spec: Value,
        generation: i64,
    ) -> Result<Outcome, ReconcileError> {
        let inner = self.inner;
        let document = object.document();
        if !self
            .status
            .finalizers
            .iter()
            .any(|f| f == TEARDOWN_FINALIZER)
        {
            self.status.finalizers.push(TEARDOWN_FINALIZER.to_owned());
        }
        self.set(
            APPROVED,
            ConditionStatus::True,
            "Approved",
            format!("generation {generation} is approved"),
        );
        let approved = catalog::resolve(&inner.store, &document, &spec).await?;

        // Decide which versions exist and record them before anything is created.
        let mut abandoned = None;
        match self.status.target.clone() {
            None => {
                self.status.phase = Phase::Provisioning;
                self.status.message = Some("creating topics and target objects".to_owned());
                self.status.target = Some(new_version(1, generation, &spec));
            }
            Some(current)
                if current.generation != generation
                    && self.status.next_target.as_ref().map(|n| n.generation)
                        != Some(generation) =>
            {
                let rebuild = match catalog::resolve(&inner.store, &document, &current.spec).await {
                    Ok(old) => requires_new_version(&diff_specs(
                        &old.product.spec,
                        &old.output,
                        &approved.product.spec,
                        &approved.output,
                    )),
                    Err(CatalogError::Store(e)) => return Err(e.into()),
                    // The running spec no longer validates: only a new version can follow.
                    Err(_) => true,
                };
                if rebuild {
                    abandoned = self.status.next_target.take();
                    let after = abandoned
                        .as_ref()
                        .map_or(current.version, |a| a.version.max(current.version));
                    self.status.next_target = Some(new_version(after + 1, generation, &spec));
                } else if let Some(target) = self.status.target.as_mut() {
                    target.generation = generation;
                    target.spec = spec.clone();
                }
            }
            Some(_) => {}
        }
        self.save().await?;

        if let Some(abandoned) = abandoned {
            // A newer generation replaced a version still being built: remove it.
            let planned = self
                .plan_version(&document, abandoned, &approved, &spec)
                .await?;
            self.drop_version(&planned).await?;
        }

        let Some(current) = self.status.target.clone() else {
            return Ok(Outcome::Settled);
        };
        let current = self
            .plan_version(&document, current, &approved, &spec)
            .await?;
        self.ensure_topics(&current.plan.topics).await?;
        self.set(
            TOPICS_READY,
            ConditionStatus::True,
            "Created",
            format!(
                "{} exist",
                current
                    .plan
                    .topics
                    .iter()
                    .map(|t| format!("`{}`", t.name))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        );
        match self.ensure_target(&current, true).await {
            Ok(()) => {}
            Err(TargetFailure::Drift(message)) if self.status.next_target.is_none() => {
                // The target no longer fits its version (changed by hand, or a change the
                // diff judged online but the store refuses): rebuild beside it.
                tracing::warn!(product = %self.key, %message, "target drifted; rebuilding");
                self.status.next_target = Some(new_version(
                    current.version.version + 1,
                    current.version.generation,
                    &current.version.spec,
                ));
                self.save().await?;
            }
            Err(TargetFailure::Drift(message)) => {
                self.set(TARGET_READY, ConditionStatus::False, "Drift", &message);
            }
            Err(TargetFailure::Other(e)) => return Err(e),
        }
        if let Some(target) = self.status.target.as_mut() {
            target.topic = current.plan.topics.first().map(|t| t.name.clone());
            target.location = Some(location(&current.plan));
            target.reader = reader(&current.plan);
        }

        let mut rebuilding = None;
        if let Some(next) = self.status.next_target.clone() {
            let next = self.plan_version(&document, next, &approved, &spec).await?;
            self.ensure_topics(&next.plan.topics).await?;
            self.ensure_target(&next, false)
                .await
                .map_err(TargetFailure::into_error)?;
            if let Some(building) = self.status.next_target.as_mut() {
                building.topic = next.plan.topics.first().map(|t| t.name.clone());
                building.location = Some(location(&next.plan));
                building.reader = reader(&next.plan);
            }
            let report = self.job_report(next.version.version).await?;
            if report.as_ref().is_some_and(backfill_complete) {
                self.swap(&current, &next).await?;
            } else {
                rebuilding = Some((current.version.version, next.version.version));
            }
        }

        self.observe_job(rebuilding).await
    }

    /// Reads the job report of the live version into the conditions and the phase.
    async fn observe_job(
        &mut self,
        rebuilding: Option<(u32, u32)>,
    ) -> Result<Outcome, ReconcileError> {
        let Some(target) = self.status.target.clone() else {
            return Ok(Outcome::Settled);
        };
        let report = self.job_report(target.version).await?;
        let running = report
            .as_ref()
            .and_then(|r| r.get("running"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let error = report
            .as_ref()
            .and_then(|r| r.get("error"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(error) = &error {
            let (truth, reason) = if running {
                (ConditionStatus::True, "Retrying")
            } else {
                (ConditionStatus::False, "JobFailed")
            };
            self.set(JOB_RUNNING, truth, reason, error);
        } else if running {
            self.set(
                JOB_RUNNING,
                ConditionStatus::True,
                "Running",
                "a worker runs the job",
            );
        } else {
            self.set(
                JOB_RUNNING,
                ConditionStatus::Unknown,
                "WaitingForWorker",
                format!(
                    "no worker has reported running the job of version {} yet",
                    target.version
                ),
            );
        }
        self.status.backfill = report.as_ref().map(progress).unwrap_or_default();
        self.status.dead_letters = report
            .as_ref()
            .and_then(|r| r.get("deadLetters"))
            .and_then(Value::as_u64);
        // A version's backfill happens once: a job that restarts (a worker failed over, a
        // slice moved) catches up on its own, and the product stays Live meanwhile.
        let complete = report.as_ref().is_some_and(backfill_complete)
            || conditions::is_true(&self.status, BACKFILL_COMPLETE);
        let target_ready = conditions::is_true(&self.status, TARGET_READY);
        if complete {
            self.set(
                BACKFILL_COMPLETE,
                ConditionStatus::True,
                "Complete",
                "every source was read up to the watermarks taken at job start",
            );
        } else {
            self.set(
                BACKFILL_COMPLETE,
                ConditionStatus::False,
                "Backfilling",
                format!("version {} is being backfilled", target.version),
            );
        }
        let location = target.location.clone().unwrap_or_default();
        let (phase, message) = match (target_ready, complete) {
            // A job that cannot start is not live, whatever it did before: the product says
            // why until the job runs again. (A running job that retries a write stays Live;
            // the unreachable system itself is what the product's checks report.)
            (true, _) if let (Some(error), false) = (&error, running) => (
                Phase::Degraded,
                format!("version {}: the job cannot run: {error}", target.version),
            ),
            (true, true) => (
                Phase::Live,
                format!("live: version {} in {location}", target.version),
            ),
            (true, false) => (
                Phase::Backfilling,
                format!(
                    "version {} provisioned in {location}; backfilling",
                    target.version
                ),
            ),
            (false, _) => (
                Phase::Degraded,
                "the target does not match its plan".to_owned(),
            ),
        };
        let message = match rebuilding {
            Some((live, next)) => format!(
                "{message}; version {next} is being built beside version {live}, readers stay \
                 on version {live} until it is backfilled"
            ),
            None => message,
        };
        self.status.phase = phase;
        self.status.message = Some(message);
        self.status.lag_ms = report
            .as_ref()
            .and_then(|r| r.get("lagMs"))
            .and_then(Value::as_u64)
            .filter(|_| phase == Phase::Live);
        self.check_freshness(&target);
        if phase == Phase::Live {
            self.set(
                READY,
                ConditionStatus::True,
                "Live",
                "readers get complete, live data",
            );
        } else {
            let message = self.status.message.clone().unwrap_or_default();
            self.set(READY, ConditionStatus::False, "NotLive", message);
        }
        self.save().await?;
        // A running job or a version being built is followed closely; a product whose job
        // no worker has picked up yet is looked at again on the resync, so a thousand idle
        // products do not cost a pass every few seconds.
        let following = (report.is_some() && !complete) || rebuilding.is_some();
        Ok(if following {
            Outcome::Requeue(JOB_POLL)
        } else {
            Outcome::Settled
        })
    }

    /// The report of the job of `version`, unless it names another incarnation of the
    /// product (a report written as a product of the same name was being deleted).
    /// A job in several slices reports per slice; the reports are merged into one
    /// ([`merge_reports`]).
    async fn job_report(&self, version: u32) -> Result<Option<Value>, ReconcileError> {
        let reports: Vec<Value> = self
            .inner
            .store
            .job_reports(&self.key, version)
            .await?
            .into_iter()
            .map(|(_, report)| report)
            .filter(|r| {
                r.get("productUid")
                    .and_then(Value::as_str)
                    .is_none_or(|uid| uid == self.uid)
            })
            .collect();
        Ok(merge_reports(reports))
    }

    /// Sets `Fresh` from the live lag and the version's `slo.freshness`, if it has one.
    fn check_freshness(&mut self, target: &ProvisionedVersion) {
        let slo = target
            .spec
            .pointer("/slo/freshness")
            .and_then(Value::as_str)
            .and_then(|f| {
                sluice_schemas::time::parse_duration(f)
                    .ok()
                    .map(|d| (f.to_owned(), d))
            });
        let Some((text, freshness)) = slo else {
            self.status.conditions.retain(|c| c.condition_type != FRESH);
            return;
        };
        match self.status.lag_ms {
            Some(lag) if u128::from(lag) <= freshness.as_millis() => self.set(
                FRESH,
                ConditionStatus::True,
                "WithinSlo",
                format!("live lag is within {text}"),
            ),
            // The figure itself is `status.lagMs`: a stable message does not churn the log.
            Some(_) => self.set(
                FRESH,
                ConditionStatus::False,
                "LagAboveSlo",
                format!("live lag exceeds slo.freshness {text}"),
            ),
            None => self.set(
                FRESH,
                ConditionStatus::Unknown,
                "NotLive",
                "freshness is measured once the product is live",
            ),
        }
    }

    /// Moves readers from `current` to the backfilled `next`, then removes `current`.
    async fn swap(&mut self, current: &Planned, next: &Planned) -> Result<(), ReconcileError> {
        self.ensure_target(next, true)
            .await
            .map_err(TargetFailure::into_error)?;
        let mut swapped = next.version.clone();
        swapped.topic = next.plan.topics.first().map(|t| t.name.clone());
        swapped.location = Some(location(&next.plan));
        swapped.reader = reader(&next.plan);
        self.status.target = Some(swapped);
        self.status.next_target = None;
        self.save().await?;
        self.audit(
            "version.swap",
            "swapped",
            json!({"before": {"version": current.version.version},
                   "after": {"version": next.version.version}}),
        )
        .await?;
        if location(&current.plan) == location(&next.plan) && Arc::ptr_eq(&current.conn, &next.conn)
        {
            self.drop_version(current).await
        } else {
            // The stable name or the cluster changed: the old one goes with its version.
            // A reader shared by both (same role/user name) is recreated and granted anew
            // by the next ensure.
            self.delete_version(current, false).await?;
            self.ensure_target(next, true)
                .await
                .map_err(TargetFailure::into_error)
        }
    }

    /// Removes one version's topics and all its target objects, its stable name and reader
    /// included (`retain`: the data stays, only the reader goes).
    async fn delete_version(
        &mut self,
        planned: &Planned,
        retain: bool,
    ) -> Result<(), ReconcileError> {
        let deleted = self.delete_topics(&planned.plan.topics).await?;
        planned
            .conn
            .delete(&planned.plan.target, retain)
            .await
            .map_err(|e| target_error(&e))?;
        self.audit(
            "teardown.version",
            if retain { "retained" } else { "deleted" },
            json!({"before": {"version": planned.version.version, "topics": deleted}}),
        )
        .await
    }

    async fn delete_topics(&self, topics: &[TopicPlan]) -> Result<Vec<String>, ReconcileError> {
        let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
        let report = self
            .inner
            .kafka
            .delete(&names)
            .await
            .map_err(|e| kafka_error(&e, &self.inner.config.kafka_bootstrap))?;
        self.inner
            .metrics
            .count_kafka_mutations(report.deleted.len() as u64);
        Ok(report.deleted)
    }

    /// Removes one version's topics and target objects (not the stable name).
    async fn drop_version(&mut self, planned: &Planned) -> Result<(), ReconcileError> {
        let deleted = self.delete_topics(&planned.plan.topics).await?;
        planned
            .conn
            .drop_version(&planned.plan.target)
            .await
            .map_err(|e| target_error(&e))?;
        self.audit(
            "teardown.version",
            "deleted",
            json!({"before": {"version": planned.version.version, "topics": deleted}}),
        )
        .await
    }

    async fn ensure_topics(&mut self, topics: &[TopicPlan]) -> Result<(), ReconcileError> {
        // Admin requests wait up to their own long timeout for a cluster that went away;
        // meanwhile Kafka is probed, and a probe that fails ends the wait at once (nothing is
        // lost by dropping the request: the next pass observes afresh).
        let kafka = &self.inner.kafka;
        let ensured = match topics.first() {
            Some(first) => {
                tokio::select! {
                    ensured = async {
                        kafka.probe(&first.name, KAFKA_PROBE).await?;
                        kafka.ensure(topics).await
                    } => ensured,
                    failed = kafka_down(kafka, &first.name) => Err(failed),
                }
            }
            None => kafka.ensure(topics).await,
        };
        match ensured {
            Ok(report) => {
                self.inner
                    .metrics
                    .count_kafka_mutations(report.mutations as u64);
                if report.mutations > 0 {
                    self.audit(
                        "provision.topics",
                        if report.created.is_empty() {
                            "updated"
                        } else {
                            "created"
                        },
                        json!({"after": {"created": report.created, "altered": report.altered}}),
                    )
                    .await?;
                }
                Ok(())
            }
            Err(e) => {
                let error = kafka_error(&e, &self.inner.config.kafka_bootstrap);
                self.set(
                    TOPICS_READY,
                    ConditionStatus::False,
                    reason_of(&error),
                    error.to_string(),
                );
                Err(error)
            }
        }
    }

    async fn ensure_target(
        &mut self,
        planned: &Planned,
        publish: bool,
    ) -> Result<(), TargetFailure> {
        let conn = &planned.conn;
        let report = match conn.ensure(&planned.plan.target, publish).await {
            Ok(report) => report,
            Err(e) if e.is_drift() => return Err(TargetFailure::Drift(e.to_string())),
            Err(e) => {
                let error = target_error(&e);
                if publish {
                    self.set(
                        TARGET_READY,
                        ConditionStatus::False,
                        reason_of(&error),
                        error.to_string(),
                    );
                }
                return Err(TargetFailure::Other(error));
            }
        };
        self.inner.metrics.count_target_mutations(report.mutations);
        if report.mutations > 0 {
            self.audit(
                "provision.target",
                "updated",
                json!({"after": {"version": planned.version.version, "created": report.created}}),
            )
            .await
            .map_err(TargetFailure::Other)?;
        }
        let stored = self
            .inner
            .store
            .credentials(&self.key)
            .await
            .map_err(|e| TargetFailure::Other(e.into()))?;
        let wanted = reader(&planned.plan);
        let stale = stored.as_ref().map(|c| Some(c.username.clone())) != Some(wanted.clone());
        if wanted.is_some() && (report.reader_created || stale) {
            let granted = conn
                .grant(&planned.plan.target)
                .await
                .map_err(|e| TargetFailure::Other(target_error(&e)))?;
            if let Some(credentials) = granted {
                let sealed = self
                    .inner
                    .secrets
                    .seal(&credentials.password)
                    .map_err(|e| TargetFailure::Other(ReconcileError::Failed(e.to_string())))?;
                self.inner
                    .store
                    .put_credentials(&self.key, &credentials.user, &sealed, &self.inner.audit)
                    .await
                    .map_err(|e| TargetFailure::Other(e.into()))?;
            }
        }
        if publish {
            self.set(
                TARGET_READY,
                ConditionStatus::True,
                "Provisioned",
                format!(
                    "version {} in {} with its reader's credentials",
                    planned.version.version,
                    location(&planned.plan)
                ),
            );
        }
        Ok(())
    }

    async fn cluster(
        &self,
        resolved: &ResolvedProduct,
    ) -> Result<(TargetClusterSpec, Arc<TargetConnection>), ReconcileError> {
        let Some(name) = resolved.product.spec.target.cluster.as_deref() else {
            return Err(ReconcileError::Failed(
                "dedicated targets are provisioned in Kubernetes mode; name a registered \
                 `target.cluster`"
                    .to_owned(),
            ));
        };
        self.inner
            .clusters
            .get(&self.inner.store, &self.inner.secrets, name)
            .await
    }

    /// The plan of `version`, resolving its spec unless it is `base_spec` (resolved as
    /// `base`), in the cluster its spec names.
    async fn plan_version(
        &self,
        document: &Value,
        version: ProvisionedVersion,
        base: &ResolvedProduct,
        base_spec: &Value,
    ) -> Result<Planned, ReconcileError> {
        let resolved = if &version.spec == base_spec {
            base.clone()
        } else {
            catalog::resolve(&self.inner.store, document, &version.spec).await?
        };
        let (cluster, conn) = self.cluster(&resolved).await?;
        let partitions = self.inner.source_partitions(&resolved).await;
        let plan = plan_product(
            &resolved.product,
            &resolved.output,
            &cluster,
            &partitions,
            version.version,
        )
        .map_err(|e| {
            ReconcileError::Failed(format!("cannot plan version {}: {e}", version.version))
        })?;
        Ok(Planned {
            version,
            plan,
            conn,
            retain: resolved.product.spec.deletion_policy == DeletionPolicy::Retain,
        })
    }

    fn set(
        &mut self,
        kind: &str,
        truth: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
    ) {
        conditions::set(&mut self.status, kind, truth, reason, message, &self.now);
    }

    fn not_ready(&mut self, reason: &str, message: &str) {
        self.set(READY, ConditionStatus::False, reason, message);
    }

    async fn audit(&self, action: &str, outcome: &str, diff: Value) -> Result<(), ReconcileError> {
        let generation = self.status.approved_generation;
        self.inner
            .store
            .append_audit(
                AuditInput::new(&self.inner.audit, action, outcome)
                    .with_object(&self.key)
                    .with_generation(generation)
                    .with_diff(diff),
            )
            .await?;
        Ok(())
    }

    /// Writes the controller's part of the status onto the latest stored status.
    async fn save(&self) -> Result<(), ReconcileError> {
        self.inner.save_status(&self.key, &self.status).await
    }
}

/// How ensuring a target failed.
enum TargetFailure {
    /// The target no longer fits the version's plan; a new version is needed.
    Drift(String),
    /// Anything else.
    Other(ReconcileError),
}

impl TargetFailure {
    fn into_error(self) -> ReconcileError {
        match self {
            TargetFailure::Drift(message) => ReconcileError::Failed(message),
            TargetFailure::Other(e) => e,
        }
    }
}

/// Tears the product down per its deletion policy, then removes its record.
async fn teardown(
    inner: &Inner,
    object: &StoredObject,
    status: DataProductStatus,
) -> Result<Outcome, ReconcileError> {
    let mut pass = Pass {
        inner,
        key: object.key.clone(),
        uid: object.uid.to_string(),
        status,
        now: now(),
    };
    pass.status.phase = Phase::Deleting;
    let result = pass.tear_down(object).await;
    if let Err(e) = &result {
        pass.status.message = Some(format!("teardown waits: {e}"));
        pass.set(READY, ConditionStatus::False, reason_of(e), e.to_string());
        pass.save().await?;
    }
    result
}

impl Pass<'_> {
    async fn tear_down(&mut self, object: &StoredObject) -> Result<Outcome, ReconcileError> {
        let inner = self.inner;
        let document = object.document();
        let versions: Vec<(ProvisionedVersion, bool)> = self
            .status
            .target
            .clone()
            .map(|v| (v, true))
            .into_iter()
            .chain(self.status.next_target.clone().map(|v| (v, false)))
            .collect();
        if let Some((first, _)) = versions.first() {
            let base_spec = first.spec.clone();
            let base = catalog::resolve(&inner.store, &document, &base_spec).await?;
            for (version, live) in versions {
                let planned = self
                    .plan_version(&document, version, &base, &base_spec)
                    .await?;
                if live {
                    let retain = planned.retain;
                    self.delete_version(&planned, retain).await?;
                } else {
                    self.drop_version(&planned).await?;
                }
            }
        }
        inner.store.delete_runtime(&self.key, &inner.audit).await?;
        match inner
            .store
            .delete(&self.key, Some(object.resource_version), &inner.audit)
            .await
        {
            Ok(_) => Ok(Outcome::Deleted),
            // Written meanwhile (e.g. an approval): the next pass looks again.
            Err(e) if e.is_conflict() => Ok(Outcome::Requeue(Duration::from_millis(200))),
            Err(e) => Err(e.into()),
        }
    }
}

fn new_version(version: u32, generation: i64, spec: &Value) -> ProvisionedVersion {
    ProvisionedVersion {
        version,
        generation,
        spec: spec.clone(),
        topic: None,
        location: None,
        reader: None,
    }
}

/// One report for a job from the reports of its slices: running and backfill complete
/// when every slice is (all `slices` of them have reported), per source the events done
/// and to do and the rates summed and the longest ETA, dead letters and applied records
/// summed, the highest lag, and the first error.
fn merge_reports(mut reports: Vec<Value>) -> Option<Value> {
    let slices = reports
        .iter()
        .filter_map(|r| r.get("slices").and_then(Value::as_u64))
        .max()
        .unwrap_or(1);
    if reports.len() <= 1 && slices <= 1 {
        return reports.pop();
    }
    if reports.is_empty() {
        return None;
    }
    let all = |field: &str| {
        reports
            .iter()
            .all(|r| r.get(field).and_then(Value::as_bool).unwrap_or(false))
    };
    let sum = |field: &str| {
        reports
            .iter()
            .filter_map(|r| r.get(field).and_then(Value::as_u64))
            .sum::<u64>()
    };
    let complete = reports.len() as u64 >= slices && all("backfillComplete");
    let mut sources: Vec<SourceProgress> = Vec::new();
    for report in &reports {
        for source in progress(report) {
            match sources.iter_mut().find(|s| s.source == source.source) {
                Some(merged) => {
                    merged.done += source.done;
                    merged.total += source.total;
                    merged.rate = match (merged.rate, source.rate) {
                        (Some(a), Some(b)) => Some(a + b),
                        (a, b) => a.or(b),
                    };
                    merged.eta_seconds = merged.eta_seconds.max(source.eta_seconds);
                }
                None => sources.push(source),
            }
        }
    }
    let mut merged = reports[0].clone();
    if let Value::Object(map) = &mut merged {
        map.insert("running".into(), Value::Bool(all("running")));
        map.insert("backfillComplete".into(), Value::Bool(complete));
        map.insert("deadLetters".into(), Value::from(sum("deadLetters")));
        map.insert("applied".into(), Value::from(sum("applied")));
        map.insert(
            "sources".into(),
            serde_json::to_value(&sources).unwrap_or_default(),
        );
        match reports
            .iter()
            .filter_map(|r| r.get("lagMs").and_then(Value::as_u64))
            .max()
        {
            Some(lag) => map.insert("lagMs".into(), Value::from(lag)),
            None => map.remove("lagMs"),
        };
        match reports
            .iter()
            .find_map(|r| r.get("error").filter(|e| !e.is_null()))
        {
            Some(error) => map.insert("error".into(), error.clone()),
            None => map.remove("error"),
        };
        map.remove("transformDone");
    }
    Some(merged)
}

/// Resolves with the error of the first probe of Kafka that fails (asking about `topic`
/// every second); never while Kafka answers.
async fn kafka_down(
    kafka: &sluice_provisioners::kafka::KafkaProvisioner,
    topic: &str,
) -> sluice_provisioners::kafka::KafkaProvisionError {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Err(e) = kafka.probe(topic, KAFKA_PROBE).await {
            return e;
        }
    }
}

/// Whether a job report says the backfill is complete.
fn backfill_complete(report: &Value) -> bool {
    report
        .get("backfillComplete")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The per-source progress of a job report (`sources: [SourceProgress…]`).
fn progress(report: &Value) -> Vec<SourceProgress> {
    report
        .get("sources")
        .cloned()
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default()
}

/// Where readers find a version, in words.
fn location(plan: &Plan) -> String {
    use sluice_provisioners::TargetPlan;
    match &plan.target {
        TargetPlan::Postgres(p) => match &p.database {
            Some(db) => format!("view \"{}\".\"{}\" of database \"{db}\"", p.schema, p.view),
            None => format!("view \"{}\".\"{}\"", p.schema, p.view),
        },
        TargetPlan::Elasticsearch(p) => format!("alias `{}`", p.alias),
        TargetPlan::Redis(p) => format!("keys `{}:*`", p.prefix),
    }
}

/// The reader user or role of a plan, if its target has one.
fn reader(plan: &Plan) -> Option<String> {
    use sluice_provisioners::TargetPlan;
    match &plan.target {
        TargetPlan::Postgres(p) => Some(p.role.clone()),
        TargetPlan::Elasticsearch(_) => None,
        TargetPlan::Redis(p) => Some(p.user.clone()),
    }
}

/// A Kafka error as the product shows it, naming the cluster (`bootstrap` carries no
/// credentials).
fn kafka_error(
    e: &sluice_provisioners::kafka::KafkaProvisionError,
    bootstrap: &str,
) -> ReconcileError {
    use sluice_provisioners::kafka::KafkaProvisionError as K;
    let message = format!("Kafka {bootstrap}: {}", chain(e));
    match e {
        K::Request { .. } | K::NotConverged { .. } | K::Blocking { .. } | K::Client { .. } => {
            ReconcileError::Unreachable(message)
        }
        K::Topic { .. } | K::PartitionsShrink { .. } | K::MissingTopic { .. } => {
            ReconcileError::Failed(message)
        }
    }
}

fn target_error(e: &TargetError) -> ReconcileError {
    let message = format!("target: {}", e.detail());
    if e.is_unreachable() {
        ReconcileError::Unreachable(message)
    } else {
        ReconcileError::Failed(message)
    }
}

/// An error and its sources in one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

fn reason_of(e: &ReconcileError) -> &'static str {
    match e {
        ReconcileError::Store(_) => "MetadataStoreError",
        ReconcileError::Unreachable(_) => "Unreachable",
        ReconcileError::Failed(_) => "Failed",
    }
}

/// Now in RFC 3339, to the second.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
