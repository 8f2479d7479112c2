//! The `notifications-consumer` function: the fan-out step. Each event (or admin message) on
//! the notifications queue becomes one delivery per recipient and channel.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use bazaar_shared::notifications::fanout::Incoming;

use crate::App;
use crate::consumers::message::Message;
use crate::consumers::sqs::{Consumer, Poison, for_each_message};

pub const POISON: Poison = Poison::DeadLetterAtOnce;

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let consumer = Consumer::new(app, bazaar_shared::outbox::NOTIFICATIONS_QUEUE, POISON);
    for_each_message(&consumer, event, |message: Message<Incoming>| async move {
        let outcome = app.notifications().fan_out(&message.body).await?;
        tracing::info!(?outcome, "notification fanned out");
        Ok(())
    })
    .await
}
