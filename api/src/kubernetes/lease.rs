//! Leader election with a `coordination.k8s.io/v1` Lease: of several `serve --kubernetes`
//! replicas, only the holder of the Lease acts on custom resources.
//!
//! The holder renews the Lease every [`RENEW_EVERY`]; another replica takes it once it has
//! not been renewed for [`LEASE_SECONDS`]. Every write carries the `resourceVersion` it was
//! read at, so two replicas can never both believe they took it. A replica that stops
//! cleanly gives the Lease up, and the next takes over at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

/// How long a Lease lasts without renewal.
pub const LEASE_SECONDS: i32 = 15;
/// How often the holder renews it (and a candidate tries to take it).
pub const RENEW_EVERY: Duration = Duration::from_secs(3);

/// One replica's claim on the Lease.
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
}

impl LeaseLock {
    /// A claim on Lease `name` in `namespace` by `identity` (the pod name).
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str) -> Self {
        LeaseLock {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
        }
    }

    /// Who this replica is.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Takes the Lease if it is free, expired or already ours, and renews it; `Ok(true)`
    /// when this replica holds it afterwards. A conflict (another replica wrote first) is
    /// `Ok(false)`.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Utc::now();
        let Some(current) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(e) if is_conflict(&e) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().unwrap_or("");
        let ours = holder == self.identity;
        if !ours && !holder.is_empty() && !expired(&spec, now) {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        let (acquired, transitions) = if ours {
            let acquired = spec.acquire_time.as_ref().map_or(now, micro_to_chrono);
            (acquired, transitions)
        } else {
            (now, transitions + 1)
        };
        let mut lease = current;
        lease.spec = Some(self.spec(acquired, now, transitions));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if this replica holds it, so the next one need not wait for it to
    /// expire.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        spec.acquire_time = None;
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn spec(&self, acquired: DateTime<Utc>, renewed: DateTime<Utc>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            acquire_time: Some(chrono_to_micro(acquired)),
            renew_time: Some(chrono_to_micro(renewed)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }
}

/// Whether the holder has let the Lease lapse.
fn expired(spec: &LeaseSpec, now: DateTime<Utc>) -> bool {
    let Some(renewed) = spec.renew_time.as_ref().map(micro_to_chrono) else {
        return true;
    };
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS));
    renewed + chrono::Duration::seconds(seconds) < now
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

fn chrono_to_micro(time: DateTime<Utc>) -> MicroTime {
    let micros = time.timestamp_micros();
    MicroTime(
        k8s_openapi::jiff::Timestamp::from_microsecond(micros)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

fn micro_to_chrono(time: &MicroTime) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(time.0.as_microsecond()).unwrap_or_default()
}
