//! Black-box tests of "Notifications" through the local server over HTTP, on the embedded
//! backend (e-mail, SMS and push into the on-disk outbox) and on the AWS adapters against
//! moto (SES and SNS), with Slack and webhooks really POSTed to a receiver on loopback:
//! subscriptions and their bad input, signed webhooks delivered once per event however often
//! the queue redelivers, retries and dead-lettering of a failing target without holding back
//! the others, templates in English and Persian, and admins' messages.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bazaar_tests::faults::server_with_duplicating_queue;
use bazaar_tests::http::{Client, Response, eventually};
use bazaar_tests::receiver::{Received, Receiver};
use bazaar_tests::{Backend, TestServer};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

bazaar_tests::on_both_backends!(
    subscriptions_are_checked_unique_and_removable,
    a_webhook_gets_each_event_once_and_signed_even_when_redelivered,
    a_failing_target_is_retried_then_dead_lettered_without_holding_back_others,
    email_brings_a_welcome_and_an_order_confirmation_in_the_users_language,
    admins_message_users_and_subscribers_on_every_channel,
    admins_hear_about_stock,
    a_pending_target_gets_its_code_and_nothing_else_until_verified,
    wrong_codes_are_counted_atomically_and_resends_are_bounded,
    webhooks_are_activated_by_their_signed_test_delivery,
);

const SUBSCRIPTIONS: &str = "/api/v1/notifications/subscriptions";
const LOG: &str = "/api/v1/notifications";
const NOTIFY: &str = "/api/v1/notifications/notify";

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

async fn subscribe(client: &Client, token: &str, body: Value) -> Response {
    client.post(SUBSCRIPTIONS, Some(token), body).await
}

/// The delivery log of a user, by (event, channel).
async fn log(client: &Client, token: &str) -> Vec<Value> {
    let response = client.get(&format!("{LOG}?limit=100"), Some(token)).await;
    response.expect(200);
    response.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn find<'a>(log: &'a [Value], event: &str, channel: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|n| n["event"] == json!(event) && n["channel"] == json!(channel))
        .collect()
}

