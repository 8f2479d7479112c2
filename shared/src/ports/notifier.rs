//! The notification channels port: one sender per channel (e-mail, SMS, push, Slack,
//! webhook), chosen by a factory from a subscription's channel. Senders say whether a failure
//! is worth retrying, so that the delivery step can retry transient ones and give up on the
//! others.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Push,
    Slack,
    Webhook,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Email,
        Channel::Sms,
        Channel::Push,
        Channel::Slack,
        Channel::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
            Channel::Slack => "slack",
            Channel::Webhook => "webhook",
        }
    }
}

/// One message to one target, rendered for its channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub channel: Channel,
    /// An e-mail address, an E.164 phone number, a push endpoint, or a URL.
    pub target: String,
    /// Unique per delivery; receivers use it to drop duplicates (`x-bazaar-delivery`).
    pub delivery_id: String,
    pub event_type: String,
    pub subject: String,
    /// Plain text, in the recipient's language.
    pub text: String,
    /// For webhooks: the JSON body to POST (the event envelope).
    pub payload: String,
    /// For webhooks: the subscription's signing secret.
    pub signing_secret: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later: a timeout, a 5xx or 429, a connection failure.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Retrying will not help: the target refused the message for good, or is not allowed.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

#[async_trait]
pub trait Notifier: Send + Sync {
    async fn send(&self, message: &Outgoing) -> Result<(), SendError>;
}

/// The sender of each channel.
#[derive(Clone)]
pub struct Notifiers {
    pub email: Arc<dyn Notifier>,
    pub sms: Arc<dyn Notifier>,
    pub push: Arc<dyn Notifier>,
    pub slack: Arc<dyn Notifier>,
    pub webhook: Arc<dyn Notifier>,
}

impl Notifiers {
    /// The factory: the sender for a channel.
    pub fn for_channel(&self, channel: Channel) -> &dyn Notifier {
        match channel {
            Channel::Email => self.email.as_ref(),
            Channel::Sms => self.sms.as_ref(),
            Channel::Push => self.push.as_ref(),
            Channel::Slack => self.slack.as_ref(),
            Channel::Webhook => self.webhook.as_ref(),
        }
    }
}
