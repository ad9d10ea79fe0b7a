//! Applying a document: structure, catalog-aware semantics, compatibility, then the store.

use axum::Json;
use axum::http::header::{ETAG, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::Value;
use sluice_schemas::output::OutputSchema;
use sluice_schemas::validate::{self, Context, Problem};
use sluice_schemas::{DataProduct, DataProductStatus, Document, Kind, Phase, compat};
use sluice_store::{ObjectInput, ObjectKey, Outcome, Store, StoreError, StoredObject};

use sluice_controller::catalog::CatalogError;

use crate::approvals;
use crate::auth::Role;
use crate::caller::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::parse_resource_version;
use crate::secrets;
use crate::state::AppState;

/// A document as the API returns it: the stored document with secrets redacted (a target
/// cluster's URL shows `redacted` in place of its sealed password).
pub(crate) fn present(object: &StoredObject) -> Value {
    let mut document = object.document();
    if object.key.kind() == Kind::TargetCluster {
        secrets::redact_target_cluster(&mut document);
    }
    document
}

/// The document with its ETag header.
pub(crate) fn respond(status: StatusCode, object: &StoredObject) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", object.resource_version)) {
        headers.insert(ETAG, etag);
    }
    (status, headers, Json(present(object))).into_response()
}

/// Parses and validates `body` as a document of `key`'s kind and name, both layers, against
/// the catalog in `store`.
pub(crate) async fn validate_for(
    store: &Store,
    key: &ObjectKey,
    body: &Value,
) -> ApiResult<(Document, Option<OutputSchema>, Context)> {
    let document = validate::structure(body).map_err(|problems| {
        ApiError::invalid(
            ErrorCode::ValidationFailed,
            "the document is invalid",
            problems,
        )
    })?;
    let mut problems = Vec::new();
    if document.kind() != key.kind() {
        problems.push(Problem::new(
            "/kind",
            format!("is {} but this URL takes a {}", document.kind(), key.kind()),
        ));
    }
    let meta = document.metadata();
    if meta.name != key.name() {
        problems.push(Problem::new(
            "/metadata/name",
            format!("is `{}` but the URL names `{}`", meta.name, key.name()),
        ));
    }
    if key.kind() == Kind::DataProduct && meta.team.as_deref() != Some(key.team()) {
        problems.push(Problem::new(
            "/metadata/team",
            format!("must be `{}`, the team in the URL", key.team()),
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(
            ErrorCode::ValidationFailed,
            "the document does not match the URL",
            problems,
        ));
    }
    let ctx = context_for(store, &document).await?;
    let output = validate::semantics(&document, &ctx).map_err(|problems| {
        ApiError::invalid(
            ErrorCode::ValidationFailed,
            "the document is invalid",
            problems,
        )
    })?;
    Ok((document, output, ctx))
}

/// The catalog entries a document refers to, loaded from the store.
pub(crate) async fn context_for(store: &Store, document: &Document) -> ApiResult<Context> {
    sluice_controller::catalog::context_for(store, document)
        .await
        .map_err(|e| match e {
            CatalogError::Store(e) => ApiError::from(e),
            other => ApiError::internal("a stored catalog entry does not decode", &other),
        })
}

/// `PUT` of a document at `key`: validate, then create or update. Idempotent.
///
/// Without a precondition (`If-Match` or `metadata.resourceVersion`), a write the
/// controller or a job made since the read (a running job reports its progress every
/// second) is no reason to refuse: the document is validated and applied again on the object
/// as it is then, up to [`UNGUARDED_ATTEMPTS`] times. A failed attempt writes nothing, its audit
/// entry included.
pub(crate) async fn apply(
    state: &AppState,
    key: ObjectKey,
    body: Value,
    if_match: Option<i64>,
    caller: &Caller,
) -> ApiResult<Response> {
    let mut attempt = 1;
    loop {
        match apply_once(state, key.clone(), body.clone(), if_match, caller).await? {
            Some(response) => return Ok(response),
            None if attempt < UNGUARDED_ATTEMPTS => attempt += 1,
            None => {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!("{key} was changed concurrently; apply again"),
                ));
            }
        }
    }
}

