//! Connections to the registered target clusters, made once per cluster version and shared
//! by every pass, and the periodic check of each cluster (reachability, privileges) recorded
//! as conditions on it.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_provisioners::TargetConnection;
use sluice_schemas::{Condition, ConditionStatus, Kind, TargetClusterSpec, TargetClusterStatus};
use sluice_store::secrets::reveal_url;
use sluice_store::{ListQuery, ObjectKey, SecretBox, Store};
use tokio::sync::Mutex;

use crate::reconcile::{ReconcileError, now};
use crate::runner::Inner;

/// The cluster is reachable.
pub const REACHABLE: &str = "Reachable";
/// Sluice's account may create what products need.
pub const PRIVILEGED: &str = "Privileged";

/// A connection to one cluster, with the spec and resourceVersion it was made for.
type OpenCluster = (i64, TargetClusterSpec, Arc<TargetConnection>);

/// Open connections by cluster name.
#[derive(Default)]
pub(crate) struct ClusterConnections {
    open: Mutex<HashMap<String, OpenCluster>>,
    /// Mutations counted by connections since replaced.
    retired_mutations: Mutex<u64>,
}

impl ClusterConnections {
    /// The spec of cluster `name` and a connection to it, made anew when the cluster
    /// changed.
    pub(crate) async fn get(
        &self,
        store: &Store,
        secrets: &SecretBox,
        name: &str,
    ) -> Result<(TargetClusterSpec, Arc<TargetConnection>), ReconcileError> {
        let object = store
            .get(&ObjectKey::target_cluster(name))
            .await?
            .ok_or_else(|| {
                ReconcileError::Failed(format!("target cluster `{name}` is not registered"))
            })?;
        let mut open = self.open.lock().await;
        if let Some((rv, spec, conn)) = open.get(name)
            && *rv == object.resource_version
        {
            return Ok((spec.clone(), Arc::clone(conn)));
        }
        let spec: TargetClusterSpec = serde_json::from_value(object.spec.clone()).map_err(|e| {
            ReconcileError::Failed(format!(
                "stored target cluster `{name}` does not decode: {e}"
            ))
        })?;
        let url = reveal_url(secrets, &spec.url).map_err(|e| {
            ReconcileError::Failed(format!(
                "the credentials of target cluster `{name}` cannot be opened: {e}"
            ))
        })?;
        let conn = Arc::new(
            TargetConnection::connect(spec.target_type, &url)
                .map_err(|e| ReconcileError::Failed(format!("target cluster `{name}`: {e}")))?,
        );
        if let Some((_, _, old)) = open.insert(
            name.to_owned(),
            (object.resource_version, spec.clone(), Arc::clone(&conn)),
        ) {
            *self.retired_mutations.lock().await += old.mutations();
        }
        Ok((spec, conn))
    }

    /// Mutating calls issued through every connection made so far.
    pub(crate) async fn mutations(&self) -> u64 {
        let open: u64 = self
            .open
            .lock()
            .await
            .values()
            .map(|(_, _, c)| c.mutations())
            .sum();
        open + *self.retired_mutations.lock().await
    }
}

/// Checks the registered target clusters and records `Reachable` and `Privileged` on them:
/// all of them when `all`, otherwise those registered or changed since their last check
/// (`checked` holds the resourceVersion each was left at).
pub(crate) async fn check(inner: &Inner, checked: &mut HashMap<String, i64>, all: bool) {
    let mut query = ListQuery {
        limit: ListQuery::MAX_LIMIT,
        ..ListQuery::default()
    };
    loop {
        let page = match inner.store.list(Kind::TargetCluster, &query).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list target clusters");
                return;
            }
        };
        for object in &page.items {
            let name = object.key.name().to_owned();
            if !all && checked.get(&name) == Some(&object.resource_version) {
                continue;
            }
            let (reachable, privileged) = match inner
                .clusters
                .get(&inner.store, &inner.secrets, &name)
                .await
            {
                Ok((_, conn)) => {
                    let check = conn.check().await;
                    (check.reachable, check.privileged)
                }
                Err(e) => (Err(e.to_string()), Err("not checked".to_owned())),
            };
            let mut status: TargetClusterStatus = object
                .status
                .clone()
                .and_then(|s| serde_json::from_value(s).ok())
                .unwrap_or_default();
            let now = now();
            set(
                &mut status,
                REACHABLE,
                &reachable,
                "Reachable",
                "Unreachable",
                &now,
            );
            let privileged = if reachable.is_ok() {
                privileged
            } else {
                Err("unknown while the cluster is unreachable".to_owned())
            };
            set(
                &mut status,
                PRIVILEGED,
                &privileged,
                "Privileged",
                "MissingPrivileges",
                &now,
            );
            let Ok(value) = serde_json::to_value(&status) else {
                continue;
            };
            if let Err(e) = inner
                .store
                .set_status(
                    &object.key,
                    value,
                    Some(object.resource_version),
                    &inner.audit,
                )
                .await
                && !e.is_conflict()
            {
                tracing::warn!(cluster = %name, error = %e, "cannot record the cluster check");
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => return,
        }
    }
}

fn set(
    status: &mut TargetClusterStatus,
    kind: &str,
    result: &Result<(), String>,
    ok_reason: &str,
    bad_reason: &str,
    now: &str,
) {
    let (truth, reason, message) = match result {
        Ok(()) => (ConditionStatus::True, ok_reason, String::new()),
        Err(message) => (ConditionStatus::False, bad_reason, message.clone()),
    };
    match status
        .conditions
        .iter_mut()
        .find(|c| c.condition_type == kind)
    {
        Some(c) => {
            if c.status != truth {
                c.status = truth;
                c.last_transition_time = now.to_owned();
            }
            c.reason = reason.to_owned();
            c.message = message;
        }
        None => status.conditions.push(Condition {
            condition_type: kind.to_owned(),
            status: truth,
            reason: reason.to_owned(),
            message,
            last_transition_time: now.to_owned(),
        }),
    }
}
