//! Domain events and their envelope, as published on the queues (contract: `docs/openapi.yaml`).

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::ids::{EventId, ImportId, OrderId, ProductId, RefundId, UserId};
use crate::imports::model::ImportStatus;
use crate::money::Money;
use crate::orders::model::Order;
use crate::orders::states::Status;
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
    pub id: EventId,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub occurred_at: DateTime<Utc>,
    /// The request (or upstream event) that caused this one, for tracing a flow end to end.
    pub correlation_id: String,
    pub data: Value,
}

impl Event {
    /// An event whose `data` was built elsewhere (a replayed or hand-made body); the domain's
    /// producers use [`Event::typed`], whose payload types fix the field names.
    pub fn new(
        kind: EventType,
        data: Value,
        correlation_id: &str,
        ids: &dyn IdGenerator,
        clock: &dyn Clock,
    ) -> Self {
        Self {
            id: ids.fresh(),
            kind,
            occurred_at: clock.now(),
            correlation_id: correlation_id.to_owned(),
            data,
        }
    }

    /// An event carrying `data`, refused when `kind` is not one of the payload's event types.
    pub fn typed<P: Payload + Serialize>(
        kind: EventType,
        data: &P,
        correlation_id: &str,
        ids: &dyn IdGenerator,
        clock: &dyn Clock,
    ) -> Result<Self, PayloadError> {
        check_kind::<P>(kind)?;
        let data = serde_json::to_value(data).map_err(|source| PayloadError::Malformed {
            kind,
            payload: P::NAME,
            source,
        })?;
        Ok(Self::new(kind, data, correlation_id, ids, clock))
    }

    /// The event's data as `P`, refused when the event's type does not carry a `P` or the
    /// body does not match it.
    pub fn data_as<P: Payload + DeserializeOwned>(&self) -> Result<P, PayloadError> {
        check_kind::<P>(self.kind)?;
        P::deserialize(&self.data).map_err(|source| PayloadError::Malformed {
            kind: self.kind,
            payload: P::NAME,
            source,
        })
    }
}

fn check_kind<P: Payload>(kind: EventType) -> Result<(), PayloadError> {
    if P::KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(PayloadError::WrongKind {
            kind,
            payload: P::NAME,
        })
    }
}

/// Why an event's data could not be written or read as a typed payload.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("a {} event does not carry {payload} data", kind.as_str())]
    WrongKind {
        kind: EventType,
        payload: &'static str,
    },
    #[error("the data of a {} event is not {payload} data: {source}", kind.as_str())]
    Malformed {
        kind: EventType,
        payload: &'static str,
        source: serde_json::Error,
    },
}

/// A producer that builds a payload for the wrong event type has a bug; a consumer decides for
/// itself what a body it cannot read means.
impl From<PayloadError> for Error {
    fn from(error: PayloadError) -> Self {
        Error::Internal(error.to_string())
    }
}

/// The `data` (or, for a reader, the part of it it needs) of the event types listed in `KINDS`.
/// Field names and presence are the queue's (and so webhook receivers') contract: see `Event`
/// and the `…Data` schemas in `docs/openapi.yaml`.
pub trait Payload {
    const NAME: &'static str;
    const KINDS: &'static [EventType];
}

/// A line of an order event: what a message needs to name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub product_id: ProductId,
    pub name: String,
    pub quantity: i64,
}

/// The data of every order event but `REFUND_ISSUED` (which adds the refund to it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub status: Status,
    pub total: Money,
    pub items: Vec<OrderItem>,
}

impl OrderEvent {
    pub fn of(order: &Order) -> Self {
        Self {
            order_id: order.id.clone(),
            user_id: order.user_id.clone(),
            status: order.status,
            total: order.total.clone(),
            items: order
                .items
                .iter()
                .map(|line| OrderItem {
                    product_id: line.product_id.clone(),
                    name: line.name.clone(),
                    quantity: line.quantity,
                })
                .collect(),
        }
    }
}

impl Payload for OrderEvent {
    const NAME: &'static str = "order";
    const KINDS: &'static [EventType] = &[
        EventType::OrderCreated,
        EventType::PaymentSuccessful,
        EventType::PaymentFailed,
        EventType::OrderCancelled,
        EventType::ShipmentShipped,
        EventType::ShipmentDelivered,
    ];
}

/// `REFUND_ISSUED`: the order's fields with the refund's beside them, not nested.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundIssued {
    #[serde(flatten)]
    pub order: OrderEvent,
    pub refund_id: RefundId,
    pub amount: Money,
}

impl Payload for RefundIssued {
    const NAME: &'static str = "refund";
    const KINDS: &'static [EventType] = &[EventType::RefundIssued];
}

