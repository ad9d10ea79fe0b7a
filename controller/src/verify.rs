//! `sluice verify`: compares the live version's target of a product with what its sources
//! say it must hold (`sluice_pipeline::verify`) and records the outcome on the product as
//! the condition `Verified` (DESIGN §2 "Verify").
//!
//! The outcome is exact for a quiescent source: the source's watermarks are read first and
//! the target after, so records arriving meanwhile (or not yet applied by the job) show as
//! differences on a live product. Verify again once the source is quiet, or read the
//! differences as the lag they are.

use sluice_pipeline::verify::{self, Verification, VerifyError};
use sluice_provisioners::kafka::KafkaProvisioner;
use sluice_schemas::{ConditionStatus, DataProductStatus};
use sluice_store::{Audit, ObjectKey, SecretBox, Store, StoreError};

use crate::catalog;
use crate::clusters::ClusterConnections;
use crate::conditions::{self, VERIFIED};
use crate::jobs::job_parts;
use crate::reconcile::{decode_status, now};

/// Why a product cannot be verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyProductError {
    /// There is no such product.
    #[error("{0} does not exist")]
    NotFound(ObjectKey),
    /// The product has no provisioned version to verify yet.
    #[error("{0}")]
    NotProvisioned(String),
    /// The product's job cannot be built (catalog, cluster, plan or spec).
    #[error("{0}")]
    Invalid(String),
    /// This process has no Kafka client (no bootstrap servers configured).
    #[error("verify reads the sources, but no Kafka bootstrap servers are configured")]
    NoKafka,
    /// The source or the target could not be read.
    #[error(transparent)]
    Unavailable(#[from] VerifyError),
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Verifies the version readers use of the product `key` and records `Verified` on its
/// status (audited as `verify`, by `audit`'s actor), leaving the rest of the status as it is.
pub async fn verify_product(
    store: &Store,
    secrets: &SecretBox,
    kafka: Option<&KafkaProvisioner>,
    key: &ObjectKey,
    audit: &Audit,
) -> Result<Verification, VerifyProductError> {
    let object = store
        .get(key)
        .await?
        .ok_or_else(|| VerifyProductError::NotFound(key.clone()))?;
    let version = decode_status(&object)
        .and_then(|s| s.target)
        .filter(|v| v.topic.is_some())
        .ok_or_else(|| {
            VerifyProductError::NotProvisioned(format!(
                "{key} has no provisioned version to verify yet"
            ))
        })?;
    let kafka = kafka.ok_or(VerifyProductError::NoKafka)?;
    let invalid = |e: &dyn std::fmt::Display| VerifyProductError::Invalid(e.to_string());
    let resolved = catalog::resolve(store, &object.document(), &version.spec)
        .await
        .map_err(|e| invalid(&e))?;
    let cluster = resolved
        .product
        .spec
        .target
        .cluster
        .as_deref()
        .ok_or_else(|| {
            VerifyProductError::Invalid("dedicated targets are not verified yet".to_owned())
        })?;
    let (cluster_spec, conn) = ClusterConnections::default()
        .get(store, secrets, cluster)
        .await
        .map_err(|e| invalid(&e))?;
    let mut partitions = Vec::new();
    for source in &resolved.product.spec.sources {
        if let Some(dataset) = resolved.context.dataset(&source.dataset) {
            let count = kafka
                .partition_count(&dataset.spec.topic)
                .await
                .ok()
                .flatten()
                .unwrap_or(0);
            partitions.push(count);
        }
    }
    let parts = job_parts(
        key,
        &resolved,
        &cluster_spec,
        &partitions,
        version.version,
        kafka.bootstrap(),
        sluice_pipeline::job::JobSlice::WHOLE,
    )
    .map_err(VerifyProductError::Invalid)?;
    if let Some(window) = &parts.config.window {
        return Err(VerifyProductError::Invalid(format!(
            "{key} joins `{}` in an event-time window; verify does not recompute window joins yet",
            window.alias
        )));
    }
    // The sources first (their watermarks bound what is expected), then the target.
    let expected = verify::expected_rows(parts.config, parts.transform).await?;
    let actual = verify::target_rows(&conn, &parts.target).await?;
    let verification = verify::compare(&expected, &actual, &parts.target);
    record(store, key, version.version, &verification, audit).await?;
    Ok(verification)
}

/// Sets `Verified` on the product's latest status, retrying when another writer got there
/// first.
async fn record(
    store: &Store,
    key: &ObjectKey,
    version: u32,
    verification: &Verification,
    audit: &Audit,
) -> Result<(), VerifyProductError> {
    let (truth, reason, outcome) = if verification.matches {
        (ConditionStatus::True, "Matches", "matches")
    } else {
        (ConditionStatus::False, "Differs", "differs")
    };
    let message = format!("version {version} {}", verification.summary());
    let mut conflict = None;
    for _ in 0..5 {
        let object = store
            .get(key)
            .await?
            .ok_or_else(|| VerifyProductError::NotFound(key.clone()))?;
        let mut status =
            decode_status(&object).unwrap_or_else(|| DataProductStatus::pending(object.generation));
        conditions::set(
            &mut status,
            VERIFIED,
            truth,
            reason,
            message.clone(),
            &now(),
        );
        let value = serde_json::to_value(&status)
            .map_err(|e| VerifyProductError::Invalid(format!("cannot encode status: {e}")))?;
        match store
            .record_status(
                key,
                value,
                Some(object.resource_version),
                audit,
                "verify",
                outcome,
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.is_conflict() => conflict = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(conflict.map_or_else(
        || VerifyProductError::Invalid(format!("{key} kept changing")),
        VerifyProductError::Store,
    ))
}
