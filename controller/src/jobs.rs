//! The stream jobs of this process: one per provisioned product version (the version
//! readers use and the one being built beside it), started and stopped to follow the
//! products' status, each reporting its progress to the metadata store for the controller.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sluice_pipeline::job::{Job, JobConfig, JobProgress, JobSlice, TableSource, WindowSource};
use sluice_pipeline::sink::Sink;
use sluice_pipeline::state::StateSettings;
use sluice_pipeline::transform::CompiledProduct;
use sluice_provisioners::TargetPlan;
use sluice_schemas::{JoinType, Kind, ProvisionedVersion, TargetClusterSpec, WriteMode};
use sluice_store::{ListQuery, ObjectKey, StoredObject};

use crate::catalog::{self, ResolvedProduct};
use crate::estimate;
use crate::plan::plan_product;
use crate::reconcile::decode_status;
use crate::runner::{Controller, Inner};

/// How often the jobs are matched to the products and their progress reported.
const SUPERVISE_EVERY: Duration = Duration::from_secs(1);
/// How long a job's lease lasts without renewal: a worker that dies loses its jobs to
/// another after this.
const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often a lease is renewed, or a job held elsewhere asked for again.
const LEASE_EVERY: Duration = Duration::from_secs(3);
/// How long stopping the job supervisor waits for the jobs still starting: a start that
/// takes longer (its broker away) is left to finish, and its job stopped, elsewhere.
const SHUTDOWN_START_WAIT: Duration = Duration::from_secs(10);

/// One product version's job, with the last progress it reported.
struct Running {
    job: Job,
    reported: Option<Value>,
}

/// One slice of one product version's job: what a lease is taken on.
type Unit = (ObjectKey, u32, u32);

/// What this process knows of the jobs.
struct Jobs {
    /// Who this process is in `job_leases`.
    holder: String,
    running: HashMap<Unit, Running>,
    /// Jobs being started, in tasks of their own: a start blocks on Kafka (up to its
    /// timeouts while the broker is away), and must hold up neither the other jobs nor
    /// the renewal of this process's leases.
    starting: HashMap<Unit, tokio::task::JoinHandle<Result<Job, String>>>,
    failed: HashMap<Unit, String>,
    /// When each slice's lease was last taken, renewed or asked for.
    leased: HashMap<Unit, (std::time::Instant, bool)>,
    /// How many slices each product version's job has, once known.
    slices: HashMap<(ObjectKey, u32), u32>,
    /// How many processes run jobs (this one included), as of the last heartbeat.
    workers: u32,
    /// The one product this process runs jobs of, if it is limited to one.
    only: Option<ObjectKey>,
}

impl Controller {
    /// Runs the stream jobs of every provisioned product version in this process until
    /// `shutdown` resolves.
    ///
    /// Several processes may run jobs (`sluice serve`, `sluice worker`): each job runs in
    /// one of them at a time, the one holding its lease in the metadata store, and moves
    /// to another within [`LEASE_TTL`] when that one dies.
    pub async fn run_jobs(self, shutdown: impl Future<Output = ()> + Send) {
        self.run_jobs_of(None, shutdown).await;
    }

