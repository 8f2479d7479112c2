//! The functions that are not behind HTTP: SQS consumers, scheduled jobs and the upload
//! processor. Each entry of `crate::functions` names its handler here, for its Lambda
//! (`crate::lambda`) and for the local server's workers alike.

pub mod dead_letter;
pub mod deliveries;
pub mod error;
pub mod imports;
pub mod imports_sweep;
pub mod invoices;
pub mod message;
pub mod notifications;
pub mod order_expiry;
pub mod outbox_relay;
pub mod payments;
pub mod sqs;
