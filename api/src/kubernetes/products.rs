//! DataProduct custom resources: each is taken into the metadata store through the same
//! path as `PUT /api/v1/products/{team}/{name}` (validation, approval policy, audit), and
//! the product's status in the store is copied back onto the object.
//!
//! - The team is the namespace's `sluice.dev/team` label, or the namespace's name.
//! - The finalizer `sluice.dev/teardown` keeps the object until Sluice has torn the product
//!   down (job, topics and, per `deletionPolicy`, target).
//! - Once approved and provisioned, the product's worker objects are kept in its namespace
//!   (see [`super::workers`]).
//! - The product in the store is marked as coming from the object; the API then refuses to
//!   change or delete it, so the object stays the one place it is changed.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DynamicObject};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::finalizer::{Event, finalizer};
use kube::{Api, Client, CustomResourceExt, Resource, ResourceExt};
use serde_json::{Value, json};
use sluice_schemas::crd::{DataProductResource, KubeProductStatus, TEAM_LABEL};

/// How the controller sees DataProduct objects: with the spec as plain JSON, so that an
/// object the API server accepted but Sluice cannot read (the parts its schema leaves
/// open) is refused on its own status instead of breaking the watch for every object.
pub type ProductObject = DynamicObject;

/// The API resource of DataProduct objects.
pub fn resource() -> ApiResource {
    DataProductResource::api_resource()
}
use sluice_schemas::product::DedicatedTarget;
use sluice_schemas::{ConditionStatus, DataProductStatus, Phase, TEARDOWN_FINALIZER};
use sluice_store::ObjectKey;

use super::dedicated::DedicatedStore;
use super::workers::{self, WorkerSpec};
use super::{Context, KubeError, MANAGED_LABEL, NAMESPACE_LABEL};
use crate::auth::{Principal, Role, Via};
use crate::caller::Caller;
use crate::routes::apply;

/// How soon a product that is still moving is looked at again.
const BUSY_REQUEUE: Duration = Duration::from_secs(3);
/// How soon a settled product is looked at again (drift of owned objects wakes it sooner).
const SETTLED_REQUEUE: Duration = Duration::from_secs(60);

/// Reconciles one DataProduct object.
pub async fn reconcile(object: Arc<ProductObject>, ctx: Arc<Context>) -> Result<Action, KubeError> {
    let namespace = object.namespace().ok_or(KubeError::NoNamespace)?;
    if !ctx.settings.namespaces.is_empty() && !ctx.settings.namespaces.contains(&namespace) {
        return Ok(Action::await_change());
    }
    let api: Api<ProductObject> = Api::namespaced_with(ctx.client.clone(), &namespace, &resource());
    finalizer(&api, TEARDOWN_FINALIZER, object, |event| async {
        match event {
            Event::Apply(object) => take_in(&object, &namespace, &ctx).await,
            Event::Cleanup(object) => tear_down(&object, &namespace, &ctx).await,
        }
    })
    .await
    .map_err(|e| KubeError::Finalizer(Box::new(e)))
}

/// The team a namespace stands for.
pub async fn team_of(client: &Client, namespace: &str) -> Result<String, KubeError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let found = namespaces.get_opt(namespace).await?;
    Ok(found
        .and_then(|ns| ns.labels().get(TEAM_LABEL).cloned())
        .unwrap_or_else(|| namespace.to_owned()))
}

/// Who changes the store on behalf of an object: recorded in the audit log.
fn caller_for(namespace: &str, name: &str, team: &str) -> Caller {
    Caller {
        principal: Principal {
            name: format!("kubernetes:{namespace}/{name}"),
            team: team.to_owned(),
            role: Role::Requester,
            via: Via::Kubernetes,
        },
        request_id: uuid::Uuid::new_v4().to_string(),
    }
}

/// The document the object stands for.
fn document(object: &ProductObject, namespace: &str, team: &str) -> Value {
    let annotations = object.annotations();
    let mut metadata = json!({
        "name": object.name_any(),
        "team": team,
        "labels": {MANAGED_LABEL: "kubernetes", NAMESPACE_LABEL: namespace},
    });
    super::describe(&mut metadata, annotations);
    json!({
        "apiVersion": sluice_schemas::API_VERSION,
        "kind": "DataProduct",
        "metadata": metadata,
        "spec": object.data.get("spec").cloned().unwrap_or(Value::Null),
    })
}

