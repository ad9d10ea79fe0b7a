//! Dedicated targets (`target.dedicated: {type, size}`): a store created for one product, in
//! its namespace and owned by its DataProduct — a StatefulSet, its Service and a Secret with
//! a generated admin password — registered in the catalog as a TargetCluster that only the
//! product's team may use. The product is then stored with `target.cluster` naming that
//! cluster, and provisioned into it as into a shared one once the store is ready.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, ExecAction, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, Secret,
    SecretKeySelector, Service, ServicePort, ServiceSpec, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use sluice_schemas::TargetType;
use sluice_schemas::product::{DedicatedSize, DedicatedTarget, DeletionPolicy};

use super::workers::FIELD_MANAGER;

/// The image of dedicated PostgreSQL stores.
pub const POSTGRES_IMAGE: &str = "postgres:16";
/// The image of dedicated Redis stores.
pub const REDIS_IMAGE: &str = "redis:7";

/// One product's dedicated store.
#[derive(Debug, Clone)]
pub struct DedicatedStore {
    /// The product's namespace.
    pub namespace: String,
    /// The product's name.
    pub product: String,
    /// The team that may use it.
    pub team: String,
    /// What was asked for.
    pub spec: DedicatedTarget,
    /// What happens to its volume when the product goes.
    pub deletion: DeletionPolicy,
    /// The DataProduct that owns its objects.
    pub owner: OwnerReference,
}

impl DedicatedStore {
    /// The name of its StatefulSet, Service and Secret: `sluice-<product>-<pg|redis>`,
    /// shortened with a hash past 52 characters (a StatefulSet's pods add a suffix).
    pub fn object_name(&self) -> String {
        super::short_name(
            &format!("sluice-{}-{}", self.product, self.short_type()),
            52,
        )
    }

    /// The name of the TargetCluster registered for it: unique per namespace, product and
    /// type, a DNS label.
    pub fn cluster_name(&self) -> String {
        super::short_name(
            &format!(
                "dedicated-{}-{}-{}",
                self.namespace,
                self.product,
                self.short_type()
            ),
            63,
        )
    }