/// Checks a webhook's `x-signature` independently of the server's code.
fn signature_is_valid(request: &Received, secret: &str) -> bool {
    let Some(header) = request.header("x-signature") else {
        return false;
    };
    let mut parts = BTreeMap::new();
    for part in header.split(',') {
        if let Some((name, value)) = part.split_once('=') {
            parts.insert(name, value);
        }
    }
    let (Some(t), Some(v1)) = (parts.get("t"), parts.get("v1")) else {
        return false;
    };
    let fresh = t
        .parse::<i64>()
        .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(format!("{t}.{}", request.body).as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    fresh && expected == *v1
}

struct Shop {
    server: TestServer,
    client: Client,
    admin: String,
}

impl Shop {
    async fn start(server: TestServer) -> Self {
        let client = Client::new(&server);
        let admin = client.admin(&server).await;
        Self {
            server,
            client,
            admin,
        }
    }

    async fn product(&self, sku: &str, stock: i64) -> String {
        let response = self
            .client
            .post(
                "/api/v1/products",
                Some(&self.admin),
                json!({"sku": sku, "name": format!("Lamp {sku}"), "price": {"amount": 1999, "currency": "USD"}, "stock": stock}),
            )
            .await;
        response.expect(201);
        text(&response.body["id"])
    }

    /// A registered buyer with an address: (token, user id, address id).
    async fn buyer(&self, name: &str, language: &str) -> (String, String, String) {
        let response = self
            .client
            .post(
                "/api/v1/users/register",
                None,
                json!({"email": format!("{name}@example.com"), "username": name,
                       "password": "password-123", "password_confirm": "password-123",
                       "first_name": name, "language": language}),
            )
            .await;
        response.expect(201);
        let token = text(&response.body["access_token"]);
        let id = text(&response.body["user"]["id"]);
        self.server
            .verify_email(&self.client, &token, &format!("{name}@example.com"))
            .await;
        let address = self
            .client
            .post(
                "/api/v1/users/me/addresses",
                Some(&token),
                json!({"line1": "Enghelab St. 5", "city": "Shiraz", "state": "Fars", "postal_code": "7134567890", "country": "IR"}),
            )
            .await;
        address.expect(201);
        (token, id, text(&address.body["id"]))
    }

    /// Places and pays an order; returns its id once paid.
    async fn buy(&self, token: &str, address: &str, product: &str) -> String {
        let order = self
            .client
            .post(
                "/api/v1/orders",
                Some(token),
                json!({"items": [{"product_id": product, "quantity": 1}], "shipping_address_id": address}),
            )
            .await;
        order.expect(201);
        let id = text(&order.body["id"]);
        self.client
            .post(
                &format!("/api/v1/orders/{id}/pay"),
                Some(token),
                json!({"method": "card", "card_number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}),
            )
            .await
            .expect(202);
        let (client, path, token) = (
            self.client.clone(),
            format!("/api/v1/orders/{id}"),
            token.to_owned(),
        );
        eventually("the order is paid", || {
            let (client, path, token) = (client.clone(), path.clone(), token.clone());
            async move { client.get(&path, Some(&token)).await.body["status"] == json!("paid") }
        })
        .await;
        id
    }

    /// The e-mails in the local outbox (embedded only): (to, subject decoded, body).
    fn outbox_emails(&self) -> Vec<(String, String, String)> {
        let Some(dir) = self.server.data_dir() else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir.join("outbox/email")) else {
            return Vec::new();
        };
        let mut emails = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("eml") {
                continue;
            }
            let content = std::fs::read_to_string(&path).unwrap_or_default();
            let (head, body) = content.split_once("\r\n\r\n").unwrap_or_default();
            let header = |name: &str| {
                head.lines()
                    .find_map(|line| line.strip_prefix(&format!("{name}: ")))
                    .unwrap_or_default()
                    .to_owned()
            };
            let subject = header("Subject");
            let subject = match subject
                .strip_prefix("=?UTF-8?B?")
                .and_then(|s| s.strip_suffix("?="))
            {
                Some(encoded) => STANDARD
                    .decode(encoded)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .unwrap_or_default(),
                None => subject,
            };
            emails.push((header("To"), subject, body.to_owned()));
        }
        emails
    }
}

// ---------------------------------------------------------------------------------------------

async fn subscriptions_are_checked_unique_and_removable(backend: Backend) {
    let shop = Shop::start(TestServer::start(backend).await).await;
    let (token, _, _) = shop.buyer("subber", "en").await;
    let (other, _, _) = shop.buyer("other", "en").await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["channel", "target"]),
        (json!({"channel": "pigeon", "target": "x"}), vec!["channel"]),
        (
            json!({"channel": "email", "target": "not-an-address"}),
            vec!["target"],
        ),
        (
            json!({"channel": "sms", "target": "09121234567"}),
            vec!["target"],
        ),
        (
            json!({"channel": "push", "target": "device-token"}),
            vec!["target"],
        ),
        (
            json!({"channel": "webhook", "target": "ftp://example.com/hook"}),
            vec!["target"],
        ),
        (
            json!({"channel": "slack", "target": "not a url"}),
            vec!["target"],
        ),
        (
            json!({"channel": "email", "target": "a@example.com", "events": []}),
            vec!["events"],
        ),
        (
            json!({"channel": "email", "target": "a@example.com", "events": ["NO_SUCH_EVENT"]}),
            vec!["events[0]"],
        ),
        (
            json!({"channel": "email", "target": "a@example.com", "events": ["ORDER_CREATED", "PRODUCT_OUT_OF_STOCK"]}),
            vec!["events[1]"],
        ),
    ];
    for (body, fields) in cases {
        let response = subscribe(&shop.client, &token, body.clone()).await;
        response.expect_problem(422);
        assert_eq!(response.error_fields(), fields, "{body}: {}", response.text);
    }
    let listed = shop.client.get(SUBSCRIPTIONS, Some(&token)).await;
    assert_eq!(listed.body["items"], json!([]), "nothing was written");

    let created = subscribe(
        &shop.client,
        &token,
        json!({"channel": "email", "target": " Me@Example.com ", "events": ["ORDER_CREATED", "ORDER_CREATED"]}),
    )
    .await;
    created.expect(201);
    assert_eq!(created.body["target"], json!("me@example.com"));
    assert_eq!(created.body["events"], json!(["ORDER_CREATED"]));
    assert_eq!(created.body["status"], json!("pending"));
    assert!(created.body.get("signing_secret").is_none());
    let id = text(&created.body["id"]);
    // The same target again is a conflict; another user may use it.
    subscribe(
        &shop.client,
        &token,
        json!({"channel": "email", "target": "me@example.com"}),
    )
    .await
    .expect_problem(409);
    subscribe(
        &shop.client,
        &other,
        json!({"channel": "email", "target": "me@example.com"}),
    )
    .await
    .expect(201);
    // Every event a customer may hear about, when none are named.
    let all = subscribe(
        &shop.client,
        &token,
        json!({"channel": "sms", "target": "+14155550100"}),
    )
    .await;
    all.expect(201);
    assert_eq!(all.body["events"].as_array().map(Vec::len), Some(8));
    let hook = subscribe(
        &shop.client,
        &token,
        json!({"channel": "webhook", "target": "https://example.com/hook"}),
    )
    .await;
    hook.expect(201);
    assert!(text(&hook.body["signing_secret"]).starts_with("whsec_"));

    let listed = shop.client.get(SUBSCRIPTIONS, Some(&token)).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(3));
    assert!(!listed.text.contains("whsec_"), "secrets are shown once");
    shop.client
        .delete(&format!("{SUBSCRIPTIONS}/{id}"), Some(&other))
        .await
        .expect_problem(404);
    shop.client
        .delete(&format!("{SUBSCRIPTIONS}/{id}"), Some(&token))
        .await
        .expect(204);
    shop.client
        .delete(&format!("{SUBSCRIPTIONS}/{id}"), Some(&token))
        .await
        .expect_problem(404);
    // Once removed, the target may be subscribed again.
    subscribe(
        &shop.client,
        &token,
        json!({"channel": "email", "target": "me@example.com"}),
    )
    .await
    .expect(201);
    shop.client
        .get(SUBSCRIPTIONS, None)
        .await
        .expect_problem(401);
    // At most 20 per user.
    for n in 0..17 {
        subscribe(
            &shop.client,
            &token,
            json!({"channel": "sms", "target": format!("+1415555{:04}", 200 + n)}),
        )
        .await
        .expect(201);
    }
    subscribe(
        &shop.client,
        &token,
        json!({"channel": "sms", "target": "+14155559999"}),
    )
    .await
    .expect_problem(409);
    shop.server.stop().await;
}