/// How many times a write without a precondition (a `PUT`, a product's `DELETE`) is made
/// when the object's status keeps changing under it, before the caller gets the conflict.
const UNGUARDED_ATTEMPTS: u32 = 10;

/// One attempt of [`apply`]: `None` when, without a precondition, the object changed
/// between the read and the write.
async fn apply_once(
    state: &AppState,
    key: ObjectKey,
    body: Value,
    if_match: Option<i64>,
    caller: &Caller,
) -> ApiResult<Option<Response>> {
    let store = &state.store;
    // The catalog entries read for validation also serve claims and approvals below.
    let (mut document, output, ctx) = validate_for(store, &key, &body).await?;
    let precondition = match (&document.metadata().resource_version, if_match) {
        (_, Some(rv)) => Some(rv),
        (Some(text), None) => Some(parse_resource_version(text).ok_or_else(|| {
            ApiError::invalid(
                ErrorCode::BadRequest,
                "metadata.resourceVersion is not one this server handed out",
                vec![Problem::new(
                    "/metadata/resourceVersion",
                    "not a resourceVersion",
                )],
            )
        })?),
        (None, None) => None,
    };
    let current = store.get(&key).await?;
    ensure_front_door(caller, &key, current.as_ref(), &document.metadata().labels)?;
    ensure_dataset_owner(
        caller,
        key.kind(),
        current.as_ref(),
        document.metadata().owner.as_deref(),
    )?;

    let mut schema_version = None;
    let mut claims = Vec::new();
    match &mut document {
        Document::Dataset(d) => {
            let versions = store.schema_versions(key.name()).await?;
            let previous: Vec<Value> = versions.into_iter().map(|v| v.schema).collect();
            if previous.last() != Some(&d.spec.schema) {
                let broken = compat::check(d.spec.compatibility, &d.spec.schema, &previous);
                if !broken.is_empty() {
                    let problems = broken
                        .into_iter()
                        .map(|i| {
                            // A removed field has no place in the new schema: point at the schema.
                            let pointer = match i.path_in {
                                compat::Side::New => format!("/spec/schema{}", i.path),
                                compat::Side::Old => "/spec/schema".to_owned(),
                            };
                            Problem::new(pointer, i.message)
                        })
                        .collect();
                    return Err(ApiError::invalid(
                        ErrorCode::IncompatibleSchema,
                        format!(
                            "the new schema breaks the dataset's {:?} compatibility rule",
                            d.spec.compatibility
                        ),
                        problems,
                    ));
                }
            }
            schema_version = Some(d.spec.schema.clone());
        }
        Document::TargetCluster(t) => {
            let stored_url = current
                .as_ref()
                .and_then(|o| o.spec.get("url"))
                .and_then(Value::as_str);
            // The password is stored sealed, never in clear; `redacted` keeps the stored one.
            t.spec.url = secrets::url_to_store(&state.secrets, &t.spec.url, stored_url)?;
        }
        Document::DataProduct(p) => {
            let deleting = current
                .as_ref()
                .and_then(|o| o.status.clone())
                .and_then(|s| serde_json::from_value::<DataProductStatus>(s).ok())
                .is_some_and(|s| s.deletion_requested.is_some());
            if deleting {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!(
                        "{} is being deleted; apply it again once it is gone",
                        describe(&key)
                    ),
                ));
            }
            if state.policy.refuse_retention_gaps {
                refuse_retention_gaps(state, p, &ctx).await?;
            }
            claims = target_claims(&ctx, &key, p);
        }
    }

    let metadata = serde_json::to_value(document.metadata().user_part())
        .map_err(|e| ApiError::internal("cannot encode metadata", &e))?;
    let mut input = ObjectInput::new(metadata, document.spec_json()).with_claims(claims);
    if let Some(schema) = schema_version {
        input = input.with_schema_version(schema);
    }
    // Without an explicit precondition the write still must not race the read above.
    let guard = precondition.or(current.as_ref().map(|o| o.resource_version));
    let audit = caller.audit();
    let applied = match store.apply(&key, input, guard, &audit).await {
        Ok(applied) => applied,
        Err(StoreError::ClaimTaken { owner, .. }) => {
            return Err(ApiError::invalid(
                ErrorCode::Conflict,
                "the target is taken",
                vec![Problem::new(
                    "/spec/target/name",
                    format!("this target already belongs to {}", describe(&owner)),
                )],
            ));
        }
        Err(e) if precondition.is_none() && e.is_conflict() => return Ok(None),
        Err(e) => return Err(ApiError::from(e)),
    };
    let mut object = applied.object;
    let spec_changed = current
        .as_ref()
        .is_none_or(|c| c.generation != object.generation);
    if let (Document::DataProduct(product), Some(output)) = (&document, &output)
        && spec_changed
    {
        object = request_approval(state, &ctx, &key, product, output, object, caller).await?;
    }
    if applied.outcome != Outcome::Unchanged {
        state.wake_controller();
    }
    let status = match applied.outcome {
        Outcome::Created => StatusCode::CREATED,
        Outcome::Updated | Outcome::Unchanged => StatusCode::OK,
    };
    let mut response = respond(status, &object);
    let outcome = match applied.outcome {
        Outcome::Created => "created",
        Outcome::Updated => "updated",
        Outcome::Unchanged => "unchanged",
    };
    response
        .headers_mut()
        .insert("x-sluice-outcome", HeaderValue::from_static(outcome));
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&location_of(&key))
    {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(Some(response))
}

