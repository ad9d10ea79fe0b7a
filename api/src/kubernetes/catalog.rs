//! Dataset and TargetCluster custom resources (cluster-scoped): each is taken into the
//! catalog through the API's apply path, as an admin would apply it — creating them is a
//! cluster-wide right in Kubernetes, which platform teams hold — and its outcome is written
//! to the object's status (`Ready`).
//!
//! - The catalog name is the annotation `sluice.dev/name`, or the object's name (a catalog
//!   name may hold `_`, which Kubernetes names may not).
//! - A dataset's owning team is the annotation `sluice.dev/owner`.
//! - A target cluster's password comes from the Secret named by `spec.credentialsSecret` in
//!   Sluice's own namespace (key `password`, and `username` if the URL has none), so that no
//!   password is written in an object.
//! - Deleting the object deletes the entry (through the finalizer `sluice.dev/teardown`);
//!   while the catalog refuses (e.g. a product still uses it), the object stays, with the
//!   reason on its status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event, finalizer};
use kube::{Api, CustomResourceExt, ResourceExt};
use serde_json::{Value, json};
use sluice_schemas::crd::{DatasetResource, KubeStatus, TargetClusterResource};
use sluice_schemas::{Condition, ConditionStatus, Kind, TEARDOWN_FINALIZER};

use sluice_store::ObjectKey;

use super::products::publish;
use super::{Context, KubeError, MANAGED_LABEL, OBJECT_LABEL};
use crate::auth::{Principal, Role, Via};
use crate::caller::Caller;
use crate::routes::apply;

/// The annotation naming the catalog entry when it differs from the object's name.
pub const NAME_ANNOTATION: &str = "sluice.dev/name";
/// The annotation naming a dataset's owning team.
pub const OWNER_ANNOTATION: &str = "sluice.dev/owner";

/// How often an accepted object is looked at again without a change.
const RECHECK: Duration = Duration::from_secs(300);

/// The API resource of a cluster-scoped kind.
pub fn resource(kind: Kind) -> ApiResource {
    match kind {
        Kind::TargetCluster => TargetClusterResource::api_resource(),
        _ => DatasetResource::api_resource(),
    }
}

/// Reconciles one Dataset object.
pub async fn reconcile_dataset(
    object: Arc<DynamicObject>,
    ctx: Arc<Context>,
) -> Result<Action, KubeError> {
    reconcile(Kind::Dataset, object, ctx).await
}

/// Reconciles one TargetCluster object.
pub async fn reconcile_target_cluster(
    object: Arc<DynamicObject>,
    ctx: Arc<Context>,
) -> Result<Action, KubeError> {
    reconcile(Kind::TargetCluster, object, ctx).await
}

async fn reconcile(
    kind: Kind,
    object: Arc<DynamicObject>,
    ctx: Arc<Context>,
) -> Result<Action, KubeError> {
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &resource(kind));
    finalizer(&api, TEARDOWN_FINALIZER, object, |event| async {
        match event {
            Event::Apply(object) => take_in(kind, &object, &ctx).await,
            Event::Cleanup(object) => remove(kind, &object, &ctx).await,
        }
    })
    .await
    .map_err(|e| KubeError::Finalizer(Box::new(e)))
}

/// The catalog key an object stands for.
fn key_of(kind: Kind, object: &DynamicObject) -> ObjectKey {
    let name = object
        .annotations()
        .get(NAME_ANNOTATION)
        .cloned()
        .unwrap_or_else(|| object.name_any());
    ObjectKey::new(kind, "", name)
}

/// Who changes the catalog on behalf of an object.
fn caller_for(kind: Kind, object: &DynamicObject) -> Caller {
    Caller {
        principal: Principal {
            name: format!(
                "kubernetes:{}/{}",
                kind.as_str().to_ascii_lowercase(),
                object.name_any()
            ),
            team: "platform".to_owned(),
            role: Role::Admin,
            via: Via::Kubernetes,
        },
        request_id: uuid::Uuid::new_v4().to_string(),
    }
}

