//! Queues in SQLite, with SQS's semantics: at-least-once delivery, visibility timeouts,
//! receive counts, and redrive to a dead-letter queue.
//!
//! Every queue lives in one table; a queue exists as soon as a message is sent to it. A
//! message is visible when its `visible_at` has passed; receiving it pushes `visible_at` past
//! the visibility timeout and gives it a fresh receipt handle, so that only the latest
//! receiver can delete it. Time is the wall clock, as SQS's is.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use bazaar_shared::ports::queue::{
    Attributes, Queue, QueueError, ReceivedMessage, dead_letter_queue,
};
use rusqlite::{Connection, TransactionBehavior, params};

use super::Sqlite;

/// `attributes` is a JSON object of strings (see [`Attributes`]). `seq` keeps messages sent within one millisecond in sending order (ULIDs made in the same
/// millisecond are random); `(queue, sent_at)` serves `receive`, `receipt` serves `delete`.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    attributes TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, sent_at);
CREATE INDEX IF NOT EXISTS messages_by_receipt ON messages (receipt) WHERE receipt IS NOT NULL;
";

/// Every queue on one SQLite file. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct EmbeddedQueue {
    db: Sqlite,
    max_receives: u32,
}

impl EmbeddedQueue {
    /// `max_receives`: a message received more than this many times moves to the dead-letter queue
    /// named `bazaar_shared::ports::queue::dead_letter_queue(name)` on its next receive attempt (as SQS redrive does).
    pub fn open(path: &Path, max_receives: u32) -> Result<Self, QueueError> {
        let db = Sqlite::open(path, SCHEMA).map_err(QueueError::Unavailable)?;
        db.now(add_attributes_column).map_err(sql_error)?;
        Ok(Self { db, max_receives })
    }

    /// Number of messages in a queue (visible or not) — for tests and the local server's diagnostics.
    pub async fn depth(&self, queue: &str) -> Result<usize, QueueError> {
        let queue = queue.to_owned();
        self.call(move |connection| {
            let count: i64 = connection
                .query_row(
                    "SELECT COUNT(*) FROM messages WHERE queue = ?1",
                    [queue],
                    |row| row.get(0),
                )
                .map_err(sql_error)?;
            usize::try_from(count).map_err(|error| QueueError::Unavailable(error.to_string()))
        })
        .await
    }

    async fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, QueueError> + Send + 'static,
    ) -> Result<T, QueueError> {
        self.db.call(QueueError::Unavailable, work).await
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn send(
        &self,
        queue: &str,
        body: &str,
        attributes: &Attributes,
    ) -> Result<String, QueueError> {
        let (queue, body) = (queue.to_owned(), body.to_owned());
        let attributes = serde_json::to_string(attributes)
            .map_err(|error| QueueError::Unavailable(error.to_string()))?;
        let id = ulid::Ulid::new().to_string();
        let now = now_millis();
        let message_id = id.clone();
        self.call(move |connection| {
            connection
                .execute(
                    "INSERT INTO messages (queue, id, body, sent_at, visible_at, attributes) VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                    params![queue, id, body, now, attributes],
                )
                .map_err(sql_error)
        })
        .await?;
        Ok(message_id)
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let request = ReceiveRequest {
            queue: queue.to_owned(),
            max: i64::try_from(max).unwrap_or(i64::MAX),
            visibility_millis: i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX),
            max_receives: self.max_receives,
        };
        self.call(move |connection| request.run(connection)).await
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), QueueError> {
        let (queue, receipt) = (queue.to_owned(), receipt_handle.to_owned());
        self.call(move |connection| {
            // A stale handle matches no row: the message was received again since, and only
            // its latest receiver may delete it (as in SQS).
            connection
                .execute(
                    "DELETE FROM messages WHERE queue = ?1 AND receipt = ?2",
                    params![queue, receipt],
                )
                .map(drop)
                .map_err(sql_error)
        })
        .await
    }
}

/// One `receive`, run as a single `BEGIN IMMEDIATE` transaction so that two receivers (two
/// tasks, or two processes) never get the same message within its visibility timeout.
struct ReceiveRequest {
    queue: String,
    max: i64,
    visibility_millis: i64,
    max_receives: u32,
}

