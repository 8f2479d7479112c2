//! What wraps every request: a request id (echoed or made), a tracing span carrying it (the
//! request's span in traces too), one structured log line per request, and the metrics the
//! shop exposes.

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

/// On Lambda, the ids AWS gave this request: API Gateway's (in its access logs and the
/// `apigw-requestid` header) and the invocation's (in the function's REPORT line).
fn aws_ids(request: &Request) -> (Option<String>, Option<String>) {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    let gateway = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    };
    let invocation = request
        .lambda_context_ref()
        .map(|context| context.request_id.clone());
    (gateway, invocation)
}

/// The outermost layer: ids, logs and metrics for every response, matched or not. The request
/// id is API Gateway's on AWS and the client's `x-request-id` (or a new one) locally; it is
/// also the correlation id every event and command caused by the request carries.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let (gateway_id, invocation_id) = aws_ids(&request);
    let id = gateway_id.unwrap_or_else(|| request_id(&request));
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = method_label(request.method());
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        correlation_id = %id,
        aws_request_id = tracing::field::Empty,
        method = %method,
        path = %path,
        user_id = tracing::field::Empty,
        otel.kind = "server",
    );
    if let Some(invocation_id) = invocation_id {
        span.record("aws_request_id", invocation_id);
    }
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map(|label| label.0.clone())
        .unwrap_or_else(|| "unmatched".to_owned());
    // The trace's name for the span: the route template, never the path with its ids.
    crate::telemetry::traces::name_request(&span, method, &route);
    span.in_scope(|| {
        tracing::info!(status, route = %route, duration_ms = elapsed.as_secs_f64() * 1000.0, "request served");
    });
    metrics::counter!(
        bazaar_shared::metrics::HTTP_REQUESTS,
        "method" => method,
        "route" => route.clone(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(bazaar_shared::metrics::HTTP_REQUEST_DURATION, "method" => method, "route" => route)
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

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
    use lambda_http::request::RequestContext;
    use tower::ServiceExt;

    use super::*;

    fn router() -> Router {
        Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(observe))
    }

    async fn answered_id(request: axum::http::Request<Body>) -> Option<String> {
        let response = router().oneshot(request).await.ok()?;
        let id = response.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?;
        Some(id.to_owned())
    }

    #[tokio::test]
    async fn on_lambda_the_request_id_is_api_gateways() {
        let mut context = ApiGatewayV2httpRequestContext::default();
        context.request_id = Some("gw-1".to_owned());
        let mut request = axum::http::Request::get("/")
            .header(REQUEST_ID_HEADER, "from-the-client")
            .body(Body::empty())
            .expect("a request");
        request
            .extensions_mut()
            .insert(RequestContext::ApiGatewayV2(context));
        assert_eq!(answered_id(request).await.as_deref(), Some("gw-1"));
    }

    #[tokio::test]
    async fn locally_a_sensible_client_id_is_echoed_and_any_other_replaced() {
        let echoed = axum::http::Request::get("/")
            .header(REQUEST_ID_HEADER, "abc-123")
            .body(Body::empty())
            .expect("a request");
        assert_eq!(answered_id(echoed).await.as_deref(), Some("abc-123"));
        let spaced = axum::http::Request::get("/")
            .header(REQUEST_ID_HEADER, "a b")
            .body(Body::empty())
            .expect("a request");
        let made = answered_id(spaced).await.unwrap_or_default();
        assert_eq!(made.len(), 26, "a new ULID: {made}");
    }
}
