//! The `payments-process` function: charges and refunds from the payments queue.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use bazaar_shared::orders::PaymentCommand;

use crate::App;
use crate::consumers::sqs::{Consumer, for_each_record};

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let consumer = Consumer {
        queue: bazaar_shared::outbox::PAYMENTS_QUEUE,
        max_receives: app.max_receives(),
    };
    for_each_record(consumer, event, |record| async move {
        let body = record.body.unwrap_or_default();
        // A body that is not a command fails every time and so ends in the dead-letter queue.
        let command: PaymentCommand = serde_json::from_str(&body)
            .map_err(|error| format!("not a payment command: {error}"))?;
        app.orders()
            .process_payment(&command)
            .await
            .map_err(|error| error.to_string())?;
        tracing::info!(?command, "payment command handled");
        Ok(())
    })
    .await
}
