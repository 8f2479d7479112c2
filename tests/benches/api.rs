//! Latency of the user endpoints through the local server on the embedded backend, measured
//! over real HTTP on loopback. Run with `cargo bench -p bazaar-tests` (or `infra/bench.sh`,
//! which also reports the size of a packaged function).
//!
//! Reported: `POST /users/register` (dominated by Argon2id at OWASP parameters),
//! `GET /users/me` (token check + one store read), sequentially and with concurrent clients,
//! and the catalogue reads `GET /products` and `GET /products/{id}` with a cold in-process
//! cache (cleared before every request: store reads each time) and a warm one.

use std::time::{Duration, Instant};

use bazaar_tests::http::Client;
use bazaar_tests::{Backend, TestServer};
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>, wall: Duration) {
    samples.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<38} n={:<6} p50={:>7.2} ms  p90={:>7.2} ms  p99={:>7.2} ms  max={:>7.2} ms  {:>8.0} req/s",
        samples.len(),
        ms(percentile(&samples, 0.50)),
        ms(percentile(&samples, 0.90)),
        ms(percentile(&samples, 0.99)),
        ms(samples.last().copied().unwrap_or_default()),
        samples.len() as f64 / wall.as_secs_f64(),
    );
}

async fn timed<F: std::future::Future<Output = u16>>(future: F) -> Duration {
    let started = Instant::now();
    let status = future.await;
    assert!(status < 300, "request failed with {status}");
    started.elapsed()
}

async fn register(client: &Client, n: usize) -> u16 {
    client
        .post(
            "/api/v1/users/register",
            None,
            json!({
                "email": format!("bench{n}@example.com"),
                "username": format!("bench{n}"),
                "password": "benchmark-password",
                "password_confirm": "benchmark-password",
            }),
        )
        .await
        .status
}

async fn me_concurrently(client: &Client, token: &str, clients: usize, per_client: usize) {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let client = client.clone();
        let token = token.to_owned();
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                samples.push(
                    timed(async { client.get("/api/v1/users/me", Some(&token)).await.status })
                        .await,
                );
            }
            samples
        });
    }
    let mut samples = Vec::new();
    while let Some(batch) = tasks.join_next().await {
        samples.extend(batch.unwrap_or_default());
    }
    report(
        &format!("GET /users/me ({clients} clients)"),
        samples,
        started.elapsed(),
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let server = TestServer::start(Backend::Embedded).await;
    let client = Client::new(&server);
    let (token, _) = client.register("warmup").await;
    for _ in 0..50 {
        client
            .get("/api/v1/users/me", Some(&token))
            .await
            .expect(200);
    }

    let started = Instant::now();
    let mut samples = Vec::new();
    for n in 0..30 {
        samples.push(timed(register(&client, n)).await);
    }
    report(
        "POST /users/register (sequential)",
        samples,
        started.elapsed(),
    );

    let started = Instant::now();
    let mut samples = Vec::new();
    for _ in 0..2000 {
        samples
            .push(timed(async { client.get("/api/v1/users/me", Some(&token)).await.status }).await);
    }
    report("GET /users/me (sequential)", samples, started.elapsed());
    me_concurrently(&client, &token, 8, 500).await;
    catalogue(&server, &client).await;
    server.stop().await;
}

async fn catalogue(server: &TestServer, client: &Client) {
    let admin = client.admin(server).await;
    let mut ids = Vec::new();
    for n in 0..200 {
        let created = client
            .post(
                "/api/v1/products",
                Some(&admin),
                json!({
                    "sku": format!("BENCH-{n}"),
                    "name": format!("Bench product {n}"),
                    "description": "a product for measuring reads",
                    "price": {"amount": 1000 + n, "currency": "USD"},
                    "stock": n % 5,
                }),
            )
            .await;
        created.expect(201);
        ids.push(created.body["id"].as_str().unwrap_or_default().to_owned());
    }
    for (label, cold) in [("cold cache", true), ("warm cache", false)] {
        let started = Instant::now();
        let mut samples = Vec::new();
        for n in 0..1000 {
            if cold {
                server.app.cache().clear();
            }
            let path = format!("/api/v1/products/{}", ids[n % ids.len()]);
            samples.push(timed(async { client.get(&path, None).await.status }).await);
        }
        report(
            &format!("GET /products/{{id}} ({label})"),
            samples,
            started.elapsed(),
        );

        let started = Instant::now();
        let mut samples = Vec::new();
        for n in 0..300 {
            if cold {
                server.app.cache().clear();
            }
            let path = [
                "/api/v1/products?limit=20",
                "/api/v1/products?sort=price_asc&in_stock=true",
                "/api/v1/products?q=bench&sort=name",
            ][n % 3];
            samples.push(timed(async { client.get(path, None).await.status }).await);
        }
        report(
            &format!("GET /products, 3 kinds ({label})"),
            samples,
            started.elapsed(),
        );
    }
}
