//! Proof of ownership of a target before anything else is sent to it.
//!
//! E-mail and SMS targets (an account's address, a subscription) receive one message holding
//! a short code; the owner proves the target is theirs by sending the code back. Slack and
//! webhook targets receive one signed test delivery and prove it by answering 2xx.
//!
//! - Codes are 6 digits from the operating system's CSPRNG, minted by the delivery step just
//!   before the message is sent, so that the plain code exists only in the message itself.
//!   The store keeps an HMAC-SHA256 of it under a random per-code key; a guess is compared
//!   in constant time.
//! - A code lives [`CODE_TTL_SECONDS`]; every guess is first counted by a conditional update
//!   (at most [`MAX_WRONG_TRIES`]: no race lets one more guess be compared), then compared.
//!   A locked or expired code is replaced by asking for a new one.
//! - Every code or test message counts against its target's hourly budget
//!   ([`MAX_SENDS_PER_HOUR`], across all accounts), so re-subscribing, resending or many
//!   accounts cannot turn verification itself into a way of pumping messages.

use crate::ids::SubscriptionId;
use crate::ids::{EventId, NotificationId};
use crate::shards::Shards;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::rngs::OsRng;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::counter::COUNT;
use crate::entity::{self, Stored};
use crate::error::{Error, FieldError, Result};
use crate::keys;
use crate::notifications::model::{
    DeliverCommand, Delivery, DeliveryStatus, Medium, Subscription, SubscriptionStatus,
};
use crate::notifications::requests::VerifyRequest;
use crate::notifications::subscriptions::digest;
use crate::notifications::{DELIVERIES_QUEUE, Notifications};
use crate::outbox::Staged;
use crate::ports::notifier::Channel;
use crate::ports::store::EXPIRES_AT;
use crate::ports::{Cond, Key, StoreError, TxOp, Update};
use crate::users::User;

/// How long a code may be used.
pub const CODE_TTL_SECONDS: i64 = 15 * 60;
/// Wrong guesses that lock a code.
pub const MAX_WRONG_TRIES: i64 = 5;
/// Codes and test messages one target may receive per hour: the first and three resends.
pub const MAX_SENDS_PER_HOUR: i64 = 4;
/// Digits of a code.
const CODE_DIGITS: usize = 6;

/// The account e-mail's code message.
pub const EMAIL_VERIFICATION: &str = "EMAIL_VERIFICATION";
/// An e-mail or SMS subscription's code message.
pub const SUBSCRIPTION_VERIFICATION: &str = "SUBSCRIPTION_VERIFICATION";
/// A Slack or webhook subscription's signed test delivery.
pub const SUBSCRIPTION_TEST: &str = "SUBSCRIPTION_TEST";

/// The code subject of the account e-mail.
const EMAIL_SUBJECT: &str = "EMAIL";

/// The attributes of a stored code (besides the table's `expires_at`): the key of its
/// digest, the digest, the guesses counted, and when the code itself expires (earlier than
/// the item, so that an expired code is told apart from none).
const SALT: &str = "salt";
const DIGEST: &str = "digest";
const ATTEMPTS: &str = "attempts";
const CODE_EXPIRES_AT: &str = "code_expires_at";

/// Whether a delivery proves ownership (and so may go to a target not yet verified).
pub fn is_verification(event: &str) -> bool {
    [
        EMAIL_VERIFICATION,
        SUBSCRIPTION_VERIFICATION,
        SUBSCRIPTION_TEST,
    ]
    .contains(&event)
}

/// How a channel proves ownership: `None` when it needs no proof (push endpoints are
/// created by the shop's own app in its own SNS account).
pub fn proof_event(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::Email | Channel::Sms => Some(SUBSCRIPTION_VERIFICATION),
        Channel::Slack | Channel::Webhook => Some(SUBSCRIPTION_TEST),
        Channel::Push => None,
    }
}

