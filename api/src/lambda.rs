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

/// Serves `function` until the runtime stops it: an HTTP function answers API Gateway (HTTP
/// API, payload v2) events with its route; a queue consumer reports partial batch failures
/// (one bad message never fails its batch); a scheduled run or an upload that errs counts as
/// failed (EventBridge records it, S3 retries it).
pub async fn run(function: &'static Function) -> Result<(), Error> {
    let app = start(function).await?;
    serve(function, app).await
}

/// As [`run`], with the App built by the caller (`cargo lambda watch --features local` builds
/// it over the embedded backend).
pub async fn serve(function: &'static Function, app: App) -> Result<(), Error> {
    match function.trigger {
        Trigger::Http { .. } => lambda_http::run(router::for_function(app, function)?).await,
        Trigger::Queue { handler, .. } => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
                let batch = handler(app.clone(), event.payload);
                async move { Ok::<_, Error>(batch.await) }
            }))
            .await
        }
        Trigger::Schedule { handler, .. } => {
            lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
                let outcome = handler(app.clone());
                async move { Ok::<Value, Error>(outcome.await?) }
            }))
            .await
        }
        Trigger::Upload { handler, .. } => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| {
                let handled = handler(app.clone(), event.payload);
                async move {
                    handled.await.map_err(Error::from)?;
                    Ok::<Value, Error>(json!({ "ok": true }))
                }
            }))
            .await
        }
    }
}

/// Telemetry, then the App on AWS with what `function` needs.
async fn start(function: &Function) -> Result<App, Error> {
    telemetry::init();
    let app = match Settings::from_env() {
        Ok(settings) => (function.needs.start())(settings, None).await,
        Err(error) => Err(error),
    };
    app.map_err(|error| {
        tracing::error!(function = function.name, %error, "configuration refused; not starting");
        Error::from(error)
    })
}