    /// Like [`Controller::run_jobs`], but only the jobs of `only` when given (the worker
    /// Deployment of one product in Kubernetes mode). Such a process takes every slice it
    /// can: the other processes it shares the job with are its own replicas.
    pub async fn run_jobs_of(
        self,
        only: Option<ObjectKey>,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        tokio::pin!(shutdown);
        let mut jobs = Jobs {
            holder: format!(
                "{}-{}-{:08x}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "sluice".to_owned()),
                std::process::id(),
                rand_u32()
            ),
            running: HashMap::new(),
            starting: HashMap::new(),
            failed: HashMap::new(),
            leased: HashMap::new(),
            slices: HashMap::new(),
            workers: 1,
            only,
        };
        tracing::info!(holder = %jobs.holder, "running stream jobs");
        loop {
            match self
                .inner
                .store
                .job_worker_beat(&jobs.holder, LEASE_TTL)
                .await
            {
                Ok(workers) if jobs.only.is_none() => jobs.workers = workers,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot record this worker"),
            }
            if let Err(e) = supervise(&self.inner, &mut jobs, &self.waker()).await {
                tracing::warn!(error = %e, "cannot match jobs to products");
            }
            // A backfill that completes is reported at once: the product turns Live then,
            // not up to a round later.
            let completing: Vec<_> = jobs
                .running
                .values()
                .filter(|r| !r.job.progress().backfill_complete)
                .map(|r| Box::pin(r.job.backfill_completed()))
                .collect();
            let any_completes = async move {
                if completing.is_empty() {
                    std::future::pending::<()>().await;
                } else {
                    futures::future::select_all(completing).await;
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(SUPERVISE_EVERY) => {}
                () = any_completes => {}
            }
        }
        // A start is waited for a while, not for good: one blocked on an absent broker
        // (each Kafka call of a start may take its whole timeout) is left to finish
        // elsewhere, and what it started is stopped then.
        let deadline = tokio::time::Instant::now() + SHUTDOWN_START_WAIT;
        for (key, mut starting) in jobs.starting.drain() {
            match tokio::time::timeout_at(deadline, &mut starting).await {
                Ok(Ok(Ok(job))) => job.stop().await,
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(product = %key.0, version = key.1, slice = key.2, "a job still starting is left to stop once started");
                    stop_once_started(starting);
                }
            }
            let _ = self
                .inner
                .store
                .release_job_lease(&key.0, key.1, key.2, &jobs.holder)
                .await;
        }
        for (key, r) in jobs.running.drain() {
            r.job.stop().await;
            let _ = self
                .inner
                .store
                .release_job_lease(&key.0, key.1, key.2, &jobs.holder)
                .await;
        }
        let _ = self.inner.store.job_worker_gone(&jobs.holder).await;
    }
}

/// A random number for the lease holder's name (two processes with one pid and host).
fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish() as u32
}

/// Whether this process holds (or just took) the lease of `key`, asking the store at most
/// every [`LEASE_EVERY`].
async fn hold(
    inner: &Inner,
    jobs: &mut Jobs,
    key: &Unit,
) -> Result<bool, sluice_store::StoreError> {
    if let Some((at, held)) = jobs.leased.get(key)
        && at.elapsed() < LEASE_EVERY
    {
        return Ok(*held);
    }
    let held = inner
        .store
        .take_job_lease(&key.0, key.1, key.2, &jobs.holder, LEASE_TTL)
        .await?;
    jobs.leased
        .insert(key.clone(), (std::time::Instant::now(), held));
    Ok(held)
}