/// `USER_REGISTERED` (`UserRegisteredData`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub user_id: UserId,
    pub email: String,
    pub username: String,
    /// Always written; `null` when the user gave none.
    pub first_name: Option<String>,
    /// Bodies written before this field existed were read as verified (no welcome held back).
    #[serde(default = "verified")]
    pub email_verified: bool,
}

fn verified() -> bool {
    true
}

impl Payload for UserRegistered {
    const NAME: &'static str = "user registration";
    const KINDS: &'static [EventType] = &[EventType::UserRegistered];
}

/// `PRODUCT_OUT_OF_STOCK` (`ProductOutOfStockData`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductOutOfStock {
    pub product_id: ProductId,
    pub sku: String,
    pub name: String,
}

impl Payload for ProductOutOfStock {
    const NAME: &'static str = "out-of-stock";
    const KINDS: &'static [EventType] = &[EventType::ProductOutOfStock];
}

/// `IMPORT_FINISHED` (`ImportFinishedData`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportFinished {
    pub import_id: ImportId,
    pub status: ImportStatus,
    pub rows_read: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected_count: u64,
    /// Always written; `null` when the import is done.
    pub error: Option<String>,
}

impl Payload for ImportFinished {
    const NAME: &'static str = "import";
    const KINDS: &'static [EventType] = &[EventType::ImportFinished];
}

/// What fan-out routes an event by, whatever its type: the user it concerns (admin-wide events
/// name none) and, for a registration, whether the address is already verified. Read apart from
/// the full payloads so that a body carrying fields fan-out does not use (or lacking them) still
/// reaches its recipients.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Audience {
    pub user_id: Option<UserId>,
    #[serde(default = "verified")]
    pub email_verified: bool,
}

impl Payload for Audience {
    const NAME: &'static str = "routing";
    const KINDS: &'static [EventType] = &[
        EventType::UserRegistered,
        EventType::OrderCreated,
        EventType::PaymentSuccessful,
        EventType::PaymentFailed,
        EventType::OrderCancelled,
        EventType::RefundIssued,
        EventType::ProductOutOfStock,
        EventType::ShipmentShipped,
        EventType::ShipmentDelivered,
        EventType::ImportFinished,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{SystemClock, UlidGenerator};
    use serde_json::json;

