//! The one place where errors become HTTP statuses and stable codes.
//!
//! Every 4xx/5xx body has the contract's shape
//! `{"error": {"code", "message", "field"?}}`. 500s say nothing to the client
//! beyond "internal error" and are logged in full.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::validation::ValidationError;
use crate::service::ServiceError;
use crate::store::StoreError;

/// The error object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code.
    pub code: String,
    /// For people.
    pub message: String,
    /// Dotted path of the offending field, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every invalid field, when a whole document was checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
}

/// One invalid field of a document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// Errors of the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the body is not valid JSON: {message}")]
    InvalidJson {
        message: String,
        field: Option<String>,
    },
    #[error("{0}")]
    InvalidField(ValidationError),
    #[error("the document has {} invalid field(s)", .0.len())]
    InvalidDocument(Vec<ValidationError>),
    #[error("the document is based on version {based_on}, but version {current} is in force: reload and apply again")]
    VersionConflict { based_on: u32, current: u32 },
    #[error("the content type must be application/json")]
    UnsupportedMediaType,
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("interaction {0} was already decided with a different body")]
    IdempotencyMismatch(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("credentials must be sent in the Authorization header, never in the query string")]
    CredentialsInQuery,
    #[error("the credentials do not allow this")]
    Forbidden,
    #[error(
        "too many failed admin authentications from this address: retry in {retry_after_secs} s"
    )]
    TooManyAuthFailures { retry_after_secs: u64 },
    #[error("{0}")]
    FeedbackConflict(String),
    #[error("the model cannot be activated: {0}")]
    ModelRefused(String),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("overloaded: this replica is {behind_ms} ms behind; retry in a second")]
    Overloaded { behind_ms: u128 },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Status, stable code and the field to blame: exhaustive on purpose, so
    /// a new variant cannot ship without a status.
    fn parts(&self) -> (StatusCode, &'static str, Option<&str>) {
        match self {
            ApiError::InvalidJson { field, .. } => {
                (StatusCode::BAD_REQUEST, "invalid_json", field.as_deref())
            }
            ApiError::InvalidField(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                (!e.field.is_empty()).then_some(e.field.as_str()),
            ),
            ApiError::InvalidDocument(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                errors.first().map(|e| e.field.as_str()),
            ),
            ApiError::VersionConflict { .. } => {
                (StatusCode::CONFLICT, "version_conflict", Some("version"))
            }
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                None,
            ),
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None)
            }
            ApiError::IdempotencyMismatch(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_mismatch",
                Some("interaction_id"),
            ),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
            ApiError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", None)
            }
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            ApiError::CredentialsInQuery => (StatusCode::BAD_REQUEST, "credentials_in_query", None),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden", None),
            ApiError::TooManyAuthFailures { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_auth_failures",
                None,
            ),
            ApiError::FeedbackConflict(_) => (StatusCode::CONFLICT, "feedback_conflict", None),
            ApiError::ModelRefused(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "model_refused",
                Some("version"),
            ),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", None),
            ApiError::Overloaded { .. } => (StatusCode::SERVICE_UNAVAILABLE, "overloaded", None),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (_, code, field) = self.parts();
        let message = match self {
            // Internals stay in the logs.
            ApiError::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        let details = match self {
            ApiError::InvalidDocument(errors) => errors
                .iter()
                .map(|e| FieldError {
                    field: e.field.clone(),
                    message: e.message.clone(),
                })
                .collect(),
            _ => Vec::new(),
        };
        ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message,
                field: field.map(str::to_string),
                details,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut resp = HttpResponse::build(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.insert_header(("Retry-After", "1"));
        }
        if let ApiError::TooManyAuthFailures { retry_after_secs } = self {
            resp.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        resp.json(self.body())
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::InvalidField(e)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::IdempotencyMismatch(id) => ApiError::IdempotencyMismatch(id),
            ServiceError::InvalidPolicy(errors) => ApiError::InvalidDocument(errors),
            ServiceError::InvalidInteraction(e) => ApiError::InvalidField(e),
            ServiceError::VersionConflict { based_on, current } => {
                ApiError::VersionConflict { based_on, current }
            }
            ServiceError::UnknownAttribute(a) => ApiError::InvalidField(ValidationError::new(
                "attribute",
                format!("{a:?} is not an audited attribute (fairness.group_attributes)"),
            )),
            ServiceError::Store(StoreError::Unavailable(m)) => ApiError::Unavailable(m),
            ServiceError::Store(StoreError::Corrupt(m)) => ApiError::Internal(m),
        }
    }
}
