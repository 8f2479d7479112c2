//! The delivery step (`notifications-deliver`): sends one delivery through its channel.
//!
//! A delivery is leased before it is sent (a conditional update), so that two copies of its
//! command never send it twice at the same time; once sent it is settled for good and later
//! copies do nothing. Transient failures are retried here with a short backoff, then by the
//! queue (the message comes back after its visibility timeout); the last receive marks the
//! delivery failed and the message goes on to the dead-letter queue. Every try is counted in
//! the delivery log. Before sending, the send policy ([`super::policy`]) may suppress the
//! delivery for good (deactivated account, SMS country, daily budget): it is recorded as
//! `suppressed` and not retried.

use std::time::Duration;

use serde_json::Value;

use crate::entity::Stored;
use crate::error::{Error, Result};
use crate::keys;
use crate::metrics::{self, Delivered};
use crate::notifications::Notifications;
use crate::notifications::model::{DeliverCommand, Delivery, DeliveryStatus, Subscription};
use crate::notifications::{policy, templates};
use crate::ports::notifier::{Channel, Outgoing, SendError};
use crate::ports::{Cond, StoreError, Update};
use crate::users::User;

/// How long a delivery step may hold a delivery.
const LEASE_SECONDS: i64 = 60;
/// Tries within one receive, and the pause before each retry.
const BACKOFF: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(800)];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Refused for good (or its subscription is gone): recorded, not retried.
    Failed(String),
    /// Settled earlier (a duplicate command).
    AlreadySettled,
    /// Not sent by the shop's rules (why): recorded, not retried.
    Suppressed(String),
}

