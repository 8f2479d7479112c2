//! The fan-out step (`notifications-consumer`): one event (or admin message) becomes one
//! delivery per recipient and channel, each written with its send command (through the
//! outbox) in its own small transaction keyed by (event, channel, target). A redelivered
//! event finds its deliveries already written and adds none; a consumed-marker makes the
//! common duplicate cheap.

use crate::ids::UserId;
use crate::ids::{EventId, NotificationId, SubscriptionId};
use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::entity::{self, Stored};
use crate::error::{Error, Result};
use crate::events::{Audience, Event, EventType};
use crate::keys;
use crate::notifications::model::{
    AdminMessage, DeliverCommand, Delivery, DeliveryStatus, Medium, Subscription,
    SubscriptionStatus,
};
use crate::notifications::subscriptions::{ADMIN_EVENTS, digest};
use crate::notifications::{CONSUMER, DELIVERIES_QUEUE, Notifications, targets};
use crate::outbox::{self, Staged};
use crate::ports::notifier::Channel;
use crate::ports::{Cond, Index, Key, Query, StoreError, TxOp};
use crate::users::User;
use crate::users::model::Language;

/// How long a consumed-marker is kept: far longer than any queue's retention (14 days).
const MARKER_TTL_SECONDS: i64 = 30 * 24 * 3600;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Deliveries were written (this many).
    FannedOut(usize),
    /// The event had been handled before.
    Duplicate,
}

/// One recipient of one message on one medium.
struct Recipient {
    user_id: UserId,
    language: Language,
    medium: Medium,
    target: Option<String>,
    subscription_id: Option<SubscriptionId>,
}

/// What is being fanned out.
struct Message {
    id: EventId,
    correlation_id: String,
    event: String,
    data: Value,
    payload: String,
}

/// What the notifications queue carries: an event, or an admin's message (sent as
/// `{"kind": "admin_message", "message": {...}}`).
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    Event(Event),
    Admin(AdminMessage),
}

impl Incoming {
    /// The request that caused it.
    pub fn correlation_id(&self) -> &str {
        match self {
            Incoming::Event(event) => &event.correlation_id,
            Incoming::Admin(message) => &message.correlation_id,
        }
    }
}

/// Dispatches on `kind` by hand: an untagged enum would report "no variant matched" instead of
/// what is wrong with the message it was meant to be.
impl<'de> Deserialize<'de> for Incoming {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let mut value = Value::deserialize(deserializer)?;
        if value.get("kind").and_then(Value::as_str) == Some("admin_message") {
            let message = value
                .get_mut("message")
                .map(Value::take)
                .unwrap_or_default();
            return AdminMessage::deserialize(message)
                .map(Incoming::Admin)
                .map_err(|error| D::Error::custom(format!("not an admin message: {error}")));
        }
        Event::deserialize(value)
            .map(Incoming::Event)
            .map_err(|error| D::Error::custom(format!("not an event: {error}")))
    }
}

impl Notifications {
    /// Handles one message from the notifications queue.
    #[tracing::instrument(target = "bazaar::span", name = "notifications.fan_out", skip_all)]
    pub async fn fan_out(&self, message: &Incoming) -> Result<Outcome> {
        match message {
            Incoming::Event(event) => self.fan_out_event(event).await,
            Incoming::Admin(message) => self.fan_out_admin_message(message).await,
        }
    }

    async fn fan_out_event(&self, event: &Event) -> Result<Outcome> {
        let marker = keys::consumed(CONSUMER, &event.id);
        if self.ports.store.get(&marker).await?.is_some() {
            return Ok(Outcome::Duplicate);
        }
        let message = Message {
            id: event.id.clone(),
            correlation_id: event.correlation_id.clone(),
            event: event.kind.as_str().to_owned(),
            data: event.data.clone(),
            payload: serde_json::to_string(event).unwrap_or_default(),
        };
        let audience: Audience = event
            .data_as()
            .map_err(|error| Error::BadRequest(error.to_string()))?;
        let mut recipients = match &audience.user_id {
            Some(user_id) if !ADMIN_EVENTS.contains(&event.kind) => {
                self.recipients_of_user(user_id, Some(event.kind)).await?
            }
            _ => self.subscribers_of(event.kind).await?,
        };
        // A new customer's welcome is the message holding their code, sent at registration:
        // the address gets that one message, whenever it is verified.
        if event.kind == EventType::UserRegistered && !audience.email_verified {
            recipients.retain(|r| !(r.medium == Medium::Email && r.subscription_id.is_none()));
        }
        let written = self.write_all(&message, recipients).await?;
        self.mark_consumed(&marker).await?;
        Ok(Outcome::FannedOut(written))
    }

