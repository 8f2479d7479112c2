//! Black-box tests of the "Users" endpoints through the local server over HTTP, on the
//! embedded backend and on the AWS adapters against moto.

use std::time::Duration;

use bazaar_tests::http::{Client, concurrently, count};
use bazaar_tests::{Backend, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

bazaar_tests::on_both_backends!(
    registration_signs_the_user_in,
    registration_lists_every_invalid_field,
    duplicates_are_conflicts_naming_the_field,
    concurrent_registrations_of_one_email_create_one_account,
    malformed_bodies_are_client_errors,
    registration_publishes_user_registered,
    login_accepts_json_and_the_oauth2_form,
    tokens_are_checked,
    the_profile_can_be_changed,
    a_password_change_revokes_older_tokens,
    admins_list_and_manage_users,
    customers_cannot_use_admin_endpoints,
    the_address_book_keeps_one_default,
    concurrent_default_addresses_leave_exactly_one,
    addresses_are_private_and_validated,
    every_response_is_traced_and_measured,
    a_new_address_gets_only_its_code_until_verified,
);

async fn registration_signs_the_user_in(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let response = client
        .post(
            "/api/v1/users/register",
            None,
            json!({
                "email": "  Sara.Ahmadi@Example.COM ",
                "username": "SaraA",
                "password": "a long enough password",
                "password_confirm": "a long enough password",
                "first_name": "سارا",
                "last_name": "احمدی",
                "phone": "+989121234567",
            }),
        )
        .await;
    response.expect(201);
    let user = &response.body["user"];
    assert_eq!(user["email"], "sara.ahmadi@example.com");
    assert_eq!(user["username"], "saraa");
    assert_eq!(user["first_name"], "سارا");
    assert_eq!(user["role"], "customer");
    assert_eq!(user["is_active"], true);
    assert_eq!(response.body["token_type"], "bearer");
    assert_eq!(response.body["expires_in"], 3600);
    assert!(response.body["message"].is_string());
    assert!(!response.text.contains("argon2") && !response.text.contains("password_hash"));

    let token = response.body["access_token"].as_str().unwrap_or_default();
    let me = client.get("/api/v1/users/me", Some(token)).await;
    me.expect(200);
    assert_eq!(me.body["id"], user["id"]);
    assert_eq!(me.body["phone"], "+989121234567");
    assert!(me.body.get("password_hash").is_none());
}

async fn registration_lists_every_invalid_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let empty = client.post("/api/v1/users/register", None, json!({})).await;
    empty.expect_problem(422);
    assert_eq!(
        empty.error_fields(),
        ["email", "password", "password_confirm", "username"]
    );

    let bad = client
        .post(
            "/api/v1/users/register",
            None,
            json!({
                "email": "not-an-email",
                "username": "no spaces!",
                "password": "short",
                "password_confirm": "shorter",
                "phone": "0912",
            }),
        )
        .await;
    bad.expect_problem(422);
    let fields = bad.error_fields();
    for field in ["email", "username", "password", "password_confirm", "phone"] {
        assert!(
            fields.contains(&field.to_owned()),
            "{field} missing from {fields:?}"
        );
    }

    let wrong_type = client
        .post(
            "/api/v1/users/register",
            None,
            json!({"email": 42, "username": "x"}),
        )
        .await;
    wrong_type.expect_problem(422);
    assert_eq!(wrong_type.error_fields(), ["email"]);

    // Nothing was written: the first valid registration with those names works.
    client.register("nobody").await;
    let users = server
        .app
        .users()
        .find_by_email("not-an-email")
        .await
        .ok()
        .flatten();
    assert!(users.is_none());
}

