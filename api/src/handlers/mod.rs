//! The functions that are not behind HTTP: SQS consumers and scheduled jobs. [`consume`] and
//! [`run_scheduled`] name each one's handler once, for its Lambda (`crate::lambda`) and for
//! the local server's workers alike.

pub mod deliveries;
pub mod imports;
pub mod imports_sweep;
pub mod invoices;
pub mod notifications;
pub mod order_expiry;
pub mod outbox_relay;
pub mod payments;
pub mod sqs;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use serde_json::{Value, json};

use crate::App;

/// Hands one batch to the queue consumer `name`; `None` when no consumer has that name.
pub async fn consume(app: &App, name: &str, event: SqsEvent) -> Option<SqsBatchResponse> {
    Some(match name {
        "notifications-consumer" => notifications::handle(app, event).await,
        "notifications-deliver" => deliveries::handle(app, event).await,
        "payments-process" => payments::handle(app, event).await,
        "invoices-render" => invoices::handle(app, event).await,
        _ => return None,
    })
}

/// Runs the scheduled function `name` once and says what it did; `None` when no scheduled
/// function has that name.
pub async fn run_scheduled(app: &App, name: &str) -> Option<Result<Value, bazaar_shared::Error>> {
    Some(match name {
        "outbox-relay" => outbox_relay::run(app)
            .await
            .map(|sent| json!({ "sent": sent })),
        "orders-expire" => order_expiry::run(app)
            .await
            .map(|expired| json!({ "expired": expired })),
        "imports-sweep" => imports_sweep::run(app).await.map(|swept| json!(swept)),
        _ => return None,
    })
}
