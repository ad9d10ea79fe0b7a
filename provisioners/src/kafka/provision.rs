//! Executing topic plans against a Kafka cluster: observe, ensure (create, raise partitions,
//! reconcile configs) and delete, each idempotent.
//!
//! Kafka creates and deletes topics asynchronously: a broker may answer before its metadata
//! shows the change. Observation therefore retries briefly while the cluster looks half-way
//! (listed but not describable, or listed with an error), and every mutation is followed by
//! a bounded wait until the cluster shows the planned state.
//!
//! Only the configs a plan sets are reconciled. Kafka's `AlterConfigs` replaces a topic's
//! whole set of overrides, so an alteration resends the overrides already on the topic with
//! the planned keys changed; the other overrides survive.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::plan::TopicPlan;

/// How long one admin request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the cluster to show a change (or a consistent view).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause between two observations while waiting.
const SETTLE_STEP: Duration = Duration::from_millis(200);

/// What went wrong while provisioning topics.
#[derive(Debug, thiserror::Error)]
pub enum KafkaProvisionError {
    /// The admin client could not be built.
    #[error("cannot build a Kafka admin client for `{bootstrap}`")]
    Client {
        /// The bootstrap servers.
        bootstrap: String,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
    /// A whole admin request failed (cluster unreachable, timeout…).
    #[error("Kafka request `{operation}` failed")]
    Request {
        /// The request, e.g. `create_topics`.
        operation: &'static str,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
    /// The cluster refused an operation on one topic.
    #[error("Kafka refused `{operation}` on topic `{topic}`")]
    Topic {
        /// The request, e.g. `create_topics`.
        operation: &'static str,
        /// The topic.
        topic: String,
        /// The broker's error code.
        #[source]
        source: RDKafkaErrorCode,
    },
    /// The topic has more partitions than planned; Kafka cannot remove partitions.
    #[error(
        "topic `{topic}` has {observed} partitions but the plan asks for {planned}; \
         partitions cannot be removed"
    )]
    PartitionsShrink {
        /// The topic.
        topic: String,
        /// Partitions on the cluster.
        observed: i32,
        /// Partitions in the plan.
        planned: i32,
    },
    /// The cluster did not show the expected state in time.
    #[error("topic `{topic}` did not reach its expected state within {waited:?}")]
    NotConverged {
        /// The topic.
        topic: String,
        /// How long was waited.
        waited: Duration,
    },
    /// The topic does not exist on the cluster.
    #[error("topic `{topic}` does not exist")]
    MissingTopic {
        /// The topic.
        topic: String,
    },
    /// The blocking metadata request could not run to completion.
    #[error("the Kafka metadata request was cancelled")]
    Blocking {
        /// The task's error.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// Result of the Kafka provisioner.
pub type Result<T, E = KafkaProvisionError> = std::result::Result<T, E>;

/// A topic as the cluster shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedTopic {
    /// Number of partitions.
    pub partitions: i32,
    /// The effective value of each config key the plan sets (broker defaults included).
    pub configs: BTreeMap<String, String>,
    /// The configs set on the topic itself (its overrides of the broker defaults).
    pub overrides: BTreeMap<String, String>,
}

/// The observed state of one planned topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicState {
    /// The topic name.
    pub name: String,
    /// The topic, or `None` when it does not exist.
    pub observed: Option<ObservedTopic>,
}

impl TopicState {
    /// Whether the topic exists.
    pub fn exists(&self) -> bool {
        self.observed.is_some()
    }
}

/// What [`KafkaProvisioner::ensure`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnsureReport {
    /// Topics created.
    pub created: Vec<String>,
    /// Existing topics whose partitions were raised or configs reconciled.
    pub altered: Vec<String>,
    /// Topics already as planned.
    pub unchanged: Vec<String>,
    /// Number of mutating operations issued (one per topic per create, add-partitions or
    /// alter-configs request); zero when everything already matched.
    pub mutations: usize,
}

/// What [`KafkaProvisioner::delete`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteReport {
    /// Topics deleted.
    pub deleted: Vec<String>,
    /// Topics that did not exist.
    pub absent: Vec<String>,
}

