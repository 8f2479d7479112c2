//! A real HTTP receiver on loopback for webhook and Slack deliveries: it records every
//! request it gets, and answers 500 on paths under `/fail` (bar the test delivery that
//! activates a subscription) and on paths under `/refuse` (the test delivery included).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use bazaar_shared::notifications::verification::SUBSCRIPTION_TEST;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

pub struct Receiver {
    pub address: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                let path = uri.path().to_owned();
                let test = headers.get("x-bazaar-event").and_then(|v| v.to_str().ok())
                    == Some(SUBSCRIPTION_TEST);
                let failing = (path.starts_with("/fail") && !test) || path.starts_with("/refuse");
                if let Ok(mut log) = log.lock() {
                    log.push(Received {
                        path,
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                }
                if failing {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the receiver");
        let address = listener.local_addr().expect("read the receiver's address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            received,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The deliveries received on `path` so far: every request but the test deliveries
    /// that activate a subscription (see [`Receiver::tests_on`]).
    pub fn on(&self, path: &str) -> Vec<Received> {
        self.all_on(path)
            .into_iter()
            .filter(|r| r.header("x-bazaar-event") != Some(SUBSCRIPTION_TEST))
            .collect()
    }

    /// The test deliveries received on `path` so far.
    pub fn tests_on(&self, path: &str) -> Vec<Received> {
        self.all_on(path)
            .into_iter()
            .filter(|r| r.header("x-bazaar-event") == Some(SUBSCRIPTION_TEST))
            .collect()
    }

    /// Every request received on `path` so far.
    pub fn all_on(&self, path: &str) -> Vec<Received> {
        self.received
            .lock()
            .map(|log| log.iter().filter(|r| r.path == path).cloned().collect())
            .unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
