//! Subscribing and unsubscribing (`shared/src/notifications/subscriptions.rs`): who may
//! subscribe to what, where to, how many, and a duplicate or one too many leaving nothing
//! behind.

mod support;

use bazaar_shared::error::Error;
use bazaar_shared::events::EventType;
use bazaar_shared::keys;
use bazaar_shared::notifications::requests::SubscribeRequest;
use bazaar_shared::notifications::subscriptions::{CUSTOMER_EVENTS, MAX_SUBSCRIPTIONS, digest};
use bazaar_shared::notifications::verification::SUBSCRIPTION_VERIFICATION;
use bazaar_shared::notifications::{NotificationSettings, SubscriptionStatus};
use bazaar_shared::ports::Channel;
use support::{CORRELATION, Setup, Shop, must};

fn subscription(channel: Channel, target: &str) -> SubscribeRequest {
    SubscribeRequest {
        channel: Some(channel),
        target: Some(target.to_owned()),
        events: None,
    }
}

/// An SNS push endpoint of the shop's app (push needs no proof of ownership).
fn push_endpoint(device: usize) -> String {
    format!("arn:aws:sns:eu-west-1:123456789012:endpoint/GCM/bazaar/device-{device}")
}

fn field_names(error: &Error) -> Vec<&str> {
    match error {
        Error::Validation(fields) | Error::Conflict { fields, .. } => {
            fields.iter().map(|field| field.field.as_str()).collect()
        }
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn an_account_must_prove_its_own_address_before_subscribing() {
    let shop = Shop::new();
    let mut user = shop.customer().await;
    user.email_verified = false;

    let refused = shop
        .notifications
        .subscribe(
            &user,
            subscription(Channel::Email, "alerts@example.com"),
            CORRELATION,
        )
        .await;

    assert!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");
    assert!(must(shop.notifications.user_subscriptions(&user.id).await).is_empty());
    assert!(shop.deliveries(&user.id).await.is_empty());
}

#[tokio::test]
async fn an_email_subscription_starts_pending_and_gets_exactly_one_code_message() {
    let shop = Shop::new();
    let user = shop.customer().await;

    let subscribed = must(
        shop.notifications
            .subscribe(
                &user,
                subscription(Channel::Email, " Alerts@Example.COM "),
                CORRELATION,
            )
            .await,
    );

    let view = &subscribed.subscription;
    assert_eq!(view.target, "alerts@example.com");
    assert_eq!(view.status, SubscriptionStatus::Pending);
    assert_eq!(view.events, CUSTOMER_EVENTS);
    assert_eq!(subscribed.signing_secret, None);
    let deliveries = shop.deliveries(&user.id).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].event, SUBSCRIPTION_VERIFICATION);
    assert_eq!(deliveries[0].subscription_id.as_ref(), Some(&view.id));
    assert_eq!(shop.delivery_commands().await.len(), 1);
}

#[tokio::test]
async fn the_same_target_twice_is_refused_and_leaves_nothing_behind() {
    let shop = Shop::new();
    let user = shop.customer().await;
    must(
        shop.notifications
            .subscribe(
                &user,
                subscription(Channel::Email, "alerts@example.com"),
                CORRELATION,
            )
            .await,
    );

    let again = shop
        .notifications
        .subscribe(
            &user,
            subscription(Channel::Email, "ALERTS@example.com"),
            CORRELATION,
        )
        .await;

    let Err(error) = again else {
        panic!("the same target was subscribed twice");
    };
    assert!(matches!(error, Error::Conflict { .. }), "{error:?}");
    assert_eq!(field_names(&error), ["target"]);
    assert_eq!(
        must(shop.notifications.user_subscriptions(&user.id).await).len(),
        1
    );
    assert_eq!(
        shop.number(&keys::subscription_count(&user.id), "count")
            .await,
        1
    );
    assert_eq!(shop.deliveries(&user.id).await.len(), 1);
    // The refused subscription's code did not count against the target's budget.
    let hour = shop.clock.now().timestamp().div_euclid(3600);
    let sends = keys::verification_sends("email", &digest("alerts@example.com"), hour);
    assert_eq!(shop.number(&sends, "count").await, 1);
}

