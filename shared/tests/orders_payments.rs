//! Paying for orders (`shared/src/orders/payments.rs`) with the simulated providers' documented
//! test inputs: capture, decline, the declined-attempts limit, provider timeouts, replayed
//! commands, and money that arrives after its order was cancelled.

mod support;

use bazaar_shared::entity::Stored;
use bazaar_shared::error::Error;
use bazaar_shared::events::EventType;
use bazaar_shared::keys;
use bazaar_shared::orders::Status;
use bazaar_shared::orders::model::{AttemptStatus, Refund, RefundStatus, ShipmentStatus};
use bazaar_shared::outbox::{INVOICES_QUEUE, NOTIFICATIONS_QUEUE, PAYMENTS_QUEUE};
use support::{CARD_DECLINED, CARD_SUCCEEDS, CARD_TIMES_OUT, CORRELATION, Setup, Shop, must};

/// The payment attempts stored with an order.
async fn attempts(shop: &Shop, order_id: &bazaar_shared::ids::OrderId) -> usize {
    shop.query(&keys::order_partition(order_id), "PAYMENT#")
        .await
        .len()
}

#[tokio::test]
async fn an_approved_card_captures_the_total_and_sells_the_reserved_units() {
    let shop = Shop::new();
    let (user, product, order) = shop.unpaid_order(500, 2).await;
    let deadline = order.expires_at.map(|at| at.timestamp()).unwrap_or(0);

    let accepted = must(shop.pay_card(&user, &order.id, CARD_SUCCEEDS).await);
    assert_eq!(accepted.status, AttemptStatus::Processing);
    let processing = must(shop.orders.load(&order.id).await);
    assert_eq!(processing.processing_payment, Some(accepted.payment_id));
    assert_eq!(shop.settle_payments().await, 1);

    let paid = must(shop.orders.load(&order.id).await);
    assert_eq!(paid.status, Status::Paid);
    let payment = paid.payment.clone().unwrap_or_else(|| panic!("no payment"));
    assert_eq!(payment.status, AttemptStatus::Succeeded);
    assert_eq!(payment.captured.map(|money| money.amount), Some(1000));
    assert_eq!(paid.processing_payment, None);
    assert_eq!(paid.expires_at, None);
    assert_eq!(shop.stock(&product.id).await, (8, 0));
    assert_eq!(shop.unpaid_slots(&user.id).await, 0);
    assert!(
        shop.item(&keys::expiry(shop.ports.shards, deadline, &order.id))
            .await
            .is_none()
    );
    let shipment = paid.shipment.unwrap_or_else(|| panic!("no shipment"));
    assert_eq!(shipment.status, ShipmentStatus::Pending);
    assert!(shipment.tracking_number.starts_with("BZ"), "{shipment:?}");
    let charges = shop.ledger(&order.id, "CHARGE#").await;
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0]["amount"], 1000);
    let invoiced = shop.events(INVOICES_QUEUE).await;
    assert_eq!(invoiced.len(), 1);
    assert_eq!(invoiced[0].kind, EventType::PaymentSuccessful);
}

#[tokio::test]
async fn a_declined_card_fails_the_attempt_and_the_order_may_be_paid_again() {
    let shop = Shop::new();
    let admin = shop.admin().await;
    let (user, product, order) = shop.unpaid_order(500, 2).await;

    must(shop.pay_card(&user, &order.id, CARD_DECLINED).await);
    shop.settle_payments().await;

    let failed = must(shop.orders.get(&user, &order.id).await);
    assert_eq!(failed.status, Status::PaymentFailed);
    assert_eq!(failed.declined_attempts, 1);
    let payment = failed.payment.unwrap_or_else(|| panic!("no payment"));
    assert_eq!(payment.failure_reason.as_deref(), Some("payment declined"));
    // The issuer's own words are for admins only.
    assert_eq!(payment.failure_detail, None);
    let seen_by_admin = must(shop.orders.get(&admin, &order.id).await);
    let detail = seen_by_admin
        .payment
        .and_then(|payment| payment.failure_detail);
    assert!(detail.is_some_and(|detail| detail.contains("card_declined")));
    // The reservation stands while the customer tries again.
    assert_eq!(shop.stock(&product.id).await, (8, 2));
    assert_eq!(shop.unpaid_slots(&user.id).await, 1);

    must(shop.pay_card(&user, &order.id, CARD_SUCCEEDS).await);
    shop.settle_payments().await;
    let paid = must(shop.orders.load(&order.id).await);
    assert_eq!(paid.status, Status::Paid);
    assert_eq!(shop.stock(&product.id).await, (8, 0));
    assert_eq!(shop.ledger(&order.id, "CHARGE#").await.len(), 2);
}