async fn duplicates_are_conflicts_naming_the_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    client.register("reza").await;
    let body = |email: &str, username: &str| json!({"email": email, "username": username, "password": "password-x", "password_confirm": "password-x"});
    let same_email = client
        .post(
            "/api/v1/users/register",
            None,
            body("REZA@example.com", "other"),
        )
        .await;
    same_email.expect_problem(409);
    assert_eq!(same_email.error_fields(), ["email"]);
    assert!(
        same_email.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("email")
    );

    let same_username = client
        .post(
            "/api/v1/users/register",
            None,
            body("other@example.com", "Reza"),
        )
        .await;
    same_username.expect_problem(409);
    assert_eq!(same_username.error_fields(), ["username"]);

    let both = client
        .post(
            "/api/v1/users/register",
            None,
            body("reza@example.com", "reza"),
        )
        .await;
    both.expect_problem(409);
    assert_eq!(both.error_fields(), ["email", "username"]);

    // The failed attempts left no claim behind: "other" is still free.
    client.register("other").await;
}

async fn concurrent_registrations_of_one_email_create_one_account(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let statuses = concurrently(10, |attempt| {
        let client = client.clone();
        async move {
            let body = json!({
                "email": "race@example.com",
                "username": format!("racer{attempt}"),
                "password": "password-race",
                "password_confirm": "password-race",
            });
            client.post("/api/v1/users/register", None, body).await
        }
    })
    .await;
    assert_eq!(count(&statuses, 201), 1, "{statuses:?}");
    assert_eq!(count(&statuses, 409), 9, "{statuses:?}");
}

async fn malformed_bodies_are_client_errors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let path = "/api/v1/users/register";
    let raw = |body: &'static str, content_type: &'static str| {
        client
            .request(Method::POST, path, None)
            .header("content-type", content_type)
            .body(body)
    };
    client
        .send(raw("{\"email\": ", "application/json"))
        .await
        .expect_problem(400);
    client
        .send(raw("[1, 2]", "application/json"))
        .await
        .expect_problem(400);
    client
        .send(raw("{}", "text/plain"))
        .await
        .expect_problem(415);
    let huge = "x".repeat(100 * 1024);
    let too_large = client
        .send(
            client
                .request(Method::POST, path, None)
                .header("content-type", "application/json")
                .body(format!("{{\"email\": \"{huge}\"}}")),
        )
        .await;
    too_large.expect_problem(413);
    client
        .get("/api/v1/nowhere", None)
        .await
        .expect_problem(404);
    client
        .call(Method::DELETE, "/api/v1/users/register", None, None)
        .await
        .expect_problem(405);
}

async fn registration_publishes_user_registered(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let (_, user_id) = client.register("nima").await;
    // The in-process consumer takes USER_REGISTERED off the notifications queue and writes an
    // inbox notification and a welcome e-mail for the new user; the delivery step sends it.
    let notifications = wait_for_notifications(&server, &user_id, 2).await;
    assert_eq!(notifications.len(), 2, "{notifications:?}");
    let inbox: Vec<_> = notifications
        .iter()
        .filter(|n| n["channel"] == "inbox")
        .collect();
    assert_eq!(inbox.len(), 1, "{notifications:?}");
    assert_eq!(inbox[0]["event"], "USER_REGISTERED");
    assert_eq!(inbox[0]["status"], "delivered");
    let email: Vec<_> = notifications
        .iter()
        .filter(|n| n["channel"] == "email")
        .collect();
    assert_eq!(email.len(), 1, "{notifications:?}");
    assert_eq!(email[0]["target"], "nima@example.com");
    // And the outbox empties, every shard of it: every message was handed on, not left behind.
    let ports = server.app.ports().clone();
    bazaar_tests::http::eventually("the outbox is empty", || {
        let ports = ports.clone();
        async move {
            for partition in ports
                .shards
                .partitions(bazaar_shared::keys::OUTBOX_PARTITION)
            {
                let outbox = bazaar_shared::ports::Query::partition(
                    bazaar_shared::ports::Index::Primary,
                    partition,
                );
                if !ports
                    .store
                    .query(&outbox)
                    .await
                    .is_ok_and(|page| page.items.is_empty())
                {
                    return false;
                }
            }
            true
        }
    })
    .await;
}