/// Applies the object to the store, copies the status back and keeps the workers.
async fn take_in(
    object: &ProductObject,
    namespace: &str,
    ctx: &Context,
) -> Result<Action, KubeError> {
    let name = object.name_any();
    let team = team_of(&ctx.client, namespace).await?;
    let key = ObjectKey::data_product(team.clone(), name.clone());
    let caller = caller_for(namespace, &name, &team);
    let previous: KubeProductStatus = object
        .data
        .get("status")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default();

    let mut document = document(object, namespace, &team);
    let dedicated = dedicated_store(object, namespace, &team, &document)?;
    let mut store_ready = None;
    let accepted = match claimed_elsewhere(ctx, &key, namespace).await? {
        Some(other) => Err(format!(
            "{team}/{name} already comes from namespace {other}; a team's product has one home"
        )),
        None => {
            let mut prepared = Ok(());
            if let Some(store) = &dedicated {
                let (password, ready) = store.ensure(&ctx.client).await?;
                store_ready = Some(ready);
                prepared = register_dedicated(ctx, store, &password, &name).await;
                // Provisioned into as into a shared cluster: the one registered for it.
                document["spec"]["target"]["cluster"] = json!(store.cluster_name());
                if let Some(target) = document["spec"]["target"].as_object_mut() {
                    target.remove("dedicated");
                }
            }
            match prepared {
                Ok(()) => apply::apply(&ctx.state, key.clone(), document, None, &caller)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.summary()),
                Err(message) => Err(message),
            }
        }
    };
    let stored = ctx.state.store.get(&key).await.map_err(KubeError::Store)?;
    let store_status: Option<DataProductStatus> = stored
        .as_ref()
        .and_then(|o| o.status.clone())
        .and_then(|s| serde_json::from_value(s).ok());
    let mut status = kube_status(store_status.as_ref());
    status.observed_generation = object.metadata.generation;
    set_accepted(&mut status, &previous, accepted.as_ref().err());
    if let (Some(store), Some(ready)) = (&dedicated, store_ready) {
        let (state, reason, message) = if ready {
            (ConditionStatus::True, "Ready", String::new())
        } else {
            (
                ConditionStatus::False,
                "WaitingForPods",
                format!(
                    "waiting for StatefulSet {} to be ready",
                    store.object_name()
                ),
            )
        };
        status
            .conditions
            .retain(|c| c.condition_type != "DedicatedStoreReady");
        status.conditions.insert(
            1,
            super::condition(
                &previous.conditions,
                "DedicatedStoreReady",
                state,
                reason,
                message,
            ),
        );
    }

    if let Some(store_status) = &store_status
        && store_status.target.is_some()
        && store_status.phase != Phase::Deleting
    {
        let replicas = match workers::replicas(object.metadata.annotations.as_ref()) {
            Ok(n) => n,
            Err(message) => {
                publish(
                    ctx,
                    object,
                    &resource(),
                    EventType::Warning,
                    "InvalidReplicas",
                    &message,
                )
                .await;
                1
            }
        };
        let spec = WorkerSpec {
            namespace: namespace.to_owned(),
            name: name.clone(),
            team: team.clone(),
            image: ctx.settings.worker_image.clone(),
            replicas,
            settings: ctx.settings.worker_settings.clone(),
            owner: object
                .controller_owner_ref(&resource())
                .ok_or(KubeError::Unidentified)?,
        };
        workers::ensure(&ctx.client, &spec).await?;
    }

    if let Err(message) = &accepted
        && previous_refusal(&previous) != Some(message.as_str())
    {
        publish(
            ctx,
            object,
            &resource(),
            EventType::Warning,
            "Refused",
            message,
        )
        .await;
    }
    if status.phase != previous.phase
        && let Some(phase) = status.phase
    {
        let note = status.message.clone().unwrap_or_default();
        publish(
            ctx,
            object,
            &resource(),
            EventType::Normal,
            phase_name(phase),
            &note,
        )
        .await;
    }
    if status != previous {
        write_status(ctx, namespace, &name, &status).await?;
    }
    let settled = matches!(
        status.phase,
        Some(Phase::Live | Phase::Failed | Phase::Rejected)
    ) || accepted.is_err();
    Ok(Action::requeue(if settled {
        SETTLED_REQUEUE
    } else {
        BUSY_REQUEUE
    }))
}

