//! The user service (`shared/src/users/service.rs`): registration and its uniqueness claims,
//! login and its back-off, profile changes, and the admin's role and activation changes
//! (never on themselves).

mod support;

use std::net::IpAddr;

use bazaar_shared::error::Error;
use bazaar_shared::events::EventType;
use bazaar_shared::ids::UserId;
use bazaar_shared::keys;
use bazaar_shared::notifications::verification::EMAIL_VERIFICATION;
use bazaar_shared::outbox::NOTIFICATIONS_QUEUE;
use bazaar_shared::users::model::Language;
use bazaar_shared::users::requests::{
    AdminUpdateRequest, LoginRequest, RegisterRequest, UpdateProfileRequest,
};
use bazaar_shared::users::service::{AdminBootstrap, PromoteExisting, Registered};
use bazaar_shared::users::{Role, User, UserView};
use chrono::TimeDelta;
use support::{CORRELATION, Shop, must};

const PASSWORD: &str = "amber-lantern-river-7";
const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7));
const OTHER_CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 9));

fn registration(email: &str, username: &str) -> RegisterRequest {
    RegisterRequest {
        email: Some(email.to_owned()),
        username: Some(username.to_owned()),
        password: Some(PASSWORD.to_owned()),
        password_confirm: Some(PASSWORD.to_owned()),
        ..RegisterRequest::default()
    }
}

fn login(email: &str, password: &str) -> LoginRequest {
    LoginRequest {
        email: Some(email.to_owned()),
        password: Some(password.to_owned()),
    }
}

/// An account with [`PASSWORD`], signed in: the account and its token.
async fn signed_in(shop: &Shop, email: &str, username: &str) -> (User, String) {
    let user = shop.account_with_password(email, username, PASSWORD).await;
    let logged_in = must(shop.users.login(login(email, PASSWORD), CLIENT).await);
    (user, logged_in.token.access_token)
}

async fn register(shop: &Shop, email: &str, username: &str) -> Registered {
    must(
        shop.users
            .register(registration(email, username), CORRELATION)
            .await,
    )
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
async fn registering_makes_an_unverified_customer_signed_in_and_sent_one_code() {
    let shop = Shop::new();

    let registered = register(&shop, " Sara@Example.COM ", "Sara").await;

    let user = &registered.user;
    assert_eq!(
        (user.email.as_str(), user.username.as_str()),
        ("sara@example.com", "sara")
    );
    assert_eq!(user.role, Role::Customer);
    assert!(!user.email_verified);
    let me = must(
        shop.users
            .authenticate(&registered.token.access_token)
            .await,
    );
    assert_eq!(me.id, user.id);
    let found = must(shop.users.find_by_email("sara@example.com").await);
    assert_eq!(found.map(|found| found.id), Some(user.id.clone()));
    let events = shop.events(NOTIFICATIONS_QUEUE).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventType::UserRegistered);
    // The address's one message until it is proved: its code.
    let deliveries = shop.deliveries(&user.id).await;
    let kinds: Vec<&str> = deliveries.iter().map(|d| d.event.as_str()).collect();
    assert_eq!(kinds, [EMAIL_VERIFICATION]);
    assert_eq!(shop.delivery_commands().await.len(), 1);
}

#[tokio::test]
async fn a_taken_email_or_username_is_refused_and_leaves_nothing_behind() {
    let shop = Shop::new();
    shop.account_with_password("sara@example.com", "sara", PASSWORD)
        .await;

    let cases = [
        ("SARA@example.com", "other", vec!["email"]),
        ("new@example.com", "SARA", vec!["username"]),
        ("sara@example.com", "sara", vec!["email", "username"]),
    ];
    for (email, username, taken) in cases {
        let refused = shop
            .users
            .register(registration(email, username), CORRELATION)
            .await;
        let Err(error) = refused else {
            panic!("{email}/{username} was registered twice");
        };
        assert!(matches!(error, Error::Conflict { .. }), "{error:?}");
        assert_eq!(field_names(&error), taken, "{email}/{username}");
    }

    assert!(
        shop.item(&keys::email_claim("new@example.com"))
            .await
            .is_none()
    );
    assert!(shop.item(&keys::username_claim("other")).await.is_none());
    assert!(shop.events(NOTIFICATIONS_QUEUE).await.is_empty());
    assert!(shop.delivery_commands().await.is_empty());
}

#[tokio::test]
async fn registration_reports_every_bad_field_at_once() {
    let shop = Shop::new();
    let request = RegisterRequest {
        email: Some("not-an-address".to_owned()),
        username: Some("sa ra".to_owned()),
        password: Some("password123".to_owned()),
        password_confirm: Some("password124".to_owned()),
        ..RegisterRequest::default()
    };

    let refused = shop.users.register(request, CORRELATION).await;

    let Err(error) = refused else {
        panic!("an invalid registration was accepted");
    };
    assert_eq!(
        field_names(&error),
        ["email", "password", "password_confirm", "username"]
    );
    assert!(shop.events(NOTIFICATIONS_QUEUE).await.is_empty());
}