async fn wait_for_notifications(server: &TestServer, user_id: &str, count: usize) -> Vec<Value> {
    use bazaar_shared::ports::{Index, Query};
    let query = Query::partition(Index::Primary, format!("USER#{user_id}")).prefix("NOTIFICATION#");
    for _ in 0..100 {
        let page = server
            .app
            .ports()
            .store
            .query(&query)
            .await
            .expect("query the user's notifications");
        if page.items.len() >= count {
            return page.items.into_iter().map(Value::Object).collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no notification for {user_id} after 10 s");
}

async fn login_accepts_json_and_the_oauth2_form(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    client.register("leila").await;
    let json_login = client.login("LEILA@example.com", "password-leila").await;
    json_login.expect(200);
    assert_eq!(json_login.body["token_type"], "bearer");
    assert_eq!(json_login.body["user"]["username"], "leila");

    let form_login = client
        .send(
            client
                .request(Method::POST, "/api/v1/users/login", None)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("username=leila%40example.com&password=password-leila"),
        )
        .await;
    form_login.expect(200);
    let token = form_login.body["access_token"].as_str().unwrap_or_default();
    client
        .get("/api/v1/users/me", Some(token))
        .await
        .expect(200);

    let wrong_password = client.login("leila@example.com", "nope-nope").await;
    wrong_password.expect_problem(401);
    let unknown = client.login("ghost@example.com", "nope-nope").await;
    unknown.expect_problem(401);
    assert_eq!(wrong_password.body["detail"], unknown.body["detail"]);
    client
        .post("/api/v1/users/login", None, json!({}))
        .await
        .expect_problem(422);
}

async fn tokens_are_checked(backend: Backend) {
    use base64::Engine;
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let (token, _) = client.register("kian").await;
    let missing = client.get("/api/v1/users/me", None).await;
    missing.expect_problem(401);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    client
        .get("/api/v1/users/me", Some("garbage"))
        .await
        .expect_problem(401);
    let basic = client
        .send(
            client
                .request(Method::GET, "/api/v1/users/me", None)
                .basic_auth("a", Some("b")),
        )
        .await;
    basic.expect_problem(401);
    // alg=none with the genuine claims.
    let payload = token.split('.').nth(1).unwrap_or_default();
    let header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    client
        .get("/api/v1/users/me", Some(&format!("{header}.{payload}.")))
        .await
        .expect_problem(401);
    // A flipped signature character.
    let mut forged = token.clone();
    let last = forged
        .pop()
        .map(|c| if c == 'A' { 'B' } else { 'A' })
        .unwrap_or('A');
    forged.push(last);
    client
        .get("/api/v1/users/me", Some(&forged))
        .await
        .expect_problem(401);
    client
        .get("/api/v1/users/me", Some(&token))
        .await
        .expect(200);
}

async fn the_profile_can_be_changed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let (token, _) = client.register("mina").await;
    let changed = client
        .patch(
            "/api/v1/users/me",
            Some(&token),
            json!({"first_name": "Mina", "last_name": "Karimi", "phone": "+14155550100"}),
        )
        .await;
    changed.expect(200);
    assert_eq!(changed.body["first_name"], "Mina");
    assert_eq!(changed.body["phone"], "+14155550100");
    assert!(changed.body.get("access_token").is_none());

    let cleared = client
        .patch("/api/v1/users/me", Some(&token), json!({"phone": null}))
        .await;
    cleared.expect(200);
    assert_eq!(cleared.body["phone"], Value::Null);
    assert_eq!(cleared.body["last_name"], "Karimi");

    let invalid = client
        .patch(
            "/api/v1/users/me",
            Some(&token),
            json!({"phone": "12", "first_name": "   "}),
        )
        .await;
    invalid.expect_problem(422);
    assert_eq!(invalid.error_fields(), ["first_name", "phone"]);
    let me = client.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(
        me.body["first_name"], "Mina",
        "a failed request changed the profile"
    );
    client
        .patch("/api/v1/users/me", None, json!({"first_name": "x"}))
        .await
        .expect_problem(401);
}

async fn a_password_change_revokes_older_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let (old_token, _) = client.register("arash").await;
    let no_current = client
        .patch(
            "/api/v1/users/me",
            Some(&old_token),
            json!({"password": "new-password-1"}),
        )
        .await;
    no_current.expect_problem(422);
    assert_eq!(no_current.error_fields(), ["current_password"]);
    let wrong_current = client
        .patch(
            "/api/v1/users/me",
            Some(&old_token),
            json!({"password": "new-password-1", "current_password": "not-it-at-all"}),
        )
        .await;
    wrong_current.expect_problem(422);
    let changed = client
        .patch(
            "/api/v1/users/me",
            Some(&old_token),
            json!({"password": "new-password-1", "password_confirm": "new-password-1", "current_password": "password-arash"}),
        )
        .await;
    changed.expect(200);
    let new_token = changed.body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!new_token.is_empty(), "{}", changed.text);
    client
        .get("/api/v1/users/me", Some(&old_token))
        .await
        .expect_problem(401);
    client
        .get("/api/v1/users/me", Some(&new_token))
        .await
        .expect(200);
    client
        .login("arash@example.com", "password-arash")
        .await
        .expect_problem(401);
    client
        .login("arash@example.com", "new-password-1")
        .await
        .expect(200);
}

