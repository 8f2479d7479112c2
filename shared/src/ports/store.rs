//! The state store port, with DynamoDB's semantics: items addressed by a partition and sort
//! key, conditional single-item writes, all-or-nothing transactions over several items, and
//! queries by partition key (with a sort-key prefix) on the table or a secondary index.
//!
//! Items are JSON objects. The reserved attributes [`PK`], [`SK`], [`GSI1PK`] and [`GSI1SK`]
//! hold the keys; see `docs/data-model.md` for the access patterns they serve. There is
//! deliberately no scan: every read path names a partition.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One stored item: a JSON object including its key attributes.
pub type Item = Map<String, Value>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1PK: &str = "gsi1pk";
pub const GSI1SK: &str = "gsi1sk";

/// The table's time-to-live attribute: an item whose `expires_at` (Unix seconds, a number)
/// has passed is removed (by DynamoDB's TTL, and by the embedded store's sweep).
pub const EXPIRES_AT: &str = "expires_at";

/// DynamoDB's limit on the number of items in one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// The primary key of an item.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// The key of a stored item, if it has one.
    pub fn of(item: &Item) -> Option<Self> {
        Some(Self::new(item.get(PK)?.as_str()?, item.get(SK)?.as_str()?))
    }
}

/// A condition on the item currently stored under a key (as DynamoDB condition expressions).
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    /// No condition.
    Always,
    /// An item exists under the key.
    Exists,
    /// No item exists under the key.
    NotExists,
    /// The attribute exists and equals the value.
    Eq(String, Value),
    /// The attribute exists and is a number at least this large.
    AtLeast(String, i64),
    /// The attribute exists and is a number at most this large.
    AtMost(String, i64),
    /// Every condition holds.
    All(Vec<Cond>),
}

impl Cond {
    pub fn eq(attribute: &str, value: impl Into<Value>) -> Self {
        Self::Eq(attribute.to_owned(), value.into())
    }

    pub fn at_least(attribute: &str, bound: i64) -> Self {
        Self::AtLeast(attribute.to_owned(), bound)
    }

    pub fn at_most(attribute: &str, bound: i64) -> Self {
        Self::AtMost(attribute.to_owned(), bound)
    }

    /// Evaluates the condition against the item currently stored (if any). Both adapters'
    /// semantics are defined by this function; the DynamoDB adapter translates it instead.
    pub fn holds_for(&self, current: Option<&Item>) -> bool {
        match self {
            Cond::Always => true,
            Cond::Exists => current.is_some(),
            Cond::NotExists => current.is_none(),
            Cond::Eq(attribute, expected) => current
                .and_then(|item| item.get(attribute))
                .is_some_and(|actual| json_equal(actual, expected)),
            Cond::AtLeast(attribute, bound) => current
                .and_then(|item| item.get(attribute))
                .and_then(Value::as_f64)
                .is_some_and(|actual| actual >= *bound as f64),
            Cond::AtMost(attribute, bound) => current
                .and_then(|item| item.get(attribute))
                .and_then(Value::as_f64)
                .is_some_and(|actual| actual <= *bound as f64),
            Cond::All(all) => all.iter().all(|cond| cond.holds_for(current)),
        }
    }
}

/// Equality as DynamoDB sees it: numbers compare by value (`1` equals `1.0`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// One change to an item in an update.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    Set(String, Value),
    /// Atomically add to a number (a missing attribute counts as 0).
    Add(String, i64),
    Remove(String),
}

impl Update {
    pub fn set(attribute: &str, value: impl Into<Value>) -> Self {
        Self::Set(attribute.to_owned(), value.into())
    }

    pub fn add(attribute: &str, delta: i64) -> Self {
        Self::Add(attribute.to_owned(), delta)
    }

    pub fn remove(attribute: &str) -> Self {
        Self::Remove(attribute.to_owned())
    }

    /// Applies the change to an item in memory (the embedded adapter's update).
    pub fn apply(&self, item: &mut Item) {
        match self {
            Update::Set(attribute, value) => {
                item.insert(attribute.clone(), value.clone());
            }
            Update::Add(attribute, delta) => {
                let current = item.get(attribute).and_then(Value::as_i64).unwrap_or(0);
                item.insert(attribute.clone(), Value::from(current + delta));
            }
            Update::Remove(attribute) => {
                item.remove(attribute);
            }
        }
    }
}

