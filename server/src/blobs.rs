//! Presigned blob URLs for the embedded store: what S3 does for presigned URLs in AWS, the
//! local server does here, checking the signature, expiry and (for a sized upload) length the
//! store put in the URL. It also serves public objects (product images) under `/assets/`,
//! as a CDN in front of the bucket does in AWS.

use std::pin::Pin;
use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bazaar_api::App;
use bazaar_api::problem::Problem;
use bazaar_embedded::EmbeddedBlobs;
use bazaar_embedded::blobs::{Grant, StagedUpload};
use http_body::Body as _;
use tokio::io::AsyncWriteExt;

pub const ROUTE: &str = "/_blobs/{*key}";

/// Public objects, unsigned: only keys under [`PUBLIC_PREFIX`].
pub const ASSETS_ROUTE: &str = "/assets/{*key}";

/// The keys served publicly under `/assets/`; everything else needs a presigned URL.
pub const PUBLIC_PREFIX: &str = "products/";

/// How long browsers and proxies may keep a public object (its key never changes content:
/// each upload gets a new key).
pub const ASSETS_CACHE_CONTROL: &str = "public, max-age=86400";

/// The largest object accepted through a presigned upload.
pub const MAX_UPLOAD_BYTES: usize = 256 * 1024 * 1024;

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

fn too_large(limit: u64) -> Response {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "Payload too large",
        format!("uploads are limited to {limit} bytes"),
    )
    .into_response()
}

/// The embedded blob store whose presigned URLs this server checks; `None` on AWS, where S3
/// serves them. Handed to the handlers as a request extension.
#[derive(Clone, Default)]
pub struct LocalBlobs(pub Option<Arc<EmbeddedBlobs>>);

fn check(
    blobs: &LocalBlobs,
    method: &str,
    key: &str,
    query: Option<&str>,
    content_type: Option<&str>,
    content_length: Option<u64>,
) -> Result<Grant, Problem> {
    let Some(blobs) = &blobs.0 else {
        return Err(Problem::not_found("no such route"));
    };
    let now = chrono::Utc::now().timestamp();
    blobs
        .verify(
            method,
            key,
            query.unwrap_or_default(),
            content_type,
            content_length,
            now,
        )
        .map_err(|error| forbidden(error.to_string()))
}

pub async fn download(
    State(app): State<App>,
    Extension(blobs): Extension<LocalBlobs>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(problem) = check(&blobs, "GET", &key, query.as_deref(), None, None) {
        return problem.into_response();
    }
    match app.ports().blobs.get(&key).await {
        // A presigned download (an invoice document, an export) is saved, never rendered in
        // this origin: an HTML invoice holding customer text must not run as a page here.
        Ok(Some(blob)) => (
            [
                (header::CONTENT_TYPE, blob.content_type),
                (header::CONTENT_DISPOSITION, "attachment".to_owned()),
            ],
            blob.body,
        )
            .into_response(),
        Ok(None) => Problem::not_found("no such object").into_response(),
        Err(error) => unavailable(error.to_string()),
    }
}

pub async fn upload(
    State(app): State<App>,
    Extension(blobs): Extension<LocalBlobs>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (content_type, content_length) = declared(&headers);
    let grant = match check(
        &blobs,
        "PUT",
        &key,
        query.as_deref(),
        content_type,
        content_length,
    ) {
        Ok(grant) => grant,
        Err(problem) => return problem.into_response(),
    };
    let limit = match upload_limit(grant.content_length) {
        Ok(limit) => limit,
        Err(max) => return too_large(max),
    };
    let Some(blobs) = &blobs.0 else {
        return Problem::not_found("no such route").into_response();
    };
    let (staged, mut file) = match staging_file(blobs) {
        Ok(staging) => staging,
        Err(detail) => return unavailable(detail),
    };
    let received = match receive(body, &mut file, limit).await {
        Ok(received) => received,
        Err(response) => return response,
    };
    // The body is framed by the declared length, which was checked; a short body (the client
    // gave up) must not be stored either.
    if let Err(problem) = exact_length(grant.content_length, received) {
        return problem.into_response();
    }
    if let Err(error) = file.flush().await {
        return unavailable(error.to_string());
    }
    let file = file.into_std().await;
    let content_type = content_type.unwrap_or("application/octet-stream");
    match blobs.commit(staged, file, &key, content_type).await {
        Ok(()) => {
            let size = usize::try_from(received).unwrap_or(usize::MAX);
            crate::bucket_events::object_created(&app, &key, size);
            StatusCode::OK.into_response()
        }
        Err(error) => unavailable(error.to_string()),
    }
}