/// A message picked for delivery, before its receipt is recorded.
struct Picked {
    seq: i64,
    id: String,
    body: String,
    sent_at: i64,
    receive_count: u32,
    attributes: String,
}

impl ReceiveRequest {
    fn run(self, connection: &mut Connection) -> Result<Vec<ReceivedMessage>, QueueError> {
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_error)?;
        let now = now_millis();
        if !is_dead_letter_queue(&self.queue) {
            self.redrive(&transaction, now)?;
        }
        let picked = self.pick(&transaction, now)?;
        let visible_at = now.saturating_add(self.visibility_millis);
        let mut received = Vec::with_capacity(picked.len());
        for message in picked {
            received.push(hide(&transaction, message, visible_at)?);
        }
        transaction.commit().map_err(sql_error)?;
        Ok(received)
    }

    /// Moves the visible messages that have used up their receives to the dead-letter queue,
    /// keeping id, body and sending time, as SQS's redrive does when a receive reaches them.
    fn redrive(&self, connection: &Connection, now: i64) -> Result<(), QueueError> {
        let dead_letters = dead_letter_queue(&self.queue);
        let moved = connection
            .execute(
                "UPDATE messages SET queue = ?1, receive_count = 0, receipt = NULL, visible_at = ?3
                 WHERE queue = ?2 AND visible_at <= ?3 AND receive_count >= ?4",
                params![dead_letters, self.queue, now, self.max_receives],
            )
            .map_err(sql_error)?;
        if moved > 0 {
            tracing::warn!(queue = %self.queue, dead_letters, moved, "messages moved to the dead-letter queue");
        }
        Ok(())
    }

    fn pick(&self, connection: &Connection, now: i64) -> Result<Vec<Picked>, QueueError> {
        let mut statement = connection
            .prepare_cached(
                "SELECT seq, id, body, sent_at, receive_count, attributes FROM messages
                 WHERE queue = ?1 AND visible_at <= ?2 ORDER BY sent_at, seq LIMIT ?3",
            )
            .map_err(sql_error)?;
        let rows = statement
            .query_map(params![self.queue, now, self.max], |row| {
                Ok(Picked {
                    seq: row.get(0)?,
                    id: row.get(1)?,
                    body: row.get(2)?,
                    sent_at: row.get(3)?,
                    receive_count: row.get(4)?,
                    attributes: row.get(5)?,
                })
            })
            .map_err(sql_error)?;
        rows.map(|row| row.map_err(sql_error)).collect()
    }
}

/// Records a delivery: one more receive, hidden until `visible_at`, under a fresh receipt.
fn hide(
    connection: &Connection,
    message: Picked,
    visible_at: i64,
) -> Result<ReceivedMessage, QueueError> {
    let receive_count = message.receive_count.saturating_add(1);
    let receipt_handle = new_receipt_handle(&message.id);
    connection
        .execute(
            "UPDATE messages SET receive_count = ?1, visible_at = ?2, receipt = ?3 WHERE seq = ?4",
            params![receive_count, visible_at, receipt_handle, message.seq],
        )
        .map_err(sql_error)?;
    Ok(ReceivedMessage {
        message_id: message.id,
        receipt_handle,
        body: message.body,
        receive_count,
        sent_at_millis: message.sent_at,
        // Written by `send` from a map of strings; anything else is not an attribute.
        attributes: serde_json::from_str(&message.attributes).unwrap_or_default(),
    })
}

/// Data directories made before messages had attributes get the column (their messages
/// have none).
fn add_attributes_column(connection: &Connection) -> rusqlite::Result<()> {
    let present: bool = connection.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('messages') WHERE name = 'attributes'",
        [],
        |row| row.get(0),
    )?;
    if !present {
        connection.execute_batch(
            "ALTER TABLE messages ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}'",
        )?;
    }
    Ok(())
}