#[tokio::test]
async fn after_three_declines_an_order_takes_no_more_payment() {
    let shop = Shop::new();
    let (user, _, order) = shop.unpaid_order(500, 1).await;
    for _ in 0..3 {
        must(shop.pay_card(&user, &order.id, CARD_DECLINED).await);
        shop.settle_payments().await;
    }
    let before = must(shop.orders.load(&order.id).await);
    assert_eq!(before.declined_attempts, 3);

    let refused = shop.pay_card(&user, &order.id, CARD_SUCCEEDS).await;

    assert!(matches!(refused, Err(Error::Limit { .. })), "{refused:?}");
    assert_eq!(attempts(&shop, &order.id).await, 3);
    assert_eq!(shop.ledger(&order.id, "CHARGE#").await.len(), 3);
    assert!(shop.drain(PAYMENTS_QUEUE).await.is_empty());
    assert_eq!(must(shop.orders.load(&order.id).await), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_charge_command_charges_once() {
    let shop = Shop::new();
    let (user, _, order) = shop.unpaid_order(500, 2).await;
    must(shop.pay_card(&user, &order.id, CARD_SUCCEEDS).await);
    let commands = shop.payment_commands().await;
    assert_eq!(commands.len(), 1);
    let command = &commands[0];

    // Two copies at once (SQS delivers at least once), then a late third.
    let (first, second) = tokio::join!(
        shop.orders.process_payment(command),
        shop.orders.process_payment(command)
    );
    must(first);
    must(second);
    let paid = must(shop.orders.load(&order.id).await);
    must(shop.orders.process_payment(command).await);

    assert_eq!(paid.status, Status::Paid);
    assert_eq!(must(shop.orders.load(&order.id).await), paid);
    assert_eq!(shop.ledger(&order.id, "CHARGE#").await.len(), 1);
    let tracking = must(shop.orders.tracking(&user, &order.id).await);
    let captures = tracking
        .history
        .iter()
        .filter(|entry| entry.action == "capture payment")
        .count();
    assert_eq!(captures, 1);
    assert_eq!(shop.events(INVOICES_QUEUE).await.len(), 1);
}

#[tokio::test]
async fn a_charge_that_timed_out_is_retried_and_charged_once() {
    let shop = Shop::new();
    let (user, _, order) = shop.unpaid_order(500, 2).await;
    must(shop.pay_card(&user, &order.id, CARD_TIMES_OUT).await);
    let commands = shop.payment_commands().await;

    // The provider recorded the charge, then did not answer: the step must try again.
    let first = shop.orders.process_payment(&commands[0]).await;
    assert!(matches!(first, Err(Error::Unavailable(_))), "{first:?}");
    let waiting = must(shop.orders.load(&order.id).await);
    assert_eq!(waiting.status, Status::PendingPayment);
    assert!(waiting.processing_payment.is_some());

    must(shop.orders.process_payment(&commands[0]).await);

    let paid = must(shop.orders.load(&order.id).await);
    assert_eq!(paid.status, Status::Paid);
    assert_eq!(shop.ledger(&order.id, "CHARGE#").await.len(), 1);
}

#[tokio::test]
async fn a_second_payment_is_refused_while_one_is_processing_and_once_paid() {
    let shop = Shop::new();
    let (user, _, order) = shop.unpaid_order(500, 2).await;
    must(shop.pay_card(&user, &order.id, CARD_SUCCEEDS).await);

    let while_processing = shop.pay_card(&user, &order.id, CARD_SUCCEEDS).await;
    assert!(
        matches!(while_processing, Err(Error::Conflict { .. })),
        "{while_processing:?}"
    );
    assert_eq!(attempts(&shop, &order.id).await, 1);

    shop.settle_payments().await;
    let once_paid = shop.pay_card(&user, &order.id, CARD_SUCCEEDS).await;
    assert!(
        matches!(once_paid, Err(Error::Conflict { .. })),
        "{once_paid:?}"
    );
    assert_eq!(shop.ledger(&order.id, "CHARGE#").await.len(), 1);
}

#[tokio::test]
async fn only_the_customer_pays_and_only_before_the_reservation_runs_out() {
    let shop = Shop::new();
    let (user, _, order) = shop.unpaid_order(500, 2).await;
    let stranger = shop.customer().await;

    let by_stranger = shop.pay_card(&stranger, &order.id, CARD_SUCCEEDS).await;
    assert!(
        matches!(by_stranger, Err(Error::NotFound(_))),
        "{by_stranger:?}"
    );

    shop.clock.advance(chrono::TimeDelta::minutes(15));
    let too_late = shop.pay_card(&user, &order.id, CARD_SUCCEEDS).await;
    assert!(
        matches!(too_late, Err(Error::Conflict { .. })),
        "{too_late:?}"
    );
    assert_eq!(attempts(&shop, &order.id).await, 0);
    assert!(shop.drain(PAYMENTS_QUEUE).await.is_empty());
}

#[tokio::test]
async fn malformed_card_details_are_refused_before_any_attempt() {
    let shop = Shop::new();
    let (user, _, order) = shop.unpaid_order(500, 2).await;

    let refused = shop.pay_card(&user, &order.id, "4242424242424241").await;

    let Err(Error::Validation(fields)) = refused else {
        panic!("expected a validation error, got {refused:?}");
    };
    assert_eq!(fields[0].field, "card_number");
    assert_eq!(must(shop.orders.load(&order.id).await), order);
    assert_eq!(attempts(&shop, &order.id).await, 0);
}

#[tokio::test]
async fn money_captured_after_the_order_was_cancelled_is_refunded_in_full() {
    let shop = Shop::new();
    let (user, product, order) = shop.unpaid_order(500, 2).await;
    must(shop.pay_card(&user, &order.id, CARD_SUCCEEDS).await);
    let charge = shop.payment_commands().await;
    must(shop.orders.cancel(&user, &order.id, CORRELATION).await);

    must(shop.orders.process_payment(&charge[0]).await);

    let cancelled = must(shop.orders.load(&order.id).await);
    assert_eq!(cancelled.status, Status::Cancelled);
    let payment = cancelled.payment.unwrap_or_else(|| panic!("no payment"));
    assert_eq!(payment.status, AttemptStatus::RefundedLate);
    assert_eq!(payment.refunded.amount, 1000);
    // Released by the cancel, and not sold by the late capture.
    assert_eq!(shop.stock(&product.id).await, (10, 0));
    assert_eq!(shop.settle_payments().await, 1);
    let refunds = shop.ledger(&order.id, "REFUND#").await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["amount"], 1000);
    let stored = shop
        .query(&keys::order_partition(&order.id), "REFUND#")
        .await;
    assert_eq!(stored.len(), 1);
    let refund = must(Refund::from_item(stored[0].clone()));
    assert_eq!(refund.status, RefundStatus::Succeeded);
    let issued = shop
        .events(NOTIFICATIONS_QUEUE)
        .await
        .into_iter()
        .filter(|event| event.kind == EventType::RefundIssued)
        .count();
    assert_eq!(issued, 1);
    assert!(shop.events(INVOICES_QUEUE).await.is_empty());
}

#[tokio::test]
async fn a_paid_order_gets_one_invoice_number_however_often_the_step_runs() {
    let shop = Shop::new();
    let (_, _, first) = shop.paid_order().await;
    let (_, _, second) = shop.paid_order().await;

    let issued = must(shop.orders.issue_invoice(&first.id).await);
    let again = must(shop.orders.issue_invoice(&first.id).await);
    let next = must(shop.orders.issue_invoice(&second.id).await);

    assert_eq!(issued.number, "2026-000001");
    assert_eq!(again.number, issued.number);
    assert_eq!(next.number, "2026-000002");
    assert_eq!(issued.total.amount, 1000);
    let document = must(shop.ports.blobs.get(&issued.document_key).await);
    assert!(document.is_some_and(|blob| blob.content_type.starts_with("text/html")));
}

/// With several series, invoices issued at once (two deliveries of each step racing) get
/// numbers that are unique, carry their series, and run 1, 2, 3, ... within each series with
/// no gap, spread over more than one series.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invoice_series_are_each_gap_free_under_concurrency() {
    let mut setup = Setup::default();
    setup.orders.invoice_series = 4;
    let shop = Shop::with(setup);
    let mut orders = Vec::new();
    for _ in 0..24 {
        orders.push(shop.paid_order().await.2);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for order in &orders {
        for _ in 0..2 {
            let (service, id) = (shop.orders.clone(), order.id.clone());
            tasks.spawn(async move { service.issue_invoice(&id).await });
        }
    }
    let mut by_order = std::collections::BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let invoice = must(joined.expect("the task ran"));
        // Both deliveries of one order's step agree on its number.
        let number = by_order
            .entry(invoice.order_id.clone())
            .or_insert_with(|| invoice.clone());
        assert_eq!(number.number, invoice.number);
    }
    let mut by_series: std::collections::BTreeMap<u16, Vec<u64>> = Default::default();
    for invoice in by_order.values() {
        let series = invoice.series.expect("numbered in a series");
        assert_eq!(
            invoice.number,
            format!("2026-S{series:02}-{:06}", invoice.sequence)
        );
        by_series.entry(series).or_default().push(invoice.sequence);
    }
    assert!(
        by_series.len() > 1,
        "one series took every order: {by_series:?}"
    );
    for (series, mut sequences) in by_series {
        sequences.sort_unstable();
        let expected: Vec<u64> = (1..=sequences.len() as u64).collect();
        assert_eq!(sequences, expected, "series {series} has a gap or a repeat");
    }
}