/// Applies the object to the catalog and records the outcome on it.
async fn take_in(kind: Kind, object: &DynamicObject, ctx: &Context) -> Result<Action, KubeError> {
    let key = key_of(kind, object);
    let previous: KubeStatus = object
        .data
        .get("status")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default();
    let outcome = match document(kind, object, &key, ctx).await {
        Ok(document) => {
            match apply::apply(
                &ctx.state,
                key.clone(),
                document,
                None,
                &caller_for(kind, object),
            )
            .await
            {
                Ok(_) => Ok(()),
                Err(e) => Err(e.summary()),
            }
        }
        Err(message) => Err(message),
    };
    let refusal = outcome.as_ref().err();
    let status = KubeStatus {
        observed_generation: object.metadata.generation,
        conditions: vec![ready(&previous, refusal)],
        message: Some(match refusal {
            None => format!("in the catalog as {}", key.name()),
            Some(message) => message.clone(),
        }),
    };
    if let Some(message) = refusal
        && previous.message.as_deref() != Some(message.as_str())
    {
        publish(
            ctx,
            object,
            &resource(kind),
            EventType::Warning,
            "Refused",
            message,
        )
        .await;
    }
    if status != previous {
        let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &resource(kind));
        let patch = json!({
            "apiVersion": sluice_schemas::API_VERSION,
            "kind": kind.as_str(),
            "status": status,
        });
        api.patch_status(
            &object.name_any(),
            &PatchParams::apply(super::workers::FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    Ok(Action::requeue(RECHECK))
}

/// The document an object stands for, with a target cluster's password filled in from its
/// Secret.
async fn document(
    kind: Kind,
    object: &DynamicObject,
    key: &ObjectKey,
    ctx: &Context,
) -> Result<Value, String> {
    let annotations = object.annotations();
    let mut metadata = json!({
        "name": key.name(),
        "labels": {MANAGED_LABEL: "kubernetes", OBJECT_LABEL: object.name_any()},
    });
    if let Some(owner) = annotations.get(OWNER_ANNOTATION) {
        metadata["owner"] = json!(owner);
    }
    super::describe(&mut metadata, annotations);
    let mut spec = object.data.get("spec").cloned().unwrap_or(Value::Null);
    if kind == Kind::TargetCluster
        && let Some(secret) = spec.get("credentialsSecret").and_then(Value::as_str)
    {
        let url = spec.get("url").and_then(Value::as_str).unwrap_or_default();
        let filled = with_credentials(ctx, secret, url).await?;
        spec["url"] = json!(filled);
    }
    Ok(json!({
        "apiVersion": sluice_schemas::API_VERSION,
        "kind": kind.as_str(),
        "metadata": metadata,
        "spec": spec,
    }))
}

/// `url` with the user and password of the Secret `name` in Sluice's namespace.
async fn with_credentials(ctx: &Context, name: &str, url: &str) -> Result<String, String> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|e| {
            format!(
                "/spec/credentialsSecret: cannot read Secret {}/{name}: {e}",
                ctx.namespace
            )
        })?
        .ok_or_else(|| {
            format!(
                "/spec/credentialsSecret: no Secret {name} in namespace {}",
                ctx.namespace
            )
        })?;
    let field = |key: &str| -> Option<String> {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
    };
    let password = field("password").ok_or_else(|| {
        format!(
            "/spec/credentialsSecret: Secret {}/{name} has no key `password`",
            ctx.namespace
        )
    })?;
    let mut parsed =
        url::Url::parse(url).map_err(|e| format!("/spec/url: is not a valid URL ({e})"))?;
    if parsed.username().is_empty() {
        let user = field("username").ok_or_else(|| {
            format!(
                "/spec/credentialsSecret: the URL names no user and Secret {}/{name} has no key `username`",
                ctx.namespace
            )
        })?;
        parsed
            .set_username(&user)
            .map_err(|()| "/spec/url: cannot carry a user".to_owned())?;
    }
    parsed
        .set_password(Some(&password))
        .map_err(|()| "/spec/url: cannot carry a password".to_owned())?;
    Ok(parsed.to_string())
}

/// The `Ready` condition: whether the catalog took the object's latest spec in.
fn ready(previous: &KubeStatus, refusal: Option<&String>) -> Condition {
    let (state, reason, message) = match refusal {
        None => (ConditionStatus::True, "Applied", String::new()),
        Some(message) => (ConditionStatus::False, "Refused", message.clone()),
    };
    super::condition(&previous.conditions, "Ready", state, reason, message)
}

/// Deletes the catalog entry the object stands for, if it still comes from this object.
async fn remove(kind: Kind, object: &DynamicObject, ctx: &Context) -> Result<Action, KubeError> {
    let key = key_of(kind, object);
    let stored = ctx.state.store.get(&key).await.map_err(KubeError::Store)?;
    let ours = stored
        .as_ref()
        .and_then(|o| o.metadata.get("labels"))
        .and_then(|l| l.get(OBJECT_LABEL))
        .and_then(Value::as_str)
        == Some(object.name_any().as_str());
    if ours
        && let Err(e) = apply::delete(&ctx.state.store, key, None, &caller_for(kind, object)).await
    {
        let message = e.summary();
        publish(
            ctx,
            object,
            &resource(kind),
            EventType::Warning,
            "NotDeleted",
            &message,
        )
        .await;
        return Err(KubeError::Refused(message));
    }
    Ok(Action::await_change())
}