/// Starts missing jobs, stops unwanted ones, reports progress.
async fn supervise(
    inner: &Arc<Inner>,
    jobs: &mut Jobs,
    waker: &crate::runner::Waker,
) -> Result<(), sluice_store::StoreError> {
    let mut wanted: HashMap<(ObjectKey, u32), (StoredObject, ProvisionedVersion)> = HashMap::new();
    let mut query = ListQuery {
        limit: ListQuery::MAX_LIMIT,
        ..ListQuery::default()
    };
    loop {
        let page = inner.store.list(Kind::DataProduct, &query).await?;
        for object in page.items {
            if jobs.only.as_ref().is_some_and(|only| *only != object.key) {
                continue;
            }
            let Some(status) = decode_status(&object) else {
                continue;
            };
            if status.deletion_requested.is_some() {
                continue;
            }
            // A version runs once the controller made its topics and target objects; it
            // records the version's topic then.
            for version in [status.target.clone(), status.next_target.clone()]
                .into_iter()
                .flatten()
                .filter(|v| v.topic.is_some())
            {
                wanted.insert(
                    (object.key.clone(), version.version),
                    (object.clone(), version),
                );
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }

    // Each wanted version runs as its slices; how many is fixed once the job first ran.
    jobs.slices.retain(|k, _| wanted.contains_key(k));
    let mut units: HashMap<Unit, (StoredObject, ProvisionedVersion)> = HashMap::new();
    for ((key, v), (object, version)) in &wanted {
        let count = match jobs.slices.get(&(key.clone(), *v)) {
            Some(count) => *count,
            None => {
                let count = slice_count(inner, object, version).await?;
                jobs.slices.insert((key.clone(), *v), count);
                count
            }
        };
        for slice in 0..count {
            units.insert((key.clone(), *v, slice), (object.clone(), version.clone()));
        }
    }

    // A start of a job no longer wanted is let finish, and the job stopped then.
    let unwanted_starts: Vec<Unit> = jobs
        .starting
        .iter()
        .filter(|(k, handle)| !units.contains_key(*k) && handle.is_finished())
        .map(|(k, _)| k.clone())
        .collect();
    for key in unwanted_starts {
        if let Some(handle) = jobs.starting.remove(&key) {
            if let Ok(Ok(job)) = handle.await {
                job.stop().await;
            }
            inner
                .store
                .release_job_lease(&key.0, key.1, key.2, &jobs.holder)
                .await?;
        }
    }
    let unwanted: Vec<Unit> = jobs
        .running
        .keys()
        .filter(|k| !units.contains_key(*k))
        .cloned()
        .collect();
    for key in unwanted {
        if let Some(r) = jobs.running.remove(&key) {
            tracing::info!(product = %key.0, version = key.1, slice = key.2, "stopping its job");
            r.job.stop().await;
            inner
                .store
                .release_job_lease(&key.0, key.1, key.2, &jobs.holder)
                .await?;
        }
    }
    jobs.failed.retain(|k, _| units.contains_key(k));
    jobs.leased.retain(|k, _| units.contains_key(k));

    // The slices of a job are shared out: a process runs at most its share of each job's
    // slices, and gives one up per pass while it runs more (another process takes it).
    let mut units: Vec<(Unit, (StoredObject, ProvisionedVersion))> = units.into_iter().collect();
    units.sort_by_cached_key(|(u, _)| (u.0.to_string(), u.1, u.2));
    let mut shed: std::collections::HashSet<(ObjectKey, u32)> = std::collections::HashSet::new();
    for (key, (object, version)) in units {
        let job = (key.0.clone(), key.1);
        let count = jobs.slices.get(&job).copied().unwrap_or(1);
        let share = count.div_ceil(jobs.workers.max(1));
        // A slice being started is this process's as much as one running.
        let held = |jobs: &Jobs, unit: &Unit| {
            jobs.running.contains_key(unit) || jobs.starting.contains_key(unit)
        };
        let mine = if count > 1 {
            (0..count)
                .filter(|i| held(jobs, &(key.0.clone(), key.1, *i)))
                .count() as u32
        } else {
            u32::from(held(jobs, &key))
        };
        if jobs.running.contains_key(&key) && mine > share && shed.insert(job.clone()) {
            if let Some(r) = jobs.running.remove(&key) {
                tracing::info!(product = %key.0, version = key.1, slice = key.2, "leaving the slice to another worker");
                r.job.stop().await;
                inner
                    .store
                    .release_job_lease(&key.0, key.1, key.2, &jobs.holder)
                    .await?;
                // Not asked for again until another process had a chance to take it.
                jobs.leased
                    .insert(key.clone(), (std::time::Instant::now(), false));
            }
            continue;
        }
        if !held(jobs, &key) && mine >= share {
            continue;
        }
        if !hold(inner, jobs, &key).await? {
            // Another process runs it (or took it over while this one stalled).
            if let Some(r) = jobs.running.remove(&key) {
                tracing::warn!(product = %key.0, version = key.1, slice = key.2, "lost the job's lease; stopping it");
                r.job.stop().await;
            }
            if let Some(handle) = jobs.starting.remove(&key) {
                stop_once_started(handle);
            }
            continue;
        }
        let count = jobs
            .slices
            .get(&(key.0.clone(), key.1))
            .copied()
            .unwrap_or(1);
        let slice = JobSlice {
            index: key.2,
            count,
        };
        let (running, failed) = (&mut jobs.running, &mut jobs.failed);
        let restart = running.get(&key).is_some_and(|r| !r.job.is_running());
        if restart && let Some(r) = running.remove(&key) {
            r.job.stop().await;
        }
        if !running.contains_key(&key) {
            let started = match jobs.starting.get(&key) {
                Some(handle) if handle.is_finished() => match jobs.starting.remove(&key) {
                    Some(handle) => handle
                        .await
                        .unwrap_or_else(|e| Err(format!("the job's start failed: {e}"))),
                    None => continue,
                },
                // Still starting: asked again on the next pass.
                Some(_) => continue,
                None => {
                    let (inner, object, version) =
                        (Arc::clone(inner), object.clone(), version.clone());
                    jobs.starting.insert(
                        key.clone(),
                        tokio::spawn(async move { start(&inner, &object, &version, slice).await }),
                    );
                    continue;
                }
            };
            match started {
                Ok(job) => {
                    tracing::info!(product = %key.0, version = key.1, slice = key.2, "job started");
                    failed.remove(&key);
                    running.insert(
                        key.clone(),
                        Running {
                            job,
                            reported: None,
                        },
                    );
                }
                Err(reason) => {
                    if failed.get(&key) != Some(&reason) {
                        tracing::warn!(product = %key.0, version = key.1, slice = key.2, %reason, "job cannot start");
                        let report = stamped(
                            &JobProgress {
                                running: false,
                                error: Some(reason.clone()),
                                ..JobProgress::default()
                            },
                            &object,
                            None,
                        );
                        inner
                            .store
                            .put_job_report(&key.0, key.1, key.2, &report)
                            .await?;
                        failed.insert(key.clone(), reason);
                    }
                    continue;
                }
            }
        }
        if let Some(r) = running.get_mut(&key) {
            let report = stamped(&r.job.progress(), &object, Some((slice, &jobs.holder)));
            if r.reported.as_ref() != Some(&report) {
                inner
                    .store
                    .put_job_report(&key.0, key.1, key.2, &report)
                    .await?;
                // What moves the product's phase (the backfill done, an error come or
                // gone) is reconciled now, not at the product's next poll (5 s).
                let turned = |field: &str| {
                    r.reported.as_ref().map(|old| &old[field]) != Some(&report[field])
                };
                if turned("backfillComplete") || turned("error") || turned("running") {
                    waker.wake();
                }
                r.reported = Some(report);
            }
            if count > 1 && !r.job.progress().backfill_complete {
                let reports = inner.store.job_reports(&key.0, key.1).await?;
                if let Some(target) = sink_target(&reports, &object, count) {
                    r.job.set_sink_target(&target);
                }
            }
        }
    }
    Ok(())
}

/// How many slices the job of `version` runs in: as many as it ran in before (its reports
/// say), else `SLUICE_JOB_SLICES` capped by the driving source's partitions — and one for a
/// product with a window join, whose two streams must be read together.
async fn slice_count(
    inner: &Inner,
    object: &StoredObject,
    version: &ProvisionedVersion,
) -> Result<u32, sluice_store::StoreError> {
    let reports = inner
        .store
        .job_reports(&object.key, version.version)
        .await?;
    if let Some(count) = reports.iter().find_map(|(_, r)| {
        r.get("slices").and_then(Value::as_u64).filter(|_| {
            r.get("productUid").and_then(Value::as_str) == Some(&object.uid.to_string())
        })
    }) {
        return Ok(u32::try_from(count).unwrap_or(1).max(1));
    }
    if inner.config.job_slices <= 1 {
        return Ok(1);
    }
    let Ok(resolved) = catalog::resolve(&inner.store, &object.document(), &version.spec).await
    else {
        return Ok(1);
    };
    let spec = &resolved.product.spec;
    if spec.joins.iter().any(|j| j.join_type == JoinType::Window) {
        return Ok(1);
    }
    let partitions = inner.source_partitions(&resolved).await;
    let driving = spec
        .sources
        .iter()
        .position(|s| !spec.joins.iter().any(|j| j.right == s.name))
        .and_then(|i| partitions.get(i).copied())
        .unwrap_or(1);
    Ok(inner
        .config
        .job_slices
        .min(u32::try_from(driving).unwrap_or(1))
        .max(1))
}

/// The output offsets every slice's sink must reach: per partition, the highest of the
/// slices' `transformDone`, once all `count` slices of this product have one.
fn sink_target(
    reports: &[(u32, Value)],
    object: &StoredObject,
    count: u32,
) -> Option<std::collections::BTreeMap<i32, i64>> {
    let uid = object.uid.to_string();
    let mut target = std::collections::BTreeMap::new();
    let mut done = 0;
    for (_, report) in reports {
        if report.get("productUid").and_then(Value::as_str) != Some(uid.as_str()) {
            continue;
        }
        let Some(ends) = report.get("transformDone").and_then(Value::as_object) else {
            continue;
        };
        done += 1;
        for (p, end) in ends {
            if let (Ok(p), Some(end)) = (p.parse::<i32>(), end.as_i64()) {
                let at = target.entry(p).or_insert(end);
                *at = (*at).max(end);
            }
        }
    }
    (done >= count).then_some(target)
}

/// A job report naming the product incarnation it is about (`productUid`), so a report
/// written just before a product was deleted never speaks for a new product of that name,
/// and, for a running job, how many slices it runs in (`slices`) and which process runs
/// this one (`worker`).
fn stamped(
    progress: &JobProgress,
    object: &StoredObject,
    slice: Option<(JobSlice, &str)>,
) -> Value {
    let mut report = serde_json::to_value(progress).unwrap_or_default();
    if let Value::Object(map) = &mut report {
        map.insert(
            "productUid".to_owned(),
            Value::String(object.uid.to_string()),
        );
        if let Some((slice, worker)) = slice {
            map.insert("slices".to_owned(), Value::from(slice.count));
            map.insert("worker".to_owned(), Value::from(worker));
        }
    }
    report
}

/// Lets a job's start finish elsewhere than here, and stops what it started.
fn stop_once_started(handle: tokio::task::JoinHandle<Result<Job, String>>) {
    tokio::spawn(async move {
        if let Ok(Ok(job)) = handle.await {
            job.stop().await;
        }
    });
}

/// Starts the job of `version` of the product `object`.
async fn start(
    inner: &Inner,
    object: &StoredObject,
    version: &ProvisionedVersion,
    slice: JobSlice,
) -> Result<Job, String> {
    let resolved = catalog::resolve(&inner.store, &object.document(), &version.spec)
        .await
        .map_err(|e| e.to_string())?;
    let cluster = resolved
        .product
        .spec
        .target
        .cluster
        .as_deref()
        .ok_or_else(|| "dedicated targets run in Kubernetes mode".to_owned())?;
    let (cluster_spec, conn) = inner
        .clusters
        .get(&inner.store, &inner.secrets, cluster)
        .await
        .map_err(|e| e.to_string())?;
    let partitions = inner.source_partitions(&resolved).await;
    let parts = job_parts(
        &object.key,
        &resolved,
        &cluster_spec,
        &partitions,
        version.version,
        &inner.config.kafka_bootstrap,
        slice,
    )?;
    let sink = Sink::new(Arc::clone(&conn), &parts.target).map_err(|e| e.to_string())?;
    let mut parts = parts;
    parts.config.state = inner.config.job_state.clone();
    // Starting blocks on Kafka (transactions, loading the tables): off the async workers.
    let (config, transform) = (parts.config, parts.transform);
    tokio::task::spawn_blocking(move || Job::start(config, transform, sink))
        .await
        .map_err(|e| format!("the job's start was cancelled: {e}"))?
        .map_err(|e| e.to_string())
}

/// What a version's job is made of: where it reads and writes, its compiled spec and the
/// plan of its target.
pub(crate) struct JobParts {
    pub(crate) config: JobConfig,
    pub(crate) transform: CompiledProduct,
    pub(crate) target: TargetPlan,
}

/// Plans and compiles the job of `version` of the product `key`, resolved as `resolved`,
/// whose target cluster is `cluster_spec`: shared by the job supervisor and `verify`.
pub(crate) fn job_parts(
    key: &ObjectKey,
    resolved: &ResolvedProduct,
    cluster_spec: &TargetClusterSpec,
    partitions: &[i32],
    version: u32,
    bootstrap: &str,
    slice: JobSlice,
) -> Result<JobParts, String> {
    let spec = &resolved.product.spec;
    let plan = plan_product(
        &resolved.product,
        &resolved.output,
        cluster_spec,
        partitions,
        version,
    )
    .map_err(|e| e.to_string())?;
    let transform = CompiledProduct::compile(spec, &resolved.output).map_err(|e| e.to_string())?;
    let source = spec
        .sources
        .iter()
        .find(|s| s.name == transform.source())
        .ok_or_else(|| format!("source `{}` is not in the spec", transform.source()))?;
    let dataset = resolved
        .context
        .dataset(&source.dataset)
        .ok_or_else(|| format!("dataset `{}` is not in the catalog", source.dataset))?;
    // Tombstones are addressed by the record key only when it is the product key; numbers
    // are typed by the dataset's schema, not by how a record happens to spell them.
    let transform = transform
        .with_source_key(dataset.spec.key.as_deref())
        .with_source_schema(dataset.spec.schema.clone());
    let (output, dead_letter) = match plan.topics.as_slice() {
        [output, dead_letter, ..] => (output.name.clone(), dead_letter.name.clone()),
        _ => return Err("the plan has no output topic".to_owned()),
    };
    let mut tables = Vec::new();
    let mut schemas = Vec::new();
    for lookup in transform.lookups() {
        let table = spec
            .sources
            .iter()
            .find(|s| s.name == lookup.alias)
            .and_then(|s| resolved.context.dataset(&s.dataset))
            .ok_or_else(|| {
                format!(
                    "the table of lookup `{}` is not in the catalog",
                    lookup.alias
                )
            })?;
        tables.push(TableSource {
            alias: lookup.alias.clone(),
            topic: table.spec.topic.clone(),
            key_field: lookup.key_field.clone(),
        });
        schemas.push((lookup.alias.clone(), table.spec.schema.clone()));
    }
    let window = match transform.window() {
        None => None,
        Some(join) if slice.count > 1 => {
            return Err(format!(
                "window join `{}` reads two streams together; its job runs in one slice",
                join.alias
            ));
        }
        Some(join) => {
            let source = spec
                .sources
                .iter()
                .find(|s| s.name == join.alias)
                .ok_or_else(|| format!("source `{}` is not in the spec", join.alias))?;
            let stream = resolved.context.dataset(&source.dataset).ok_or_else(|| {
                format!(
                    "the stream of window join `{}` is not in the catalog",
                    join.alias
                )
            })?;
            if stream.spec.topic == dataset.spec.topic {
                return Err(format!(
                    "window join `{}` joins topic `{}` with itself, which the job runtime does not run",
                    join.alias, stream.spec.topic
                ));
            }
            schemas.push((join.alias.clone(), stream.spec.schema.clone()));
            Some(WindowSource {
                alias: join.alias.clone(),
                topic: stream.spec.topic.clone(),
                from_ms: estimate::from_ms(
                    source.from.as_deref(),
                    chrono::Utc::now().timestamp_millis(),
                ),
                key_field: join.key_field.clone(),
                within_ms: join.within_ms,
                time_field: stream.spec.timestamp_field.clone(),
            })
        }
    };
    let transform = schemas.into_iter().fold(transform, |t, (alias, schema)| {
        t.with_table_schema(&alias, schema)
    });
    let config = JobConfig {
        label: format!("{}/{} v{}", key.team(), key.name(), version),
        bootstrap: bootstrap.to_owned(),
        source_topic: dataset.spec.topic.clone(),
        from_ms: estimate::from_ms(
            source.from.as_deref(),
            chrono::Utc::now().timestamp_millis(),
        ),
        output_topic: output,
        dead_letter_topic: dead_letter,
        // Each slice of a job in several has consumer groups and a transactional id of its
        // own; a job in one slice keeps the names it always had.
        group: if slice.count > 1 {
            format!(
                "sluice.job.{}.{}.v{}.s{}of{}",
                key.team(),
                key.name(),
                version,
                slice.index,
                slice.count
            )
        } else {
            format!("sluice.job.{}.{}.v{}", key.team(), key.name(), version)
        },
        append: spec.target.mode == WriteMode::Append,
        tables,
        source_time_field: dataset.spec.timestamp_field.clone(),
        window,
        state: StateSettings::default(),
        slice,
    };
    Ok(JobParts {
        config,
        transform,
        target: plan.target,
    })
}
