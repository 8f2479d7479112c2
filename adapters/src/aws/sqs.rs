//! The queue port on SQS. Logical queue names map to queue URLs, given up front (from the
//! deployment's environment) or looked up once by name and cached.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};
use bazaar_shared::ports::{Attributes, Queue, QueueError, ReceivedMessage};

use super::lazy::LazyClient;

/// SQS's limit on the messages one ReceiveMessage call returns.
const MAX_PER_RECEIVE: usize = 10;
/// SQS's limit on a visibility timeout: 12 hours.
const MAX_VISIBILITY_SECS: u64 = 43_200;

/// A [`Queue`] backed by SQS.
#[derive(Debug)]
pub struct SqsQueue {
    client: LazyClient<Client>,
    name_prefix: String,
    /// Known queue URLs by logical name: those configured, plus those looked up since.
    urls: Mutex<HashMap<String, String>>,
}

impl SqsQueue {
    /// `urls` maps logical queue names (e.g. "notifications", "notifications-dlq") to queue URLs; a name not in the map is
    /// resolved once with GetQueueUrl of `format!("{name_prefix}{name}")` and cached.
    pub fn new(
        config: &aws_config::SdkConfig,
        urls: HashMap<String, String>,
        name_prefix: impl Into<String>,
    ) -> Self {
        Self {
            client: LazyClient::new(config, Client::new),
            name_prefix: name_prefix.into(),
            urls: Mutex::new(urls),
        }
    }

    /// The URL of a logical queue, looked up (and remembered) when not known yet.
    async fn url(&self, queue: &str) -> Result<String, QueueError> {
        if let Some(url) = self.cached_url(queue) {
            return Ok(url);
        }
        let output = self
            .client
            .get_queue_url()
            .queue_name(format!("{}{queue}", self.name_prefix))
            .send()
            .await
            .map_err(|error| queue_error(queue, error))?;
        let url = output
            .queue_url()
            .ok_or_else(|| QueueError::Unavailable(format!("no URL returned for queue {queue}")))?
            .to_owned();
        self.lock_urls().insert(queue.to_owned(), url.clone());
        Ok(url)
    }

    fn cached_url(&self, queue: &str) -> Option<String> {
        self.lock_urls().get(queue).cloned()
    }

    /// The map is only ever inserted into, so a panic elsewhere cannot leave it inconsistent.
    fn lock_urls(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.urls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One ReceiveMessage call for at most [`MAX_PER_RECEIVE`] messages.
    async fn receive_batch(
        &self,
        queue: &str,
        url: &str,
        max: usize,
        visibility_secs: i32,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from(max).unwrap_or(10))
            .visibility_timeout(visibility_secs)
            // Short polling: callers (the queue workers, tests) decide how long to wait.
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|error| queue_error(queue, error))?;
        output.messages().iter().map(received).collect()
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(
        &self,
        queue: &str,
        body: &str,
        attributes: &Attributes,
    ) -> Result<String, QueueError> {
        let url = self.url(queue).await?;
        let mut request = self.client.send_message().queue_url(url).message_body(body);
        for (name, value) in attributes {
            request = request.message_attributes(name, string_attribute(value)?);
        }
        let output = request
            .send()
            .await
            .map_err(|error| queue_error(queue, error))?;
        output
            .message_id()
            .map(str::to_owned)
            .ok_or_else(|| QueueError::Unavailable("SQS returned no message id".to_owned()))
    }

    /// Receives up to `max` messages. SQS hands out at most 10 per call, so a larger `max`
    /// takes several calls, stopping early once a call comes back short (the queue is, as far
    /// as short polling can tell, drained).
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let url = self.url(queue).await?;
        let visibility_secs = visibility_secs(visibility);
        let mut messages = Vec::new();
        while messages.len() < max {
            let wanted = (max - messages.len()).min(MAX_PER_RECEIVE);
            let batch = self
                .receive_batch(queue, &url, wanted, visibility_secs)
                .await?;
            let short = batch.len() < wanted;
            messages.extend(batch);
            if short {
                break;
            }
        }
        Ok(messages)
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), QueueError> {
        let url = self.url(queue).await?;
        let result = self
            .client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt_handle)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // The port ignores stale handles, as SQS itself mostly does.
            Err(error) if is_invalid_receipt(&error) => Ok(()),
            Err(error) => Err(queue_error(queue, error)),
        }
    }
}