/// The changes one topic needs to match its plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicChange {
    /// The topic is missing: create it.
    Create,
    /// The topic exists but differs.
    Alter {
        /// The new partition count, when it must be raised.
        partitions: Option<i32>,
        /// The planned configs whose observed value differs.
        configs: BTreeMap<String, String>,
    },
    /// The topic is as planned.
    Unchanged,
}

/// Compares a plan with the observed topic, purely.
///
/// Fails with [`KafkaProvisionError::PartitionsShrink`] when the topic has more partitions
/// than planned: that drift cannot be repaired.
pub fn diff_topic(plan: &TopicPlan, observed: Option<&ObservedTopic>) -> Result<TopicChange> {
    let Some(observed) = observed else {
        return Ok(TopicChange::Create);
    };
    if observed.partitions > plan.partitions {
        return Err(KafkaProvisionError::PartitionsShrink {
            topic: plan.name.clone(),
            observed: observed.partitions,
            planned: plan.partitions,
        });
    }
    let partitions = (observed.partitions < plan.partitions).then_some(plan.partitions);
    let configs: BTreeMap<String, String> = plan
        .configs
        .iter()
        .filter(|(key, value)| observed.configs.get(*key) != Some(*value))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if partitions.is_none() && configs.is_empty() {
        Ok(TopicChange::Unchanged)
    } else {
        Ok(TopicChange::Alter {
            partitions,
            configs,
        })
    }
}

/// Creates, observes, reconciles and deletes Kafka topics through one admin client.
pub struct KafkaProvisioner {
    pub(super) admin: Arc<AdminClient<DefaultClientContext>>,
    /// The bootstrap servers, for the short-lived consumers that read offsets and samples.
    pub(super) bootstrap: String,
    replication: i32,
}

impl std::fmt::Debug for KafkaProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProvisioner")
            .field("bootstrap", &self.bootstrap)
            .field("replication", &self.replication)
            .finish_non_exhaustive()
    }
}

impl KafkaProvisioner {
    /// A provisioner for the cluster at `bootstrap` (comma-separated `host:port`) that
    /// creates topics with `replication` replicas per partition.
    pub fn new(bootstrap: &str, replication: i32) -> Result<Self> {
        let admin = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            // Looking a topic up must never create it, whatever the broker allows.
            .set("allow.auto.create.topics", "false")
            .create()
            .map_err(|source| KafkaProvisionError::Client {
                bootstrap: bootstrap.to_owned(),
                source,
            })?;
        Ok(KafkaProvisioner {
            admin: Arc::new(admin),
            bootstrap: bootstrap.to_owned(),
            replication,
        })
    }

    /// The bootstrap servers this provisioner talks to.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The replication factor of the topics this provisioner creates.
    pub fn replication(&self) -> i32 {
        self.replication
    }

