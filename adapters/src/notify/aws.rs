//! E-mail through Amazon SES (v2 API) and SMS and push through Amazon SNS.

use async_trait::async_trait;

use crate::aws::lazy::LazyClient;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use bazaar_shared::ports::notifier::{Channel, Notifier, Outgoing, SendError};

pub struct SesEmail {
    client: LazyClient<aws_sdk_sesv2::Client>,
    from: String,
}

impl SesEmail {
    pub fn new(sdk: &aws_config::SdkConfig, from: String) -> Self {
        Self {
            client: LazyClient::new(sdk, aws_sdk_sesv2::Client::new),
            from,
        }
    }
}

fn content(text: &str) -> Result<Content, SendError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|error| SendError::Permanent(error.to_string()))
}

/// SDK errors (SES and SNS share the type): throttling, service faults and transport
/// failures pass; the rest (bad address, unverified sender, opted-out number) do not.
fn classify<E: std::fmt::Debug>(error: aws_sdk_sesv2::error::SdkError<E>) -> SendError {
    use aws_sdk_sesv2::error::SdkError;
    let text = format!("{error:?}");
    match &error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            if status >= 500 || status == 429 || text.contains("Throttl") {
                SendError::Transient(text)
            } else {
                SendError::Permanent(text)
            }
        }
        _ => SendError::Transient(text),
    }
}

#[async_trait]
impl Notifier for SesEmail {
    async fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        let email = Message::builder()
            .subject(content(&message.subject)?)
            .body(Body::builder().text(content(&message.text)?).build())
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&message.target).build())
            .content(EmailContent::builder().simple(email).build())
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

pub struct SnsMessages {
    client: LazyClient<aws_sdk_sns::Client>,
}

impl SnsMessages {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: LazyClient::new(sdk, aws_sdk_sns::Client::new),
        }
    }
}

#[async_trait]
impl Notifier for SnsMessages {
    async fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        let request = self.client.publish().message(&message.text);
        let request = match message.channel {
            Channel::Sms => request.phone_number(&message.target),
            _ => request
                .target_arn(&message.target)
                .subject(&message.subject),
        };
        request.send().await.map(|_| ()).map_err(classify)
    }
}
