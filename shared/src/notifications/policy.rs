//! Whether a delivery may go out at all, decided by the delivery step just before it sends:
//! a deactivated (or deleted) account receives nothing; SMS go only to the countries an
//! operator allows (`BAZAAR_SMS_COUNTRIES`); and daily send budgets cap what one account
//! receives on the paid channels (e-mail, SMS, push) and what one target (an address, a
//! number, an endpoint, a URL) receives across all accounts, so that free accounts cannot
//! pump paid messages at victims.
//!
//! Budgets are counters in the store, one per account or target and UTC day, bumped by a
//! conditional add in the same transaction that marks the delivery as counted: a delivery
//! is counted once however often its command is redelivered, and two workers can never both
//! take the last unit. Counters carry `expires_at` and vanish two days later. Targets are
//! named in keys by a digest, never in plain.

use serde_json::Value;

use crate::counter;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::keys;
use crate::notifications::Notifications;
use crate::notifications::model::Delivery;
use crate::ports::notifier::Channel;
use crate::ports::{Cond, Key, StoreError, TxOp, Update};
use crate::users::User;

/// The delivery attribute that records that its budget units were taken.
pub const BUDGET_CHARGED: &str = "budget_charged";

const DAY_SECONDS: i64 = 86_400;

/// Daily send budgets (per UTC day).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendBudget {
    /// E-mail, SMS and push messages one account receives (`BAZAAR_SEND_BUDGET_PER_ACCOUNT`).
    pub per_account: u32,
    /// Messages one e-mail address, phone number or push endpoint receives, across all
    /// accounts (`BAZAAR_SEND_BUDGET_PER_TARGET`).
    pub per_target: u32,
    /// Posts one Slack or webhook URL receives, across all accounts
    /// (`BAZAAR_SEND_BUDGET_PER_URL`).
    pub per_url: u32,
}

impl Default for SendBudget {
    fn default() -> Self {
        Self {
            per_account: 50,
            per_target: 20,
            per_url: 500,
        }
    }
}

/// Why a delivery was not sent. The texts are the shop's own, safe to show to the customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    AccountInactive,
    CountryNotAllowed,
    AccountBudget,
    TargetBudget,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::AccountInactive => "not sent: the account is deactivated",
            Refusal::CountryNotAllowed => "not sent: SMS to this country are not allowed",
            Refusal::AccountBudget => "not sent: the account's daily message limit was reached",
            Refusal::TargetBudget => "not sent: the target's daily message limit was reached",
        }
    }
}

/// Parses `BAZAAR_SMS_COUNTRIES`: comma-separated calling-code prefixes such as `+98,+1`.
pub fn parse_sms_countries(text: &str) -> Result<Vec<String>, String> {
    let prefixes: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|prefix| !prefix.is_empty())
        .map(str::to_owned)
        .collect();
    let valid = |prefix: &String| {
        prefix.len() >= 2
            && prefix.len() <= 7
            && prefix.starts_with('+')
            && prefix[1..].bytes().all(|byte| byte.is_ascii_digit())
            && !prefix[1..].starts_with('0')
    };
    match prefixes.iter().find(|prefix| !valid(prefix)) {
        Some(bad) => Err(format!(
            "calling-code prefixes like +98,+1 ({bad:?} is not one)"
        )),
        None if prefixes.is_empty() => Err("at least one calling-code prefix like +98".to_owned()),
        None => Ok(prefixes),
    }
}

/// Whether SMS may go to `number` (E.164): always when no allow-list is set.
pub fn sms_allowed(allowed: Option<&[String]>, number: &str) -> bool {
    allowed.is_none_or(|prefixes| prefixes.iter().any(|prefix| number.starts_with(prefix)))
}

/// Whether a channel costs money per message (and so counts against the account's budget).
fn is_paid(channel: Channel) -> bool {
    matches!(channel, Channel::Email | Channel::Sms | Channel::Push)
}

impl Notifications {
    /// Why `delivery` must not be sent to `target` now, if it must not; takes the delivery's
    /// budget units when it may (once: `charged` says they were taken by an earlier try).
    pub(crate) async fn refusal(
        &self,
        delivery: &Delivery,
        owner: Option<&User>,
        channel: Channel,
        target: &str,
        charged: bool,
    ) -> Result<Option<Refusal>> {
        if !owner.is_some_and(|user| user.is_active) {
            return Ok(Some(Refusal::AccountInactive));
        }
        if channel == Channel::Sms && !sms_allowed(self.settings.sms_countries.as_deref(), target) {
            return Ok(Some(Refusal::CountryNotAllowed));
        }
        if charged {
            return Ok(None);
        }
        self.charge(delivery, channel, target).await
    }