    async fn fan_out_admin_message(&self, admin: &AdminMessage) -> Result<Outcome> {
        let marker = keys::consumed(CONSUMER, &admin.id);
        if self.ports.store.get(&marker).await?.is_some() {
            return Ok(Outcome::Duplicate);
        }
        let data = json!({"subject": admin.subject, "message": admin.message});
        let message = Message {
            id: admin.id.clone(),
            correlation_id: admin.correlation_id.clone(),
            event: "ADMIN_MESSAGE".to_owned(),
            payload: json!({
                "id": admin.id,
                "type": "ADMIN_MESSAGE",
                "occurred_at": self.ports.clock.now(),
                "correlation_id": admin.correlation_id,
                "data": data,
            })
            .to_string(),
            data,
        };
        let recipients = match (&admin.user_id, admin.event) {
            (Some(user_id), _) => self.recipients_of_user(user_id, None).await?,
            (None, Some(event)) => self.subscribers_of(event).await?,
            (None, None) => Vec::new(),
        };
        let written = self.write_all(&message, recipients).await?;
        self.mark_consumed(&marker).await?;
        Ok(Outcome::FannedOut(written))
    }

    /// A user's inbox, account e-mail and subscriptions (to `event`, or all of them for an
    /// admin's message).
    async fn recipients_of_user(
        &self,
        user_id: &UserId,
        event: Option<EventType>,
    ) -> Result<Vec<Recipient>> {
        let Some(item) = self.ports.store.get(&keys::user(user_id)).await? else {
            return Ok(Vec::new());
        };
        let user = User::from_item(item)?;
        let mut recipients = vec![Recipient {
            user_id: user.id.clone(),
            language: user.language,
            medium: Medium::Inbox,
            target: None,
            subscription_id: None,
        }];
        let mut seen = BTreeSet::new();
        // Transactional e-mail goes to the account address whatever the subscriptions, once
        // the address is proved to be the user's.
        if user.is_active && user.email_verified {
            seen.insert((Channel::Email, user.email.clone()));
            recipients.push(Recipient {
                user_id: user.id.clone(),
                language: user.language,
                medium: Medium::Email,
                target: Some(user.email.clone()),
                subscription_id: None,
            });
        }
        // A deactivated account hears nothing outside its inbox.
        let subscriptions = if user.is_active {
            self.user_subscriptions(&user.id).await?
        } else {
            Vec::new()
        };
        for subscription in subscriptions {
            let wanted = event.is_none_or(|event| subscription.events.contains(&event))
                && subscription.status() == SubscriptionStatus::Active;
            if wanted && seen.insert((subscription.channel, subscription.target.clone())) {
                recipients.push(recipient(&subscription, user.language));
            }
        }
        Ok(recipients)
    }

    /// Every subscription to `event`, across users: every shard of its subscriber index.
    async fn subscribers_of(&self, event: EventType) -> Result<Vec<Recipient>> {
        let mut recipients = Vec::new();
        let base = keys::subscribers_partition(event.as_str());
        for partition in self.ports.shards.partitions(&base) {
            recipients.extend(self.subscribers_in(event, &partition).await?);
        }
        Ok(recipients)
    }

    /// The active subscribers of `event` listed in one partition of its subscriber index.
    async fn subscribers_in(&self, event: EventType, partition: &str) -> Result<Vec<Recipient>> {
        let mut recipients = Vec::new();
        let mut start_after = None;
        loop {
            let query = Query::partition(Index::Primary, partition)
                .limit(100)
                .start_after(start_after);
            let page = self.ports.store.query(&query).await?;
            let keys: Vec<Key> = page
                .items
                .iter()
                .filter_map(|entry| {
                    let user_id = UserId::trusted(entry.get("user_id")?.as_str()?);
                    let id = SubscriptionId::trusted(entry.get("subscription_id")?.as_str()?);
                    Some(keys::subscription(&user_id, &id))
                })
                .collect();
            let subscriptions: Vec<Subscription> = self
                .ports
                .store
                .get_many(&keys)
                .await?
                .into_iter()
                .map(Subscription::from_item)
                .collect::<Result<_>>()?;
            let user_keys: Vec<Key> = subscriptions
                .iter()
                .map(|s| keys::user(&s.user_id))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let users: Vec<User> = self
                .ports
                .store
                .get_many(&user_keys)
                .await?
                .into_iter()
                .map(User::from_item)
                .collect::<Result<_>>()?;
            for subscription in &subscriptions {
                let user = users.iter().find(|user| user.id == subscription.user_id);
                // Admin events reach only those who are still admins.
                let allowed = user.is_some_and(|user| {
                    user.is_active && (!ADMIN_EVENTS.contains(&event) || user.is_admin())
                }) && subscription.status() == SubscriptionStatus::Active;
                if let (true, Some(user)) = (allowed, user) {
                    recipients.push(recipient(subscription, user.language));
                }
            }
            match page.last_key {
                Some(last) => start_after = Some(last),
                None => return Ok(recipients),
            }
        }
    }