async fn a_webhook_gets_each_event_once_and_signed_even_when_redelivered(backend: Backend) {
    let server = server_with_duplicating_queue(backend, 3).await;
    let shop = Shop::start(server).await;
    let receiver = Receiver::start().await;
    let product = shop.product("HOOK-1", 10).await;
    let (token, _, address) = shop.buyer("hooked", "en").await;
    let hook = subscribe(
        &shop.client,
        &token,
        json!({"channel": "webhook", "target": receiver.url("/hook"), "events": ["ORDER_CREATED", "PAYMENT_SUCCESSFUL"]}),
    )
    .await;
    hook.expect(201);
    let secret = text(&hook.body["signing_secret"]);
    shop.server
        .activate_subscription(&shop.client, &token, &hook.body)
        .await;
    let order = shop.buy(&token, &address, &product).await;
    eventually("both events reached the webhook", || async {
        receiver.on("/hook").len() >= 2
    })
    .await;
    // Give every duplicate copy time to be handled, then count.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = receiver.on("/hook");
    let mut per_event = BTreeMap::new();
    for request in &received {
        assert!(
            signature_is_valid(request, &secret),
            "bad signature: {:?}",
            request.headers
        );
        let event: Value = serde_json::from_str(&request.body).unwrap_or_default();
        assert_eq!(event["data"]["order_id"], json!(order));
        assert_eq!(request.header("x-bazaar-event"), event["type"].as_str());
        *per_event.entry(text(&event["type"])).or_insert(0) += 1;
    }
    assert_eq!(
        per_event,
        BTreeMap::from([
            ("ORDER_CREATED".to_owned(), 1),
            ("PAYMENT_SUCCESSFUL".to_owned(), 1)
        ]),
        "one delivery per event"
    );
    let deliveries: Vec<_> = received
        .iter()
        .filter_map(|r| r.header("x-bazaar-delivery"))
        .collect();
    assert_eq!(deliveries.len(), 2);
    let log = log(&shop.client, &token).await;
    for event in ["ORDER_CREATED", "PAYMENT_SUCCESSFUL"] {
        let hooks = find(&log, event, "webhook");
        assert_eq!(hooks.len(), 1, "{log:?}");
        assert_eq!(hooks[0]["status"], json!("sent"));
        assert_eq!(hooks[0]["attempts"], json!(1));
        assert_eq!(find(&log, event, "inbox").len(), 1);
        assert_eq!(find(&log, event, "email").len(), 1);
    }
    // A tampered body fails the check.
    let mut forged = received[0].clone();
    forged.body.push(' ');
    assert!(!signature_is_valid(&forged, &secret));
    shop.server.stop().await;
}