/// The namespace another object of the same team and name comes from, if one does.
async fn claimed_elsewhere(
    ctx: &Context,
    key: &ObjectKey,
    namespace: &str,
) -> Result<Option<String>, KubeError> {
    let stored = ctx.state.store.get(key).await.map_err(KubeError::Store)?;
    Ok(stored
        .as_ref()
        .and_then(|o| o.metadata.get("labels"))
        .and_then(|l| l.get(NAMESPACE_LABEL))
        .and_then(Value::as_str)
        .filter(|ns| *ns != namespace)
        .map(str::to_owned))
}

/// Asks the store to tear the product down and waits (by failing, so the finalizer stays)
/// until it is gone.
async fn tear_down(
    object: &ProductObject,
    namespace: &str,
    ctx: &Context,
) -> Result<Action, KubeError> {
    let name = object.name_any();
    let team = team_of(&ctx.client, namespace).await?;
    let key = ObjectKey::data_product(team.clone(), name.clone());
    // The workers go first: the controller tears down a product whose jobs stopped.
    workers::remove(&ctx.client, namespace, &name).await?;
    if claimed_elsewhere(ctx, &key, namespace).await?.is_some() {
        return Ok(Action::await_change());
    }
    let Some(stored) = ctx.state.store.get(&key).await.map_err(KubeError::Store)? else {
        let document = document(object, namespace, &team);
        if let Some(store) = dedicated_store(object, namespace, &team, &document)? {
            store.remove(&ctx.client).await?;
            let cluster = ObjectKey::target_cluster(store.cluster_name());
            if ctx
                .state
                .store
                .get(&cluster)
                .await
                .map_err(KubeError::Store)?
                .is_some()
            {
                apply::delete(
                    &ctx.state.store,
                    cluster,
                    None,
                    &dedicated_caller(&store, &name),
                )
                .await
                .map_err(|e| KubeError::Refused(e.summary()))?;
            }
        }
        publish(
            ctx,
            object,
            &resource(),
            EventType::Normal,
            "TornDown",
            "the product is gone",
        )
        .await;
        return Ok(Action::await_change());
    };
    let deleting = stored
        .status
        .as_ref()
        .and_then(|s| s.get("deletionRequested"))
        .is_some();
    if !deleting {
        let caller = caller_for(namespace, &name, &team);
        apply::delete_product(&ctx.state.store, key.clone(), None, &caller)
            .await
            .map_err(|e| KubeError::Refused(e.summary()))?;
        ctx.state.wake_controller();
        publish(
            ctx,
            object,
            &resource(),
            EventType::Normal,
            "Deleting",
            "tearing down per deletionPolicy",
        )
        .await;
    }
    Err(KubeError::TearingDown(format!("{team}/{name}")))
}

/// The object's status from the store's.
fn kube_status(store: Option<&DataProductStatus>) -> KubeProductStatus {
    let Some(status) = store else {
        return KubeProductStatus::default();
    };
    let (done, total) = status.backfill.iter().fold((0u64, 0u64), |(d, t), s| {
        (d + s.done.min(s.total), t + s.total)
    });
    let progress = match status.phase {
        Phase::Live => Some("100%".to_owned()),
        _ if total > 0 => Some(format!("{}%", done * 100 / total)),
        _ => None,
    };
    let target = status.target.as_ref();
    KubeProductStatus {
        phase: Some(status.phase),
        observed_generation: None,
        progress,
        conditions: status.conditions.clone(),
        backfill: status.backfill.clone(),
        lag_ms: status.lag_ms,
        dead_letters: status.dead_letters,
        message: status.message.clone(),
        approval: status.approval.clone(),
        topic: target.and_then(|t| t.topic.clone()),
        location: target.and_then(|t| t.location.clone()),
        reader: target.and_then(|t| t.reader.clone()),
    }
}

