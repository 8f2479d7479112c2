//! SQS batch handling shared by every consumer: records are decoded and processed one by one,
//! and only the ones that failed are reported back, so one bad message never fails its batch
//! (Lambda's `ReportBatchItemFailures`). A message that failed for a reason that may pass
//! ([`ConsumeError::Retry`]) is redelivered after its visibility timeout and dead-lettered by
//! the queue after its maximum receives; a poison message ([`ConsumeError::Poison`], the rule
//! is in `error`) is sent to the dead-letter queue by the consumer on its first receive, or,
//! for a consumer that leaves it to the queue ([`Poison`]), failed like a retry.

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use bazaar_shared::metrics::{self, Consumed};
use bazaar_shared::ports::{Attributes, Queue, ReceivedMessage};
use serde_json::json;
use tracing::Instrument;

use crate::App;
use crate::consumers::dead_letter;
use crate::consumers::error::ConsumeError;
use crate::consumers::message::{self, Body, Message};
use crate::telemetry;

/// What a consumer does with a poison message. Chosen by each consumer module and stated in
/// its catalogue entry (`functions::Trigger::Queue`), so that it is the same locally and on
/// Lambda, where only a function that declares the queue port can send to a dead-letter queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poison {
    /// Sent to the queue's dead-letter queue on its first receive (`dead_letter`).
    DeadLetterAtOnce,
    /// Reported as failed, as a retry is: the queue's redrive policy dead-letters it after its
    /// maximum receives. For a consumer that must not link the queue client.
    LeaveToTheQueue,
}

/// The queue a consumer reads, how often that queue hands a message out before it
/// dead-letters it, what becomes of poison, and the queue port that dead-letters it at once.
#[derive(Clone)]
pub struct Consumer {
    pub queue: &'static str,
    pub max_receives: u32,
    pub poison: Poison,
    pub queues: Arc<dyn Queue>,
}

impl Consumer {
    /// The consumer of `queue` over the app's queue port.
    pub fn new(app: &App, queue: &'static str, poison: Poison) -> Self {
        Self {
            queue,
            max_receives: app.max_receives(),
            poison,
            queues: app.ports().queue.clone(),
        }
    }
}

/// Decodes every record as a `T` and runs `process` on it, collecting the failures. Each
/// record's log lines carry its queue, message id, receive count and (once decoded) the
/// correlation id of its body; each is counted in `queue_messages_total` with its outcome,
/// and its age (from SQS's sent timestamp) in `queue_message_age_seconds`.
pub async fn for_each_message<T, F, Fut>(
    consumer: &Consumer,
    event: SqsEvent,
    mut process: F,
) -> SqsBatchResponse
where
    T: Body,
    F: FnMut(Message<T>) -> Fut,
    Fut: Future<Output = Result<(), ConsumeError>>,
{
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        let receive_count = attribute(&record, "ApproximateReceiveCount").unwrap_or(1);
        let age = attribute(&record, "SentTimestamp").and_then(age_seconds);
        let span = message_span(consumer, &message_id, receive_count);
        telemetry::traces::continue_from(&span, trace_parent(&record));
        let attributes = string_attributes(&record);
        let body = record.body.unwrap_or_default();
        let handled = async {
            let decoded: T = message::decode(&body)?;
            if let Some(id) = message::loggable_correlation_id(&decoded) {
                tracing::Span::current().record("correlation_id", id);
            }
            process(Message {
                body: decoded,
                id: message_id.clone(),
                receive_count,
                attributes: attributes.clone(),
            })
            .await
        }
        .instrument(span.clone())
        .await;
        let last = receive_count >= consumer.max_receives;
        let consumed = match settle(consumer, &span, handled, &body, &attributes, last).await {
            Settled::Done(consumed) => consumed,
            Settled::Failed => report_failure(&mut response, message_id, last),
        };
        metrics::queue_message(consumer.queue, age, consumed);
    }
    response
}

/// The span of one record: its queue, message id and receive count, and (once its body is
/// decoded) the correlation id of the request that caused it.
fn message_span(consumer: &Consumer, message_id: &str, receive_count: u32) -> tracing::Span {
    tracing::info_span!(
        "message",
        queue = consumer.queue,
        message_id = %message_id,
        receive_count,
        correlation_id = tracing::field::Empty,
        otel.name = consumer.queue,
        otel.kind = "consumer",
    )
}

/// What became of a record: settled here (handled, or dead-lettered at once), or to be
/// reported as failed so that the queue hands it out again.
enum Settled {
    Done(Consumed),
    Failed,
}

