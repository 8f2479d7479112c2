//! The local Bazaar server: every HTTP function at its API Gateway route, the SQS consumers
//! fed in-process from the configured queue, the scheduled jobs on timers, presigned blob
//! URLs and public assets (product images) served for the embedded store, Prometheus metrics
//! and the OpenAPI document.

pub mod blobs;
pub mod bucket_events;
pub mod connections;
pub mod dead_letters;
pub mod docs;
pub mod heat;
pub mod local_settings;
pub mod metrics_endpoint;
pub mod start;
pub mod workers;

use std::future::Future;

use axum::Router;
use axum::routing::get;
use bazaar_api::App;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use connections::Limits;
pub use start::{Local, StartError};

/// The routes the local server adds to the functions' own.
fn local_routes(blobs: blobs::LocalBlobs) -> Router<App> {
    Router::new()
        .route("/metrics", get(metrics_endpoint::render))
        .route(docs::OPENAPI_PATH, get(docs::openapi))
        .route(docs::DOCS_PATH, get(docs::page))
        .route(blobs::ROUTE, get(blobs::download).put(blobs::upload))
        .route(blobs::ASSETS_ROUTE, get(blobs::asset))
        .layer(axum::Extension(blobs))
}

/// The whole local API: every function plus the local routes.
pub fn router(local: &Local) -> Router {
    let blobs = blobs::LocalBlobs(local.embedded.as_ref().map(|handles| handles.blobs.clone()));
    bazaar_api::router::all(local.app.clone(), local_routes(blobs))
}

/// Serves `app` on `listener` with its background workers until `shutdown` resolves, then
/// stops accepting, finishes in-flight requests and stops the workers.
pub async fn serve(
    listener: TcpListener,
    local: Local,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, local, shutdown, workers::VISIBILITY).await
}

/// As [`serve`], with the queue consumers hiding received messages for `visibility` (a
/// failed message comes back that much later; tests shorten it).
pub async fn serve_with(
    listener: TcpListener,
    local: Local,
    shutdown: impl Future<Output = ()> + Send + 'static,
    visibility: std::time::Duration,
) -> std::io::Result<()> {
    serve_limited(listener, local, shutdown, visibility, Limits::default()).await
}

/// As [`serve_with`], within the connection `limits` (read timeouts, connection cap).
pub async fn serve_limited(
    listener: TcpListener,
    local: Local,
    shutdown: impl Future<Output = ()> + Send + 'static,
    visibility: std::time::Duration,
    limits: Limits,
) -> std::io::Result<()> {
    metrics_endpoint::install();
    let (stop, stopped) = watch::channel(false);
    let workers = workers::spawn(local.app.clone(), stopped, visibility);
    let result = connections::serve(listener, router(&local), limits, shutdown).await;
    let _ = stop.send(true);
    workers.join().await;
    result
}