    fn short_type(&self) -> &'static str {
        match self.spec.target_type {
            TargetType::Postgres => "pg",
            TargetType::Redis => "redis",
            TargetType::Elasticsearch => "es",
        }
    }

    fn port(&self) -> i32 {
        match self.spec.target_type {
            TargetType::Redis => 6379,
            _ => 5432,
        }
    }

    /// Where the store answers inside the cluster.
    pub fn host(&self) -> String {
        format!("{}.{}.svc", self.object_name(), self.namespace)
    }

    /// The admin URL of the store, with `password`.
    pub fn url(&self, password: &str) -> String {
        match self.spec.target_type {
            TargetType::Redis => format!(
                "redis://default:{password}@{}:{}/0",
                self.host(),
                self.port()
            ),
            _ => format!(
                "postgres://postgres:{password}@{}:{}/postgres",
                self.host(),
                self.port()
            ),
        }
    }

    /// The TargetCluster document registered for the store.
    pub fn cluster_document(&self, password: &str, object: &str) -> Value {
        let isolation = match self.spec.target_type {
            TargetType::Redis => "acl-prefix",
            _ => "schema",
        };
        json!({
            "apiVersion": sluice_schemas::API_VERSION,
            "kind": "TargetCluster",
            "metadata": {
                "name": self.cluster_name(),
                "description": format!("the dedicated store of {}/{}", self.team, self.product),
                "labels": {super::MANAGED_LABEL: "kubernetes", super::OBJECT_LABEL: object},
            },
            "spec": {
                "type": self.spec.target_type,
                "url": self.url(password),
                "isolation": isolation,
                "allowedTeams": [self.team],
            },
        })
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "app.kubernetes.io/name".to_owned(),
                format!("sluice-{}", self.short_type()),
            ),
            (
                "app.kubernetes.io/instance".to_owned(),
                self.product.clone(),
            ),
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "sluice".to_owned(),
            ),
            (
                "app.kubernetes.io/component".to_owned(),
                "dedicated-store".to_owned(),
            ),
        ])
    }

    fn selector(&self) -> BTreeMap<String, String> {
        self.labels()
            .into_iter()
            .filter(|(k, _)| k == "app.kubernetes.io/name" || k == "app.kubernetes.io/instance")
            .collect()
    }

    fn meta(&self) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.object_name()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels()),
            owner_references: Some(vec![self.owner.clone()]),
            ..ObjectMeta::default()
        }
    }

    /// CPU, memory and disk per size.
    fn sizing(&self) -> (&'static str, &'static str, &'static str) {
        match self.spec.size.unwrap_or(DedicatedSize::Small) {
            DedicatedSize::Small => ("250m", "512Mi", "10Gi"),
            DedicatedSize::Medium => ("1", "2Gi", "50Gi"),
            DedicatedSize::Large => ("2", "8Gi", "200Gi"),
        }
    }

    /// The Service in front of the store.
    pub fn service(&self) -> Service {
        Service {
            metadata: self.meta(),
            spec: Some(ServiceSpec {
                selector: Some(self.selector()),
                ports: Some(vec![ServicePort {
                    name: Some("store".to_owned()),
                    port: self.port(),
                    target_port: Some(IntOrString::String("store".to_owned())),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    /// The StatefulSet running the store.
    pub fn stateful_set(&self) -> StatefulSet {
        let (cpu, memory, disk) = self.sizing();
        let secret_env = |name: &str| EnvVar {
            name: name.to_owned(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: self.object_name(),
                    key: "password".to_owned(),
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        };
        let (image, env, args, data_dir, ready): (&str, Vec<EnvVar>, Vec<String>, &str, Vec<String>) =
            match self.spec.target_type {
                TargetType::Redis => (
                    REDIS_IMAGE,
                    vec![secret_env("REDIS_PASSWORD")],
                    vec![
                        "sh".into(),
                        "-c".into(),
                        "exec redis-server --requirepass \"$REDIS_PASSWORD\" --appendonly yes --dir /data".into(),
                    ],
                    "/data",
                    vec!["sh".into(), "-c".into(), "redis-cli -a \"$REDIS_PASSWORD\" --no-auth-warning ping | grep -q PONG".into()],
                ),
                _ => (
                    POSTGRES_IMAGE,
                    vec![
                        secret_env("POSTGRES_PASSWORD"),
                        EnvVar {
                            name: "PGDATA".to_owned(),
                            value: Some("/var/lib/postgresql/data/pgdata".to_owned()),
                            ..EnvVar::default()
                        },
                    ],
                    Vec::new(),
                    "/var/lib/postgresql/data",
                    vec!["pg_isready".into(), "-U".into(), "postgres".into()],
                ),
            };
        let container = Container {
            name: "store".to_owned(),
            image: Some(image.to_owned()),
            command: (!args.is_empty()).then_some(args),
            env: Some(env),
            ports: Some(vec![ContainerPort {
                name: Some("store".to_owned()),
                container_port: self.port(),
                ..ContainerPort::default()
            }]),
            readiness_probe: Some(Probe {
                exec: Some(ExecAction {
                    command: Some(ready),
                }),
                period_seconds: Some(5),
                ..Probe::default()
            }),
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([
                    ("cpu".to_owned(), Quantity(cpu.to_owned())),
                    ("memory".to_owned(), Quantity(memory.to_owned())),
                ])),
                limits: Some(BTreeMap::from([(
                    "memory".to_owned(),
                    Quantity(memory.to_owned()),
                )])),
                ..ResourceRequirements::default()
            }),
            volume_mounts: Some(vec![VolumeMount {
                name: "data".to_owned(),
                mount_path: data_dir.to_owned(),
                ..VolumeMount::default()
            }]),
            ..Container::default()
        };
        let retention = match self.deletion {
            DeletionPolicy::Delete => "Delete",
            DeletionPolicy::Retain => "Retain",
        };
        StatefulSet {
            metadata: self.meta(),
            spec: StatefulSetSpec {
                replicas: Some(1),
                service_name: Some(self.object_name()),
                selector: LabelSelector {
                    match_labels: Some(self.selector()),
                    ..LabelSelector::default()
                },
                persistent_volume_claim_retention_policy: Some(
                    StatefulSetPersistentVolumeClaimRetentionPolicy {
                        when_deleted: Some(retention.to_owned()),
                        when_scaled: Some("Retain".to_owned()),
                    },
                ),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(self.labels()),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![container],
                        automount_service_account_token: Some(false),
                        ..PodSpec::default()
                    }),
                },
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some("data".to_owned()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(PersistentVolumeClaimSpec {
                        access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                        resources: Some(VolumeResourceRequirements {
                            requests: Some(BTreeMap::from([(
                                "storage".to_owned(),
                                Quantity(disk.to_owned()),
                            )])),
                            ..VolumeResourceRequirements::default()
                        }),
                        ..PersistentVolumeClaimSpec::default()
                    }),
                    ..PersistentVolumeClaim::default()
                }]),
                ..StatefulSetSpec::default()
            },
            ..StatefulSet::default()
        }
    }

    /// Creates or takes back the Secret (its password made once and kept), Service and
    /// StatefulSet; returns the admin password and whether the store is ready.
    pub async fn ensure(&self, client: &Client) -> Result<(String, bool), kube::Error> {
        let name = self.object_name();
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        let password = match secrets.get_opt(&name).await?.and_then(|s| password_of(&s)) {
            Some(password) => password,
            None => {
                let password = generate_password();
                let secret = Secret {
                    metadata: self.meta(),
                    data: Some(BTreeMap::from([(
                        "password".to_owned(),
                        ByteString(password.clone().into_bytes()),
                    )])),
                    type_: Some("Opaque".to_owned()),
                    ..Secret::default()
                };
                match secrets.create(&PostParams::default(), &secret).await {
                    Ok(_) => password,
                    // Another pass made it first: its password stands.
                    Err(kube::Error::Api(status)) if status.code == 409 => secrets
                        .get(&name)
                        .await
                        .ok()
                        .and_then(|s| password_of(&s))
                        .unwrap_or(password),
                    Err(e) => return Err(e),
                }
            }
        };
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let services: Api<Service> = Api::namespaced(client.clone(), &self.namespace);
        services
            .patch(&name, &params, &Patch::Apply(self.service()))
            .await?;
        let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &self.namespace);
        let set = sets
            .patch(&name, &params, &Patch::Apply(self.stateful_set()))
            .await?;
        let ready = set
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .is_some_and(|n| n >= 1);
        Ok((password, ready))
    }

    /// Deletes the StatefulSet, Service and Secret (the volume per `deletionPolicy`).
    pub async fn remove(&self, client: &Client) -> Result<(), kube::Error> {
        let name = self.object_name();
        let params = DeleteParams::background();
        let gone = |r: Result<(), kube::Error>| match r {
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            other => other,
        };
        let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &self.namespace);
        gone(sets.delete(&name, &params).await.map(|_| ()))?;
        let services: Api<Service> = Api::namespaced(client.clone(), &self.namespace);
        gone(services.delete(&name, &params).await.map(|_| ()))?;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        gone(secrets.delete(&name, &params).await.map(|_| ()))?;
        Ok(())
    }
}

fn password_of(secret: &Secret) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get("password")
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
        .filter(|p| !p.is_empty())
}

/// 32 random alphanumerics: safe in a URL's user info without escaping.
fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}