/// Unguessable, so that a handle cannot be forged to delete a message one did not receive;
/// prefixed with the message id only to make logs readable.
fn new_receipt_handle(message_id: &str) -> String {
    format!("{message_id}.{:032x}", rand::random::<u128>())
}

/// Whether `queue` is some queue's dead-letter queue. Its own messages never move further,
/// however often they are received: nothing would ever read a dead-letter queue's DLQ.
fn is_dead_letter_queue(queue: &str) -> bool {
    // The port names a DLQ by appending a suffix; derive it rather than repeat it here.
    let suffix = dead_letter_queue("");
    queue.len() > suffix.len() && queue.ends_with(&suffix)
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn sql_error(error: rusqlite::Error) -> QueueError {
    QueueError::Unavailable(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempDir;

    const LONG: Duration = Duration::from_secs(60);

    fn open(dir: &TempDir, max_receives: u32) -> EmbeddedQueue {
        EmbeddedQueue::open(&dir.path().join("queues.sqlite3"), max_receives)
            .expect("open the queues")
    }

    fn bodies(messages: &[ReceivedMessage]) -> Vec<&str> {
        messages
            .iter()
            .map(|message| message.body.as_str())
            .collect()
    }

    #[tokio::test]
    async fn messages_arrive_in_sending_order_and_stay_hidden_while_in_flight() {
        let dir = TempDir::new("queue-order");
        let queues = open(&dir, 5);
        let mut ids = Vec::new();
        for body in ["one", "two", "three"] {
            ids.push(
                queues
                    .send("notifications", body, &Attributes::new())
                    .await
                    .expect("send"),
            );
        }
        queues
            .send("other", "elsewhere", &Attributes::new())
            .await
            .expect("send");

        let first = queues
            .receive("notifications", 2, LONG)
            .await
            .expect("receive");
        assert_eq!(bodies(&first), ["one", "two"]);
        assert_eq!(first[0].message_id, ids[0]);
        assert!(first.iter().all(|message| message.receive_count == 1));
        assert!(first[0].sent_at_millis <= first[1].sent_at_millis);

        let second = queues
            .receive("notifications", 10, LONG)
            .await
            .expect("receive");
        assert_eq!(bodies(&second), ["three"]);
        assert!(
            queues
                .receive("notifications", 10, LONG)
                .await
                .expect("receive")
                .is_empty()
        );
        assert_eq!(
            queues.depth("notifications").await.expect("depth"),
            3,
            "in-flight messages count"
        );
        assert_eq!(queues.depth("other").await.expect("depth"), 1);
        assert!(
            queues
                .receive("notifications", 0, LONG)
                .await
                .expect("receive")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn an_undeleted_message_returns_after_its_visibility_timeout() {
        let dir = TempDir::new("queue-visibility");
        let queues = open(&dir, 5);
        let id = queues
            .send("jobs", "work", &Attributes::new())
            .await
            .expect("send");

        let first = queues
            .receive("jobs", 1, Duration::from_millis(200))
            .await
            .expect("receive");
        assert_eq!(first.len(), 1);
        assert!(
            queues
                .receive("jobs", 1, LONG)
                .await
                .expect("receive")
                .is_empty(),
            "hidden while in flight"
        );

        tokio::time::sleep(Duration::from_millis(300)).await;
        let again = queues.receive("jobs", 1, LONG).await.expect("receive");
        assert_eq!(again.len(), 1, "visible again after the timeout");
        assert_eq!(again[0].message_id, id);
        assert_eq!(again[0].receive_count, 2);
        assert_ne!(again[0].receipt_handle, first[0].receipt_handle);
        assert_eq!(again[0].sent_at_millis, first[0].sent_at_millis);
    }

    #[tokio::test]
    async fn delete_needs_the_latest_receipt_and_ignores_stale_ones() {
        let dir = TempDir::new("queue-delete");
        let queues = open(&dir, 5);
        queues
            .send("jobs", "work", &Attributes::new())
            .await
            .expect("send");
        let stale = queues
            .receive("jobs", 1, Duration::ZERO)
            .await
            .expect("receive");
        let current = queues.receive("jobs", 1, LONG).await.expect("receive");
        assert_eq!(current.len(), 1);

        queues
            .delete("jobs", &stale[0].receipt_handle)
            .await
            .expect("a stale receipt is not an error");
        queues
            .delete("jobs", "no-such-receipt")
            .await
            .expect("an unknown receipt is not an error");
        queues
            .delete("other", &current[0].receipt_handle)
            .await
            .expect("another queue's name");
        assert_eq!(
            queues.depth("jobs").await.expect("depth"),
            1,
            "nothing was deleted"
        );

        queues
            .delete("jobs", &current[0].receipt_handle)
            .await
            .expect("delete");
        assert_eq!(queues.depth("jobs").await.expect("depth"), 0);
    }

    #[tokio::test]
    async fn a_message_received_too_often_moves_to_the_dead_letter_queue() {
        let dir = TempDir::new("queue-dlq");
        let queues = open(&dir, 2);
        let id = queues
            .send("notifications", "poison", &Attributes::new())
            .await
            .expect("send");
        queues
            .send("notifications", "fine", &Attributes::new())
            .await
            .expect("send");

        for attempt in 1..=2 {
            let received = queues
                .receive("notifications", 1, Duration::ZERO)
                .await
                .expect("receive");
            assert_eq!(bodies(&received), ["poison"]);
            assert_eq!(received[0].receive_count, attempt);
        }
        let next = queues
            .receive("notifications", 10, LONG)
            .await
            .expect("receive");
        assert_eq!(
            bodies(&next),
            ["fine"],
            "the third attempt redrives instead of delivering"
        );
        assert_eq!(queues.depth("notifications").await.expect("depth"), 1);

        let dlq = dead_letter_queue("notifications");
        assert_eq!(queues.depth(&dlq).await.expect("depth"), 1);
        for attempt in 1..=4 {
            let dead = queues
                .receive(&dlq, 10, Duration::ZERO)
                .await
                .expect("receive the DLQ");
            assert_eq!(dead.len(), 1, "a DLQ's messages never move on");
            assert_eq!(
                (dead[0].message_id.as_str(), dead[0].body.as_str()),
                (id.as_str(), "poison")
            );
            assert_eq!(
                dead[0].receive_count, attempt,
                "the count restarts in the DLQ"
            );
        }
        assert_eq!(
            queues.depth(&dead_letter_queue(&dlq)).await.expect("depth"),
            0
        );
    }

    #[tokio::test]
    async fn in_flight_messages_are_not_redriven() {
        let dir = TempDir::new("queue-dlq-in-flight");
        let queues = open(&dir, 1);
        queues
            .send("jobs", "slow", &Attributes::new())
            .await
            .expect("send");
        let received = queues.receive("jobs", 1, LONG).await.expect("receive");
        assert_eq!(received.len(), 1);
        assert!(
            queues
                .receive("jobs", 1, LONG)
                .await
                .expect("receive")
                .is_empty()
        );
        assert_eq!(
            queues.depth("jobs").await.expect("depth"),
            1,
            "still in flight, not dead"
        );
        queues
            .delete("jobs", &received[0].receipt_handle)
            .await
            .expect("delete");
        assert_eq!(
            queues
                .depth(&dead_letter_queue("jobs"))
                .await
                .expect("depth"),
            0
        );
    }

    #[tokio::test]
    async fn messages_survive_reopening() {
        let dir = TempDir::new("queue-reopen");
        let id = {
            let queues = open(&dir, 3);
            queues
                .send("jobs", "durable", &Attributes::new())
                .await
                .expect("send")
        };
        let queues = open(&dir, 3);
        let received = queues.receive("jobs", 1, LONG).await.expect("receive");
        assert_eq!(received.len(), 1);
        assert_eq!(
            (received[0].message_id.as_str(), received[0].body.as_str()),
            (id.as_str(), "durable")
        );
    }

    #[test]
    fn dead_letter_queues_are_recognised_by_name() {
        assert!(is_dead_letter_queue(&dead_letter_queue("notifications")));
        assert!(!is_dead_letter_queue("notifications"));
        assert!(!is_dead_letter_queue(&dead_letter_queue("")));
    }
}