fn subscription_subject(subscription_id: &SubscriptionId) -> String {
    format!("SUBSCRIPTION#{subscription_id}")
}

/// A fresh code, uniformly drawn.
fn new_code() -> String {
    let number: u32 = OsRng.gen_range(0..10u32.pow(CODE_DIGITS as u32));
    format!("{number:0width$}", width = CODE_DIGITS)
}

fn mac(salt: &[u8], key: &Key, code: &str) -> Result<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(salt)
        .map_err(|error| Error::Internal(format!("code key: {error}")))?;
    // Bound to where the code is stored: a digest copied elsewhere proves nothing.
    mac.update(format!("{}|{}|{code}", key.pk, key.sk).as_bytes());
    Ok(mac)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

/// The stored form of a new code under `key`.
fn code_item(key: &Key, code: &str, now: i64) -> Result<crate::ports::Item> {
    let mut salt = [0u8; 16];
    OsRng.fill(&mut salt);
    let digest = crate::digest::hex(&mac(&salt, key, code)?.finalize().into_bytes());
    Ok(entity::keyed(
        key,
        json!({
            SALT: crate::digest::hex(&salt),
            DIGEST: digest,
            ATTEMPTS: 0,
            CODE_EXPIRES_AT: now + CODE_TTL_SECONDS,
            EXPIRES_AT: now + CODE_TTL_SECONDS + 3600,
        }),
    ))
}

/// Whether `code` looks like a code at all (checked before a try is counted).
fn well_formed(code: &str) -> bool {
    code.len() == CODE_DIGITS && code.bytes().all(|byte| byte.is_ascii_digit())
}

fn no_code() -> Error {
    Error::conflict("no code is waiting for this target: request a new one")
}

fn locked() -> Error {
    Error::conflict("too many wrong codes: request a new one")
}

/// Checks a guess against the code stored under `key`, counting the try first. Returns the
/// code's digest: the consuming write is conditional on it.
async fn check_code(ports: &crate::Ports, key: &Key, code: &str) -> Result<String> {
    let code = code.trim();
    if !well_formed(code) {
        return Err(Error::invalid("code", "must be the 6-digit code we sent"));
    }
    let now = ports.clock.now().timestamp();
    let item = ports.store.get(key).await?.ok_or_else(no_code)?;
    let text = |name: &str| item.get(name).and_then(Value::as_str).unwrap_or_default();
    let stored = text(DIGEST).to_owned();
    let salt = unhex(text(SALT)).ok_or_else(|| Error::Internal("malformed code".into()))?;
    let expires = item
        .get(CODE_EXPIRES_AT)
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if expires <= now {
        return Err(Error::conflict("the code has expired: request a new one"));
    }
    let counted = ports
        .store
        .update(
            key,
            vec![Update::add(ATTEMPTS, 1)],
            Cond::All(vec![
                Cond::eq(DIGEST, stored.as_str()),
                Cond::at_most(ATTEMPTS, MAX_WRONG_TRIES - 1),
            ]),
        )
        .await;
    let attempts = match counted {
        Ok(after) => after.get(ATTEMPTS).and_then(Value::as_i64).unwrap_or(0),
        Err(StoreError::ConditionFailed) => {
            // Locked, or replaced by a new code meanwhile.
            return match ports.store.get(key).await? {
                Some(current) if current.get(DIGEST) == item.get(DIGEST) => Err(locked()),
                Some(_) => Err(Error::conflict("a new code was sent meanwhile: use it")),
                None => Err(no_code()),
            };
        }
        Err(other) => return Err(other.into()),
    };
    let expected = unhex(&stored).ok_or_else(|| Error::Internal("malformed code".into()))?;
    if mac(&salt, key, code)?.verify_slice(&expected).is_err() {
        let message = match MAX_WRONG_TRIES - attempts {
            left if left > 0 => format!("is wrong; {left} tries left"),
            _ => "is wrong; no tries left: request a new code".to_owned(),
        };
        return Err(Error::Validation(vec![FieldError::new("code", message)]));
    }
    Ok(stored)
}

