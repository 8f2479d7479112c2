//! Queue decorators that make the pipeline's hard cases happen on demand: every message
//! delivered several times (SQS is at-least-once), and sends that fail after the state they
//! announce was written (the process "dies" between the write and the send).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bazaar_shared::ports::{Queue, QueueError, ReceivedMessage};

/// Sends every message `copies` times.
pub struct DuplicatingQueue {
    inner: Arc<dyn Queue>,
    copies: usize,
}

impl DuplicatingQueue {
    pub fn wrap(inner: Arc<dyn Queue>, copies: usize) -> Arc<Self> {
        Arc::new(Self { inner, copies })
    }
}

#[async_trait]
impl Queue for DuplicatingQueue {
    async fn send(&self, queue: &str, body: &str) -> Result<String, QueueError> {
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

/// Fails every send while switched on, counting the failures.
pub struct FailingQueue {
    inner: Arc<dyn Queue>,
    pub failing: AtomicBool,
    pub failed_sends: AtomicUsize,
}

impl FailingQueue {
    pub fn wrap(inner: Arc<dyn Queue>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            failing: AtomicBool::new(false),
            failed_sends: AtomicUsize::new(0),
        })
    }

    pub fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
}

#[async_trait]
impl Queue for FailingQueue {
    async fn send(&self, queue: &str, body: &str) -> Result<String, QueueError> {
        if self.failing.load(Ordering::SeqCst) {
            self.failed_sends.fetch_add(1, Ordering::SeqCst);
            return Err(QueueError::Unavailable(
                "injected crash before the send".into(),
            ));
        }
        self.inner.send(queue, body).await
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
