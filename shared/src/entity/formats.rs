//! Items as the shop has always stored them, one per kind of entity: each must read, and
//! must be written back exactly as it was, so that existing tables and data directories keep
//! working. The fixtures are written out by hand on purpose: produced by the code under test,
//! they would change with it.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::catalogue::model::{Category, Product};
use crate::entity::{self, Stored};
use crate::error::Error;
use crate::imports::model::{Import, ImportStatus};
use crate::notifications::model::{Delivery, DeliveryStatus, Subscription, SubscriptionStatus};
use crate::orders::invoices::Invoice;
use crate::orders::model::{
    AttemptStatus, HistoryEntry, Order, PaymentAttempt, Refund, RefundStatus,
};
use crate::ports::Item;
use crate::shards::Shards;
use crate::trace;
use crate::users::User;
use crate::users::addresses::Address;
use crate::users::model::Language;

fn item(value: Value) -> Item {
    match value {
        Value::Object(map) => map,
        other => panic!("a fixture must be an object, not {other}"),
    }
}

fn user() -> Item {
    item(json!({
        "pk": "USER#u1", "sk": "PROFILE", "gsi1pk": "USERS", "gsi1sk": "USER#u1",
        "id": "u1", "email": "ada@example.com", "username": "ada",
        "first_name": "Ada", "last_name": null, "phone": "+15550100",
        "role": "customer", "is_active": true,
        "created_at": "2026-01-31T12:00:00Z", "updated_at": "2026-02-01T08:30:00.250Z",
        "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        "token_version": 2, "address_book_version": 3, "address_count": 1,
        "default_address_id": "a1", "language": "fa", "email_verified": false,
    }))
}

fn address() -> Item {
    item(json!({
        "pk": "USER#u1", "sk": "ADDRESS#a1",
        "id": "a1", "line1": "1 Main St", "line2": null, "city": "Springfield",
        "state": "IL", "postal_code": "62701", "country": "US", "is_default": true,
        "created_at": "2026-01-31T12:00:00Z", "updated_at": "2026-01-31T12:00:00.000001Z",
    }))
}

fn money(amount: i64) -> Value {
    json!({"amount": amount, "currency": "USD"})
}

fn shipping_address() -> Value {
    json!({
        "line1": "1 Main St", "line2": "Flat 2", "city": "Springfield", "state": "IL",
        "postal_code": "62701", "country": "US",
    })
}

