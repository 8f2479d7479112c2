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

use crate::entity::{self, Stored};
use crate::error::{Error, Result};
use crate::keys;
use crate::metrics::{self, Delivered};
use crate::notifications::Notifications;
use crate::notifications::model::{DeliverCommand, Delivery, DeliveryStatus, Subscription};
use crate::notifications::{policy, templates};
use crate::ports::notifier::{Channel, Outgoing, SendError};
use crate::ports::{Cond, Key, StoreError, Update};
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
        let (delivery, charged) = self.read_delivery(&key).await?;
        let Some(channel) = channel_to_send(&delivery) else {
            return Ok(Outcome::AlreadySettled);
        };
        if let Some(settled) = self.take_lease(&key).await? {
            return Ok(settled);
        }
        // The owner and the subscription are read once, for every check below.
        let (owner, subscription) = self.read_recipient(&delivery).await?;
        if let Some(reason) =
            Self::unproved_target(&delivery, owner.as_ref(), subscription.as_ref())
        {
            self.settle(&key, DeliveryStatus::Failed, 0, Some(&reason))
                .await?;
            return Ok(Outcome::Failed(reason));
        }
        let (target, signing_secret) = match send_target(&delivery, channel, subscription) {
            Ok(found) => found,
            Err(reason) => {
                self.settle(&key, DeliveryStatus::Failed, 0, Some(&reason))
                    .await?;
                return Ok(Outcome::Failed(reason));
            }
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
        let message = self
            .compose(&delivery, channel, target, signing_secret)
            .await?;
        let (result, tries) = self.send_with_retries(&delivery, &message).await;
        let verdict = verdict(result, receive_count >= self.settings.max_receives);
        self.record(&key, &delivery, channel, tries, verdict).await
    }

    /// The delivery, and whether its budget units were taken by an earlier try.
    async fn read_delivery(&self, key: &Key) -> Result<(Delivery, bool)> {
        let item = self
            .ports
            .store
            .get(key)
            .await?
            .ok_or(Error::NotFound("notification"))?;
        let charged = item.get(policy::BUDGET_CHARGED) == Some(&Value::Bool(true));
        Ok((Delivery::from_item(item)?, charged))
    }

    /// Leases the delivery to this step, unless a lease is held: `None` once this step holds
    /// it, the outcome when another copy of the command has settled it meanwhile.
    async fn take_lease(&self, key: &Key) -> Result<Option<Outcome>> {
        let now = self.ports.clock.now();
        let lease = self
            .ports
            .store
            .update(
                key,
                vec![
                    Update::set(Delivery::STATUS, DeliveryStatus::Sending.as_str()),
                    Update::set(Delivery::LEASE_UNTIL, now.timestamp() + LEASE_SECONDS),
                    Update::set(Delivery::UPDATED_AT, entity::timestamp(now)),
                ],
                Cond::at_most(Delivery::LEASE_UNTIL, now.timestamp()),
            )
            .await;
        match lease {
            Ok(_) => Ok(None),
            Err(StoreError::ConditionFailed) => {
                let current = self.ports.store.get(key).await?;
                let status = current
                    .as_ref()
                    .and_then(|item| item.get("status"))
                    .and_then(Value::as_str);
                lease_held(status).map(Some)
            }
            Err(other) => Err(other.into()),
        }
    }

    /// The delivery's owner and its subscription (if it has one and it still exists).
    async fn read_recipient(
        &self,
        delivery: &Delivery,
    ) -> Result<(Option<User>, Option<Subscription>)> {
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
        Ok((owner, subscription))
    }

    /// The message, rendered in the recipient's language.
    async fn compose(
        &self,
        delivery: &Delivery,
        channel: Channel,
        target: String,
        signing_secret: Option<String>,
    ) -> Result<Outgoing> {
        let data = self.message_data(delivery).await?;
        let rendered = templates::render(&delivery.event, channel, delivery.language, &data);
        Ok(Outgoing {
            channel,
            target,
            delivery_id: delivery.id.to_string(),
            event_type: delivery.event.clone(),
            subject: rendered.subject,
            text: rendered.text,
            payload: delivery.payload.clone(),
            signing_secret,
        })
    }

    /// Sends the message, retrying transient failures after [`BACKOFF`]'s pauses; the last
    /// result and how many tries it took.
    async fn send_with_retries(
        &self,
        delivery: &Delivery,
        message: &Outgoing,
    ) -> (Result<(), SendError>, usize) {
        let notifier = self.ports.notifiers.for_channel(message.channel);
        let mut tries = 0;
        let result = loop {
            tries += 1;
            match notifier.send(message).await {
                Err(SendError::Transient(reason)) if tries <= BACKOFF.len() => {
                    tracing::info!(delivery = %delivery.id, %reason, tries, "transient failure; retrying");
                    tokio::time::sleep(BACKOFF[tries - 1]).await;
                }
                other => break other,
            }
        };
        (result, tries)
    }

    /// Records what the send came to. A transient failure fails the step, so that the queue
    /// brings the message back (or dead-letters it after the last receive).
    async fn record(
        &self,
        key: &Key,
        delivery: &Delivery,
        channel: Channel,
        tries: usize,
        verdict: Verdict,
    ) -> Result<Outcome> {
        match verdict {
            Verdict::Sent => {
                self.settle(key, DeliveryStatus::Sent, tries, None).await?;
                metrics::delivery(channel, tries, Delivered::Sent);
                self.after_sent(delivery).await?;
                Ok(Outcome::Sent)
            }
            Verdict::Refused(reason) => {
                self.settle(key, DeliveryStatus::Failed, tries, Some(&reason))
                    .await?;
                metrics::delivery(channel, tries, Delivered::Failed);
                Ok(Outcome::Failed(reason))
            }
            Verdict::GaveUp(reason) => {
                let recorded = format!("gave up after the last try: {reason}");
                self.settle(key, DeliveryStatus::Failed, tries, Some(&recorded))
                    .await?;
                metrics::delivery(channel, tries, Delivered::Failed);
                Err(Error::Unavailable(format!("delivery failed: {reason}")))
            }
            Verdict::Retry(reason) => {
                let updates = vec![
                    Update::set(Delivery::STATUS, DeliveryStatus::Retrying.as_str()),
                    Update::set(Delivery::LEASE_UNTIL, 0),
                    Update::add(Delivery::ATTEMPTS, tries as i64),
                    Update::set(Delivery::LAST_ERROR, reason.clone()),
                    Update::set(
                        Delivery::UPDATED_AT,
                        entity::timestamp(self.ports.clock.now()),
                    ),
                ];
                self.ports.store.update(key, updates, Cond::Exists).await?;
                metrics::delivery(channel, tries, Delivered::Retried);
                Err(Error::Unavailable(format!("delivery failed: {reason}")))
            }
        }
    }

    /// Records a final outcome (`Sent`, `Failed` or `Suppressed`); the lease never lapses after it.
    async fn settle(
        &self,
        key: &Key,
        status: DeliveryStatus,
        tries: usize,
        error: Option<&str>,
    ) -> Result<()> {
        let mut updates = vec![
            Update::set(Delivery::STATUS, status.as_str()),
            Update::set(Delivery::LEASE_UNTIL, i64::MAX),
            Update::add(Delivery::ATTEMPTS, tries as i64),
            Update::set(
                Delivery::UPDATED_AT,
                entity::timestamp(self.ports.clock.now()),
            ),
        ];
        updates.push(match error {
            Some(error) => Update::set(Delivery::LAST_ERROR, error),
            None => Update::remove(Delivery::LAST_ERROR),
        });
        self.ports.store.update(key, updates, Cond::Exists).await?;
        Ok(())
    }
}