#[tokio::test]
async fn login_does_not_tell_an_unknown_email_from_a_wrong_password() {
    let shop = Shop::new();
    let user = shop
        .account_with_password("sara@example.com", "sara", PASSWORD)
        .await;

    let logged_in = must(
        shop.users
            .login(login("SARA@example.com", PASSWORD), CLIENT)
            .await,
    );
    let wrong = shop
        .users
        .login(login("sara@example.com", "not-the-password"), CLIENT)
        .await;
    let unknown = shop
        .users
        .login(login("nobody@example.com", PASSWORD), CLIENT)
        .await;

    assert_eq!(logged_in.user.id, user.id);
    let (Err(Error::Unauthenticated(wrong)), Err(Error::Unauthenticated(unknown))) =
        (wrong, unknown)
    else {
        panic!("a failed login was not a 401");
    };
    assert_eq!(wrong, unknown);
}

#[tokio::test]
async fn repeated_wrong_passwords_back_off_that_client_on_that_account_only() {
    let shop = Shop::new();
    shop.account_with_password("sara@example.com", "sara", PASSWORD)
        .await;
    let guess = |client| {
        shop.users
            .login(login("sara@example.com", "not-the-password"), client)
    };

    // Five free failures, and a sixth that starts the wait.
    for _ in 0..6 {
        let refused = guess(CLIENT).await;
        assert!(
            matches!(refused, Err(Error::Unauthenticated(_))),
            "{refused:?}"
        );
    }
    let held_back = guess(CLIENT).await;
    assert!(
        matches!(
            held_back,
            Err(Error::Throttled {
                retry_after_secs: 1
            })
        ),
        "{held_back:?}"
    );
    must(
        shop.users
            .login(login("sara@example.com", PASSWORD), OTHER_CLIENT)
            .await,
    );

    shop.clock.advance(TimeDelta::seconds(1));
    must(
        shop.users
            .login(login("sara@example.com", PASSWORD), CLIENT)
            .await,
    );
    // A success forgets the failures.
    let fresh = guess(CLIENT).await;
    assert!(matches!(fresh, Err(Error::Unauthenticated(_))), "{fresh:?}");
}

#[tokio::test]
async fn a_deactivated_account_can_neither_log_in_nor_use_its_token() {
    let shop = Shop::new();
    let admin = shop.admin().await;
    let (user, token) = signed_in(&shop, "sara@example.com", "sara").await;
    let deactivate = AdminUpdateRequest {
        is_active: Some(false),
        role: None,
    };

    let view = must(shop.users.admin_update(&admin, &user.id, deactivate).await);

    assert!(!view.is_active);
    let logging_in = shop
        .users
        .login(login("sara@example.com", PASSWORD), CLIENT)
        .await;
    assert!(
        matches!(logging_in, Err(Error::Forbidden(_))),
        "{logging_in:?}"
    );
    let with_token = shop.users.authenticate(&token).await;
    assert!(
        matches!(with_token, Err(Error::Forbidden(_))),
        "{with_token:?}"
    );
}

#[tokio::test]
async fn profile_fields_are_set_trimmed_checked_and_cleared() {
    let shop = Shop::new();
    let user = shop.customer().await;
    let set = UpdateProfileRequest {
        first_name: Some(Some("  Sara ".to_owned())),
        phone: Some(Some("+989121234567".to_owned())),
        language: Some(Language::Fa),
        ..UpdateProfileRequest::default()
    };

    let updated = must(shop.users.update_profile(&user, set, CLIENT).await);
    assert_eq!(updated.user.first_name.as_deref(), Some("Sara"));
    assert_eq!(updated.user.phone.as_deref(), Some("+989121234567"));
    assert_eq!(updated.user.language, Language::Fa);
    assert!(updated.token.is_none());

    let clear = UpdateProfileRequest {
        phone: Some(None),
        ..UpdateProfileRequest::default()
    };
    let cleared = must(shop.users.update_profile(&user, clear, CLIENT).await);
    assert_eq!(cleared.user.phone, None);
    assert_eq!(cleared.user.first_name.as_deref(), Some("Sara"));

    let bad = UpdateProfileRequest {
        first_name: Some(Some("   ".to_owned())),
        phone: Some(Some("09121234567".to_owned())),
        ..UpdateProfileRequest::default()
    };
    let Err(error) = shop.users.update_profile(&user, bad, CLIENT).await else {
        panic!("a blank name and a local phone number were accepted");
    };
    assert_eq!(field_names(&error), ["first_name", "phone"]);
    let stored = shop.reload_user(&user.id).await;
    assert_eq!(stored.first_name.as_deref(), Some("Sara"));

    let nothing = must(
        shop.users
            .update_profile(&stored, UpdateProfileRequest::default(), CLIENT)
            .await,
    );
    assert_eq!(nothing.user, UserView::from(&stored));
}