/// The claim a product holds on its target objects: the same index or key prefix on a
/// cluster, or the same table of the same team on PostgreSQL (one schema per team), can
/// belong to one product only. The store enforces it in the write's transaction.
fn target_claims(ctx: &Context, key: &ObjectKey, product: &DataProduct) -> Vec<String> {
    let Some(cluster) = product.spec.target.cluster.as_deref() else {
        return Vec::new();
    };
    let per_team = ctx
        .cluster(cluster)
        .is_some_and(|c| c.target_type == sluice_schemas::TargetType::Postgres);
    let scope = if per_team { key.team() } else { "" };
    vec![format!(
        "target\u{1f}{cluster}\u{1f}{scope}\u{1f}{}",
        product.spec.target.name
    )]
}

/// A product that comes from a Kubernetes object is changed and deleted through that
/// object only, so the object and the store never disagree; and the labels that say so
/// (`sluice.dev/…`) are Sluice's to set.
fn ensure_front_door(
    caller: &Caller,
    key: &ObjectKey,
    current: Option<&StoredObject>,
    labels: &std::collections::BTreeMap<String, String>,
) -> ApiResult<()> {
    if caller.principal.via == crate::auth::Via::Kubernetes {
        return Ok(());
    }
    let labels_of = |c: &StoredObject| c.metadata.get("labels").cloned().unwrap_or(Value::Null);
    let origin = current.map(labels_of).filter(|l| {
        l.get(crate::kubernetes::MANAGED_LABEL)
            .and_then(Value::as_str)
            == Some("kubernetes")
    });
    if let Some(labels) = origin {
        let object = match (
            labels
                .get(crate::kubernetes::NAMESPACE_LABEL)
                .and_then(Value::as_str),
            labels
                .get(crate::kubernetes::OBJECT_LABEL)
                .and_then(Value::as_str),
        ) {
            (Some(namespace), _) => format!("{namespace}/{}", key.name()),
            (None, Some(object)) => object.to_owned(),
            (None, None) => key.name().to_owned(),
        };
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "{} comes from the Kubernetes object {} {object}; change or delete it there",
                describe(key),
                key.kind()
            ),
        ));
    }
    let reserved: Vec<Problem> = labels
        .keys()
        .filter(|k| k.starts_with("sluice.dev/"))
        .map(|k| {
            Problem::new(
                format!(
                    "/metadata/labels/{}",
                    k.replace('~', "~0").replace('/', "~1")
                ),
                "the sluice.dev/ prefix is reserved for Sluice",
            )
        })
        .collect();
    if reserved.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            ErrorCode::ValidationFailed,
            "the document is invalid",
            reserved,
        ))
    }
}

