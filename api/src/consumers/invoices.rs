//! The `invoices-render` function: numbers and renders the invoice of each paid order
//! (`PAYMENT_SUCCESSFUL` events on the invoices queue).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use bazaar_shared::events::{Event, EventType, OrderEvent};

use crate::App;
use crate::consumers::error::{ConsumeError, Reason};
use crate::consumers::message::Message;
use crate::consumers::sqs::{Consumer, for_each_message};

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let consumer = Consumer::new(app, bazaar_shared::outbox::INVOICES_QUEUE);
    for_each_message(&consumer, event, |message: Message<Event>| async move {
        let event = &message.body;
        if event.kind != EventType::PaymentSuccessful {
            tracing::info!(
                event_type = event.kind.as_str(),
                "not for the invoice step; skipped"
            );
            return Ok(());
        }
        // Only an order's payload names the order to invoice; anything else never will.
        let order: OrderEvent = event.data_as().map_err(|_| {
            ConsumeError::Poison(Reason::Incomplete(
                "PAYMENT_SUCCESSFUL without an order's data",
            ))
        })?;
        let invoice = app.orders().issue_invoice(&order.order_id).await?;
        tracing::info!(order_id = %order.order_id, number = %invoice.number, "invoice issued");
        Ok(())
    })
    .await
}
