//! The `notifications-deliver` function: sends single deliveries (one recipient, one
//! channel) from the deliveries queue.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use bazaar_shared::notifications::model::DeliverCommand;

use crate::App;
use crate::consumers::message::Message;
use crate::consumers::sqs::{Consumer, Poison, for_each_message};

/// Poison is left to the deliveries queue's redrive policy (dead-lettered after its maximum
/// receives): sending it at once would link the SQS client, which takes this function's package
/// over its size budget (README, "Package sizes and cold starts"), and its commands are written
/// only by our own code (the notification fan-out), so poison here means a bug, not bad input.
pub const POISON: Poison = Poison::LeaveToTheQueue;

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let consumer = Consumer::new(app, bazaar_shared::outbox::DELIVERIES_QUEUE, POISON);
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
