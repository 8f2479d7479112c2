//! Changing orders (`shared/src/orders/changes.rs`, `expiry.rs`): cancel, ship, deliver and
//! refund as `shared/src/orders/states.rs` allows, each exactly once, and changes that race
//! each other recomputed from the winner's state rather than lost.

mod support;

use bazaar_shared::error::Error;
use bazaar_shared::events::EventType;
use bazaar_shared::keys;
use bazaar_shared::money::Money;
use bazaar_shared::orders::model::{RefundStatus, ShipmentStatus};
use bazaar_shared::orders::requests::{RefundRequest, ShipRequest};
use bazaar_shared::orders::{Order, Status};
use bazaar_shared::outbox::NOTIFICATIONS_QUEUE;
use chrono::TimeDelta;
use support::{CARD_SUCCEEDS, CORRELATION, CURRENCY, Shop, must};

fn refund_of(amount: Option<i64>) -> RefundRequest {
    RefundRequest {
        amount: amount.map(|amount| Money {
            amount,
            currency: CURRENCY.to_owned(),
        }),
        reason: Some("damaged in transit".to_owned()),
    }
}

fn refunded(order: &Order) -> i64 {
    order
        .payment
        .as_ref()
        .map(|payment| payment.refunded.amount)
        .unwrap_or(0)
}

/// How many events of `kind` wait on the notifications queue (all are taken off it).
async fn events_of(shop: &Shop, kind: EventType) -> usize {
    shop.events(NOTIFICATIONS_QUEUE)
        .await
        .iter()
        .filter(|event| event.kind == kind)
        .count()
}

