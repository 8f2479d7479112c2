//! What each function's `main` calls: configuration, adapters and one handler, under the
//! Lambda runtime. A function that cannot be configured (e.g. no strong JWT secret on AWS)
//! fails at start-up rather than serving requests wrongly.

use aws_lambda_events::s3::S3Event;
use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::functions::Trigger;
use crate::settings::Settings;
use crate::{App, handlers, router, telemetry};

pub type Error = lambda_runtime::Error;

async fn start(tokens: bool) -> Result<App, Error> {
    telemetry::init();
    let settings = Settings::from_env();
    let app = match settings {
        Ok(settings) => App::on_aws(&settings, tokens).await,
        Err(error) => Err(error),
    };
    app.map_err(|error| {
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

/// Runs the SQS consumer `name` (partial batch failures: one bad message never fails its
/// batch).
pub async fn serve_queue(name: &'static str) -> Result<(), Error> {
    let spec = crate::functions::find(name).map(|spec| spec.trigger);
    if !matches!(spec, Some(Trigger::Queue { .. })) {
        return Err(format!("no queue consumer named {name}").into());
    }
    let app = start(false).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let app = app.clone();
        async move {
            handlers::consume(&app, name, event.payload)
                .await
                .ok_or_else(|| Error::from(format!("no queue consumer named {name}")))
        }
    }))
    .await
}

/// Runs the scheduled function `name` (EventBridge); an error makes the run count as failed.
pub async fn serve_scheduled(name: &'static str) -> Result<(), Error> {
    let spec = crate::functions::find(name).map(|spec| spec.trigger);
    if !matches!(spec, Some(Trigger::Schedule { .. })) {
        return Err(format!("no scheduled function named {name}").into());
    }
    let app = start(false).await?;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
        let app = app.clone();
        async move {
            let outcome = handlers::run_scheduled(&app, name)
                .await
                .ok_or_else(|| Error::from(format!("no scheduled function named {name}")))?;
            Ok::<Value, Error>(outcome?)
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
