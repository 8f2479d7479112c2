//! The notification pipeline's consumer. For now every event addressed to a user lands in the
//! user's in-app inbox; external channels (e-mail, SMS, push, Slack, webhooks) plug in here.
//! Handling is idempotent on the event id: a redelivered event changes nothing.

use serde_json::{Value, json};

use crate::Ports;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::keys;
use crate::ports::{Cond, Item, StoreError, TxOp, store};

/// The consumer's name in its idempotency markers.
pub const CONSUMER: &str = "notifications";

/// How long a consumed-marker is kept: far longer than any queue's retention (14 days).
const MARKER_TTL_SECONDS: i64 = 30 * 24 * 3600;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A notification was recorded for the event's user.
    Recorded,
    /// The event had been handled before.
    Duplicate,
    /// The event concerns no user; it was marked handled.
    Ignored,
}

pub async fn handle(ports: &Ports, event: &Event) -> Result<Outcome> {
    let now = ports.clock.now();
    let marker = keys::consumed(CONSUMER, &event.id);
    let mut marker_item = Item::new();
    marker_item.insert(store::PK.into(), marker.pk.into());
    marker_item.insert(store::SK.into(), marker.sk.into());
    marker_item.insert(
        "expires_at".into(),
        (now.timestamp() + MARKER_TTL_SECONDS).into(),
    );
    let mut ops = vec![TxOp::Put {
        item: marker_item,
        cond: Cond::NotExists,
    }];

    let user_id = event.data.get("user_id").and_then(Value::as_str);
    if let Some(user_id) = user_id {
        let id = ports.ids.new_id();
        let key = keys::notification(user_id, &id);
        let record = json!({
            store::PK: key.pk,
            store::SK: key.sk,
            "id": id,
            "event": event.kind,
            "event_id": event.id,
            "channel": "inbox",
            "status": "delivered",
            "attempts": 1,
            "created_at": now.to_rfc3339(),
        });
        if let Value::Object(item) = record {
            ops.push(TxOp::Put {
                item,
                cond: Cond::NotExists,
            });
        }
    }
    match ports.store.transact(ops).await {
        Ok(()) if user_id.is_some() => Ok(Outcome::Recorded),
        Ok(()) => Ok(Outcome::Ignored),
        Err(StoreError::TransactionCancelled { failed }) if failed.contains(&0) => {
            Ok(Outcome::Duplicate)
        }
        Err(StoreError::TransactionCancelled { failed }) => Err(Error::Internal(format!(
            "notification write refused at {failed:?}"
        ))),
        Err(other) => Err(other.into()),
    }
}