async fn a_failing_target_is_retried_then_dead_lettered_without_holding_back_others(
    backend: Backend,
) {
    let shop = Shop::start(TestServer::start_with(backend, 2).await).await;
    let receiver = Receiver::start().await;
    let product = shop.product("FAIL-1", 10).await;
    let (token, _, address) = shop.buyer("unlucky", "en").await;
    for path in ["/fail", "/ok"] {
        let hook = subscribe(
            &shop.client,
            &token,
            json!({"channel": "webhook", "target": receiver.url(path), "events": ["ORDER_CREATED"]}),
        )
        .await;
        hook.expect(201);
        shop.server
            .activate_subscription(&shop.client, &token, &hook.body)
            .await;
    }
    shop.client
        .post(
            "/api/v1/orders",
            Some(&token),
            json!({"items": [{"product_id": product, "quantity": 1}], "shipping_address_id": address}),
        )
        .await
        .expect(201);
    eventually("the healthy target got its delivery", || async {
        receiver.on("/ok").len() == 1
    })
    .await;
    let ports = shop.server.app.ports().clone();
    let mut dead = Vec::new();
    for _ in 0..200 {
        dead = ports
            .queue
            .receive("deliveries-dlq", 10, Duration::from_secs(30))
            .await
            .unwrap_or_default();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead.len(), 1, "the failing delivery is dead-lettered");
    // Three tries per receive (two backed-off retries), two receives.
    assert_eq!(receiver.on("/fail").len(), 6);
    assert_eq!(receiver.on("/ok").len(), 1);
    let log = log(&shop.client, &token).await;
    let hooks = find(&log, "ORDER_CREATED", "webhook");
    let failed: Vec<_> = hooks
        .iter()
        .filter(|n| n["status"] == json!("failed"))
        .collect();
    let sent: Vec<_> = hooks
        .iter()
        .filter(|n| n["status"] == json!("sent"))
        .collect();
    assert_eq!((failed.len(), sent.len()), (1, 1), "{hooks:?}");
    assert_eq!(failed[0]["attempts"], json!(6));
    assert_eq!(
        failed[0]["last_error"],
        json!("the message could not be delivered"),
        "customers see a generic reason, never the target's answer"
    );
    shop.server.stop().await;
}

async fn email_brings_a_welcome_and_an_order_confirmation_in_the_users_language(backend: Backend) {
    let shop = Shop::start(TestServer::start(backend).await).await;
    let product = shop.product("MAIL-1", 10).await;
    // Unique names: moto's SES is shared by every test.
    let sara = format!("sara{}", &bazaar_tests::server::unique("x")[20..28]);
    let john = format!("john{}", &bazaar_tests::server::unique("x")[20..28]);
    let sara_name = sara.clone();
    let john_name = john.clone();
    let (token, _, address) = shop.buyer(&sara, "fa").await;
    let (english, _, english_address) = shop.buyer(&john, "en").await;
    shop.buy(&token, &address, &product).await;
    shop.buy(&english, &english_address, &product).await;
    for (token, user) in [(&token, &sara), (&english, &john)] {
        let client = shop.client.clone();
        let token = token.clone();
        eventually(&format!("{user}'s e-mails were sent"), || {
            let (client, token) = (client.clone(), token.clone());
            async move {
                let log = log(&client, &token).await;
                ["EMAIL_VERIFICATION", "ORDER_CREATED", "PAYMENT_SUCCESSFUL"]
                    .iter()
                    .all(|event| {
                        find(&log, event, "email")
                            .iter()
                            .any(|n| n["status"] == json!("sent"))
                    })
            }
        })
        .await;
    }
    if backend == Backend::Embedded {
        let emails = shop.outbox_emails();
        let to = |address: &str| -> Vec<&(String, String, String)> {
            emails.iter().filter(|(to, _, _)| to == address).collect()
        };
        let sara = to(&format!("{sara}@example.com"));
        assert!(
            sara.iter().any(
                |(_, subject, body)| subject.starts_with("به بازار خوش آمدید: کد شما")
                    && body.contains(&format!("سلام {sara_name}"))
            ),
            "{sara:?}"
        );
        let confirmation = sara
            .iter()
            .find(|(_, subject, _)| subject.starts_with("تأیید سفارش"))
            .unwrap_or_else(|| panic!("no Persian order confirmation: {sara:?}"));
        assert!(confirmation.2.contains("19.99 USD") && confirmation.2.contains("1 × Lamp MAIL-1"));
        let john = to(&format!("{john}@example.com"));
        assert!(john.iter().any(|(_, subject, body)| {
            subject.starts_with("Welcome to Bazaar: your code is ")
                && body.contains(&format!("Hi {john_name},"))
        }));
        assert!(
            john.iter()
                .any(|(_, subject, _)| subject.starts_with("Order confirmation "))
        );
    } else {
        // What moto's SES received (its model dump lists sent messages).
        let dump: Value = reqwest::get(format!(
            "{}/moto-api/data.json",
            bazaar_tests::moto::endpoint()
        ))
        .await
        .expect("get moto's data dump")
        .json()
        .await
        .unwrap_or_default();
        let sent: Vec<(String, String)> = dump["ses"]["Message"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|message| {
                let to = message["destinations"]["ToAddresses"][0].as_str()?;
                Some((to.to_owned(), text(&message["subject"])))
            })
            .collect();
        let to = |address: &str| -> Vec<&String> {
            sent.iter()
                .filter(|(to, _)| to == address)
                .map(|(_, subject)| subject)
                .collect()
        };
        let sara = to(&format!("{sara}@example.com"));
        assert!(
            sara.iter()
                .any(|subject| subject.starts_with("به بازار خوش آمدید: کد شما")),
            "{sara:?}"
        );
        assert!(
            sara.iter()
                .any(|subject| subject.starts_with("تأیید سفارش")),
            "{sara:?}"
        );
        let john = to(&format!("{john}@example.com"));
        assert!(
            john.iter()
                .any(|subject| subject.starts_with("Order confirmation ")),
            "{john:?}"
        );
    }
    shop.server.stop().await;
}

