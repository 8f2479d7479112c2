//! Black-box tests of the send policy through the local server over HTTP, on both backends:
//! daily send budgets per account and per target, the SMS country allow-list, nothing at all
//! for deactivated accounts, and Slack and webhook URLs (bearer secrets) kept out of logs and
//! the delivery log, whose customers see only generic failure reasons.

use bazaar_shared::entity::Stored;
use bazaar_shared::events::EventType;
use bazaar_shared::ids::{EventId, NotificationId, SubscriptionId, UserId};
use bazaar_shared::keys;
use bazaar_shared::notifications::delivery::Outcome;
use bazaar_shared::notifications::model::{
    DeliverCommand, Delivery, DeliveryStatus, Medium, Subscription, SubscriptionStatus,
};
use bazaar_shared::notifications::policy::SendBudget;
use bazaar_shared::ports::notifier::Channel;
use bazaar_shared::ports::{Cond, Index, Query};
use bazaar_shared::users::model::Language;
use bazaar_tests::http::Client;
use bazaar_tests::receiver::Receiver;
use bazaar_tests::{Backend, TestServer};
use serde_json::{Value, json};
use tracing_subscriber::filter::{LevelFilter, Targets};

bazaar_tests::on_both_backends!(
    daily_budgets_cap_messages_per_target_and_per_account,
    sms_go_only_to_allowed_countries,
    deactivated_accounts_receive_nothing_on_any_channel,
    secret_urls_stay_out_of_logs_and_the_delivery_log,
);

const SUBSCRIPTIONS: &str = "/api/v1/notifications/subscriptions";
const LOG: &str = "/api/v1/notifications";
const NOTIFY: &str = "/api/v1/notifications/notify";

/// Everything this test binary logs, at `info` as in production.
fn capture_logs() {
    bazaar_tests::logs::capture(Targets::new().with_default(LevelFilter::INFO));
}

/// Polls `check` every 100 ms until it gives a value; fails the test after 30 s.
async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..300 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

/// A user's deliveries of an admin's message on one channel, once `count` are settled.
async fn settled_messages(client: &Client, token: &str, channel: &str, count: usize) -> Vec<Value> {
    settled_on(client, token, "ADMIN_MESSAGE", channel, count).await
}

/// A user's deliveries of `event` on one channel, once `count` are settled.
async fn settled_on(
    client: &Client,
    token: &str,
    event: &str,
    channel: &str,
    count: usize,
) -> Vec<Value> {
    until("the deliveries are settled", || async {
        let found: Vec<Value> = log(client, token)
            .await
            .into_iter()
            .filter(|n| n["event"] == json!(event) && n["channel"] == json!(channel))
            .collect();
        let settled = found.iter().all(|n| {
            ["sent", "suppressed", "failed"]
                .iter()
                .any(|status| n["status"] == json!(status))
        });
        (found.len() == count && settled).then_some(found)
    })
    .await
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// A user's delivery log as they see it.
async fn log(client: &Client, token: &str) -> Vec<Value> {
    let response = client.get(&format!("{LOG}?limit=100"), Some(token)).await;
    response.expect(200);
    response.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn subscribe(client: &Client, token: &str, channel: &str, target: &str) -> Value {
    let response = client
        .post(
            SUBSCRIPTIONS,
            Some(token),
            json!({"channel": channel, "target": target, "events": ["ORDER_CREATED"]}),
        )
        .await;
    response.expect(201);
    response.body.clone()
}

/// Whether a message proves ownership (a code, or a Slack/webhook test delivery) rather
/// than telling the user something.
fn is_proof(event_type: &str) -> bool {
    event_type.ends_with("_VERIFICATION") || event_type == "SUBSCRIPTION_TEST"
}

/// How many code messages reached `target` so far.
fn codes_to(server: &TestServer, target: &str) -> usize {
    server
        .sent
        .to(target)
        .iter()
        .filter(|message| message.event_type.ends_with("_VERIFICATION"))
        .count()
}

/// How many messages other than proofs of ownership reached `target`.
fn messages_to(server: &TestServer, target: &str) -> usize {
    server
        .sent
        .to(target)
        .iter()
        .filter(|message| !is_proof(&message.event_type))
        .count()
}

/// Registers an account and proves its e-mail (an unproved account may not subscribe).
async fn verified(server: &TestServer, client: &Client, name: &str) -> (String, String) {
    let (token, user_id) = client.register(name).await;
    server
        .verify_email(client, &token, &format!("{name}@example.com"))
        .await;
    (token, user_id)
}

/// Subscribes and proves the target. Several accounts may share a number, so this waits
/// for the code that this subscription sent before reading the newest one.
async fn subscribe_proved(
    server: &TestServer,
    client: &Client,
    token: &str,
    channel: &str,
    target: &str,
) -> Value {
    let before = codes_to(server, target);
    let subscribed = subscribe(client, token, channel, target).await;
    if channel == "email" || channel == "sms" {
        bazaar_tests::http::eventually("the subscription's code was sent", || async {
            codes_to(server, target) > before
        })
        .await;
    }
    server
        .activate_subscription(client, token, &subscribed)
        .await;
    subscribed
}

async fn message(client: &Client, admin: &str, to: Value) {
    let mut body = json!({"subject": "Sale", "message": "Everything is 10% off."});
    if let (Value::Object(body), Value::Object(to)) = (&mut body, to) {
        body.extend(to);
    }
    client.post(NOTIFY, Some(admin), body).await.expect(202);
}

/// An admin message's paid deliveries (e-mail, SMS) in a log, once every one is settled.
fn settled_paid(log: &[Value]) -> Option<Vec<Value>> {
    let paid: Vec<Value> = log
        .iter()
        .filter(|n| n["event"] == json!("ADMIN_MESSAGE"))
        .filter(|n| n["channel"] == json!("email") || n["channel"] == json!("sms"))
        .cloned()
        .collect();
    paid.iter()
        .all(|n| n["status"] == json!("sent") || n["status"] == json!("suppressed"))
        .then_some(paid)
}

fn with_status<'a>(deliveries: &'a [Value], status: &str) -> Vec<&'a Value> {
    deliveries
        .iter()
        .filter(|n| n["status"] == json!(status))
        .collect()
}

