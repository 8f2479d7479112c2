//! Black-box tests of what the edge does for every route, on both backends: the catalogue
//! response cache cannot be grown by junk, metrics labels stay bounded, responses carry the
//! security headers, the docs page needs nothing from elsewhere, address lines are checked,
//! and search cursors cannot overflow.

use bazaar_tests::http::Client;
use bazaar_tests::{Backend, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

bazaar_tests::on_both_backends!(
    junk_parameters_cannot_grow_the_catalogue_cache,
    made_up_methods_share_one_metrics_label,
    responses_carry_the_security_headers,
    the_docs_page_is_self_contained,
    address_line2_is_validated,
    a_huge_search_offset_is_an_empty_page,
);

const PRODUCTS: &str = "/api/v1/products";

async fn product(client: &Client, admin: &str, sku: &str, name: &str) -> String {
    let created = client
        .post(
            PRODUCTS,
            Some(admin),
            json!({"sku": sku, "name": name, "description": "A test product",
                   "price": {"amount": 1000, "currency": "USD"}, "stock": 3}),
        )
        .await;
    created.expect(201);
    created.body["id"].as_str().unwrap_or_default().to_owned()
}

async fn junk_parameters_cannot_grow_the_catalogue_cache(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    product(&client, &admin, "LAMP-1", "Desk lamp").await;
    let cache = server.app.cache();
    assert_eq!(cache.size().entries, 0, "a write leaves the cache empty");

    let first = client
        .get(&format!("{PRODUCTS}?limit=5&sort=newest"), None)
        .await;
    first.expect(200);
    let etag = first.header("etag").map(str::to_owned);
    let junk = "j".repeat(900);
    for n in 0..150 {
        // The same listing: known parameters in another order, repeated, and junk added.
        let path = format!("{PRODUCTS}?junk{n}={junk}&sort=newest&limit=5&other{n}=1");
        let read = client.get(&path, None).await;
        read.expect(200);
        assert_eq!(read.header("etag").map(str::to_owned), etag);
    }
    let size = cache.size();
    assert_eq!(size.entries, 1, "junk made entries: {size:?}");
    assert!(size.bytes <= cache.max_bytes());

    // Listings that differ are different entries, and the bound holds however many there are.
    for n in 0..50 {
        client
            .get(&format!("{PRODUCTS}?q=lamp{n}&limit=5"), None)
            .await
            .expect(200);
    }
    let size = cache.size();
    assert_eq!(size.entries, 51, "{size:?}");
    assert!(size.bytes <= cache.max_bytes(), "{size:?}");
}

async fn made_up_methods_share_one_metrics_label(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let made_up = ["BREW", "X-ANYTHING-7", "PROPFINDX"];
    for method in made_up {
        let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        let response = client
            .send(client.request(method, "/api/v1/health", None))
            .await;
        assert!(response.status >= 400 && response.status < 500);
    }
    let metrics = client
        .send(client.request(Method::GET, "/metrics", None))
        .await;
    metrics.expect(200);
    for method in made_up {
        assert!(
            !metrics.text.contains(&format!("method=\"{method}\"")),
            "{method} has its own series: {}",
            metrics.text
        );
    }
    assert!(
        metrics.text.contains("method=\"OTHER\""),
        "{}",
        metrics.text
    );
}

async fn responses_carry_the_security_headers(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let id = product(&client, &admin, "LAMP-2", "Floor lamp").await;
    let (token, _) = client.register("headers").await;

    let anonymous_read = client.get(&format!("{PRODUCTS}/{id}"), None).await;
    let authenticated_read = client.get(&format!("{PRODUCTS}/{id}"), Some(&token)).await;
    let me = client.get("/api/v1/users/me", Some(&token)).await;
    let login = client.login("root@example.com", "admin-password-1").await;
    let missing = client.get("/api/v1/no-such-route", None).await;
    let refused = client.get("/api/v1/users/me", None).await;
    for (what, response) in [
        ("anonymous read", &anonymous_read),
        ("authenticated read", &authenticated_read),
        ("profile", &me),
        ("login", &login),
        ("unmatched", &missing),
        ("unauthenticated", &refused),
    ] {
        assert_eq!(
            response.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert!(
            response
                .header("content-security-policy")
                .is_some_and(|policy| policy.contains("default-src 'none'")),
            "{what}: {:?}",
            response.headers
        );
    }
    anonymous_read.expect(200);
    assert!(
        anonymous_read
            .header("cache-control")
            .is_some_and(|value| value.starts_with("public")),
        "{:?}",
        anonymous_read.headers
    );
    for (what, response) in [
        ("authenticated read", &authenticated_read),
        ("profile", &me),
        ("login", &login),
    ] {
        response.expect(200);
        assert_eq!(response.header("cache-control"), Some("no-store"), "{what}");
    }
}

async fn the_docs_page_is_self_contained(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let docs = client
        .send(client.request(Method::GET, "/api/v1/docs", None))
        .await;
    docs.expect(200);
    assert!(!docs.text.contains("<script"), "the page runs a script");
    assert!(!docs.text.contains("src="), "the page loads something");
    assert!(docs.text.contains("/api/v1/openapi.yaml"));
    assert!(docs.text.contains("/api/v1/orders/{id}/invoice"));
    assert!(
        docs.header("content-security-policy")
            .is_some_and(|policy| policy.starts_with("default-src 'none'")),
        "{:?}",
        docs.headers
    );
}

fn address(line2: Value) -> Value {
    json!({
        "line1": "1 Main St",
        "line2": line2,
        "city": "Tehran",
        "state": "Tehran",
        "postal_code": "1234567890",
        "country": "IR",
    })
}

async fn address_line2_is_validated(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let (token, _) = client.register("linetwo").await;
    let path = "/api/v1/users/me/addresses";
    for bad in [
        json!("Unit\u{0}7"),
        json!("a\u{1b}[31m"),
        json!("x".repeat(201)),
    ] {
        let refused = client.post(path, Some(&token), address(bad.clone())).await;
        refused.expect_problem(422);
        assert_eq!(refused.error_fields(), vec!["line2".to_owned()], "{bad}");
    }
    let created = client
        .post(path, Some(&token), address(json!("Unit 7")))
        .await;
    created.expect(201);
    assert_eq!(created.body["line2"], json!("Unit 7"));
    let id = created.body["id"].as_str().unwrap_or_default().to_owned();
    let refused = client
        .patch(
            &format!("{path}/{id}"),
            Some(&token),
            json!({"line2": "bad\u{7}"}),
        )
        .await;
    refused.expect_problem(422);
    let cleared = client
        .patch(&format!("{path}/{id}"), Some(&token), json!({"line2": ""}))
        .await;
    cleared.expect(200);
    assert!(cleared.body["line2"].is_null(), "{}", cleared.body);
}

async fn a_huge_search_offset_is_an_empty_page(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    product(&client, &admin, "LAMP-3", "Reading lamp").await;
    for offset in [usize::MAX, usize::MAX - 5, 1 << 40] {
        let cursor = bazaar_shared::pagination::encode_offset(offset);
        let page = client
            .get(
                &format!("{PRODUCTS}?q=lamp&limit=100&cursor={cursor}"),
                None,
            )
            .await;
        page.expect(200);
        assert_eq!(page.body["items"], json!([]), "{offset}");
        assert!(page.body["next_cursor"].is_null(), "{offset}");
    }
}