async fn admins_message_users_and_subscribers_on_every_channel(backend: Backend) {
    let shop = Shop::start(TestServer::start(backend).await).await;
    let receiver = Receiver::start().await;
    let (token, user_id, _) = shop.buyer("reachable", "en").await;
    let push_target = match shop.server.sdk() {
        None => "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/bazaar/5e3e9847-3183-3f18-a7e8-671c3a57d4b3".to_owned(),
        Some(sdk) => {
            let sns = aws_sdk_sns::Client::new(sdk);
            let app = sns
                .create_platform_application()
                .name("bazaar")
                .platform("GCM")
                .attributes("PlatformCredential", "test-key")
                .send()
                .await
                .expect("create the SNS platform application");
            let endpoint = sns
                .create_platform_endpoint()
                .platform_application_arn(app.platform_application_arn().unwrap_or_default())
                .token("device-token-1")
                .send()
                .await
                .expect("create the SNS platform endpoint");
            endpoint.endpoint_arn().unwrap_or_default().to_owned()
        }
    };
    for (channel, target) in [
        ("sms", "+14155550123".to_owned()),
        ("push", push_target),
        ("slack", receiver.url("/slack")),
    ] {
        let subscribed = subscribe(
            &shop.client,
            &token,
            json!({"channel": channel, "target": target}),
        )
        .await;
        subscribed.expect(201);
        shop.server
            .activate_subscription(&shop.client, &token, &subscribed.body)
            .await;
    }
    // Bad messages first: nothing is queued.
    let bad = shop
        .client
        .post(
            NOTIFY,
            Some(&shop.admin),
            json!({"user_id": user_id, "event": "ORDER_CREATED", "subject": "x", "message": "y"}),
        )
        .await;
    bad.expect_problem(422);
    assert_eq!(bad.error_fields(), ["user_id"]);
    shop.client
        .post(
            NOTIFY,
            Some(&shop.admin),
            json!({"user_id": "nobody", "subject": "x", "message": "y"}),
        )
        .await
        .expect_problem(422);
    shop.client
        .post(
            NOTIFY,
            Some(&token),
            json!({"user_id": user_id, "subject": "x", "message": "y"}),
        )
        .await
        .expect_problem(403);

    let queued = shop
        .client
        .post(NOTIFY, Some(&shop.admin), json!({"user_id": user_id, "subject": "Sale!", "message": "Everything is 10% off today.\nOnly today."}))
        .await;
    queued.expect(202);
    let sale = json!({"text": "*Sale!*\nEverything is 10% off today.\nOnly today."});
    eventually("slack got the message", || async {
        receiver
            .on("/slack")
            .iter()
            .any(|request| serde_json::from_str::<Value>(&request.body).ok() == Some(sale.clone()))
    })
    .await;
    let client = shop.client.clone();
    eventually("every channel sent the message", || {
        let (client, token) = (client.clone(), token.clone());
        async move {
            let log = log(&client, &token).await;
            ["email", "sms", "push", "slack"].iter().all(|channel| {
                find(&log, "ADMIN_MESSAGE", channel)
                    .iter()
                    .any(|n| n["status"] == json!("sent"))
            }) && find(&log, "ADMIN_MESSAGE", "inbox").len() == 1
        }
    })
    .await;
    if let Some(dir) = shop.server.data_dir() {
        let sms = std::fs::read_dir(dir.join("outbox/sms"))
            .map(|entries| entries.flatten().count())
            .unwrap_or_default();
        assert!(sms >= 1, "the SMS is in the outbox");
        let push = std::fs::read_dir(dir.join("outbox/push"))
            .map(|entries| entries.flatten().count())
            .unwrap_or_default();
        assert!(push >= 1, "the push message is in the outbox");
    }
    shop.server.stop().await;
}

