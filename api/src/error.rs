//! The one error type of the HTTP API, rendered as `application/problem+json` (RFC 9457).
//!
//! Every error has a stable code from [`ErrorCode`]; its `type` URI names the code and points
//! at `docs/errors.md`. Internal failures are logged with their cause and returned without it.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sluice_schemas::validate::Problem;
use sluice_store::StoreError;
use utoipa::ToSchema;

/// The catalog of error codes: each with its HTTP status and title. Stable: clients match on
/// `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed (bad header, bad query parameter, unreadable body).
    BadRequest,
    /// No valid credentials: the bearer token is missing, unknown, expired or revoked.
    Unauthenticated,
    /// The caller's role or team may not do this.
    Forbidden,
    /// The resource does not exist.
    NotFound,
    /// The method is not allowed on this path.
    MethodNotAllowed,
    /// A precondition failed: the resource changed since it was read (stale
    /// `resourceVersion`/`If-Match`), or it is in use.
    Conflict,
    /// The body is larger than the server accepts.
    PayloadTooLarge,
    /// The body's media type is not JSON or YAML.
    UnsupportedMediaType,
    /// The document is invalid; `errors` lists each problem with its JSON pointer.
    ValidationFailed,
    /// A dataset's new schema breaks its compatibility rule; `errors` says where.
    IncompatibleSchema,
    /// The server failed; the cause is in its logs under the request id.
    Internal,
    /// A dependency (the metadata store) is unavailable.
    Unavailable,
}

impl ErrorCode {
    /// The HTTP status of this code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::ValidationFailed | ErrorCode::IncompatibleSchema => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A short, fixed summary of the problem type.
    pub fn title(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "Bad request",
            ErrorCode::Unauthenticated => "Unauthenticated",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::NotFound => "Not found",
            ErrorCode::MethodNotAllowed => "Method not allowed",
            ErrorCode::Conflict => "Conflict",
            ErrorCode::PayloadTooLarge => "Payload too large",
            ErrorCode::UnsupportedMediaType => "Unsupported media type",
            ErrorCode::ValidationFailed => "Validation failed",
            ErrorCode::IncompatibleSchema => "Incompatible schema",
            ErrorCode::Internal => "Internal error",
            ErrorCode::Unavailable => "Service unavailable",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::IncompatibleSchema => "incompatible_schema",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
        }
    }
}

/// One invalid field of a request document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON pointer to the field, as a URI fragment (`#/spec/sources/0/dataset`).
    pub pointer: String,
    /// What is wrong with it.
    pub detail: String,
}

/// An `application/problem+json` body (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemDetails {
    /// A URI naming the problem type (its code), resolvable to documentation.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// The problem type's fixed title.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// The stable error code.
    pub code: ErrorCode,
    /// Each invalid field, for validation errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error of an API handler.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    detail: String,
    errors: Vec<FieldError>,
}

impl ApiError {
    /// An error with a code and an explanation for the client.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// A validation failure listing every problem.
    pub fn invalid(code: ErrorCode, detail: impl Into<String>, problems: Vec<Problem>) -> Self {
        ApiError {
            code,
            detail: detail.into(),
            errors: problems
                .into_iter()
                .map(|p| FieldError {
                    pointer: format!("#{}", p.pointer),
                    detail: p.message,
                })
                .collect(),
        }
    }

    /// A resource that does not exist.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// A failure inside the server: logged with its cause, returned without it.
    pub fn internal(context: &str, cause: &dyn std::error::Error) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "{context}");
        ApiError::new(
            ErrorCode::Internal,
            format!("{context}; see the server log"),
        )
    }

    /// The explanation and every field error on one line, for places without a problem
    /// body (the status of a Kubernetes object).
    pub fn summary(&self) -> String {
        let mut text = self.detail.clone();
        for error in &self.errors {
            text.push_str(&format!(
                "; {}: {}",
                error.pointer.trim_start_matches('#'),
                error.detail
            ));
        }
        text
    }

    /// The code of this error.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The body this error is rendered as.
    pub fn details(&self) -> ProblemDetails {
        ProblemDetails {
            problem_type: format!("https://sluice.dev/problems/{}", self.code.as_str()),
            title: self.code.title().to_owned(),
            status: self.code.status().as_u16(),
            detail: self.detail.clone(),
            code: self.code,
            errors: self.errors.clone(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::Conflict { .. } => ApiError::new(
                ErrorCode::Conflict,
                format!("{err}; read it again and retry with the current resourceVersion"),
            ),
            StoreError::NotFound { key } => ApiError::not_found(key),
            e if e.is_audit_failure() => {
                tracing::error!(error = %e, "audit log cannot be written; change refused");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the audit log cannot be written, so the change was refused; see the server log",
                )
            }
            StoreError::InvalidCursor => {
                ApiError::new(ErrorCode::BadRequest, "invalid `continue` token")
            }
            _ => ApiError::internal("metadata store failed", &err),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let details = self.details();
        let mut response = (self.code.status(), Json(details)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