/// The channel to send `delivery` through; none for an inbox entry or a delivery already
/// settled (a duplicate command).
fn channel_to_send(delivery: &Delivery) -> Option<Channel> {
    let settled = matches!(
        delivery.status,
        DeliveryStatus::Sent
            | DeliveryStatus::Failed
            | DeliveryStatus::Delivered
            | DeliveryStatus::Suppressed
    );
    delivery.channel.channel().filter(|_| !settled)
}

/// Why the lease could not be taken, from the delivery's current `status`: settled by
/// another copy of the command (nothing to do), or still being sent by one (fail, so that
/// the queue brings the command back once that lease has lapsed).
fn lease_held(status: Option<&str>) -> Result<Outcome> {
    match status {
        Some("sent" | "failed" | "suppressed") => Ok(Outcome::AlreadySettled),
        _ => Err(Error::Unavailable(
            "the delivery is being sent by another worker".into(),
        )),
    }
}

/// Where the message goes, and a webhook's signing secret; or why the delivery fails for
/// good. Slack and webhook URLs are read from the subscription: the delivery log keeps only
/// their origin.
fn send_target(
    delivery: &Delivery,
    channel: Channel,
    subscription: Option<Subscription>,
) -> Result<(String, Option<String>), String> {
    match (channel, subscription) {
        (Channel::Webhook | Channel::Slack, Some(subscription)) => {
            Ok((subscription.target, subscription.signing_secret))
        }
        (Channel::Webhook | Channel::Slack, None) if delivery.subscription_id.is_some() => {
            Err("the subscription was deleted".to_owned())
        }
        _ => Ok((delivery.target.clone().unwrap_or_default(), None)),
    }
}

/// What a send's last result comes to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    Sent,
    /// Refused for good by the channel (why).
    Refused(String),
    /// A transient failure on the command's last receive: final (why).
    GaveUp(String),
    /// A transient failure with receives left: the queue tries again (why).
    Retry(String),
}