    /// Observes the planned topics: whether each exists, its partitions and the configs its
    /// plan sets. Retries briefly while the cluster's view is half-way through a change.
    pub async fn observe(&self, plans: &[TopicPlan]) -> Result<Vec<TopicState>> {
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            match self.observe_once(plans).await? {
                Observation::Consistent(states) => return Ok(states),
                Observation::Lagging(topic) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(KafkaProvisionError::NotConverged {
                            topic,
                            waited: SETTLE_TIMEOUT,
                        });
                    }
                    tokio::time::sleep(SETTLE_STEP).await;
                }
            }
        }
    }

    /// Makes the cluster match the plans: creates missing topics, raises partition counts
    /// and reconciles the configs the plans set. Issues no mutating request when everything
    /// already matches; never lowers partitions (that drift is an error, raised before any
    /// change is made).
    pub async fn ensure(&self, plans: &[TopicPlan]) -> Result<EnsureReport> {
        let mut report = EnsureReport::default();
        // A topic created concurrently by someone else (`TopicAlreadyExists`) is reconciled
        // in a second round, against what that creator made.
        for _round in 0..2 {
            let raced = self.ensure_round(plans, &mut report).await?;
            if !raced {
                break;
            }
        }
        self.wait_until_matching(plans).await?;
        Ok(report)
    }

    /// Checks that the cluster answers a metadata request for `topic` within `timeout` — a
    /// quick look before requests that would wait [`REQUEST_TIMEOUT`] for a cluster that is
    /// down. The topic need not exist.
    pub async fn probe(&self, topic: &str, timeout: Duration) -> Result<()> {
        self.topic_metadata_within(&[topic.to_owned()], timeout)
            .await
            .map(|_| ())
    }

    /// Deletes the named topics; topics that do not exist are reported as absent. Waits until
    /// the cluster no longer lists the deleted topics.
    pub async fn delete(&self, names: &[String]) -> Result<DeleteReport> {
        let mut report = DeleteReport::default();
        if names.is_empty() {
            return Ok(report);
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let results = self
            .admin
            .delete_topics(&refs, &options())
            .await
            .map_err(|source| KafkaProvisionError::Request {
                operation: "delete_topics",
                source,
            })?;
        for result in results {
            match result {
                Ok(name) => report.deleted.push(name),
                Err((name, RDKafkaErrorCode::UnknownTopicOrPartition)) => report.absent.push(name),
                Err((topic, source)) => {
                    return Err(KafkaProvisionError::Topic {
                        operation: "delete_topics",
                        topic,
                        source,
                    });
                }
            }
        }
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            let listed = self.topic_metadata(&report.deleted).await?;
            let Some(lingering) = report.deleted.iter().find(|n| listed.contains_key(*n)) else {
                return Ok(report);
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(KafkaProvisionError::NotConverged {
                    topic: lingering.clone(),
                    waited: SETTLE_TIMEOUT,
                });
            }
            tokio::time::sleep(SETTLE_STEP).await;
        }
    }

    /// One observe → diff → mutate pass. Returns whether a creation lost a race.
    async fn ensure_round(&self, plans: &[TopicPlan], report: &mut EnsureReport) -> Result<bool> {
        let states = self.observe(plans).await?;
        let mut to_create = Vec::new();
        let mut to_raise = Vec::new();
        let mut to_alter = Vec::new();
        // Diff everything first, so a drift error leaves the cluster untouched.
        let mut changes = Vec::with_capacity(plans.len());
        for (plan, state) in plans.iter().zip(&states) {
            changes.push(diff_topic(plan, state.observed.as_ref())?);
        }
        for ((plan, state), change) in plans.iter().zip(&states).zip(changes) {
            match change {
                TopicChange::Create => to_create.push(plan),
                TopicChange::Unchanged => {
                    if !report.created.contains(&plan.name) && !report.altered.contains(&plan.name)
                    {
                        push_once(&mut report.unchanged, &plan.name);
                    }
                }
                TopicChange::Alter {
                    partitions,
                    configs,
                } => {
                    if let Some(count) = partitions {
                        to_raise.push((plan.name.as_str(), count));
                    }
                    if !configs.is_empty() {
                        let overrides = state
                            .observed
                            .as_ref()
                            .map(|o| o.overrides.clone())
                            .unwrap_or_default();
                        let mut merged = overrides;
                        merged.extend(configs);
                        to_alter.push((plan.name.as_str(), merged));
                    }
                    report.unchanged.retain(|n| n != &plan.name);
                    if !report.created.contains(&plan.name) {
                        push_once(&mut report.altered, &plan.name);
                    }
                }
            }
        }
        let raced = self.create(&to_create, report).await?;
        self.raise_partitions(&to_raise, report).await?;
        self.alter_configs(&to_alter, report).await?;
        Ok(raced)
    }

    /// Creates the topics; returns whether one already existed (a lost race).
    async fn create(&self, plans: &[&TopicPlan], report: &mut EnsureReport) -> Result<bool> {
        if plans.is_empty() {
            return Ok(false);
        }
        let new_topics: Vec<NewTopic<'_>> = plans
            .iter()
            .map(|plan| {
                plan.configs.iter().fold(
                    NewTopic::new(
                        &plan.name,
                        plan.partitions,
                        TopicReplication::Fixed(self.replication),
                    ),
                    |topic, (key, value)| topic.set(key, value),
                )
            })
            .collect();
        report.mutations += new_topics.len();
        let results = self
            .admin
            .create_topics(&new_topics, &options())
            .await
            .map_err(|source| KafkaProvisionError::Request {
                operation: "create_topics",
                source,
            })?;
        let mut raced = false;
        for result in results {
            match result {
                Ok(name) => {
                    report.unchanged.retain(|n| n != &name);
                    push_once(&mut report.created, &name);
                }
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => raced = true,
                Err((topic, source)) => {
                    return Err(KafkaProvisionError::Topic {
                        operation: "create_topics",
                        topic,
                        source,
                    });
                }
            }
        }
        Ok(raced)
    }

    async fn raise_partitions(
        &self,
        raise: &[(&str, i32)],
        report: &mut EnsureReport,
    ) -> Result<()> {
        if raise.is_empty() {
            return Ok(());
        }
        let requests: Vec<NewPartitions<'_>> = raise
            .iter()
            .map(|(name, count)| NewPartitions::new(name, usize::try_from(*count).unwrap_or(0)))
            .collect();
        report.mutations += requests.len();
        let results = self
            .admin
            .create_partitions(&requests, &options())
            .await
            .map_err(|source| KafkaProvisionError::Request {
                operation: "create_partitions",
                source,
            })?;
        for result in results {
            if let Err((topic, source)) = result {
                return Err(KafkaProvisionError::Topic {
                    operation: "create_partitions",
                    topic,
                    source,
                });
            }
        }
        Ok(())
    }

    async fn alter_configs(
        &self,
        alter: &[(&str, BTreeMap<String, String>)],
        report: &mut EnsureReport,
    ) -> Result<()> {
        if alter.is_empty() {
            return Ok(());
        }
        let requests: Vec<AlterConfig<'_>> = alter
            .iter()
            .map(|(name, configs)| {
                configs.iter().fold(
                    AlterConfig::new(ResourceSpecifier::Topic(name)),
                    |request, (key, value)| request.set(key, value),
                )
            })
            .collect();
        report.mutations += requests.len();
        let results = self
            .admin
            .alter_configs(&requests, &options())
            .await
            .map_err(|source| KafkaProvisionError::Request {
                operation: "alter_configs",
                source,
            })?;
        for (result, (name, _)) in results.into_iter().zip(alter) {
            if let Err((_, source)) = result {
                return Err(KafkaProvisionError::Topic {
                    operation: "alter_configs",
                    topic: (*name).to_owned(),
                    source,
                });
            }
        }
        Ok(())
    }

    /// Waits until every planned topic matches its plan.
    async fn wait_until_matching(&self, plans: &[TopicPlan]) -> Result<()> {
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            let states = self.observe(plans).await?;
            let mut pending = None;
            for (plan, state) in plans.iter().zip(&states) {
                if diff_topic(plan, state.observed.as_ref())? != TopicChange::Unchanged {
                    pending = Some(plan.name.clone());
                    break;
                }
            }
            let Some(topic) = pending else {
                return Ok(());
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(KafkaProvisionError::NotConverged {
                    topic,
                    waited: SETTLE_TIMEOUT,
                });
            }
            tokio::time::sleep(SETTLE_STEP).await;
        }
    }

    /// One observation; `Lagging` when the cluster's view of a topic is inconsistent.
    async fn observe_once(&self, plans: &[TopicPlan]) -> Result<Observation> {
        let names: Vec<String> = plans.iter().map(|p| p.name.clone()).collect();
        let listed = self.topic_metadata(&names).await?;
        let mut present = Vec::new();
        for plan in plans {
            match listed.get(&plan.name) {
                Some(Ok(_)) => present.push(plan),
                Some(Err(_)) => return Ok(Observation::Lagging(plan.name.clone())),
                None => {}
            }
        }
        let specifiers: Vec<ResourceSpecifier<'_>> = present
            .iter()
            .map(|plan| ResourceSpecifier::Topic(&plan.name))
            .collect();
        let described = if specifiers.is_empty() {
            Vec::new()
        } else {
            self.admin
                .describe_configs(&specifiers, &options())
                .await
                .map_err(|source| KafkaProvisionError::Request {
                    operation: "describe_configs",
                    source,
                })?
        };
        let mut observed: BTreeMap<&str, ObservedTopic> = BTreeMap::new();
        for (plan, result) in present.iter().zip(described) {
            let resource = match result {
                Ok(resource) => resource,
                // Listed but not yet describable: creation or deletion in flight.
                Err(RDKafkaErrorCode::UnknownTopicOrPartition) => {
                    return Ok(Observation::Lagging(plan.name.clone()));
                }
                Err(source) => {
                    return Err(KafkaProvisionError::Topic {
                        operation: "describe_configs",
                        topic: plan.name.clone(),
                        source,
                    });
                }
            };
            let mut configs = BTreeMap::new();
            let mut overrides = BTreeMap::new();
            for entry in &resource.entries {
                let Some(value) = &entry.value else { continue };
                if plan.configs.contains_key(&entry.name) {
                    configs.insert(entry.name.clone(), value.clone());
                }
                if entry.source == ConfigSource::DynamicTopic {
                    overrides.insert(entry.name.clone(), value.clone());
                }
            }
            let partitions = match listed.get(&plan.name) {
                Some(Ok(count)) => *count,
                _ => return Ok(Observation::Lagging(plan.name.clone())),
            };
            observed.insert(
                &plan.name,
                ObservedTopic {
                    partitions,
                    configs,
                    overrides,
                },
            );
        }
        Ok(Observation::Consistent(
            plans
                .iter()
                .map(|plan| TopicState {
                    name: plan.name.clone(),
                    observed: observed.remove(plan.name.as_str()),
                })
                .collect(),
        ))
    }

    /// The topics `names` as the cluster lists them: each one's partition count, or the
    /// error it is listed with; a topic that does not exist is left out. Asks for these
    /// topics only, so the cost of a look does not grow with the cluster's other topics; the
    /// admin client never asks the broker to auto-create them
    /// (`allow.auto.create.topics=false`).
    async fn topic_metadata(
        &self,
        names: &[String],
    ) -> Result<BTreeMap<String, Result<i32, RDKafkaErrorCode>>> {
        self.topic_metadata_within(names, REQUEST_TIMEOUT).await
    }

    /// [`Self::topic_metadata`], waiting at most `timeout` for the cluster.
    pub(super) async fn topic_metadata_within(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> Result<BTreeMap<String, Result<i32, RDKafkaErrorCode>>> {
        let admin = Arc::clone(&self.admin);
        let names = names.to_vec();
        tokio::task::spawn_blocking(move || {
            let mut listed = BTreeMap::new();
            for name in &names {
                let metadata =
                    admin
                        .inner()
                        .fetch_metadata(Some(name), timeout)
                        .map_err(|source| KafkaProvisionError::Request {
                            operation: "fetch_metadata",
                            source,
                        })?;
                for topic in metadata.topics().iter().filter(|t| t.name() == name) {
                    let state = match topic.error().map(RDKafkaErrorCode::from) {
                        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => continue,
                        Some(code) => Err(code),
                        None => Ok(i32::try_from(topic.partitions().len()).unwrap_or(i32::MAX)),
                    };
                    listed.insert(topic.name().to_owned(), state);
                }
            }
            Ok(listed)
        })
        .await
        .map_err(|source| KafkaProvisionError::Blocking { source })?
    }
}

/// One look at the cluster.
enum Observation {
    /// Every planned topic is either absent or fully described.
    Consistent(Vec<TopicState>),
    /// This topic is half-way through a change; look again.
    Lagging(String),
}

fn options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(REQUEST_TIMEOUT))
        .operation_timeout(Some(REQUEST_TIMEOUT))
}

fn push_once(names: &mut Vec<String>, name: &str) {
    if !names.iter().any(|n| n == name) {
        names.push(name.to_owned());
    }
}
