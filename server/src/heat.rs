//! Partition heat: a store decorator that counts, per second, the reads and writes each
//! partition key (of the table and of `gsi1`) and each item receives, for the partition-heat
//! model (`infra/heat_model.py`, run by `infra/load.sh` with `LOAD_HEAT=1`).
//!
//! Counted as DynamoDB counts capacity, one unit per item: a `GetItem` is one read of its
//! partition, a `BatchGetItem` one per key, a `Query` one per item it returns (at least one); a
//! write (`PutItem`, `UpdateItem`, `DeleteItem`, each operation of a transaction) is one write
//! of its partition and its item, and one more of the `gsi1` partition the item is listed in
//! (known from the item written, or from an earlier read or write of the same item: an index
//! entry is rewritten whenever its item changes). A transaction's condition checks are reads.
//! Sizes are not weighed: every item counts as one unit, which undercounts large items.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bazaar_shared::ports::store::{GSI1PK, tx_key};
use bazaar_shared::ports::{Cond, Index, Item, Key, Page, Query, Store, StoreError, TxOp, Update};
use serde_json::{Value, json};

/// Reads and writes of one key in one second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    reads: u64,
    writes: u64,
}

/// What was counted: per (key, unix second), for partitions (`gsi1:` prefixed for the index)
/// and items (`<pk>|<sk>`), and the `gsi1` partition each item was last seen listed in.
#[derive(Default)]
struct Tally {
    partitions: HashMap<(String, i64), Counts>,
    items: HashMap<(String, i64), Counts>,
    listed_in: HashMap<Key, String>,
}

/// The counts, shared between the decorator and whoever writes them out.
#[derive(Clone, Default)]
pub struct Heat {
    tally: Arc<Mutex<Tally>>,
}

impl Heat {
    pub fn new() -> Self {
        Self::default()
    }

    /// `store`, counted.
    pub fn wrap(&self, store: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(HeatStore {
            inner: store,
            heat: self.clone(),
        })
    }

    fn with<T>(&self, change: impl FnOnce(&mut Tally) -> T) -> T {
        change(&mut self.tally.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn read(&self, partition: String, units: u64) {
        let second = now();
        self.with(|tally| {
            tally
                .partitions
                .entry((partition, second))
                .or_default()
                .reads += units;
        });
    }

    fn write(&self, key: &Key, listed: Option<String>) {
        let second = now();
        self.with(|tally| {
            tally
                .partitions
                .entry((key.pk.clone(), second))
                .or_default()
                .writes += 1;
            let item = format!("{}|{}", key.pk, key.sk);
            tally.items.entry((item, second)).or_default().writes += 1;
            if let Some(index) = listed {
                tally.listed_in.insert(key.clone(), index);
            }
            if let Some(index) = tally.listed_in.get(key).cloned() {
                let entry = tally.partitions.entry((format!("gsi1:{index}"), second));
                entry.or_default().writes += 1;
            }
        });
    }

    /// Remembers where read items are listed, so that their later updates count there too.
    fn seen(&self, items: &[Item]) {
        self.with(|tally| {
            for item in items {
                if let (Some(key), Some(index)) = (Key::of(item), listed_in(item)) {
                    tally.listed_in.insert(key, index);
                }
            }
        });
    }

    /// The counts as JSON: `{"partitions": [{"key", "seconds": {"<unix>": [reads, writes]}}],
    /// "items": [...]}`, the form `infra/heat_model.py` reads.
    pub fn to_json(&self) -> Value {
        self.with(|tally| {
            json!({
                "partitions": per_key(&tally.partitions),
                "items": per_key(&tally.items),
            })
        })
    }

    /// Writes [`Heat::to_json`] to `path`.
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_json().to_string())
    }
}