/// The `Accepted` condition: whether Sluice took the object's latest spec in.
fn set_accepted(
    status: &mut KubeProductStatus,
    previous: &KubeProductStatus,
    refusal: Option<&String>,
) {
    let (state, reason, message) = match refusal {
        None => (ConditionStatus::True, "Applied", String::new()),
        Some(message) => (ConditionStatus::False, "Refused", message.clone()),
    };
    status.conditions.retain(|c| c.condition_type != "Accepted");
    status.conditions.insert(
        0,
        super::condition(&previous.conditions, "Accepted", state, reason, message),
    );
}

/// The dedicated store the object asks for, if it asks for one.
fn dedicated_store(
    object: &ProductObject,
    namespace: &str,
    team: &str,
    document: &Value,
) -> Result<Option<DedicatedStore>, KubeError> {
    let target = &document["spec"]["target"];
    let Some(spec) = target
        .get("dedicated")
        .filter(|_| target.get("cluster").is_none())
        .and_then(|d| serde_json::from_value::<DedicatedTarget>(d.clone()).ok())
    else {
        // Absent, or malformed: then the product's validation says what is wrong.
        return Ok(None);
    };
    let deletion = document["spec"]
        .get("deletionPolicy")
        .and_then(|d| serde_json::from_value(d.clone()).ok())
        .unwrap_or_default();
    Ok(Some(DedicatedStore {
        namespace: namespace.to_owned(),
        product: object.name_any(),
        team: team.to_owned(),
        spec,
        deletion,
        owner: object
            .controller_owner_ref(&resource())
            .ok_or(KubeError::Unidentified)?,
    }))
}

/// Registers (or keeps) the TargetCluster of a dedicated store in the catalog.
async fn register_dedicated(
    ctx: &Context,
    store: &DedicatedStore,
    password: &str,
    product: &str,
) -> Result<(), String> {
    let caller = dedicated_caller(store, product);
    apply::apply(
        &ctx.state,
        ObjectKey::target_cluster(store.cluster_name()),
        store.cluster_document(password, &format!("{}/{product}", store.namespace)),
        None,
        &caller,
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("the dedicated store's cluster: {}", e.summary()))
}

/// Who registers a dedicated store: Sluice itself, as an admin would.
fn dedicated_caller(store: &DedicatedStore, product: &str) -> Caller {
    Caller {
        principal: Principal {
            name: format!("kubernetes:{}/{product}", store.namespace),
            team: "platform".to_owned(),
            role: Role::Admin,
            via: Via::Kubernetes,
        },
        request_id: uuid::Uuid::new_v4().to_string(),
    }
}

fn previous_refusal(previous: &KubeProductStatus) -> Option<&str> {
    previous
        .conditions
        .iter()
        .find(|c| c.condition_type == "Accepted" && c.status == ConditionStatus::False)
        .map(|c| c.message.as_str())
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::PendingApproval => "PendingApproval",
        Phase::Approved => "Approved",
        Phase::Provisioning => "Provisioning",
        Phase::Backfilling => "Backfilling",
        Phase::Live => "Live",
        Phase::Degraded => "Degraded",
        Phase::Failed => "Failed",
        Phase::Rejected => "Rejected",
        Phase::Deleting => "Deleting",
    }
}

/// Writes the status subresource (server-side apply, field manager `sluice`).
async fn write_status(
    ctx: &Context,
    namespace: &str,
    name: &str,
    status: &KubeProductStatus,
) -> Result<(), KubeError> {
    let api: Api<ProductObject> = Api::namespaced_with(ctx.client.clone(), namespace, &resource());
    let patch = json!({
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "DataProduct",
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(workers::FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Records a Kubernetes Event on an object of `resource`; a failure to record is only
/// logged.
pub(super) async fn publish(
    ctx: &Context,
    object: &DynamicObject,
    resource: &ApiResource,
    kind: EventType,
    reason: &str,
    note: &str,
) {
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    let event = KubeEvent {
        type_: kind,
        reason: reason.to_owned(),
        note: (!note.is_empty()).then(|| note.chars().take(1024).collect()),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, &object.object_ref(resource)).await {
        tracing::warn!(%error, reason, "cannot record a Kubernetes event");
    }
}