async fn admins_hear_about_stock(backend: Backend) {
    let shop = Shop::start(TestServer::start(backend).await).await;
    let receiver = Receiver::start().await;
    let hook = subscribe(
        &shop.client,
        &shop.admin,
        json!({"channel": "webhook", "target": receiver.url("/ops"), "events": ["PRODUCT_OUT_OF_STOCK", "IMPORT_FINISHED"]}),
    )
    .await;
    hook.expect(201);
    shop.server
        .activate_subscription(&shop.client, &shop.admin, &hook.body)
        .await;
    let product = shop.product("OPS-1", 3).await;
    shop.client
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/products/{product}/stock"),
            Some(&shop.admin),
            Some(json!({"set": 0})),
        )
        .await
        .expect(200);
    eventually("the admin's webhook heard of it", || async {
        !receiver.on("/ops").is_empty()
    })
    .await;
    let event: Value = serde_json::from_str(&receiver.on("/ops")[0].body).unwrap_or_default();
    assert_eq!(event["type"], json!("PRODUCT_OUT_OF_STOCK"));
    assert_eq!(event["data"]["product_id"], json!(product));
    shop.server.stop().await;
}

/// Locally, with an SMTP server configured, e-mail goes there instead of the outbox folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_email_goes_to_a_configured_smtp_server() {
    use bazaar_embedded::notify::smtp::SmtpEmail;
    let smtp = bazaar_tests::smtp_receiver::SmtpReceiver::start().await;
    let url = smtp.url();
    let server = TestServer::start_customised(Backend::Embedded, 5, move |ports| {
        let email =
            SmtpEmail::new(&url, "Bazaar <no-reply@bazaar.test>").expect("build the SMTP notifier");
        ports.notifiers.email = std::sync::Arc::new(email);
    })
    .await;
    let shop = Shop::start(server).await;
    shop.buyer("smtpuser", "fa").await;
    eventually(
        "the welcome (code) e-mail reached the SMTP server",
        || async {
            smtp.messages()
                .iter()
                .any(|message| message.contains("To: smtpuser@example.com"))
        },
    )
    .await;
    let message = smtp
        .messages()
        .into_iter()
        .find(|message| message.contains("To: smtpuser@example.com"))
        .unwrap_or_default();
    assert!(
        message.contains("From: Bazaar <no-reply@bazaar.test>"),
        "{message}"
    );
    // The Persian subject travels encoded (RFC 2047).
    assert!(message.contains("Subject: =?utf-8?b?"), "{message}");
    assert!(
        shop.outbox_emails().is_empty(),
        "nothing went to the outbox folder"
    );
    assert!(SmtpEmail::new("http://127.0.0.1:25", "a@b.test").is_err());
    assert!(SmtpEmail::new("smtp://127.0.0.1:1025", "not an address").is_err());
    shop.server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Proof of ownership

fn verify_path(id: &str) -> String {
    format!("{SUBSCRIPTIONS}/{id}/verify")
}

fn resend_path(id: &str) -> String {
    format!("{SUBSCRIPTIONS}/{id}/resend")
}

/// A code that is not `code` (same length, one digit changed).
fn other_code(code: &str) -> String {
    let mut digits: Vec<u8> = code.bytes().collect();
    digits[0] = if digits[0] == b'9' {
        b'0'
    } else {
        digits[0] + 1
    };
    String::from_utf8(digits).unwrap_or_default()
}

