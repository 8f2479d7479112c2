//! Proof of ownership (`shared/src/notifications/verification.rs`): the code sent to a target
//! and checked back, its expiry and wrong-guess lock, the hourly budget of proof messages per
//! target, the account e-mail's code, and webhooks proved by their test delivery.

mod support;

use bazaar_shared::error::Error;
use bazaar_shared::ids::SubscriptionId;
use bazaar_shared::notifications::delivery::Outcome;
use bazaar_shared::notifications::requests::{SubscribeRequest, VerifyRequest};
use bazaar_shared::notifications::verification::{MAX_WRONG_TRIES, SUBSCRIPTION_TEST};
use bazaar_shared::notifications::{Subscription, SubscriptionStatus};
use bazaar_shared::ports::Channel;
use bazaar_shared::ports::notifier::SendError;
use bazaar_shared::users::User;
use bazaar_shared::users::requests::RegisterRequest;
use chrono::TimeDelta;
use support::{CORRELATION, Shop, must};

const TARGET: &str = "alerts@example.com";

fn code(code: &str) -> VerifyRequest {
    VerifyRequest {
        code: Some(code.to_owned()),
    }
}

/// A well-formed code that is not `code`.
fn other_than(code: &str) -> String {
    if code == "000000" {
        "000001".to_owned()
    } else {
        "000000".to_owned()
    }
}

/// The user's new e-mail subscription to [`TARGET`], its code message sent; its id.
async fn pending_email_subscription(shop: &Shop, user: &User) -> SubscriptionId {
    let request = SubscribeRequest {
        channel: Some(Channel::Email),
        target: Some(TARGET.to_owned()),
        events: None,
    };
    let subscribed = must(
        shop.notifications
            .subscribe(user, request, CORRELATION)
            .await,
    );
    assert_eq!(shop.deliver_queued().await, [Outcome::Sent]);
    subscribed.subscription.id
}

async fn status(shop: &Shop, user: &User, subscription_id: &SubscriptionId) -> SubscriptionStatus {
    must(shop.notifications.user_subscriptions(&user.id).await)
        .iter()
        .find(|subscription| &subscription.id == subscription_id)
        .map(Subscription::status)
        .unwrap_or_else(|| panic!("no subscription {subscription_id}"))
}

#[tokio::test]
async fn the_code_sent_to_a_target_activates_its_subscription() {
    let shop = Shop::new();
    let user = shop.customer().await;
    let id = pending_email_subscription(&shop, &user).await;
    let sent = shop.channels.last_code_to(TARGET);

    let wrong = shop
        .notifications
        .verify_subscription(&user, &id, code(&other_than(&sent)))
        .await;
    let Err(Error::Validation(fields)) = wrong else {
        panic!("a wrong code was accepted: {wrong:?}");
    };
    assert_eq!(fields[0].message, "is wrong; 4 tries left");
    assert_eq!(status(&shop, &user, &id).await, SubscriptionStatus::Pending);

    let verified = must(
        shop.notifications
            .verify_subscription(&user, &id, code(&sent))
            .await,
    );

    assert_eq!(verified.status(), SubscriptionStatus::Active);
    assert_eq!(status(&shop, &user, &id).await, SubscriptionStatus::Active);
    // The code is spent; an active subscription needs none.
    let again = shop
        .notifications
        .verify_subscription(&user, &id, code("123456"))
        .await;
    assert!(again.is_ok_and(|subscription| subscription.status() == SubscriptionStatus::Active));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_five_wrong_guesses_are_compared_even_at_once() {
    let shop = std::sync::Arc::new(Shop::new());
    let user = shop.customer().await;
    let id = pending_email_subscription(&shop, &user).await;
    let sent = shop.channels.last_code_to(TARGET);

    let mut guessing = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (shop, user, id, guess) = (shop.clone(), user.clone(), id.clone(), other_than(&sent));
        guessing.spawn(async move {
            shop.notifications
                .verify_subscription(&user, &id, code(&guess))
                .await
        });
    }
    let (mut compared, mut locked) = (0, 0);
    while let Some(joined) = guessing.join_next().await {
        match must(joined) {
            Err(Error::Validation(_)) => compared += 1,
            Err(Error::Conflict { .. }) => locked += 1,
            other => panic!("unexpected answer to a wrong code: {other:?}"),
        }
    }
    assert_eq!((compared, locked), (MAX_WRONG_TRIES, 3));

    // Locked: even the right code is refused until a new one is sent.
    let right = shop
        .notifications
        .verify_subscription(&user, &id, code(&sent))
        .await;
    assert!(matches!(right, Err(Error::Conflict { .. })), "{right:?}");
    assert_eq!(status(&shop, &user, &id).await, SubscriptionStatus::Pending);
    must(
        shop.notifications
            .resend_proof(&user, &id, CORRELATION)
            .await,
    );
    assert_eq!(shop.deliver_queued().await, [Outcome::Sent]);
    let fresh = shop.channels.last_code_to(TARGET);
    must(
        shop.notifications
            .verify_subscription(&user, &id, code(&fresh))
            .await,
    );
    assert_eq!(status(&shop, &user, &id).await, SubscriptionStatus::Active);
}

