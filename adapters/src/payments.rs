//! Simulated payment providers, one per method, behind the payment-gateway port. They behave
//! like real ones where it matters to the shop: details become an opaque token, charges and
//! refunds are idempotent on the caller's key and carry the provider's own reference, a
//! refund never exceeds what was captured, and documented test inputs decline or time out.
//!
//! Each provider keeps its ledger (what it charged and refunded) in the state store, under
//! its own partition per order (`PSP#<order id>`): the stand-in for the provider's database,
//! and what tests read to count charges.
//!
//! Test inputs (also in the README and the OpenAPI document):
//!
//! | method | succeeds | declined | times out on the first try |
//! |---|---|---|---|
//! | card | `4242424242424242` (any other valid number too) | `4000000000000002` | `4000000000009987` |
//! | PayPal | any other payer e-mail | `declined@paypal.test` | `timeout@paypal.test` |
//! | crypto | any other valid wallet | address ending in `dead` | address ending in `5ec0` |
//!
//! A timeout happens after the charge was recorded, as the worst real timeouts do: the
//! caller does not know whether money moved until it retries with the same key.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use bazaar_shared::entity;
use bazaar_shared::money::Money;
use bazaar_shared::ports::payments::{
    ChargeRequest, GatewayError, Instrument, PaymentDetails, PaymentGateway, PaymentGateways,
    PaymentMethod, Receipt, RefundRequest,
};
use bazaar_shared::ports::{Cond, IdGenerator, Item, Key, Store, StoreError, TxOp, Update};

/// The card number that always succeeds.
pub const CARD_SUCCEEDS: &str = "4242424242424242";
/// The card number that is always declined.
pub const CARD_DECLINED: &str = "4000000000000002";
/// The card number whose first charge times out (after being recorded).
pub const CARD_TIMES_OUT: &str = "4000000000009987";
pub const PAYPAL_DECLINED: &str = "declined@paypal.test";
pub const PAYPAL_TIMES_OUT: &str = "timeout@paypal.test";
pub const CRYPTO_DECLINED_SUFFIX: &str = "dead";
pub const CRYPTO_TIMES_OUT_SUFFIX: &str = "5ec0";

/// What a simulated token makes the provider do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Succeed,
    Decline,
    TimeOutOnce,
}

impl Scenario {
    fn as_str(self) -> &'static str {
        match self {
            Scenario::Succeed => "ok",
            Scenario::Decline => "decline",
            Scenario::TimeOutOnce => "timeout",
        }
    }

    fn parse(token: &str, method: PaymentMethod) -> Option<Self> {
        let rest = token.strip_prefix("sim_")?.strip_prefix(method.as_str())?;
        let scenario = rest.strip_prefix('_')?.split('_').next()?;
        match scenario {
            "ok" => Some(Scenario::Succeed),
            "decline" => Some(Scenario::Decline),
            "timeout" => Some(Scenario::TimeOutOnce),
            _ => None,
        }
    }
}

/// The three simulated providers over one ledger.
pub fn simulated(ledger: Arc<dyn Store>, ids: Arc<dyn IdGenerator>) -> PaymentGateways {
    let provider = |method| -> Arc<dyn PaymentGateway> {
        Arc::new(SimulatedProvider {
            method,
            ledger: ledger.clone(),
            ids: ids.clone(),
        })
    };
    PaymentGateways {
        card: provider(PaymentMethod::Card),
        paypal: provider(PaymentMethod::Paypal),
        crypto: provider(PaymentMethod::Crypto),
    }
}

pub struct SimulatedProvider {
    method: PaymentMethod,
    ledger: Arc<dyn Store>,
    ids: Arc<dyn IdGenerator>,
}

fn charge_key(order_id: &str, key: &str) -> Key {
    Key::new(format!("PSP#{order_id}"), format!("CHARGE#{key}"))
}

fn refund_key(order_id: &str, key: &str) -> Key {
    Key::new(format!("PSP#{order_id}"), format!("REFUND#{key}"))
}

fn unavailable(error: StoreError) -> GatewayError {
    GatewayError::Unavailable(error.to_string())
}

/// The outcome a ledger record stands for, checked against the request that asks again.
fn recorded(record: &Item, amount: &Money) -> Result<Receipt, GatewayError> {
    let same = record.get("amount").and_then(Value::as_i64) == Some(amount.amount)
        && record.get("currency").and_then(Value::as_str) == Some(amount.currency.as_str());
    if !same {
        return Err(GatewayError::Invalid(
            "idempotency key reused with a different amount".into(),
        ));
    }
    match record.get("status").and_then(Value::as_str) {
        Some("captured") | Some("refunded") => Ok(Receipt {
            reference: record
                .get("reference")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            amount: amount.clone(),
        }),
        _ => Err(GatewayError::Declined(
            record
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("declined")
                .to_owned(),
        )),
    }
}

impl SimulatedProvider {
    fn scenario(&self, details: &PaymentDetails) -> Result<(Scenario, String), GatewayError> {
        match details {
            PaymentDetails::Card { number, .. } => {
                let scenario = match number.as_str() {
                    CARD_DECLINED => Scenario::Decline,
                    CARD_TIMES_OUT => Scenario::TimeOutOnce,
                    _ => Scenario::Succeed,
                };
                let last4 = &number[number.len().saturating_sub(4)..];
                Ok((scenario, format!("card •••• {last4}")))
            }
            PaymentDetails::Paypal { payer_email } => {
                let scenario = match payer_email.to_lowercase().as_str() {
                    PAYPAL_DECLINED => Scenario::Decline,
                    PAYPAL_TIMES_OUT => Scenario::TimeOutOnce,
                    _ => Scenario::Succeed,
                };
                Ok((scenario, format!("paypal {payer_email}")))
            }
            PaymentDetails::Crypto {
                currency,
                wallet_address,
            } => {
                let lower = wallet_address.to_lowercase();
                let scenario = if lower.ends_with(CRYPTO_DECLINED_SUFFIX) {
                    Scenario::Decline
                } else if lower.ends_with(CRYPTO_TIMES_OUT_SUFFIX) {
                    Scenario::TimeOutOnce
                } else {
                    Scenario::Succeed
                };
                let tail = &wallet_address[wallet_address.len().saturating_sub(6)..];
                Ok((scenario, format!("{currency} wallet …{tail}")))
            }
        }
    }
}

