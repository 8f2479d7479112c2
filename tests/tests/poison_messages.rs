//! Poison messages on every consumer's queue, on both backends: a message that can never
//! succeed (a body that is not what its queue carries, a command naming something that does
//! not exist) goes to its queue's dead-letter queue on its first receive, with its attributes,
//! while the rest of its batch is handled; a message that may pass later (the store
//! unavailable) is still retried; and a poison message whose dead-letter queue cannot be
//! reached is retried rather than lost. notifications-deliver is the exception: it leaves
//! poison to the deliveries queue's redrive policy (api/src/consumers/deliveries.rs), so its
//! poison is reported failed and dead-lettered by the queue after its maximum receives.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bazaar_api::consumers::sqs;
use bazaar_api::functions::{
    ALL, DELIVERIES_QUEUE, Function, INVOICES_QUEUE, NOTIFICATIONS_QUEUE, PAYMENTS_PROCESS,
    PAYMENTS_QUEUE, Trigger,
};
use bazaar_shared::ports::queue::dead_letter_queue;
use bazaar_shared::ports::{
    Cond, Item, Key, Page, Query, ReceivedMessage, Store, StoreError, TxOp, Update,
};
use bazaar_shared::trace;
use bazaar_tests::faults::server_with_failing_queue;
use bazaar_tests::http::eventually;
use bazaar_tests::server::WORKER_VISIBILITY;
use bazaar_tests::{Backend, TestServer};
use serde_json::json;

bazaar_tests::on_both_backends!(
    each_consumer_dead_letters_poison_at_once_and_retries_what_may_pass,
    poison_sent_to_each_queue_is_a_dead_letter_after_one_receive,
    poison_is_retried_while_its_dead_letter_queue_cannot_be_reached,
    deliveries_poison_is_dead_lettered_by_the_queue_after_its_max_receives,
);

const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
/// Ids (orders, users, events) whose reads fail as if the store were unavailable.
const UNAVAILABLE: &str = "unavailable";

/// A store that is unavailable for every key naming [`UNAVAILABLE`].
struct PartlyUnavailable(Arc<dyn Store>);