async fn admins_list_and_manage_users(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let mut ids = Vec::new();
    for name in ["ali", "bita", "cyrus"] {
        ids.push(client.register(name).await.1);
    }
    // Pages of two: admin + 3 customers = 4 users in two pages, no repeats.
    let first = client.get("/api/v1/users?limit=2", Some(&admin)).await;
    first.expect(200);
    assert_eq!(first.body["items"].as_array().map(Vec::len), Some(2));
    let cursor = first.body["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!cursor.is_empty());
    let second = client
        .get(
            &format!("/api/v1/users?limit=2&cursor={cursor}"),
            Some(&admin),
        )
        .await;
    second.expect(200);
    let mut seen: Vec<String> = [&first, &second]
        .iter()
        .flat_map(|page| page.body["items"].as_array().cloned().unwrap_or_default())
        .filter_map(|user| user["id"].as_str().map(str::to_owned))
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "{seen:?}");
    if let Some(next) = second.body["next_cursor"].as_str() {
        let third = client
            .get(
                &format!("/api/v1/users?limit=2&cursor={next}"),
                Some(&admin),
            )
            .await;
        assert_eq!(third.body["items"].as_array().map(Vec::len), Some(0));
    }
    client
        .get("/api/v1/users?cursor=garbled!!", Some(&admin))
        .await
        .expect_problem(400);
    client
        .get("/api/v1/users?limit=0", Some(&admin))
        .await
        .expect_problem(400);
    client
        .get("/api/v1/users?limit=1000", Some(&admin))
        .await
        .expect_problem(400);
    client
        .get("/api/v1/users?limit=ten", Some(&admin))
        .await
        .expect_problem(400);

    // Deactivation takes effect at once, on tokens and on login.
    let (ali_token, ali_id) = (
        client.login("ali@example.com", "password-ali").await.body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        ids[0].clone(),
    );
    let deactivated = client
        .patch(
            &format!("/api/v1/users/{ali_id}"),
            Some(&admin),
            json!({"is_active": false}),
        )
        .await;
    deactivated.expect(200);
    assert_eq!(deactivated.body["is_active"], false);
    client
        .get("/api/v1/users/me", Some(&ali_token))
        .await
        .expect_problem(403);
    client
        .login("ali@example.com", "password-ali")
        .await
        .expect_problem(403);

    let promoted = client
        .patch(
            &format!("/api/v1/users/{}", ids[1]),
            Some(&admin),
            json!({"role": "admin"}),
        )
        .await;
    promoted.expect(200);
    assert_eq!(promoted.body["role"], "admin");
    client
        .patch(
            &format!("/api/v1/users/{}", ids[1]),
            Some(&admin),
            json!({"role": "emperor"}),
        )
        .await
        .expect_problem(422);
    client
        .patch(
            "/api/v1/users/01HZZZZZZZZZZZZZZZZZZZZZZZ",
            Some(&admin),
            json!({"is_active": true}),
        )
        .await
        .expect_problem(404);
    let me = client.get("/api/v1/users/me", Some(&admin)).await;
    let admin_id = me.body["id"].as_str().unwrap_or_default().to_owned();
    client
        .patch(
            &format!("/api/v1/users/{admin_id}"),
            Some(&admin),
            json!({"role": "customer"}),
        )
        .await
        .expect_problem(409);
}