/// The SMS in the local outbox (embedded only) addressed to `number`.
fn outbox_sms_to(server: &TestServer, number: &str) -> usize {
    let Some(dir) = server.data_dir() else {
        return 0;
    };
    std::fs::read_dir(dir.join("outbox/sms"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| {
                    std::fs::read_to_string(entry.path())
                        .is_ok_and(|content| content.starts_with(&format!("To: {number}\n")))
                })
                .count()
        })
        .unwrap_or_default()
}

/// Every stored item of a user's delivery log, as JSON text.
async fn stored_log(server: &TestServer, user_id: &str) -> Vec<Value> {
    let query = Query::partition(
        Index::Primary,
        keys::user_partition(&UserId::trusted(user_id)),
    )
    .prefix(keys::NOTIFICATION_PREFIX)
    .limit(100);
    server
        .app
        .ports()
        .store
        .query(&query)
        .await
        .expect("query the delivery log")
        .items
        .into_iter()
        .map(Value::Object)
        .collect()
}

// ---------------------------------------------------------------------------------------------

async fn daily_budgets_cap_messages_per_target_and_per_account(backend: Backend) {
    // Proofs of ownership are paid messages too, and count against the same budgets.
    let server = TestServer::start_notifying(backend, 5, |notify| {
        notify.budget = SendBudget {
            per_account: 5,
            per_target: 4,
            per_url: 100,
        };
    })
    .await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;

    // Three accounts subscribe one number (three codes reach it): a broadcast would text it
    // three more times, but the number's budget has room for one.
    let victim = "+14155550142";
    let mut tokens = Vec::new();
    for name in ["pumpa", "pumpb", "pumpc"] {
        let (token, _) = verified(&server, &client, name).await;
        subscribe_proved(&server, &client, &token, "sms", victim).await;
        tokens.push(token);
    }
    assert_eq!(codes_to(&server, victim), 3);
    message(&client, &admin, json!({"event": "ORDER_CREATED"})).await;
    let mut texts = Vec::new();
    for token in &tokens {
        texts.extend(settled_messages(&client, token, "sms", 1).await);
    }
    assert_eq!(with_status(&texts, "sent").len(), 1, "{texts:?}");
    let suppressed = with_status(&texts, "suppressed");
    assert_eq!(suppressed.len(), 2, "{texts:?}");
    for delivery in &suppressed {
        assert_eq!(delivery["attempts"], json!(0), "never tried");
        assert!(
            text(&delivery["last_error"]).contains("target's daily message limit"),
            "{delivery}"
        );
    }
    assert_eq!(messages_to(&server, victim), 1);
    if backend == Backend::Embedded {
        assert_eq!(
            outbox_sms_to(&server, victim),
            4,
            "three codes and one message"
        );
    }

    // One account: its code e-mail and three numbers' codes (four paid messages), then a
    // message on four channels, of which the account's budget has room for one.
    let (token, user_id) = verified(&server, &client, "pumpd").await;
    for n in 0..3 {
        subscribe_proved(&server, &client, &token, "sms", &format!("+1415555016{n}")).await;
    }
    message(&client, &admin, json!({"user_id": user_id})).await;
    let paid = until("the account's messages are settled", || async {
        settled_paid(&log(&client, &token).await).filter(|paid| paid.len() == 4)
    })
    .await;
    assert_eq!(with_status(&paid, "sent").len(), 1, "{paid:?}");
    let suppressed = with_status(&paid, "suppressed");
    assert_eq!(suppressed.len(), 3, "{paid:?}");
    for delivery in suppressed {
        assert!(
            text(&delivery["last_error"]).contains("account's daily message limit"),
            "{delivery}"
        );
    }
    server.stop().await;
}

