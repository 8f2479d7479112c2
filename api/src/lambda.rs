//! What each function's `main` calls: configuration, adapters and one handler, under the
//! Lambda runtime. A function that cannot be configured (e.g. no strong JWT secret on AWS)
//! fails at start-up rather than serving requests wrongly.

use aws_lambda_events::s3::S3Event;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::{App, handlers, router, telemetry};

pub type Error = lambda_runtime::Error;

async fn start(tokens: bool) -> Result<App, Error> {
    telemetry::init();
    App::from_env(tokens).await.map_err(|error| {
        tracing::error!(%error, "configuration refused; not starting");
        Error::from(error)
    })
}

/// Serves one HTTP function (API Gateway HTTP API, payload v2).
pub async fn serve_http(name: &str) -> Result<(), Error> {
    let spec = crate::functions::find(name).ok_or_else(|| format!("no function named {name}"))?;
    let app = start(spec.uses_tokens()).await?;
    lambda_http::run(router::for_function(app, name)?).await
}

/// Runs the notifications queue consumer.
pub async fn serve_notifications_consumer() -> Result<(), Error> {
    let app = start(false).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let app = app.clone();
        async move {
            Ok::<SqsBatchResponse, Error>(
                handlers::notifications::handle(&app, event.payload).await,
            )
        }
    }))
    .await
}

/// Runs the notification delivery step (single deliveries from the deliveries queue).
pub async fn serve_notification_deliverer() -> Result<(), Error> {
    let app = start(false).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let app = app.clone();
        async move {
            Ok::<SqsBatchResponse, Error>(handlers::deliveries::handle(&app, event.payload).await)
        }
    }))
    .await
}

/// Runs the payment step (charges and refunds from the payments queue).
pub async fn serve_payments_processor() -> Result<(), Error> {
    let app = start(false).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let app = app.clone();
        async move {
            Ok::<SqsBatchResponse, Error>(handlers::payments::handle(&app, event.payload).await)
        }
    }))
    .await
}

/// Runs the invoice step (paid orders from the invoices queue).
pub async fn serve_invoice_renderer() -> Result<(), Error> {
    let app = start(false).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let app = app.clone();
        async move {
            Ok::<SqsBatchResponse, Error>(handlers::invoices::handle(&app, event.payload).await)
        }
    }))
    .await
}

/// Runs the scheduled reservation expiry.
pub async fn serve_order_expiry() -> Result<(), Error> {
    let app = start(false).await?;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
        let app = app.clone();
        async move {
            let expired = handlers::order_expiry::run(&app).await?;
            Ok::<Value, Error>(serde_json::json!({ "expired": expired }))
        }
    }))
    .await
}

/// Runs the catalogue import on S3 upload events. An error makes Lambda retry the event.
pub async fn serve_import_processor() -> Result<(), Error> {
    let app = start(false).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| {
        let app = app.clone();
        async move {
            handlers::imports::handle(&app, event.payload)
                .await
                .map_err(Error::from)?;
            Ok::<Value, Error>(serde_json::json!({ "ok": true }))
        }
    }))
    .await
}

/// Runs the scheduled outbox relay.
pub async fn serve_outbox_relay() -> Result<(), Error> {
    let app = start(false).await?;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
        let app = app.clone();
        async move {
            let sent = handlers::outbox_relay::run(&app).await?;
            Ok::<Value, Error>(serde_json::json!({ "sent": sent }))
        }
    }))
    .await
}
