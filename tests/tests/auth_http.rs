//! Black-box tests of the abuse guards on signing in and signing up, on both backends: the
//! per-client login back-off, per-client rate limits, the client address (X-Forwarded-For only
//! from trusted proxies), refusal of common passwords and the admin bootstrap.

use std::time::Duration;

use bazaar_shared::users::{AdminBootstrap, PromoteExisting};
use bazaar_tests::http::{Client, Response, concurrently, count};
use bazaar_tests::{Backend, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

bazaar_tests::on_both_backends!(
    a_guessing_client_backs_off_and_never_locks_out_the_owner,
    concurrent_guesses_from_one_client_are_bounded,
    login_and_register_are_rate_limited_per_client,
    paying_subscribing_and_verifying_are_rate_limited_per_client,
    forwarded_addresses_count_only_from_trusted_proxies,
    common_passwords_are_refused,
    the_admin_bootstrap_never_takes_over_an_account,
    the_admin_bootstrap_never_reactivates_a_deactivated_admin,
);

/// Test clients all call from loopback; a trusted loopback proxy lets them pose as others.
const TRUST_LOOPBACK: (&str, &str) = ("BAZAAR_TRUSTED_PROXIES", "127.0.0.1/32, ::1");

async fn from(
    client: &Client,
    address: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Response {
    let request = client
        .request(method, path, token)
        .header("x-forwarded-for", address)
        .json(&body);
    client.send(request).await
}

async fn login_from(client: &Client, address: &str, email: &str, password: &str) -> Response {
    from(
        client,
        address,
        Method::POST,
        "/api/v1/users/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

fn retry_after(response: &Response) -> u64 {
    response
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

const ATTACKER: &str = "203.0.113.66";
const OWNER: &str = "198.51.100.7";

async fn a_guessing_client_backs_off_and_never_locks_out_the_owner(backend: Backend) {
    let server = TestServer::start_with_settings(backend, &[TRUST_LOOPBACK]).await;
    let client = Client::new(&server);
    client.register("omid").await;
    let email = "omid@example.com";

    // Five free failures, then the attacker waits 1 s, 2 s, 4 s ... between guesses.
    let mut checked = 0;
    let mut refused = Vec::new();
    while checked < 8 {
        let guess = login_from(&client, ATTACKER, email, "wrong-password").await;
        if guess.status == 429 {
            guess.expect_problem(429);
            refused.push(retry_after(&guess));
            tokio::time::sleep(Duration::from_secs(retry_after(&guess))).await;
        } else {
            guess.expect_problem(401);
            checked += 1;
        }
        assert!(refused.len() <= 4, "refused {refused:?}");
    }
    assert!(!refused.is_empty(), "eight guesses in a row without a wait");
    assert!(refused.iter().all(|s| (1..=2).contains(s)), "{refused:?}");
    // Eight failures: the next guess waits 4 s, even with the right password.
    let right = login_from(&client, ATTACKER, email, "password-omid").await;
    right.expect_problem(429);
    assert!(
        (3..=4).contains(&retry_after(&right)),
        "{}",
        retry_after(&right)
    );

    // The owner, from another address, signs in at once, and changes the password.
    let owner = login_from(&client, OWNER, email, "password-omid").await;
    owner.expect(200);
    let token = owner.body["access_token"].as_str().unwrap_or_default();
    let change = |address: &'static str, token: String| {
        let client = client.clone();
        async move {
            from(
                &client,
                address,
                Method::PATCH,
                "/api/v1/users/me",
                Some(&token),
                json!({"password": "new-password-omid", "password_confirm": "new-password-omid", "current_password": "password-omid"}),
            )
            .await
        }
    };
    // A password change from the backing-off address is held back by the same rule...
    change(ATTACKER, token.to_owned()).await.expect_problem(429);
    // ... and the owner's goes through.
    change(OWNER, token.to_owned()).await.expect(200);
    login_from(&client, OWNER, email, "new-password-omid")
        .await
        .expect(200);
}

async fn concurrent_guesses_from_one_client_are_bounded(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    client.register("burst").await;
    let statuses = concurrently(20, |_| {
        let client = client.clone();
        async move { client.login("burst@example.com", "guess-guess").await }
    })
    .await;
    // At most the five free failures and one more are checked; the rest wait.
    let checked = count(&statuses, 401);
    assert!((1..=6).contains(&checked), "{statuses:?}");
    assert_eq!(checked + count(&statuses, 429), 20, "{statuses:?}");
    // Another account is not affected.
    client.register("other").await;
    client
        .login("other@example.com", "password-other")
        .await
        .expect(200);
}

async fn login_and_register_are_rate_limited_per_client(backend: Backend) {
    let server = TestServer::start_with_settings(
        backend,
        &[
            TRUST_LOOPBACK,
            ("BAZAAR_RATE_LIMIT_LOGIN", "3/86400"),
            ("BAZAAR_RATE_LIMIT_REGISTER", "2/86400"),
        ],
    )
    .await;
    let client = Client::new(&server);
    let register = |address: &'static str, name: &'static str| {
        let client = client.clone();
        async move {
            from(
                &client,
                address,
                Method::POST,
                "/api/v1/users/register",
                None,
                json!({
                    "email": format!("{name}@example.com"),
                    "username": name,
                    "password": format!("password-{name}"),
                    "password_confirm": format!("password-{name}"),
                }),
            )
            .await
        }
    };
    register(ATTACKER, "reza").await.expect(201);
    register(ATTACKER, "roya").await.expect(201);
    let third = register(ATTACKER, "rana").await;
    third.expect_problem(429);
    assert!(retry_after(&third) >= 1, "no Retry-After");
    // Refused before anything is written: the account does not exist.
    register(OWNER, "rana").await.expect(201);

    // Three logins per client, right password or not.
    login_from(&client, ATTACKER, "reza@example.com", "password-reza")
        .await
        .expect(200);
    login_from(&client, ATTACKER, "reza@example.com", "wrong-one")
        .await
        .expect_problem(401);
    login_from(&client, ATTACKER, "roya@example.com", "password-roya")
        .await
        .expect(200);
    let over = login_from(&client, ATTACKER, "roya@example.com", "password-roya").await;
    over.expect_problem(429);
    assert!(retry_after(&over) >= 1, "no Retry-After");
    // Another client is not affected; an IPv6 client is counted by its /64.
    login_from(&client, OWNER, "roya@example.com", "password-roya")
        .await
        .expect(200);
    for host in ["2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6:ffff::3"] {
        login_from(&client, host, "roya@example.com", "password-roya")
            .await
            .expect(200);
    }
    login_from(
        &client,
        "2001:db8:5:6::4",
        "roya@example.com",
        "password-roya",
    )
    .await
    .expect_problem(429);
}

async fn paying_subscribing_and_verifying_are_rate_limited_per_client(backend: Backend) {
    let server = TestServer::start_with_settings(
        backend,
        &[
            TRUST_LOOPBACK,
            ("BAZAAR_RATE_LIMIT_PAY", "2/86400"),
            ("BAZAAR_RATE_LIMIT_SUBSCRIBE", "2/86400"),
            ("BAZAAR_RATE_LIMIT_VERIFY", "2/86400"),
        ],
    )
    .await;
    let client = Client::new(&server);
    let (token, _) = client.register("lale").await;
    let call = |address: &'static str, path: &'static str, body: Value| {
        let client = client.clone();
        let token = token.clone();
        async move { from(&client, address, Method::POST, path, Some(&token), body).await }
    };
    let card = json!({"method": "card", "card": {"number": "4242424242424242"}});
    let code = json!({"code": "000000"});
    let sms = json!({"channel": "sms", "target": "+14155550123", "events": ["ORDER_CREATED"]});
    // Each limit counts every endpoint it guards, whatever the answer; the third call is
    // refused before anything else happens.
    let groups = [
        [
            ("/api/v1/orders/no-such-order/pay", card.clone()),
            ("/api/v1/orders/no-such-order/pay", card.clone()),
            ("/api/v1/orders/no-such-order/pay", card.clone()),
        ],
        [
            ("/api/v1/notifications/subscriptions", sms.clone()),
            ("/api/v1/users/me/email/verification", json!({})),
            (
                "/api/v1/notifications/subscriptions/no-such-one/resend",
                json!({}),
            ),
        ],
        [
            ("/api/v1/users/me/email/verify", code.clone()),
            (
                "/api/v1/notifications/subscriptions/no-such-one/verify",
                code.clone(),
            ),
            ("/api/v1/users/me/email/verify", code.clone()),
        ],
    ];
    for [first, second, third] in groups {
        for (path, body) in [first.clone(), second] {
            let response = call(ATTACKER, path, body).await;
            assert_ne!(response.status, 429, "{path}: {}", response.text);
        }
        let over = call(ATTACKER, third.0, third.1).await;
        over.expect_problem(429);
        assert!(retry_after(&over) >= 1, "{}: no Retry-After", third.0);
        // Another client is not held back.
        let other = call(OWNER, first.0, first.1).await;
        assert_ne!(other.status, 429, "{}: {}", first.0, other.text);
    }
}

async fn forwarded_addresses_count_only_from_trusted_proxies(backend: Backend) {
    // No trusted proxies: X-Forwarded-For is the client's own say-so and is ignored.
    let server =
        TestServer::start_with_settings(backend, &[("BAZAAR_RATE_LIMIT_LOGIN", "2/86400")]).await;
    let client = Client::new(&server);
    client.register("dara").await;
    for address in ["192.0.2.1", "192.0.2.2"] {
        login_from(&client, address, "dara@example.com", "password-dara")
            .await
            .expect(200);
    }
    login_from(&client, "192.0.2.3", "dara@example.com", "password-dara")
        .await
        .expect_problem(429);
}

async fn common_passwords_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let refused = client
        .post(
            "/api/v1/users/register",
            None,
            json!({
                "email": "kian@example.com",
                "username": "kian",
                "password": "Password123",
                "password_confirm": "Password123",
            }),
        )
        .await;
    refused.expect_problem(422);
    assert_eq!(refused.error_fields(), ["password"]);
    assert!(refused.text.contains("too common"), "{}", refused.text);

    let (token, _) = client.register("kian").await;
    let change = client
        .patch(
            "/api/v1/users/me",
            Some(&token),
            json!({"password": "qwertyuiop", "password_confirm": "qwertyuiop", "current_password": "password-kian"}),
        )
        .await;
    change.expect_problem(422);
    assert_eq!(change.error_fields(), ["password"]);
    client
        .login("kian@example.com", "password-kian")
        .await
        .expect(200);
}

async fn the_admin_bootstrap_never_takes_over_an_account(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let (squatter_token, squatter_id) = client.register("boss").await;
    let users = server.app.users();

    // The configured admin e-mail was registered first by someone else: nothing changes.
    let refused = users
        .create_admin(
            "Boss@Example.com",
            "the-real-admin-pw",
            "admin",
            PromoteExisting::No,
        )
        .await;
    assert!(
        matches!(refused, Err(bazaar_shared::Error::Conflict { .. })),
        "{refused:?}"
    );
    let squatter = client.login("boss@example.com", "password-boss").await;
    squatter.expect(200);
    assert_eq!(squatter.body["user"]["role"], "customer");
    client
        .login("boss@example.com", "the-real-admin-pw")
        .await
        .expect_problem(401);

    // Promotion only on request: the given password replaces theirs, their tokens die.
    let promoted = users
        .create_admin(
            "boss@example.com",
            "the-real-admin-pw",
            "admin",
            PromoteExisting::Yes,
        )
        .await
        .expect("promote the squatter to admin");
    assert_eq!(
        promoted,
        AdminBootstrap::Promoted(bazaar_shared::ids::UserId::trusted(squatter_id))
    );
    client
        .get("/api/v1/users/me", Some(&squatter_token))
        .await
        .expect_problem(401);
    client
        .login("boss@example.com", "password-boss")
        .await
        .expect_problem(401);
    let admin = client.login("boss@example.com", "the-real-admin-pw").await;
    admin.expect(200);
    assert_eq!(admin.body["user"]["role"], "admin");
}

async fn the_admin_bootstrap_never_reactivates_a_deactivated_admin(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let users = server.app.users();
    let first = users
        .create_admin(
            "first@example.com",
            "first-admin-pw-1",
            "first",
            PromoteExisting::No,
        )
        .await
        .expect("create the first admin");
    let AdminBootstrap::Created(first_id) = first else {
        panic!("not created: {first:?}");
    };
    let second = client.admin(&server).await;
    client
        .patch(
            &format!("/api/v1/users/{first_id}"),
            Some(&second),
            json!({"is_active": false}),
        )
        .await
        .expect(200);

    // A restart with the first admin still configured leaves it deactivated.
    let again = users
        .create_admin(
            "first@example.com",
            "first-admin-pw-1",
            "first",
            PromoteExisting::No,
        )
        .await;
    assert!(
        matches!(again, Err(bazaar_shared::Error::Conflict { .. })),
        "{again:?}"
    );
    client
        .login("first@example.com", "first-admin-pw-1")
        .await
        .expect_problem(403);
    // An active admin is left as it is.
    let kept = users
        .create_admin(
            "root@example.com",
            "another-password",
            "root",
            PromoteExisting::No,
        )
        .await
        .expect("create an admin over the active one");
    assert!(matches!(kept, AdminBootstrap::AlreadyAdmin(_)), "{kept:?}");
    client
        .login("root@example.com", "admin-password-1")
        .await
        .expect(200);
}
