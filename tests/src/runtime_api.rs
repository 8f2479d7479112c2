//! A loopback stand-in for the Lambda Runtime API: hands a function's bootstrap the events
//! given, one per `next`, and keeps what it answered, so a test can run a bootstrap as Lambda
//! runs it. After the last event `next` waits, as Lambda's does between invocations.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use serde_json::Value;

/// The invocation id of the n-th event (from 1).
pub fn invocation_id(n: usize) -> String {
    format!("invocation-{n}")
}

#[derive(Default)]
struct Shared {
    events: VecDeque<Value>,
    handed_out: usize,
    answers: Vec<Answer>,
}

/// What the function answered to one invocation, or to its start.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The invocation id, or `init` for an initialisation error.
    pub invocation: String,
    pub failed: bool,
    pub body: Value,
}

pub struct RuntimeApi {
    pub address: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Serves `events` on a free loopback port.
    pub async fn start(events: Vec<Value>) -> Self {
        let shared = Arc::new(Mutex::new(Shared {
            events: events.into(),
            ..Shared::default()
        }));
        let routes = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(|state, path, body| answer(state, path, body, false)),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(|state, path, body| answer(state, path, body, true)),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the runtime API");
        let address = listener
            .local_addr()
            .expect("read the runtime API's address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, routes).await;
        });
        Self {
            address,
            shared,
            server,
        }
    }

    /// Waits (at most `timeout`) until the function has answered `count` times; returns the
    /// answers so far either way.
    pub async fn answers(&self, count: usize, timeout: Duration) -> Vec<Answer> {
        let deadline = Instant::now() + timeout;
        loop {
            let answers = lock(&self.shared).answers.clone();
            if answers.len() >= count || Instant::now() >= deadline {
                return answers;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn next(State(shared): State<Arc<Mutex<Shared>>>) -> (HeaderMap, String) {
    let (event, n) = loop {
        let taken = {
            let mut shared = lock(&shared);
            let event = shared.events.pop_front();
            if event.is_some() {
                shared.handed_out += 1;
            }
            event.map(|event| (event, shared.handed_out))
        };
        match taken {
            Some(taken) => break taken,
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |now| now.as_millis() + 60_000);
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", invocation_id(n)),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:probe".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".to_owned(),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (headers, event.to_string())
}

async fn answer(
    State(shared): State<Arc<Mutex<Shared>>>,
    Path(id): Path<String>,
    body: String,
    failed: bool,
) -> StatusCode {
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    lock(&shared).answers.push(Answer {
        invocation: id,
        failed,
        body,
    });
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Arc<Mutex<Shared>>>, body: String) -> StatusCode {
    lock(&shared).answers.push(Answer {
        invocation: "init".to_owned(),
        failed: true,
        body: Value::String(body),
    });
    StatusCode::ACCEPTED
}
