//! RFC 9457 problem details: the one shape every failure takes on the wire. Domain errors map
//! to a status here and nowhere else.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bazaar_shared::ports::StoreError;
use bazaar_shared::{Error, FieldError};
use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";

#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip)]
    retry_after: Option<u64>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        slug: &str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind: format!("urn:bazaar:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "Malformed request",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after;
        let mut response = (status, Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A handler's error: a domain error, or a problem the edge itself found.
#[derive(Debug)]
pub struct ApiError(pub Problem);

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self(problem)
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        Self(problem_of(error))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

fn problem_of(error: Error) -> Problem {
    match error {
        Error::Validation(errors) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
            "Validation failed",
            "one or more fields are invalid",
        )
        .with_errors(errors),
        Error::BadRequest(detail) => Problem::malformed(detail),
        Error::Unauthenticated(detail) => Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Authentication required",
            detail,
        ),
        Error::Forbidden(detail) => {
            Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
        }
        Error::NotFound(what) => Problem::not_found(format!("{what} not found")),
        Error::Conflict { message, fields } => {
            Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", message).with_errors(fields)
        }
        Error::PreconditionFailed(detail) => Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            "Precondition failed",
            detail,
        ),
        Error::PreconditionRequired(detail) => Problem::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition-required",
            "Precondition required",
            detail,
        ),
        Error::Throttled { retry_after_secs } => Problem {
            retry_after: Some(retry_after_secs),
            ..Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                "Too many requests",
                format!("too many attempts; try again in {retry_after_secs} seconds"),
            )
        },
        Error::Store(StoreError::Unavailable(message)) => unavailable(&message),
        Error::Queue(error) => unavailable(&error.to_string()),
        Error::Unavailable(message) => unavailable(&message),
        Error::Blob(error) => unavailable(&error.to_string()),
        Error::Limit { message, fields } => {
            Problem::new(StatusCode::CONFLICT, "limit", "Limit reached", message)
                .with_errors(fields)
        }
        Error::Busy { retry_after_secs } => Problem {
            retry_after: Some(retry_after_secs),
            ..Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "Server busy",
                format!("the server is busy; try again in {retry_after_secs} seconds"),
            )
        },
        other => {
            tracing::error!(error = %other, "request failed");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "the request failed; it has been logged",
            )
        }
    }
}

fn unavailable(message: &str) -> Problem {
    tracing::error!(%message, "a backing service failed");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Service unavailable",
        "a backing service is unavailable; try again",
    )
}

pub type ApiResult<T> = Result<T, ApiError>;
