//! The objects that run one product's stream jobs in Kubernetes mode, in the product's
//! namespace and owned by its DataProduct: a Deployment of `sluice worker --product
//! TEAM/NAME`, the Secret holding the worker's settings, and a PodDisruptionBudget.
//!
//! They are written with server-side apply under the field manager `sluice` and `force`,
//! so a hand edit of a field Sluice sets is taken back at the next reconcile, and a deleted
//! object is created again (the controller watches the objects it owns).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar,
    HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, Secret, SecretEnvSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams};
use kube::{Api, Client};

/// The field manager of everything Sluice writes with server-side apply.
pub const FIELD_MANAGER: &str = "sluice";
/// The annotation of a DataProduct that sets its worker replicas (default 1).
pub const REPLICAS_ANNOTATION: &str = "sluice.dev/workers";
/// The port of a worker's `/healthz`.
const HEALTH_PORT: i32 = 8081;
/// The most worker replicas one product may ask for.
const MAX_REPLICAS: i32 = 64;

/// What the worker objects of one product are made from.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// The product's namespace.
    pub namespace: String,
    /// The product's name (the DataProduct object's name).
    pub name: String,
    /// The product's team.
    pub team: String,
    /// The container image.
    pub image: String,
    /// How many replicas.
    pub replicas: i32,
    /// The worker's settings (`SLUICE_*`), kept in its Secret.
    pub settings: BTreeMap<String, String>,
    /// The DataProduct that owns the objects.
    pub owner: OwnerReference,
}

/// The replicas a product asks for with [`REPLICAS_ANNOTATION`], or why the value is
/// refused.
pub fn replicas(annotations: Option<&BTreeMap<String, String>>) -> Result<i32, String> {
    let Some(text) = annotations.and_then(|a| a.get(REPLICAS_ANNOTATION)) else {
        return Ok(1);
    };
    text.parse::<i32>()
        .ok()
        .filter(|n| (0..=MAX_REPLICAS).contains(n))
        .ok_or_else(|| {
            format!(
                "annotation {REPLICAS_ANNOTATION}: `{text}` is not a number of replicas from 0 to {MAX_REPLICAS}"
            )
        })
}

/// The name of a product's worker objects: `sluice-worker-<name>`, shortened with a hash
/// when that would pass the 63 characters of a label value.
pub fn object_name(product: &str) -> String {
    super::short_name(&format!("sluice-worker-{product}"), 63)
}

/// The labels of a product's worker objects; the first two select its pods.
pub fn labels(spec: &WorkerSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_owned(),
            "sluice-worker".to_owned(),
        ),
        ("app.kubernetes.io/instance".to_owned(), spec.name.clone()),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "sluice".to_owned(),
        ),
        (
            "app.kubernetes.io/component".to_owned(),
            "stream-job".to_owned(),
        ),
        ("sluice.dev/team".to_owned(), spec.team.clone()),
    ])
}

fn selector(spec: &WorkerSpec) -> BTreeMap<String, String> {
    labels(spec)
        .into_iter()
        .filter(|(k, _)| k == "app.kubernetes.io/name" || k == "app.kubernetes.io/instance")
        .collect()
}

fn meta(spec: &WorkerSpec) -> ObjectMeta {
    ObjectMeta {
        name: Some(object_name(&spec.name)),
        namespace: Some(spec.namespace.clone()),
        labels: Some(labels(spec)),
        owner_references: Some(vec![spec.owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// The Secret with the worker's settings.
pub fn secret(spec: &WorkerSpec) -> Secret {
    Secret {
        metadata: meta(spec),
        string_data: Some(spec.settings.clone()),
        type_: Some("Opaque".to_owned()),
        ..Secret::default()
    }
}

/// The worker Deployment.
pub fn deployment(spec: &WorkerSpec) -> Deployment {
    let name = object_name(&spec.name);
    let probe = |path: &str, delay: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("health".to_owned()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(delay),
        period_seconds: Some(10),
        failure_threshold: Some(3),
        ..Probe::default()
    };
    let container = Container {
        name: "worker".to_owned(),
        image: Some(spec.image.clone()),
        args: Some(vec![
            "worker".to_owned(),
            "--product".to_owned(),
            format!("{}/{}", spec.team, spec.name),
            "--health-listen".to_owned(),
            format!("0.0.0.0:{HEALTH_PORT}"),
        ]),
        env_from: Some(vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: name.clone(),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        env: Some(vec![EnvVar {
            name: "SLUICE_DATA_DIR".to_owned(),
            value: Some("/var/lib/sluice".to_owned()),
            ..EnvVar::default()
        }]),
        ports: Some(vec![ContainerPort {
            name: Some("health".to_owned()),
            container_port: HEALTH_PORT,
            ..ContainerPort::default()
        }]),
        liveness_probe: Some(probe("/healthz", 10)),
        readiness_probe: Some(probe("/healthz", 2)),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity("250m".to_owned())),
                ("memory".to_owned(), Quantity("512Mi".to_owned())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_owned(),
                Quantity("2Gi".to_owned()),
            )])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "state".to_owned(),
            mount_path: "/var/lib/sluice".to_owned(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    Deployment {
        metadata: meta(spec),
        spec: DeploymentSpec {
            replicas: Some(spec.replicas),
            selector: LabelSelector {
                match_labels: Some(selector(spec)),
                ..LabelSelector::default()
            },
            // Jobs hand over through leases: a new pod takes a job once the old one let
            // go, so a rolling update never runs a slice twice.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                ..DeploymentStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(spec)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    automount_service_account_token: Some(false),
                    termination_grace_period_seconds: Some(60),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65532),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_owned(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    volumes: Some(vec![Volume {
                        name: "state".to_owned(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

/// The PodDisruptionBudget: one worker pod at a time may be evicted, so a node drain
/// moves the jobs instead of stopping them all.
pub fn disruption_budget(spec: &WorkerSpec) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(spec),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector(spec)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

/// Creates or takes back the three objects.
pub async fn ensure(client: &Client, spec: &WorkerSpec) -> Result<(), kube::Error> {
    let name = object_name(&spec.name);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &spec.namespace);
    secrets
        .patch(&name, &params, &Patch::Apply(secret(spec)))
        .await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &spec.namespace);
    deployments
        .patch(&name, &params, &Patch::Apply(deployment(spec)))
        .await?;
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &spec.namespace);
    budgets
        .patch(&name, &params, &Patch::Apply(disruption_budget(spec)))
        .await?;
    Ok(())
}

/// Deletes the three objects; those already gone are fine.
pub async fn remove(client: &Client, namespace: &str, product: &str) -> Result<(), kube::Error> {
    let name = object_name(product);
    // In the background: the garbage collector removes what hangs off them (ReplicaSets,
    // pods), and the product's teardown does not wait on it.
    let params = DeleteParams::background();
    let gone = |r: Result<(), kube::Error>| match r {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other,
    };
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    gone(deployments.delete(&name, &params).await.map(|_| ()))?;
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), namespace);
    gone(budgets.delete(&name, &params).await.map(|_| ()))?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    gone(secrets.delete(&name, &params).await.map(|_| ()))?;
    Ok(())
}
