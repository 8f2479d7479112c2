//! The queue port, with SQS's semantics: at-least-once delivery; a received message stays
//! invisible for a visibility timeout and comes back unless deleted; each receive counts,
//! and a message received more than its queue's limit moves to the queue's dead-letter queue.
//!
//! Queues are named logically (`notifications`); each adapter maps names to real queues.
//! A message may carry a few string attributes beside its body (SQS message attributes):
//! what travels with a message without being part of it, such as its trace context.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

/// A message's string attributes by name (SQS allows at most 10 per message).
pub type Attributes = BTreeMap<String, String>;

/// A message handed out by [`Queue::receive`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    /// What [`Queue::delete`] needs; changes with every receive.
    pub receipt_handle: String,
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
    /// When it was first sent, in milliseconds since the epoch.
    pub sent_at_millis: i64,
    /// The attributes it was sent with.
    pub attributes: Attributes,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum QueueError {
    #[error("unknown queue {0}")]
    UnknownQueue(String),
    #[error("queue unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends one message with its attributes; returns its id.
    async fn send(
        &self,
        queue: &str,
        body: &str,
        attributes: &Attributes,
    ) -> Result<String, QueueError>;

    /// Receives up to `max` visible messages, hiding each for `visibility`.
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError>;

    /// Deletes a received message; a stale receipt handle is ignored (as SQS does).
    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), QueueError>;
}

/// The name of a queue's dead-letter queue.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}-dlq")
}
