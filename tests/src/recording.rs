//! A state store that records every call made to it before passing it on to the real one:
//! which operation, on which index and partitions, with which keys. Tests use it to show what
//! a request reads (for example, that listing products only queries index partitions and
//! reads products by key, with a bounded number of calls).
//!
//! The `Store` trait is an `async_trait` one; its methods are written here in their expanded
//! form (a boxed, `Send` future) so that this crate needs no macro dependency.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bazaar_shared::ports::store::tx_key;
use bazaar_shared::ports::{Cond, Index, Item, Key, Page, Query, Store, StoreError, TxOp, Update};

/// The future every `Store` method returns once `async_trait` has expanded it.
type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// One call made to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// `get`, `put`, `update`, `delete`, `transact`, `query` or `get_many`.
    pub operation: &'static str,
    /// The index a `query` read (`None` for the other operations, which use the primary key).
    pub index: Option<Index>,
    /// The partitions touched: the queried partition, or the partition of each key.
    pub partitions: Vec<String>,
    /// The keys read or written (empty for a `query`).
    pub keys: Vec<Key>,
    /// A `query`'s sort-key prefix.
    pub sort_prefix: Option<String>,
}

impl Call {
    fn keyed(operation: &'static str, keys: Vec<Key>) -> Self {
        Self {
            operation,
            index: None,
            partitions: keys.iter().map(|key| key.pk.clone()).collect(),
            keys,
            sort_prefix: None,
        }
    }
}

/// Wraps a store and records the calls made through it.
pub struct RecordingStore {
    inner: Arc<dyn Store>,
    calls: Mutex<Vec<Call>>,
}

impl RecordingStore {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: Mutex::new(Vec::new()),
        })
    }

    /// The store being recorded.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    fn record(&self, call: Call) {
        self.lock().push(call);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Call>> {
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The calls recorded so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().clone()
    }

    /// The calls recorded so far, forgetting them.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.lock())
    }

    /// Forgets the calls recorded so far.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

impl Store for RecordingStore {
    fn get<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 Key,
    ) -> Boxed<'async_trait, Option<Item>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.record(Call::keyed("get", vec![key.clone()]));
            self.inner.get(key).await
        })
    }

    fn put<'life0, 'async_trait>(&'life0 self, item: Item, cond: Cond) -> Boxed<'async_trait, ()>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.record(Call::keyed("put", Key::of(&item).into_iter().collect()));
            self.inner.put(item, cond).await
        })
    }

    fn update<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 Key,
        updates: Vec<Update>,
        cond: Cond,
    ) -> Boxed<'async_trait, Item>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.record(Call::keyed("update", vec![key.clone()]));
            self.inner.update(key, updates, cond).await
        })
    }

    fn delete<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 Key,
        cond: Cond,
    ) -> Boxed<'async_trait, ()>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.record(Call::keyed("delete", vec![key.clone()]));
            self.inner.delete(key, cond).await
        })
    }

    fn transact<'life0, 'async_trait>(&'life0 self, ops: Vec<TxOp>) -> Boxed<'async_trait, ()>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.record(Call::keyed(
                "transact",
                ops.iter().filter_map(tx_key).collect(),
            ));
            self.inner.transact(ops).await
        })
    }

    fn query<'life0, 'life1, 'async_trait>(
        &'life0 self,
        query: &'life1 Query,
    ) -> Boxed<'async_trait, Page>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.record(Call {
                operation: "query",
                index: Some(query.index),
                partitions: vec![query.partition.clone()],
                keys: Vec::new(),
                sort_prefix: query.sort_prefix.clone(),
            });
            self.inner.query(query).await
        })
    }

    fn get_many<'life0, 'life1, 'async_trait>(
        &'life0 self,
        keys: &'life1 [Key],
    ) -> Boxed<'async_trait, Vec<Item>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.record(Call::keyed("get_many", keys.to_vec()));
            self.inner.get_many(keys).await
        })
    }
}
