//! Presigned blob URLs for the embedded store: what S3 does for presigned URLs in AWS, the
//! local server does here, checking the signature and expiry the store put in the URL.

use axum::body::{Body, to_bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bazaar_api::App;
use bazaar_api::problem::Problem;

pub const ROUTE: &str = "/_blobs/{*key}";

/// The largest object accepted through a presigned upload.
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

fn forbidden(detail: String) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
}

fn unavailable(detail: String) -> Response {
    tracing::error!(%detail, "blob store failed");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Service unavailable",
        "blob storage failed",
    )
    .into_response()
}

fn check(
    app: &App,
    method: &str,
    key: &str,
    query: Option<&str>,
    content_type: Option<&str>,
) -> Result<(), Problem> {
    let Some(embedded) = &app.connected().embedded else {
        return Err(Problem::not_found("no such route"));
    };
    let now = chrono::Utc::now().timestamp();
    embedded
        .blobs
        .verify(method, key, query.unwrap_or_default(), content_type, now)
        .map_err(|error| forbidden(error.to_string()))
}

pub async fn download(
    State(app): State<App>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(problem) = check(&app, "GET", &key, query.as_deref(), None) {
        return problem.into_response();
    }
    match app.ports().blobs.get(&key).await {
        Ok(Some(blob)) => ([(header::CONTENT_TYPE, blob.content_type)], blob.body).into_response(),
        Ok(None) => Problem::not_found("no such object").into_response(),
        Err(error) => unavailable(error.to_string()),
    }
}

pub async fn upload(
    State(app): State<App>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    if let Err(problem) = check(&app, "PUT", &key, query.as_deref(), content_type) {
        return problem.into_response();
    }
    let Ok(bytes) = to_bytes(body, MAX_UPLOAD_BYTES).await else {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!("uploads are limited to {MAX_UPLOAD_BYTES} bytes"),
        )
        .into_response();
    };
    let content_type = content_type.unwrap_or("application/octet-stream");
    match app
        .ports()
        .blobs
        .put(&key, bytes.to_vec(), content_type)
        .await
    {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => unavailable(error.to_string()),
    }
}