#[tokio::test]
async fn push_needs_no_proof_and_a_user_holds_at_most_twenty_subscriptions() {
    let shop = Shop::new();
    let user = shop.customer().await;
    let mut ids = Vec::new();
    for device in 0..MAX_SUBSCRIPTIONS as usize {
        let subscribed = must(
            shop.notifications
                .subscribe(
                    &user,
                    subscription(Channel::Push, &push_endpoint(device)),
                    CORRELATION,
                )
                .await,
        );
        assert_eq!(subscribed.subscription.status, SubscriptionStatus::Active);
        ids.push(subscribed.subscription.id);
    }
    assert!(shop.deliveries(&user.id).await.is_empty());

    let one_too_many = shop
        .notifications
        .subscribe(
            &user,
            subscription(Channel::Push, &push_endpoint(99)),
            CORRELATION,
        )
        .await;
    assert!(
        matches!(one_too_many, Err(Error::Conflict { .. })),
        "{one_too_many:?}"
    );

    must(shop.notifications.unsubscribe(&user, &ids[0]).await);
    let unknown = shop.notifications.unsubscribe(&user, &ids[0]).await;
    assert!(matches!(unknown, Err(Error::NotFound(_))), "{unknown:?}");
    must(
        shop.notifications
            .subscribe(
                &user,
                subscription(Channel::Push, &push_endpoint(99)),
                CORRELATION,
            )
            .await,
    );
    assert_eq!(
        shop.number(&keys::subscription_count(&user.id), "count")
            .await,
        MAX_SUBSCRIPTIONS
    );
    // Listed once each, spread over the shards of the event's subscribers (20 random ids
    // fall into fewer than half of 8 shards about once in five million runs), and none in
    // the unsharded partition.
    let mut listed = 0;
    let mut used = 0;
    let base = keys::subscribers_partition(EventType::OrderCreated.as_str());
    assert!(shop.query(&base, "").await.is_empty());
    for partition in shop.ports.shards.partitions(&base) {
        let entries = shop.query(&partition, "").await.len();
        listed += entries;
        used += usize::from(entries > 0);
    }
    assert_eq!(listed, MAX_SUBSCRIPTIONS as usize);
    assert!(
        used >= usize::from(support::SHARDS) / 2,
        "{used} shards used"
    );
}

#[tokio::test]
async fn only_admins_subscribe_to_the_shops_own_events() {
    let shop = Shop::new();
    let customer = shop.customer().await;
    let admin = shop.admin().await;
    let request = SubscribeRequest {
        events: Some(vec![EventType::OrderCreated, EventType::ProductOutOfStock]),
        ..subscription(Channel::Push, &push_endpoint(1))
    };

    let refused = shop
        .notifications
        .subscribe(&customer, request.clone(), CORRELATION)
        .await;
    let Err(error) = refused else {
        panic!("a customer subscribed to stock events");
    };
    assert_eq!(field_names(&error), ["events[1]"]);

    let subscribed = must(
        shop.notifications
            .subscribe(&admin, request, CORRELATION)
            .await,
    );
    assert_eq!(
        subscribed.subscription.events,
        [EventType::OrderCreated, EventType::ProductOutOfStock]
    );
}

#[tokio::test]
async fn targets_are_checked_per_channel_and_sms_by_country() {
    let shop = Shop::with(Setup {
        notifications: NotificationSettings {
            allow_private_targets: false,
            sms_countries: Some(vec!["+98".to_owned()]),
            ..NotificationSettings::default()
        },
        ..Setup::default()
    });
    let user = shop.customer().await;
    let refused = [
        subscription(Channel::Sms, "+14155550100"),
        subscription(Channel::Sms, "09121234567"),
        subscription(Channel::Webhook, "http://127.0.0.1:8080/hook"),
        subscription(Channel::Slack, "https://intranet/hook"),
        subscription(Channel::Push, "device-token-123"),
    ];
    for request in refused {
        let target = request.target.clone();
        let Err(error) = shop
            .notifications
            .subscribe(&user, request, CORRELATION)
            .await
        else {
            panic!("{target:?} was accepted");
        };
        assert_eq!(field_names(&error), ["target"], "{target:?}");
    }
    assert!(must(shop.notifications.user_subscriptions(&user.id).await).is_empty());

    must(
        shop.notifications
            .subscribe(
                &user,
                subscription(Channel::Sms, "+989121234567"),
                CORRELATION,
            )
            .await,
    );
    let webhook = must(
        shop.notifications
            .subscribe(
                &user,
                subscription(Channel::Webhook, "https://hooks.example.com/bazaar"),
                CORRELATION,
            )
            .await,
    );
    assert!(
        webhook
            .signing_secret
            .is_some_and(|secret| secret.starts_with("whsec_"))
    );
    assert_eq!(webhook.subscription.status, SubscriptionStatus::Pending);
}
