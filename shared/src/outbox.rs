//! The transactional outbox: a message (an event, or a command for a pipeline step) is written in the same transaction as the state change
//! that caused it, then handed to its queue. If the process dies in between, the sweeper
//! ([`sweep`], run on a schedule) sends it later. Nothing is lost; an event may be sent twice,
//! which is why every consumer is idempotent on the event id.
//!
//! An entry keeps the trace context of the span that staged it (see [`crate::trace`]), so the
//! message continues its request's trace even when the sweeper is the one that sends it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Ports;
use crate::entity;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::keys;
use crate::metrics;
use crate::ports::{Attributes, Cond, Index, Key, Query, TxOp};
use crate::shards::Shards;
use crate::trace;

/// The logical name of the queue feeding the notification pipeline.
pub const NOTIFICATIONS_QUEUE: &str = "notifications";
/// The queue of payment work: charges and refunds at the payment provider.
pub const PAYMENTS_QUEUE: &str = "payments";
/// The queue of paid orders waiting for their invoice.
pub const INVOICES_QUEUE: &str = "invoices";
/// The queue of single notification deliveries (one recipient, one channel).
pub const DELIVERIES_QUEUE: &str = "deliveries";

/// How long an outbox entry may wait before the sweeper considers its inline send lost.
pub const SWEEP_GRACE: Duration = Duration::from_secs(30);

/// The most entries one sweep hands on, so that a scheduled run stays well inside its timeout.
const SWEEP_BATCH: usize = 500;

/// A message on its way to a queue: an event, or a command for one of the pipeline's
/// consumers. Its id is unique per queue, and consumers are idempotent on it.
#[derive(Clone, Debug, PartialEq)]
pub struct Staged {
    pub queue: String,
    pub id: String,
    pub body: String,
    pub created_at: i64,
    /// The W3C `traceparent` of the span that staged it, when traces are exported.
    pub trace_parent: Option<String>,
}

impl Staged {
    /// An event for `queue`.
    pub fn new(queue: &str, event: Event) -> Self {
        let body = serde_json::to_string(&event).unwrap_or_default();
        Self {
            queue: queue.to_owned(),
            id: event.id.into(),
            body,
            created_at: event.occurred_at.timestamp(),
            trace_parent: trace::current_parent(),
        }
    }

    /// The same event for each of `queues`.
    pub fn fan_out(queues: &[&str], event: &Event) -> Vec<Self> {
        queues
            .iter()
            .map(|queue| Self::new(queue, event.clone()))
            .collect()
    }

    /// A command for `queue`, identified by `id`.
    pub fn command(queue: &str, id: &str, body: &impl serde::Serialize, at: i64) -> Result<Self> {
        let body = serde_json::to_string(body)
            .map_err(|error| Error::Internal(format!("message does not serialise: {error}")))?;
        Ok(Self {
            queue: queue.to_owned(),
            id: id.to_owned(),
            body,
            created_at: at,
            trace_parent: trace::current_parent(),
        })
    }

    fn key(&self, shards: Shards) -> Key {
        keys::outbox(shards, &self.id, &self.queue)
    }

    /// The transaction operation that records the message in its shard of the outbox.
    pub fn write(&self, shards: Shards) -> Result<TxOp> {
        let mut item = json!({
            "queue": self.queue,
            "body": self.body,
            "created_at": self.created_at,
        });
        if let Some(parent) = &self.trace_parent {
            item[trace::STORED_PARENT] = json!(parent);
        }
        Ok(TxOp::Put {
            item: entity::keyed(&self.key(shards), item),
            cond: Cond::NotExists,
        })
    }
}

/// The outbox writes of `staged`, to add to the transaction that causes them.
pub fn writes(staged: &[Staged], shards: Shards) -> Result<Vec<TxOp>> {
    staged.iter().map(|entry| entry.write(shards)).collect()
}

/// Sends messages whose transaction has committed and clears them from the outbox. A failure
/// is logged, not returned: the request that wrote them has succeeded, and the sweeper will
/// send whatever is left.
pub async fn deliver(ports: &Ports, staged: &[Staged]) {
    for entry in staged {
        let attributes = trace::attributes(entry.trace_parent.as_deref());
        let key = entry.key(ports.shards);
        let sent = send_and_clear(ports, &entry.queue, &entry.body, &attributes, &key);
        if let Err(error) = sent.await {
            tracing::warn!(%error, message_id = %entry.id, queue = %entry.queue, "message left in the outbox for the sweeper");
        }
    }
}

async fn send_and_clear(
    ports: &Ports,
    queue: &str,
    body: &str,
    attributes: &Attributes,
    key: &Key,
) -> Result<()> {
    ports.queue.send(queue, body, attributes).await?;
    ports.store.delete(key, Cond::Always).await?;
    Ok(())
}

/// Sends every outbox entry older than `grace` (oldest first within each shard) and clears
/// it; returns how many were sent. Entries whose send fails stay for the next run, and so do
/// those past the batch: the next run starts with the shards this one did not reach.
#[tracing::instrument(target = "bazaar::span", name = "outbox.sweep", skip_all)]
pub async fn sweep(ports: &Ports, grace: Duration) -> Result<usize> {
    let cutoff = ports.clock.now().timestamp() - grace.as_secs() as i64;
    // A different first shard each minute, so that a backlog in the first shards cannot
    // starve the last ones of the batch.
    let partitions = ports
        .shards
        .partitions_in_turn(keys::OUTBOX_PARTITION, cutoff);
    let mut sent = 0;
    for partition in &partitions {
        sent += sweep_partition(ports, partition, cutoff, SWEEP_BATCH - sent).await?;
        if sent >= SWEEP_BATCH {
            break;
        }
    }
    Ok(sent)
}

/// Sends up to `batch` entries of one outbox partition older than `cutoff`.
async fn sweep_partition(
    ports: &Ports,
    partition: &str,
    cutoff: i64,
    batch: usize,
) -> Result<usize> {
    let mut sent = 0;
    let mut start_after = None;
    loop {
        let query = Query::partition(Index::Primary, partition)
            .limit(100)
            .start_after(start_after);
        let page = ports.store.query(&query).await?;
        for item in &page.items {
            if sent >= batch {
                return Ok(sent);
            }
            let created_at = item.get("created_at").and_then(Value::as_i64).unwrap_or(0);
            if created_at > cutoff {
                // Entries are in id (= time) order: the rest are younger still.
                return Ok(sent);
            }
            let (Some(key), Some(queue), Some(body)) = (
                Key::of(item),
                item.get("queue").and_then(Value::as_str),
                item.get("body").and_then(Value::as_str),
            ) else {
                tracing::error!(?item, "malformed outbox entry");
                continue;
            };
            let parent = item.get(trace::STORED_PARENT).and_then(Value::as_str);
            let attributes = trace::attributes(parent);
            match send_and_clear(ports, queue, body, &attributes, &key).await {
                Ok(()) => {
                    sent += 1;
                    metrics::outbox_swept(1);
                }
                Err(error) => {
                    tracing::warn!(%error, sk = %key.sk, "outbox entry not sent; will retry")
                }
            }
        }
        match page.last_key {
            Some(last) => start_after = Some(last),
            None => return Ok(sent),
        }
    }
}