fn order() -> Item {
    item(json!({
        "pk": "ORDER#o1", "sk": "ORDER", "gsi1pk": "ORDERS#u1", "gsi1sk": "o1",
        "id": "o1", "user_id": "u1", "status": "paid",
        "items": [{
            "product_id": "p1", "sku": "TEA-1", "name": "Tea", "quantity": 2,
            "unit_price": money(450), "line_total": money(900),
        }],
        "currency": "USD", "subtotal": money(900), "tax": money(90), "total": money(990),
        "shipping_address": shipping_address(),
        "expires_at": null,
        "payment": {
            "id": "p1", "status": "succeeded", "method": "card", "display": "Visa •••• 4242",
            "reference": "ch_1", "captured": money(990), "refunded": money(0),
            "failure_reason": null, "failure_detail": "issuer said no",
        },
        "processing_payment": null,
        "shipment": {"carrier": "DHL", "tracking_number": "JD0001", "status": "shipped"},
        "created_at": "2026-01-31T12:00:00Z", "updated_at": "2026-01-31T12:05:00Z",
        "version": 4, "holds_unpaid_slot": false, "declined_attempts": 1,
        "trace_parent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    }))
}

fn history_entry() -> Item {
    item(json!({
        "pk": "ORDER#o1", "sk": "HISTORY#000004",
        "status": "shipped", "at": "2026-01-31T12:05:00Z", "action": "ship",
    }))
}

fn payment_attempt() -> Item {
    item(json!({
        "pk": "ORDER#o1", "sk": "PAYMENT#p1",
        "id": "p1", "order_id": "o1", "method": "card", "token": "tok_visa",
        "display": "Visa •••• 4242", "amount": money(990), "status": "processing",
        "reference": null, "failure_reason": null,
        "created_at": "2026-01-31T12:01:00Z", "correlation_id": "req-1",
    }))
}

fn refund() -> Item {
    item(json!({
        "pk": "ORDER#o1", "sk": "REFUND#r1",
        "id": "r1", "order_id": "o1", "payment_id": "p1", "method": "card",
        "amount": money(500), "status": "pending", "reason": "broken", "reference": null,
        "created_at": "2026-01-31T13:00:00Z", "correlation_id": "req-2",
    }))
}

fn invoice() -> Item {
    item(json!({
        "pk": "ORDER#o1", "sk": "INVOICE",
        "number": "2026-000001", "year": 2026, "sequence": 1, "order_id": "o1",
        "user_id": "u1", "issued_at": "2026-01-31T12:02:00Z",
        "lines": [{
            "name": "Tea", "sku": "TEA-1", "quantity": 2,
            "unit_price": money(450), "line_total": money(900),
        }],
        "subtotal": money(900), "tax": money(90), "total": money(990),
        "shipping_address": shipping_address(),
        "payment_reference": "ch_1", "document_key": "invoices/2026/2026-000001.html",
    }))
}

fn subscription() -> Item {
    item(json!({
        "pk": "USER#u1", "sk": "SUBSCRIPTION#s1",
        "id": "s1", "user_id": "u1", "channel": "webhook",
        "target": "https://hooks.example.com/bazaar",
        "events": ["ORDER_CREATED", "PAYMENT_SUCCESSFUL"],
        "signing_secret": "whsec_1", "created_at": "2026-01-31T12:00:00Z",
        "status": "pending",
    }))
}

/// A subscription stored before verification existed: no `status`.
fn subscription_before_verification() -> Item {
    item(json!({
        "pk": "USER#u1", "sk": "SUBSCRIPTION#s2",
        "id": "s2", "user_id": "u1", "channel": "push", "target": "arn:aws:sns:endpoint/1",
        "events": ["SHIPMENT_SHIPPED"], "signing_secret": null,
        "created_at": "2025-06-01T00:00:00Z",
    }))
}

fn delivery() -> Item {
    item(json!({
        "pk": "USER#u1", "sk": "NOTIFICATION#n1",
        "id": "n1", "user_id": "u1", "event": "ORDER_CREATED", "event_id": "e1",
        "channel": "email", "target": "ada@example.com", "subscription_id": null,
        "language": "en", "status": "retrying", "attempts": 2,
        "last_error": "the mail server is busy",
        "created_at": "2026-01-31T12:00:00Z", "updated_at": "2026-01-31T12:00:30.500Z",
        "data": {"order_id": "o1", "total": money(990)},
        "payload": "{\"id\":\"e1\",\"type\":\"ORDER_CREATED\"}",
        "lease_until": 0,
    }))
}

fn import() -> Item {
    item(json!({
        "pk": "IMPORT#i1", "sk": "IMPORT",
        "id": "i1", "status": "done", "key": "imports/i1.csv",
        "rows_read": 3, "created": 1, "updated": 1, "unchanged": 0,
        "rejected": [{"line": 3, "reason": "price: must be a number"}], "rejected_count": 1,
        "error": null, "checkpoint_offset": 120, "checkpoint_line": 4,
        "lease_until": 1769860000, "lease_version": 2,
        "created_at": "2026-01-31T12:00:00Z", "updated_at": "2026-01-31T12:00:09Z",
        "finished_at": "2026-01-31T12:00:09Z",
    }))
}

fn category() -> Item {
    item(json!({
        "pk": "CATEGORY#c1", "sk": "CATEGORY", "gsi1pk": "CATEGORIES", "gsi1sk": "tea",
        "id": "c1", "name": "Tea", "slug": "tea", "parent_id": null,
    }))
}

fn product() -> Item {
    item(json!({
        "pk": "PRODUCT#p1", "sk": "PRODUCT",
        "id": "p1", "sku": "TEA-1", "name": "Tea", "description": "Black tea",
        "category_id": "c1", "price": money(450), "available": 7, "reserved": 2,
        "images": ["products/p1/1.jpg"], "version": 3, "stock_version": 9,
        "status": "active",
        "created_at": "2026-01-31T12:00:00Z", "updated_at": "2026-01-31T12:00:00Z",
        "indexed_terms": ["black", "tea"],
    }))
}

/// The names among `attributes` that are no field `entity` serialises.
fn unserialised<T: Stored>(entity: &T, attributes: &[&'static str]) -> Vec<&'static str> {
    let fields = match serde_json::to_value(entity) {
        Ok(Value::Object(fields)) => fields,
        other => panic!("{} serialises to {other:?}", T::KIND),
    };
    attributes
        .iter()
        .copied()
        .filter(|name| !fields.contains_key(*name))
        .collect()
}

/// Fails unless every name in `attributes` is a field `entity` serialises.
fn assert_serialised<T: Stored>(entity: &T, attributes: &[&'static str]) {
    let missing = unserialised(entity, attributes);
    assert!(missing.is_empty(), "{} has no {missing:?}", T::KIND);
}

/// `old` read as a `T`, after checking that writing it gives `old` back.
fn read_back<T: Stored>(old: Item, owner: &T::Owner) -> T {
    let entity = T::from_item(old.clone()).unwrap_or_else(|error| panic!("{error}"));
    let written = entity
        .to_item_under(owner)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(Value::Object(written), Value::Object(old), "{}", T::KIND);
    entity
}

#[test]
fn a_stored_user_reads_and_writes_back_unchanged() {
    // Profiles written before sharding are listed in `USERS`; written again, a profile goes
    // to its shard (readers read both). Everything else stays as it was.
    let shards = Shards::new(4).unwrap_or_default();
    let mut old = user();
    old.insert("gsi1pk".into(), json!(format!("USERS#{}", shards.of("u1"))));
    let user: User = read_back(old, &shards);
    assert_eq!(user.language, Language::Fa);
    assert!(!user.email_verified);
    assert_serialised(&user, User::ATTRIBUTES);
}

#[test]
fn a_user_stored_before_verification_counts_as_verified() {
    let mut old = user();
    old.remove("email_verified");
    let user = User::from_item(old).unwrap_or_else(|error| panic!("{error}"));
    assert!(user.email_verified);
}

#[test]
fn a_stored_address_reads_and_writes_back_unchanged() {
    let address: Address = read_back(address(), &User::example("u1"));
    assert!(address.is_default);
    assert_serialised(&address, Address::ATTRIBUTES);
}

#[test]
fn a_stored_order_reads_and_writes_back_unchanged_with_its_trace() {
    let order: Order = read_back(order(), &());
    assert_eq!(
        order.trace_parent.as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_serialised(&order, Order::ATTRIBUTES);
    // The trace is stored, never shown.
    let shown = serde_json::to_value(&order).unwrap_or_default();
    assert!(shown.get(trace::STORED_PARENT).is_none(), "{shown}");
}

#[test]
fn an_order_without_a_trace_stores_none() {
    let mut old = order();
    old.remove(trace::STORED_PARENT);
    let order: Order = read_back(old, &());
    assert_eq!(order.trace_parent, None);
}

#[test]
fn a_stored_history_entry_reads_and_writes_back_under_its_orders_version() {
    let order = Order::from_item(order()).unwrap_or_else(|error| panic!("{error}"));
    let entry: HistoryEntry = read_back(history_entry(), &order);
    assert_eq!(entry.action, "ship");
}

#[test]
fn a_stored_payment_attempt_reads_and_writes_back_unchanged() {
    let attempt: PaymentAttempt = read_back(payment_attempt(), &());
    assert_eq!(attempt.status, AttemptStatus::Processing);
    assert_serialised(&attempt, PaymentAttempt::ATTRIBUTES);
}

#[test]
fn a_stored_refund_reads_and_writes_back_unchanged() {
    let refund: Refund = read_back(refund(), &());
    assert_eq!(refund.status, RefundStatus::Pending);
    assert_serialised(&refund, Refund::ATTRIBUTES);
}

#[test]
fn a_stored_invoice_reads_and_writes_back_unchanged() {
    let invoice: Invoice = read_back(invoice(), &());
    assert_eq!(invoice.number, "2026-000001");
}

#[test]
fn a_stored_subscription_reads_and_writes_back_unchanged() {
    let subscription: Subscription = read_back(subscription(), &());
    assert_eq!(subscription.status(), SubscriptionStatus::Pending);
    assert_serialised(&subscription, Subscription::ATTRIBUTES);
    let older: Subscription = read_back(subscription_before_verification(), &());
    assert_eq!(older.status, None);
    assert_eq!(older.status(), SubscriptionStatus::Active);
}

#[test]
fn a_stored_delivery_reads_and_writes_back_unchanged() {
    let delivery: Delivery = read_back(delivery(), &());
    assert_eq!(delivery.status, DeliveryStatus::Retrying);
    assert_serialised(&delivery, Delivery::ATTRIBUTES);
}

#[test]
fn a_stored_import_reads_and_writes_back_unchanged() {
    let import: Import = read_back(import(), &());
    assert_eq!(import.status, ImportStatus::Done);
    assert_serialised(&import, Import::ATTRIBUTES);
}

#[test]
fn a_stored_category_reads_and_writes_back_unchanged() {
    let category: Category = read_back(category(), &());
    assert_eq!(category.slug, "tea");
}

#[test]
fn a_stored_product_reads_and_writes_back_unchanged() {
    let product: Product = read_back(product(), &());
    assert_eq!((product.available, product.reserved), (7, 2));
    assert_serialised(&product, Product::ATTRIBUTES);
}

#[test]
fn a_misspelt_attribute_is_caught() {
    let product = Product::from_item(product()).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        unserialised(&product, &["available", "availabel"]),
        ["availabel"]
    );
}

#[test]
fn a_malformed_item_names_its_kind() {
    let mut broken = product();
    broken.insert("available".into(), "seven".into());
    match Product::from_item(broken) {
        Err(Error::Internal(message)) => {
            assert!(
                message.starts_with("stored product is malformed"),
                "{message}"
            )
        }
        other => panic!("expected an internal error, got {other:?}"),
    }
}

#[test]
fn times_are_written_as_entities_serialise_them() {
    for item in [user(), address(), delivery(), import(), product()] {
        let stored = item.get("updated_at").cloned().unwrap_or_default();
        let at: DateTime<Utc> =
            serde_json::from_value(stored.clone()).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(entity::timestamp(at), stored);
        assert_eq!(serde_json::to_value(at).ok(), Some(stored));
    }
}

#[test]
fn times_stored_with_an_offset_still_read() {
    // The profile's updates once wrote `+00:00` rather than `Z`.
    let mut old = user();
    old.insert("updated_at".into(), "2026-02-01T08:30:00.250+00:00".into());
    let user = User::from_item(old).unwrap_or_else(|error| panic!("{error}"));
    let expected = DateTime::parse_from_rfc3339("2026-02-01T08:30:00.250Z")
        .map(|at| at.with_timezone(&Utc))
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(user.updated_at, expected);
    assert_eq!(
        entity::timestamp(user.updated_at),
        "2026-02-01T08:30:00.250Z"
    );
}