    /// Writes every recipient's delivery (once), with its send command for the channels.
    async fn write_all(&self, message: &Message, recipients: Vec<Recipient>) -> Result<usize> {
        let mut written = 0;
        let now = self.ports.clock.now();
        for recipient in recipients {
            let delivery = new_delivery(message, recipient, now);
            let mut ops = vec![TxOp::Put {
                item: delivery.to_item()?,
                cond: Cond::NotExists,
            }];
            let staged = send_command(message, &delivery, now)?;
            ops.extend(outbox::writes(&staged, self.ports.shards)?);
            match self.ports.store.transact(ops).await {
                Ok(()) => {
                    outbox::deliver(&self.ports, &staged).await;
                    written += 1;
                }
                // Written by an earlier delivery of the same event.
                Err(StoreError::TransactionCancelled { failed }) if failed.contains(&0) => {}
                Err(other) => return Err(other.into()),
            }
        }
        Ok(written)
    }

    async fn mark_consumed(&self, marker: &Key) -> Result<()> {
        let expires = self.ports.clock.now().timestamp() + MARKER_TTL_SECONDS;
        let item = entity::keyed(marker, json!({"expires_at": expires}));
        self.ports.store.put(item, Cond::Always).await?;
        Ok(())
    }
}

/// What the delivery log keeps of a target: only the origin of a Slack or webhook URL (the
/// delivery step reads the URL from the subscription).
pub(crate) fn logged_target(medium: Medium, target: Option<String>) -> Option<String> {
    match medium {
        Medium::Slack | Medium::Webhook => target.map(|url| targets::origin(&url)),
        _ => target,
    }
}

/// A recipient's delivery of `message`: an inbox entry is delivered as it is written; any
/// other waits for the delivery step.
fn new_delivery(message: &Message, recipient: Recipient, now: DateTime<Utc>) -> Delivery {
    // Unique per (message, user, medium, target): two users subscribing the same URL get
    // two deliveries with two ids.
    let suffix = match &recipient.target {
        Some(target) => digest(&format!(
            "{}|{:?}|{target}",
            recipient.user_id, recipient.medium
        )),
        None => "inbox".to_owned(),
    };
    let inbox = recipient.medium == Medium::Inbox;
    Delivery {
        id: NotificationId::trusted(format!("{}-{suffix}", message.id)),

        user_id: recipient.user_id,
        event: message.event.clone(),
        event_id: message.id.clone(),
        channel: recipient.medium,
        target: logged_target(recipient.medium, recipient.target),
        subscription_id: recipient.subscription_id,
        language: recipient.language,
        status: if inbox {
            DeliveryStatus::Delivered
        } else {
            DeliveryStatus::Pending
        },
        attempts: u32::from(inbox),
        last_error: None,
        created_at: now,
        updated_at: now,
        data: message.data.clone(),
        payload: message.payload.clone(),
        lease_until: if inbox { i64::MAX } else { 0 },
    }
}

/// The command that sends `delivery`, staged for the outbox; none for an inbox entry.
fn send_command(message: &Message, delivery: &Delivery, now: DateTime<Utc>) -> Result<Vec<Staged>> {
    if delivery.channel == Medium::Inbox {
        return Ok(Vec::new());
    }
    let command = DeliverCommand {
        user_id: delivery.user_id.clone(),
        notification_id: delivery.id.clone(),
        correlation_id: message.correlation_id.clone(),
    };
    Ok(vec![Staged::command(
        DELIVERIES_QUEUE,
        &delivery.id,
        &command,
        now.timestamp(),
    )?])
}

