//! What runs beside the HTTP routes in the local server: each SQS-triggered function is fed
//! from its queue (receive, invoke with a real `SqsEvent`, delete what succeeded: Lambda's
//! event source mapping in miniature), and each scheduled function runs on a timer.

use std::collections::HashSet;
use std::time::Duration;

use bazaar_api::App;
use bazaar_api::consumers::sqs;
use bazaar_api::functions::{ALL, Function, ScheduleHandler, Trigger};
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
    for function in ALL {
        match function.trigger {
            Trigger::Queue { queue, .. } => {
                set.spawn(consume(
                    app.clone(),
                    function,
                    queue,
                    visibility,
                    stop.clone(),
                ));
            }
            Trigger::Schedule {
                every_minutes,
                handler,
            } => {
                let period = Duration::from_secs(u64::from(every_minutes) * 60);
                set.spawn(every(
                    app.clone(),
                    function.name,
                    handler,
                    period,
                    stop.clone(),
                ));
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

/// Delivers one batch from `queue` to the queue consumer `function`, hiding the messages for
/// `visibility` meanwhile; returns how many messages came. `queue` is usually the one that
/// triggers `function`; tests feed it from queues of their own (poison still goes to the
/// dead-letter queue of the queue that triggers `function`, the one its consumer knows).
pub async fn deliver_batch(
    app: &App,
    function: &Function,
    queue: &str,
    visibility: Duration,
) -> Result<usize, String> {
    let Trigger::Queue { handler, .. } = function.trigger else {
        return Err(format!("{} is not a queue consumer", function.name));
    };
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
    let response = handler(app.clone(), event).await;
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
    function: &'static Function,
    queue: &'static str,
    visibility: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let name = function.name;
    tracing::info!(function = name, queue, "consumer started");
    loop {
        if *stop.borrow() {
            break;
        }
        let delivered = match deliver_batch(&app, function, queue, visibility).await {
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

async fn every(
    app: App,
    name: &'static str,
    handler: ScheduleHandler,
    period: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if pause(&mut stop, period).await {
            break;
        }
        if let Err(error) = handler(app.clone()).await {
            tracing::error!(function = name, %error, "scheduled run failed");
        }
    }
}