async fn customers_cannot_use_admin_endpoints(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let (token, id) = client.register("sina").await;
    client
        .get("/api/v1/users", Some(&token))
        .await
        .expect_problem(403);
    client
        .patch(
            &format!("/api/v1/users/{id}"),
            Some(&token),
            json!({"role": "admin"}),
        )
        .await
        .expect_problem(403);
    client.get("/api/v1/users", None).await.expect_problem(401);
    let me = client.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(me.body["role"], "customer");
}

fn address(line1: &str, default: Option<bool>) -> Value {
    let mut body = json!({
        "line1": line1,
        "city": "Tehran",
        "state": "Tehran",
        "postal_code": "1234567890",
        "country": "IR",
    });
    if let Some(default) = default {
        body["is_default"] = json!(default);
    }
    body
}

async fn list_addresses(client: &Client, token: &str) -> Vec<Value> {
    let listed = client.get("/api/v1/users/me/addresses", Some(token)).await;
    listed.expect(200);
    assert_eq!(listed.body["next_cursor"], Value::Null);
    listed.body["items"].as_array().cloned().unwrap_or_default()
}

fn defaults(addresses: &[Value]) -> Vec<String> {
    addresses
        .iter()
        .filter(|a| a["is_default"] == true)
        .filter_map(|a| a["id"].as_str().map(str::to_owned))
        .collect()
}

async fn the_address_book_keeps_one_default(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let (token, _) = client.register("parisa").await;
    let path = "/api/v1/users/me/addresses";
    let first = client
        .post(path, Some(&token), address("خیابان آزادی ۱", None))
        .await;
    first.expect(201);
    assert_eq!(
        first.body["is_default"], true,
        "the first address becomes the default"
    );
    let first_id = first.body["id"].as_str().unwrap_or_default().to_owned();
    let second = client
        .post(path, Some(&token), address("2 Main St", Some(true)))
        .await;
    second.expect(201);
    let second_id = second.body["id"].as_str().unwrap_or_default().to_owned();
    let listed = list_addresses(&client, &token).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(defaults(&listed), vec![second_id]);

    let moved = client
        .patch(
            &format!("{path}/{first_id}"),
            Some(&token),
            json!({"is_default": true, "line2": "Unit 4"}),
        )
        .await;
    moved.expect(200);
    assert_eq!(moved.body["line2"], "Unit 4");
    assert_eq!(
        defaults(&list_addresses(&client, &token).await),
        vec![first_id.clone()]
    );

    client
        .delete(&format!("{path}/{first_id}"), Some(&token))
        .await
        .expect(204);
    let listed = list_addresses(&client, &token).await;
    assert_eq!(listed.len(), 1);
    assert!(
        defaults(&listed).is_empty(),
        "a deleted default leaves none"
    );
    client
        .delete(&format!("{path}/{first_id}"), Some(&token))
        .await
        .expect_problem(404);
    let third = client
        .post(path, Some(&token), address("3 Side St", Some(false)))
        .await;
    third.expect(201);
    assert_eq!(third.body["is_default"], false);
}

