//! Orders and what hangs off them (history, payment attempts, refunds, invoices), how they
//! are stored, and what clients see of them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::entity::{self, Stored};
use crate::ids::{OrderId, PaymentId, ProductId, RefundId, UserId};
use crate::keys;
use crate::money::Money;
use crate::orders::states::Status;
use crate::ports::Key;
use crate::ports::payments::PaymentMethod;
use crate::trace;

/// One line of an order, priced from the catalogue when the order was placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: ProductId,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub line_total: Money,
}

/// The shipping address, copied into the order so that later edits of the address book do
/// not change where a placed order goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingAddress {
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    pub country: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStatus {
    Pending,
    Shipped,
    Delivered,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub carrier: String,
    pub tracking_number: String,
    pub status: ShipmentStatus,
}

/// The order's payment as the customer sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentSummary {
    /// The current (or last) payment attempt.
    pub id: PaymentId,
    pub status: AttemptStatus,
    pub method: PaymentMethod,
    pub display: String,
    /// The provider's reference of the captured charge.
    pub reference: Option<String>,
    pub captured: Option<Money>,
    /// Refunds requested so far (confirmed or on their way).
    pub refunded: Money,
    pub failure_reason: Option<String>,
    /// The provider's precise reason for a failure: for admins only (customers see the
    /// generic `failure_reason`, so that a card tester learns nothing from the issuer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_detail: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub status: Status,
    pub items: Vec<OrderLine>,
    pub currency: String,
    pub subtotal: Money,
    pub tax: Money,
    pub total: Money,
    pub shipping_address: ShippingAddress,
    /// When an unpaid order's reservation runs out; none once paid or cancelled.
    pub expires_at: Option<DateTime<Utc>>,
    pub payment: Option<PaymentSummary>,
    /// Set while a payment attempt is being processed: no second attempt may start.
    #[serde(default)]
    pub processing_payment: Option<PaymentId>,
    pub shipment: Option<Shipment>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every change; every change is conditional on it.
    pub version: u64,
    /// Whether the order counts toward its customer's unpaid-order limit (true from placing
    /// until it is paid, cancelled or expires).
    #[serde(default)]
    pub holds_unpaid_slot: bool,
    /// How many payment attempts the provider declined; at the limit the order takes no more
    /// payment.
    #[serde(default)]
    pub declined_attempts: u32,
    /// The trace of the request that placed it (a W3C `traceparent`, when traces are
    /// exported): every later message about the order continues it, so the order's whole
    /// life is one trace. Stored with the order, never shown to a client.
    #[serde(skip)]
    pub trace_parent: Option<String>,
}

impl Stored for Order {
    const KIND: &'static str = "order";
    /// The trace is kept with the order but is no field of it: clients never see it.
    const EXTRAS: &'static [&'static str] = &[trace::STORED_PARENT];
    type Owner = ();

    fn key(&self, _: &()) -> Key {
        keys::order(&self.id)
    }

    /// Listed among its customer's orders, by id (= time).
    fn index_key(&self, _: &()) -> Option<Key> {
        Some(Key::new(
            keys::user_orders_partition(&self.user_id),
            self.id.clone(),
        ))
    }

    fn extra(&self, name: &str) -> Option<Value> {
        match name {
            trace::STORED_PARENT => self.trace_parent.clone().map(Value::from),
            _ => None,
        }
    }

    fn restore_extra(&mut self, name: &str, value: Value) {
        if name == trace::STORED_PARENT {
            self.trace_parent = value.as_str().map(str::to_owned);
        }
    }
}

entity::attributes!(Order {
    /// Bumped by every change: each write of an order is conditional on the version it read.
    VERSION = "version",
});

impl Order {
    /// The order as `viewer` may see it: customers get the generic failure reason only.
    pub fn for_viewer(mut self, viewer_is_admin: bool) -> Self {
        if !viewer_is_admin && let Some(payment) = self.payment.as_mut() {
            payment.failure_detail = None;
        }
        self
    }

    /// What is still refundable of the captured payment.
    pub fn refundable(&self) -> i64 {
        match &self.payment {
            Some(PaymentSummary {
                captured: Some(captured),
                refunded,
                ..
            }) => captured.amount - refunded.amount,
            _ => 0,
        }
    }
}

/// One step of an order's history (what tracking shows).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub status: Status,
    pub at: DateTime<Utc>,
    /// What moved the order ("place order", "ship", ...).
    pub action: String,
}

impl Stored for HistoryEntry {
    const KIND: &'static str = "history entry";
    /// The entry records the change that produced the order's current version, and is kept
    /// under that version in the order's partition.
    type Owner = Order;

    fn key(&self, order: &Order) -> Key {
        keys::order_history(&order.id, order.version)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Processing,
    Succeeded,
    Failed,
    /// Captured after the order was cancelled or expired, and refunded.
    RefundedLate,
}

/// One attempt to pay for an order. Holds a token, never the customer's details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAttempt {
    pub id: PaymentId,
    pub order_id: OrderId,
    pub method: PaymentMethod,
    pub token: String,
    pub display: String,
    pub amount: Money,
    pub status: AttemptStatus,
    pub reference: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub correlation_id: String,
}

impl PaymentAttempt {
    pub fn key(&self) -> Key {
        keys::payment_attempt(&self.order_id, &self.id)
    }
}

impl Stored for PaymentAttempt {
    const KIND: &'static str = "payment attempt";
    type Owner = ();

    fn key(&self, _: &()) -> Key {
        PaymentAttempt::key(self)
    }
}

entity::attributes!(PaymentAttempt {
    /// Settling an attempt is conditional on it still processing.
    STATUS = "status",
});

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub id: RefundId,
    pub order_id: OrderId,
    /// The payment attempt whose charge is refunded.
    pub payment_id: PaymentId,
    pub method: PaymentMethod,
    pub amount: Money,
    pub status: RefundStatus,
    pub reason: Option<String>,
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
    pub correlation_id: String,
}

impl Refund {
    pub fn key(&self) -> Key {
        keys::refund(&self.order_id, &self.id)
    }
}

impl Stored for Refund {
    const KIND: &'static str = "refund";
    type Owner = ();

    fn key(&self, _: &()) -> Key {
        Refund::key(self)
    }
}

entity::attributes!(Refund {
    /// Settling a refund is conditional on it still pending.
    STATUS = "status",
});

/// What a client sees of a refund.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundView {
    pub id: RefundId,
    pub order_id: OrderId,
    pub amount: Money,
    pub status: RefundStatus,
}

impl From<&Refund> for RefundView {
    fn from(refund: &Refund) -> Self {
        Self {
            id: refund.id.clone(),
            order_id: refund.order_id.clone(),
            amount: refund.amount.clone(),
            status: refund.status,
        }
    }
}

/// The answer to `POST /orders/{id}/pay`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAccepted {
    pub order_id: OrderId,
    pub payment_id: PaymentId,
    pub status: AttemptStatus,
}

/// `GET /orders/{id}/tracking`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracking {
    pub order_id: OrderId,
    pub status: Status,
    pub history: Vec<HistoryEntry>,
    pub shipment: Option<Shipment>,
}

/// A commands on the payments queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PaymentCommand {
    Charge {
        order_id: OrderId,
        payment_id: PaymentId,
        /// The request that caused it, for the logs of every step after it (absent from
        /// commands written before it was carried: empty).
        #[serde(default)]
        correlation_id: String,
    },
    Refund {
        order_id: OrderId,
        refund_id: RefundId,
        #[serde(default)]
        correlation_id: String,
    },
}
