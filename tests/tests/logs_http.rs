//! What the shop logs, read as an operator reads it: one JSON object per line, every line of a
//! request carrying its `request_id` and `correlation_id`, every line of a queue consumer its
//! queue, message id, receive count and the correlation id of the request that caused it; and
//! no line holding a password, token, card number, e-mail address, phone number, street
//! address or webhook URL, whatever the shop did with them. The lines are captured from the
//! same subscriber `bazaar serve` and every Lambda function install, at debug level for the
//! shop's own crates.

use std::time::Duration;

use bazaar_tests::http::{Client, eventually};
use bazaar_tests::receiver::Receiver;
use bazaar_tests::server::unique;
use bazaar_tests::{Backend, TestServer};
use serde_json::{Value, json};
use tracing_subscriber::filter::{LevelFilter, Targets};

bazaar_tests::on_both_backends!(a_shopping_flow_logs_no_personal_data_and_correlates_its_lines);

fn capture_logs() {
    let filter = Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("bazaar", LevelFilter::DEBUG)
        .with_target("bazaar_api", LevelFilter::DEBUG)
        .with_target("bazaar_shared", LevelFilter::DEBUG)
        .with_target("bazaar_adapters", LevelFilter::DEBUG)
        .with_target("bazaar_embedded", LevelFilter::DEBUG);
    bazaar_tests::logs::capture(filter);
}

/// Every line logged so far, parsed (a line that is not JSON fails the test).
fn logged() -> Vec<Value> {
    bazaar_tests::logs::captured()
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"))
        })
        .collect()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// The field of a line, on the event itself or on the span it was logged in.
fn field<'a>(line: &'a Value, name: &str) -> Option<&'a str> {
    line.get(name)
        .or_else(|| line.get("span")?.get(name))
        .and_then(Value::as_str)
}

async fn a_shopping_flow_logs_no_personal_data_and_correlates_its_lines(backend: Backend) {
    capture_logs();
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let hooks = Receiver::start().await;

    // The personal values this flow hands the shop.
    let name = unique("logs").replace('-', "");
    let email = format!("{name}@example.com");
    let password = format!("correct horse {name}");
    let wrong_password = format!("wrong horse {name}");
    let street = format!("{name} Secret Garden Lane 17");
    let phone = "+14155550123";
    let hook_url = hooks.url(&format!("/hooks/{name}-private-path"));
    let card = "4242424242424242";

    let registered = client
        .post(
            "/api/v1/users/register",
            None,
            json!({"email": email, "username": name, "password": password, "password_confirm": password}),
        )
        .await;
    registered.expect(201);
    let token = text(&registered.body["access_token"]);
    let user_id = text(&registered.body["user"]["id"]);
    client
        .login(&email, &wrong_password)
        .await
        .expect_problem(401);
    client.login(&email, &password).await.expect(200);
    let address = client
        .post(
            "/api/v1/users/me/addresses",
            Some(&token),
            json!({"line1": street, "city": "Tehran", "state": "Tehran", "postal_code": "1234567890", "country": "IR"}),
        )
        .await;
    address.expect(201);
    server.verify_email(&client, &token, &email).await;
    for target in [
        json!({"channel": "sms", "target": phone}),
        json!({"channel": "webhook", "target": hook_url}),
    ] {
        let subscribed = client
            .post("/api/v1/notifications/subscriptions", Some(&token), target)
            .await;
        subscribed.expect(201);
        server
            .activate_subscription(&client, &token, &subscribed.body)
            .await;
    }
    let sku = format!("{name}-SKU");
    let address_id = text(&address.body["id"]);
    let paid = client
        .order_and_pay(&admin, &token, &address_id, &sku, card)
        .await;
    let (order, placing_request) = (paid.id, paid.placing_request);
    // Paid, invoiced, and the customer told by e-mail (the delivery step ran).
    eventually("the payment's e-mail is sent", || {
        let (client, token) = (client.clone(), token.clone());
        async move {
            let inbox = client.get("/api/v1/notifications", Some(&token)).await;
            inbox.body["items"].as_array().is_some_and(|items| {
                items.iter().any(|item| {
                    item["event"] == json!("PAYMENT_SUCCESSFUL")
                        && item["channel"] == json!("email")
                        && item["status"] == json!("sent")
                })
            })
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stop().await;

    let lines = logged();
    let secrets = [
        ("password", password.as_str()),
        ("wrong password", wrong_password.as_str()),
        ("access token", token.as_str()),
        ("card number", card),
        ("card number's last digits with its start", "424242"),
        ("e-mail address", email.as_str()),
        ("phone number", phone),
        ("phone number's digits", "4155550123"),
        ("street address", street.as_str()),
        ("webhook URL", hook_url.as_str()),
        ("webhook path", &format!("{name}-private-path")),
    ];
    let raw: Vec<String> = lines.iter().map(Value::to_string).collect();
    for (what, secret) in secrets {
        assert!(!secret.is_empty(), "no {what} to look for");
        let leaks: Vec<&String> = raw.iter().filter(|line| line.contains(secret)).collect();
        assert!(leaks.is_empty(), "the {what} is in the logs: {leaks:#?}");
    }

    // The request's lines carry its id; the pipeline's lines carry it as their correlation id.
    let of_request: Vec<&Value> = lines
        .iter()
        .filter(|line| field(line, "request_id") == Some(placing_request.as_str()))
        .collect();
    assert!(
        !of_request.is_empty(),
        "no line carries the request id {placing_request}"
    );
    assert!(
        of_request
            .iter()
            .all(|line| field(line, "correlation_id") == Some(placing_request.as_str())),
        "{of_request:#?}"
    );
    let pay_request = lines
        .iter()
        .find(|line| {
            field(line, "path") == Some(&format!("/api/v1/orders/{order}/pay"))
                && line.get("message") == Some(&json!("request served"))
        })
        .and_then(|line| field(line, "request_id"))
        .map(str::to_owned)
        .expect("the payment request's line");
    let consumed: Vec<&Value> = lines
        .iter()
        .filter(|line| field(line, "correlation_id") == Some(pay_request.as_str()))
        .filter(|line| field(line, "queue").is_some())
        .collect();
    for queue in ["payments", "invoices", "notifications", "deliveries"] {
        let in_queue: Vec<&&Value> = consumed
            .iter()
            .filter(|line| field(line, "queue") == Some(queue))
            .collect();
        assert!(
            !in_queue.is_empty(),
            "no {queue} consumer line carries the payment's correlation id {pay_request}"
        );
        for line in in_queue {
            assert!(
                field(line, "message_id").is_some_and(|id| !id.is_empty()),
                "{line}"
            );
            let count = line
                .get("span")
                .and_then(|span| span.get("receive_count"))
                .or_else(|| line.get("receive_count"));
            assert!(count.is_some(), "{line}");
        }
    }

    // A proof message (the SMS code, the webhook's test delivery) is delivered under the
    // correlation id of the request that subscribed.
    let subscribing: Vec<&str> = lines
        .iter()
        .filter(|line| {
            field(line, "path") == Some("/api/v1/notifications/subscriptions")
                && field(line, "method") == Some("POST")
                && field(line, "user_id") == Some(user_id.as_str())
                && line.get("message") == Some(&json!("request served"))
        })
        .filter_map(|line| field(line, "request_id"))
        .collect();
    assert_eq!(subscribing.len(), 2, "the two subscribing requests");
    for request in subscribing {
        assert!(
            lines
                .iter()
                .any(|line| field(line, "queue") == Some("deliveries")
                    && field(line, "correlation_id") == Some(request)),
            "no delivery line carries the subscribing request's id {request}"
        );
    }
}