    #[test]
    fn the_envelope_matches_the_contract() {
        let event = Event {
            id: EventId::trusted("01J0000000000000000000000"),
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

    fn money(amount: i64) -> Money {
        Money {
            amount,
            currency: "USD".into(),
        }
    }

    fn order() -> OrderEvent {
        OrderEvent {
            order_id: OrderId::trusted("o1"),
            user_id: UserId::trusted("u1"),
            status: Status::Paid,
            total: money(5997),
            items: vec![OrderItem {
                product_id: ProductId::trusted("p1"),
                name: "Lamp".into(),
                quantity: 3,
            }],
        }
    }

    /// The data of an event built from `payload`, as the queue carries it.
    fn wire<P: Payload + Serialize>(kind: EventType, payload: &P) -> String {
        let event = Event::typed(
            kind,
            payload,
            "req-1",
            &UlidGenerator::default(),
            &SystemClock,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        serde_json::to_string(&event.data).unwrap_or_default()
    }

    /// The bytes the queue carried before payloads were typed: the producers' `json!` maps.
    fn legacy(data: Value) -> String {
        serde_json::to_string(&data).unwrap_or_default()
    }

    #[test]
    fn an_order_event_carries_the_fields_it_always_had() {
        for kind in OrderEvent::KINDS {
            assert_eq!(
                wire(*kind, &order()),
                legacy(json!({
                    "order_id": "o1",
                    "user_id": "u1",
                    "status": "paid",
                    "total": {"amount": 5997, "currency": "USD"},
                    "items": [{"product_id": "p1", "name": "Lamp", "quantity": 3}],
                })),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn a_refund_sits_beside_the_order_fields_not_under_them() {
        let refund = RefundIssued {
            order: order(),
            refund_id: RefundId::trusted("r1"),
            amount: money(1999),
        };
        assert_eq!(
            wire(EventType::RefundIssued, &refund),
            legacy(json!({
                "order_id": "o1",
                "user_id": "u1",
                "status": "paid",
                "total": {"amount": 5997, "currency": "USD"},
                "items": [{"product_id": "p1", "name": "Lamp", "quantity": 3}],
                "refund_id": "r1",
                "amount": {"amount": 1999, "currency": "USD"},
            }))
        );
    }

    #[test]
    fn a_registration_writes_a_missing_first_name_as_null() {
        let user = UserRegistered {
            user_id: UserId::trusted("u1"),
            email: "sara@example.com".into(),
            username: "sara".into(),
            first_name: None,
            email_verified: false,
        };
        assert_eq!(
            wire(EventType::UserRegistered, &user),
            legacy(json!({
                "user_id": "u1",
                "email": "sara@example.com",
                "username": "sara",
                "first_name": null,
                "email_verified": false,
            }))
        );
    }

    #[test]
    fn an_out_of_stock_event_names_the_product() {
        let product = ProductOutOfStock {
            product_id: ProductId::trusted("p1"),
            sku: "LAMP-1".into(),
            name: "Lamp".into(),
        };
        assert_eq!(
            wire(EventType::ProductOutOfStock, &product),
            legacy(json!({"product_id": "p1", "sku": "LAMP-1", "name": "Lamp"}))
        );
    }

    #[test]
    fn a_finished_import_writes_a_missing_error_as_null() {
        let import = ImportFinished {
            import_id: ImportId::trusted("i1"),
            status: ImportStatus::Done,
            rows_read: 1204,
            created: 1150,
            updated: 40,
            unchanged: 12,
            rejected_count: 2,
            error: None,
        };
        assert_eq!(
            wire(EventType::ImportFinished, &import),
            legacy(json!({
                "import_id": "i1",
                "status": "done",
                "rows_read": 1204,
                "created": 1150,
                "updated": 40,
                "unchanged": 12,
                "rejected_count": 2,
                "error": null,
            }))
        );
    }

    #[test]
    fn a_payload_is_refused_for_an_event_type_that_does_not_carry_it() {
        let built = Event::typed(
            EventType::RefundIssued,
            &order(),
            "req-1",
            &UlidGenerator::default(),
            &SystemClock,
        );
        assert!(
            matches!(
                built,
                Err(PayloadError::WrongKind {
                    kind: EventType::RefundIssued,
                    payload: "order"
                })
            ),
            "{built:?}"
        );
    }

    fn received(kind: EventType, data: Value) -> Event {
        Event::new(kind, data, "req-1", &UlidGenerator::default(), &SystemClock)
    }

    #[test]
    fn a_reader_gets_back_what_was_written() {
        let event = Event::typed(
            EventType::PaymentSuccessful,
            &order(),
            "req-1",
            &UlidGenerator::default(),
            &SystemClock,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(event.data_as::<OrderEvent>().ok(), Some(order()));
    }

    #[test]
    fn a_reader_refuses_a_body_that_is_not_its_payload() {
        let misspelt = received(
            EventType::PaymentSuccessful,
            json!({"orderId": "o1", "user_id": "u1", "status": "paid",
                   "total": {"amount": 1, "currency": "USD"}, "items": []}),
        );
        let error = misspelt
            .data_as::<OrderEvent>()
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(
            error.starts_with("the data of a PAYMENT_SUCCESSFUL event is not order data")
                && error.contains("order_id"),
            "{error}"
        );
        let mistyped = received(
            EventType::ProductOutOfStock,
            json!({"product_id": "p1", "sku": 7, "name": "Lamp"}),
        );
        assert!(matches!(
            mistyped.data_as::<ProductOutOfStock>(),
            Err(PayloadError::Malformed {
                kind: EventType::ProductOutOfStock,
                ..
            })
        ));
    }

    #[test]
    fn a_reader_refuses_an_event_of_another_type() {
        let cancelled = received(
            EventType::OrderCancelled,
            serde_json::to_value(order()).unwrap_or_default(),
        );
        let error = cancelled
            .data_as::<RefundIssued>()
            .err()
            .map(|error| error.to_string());
        assert_eq!(
            error.as_deref(),
            Some("a ORDER_CANCELLED event does not carry refund data")
        );
    }

    #[test]
    fn routing_reads_only_who_an_event_concerns() {
        let partial = received(EventType::UserRegistered, json!({"user_id": "u1"}));
        assert_eq!(
            partial.data_as::<Audience>().ok(),
            Some(Audience {
                user_id: Some(UserId::trusted("u1")),
                email_verified: true
            })
        );
        let unverified = received(
            EventType::UserRegistered,
            json!({"user_id": "u1", "email_verified": false}),
        );
        assert_eq!(
            unverified
                .data_as::<Audience>()
                .map(|a| a.email_verified)
                .ok(),
            Some(false)
        );
        let admin_wide = received(
            EventType::ProductOutOfStock,
            json!({"product_id": "p1", "sku": "LAMP-1", "name": "Lamp"}),
        );
        assert_eq!(
            admin_wide
                .data_as::<Audience>()
                .ok()
                .and_then(|a| a.user_id),
            None
        );
        let garbled = received(EventType::OrderCreated, json!({"user_id": 42}));
        assert!(garbled.data_as::<Audience>().is_err());
    }
}
