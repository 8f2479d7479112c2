//! Subscribing and unsubscribing, the delivery log, and admins' messages. A subscription is
//! written with a claim on its (channel, target), a bounded per-user count and one index
//! entry per event, in one transaction: a duplicate or one too many leaves nothing behind.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde_json::json;

use crate::commit::{Commit, Round, Step, Tx};
use crate::counter;
use crate::entity::{self, Stored};
use crate::error::{Error, FieldError, Result};
use crate::events::EventType;
use crate::ids::{SubscriptionId, UserId};
use crate::keys;
use crate::notifications::model::{
    AdminMessage, Delivery, Medium, NotificationView, Subscribed, Subscription, SubscriptionStatus,
    SubscriptionView,
};
use crate::notifications::requests::{NotifyRequest, SubscribeRequest};
use crate::notifications::verification::{self, ProofMessage};
use crate::notifications::{Notifications, policy, targets};
use crate::outbox::{self, Staged};
use crate::pagination::{self, Listing, PageRequest};
use crate::ports::notifier::Channel;
use crate::ports::{Cond, Index, Query, TxOp, Update};
use crate::users::User;
use crate::validation;

/// The most subscriptions one user may hold.
pub const MAX_SUBSCRIPTIONS: i64 = 20;

/// Events about shop operations rather than about a customer: admins only.
pub const ADMIN_EVENTS: [EventType; 2] = [EventType::ProductOutOfStock, EventType::ImportFinished];

/// Every event a customer may subscribe to.
pub const CUSTOMER_EVENTS: [EventType; 8] = [
    EventType::UserRegistered,
    EventType::OrderCreated,
    EventType::PaymentSuccessful,
    EventType::PaymentFailed,
    EventType::OrderCancelled,
    EventType::RefundIssued,
    EventType::ShipmentShipped,
    EventType::ShipmentDelivered,
];

/// Subscribing and unsubscribing: a duplicate, one too many or a spent send budget is final;
/// anything else refused is a concurrent change the client may retry.
const SUBSCRIBING: Commit = Commit::new("notifications.subscribe", || {
    Error::conflict("a concurrent change interfered; try again")
});

/// The events `requested` (all `user` may have when absent), each once; an event reserved
/// for admins is a problem naming its position.
fn allowed_events(
    user: &User,
    requested: Option<&[EventType]>,
    problems: &mut Vec<FieldError>,
) -> Vec<EventType> {
    let allowed: Vec<EventType> = if user.is_admin() {
        CUSTOMER_EVENTS
            .iter()
            .chain(&ADMIN_EVENTS)
            .copied()
            .collect()
    } else {
        CUSTOMER_EVENTS.to_vec()
    };
    let mut events = Vec::new();
    for (index, event) in requested.unwrap_or(&allowed).iter().enumerate() {
        if !allowed.contains(event) {
            problems.push(FieldError::new(
                format!("events[{index}]"),
                format!("only admins may subscribe to {}", event.as_str()),
            ));
        } else if !events.contains(event) {
            events.push(*event);
        }
    }
    events
}

/// Where a subscription's refusable writes sit in its transaction.
struct Positions {
    claimed: usize,
    counted: usize,
    /// The send budget's write and how long until it has room again.
    budgeted: Option<(usize, u64)>,
}

impl Positions {
    /// What a refusal at `failed` tells the subscriber; every refusal is final.
    fn refused(&self, channel: Channel, failed: &[usize]) -> Error {
        if failed.contains(&self.claimed) {
            return Error::Conflict {
                message: format!(
                    "you are already subscribed with this {} target",
                    channel.as_str()
                ),
                fields: vec![FieldError::new("target", "already subscribed")],
            };
        }
        if failed.contains(&self.counted) {
            return Error::conflict(format!(
                "at most {MAX_SUBSCRIPTIONS} subscriptions per user"
            ));
        }
        match self.budgeted {
            Some((at, retry_after_secs)) if failed.contains(&at) => {
                Error::Throttled { retry_after_secs }
            }
            _ => Error::conflict("a concurrent change interfered; try again"),
        }
    }
}

/// A short digest naming a target in keys (targets may be long URLs).
pub fn digest(text: &str) -> String {
    crate::digest::sha256_hex(text.as_bytes(), 10)
}

