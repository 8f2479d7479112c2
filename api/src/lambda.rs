//! What each function's `main` calls: configuration, adapters and its entry's handler, under
//! the Lambda runtime. A function that cannot be configured (e.g. no strong JWT secret on
//! AWS) fails at start-up rather than serving requests wrongly.
//!
//! Only the entry passed in is reached from here (never `functions::ALL`), so each binary
//! links the one handler its `main` names.

use aws_lambda_events::s3::S3Event;
use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

use crate::functions::{Function, Trigger};
use crate::settings::Settings;
use crate::{App, router, telemetry};

pub type Error = lambda_runtime::Error;

/// A function being served: runs on the main task until the runtime stops (`lambda_http`'s
/// future is not `Send`, and need not be).
pub type Serving = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>>>>;

/// Serves `function` until the runtime stops it: an HTTP function answers API Gateway (HTTP
/// API, payload v2) events with its route; a queue consumer reports partial batch failures
/// (one bad message never fails its batch); a scheduled run or an upload that errs counts as
/// failed (EventBridge records it, S3 retries it).
///
/// Not an `async fn`: the runner for the trigger and the App builder are picked before any
/// future exists, so with the entry a constant (a binary's `main`) only that runner and that
/// builder are linked; an HTTP function carries no SQS glue and a consumer no HTTP router.
#[inline(always)]
pub fn run(function: &'static Function) -> Serving {
    let serve = runner(function);
    let start = function.needs.start();
    Box::pin(async move {
        telemetry::init(function.name);
        telemetry::emf::install(function.name);
        let app = match Settings::from_env() {
            Ok(settings) => start(settings, None).await,
            Err(error) => Err(error),
        };
        let app = app.map_err(|error| {
            tracing::error!(function = function.name, %error, "configuration refused; not starting");
            Error::from(error)
        })?;
        serve(function, app).await
    })
}

/// As [`run`], with the App built by the caller (`cargo lambda watch --features local` builds
/// it over the embedded backend).
#[inline(always)]
pub fn serve(function: &'static Function, app: App) -> Serving {
    runner(function)(function, app)
}

/// Serves a function of one trigger kind with its App.
type Runner = fn(&'static Function, App) -> Serving;

#[inline(always)]
fn runner(function: &'static Function) -> Runner {
    match function.trigger {
        Trigger::Http { .. } => |function, app| Box::pin(serve_http(function, app)),
        Trigger::Queue { .. } => |function, app| Box::pin(serve_queue(function, app)),
        Trigger::Schedule { .. } => |function, app| Box::pin(serve_schedule(function, app)),
        Trigger::Upload { .. } => |function, app| Box::pin(serve_upload(function, app)),
    }
}

async fn serve_http(function: &'static Function, app: App) -> Result<(), Error> {
    // The outermost layer, so the request's own metrics and span are recorded before the flush.
    let router =
        router::for_function(app, function)?.layer(axum::middleware::map_response(flush_telemetry));
    lambda_http::run(router).await
}

async fn flush_telemetry(response: axum::response::Response) -> axum::response::Response {
    telemetry::flush();
    response
}

async fn serve_queue(function: &'static Function, app: App) -> Result<(), Error> {
    let Trigger::Queue { handler, .. } = function.trigger else {
        return Err(format!("{} is not a queue consumer", function.name).into());
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let batch = handler(app.clone(), event.payload);
        async move {
            let response = batch.await;
            telemetry::flush();
            Ok::<_, Error>(response)
        }
    }))
    .await
}

async fn serve_schedule(function: &'static Function, app: App) -> Result<(), Error> {
    let Trigger::Schedule { handler, .. } = function.trigger else {
        return Err(format!("{} is not a scheduled function", function.name).into());
    };
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
        let outcome = handler(app.clone());
        async move {
            let outcome = outcome.await;
            telemetry::flush();
            Ok::<Value, Error>(outcome?)
        }
    }))
    .await
}

async fn serve_upload(function: &'static Function, app: App) -> Result<(), Error> {
    let Trigger::Upload { handler, .. } = function.trigger else {
        return Err(format!("{} is not an upload function", function.name).into());
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| {
        let handled = handler(app.clone(), event.payload);
        async move {
            let handled = handled.await;
            telemetry::flush();
            handled.map_err(Error::from)?;
            Ok::<Value, Error>(json!({ "ok": true }))
        }
    }))
    .await
}