#[async_trait]
impl PaymentGateway for SimulatedProvider {
    fn tokenize(&self, details: &PaymentDetails) -> Result<Instrument, GatewayError> {
        if details.method() != self.method {
            return Err(GatewayError::Invalid(format!(
                "this provider takes {} payments",
                self.method.as_str()
            )));
        }
        let (scenario, display) = self.scenario(details)?;
        let token = format!(
            "sim_{}_{}_{}",
            self.method.as_str(),
            scenario.as_str(),
            self.ids.new_id().to_lowercase()
        );
        Ok(Instrument {
            method: self.method,
            token,
            display,
        })
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<Receipt, GatewayError> {
        let key = charge_key(&request.order_id, &request.idempotency_key);
        if let Some(existing) = self.ledger.get(&key).await.map_err(unavailable)? {
            return recorded(&existing, &request.amount);
        }
        let scenario = Scenario::parse(&request.token, self.method)
            .ok_or_else(|| GatewayError::Invalid("unknown payment token".into()))?;
        let (status, reason) = match (scenario, self.method) {
            (Scenario::Decline, PaymentMethod::Card) => {
                ("declined", "card_declined: the issuer declined the payment")
            }
            (Scenario::Decline, PaymentMethod::Paypal) => (
                "declined",
                "paypal_declined: the payer's PayPal account declined",
            ),
            (Scenario::Decline, PaymentMethod::Crypto) => (
                "declined",
                "insufficient_funds: the wallet cannot cover the amount",
            ),
            (Scenario::Succeed | Scenario::TimeOutOnce, _) => ("captured", ""),
        };
        let reference = format!(
            "{}_{}",
            match self.method {
                PaymentMethod::Card => "ch",
                PaymentMethod::Paypal => "PAYID",
                PaymentMethod::Crypto => "tx",
            },
            self.ids.new_id().to_lowercase()
        );
        let record = entity::keyed(
            &key,
            json!({
                "reference": reference,
                "amount": request.amount.amount,
                "currency": request.amount.currency,
                "status": status,
                "reason": reason,
                "refunded": 0,
            }),
        );
        match self.ledger.put(record.clone(), Cond::NotExists).await {
            Ok(()) => {}
            // The same key is being charged concurrently: whatever was recorded stands.
            Err(StoreError::ConditionFailed) => {
                let existing = self.ledger.get(&key).await.map_err(unavailable)?;
                return match existing {
                    Some(existing) => recorded(&existing, &request.amount),
                    None => Err(GatewayError::Unavailable("ledger race".into())),
                };
            }
            Err(other) => return Err(unavailable(other)),
        }
        if scenario == Scenario::TimeOutOnce {
            return Err(GatewayError::Timeout);
        }
        recorded(&record, &request.amount)
    }

    async fn refund(&self, request: &RefundRequest) -> Result<Receipt, GatewayError> {
        let key = refund_key(&request.order_id, &request.idempotency_key);
        if let Some(existing) = self.ledger.get(&key).await.map_err(unavailable)? {
            return recorded(&existing, &request.amount);
        }
        let charge_key = charge_key(&request.order_id, &request.charge_key);
        let charge = self
            .ledger
            .get(&charge_key)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| GatewayError::Invalid("no such charge".into()))?;
        if charge.get("status").and_then(Value::as_str) != Some("captured") {
            return Err(GatewayError::Invalid("the charge was not captured".into()));
        }
        if charge.get("currency").and_then(Value::as_str) != Some(request.amount.currency.as_str())
        {
            return Err(GatewayError::Invalid(
                "currency differs from the charge".into(),
            ));
        }
        let captured = charge.get("amount").and_then(Value::as_i64).unwrap_or(0);
        let reference = format!("re_{}", self.ids.new_id().to_lowercase());
        let record = entity::keyed(
            &key,
            json!({
                "reference": reference,
                "charge": request.charge_key,
                "amount": request.amount.amount,
                "currency": request.amount.currency,
                "status": "captured",
            }),
        );
        let ops = vec![
            TxOp::Update {
                key: charge_key,
                updates: vec![Update::add("refunded", request.amount.amount)],
                cond: Cond::AtMost("refunded".into(), captured - request.amount.amount),
            },
            TxOp::Put {
                item: record.clone(),
                cond: Cond::NotExists,
            },
        ];
        match self.ledger.transact(ops).await {
            Ok(()) => recorded(&record, &request.amount),
            Err(StoreError::TransactionCancelled { failed }) if failed.contains(&1) => {
                match self.ledger.get(&key).await.map_err(unavailable)? {
                    Some(existing) => recorded(&existing, &request.amount),
                    None => Err(GatewayError::Unavailable("ledger race".into())),
                }
            }
            Err(StoreError::TransactionCancelled { .. }) => Err(GatewayError::Declined(
                "the refund exceeds what is left of the charge".into(),
            )),
            Err(other) => Err(unavailable(other)),
        }
    }
}
