//! What clients send to the notification endpoints.

use serde::{Deserialize, Serialize};
use validator::Validate;

use crate::events::EventType;
use crate::ports::notifier::Channel;
use crate::validation;

/// `POST /notifications/subscriptions`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Validate)]
pub struct SubscribeRequest {
    #[validate(required)]
    pub channel: Option<Channel>,
    #[validate(required, length(min = 1, max = 2048))]
    pub target: Option<String>,
    /// The events to hear about; every event the caller may subscribe to when absent.
    #[validate(length(min = 1, max = 20, message = "must list 1 to 20 events"))]
    pub events: Option<Vec<EventType>>,
}

/// `POST /notifications/notify` (admin): a message to one user, or to every subscriber of
/// an event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Validate)]
pub struct NotifyRequest {
    #[validate(length(min = 1, max = 64))]
    pub user_id: Option<String>,
    pub event: Option<EventType>,
    #[validate(
        required,
        length(min = 1, max = 200),
        custom(function = "validation::text")
    )]
    pub subject: Option<String>,
    #[validate(
        required,
        length(min = 1, max = 4000),
        custom(function = "validation::multiline_text")
    )]
    pub message: Option<String>,
}

/// `POST /notifications/subscriptions/{id}/verify` and `POST /users/me/email/verify`: the
/// code that was sent to the target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Validate)]
pub struct VerifyRequest {
    #[validate(required, length(min = 1, max = 32))]
    pub code: Option<String>,
}
