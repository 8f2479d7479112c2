//! Response headers that protect browsers and shared caches, set on every response of the API
//! whatever produced it (a handler, a rejection, a fallback, a caught panic).

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// What a JSON API needs of a browser: run nothing, load nothing, be framed by nobody. A
/// response that needs more (the docs page) sets its own policy.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; sandbox";

/// Adds `X-Content-Type-Options: nosniff` and a restrictive `Content-Security-Policy` to every
/// response; `Cache-Control: no-store` to every response to an authenticated request (whatever
/// the handler said: what a caller with credentials sees may be theirs alone) and to any
/// response that did not state a caching policy (tokens, orders, problems).
pub async fn secure(request: Request, next: Next) -> Response {
    let authenticated = request.headers().contains_key(header::AUTHORIZATION);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    if authenticated || !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