async fn sms_go_only_to_allowed_countries(backend: Backend) {
    let server = TestServer::start_notifying(backend, 5, |notify| {
        notify.sms_countries = Some(vec!["+98".to_owned()]);
    })
    .await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let (token, user_id) = verified(&server, &client, "abroad").await;
    let refused = client
        .post(
            SUBSCRIPTIONS,
            Some(&token),
            json!({"channel": "sms", "target": "+14155550100"}),
        )
        .await;
    refused.expect_problem(422);
    assert_eq!(refused.error_fields(), ["target"]);
    assert!(refused.text.contains("+98"), "{}", refused.text);
    subscribe_proved(&server, &client, &token, "sms", "+989121234567").await;
    // A proved subscription from before the allow-list was set: refused when sending.
    let legacy = Subscription {
        id: SubscriptionId::trusted("legacy-sms"),
        user_id: UserId::trusted(user_id.as_str()),
        status: Some(SubscriptionStatus::Active),
        channel: Channel::Sms,
        target: "+14155550100".to_owned(),
        events: vec![EventType::OrderCreated],
        signing_secret: None,
        created_at: chrono::Utc::now(),
    };
    server
        .app
        .ports()
        .store
        .put(
            legacy
                .to_item()
                .expect("store the legacy subscription as an item"),
            Cond::NotExists,
        )
        .await
        .expect("put the legacy subscription");
    message(&client, &admin, json!({"user_id": user_id})).await;
    let texts = settled_messages(&client, &token, "sms", 2).await;
    let status_of = |number: &str| {
        texts
            .iter()
            .find(|n| n["target"] == json!(number))
            .map(|n| (text(&n["status"]), text(&n["last_error"])))
    };
    assert_eq!(
        status_of("+989121234567"),
        Some(("sent".to_owned(), String::new()))
    );
    assert_eq!(
        status_of("+14155550100"),
        Some((
            "suppressed".to_owned(),
            "not sent: SMS to this country are not allowed".to_owned()
        ))
    );
    assert_eq!(messages_to(&server, "+989121234567"), 1);
    assert_eq!(server.sent.to("+14155550100").len(), 0);
    if backend == Backend::Embedded {
        assert_eq!(
            outbox_sms_to(&server, "+989121234567"),
            2,
            "its code and the message"
        );
        assert_eq!(outbox_sms_to(&server, "+14155550100"), 0);
    }
    server.stop().await;
}

