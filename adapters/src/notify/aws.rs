//! E-mail through Amazon SES (v2 `SendEmail`) and SMS and push through Amazon SNS (`Publish`),
//! each one signed HTTPS request ([`crate::aws::signed`]) rather than a call through the
//! service's SDK client, whose code the delivery Lambda would carry for one operation.

use async_trait::async_trait;
use serde_json::json;

use crate::aws::signed::{Reply, ServiceEndpoint};
use bazaar_shared::ports::notifier::{Channel, Notifier, Outgoing, SendError};

/// The SNS API version the `Publish` form names.
const SNS_VERSION: &str = "2010-03-31";

pub struct SesEmail {
    endpoint: ServiceEndpoint,
    from: String,
}

impl SesEmail {
    pub fn new(sdk: &aws_config::SdkConfig, from: String) -> Self {
        Self {
            endpoint: ServiceEndpoint::new(sdk, "ses", "email"),
            from,
        }
    }
}

/// The `SendEmail` body of a plain-text message.
fn send_email_body(from: &str, message: &Outgoing) -> Vec<u8> {
    let content = |text: &str| json!({"Data": text, "Charset": "UTF-8"});
    json!({
        "FromEmailAddress": from,
        "Destination": {"ToAddresses": [message.target]},
        "Content": {"Simple": {
            "Subject": content(&message.subject),
            "Body": {"Text": content(&message.text)},
        }},
    })
    .to_string()
    .into_bytes()
}

/// What a service's answer means for the send: throttling, service faults and transport
/// failures pass; the rest (bad address, unverified sender, opted-out number) do not.
fn outcome(service: &str, reply: Result<Reply, String>) -> Result<(), SendError> {
    let reply = reply.map_err(SendError::Transient)?;
    if (200..300).contains(&reply.status) {
        return Ok(());
    }
    let text = format!(
        "{service} answered {}: {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    if reply.is_transient() {
        Err(SendError::Transient(text))
    } else {
        Err(SendError::Permanent(text))
    }
}

#[async_trait]
impl Notifier for SesEmail {
    async fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        let body = send_email_body(&self.from, message);
        let headers = [("content-type", "application/json")];
        let reply = self
            .endpoint
            .call("POST", "/v2/email/outbound-emails", &headers, &body)
            .await;
        outcome("SES", reply)
    }
}

pub struct SnsMessages {
    endpoint: ServiceEndpoint,
}

impl SnsMessages {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            endpoint: ServiceEndpoint::new(sdk, "sns", "sns"),
        }
    }
}

/// The `Publish` form: an SMS to a phone number, or a push to a platform endpoint's ARN.
fn publish_form(message: &Outgoing) -> Vec<u8> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("Action", "Publish")
        .append_pair("Version", SNS_VERSION)
        .append_pair("Message", &message.text);
    match message.channel {
        Channel::Sms => form.append_pair("PhoneNumber", &message.target),
        _ => form
            .append_pair("TargetArn", &message.target)
            .append_pair("Subject", &message.subject),
    };
    form.finish().into_bytes()
}

#[async_trait]
impl Notifier for SnsMessages {
    async fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        let body = publish_form(message);
        let headers = [(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )];
        let reply = self.endpoint.call("POST", "/", &headers, &body).await;
        outcome("SNS", reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(channel: Channel, target: &str) -> Outgoing {
        Outgoing {
            channel,
            target: target.to_owned(),
            subject: "Order confirmation 01J".to_owned(),
            text: "Hi Sara & co, 19.99 USD = ٪".to_owned(),
            delivery_id: "01J-inbox".to_owned(),
            event_type: "ORDER_CREATED".to_owned(),
            payload: String::new(),
            signing_secret: None,
        }
    }

    #[test]
    fn an_email_is_one_plain_text_send_email() {
        let body = send_email_body(
            "Shop <no-reply@shop.example>",
            &outgoing(Channel::Email, "a@b.example"),
        );
        let sent: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(sent["FromEmailAddress"], "Shop <no-reply@shop.example>");
        assert_eq!(sent["Destination"]["ToAddresses"], json!(["a@b.example"]));
        let simple = &sent["Content"]["Simple"];
        assert_eq!(simple["Subject"]["Data"], "Order confirmation 01J");
        assert_eq!(
            simple["Body"]["Text"]["Data"],
            "Hi Sara & co, 19.99 USD = ٪"
        );
        assert_eq!(simple["Body"]["Text"]["Charset"], "UTF-8");
    }

    #[test]
    fn an_sms_goes_to_its_number_and_a_push_to_its_endpoint() {
        let form = |channel, target| {
            let body = publish_form(&outgoing(channel, target));
            url::form_urlencoded::parse(&body)
                .into_owned()
                .collect::<Vec<(String, String)>>()
        };
        let sms = form(Channel::Sms, "+14155550123");
        assert!(sms.contains(&("PhoneNumber".into(), "+14155550123".into())));
        assert!(sms.contains(&("Message".into(), "Hi Sara & co, 19.99 USD = ٪".into())));
        assert!(sms.contains(&("Action".into(), "Publish".into())));
        assert!(
            !sms.iter()
                .any(|(name, _)| name == "Subject" || name == "TargetArn")
        );
        let push = form(Channel::Push, "arn:aws:sns:us-east-1:1:endpoint/GCM/app/x");
        assert!(push.contains(&(
            "TargetArn".into(),
            "arn:aws:sns:us-east-1:1:endpoint/GCM/app/x".into()
        )));
        assert!(push.contains(&("Subject".into(), "Order confirmation 01J".into())));
        assert!(!push.iter().any(|(name, _)| name == "PhoneNumber"));
    }

    #[test]
    fn refusals_are_permanent_and_throttling_is_not() {
        let reply = |status: u16, body: &str| {
            Ok(Reply {
                status,
                content_type: None,
                body: body.as_bytes().to_vec(),
            })
        };
        assert_eq!(outcome("SNS", reply(200, "<PublishResponse/>")), Ok(()));
        assert!(matches!(
            outcome("SES", reply(400, r#"{"message":"Email address is not verified."}"#)),
            Err(SendError::Permanent(text)) if text.contains("not verified")
        ));
        assert!(matches!(
            outcome("SNS", reply(400, "<Error><Code>Throttling</Code></Error>")),
            Err(SendError::Transient(_))
        ));
        assert!(matches!(
            outcome("SES", reply(429, "")),
            Err(SendError::Transient(_))
        ));
        assert!(matches!(
            outcome("SES", Err("connection reset".into())),
            Err(SendError::Transient(_))
        ));
    }
}
