//! SQS batch handling shared by every consumer: records are processed one by one, and only the
//! ones that failed are reported back, so one bad message never fails its batch (Lambda's
//! `ReportBatchItemFailures`). A failed message is redelivered after its visibility timeout
//! and dead-lettered after the queue's maximum receives.

use std::future::Future;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use bazaar_shared::ports::ReceivedMessage;
use serde_json::json;

/// Runs `process` on every record, collecting the failures.
pub async fn for_each_record<F, Fut>(event: SqsEvent, mut process: F) -> SqsBatchResponse
where
    F: FnMut(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        if let Err(reason) = process(record).await {
            tracing::warn!(%message_id, %reason, "message failed; it will be retried");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    response
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
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:local:000000000000:{queue}"),
                "awsRegion": "local",
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records }))
}