#[tokio::test]
async fn a_new_password_needs_the_current_one_and_revokes_every_older_token() {
    let shop = Shop::new();
    let (user, token) = signed_in(&shop, "sara@example.com", "sara").await;
    let change = |current: Option<&str>| UpdateProfileRequest {
        password: Some("cobalt-meadow-stone-4".to_owned()),
        password_confirm: Some("cobalt-meadow-stone-4".to_owned()),
        current_password: current.map(str::to_owned),
        ..UpdateProfileRequest::default()
    };

    let Err(missing) = shop.users.update_profile(&user, change(None), CLIENT).await else {
        panic!("the password changed without the current one");
    };
    assert_eq!(field_names(&missing), ["current_password"]);
    let Err(wrong) = shop
        .users
        .update_profile(&user, change(Some("not-the-password")), CLIENT)
        .await
    else {
        panic!("the password changed with a wrong current one");
    };
    assert_eq!(field_names(&wrong), ["current_password"]);

    let changed = must(
        shop.users
            .update_profile(&user, change(Some(PASSWORD)), CLIENT)
            .await,
    );

    let fresh = changed.token.unwrap_or_else(|| panic!("no fresh token"));
    must(shop.users.authenticate(&fresh.access_token).await);
    let old = shop.users.authenticate(&token).await;
    assert!(matches!(old, Err(Error::Unauthenticated(_))), "{old:?}");
    must(
        shop.users
            .login(login("sara@example.com", "cobalt-meadow-stone-4"), CLIENT)
            .await,
    );
}

#[tokio::test]
async fn admins_change_others_roles_and_activation_but_never_lock_themselves_out() {
    let shop = Shop::new();
    let admin = shop.admin().await;
    let customer = shop.customer().await;
    let update = |is_active, role| AdminUpdateRequest { is_active, role };

    let by_customer = shop
        .users
        .admin_update(&customer, &admin.id, update(Some(false), None))
        .await;
    assert!(matches!(by_customer, Err(Error::Forbidden(_))));
    for own in [
        update(Some(false), None),
        update(None, Some(Role::Customer)),
    ] {
        let refused = shop.users.admin_update(&admin, &admin.id, own).await;
        assert!(
            matches!(refused, Err(Error::Conflict { .. })),
            "{refused:?}"
        );
    }
    let admin_now = shop.reload_user(&admin.id).await;
    assert!(admin_now.is_admin() && admin_now.is_active);

    let promoted = must(
        shop.users
            .admin_update(&admin, &customer.id, update(None, Some(Role::Admin)))
            .await,
    );
    assert_eq!(promoted.role, Role::Admin);
    assert!(shop.reload_user(&customer.id).await.is_admin());
    let unchanged = must(
        shop.users
            .admin_update(&admin, &customer.id, update(None, None))
            .await,
    );
    assert_eq!(unchanged, promoted);
    let unknown = shop
        .users
        .admin_update(
            &admin,
            &UserId::trusted("01NOSUCHUSER"),
            update(Some(true), None),
        )
        .await;
    assert!(matches!(unknown, Err(Error::NotFound(_))), "{unknown:?}");
    assert!(
        shop.item(&keys::user(&UserId::trusted("01NOSUCHUSER")))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn create_admin_takes_over_an_existing_account_only_when_told_to() {
    let shop = Shop::new();
    let created = must(
        shop.users
            .create_admin("root@example.com", PASSWORD, "root", PromoteExisting::No)
            .await,
    );
    let AdminBootstrap::Created(root_id) = created else {
        panic!("expected a new admin, got {created:?}");
    };
    let again = must(
        shop.users
            .create_admin("ROOT@example.com", PASSWORD, "root", PromoteExisting::No)
            .await,
    );
    assert_eq!(again, AdminBootstrap::AlreadyAdmin(root_id));

    let (sara, token) = signed_in(&shop, "sara@example.com", "sara").await;
    let implicit = shop
        .users
        .create_admin("sara@example.com", PASSWORD, "sara", PromoteExisting::No)
        .await;
    assert!(
        matches!(implicit, Err(Error::Conflict { .. })),
        "{implicit:?}"
    );
    assert!(!shop.reload_user(&sara.id).await.is_admin());

    let promoted = must(
        shop.users
            .create_admin(
                "sara@example.com",
                "cobalt-meadow-stone-4",
                "sara",
                PromoteExisting::Yes,
            )
            .await,
    );
    assert_eq!(promoted, AdminBootstrap::Promoted(sara.id.clone()));
    assert!(shop.reload_user(&sara.id).await.is_admin());
    let old_token = shop.users.authenticate(&token).await;
    assert!(matches!(old_token, Err(Error::Unauthenticated(_))));
}