fn verdict(result: Result<(), SendError>, last_receive: bool) -> Verdict {
    match result {
        Ok(()) => Verdict::Sent,
        Err(SendError::Permanent(reason)) => Verdict::Refused(reason),
        Err(SendError::Transient(reason)) if last_receive => Verdict::GaveUp(reason),
        Err(SendError::Transient(reason)) => Verdict::Retry(reason),
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::ids::{EventId, NotificationId, SubscriptionId, UserId};
    use crate::notifications::model::{Medium, SubscriptionStatus};
    use crate::users::model::Language;

    fn delivery(channel: Medium, status: DeliveryStatus) -> Delivery {
        Delivery {
            id: NotificationId::trusted("n1"),
            user_id: UserId::trusted("u1"),
            event: "ORDER_PAID".into(),
            event_id: EventId::trusted("e1"),
            channel,
            target: Some("https://hooks.example".into()),
            subscription_id: None,
            language: Language::En,
            status,
            attempts: 0,
            last_error: None,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
            data: Value::Null,
            payload: String::new(),
            lease_until: 0,
        }
    }

    fn subscription(channel: Channel) -> Subscription {
        Subscription {
            id: SubscriptionId::trusted("s1"),
            user_id: UserId::trusted("u1"),
            channel,
            target: "https://hooks.example/T000/B000/secret".into(),
            events: Vec::new(),
            signing_secret: Some("whsec".into()),
            created_at: DateTime::UNIX_EPOCH,
            status: Some(SubscriptionStatus::Active),
        }
    }

    #[test]
    fn only_unsettled_deliveries_on_a_channel_are_sent() {
        for status in [
            DeliveryStatus::Pending,
            DeliveryStatus::Sending,
            DeliveryStatus::Retrying,
        ] {
            assert_eq!(
                channel_to_send(&delivery(Medium::Sms, status)),
                Some(Channel::Sms),
                "{status:?}"
            );
        }
        for status in [
            DeliveryStatus::Sent,
            DeliveryStatus::Failed,
            DeliveryStatus::Delivered,
            DeliveryStatus::Suppressed,
        ] {
            assert_eq!(channel_to_send(&delivery(Medium::Sms, status)), None);
        }
        let inbox = delivery(Medium::Inbox, DeliveryStatus::Pending);
        assert_eq!(channel_to_send(&inbox), None);
    }

    #[test]
    fn a_held_lease_is_settled_or_retried_later() {
        for status in ["sent", "failed", "suppressed"] {
            assert!(matches!(
                lease_held(Some(status)),
                Ok(Outcome::AlreadySettled)
            ));
        }
        for status in [Some("sending"), Some("retrying"), None] {
            assert!(
                matches!(
                    lease_held(status),
                    Err(Error::Unavailable(message)) if message == "the delivery is being sent by another worker"
                ),
                "{status:?}"
            );
        }
    }

    #[test]
    fn urls_and_secrets_come_from_the_subscription() {
        let mut hook = delivery(Medium::Webhook, DeliveryStatus::Pending);
        hook.subscription_id = Some(SubscriptionId::trusted("s1"));
        assert_eq!(
            send_target(
                &hook,
                Channel::Webhook,
                Some(subscription(Channel::Webhook))
            ),
            Ok((
                "https://hooks.example/T000/B000/secret".to_owned(),
                Some("whsec".to_owned())
            ))
        );
        assert_eq!(
            send_target(&hook, Channel::Slack, None),
            Err("the subscription was deleted".to_owned())
        );
    }

    #[test]
    fn other_targets_come_from_the_delivery() {
        let mut email = delivery(Medium::Email, DeliveryStatus::Pending);
        email.target = Some("ada@example.com".into());
        email.subscription_id = Some(SubscriptionId::trusted("s1"));
        assert_eq!(
            send_target(&email, Channel::Email, Some(subscription(Channel::Email))),
            Ok(("ada@example.com".to_owned(), None))
        );
        // A webhook delivery without a subscription (none was ever recorded) keeps its own.
        let hook = delivery(Medium::Webhook, DeliveryStatus::Pending);
        assert_eq!(
            send_target(&hook, Channel::Webhook, None),
            Ok(("https://hooks.example".to_owned(), None))
        );
        let mut bare = delivery(Medium::Push, DeliveryStatus::Pending);
        bare.target = None;
        assert_eq!(
            send_target(&bare, Channel::Push, None),
            Ok((String::new(), None))
        );
    }

    #[test]
    fn transient_failures_are_final_only_on_the_last_receive() {
        assert_eq!(verdict(Ok(()), false), Verdict::Sent);
        assert_eq!(verdict(Ok(()), true), Verdict::Sent);
        let permanent = || Err(SendError::Permanent("410 Gone".into()));
        assert_eq!(
            verdict(permanent(), false),
            Verdict::Refused("410 Gone".into())
        );
        assert_eq!(
            verdict(permanent(), true),
            Verdict::Refused("410 Gone".into())
        );
        let transient = || Err(SendError::Transient("timeout".into()));
        assert_eq!(
            verdict(transient(), false),
            Verdict::Retry("timeout".into())
        );
        assert_eq!(
            verdict(transient(), true),
            Verdict::GaveUp("timeout".into())
        );
    }
}