fn per_key(counts: &HashMap<(String, i64), Counts>) -> Vec<Value> {
    let mut by_key: HashMap<&str, serde_json::Map<String, Value>> = HashMap::new();
    for ((key, second), count) in counts {
        by_key
            .entry(key.as_str())
            .or_default()
            .insert(second.to_string(), json!([count.reads, count.writes]));
    }
    by_key
        .into_iter()
        .map(|(key, seconds)| json!({"key": key, "seconds": seconds}))
        .collect()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn listed_in(item: &Item) -> Option<String> {
    item.get(GSI1PK).and_then(Value::as_str).map(str::to_owned)
}

fn index_partition(query: &Query) -> String {
    match query.index {
        Index::Primary => query.partition.clone(),
        Index::Gsi1 => format!("gsi1:{}", query.partition),
    }
}

struct HeatStore {
    inner: Arc<dyn Store>,
    heat: Heat,
}

#[async_trait]
impl Store for HeatStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.heat.read(key.pk.clone(), 1);
        let found = self.inner.get(key).await?;
        self.heat.seen(found.as_slice());
        Ok(found)
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        if let Some(key) = Key::of(&item) {
            self.heat.write(&key, listed_in(&item));
        }
        self.inner.put(item, cond).await
    }

    async fn update(
        &self,
        key: &Key,
        updates: Vec<Update>,
        cond: Cond,
    ) -> Result<Item, StoreError> {
        self.heat.write(key, None);
        let updated = self.inner.update(key, updates, cond).await?;
        self.heat.seen(std::slice::from_ref(&updated));
        Ok(updated)
    }

    async fn delete(&self, key: &Key, cond: Cond) -> Result<(), StoreError> {
        self.heat.write(key, None);
        self.inner.delete(key, cond).await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError> {
        for op in &ops {
            match (op, tx_key(op)) {
                (TxOp::Check { .. }, Some(key)) => self.heat.read(key.pk, 1),
                (TxOp::Put { item, .. }, Some(key)) => self.heat.write(&key, listed_in(item)),
                (_, Some(key)) => self.heat.write(&key, None),
                (_, None) => {}
            }
        }
        self.inner.transact(ops).await
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        let page = self.inner.query(query).await?;
        let units = page.items.len().max(1) as u64;
        self.heat.read(index_partition(query), units);
        self.heat.seen(&page.items);
        Ok(page)
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        for key in keys {
            self.heat.read(key.pk.clone(), 1);
        }
        let items = self.inner.get_many(keys).await?;
        self.heat.seen(&items);
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bazaar_embedded::store::EmbeddedStore;

    fn item(value: Value) -> Item {
        value.as_object().cloned().unwrap_or_default()
    }

    fn counts(json: &Value, section: &str, key: &str) -> (u64, u64) {
        json[section]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["key"] == key)
            .flat_map(|entry| entry["seconds"].as_object().cloned().unwrap_or_default())
            .fold((0, 0), |(reads, writes), (_, pair)| {
                (
                    reads + pair[0].as_u64().unwrap_or(0),
                    writes + pair[1].as_u64().unwrap_or(0),
                )
            })
    }

    #[tokio::test]
    async fn reads_and_writes_are_counted_per_partition_item_and_index() {
        let dir = std::env::temp_dir().join(format!("bazaar-heat-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let inner: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(&dir.join("state.sqlite3")).expect("open a store"));
        let heat = Heat::new();
        let store = heat.wrap(inner);
        let profile =
            item(json!({"pk": "USER#1", "sk": "PROFILE", "gsi1pk": "USERS#3", "gsi1sk": "USER#1"}));
        store.put(profile, Cond::NotExists).await.expect("put");
        let key = Key::new("USER#1", "PROFILE");
        store
            .update(&key, vec![Update::set("name", "Ada")], Cond::Exists)
            .await
            .expect("update");
        store.get(&key).await.expect("get");
        store
            .transact(vec![
                TxOp::Check {
                    key: Key::new("PRODUCT#9", "PRODUCT"),
                    cond: Cond::NotExists,
                },
                TxOp::Put {
                    item: item(json!({"pk": "OUTBOX#2", "sk": "EVENT#1#q"})),
                    cond: Cond::NotExists,
                },
            ])
            .await
            .expect("transact");
        let query = Query::partition(Index::Gsi1, "USERS#3");
        assert_eq!(store.query(&query).await.expect("query").items.len(), 1);

        let counted = heat.to_json();
        assert_eq!(counts(&counted, "partitions", "USER#1"), (1, 2));
        // The put and the update both rewrite the index entry; the query reads it.
        assert_eq!(counts(&counted, "partitions", "gsi1:USERS#3"), (1, 2));
        assert_eq!(counts(&counted, "partitions", "PRODUCT#9"), (1, 0));
        assert_eq!(counts(&counted, "partitions", "OUTBOX#2"), (0, 1));
        assert_eq!(counts(&counted, "items", "USER#1|PROFILE"), (0, 2));
        let _ = std::fs::remove_dir_all(dir);
    }
}
