//! A queue decorator that makes the pipeline's hard cases happen on demand: every message
//! delivered several times (SQS is at-least-once), and sends that fail after the state they
//! announce was written (the process "dies" between the write and the send).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bazaar_shared::ports::{Queue, QueueError, ReceivedMessage};

use crate::{Backend, TestServer};

pub struct FaultyQueue {
    inner: Arc<dyn Queue>,
    /// How many times each message is sent.
    copies: usize,
    failing: AtomicBool,
    pub failed_sends: AtomicUsize,
}

impl FaultyQueue {
    /// Sends every message `copies` times.
    pub fn duplicating(inner: Arc<dyn Queue>, copies: usize) -> Arc<Self> {
        Arc::new(Self {
            inner,
            copies,
            failing: AtomicBool::new(false),
            failed_sends: AtomicUsize::new(0),
        })
    }

    /// Fails every send while [`FaultyQueue::fail`] is on.
    pub fn failing(inner: Arc<dyn Queue>) -> Arc<Self> {
        Self::duplicating(inner, 1)
    }

    pub fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
}

#[async_trait]
impl Queue for FaultyQueue {
    async fn send(&self, queue: &str, body: &str) -> Result<String, QueueError> {
        if self.failing.load(Ordering::SeqCst) {
            self.failed_sends.fetch_add(1, Ordering::SeqCst);
            return Err(QueueError::Unavailable(
                "injected crash before the send".into(),
            ));
        }
        let mut last = String::new();
        for _ in 0..self.copies {
            last = self.inner.send(queue, body).await?;
        }
        Ok(last)
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.inner.receive(queue, max, visibility).await
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), QueueError> {
        self.inner.delete(queue, receipt_handle).await
    }
}

/// A test server whose queue sends can be made to fail; returns the switch too.
pub async fn server_with_failing_queue(backend: Backend) -> (TestServer, Arc<FaultyQueue>) {
    let slot: Arc<Mutex<Option<Arc<FaultyQueue>>>> = Arc::default();
    let filled = slot.clone();
    let server = TestServer::start_customised(backend, 5, move |ports| {
        let failing = FaultyQueue::failing(ports.queue.clone());
        ports.queue = failing.clone();
        if let Ok(mut slot) = filled.lock() {
            *slot = Some(failing);
        }
    })
    .await;
    let queue = slot
        .lock()
        .ok()
        .and_then(|slot| slot.clone())
        .unwrap_or_else(|| panic!("the queue was not wrapped"));
    (server, queue)
}

/// A test server whose every message is delivered `copies` times.
pub async fn server_with_duplicating_queue(backend: Backend, copies: usize) -> TestServer {
    TestServer::start_customised(backend, 5, move |ports| {
        ports.queue = FaultyQueue::duplicating(ports.queue.clone(), copies);
    })
    .await
}
