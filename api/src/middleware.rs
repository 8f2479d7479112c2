//! What wraps every request: a request id (echoed or made), a tracing span carrying it, one
//! structured log line per request, and the Prometheus metrics the shop exposes.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the request being served.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The route template that matched (`/api/v1/users/{id}`), for metric labels that do not
/// explode with every id.
#[derive(Clone, Debug)]
struct RouteLabel(String);

/// The `method` label of a request's metrics: one of the methods the API knows, or `OTHER`.
/// A client may send any token as a method, and a label value per made-up method would grow
/// the metrics without bound.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: &[Method] = &[
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("OTHER", Method::as_str)
}

/// A client-sent id is echoed when it is short, printable ASCII; otherwise a new one is made.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_owned)
        .unwrap_or_else(|| ulid::Ulid::new().to_string())
}

/// The outermost layer: ids, logs and metrics for every response, matched or not.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let id = request_id(&request);
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = method_label(request.method());
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        path = %path,
        user_id = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map(|label| label.0.clone())
        .unwrap_or_else(|| "unmatched".to_owned());
    span.in_scope(|| {
        tracing::info!(status, route = %route, duration_ms = elapsed.as_secs_f64() * 1000.0, "request served");
    });
    metrics::counter!(
        "http_requests_total",
        "method" => method,
        "route" => route.clone(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Runs after routing (as a route layer) to hand the matched route template outwards.
pub async fn label_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteLabel(route));
    }
    response
}
