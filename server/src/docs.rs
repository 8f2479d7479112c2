//! The OpenAPI document and a page to browse it.

use axum::http::header;
use axum::response::{Html, IntoResponse};

pub const OPENAPI_PATH: &str = "/api/v1/openapi.yaml";
pub const DOCS_PATH: &str = "/api/v1/docs";

/// The contract, as written in `docs/openapi.yaml`.
pub const OPENAPI: &str = include_str!("../../docs/openapi.yaml");

pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/yaml; charset=utf-8")],
        OPENAPI,
    )
}

/// A Redoc page reading the document above (the viewer's script comes from a CDN, so the page
/// needs a browser with internet access; the YAML itself does not).
pub async fn page() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Bazaar API</title>",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head><body>",
        "<redoc spec-url=\"/api/v1/openapi.yaml\"></redoc>",
        "<script src=\"https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js\"></script>",
        "</body></html>"
    ))
}