/// Whole seconds for SQS, rounded up (a sub-second timeout must still hide the message) and
/// capped at SQS's maximum.
fn visibility_secs(visibility: Duration) -> i32 {
    let secs = visibility.as_secs() + u64::from(visibility.subsec_nanos() > 0);
    // The cap keeps the value far below i32::MAX.
    i32::try_from(secs.min(MAX_VISIBILITY_SECS)).unwrap_or(i32::MAX)
}

/// Error codes are compared as text: with SQS's query-compatible errors the SDK reports some
/// codes in their legacy form, which its typed error variants do not recognise.
fn is_invalid_receipt<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    matches!(
        error.code(),
        Some("ReceiptHandleIsInvalid" | "InvalidIdFormat")
    )
}

/// Converts an SQS message, whose system attributes we asked for.
fn received(message: &Message) -> Result<ReceivedMessage, QueueError> {
    let attribute = |name: MessageSystemAttributeName| {
        message
            .attributes()
            .and_then(|attributes| attributes.get(&name))
            .map(String::as_str)
    };
    let missing = |what: &str| QueueError::Unavailable(format!("SQS message without {what}"));
    Ok(ReceivedMessage {
        message_id: message
            .message_id()
            .ok_or_else(|| missing("an id"))?
            .to_owned(),
        receipt_handle: message
            .receipt_handle()
            .ok_or_else(|| missing("a receipt handle"))?
            .to_owned(),
        body: message.body().unwrap_or_default().to_owned(),
        receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|count| count.parse().ok())
            .ok_or_else(|| missing("ApproximateReceiveCount"))?,
        sent_at_millis: attribute(MessageSystemAttributeName::SentTimestamp)
            .and_then(|millis| millis.parse().ok())
            .ok_or_else(|| missing("SentTimestamp"))?,
        attributes: message
            .message_attributes()
            .into_iter()
            .flatten()
            .filter_map(|(name, value)| Some((name.clone(), value.string_value()?.to_owned())))
            .collect(),
    })
}

/// A message attribute of SQS's `String` type.
fn string_attribute(value: &str) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|error| QueueError::Unavailable(error.to_string()))
}

