//! The `payments-process` function: charges and refunds from the payments queue.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use bazaar_shared::orders::PaymentCommand;

use crate::App;
use crate::consumers::message::Message;
use crate::consumers::sqs::{Consumer, Poison, for_each_message};

pub const POISON: Poison = Poison::DeadLetterAtOnce;

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let consumer = Consumer::new(app, bazaar_shared::outbox::PAYMENTS_QUEUE, POISON);
    for_each_message(
        &consumer,
        event,
        |message: Message<PaymentCommand>| async move {
            app.orders().process_payment(&message.body).await?;
            tracing::info!(command = ?message.body, "payment command handled");
            Ok(())
        },
    )
    .await
}