/// What verification needs to send one message: the delivery, its send command, and the
/// writes (delivery, budget) to add to the transaction that causes it.
pub(crate) struct ProofMessage {
    pub delivery: Delivery,
    pub staged: Staged,
}

impl ProofMessage {
    /// The delivery of `event` to `target` on `medium`, with its send command, for the request
    /// `correlation_id` names.
    pub fn new(
        ports: &crate::Ports,
        user: &User,
        medium: Medium,
        target: &str,
        subscription_id: Option<&SubscriptionId>,
        event: &str,
        correlation_id: &str,
    ) -> Result<Self> {
        let now: DateTime<Utc> = ports.clock.now();
        let id: EventId = ports.ids.fresh();
        let data = json!({
            "user_id": user.id,
            "username": user.username,
            "first_name": user.first_name,
            "subscription_id": subscription_id,
        });
        let payload = json!({
            "id": id,
            "type": event,
            "occurred_at": now,
            "correlation_id": correlation_id,
            "data": {"subscription_id": subscription_id},
        })
        .to_string();
        let delivery = Delivery {
            id: NotificationId::trusted(id.as_str()),
            user_id: user.id.clone(),
            event: event.to_owned(),
            event_id: id.clone(),
            channel: medium,
            // A Slack or webhook URL is a secret: the log keeps its origin, and the delivery
            // step reads the URL from the subscription.
            target: crate::notifications::fanout::logged_target(medium, Some(target.to_owned())),
            subscription_id: subscription_id.cloned(),
            language: user.language,
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_error: None,
            created_at: now,
            updated_at: now,
            data,
            payload,
            lease_until: 0,
        };
        let command = DeliverCommand {
            user_id: user.id.clone(),
            notification_id: NotificationId::trusted(id.as_str()),

            correlation_id: correlation_id.to_owned(),
        };
        let staged = Staged::command(DELIVERIES_QUEUE, &id, &command, now.timestamp())?;
        Ok(Self { delivery, staged })
    }

    /// The delivery's record, to write in the causing transaction (its send command goes
    /// with it, through the transaction's outbox).
    pub fn record(&self) -> Result<TxOp> {
        Ok(TxOp::Put {
            item: self.delivery.to_item()?,
            cond: Cond::NotExists,
        })
    }

    /// The delivery and its outbox entry, to write in the causing transaction.
    pub fn writes(&self, shards: Shards) -> Result<Vec<TxOp>> {
        Ok(vec![self.record()?, self.staged.write(shards)?])
    }
}

/// The hour window of `now`, and the seconds until it ends.
fn window(now: i64) -> (i64, u64) {
    let window = now.div_euclid(3600);
    (window, ((window + 1) * 3600 - now).max(1) as u64)
}

/// Makes sure the target's counter of this hour exists (a conditional add needs it), and
/// returns the transaction step that takes one send from its budget (refused when spent),
/// with the seconds until the budget renews.
pub(crate) async fn take_send(
    ports: &crate::Ports,
    channel: Channel,
    target: &str,
) -> Result<(TxOp, u64)> {
    let now = ports.clock.now().timestamp();
    let (window, retry_after) = window(now);
    let key = keys::verification_sends(channel.as_str(), &digest(target), window);
    crate::counter::create_if_missing(ports.store.as_ref(), &key, Some((window + 2) * 3600))
        .await?;
    let op = TxOp::Update {
        key,
        updates: vec![Update::add(COUNT, 1)],
        cond: Cond::at_most(COUNT, MAX_SENDS_PER_HOUR - 1),
    };
    Ok((op, retry_after))
}

/// The transaction step that counts one send to a target without refusing it (the one
/// message a new account's address gets: a new account means a new address).
pub(crate) fn count_send(ports: &crate::Ports, channel: Channel, target: &str) -> TxOp {
    let (window, _) = window(ports.clock.now().timestamp());
    TxOp::Update {
        key: keys::verification_sends(channel.as_str(), &digest(target), window),
        updates: vec![
            Update::add(COUNT, 1),
            Update::set(EXPIRES_AT, (window + 2) * 3600),
        ],
        cond: Cond::Always,
    }
}