/// One operation of a transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum TxOp {
    Put {
        item: Item,
        cond: Cond,
    },
    Update {
        key: Key,
        updates: Vec<Update>,
        cond: Cond,
    },
    Delete {
        key: Key,
        cond: Cond,
    },
    /// A condition on an item that the transaction does not change.
    Check {
        key: Key,
        cond: Cond,
    },
}

/// Which key a query reads by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Index {
    /// The table's own `pk`/`sk`.
    Primary,
    /// The global secondary index `gsi1` (`gsi1pk`/`gsi1sk`).
    Gsi1,
}

impl Index {
    /// The attribute names of the index's partition and sort keys.
    pub fn key_attributes(self) -> (&'static str, &'static str) {
        match self {
            Index::Primary => (PK, SK),
            Index::Gsi1 => (GSI1PK, GSI1SK),
        }
    }
}

/// A query: one partition of the table or of an index, optionally narrowed to sort keys that
/// start with a prefix, read in sort-key order, one page at a time.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub index: Index,
    pub partition: String,
    pub sort_prefix: Option<String>,
    /// Sort keys from the first to the second, both included (DynamoDB's `BETWEEN`). A query
    /// has a prefix or a range, not both.
    pub sort_between: Option<(String, String)>,
    pub ascending: bool,
    pub limit: usize,
    /// Where the previous page stopped ([`Page::last_key`]); exclusive.
    pub start_after: Option<Item>,
}

impl Query {
    pub fn partition(index: Index, partition: impl Into<String>) -> Self {
        Self {
            index,
            partition: partition.into(),
            sort_prefix: None,
            sort_between: None,
            ascending: true,
            limit: 100,
            start_after: None,
        }
    }

    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.sort_prefix = Some(prefix.into());
        self
    }

    pub fn between(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.sort_between = Some((from.into(), to.into()));
        self
    }

    pub fn descending(mut self) -> Self {
        self.ascending = false;
        self
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub fn start_after(mut self, key: Option<Item>) -> Self {
        self.start_after = key;
        self
    }
}

/// One page of query results.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    /// The key attributes of the last item read, when more may follow.
    pub last_key: Option<Item>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StoreError {
    /// A single-item write's condition did not hold; nothing was written.
    #[error("the condition of the write did not hold")]
    ConditionFailed,
    /// A transaction's conditions did not hold for the operations at these positions;
    /// nothing was written.
    #[error("transaction cancelled: conditions failed at {failed:?}")]
    TransactionCancelled { failed: Vec<usize> },
    /// A concurrent transaction touched the same items; nothing was written, retrying may work.
    #[error("transaction conflicted with another; retry")]
    TransactionConflict,
    /// The request itself was wrong (too many items, a malformed item, ...).
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// The store could not be reached or failed.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
}

/// The state store. See the module documentation for the semantics every adapter honours.
#[async_trait]
pub trait Store: Send + Sync {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;

    /// Writes the whole item (replacing any item under its key) if `cond` holds.
    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError>;

    /// Changes attributes of the item under `key` if `cond` holds, creating it when missing
    /// (as DynamoDB's `UpdateItem`); returns the item as written.
    async fn update(&self, key: &Key, updates: Vec<Update>, cond: Cond)
    -> Result<Item, StoreError>;

    /// Removes the item under `key` if `cond` holds (removing nothing is not an error).
    async fn delete(&self, key: &Key, cond: Cond) -> Result<(), StoreError>;

    /// Applies every operation or none (at most [`MAX_TRANSACTION_ITEMS`], one per key).
    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError>;

    async fn query(&self, query: &Query) -> Result<Page, StoreError>;

    /// Reads several items at once (DynamoDB's `BatchGetItem`, strongly consistent): the
    /// items found, in no particular order; missing keys are simply absent. At most
    /// [`MAX_BATCH_GET`] keys, each once.
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError>;
}

/// DynamoDB's limit on the number of keys in one `BatchGetItem`.
pub const MAX_BATCH_GET: usize = 100;