/// Maps an SQS error: a missing queue is the port's `UnknownQueue` (reported as
/// `QueueDoesNotExist`, or `AWS.SimpleQueueService.NonExistentQueue` in the legacy form),
/// anything else is `Unavailable` with the service's error code in the message.
fn queue_error<E, R>(queue: &str, error: SdkError<E, R>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let missing = error
        .code()
        .is_some_and(|code| code == "QueueDoesNotExist" || code.ends_with("NonExistentQueue"));
    if missing {
        QueueError::UnknownQueue(queue.to_owned())
    } else {
        QueueError::Unavailable(DisplayErrorContext(&error).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_rounds_up_and_is_capped() {
        assert_eq!(visibility_secs(Duration::ZERO), 0);
        assert_eq!(visibility_secs(Duration::from_millis(1)), 1);
        assert_eq!(visibility_secs(Duration::from_secs(30)), 30);
        assert_eq!(visibility_secs(Duration::from_secs(86_400)), 43_200);
    }

    /// The adapter against moto's SQS, with queues made by [`crate::aws::provision`].
    mod against_moto {
        use super::*;
        use crate::aws::moto::Moto;
        use crate::aws::provision;
        use aws_sdk_sqs::types::QueueAttributeName;

        const WAIT: Duration = Duration::from_secs(30);

        #[tokio::test]
        async fn queue_semantics_hold_on_moto() {
            let moto = Moto::start();
            let config = moto.config().await;
            let (url, dlq_url) = provision::create_queue(&config, "test-", "notifications", 3, 20)
                .await
                .expect("create queue");
            let again = provision::create_queue(&config, "test-", "notifications", 2, 30).await;
            assert_eq!(again, Ok((url.clone(), dlq_url.clone())), "idempotent");
            redrive_policy_points_at_the_dlq(&config, &url, &dlq_url, 2, 30).await;

            let queue = SqsQueue::new(&config, HashMap::new(), "test-");
            send_receive_delete(&queue).await;
            redelivery_counts_and_dead_letters(&queue).await;
            receives_more_than_ten(&queue).await;
            names_resolve_through_the_map(&config, &url).await;
        }

        async fn redrive_policy_points_at_the_dlq(
            config: &aws_config::SdkConfig,
            url: &str,
            dlq_url: &str,
            max: u32,
            visibility: u32,
        ) {
            let client = Client::new(config);
            let attributes = |url: &str| {
                client
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(QueueAttributeName::All)
                    .send()
            };
            let main = attributes(url).await.expect("attributes");
            let main = main.attributes().expect("some attributes");
            let policy: serde_json::Value =
                serde_json::from_str(&main[&QueueAttributeName::RedrivePolicy])
                    .expect("json policy");
            let dlq = attributes(dlq_url).await.expect("dlq attributes");
            let dlq_arn =
                &dlq.attributes().expect("some attributes")[&QueueAttributeName::QueueArn];
            assert_eq!(policy["deadLetterTargetArn"], serde_json::json!(dlq_arn));
            assert_eq!(
                policy["maxReceiveCount"].to_string().trim_matches('"'),
                max.to_string()
            );
            assert_eq!(
                main[&QueueAttributeName::VisibilityTimeout],
                visibility.to_string()
            );
        }

        async fn send_receive_delete(queue: &SqsQueue) {
            let before = chrono::Utc::now().timestamp_millis();
            let attributes =
                Attributes::from([("traceparent".to_owned(), "00-ab-cd-01".to_owned())]);
            let id = queue
                .send("notifications", "hello", &attributes)
                .await
                .expect("send");
            let received = queue
                .receive("notifications", 10, WAIT)
                .await
                .expect("receive");
            assert_eq!(received.len(), 1);
            let message = &received[0];
            assert_eq!(
                (message.message_id.as_str(), message.body.as_str()),
                (id.as_str(), "hello")
            );
            assert_eq!(message.receive_count, 1);
            assert_eq!(
                message.attributes, attributes,
                "attributes travel with the message"
            );
            assert!((before - 1_000..=before + 60_000).contains(&message.sent_at_millis));
            assert_eq!(
                queue.receive("notifications", 10, WAIT).await,
                Ok(vec![]),
                "invisible"
            );
            queue
                .delete("notifications", &message.receipt_handle)
                .await
                .expect("delete");
            queue
                .delete("notifications", &message.receipt_handle)
                .await
                .expect("delete twice");
            queue
                .delete("notifications", "garbage")
                .await
                .expect("an invalid handle is ignored");
            assert_eq!(queue.receive("notifications", 0, WAIT).await, Ok(vec![]));
        }

        async fn redelivery_counts_and_dead_letters(queue: &SqsQueue) {
            let short = Duration::from_secs(1);
            queue
                .send("notifications", "retry me", &Attributes::new())
                .await
                .expect("send");
            for expected in 1..=2 {
                let received = queue
                    .receive("notifications", 1, short)
                    .await
                    .expect("receive");
                assert_eq!(received.len(), 1, "delivery {expected}");
                assert_eq!(received[0].receive_count, expected);
                tokio::time::sleep(Duration::from_millis(1_500)).await;
            }
            // Received twice (maxReceiveCount) without a delete: the next receive moves it.
            assert_eq!(queue.receive("notifications", 10, short).await, Ok(vec![]));
            let dead = queue
                .receive("notifications-dlq", 10, WAIT)
                .await
                .expect("dlq receive");
            assert_eq!(dead.len(), 1);
            assert_eq!(dead[0].body, "retry me");
            queue
                .delete("notifications-dlq", &dead[0].receipt_handle)
                .await
                .expect("delete");
        }

        async fn receives_more_than_ten(queue: &SqsQueue) {
            for n in 0..15 {
                queue
                    .send("notifications", &n.to_string(), &Attributes::new())
                    .await
                    .expect("send");
            }
            let mut received = Vec::new();
            for _ in 0..5 {
                let wanted = 15 - received.len();
                received.extend(
                    queue
                        .receive("notifications", wanted, WAIT)
                        .await
                        .expect("receive"),
                );
                if received.len() == 15 {
                    break;
                }
            }
            let mut bodies: Vec<u32> = received
                .iter()
                .filter_map(|m| m.body.parse().ok())
                .collect();
            bodies.sort_unstable();
            assert_eq!(bodies, (0..15).collect::<Vec<_>>());
        }

        async fn names_resolve_through_the_map(config: &aws_config::SdkConfig, url: &str) {
            let urls = HashMap::from([("custom".to_owned(), url.to_owned())]);
            let queue = SqsQueue::new(config, urls, "nothing-");
            queue
                .send("custom", "mapped", &Attributes::new())
                .await
                .expect("send through the map");
            assert_eq!(
                queue.send("notifications", "x", &Attributes::new()).await,
                Err(QueueError::UnknownQueue("notifications".to_owned()))
            );
        }
    }
}