async fn concurrent_default_addresses_leave_exactly_one(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let (token, _) = client.register("hamid").await;
    let statuses = concurrently(8, |n| {
        let (client, token) = (client.clone(), token.clone());
        let body = address(&format!("{n} Race Rd"), Some(true));
        async move {
            client
                .post("/api/v1/users/me/addresses", Some(&token), body)
                .await
        }
    })
    .await;
    let created = count(&statuses, 201);
    assert_eq!(created + count(&statuses, 409), 8, "{statuses:?}");
    let listed = list_addresses(&client, &token).await;
    assert_eq!(
        listed.len(),
        created,
        "every 201 is in the book, nothing else"
    );
    assert!(created >= 1);
    assert_eq!(defaults(&listed).len(), 1, "{listed:?}");
}

async fn addresses_are_private_and_validated(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let (owner, _) = client.register("owner").await;
    let (stranger, _) = client.register("stranger").await;
    let path = "/api/v1/users/me/addresses";
    let created = client
        .post(path, Some(&owner), address("1 Private Way", None))
        .await;
    created.expect(201);
    let id = created.body["id"].as_str().unwrap_or_default().to_owned();
    client
        .patch(
            &format!("{path}/{id}"),
            Some(&stranger),
            json!({"city": "Shiraz"}),
        )
        .await
        .expect_problem(404);
    client
        .delete(&format!("{path}/{id}"), Some(&stranger))
        .await
        .expect_problem(404);
    assert!(list_addresses(&client, &stranger).await.is_empty());

    let missing = client.post(path, Some(&owner), json!({"line1": "x"})).await;
    missing.expect_problem(422);
    assert_eq!(
        missing.error_fields(),
        ["city", "country", "postal_code", "state"]
    );
    let bad = client
        .post(path, Some(&owner), json!({"line1": "x", "city": "y", "state": "z", "postal_code": "12;3", "country": "Iran"}))
        .await;
    bad.expect_problem(422);
    assert_eq!(bad.error_fields(), ["country", "postal_code"]);
    client.get(path, None).await.expect_problem(401);

    for n in 1..20 {
        client
            .post(path, Some(&owner), address(&format!("{n} Full St"), None))
            .await
            .expect(201);
    }
    let full = client
        .post(path, Some(&owner), address("21 Too Many St", None))
        .await;
    full.expect_problem(409);
    assert_eq!(list_addresses(&client, &owner).await.len(), 20);
}

