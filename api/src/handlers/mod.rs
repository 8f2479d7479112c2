//! The functions that are not behind HTTP: SQS consumers and scheduled jobs.

pub mod imports;
pub mod notifications;
pub mod outbox_relay;
pub mod sqs;
