//! Builds axum routers: one function's route (what its Lambda serves) or every HTTP function's
//! (what the local server serves). Both get the same layers, so a request is handled the same
//! way wherever it runs.

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;

use crate::App;
use crate::functions::{ALL, Function, Trigger};
use crate::problem::Problem;

/// A function that is not triggered over HTTP has no route to serve.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not an HTTP function")]
pub struct NotHttp(pub &'static str);

/// The router a single function's Lambda serves: its own route and nothing else.
pub fn for_function(app: App, function: &Function) -> Result<Router, NotHttp> {
    let Trigger::Http { path, handler, .. } = function.trigger else {
        return Err(NotHttp(function.name));
    };
    Ok(finish(Router::new().route(path, handler()), app))
}

/// Every HTTP function at its route, as API Gateway would route them. `extra` is merged in
/// before the shared layers (the local server's own routes).
pub fn all(app: App, extra: Router<App>) -> Router {
    let router = ALL
        .iter()
        .fold(Router::new(), |router, function| match function.trigger {
            Trigger::Http { path, handler, .. } => router.route(path, handler()),
            _ => router,
        });
    finish(router.merge(extra), app)
}

fn finish(router: Router<App>, app: App) -> Router {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn(crate::bounds::bound_input))
        .route_layer(axum::middleware::from_fn(crate::middleware::label_route))
        .layer(CatchPanicLayer::custom(|_| internal_error()))
        .layer(axum::middleware::from_fn(crate::security_headers::secure))
        .layer(axum::middleware::from_fn(crate::middleware::observe))
        .with_state(app)
}

async fn not_found() -> Problem {
    Problem::not_found("no such route")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this route does not accept that method",
    )
}

fn internal_error() -> Response {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal error",
        "the request failed; it has been logged",
    )
    .into_response()
}
