//! The `notifications-deliver` function: sends single deliveries (one recipient, one
//! channel) from the deliveries queue.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use bazaar_shared::notifications::model::DeliverCommand;

use crate::App;
use crate::consumers::sqs::{Consumer, for_each_record};

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let consumer = Consumer {
        queue: bazaar_shared::outbox::DELIVERIES_QUEUE,
        max_receives: app.max_receives(),
    };
    for_each_record(consumer, event, |record| async move {
        let receive_count = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|count| count.parse::<u32>().ok())
            .unwrap_or(1);
        let body = record.body.unwrap_or_default();
        let command: DeliverCommand = serde_json::from_str(&body)
            .map_err(|error| format!("not a delivery command: {error}"))?;
        let outcome = app
            .notifications()
            .deliver(&command, receive_count)
            .await
            .map_err(|error| error.to_string())?;
        tracing::info!(notification = %command.notification_id, ?outcome, "delivery handled");
        Ok(())
    })
    .await
}