impl Notifications {
    /// Sends one delivery. `receive_count` is how often its queue has handed the command
    /// out (this time included): on the last receive a transient failure is final.
    #[tracing::instrument(target = "bazaar::span", name = "notifications.deliver", skip_all)]
    pub async fn deliver(&self, command: &DeliverCommand, receive_count: u32) -> Result<Outcome> {
        let key = keys::notification(&command.user_id, &command.notification_id);
        let item = self
            .ports
            .store
            .get(&key)
            .await?
            .ok_or(Error::NotFound("notification"))?;
        let charged = item.get(policy::BUDGET_CHARGED) == Some(&Value::Bool(true));
        let delivery = Delivery::from_item(item)?;
        let settled = matches!(
            delivery.status,
            DeliveryStatus::Sent
                | DeliveryStatus::Failed
                | DeliveryStatus::Delivered
                | DeliveryStatus::Suppressed
        );
        let Some(channel) = delivery.channel.channel().filter(|_| !settled) else {
            return Ok(Outcome::AlreadySettled);
        };
        let now = self.ports.clock.now();
        let lease = self
            .ports
            .store
            .update(
                &key,
                vec![
                    Update::set("status", DeliveryStatus::Sending.as_str()),
                    Update::set("lease_until", now.timestamp() + LEASE_SECONDS),
                    Update::set("updated_at", serde_json::json!(now)),
                ],
                Cond::AtMost("lease_until".into(), now.timestamp()),
            )
            .await;
        match lease {
            Ok(_) => {}
            Err(StoreError::ConditionFailed) => {
                let current = self.ports.store.get(&key).await?;
                let status = current
                    .as_ref()
                    .and_then(|item| item.get("status"))
                    .and_then(Value::as_str);
                return match status {
                    Some("sent" | "failed" | "suppressed") => Ok(Outcome::AlreadySettled),
                    _ => Err(Error::Unavailable(
                        "the delivery is being sent by another worker".into(),
                    )),
                };
            }
            Err(other) => return Err(other.into()),
        }
        // The owner and the subscription are read once, for every check below.
        let owner = self
            .ports
            .store
            .get(&keys::user(&delivery.user_id))
            .await?
            .map(User::from_item)
            .transpose()?;
        let subscription = match &delivery.subscription_id {
            Some(id) => self
                .ports
                .store
                .get(&keys::subscription(&delivery.user_id, id))
                .await?
                .map(Subscription::from_item)
                .transpose()?,
            None => None,
        };
        if let Some(reason) =
            Self::unproved_target(&delivery, owner.as_ref(), subscription.as_ref())
        {
            self.settle(&key, DeliveryStatus::Failed, 0, Some(&reason))
                .await?;
            return Ok(Outcome::Failed(reason));
        }

        // URLs are read from the subscription: the delivery log keeps only their origin.
        let (target, signing_secret) = match (channel, subscription) {
            (Channel::Webhook | Channel::Slack, Some(subscription)) => {
                (subscription.target, subscription.signing_secret)
            }
            (Channel::Webhook | Channel::Slack, None) if delivery.subscription_id.is_some() => {
                let reason = "the subscription was deleted".to_owned();
                self.settle(&key, DeliveryStatus::Failed, 0, Some(&reason))
                    .await?;
                return Ok(Outcome::Failed(reason));
            }
            _ => (delivery.target.clone().unwrap_or_default(), None),
        };
        if let Some(refusal) = self
            .refusal(&delivery, owner.as_ref(), channel, &target, charged)
            .await?
        {
            let reason = refusal.reason().to_owned();
            tracing::info!(delivery = %delivery.id, %reason, "delivery suppressed");
            self.settle(&key, DeliveryStatus::Suppressed, 0, Some(&reason))
                .await?;
            return Ok(Outcome::Suppressed(reason));
        }
        let data = self.message_data(&delivery).await?;
        let rendered = templates::render(&delivery.event, channel, delivery.language, &data);
        let message = Outgoing {
            channel,
            target,
            delivery_id: delivery.id.clone(),
            event_type: delivery.event.clone(),
            subject: rendered.subject,
            text: rendered.text,
            payload: delivery.payload.clone(),
            signing_secret,
        };
        let notifier = self.ports.notifiers.for_channel(channel);
        let mut tries = 0;
        let result = loop {
            tries += 1;
            match notifier.send(&message).await {
                Err(SendError::Transient(reason)) if tries <= BACKOFF.len() => {
                    tracing::info!(delivery = %delivery.id, %reason, tries, "transient failure; retrying");
                    tokio::time::sleep(BACKOFF[tries - 1]).await;
                }
                other => break other,
            }
        };
        match result {
            Ok(()) => {
                self.settle(&key, DeliveryStatus::Sent, tries, None).await?;
                metrics::delivery(channel, tries, Delivered::Sent);
                self.after_sent(&delivery).await?;
                Ok(Outcome::Sent)
            }
            Err(SendError::Permanent(reason)) => {
                self.settle(&key, DeliveryStatus::Failed, tries, Some(&reason))
                    .await?;
                metrics::delivery(channel, tries, Delivered::Failed);
                Ok(Outcome::Failed(reason))
            }
            Err(SendError::Transient(reason)) => {
                if receive_count >= self.settings.max_receives {
                    let reason = format!("gave up after the last try: {reason}");
                    self.settle(&key, DeliveryStatus::Failed, tries, Some(&reason))
                        .await?;
                    metrics::delivery(channel, tries, Delivered::Failed);
                } else {
                    let updates = vec![
                        Update::set("status", DeliveryStatus::Retrying.as_str()),
                        Update::set("lease_until", 0),
                        Update::add("attempts", tries as i64),
                        Update::set("last_error", reason.clone()),
                        Update::set("updated_at", serde_json::json!(self.ports.clock.now())),
                    ];
                    self.ports.store.update(&key, updates, Cond::Exists).await?;
                    metrics::delivery(channel, tries, Delivered::Retried);
                }
                // Fails the message: the queue brings it back, or dead-letters it.
                Err(Error::Unavailable(format!("delivery failed: {reason}")))
            }
        }
    }

    /// Records a final outcome (`Sent`, `Failed` or `Suppressed`); the lease never lapses after it.
    async fn settle(
        &self,
        key: &crate::ports::Key,
        status: DeliveryStatus,
        tries: usize,
        error: Option<&str>,
    ) -> Result<()> {
        let mut updates = vec![
            Update::set("status", status.as_str()),
            Update::set("lease_until", i64::MAX),
            Update::add("attempts", tries as i64),
            Update::set("updated_at", serde_json::json!(self.ports.clock.now())),
        ];
        updates.push(match error {
            Some(error) => Update::set("last_error", error),
            None => Update::Remove("last_error".into()),
        });
        self.ports.store.update(key, updates, Cond::Exists).await?;
        Ok(())
    }
}