/// The upload's declared content type and length. A URL signed with a length accepts no
/// other (as S3 does, the Content-Length being a signed header there).
fn declared(headers: &HeaderMap) -> (Option<&str>, Option<u64>) {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    (content_type, content_length)
}

/// The most bytes the upload may have: the length its URL was signed with, or
/// [`MAX_UPLOAD_BYTES`]; a signed length above that is refused outright (`Err` says the
/// maximum).
fn upload_limit(signed: Option<u64>) -> Result<u64, u64> {
    let max = MAX_UPLOAD_BYTES as u64;
    match signed {
        Some(signed) if signed > max => Err(max),
        Some(signed) => Ok(signed),
        None => Ok(max),
    }
}

/// A staging file to write the upload to as it arrives, so that memory stays small whatever
/// the upload's size; or why there is none.
fn staging_file(blobs: &EmbeddedBlobs) -> Result<(StagedUpload, tokio::fs::File), String> {
    let mut staged = blobs.stage().map_err(|error| error.to_string())?;
    let Some(file) = staged.take_file() else {
        return Err("the staging file is gone".to_owned());
    };
    Ok((staged, tokio::fs::File::from_std(file)))
}

/// Writes the body to `file` as it arrives; how many bytes it had. More than `limit` bytes
/// stop it.
async fn receive(mut body: Body, file: &mut tokio::fs::File, limit: u64) -> Result<u64, Response> {
    let mut received: u64 = 0;
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let data = match frame {
            None => return Ok(received),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
            // The client went away or was too slow (the body read timeout).
            Some(Err(error)) => {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    "Bad request",
                    format!("the upload was not received whole: {error}"),
                )
                .into_response());
            }
        };
        received += data.len() as u64;
        if received > limit {
            return Err(too_large(limit));
        }
        if let Err(error) = file.write_all(&data).await {
            return Err(unavailable(error.to_string()));
        }
    }
}

/// Refuses an upload of other than the signed length, when the URL was signed with one.
fn exact_length(signed: Option<u64>, received: u64) -> Result<(), Problem> {
    match signed {
        Some(signed) if received != signed => Err(forbidden(format!(
            "the upload must be exactly {signed} bytes, not {received}"
        ))),
        _ => Ok(()),
    }
}

/// `GET /assets/{key}`: a public object (a product image), unsigned, on the embedded backend.
/// Only keys under [`PUBLIC_PREFIX`] are public; any other key is "not found", whether or not
/// the object exists, so that private objects cannot even be probed.
pub async fn asset(
    State(app): State<App>,
    Extension(blobs): Extension<LocalBlobs>,
    Path(key): Path<String>,
) -> Response {
    if blobs.0.is_none() || !key.starts_with(PUBLIC_PREFIX) {
        return Problem::not_found("no such asset").into_response();
    }
    match app.ports().blobs.get(&key).await {
        Ok(Some(blob)) => {
            let mut response = blob.body.into_response();
            let headers = response.headers_mut();
            if let Ok(content_type) = HeaderValue::from_str(&blob.content_type) {
                headers.insert(header::CONTENT_TYPE, content_type);
            }
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(ASSETS_CACHE_CONTROL),
            );
            // Uploaded content: never let a browser sniff it into something executable.
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        }
        Ok(None) | Err(bazaar_shared::ports::BlobError::InvalidKey(_)) => {
            Problem::not_found("no such asset").into_response()
        }
        Err(error) => unavailable(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_declares_its_type_and_length() {
        let mut headers = HeaderMap::new();
        assert_eq!(declared(&headers), (None, None));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static(" 42 "));
        assert_eq!(declared(&headers), (Some("image/png"), Some(42)));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("lots"));
        assert_eq!(declared(&headers), (Some("image/png"), None));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_bytes(b"image/\xff").unwrap_or(HeaderValue::from_static("x")),
        );
        assert_eq!(declared(&headers).0, None);
    }

    #[test]
    fn an_upload_is_limited_to_its_signed_length_or_the_maximum() {
        let max = MAX_UPLOAD_BYTES as u64;
        assert_eq!(upload_limit(None), Ok(max));
        assert_eq!(upload_limit(Some(10)), Ok(10));
        assert_eq!(upload_limit(Some(max)), Ok(max));
        assert_eq!(upload_limit(Some(max + 1)), Err(max));
    }

    #[test]
    fn a_signed_length_must_be_met_exactly() {
        assert!(exact_length(None, 0).is_ok());
        assert!(exact_length(None, 7).is_ok());
        assert!(exact_length(Some(7), 7).is_ok());
        let Err(short) = exact_length(Some(7), 6) else {
            panic!("a short upload was accepted");
        };
        assert_eq!(short.status, 403);
        assert_eq!(short.detail, "the upload must be exactly 7 bytes, not 6");
    }
}