impl Notifications {
    #[tracing::instrument(target = "bazaar::span", name = "notifications.subscribe", skip_all)]
    pub async fn subscribe(
        &self,
        user: &User,
        request: SubscribeRequest,
        correlation_id: &str,
    ) -> Result<Subscribed> {
        // Each account that may send codes to others' targets has proved a mailbox of its own.
        if !user.email_verified {
            return Err(Error::Forbidden(
                "verify your account e-mail address before subscribing".to_owned(),
            ));
        }
        let (channel, target, events) = self.checked(user, &request)?;
        let signing_secret = (channel == Channel::Webhook).then(|| {
            let mut bytes = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut bytes);
            format!("whsec_{}", URL_SAFE_NO_PAD.encode(bytes))
        });
        let subscription = Subscription {
            id: self.ports.ids.fresh(),
            user_id: user.id.clone(),
            channel,
            target: target.clone(),
            events,
            signing_secret: signing_secret.clone(),
            created_at: self.ports.clock.now(),
            status: Some(match verification::proof_event(channel) {
                Some(_) => SubscriptionStatus::Pending,
                None => SubscriptionStatus::Active,
            }),
        };
        let counter = keys::subscription_count(&user.id);
        crate::counter::create_if_missing(self.ports.store.as_ref(), &counter, None).await?;
        let planned = &subscription;
        SUBSCRIBING
            .run(&self.ports, move |_: Round| async move {
                self.subscribing(user, planned, correlation_id)
                    .await
                    .map(Step::from)
            })
            .await?;
        Ok(Subscribed {
            subscription: SubscriptionView::from(&subscription),
            signing_secret,
        })
    }

    /// The request's channel, normalised target and events (each once), or every problem
    /// with it at once.
    fn checked(
        &self,
        user: &User,
        request: &SubscribeRequest,
    ) -> Result<(Channel, String, Vec<EventType>)> {
        let mut problems = Vec::new();
        if let Err(Error::Validation(errors)) = validation::check(request) {
            problems.extend(errors);
        }
        let channel = request.channel;
        let mut target = String::new();
        if let (Some(channel), Some(raw)) = (channel, &request.target) {
            match targets::check(channel, raw, self.settings.allow_private_targets) {
                Ok(checked) => target = checked,
                Err(message) => problems.push(FieldError::new("target", message)),
            }
        }
        if channel == Some(Channel::Sms)
            && !target.is_empty()
            && let Some(allowed) = &self.settings.sms_countries
            && !policy::sms_allowed(Some(allowed), &target)
        {
            problems.push(FieldError::new(
                "target",
                format!(
                    "SMS are only sent to numbers starting with {}",
                    allowed.join(", ")
                ),
            ));
        }
        let events = allowed_events(user, request.events.as_deref(), &mut problems);
        match channel.filter(|_| problems.is_empty()) {
            Some(channel) => Ok((channel, target, events)),
            None => {
                problems.sort_by(|a, b| a.field.cmp(&b.field));
                Err(Error::Validation(problems))
            }
        }
    }

    /// The writes of a subscription: itself, the claim on its (channel, target), one of the
    /// user's bounded slots and one index entry per event; for a target that needs proof,
    /// exactly one code or test message, within the target's send budget.
    async fn subscribing(
        &self,
        user: &User,
        subscription: &Subscription,
        correlation_id: &str,
    ) -> Result<Tx<()>> {
        let channel = subscription.channel;
        let target = &subscription.target;
        let mut tx = Tx::new(());
        tx.write(TxOp::Put {
            item: subscription.to_item()?,
            cond: Cond::NotExists,
        });
        let claim = keys::subscription_claim(&user.id, channel.as_str(), &digest(target));
        let claimed = tx.write(TxOp::Put {
            item: entity::keyed(&claim, json!({"subscription_id": subscription.id})),
            cond: Cond::NotExists,
        });
        let counted = tx.write(TxOp::Update {
            key: keys::subscription_count(&user.id),
            updates: vec![Update::add(counter::COUNT, 1)],
            cond: Cond::at_most(counter::COUNT, MAX_SUBSCRIPTIONS - 1),
        });
        for event in &subscription.events {
            let entry = keys::subscriber_entry(self.ports.shards, event.as_str(), &subscription.id);
            tx.write(TxOp::Put {
                item: entity::keyed(
                    &entry,
                    json!({"user_id": user.id, "subscription_id": subscription.id}),
                ),
                cond: Cond::NotExists,
            });
        }
        let mut budgeted = None;
        if let Some(event) = verification::proof_event(channel) {
            let message = ProofMessage::new(
                &self.ports,
                user,
                Medium::from(channel),
                target,
                Some(&subscription.id),
                event,
                correlation_id,
            )?;
            let (budget, retry_after_secs) =
                verification::take_send(&self.ports, channel, target).await?;
            budgeted = Some((tx.write(budget), retry_after_secs));
            tx.write(message.record()?);
            tx.send(message.staged);
        }
        let at = Positions {
            claimed,
            counted,
            budgeted,
        };
        Ok(tx.final_refusals(move |failed| Some(at.refused(channel, failed))))
    }

    #[tracing::instrument(
        target = "bazaar::span",
        name = "notifications.subscriptions",
        skip_all
    )]
    pub async fn subscriptions(&self, user: &User) -> Result<Listing<SubscriptionView>> {
        let items = self.user_subscriptions(&user.id).await?;
        Ok(Listing {
            items: items.iter().map(SubscriptionView::from).collect(),
            next_cursor: None,
        })
    }

    /// Every subscription of a user (at most [`MAX_SUBSCRIPTIONS`]: one page).
    #[tracing::instrument(
        target = "bazaar::span",
        name = "notifications.user_subscriptions",
        skip_all
    )]
    pub async fn user_subscriptions(&self, user_id: &UserId) -> Result<Vec<Subscription>> {
        let query = Query::partition(Index::Primary, keys::user_partition(user_id))
            .prefix(keys::SUBSCRIPTION_PREFIX)
            .limit(100);
        let page = self.ports.store.query(&query).await?;
        page.items
            .into_iter()
            .map(Subscription::from_item)
            .collect()
    }

    #[tracing::instrument(target = "bazaar::span", name = "notifications.unsubscribe", skip_all)]
    pub async fn unsubscribe(&self, user: &User, subscription_id: &SubscriptionId) -> Result<()> {
        let key = keys::subscription(&user.id, subscription_id);
        let subscription = self
            .ports
            .store
            .get(&key)
            .await?
            .map(Subscription::from_item)
            .transpose()?
            .ok_or(Error::NotFound("subscription"))?;
        let claim = keys::subscription_claim(
            &user.id,
            subscription.channel.as_str(),
            &digest(&subscription.target),
        );
        let mut tx = Tx::new(());
        tx.write_all([
            TxOp::Delete {
                key,
                cond: Cond::Exists,
            },
            TxOp::Delete {
                key: claim,
                cond: Cond::Always,
            },
            TxOp::Update {
                key: keys::subscription_count(&user.id),
                updates: vec![Update::add(counter::COUNT, -1)],
                cond: Cond::at_least(counter::COUNT, 1),
            },
        ]);
        for event in &subscription.events {
            tx.write(TxOp::Delete {
                key: keys::subscriber_entry(self.ports.shards, event.as_str(), &subscription.id),
                cond: Cond::Always,
            });
            // Where versions before sharding listed it (deleting nothing is no failure).
            tx.write(TxOp::Delete {
                key: keys::unsharded_subscriber_entry(event.as_str(), &subscription.id),
                cond: Cond::Always,
            });
        }
        // Gone meanwhile means gone.
        let tx = tx.final_refusals(|failed| {
            failed
                .contains(&0)
                .then_some(Error::NotFound("subscription"))
        });
        SUBSCRIBING.write(&self.ports, tx).await
    }

    /// What was sent to the user, newest first, with each delivery's status.
    #[tracing::instrument(target = "bazaar::span", name = "notifications.log", skip_all)]
    pub async fn log(&self, user: &User, page: &PageRequest) -> Result<Listing<NotificationView>> {
        let query = page.apply(
            Query::partition(Index::Primary, keys::user_partition(&user.id))
                .prefix(keys::NOTIFICATION_PREFIX)
                .descending(),
        )?;
        let result = self.ports.store.query(&query).await?;
        let items = result
            .items
            .into_iter()
            .map(|item| Delivery::from_item(item).map(|delivery| NotificationView::from(&delivery)))
            .collect::<Result<_>>()?;
        Ok(Listing {
            items,
            next_cursor: result.last_key.as_ref().map(pagination::encode),
        })
    }

    /// Queues an admin's message to one user or to every subscriber of an event.
    #[tracing::instrument(target = "bazaar::span", name = "notifications.notify", skip_all)]
    pub async fn notify(
        &self,
        admin: &User,
        request: NotifyRequest,
        correlation_id: &str,
    ) -> Result<AdminMessage> {
        let mut problems = match validation::check(&request) {
            Err(Error::Validation(errors)) => errors,
            _ => Vec::new(),
        };
        if request.user_id.is_some() == request.event.is_some() {
            problems.push(FieldError::new(
                "user_id",
                "give exactly one of `user_id` and `event`",
            ));
        }
        if !problems.is_empty() {
            problems.sort_by(|a, b| a.field.cmp(&b.field));
            return Err(Error::Validation(problems));
        }
        // Only looked up: an unknown id, well formed or not, is the same 422.
        let user_id = request.user_id.map(UserId::trusted);
        if let Some(user_id) = &user_id
            && self.ports.store.get(&keys::user(user_id)).await?.is_none()
        {
            return Err(Error::invalid("user_id", "no such user"));
        }
        let message = AdminMessage {
            id: self.ports.ids.fresh(),
            user_id,

            event: request.event,
            subject: request.subject.unwrap_or_default().trim().to_owned(),
            message: request.message.unwrap_or_default().trim().to_owned(),
            sent_by: admin.id.clone(),
            correlation_id: correlation_id.to_owned(),
        };
        let body = json!({"kind": "admin_message", "message": message});
        let staged = Staged::command(
            outbox::NOTIFICATIONS_QUEUE,
            &message.id,
            &body,
            self.ports.clock.now().timestamp(),
        )?;
        let mut tx = Tx::new(message);
        tx.send(staged);
        SUBSCRIBING.write(&self.ports, tx).await
    }
}
