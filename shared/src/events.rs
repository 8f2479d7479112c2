//! Domain events and their envelope, as published on the queues (contract: `docs/openapi.yaml`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ports::{Clock, IdGenerator};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    UserRegistered,
    OrderCreated,
    PaymentSuccessful,
    PaymentFailed,
    OrderCancelled,
    RefundIssued,
    ProductOutOfStock,
    ShipmentShipped,
    ShipmentDelivered,
    ImportFinished,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserRegistered => "USER_REGISTERED",
            EventType::OrderCreated => "ORDER_CREATED",
            EventType::PaymentSuccessful => "PAYMENT_SUCCESSFUL",
            EventType::PaymentFailed => "PAYMENT_FAILED",
            EventType::OrderCancelled => "ORDER_CANCELLED",
            EventType::RefundIssued => "REFUND_ISSUED",
            EventType::ProductOutOfStock => "PRODUCT_OUT_OF_STOCK",
            EventType::ShipmentShipped => "SHIPMENT_SHIPPED",
            EventType::ShipmentDelivered => "SHIPMENT_DELIVERED",
            EventType::ImportFinished => "IMPORT_FINISHED",
        }
    }
}

/// The envelope every event travels in. Consumers are idempotent on `id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub occurred_at: DateTime<Utc>,
    /// The request (or upstream event) that caused this one, for tracing a flow end to end.
    pub correlation_id: String,
    pub data: Value,
}

impl Event {
    pub fn new(
        kind: EventType,
        data: Value,
        correlation_id: &str,
        ids: &dyn IdGenerator,
        clock: &dyn Clock,
    ) -> Self {
        Self {
            id: ids.new_id(),
            kind,
            occurred_at: clock.now(),
            correlation_id: correlation_id.to_owned(),
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_envelope_matches_the_contract() {
        let event = Event {
            id: "01J0000000000000000000000".into(),
            kind: EventType::UserRegistered,
            occurred_at: DateTime::from_timestamp(0, 0).unwrap_or_default(),
            correlation_id: "req-1".into(),
            data: json!({"user_id": "u1"}),
        };
        let wire = serde_json::to_value(&event).unwrap_or_default();
        assert_eq!(
            wire,
            json!({
                "id": "01J0000000000000000000000",
                "type": "USER_REGISTERED",
                "occurred_at": "1970-01-01T00:00:00Z",
                "correlation_id": "req-1",
                "data": {"user_id": "u1"}
            })
        );
        let back: Event = serde_json::from_value(wire).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, event);
        assert_eq!(event.kind.as_str(), "USER_REGISTERED");
    }
}