/// Datasets belong to their owning team: only its owners (or admins) may write or delete
/// them, and an owner cannot hand a dataset to another team or take one over.
fn ensure_dataset_owner(
    caller: &Caller,
    kind: Kind,
    current: Option<&StoredObject>,
    new_owner: Option<&str>,
) -> ApiResult<()> {
    if kind != Kind::Dataset || caller.principal.role == Role::Admin {
        return Ok(());
    }
    let team = caller.principal.team.as_str();
    let current_owner = current
        .and_then(|c| c.metadata.get("owner"))
        .and_then(Value::as_str);
    let owns = current_owner.is_none_or(|o| o == team) && new_owner.is_none_or(|o| o == team);
    if owns {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "only owners of team {} may change this dataset",
                current_owner.or(new_owner).unwrap_or("?")
            ),
        ))
    }
}

/// Records what a new generation of a product needs before it may run — or that it is
/// approved already (a narrowing change, or a policy rule and nothing else needed).
async fn request_approval(
    state: &AppState,
    ctx: &Context,
    key: &ObjectKey,
    product: &DataProduct,
    output: &OutputSchema,
    object: StoredObject,
    caller: &Caller,
) -> ApiResult<StoredObject> {
    let store = &state.store;
    let sources: Vec<approvals::SourceFacts> = product
        .spec
        .sources
        .iter()
        .filter_map(|source| {
            let dataset = ctx.dataset(&source.dataset)?;
            Some(approvals::SourceFacts {
                dataset: source.dataset.clone(),
                owner: dataset.owner.clone(),
                classification: dataset.spec.classification,
            })
        })
        .collect();
    let cluster = product
        .spec
        .target
        .cluster
        .as_deref()
        .and_then(|name| ctx.cluster(name));
    let team = key.team();
    let requirement = approvals::requirement(&state.policy, team, &sources, output, cluster);
    let current = object
        .status
        .clone()
        .and_then(|s| serde_json::from_value::<DataProductStatus>(s).ok());
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let status = approvals::on_apply(
        current,
        object.generation,
        &object.spec,
        &product.spec,
        requirement,
        &caller.principal.actor(),
        &now,
    );
    let outcome = if status.approved_generation == Some(object.generation) {
        "approved"
    } else {
        "pending"
    };
    let value = serde_json::to_value(&status)
        .map_err(|e| ApiError::internal("cannot encode status", &e))?;
    Ok(store
        .record_status(
            key,
            value,
            Some(object.resource_version),
            &caller.audit(),
            "approval.request",
            outcome,
        )
        .await?)
}

/// The canonical URL of an object.
pub(crate) fn location_of(key: &ObjectKey) -> String {
    match key.kind() {
        Kind::Dataset => format!("/api/v1/datasets/{}", key.name()),
        Kind::TargetCluster => format!("/api/v1/targetclusters/{}", key.name()),
        Kind::DataProduct => format!("/api/v1/products/{}/{}", key.team(), key.name()),
    }
}

/// `GET` of one object.
pub(crate) async fn get(store: &Store, key: ObjectKey) -> ApiResult<Response> {
    match store.get(&key).await? {
        Some(object) => Ok(respond(StatusCode::OK, &object)),
        None => Err(ApiError::not_found(describe(&key))),
    }
}

