//! The embedded store with a gate that makes a race happen on demand: the next few reads of
//! one key wait for each other, so that concurrent changes all start from the same version
//! and all but one lose their transaction. It also counts the transactions whose conditions
//! failed, so a test can show that a race really was lost and retried.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bazaar_embedded::EmbeddedStore;
use bazaar_shared::ports::{Cond, Item, Key, Page, Query, Store, StoreError, TxOp, Update};
use tokio::sync::Barrier;

/// How long a gated read waits for the others before going on alone (the test then fails
/// on its own assertions rather than hanging).
const GATE_WAIT: Duration = Duration::from_secs(2);

struct Gate {
    key: Key,
    /// Reads still to be held.
    left: usize,
    barrier: std::sync::Arc<Barrier>,
}

pub struct RaceStore {
    inner: EmbeddedStore,
    gate: Mutex<Option<Gate>>,
    cancelled: AtomicUsize,
}

impl RaceStore {
    pub fn new(inner: EmbeddedStore) -> Self {
        Self {
            inner,
            gate: Mutex::new(None),
            cancelled: AtomicUsize::new(0),
        }
    }

    /// The next `readers` reads of `key` return only once all of them have been made.
    pub fn hold_reads(&self, key: Key, readers: usize) {
        *self.lock() = Some(Gate {
            key,
            left: readers,
            barrier: std::sync::Arc::new(Barrier::new(readers)),
        });
    }

    /// How many transactions were cancelled by a failed condition so far.
    pub fn cancelled_transactions(&self) -> usize {
        self.cancelled.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Gate>> {
        self.gate
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The barrier a read of `key` must pass, if it is one of the held reads.
    fn held(&self, key: &Key) -> Option<std::sync::Arc<Barrier>> {
        let mut gate = self.lock();
        let open = gate.as_mut()?;
        if open.key != *key || open.left == 0 {
            return None;
        }
        open.left -= 1;
        Some(open.barrier.clone())
    }
}

#[async_trait]
impl Store for RaceStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let read = self.inner.get(key).await;
        // Read first, then wait: every held reader has seen the same item before any writes.
        if let Some(barrier) = self.held(key) {
            let _ = tokio::time::timeout(GATE_WAIT, barrier.wait()).await;
        }
        read
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        self.inner.put(item, cond).await
    }

    async fn update(
        &self,
        key: &Key,
        updates: Vec<Update>,
        cond: Cond,
    ) -> Result<Item, StoreError> {
        self.inner.update(key, updates, cond).await
    }

    async fn delete(&self, key: &Key, cond: Cond) -> Result<(), StoreError> {
        self.inner.delete(key, cond).await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError> {
        let result = self.inner.transact(ops).await;
        if matches!(result, Err(StoreError::TransactionCancelled { .. })) {
            self.cancelled.fetch_add(1, Ordering::SeqCst);
        }
        result
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.inner.query(query).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.inner.get_many(keys).await
    }
}
