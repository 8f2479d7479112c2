//! Poison messages go to their queue's dead-letter queue on their first receive, rather than
//! after the queue's maximum receives: retrying them only delays the alarm and holds a
//! consumer. The body and its attributes are sent as received, so that `bazaar dead-letters`
//! and the AWS CLI list it like any dead letter and a redrive sends it back unchanged.

use bazaar_shared::ports::Attributes;
use bazaar_shared::ports::queue::dead_letter_queue;

use crate::consumers::error::Reason;
use crate::consumers::sqs::Consumer;

/// Sends a poison message to `consumer`'s dead-letter queue. True once it is there: the record
/// then counts as handled, and its original is deleted. False when the send failed: the record
/// must be reported as failed, so that the queue retries it and, after its maximum receives,
/// dead-letters it itself; either way the message is never lost.
pub async fn send(
    consumer: &Consumer,
    body: &str,
    attributes: &Attributes,
    reason: &Reason,
) -> bool {
    let dead_letters = dead_letter_queue(consumer.queue);
    // Logged with the span's ids and the reason only: the body may hold personal data.
    match consumer.queues.send(&dead_letters, body, attributes).await {
        Ok(dead_letter_id) => {
            tracing::error!(
                %reason,
                dead_letter_queue = %dead_letters,
                %dead_letter_id,
                "poison message sent to the dead-letter queue"
            );
            true
        }
        Err(error) => {
            tracing::error!(
                %reason,
                dead_letter_queue = %dead_letters,
                %error,
                "poison message could not be dead-lettered; it will be retried"
            );
            false
        }
    }
}