async fn deactivated_accounts_receive_nothing_on_any_channel(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let receiver = Receiver::start().await;
    let (token, user_id) = verified(&server, &client, "quiet").await;
    let hook = subscribe_proved(&server, &client, &token, "webhook", &receiver.url("/quiet")).await;
    subscribe_proved(&server, &client, &token, "sms", "+14155550177").await;
    client
        .patch(
            &format!("/api/v1/users/{user_id}"),
            Some(&admin),
            json!({"is_active": false}),
        )
        .await
        .expect(200);

    // The fan-out: the inbox only.
    message(&client, &admin, json!({"user_id": user_id})).await;
    let stored = until("the message reached the inbox", || async {
        let stored = stored_log(&server, &user_id).await;
        stored
            .iter()
            .any(|n| n["event"] == json!("ADMIN_MESSAGE") && n["channel"] == json!("inbox"))
            .then_some(stored)
    })
    .await;
    let sent: Vec<&Value> = stored
        .iter()
        .filter(|n| n["event"] == json!("ADMIN_MESSAGE") && n["channel"] != json!("inbox"))
        .collect();
    assert!(
        sent.is_empty(),
        "deliveries for a deactivated account: {sent:?}"
    );

    // The delivery step: a delivery fanned out before the account was deactivated.
    let now = chrono::Utc::now();
    let delivery = Delivery {
        id: NotificationId::trusted("before-deactivation"),
        user_id: UserId::trusted(user_id.as_str()),
        event: "ADMIN_MESSAGE".to_owned(),
        event_id: EventId::trusted("before-deactivation"),
        channel: Medium::Webhook,
        target: Some(receiver.url("")),
        subscription_id: Some(SubscriptionId::trusted(text(&hook["id"]))),
        language: Language::En,
        status: DeliveryStatus::Pending,
        attempts: 0,
        last_error: None,
        created_at: now,
        updated_at: now,
        data: json!({"subject": "x", "message": "y"}),
        payload: "{}".to_owned(),
        lease_until: 0,
    };
    server
        .app
        .ports()
        .store
        .put(
            delivery.to_item().expect("store the delivery as an item"),
            Cond::NotExists,
        )
        .await
        .expect("put the pending delivery");
    let command = DeliverCommand {
        user_id: UserId::trusted(user_id.as_str()),
        notification_id: delivery.id.clone(),
        correlation_id: "test".to_owned(),
    };
    let outcome = server
        .app
        .notifications()
        .deliver(&command, 1)
        .await
        .expect("deliver the notification");
    assert_eq!(
        outcome,
        Outcome::Suppressed("not sent: the account is deactivated".to_owned())
    );
    assert!(receiver.on("/quiet").is_empty(), "the webhook got nothing");
    assert_eq!(messages_to(&server, "+14155550177"), 0);
    assert_eq!(messages_to(&server, "quiet@example.com"), 0);
    server.stop().await;
}

async fn secret_urls_stay_out_of_logs_and_the_delivery_log(backend: Backend) {
    capture_logs();
    // One receive: a transient failure is final at once.
    let server = TestServer::start_with(backend, 1).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let receiver = Receiver::start().await;
    // A port nothing listens on: the HTTP client's error names the URL it failed on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a closed port")
        .port();
    let webhook = format!("http://127.0.0.1:{closed}/hooks/SECRET-webhook-path?key=SECRET-query");
    let slack = receiver.url("/fail/services/T0/B0/SECRET-slack-path");
    let (token, user_id) = verified(&server, &client, "leaky").await;
    // The webhook's signed test delivery fails (nothing listens): it stays pending. The
    // Slack URL answers the test and fails every message after it.
    subscribe(&client, &token, "webhook", &webhook).await;
    let slack_subscription = subscribe(&client, &token, "slack", &slack).await;
    server
        .activate_subscription(&client, &token, &slack_subscription)
        .await;
    message(&client, &admin, json!({"user_id": user_id})).await;
    let mut failed = settled_on(&client, &token, "SUBSCRIPTION_TEST", "webhook", 1).await;
    failed.extend(settled_messages(&client, &token, "slack", 1).await);
    assert_eq!(with_status(&failed, "failed").len(), 2, "{failed:?}");
    assert_eq!(
        receiver.on("/fail/services/T0/B0/SECRET-slack-path").len(),
        3,
        "the Slack URL was really posted to"
    );
    let seen = client.get(&format!("{LOG}?limit=100"), Some(&token)).await;
    assert!(!seen.text.contains("SECRET"), "{}", seen.text);
    for delivery in &failed {
        assert_eq!(
            delivery["last_error"],
            json!("the message could not be delivered"),
            "customers see a generic reason: {delivery}"
        );
    }
    let targets: Vec<String> = failed.iter().map(|n| text(&n["target"])).collect();
    assert!(
        targets.contains(&format!("http://127.0.0.1:{closed}")),
        "{targets:?}"
    );
    assert!(
        targets.contains(&format!("http://{}", receiver.address)),
        "{targets:?}"
    );
    // What is stored keeps the precise reason, without the secret.
    let stored = stored_log(&server, &user_id).await;
    let stored_text = serde_json::to_string(&stored).unwrap_or_default();
    assert!(!stored_text.contains("SECRET"), "{stored_text}");
    assert!(
        stored_text.contains("500"),
        "the precise reason is kept: {stored_text}"
    );
    let logs = bazaar_tests::logs::captured();
    assert!(
        logs.contains("transient failure; retrying"),
        "the failures were logged"
    );
    assert!(!logs.contains("SECRET"), "a secret reached the logs");
    server.stop().await;
}
