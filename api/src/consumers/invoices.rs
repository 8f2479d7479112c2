//! The `invoices-render` function: numbers and renders the invoice of each paid order
//! (`PAYMENT_SUCCESSFUL` events on the invoices queue).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use bazaar_shared::events::{Event, EventType, OrderEvent};

use crate::App;
use crate::consumers::sqs::{Consumer, for_each_record};

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let consumer = Consumer {
        queue: bazaar_shared::outbox::INVOICES_QUEUE,
        max_receives: app.max_receives(),
    };
    for_each_record(consumer, event, |record| async move {
        let body = record.body.unwrap_or_default();
        let event: Event =
            serde_json::from_str(&body).map_err(|error| format!("not an event: {error}"))?;
        if event.kind != EventType::PaymentSuccessful {
            tracing::info!(
                event_type = event.kind.as_str(),
                "not for the invoice step; skipped"
            );
            return Ok(());
        }
        let order: OrderEvent = event.data_as().map_err(|error| error.to_string())?;
        let order_id = order.order_id.as_str();
        let invoice = app
            .orders()
            .issue_invoice(order_id)
            .await
            .map_err(|error| error.to_string())?;
        tracing::info!(order_id, number = %invoice.number, "invoice issued");
        Ok(())
    })
    .await
}
