//! Placing orders (`shared/src/orders/place.rs`): every line reserved with the order in one
//! transaction or none, the per-order and per-customer limits, and no overselling when many
//! customers buy the last units at once.

mod support;

use bazaar_shared::catalogue::requests::CreateProduct;
use bazaar_shared::error::Error;
use bazaar_shared::events::EventType;
use bazaar_shared::keys;
use bazaar_shared::money::Money;
use bazaar_shared::orders::Status;
use bazaar_shared::outbox::NOTIFICATIONS_QUEUE;
use bazaar_shared::pagination::PageRequest;
use support::{CORRELATION, Shop, must};

fn field_names(fields: &[bazaar_shared::FieldError]) -> Vec<&str> {
    fields.iter().map(|field| field.field.as_str()).collect()
}

#[tokio::test]
async fn placing_reserves_every_line_and_records_the_order() {
    let shop = Shop::new();
    let teapot = shop.product(300, 5).await;
    let kettle = shop.product(1200, 3).await;
    let (user, address) = shop.buyer().await;

    // Two lines for the teapot are one line of three.
    let order = must(
        shop.place(
            &user,
            &address,
            &[(&teapot.id, 2), (&kettle.id, 1), (&teapot.id, 1)],
        )
        .await,
    );

    assert_eq!(order.status, Status::PendingPayment);
    let quantities: Vec<i64> = order.items.iter().map(|line| line.quantity).collect();
    assert_eq!(quantities, [3, 1]);
    assert_eq!(order.total.amount, 3 * 300 + 1200);
    assert_eq!(shop.stock(&teapot.id).await, (2, 3));
    assert_eq!(shop.stock(&kettle.id).await, (2, 1));
    assert_eq!(shop.unpaid_slots(&user.id).await, 1);
    let deadline = order.expires_at.map(|at| at.timestamp()).unwrap_or(0);
    assert_eq!(deadline, shop.clock.now().timestamp() + 15 * 60);
    assert!(
        shop.item(&keys::expiry(shop.ports.shards, deadline, &order.id))
            .await
            .is_some()
    );
    assert_eq!(must(shop.orders.load(&order.id).await), order);
    let tracking = must(shop.orders.tracking(&user, &order.id).await);
    let actions: Vec<&str> = tracking.history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(actions, ["place order"]);
    let events = shop.events(NOTIFICATIONS_QUEUE).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, EventType::OrderCreated);
    assert_eq!(events[0].data["order_id"], order.id.as_str());
}

#[tokio::test]
async fn a_short_line_reserves_nothing() {
    let shop = Shop::new();
    let plenty = shop.product(300, 5).await;
    let scarce = shop.product(900, 1).await;
    let (user, address) = shop.buyer().await;

    let refused = shop
        .place(&user, &address, &[(&plenty.id, 2), (&scarce.id, 2)])
        .await;

    let Err(Error::Conflict { fields, .. }) = refused else {
        panic!("expected a stock conflict, got {refused:?}");
    };
    assert_eq!(field_names(&fields), ["items[1].quantity"]);
    assert_eq!(shop.stock(&plenty.id).await, (5, 0));
    assert_eq!(shop.stock(&scarce.id).await, (1, 0));
    assert_eq!(shop.unpaid_slots(&user.id).await, 0);
    let listed = must(shop.orders.list(&user, &PageRequest::default()).await);
    assert!(listed.items.is_empty(), "{:?}", listed.items);
    assert!(shop.drain(NOTIFICATIONS_QUEUE).await.is_empty());
}

#[tokio::test]
async fn unknown_and_archived_products_are_named_and_nothing_is_reserved() {
    let shop = Shop::new();
    let active = shop.product(300, 5).await;
    let archived = shop.product(300, 5).await;
    must(shop.products.archive(&archived.id, None).await);
    let (user, address) = shop.buyer().await;

    let refused = shop
        .place(
            &user,
            &address,
            &[(&active.id, 1), (&archived.id, 1), ("01NOSUCHPRODUCT", 1)],
        )
        .await;

    let Err(Error::Validation(fields)) = refused else {
        panic!("expected a validation error, got {refused:?}");
    };
    assert_eq!(
        field_names(&fields),
        ["items[1].product_id", "items[2].product_id"]
    );
    assert_eq!(shop.stock(&active.id).await, (5, 0));
    assert_eq!(shop.unpaid_slots(&user.id).await, 0);
}

#[tokio::test]
async fn an_address_from_someone_elses_book_is_refused() {
    let shop = Shop::new();
    let product = shop.product(300, 5).await;
    let (user, _) = shop.buyer().await;
    let (_, their_address) = shop.buyer().await;

    let refused = shop.place(&user, &their_address, &[(&product.id, 1)]).await;

    let Err(Error::Validation(fields)) = refused else {
        panic!("expected a validation error, got {refused:?}");
    };
    assert_eq!(field_names(&fields), ["shipping_address_id"]);
    assert_eq!(shop.stock(&product.id).await, (5, 0));
}