    /// Takes one unit of each budget that applies, or none if one is spent.
    async fn charge(
        &self,
        delivery: &Delivery,
        channel: Channel,
        target: &str,
    ) -> Result<Option<Refusal>> {
        let now = self.ports.clock.now().timestamp();
        let day = now.div_euclid(DAY_SECONDS);
        let counters = counters(
            &self.settings.budget,
            channel,
            &delivery.user_id,
            target,
            day,
        );
        // Each counter starts at zero, once a day.
        let expires_at = (day + 2) * DAY_SECONDS;
        for counter in &counters {
            crate::counter::create_if_missing(
                self.ports.store.as_ref(),
                &counter.key,
                Some(expires_at),
            )
            .await?;
        }
        let taken = self
            .ports
            .store
            .transact(charge_ops(&counters, delivery.key()))
            .await;
        charge_outcome(taken, &counters)
    }
}

/// One daily budget counter a delivery takes a unit of.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Counter {
    key: Key,
    limit: u32,
    /// Why the delivery is refused when the counter is spent.
    refusal: Refusal,
}

/// The counters a delivery on `channel` to `target` counts against on `day`: the account's
/// (paid channels only) and the target's, whoever's account sends to it.
fn counters(
    budget: &SendBudget,
    channel: Channel,
    user_id: &UserId,
    target: &str,
    day: i64,
) -> Vec<Counter> {
    let target_digest =
        crate::digest::sha256_hex(format!("{}|{target}", channel.as_str()).as_bytes(), 16);
    let mut counters = Vec::new();
    if is_paid(channel) {
        counters.push(Counter {
            key: keys::send_budget("ACCOUNT", user_id, day),
            limit: budget.per_account,
            refusal: Refusal::AccountBudget,
        });
    }
    let per_target = if is_paid(channel) {
        budget.per_target
    } else {
        budget.per_url
    };
    counters.push(Counter {
        key: keys::send_budget("TARGET", &target_digest, day),
        limit: per_target,
        refusal: Refusal::TargetBudget,
    });
    counters
}

/// One transaction: a unit of every counter while it is below its limit, and the delivery
/// marked as counted, so that a redelivered command is not counted again.
fn charge_ops(counters: &[Counter], delivery: Key) -> Vec<TxOp> {
    let mut ops: Vec<TxOp> = counters
        .iter()
        .map(|counter| TxOp::Update {
            key: counter.key.clone(),
            updates: vec![Update::add(counter::COUNT, 1)],
            cond: Cond::at_most(counter::COUNT, i64::from(counter.limit) - 1),
        })
        .collect();
    ops.push(TxOp::Update {
        key: delivery,
        updates: vec![Update::set(BUDGET_CHARGED, Value::Bool(true))],
        cond: Cond::Exists,
    });
    ops
}

