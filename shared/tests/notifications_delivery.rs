//! Fan-out and delivery (`shared/src/notifications/fanout.rs`, `delivery.rs`, `policy.rs`): an
//! event becomes one delivery per recipient and medium, once however often it arrives; a
//! delivery is sent once however often its command arrives; and the send policy suppresses
//! what must not go out.

mod support;

use bazaar_shared::error::Error;
use bazaar_shared::events::EventType;
use bazaar_shared::keys;
use bazaar_shared::notifications::delivery::Outcome;
use bazaar_shared::notifications::fanout;
use bazaar_shared::notifications::model::{DeliveryStatus, Medium};
use bazaar_shared::notifications::policy::{Refusal, SendBudget};
use bazaar_shared::notifications::requests::{NotifyRequest, SubscribeRequest, VerifyRequest};
use bazaar_shared::notifications::{CONSUMER, NotificationSettings, Notifications};
use bazaar_shared::outbox::NOTIFICATIONS_QUEUE;
use bazaar_shared::ports::Channel;
use bazaar_shared::ports::notifier::SendError;
use bazaar_shared::users::User;
use bazaar_shared::users::requests::AdminUpdateRequest;
use chrono::TimeDelta;
use support::{CORRELATION, Setup, Shop, must};

fn push_to(device: &str, events: Option<Vec<EventType>>) -> SubscribeRequest {
    SubscribeRequest {
        channel: Some(Channel::Push),
        target: Some(format!(
            "arn:aws:sns:eu-west-1:123456789012:endpoint/GCM/bazaar/{device}"
        )),
        events,
    }
}

/// The body of the ORDER_CREATED event of a new order placed by `user`.
async fn order_created(shop: &Shop, user: &User) -> String {
    let product = shop.product(500, 10).await;
    let address = shop.address(user).await;
    must(shop.place(user, &address, &[(&product.id, 1)]).await);
    let bodies = shop.drain(NOTIFICATIONS_QUEUE).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    bodies.into_iter().next().unwrap_or_default()
}

/// An admin's message to one user, fanned out: its deliveries wait on the deliveries queue.
async fn message_to(shop: &Shop, notifications: &Notifications, admin: &User, user: &User) {
    let request = NotifyRequest {
        user_id: Some(user.id.to_string()),
        event: None,
        subject: Some("Opening hours".to_owned()),
        message: Some("We are closed on Friday.".to_owned()),
    };
    must(notifications.notify(admin, request, CORRELATION).await);
    for body in shop.drain(NOTIFICATIONS_QUEUE).await {
        must(notifications.fan_out(&support::incoming(&body)).await);
    }
}

#[tokio::test]
async fn an_event_reaches_the_inbox_the_account_email_and_active_subscriptions_only() {
    let shop = Shop::new();
    let user = shop.customer().await;
    must(
        shop.notifications
            .subscribe(&user, push_to("phone", None), CORRELATION)
            .await,
    );
    let pending = SubscribeRequest {
        channel: Some(Channel::Email),
        target: Some("alerts@example.com".to_owned()),
        events: None,
    };
    must(
        shop.notifications
            .subscribe(&user, pending, CORRELATION)
            .await,
    );
    shop.delivery_commands().await;
    let body = order_created(&shop, &user).await;

    let outcome = must(shop.notifications.fan_out(&support::incoming(&body)).await);

    assert_eq!(outcome, fanout::Outcome::FannedOut(3));
    let mut reached: Vec<(Medium, DeliveryStatus, Option<String>)> = shop
        .deliveries(&user.id)
        .await
        .into_iter()
        .filter(|delivery| delivery.event == EventType::OrderCreated.as_str())
        .map(|delivery| (delivery.channel, delivery.status, delivery.target))
        .collect();
    reached.sort_by_key(|(medium, _, _)| format!("{medium:?}"));
    let endpoint = "arn:aws:sns:eu-west-1:123456789012:endpoint/GCM/bazaar/phone".to_owned();
    assert_eq!(
        reached,
        [
            (
                Medium::Email,
                DeliveryStatus::Pending,
                Some(user.email.clone())
            ),
            (Medium::Inbox, DeliveryStatus::Delivered, None),
            (Medium::Push, DeliveryStatus::Pending, Some(endpoint)),
        ]
    );
    assert_eq!(shop.delivery_commands().await.len(), 2);
}

