//! One cold start: a loopback Lambda Runtime API on a fresh port, the bootstrap exec'd against
//! it, one invocation served, the times and the child's memory taken, the child killed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::oneshot;

/// What is exec'd and how: the same for every run of one function.
pub struct Launch {
    pub name: String,
    pub bootstrap: PathBuf,
    /// The app's settings plus the Lambda variables (the runtime API address is added per run).
    pub environment: BTreeMap<String, String>,
    pub event: Value,
    pub region: String,
    pub timeout: Duration,
    /// Where the child's stdout and stderr go (overwritten each run); discarded when None.
    pub log: Option<PathBuf>,
}

/// The measurements of one cold start.
#[derive(Clone, Debug)]
pub struct Sample {
    /// From exec to the first `GET .../invocation/next`: the function's own initialisation.
    pub init: Duration,
    /// From exec to the `POST .../response`.
    pub first_response: Duration,
    /// The child's `VmRSS` and `VmHWM` when its response arrived, in KiB.
    pub rss_kib: u64,
    pub hwm_kib: u64,
    /// What the function answered: an HTTP status, or the number of failed SQS records.
    pub answer: String,
}

/// How the invocation ended, as the runtime API saw it.
enum Outcome {
    Response { at: Instant, body: Bytes },
    Error { body: Bytes },
    InitError { body: Bytes },
}

struct Invocation {
    event: Value,
    request_id: String,
    function_arn: String,
    timeout: Duration,
    /// Set on the first `next`; later `next` calls wait until the child is killed.
    init_at: Option<Instant>,
    pid: Option<u32>,
    memory: Option<(u64, u64)>,
    done: Option<oneshot::Sender<Outcome>>,
}

type Shared = Arc<Mutex<Invocation>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Invocation> {
    // A panicking handler leaves the data usable: the run fails on its own terms.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Exec `launch.bootstrap` once against a fresh loopback runtime API and measure it.
pub async fn cold_start(launch: &Launch, run: usize) -> Result<Sample, String> {
    let request_id = format!("00000000-0000-4000-8000-{run:012}");
    let (done_tx, done_rx) = oneshot::channel();
    let shared: Shared = Arc::new(Mutex::new(Invocation {
        event: launch.event.clone(),
        request_id,
        function_arn: format!(
            "arn:aws:lambda:{}:123456789012:function:{}",
            launch.region, launch.name
        ),
        timeout: launch.timeout,
        init_at: None,
        pid: None,
        memory: None,
        done: Some(done_tx),
    }));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| format!("cannot bind a loopback port: {error}"))?;
    let address = listener
        .local_addr()
        .map_err(|error| format!("no local address: {error}"))?;
    let server = tokio::spawn(axum::serve(listener, routes(shared.clone())).into_future());

    let mut command = Command::new(&launch.bootstrap);
    command
        .env_clear()
        .envs(&launch.environment)
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .current_dir(launch.bootstrap.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    match &launch.log {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
            let copy = file
                .try_clone()
                .map_err(|error| format!("cannot share {}: {error}", path.display()))?;
            command.stdout(file).stderr(copy);
        }
        None => {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }

    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|error| format!("cannot exec {}: {error}", launch.bootstrap.display()))?;
    lock(&shared).pid = child.id();

    let outcome = tokio::select! {
        outcome = done_rx => outcome.map_err(|_| "the runtime API stopped".to_owned()),
        status = child.wait() => Err(match status {
            Ok(status) => format!("{} exited before answering ({status})", launch.name),
            Err(error) => format!("{} could not be awaited: {error}", launch.name),
        }),
        () = tokio::time::sleep(launch.timeout) => {
            Err(format!("{} did not answer within {:?}", launch.name, launch.timeout))
        }
    };
    // The child is only ever measured once: it is killed whatever happened.
    let _ = child.start_kill();
    let _ = child.wait().await;
    server.abort();

    let invocation = lock(&shared);
    let init_at = invocation.init_at;
    let memory = invocation.memory;
    drop(invocation);
    match outcome? {
        Outcome::Response { at, body } => {
            let init = init_at.ok_or("a response came before any `next`")?;
            let (rss_kib, hwm_kib) = memory.ok_or("the child's memory could not be read")?;
            Ok(Sample {
                init: init.duration_since(started),
                first_response: at.duration_since(started),
                rss_kib,
                hwm_kib,
                answer: answer(&body),
            })
        }
        Outcome::Error { body } => Err(format!(
            "{} reported an invocation error: {}",
            launch.name,
            String::from_utf8_lossy(&body)
        )),
        Outcome::InitError { body } => Err(format!(
            "{} reported an init error: {}",
            launch.name,
            String::from_utf8_lossy(&body)
        )),
    }
}

fn routes(shared: Shared) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(shared)
}

async fn next(State(shared): State<Shared>) -> Response {
    match first_invocation(&shared) {
        Some((headers, event)) => (headers, event).into_response(),
        // One invocation per cold start: the second `next` waits until the kill.
        None => std::future::pending().await,
    }
}

/// The headers and event of the invocation, on the first `next` only (which marks init done).
fn first_invocation(shared: &Shared) -> Option<(HeaderMap, String)> {
    let mut invocation = lock(shared);
    if invocation.init_at.is_some() {
        return None;
    }
    invocation.init_at = Some(Instant::now());
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(invocation.timeout)
        .as_millis();
    let mut headers = HeaderMap::new();
    for (name, value) in [
        (
            "lambda-runtime-aws-request-id",
            invocation.request_id.clone(),
        ),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            invocation.function_arn.clone(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    Some((headers, invocation.event.to_string()))
}

async fn response(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let mut invocation = lock(&shared);
    invocation.memory = invocation.pid.and_then(memory_kib);
    finish(&mut invocation, Outcome::Response { at, body })
}

async fn error(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    finish(&mut lock(&shared), Outcome::Error { body })
}

async fn init_error(State(shared): State<Shared>, body: Bytes) -> StatusCode {
    finish(&mut lock(&shared), Outcome::InitError { body })
}

fn finish(invocation: &mut Invocation, outcome: Outcome) -> StatusCode {
    if let Some(done) = invocation.done.take() {
        let _ = done.send(outcome);
    }
    StatusCode::ACCEPTED
}

/// `VmRSS` and `VmHWM` of `pid`, in KiB.
fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// A short description of the function's answer, so a run that "succeeded" with a 500 shows.
fn answer(body: &[u8]) -> String {
    let Ok(document) = serde_json::from_slice::<Value>(body) else {
        return "non-JSON".to_owned();
    };
    if let Some(status) = document.get("statusCode").and_then(Value::as_u64) {
        status.to_string()
    } else if let Some(failures) = document.get("batchItemFailures").and_then(Value::as_array) {
        format!("{} failed", failures.len())
    } else {
        "ok".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_name_the_http_status_or_the_failed_records() {
        assert_eq!(answer(br#"{"statusCode":404,"body":"x"}"#), "404");
        assert_eq!(
            answer(br#"{"batchItemFailures":[{"itemIdentifier":"a"}]}"#),
            "1 failed"
        );
        assert_eq!(answer(br#"{"ok":true}"#), "ok");
        assert_eq!(answer(b"<html>"), "non-JSON");
    }

    #[test]
    fn reads_this_process_memory() {
        let (rss, hwm) = memory_kib(std::process::id()).expect("own /proc status");
        assert!(rss > 0 && hwm >= rss);
    }
}
