//! Latency of the user endpoints through the local server on the embedded backend, measured
//! over real HTTP on loopback. Run with `cargo bench -p bazaar-tests` (or `infra/bench.sh`,
//! which also reports the size of a packaged function).
//!
//! Reported: `POST /users/register` (dominated by Argon2id at OWASP parameters) and
//! `GET /users/me` (token check + one store read), sequentially and with concurrent clients.

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
    server.stop().await;
}
