//! The `notifications-deliver` function: sends single deliveries (one recipient, one
//! channel) from the deliveries queue.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use bazaar_shared::notifications::model::DeliverCommand;

use crate::App;
use crate::consumers::message::Message;
use crate::consumers::sqs::{Consumer, for_each_message};

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let consumer = Consumer::new(app, bazaar_shared::outbox::DELIVERIES_QUEUE);
    for_each_message(
        &consumer,
        event,
        |message: Message<DeliverCommand>| async move {
            let command = &message.body;
            let outcome = app
                .notifications()
                .deliver(command, message.receive_count)
                .await?;
            tracing::info!(notification = %command.notification_id, ?outcome, "delivery handled");
            Ok(())
        },
    )
    .await
}
