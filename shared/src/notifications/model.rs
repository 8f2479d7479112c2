//! Subscriptions and deliveries as stored, and what clients see of them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::entity::{self, Stored};
use crate::events::EventType;
use crate::ids::{EventId, NotificationId, SubscriptionId, UserId};
use crate::keys;
use crate::notifications::targets;
use crate::ports::Key;
use crate::ports::notifier::Channel;
use crate::users::model::Language;

/// A user's wish to hear about some events on one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub user_id: UserId,
    pub channel: Channel,
    pub target: String,
    pub events: Vec<EventType>,
    /// Webhooks only: the key their bodies are signed with (shown once, at creation).
    pub signing_secret: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Whether its owner has proved the target is theirs; absent on subscriptions stored
    /// before verification existed (see [`Subscription::status`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SubscriptionStatus>,
}

/// Whether a subscription's target has been proved to be its owner's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    /// Waiting for its code or its test delivery's answer: nothing else is sent to it.
    Pending,
    /// Proved: it receives what it subscribed to.
    Active,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Pending => "pending",
            SubscriptionStatus::Active => "active",
        }
    }
}

impl Subscription {
    /// The stored status. A subscription stored before verification existed is active only
    /// on push (which needs no proof); any other must be verified (`.../resend`) first.
    pub fn status(&self) -> SubscriptionStatus {
        match (self.status, self.channel) {
            (Some(status), _) => status,
            (None, Channel::Push) => SubscriptionStatus::Active,
            (None, _) => SubscriptionStatus::Pending,
        }
    }

    pub fn key(&self) -> Key {
        keys::subscription(&self.user_id, &self.id)
    }
}

impl Stored for Subscription {
    const KIND: &'static str = "subscription";
    type Owner = ();

    fn key(&self, _: &()) -> Key {
        Subscription::key(self)
    }
}

entity::attributes!(Subscription {
    STATUS = "status",
});

/// A subscription as listed (no secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionView {
    pub id: SubscriptionId,
    pub channel: Channel,
    pub target: String,
    pub events: Vec<EventType>,
    pub created_at: DateTime<Utc>,
    /// `pending` until the target is proved (a code, or the test delivery's 2xx answer).
    pub status: SubscriptionStatus,
}

impl From<&Subscription> for SubscriptionView {
    fn from(subscription: &Subscription) -> Self {
        Self {
            id: subscription.id.clone(),
            channel: subscription.channel,
            target: subscription.target.clone(),
            events: subscription.events.clone(),
            created_at: subscription.created_at,
            status: subscription.status(),
        }
    }
}

/// The answer to subscribing: the subscription, and for a webhook its signing secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribed {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for the delivery step.
    Pending,
    /// Being sent right now.
    Sending,
    /// The channel accepted it.
    Sent,
    /// The last try failed for a reason that may pass; it will be tried again.
    Retrying,
    /// Given up: a permanent refusal, or the last try failed.
    Failed,
    /// Written to the in-app inbox.
    Delivered,
    /// Not sent, by the shop's rules: the account is deactivated, the SMS country is not
    /// allowed, or a daily send budget is spent. Final; never retried.
    Suppressed,
}

impl DeliveryStatus {
    /// The stored (and shown) name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Suppressed => "suppressed",
        }
    }
}

/// "inbox" or a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Medium {
    Inbox,
    Email,
    Sms,
    Push,
    Slack,
    Webhook,
}

impl Medium {
    /// The channel a delivery on this medium is sent through; none for the inbox.
    pub fn channel(self) -> Option<Channel> {
        match self {
            Medium::Inbox => None,
            Medium::Email => Some(Channel::Email),
            Medium::Sms => Some(Channel::Sms),
            Medium::Push => Some(Channel::Push),
            Medium::Slack => Some(Channel::Slack),
            Medium::Webhook => Some(Channel::Webhook),
        }
    }
}

impl From<Channel> for Medium {
    fn from(channel: Channel) -> Self {
        match channel {
            Channel::Email => Medium::Email,
            Channel::Sms => Medium::Sms,
            Channel::Push => Medium::Push,
            Channel::Slack => Medium::Slack,
            Channel::Webhook => Medium::Webhook,
        }
    }
}

/// One notification to one user on one medium: what `GET /notifications` lists, and what
/// the delivery step works from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: NotificationId,
    pub user_id: UserId,
    /// The event type, or `ADMIN_MESSAGE` for a message sent by an admin.
    pub event: String,
    pub event_id: EventId,
    pub channel: Medium,
    pub target: Option<String>,
    pub subscription_id: Option<SubscriptionId>,
    pub language: Language,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What the message is rendered from: the event's data (or the admin's message).
    pub data: Value,
    /// The whole event, for webhooks.
    pub payload: String,
    /// While a delivery step holds it (unix seconds); `i64::MAX` once settled.
    #[serde(default)]
    pub lease_until: i64,
}

impl Delivery {
    pub fn key(&self) -> Key {
        keys::notification(&self.user_id, &self.id)
    }
}

impl Stored for Delivery {
    const KIND: &'static str = "notification";
    type Owner = ();

    fn key(&self, _: &()) -> Key {
        Delivery::key(self)
    }
}

entity::attributes!(Delivery {
    STATUS = "status",
    ATTEMPTS = "attempts",
    LAST_ERROR = "last_error",
    UPDATED_AT = "updated_at",
    LEASE_UNTIL = "lease_until",
});

/// A notification as its user sees it: a Slack or webhook target shows only its scheme and
/// host (the rest of such URLs is a bearer secret), and a failure only a generic reason
/// (the precise one, a remote status or error text, would make this a port scanner).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationView {
    pub id: NotificationId,
    pub event: String,
    pub channel: Medium,
    pub target: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Delivery> for NotificationView {
    fn from(delivery: &Delivery) -> Self {
        Self {
            id: delivery.id.clone(),
            event: delivery.event.clone(),
            channel: delivery.channel,
            target: delivery
                .target
                .as_deref()
                .map(|target| match delivery.channel {
                    Medium::Slack | Medium::Webhook => targets::origin(target),
                    _ => target.to_owned(),
                }),
            status: delivery.status,
            attempts: delivery.attempts,
            last_error: public_reason(delivery),
            created_at: delivery.created_at,
            updated_at: delivery.updated_at,
        }
    }
}

/// What a customer is told about a delivery that did not go through.
fn public_reason(delivery: &Delivery) -> Option<String> {
    match delivery.status {
        DeliveryStatus::Failed => Some("the message could not be delivered".to_owned()),
        DeliveryStatus::Retrying => {
            Some("the message could not be delivered yet; it will be tried again".to_owned())
        }
        // The shop's own rule, worded by the shop (see `policy::Refusal`).
        DeliveryStatus::Suppressed => delivery.last_error.clone(),
        _ => None,
    }
}

/// A command on the deliveries queue: send this notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverCommand {
    pub user_id: UserId,
    pub notification_id: NotificationId,
    /// The request that caused the notification, for the delivery's logs (absent from
    /// commands written before it was carried: empty).
    #[serde(default)]
    pub correlation_id: String,
}

/// A command on the notifications queue beside events: an admin's message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminMessage {
    pub id: EventId,
    /// To one user (all their subscriptions and their account e-mail) ...
    pub user_id: Option<UserId>,
    /// ... or to every subscriber of an event.
    pub event: Option<EventType>,
    pub subject: String,
    pub message: String,
    pub sent_by: UserId,

    pub correlation_id: String,
}
