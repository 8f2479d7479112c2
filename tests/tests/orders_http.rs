//! Black-box tests of "Orders, payments, shipping" through the local server over HTTP, on the
//! embedded backend and on the AWS adapters against moto, with the pipeline (payment step,
//! invoice step, notifications) running in the server's workers as it runs on SQS in AWS:
//! placing (all lines or none, no oversell under 100 concurrent buyers), idempotency keys,
//! every move of the state machine, payments by every method (declines, provider timeouts),
//! refunds, invoices, expiry, and exactly-once effects when every message is delivered three
//! times, when a send is lost after its write, and beside a poison message.

use std::sync::Arc;
use std::time::Duration;

use bazaar_shared::ids::{ProductId, UserId};
use bazaar_shared::orders::states::{self, Action, Actor, Status};
use bazaar_shared::orders::{OrderSettings, Orders};
use bazaar_shared::outbox;
use bazaar_shared::ports::{Clock, Index, Query};
use bazaar_shared::{keys, metrics};
use bazaar_tests::faults::{server_with_duplicating_queue, server_with_failing_queue};
use bazaar_tests::http::{Client, Response, concurrently, count, eventually};
use bazaar_tests::metrics::Scrape;
use bazaar_tests::{Backend, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

bazaar_tests::on_both_backends!(
    an_order_goes_from_placing_to_delivery_and_refund,
    placing_reserves_every_line_or_none,
    one_hundred_buyers_race_for_ten_units,
    an_idempotency_key_makes_one_order_however_often_it_is_sent,
    declined_and_timed_out_payments_charge_at_most_once,
    paypal_and_crypto_pay_through_their_own_gateways,
    the_state_machine_allows_exactly_its_table,
    expiry_cancels_unpaid_orders_and_releases_their_stock,
    a_payment_landing_after_cancellation_is_refunded,
    every_message_delivered_three_times_has_one_effect,
    a_crash_between_the_write_and_the_send_loses_nothing,
    a_poison_message_is_dead_lettered_while_its_batch_succeeds,
    customers_see_and_act_on_only_their_own_orders,
    bad_order_input_is_refused_and_writes_nothing,
    unpaid_orders_per_customer_are_limited_even_when_placed_at_once,
    an_order_line_may_reserve_only_so_many_units,
    three_declined_payments_close_an_order_to_payment,
    a_payment_timing_out_after_charging_is_not_expired,
    an_order_waits_for_its_payment_in_flight_and_expires_once_it_fails,
);

const ORDERS: &str = "/api/v1/orders";
const GOOD_CARD: &str = "4242424242424242";
const DECLINED_CARD: &str = "4000000000000002";
const SLOW_CARD: &str = "4000000000009987";

// ---------------------------------------------------------------------------------------------
// Helpers.

struct Shop {
    server: TestServer,
    client: Client,
    admin: String,
}

struct Buyer {
    token: String,
    id: String,
    address: String,
}

async fn shop(backend: Backend) -> Shop {
    shop_on(TestServer::start(backend).await).await
}

async fn shop_on(server: TestServer) -> Shop {
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    Shop {
        server,
        client,
        admin,
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn usd(amount: i64) -> Value {
    json!({"amount": amount, "currency": "USD"})
}

fn card(number: &str) -> Value {
    json!({"method": "card", "card_number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"})
}

impl Shop {
    async fn product(&self, sku: &str, amount: i64, stock: i64) -> String {
        let response = self
            .client
            .post(
                "/api/v1/products",
                Some(&self.admin),
                json!({"sku": sku, "name": format!("Product {sku}"), "price": usd(amount), "stock": stock}),
            )
            .await;
        response.expect(201);
        text(&response.body["id"])
    }

    async fn buyer(&self, name: &str) -> Buyer {
        let (token, id) = self.client.register(name).await;
        let response = self
            .client
            .post(
                "/api/v1/users/me/addresses",
                Some(&token),
                json!({"line1": "Valiasr St. 12", "city": "Tehran", "state": "Tehran", "postal_code": "1234567890", "country": "IR"}),
            )
            .await;
        response.expect(201);
        Buyer {
            token,
            id,
            address: text(&response.body["id"]),
        }
    }

    async fn place(&self, buyer: &Buyer, items: Value) -> Response {
        self.client
            .post(
                ORDERS,
                Some(&buyer.token),
                json!({"items": items, "shipping_address_id": buyer.address}),
            )
            .await
    }

    /// Places an order of `quantity` units of `product`; returns its id.
    async fn order(&self, buyer: &Buyer, product: &str, quantity: i64) -> String {
        let response = self
            .place(
                buyer,
                json!([{"product_id": product, "quantity": quantity}]),
            )
            .await;
        response.expect(201);
        text(&response.body["id"])
    }

    async fn pay(&self, token: &str, order: &str, body: Value) -> Response {
        self.client
            .post(&format!("{ORDERS}/{order}/pay"), Some(token), body)
            .await
    }

    async fn get_order(&self, token: &str, order: &str) -> Response {
        self.client
            .get(&format!("{ORDERS}/{order}"), Some(token))
            .await
    }

    async fn stock(&self, product: &str) -> i64 {
        // The product's own item, not the (cached) HTTP read.
        let item = self
            .server
            .app
            .products()
            .get(&ProductId::trusted(product))
            .await
            .expect("get the product");
        assert!(
            item.available >= 0 && item.reserved >= 0,
            "negative stock: {item:?}"
        );
        item.available
    }

    async fn reserved(&self, product: &str) -> i64 {
        self.server
            .app
            .products()
            .get(&ProductId::trusted(product))
            .await
            .map(|product| product.reserved)
            .expect("get the product")
    }

    /// Waits until the order's status is `status` (the pipeline runs in the background).
    async fn wait_for(&self, token: &str, order: &str, status: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..300 {
            let response = self.get_order(token, order).await;
            response.expect(200);
            if response.body["status"] == json!(status) {
                return response.body.clone();
            }
            last = response.body.clone();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("order {order} never became {status}; it is {last}");
    }

    /// The simulated provider's ledger of an order: (charges captured, total refunded).
    async fn ledger(&self, order: &str) -> (usize, i64, usize) {
        let query = Query::partition(Index::Primary, format!("PSP#{order}"));
        let page = self
            .server
            .app
            .ports()
            .store
            .query(&query)
            .await
            .expect("query the provider's ledger");
        let sk = |item: &serde_json::Map<String, Value>| text(&item["sk"]);
        let captured = page
            .items
            .iter()
            .filter(|item| sk(item).starts_with("CHARGE#") && item["status"] == json!("captured"))
            .count();
        let refunds: Vec<_> = page
            .items
            .iter()
            .filter(|item| sk(item).starts_with("REFUND#"))
            .collect();
        let refunded = refunds
            .iter()
            .map(|item| item["amount"].as_i64().unwrap_or_default())
            .sum();
        (captured, refunded, refunds.len())
    }

    /// Items of one partition of the table.
    async fn partition(
        &self,
        partition: &str,
        prefix: &str,
    ) -> Vec<serde_json::Map<String, Value>> {
        let mut query = Query::partition(Index::Primary, partition);
        if !prefix.is_empty() {
            query = query.prefix(prefix);
        }
        self.server
            .app
            .ports()
            .store
            .query(&query)
            .await
            .expect("query the partition")
            .items
    }

    /// An order in `status`, of one unit of `product`, placed by `buyer`.
    async fn order_in(&self, status: Status, buyer: &Buyer, product: &str) -> String {
        let order = self.order(buyer, product, 1).await;
        let admin = &self.admin;
        match status {
            Status::PendingPayment => {}
            Status::PaymentFailed => {
                self.pay(&buyer.token, &order, card(DECLINED_CARD))
                    .await
                    .expect(202);
                self.wait_for(&buyer.token, &order, "payment_failed").await;
            }
            Status::Cancelled => {
                self.client
                    .post(
                        &format!("{ORDERS}/{order}/cancel"),
                        Some(&buyer.token),
                        json!({}),
                    )
                    .await
                    .expect(200);
            }
            Status::Paid | Status::Shipped | Status::Delivered | Status::Refunded => {
                self.pay(&buyer.token, &order, card(GOOD_CARD))
                    .await
                    .expect(202);
                self.wait_for(&buyer.token, &order, "paid").await;
                if status != Status::Paid {
                    self.ship(&order).await.expect(200);
                }
                if matches!(status, Status::Delivered | Status::Refunded) {
                    self.deliver(&order).await.expect(200);
                }
                if status == Status::Refunded {
                    self.client
                        .post(&format!("{ORDERS}/{order}/refund"), Some(admin), json!({}))
                        .await
                        .expect(202);
                }
            }
        }
        self.wait_for(&buyer.token, &order, status.as_str()).await;
        order
    }

    async fn ship(&self, order: &str) -> Response {
        self.client
            .post(
                &format!("/api/v1/admin/orders/{order}/ship"),
                Some(&self.admin),
                json!({}),
            )
            .await
    }

    async fn deliver(&self, order: &str) -> Response {
        self.client
            .post(
                &format!("/api/v1/admin/orders/{order}/deliver"),
                Some(&self.admin),
                json!({}),
            )
            .await
    }

    /// The customer's unpaid-order counter as stored.
    async fn unpaid_count(&self, buyer: &Buyer) -> i64 {
        self.server
            .app
            .ports()
            .store
            .get(&keys::unpaid_order_count(&UserId::trusted(
                buyer.id.as_str(),
            )))
            .await
            .expect("get the unpaid-order counter")
            .and_then(|item| item.get("count").and_then(Value::as_i64))
            .unwrap_or_default()
    }

    /// Charges the simulated provider recorded for an order (captured or declined).
    async fn charges_recorded(&self, order: &str) -> usize {
        self.partition(&format!("PSP#{order}"), "CHARGE#")
            .await
            .len()
    }

    /// Pays and waits until that attempt has settled; returns the order as the buyer sees it.
    async fn pay_and_settle(&self, buyer: &Buyer, order: &str, body: Value) -> Value {
        let accepted = self.pay(&buyer.token, order, body).await;
        accepted.expect(202);
        let payment_id = accepted.body["payment_id"].clone();
        for _ in 0..300 {
            let response = self.get_order(&buyer.token, order).await;
            response.expect(200);
            let payment = &response.body["payment"];
            if payment["id"] == payment_id && payment["status"] != json!("processing") {
                return response.body.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("payment {payment_id} of order {order} never settled");
    }
}

/// Asserts a 409 problem of the `limit` type.
#[track_caller]
fn expect_limit(response: &Response) {
    response.expect_problem(409);
    assert_eq!(
        response.body["type"],
        json!("urn:bazaar:problem:limit"),
        "{}",
        response.text
    );
}

/// The clock `by` ahead of the real one.
struct Ahead(chrono::TimeDelta);

impl Clock for Ahead {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + self.0
    }
}

/// The order service as the expiry schedule sees it `minutes` from now.
fn orders_later(server: &TestServer, minutes: i64) -> Orders {
    let mut ports = server.app.ports().clone();
    ports.clock = Arc::new(Ahead(chrono::TimeDelta::minutes(minutes)));
    Orders::new(ports, OrderSettings::default())
}

// ---------------------------------------------------------------------------------------------
// Tests.

async fn an_order_goes_from_placing_to_delivery_and_refund(backend: Backend) {
    let shop = shop(backend).await;
    let before = Scrape::take(&shop.client).await;
    let product = shop.product("LAMP-1", 1999, 5).await;
    let buyer = shop.buyer("parisa").await;

    // Two lines for one product are merged; prices and names come from the catalogue.
    let response = shop
        .place(
            &buyer,
            json!([{"product_id": product, "quantity": 1}, {"product_id": product, "quantity": 2}]),
        )
        .await;
    response.expect(201);
    let order = response.body.clone();
    let id = text(&order["id"]);
    assert_eq!(order["status"], json!("pending_payment"));
    assert_eq!(order["items"].as_array().map(Vec::len), Some(1), "{order}");
    assert_eq!(order["items"][0]["quantity"], json!(3));
    assert_eq!(order["items"][0]["name"], json!("Product LAMP-1"));
    assert_eq!(order["items"][0]["unit_price"], usd(1999));
    assert_eq!(order["items"][0]["line_total"], usd(5997));
    assert_eq!(order["subtotal"], usd(5997));
    assert_eq!(order["total"], usd(5997));
    assert_eq!(order["shipping_address"]["city"], json!("Tehran"));
    assert!(order["expires_at"].is_string() && order["created_at"].is_string());
    assert_eq!(shop.stock(&product).await, 2);
    assert_eq!(shop.reserved(&product).await, 3);

    // Paying answers 202; the payment step moves the order on.
    let response = shop.pay(&buyer.token, &id, card(GOOD_CARD)).await;
    response.expect(202);
    assert_eq!(response.body["order_id"], json!(id));
    assert_eq!(response.body["status"], json!("processing"));
    let paid = shop.wait_for(&buyer.token, &id, "paid").await;
    assert_eq!(paid["payment"]["captured"], usd(5997), "{paid}");
    assert_eq!(paid["payment"]["method"], json!("card"));
    assert_eq!(paid["payment"]["display"], json!("card •••• 4242"));
    assert!(paid["expires_at"].is_null());
    assert!(
        !paid.to_string().contains(GOOD_CARD),
        "the card number is never stored or shown"
    );
    assert_eq!(
        shop.reserved(&product).await,
        0,
        "the reservation became a sale"
    );
    assert_eq!(shop.stock(&product).await, 2);
    // Paying again is refused.
    shop.pay(&buyer.token, &id, card(GOOD_CARD))
        .await
        .expect_problem(409);

    // The invoice: numbered, rendered, downloadable.
    let invoice_path = format!("{ORDERS}/{id}/invoice");
    let client = shop.client.clone();
    let token = buyer.token.clone();
    eventually("the invoice is issued", || {
        let (client, path, token) = (client.clone(), invoice_path.clone(), token.clone());
        async move { client.get(&path, Some(&token)).await.status == 200 }
    })
    .await;
    let invoice = shop.client.get(&invoice_path, Some(&buyer.token)).await;
    invoice.expect(200);
    let year = chrono::Utc::now().format("%Y").to_string();
    assert_eq!(invoice.body["number"], json!(format!("{year}-000001")));
    assert_eq!(invoice.body["total"], usd(5997));
    assert_eq!(invoice.body["lines"][0]["quantity"], json!(3));
    let document = reqwest::get(text(&invoice.body["document_url"]))
        .await
        .expect("get the invoice document");
    assert_eq!(document.status().as_u16(), 200);
    assert_eq!(
        document
            .headers()
            .get("content-disposition")
            .and_then(|value| value.to_str().ok()),
        Some("attachment"),
        "the invoice document would render as a page"
    );
    let html = document.text().await.unwrap_or_default();
    assert!(
        html.contains(&format!("Invoice {year}-000001")) && html.contains("59.97 USD"),
        "{html}"
    );

    // Shipping and delivery, by an admin.
    let shipped = shop.ship(&id).await;
    shipped.expect(200);
    assert_eq!(shipped.body["status"], json!("shipped"));
    assert_eq!(shipped.body["shipment"]["status"], json!("shipped"));
    // A shipped order can no longer be cancelled.
    let refused = shop
        .client
        .post(
            &format!("{ORDERS}/{id}/cancel"),
            Some(&buyer.token),
            json!({}),
        )
        .await;
    refused.expect_problem(409);
    assert!(
        text(&refused.body["detail"]).contains("shipped"),
        "{}",
        refused.text
    );
    shop.deliver(&id).await.expect(200);

    let tracking = shop
        .client
        .get(&format!("{ORDERS}/{id}/tracking"), Some(&buyer.token))
        .await;
    tracking.expect(200);
    let statuses: Vec<_> = tracking.body["history"]
        .as_array()
        .map(|history| history.iter().map(|entry| text(&entry["status"])).collect())
        .unwrap_or_default();
    assert_eq!(
        statuses,
        ["pending_payment", "paid", "shipped", "delivered"]
    );
    assert!(tracking.body["history"][0]["at"].is_string());
    assert_eq!(tracking.body["shipment"]["carrier"], json!("Bazaar Post"));
    assert!(text(&tracking.body["shipment"]["tracking_number"]).starts_with("BZ"));
    assert_eq!(tracking.body["shipment"]["status"], json!("delivered"));

    // Refunds: partial, then the rest; never more than was captured.
    let refund_path = format!("{ORDERS}/{id}/refund");
    let partial = shop
        .client
        .post(
            &refund_path,
            Some(&shop.admin),
            json!({"amount": usd(1000), "reason": "scratched"}),
        )
        .await;
    partial.expect(202);
    assert_eq!(partial.body["amount"], usd(1000));
    shop.client
        .post(
            &refund_path,
            Some(&shop.admin),
            json!({"amount": usd(5000)}),
        )
        .await
        .expect_problem(409);
    shop.client
        .post(
            &refund_path,
            Some(&shop.admin),
            json!({"amount": {"amount": 10, "currency": "EUR"}}),
        )
        .await
        .expect_problem(422);
    shop.client
        .post(&refund_path, Some(&buyer.token), json!({}))
        .await
        .expect_problem(403);
    shop.client
        .post(&refund_path, Some(&shop.admin), json!({}))
        .await
        .expect(202);
    let refunded = shop.wait_for(&buyer.token, &id, "refunded").await;
    assert_eq!(refunded["payment"]["refunded"], usd(5997));
    shop.client
        .post(&refund_path, Some(&shop.admin), json!({}))
        .await
        .expect_problem(409);
    let ledger_order = id.clone();
    eventually("the provider refunded everything", || {
        let shop = &shop;
        let order = ledger_order.clone();
        async move { shop.ledger(&order).await == (1, 5997, 2) }
    })
    .await;

    // The flow shows on /metrics, under the names the dashboards and alarms use. The refund's
    // record is written just after the provider's ledger.
    let client = shop.client.clone();
    let refunds_before = before.sum(metrics::REFUNDS, &[("outcome", "refunded")]);
    eventually("both refunds are counted", || {
        let client = client.clone();
        async move {
            let now = Scrape::take(&client).await;
            now.sum(metrics::REFUNDS, &[("outcome", "refunded")]) - refunds_before >= 2.0
        }
    })
    .await;
    let after = Scrape::take(&shop.client).await;
    let grew = |name: &str, labels: &[(&str, &str)]| after.grew(&before, name, labels);
    assert!(grew(metrics::ORDERS_PLACED, &[]) >= 1.0);
    assert!(grew(metrics::ORDER_VALUE, &[("currency", "USD")]) >= 5997.0);
    let captured = [("method", "card"), ("outcome", "captured")];
    assert!(grew(metrics::PAYMENTS, &captured) >= 1.0);
    let placed = [("method", "POST"), ("route", ORDERS), ("status", "201")];
    assert!(grew(metrics::HTTP_REQUESTS, &placed) >= 1.0);
    for queue in ["payments", "invoices", "notifications", "deliveries"] {
        let ok = [("queue", queue), ("outcome", "ok")];
        assert!(grew(metrics::QUEUE_MESSAGES, &ok) >= 1.0, "{queue}");
        let ages = format!("{}_count", metrics::QUEUE_MESSAGE_AGE);
        assert!(grew(&ages, &[("queue", queue)]) >= 1.0, "{queue}");
    }
    let email = [("channel", "email"), ("outcome", "sent")];
    assert!(grew(metrics::NOTIFICATIONS_DELIVERED, &email) >= 1.0);
    assert!(grew(metrics::DELIVERY_ATTEMPTS, &[("channel", "email")]) >= 1.0);
    shop.server.stop().await;
}

async fn placing_reserves_every_line_or_none(backend: Backend) {
    let shop = shop(backend).await;
    let plenty = shop.product("PLENTY", 500, 10).await;
    let scarce = shop.product("SCARCE", 700, 1).await;
    let buyer = shop.buyer("kaveh").await;
    let response = shop
        .place(
            &buyer,
            json!([{"product_id": plenty, "quantity": 4}, {"product_id": scarce, "quantity": 2}]),
        )
        .await;
    response.expect_problem(409);
    assert_eq!(
        response.error_fields(),
        ["items[1].quantity"],
        "{}",
        response.text
    );
    assert!(
        response.text.contains("only 1 of SCARCE available"),
        "{}",
        response.text
    );
    assert_eq!(shop.stock(&plenty).await, 10, "nothing was reserved");
    assert_eq!(shop.stock(&scarce).await, 1);
    let listed = shop.client.get(ORDERS, Some(&buyer.token)).await;
    assert_eq!(listed.body["items"], json!([]), "no order was written");

    // Taking the last unit reserves it, and tells admins the product is out of stock.
    shop.order(&buyer, &scarce, 1).await;
    assert_eq!(shop.stock(&scarce).await, 0);
    let transitions = shop.partition(&format!("PRODUCT#{scarce}"), "STOCK#").await;
    let kinds: Vec<_> = transitions
        .iter()
        .map(|item| text(&item["transition"]))
        .collect();
    assert_eq!(kinds, ["out_of_stock"]);
    shop.server.stop().await;
}

async fn one_hundred_buyers_race_for_ten_units(backend: Backend) {
    let shop = shop(backend).await;
    let product = shop.product("HOT-1", 1000, 10).await;
    let mut buyers = Vec::new();
    for n in 0..20 {
        buyers.push(Arc::new(shop.buyer(&format!("racer{n}")).await));
    }
    let client = shop.client.clone();
    let statuses = concurrently(100, |n| {
        let client = client.clone();
        let buyer = buyers[n % buyers.len()].clone();
        let product = product.clone();
        async move {
            client
                .post(
                    ORDERS,
                    Some(&buyer.token),
                    json!({"items": [{"product_id": product, "quantity": 1}], "shipping_address_id": buyer.address}),
                )
                .await
        }
    })
    .await;
    assert_eq!(count(&statuses, 201), 10, "{statuses:?}");
    assert_eq!(count(&statuses, 409), 90, "{statuses:?}");
    assert_eq!(shop.stock(&product).await, 0);
    assert_eq!(shop.reserved(&product).await, 10);
    let admin_list = shop
        .client
        .get(&format!("{ORDERS}?limit=100"), Some(&shop.admin))
        .await;
    admin_list.expect(200);
    assert_eq!(admin_list.body["items"].as_array().map(Vec::len), Some(10));
    shop.server.stop().await;
}

async fn an_idempotency_key_makes_one_order_however_often_it_is_sent(backend: Backend) {
    let shop = shop(backend).await;
    let product = shop.product("IDEM-1", 1500, 50).await;
    let buyer = Arc::new(shop.buyer("idem").await);
    let body = json!({"items": [{"product_id": product, "quantity": 2}], "shipping_address_id": buyer.address});
    let client = shop.client.clone();
    let send = |key: &'static str, body: Value| {
        let client = client.clone();
        let token = buyer.token.clone();
        async move {
            client
                .send(
                    client
                        .request(Method::POST, ORDERS, Some(&token))
                        .header("Idempotency-Key", key)
                        .json(&body),
                )
                .await
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        tasks.spawn(send("order-key-1", body.clone()));
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut statuses = Vec::new();
    while let Some(Ok(response)) = tasks.join_next().await {
        statuses.push(response.status);
        if response.status == 201 {
            ids.insert(text(&response.body["id"]));
        } else {
            response.expect_problem(409);
        }
    }
    assert_eq!(statuses.len(), 20);
    assert_eq!(
        ids.len(),
        1,
        "every success is the same order: {statuses:?}"
    );
    assert_eq!(shop.stock(&product).await, 48, "reserved once");

    // Once done, the key answers with the first response, marked as a replay.
    let again = send("order-key-1", body.clone()).await;
    again.expect(201);
    assert_eq!(again.header("idempotency-replayed"), Some("true"));
    assert!(ids.contains(&text(&again.body["id"])));
    // The same key with another body is refused.
    let other = json!({"items": [{"product_id": product, "quantity": 3}], "shipping_address_id": buyer.address});
    let refused = send("order-key-1", other.clone()).await;
    refused.expect_problem(422);
    assert_eq!(refused.error_fields(), ["Idempotency-Key"]);
    // Keys are per user: another buyer's identical key is theirs.
    let listed = shop.client.get(ORDERS, Some(&buyer.token)).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));

    // A request that failed releases its key: the same key may be retried.
    let too_many = json!({"items": [{"product_id": product, "quantity": 1000}], "shipping_address_id": buyer.address});
    send("order-key-2", too_many).await.expect_problem(409);
    send("order-key-2", other).await.expect(201);
    assert_eq!(shop.stock(&product).await, 45);

    // Paying with a key: 20 concurrent sends, one attempt, one charge.
    let order = shop.order(&buyer, &product, 1).await;
    let pay_path = format!("{ORDERS}/{order}/pay");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let client = shop.client.clone();
        let request = client
            .request(Method::POST, &pay_path, Some(&buyer.token))
            .header("Idempotency-Key", "pay-key-1")
            .json(&card(GOOD_CARD));
        tasks.spawn(async move { client.send(request).await });
    }
    let mut payments = std::collections::BTreeSet::new();
    while let Some(Ok(response)) = tasks.join_next().await {
        if response.status == 202 {
            payments.insert(text(&response.body["payment_id"]));
        } else {
            response.expect_problem(409);
        }
    }
    assert_eq!(payments.len(), 1);
    shop.wait_for(&buyer.token, &order, "paid").await;
    assert_eq!(shop.ledger(&order).await, (1, 0, 0));
    let bad_key = shop
        .client
        .send(
            shop.client
                .request(Method::POST, ORDERS, Some(&buyer.token))
                .header("Idempotency-Key", "has spaces in it")
                .json(&body),
        )
        .await;
    bad_key.expect_problem(400);
    shop.server.stop().await;
}

async fn declined_and_timed_out_payments_charge_at_most_once(backend: Backend) {
    let shop = shop(backend).await;
    let product = shop.product("PAY-1", 2500, 10).await;
    let buyer = shop.buyer("payer").await;
    let order = shop.order(&buyer, &product, 1).await;

    shop.pay(&buyer.token, &order, card(DECLINED_CARD))
        .await
        .expect(202);
    let failed = shop.wait_for(&buyer.token, &order, "payment_failed").await;
    assert!(
        text(&failed["payment"]["failure_reason"]).contains("declined"),
        "{failed}"
    );
    assert_eq!(
        shop.reserved(&product).await,
        1,
        "a failed payment keeps the reservation"
    );
    assert_eq!(shop.ledger(&order).await, (0, 0, 0));

    // May pay again: the provider times out on the first try (after charging); the step is
    // retried and finds the charge instead of making another.
    shop.pay(&buyer.token, &order, card(SLOW_CARD))
        .await
        .expect(202);
    let paid = shop.wait_for(&buyer.token, &order, "paid").await;
    assert_eq!(paid["payment"]["display"], json!("card •••• 9987"));
    assert_eq!(shop.ledger(&order).await, (1, 0, 0), "charged exactly once");
    let tracking = shop
        .client
        .get(&format!("{ORDERS}/{order}/tracking"), Some(&buyer.token))
        .await;
    let statuses: Vec<_> = tracking.body["history"]
        .as_array()
        .map(|history| history.iter().map(|entry| text(&entry["status"])).collect())
        .unwrap_or_default();
    assert_eq!(statuses, ["pending_payment", "payment_failed", "paid"]);
    shop.server.stop().await;
}

async fn paypal_and_crypto_pay_through_their_own_gateways(backend: Backend) {
    let shop = shop(backend).await;
    let product = shop.product("PAY-2", 990, 10).await;
    let buyer = shop.buyer("wallets").await;
    let cases = [
        (
            json!({"method": "paypal", "payer_email": "declined@paypal.test"}),
            "payment_failed",
        ),
        (
            json!({"method": "paypal", "payer_email": "timeout@paypal.test"}),
            "paid",
        ),
        (
            json!({"method": "paypal", "payer_email": "buyer@example.com"}),
            "paid",
        ),
        (
            json!({"method": "crypto", "currency": "ETH", "wallet_address": "0x52908400098527886E0F7030069857D2E416dead"}),
            "payment_failed",
        ),
        (
            json!({"method": "crypto", "currency": "ETH", "wallet_address": "0x52908400098527886E0F7030069857D2E4165ec0"}),
            "paid",
        ),
        (
            json!({"method": "crypto", "currency": "BTC", "wallet_address": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}),
            "paid",
        ),
    ];
    for (body, outcome) in cases {
        let order = shop.order(&buyer, &product, 1).await;
        shop.pay(&buyer.token, &order, body.clone())
            .await
            .expect(202);
        let settled = shop.wait_for(&buyer.token, &order, outcome).await;
        assert_eq!(settled["payment"]["method"], body["method"], "{settled}");
        if outcome == "payment_failed" {
            let expected = match body["method"].as_str() {
                Some("paypal") => "paypal_declined",
                _ => "insufficient_funds",
            };
            assert_eq!(
                settled["payment"]["failure_reason"],
                json!("payment declined")
            );
            let for_admin = shop.get_order(&shop.admin, &order).await;
            let detail = text(&for_admin.body["payment"]["failure_detail"]);
            assert!(detail.contains(expected), "{detail}");
        }
        let charges = usize::from(outcome == "paid");
        assert_eq!(shop.ledger(&order).await, (charges, 0, 0), "{body}");
    }
    shop.server.stop().await;
}

/// Every (status, action) pair through HTTP: an allowed action answers 2xx and moves the
/// order where the table says; anything else is a 409 naming the current state.
async fn the_state_machine_allows_exactly_its_table(backend: Backend) {
    let shop = shop(backend).await;
    let product = shop.product("FSM-1", 100, 10_000).await;
    let buyer = shop.buyer("fsm").await;
    for from in Status::ALL {
        for action in [
            Action::Cancel,
            Action::Ship,
            Action::Deliver,
            Action::RefundInFull,
        ] {
            let order = shop.order_in(from, &buyer, &product).await;
            let (path, token) = match action {
                Action::Cancel => (format!("{ORDERS}/{order}/cancel"), &buyer.token),
                Action::Ship => (format!("/api/v1/admin/orders/{order}/ship"), &shop.admin),
                Action::Deliver => (format!("/api/v1/admin/orders/{order}/deliver"), &shop.admin),
                _ => (format!("{ORDERS}/{order}/refund"), &shop.admin),
            };
            let actor = if action == Action::Cancel {
                Actor::Customer
            } else {
                Actor::Admin
            };
            let response = shop.client.post(&path, Some(token), json!({})).await;
            match states::check(action, from, actor) {
                Ok(rule) => {
                    assert!(
                        response.status < 300,
                        "{action:?} from {from:?}: {}",
                        response.text
                    );
                    shop.wait_for(&buyer.token, &order, rule.to.as_str()).await;
                }
                Err(_) => {
                    response.expect_problem(409);
                    assert!(
                        text(&response.body["detail"]).contains(from.as_str()),
                        "{action:?} from {from:?}: {}",
                        response.text
                    );
                    let unchanged = shop.get_order(&buyer.token, &order).await;
                    assert_eq!(unchanged.body["status"], json!(from.as_str()));
                    // Keep the buyer under the unpaid-order limit.
                    if from.is_unpaid() {
                        shop.client
                            .post(
                                &format!("{ORDERS}/{order}/cancel"),
                                Some(&shop.admin),
                                json!({}),
                            )
                            .await
                            .expect(200);
                    }
                }
            }
        }
        // Paying is allowed exactly while unpaid.
        if from != Status::PaymentFailed {
            let order = shop.order_in(from, &buyer, &product).await;
            let response = shop.pay(&buyer.token, &order, card(GOOD_CARD)).await;
            if from.is_unpaid() {
                response.expect(202);
                shop.wait_for(&buyer.token, &order, "paid").await;
            } else {
                response.expect_problem(409);
            }
        }
    }
    // Customers never ship, deliver or refund.
    let order = shop.order_in(Status::Paid, &buyer, &product).await;
    shop.client
        .post(
            &format!("/api/v1/admin/orders/{order}/ship"),
            Some(&buyer.token),
            json!({}),
        )
        .await
        .expect_problem(403);
    shop.server.stop().await;
}

async fn expiry_cancels_unpaid_orders_and_releases_their_stock(backend: Backend) {
    let shop = shop(backend).await;
    let before = Scrape::take(&shop.client).await;
    let product = shop.product("EXP-1", 300, 5).await;
    let buyer = shop.buyer("expiring").await;
    let order = shop.order(&buyer, &product, 2).await;
    let paid = shop.order(&buyer, &product, 1).await;
    shop.pay(&buyer.token, &paid, card(GOOD_CARD))
        .await
        .expect(202);
    shop.wait_for(&buyer.token, &paid, "paid").await;
    assert_eq!(shop.stock(&product).await, 2);

    // Not yet due: nothing happens.
    assert_eq!(
        orders_later(&shop.server, 14)
            .expire_overdue("test")
            .await
            .ok(),
        Some(0)
    );
    // Past the default 15 minutes: the unpaid order is cancelled, the paid one untouched.
    assert_eq!(
        orders_later(&shop.server, 16)
            .expire_overdue("test")
            .await
            .ok(),
        Some(1)
    );
    let expired = shop.get_order(&buyer.token, &order).await;
    assert_eq!(expired.body["status"], json!("cancelled"));
    let after = Scrape::take(&shop.client).await;
    let by_expiry = [("reason", "expired")];
    assert!(after.grew(&before, metrics::ORDERS_CANCELLED, &by_expiry) >= 1.0);
    assert_eq!(shop.stock(&product).await, 4);
    assert_eq!(shop.reserved(&product).await, 0);
    assert_eq!(
        shop.get_order(&buyer.token, &paid).await.body["status"],
        json!("paid")
    );
    let tracking = shop
        .client
        .get(&format!("{ORDERS}/{order}/tracking"), Some(&buyer.token))
        .await;
    assert_eq!(
        tracking.body["history"][1]["action"],
        json!("reservation expires")
    );
    // Running again changes nothing.
    assert_eq!(
        orders_later(&shop.server, 17)
            .expire_overdue("test")
            .await
            .ok(),
        Some(0)
    );
    assert_eq!(shop.stock(&product).await, 4);
    shop.pay(&buyer.token, &order, card(GOOD_CARD))
        .await
        .expect_problem(409);
    shop.server.stop().await;
}

async fn a_payment_landing_after_cancellation_is_refunded(backend: Backend) {
    let (server, failing) = server_with_failing_queue(backend).await;
    let shop = shop_on(server).await;
    let product = shop.product("LATE-1", 4200, 3).await;
    let buyer = shop.buyer("late").await;
    let order = shop.order(&buyer, &product, 1).await;
    // The charge command is written but its send "crashes"; meanwhile the customer cancels.
    failing.fail(true);
    shop.pay(&buyer.token, &order, card(GOOD_CARD))
        .await
        .expect(202);
    shop.client
        .post(
            &format!("{ORDERS}/{order}/cancel"),
            Some(&buyer.token),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(shop.stock(&product).await, 3);
    failing.fail(false);
    // The sweeper sends the charge late; the money is captured and given back in full.
    let sent = outbox::sweep(shop.server.app.ports(), Duration::ZERO).await;
    assert!(sent.is_ok_and(|sent| sent >= 1));
    let order_id = order.clone();
    eventually("the late payment is refunded", || {
        let shop = &shop;
        let order = order_id.clone();
        async move { shop.ledger(&order).await == (1, 4200, 1) }
    })
    .await;
    let settled = shop.get_order(&buyer.token, &order).await;
    assert_eq!(settled.body["status"], json!("cancelled"));
    assert_eq!(settled.body["payment"]["status"], json!("refunded_late"));
    assert_eq!(settled.body["payment"]["refunded"], usd(4200));
    assert_eq!(shop.unpaid_count(&buyer).await, 0, "released once");
    shop.server.stop().await;
}

async fn every_message_delivered_three_times_has_one_effect(backend: Backend) {
    let server = server_with_duplicating_queue(backend, 3).await;
    let shop = shop_on(server).await;
    let product = shop.product("TRIPLE-1", 1200, 10).await;
    let buyer = shop.buyer("triple").await;
    // Only a proved address receives the order's e-mails.
    shop.server
        .verify_email(&shop.client, &buyer.token, "triple@example.com")
        .await;
    let order = shop.order(&buyer, &product, 2).await;
    shop.pay(&buyer.token, &order, card(GOOD_CARD))
        .await
        .expect(202);
    shop.wait_for(&buyer.token, &order, "paid").await;
    shop.ship(&order).await.expect(200);
    shop.deliver(&order).await.expect(200);
    shop.client
        .post(
            &format!("{ORDERS}/{order}/refund"),
            Some(&shop.admin),
            json!({"amount": usd(400)}),
        )
        .await
        .expect(202);
    let invoice_path = format!("{ORDERS}/{order}/invoice");
    let (client, token) = (shop.client.clone(), buyer.token.clone());
    eventually("the invoice is issued", || {
        let (client, path, token) = (client.clone(), invoice_path.clone(), token.clone());
        async move { client.get(&path, Some(&token)).await.status == 200 }
    })
    .await;
    let order_id = order.clone();
    eventually("the refund went through", || {
        let shop = &shop;
        let order = order_id.clone();
        async move { shop.ledger(&order).await == (1, 400, 1) }
    })
    .await;
    // Let every copy be handled, then check that each effect happened once.
    let queues = ["payments", "invoices", "notifications"];
    for _ in 0..50 {
        let mut pending = 0;
        for queue in queues {
            pending += shop
                .server
                .app
                .ports()
                .queue
                .receive(queue, 10, Duration::from_millis(1))
                .await
                .map(|m| m.len())
                .unwrap_or(0);
        }
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        shop.ledger(&order).await,
        (1, 400, 1),
        "one charge, one refund"
    );
    let year = chrono::Utc::now().format("%Y").to_string();
    let counter = shop.partition(&format!("COUNTER#INVOICE#{year}"), "").await;
    assert_eq!(counter[0]["value"], json!(1), "one invoice number used");
    let invoice = shop
        .client
        .get(&format!("{ORDERS}/{order}/invoice"), Some(&buyer.token))
        .await;
    assert_eq!(invoice.body["number"], json!(format!("{year}-000001")));
    let history = shop.partition(&format!("ORDER#{order}"), "HISTORY#").await;
    assert_eq!(history.len(), 4, "placed, paid, shipped, delivered");
    let inbox = shop
        .partition(&format!("USER#{}", buyer.id), "NOTIFICATION#")
        .await;
    let on = |channel: &str| {
        let mut events: Vec<String> = inbox
            .iter()
            .filter(|item| item["channel"] == json!(channel))
            .map(|item| text(&item["event"]))
            .collect();
        events.sort();
        events
    };
    let expected = [
        "ORDER_CREATED",
        "PAYMENT_SUCCESSFUL",
        "REFUND_ISSUED",
        "SHIPMENT_DELIVERED",
        "SHIPMENT_SHIPPED",
        "USER_REGISTERED",
    ];
    assert_eq!(on("inbox"), expected, "one inbox entry per event");
    // The address's first message is its code, which is also its welcome.
    let mut emails = expected.map(|event| match event {
        "USER_REGISTERED" => "EMAIL_VERIFICATION",
        other => other,
    });
    emails.sort();
    assert_eq!(on("email"), emails, "one e-mail per event");
    assert_eq!(shop.stock(&product).await, 8);
    assert_eq!(shop.reserved(&product).await, 0);
    shop.server.stop().await;
}

async fn a_crash_between_the_write_and_the_send_loses_nothing(backend: Backend) {
    let (server, failing) = server_with_failing_queue(backend).await;
    let shop = shop_on(server).await;
    let product = shop.product("CRASH-1", 800, 4).await;
    let buyer = shop.buyer("crashy").await;
    failing.fail(true);
    let order = shop.order(&buyer, &product, 1).await;
    shop.pay(&buyer.token, &order, card(GOOD_CARD))
        .await
        .expect(202);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stuck = shop.get_order(&buyer.token, &order).await;
    assert_eq!(
        stuck.body["status"],
        json!("pending_payment"),
        "the charge was never sent"
    );
    assert!(
        failing
            .failed_sends
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 2
    );
    let mut waiting = 0;
    let shards = shop.server.app.ports().shards;
    for partition in shards.partitions(keys::OUTBOX_PARTITION) {
        waiting += shop.partition(&partition, "").await.len();
    }
    assert!(waiting >= 2, "the messages wait in the outbox");

    // The process comes back; the sweeper sends what was left.
    failing.fail(false);
    let sent = outbox::sweep(shop.server.app.ports(), Duration::ZERO).await;
    assert!(sent.as_ref().is_ok_and(|sent| *sent >= 2), "{sent:?}");
    shop.wait_for(&buyer.token, &order, "paid").await;
    assert_eq!(shop.ledger(&order).await, (1, 0, 0));
    let order_id = order.clone();
    eventually("the order confirmation reached the inbox", || {
        let shop = &shop;
        let user = buyer.id.clone();
        let order = order_id.clone();
        async move {
            let _ = order;
            shop.partition(&format!("USER#{user}"), "NOTIFICATION#")
                .await
                .iter()
                .any(|item| item["event"] == json!("PAYMENT_SUCCESSFUL"))
        }
    })
    .await;
    shop.server.stop().await;
}

async fn a_poison_message_is_dead_lettered_while_its_batch_succeeds(backend: Backend) {
    let shop = shop_on(TestServer::start_with(backend, 2).await).await;
    let product = shop.product("POISON-1", 600, 5).await;
    let buyer = shop.buyer("poisoned").await;
    let ports = shop.server.app.ports().clone();
    ports
        .queue
        .send(
            "payments",
            "{\"kind\": \"charge\", this is not json",
            &Default::default(),
        )
        .await
        .expect("send the poison message");
    let order = shop.order(&buyer, &product, 1).await;
    shop.pay(&buyer.token, &order, card(GOOD_CARD))
        .await
        .expect(202);
    shop.wait_for(&buyer.token, &order, "paid").await;
    let mut dead = Vec::new();
    for _ in 0..100 {
        dead = ports
            .queue
            .receive("payments-dlq", 10, Duration::from_secs(1))
            .await
            .unwrap_or_default();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        dead.len(),
        1,
        "the poison message is in the dead-letter queue"
    );
    assert!(dead[0].body.contains("this is not json"));
    shop.server.stop().await;
}

async fn customers_see_and_act_on_only_their_own_orders(backend: Backend) {
    let shop = shop(backend).await;
    let product = shop.product("MINE-1", 100, 10).await;
    let alice = shop.buyer("alice").await;
    let bob = shop.buyer("bob").await;
    let order = shop.order(&alice, &product, 1).await;
    shop.order(&bob, &product, 1).await;

    let paths = [
        format!("{ORDERS}/{order}"),
        format!("{ORDERS}/{order}/tracking"),
        format!("{ORDERS}/{order}/invoice"),
    ];
    for path in &paths {
        shop.client
            .get(path, Some(&bob.token))
            .await
            .expect_problem(404);
    }
    shop.client
        .post(
            &format!("{ORDERS}/{order}/cancel"),
            Some(&bob.token),
            json!({}),
        )
        .await
        .expect_problem(404);
    shop.pay(&bob.token, &order, card(GOOD_CARD))
        .await
        .expect_problem(404);
    shop.get_order(&alice.token, &order).await.expect(200);
    shop.get_order(&shop.admin, &order).await.expect(200);
    let mine = shop.client.get(ORDERS, Some(&alice.token)).await;
    assert_eq!(mine.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(mine.body["items"][0]["id"], json!(order));
    let all = shop.client.get(ORDERS, Some(&shop.admin)).await;
    assert_eq!(all.body["items"].as_array().map(Vec::len), Some(2));
    // Pages: one at a time, both orders once.
    let first = shop
        .client
        .get(&format!("{ORDERS}?limit=1"), Some(&shop.admin))
        .await;
    let cursor = text(&first.body["next_cursor"]);
    let second = shop
        .client
        .get(
            &format!("{ORDERS}?limit=1&cursor={cursor}"),
            Some(&shop.admin),
        )
        .await;
    second.expect(200);
    assert_ne!(first.body["items"][0]["id"], second.body["items"][0]["id"]);
    shop.client
        .get(&format!("{ORDERS}?cursor=garbage"), Some(&alice.token))
        .await
        .expect_problem(400);
    // Admin endpoints are 403 for customers, and everything is 401 without a token.
    for path in ["ship", "deliver"] {
        shop.client
            .post(
                &format!("/api/v1/admin/orders/{order}/{path}"),
                Some(&alice.token),
                json!({}),
            )
            .await
            .expect_problem(403);
    }
    shop.client.get(ORDERS, None).await.expect_problem(401);
    shop.client
        .get("/api/v1/orders/nope", Some(&alice.token))
        .await
        .expect_problem(404);
    // The admin may cancel anyone's order.
    shop.client
        .post(
            &format!("{ORDERS}/{order}/cancel"),
            Some(&shop.admin),
            json!({}),
        )
        .await
        .expect(200);
    shop.server.stop().await;
}

async fn bad_order_input_is_refused_and_writes_nothing(backend: Backend) {
    let shop = shop(backend).await;
    let product = shop.product("BAD-1", 100, 10).await;
    let eur = {
        let response = shop
            .client
            .post(
                "/api/v1/products",
                Some(&shop.admin),
                json!({"sku": "EUR-1", "name": "Euro thing", "price": {"amount": 100, "currency": "EUR"}, "stock": 5}),
            )
            .await;
        response.expect(201);
        text(&response.body["id"])
    };
    let buyer = shop.buyer("careless").await;
    let cases: Vec<(Value, u16, Vec<&str>)> = vec![
        (json!({}), 422, vec!["items", "shipping_address_id"]),
        (
            json!({"items": [], "shipping_address_id": buyer.address}),
            422,
            vec!["items"],
        ),
        (
            json!({"items": [{"product_id": product, "quantity": 0}, {"quantity": 2}], "shipping_address_id": buyer.address}),
            422,
            vec!["items[0].quantity", "items[1].product_id"],
        ),
        (
            json!({"items": [{"product_id": "no-such-product", "quantity": 1}], "shipping_address_id": buyer.address}),
            422,
            vec!["items[0].product_id"],
        ),
        (
            json!({"items": [{"product_id": product, "quantity": 1}], "shipping_address_id": "someone-elses"}),
            422,
            vec!["shipping_address_id"],
        ),
        (
            json!({"items": [{"product_id": product, "quantity": 1}, {"product_id": eur, "quantity": 1}], "shipping_address_id": buyer.address}),
            422,
            vec!["items[1].product_id"],
        ),
        (
            json!({"items": [{"product_id": product, "quantity": 600}, {"product_id": product, "quantity": 600}], "shipping_address_id": buyer.address}),
            422,
            vec!["items[0].quantity"],
        ),
        (
            json!({"items": (0..26).map(|n| json!({"product_id": format!("p{n}"), "quantity": 1})).collect::<Vec<_>>(), "shipping_address_id": buyer.address}),
            422,
            vec!["items"],
        ),
        (
            json!({"items": "lots", "shipping_address_id": buyer.address}),
            422,
            vec!["items"],
        ),
    ];
    for (body, status, fields) in cases {
        let response = shop
            .client
            .post(ORDERS, Some(&buyer.token), body.clone())
            .await;
        response.expect_problem(status);
        assert_eq!(response.error_fields(), fields, "{body}: {}", response.text);
    }
    let malformed = shop
        .client
        .send(
            shop.client
                .request(Method::POST, ORDERS, Some(&buyer.token))
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    malformed.expect_problem(400);
    assert_eq!(shop.stock(&product).await, 10, "nothing was reserved");
    assert_eq!(
        shop.client.get(ORDERS, Some(&buyer.token)).await.body["items"],
        json!([])
    );

    // Payment details are checked per method, every failing field listed.
    let order = shop.order(&buyer, &product, 1).await;
    let payments: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"method": "card", "card_number": "4242424242424241", "exp_month": 13, "exp_year": 2020, "cvc": "1"}),
            vec!["card_number", "cvc", "exp_month", "exp_year"],
        ),
        (
            json!({"method": "card"}),
            vec!["card_number", "cvc", "exp_month", "exp_year"],
        ),
        (
            json!({"method": "paypal", "payer_email": "not-an-email"}),
            vec!["payer_email"],
        ),
        (
            json!({"method": "crypto", "currency": "DOGE", "wallet_address": "D123"}),
            vec!["currency"],
        ),
        (
            json!({"method": "crypto", "currency": "ETH", "wallet_address": "0x123"}),
            vec!["wallet_address"],
        ),
        (json!({"method": "cash"}), vec![""]),
    ];
    for (body, fields) in payments {
        let response = shop.pay(&buyer.token, &order, body.clone()).await;
        response.expect_problem(422);
        if fields != [""] {
            assert_eq!(response.error_fields(), fields, "{body}: {}", response.text);
        }
    }
    let unchanged = shop.get_order(&buyer.token, &order).await;
    assert!(
        unchanged.body["payment"].is_null(),
        "no attempt was recorded"
    );
    assert_eq!(shop.ledger(&order).await, (0, 0, 0));
    shop.server.stop().await;
}

/// One customer may hold only so many unpaid orders (3 by default), however many they place
/// at once; every way out of "unpaid" (cancel, payment, expiry) gives the slot back, once.
async fn unpaid_orders_per_customer_are_limited_even_when_placed_at_once(backend: Backend) {
    let shop = shop(backend).await;
    let product = shop.product("HOARD-1", 500, 100).await;
    let hoarder = Arc::new(shop.buyer("hoarder").await);
    let client = shop.client.clone();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (client, hoarder, product) = (client.clone(), hoarder.clone(), product.clone());
        tasks.spawn(async move {
            client
                .post(
                    ORDERS,
                    Some(&hoarder.token),
                    json!({"items": [{"product_id": product, "quantity": 1}], "shipping_address_id": hoarder.address}),
                )
                .await
        });
    }
    let mut placed = Vec::new();
    let mut refused = 0;
    while let Some(Ok(response)) = tasks.join_next().await {
        if response.status == 201 {
            placed.push(text(&response.body["id"]));
        } else {
            expect_limit(&response);
            assert!(
                text(&response.body["detail"]).contains("3 unpaid orders"),
                "{}",
                response.text
            );
            refused += 1;
        }
    }
    assert_eq!((placed.len(), refused), (3, 7));
    assert_eq!(
        shop.reserved(&product).await,
        3,
        "refused orders hold nothing"
    );
    assert_eq!(shop.unpaid_count(&hoarder).await, 3);

    // Someone else is not affected.
    let other = shop.buyer("neighbour").await;
    shop.order(&other, &product, 1).await;

    // Cancelling one frees a slot, exactly one.
    shop.client
        .post(
            &format!("{ORDERS}/{}/cancel", placed[0]),
            Some(&hoarder.token),
            json!({}),
        )
        .await
        .expect(200);
    let fourth = shop.order(&hoarder, &product, 1).await;
    expect_limit(
        &shop
            .place(&hoarder, json!([{"product_id": product, "quantity": 1}]))
            .await,
    );

    // Paying one frees a slot.
    shop.pay(&hoarder.token, &placed[1], card(GOOD_CARD))
        .await
        .expect(202);
    shop.wait_for(&hoarder.token, &placed[1], "paid").await;
    shop.order(&hoarder, &product, 1).await;
    expect_limit(
        &shop
            .place(&hoarder, json!([{"product_id": product, "quantity": 1}]))
            .await,
    );
    // A declined payment leaves the order unpaid: no slot comes back.
    shop.pay_and_settle(&hoarder, &fourth, card(DECLINED_CARD))
        .await;
    expect_limit(
        &shop
            .place(&hoarder, json!([{"product_id": product, "quantity": 1}]))
            .await,
    );
    assert_eq!(shop.unpaid_count(&hoarder).await, 3);

    // Expiry frees every slot of the expired orders (the neighbour's too), once.
    assert_eq!(
        orders_later(&shop.server, 16)
            .expire_overdue("test")
            .await
            .ok(),
        Some(4)
    );
    assert_eq!(shop.unpaid_count(&hoarder).await, 0);
    assert_eq!(shop.unpaid_count(&other).await, 0);
    for _ in 0..3 {
        shop.order(&hoarder, &product, 1).await;
    }
    expect_limit(
        &shop
            .place(&hoarder, json!([{"product_id": product, "quantity": 1}]))
            .await,
    );
    assert_eq!(shop.unpaid_count(&hoarder).await, 3);
    shop.server.stop().await;
}

/// An order may reserve at most 10 units of one product by default (a 409 naming the line);
/// more than 1000 stays invalid input (422).
async fn an_order_line_may_reserve_only_so_many_units(backend: Backend) {
    let shop = shop(backend).await;
    let product = shop.product("BULK-1", 100, 500).await;
    let other = shop.product("BULK-2", 100, 500).await;
    let buyer = shop.buyer("bulk").await;
    let too_many = shop
        .place(
            &buyer,
            json!([{"product_id": other, "quantity": 2}, {"product_id": product, "quantity": 11}]),
        )
        .await;
    expect_limit(&too_many);
    assert_eq!(too_many.error_fields(), ["items[1].quantity"]);
    assert!(
        text(&too_many.body["detail"]).contains("at most 10 units"),
        "{}",
        too_many.text
    );
    // Lines for the same product are added up.
    let split = shop
        .place(
            &buyer,
            json!([{"product_id": product, "quantity": 6}, {"product_id": product, "quantity": 5}]),
        )
        .await;
    expect_limit(&split);
    assert_eq!(split.error_fields(), ["items[0].quantity"]);
    shop.place(&buyer, json!([{"product_id": product, "quantity": 1001}]))
        .await
        .expect_problem(422);
    assert_eq!(shop.stock(&product).await, 500, "nothing was reserved");
    assert_eq!(shop.unpaid_count(&buyer).await, 0, "no slot was taken");
    shop.order(&buyer, &product, 10).await;
    assert_eq!(shop.stock(&product).await, 490);
    shop.server.stop().await;
}

/// Card testing: after three declined attempts an order takes no more payment, refused
/// before the provider is asked; customers see a generic reason, admins the issuer's.
async fn three_declined_payments_close_an_order_to_payment(backend: Backend) {
    let shop = shop(backend).await;
    let product = shop.product("TEST-CARD-1", 700, 10).await;
    let buyer = shop.buyer("tester").await;
    let order = shop.order(&buyer, &product, 1).await;
    for attempt in 1..=3 {
        let settled = shop
            .pay_and_settle(&buyer, &order, card(DECLINED_CARD))
            .await;
        assert_eq!(settled["status"], json!("payment_failed"));
        assert_eq!(settled["declined_attempts"], json!(attempt));
        assert_eq!(
            settled["payment"]["failure_reason"],
            json!("payment declined"),
            "{settled}"
        );
        assert!(
            settled["payment"].get("failure_detail").is_none(),
            "{settled}"
        );
    }
    assert_eq!(shop.charges_recorded(&order).await, 3);
    let refused = shop.pay(&buyer.token, &order, card(GOOD_CARD)).await;
    expect_limit(&refused);
    assert!(
        text(&refused.body["detail"]).contains("declined 3 times"),
        "{}",
        refused.text
    );
    assert_eq!(
        shop.charges_recorded(&order).await,
        3,
        "the provider was not asked again"
    );
    let unchanged = shop.get_order(&buyer.token, &order).await;
    assert_eq!(unchanged.body["status"], json!("payment_failed"));
    assert_eq!(unchanged.body["payment"]["status"], json!("failed"));
    // The customer's listing is as discreet; the admin sees the issuer's reason.
    let listed = shop.client.get(ORDERS, Some(&buyer.token)).await;
    assert!(!listed.text.contains("card_declined"), "{}", listed.text);
    let for_admin = shop.get_order(&shop.admin, &order).await;
    assert!(
        text(&for_admin.body["payment"]["failure_detail"]).contains("card_declined"),
        "{}",
        for_admin.text
    );
    // Another order of the same customer still takes payment.
    let next = shop.order(&buyer, &product, 1).await;
    let paid = shop.pay_and_settle(&buyer, &next, card(GOOD_CARD)).await;
    assert_eq!(paid["status"], json!("paid"));
    shop.server.stop().await;
}

/// The provider times out after charging; before the payment step retries, the expiry
/// schedule runs past the deadline: the order is not cancelled, and the retry makes it paid
/// (charged once, nothing refunded).
async fn a_payment_timing_out_after_charging_is_not_expired(backend: Backend) {
    let shop = shop(backend).await;
    let product = shop.product("SLOW-1", 1500, 5).await;
    let buyer = shop.buyer("slow").await;
    let order = shop.order(&buyer, &product, 1).await;
    shop.pay(&buyer.token, &order, card(SLOW_CARD))
        .await
        .expect(202);
    let order_id = order.clone();
    eventually("the provider records the charge", || {
        let shop = &shop;
        let order = order_id.clone();
        async move { shop.ledger(&order).await.0 == 1 }
    })
    .await;
    // The step saw a timeout and retries later (the worker hides the message for 2 s).
    let during = shop.get_order(&buyer.token, &order).await;
    assert_eq!(during.body["payment"]["status"], json!("processing"));
    assert_eq!(
        orders_later(&shop.server, 16)
            .expire_overdue("test")
            .await
            .ok(),
        Some(0),
        "an order with a payment in flight does not expire"
    );
    let after = shop.get_order(&buyer.token, &order).await;
    assert_ne!(after.body["status"], json!("cancelled"), "{}", after.text);
    shop.wait_for(&buyer.token, &order, "paid").await;
    assert_eq!(shop.ledger(&order).await, (1, 0, 0), "charged once, kept");
    assert_eq!(shop.stock(&product).await, 4);
    assert_eq!(shop.reserved(&product).await, 0);
    assert_eq!(shop.unpaid_count(&buyer).await, 0);
    // Its deadline entry is gone with the payment: later runs find nothing.
    assert_eq!(
        orders_later(&shop.server, 30)
            .expire_overdue("test")
            .await
            .ok(),
        Some(0)
    );
    shop.server.stop().await;
}

/// While a payment attempt has not settled, expiry leaves the order alone; once the attempt
/// fails, the next run expires it.
async fn an_order_waits_for_its_payment_in_flight_and_expires_once_it_fails(backend: Backend) {
    let (server, failing) = server_with_failing_queue(backend).await;
    let shop = shop_on(server).await;
    let product = shop.product("WAIT-1", 900, 4).await;
    let buyer = shop.buyer("waiting").await;
    let order = shop.order(&buyer, &product, 2).await;
    // The charge command stays in the outbox: the attempt is in flight for as long as needed.
    failing.fail(true);
    shop.pay(&buyer.token, &order, card(DECLINED_CARD))
        .await
        .expect(202);
    for minutes in [16, 60] {
        assert_eq!(
            orders_later(&shop.server, minutes)
                .expire_overdue("test")
                .await
                .ok(),
            Some(0)
        );
    }
    let waiting = shop.get_order(&buyer.token, &order).await;
    assert_eq!(waiting.body["status"], json!("pending_payment"));
    assert_eq!(shop.reserved(&product).await, 2);
    failing.fail(false);
    let sent = outbox::sweep(shop.server.app.ports(), Duration::ZERO).await;
    assert!(sent.is_ok_and(|sent| sent >= 1));
    shop.wait_for(&buyer.token, &order, "payment_failed").await;
    assert_eq!(
        orders_later(&shop.server, 16)
            .expire_overdue("test")
            .await
            .ok(),
        Some(1)
    );
    let expired = shop.get_order(&buyer.token, &order).await;
    assert_eq!(expired.body["status"], json!("cancelled"));
    assert_eq!(shop.stock(&product).await, 4);
    assert_eq!(shop.reserved(&product).await, 0);
    assert_eq!(shop.unpaid_count(&buyer).await, 0);
    shop.server.stop().await;
}

/// No single-key write path on the order path: a thousand orders (and their customers'
/// registrations) write their outbox entries, reservation deadlines and admin-list entries
/// into every shard of those partitions, and nothing into the unsharded partitions that
/// versions before sharding wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_orders_write_into_every_shard_of_the_shop_wide_partitions() {
    let (server, recorder) = TestServer::start_recording(Backend::Embedded).await;
    let shop = shop_on(server).await;
    let product = shop.product("SPREAD-1", 100, 5_000).await;
    // Three unpaid orders per customer (the default limit).
    let mut buyers = Vec::new();
    for n in 0..334 {
        buyers.push(shop.buyer(&format!("spread{n}")).await);
    }
    let mut placed = 0;
    for buyer in &buyers {
        for _ in 0..3 {
            if placed < 1000 {
                shop.order(buyer, &product, 1).await;
                placed += 1;
            }
        }
    }
    let calls = recorder.take();
    let written: std::collections::HashSet<&str> = calls
        .iter()
        .filter(|call| {
            call.operation != "query" && call.operation != "get" && call.operation != "get_many"
        })
        .flat_map(|call| call.partitions.iter().map(String::as_str))
        .collect();
    for base in [
        keys::OUTBOX_PARTITION,
        keys::EXPIRY_PARTITION,
        keys::ALL_ORDERS_PARTITION,
    ] {
        let shards: std::collections::BTreeSet<&str> = written
            .iter()
            .copied()
            .filter(|partition| {
                partition
                    .strip_prefix(base)
                    .and_then(|rest| rest.strip_prefix('#'))
                    .is_some_and(|shard| shard.parse::<u16>().is_ok())
            })
            .collect();
        assert!(
            shards.len() >= usize::from(bazaar_tests::server::SHARDS),
            "{base}: {placed} orders wrote into only {} shards: {shards:?}",
            shards.len()
        );
        assert!(!written.contains(base), "{base} was written unsharded");
    }
    // The users index (a `gsi1` partition, written with each profile): the 334 customers are
    // listed in every shard of it, none in the unsharded `USERS`.
    let ports = shop.server.app.ports().clone();
    let mut listed = Vec::new();
    for partition in ports.shards.partitions(keys::USERS_INDEX_PARTITION) {
        let query = Query::partition(Index::Gsi1, partition.as_str()).limit(1);
        let page = ports
            .store
            .query(&query)
            .await
            .expect("query the users index");
        listed.push((partition, page.items.len()));
    }
    let (legacy, shards) = listed
        .split_first()
        .expect("the unsharded partition comes first");
    assert_eq!(legacy.1, 0, "{legacy:?}");
    assert!(shards.iter().all(|(_, count)| *count == 1), "{shards:?}");
    shop.server.stop().await;
}
