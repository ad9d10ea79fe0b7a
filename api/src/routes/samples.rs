//! `GET /api/v1/datasets/{name}/samples`: the latest records of a dataset's topic, newest
//! first, with the fields its schema marks `x-pii` masked for callers who may not see them.
//!
//! Who sees personal data in clear: admins, and callers of the dataset's owning team
//! (`metadata.owner`), who publish the data in the first place. Everyone else — other
//! teams, platform approvers, auditors — sees [`MASK`] in place of every `x-pii` value (and
//! of the record key when the dataset's key field is `x-pii`), as plan previews do.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_pipeline::preview::MASK;
use sluice_pipeline::sample::{self, Depth, LatestRecord, SampleError};
use sluice_schemas::DatasetSpec;
use sluice_schemas::validate::Problem;
use sluice_store::ObjectKey;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role};
use crate::caller::Caller;
use crate::config::ENV_KAFKA_BOOTSTRAP;
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDetails};
use crate::extract::Params;
use crate::state::AppState;

/// How many records a sample has unless `limit` says otherwise.
pub const DEFAULT_SAMPLES: usize = 10;
/// The most records one sample may ask for.
pub const MAX_SAMPLES: usize = 100;
/// How long reading a sample may take in all (metadata, offsets and records).
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_samples))
}

/// The query of a sample.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SampleParams {
    /// How many records, 1–100 (default 10).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// The latest records of a dataset.
#[derive(Debug, Serialize, ToSchema)]
pub struct Samples {
    /// The dataset.
    pub dataset: String,
    /// Its Kafka topic.
    pub topic: String,
    /// The records, newest first across partitions.
    pub records: Vec<SampleRecord>,
    /// The fields whose values were replaced by the mask (`•••`) in at least one record,
    /// sorted, as dotted paths (`address.street`, array items as `items[].email`; `""`: a value
    /// that is not a JSON object, masked whole). Empty for callers who see personal data.
    pub masked: Vec<String>,
}

/// One record of a sample.
#[derive(Debug, Serialize, ToSchema)]
pub struct SampleRecord {
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its Kafka timestamp (RFC 3339), if it has one.
    pub timestamp: Option<String>,
    /// Its key as text (invalid UTF-8 replaced), if it has one.
    pub key: Option<String>,
    /// Its value: the JSON it holds, else its text; `null` for a tombstone.
    pub value: Value,
}

/// The latest records of the dataset's topic (at most `limit`, newest first across
/// partitions), read without a consumer group commit. Fields the schema marks `x-pii` are
/// masked unless the caller is an admin or of the dataset's owning team.
#[utoipa::path(get, path = "/api/v1/datasets/{name}/samples", tag = "datasets",
    params(("name" = String, Path, description = "Catalog name"), SampleParams),
    responses((status = 200, body = Samples),
        (status = 404, body = ProblemDetails, description = "No such dataset, or its topic does not exist"),
        (status = 422, body = ProblemDetails, description = "`limit` is not from 1 to 100"),
        (status = 503, body = ProblemDetails, description = "Kafka is not configured or does not answer")))]
async fn get_samples(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Params(params): Params<SampleParams>,
    caller: Caller,
) -> ApiResult<Json<Samples>> {
    let limit = limit_of(params.limit.as_deref())?;
    let object = state
        .store
        .get(&ObjectKey::dataset(&name))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("dataset {name}")))?;
    let owner = object
        .metadata
        .get("owner")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let spec: DatasetSpec = serde_json::from_value(object.spec)
        .map_err(|e| ApiError::internal("stored dataset does not decode", &e))?;
    let Some(kafka) = &state.kafka else {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            format!("samples are read from Kafka, but {ENV_KAFKA_BOOTSTRAP} is not set"),
        ));
    };
    let bootstrap = kafka.bootstrap().to_owned();
    let topic = spec.topic.clone();
    let read = tokio::task::spawn_blocking(move || {
        sample::latest_records(
            &bootstrap,
            &topic,
            Depth::PerPartition(limit),
            SAMPLE_TIMEOUT,
        )
    })
    .await
    .map_err(|e| ApiError::internal("the sample reader stopped", &e))?;
    let records = match read {
        Ok(records) => sample::newest_first(records, limit),
        Err(SampleError::NoTopic { topic }) => {
            return Err(ApiError::not_found(format!(
                "topic `{topic}` of dataset {name}"
            )));
        }
        Err(e) => return Err(ApiError::new(ErrorCode::Unavailable, e.describe())),
    };
    let clear = sees_personal_data(&caller.principal, owner.as_deref());
    let key_is_pii = !clear
        && spec
            .key
            .as_deref()
            .is_some_and(|key| field_is_pii(&spec.schema, key));
    let mut masked = Vec::new();
    let records = records
        .into_iter()
        .map(|record| {
            let mut out = present(record);
            if !clear {
                sample::mask_pii(&spec.schema, &mut out.value, &mut masked);
                if key_is_pii && out.key.is_some() {
                    out.key = Some(MASK.to_owned());
                }
            }
            out
        })
        .collect();
    masked.sort();
    Ok(Json(Samples {
        dataset: name,
        topic: spec.topic,
        records,
        masked,
    }))
}