async fn a_pending_target_gets_its_code_and_nothing_else_until_verified(backend: Backend) {
    let shop = Shop::start(TestServer::start(backend).await).await;
    let (token, user_id, _) = shop.buyer("phoned", "en").await;
    let phone = "+14155550177";
    let subscribed = subscribe(
        &shop.client,
        &token,
        json!({"channel": "sms", "target": phone}),
    )
    .await;
    subscribed.expect(201);
    assert_eq!(subscribed.body["status"], json!("pending"));
    let id = text(&subscribed.body["id"]);
    let code = shop.server.code_for(phone).await;
    let listed = shop.client.get(SUBSCRIPTIONS, Some(&token)).await;
    assert_eq!(listed.body["items"][0]["status"], json!("pending"));

    // An admin's message to the user reaches the inbox and the proved e-mail, not the phone.
    let notify = |subject: &'static str| {
        let (client, admin, user_id) = (shop.client.clone(), shop.admin.clone(), user_id.clone());
        async move {
            client
                .post(
                    NOTIFY,
                    Some(&admin),
                    json!({"user_id": user_id, "subject": subject, "message": "m"}),
                )
                .await
                .expect(202);
        }
    };
    notify("Before").await;
    let client = shop.client.clone();
    eventually("the message reached the account e-mail", || {
        let (client, token) = (client.clone(), token.clone());
        async move {
            find(&log(&client, &token).await, "ADMIN_MESSAGE", "email")
                .iter()
                .any(|n| n["status"] == json!("sent"))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(find(&log(&shop.client, &token).await, "ADMIN_MESSAGE", "sms").is_empty());
    let to_phone = shop.server.sent.to(phone);
    assert_eq!(
        to_phone.len(),
        1,
        "exactly one message, the code: {to_phone:?}"
    );
    assert_eq!(to_phone[0].event_type, "SUBSCRIPTION_VERIFICATION");
    if let Some(dir) = shop.server.data_dir() {
        // Locally the code is in the outbox, where a developer reads it.
        let files: Vec<String> = std::fs::read_dir(dir.join("outbox/sms"))
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            files
                .iter()
                .any(|file| file.contains(&code) && file.contains(phone)),
            "{files:?}"
        );
    }

    // Bad input never counts; a wrong code does; the right one activates.
    let bad = shop
        .client
        .post(&verify_path(&id), Some(&token), json!({"code": "12ab"}))
        .await;
    bad.expect_problem(422);
    assert_eq!(bad.error_fields(), ["code"]);
    shop.client
        .post(&verify_path(&id), Some(&token), json!({}))
        .await
        .expect_problem(422);
    let wrong = shop
        .client
        .post(
            &verify_path(&id),
            Some(&token),
            json!({"code": other_code(&code)}),
        )
        .await;
    wrong.expect_problem(422);
    assert!(wrong.text.contains("4 tries left"), "{}", wrong.text);
    let (other, _, _) = shop.buyer("nosy", "en").await;
    shop.client
        .post(&verify_path(&id), Some(&other), json!({"code": code}))
        .await
        .expect_problem(404);
    let verified = shop
        .client
        .post(&verify_path(&id), Some(&token), json!({"code": code}))
        .await;
    verified.expect(200);
    assert_eq!(verified.body["status"], json!("active"));
    // The code is used up; resending to an active subscription is refused.
    shop.client
        .post(&resend_path(&id), Some(&token), json!({}))
        .await
        .expect_problem(409);

    notify("After").await;
    eventually("the phone got the message once verified", || async {
        shop.server
            .sent
            .to(phone)
            .iter()
            .any(|m| m.event_type == "ADMIN_MESSAGE")
    })
    .await;
    shop.server.stop().await;
}

async fn wrong_codes_are_counted_atomically_and_resends_are_bounded(backend: Backend) {
    let shop = Shop::start(TestServer::start(backend).await).await;
    let (token, _, _) = shop.buyer("guesser", "en").await;
    let target = format!(
        "inbox-{}@example.com",
        &bazaar_tests::server::unique("x")[20..28]
    );
    let subscribed = subscribe(
        &shop.client,
        &token,
        json!({"channel": "email", "target": target}),
    )
    .await;
    subscribed.expect(201);
    let id = text(&subscribed.body["id"]);
    let code = shop.server.code_for(&target).await;

    // Twelve guesses at once, the right one among them: only five are ever compared.
    let guesses: Vec<String> = (0..12)
        .map(|n| {
            if n == 11 {
                code.clone()
            } else {
                format!(
                    "{:06}",
                    (code.parse::<u32>().unwrap_or(0) + 1 + n) % 1_000_000
                )
            }
        })
        .collect();
    let statuses = bazaar_tests::http::concurrently(12, |n| {
        let (client, token, path, guess) = (
            shop.client.clone(),
            token.clone(),
            verify_path(&id),
            guesses[n].clone(),
        );
        async move {
            client
                .post(&path, Some(&token), json!({"code": guess}))
                .await
        }
    })
    .await;
    // Each compared guess is a 422 (wrong) or the 200 that activated it; once active, later
    // requests are 200 without a comparison; the rest were refused uncompared (409).
    let accepted = bazaar_tests::http::count(&statuses, 200) >= 1;
    let compared = bazaar_tests::http::count(&statuses, 422) + usize::from(accepted);
    assert!(
        compared <= 5,
        "more than 5 guesses were compared: {statuses:?}"
    );
    assert_eq!(statuses.len(), 12);
    if !accepted {
        // Locked: even the right code is refused now.
        shop.client
            .post(&verify_path(&id), Some(&token), json!({"code": code}))
            .await
            .expect_problem(409);
        // A new code unlocks it.
        shop.client
            .post(&resend_path(&id), Some(&token), json!({}))
            .await
            .expect(202);
        let fresh = loop {
            let fresh = shop.server.code_for(&target).await;
            if fresh != code {
                break fresh;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        shop.client
            .post(&verify_path(&id), Some(&token), json!({"code": fresh}))
            .await
            .expect(200);
    }

    // Resends are bounded per target, across accounts: the first code and three more an hour.
    let phone = "+14155550188";
    let pending = subscribe(
        &shop.client,
        &token,
        json!({"channel": "sms", "target": phone}),
    )
    .await;
    pending.expect(201);
    let pending_id = text(&pending.body["id"]);
    for _ in 0..2 {
        shop.client
            .post(&resend_path(&pending_id), Some(&token), json!({}))
            .await
            .expect(202);
    }
    // Another account subscribing the same number spends the same budget.
    let (other, _, _) = shop.buyer("pumper", "en").await;
    subscribe(
        &shop.client,
        &other,
        json!({"channel": "sms", "target": phone}),
    )
    .await
    .expect(201);
    let spent = shop
        .client
        .post(&resend_path(&pending_id), Some(&token), json!({}))
        .await;
    spent.expect_problem(429);
    let retry_after: u64 = spent
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=3600).contains(&retry_after), "{:?}", spent.headers);
    let refused = subscribe(
        &shop.client,
        &other,
        json!({"channel": "sms", "target": phone, "events": ["ORDER_CREATED"]}),
    )
    .await;
    refused.expect_problem(409);
    let (third, _, _) = shop.buyer("pumper2", "en").await;
    subscribe(
        &shop.client,
        &third,
        json!({"channel": "sms", "target": phone}),
    )
    .await
    .expect_problem(429);
    let listed = shop.client.get(SUBSCRIPTIONS, Some(&third)).await;
    assert_eq!(listed.body["items"], json!([]), "nothing was written");
    tokio::time::sleep(Duration::from_millis(500)).await;
    eventually("every code was sent", || async {
        shop.server.sent.to(phone).len() == 4
    })
    .await;
    shop.server.stop().await;
}

async fn webhooks_are_activated_by_their_signed_test_delivery(backend: Backend) {
    let shop = Shop::start(TestServer::start(backend).await).await;
    let receiver = Receiver::start().await;
    let product = shop.product("PROOF-1", 10).await;
    let (token, _, address) = shop.buyer("hooker", "en").await;
    let hook = subscribe(
        &shop.client,
        &token,
        json!({"channel": "webhook", "target": receiver.url("/hook"), "events": ["ORDER_CREATED"]}),
    )
    .await;
    hook.expect(201);
    assert_eq!(hook.body["status"], json!("pending"));
    let secret = text(&hook.body["signing_secret"]);
    let refusing = subscribe(
        &shop.client,
        &token,
        json!({"channel": "webhook", "target": receiver.url("/refuse"), "events": ["ORDER_CREATED"]}),
    )
    .await;
    refusing.expect(201);
    let refusing_id = text(&refusing.body["id"]);
    shop.server
        .activate_subscription(&shop.client, &token, &hook.body)
        .await;
    let tests = receiver.tests_on("/hook");
    assert_eq!(tests.len(), 1, "one test delivery");
    assert!(
        signature_is_valid(&tests[0], &secret),
        "the test delivery is signed"
    );
    let envelope: Value = serde_json::from_str(&tests[0].body).unwrap_or_default();
    assert_eq!(envelope["type"], json!("SUBSCRIPTION_TEST"));
    assert_eq!(envelope["data"]["subscription_id"], hook.body["id"]);
    // A code does not activate a webhook.
    shop.client
        .post(
            &verify_path(&refusing_id),
            Some(&token),
            json!({"code": "123456"}),
        )
        .await
        .expect_problem(409);

    // The refusing target never answered 2xx: it stays pending and gets no event.
    eventually("the refused test delivery failed", || async {
        let log = log(&shop.client, &token).await;
        find(&log, "SUBSCRIPTION_TEST", "webhook")
            .iter()
            .any(|n| n["status"] == json!("failed") || n["status"] == json!("retrying"))
    })
    .await;
    shop.buy(&token, &address, &product).await;
    eventually("the active webhook got the order", || async {
        !receiver.on("/hook").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        receiver.on("/refuse").is_empty(),
        "a pending webhook gets no event"
    );
    let listed = shop.client.get(SUBSCRIPTIONS, Some(&token)).await;
    let status_of = |id: &Value| {
        listed.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["id"] == *id)
            .map(|s| s["status"].clone())
    };
    assert_eq!(status_of(&hook.body["id"]), Some(json!("active")));
    assert_eq!(status_of(&refusing.body["id"]), Some(json!("pending")));
    // It may be tried again.
    let before = receiver.tests_on("/refuse").len();
    shop.client
        .post(&resend_path(&refusing_id), Some(&token), json!({}))
        .await
        .expect(202);
    eventually("a new test delivery was tried", || async {
        receiver.tests_on("/refuse").len() > before
    })
    .await;
    shop.server.stop().await;
}
