//! SQS batch handling shared by every consumer: records are processed one by one, and only the
//! ones that failed are reported back, so one bad message never fails its batch (Lambda's
//! `ReportBatchItemFailures`). A failed message is redelivered after its visibility timeout
//! and dead-lettered after the queue's maximum receives.

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use bazaar_shared::metrics::{self, Consumed};
use bazaar_shared::ports::{Attributes, ReceivedMessage};
use serde_json::json;
use tracing::Instrument;

use crate::telemetry;

/// The queue a consumer reads, and how often that queue hands a message out before it
/// dead-letters it.
#[derive(Clone, Copy, Debug)]
pub struct Consumer {
    pub queue: &'static str,
    pub max_receives: u32,
}

/// Runs `process` on every record, collecting the failures. Each record's log lines carry
/// its queue, message id and receive count; each is counted in `queue_messages_total` with
/// its outcome, and its age (from SQS's sent timestamp) in `queue_message_age_seconds`.
pub async fn for_each_record<F, Fut>(
    consumer: Consumer,
    event: SqsEvent,
    mut process: F,
) -> SqsBatchResponse
where
    F: FnMut(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        let receive_count = attribute(&record, "ApproximateReceiveCount").unwrap_or(1);
        let age = attribute(&record, "SentTimestamp").and_then(age_seconds);
        let correlation_id = record
            .body
            .as_deref()
            .and_then(correlation_of)
            .unwrap_or_default();
        let span = tracing::info_span!(
            "message",
            queue = consumer.queue,
            message_id = %message_id,
            receive_count,
            correlation_id = %correlation_id,
            otel.name = consumer.queue,
            otel.kind = "consumer",
        );
        telemetry::traces::continue_from(&span, trace_parent(&record));
        let outcome = process(record).instrument(span.clone()).await;
        let consumed = match outcome {
            Ok(()) => Consumed::Ok,
            Err(reason) => {
                let last = receive_count >= consumer.max_receives;
                span.in_scope(|| {
                    if last {
                        tracing::error!(%reason, "message failed on its last receive; it goes to the dead-letter queue");
                    } else {
                        tracing::warn!(%reason, "message failed; it will be retried");
                    }
                });
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = message_id;
                response.batch_item_failures.push(failure);
                if last {
                    Consumed::DeadLettered
                } else {
                    Consumed::Retried
                }
            }
        };
        metrics::queue_message(consumer.queue, age, consumed);
    }
    response
}

/// The `correlation_id` every event and command carries at its top level (an admin's message
/// inside its `message`): the id of the request that caused it.
fn correlation_of(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let id = value
        .get("correlation_id")
        .or_else(|| value.get("message")?.get("correlation_id"))?
        .as_str()?;
    // Only what a request id can be (see the middleware): a body cannot fill the logs.
    let printable = id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic());
    printable.then(|| id.to_owned())
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
    use super::*;

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

    #[test]
    fn the_correlation_id_is_read_from_events_commands_and_admin_messages() {
        let event = r#"{"id":"e1","type":"ORDER_PLACED","correlation_id":"req-1","data":{}}"#;
        assert_eq!(correlation_of(event).as_deref(), Some("req-1"));
        let command =
            r#"{"kind":"charge","order_id":"o","payment_id":"p","correlation_id":"req-2"}"#;
        assert_eq!(correlation_of(command).as_deref(), Some("req-2"));
        let admin = r#"{"kind":"admin_message","message":{"id":"m","correlation_id":"req-3"}}"#;
        assert_eq!(correlation_of(admin).as_deref(), Some("req-3"));
        assert_eq!(correlation_of(r#"{"kind":"charge"}"#), None);
        assert_eq!(correlation_of("not json"), None);
        let flooding = format!(r#"{{"correlation_id":"{}"}}"#, "x".repeat(500));
        assert_eq!(correlation_of(&flooding), None);
        assert_eq!(correlation_of(r#"{"correlation_id":"a b"}"#), None);
    }
}