/// Settles a record by how its handling ended; poison goes where the consumer's [`Poison`]
/// says. Logged with the span's ids and the reason only: the body may hold personal data.
async fn settle(
    consumer: &Consumer,
    span: &tracing::Span,
    handled: Result<(), ConsumeError>,
    body: &str,
    attributes: &Attributes,
    last: bool,
) -> Settled {
    match handled {
        Ok(()) => Settled::Done(Consumed::Ok),
        Err(ConsumeError::Poison(reason)) if consumer.poison == Poison::LeaveToTheQueue => {
            span.in_scope(|| {
                tracing::error!(
                    %reason,
                    last_receive = last,
                    "poison message; it is left to the queue's redrive policy"
                );
            });
            Settled::Failed
        }
        Err(ConsumeError::Poison(reason)) => {
            let sent = dead_letter::send(consumer, body, attributes, &reason)
                .instrument(span.clone())
                .await;
            if sent {
                Settled::Done(Consumed::DeadLettered)
            } else {
                Settled::Failed
            }
        }
        Err(ConsumeError::Retry(reason)) => {
            span.in_scope(|| {
                if last {
                    tracing::error!(%reason, "message failed on its last receive; it goes to the dead-letter queue");
                } else {
                    tracing::warn!(%reason, "message failed; it will be retried");
                }
            });
            Settled::Failed
        }
    }
}

/// Reports the message as failed: the queue hands it out again, or after its last receive
/// moves it to the dead-letter queue.
fn report_failure(response: &mut SqsBatchResponse, message_id: String, last: bool) -> Consumed {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = message_id;
    response.batch_item_failures.push(failure);
    if last {
        Consumed::DeadLettered
    } else {
        Consumed::Retried
    }
}

/// The record's string message attributes, as they were sent.
fn string_attributes(record: &SqsMessage) -> Attributes {
    record
        .message_attributes
        .iter()
        .filter_map(|(name, attribute)| Some((name.clone(), attribute.string_value.clone()?)))
        .collect()
}

/// The trace context the message was sent with (a `String` message attribute).
fn trace_parent(record: &SqsMessage) -> Option<&str> {
    record
        .message_attributes
        .get(bazaar_shared::trace::TRACEPARENT)?
        .string_value
        .as_deref()
}

/// A numeric SQS system attribute of the record.
fn attribute<T: std::str::FromStr>(record: &SqsMessage, name: &str) -> Option<T> {
    record.attributes.get(name)?.parse().ok()
}

/// Seconds since `sent_millis` (SQS's `SentTimestamp`); never negative, whatever the clocks.
fn age_seconds(sent_millis: u64) -> Option<f64> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis();
    let age = now.saturating_sub(u128::from(sent_millis));
    Some(age as f64 / 1000.0)
}