/// What the charging transaction's result means: a spent counter refuses the delivery; a
/// failed condition past the counters is the delivery's own (it is gone).
fn charge_outcome(taken: Result<(), StoreError>, counters: &[Counter]) -> Result<Option<Refusal>> {
    match taken {
        Ok(()) => Ok(None),
        Err(StoreError::TransactionCancelled { failed }) => {
            match failed
                .iter()
                .find_map(|index| counters.get(*index).map(|counter| counter.refusal))
            {
                Some(refusal) => Ok(Some(refusal)),
                None => Err(Error::NotFound("notification")),
            }
        }
        Err(StoreError::TransactionConflict) => Err(Error::Unavailable(
            "a send budget is being counted concurrently".into(),
        )),
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_countries_are_calling_code_prefixes() {
        assert_eq!(
            parse_sms_countries(" +98, +1 "),
            Ok(vec!["+98".to_owned(), "+1".to_owned()])
        );
        for bad in ["98", "+", "+0", "+9x", "", " , ", "+12345678"] {
            assert!(parse_sms_countries(bad).is_err(), "{bad:?} accepted");
        }
        let allowed = vec!["+98".to_owned(), "+1".to_owned()];
        assert!(sms_allowed(Some(&allowed), "+989121234567"));
        assert!(sms_allowed(Some(&allowed), "+14155550100"));
        assert!(!sms_allowed(Some(&allowed), "+447700900123"));
        assert!(sms_allowed(None, "+447700900123"));
    }

    const BUDGET: SendBudget = SendBudget {
        per_account: 50,
        per_target: 20,
        per_url: 500,
    };

    #[test]
    fn paid_channels_count_against_the_account_and_the_target() {
        let counted = counters(
            &BUDGET,
            Channel::Sms,
            &UserId::trusted("u1"),
            "+989121234567",
            7,
        );
        let limits: Vec<_> = counted.iter().map(|c| (c.limit, c.refusal)).collect();
        assert_eq!(
            limits,
            [(50, Refusal::AccountBudget), (20, Refusal::TargetBudget)]
        );
        assert_eq!(counted[0].key, keys::send_budget("ACCOUNT", "u1", 7));
        assert!(counted[1].key.pk.starts_with("BUDGET#TARGET#"));
        assert_eq!(counted[1].key.sk, "DAY#7");
        assert!(
            !counted[1].key.pk.contains("+98912"),
            "targets are named by a digest: {:?}",
            counted[1].key
        );
    }

    #[test]
    fn urls_count_only_against_the_url() {
        for channel in [Channel::Slack, Channel::Webhook] {
            let counted = counters(
                &BUDGET,
                channel,
                &UserId::trusted("u1"),
                "https://hooks.example/x",
                7,
            );
            let limits: Vec<_> = counted.iter().map(|c| (c.limit, c.refusal)).collect();
            assert_eq!(limits, [(500, Refusal::TargetBudget)], "{channel:?}");
        }
    }

    #[test]
    fn one_target_on_two_channels_has_two_counters() {
        let target_key = |channel| {
            counters(&BUDGET, channel, &UserId::trusted("u1"), "same", 7)
                .pop()
                .map(|counter| counter.key)
        };
        assert_ne!(target_key(Channel::Email), target_key(Channel::Push));
        assert_eq!(target_key(Channel::Email), target_key(Channel::Email));
        let other_user = counters(&BUDGET, Channel::Email, &UserId::trusted("u2"), "same", 7).pop();
        assert_eq!(target_key(Channel::Email), other_user.map(|c| c.key));
    }

    #[test]
    fn a_charge_takes_a_unit_below_each_limit_and_marks_the_delivery() {
        let counted = counters(
            &BUDGET,
            Channel::Email,
            &UserId::trusted("u1"),
            "ada@example.com",
            7,
        );
        let delivery = Key::new("USER#u1", "NOTIFICATION#n1");
        let ops = charge_ops(&counted, delivery.clone());
        assert_eq!(ops.len(), 3);
        assert_eq!(
            ops[0],
            TxOp::Update {
                key: counted[0].key.clone(),
                updates: vec![Update::add(counter::COUNT, 1)],
                cond: Cond::at_most(counter::COUNT, 49),
            }
        );
        assert!(
            matches!(
                &ops[1],
                TxOp::Update {
                    cond: Cond::AtMost(_, 19),
                    ..
                }
            ),
            "{:?}",
            ops[1]
        );
        assert_eq!(
            ops[2],
            TxOp::Update {
                key: delivery,
                updates: vec![Update::set(BUDGET_CHARGED, Value::Bool(true))],
                cond: Cond::Exists,
            }
        );
    }

    #[test]
    fn a_spent_counter_refuses_and_a_gone_delivery_is_not_found() {
        let counted = counters(
            &BUDGET,
            Channel::Email,
            &UserId::trusted("u1"),
            "ada@example.com",
            7,
        );
        let cancelled = |failed: Vec<usize>| Err(StoreError::TransactionCancelled { failed });
        assert!(matches!(charge_outcome(Ok(()), &counted), Ok(None)));
        assert!(matches!(
            charge_outcome(cancelled(vec![0]), &counted),
            Ok(Some(Refusal::AccountBudget))
        ));
        assert!(matches!(
            charge_outcome(cancelled(vec![1, 2]), &counted),
            Ok(Some(Refusal::TargetBudget))
        ));
        assert!(matches!(
            charge_outcome(cancelled(vec![2]), &counted),
            Err(Error::NotFound("notification"))
        ));
    }

    #[test]
    fn a_conflicting_charge_is_retried_later() {
        let counted = counters(
            &BUDGET,
            Channel::Webhook,
            &UserId::trusted("u1"),
            "https://x",
            7,
        );
        assert!(matches!(
            charge_outcome(Err(StoreError::TransactionConflict), &counted),
            Err(Error::Unavailable(message)) if message == "a send budget is being counted concurrently"
        ));
        assert!(matches!(
            charge_outcome(Err(StoreError::Unavailable("down".into())), &counted),
            Err(Error::Store(StoreError::Unavailable(_)))
        ));
    }
}