fn recipient(subscription: &Subscription, language: Language) -> Recipient {
    Recipient {
        user_id: subscription.user_id.clone(),
        language,
        medium: Medium::from(subscription.channel),
        target: Some(subscription.target.clone()),
        subscription_id: Some(subscription.id.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_carries_events_and_admin_messages() {
        let event = r#"{"id":"e1","type":"ORDER_CREATED","occurred_at":"2026-01-01T00:00:00Z","correlation_id":"req-1","data":{}}"#;
        let decoded: Incoming = serde_json::from_str(event).expect("an event");
        assert!(matches!(&decoded, Incoming::Event(event) if event.id == "e1"));
        assert_eq!(decoded.correlation_id(), "req-1");

        let admin = r#"{"kind":"admin_message","message":{"id":"m1","user_id":null,"event":null,"subject":"s","message":"m","sent_by":"a","correlation_id":"req-2"}}"#;
        let decoded: Incoming = serde_json::from_str(admin).expect("an admin message");
        assert!(matches!(&decoded, Incoming::Admin(message) if message.id == "m1"));
        assert_eq!(decoded.correlation_id(), "req-2");
    }

    #[test]
    fn a_message_that_is_neither_says_what_it_was_taken_for() {
        let error = serde_json::from_str::<Incoming>(r#"{"kind":"admin_message","message":{}}"#)
            .err()
            .map(|error| error.to_string());
        assert!(error.is_some_and(|e| e.starts_with("not an admin message")));
        let error = serde_json::from_str::<Incoming>(r#"{"id":"e1"}"#)
            .err()
            .map(|error| error.to_string());
        assert!(error.is_some_and(|e| e.starts_with("not an event")));
        assert!(serde_json::from_str::<Incoming>("{not json").is_err());
    }

    fn message() -> Message {
        Message {
            id: EventId::trusted("e1"),
            correlation_id: "c1".into(),
            event: "ORDER_PAID".into(),
            data: json!({"order_id": "o1"}),
            payload: "{}".into(),
        }
    }

    fn to(user_id: &str, medium: Medium, target: Option<&str>) -> Recipient {
        Recipient {
            user_id: UserId::trusted(user_id),
            language: Language::Fa,
            medium,
            target: target.map(str::to_owned),
            subscription_id: None,
        }
    }

    #[test]
    fn an_inbox_entry_is_delivered_as_it_is_written_and_sends_nothing() {
        let now = DateTime::UNIX_EPOCH;
        let delivery = new_delivery(&message(), to("u1", Medium::Inbox, None), now);
        assert_eq!(delivery.id, "e1-inbox");
        assert_eq!(delivery.status, DeliveryStatus::Delivered);
        assert_eq!((delivery.attempts, delivery.lease_until), (1, i64::MAX));
        assert_eq!(delivery.language, Language::Fa);
        assert!(
            matches!(send_command(&message(), &delivery, now), Ok(staged) if staged.is_empty())
        );
    }

    #[test]
    fn a_channel_delivery_waits_for_its_send_command() {
        let now = DateTime::UNIX_EPOCH;
        let url = "https://hooks.example/T000/B000/secret";
        let delivery = new_delivery(&message(), to("u1", Medium::Webhook, Some(url)), now);
        assert_eq!(delivery.status, DeliveryStatus::Pending);
        assert_eq!((delivery.attempts, delivery.lease_until), (0, 0));
        assert_eq!(delivery.target.as_deref(), Some("https://hooks.example"));
        assert_eq!(
            (delivery.event.as_str(), delivery.event_id.as_str()),
            ("ORDER_PAID", "e1")
        );
        let Ok(staged) = send_command(&message(), &delivery, now) else {
            panic!("the command does not serialise");
        };
        assert_eq!(staged.len(), 1);
        assert_eq!(
            (staged[0].queue.as_str(), staged[0].id.as_str()),
            (DELIVERIES_QUEUE, delivery.id.as_str())
        );
        let command: DeliverCommand =
            serde_json::from_str(&staged[0].body).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            command,
            DeliverCommand {
                user_id: UserId::trusted("u1"),
                notification_id: delivery.id.clone(),
                correlation_id: "c1".into(),
            }
        );
    }

    #[test]
    fn two_users_of_one_url_get_two_deliveries() {
        let now = DateTime::UNIX_EPOCH;
        let url = Some("https://hooks.example/x");
        let first = new_delivery(&message(), to("u1", Medium::Slack, url), now);
        let second = new_delivery(&message(), to("u2", Medium::Slack, url), now);
        let by_email = new_delivery(&message(), to("u1", Medium::Email, url), now);
        assert!(first.id.starts_with("e1-"), "{}", first.id);
        assert_ne!(first.id, second.id);
        assert_ne!(first.id, by_email.id);
        assert_eq!(
            first.id,
            new_delivery(&message(), to("u1", Medium::Slack, url), now).id
        );
    }
}