async fn every_response_is_traced_and_measured(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let health = client.get("/api/v1/health", None).await;
    health.expect(200);
    assert_eq!(health.body["status"], "ok");
    let generated = health.header("x-request-id").unwrap_or_default().to_owned();
    assert_eq!(generated.len(), 26, "a ULID: {generated}");
    let echoed = client
        .send(
            client
                .request(Method::GET, "/api/v1/nope", None)
                .header("x-request-id", "trace-me-123"),
        )
        .await;
    assert_eq!(echoed.header("x-request-id"), Some("trace-me-123"));
    let metrics = client
        .send(client.request(Method::GET, "/metrics", None))
        .await;
    metrics.expect(200);
    assert!(
        metrics
            .text
            .contains(r#"http_requests_total{method="GET",route="/api/v1/health",status="200"}"#),
        "{}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains("http_request_duration_seconds_bucket"),
        "{}",
        metrics.text
    );
    let spec = client
        .send(client.request(Method::GET, "/api/v1/openapi.yaml", None))
        .await;
    spec.expect(200);
    assert!(spec.text.contains("openapi:"));
    let docs = client
        .send(client.request(Method::GET, "/api/v1/docs", None))
        .await;
    docs.expect(200);
    assert!(docs.text.contains("/api/v1/openapi.yaml"));
}

async fn a_new_address_gets_only_its_code_until_verified(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let email = format!(
        "new-{}@example.com",
        &bazaar_tests::server::unique("x")[20..28]
    );
    let registered = client
        .post(
            "/api/v1/users/register",
            None,
            json!({"email": email, "username": "newbie", "password": "password-newbie", "password_confirm": "password-newbie"}),
        )
        .await;
    registered.expect(201);
    assert_eq!(registered.body["user"]["email_verified"], json!(false));
    let token = registered.body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let user_id = registered.body["user"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let code = server.code_for(&email).await;
    // An unproved account may not make others' targets receive codes.
    client
        .post(
            "/api/v1/notifications/subscriptions",
            Some(&token),
            json!({"channel": "sms", "target": "+14155550199"}),
        )
        .await
        .expect_problem(403);
    let notify = |subject: &'static str| {
        let (client, admin, user_id) = (client.clone(), admin.clone(), user_id.clone());
        async move {
            client
                .post(
                    "/api/v1/notifications/notify",
                    Some(&admin),
                    json!({"user_id": user_id, "subject": subject, "message": "m"}),
                )
                .await
                .expect(202);
        }
    };
    notify("Before").await;
    let inbox_has = |subject_count: usize| {
        let (client, token) = (client.clone(), token.clone());
        async move {
            let log = client
                .get("/api/v1/notifications?limit=100", Some(&token))
                .await;
            log.body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|n| n["event"] == "ADMIN_MESSAGE" && n["channel"] == "inbox")
                .count()
                == subject_count
        }
    };
    bazaar_tests::http::eventually("the message reached the inbox", || inbox_has(1)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = server.sent.to(&email);
    assert_eq!(sent.len(), 1, "one message, the code: {sent:?}");
    assert_eq!(sent[0].event_type, "EMAIL_VERIFICATION");
    if let Some(dir) = server.data_dir() {
        // Locally the code is in the outbox e-mail, where a developer reads it.
        let found = std::fs::read_dir(dir.join("outbox/email"))
            .map(|entries| {
                entries.flatten().any(|entry| {
                    std::fs::read_to_string(entry.path())
                        .is_ok_and(|eml| eml.contains(&email) && eml.contains(&code))
                })
            })
            .unwrap_or(false);
        assert!(found, "the code is in the outbox");
    }

    // Resends: the first code and three more an hour.
    let resend = "/api/v1/users/me/email/verification";
    for _ in 0..3 {
        client
            .post(resend, Some(&token), json!({}))
            .await
            .expect(202);
    }
    let spent = client.post(resend, Some(&token), json!({})).await;
    spent.expect_problem(429);
    assert!(spent.header("retry-after").is_some());
    bazaar_tests::http::eventually("four codes were sent", || async {
        server.sent.to(&email).len() == 4
    })
    .await;
    // Codes are minted as they are sent: try the newest first.
    let codes: Vec<String> = server
        .sent
        .to(&email)
        .iter()
        .rev()
        .filter_map(|m| bazaar_tests::sent::code_in(&m.subject))
        .collect();
    let code = codes[0].clone();

    let verify = "/api/v1/users/me/email/verify";
    let wrong = client
        .post(
            verify,
            Some(&token),
            json!({"code": if code == "000000" { "000001" } else { "000000" }}),
        )
        .await;
    wrong.expect_problem(422);
    assert_eq!(wrong.error_fields(), ["code"]);
    client
        .post(verify, None, json!({"code": code}))
        .await
        .expect_problem(401);
    let mut verified = client
        .post(verify, Some(&token), json!({"code": code}))
        .await;
    for older in &codes[1..] {
        if verified.status == 200 {
            break;
        }
        verified = client
            .post(verify, Some(&token), json!({"code": older}))
            .await;
    }
    verified.expect(200);
    assert_eq!(verified.body["email_verified"], json!(true));
    let me = client.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(me.body["email_verified"], json!(true));
    client
        .post(resend, Some(&token), json!({}))
        .await
        .expect_problem(409);

    notify("After").await;
    bazaar_tests::http::eventually("the proved address got the message", || async {
        server
            .sent
            .to(&email)
            .iter()
            .any(|m| m.event_type == "ADMIN_MESSAGE")
    })
    .await;
    server.stop().await;
}