#[tokio::test]
async fn the_units_per_line_limit_counts_merged_lines() {
    let shop = Shop::new();
    let product = shop.product(300, 50).await;
    let (user, address) = shop.buyer().await;

    // 6 + 5 of one product is 11, over the default 10 per order.
    let refused = shop
        .place(&user, &address, &[(&product.id, 6), (&product.id, 5)])
        .await;

    let Err(Error::Limit { fields, .. }) = refused else {
        panic!("expected the units limit, got {refused:?}");
    };
    assert_eq!(field_names(&fields), ["items[0].quantity"]);
    assert_eq!(shop.stock(&product.id).await, (50, 0));
    must(shop.place(&user, &address, &[(&product.id, 10)]).await);
}

#[tokio::test]
async fn the_unpaid_order_limit_holds_until_an_order_is_cancelled() {
    let shop = Shop::new();
    let product = shop.product(300, 50).await;
    let (user, address) = shop.buyer().await;
    let mut placed = Vec::new();
    for _ in 0..3 {
        placed.push(must(shop.place(&user, &address, &[(&product.id, 1)]).await));
    }

    let fourth = shop.place(&user, &address, &[(&product.id, 1)]).await;
    assert!(matches!(fourth, Err(Error::Limit { .. })), "{fourth:?}");
    assert_eq!(shop.unpaid_slots(&user.id).await, 3);
    assert_eq!(shop.stock(&product.id).await, (47, 3));

    must(shop.orders.cancel(&user, &placed[0].id, CORRELATION).await);
    assert_eq!(shop.unpaid_slots(&user.id).await, 2);
    must(shop.place(&user, &address, &[(&product.id, 1)]).await);
    assert_eq!(shop.unpaid_slots(&user.id).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_placements_of_the_last_units_never_oversell() {
    let shop = std::sync::Arc::new(Shop::new());
    let product = shop.product(300, 5).await;
    let mut buyers = Vec::new();
    for _ in 0..20 {
        buyers.push(shop.buyer().await);
    }

    let mut placing = tokio::task::JoinSet::new();
    for (user, address) in buyers {
        let (shop, product_id) = (shop.clone(), product.id.clone());
        placing.spawn(async move { shop.place(&user, &address, &[(&product_id, 1)]).await });
    }
    let (mut placed, mut refused) = (0, 0);
    while let Some(joined) = placing.join_next().await {
        match must(joined) {
            Ok(_) => placed += 1,
            Err(Error::Conflict { .. }) => refused += 1,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    assert_eq!((placed, refused), (5, 15));
    assert_eq!(shop.stock(&product.id).await, (0, 5));
    // The transition to zero is seen by exactly one writer.
    let transitions = shop
        .query(
            &keys::product_partition(&product.id),
            keys::STOCK_EVENT_PREFIX,
        )
        .await;
    assert_eq!(transitions.len(), 1, "{transitions:?}");
    let out_of_stock = shop
        .events(NOTIFICATIONS_QUEUE)
        .await
        .into_iter()
        .filter(|event| event.kind == EventType::ProductOutOfStock)
        .count();
    assert_eq!(out_of_stock, 1);
}

#[tokio::test]
async fn lines_in_different_currencies_are_refused() {
    let shop = Shop::new();
    let in_euros = shop.product(300, 5).await;
    let in_dollars = must(
        shop.products
            .create(CreateProduct {
                sku: Some("USD-1".to_owned()),
                name: Some("Brass kettle".to_owned()),
                price: Some(Money {
                    amount: 300,
                    currency: "USD".to_owned(),
                }),
                stock: Some(5),
                ..CreateProduct::default()
            })
            .await,
    );
    let (user, address) = shop.buyer().await;

    let refused = shop
        .place(&user, &address, &[(&in_euros.id, 1), (&in_dollars.id, 1)])
        .await;

    let Err(Error::Validation(fields)) = refused else {
        panic!("expected a validation error, got {refused:?}");
    };
    assert_eq!(field_names(&fields), ["items[1].product_id"]);
    assert_eq!(shop.stock(&in_dollars.id).await, (5, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_placements_by_one_customer_stop_at_the_unpaid_limit() {
    let shop = std::sync::Arc::new(Shop::new());
    let product = shop.product(300, 50).await;
    let (user, address) = shop.buyer().await;

    let mut placing = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (shop, user, address) = (shop.clone(), user.clone(), address.clone());
        let product_id = product.id.clone();
        placing.spawn(async move { shop.place(&user, &address, &[(&product_id, 1)]).await });
    }
    let (mut placed, mut limited) = (0, 0);
    while let Some(joined) = placing.join_next().await {
        match must(joined) {
            Ok(_) => placed += 1,
            Err(Error::Limit { .. }) => limited += 1,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    assert_eq!((placed, limited), (3, 3));
    assert_eq!(shop.unpaid_slots(&user.id).await, 3);
    assert_eq!(shop.stock(&product.id).await, (47, 3));
}
