//! The `notifications-consumer` function: the fan-out step. Each event (or admin message) on
//! the notifications queue becomes one delivery per recipient and channel.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};

use crate::App;
use crate::consumers::sqs::{Consumer, for_each_record};

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let consumer = Consumer {
        queue: bazaar_shared::outbox::NOTIFICATIONS_QUEUE,
        max_receives: app.max_receives(),
    };
    for_each_record(consumer, event, |record| async move {
        let body = record.body.unwrap_or_default();
        // A body that is not an event fails every time and so ends in the dead-letter queue,
        // where it can be inspected, instead of being dropped silently.
        let outcome = app
            .notifications()
            .fan_out(&body)
            .await
            .map_err(|error| error.to_string())?;
        tracing::info!(?outcome, "notification fanned out");
        Ok(())
    })
    .await
}
