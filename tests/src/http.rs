//! A small HTTP client for black-box tests: JSON in, status + headers + JSON out.

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::TestServer;

pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The `field`s listed in a problem's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|error| error["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts the status, printing the body when it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts a problem+json answer with this status.
    #[track_caller]
    pub fn expect_problem(&self, status: u16) -> &Self {
        self.expect(status);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "not a problem: {}",
            self.text
        );
        assert_eq!(self.body["status"], json!(status), "{}", self.text);
        assert!(
            self.body["type"].is_string() && self.body["title"].is_string(),
            "{}",
            self.text
        );
        self
    }
}

#[derive(Clone)]
pub struct Client {
    base_url: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(server: &TestServer) -> Self {
        Self {
            base_url: server.base_url.clone(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Response {
        let response = request.send().await.expect("send the request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Response {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let builder = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut builder = self.request(method, path, token);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        self.send(builder).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.call(Method::DELETE, path, token, None).await
    }

    /// `POST /users/login` with a JSON body.
    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/v1/users/login",
            None,
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Registers `name` (`name@example.com`, password `password-<name>`); returns the token
    /// and the user's id.
    pub async fn register(&self, name: &str) -> (String, String) {
        let response = self
            .post(
                "/api/v1/users/register",
                None,
                json!({
                    "email": format!("{name}@example.com"),
                    "username": name,
                    "password": format!("password-{name}"),
                    "password_confirm": format!("password-{name}"),
                }),
            )
            .await;
        response.expect(201);
        (
            response.body["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            response.body["user"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    }

    /// Creates an admin through the bootstrap path and logs in.
    pub async fn admin(&self, server: &TestServer) -> String {
        server
            .app
            .users()
            .create_admin(
                "root@example.com",
                "admin-password-1",
                "root",
                bazaar_shared::users::PromoteExisting::No,
            )
            .await
            .expect("create the admin");
        let response = self.login("root@example.com", "admin-password-1").await;
        response.expect(200);
        response.body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// An order placed and paid by [`Client::order_and_pay`].
pub struct PaidOrder {
    pub id: String,
    /// The `x-request-id` of the `POST /orders` that placed it.
    pub placing_request: String,
}

impl Client {
    /// As a shopper does it: the admin (`admin` token) lists a new product `sku` at 19.99 USD,
    /// the customer (`token`) orders one to the address `address_id` and pays by `card`; returns
    /// once the order's invoice is issued (the payment and invoice consumers ran).
    pub async fn order_and_pay(
        &self,
        admin: &str,
        token: &str,
        address_id: &str,
        sku: &str,
        card: &str,
    ) -> PaidOrder {
        let product = self
            .post(
                "/api/v1/products",
                Some(admin),
                json!({"sku": sku, "name": "Lamp", "price": {"amount": 1999, "currency": "USD"}, "stock": 5}),
            )
            .await;
        product.expect(201);
        let placed = self
            .post(
                "/api/v1/orders",
                Some(token),
                json!({"items": [{"product_id": product.body["id"], "quantity": 1}], "shipping_address_id": address_id}),
            )
            .await;
        placed.expect(201);
        let id = placed.body["id"].as_str().unwrap_or_default().to_owned();
        let placing_request = placed
            .header("x-request-id")
            .map(str::to_owned)
            .expect("a request id on the answer");
        self.post(
            &format!("/api/v1/orders/{id}/pay"),
            Some(token),
            json!({"method": "card", "card_number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"}),
        )
        .await
        .expect(202);
        let path = format!("/api/v1/orders/{id}/invoice");
        eventually("the invoice is issued", || async {
            self.get(&path, Some(token)).await.status == 200
        })
        .await;
        PaidOrder {
            id,
            placing_request,
        }
    }
}

/// Runs `count` requests at once (each made by `request(n)`) and returns their statuses.
pub async fn concurrently<F, Fut>(count: usize, request: F) -> Vec<u16>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Response> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..count {
        tasks.spawn(request(n));
    }
    let mut statuses = Vec::with_capacity(count);
    while let Some(response) = tasks.join_next().await {
        statuses.push(response.map(|r| r.status).unwrap_or_default());
    }
    statuses.sort_unstable();
    statuses
}

/// How many of `statuses` are `status`.
pub fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// Polls `check` every 100 ms until it holds; fails the test after 30 s, naming `what`.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}