#[tokio::test]
async fn a_code_expires_after_fifteen_minutes() {
    let shop = Shop::new();
    let user = shop.customer().await;
    let id = pending_email_subscription(&shop, &user).await;
    let sent = shop.channels.last_code_to(TARGET);

    shop.clock.advance(TimeDelta::minutes(15));
    let expired = shop
        .notifications
        .verify_subscription(&user, &id, code(&sent))
        .await;

    assert!(
        matches!(expired, Err(Error::Conflict { .. })),
        "{expired:?}"
    );
    assert_eq!(status(&shop, &user, &id).await, SubscriptionStatus::Pending);
}

#[tokio::test]
async fn a_target_gets_at_most_four_proof_messages_an_hour_whoever_asks() {
    let shop = Shop::new();
    let user = shop.customer().await;
    let id = pending_email_subscription(&shop, &user).await;
    for _ in 0..3 {
        must(
            shop.notifications
                .resend_proof(&user, &id, CORRELATION)
                .await,
        );
    }

    let fifth = shop
        .notifications
        .resend_proof(&user, &id, CORRELATION)
        .await;
    assert!(matches!(fifth, Err(Error::Throttled { .. })), "{fifth:?}");
    // Another account cannot send that address a code either.
    let someone_else = shop.customer().await;
    let request = SubscribeRequest {
        channel: Some(Channel::Email),
        target: Some(TARGET.to_owned()),
        events: None,
    };
    let theirs = shop
        .notifications
        .subscribe(&someone_else, request, CORRELATION)
        .await;
    assert!(matches!(theirs, Err(Error::Throttled { .. })), "{theirs:?}");
    assert!(
        must(
            shop.notifications
                .user_subscriptions(&someone_else.id)
                .await
        )
        .is_empty()
    );
    assert_eq!(shop.delivery_commands().await.len(), 3);

    shop.clock.advance(TimeDelta::hours(1));
    must(
        shop.notifications
            .resend_proof(&user, &id, CORRELATION)
            .await,
    );
}

#[tokio::test]
async fn the_account_email_code_verifies_the_account() {
    let shop = Shop::new();
    let request = RegisterRequest {
        email: Some("sara@example.com".to_owned()),
        username: Some("sara".to_owned()),
        password: Some("amber-lantern-river-7".to_owned()),
        password_confirm: Some("amber-lantern-river-7".to_owned()),
        ..RegisterRequest::default()
    };
    let registered = must(shop.users.register(request, CORRELATION).await);
    let user = shop.reload_user(&registered.user.id).await;
    assert_eq!(shop.deliver_queued().await, [Outcome::Sent]);
    let sent = shop.channels.last_code_to("sara@example.com");

    let wrong = shop
        .notifications
        .verify_account_email(&user, code(&other_than(&sent)))
        .await;
    assert!(matches!(wrong, Err(Error::Validation(_))), "{wrong:?}");
    must(
        shop.notifications
            .verify_account_email(&user, code(&sent))
            .await,
    );

    let verified = shop.reload_user(&user.id).await;
    assert!(verified.email_verified);
    let resend = shop
        .notifications
        .resend_account_email_code(&verified, CORRELATION)
        .await;
    assert!(matches!(resend, Err(Error::Conflict { .. })), "{resend:?}");
}

#[tokio::test]
async fn a_webhook_is_proved_by_a_delivered_test_message_not_by_a_code() {
    let shop = Shop::new();
    let user = shop.customer().await;
    let webhook = |url: &str| SubscribeRequest {
        channel: Some(Channel::Webhook),
        target: Some(url.to_owned()),
        events: None,
    };
    let answered = must(
        shop.notifications
            .subscribe(
                &user,
                webhook("http://127.0.0.1:9/hooks/secret-path"),
                CORRELATION,
            )
            .await,
    );
    let by_code = shop
        .notifications
        .verify_subscription(&user, &answered.subscription.id, code("123456"))
        .await;
    assert!(
        matches!(by_code, Err(Error::Conflict { .. })),
        "{by_code:?}"
    );

    assert_eq!(shop.deliver_queued().await, [Outcome::Sent]);

    let tries = shop.channels.tries();
    assert_eq!(tries.len(), 1);
    assert_eq!(tries[0].event_type, SUBSCRIPTION_TEST);
    assert_eq!(tries[0].target, "http://127.0.0.1:9/hooks/secret-path");
    assert_eq!(tries[0].signing_secret, answered.signing_secret);
    let id = &answered.subscription.id;
    assert_eq!(status(&shop, &user, id).await, SubscriptionStatus::Active);
    // The log keeps only the URL's origin: the rest is a secret.
    let logged = shop.deliveries(&user.id).await;
    assert_eq!(logged[0].target.as_deref(), Some("http://127.0.0.1:9"));

    // A refused test message proves nothing.
    let refused = must(
        shop.notifications
            .subscribe(&user, webhook("http://127.0.0.1:9/other"), CORRELATION)
            .await,
    );
    shop.channels
        .fail_next(SendError::Permanent("HTTP 410".to_owned()));
    let outcomes = shop.deliver_queued().await;
    assert!(matches!(outcomes[..], [Outcome::Failed(_)]), "{outcomes:?}");
    let id = &refused.subscription.id;
    assert_eq!(status(&shop, &user, id).await, SubscriptionStatus::Pending);
}
