//! The functions that are not behind HTTP: SQS consumers and scheduled jobs.

pub mod deliveries;
pub mod imports;
pub mod invoices;
pub mod notifications;
pub mod order_expiry;
pub mod outbox_relay;
pub mod payments;
pub mod sqs;
