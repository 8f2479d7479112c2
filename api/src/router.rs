//! Builds axum routers: one function's route (what its Lambda serves) or every HTTP function's
//! (what the local server serves). Both get the same layers, so a request is handled the same
//! way wherever it runs.

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use tower_http::catch_panic::CatchPanicLayer;

use crate::App;
use crate::endpoints::{
    addresses, catalogue, health, images, imports, notifications, orders, users,
};
use crate::functions::{ALL, FunctionSpec, Trigger};
use crate::problem::Problem;

/// The handler of an HTTP function, by function name.
pub fn handler(name: &str) -> Option<MethodRouter<App>> {
    Some(match name {
        "health" => get(health::health),
        "users-register" => post(users::register),
        "users-login" => post(users::login),
        "users-me-get" => get(users::me),
        "users-me-update" => patch(users::update_me),
        "users-list" => get(users::list),
        "users-update" => patch(users::update),
        "addresses-list" => get(addresses::list),
        "addresses-create" => post(addresses::create),
        "addresses-update" => patch(addresses::update),
        "addresses-delete" => delete(addresses::delete),
        "categories-list" => get(catalogue::list_categories),
        "categories-create" => post(catalogue::create_category),
        "products-list" => get(catalogue::list_products),
        "products-get" => get(catalogue::get_product),
        "products-create" => post(catalogue::create_product),
        "products-update" => patch(catalogue::update_product),
        "products-archive" => delete(catalogue::archive_product),
        "products-stock" => put(catalogue::change_stock),
        "products-images" => post(images::presign_image),
        "imports-create" => post(imports::create),
        "imports-get" => get(imports::get),
        "orders-create" => post(orders::create),
        "orders-list" => get(orders::list),
        "orders-get" => get(orders::get),
        "orders-tracking" => get(orders::tracking),
        "orders-cancel" => post(orders::cancel),
        "orders-pay" => post(orders::pay),
        "orders-refund" => post(orders::refund),
        "orders-invoice" => get(orders::invoice),
        "orders-ship" => post(orders::ship),
        "orders-deliver" => post(orders::deliver),
        "notifications-subscribe" => post(notifications::subscribe),
        "notifications-subscriptions-list" => get(notifications::subscriptions),
        "notifications-unsubscribe" => delete(notifications::unsubscribe),
        "notifications-list" => get(notifications::list),
        "notifications-notify" => post(notifications::notify),
        "users-email-verify" => post(users::verify_email),
        "users-email-verification" => post(users::resend_email_code),
        "notifications-subscriptions-verify" => post(notifications::verify),
        "notifications-subscriptions-resend" => post(notifications::resend),
        _ => return None,
    })
}

/// The HTTP functions: (spec, method, path).
pub fn http_functions() -> impl Iterator<Item = (&'static FunctionSpec, &'static str, &'static str)>
{
    ALL.iter().filter_map(|spec| match spec.trigger {
        Trigger::Http { method, path } => Some((spec, method, path)),
        _ => None,
    })
}

/// The router a single function's Lambda serves.
pub fn for_function(app: App, name: &str) -> Result<Router, String> {
    let (_, _, path) = http_functions()
        .find(|(spec, _, _)| spec.name == name)
        .ok_or_else(|| format!("{name} is not an HTTP function"))?;
    let handler = handler(name).ok_or_else(|| format!("{name} has no handler"))?;
    Ok(finish(Router::new().route(path, handler), app))
}

/// Every HTTP function at its route, as API Gateway would route them. `extra` is merged in
/// before the shared layers (the local server's own routes).
pub fn all(app: App, extra: Router<App>) -> Router {
    let mut router = Router::new();
    for (spec, _, path) in http_functions() {
        if let Some(handler) = handler(spec.name) {
            router = router.route(path, handler);
        }
    }
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
