//! Request extractors whose rejections are problem+json errors like every other error.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::header::{CONTENT_TYPE, IF_MATCH};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sluice_schemas::validate::{MAX_DOCUMENT_BYTES, parse_documents};

use crate::error::{ApiError, ErrorCode};

/// One YAML or JSON document from the request body (`application/json`,
/// `application/yaml`, or no content type).
#[derive(Debug)]
pub struct DocumentBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for DocumentBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(content_type) = req.headers().get(CONTENT_TYPE) {
            let media = content_type
                .to_str()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            let accepted = matches!(
                media.as_str(),
                "application/json"
                    | "application/yaml"
                    | "application/x-yaml"
                    | "text/yaml"
                    | "text/x-yaml"
                    | "text/plain"
            ) || media.ends_with("+json")
                || media.ends_with("+yaml");
            if !accepted {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    format!("body of type `{media}`; send application/json or application/yaml"),
                ));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(_) if is_length_limit(&e) => too_large(),
            other => ApiError::new(
                ErrorCode::BadRequest,
                format!("cannot read the body: {other}"),
            ),
        })?;
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(too_large());
        }
        let mut documents = parse_documents(&bytes).map_err(|p| {
            ApiError::invalid(
                ErrorCode::ValidationFailed,
                "the body does not parse",
                vec![p],
            )
        })?;
        match documents.len() {
            1 => Ok(DocumentBody(documents.remove(0))),
            0 => Err(ApiError::new(
                ErrorCode::BadRequest,
                "the body holds no document",
            )),
            n => Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("the body holds {n} documents; send one per request"),
            )),
        }
    }
}

fn is_length_limit(e: &BytesRejection) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if s.to_string().contains("length limit") {
            return true;
        }
        source = s.source();
    }
    false
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the body is larger than {MAX_DOCUMENT_BYTES} bytes"),
    )
}

/// Query parameters, with problem+json on a bad one.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Params(v))
            .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.body_text()))
    }
}

/// The `If-Match` precondition: the resourceVersion the client last saw.
#[derive(Debug, Default)]
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = value.to_str().unwrap_or_default().trim();
        let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
        parse_resource_version(text)
            .map(|rv| IfMatch(Some(rv)))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    "If-Match must be the ETag (resourceVersion) of the resource",
                )
            })
    }
}

/// Parses a resourceVersion a client sent back.
pub fn parse_resource_version(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().filter(|v| *v > 0)
}
