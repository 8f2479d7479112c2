//! Notifications: users subscribe channels (e-mail, SMS, push, Slack, webhooks) to events;
//! the pipeline turns each event into one delivery per recipient and channel (fan-out, on
//! the notifications queue) and sends each delivery (on the deliveries queue) through the
//! channel's sender, retrying transient failures and recording every attempt.
//!
//! Every user also gets transactional e-mail (welcome, order confirmation, ...) at their
//! account address, and every event about them in their in-app inbox.

pub mod delivery;
pub mod fanout;
pub mod model;
pub mod policy;
pub mod requests;
pub mod subscriptions;
pub mod targets;
pub mod templates;
pub mod verification;

use crate::Ports;

pub use model::{
    Delivery, DeliveryStatus, NotificationView, Subscription, SubscriptionStatus, SubscriptionView,
};

/// The consumer's name in its idempotency markers.
pub const CONSUMER: &str = "notifications";
/// The queue of single deliveries, fed by the fan-out.
pub const DELIVERIES_QUEUE: &str = crate::outbox::DELIVERIES_QUEUE;

/// What an operator may tune.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationSettings {
    /// Whether Slack and webhook targets may be plain HTTP and private addresses (local
    /// development); never in AWS unless explicitly allowed.
    pub allow_private_targets: bool,
    /// Receives of a delivery before its queue dead-letters it: the last one marks the
    /// delivery failed.
    pub max_receives: u32,
    /// Daily send budgets per account and per target.
    pub budget: policy::SendBudget,
    /// Calling-code prefixes SMS may go to (`+98`, `+1`); every country when `None`.
    pub sms_countries: Option<Vec<String>>,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            allow_private_targets: true,
            max_receives: 5,
            budget: policy::SendBudget::default(),
            sms_countries: None,
        }
    }
}

#[derive(Clone)]
pub struct Notifications {
    ports: Ports,
    settings: NotificationSettings,
}

impl Notifications {
    pub fn new(ports: Ports, settings: NotificationSettings) -> Self {
        Self { ports, settings }
    }

    pub fn settings(&self) -> &NotificationSettings {
        &self.settings
    }
}
