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
    request_problem(error)
        .or_else(state_problem)
        .unwrap_or_else(service_problem)
}

/// A request the client must change before sending it again (400, 401, 403, 404, 422); any
/// other error is handed back.
fn request_problem(error: Error) -> Result<Problem, Error> {
    Ok(match error {
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
        other => return Err(other),
    })
}

/// A request that clashes with what is stored now (409, 412, 428); any other error is
/// handed back.
fn state_problem(error: Error) -> Result<Problem, Error> {
    Ok(match error {
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
        Error::Limit { message, fields } => {
            Problem::new(StatusCode::CONFLICT, "limit", "Limit reached", message)
                .with_errors(fields)
        }
        other => return Err(other),
    })
}

/// A request that may pass later as it is (429, 503), or a failure of the shop itself (500,
/// logged; the client sees no detail).
fn service_problem(error: Error) -> Problem {
    match error {
        Error::Throttled { retry_after_secs } => Problem {
            retry_after: Some(retry_after_secs),
            ..Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                "Too many requests",
                format!("too many attempts; try again in {retry_after_secs} seconds"),
            )
        },
        Error::Busy { retry_after_secs } => Problem {
            retry_after: Some(retry_after_secs),
            ..Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "Server busy",
                format!("the server is busy; try again in {retry_after_secs} seconds"),
            )
        },
        Error::Store(StoreError::Unavailable(message)) => unavailable(&message),
        Error::Queue(error) => unavailable(&error.to_string()),
        Error::Unavailable(message) => unavailable(&message),
        Error::Blob(error) => unavailable(&error.to_string()),
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

#[cfg(test)]
mod tests {
    use bazaar_shared::ports::{BlobError, QueueError};

    use super::*;

    /// The status, problem type and detail an error is answered with.
    fn answer(error: Error) -> (u16, String, String) {
        let problem = problem_of(error);
        let slug = problem
            .kind
            .trim_start_matches("urn:bazaar:problem:")
            .to_owned();
        (problem.status, slug, problem.detail)
    }

    #[test]
    fn requests_to_change_are_4xx_with_the_domain_detail() {
        let cases = [
            (
                Error::BadRequest("not JSON".into()),
                400,
                "malformed-request",
                "not JSON",
            ),
            (
                Error::Unauthenticated("expired".into()),
                401,
                "unauthenticated",
                "expired",
            ),
            (
                Error::Forbidden("admins only".into()),
                403,
                "forbidden",
                "admins only",
            ),
            (
                Error::NotFound("order"),
                404,
                "not-found",
                "order not found",
            ),
        ];
        for (error, status, slug, detail) in cases {
            assert_eq!(answer(error), (status, slug.to_owned(), detail.to_owned()));
        }
        let field = FieldError::new("email", "is required");
        let problem = problem_of(Error::Validation(vec![field.clone()]));
        assert_eq!(
            (problem.status, problem.title, problem.detail.as_str()),
            (422, "Validation failed", "one or more fields are invalid")
        );
        assert_eq!(problem.errors, [field]);
    }

    #[test]
    fn clashes_with_stored_state_keep_their_message_and_fields() {
        let field = FieldError::new("items[0].quantity", "too many");
        let problem = problem_of(Error::Conflict {
            message: "stale".into(),
            fields: vec![field.clone()],
        });
        assert_eq!((problem.status, problem.detail.as_str()), (409, "stale"));
        assert_eq!(problem.errors, std::slice::from_ref(&field));
        let problem = problem_of(Error::Limit {
            message: "at most 5 unpaid orders".into(),
            fields: vec![field.clone()],
        });
        assert_eq!(
            (problem.status, problem.kind.as_str(), problem.title),
            (409, "urn:bazaar:problem:limit", "Limit reached")
        );
        assert_eq!(problem.errors, [field]);
        assert_eq!(
            answer(Error::PreconditionFailed("version 3 is stale".into())),
            (
                412,
                "precondition-failed".into(),
                "version 3 is stale".into()
            )
        );
        assert_eq!(
            answer(Error::PreconditionRequired("send If-Match".into())),
            (428, "precondition-required".into(), "send If-Match".into())
        );
    }

    #[test]
    fn retry_later_answers_say_when() {
        let throttled = problem_of(Error::Throttled {
            retry_after_secs: 30,
        });
        assert_eq!((throttled.status, throttled.retry_after), (429, Some(30)));
        assert_eq!(
            throttled.detail,
            "too many attempts; try again in 30 seconds"
        );
        let busy = problem_of(Error::Busy {
            retry_after_secs: 2,
        });
        assert_eq!((busy.status, busy.retry_after), (503, Some(2)));
        assert_eq!(busy.kind, "urn:bazaar:problem:busy");
        assert_eq!(problem_of(Error::NotFound("order")).retry_after, None);
    }

    #[test]
    fn backing_service_failures_are_503_without_their_detail() {
        let failures = [
            Error::Store(StoreError::Unavailable("dynamodb timed out".into())),
            Error::Unavailable("the provider is down".into()),
            Error::Queue(QueueError::Unavailable("sqs timed out".into())),
            Error::Blob(BlobError::Unavailable("s3 timed out".into())),
        ];
        for error in failures {
            assert_eq!(
                answer(error),
                (
                    503,
                    "unavailable".into(),
                    "a backing service is unavailable; try again".into()
                )
            );
        }
    }

    #[test]
    fn anything_else_is_an_internal_error_without_its_detail() {
        let internal = || {
            (
                500,
                "internal".to_owned(),
                "the request failed; it has been logged".to_owned(),
            )
        };
        assert_eq!(
            answer(Error::Internal("a broken invariant".into())),
            internal()
        );
        assert_eq!(
            answer(Error::Store(StoreError::ConditionFailed)),
            internal()
        );
        assert_eq!(
            answer(Error::Store(StoreError::Invalid("too many items".into()))),
            internal()
        );
    }

    #[test]
    fn each_family_hands_back_the_errors_it_does_not_answer() {
        assert!(matches!(
            request_problem(Error::conflict("stale")),
            Err(Error::Conflict { .. })
        ));
        assert!(matches!(
            state_problem(Error::NotFound("order")),
            Err(Error::NotFound("order"))
        ));
        assert!(matches!(
            state_problem(Error::Busy {
                retry_after_secs: 1
            }),
            Err(Error::Busy { .. })
        ));
    }
}