#[tokio::test]
async fn cancelling_an_unpaid_order_gives_its_stock_and_slot_back_once() {
    let shop = Shop::new();
    let (user, product, order) = shop.unpaid_order(500, 3).await;
    let deadline = order.expires_at.map(|at| at.timestamp()).unwrap_or(0);
    assert_eq!(shop.stock(&product.id).await, (7, 3));

    let cancelled = must(shop.orders.cancel(&user, &order.id, CORRELATION).await);
    let again = shop.orders.cancel(&user, &order.id, CORRELATION).await;

    assert_eq!(cancelled.status, Status::Cancelled);
    assert!(matches!(again, Err(Error::Conflict { .. })), "{again:?}");
    assert_eq!(shop.stock(&product.id).await, (10, 0));
    assert_eq!(shop.unpaid_slots(&user.id).await, 0);
    assert!(
        shop.item(&keys::expiry(shop.ports.shards, deadline, &order.id))
            .await
            .is_none()
    );
    assert_eq!(events_of(&shop, EventType::OrderCancelled).await, 1);
    // Nothing was captured, so nothing is refunded.
    assert!(
        shop.drain(bazaar_shared::outbox::PAYMENTS_QUEUE)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn cancelling_a_paid_order_restocks_it_and_refunds_the_capture() {
    let shop = Shop::new();
    let (user, product, order) = shop.paid_order().await;
    assert_eq!(shop.stock(&product.id).await, (8, 0));

    let cancelled = must(shop.orders.cancel(&user, &order.id, CORRELATION).await);

    assert_eq!(cancelled.status, Status::Cancelled);
    assert_eq!(refunded(&cancelled), 1000);
    assert_eq!(shop.stock(&product.id).await, (10, 0));
    assert_eq!(shop.settle_payments().await, 1);
    let at_provider = shop.ledger(&order.id, "REFUND#").await;
    assert_eq!(at_provider.len(), 1);
    assert_eq!(at_provider[0]["amount"], 1000);
    assert_eq!(events_of(&shop, EventType::RefundIssued).await, 1);
}

#[tokio::test]
async fn customers_cancel_only_their_own_orders_and_only_before_shipping() {
    let shop = Shop::new();
    let admin = shop.admin().await;
    let (user, _, order) = shop.paid_order().await;
    let stranger = shop.customer().await;

    let by_stranger = shop.orders.cancel(&stranger, &order.id, CORRELATION).await;
    assert!(
        matches!(by_stranger, Err(Error::NotFound(_))),
        "{by_stranger:?}"
    );
    must(
        shop.orders
            .ship(&admin, &order.id, ShipRequest::default(), CORRELATION)
            .await,
    );
    let shipped = shop.orders.cancel(&user, &order.id, CORRELATION).await;
    assert!(
        matches!(shipped, Err(Error::Conflict { .. })),
        "{shipped:?}"
    );
    assert_eq!(
        must(shop.orders.load(&order.id).await).status,
        Status::Shipped
    );

    // An admin may cancel anyone's unshipped order.
    let (_, _, other) = shop.unpaid_order(500, 1).await;
    let by_admin = must(shop.orders.cancel(&admin, &other.id, CORRELATION).await);
    assert_eq!(by_admin.status, Status::Cancelled);
}

#[tokio::test]
async fn shipping_and_delivery_follow_the_state_table() {
    let shop = Shop::new();
    let admin = shop.admin().await;
    let (_, _, unpaid) = shop.unpaid_order(500, 1).await;
    let (user, _, order) = shop.paid_order().await;
    let ship = ShipRequest {
        carrier: Some(" DHL ".to_owned()),
        tracking_number: Some("JD0142".to_owned()),
    };

    let unpaid_ship = shop
        .orders
        .ship(&admin, &unpaid.id, ship.clone(), CORRELATION)
        .await;
    assert!(matches!(unpaid_ship, Err(Error::Conflict { .. })));
    let by_customer = shop
        .orders
        .ship(&user, &order.id, ship.clone(), CORRELATION)
        .await;
    assert!(matches!(by_customer, Err(Error::Forbidden(_))));
    let early_delivery = shop.orders.deliver(&admin, &order.id, CORRELATION).await;
    assert!(matches!(early_delivery, Err(Error::Conflict { .. })));

    let shipped = must(
        shop.orders
            .ship(&admin, &order.id, ship.clone(), CORRELATION)
            .await,
    );
    let shipment = shipped.shipment.clone().unwrap_or_else(|| panic!("none"));
    assert_eq!(
        (shipment.carrier.as_str(), shipment.tracking_number.as_str()),
        ("DHL", "JD0142")
    );
    assert_eq!(shipment.status, ShipmentStatus::Shipped);
    let twice = shop.orders.ship(&admin, &order.id, ship, CORRELATION).await;
    assert!(matches!(twice, Err(Error::Conflict { .. })));

    let delivered = must(shop.orders.deliver(&admin, &order.id, CORRELATION).await);
    assert_eq!(delivered.status, Status::Delivered);
    assert_eq!(
        delivered.shipment.map(|shipment| shipment.status),
        Some(ShipmentStatus::Delivered)
    );
    let tracking = must(shop.orders.tracking(&user, &order.id).await);
    let actions: Vec<&str> = tracking.history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(
        actions,
        ["place order", "capture payment", "ship", "deliver"]
    );
    let events: Vec<EventType> = shop
        .events(NOTIFICATIONS_QUEUE)
        .await
        .iter()
        .map(|event| event.kind)
        .filter(|kind| {
            matches!(
                kind,
                EventType::ShipmentShipped | EventType::ShipmentDelivered
            )
        })
        .collect();
    assert_eq!(
        events,
        [EventType::ShipmentShipped, EventType::ShipmentDelivered]
    );
}

#[tokio::test]
async fn a_partial_refund_keeps_the_order_delivered_and_the_rest_refunds_it() {
    let shop = Shop::new();
    let admin = shop.admin().await;
    let (_, _, order) = shop.delivered_order(&admin).await;

    let part = must(
        shop.orders
            .refund(&admin, &order.id, refund_of(Some(300)), None, CORRELATION)
            .await,
    );
    let after_part = must(shop.orders.load(&order.id).await);
    let rest = must(
        shop.orders
            .refund(&admin, &order.id, refund_of(None), None, CORRELATION)
            .await,
    );
    let after_rest = must(shop.orders.load(&order.id).await);

    assert_eq!(part.amount.amount, 300);
    assert_eq!(part.status, RefundStatus::Pending);
    assert_eq!(after_part.status, Status::Delivered);
    assert_eq!(after_part.refundable(), 700);
    assert_eq!(rest.amount.amount, 700);
    assert_eq!(after_rest.status, Status::Refunded);
    assert_eq!(after_rest.refundable(), 0);
    let more = shop
        .orders
        .refund(&admin, &order.id, refund_of(None), None, CORRELATION)
        .await;
    assert!(matches!(more, Err(Error::Conflict { .. })), "{more:?}");
    assert_eq!(shop.settle_payments().await, 2);
    let at_provider: i64 = shop
        .ledger(&order.id, "REFUND#")
        .await
        .iter()
        .filter_map(|refund| refund["amount"].as_i64())
        .sum();
    assert_eq!(at_provider, 1000);
}

#[tokio::test]
async fn a_refund_never_exceeds_what_is_left_of_the_capture() {
    let shop = Shop::new();
    let admin = shop.admin().await;
    let (_, _, order) = shop.delivered_order(&admin).await;
    let refund = |amount| {
        shop.orders.refund(
            &admin,
            &order.id,
            refund_of(Some(amount)),
            None,
            CORRELATION,
        )
    };

    let beyond = refund(1001).await;
    assert!(matches!(beyond, Err(Error::Conflict { .. })), "{beyond:?}");
    must(refund(600).await);
    let beyond_rest = refund(401).await;
    assert!(matches!(beyond_rest, Err(Error::Conflict { .. })));
    must(refund(400).await);

    let order = must(shop.orders.load(&order.id).await);
    assert_eq!(refunded(&order), 1000);
    assert_eq!(order.status, Status::Refunded);
}

#[tokio::test]
async fn refunds_are_for_admins_and_delivered_orders_in_the_orders_currency() {
    let shop = Shop::new();
    let admin = shop.admin().await;
    let (user, _, delivered) = shop.delivered_order(&admin).await;
    let (_, _, paid) = shop.paid_order().await;
    let orders = &shop.orders;

    let by_customer = orders
        .refund(
            &user,
            &delivered.id,
            refund_of(Some(100)),
            None,
            CORRELATION,
        )
        .await;
    assert!(matches!(by_customer, Err(Error::Forbidden(_))));
    let not_delivered = orders
        .refund(&admin, &paid.id, refund_of(Some(100)), None, CORRELATION)
        .await;
    assert!(matches!(not_delivered, Err(Error::Conflict { .. })));
    let in_dollars = RefundRequest {
        amount: Some(Money {
            amount: 100,
            currency: "USD".to_owned(),
        }),
        reason: None,
    };
    let Err(Error::Validation(fields)) = orders
        .refund(&admin, &delivered.id, in_dollars, None, CORRELATION)
        .await
    else {
        panic!("a refund in another currency was accepted");
    };
    assert_eq!(fields[0].field, "amount.currency");
    let Err(Error::Validation(fields)) = orders
        .refund(&admin, &delivered.id, refund_of(Some(0)), None, CORRELATION)
        .await
    else {
        panic!("a refund of nothing was accepted");
    };
    assert_eq!(fields[0].field, "amount.amount");
    assert_eq!(must(orders.load(&delivered.id).await).refundable(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_partial_refunds_are_both_applied() {
    let shop = Shop::new();
    let admin = shop.admin().await;
    let (_, _, order) = shop.delivered_order(&admin).await;
    let cancelled_before = shop.store.cancelled_transactions();
    shop.store.hold_reads(keys::order(&order.id), 2);

    let (first, second) = tokio::join!(
        shop.orders
            .refund(&admin, &order.id, refund_of(Some(300)), None, CORRELATION),
        shop.orders
            .refund(&admin, &order.id, refund_of(Some(400)), None, CORRELATION)
    );

    must(first);
    must(second);
    assert!(
        shop.store.cancelled_transactions() > cancelled_before,
        "the two refunds did not race"
    );
    let after = must(shop.orders.load(&order.id).await);
    assert_eq!(refunded(&after), 700);
    assert_eq!(after.version, order.version + 2);
    let stored = shop
        .query(&keys::order_partition(&order.id), "REFUND#")
        .await;
    assert_eq!(stored.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_concurrent_refunds_beyond_the_capture_exactly_one_goes_through() {
    let shop = Shop::new();
    let admin = shop.admin().await;
    let (_, _, order) = shop.delivered_order(&admin).await;
    shop.store.hold_reads(keys::order(&order.id), 2);

    let (first, second) = tokio::join!(
        shop.orders
            .refund(&admin, &order.id, refund_of(Some(600)), None, CORRELATION),
        shop.orders
            .refund(&admin, &order.id, refund_of(Some(600)), None, CORRELATION)
    );

    let outcomes = [first.is_ok(), second.is_ok()];
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{outcomes:?}");
    for refused in [first, second].into_iter().filter_map(Result::err) {
        assert!(matches!(refused, Error::Conflict { .. }), "{refused:?}");
    }
    let after = must(shop.orders.load(&order.id).await);
    assert_eq!(refunded(&after), 600);
    assert_eq!(
        shop.query(&keys::order_partition(&order.id), "REFUND#")
            .await
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_racing_a_shipment_leaves_one_consistent_outcome() {
    let shop = Shop::new();
    let admin = shop.admin().await;
    let (user, product, order) = shop.paid_order().await;
    let cancelled_before = shop.store.cancelled_transactions();
    shop.store.hold_reads(keys::order(&order.id), 2);

    let (cancel, ship) = tokio::join!(
        shop.orders.cancel(&user, &order.id, CORRELATION),
        shop.orders
            .ship(&admin, &order.id, ShipRequest::default(), CORRELATION)
    );

    assert!(shop.store.cancelled_transactions() > cancelled_before);
    let after = must(shop.orders.load(&order.id).await);
    match (cancel, ship) {
        (Ok(_), Err(Error::Conflict { .. })) => {
            assert_eq!(after.status, Status::Cancelled);
            assert_eq!(shop.stock(&product.id).await, (10, 0));
            assert_eq!(refunded(&after), 1000);
        }
        (Err(Error::Conflict { .. }), Ok(_)) => {
            assert_eq!(after.status, Status::Shipped);
            assert_eq!(shop.stock(&product.id).await, (8, 0));
            assert_eq!(refunded(&after), 0);
        }
        other => panic!("expected exactly one change to win, got {other:?}"),
    }
    assert_eq!(after.version, order.version + 1);
}

#[tokio::test]
async fn overdue_unpaid_orders_expire_and_give_their_stock_back() {
    let shop = Shop::new();
    let (early_user, product, early) = shop.unpaid_order(500, 2).await;
    shop.clock.advance(TimeDelta::minutes(10));
    let (late_user, _, late) = shop.unpaid_order(500, 1).await;
    shop.clock.advance(TimeDelta::minutes(6));

    let expired = must(shop.orders.expire_overdue(CORRELATION).await);

    assert_eq!(expired, 1);
    let early = must(shop.orders.load(&early.id).await);
    assert_eq!(early.status, Status::Cancelled);
    assert_eq!(shop.stock(&product.id).await, (10, 0));
    assert_eq!(shop.unpaid_slots(&early_user.id).await, 0);
    let tracking = must(shop.orders.tracking(&early_user, &early.id).await);
    assert_eq!(
        tracking.history.last().map(|entry| entry.action.as_str()),
        Some("reservation expires")
    );
    assert_eq!(
        must(shop.orders.load(&late.id).await).status,
        Status::PendingPayment
    );
    assert_eq!(shop.unpaid_slots(&late_user.id).await, 1);
    assert_eq!(must(shop.orders.expire_overdue(CORRELATION).await), 0);
}

#[tokio::test]
async fn an_order_whose_payment_is_in_flight_waits_for_it_instead_of_expiring() {
    let shop = Shop::new();
    let (user, product, order) = shop.unpaid_order(500, 2).await;
    let deadline = order.expires_at.map(|at| at.timestamp()).unwrap_or(0);
    must(shop.pay_card(&user, &order.id, CARD_SUCCEEDS).await);
    shop.clock.advance(TimeDelta::minutes(16));

    assert_eq!(must(shop.orders.expire_overdue(CORRELATION).await), 0);
    assert_eq!(
        must(shop.orders.load(&order.id).await).status,
        Status::PendingPayment
    );

    shop.settle_payments().await;
    assert_eq!(must(shop.orders.load(&order.id).await).status, Status::Paid);
    assert_eq!(shop.stock(&product.id).await, (8, 0));
    assert_eq!(must(shop.orders.expire_overdue(CORRELATION).await), 0);
    assert!(
        shop.item(&keys::expiry(shop.ports.shards, deadline, &order.id))
            .await
            .is_none()
    );
}
