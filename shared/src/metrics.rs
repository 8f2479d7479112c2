//! The shop's business and pipeline metrics, recorded through the `metrics` facade: the local
//! server exposes them on `/metrics` (Prometheus text), a Lambda function writes them to its
//! log as CloudWatch Embedded Metric Format. The names and labels here are the ones the
//! dashboards and alarms in `template.yaml`, `terraform/` and `infra/observability/` use.
//!
//! Each is recorded where the change it counts is committed, so a redelivered message that
//! finds its work done counts nothing. Labels take a few fixed values, never ids.

use crate::ports::{Channel, PaymentMethod};

pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";
pub const ORDERS_PLACED: &str = "orders_placed_total";
pub const ORDER_VALUE: &str = "order_value_minor_total";
pub const ORDERS_CANCELLED: &str = "orders_cancelled_total";
pub const PAYMENTS: &str = "payments_total";
pub const REFUNDS: &str = "refunds_total";
pub const NOTIFICATIONS_DELIVERED: &str = "notifications_delivered_total";
pub const DELIVERY_ATTEMPTS: &str = "delivery_attempts_total";
pub const IMPORT_ROWS: &str = "import_rows_total";
pub const QUEUE_MESSAGES: &str = "queue_messages_total";
pub const QUEUE_MESSAGE_AGE: &str = "queue_message_age_seconds";
pub const OUTBOX_SWEPT: &str = "outbox_swept_total";
pub const COLD_STARTS: &str = "cold_starts_total";

/// A metric and the labels it is recorded with (on Lambda, its EMF dimensions after
/// `function`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub labels: &'static [&'static str],
}

const fn metric(name: &'static str, labels: &'static [&'static str]) -> Metric {
    Metric { name, labels }
}

/// Every metric the code records.
pub const ALL: &[Metric] = &[
    metric(HTTP_REQUESTS, &["method", "route", "status"]),
    metric(HTTP_REQUEST_DURATION, &["method", "route"]),
    metric(ORDERS_PLACED, &[]),
    metric(ORDER_VALUE, &["currency"]),
    metric(ORDERS_CANCELLED, &["reason"]),
    metric(PAYMENTS, &["method", "outcome"]),
    metric(REFUNDS, &["outcome"]),
    metric(NOTIFICATIONS_DELIVERED, &["channel", "outcome"]),
    metric(DELIVERY_ATTEMPTS, &["channel"]),
    metric(IMPORT_ROWS, &["outcome"]),
    metric(QUEUE_MESSAGES, &["queue", "outcome"]),
    metric(QUEUE_MESSAGE_AGE, &["queue"]),
    metric(OUTBOX_SWEPT, &[]),
    metric(COLD_STARTS, &[]),
];

/// The metric of this name.
pub fn find(name: &str) -> Option<&'static Metric> {
    ALL.iter().find(|metric| metric.name == name)
}

/// An order was placed, worth `total_minor` in `currency`.
pub fn order_placed(currency: &str, total_minor: i64) {
    ::metrics::counter!(ORDERS_PLACED).increment(1);
    ::metrics::counter!(ORDER_VALUE, "currency" => currency.to_owned())
        .increment(u64::try_from(total_minor).unwrap_or(0));
}

/// Why an order was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancelled {
    Customer,
    Admin,
    Expired,
}

/// An order was cancelled.
pub fn order_cancelled(reason: Cancelled) {
    let reason = match reason {
        Cancelled::Customer => "customer",
        Cancelled::Admin => "admin",
        Cancelled::Expired => "expired",
    };
    ::metrics::counter!(ORDERS_CANCELLED, "reason" => reason).increment(1);
}

/// How a charge ended (a transient failure is retried, not counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charged {
    Captured,
    Declined,
    Failed,
}

/// A payment attempt was settled.
pub fn payment(method: PaymentMethod, outcome: Charged) {
    let outcome = match outcome {
        Charged::Captured => "captured",
        Charged::Declined => "declined",
        Charged::Failed => "failed",
    };
    ::metrics::counter!(PAYMENTS, "method" => method.as_str(), "outcome" => outcome).increment(1);
}

/// A refund was settled: paid back, or refused by the provider for good.
pub fn refund(refunded: bool) {
    let outcome = if refunded { "refunded" } else { "failed" };
    ::metrics::counter!(REFUNDS, "outcome" => outcome).increment(1);
}

/// How one delivery of a notification ended this time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivered {
    Sent,
    /// Refused for good, or given up on at the last receive.
    Failed,
    /// Failed for now; the queue brings it back.
    Retried,
}

/// A delivery was tried `tries` times on `channel` and ended as `outcome`.
pub fn delivery(channel: Channel, tries: usize, outcome: Delivered) {
    let outcome = match outcome {
        Delivered::Sent => "sent",
        Delivered::Failed => "failed",
        Delivered::Retried => "retried",
    };
    ::metrics::counter!(DELIVERY_ATTEMPTS, "channel" => channel.as_str()).increment(tries as u64);
    ::metrics::counter!(NOTIFICATIONS_DELIVERED, "channel" => channel.as_str(), "outcome" => outcome)
        .increment(1);
}

/// What became of one imported row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportedRow {
    Created,
    Updated,
    Unchanged,
    Rejected,
}

/// A row of an import was handled.
pub fn import_row(outcome: ImportedRow) {
    let outcome = match outcome {
        ImportedRow::Created => "created",
        ImportedRow::Updated => "updated",
        ImportedRow::Unchanged => "unchanged",
        ImportedRow::Rejected => "rejected",
    };
    ::metrics::counter!(IMPORT_ROWS, "outcome" => outcome).increment(1);
}

/// How a consumer finished with one queue message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consumed {
    Ok,
    /// Failed; the queue hands it out again.
    Retried,
    /// Poison, sent to the dead-letter queue by the consumer; or failed on its last receive,
    /// and moved there by the queue.
    DeadLettered,
}

/// A message of `queue`, sent `age_seconds` ago, was consumed.
pub fn queue_message(queue: &'static str, age_seconds: Option<f64>, outcome: Consumed) {
    let outcome = match outcome {
        Consumed::Ok => "ok",
        Consumed::Retried => "retried",
        Consumed::DeadLettered => "dead_lettered",
    };
    ::metrics::counter!(QUEUE_MESSAGES, "queue" => queue, "outcome" => outcome).increment(1);
    if let Some(age) = age_seconds {
        ::metrics::histogram!(QUEUE_MESSAGE_AGE, "queue" => queue).record(age);
    }
}

/// The outbox sweep sent `count` entries that had not gone out after their commit.
pub fn outbox_swept(count: usize) {
    ::metrics::counter!(OUTBOX_SWEPT).increment(count as u64);
}
