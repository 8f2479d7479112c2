//! What runs beside the HTTP routes in the local server: each SQS-triggered function is fed
//! from its queue (receive, invoke with a real `SqsEvent`, delete what succeeded: Lambda's
//! event source mapping in miniature), and each scheduled function runs on a timer.

use std::collections::HashSet;
use std::time::Duration;

use bazaar_api::App;
use bazaar_api::functions::{ALL, Trigger};
use bazaar_api::handlers::{self, sqs};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long a received message stays hidden while its handler runs.
pub const VISIBILITY: Duration = Duration::from_secs(30);
/// How long an idle consumer waits before polling its queue again.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Messages per invocation, as the SQS event sources in template.yaml are configured.
const BATCH_SIZE: usize = 10;

pub struct Workers(JoinSet<()>);

impl Workers {
    pub async fn join(mut self) {
        while self.0.join_next().await.is_some() {}
    }
}

/// Starts one worker per non-HTTP function in the catalogue.
pub fn spawn(app: App, stop: watch::Receiver<bool>, visibility: Duration) -> Workers {
    let mut set = JoinSet::new();
    for spec in ALL {
        match spec.trigger {
            Trigger::Queue { queue } => {
                set.spawn(consume(
                    app.clone(),
                    spec.name,
                    queue,
                    visibility,
                    stop.clone(),
                ));
            }
            Trigger::Schedule { every_minutes } => {
                let period = Duration::from_secs(u64::from(every_minutes) * 60);
                set.spawn(every(app.clone(), spec.name, period, stop.clone()));
            }
            // HTTP functions are routes; upload handlers run on bucket events.
            Trigger::Http { .. } | Trigger::Upload { .. } => {}
        }
    }
    Workers(set)
}

/// Waits `period`, or less if asked to stop; true when it is time to stop.
async fn pause(stop: &mut watch::Receiver<bool>, period: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(period) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// Delivers one batch from `queue` to the function `name`, hiding the messages for
/// `visibility` meanwhile; returns how many messages came.
pub async fn deliver_batch(
    app: &App,
    name: &str,
    queue: &str,
    visibility: Duration,
) -> Result<usize, String> {
    let ports = app.ports();
    let messages = ports
        .queue
        .receive(queue, BATCH_SIZE, visibility)
        .await
        .map_err(|error| error.to_string())?;
    if messages.is_empty() {
        return Ok(0);
    }
    let event = sqs::event_for(queue, &messages).map_err(|error| error.to_string())?;
    let response = handlers::consume(app, name, event)
        .await
        .ok_or_else(|| format!("no queue handler named {name}"))?;
    let failed: HashSet<&str> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect();
    for message in &messages {
        if !failed.contains(message.message_id.as_str()) {
            ports
                .queue
                .delete(queue, &message.receipt_handle)
                .await
                .map_err(|error| error.to_string())?;
        }
    }
    Ok(messages.len())
}

async fn consume(
    app: App,
    name: &'static str,
    queue: &'static str,
    visibility: Duration,
    mut stop: watch::Receiver<bool>,
) {
    tracing::info!(function = name, queue, "consumer started");
    loop {
        if *stop.borrow() {
            break;
        }
        let delivered = match deliver_batch(&app, name, queue, visibility).await {
            Ok(count) => count,
            Err(error) => {
                tracing::error!(function = name, %error, "queue delivery failed");
                0
            }
        };
        if delivered == 0 && pause(&mut stop, IDLE_POLL).await {
            break;
        }
    }
}

async fn every(app: App, name: &'static str, period: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        if pause(&mut stop, period).await {
            break;
        }
        let Some(result) = handlers::run_scheduled(&app, name).await else {
            tracing::error!(function = name, "no scheduled handler with this name");
            return;
        };
        if let Err(error) = result {
            tracing::error!(function = name, %error, "scheduled run failed");
        }
    }
}