/// `limit`: 1–100, default 10; anything else is a 422 naming it.
fn limit_of(text: Option<&str>) -> ApiResult<usize> {
    let Some(text) = text else {
        return Ok(DEFAULT_SAMPLES);
    };
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_SAMPLES).contains(n))
        .ok_or_else(|| {
            ApiError::invalid(
                ErrorCode::ValidationFailed,
                format!("invalid query parameter `limit`: expected 1 to {MAX_SAMPLES}"),
                vec![Problem::new(
                    "/limit",
                    format!("must be a whole number from 1 to {MAX_SAMPLES}, not `{text}`"),
                )],
            )
        })
}

/// Whether the field at dotted `path` (the dataset's key field) is, or is inside or holds,
/// something marked `x-pii`.
fn field_is_pii(schema: &Value, path: &str) -> bool {
    let mut current = schema;
    for segment in path.split('.') {
        if current.get("x-pii").and_then(Value::as_bool) == Some(true) {
            return true;
        }
        match current.get("properties").and_then(|p| p.get(segment)) {
            Some(next) => current = next,
            None => return false,
        }
    }
    sample::has_pii(current)
}

/// Admins and the dataset's owning team see personal data in clear.
fn sees_personal_data(principal: &Principal, owner: Option<&str>) -> bool {
    principal.role == Role::Admin || owner.is_some_and(|owner| owner == principal.team)
}

fn present(record: LatestRecord) -> SampleRecord {
    let value = match record.payload {
        None => Value::Null,
        Some(bytes) => serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
    };
    SampleRecord {
        partition: record.partition,
        offset: record.offset,
        timestamp: record
            .timestamp_ms
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        key: record
            .key
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Via;

    fn principal(role: Role, team: &str) -> Principal {
        Principal {
            name: "t".into(),
            team: team.into(),
            role,
            via: Via::Token,
        }
    }

    #[test]
    fn limit_defaults_to_ten_and_refuses_what_is_out_of_range() {
        assert_eq!(limit_of(None).unwrap(), 10);
        assert_eq!(limit_of(Some("1")).unwrap(), 1);
        assert_eq!(limit_of(Some("100")).unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", ""] {
            let error = limit_of(Some(bad)).unwrap_err();
            assert_eq!(error.code(), ErrorCode::ValidationFailed);
            assert_eq!(error.details().errors[0].pointer, "#/limit", "{bad}");
        }
    }

    #[test]
    fn a_key_field_is_pii_when_it_or_an_ancestor_is_marked() {
        let schema = serde_json::json!({"properties": {
            "id": {"type": "string"},
            "email": {"type": "string", "x-pii": true},
            "person": {"x-pii": true, "properties": {"id": {"type": "string"}}}}});
        assert!(!field_is_pii(&schema, "id"));
        assert!(field_is_pii(&schema, "email"));
        assert!(field_is_pii(&schema, "person.id"));
        assert!(!field_is_pii(&schema, "missing"));
    }

    #[test]
    fn only_admins_and_the_owning_team_see_personal_data() {
        assert!(sees_personal_data(
            &principal(Role::Admin, "platform"),
            Some("team-shop")
        ));
        assert!(sees_personal_data(
            &principal(Role::Viewer, "team-shop"),
            Some("team-shop")
        ));
        assert!(!sees_personal_data(
            &principal(Role::Owner, "team-x"),
            Some("team-shop")
        ));
        assert!(!sees_personal_data(
            &principal(Role::Approver, "platform"),
            Some("team-shop")
        ));
        assert!(!sees_personal_data(
            &principal(Role::Auditor, "team-x"),
            None
        ));
    }
}
