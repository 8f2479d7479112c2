//! The `invoices-render` function: numbers and renders the invoice of each paid order
//! (`PAYMENT_SUCCESSFUL` events on the invoices queue).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use bazaar_shared::events::{Event, EventType};
use bazaar_shared::ids::OrderId;
use serde_json::Value;

use crate::App;
use crate::consumers::error::{ConsumeError, Reason};
use crate::consumers::message::Message;
use crate::consumers::sqs::{Consumer, Poison, for_each_message};

pub const POISON: Poison = Poison::DeadLetterAtOnce;

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let consumer = Consumer::new(app, bazaar_shared::outbox::INVOICES_QUEUE, POISON);
    for_each_message(&consumer, event, |message: Message<Event>| async move {
        let event = &message.body;
        if event.kind != EventType::PaymentSuccessful {
            tracing::info!(
                event_type = event.kind.as_str(),
                "not for the invoice step; skipped"
            );
            return Ok(());
        }
        // The step needs only the order's id (the order itself is read from the store), so a
        // body carrying less of the order's payload is still invoiced; no id never will be.
        let order_id = event
            .data
            .get("order_id")
            .and_then(Value::as_str)
            .map(OrderId::trusted)
            .ok_or(ConsumeError::Poison(Reason::Incomplete(
                "PAYMENT_SUCCESSFUL without an order_id",
            )))?;
        let invoice = app.orders().issue_invoice(&order_id).await?;
        tracing::info!(%order_id, number = %invoice.number, "invoice issued");
        Ok(())
    })
    .await
}
