//! The payment-gateway port: one gateway per payment method (card, PayPal, crypto), chosen by
//! the method the customer pays with. A gateway behaves like a real payment provider: it
//! turns the customer's details into an opaque token (so that card numbers are never
//! stored), and charges and refunds under an idempotency key of the caller's choosing, so
//! that a retried call never moves money twice.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::ids::OrderId;
use crate::money::Money;

/// How a customer pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentMethod {
    Card,
    Paypal,
    Crypto,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Card => "card",
            PaymentMethod::Paypal => "paypal",
            PaymentMethod::Crypto => "crypto",
        }
    }
}

/// What the customer entered, already checked for form by the domain (see
/// `orders::requests::PayRequest`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentDetails {
    Card {
        number: String,
        exp_month: u32,
        exp_year: u32,
        cvc: String,
    },
    Paypal {
        payer_email: String,
    },
    Crypto {
        currency: String,
        wallet_address: String,
    },
}

impl PaymentDetails {
    pub fn method(&self) -> PaymentMethod {
        match self {
            PaymentDetails::Card { .. } => PaymentMethod::Card,
            PaymentDetails::Paypal { .. } => PaymentMethod::Paypal,
            PaymentDetails::Crypto { .. } => PaymentMethod::Crypto,
        }
    }
}

/// A tokenised means of payment: what is stored instead of the details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instrument {
    pub method: PaymentMethod,
    /// The provider's token; meaningless anywhere else.
    pub token: String,
    /// What may be shown to the customer ("card •••• 4242").
    pub display: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeRequest {
    /// The provider-side idempotency key: the same key never charges twice.
    pub idempotency_key: String,
    pub order_id: OrderId,
    pub amount: Money,
    pub token: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundRequest {
    /// The provider-side idempotency key: the same key never refunds twice.
    pub idempotency_key: String,
    pub order_id: OrderId,
    /// The idempotency key of the charge being refunded.
    pub charge_key: String,
    pub amount: Money,
}

/// The provider's answer to a charge or refund that went through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The provider's own reference for the charge or refund.
    pub reference: String,
    pub amount: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The provider refused for good (declined card, insufficient funds): do not retry.
    #[error("declined: {0}")]
    Declined(String),
    /// The details are not acceptable to this provider.
    #[error("invalid payment details: {0}")]
    Invalid(String),
    /// No answer in time: the operation may or may not have happened; retry with the same
    /// idempotency key to find out.
    #[error("the payment provider timed out")]
    Timeout,
    /// The provider could not be reached or failed; retry later.
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
}

impl GatewayError {
    /// Whether retrying the same call (same idempotency key) may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, GatewayError::Timeout | GatewayError::Unavailable(_))
    }
}

#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// Exchanges the customer's details for a token (done while the customer waits, as a
    /// provider's client library would).
    fn tokenize(&self, details: &PaymentDetails) -> Result<Instrument, GatewayError>;

    async fn charge(&self, request: &ChargeRequest) -> Result<Receipt, GatewayError>;

    /// Refunds part or all of a captured charge; never more than was captured.
    async fn refund(&self, request: &RefundRequest) -> Result<Receipt, GatewayError>;
}

/// The gateways by method: the strategy a payment uses is chosen here.
#[derive(Clone)]
pub struct PaymentGateways {
    pub card: Arc<dyn PaymentGateway>,
    pub paypal: Arc<dyn PaymentGateway>,
    pub crypto: Arc<dyn PaymentGateway>,
}

impl PaymentGateways {
    pub fn for_method(&self, method: PaymentMethod) -> &dyn PaymentGateway {
        match method {
            PaymentMethod::Card => self.card.as_ref(),
            PaymentMethod::Paypal => self.paypal.as_ref(),
            PaymentMethod::Crypto => self.crypto.as_ref(),
        }
    }
}