impl PartlyUnavailable {
    fn check(key: &Key) -> Result<(), StoreError> {
        if key.pk.contains(UNAVAILABLE) || key.sk.contains(UNAVAILABLE) {
            return Err(StoreError::Unavailable("injected outage".to_owned()));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for PartlyUnavailable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        Self::check(key)?;
        self.0.get(key).await
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        self.0.put(item, cond).await
    }

    async fn update(
        &self,
        key: &Key,
        updates: Vec<Update>,
        cond: Cond,
    ) -> Result<Item, StoreError> {
        Self::check(key)?;
        self.0.update(key, updates, cond).await
    }

    async fn delete(&self, key: &Key, cond: Cond) -> Result<(), StoreError> {
        self.0.delete(key, cond).await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError> {
        self.0.transact(ops).await
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.0.query(query).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.0.get_many(keys).await
    }
}

fn event(id: &str, kind: &str, data: serde_json::Value) -> String {
    json!({
        "id": id,
        "type": kind,
        "occurred_at": "2026-01-01T00:00:00Z",
        "correlation_id": "poison-test",
        "data": data,
    })
    .to_string()
}

/// One consumer's batch: (message id, body, what must become of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Handled,
    DeadLettered,
    Retried,
}

/// What becomes of a poison message on its first receive on `queue`.
fn poison_fate(queue: &str) -> Fate {
    // notifications-deliver does not link the queue client (its package size budget): its
    // poison is reported failed, and the queue's redrive policy dead-letters it.
    if queue == DELIVERIES_QUEUE {
        Fate::Retried
    } else {
        Fate::DeadLettered
    }
}

fn batch_for(queue: &str) -> Vec<(&'static str, String, Fate)> {
    let malformed = (
        "malformed",
        format!("{{\"kind\": \"charge\", {queue}"),
        poison_fate(queue),
    );
    let rest = match queue {
        PAYMENTS_QUEUE => vec![
            (
                "missing",
                json!({"kind": "charge", "order_id": "no-such-order", "payment_id": "p-1"})
                    .to_string(),
                Fate::DeadLettered,
            ),
            (
                "transient",
                json!({"kind": "charge", "order_id": UNAVAILABLE, "payment_id": "p-2"}).to_string(),
                Fate::Retried,
            ),
        ],
        DELIVERIES_QUEUE => vec![
            (
                "missing",
                json!({"user_id": "no-such-user", "notification_id": "n-1"}).to_string(),
                poison_fate(queue),
            ),
            (
                "transient",
                json!({"user_id": UNAVAILABLE, "notification_id": "n-2"}).to_string(),
                Fate::Retried,
            ),
        ],
        INVOICES_QUEUE => vec![
            (
                "other-event",
                event("e-1", "ORDER_CREATED", json!({"order_id": "o-1"})),
                Fate::Handled,
            ),
            (
                "missing",
                event(
                    "e-2",
                    "PAYMENT_SUCCESSFUL",
                    json!({"order_id": "no-such-order"}),
                ),
                Fate::DeadLettered,
            ),
            (
                "no-order-id",
                event("e-3", "PAYMENT_SUCCESSFUL", json!({})),
                Fate::DeadLettered,
            ),
            (
                "transient",
                event(
                    "e-4",
                    "PAYMENT_SUCCESSFUL",
                    json!({"order_id": UNAVAILABLE}),
                ),
                Fate::Retried,
            ),
        ],
        NOTIFICATIONS_QUEUE => vec![
            (
                "nobody",
                event("e-5", "USER_REGISTERED", json!({"user_id": "no-such-user"})),
                Fate::Handled,
            ),
            (
                "not-an-admin-message",
                json!({"kind": "admin_message", "message": {"id": "m-1"}}).to_string(),
                Fate::DeadLettered,
            ),
            (
                "transient",
                event(
                    &format!("e-{UNAVAILABLE}"),
                    "USER_REGISTERED",
                    json!({"user_id": "u-1"}),
                ),
                Fate::Retried,
            ),
        ],
        other => panic!("no batch for queue {other}"),
    };
    std::iter::once(malformed).chain(rest).collect()
}

fn received(batch: &[(&'static str, String, Fate)]) -> Vec<ReceivedMessage> {
    batch
        .iter()
        .map(|(id, body, _)| ReceivedMessage {
            message_id: (*id).to_owned(),
            receipt_handle: format!("receipt-{id}"),
            body: body.clone(),
            receive_count: 1,
            sent_at_millis: 0,
            attributes: trace::attributes(Some(PARENT)),
        })
        .collect()
}

fn queue_consumers() -> Vec<(&'static Function, &'static str)> {
    ALL.iter()
        .filter_map(|function| match function.trigger {
            Trigger::Queue { queue, .. } => Some((function, queue)),
            _ => None,
        })
        .collect()
}

/// Every message of `queue` now visible, left visible.
async fn peek(server: &TestServer, queue: &str) -> Vec<ReceivedMessage> {
    server
        .app
        .ports()
        .queue
        .receive(queue, 100, Duration::ZERO)
        .await
        .unwrap_or_else(|error| panic!("{queue}: {error}"))
}

/// Each consumer is handed, on their first receive, a batch mixing poison, transient failures
/// and (where a message can be handled without setting up state) good messages, as Lambda and
/// the local workers hand it: only the transient failures are reported back, and the poison is
/// in the consumer's dead-letter queue with its attributes.
async fn each_consumer_dead_letters_poison_at_once_and_retries_what_may_pass(backend: Backend) {
    let server = TestServer::start_customised(backend, 5, |ports| {
        ports.store = Arc::new(PartlyUnavailable(ports.store.clone()));
    })
    .await;
    let consumers = queue_consumers();
    assert_eq!(consumers.len(), 4, "{consumers:?}");
    for (function, queue) in consumers {
        let Trigger::Queue { handler, .. } = function.trigger else {
            continue;
        };
        let batch = batch_for(queue);
        let event = sqs::event_for(queue, &received(&batch)).expect("build the Lambda SQS event");
        let response = handler(server.app.clone(), event).await;
        let failed: BTreeSet<&str> = response
            .batch_item_failures
            .iter()
            .map(|failure| failure.item_identifier.as_str())
            .collect();
        let retried: BTreeSet<&str> = batch
            .iter()
            .filter(|(_, _, fate)| *fate == Fate::Retried)
            .map(|(id, _, _)| *id)
            .collect();
        assert_eq!(failed, retried, "{}: reported as failed", function.name);

        let dead = peek(&server, &dead_letter_queue(queue)).await;
        let dead_bodies: BTreeSet<&str> = dead.iter().map(|m| m.body.as_str()).collect();
        let poison: BTreeSet<&str> = batch
            .iter()
            .filter(|(_, _, fate)| *fate == Fate::DeadLettered)
            .map(|(_, body, _)| body.as_str())
            .collect();
        assert_eq!(dead_bodies, poison, "{}: dead letters", function.name);
        assert_eq!(dead.len(), poison.len(), "{}: each once", function.name);
        for message in &dead {
            assert_eq!(
                message
                    .attributes
                    .get(trace::TRACEPARENT)
                    .map(String::as_str),
                Some(PARENT),
                "{}: a dead letter keeps its attributes",
                function.name
            );
        }
    }
    server.stop().await;
}

/// Through the local workers, as SQS feeds Lambda: poison sent to each consumer's queue is in
/// that queue's dead-letter queue, and listed by `bazaar dead-letters`, after one receive. The
/// queues here dead-letter only after 1000 receives, so nothing but the consumer put it there;
/// one copy only, so the original was deleted rather than handed out again. The deliveries
/// queue's poison, left to the queue, is not dead-lettered by then.
async fn poison_sent_to_each_queue_is_a_dead_letter_after_one_receive(backend: Backend) {
    let server = TestServer::start_with(backend, 1000).await;
    let ports = server.app.ports().clone();
    let queues: Vec<&str> = bazaar_api::functions::queues()
        .filter(|queue| *queue != DELIVERIES_QUEUE)
        .collect();
    assert_eq!(queues.len(), 3, "{queues:?}");
    let deliveries_poison = "{\"poison for\": deliveries";
    ports
        .queue
        .send(
            DELIVERIES_QUEUE,
            deliveries_poison,
            &trace::attributes(Some(PARENT)),
        )
        .await
        .unwrap_or_else(|error| panic!("{DELIVERIES_QUEUE}: {error}"));
    let poison = |queue: &str| format!("{{\"poison for\": {queue}");
    for queue in &queues {
        ports
            .queue
            .send(queue, &poison(queue), &trace::attributes(Some(PARENT)))
            .await
            .unwrap_or_else(|error| panic!("{queue}: {error}"));
    }
    for queue in &queues {
        let dead_letters = dead_letter_queue(queue);
        eventually(&format!("{queue}'s poison is dead-lettered"), || async {
            !peek(&server, &dead_letters).await.is_empty()
        })
        .await;
    }
    // Long enough for an undeleted original to come back and be dead-lettered again.
    tokio::time::sleep(WORKER_VISIBILITY + Duration::from_secs(1)).await;
    for queue in &queues {
        let dead = peek(&server, &dead_letter_queue(queue)).await;
        let bodies: Vec<&str> = dead.iter().map(|message| message.body.as_str()).collect();
        assert_eq!(bodies, [poison(queue).as_str()], "{queue}");
        assert_eq!(
            dead[0]
                .attributes
                .get(trace::TRACEPARENT)
                .map(String::as_str),
            Some(PARENT),
            "{queue}"
        );
        let listed = bazaar::dead_letters::list(&ports, queue)
            .await
            .unwrap_or_else(|error| panic!("{queue}: {error}"));
        assert!(
            listed.iter().any(|message| message.body == poison(queue)),
            "bazaar dead-letters {queue} lists {listed:?}"
        );
    }
    let dead = peek(&server, &dead_letter_queue(DELIVERIES_QUEUE)).await;
    assert!(dead.is_empty(), "deliveries dead letters: {dead:?}");
    server.stop().await;
}

/// notifications-deliver leaves poison to its queue: through the local workers, as SQS feeds
/// Lambda, it is handed out again until the queue's maximum receives (2 here) and then moved
/// to the dead-letter queue by the queue itself, once, with its attributes.
async fn deliveries_poison_is_dead_lettered_by_the_queue_after_its_max_receives(backend: Backend) {
    let server = TestServer::start_with(backend, 2).await;
    let poison = "{\"poison for\": deliveries";
    server
        .app
        .ports()
        .queue
        .send(DELIVERIES_QUEUE, poison, &trace::attributes(Some(PARENT)))
        .await
        .unwrap_or_else(|error| panic!("{DELIVERIES_QUEUE}: {error}"));
    let dead_letters = dead_letter_queue(DELIVERIES_QUEUE);
    eventually(
        "the deliveries poison is dead-lettered by the queue",
        || async { !peek(&server, &dead_letters).await.is_empty() },
    )
    .await;
    let dead = peek(&server, &dead_letters).await;
    let bodies: Vec<&str> = dead.iter().map(|message| message.body.as_str()).collect();
    assert_eq!(bodies, [poison]);
    assert_eq!(
        dead[0]
            .attributes
            .get(trace::TRACEPARENT)
            .map(String::as_str),
        Some(PARENT)
    );
    server.stop().await;
}

/// A poison message is deleted only once its dead-letter copy is sent: while the dead-letter
/// queue cannot be reached, the message is reported as failed (the queue will hand it out
/// again), and once it can, it is dead-lettered.
async fn poison_is_retried_while_its_dead_letter_queue_cannot_be_reached(backend: Backend) {
    let (server, queue) = server_with_failing_queue(backend).await;
    let Trigger::Queue { handler, .. } = PAYMENTS_PROCESS.trigger else {
        panic!("payments-process is a queue consumer");
    };
    let batch = [("malformed", "not a command".to_owned(), Fate::DeadLettered)];
    let event =
        || sqs::event_for(PAYMENTS_QUEUE, &received(&batch)).expect("build the Lambda SQS event");
    queue.fail(true);
    let response = handler(server.app.clone(), event()).await;
    queue.fail(false);
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["malformed"]);
    assert!(
        peek(&server, &dead_letter_queue(PAYMENTS_QUEUE))
            .await
            .is_empty()
    );

    let response = handler(server.app.clone(), event()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let dead = peek(&server, &dead_letter_queue(PAYMENTS_QUEUE)).await;
    let bodies: Vec<&str> = dead.iter().map(|message| message.body.as_str()).collect();
    assert_eq!(bodies, ["not a command"]);
    server.stop().await;
}
