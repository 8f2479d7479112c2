//! The `notifications-consumer` function: events from the notifications queue.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use bazaar_shared::events::Event;
use bazaar_shared::notifications;

use crate::App;
use crate::handlers::sqs::for_each_record;

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    for_each_record(event, |record| async move {
        let body = record.body.unwrap_or_default();
        // A body that is not an event fails every time and so ends in the dead-letter queue,
        // where it can be inspected, instead of being dropped silently.
        let event: Event = serde_json::from_str(&body).map_err(|error| format!("not an event: {error}"))?;
        let outcome = notifications::handle(app.ports(), &event)
            .await
            .map_err(|error| error.to_string())?;
        tracing::info!(event_id = %event.id, event_type = event.kind.as_str(), ?outcome, "event handled");
        Ok(())
    })
    .await
}