/// `DELETE` of one object; returns the deleted document.
pub(crate) async fn delete(
    store: &Store,
    key: ObjectKey,
    if_match: Option<i64>,
    caller: &Caller,
) -> ApiResult<Response> {
    let current = store.get(&key).await?;
    if let Some(current) = &current {
        ensure_front_door(caller, &key, Some(current), &Default::default())?;
        ensure_dataset_owner(caller, key.kind(), Some(current), None)?;
    }
    match store.delete(&key, if_match, &caller.audit()).await? {
        Some(object) => Ok(respond(StatusCode::OK, &object)),
        None => Err(ApiError::not_found(describe(&key))),
    }
}

/// `DELETE` of a product. A product the controller provisioned carries its teardown
/// finalizer: deletion is then only requested (phase `Deleting`, `202 Accepted`) and the
/// controller removes the record once the topics and target are torn down per
/// `deletionPolicy`. Without the finalizer nothing exists outside Sluice and the record goes
/// at once (`200`).
pub(crate) async fn delete_product(
    store: &Store,
    key: ObjectKey,
    if_match: Option<i64>,
    caller: &Caller,
) -> ApiResult<Response> {
    // Without `If-Match`, a status the controller or a job wrote since the read below (a
    // running job reports its progress every second) is no reason to refuse: the request
    // is made again on the product as it is then.
    let mut attempt = 1;
    loop {
        let Some(current) = store.get(&key).await? else {
            return Err(ApiError::not_found(describe(&key)));
        };
        ensure_front_door(caller, &key, Some(&current), &Default::default())?;
        let status = current
            .status
            .clone()
            .and_then(|s| serde_json::from_value::<DataProductStatus>(s).ok());
        let Some(mut status) = status.filter(|s| !s.finalizers.is_empty()) else {
            return delete(store, key, if_match, caller).await;
        };
        if status.deletion_requested.is_some() {
            return Ok(respond(StatusCode::ACCEPTED, &current));
        }
        let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        status.phase = Phase::Deleting;
        status.deletion_requested = Some(now);
        status.message = Some("deletion requested: tearing down per deletionPolicy".to_owned());
        let value = serde_json::to_value(&status)
            .map_err(|e| ApiError::internal("cannot encode status", &e))?;
        let precondition = Some(if_match.unwrap_or(current.resource_version));
        let recorded = store
            .record_status(
                &key,
                value,
                precondition,
                &caller.audit(),
                "delete",
                "requested",
            )
            .await;
        match recorded {
            Ok(object) => return Ok(respond(StatusCode::ACCEPTED, &object)),
            Err(e) if if_match.is_none() && e.is_conflict() && attempt < UNGUARDED_ATTEMPTS => {
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Refuses `product` when a source no longer holds the data its `from` asks for, as the
/// policy's `refuseRetentionGaps` wants: 422 at each such source's `from`. Checked when Kafka
/// answers; otherwise the plan says why no pre-flight ran.
async fn refuse_retention_gaps(
    state: &AppState,
    product: &DataProduct,
    ctx: &Context,
) -> ApiResult<()> {
    let mut warnings = Vec::new();
    let Some(backfill) =
        crate::routes::products::backfill_of(state, product, ctx, &mut warnings).await
    else {
        return Ok(());
    };
    let mut problems = Vec::new();
    for (i, source) in product.spec.sources.iter().enumerate() {
        let Some(dataset) = ctx.dataset(&source.dataset) else {
            continue;
        };
        let gap = backfill
            .sources
            .iter()
            .filter(|s| s.topic == dataset.spec.topic)
            .find_map(|s| s.retention_warning.clone());
        if let Some(gap) = gap {
            problems.push(Problem::new(format!("/spec/sources/{i}/from"), gap));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        ErrorCode::ValidationFailed,
        "the approval policy refuses products whose sources no longer hold the data `from` \
         asks for",
        problems,
    ))
}

/// How messages name an object: `dataset shop.orders`, `product team-a/orders`.
pub(crate) fn describe(key: &ObjectKey) -> String {
    match key.kind() {
        Kind::Dataset => format!("dataset {}", key.name()),
        Kind::TargetCluster => format!("target cluster {}", key.name()),
        Kind::DataProduct => format!("product {}/{}", key.team(), key.name()),
    }
}