/// The checks every adapter makes before a batch read.
pub fn validate_batch_get(keys: &[Key]) -> Result<(), StoreError> {
    if keys.len() > MAX_BATCH_GET {
        return Err(StoreError::Invalid(format!(
            "a batch read holds at most {MAX_BATCH_GET} keys, not {}",
            keys.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = keys.iter().find(|key| !seen.insert(*key)) {
        return Err(StoreError::Invalid(format!(
            "the batch reads {}/{} twice",
            twice.pk, twice.sk
        )));
    }
    Ok(())
}

/// The checks every adapter makes before a query.
pub fn validate_query(query: &Query) -> Result<(), StoreError> {
    if query.sort_prefix.is_some() && query.sort_between.is_some() {
        return Err(StoreError::Invalid(
            "a query narrows the sort key by a prefix or by a range, not both".to_owned(),
        ));
    }
    if let Some((from, to)) = &query.sort_between
        && from > to
    {
        return Err(StoreError::Invalid(format!(
            "an empty sort-key range {from:?}..={to:?}"
        )));
    }
    Ok(())
}

/// The key of the item a transaction operation touches.
pub fn tx_key(op: &TxOp) -> Option<Key> {
    match op {
        TxOp::Put { item, .. } => Key::of(item),
        TxOp::Update { key, .. } | TxOp::Delete { key, .. } | TxOp::Check { key, .. } => {
            Some(key.clone())
        }
    }
}

/// The checks every adapter makes before running a transaction.
pub fn validate_transaction(ops: &[TxOp]) -> Result<(), StoreError> {
    if ops.is_empty() || ops.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::Invalid(format!(
            "a transaction holds 1 to {MAX_TRANSACTION_ITEMS} operations, not {}",
            ops.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for op in ops {
        let key =
            tx_key(op).ok_or_else(|| StoreError::Invalid("a put without pk and sk".to_owned()))?;
        if !seen.insert(key.clone()) {
            return Err(StoreError::Invalid(format!(
                "the transaction touches {}/{} twice",
                key.pk, key.sk
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(value: Value) -> Item {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn conditions_evaluate_like_dynamodb() {
        let stock = item(json!({"pk": "P", "sk": "S", "stock": 3, "state": "open"}));
        assert!(Cond::Exists.holds_for(Some(&stock)));
        assert!(!Cond::NotExists.holds_for(Some(&stock)));
        assert!(Cond::NotExists.holds_for(None));
        assert!(Cond::at_least("stock", 3).holds_for(Some(&stock)));
        assert!(!Cond::at_least("stock", 4).holds_for(Some(&stock)));
        assert!(!Cond::at_least("missing", 0).holds_for(Some(&stock)));
        assert!(Cond::at_most("stock", 3).holds_for(Some(&stock)));
        assert!(!Cond::at_most("stock", 2).holds_for(Some(&stock)));
        assert!(Cond::eq("stock", 3.0).holds_for(Some(&stock)));
        assert!(!Cond::eq("state", "closed").holds_for(Some(&stock)));
        assert!(!Cond::eq("state", "open").holds_for(None));
        assert!(
            !Cond::All(vec![Cond::Exists, Cond::eq("state", "closed")]).holds_for(Some(&stock))
        );
    }

    #[test]
    fn updates_apply_in_memory() {
        let mut stock = item(json!({"pk": "P", "sk": "S", "stock": 3, "tmp": 1}));
        Update::add("stock", -1).apply(&mut stock);
        Update::add("fresh", 5).apply(&mut stock);
        Update::set("state", "open").apply(&mut stock);
        Update::remove("tmp").apply(&mut stock);
        assert_eq!(
            Value::Object(stock),
            json!({"pk": "P", "sk": "S", "stock": 2, "fresh": 5, "state": "open"})
        );
    }

    #[test]
    fn transactions_are_bounded_and_touch_each_key_once() {
        let put = |sk: &str| TxOp::Put {
            item: item(json!({"pk": "P", "sk": sk})),
            cond: Cond::Always,
        };
        assert!(validate_transaction(&[]).is_err());
        assert!(validate_transaction(&[put("a"), put("b")]).is_ok());
        assert!(validate_transaction(&[put("a"), put("a")]).is_err());
        let too_many: Vec<TxOp> = (0..=MAX_TRANSACTION_ITEMS)
            .map(|i| put(&i.to_string()))
            .collect();
        assert!(validate_transaction(&too_many).is_err());
    }
}