#[tokio::test]
async fn a_redelivered_event_adds_no_deliveries() {
    let shop = Shop::new();
    let user = shop.customer().await;
    let body = order_created(&shop, &user).await;
    let event: bazaar_shared::events::Event = must(serde_json::from_str(&body));

    let first = must(shop.notifications.fan_out(&support::incoming(&body)).await);
    let second = must(shop.notifications.fan_out(&support::incoming(&body)).await);
    // Even without its consumed-marker, an event's deliveries are written once.
    must(
        shop.ports
            .store
            .delete(
                &keys::consumed(CONSUMER, &event.id),
                bazaar_shared::ports::Cond::Always,
            )
            .await,
    );
    let third = must(shop.notifications.fan_out(&support::incoming(&body)).await);

    assert_eq!(first, fanout::Outcome::FannedOut(2));
    assert_eq!(second, fanout::Outcome::Duplicate);
    assert_eq!(third, fanout::Outcome::FannedOut(0));
    assert_eq!(shop.deliveries(&user.id).await.len(), 2);
    assert_eq!(shop.delivery_commands().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_send_command_sends_once() {
    let shop = Shop::new();
    let user = shop.customer().await;
    let body = order_created(&shop, &user).await;
    must(shop.notifications.fan_out(&support::incoming(&body)).await);
    let commands = shop.delivery_commands().await;
    assert_eq!(commands.len(), 1);
    let command = &commands[0];

    let (first, second) = tokio::join!(
        shop.notifications.deliver(command, 1),
        shop.notifications.deliver(command, 2)
    );
    let late = must(shop.notifications.deliver(command, 3).await);

    let sent = [&first, &second]
        .iter()
        .filter(|outcome| matches!(outcome, Ok(Outcome::Sent)))
        .count();
    assert_eq!(sent, 1, "{first:?} {second:?}");
    for other in [first, second] {
        // The copy that lost waits for the lease, or finds the delivery settled.
        assert!(
            matches!(
                other,
                Ok(Outcome::Sent | Outcome::AlreadySettled) | Err(Error::Unavailable(_))
            ),
            "{other:?}"
        );
    }
    assert_eq!(late, Outcome::AlreadySettled);
    assert_eq!(shop.channels.tries_to(&user.email).len(), 1);
    let email = shop
        .deliveries(&user.id)
        .await
        .into_iter()
        .find(|delivery| delivery.channel == Medium::Email)
        .unwrap_or_else(|| panic!("no e-mail delivery"));
    assert_eq!((email.status, email.attempts), (DeliveryStatus::Sent, 1));
}

#[tokio::test]
async fn a_permanent_refusal_fails_the_delivery_for_good() {
    let shop = Shop::new();
    let user = shop.customer().await;
    let body = order_created(&shop, &user).await;
    must(shop.notifications.fan_out(&support::incoming(&body)).await);
    let commands = shop.delivery_commands().await;
    shop.channels
        .fail_next(SendError::Permanent("mailbox does not exist".to_owned()));

    let outcome = must(shop.notifications.deliver(&commands[0], 1).await);
    let again = must(shop.notifications.deliver(&commands[0], 2).await);

    assert_eq!(
        outcome,
        Outcome::Failed("mailbox does not exist".to_owned())
    );
    assert_eq!(again, Outcome::AlreadySettled);
    assert_eq!(shop.channels.tries().len(), 1);
    let logged = must(
        shop.notifications
            .log(&user, &bazaar_shared::pagination::PageRequest::default())
            .await,
    );
    let email = logged
        .items
        .iter()
        .find(|view| view.channel == Medium::Email)
        .unwrap_or_else(|| panic!("no e-mail in the log"));
    assert_eq!(email.status, DeliveryStatus::Failed);
    // The customer sees a generic reason, not the provider's.
    assert_eq!(
        email.last_error.as_deref(),
        Some("the message could not be delivered")
    );
}

#[tokio::test]
async fn a_transient_failure_is_retried_within_the_same_receive() {
    let shop = Shop::new();
    let user = shop.customer().await;
    let body = order_created(&shop, &user).await;
    must(shop.notifications.fan_out(&support::incoming(&body)).await);
    shop.channels
        .fail_next(SendError::Transient("HTTP 503".to_owned()));

    let outcomes = shop.deliver_queued().await;

    assert_eq!(outcomes, [Outcome::Sent]);
    assert_eq!(shop.channels.tries().len(), 2);
    let email = shop
        .deliveries(&user.id)
        .await
        .into_iter()
        .find(|delivery| delivery.channel == Medium::Email)
        .unwrap_or_else(|| panic!("no e-mail delivery"));
    assert_eq!((email.status, email.attempts), (DeliveryStatus::Sent, 2));
}

#[tokio::test]
async fn a_deactivated_account_is_sent_nothing() {
    let shop = Shop::new();
    let admin = shop.admin().await;
    let user = shop.customer().await;
    let body = order_created(&shop, &user).await;
    must(shop.notifications.fan_out(&support::incoming(&body)).await);
    let deactivate = AdminUpdateRequest {
        is_active: Some(false),
        role: None,
    };
    must(shop.users.admin_update(&admin, &user.id, deactivate).await);

    let outcomes = shop.deliver_queued().await;

    let reason = Refusal::AccountInactive.reason().to_owned();
    assert_eq!(outcomes, [Outcome::Suppressed(reason)]);
    assert!(shop.channels.tries().is_empty());
}

#[tokio::test]
async fn the_daily_account_budget_suppresses_what_is_over_it_until_the_next_day() {
    let shop = Shop::with(Setup {
        notifications: NotificationSettings {
            budget: SendBudget {
                per_account: 2,
                ..SendBudget::default()
            },
            ..NotificationSettings::default()
        },
        ..Setup::default()
    });
    let admin = shop.admin().await;
    let user = shop.customer().await;
    for _ in 0..3 {
        message_to(&shop, &shop.notifications, &admin, &user).await;
    }

    let outcomes = shop.deliver_queued().await;

    let spent = Outcome::Suppressed(Refusal::AccountBudget.reason().to_owned());
    assert_eq!(outcomes, [Outcome::Sent, Outcome::Sent, spent]);
    assert_eq!(shop.channels.tries().len(), 2);
    shop.clock.advance(TimeDelta::days(1));
    message_to(&shop, &shop.notifications, &admin, &user).await;
    assert_eq!(shop.deliver_queued().await, [Outcome::Sent]);
}

#[tokio::test]
async fn sms_to_a_country_no_longer_allowed_is_suppressed_when_sent() {
    let shop = Shop::new();
    let admin = shop.admin().await;
    let user = shop.customer().await;
    let sms = SubscribeRequest {
        channel: Some(Channel::Sms),
        target: Some("+14155550100".to_owned()),
        events: None,
    };
    let subscribed = must(shop.notifications.subscribe(&user, sms, CORRELATION).await);
    assert_eq!(shop.deliver_queued().await, [Outcome::Sent]);
    let code = VerifyRequest {
        code: Some(shop.channels.last_code_to("+14155550100")),
    };
    must(
        shop.notifications
            .verify_subscription(&user, &subscribed.subscription.id, code)
            .await,
    );
    // The operator has since limited SMS to Iranian numbers.
    let limited = Notifications::new(
        shop.ports.clone(),
        NotificationSettings {
            sms_countries: Some(vec!["+98".to_owned()]),
            ..NotificationSettings::default()
        },
    );

    message_to(&shop, &limited, &admin, &user).await;
    let mut outcomes = Vec::new();
    for command in shop.delivery_commands().await {
        outcomes.push(must(limited.deliver(&command, 1).await));
    }

    let refused = Outcome::Suppressed(Refusal::CountryNotAllowed.reason().to_owned());
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(outcomes.contains(&refused), "{outcomes:?}");
    assert!(outcomes.contains(&Outcome::Sent), "{outcomes:?}");
    assert_eq!(shop.channels.tries_to("+14155550100").len(), 1);
}

#[tokio::test]
async fn an_admin_broadcast_reaches_every_active_subscriber_of_its_event() {
    let shop = Shop::new();
    let admin = shop.admin().await;
    let (first, second, elsewhere) = (
        shop.customer().await,
        shop.customer().await,
        shop.customer().await,
    );
    for (user, events) in [
        (&first, None),
        (&second, Some(vec![EventType::OrderCreated])),
        (&elsewhere, Some(vec![EventType::PaymentFailed])),
    ] {
        let device = user.id.to_lowercase();
        must(
            shop.notifications
                .subscribe(user, push_to(&device, events), CORRELATION)
                .await,
        );
    }
    let both = NotifyRequest {
        user_id: Some(first.id.to_string()),
        event: Some(EventType::OrderCreated),
        subject: Some("Sale".to_owned()),
        message: Some("Everything half price.".to_owned()),
    };
    let Err(Error::Validation(fields)) = shop.notifications.notify(&admin, both, CORRELATION).await
    else {
        panic!("a message to a user and an event at once was accepted");
    };
    assert_eq!(fields[0].field, "user_id");

    let broadcast = NotifyRequest {
        user_id: None,
        event: Some(EventType::OrderCreated),
        subject: Some("Sale".to_owned()),
        message: Some("Everything half price.".to_owned()),
    };
    must(
        shop.notifications
            .notify(&admin, broadcast, CORRELATION)
            .await,
    );

    assert_eq!(shop.fan_out_queued().await, 2);
    for (user, expected) in [(&first, 1), (&second, 1), (&elsewhere, 0)] {
        let pushes = shop
            .deliveries(&user.id)
            .await
            .iter()
            .filter(|delivery| delivery.event == "ADMIN_MESSAGE")
            .count();
        assert_eq!(pushes, expected, "{}", user.id);
    }
}
