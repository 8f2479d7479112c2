//! A queue decorator that makes the pipeline's hard cases happen on demand: every message
//! delivered several times (SQS is at-least-once), and sends that fail after the state they
//! announce was written (the process "dies" between the write and the send).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bazaar_shared::ports::{Attributes, Queue, QueueError, ReceivedMessage};

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
    async fn send(
        &self,
        queue: &str,
        body: &str,
        attributes: &Attributes,
    ) -> Result<String, QueueError> {
        if self.failing.load(Ordering::SeqCst) {
            self.failed_sends.fetch_add(1, Ordering::SeqCst);
            return Err(QueueError::Unavailable(
                "injected crash before the send".into(),
            ));
        }
        let mut last = String::new();
        for _ in 0..self.copies {
            last = self.inner.send(queue, body, attributes).await?;
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
        .expect("the queue was not wrapped");
    (server, queue)
}

/// A test server whose every message is delivered `copies` times.
pub async fn server_with_duplicating_queue(backend: Backend, copies: usize) -> TestServer {
    TestServer::start_customised(backend, 5, move |ports| {
        ports.queue = FaultyQueue::duplicating(ports.queue.clone(), copies);
    })
    .await
}

/// A state store whose transactions start failing after a number of them succeeded, as if
/// the process had died there: a run in progress stops mid-way with its state half written.
pub struct DyingStore {
    inner: Arc<dyn bazaar_shared::ports::Store>,
    /// Transactions still allowed before the "death"; negative when not armed.
    remaining: std::sync::atomic::AtomicI64,
    /// Transactions failed so far.
    pub deaths: AtomicUsize,
}

impl DyingStore {
    pub fn new(inner: Arc<dyn bazaar_shared::ports::Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            remaining: std::sync::atomic::AtomicI64::new(-1),
            deaths: AtomicUsize::new(0),
        })
    }

    /// Lets `transactions` more transactions through, then fails every one until disarmed.
    pub fn die_after(&self, transactions: i64) {
        self.remaining.store(transactions, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.remaining.store(-1, Ordering::SeqCst);
    }
}

#[async_trait]
impl bazaar_shared::ports::Store for DyingStore {
    async fn get(
        &self,
        key: &bazaar_shared::ports::Key,
    ) -> Result<Option<bazaar_shared::ports::Item>, bazaar_shared::ports::StoreError> {
        self.inner.get(key).await
    }

    async fn put(
        &self,
        item: bazaar_shared::ports::Item,
        cond: bazaar_shared::ports::Cond,
    ) -> Result<(), bazaar_shared::ports::StoreError> {
        self.inner.put(item, cond).await
    }

    async fn update(
        &self,
        key: &bazaar_shared::ports::Key,
        updates: Vec<bazaar_shared::ports::Update>,
        cond: bazaar_shared::ports::Cond,
    ) -> Result<bazaar_shared::ports::Item, bazaar_shared::ports::StoreError> {
        self.inner.update(key, updates, cond).await
    }

    async fn delete(
        &self,
        key: &bazaar_shared::ports::Key,
        cond: bazaar_shared::ports::Cond,
    ) -> Result<(), bazaar_shared::ports::StoreError> {
        self.inner.delete(key, cond).await
    }

    async fn transact(
        &self,
        ops: Vec<bazaar_shared::ports::TxOp>,
    ) -> Result<(), bazaar_shared::ports::StoreError> {
        let left = self
            .remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                (left > 0).then_some(left - 1)
            });
        if left == Err(0) {
            self.deaths.fetch_add(1, Ordering::SeqCst);
            return Err(bazaar_shared::ports::StoreError::Unavailable(
                "injected death of the process".into(),
            ));
        }
        self.inner.transact(ops).await
    }

    async fn query(
        &self,
        query: &bazaar_shared::ports::Query,
    ) -> Result<bazaar_shared::ports::Page, bazaar_shared::ports::StoreError> {
        self.inner.query(query).await
    }

    async fn get_many(
        &self,
        keys: &[bazaar_shared::ports::Key],
    ) -> Result<Vec<bazaar_shared::ports::Item>, bazaar_shared::ports::StoreError> {
        self.inner.get_many(keys).await
    }
}

/// A test server whose store transactions can be made to fail; returns the switch too.
pub async fn server_with_dying_store(backend: Backend) -> (TestServer, Arc<DyingStore>) {
    let slot: Arc<Mutex<Option<Arc<DyingStore>>>> = Arc::default();
    let filled = slot.clone();
    let server = TestServer::start_customised(backend, 5, move |ports| {
        let dying = DyingStore::new(ports.store.clone());
        ports.store = dying.clone();
        if let Ok(mut slot) = filled.lock() {
            *slot = Some(dying);
        }
    })
    .await;
    let store = slot
        .lock()
        .ok()
        .and_then(|slot| slot.clone())
        .expect("the store was not wrapped");
    (server, store)
}