/// The event Lambda would deliver for these messages, so that the local server feeds its
/// consumers the very same payload as SQS does in AWS.
pub fn event_for(queue: &str, messages: &[ReceivedMessage]) -> Result<SqsEvent, serde_json::Error> {
    let records: Vec<_> = messages
        .iter()
        .map(|message| {
            json!({
                "messageId": message.message_id,
                "receiptHandle": message.receipt_handle,
                "body": message.body,
                "attributes": {
                    "ApproximateReceiveCount": message.receive_count.to_string(),
                    "SentTimestamp": message.sent_at_millis.to_string(),
                },
                "messageAttributes": message_attributes(&message.attributes),
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:local:000000000000:{queue}"),
                "awsRegion": "local",
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records }))
}

/// Message attributes as Lambda's SQS event shows them.
fn message_attributes(attributes: &Attributes) -> serde_json::Value {
    attributes
        .iter()
        .map(|(name, value)| {
            let attribute = json!({ "stringValue": value, "dataType": "String" });
            (name.clone(), attribute)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;
    use bazaar_shared::events::Event;
    use bazaar_shared::ports::QueueError;

    use super::*;
    use crate::consumers::error::Reason;

    /// Records what is sent; refuses every send when `down`.
    #[derive(Default)]
    struct SentQueue {
        sent: Mutex<Vec<(String, String, Attributes)>>,
        down: bool,
    }

    #[async_trait]
    impl Queue for SentQueue {
        async fn send(
            &self,
            queue: &str,
            body: &str,
            attributes: &Attributes,
        ) -> Result<String, QueueError> {
            if self.down {
                return Err(QueueError::Unavailable("down".to_owned()));
            }
            let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
            sent.push((queue.to_owned(), body.to_owned(), attributes.clone()));
            Ok(format!("dead-{}", sent.len()))
        }

        async fn receive(
            &self,
            _: &str,
            _: usize,
            _: Duration,
        ) -> Result<Vec<ReceivedMessage>, QueueError> {
            Ok(Vec::new())
        }

        async fn delete(&self, _: &str, _: &str) -> Result<(), QueueError> {
            Ok(())
        }
    }

    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    fn batch(bodies: &[&str]) -> SqsEvent {
        let messages: Vec<ReceivedMessage> = bodies
            .iter()
            .enumerate()
            .map(|(index, body)| ReceivedMessage {
                message_id: format!("m{index}"),
                receipt_handle: format!("r{index}"),
                body: (*body).to_owned(),
                receive_count: 1,
                sent_at_millis: 0,
                attributes: bazaar_shared::trace::attributes(Some(PARENT)),
            })
            .collect();
        event_for("invoices", &messages).expect("an SQS event")
    }

    fn event(id: &str) -> String {
        format!(
            r#"{{"id":"{id}","type":"ORDER_CREATED","occurred_at":"2026-01-01T00:00:00Z","correlation_id":"req","data":{{}}}}"#
        )
    }

    /// Runs a consumer that succeeds on event "ok", finds nothing for "gone" (poison) and
    /// meets a busy store for "busy" (transient).
    async fn consume(queues: Arc<SentQueue>, poison: Poison, event: SqsEvent) -> Vec<String> {
        let consumer = Consumer {
            queue: "invoices",
            max_receives: 5,
            poison,
            queues,
        };
        let response = for_each_message(&consumer, event, |message: Message<Event>| async move {
            assert_eq!(message.receive_count, 1);
            assert_eq!(
                message
                    .attributes
                    .get(bazaar_shared::trace::TRACEPARENT)
                    .map(String::as_str),
                Some(PARENT)
            );
            match message.body.id.as_str() {
                "gone" => Err(bazaar_shared::Error::NotFound("order").into()),
                "busy" => Err(ConsumeError::Retry(Reason::Incomplete("the store is busy"))),
                _ => Ok(()),
            }
        })
        .await;
        response
            .batch_item_failures
            .into_iter()
            .map(|failure| failure.item_identifier)
            .collect()
    }

    #[tokio::test]
    async fn poison_goes_to_the_dead_letter_queue_at_once_and_the_batch_goes_on() {
        let queues = Arc::new(SentQueue::default());
        let bodies = [
            event("ok").to_owned(),
            "{not json".to_owned(),
            event("gone"),
            event("busy"),
            event("ok"),
        ];
        let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
        let failed = consume(queues.clone(), Poison::DeadLetterAtOnce, batch(&bodies)).await;
        assert_eq!(failed, ["m3"], "only the transient failure is retried");
        let sent = queues
            .sent
            .lock()
            .map(|sent| sent.clone())
            .unwrap_or_default();
        let dead: Vec<(&str, &str)> = sent
            .iter()
            .map(|(queue, body, _)| (queue.as_str(), body.as_str()))
            .collect();
        assert_eq!(
            dead,
            [("invoices-dlq", "{not json"), ("invoices-dlq", bodies[2])]
        );
        assert!(
            sent.iter().all(|(_, _, attributes)| attributes
                .get(bazaar_shared::trace::TRACEPARENT)
                .map(String::as_str)
                == Some(PARENT)),
            "dead letters keep their attributes: {sent:?}"
        );
    }

    #[tokio::test]
    async fn poison_that_cannot_be_dead_lettered_is_retried() {
        let queues = Arc::new(SentQueue {
            down: true,
            ..SentQueue::default()
        });
        let failed = consume(
            queues,
            Poison::DeadLetterAtOnce,
            batch(&["{not json", &event("ok")]),
        )
        .await;
        assert_eq!(failed, ["m0"]);
    }

    #[tokio::test]
    async fn poison_left_to_the_queue_is_reported_failed_and_never_sent() {
        let queues = Arc::new(SentQueue::default());
        let bodies = [
            "{not json".to_owned(),
            event("gone"),
            event("busy"),
            event("ok"),
        ];
        let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
        let failed = consume(queues.clone(), Poison::LeaveToTheQueue, batch(&bodies)).await;
        assert_eq!(failed, ["m0", "m1", "m2"]);
        let sent = queues
            .sent
            .lock()
            .map(|sent| sent.len())
            .unwrap_or(usize::MAX);
        assert_eq!(sent, 0, "nothing is sent to a dead-letter queue");
    }

    #[test]
    fn the_local_event_carries_the_message_attributes_as_lambda_does() {
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let message = |attributes: Attributes| ReceivedMessage {
            message_id: "m1".to_owned(),
            receipt_handle: "r1".to_owned(),
            body: "{}".to_owned(),
            receive_count: 1,
            sent_at_millis: 0,
            attributes,
        };
        let traced = message(bazaar_shared::trace::attributes(Some(parent)));
        let event = event_for("payments", &[traced]).expect("an SQS event");
        assert_eq!(trace_parent(&event.records[0]), Some(parent));
        let bare = event_for("payments", &[message(Attributes::new())]).expect("an SQS event");
        assert_eq!(trace_parent(&bare.records[0]), None);
    }
}