/// The answer when a target's hourly budget is spent.
fn spent(retry_after_secs: u64) -> Error {
    Error::Throttled { retry_after_secs }
}

impl Notifications {
    /// Checks a subscription's code and activates it.
    #[tracing::instrument(
        target = "bazaar::span",
        name = "notifications.verify_subscription",
        skip_all
    )]
    pub async fn verify_subscription(
        &self,
        user: &User,
        subscription_id: &SubscriptionId,
        request: VerifyRequest,
    ) -> Result<Subscription> {
        crate::validation::check(&request)?;
        let code = request.code.unwrap_or_default();
        let mut subscription = self.owned_subscription(user, subscription_id).await?;
        if subscription.status() == SubscriptionStatus::Active {
            return Ok(subscription);
        }
        if proof_event(subscription.channel) != Some(SUBSCRIPTION_VERIFICATION) {
            return Err(Error::conflict(
                "this subscription is verified by its test delivery, not by a code",
            ));
        }
        let key = keys::verification_code(&user.id, &subscription_subject(subscription_id));
        let digest = check_code(&self.ports, &key, &code).await?;
        let ops = vec![
            TxOp::Update {
                key: subscription.key(),
                updates: vec![Update::set(
                    Subscription::STATUS,
                    SubscriptionStatus::Active.as_str(),
                )],
                cond: Cond::Exists,
            },
            TxOp::Delete {
                key,
                cond: Cond::eq(DIGEST, digest),
            },
        ];
        match self.ports.store.transact(ops).await {
            Ok(()) => {}
            Err(StoreError::TransactionCancelled { failed }) if failed.contains(&0) => {
                return Err(Error::NotFound("subscription"));
            }
            Err(StoreError::TransactionCancelled { .. } | StoreError::TransactionConflict) => {
                return Err(Error::conflict("a new code was sent meanwhile: use it"));
            }
            Err(other) => return Err(other.into()),
        }
        subscription.status = Some(SubscriptionStatus::Active);
        Ok(subscription)
    }

    /// Sends a pending subscription a new code (or test delivery), within its target's budget.
    #[tracing::instrument(target = "bazaar::span", name = "notifications.resend_proof", skip_all)]
    pub async fn resend_proof(
        &self,
        user: &User,
        subscription_id: &SubscriptionId,
        correlation_id: &str,
    ) -> Result<()> {
        let subscription = self.owned_subscription(user, subscription_id).await?;
        let event = proof_event(subscription.channel)
            .filter(|_| subscription.status() == SubscriptionStatus::Pending)
            .ok_or_else(|| Error::conflict("this subscription is already active"))?;
        let message = ProofMessage::new(
            &self.ports,
            user,
            Medium::from(subscription.channel),
            &subscription.target,
            Some(&subscription.id),
            event,
            correlation_id,
        )?;
        let precondition = TxOp::Check {
            key: subscription.key(),
            cond: Cond::Exists,
        };
        self.send_proof(
            message,
            subscription.channel,
            &subscription.target,
            precondition,
            || Error::NotFound("subscription"),
        )
        .await
    }

    /// Checks the code sent to the account e-mail and marks the address verified.
    #[tracing::instrument(
        target = "bazaar::span",
        name = "notifications.verify_account_email",
        skip_all
    )]
    pub async fn verify_account_email(&self, user: &User, request: VerifyRequest) -> Result<()> {
        crate::validation::check(&request)?;
        if user.email_verified {
            return Ok(());
        }
        let code = request.code.unwrap_or_default();
        let key = keys::verification_code(&user.id, EMAIL_SUBJECT);
        let digest = check_code(&self.ports, &key, &code).await?;
        let ops = vec![
            TxOp::Update {
                key: keys::user(&user.id),
                updates: vec![Update::set(User::EMAIL_VERIFIED, true)],
                // The code proves this address, not whatever the account holds now.
                cond: Cond::eq(User::EMAIL, user.email.as_str()),
            },
            TxOp::Delete {
                key,
                cond: Cond::eq(DIGEST, digest),
            },
        ];
        match self.ports.store.transact(ops).await {
            Ok(()) => Ok(()),
            Err(StoreError::TransactionCancelled { .. } | StoreError::TransactionConflict) => {
                Err(Error::conflict("the account changed meanwhile; try again"))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Sends the account e-mail a new code, within the address's budget.
    #[tracing::instrument(
        target = "bazaar::span",
        name = "notifications.resend_account_email_code",
        skip_all
    )]
    pub async fn resend_account_email_code(&self, user: &User, correlation_id: &str) -> Result<()> {
        if user.email_verified {
            return Err(Error::conflict("this e-mail address is already verified"));
        }
        let message = account_email_message(&self.ports, user, correlation_id)?;
        let precondition = TxOp::Check {
            key: keys::user(&user.id),
            cond: Cond::eq(User::EMAIL_VERIFIED, false),
        };
        self.send_proof(message, Channel::Email, &user.email, precondition, || {
            Error::conflict("this e-mail address is already verified")
        })
        .await
    }

    /// Writes a proof message (a code or test delivery) with one unit of its target's hourly
    /// budget, in one transaction guarded by `precondition` (`refused` when it fails), then
    /// hands it to its queue.
    async fn send_proof(
        &self,
        message: ProofMessage,
        channel: Channel,
        target: &str,
        precondition: TxOp,
        refused: impl FnOnce() -> Error,
    ) -> Result<()> {
        let (budget, retry_after) = take_send(&self.ports, channel, target).await?;
        let mut ops = vec![precondition, budget];
        ops.extend(message.writes(self.ports.shards)?);
        match self.ports.store.transact(ops).await {
            Ok(()) => {}
            Err(StoreError::TransactionCancelled { failed }) if failed.contains(&0) => {
                return Err(refused());
            }
            Err(StoreError::TransactionCancelled { failed }) if failed.contains(&1) => {
                return Err(spent(retry_after));
            }
            Err(StoreError::TransactionConflict) => {
                return Err(Error::conflict("a concurrent change interfered; try again"));
            }
            Err(other) => return Err(other.into()),
        }
        crate::outbox::deliver(&self.ports, std::slice::from_ref(&message.staged)).await;
        Ok(())
    }

    async fn owned_subscription(
        &self,
        user: &User,
        subscription_id: &SubscriptionId,
    ) -> Result<Subscription> {
        self.ports
            .store
            .get(&keys::subscription(&user.id, subscription_id))
            .await?
            .map(Subscription::from_item)
            .transpose()?
            .ok_or(Error::NotFound("subscription"))
    }

    /// The data a delivery is rendered from: for a code message, a freshly minted code
    /// (its digest stored, replacing any earlier code of the same target).
    pub(crate) async fn message_data(&self, delivery: &Delivery) -> Result<Value> {
        let subject = match (delivery.event.as_str(), &delivery.subscription_id) {
            (EMAIL_VERIFICATION, _) => EMAIL_SUBJECT.to_owned(),
            (SUBSCRIPTION_VERIFICATION, Some(id)) => subscription_subject(id),
            _ => return Ok(delivery.data.clone()),
        };
        let key = keys::verification_code(&delivery.user_id, &subject);
        let code = new_code();
        let item = code_item(&key, &code, self.ports.clock.now().timestamp())?;
        self.ports.store.put(item, Cond::Always).await?;
        let mut data = delivery.data.clone();
        if let Value::Object(fields) = &mut data {
            fields.insert("code".into(), code.into());
            fields.insert("minutes".into(), (CODE_TTL_SECONDS / 60).into());
        }
        Ok(data)
    }

    /// Why a delivery may not be sent (its target is not verified), checked just before it
    /// is: fan-out already leaves such targets out, this covers what changed since. `owner`
    /// and `subscription` are the delivery's, as the delivery step read them.
    pub(crate) fn unproved_target(
        delivery: &Delivery,
        owner: Option<&User>,
        subscription: Option<&Subscription>,
    ) -> Option<String> {
        if is_verification(&delivery.event) {
            return None;
        }
        if delivery.subscription_id.is_some() {
            // The delivery step reports deleted subscriptions itself.
            let active = subscription.is_none_or(|s| s.status() == SubscriptionStatus::Active);
            return (!active).then(|| "the target is not verified".to_owned());
        }
        if delivery.channel == Medium::Email {
            let verified = owner.is_some_and(|user| user.email_verified);
            return (!verified).then(|| "the account e-mail is not verified".to_owned());
        }
        None
    }

    /// After a delivery was sent: a 2xx answer to a test delivery proves the target.
    pub(crate) async fn after_sent(&self, delivery: &Delivery) -> Result<()> {
        let (SUBSCRIPTION_TEST, Some(id)) = (delivery.event.as_str(), &delivery.subscription_id)
        else {
            return Ok(());
        };
        let updated = self
            .ports
            .store
            .update(
                &keys::subscription(&delivery.user_id, id),
                vec![Update::set(
                    Subscription::STATUS,
                    SubscriptionStatus::Active.as_str(),
                )],
                Cond::Exists,
            )
            .await;
        match updated {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }
}

/// The one message a new (or unverified) account's address gets: its code.
pub(crate) fn account_email_message(
    ports: &crate::Ports,
    user: &User,
    correlation_id: &str,
) -> Result<ProofMessage> {
    ProofMessage::new(
        ports,
        user,
        Medium::Email,
        &user.email,
        None,
        EMAIL_VERIFICATION,
        correlation_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::BTreeSet<String> = (0..50).map(|_| new_code()).collect();
        assert!(codes.iter().all(|code| well_formed(code)), "{codes:?}");
        assert!(codes.len() > 40, "{codes:?}");
    }

    #[test]
    fn a_stored_code_matches_only_itself_and_only_where_it_is_stored() {
        let key = Key::new("USER#u1", "VERIFY#EMAIL");
        let item = code_item(&key, "123456", 0).unwrap_or_default();
        let text = |name: &str| item.get(name).and_then(Value::as_str).unwrap_or_default();
        assert!(!item.values().any(|value| value == "123456"), "{item:?}");
        // Codes already stored keep these names.
        let names: Vec<&str> = item.keys().map(String::as_str).collect();
        let stored = [
            "attempts",
            "code_expires_at",
            "digest",
            "expires_at",
            "pk",
            "salt",
            "sk",
        ];
        assert_eq!(names, stored);
        let number = |name: &str| item.get(name).and_then(Value::as_i64);
        assert_eq!(number(ATTEMPTS), Some(0));
        assert_eq!(number(CODE_EXPIRES_AT), Some(CODE_TTL_SECONDS));
        assert_eq!(number(EXPIRES_AT), Some(CODE_TTL_SECONDS + 3600));
        let salt = unhex(text(SALT)).unwrap_or_default();
        let expected = unhex(text(DIGEST)).unwrap_or_default();
        let matches = |key: &Key, code: &str| {
            mac(&salt, key, code).is_ok_and(|mac| mac.verify_slice(&expected).is_ok())
        };
        assert!(matches(&key, "123456"));
        assert!(!matches(&key, "123457"));
        assert!(!matches(&Key::new("USER#u2", "VERIFY#EMAIL"), "123456"));
    }

    #[test]
    fn windows_end_on_the_hour() {
        assert_eq!(window(7200), (2, 3600));
        assert_eq!(window(7201), (2, 3599));
        assert_eq!(window(10_799), (2, 1));
    }
}
