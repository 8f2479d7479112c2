//! Inspecting and redriving dead-letter queues, on either backend: `bazaar dead-letters
//! <queue>` lists what failed, `bazaar redrive <queue>` moves it back to be tried again (after
//! the cause is fixed). On AWS, `aws sqs start-message-move-task` does the same natively.

use std::time::Duration;

use bazaar_shared::Ports;
use bazaar_shared::ports::ReceivedMessage;
use bazaar_shared::ports::queue::dead_letter_queue;

/// How long listed messages stay hidden: long enough to page through a queue once.
const PEEK_VISIBILITY: Duration = Duration::from_secs(5);

/// The messages in `queue`'s dead-letter queue (they become visible again shortly).
pub async fn list(ports: &Ports, queue: &str) -> Result<Vec<ReceivedMessage>, String> {
    let dlq = dead_letter_queue(queue);
    let mut all = Vec::new();
    loop {
        let batch = ports
            .queue
            .receive(&dlq, 10, PEEK_VISIBILITY)
            .await
            .map_err(|error| error.to_string())?;
        if batch.is_empty() {
            return Ok(all);
        }
        all.extend(batch);
    }
}

/// Moves every message of `queue`'s dead-letter queue back to `queue`; returns how many.
/// Each is sent (with its attributes) before it is deleted, so a crash midway duplicates rather than loses (the
/// consumers are idempotent).
pub async fn redrive(ports: &Ports, queue: &str) -> Result<usize, String> {
    let dlq = dead_letter_queue(queue);
    let mut moved = 0;
    loop {
        let batch = ports
            .queue
            .receive(&dlq, 10, Duration::from_secs(60))
            .await
            .map_err(|error| error.to_string())?;
        if batch.is_empty() {
            return Ok(moved);
        }
        for message in batch {
            ports
                .queue
                .send(queue, &message.body, &message.attributes)
                .await
                .map_err(|error| error.to_string())?;
            ports
                .queue
                .delete(&dlq, &message.receipt_handle)
                .await
                .map_err(|error| error.to_string())?;
            moved += 1;
        }
    }
}
