//! The state store in SQLite, with DynamoDB's semantics.
//!
//! One table holds every item: its key columns, the `gsi1` key columns (NULL when the item
//! lacks either attribute, so that, as in a sparse DynamoDB index, it is not in the index) and
//! the whole item as JSON. Every write is one `BEGIN IMMEDIATE` transaction that reads the
//! current item, evaluates the condition with [`Cond::holds_for`] and writes, so conditional
//! writes are atomic even when another process (an admin CLI) opens the same file.
//!
//! SQLite compares `TEXT` with its default `BINARY` collation, byte by byte over UTF-8, which
//! is the order DynamoDB gives string sort keys; the queries rely on it.

use std::path::Path;

use async_trait::async_trait;
use bazaar_shared::ports::store::{
    Cond, GSI1PK, GSI1SK, Index, Item, Key, PK, Page, Query, SK, Store, StoreError, TxOp, Update,
    tx_key, validate_batch_get, validate_query, validate_transaction,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};
use serde_json::Value;

use super::Sqlite;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    gsi1pk TEXT,
    gsi1sk TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
);
CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk)
    WHERE gsi1pk IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_expiry ON items (json_extract(body, '$.expires_at'))
    WHERE json_extract(body, '$.expires_at') IS NOT NULL;
";

/// How often the embedded store deletes expired items, as DynamoDB's TTL does (DynamoDB takes
/// up to a few days; code that relies on expiry checks the time itself either way).
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// Items deleted per purge transaction, so that writers never wait long behind a purge.
const PURGE_BATCH: usize = 500;

/// The state store on one SQLite file. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Sqlite,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the SQLite database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Sqlite::open(path, SCHEMA).map_err(StoreError::Unavailable)?;
        Ok(Self { db })
    }

    /// Deletes every item whose `expires_at` (Unix seconds, a number) is before `now`: the
    /// embedded model of DynamoDB's TTL, so login counters, idempotency records and consumed
    /// markers do not pile up for ever. Returns how many were deleted.
    pub async fn purge_expired(&self, now: i64) -> Result<usize, StoreError> {
        self.call(move |connection| purge(connection, now)).await
    }

    /// Purges expired items every `every` on the current tokio runtime, for as long as any
    /// other handle on this store is alive.
    pub fn spawn_purger(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let weak = self.db.downgrade();
        tokio::spawn(async move {
            loop {
                let Some(db) = weak.upgrade() else { break };
                let now = chrono::Utc::now().timestamp();
                match (Self { db }).purge_expired(now).await {
                    Ok(0) => {}
                    Ok(purged) => tracing::debug!(purged, "expired items purged"),
                    Err(error) => tracing::warn!(%error, "purging expired items failed"),
                }
                tokio::time::sleep(every).await;
            }
        })
    }

    async fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.db.call(StoreError::Unavailable, work).await
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let key = key.clone();
        self.call(move |connection| read(connection, &key)).await
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        let key = Row::of(&item)?.key;
        self.call(move |connection| {
            let transaction = immediate(connection)?;
            check(&cond, read(&transaction, &key)?.as_ref())?;
            write(&transaction, &item)?;
            transaction.commit().map_err(sql_error)
        })
        .await
    }

    async fn update(
        &self,
        key: &Key,
        updates: Vec<Update>,
        cond: Cond,
    ) -> Result<Item, StoreError> {
        reject_key_updates(&updates)?;
        let key = key.clone();
        self.call(move |connection| {
            let transaction = immediate(connection)?;
            let current = read(&transaction, &key)?;
            check(&cond, current.as_ref())?;
            let item = updated(&key, current, &updates);
            write(&transaction, &item)?;
            transaction.commit().map_err(sql_error)?;
            Ok(item)
        })
        .await
    }

    async fn delete(&self, key: &Key, cond: Cond) -> Result<(), StoreError> {
        let key = key.clone();
        self.call(move |connection| {
            let transaction = immediate(connection)?;
            check(&cond, read(&transaction, &key)?.as_ref())?;
            remove(&transaction, &key)?;
            transaction.commit().map_err(sql_error)
        })
        .await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError> {
        validate_transaction(&ops)?;
        for op in &ops {
            validate_op(op)?;
        }
        self.call(move |connection| run_transaction(connection, ops))
            .await
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        validate_query(query)?;
        let plan = QueryPlan::new(query)?;
        let (index, limit) = (query.index, query.limit);
        self.call(move |connection| {
            let mut items = plan.run(connection)?;
            let more = items.len() > limit;
            items.truncate(limit);
            let last_key = match items.last() {
                Some(last) if more => Some(key_attributes(last, index)),
                _ => None,
            };
            Ok(Page { items, last_key })
        })
        .await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        validate_batch_get(keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys = keys.to_vec();
        self.call(move |connection| read_many(connection, &keys))
            .await
    }
}

/// Reads every key in one read transaction, so the items come from one snapshot of the
/// database even while another process writes (DynamoDB's batch read gives no more).
fn read_many(connection: &mut Connection, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
    let transaction = connection.transaction().map_err(sql_error)?;
    let mut items = Vec::with_capacity(keys.len());
    {
        let mut statement = transaction
            .prepare_cached("SELECT body FROM items WHERE pk = ?1 AND sk = ?2")
            .map_err(sql_error)?;
        for key in keys {
            let body: Option<String> = statement
                .query_row(params![key.pk, key.sk], |row| row.get(0))
                .optional()
                .map_err(sql_error)?;
            if let Some(body) = body {
                items.push(parse(&body)?);
            }
        }
    }
    transaction.commit().map_err(sql_error)?;
    Ok(items)
}

/// The columns an item is stored under, checked as DynamoDB checks key attributes: the
/// primary key must be two non-empty strings, and the index keys, when present, too.
struct Row {
    key: Key,
    gsi1: Option<(String, String)>,
}

impl Row {
    fn of(item: &Item) -> Result<Self, StoreError> {
        let key = Key::new(key_string(item, PK)?, key_string(item, SK)?);
        let gsi1 = match (
            optional_key_string(item, GSI1PK)?,
            optional_key_string(item, GSI1SK)?,
        ) {
            (Some(pk), Some(sk)) => Some((pk, sk)),
            // Like a sparse GSI: an item lacking either index key is simply not in the index.
            _ => None,
        };
        Ok(Self { key, gsi1 })
    }
}

fn key_string(item: &Item, attribute: &str) -> Result<String, StoreError> {
    optional_key_string(item, attribute)?
        .ok_or_else(|| StoreError::Invalid(format!("the item has no {attribute} attribute")))
}

fn optional_key_string(item: &Item, attribute: &str) -> Result<Option<String>, StoreError> {
    match item.get(attribute) {
        None => Ok(None),
        Some(Value::String(text)) if !text.is_empty() => Ok(Some(text.clone())),
        Some(other) => Err(StoreError::Invalid(format!(
            "the key attribute {attribute} must be a non-empty string, not {other}"
        ))),
    }
}

/// DynamoDB refuses an update that changes the item's primary key; so do we, rather than
/// silently storing an item whose body disagrees with its row's key.
fn reject_key_updates(updates: &[Update]) -> Result<(), StoreError> {
    let touches_key = updates.iter().any(|update| {
        let (Update::Set(attribute, _) | Update::Add(attribute, _) | Update::Remove(attribute)) =
            update;
        attribute == PK || attribute == SK
    });
    if touches_key {
        Err(StoreError::Invalid(
            "an update cannot change pk or sk".to_owned(),
        ))
    } else {
        Ok(())
    }
}

/// Request errors are reported before any condition is looked at, as DynamoDB validates a
/// request before running it.
fn validate_op(op: &TxOp) -> Result<(), StoreError> {
    match op {
        TxOp::Put { item, .. } => Row::of(item).map(drop),
        TxOp::Update { updates, .. } => reject_key_updates(updates),
        TxOp::Delete { .. } | TxOp::Check { .. } => Ok(()),
    }
}

/// The item an update writes: the current one (or a fresh one holding just the key) changed.
fn updated(key: &Key, current: Option<Item>, updates: &[Update]) -> Item {
    let mut item = current.unwrap_or_else(|| {
        let mut fresh = Item::new();
        fresh.insert(PK.to_owned(), Value::from(key.pk.clone()));
        fresh.insert(SK.to_owned(), Value::from(key.sk.clone()));
        fresh
    });
    for update in updates {
        update.apply(&mut item);
    }
    item
}

/// All conditions are evaluated against the state before the transaction; only if every one
/// holds is anything written, as in DynamoDB's `TransactWriteItems`.
fn purge(connection: &mut Connection, now: i64) -> Result<usize, StoreError> {
    let mut purged = 0;
    loop {
        let deleted = connection
            .execute(
                "DELETE FROM items WHERE rowid IN (SELECT rowid FROM items
                    WHERE json_extract(body, '$.expires_at') IS NOT NULL
                    AND json_extract(body, '$.expires_at') < ?1
                    AND typeof(json_extract(body, '$.expires_at')) IN ('integer', 'real')
                    LIMIT ?2)",
                params![now, PURGE_BATCH as i64],
            )
            .map_err(sql_error)?;
        purged += deleted;
        if deleted < PURGE_BATCH {
            return Ok(purged);
        }
    }
}

fn run_transaction(connection: &mut Connection, ops: Vec<TxOp>) -> Result<(), StoreError> {
    let transaction = immediate(connection)?;
    let mut currents = Vec::with_capacity(ops.len());
    for op in &ops {
        currents.push(read(&transaction, &op_key(op)?)?);
    }
    let failed: Vec<usize> = ops
        .iter()
        .zip(&currents)
        .enumerate()
        .filter(|(_, (op, current))| !op_cond(op).holds_for(current.as_ref()))
        .map(|(position, _)| position)
        .collect();
    if !failed.is_empty() {
        return Err(StoreError::TransactionCancelled { failed });
    }
    for (op, current) in ops.into_iter().zip(currents) {
        apply_op(&transaction, op, current)?;
    }
    transaction.commit().map_err(sql_error)
}

fn op_key(op: &TxOp) -> Result<Key, StoreError> {
    tx_key(op).ok_or_else(|| StoreError::Invalid("a put without pk and sk".to_owned()))
}

fn op_cond(op: &TxOp) -> &Cond {
    match op {
        TxOp::Put { cond, .. }
        | TxOp::Update { cond, .. }
        | TxOp::Delete { cond, .. }
        | TxOp::Check { cond, .. } => cond,
    }
}

fn apply_op(connection: &Connection, op: TxOp, current: Option<Item>) -> Result<(), StoreError> {
    match op {
        TxOp::Put { item, .. } => write(connection, &item),
        TxOp::Update { key, updates, .. } => write(connection, &updated(&key, current, &updates)),
        TxOp::Delete { key, .. } => remove(connection, &key),
        TxOp::Check { .. } => Ok(()),
    }
}

/// `BEGIN IMMEDIATE` takes the write lock up front, so the item read at the start of a write
/// cannot change before the write commits (a deferred transaction could fail to upgrade).
fn immediate(connection: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_error)
}

fn check(cond: &Cond, current: Option<&Item>) -> Result<(), StoreError> {
    if cond.holds_for(current) {
        Ok(())
    } else {
        Err(StoreError::ConditionFailed)
    }
}

fn read(connection: &Connection, key: &Key) -> Result<Option<Item>, StoreError> {
    let body: Option<String> = connection
        .query_row(
            "SELECT body FROM items WHERE pk = ?1 AND sk = ?2",
            params![key.pk, key.sk],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql_error)?;
    body.as_deref().map(parse).transpose()
}

fn write(connection: &Connection, item: &Item) -> Result<(), StoreError> {
    let row = Row::of(item)?;
    let body = serde_json::to_string(item)
        .map_err(|error| StoreError::Invalid(format!("the item cannot be serialised: {error}")))?;
    let (gsi1pk, gsi1sk) = row.gsi1.unzip();
    connection
        .execute(
            "INSERT OR REPLACE INTO items (pk, sk, gsi1pk, gsi1sk, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![row.key.pk, row.key.sk, gsi1pk, gsi1sk, body],
        )
        .map(drop)
        .map_err(sql_error)
}

fn remove(connection: &Connection, key: &Key) -> Result<(), StoreError> {
    connection
        .execute(
            "DELETE FROM items WHERE pk = ?1 AND sk = ?2",
            params![key.pk, key.sk],
        )
        .map(drop)
        .map_err(sql_error)
}

fn parse(body: &str) -> Result<Item, StoreError> {
    serde_json::from_str(body).map_err(|error| {
        StoreError::Unavailable(format!("a stored item is not valid JSON: {error}"))
    })
}

fn sql_error(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// The key attributes of an item as a query on `index` reports them in [`Page::last_key`]:
/// the table's key, plus the index's key for an index (as DynamoDB's `LastEvaluatedKey`).
fn key_attributes(item: &Item, index: Index) -> Item {
    let names: &[&str] = match index {
        Index::Primary => &[PK, SK],
        Index::Gsi1 => &[PK, SK, GSI1PK, GSI1SK],
    };
    names
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), item.get(*name)?.clone())))
        .collect()
}

/// The SQL for one page of a query, with its parameters.
struct QueryPlan {
    sql: String,
    parameters: Vec<SqlValue>,
}

impl QueryPlan {
    fn new(query: &Query) -> Result<Self, StoreError> {
        if query.limit == 0 {
            return Err(StoreError::Invalid(
                "a query's limit must be at least 1".to_owned(),
            ));
        }
        // Rows are ordered by the index's sort key, then by the primary key so that ties on a
        // GSI sort key still have one stable order, which pagination needs.
        let (partition_column, order): (&str, &[&str]) = match query.index {
            Index::Primary => ("pk", &["sk"]),
            Index::Gsi1 => ("gsi1pk", &["gsi1sk", "pk", "sk"]),
        };
        let mut plan = Self {
            sql: format!("SELECT body FROM items WHERE {partition_column} = ?"),
            parameters: vec![SqlValue::Text(query.partition.clone())],
        };
        if let Some(prefix) = &query.sort_prefix {
            plan.narrow_to_prefix(order[0], prefix);
        }
        if let Some((from, to)) = &query.sort_between {
            plan.narrow_to_range(order[0], from, to);
        }
        if let Some(start) = &query.start_after {
            plan.resume_after(query, order, start)?;
        }
        let direction = if query.ascending { "ASC" } else { "DESC" };
        let order_by: Vec<String> = order
            .iter()
            .map(|column| format!("{column} {direction}"))
            .collect();
        plan.sql += &format!(" ORDER BY {} LIMIT ?", order_by.join(", "));
        // One row more than the page tells whether another page follows.
        let fetch = i64::try_from(query.limit.saturating_add(1)).unwrap_or(i64::MAX);
        plan.parameters.push(SqlValue::Integer(fetch));
        Ok(plan)
    }

    /// A range rather than `LIKE` or `substr`, so that the index serves it: the keys starting
    /// with the prefix are exactly those at least the prefix and below its successor.
    fn narrow_to_prefix(&mut self, column: &str, prefix: &str) {
        self.sql += &format!(" AND {column} >= ?");
        self.parameters.push(SqlValue::Text(prefix.to_owned()));
        if let Some(successor) = prefix_successor(prefix) {
            self.sql += &format!(" AND {column} < ?");
            self.parameters.push(SqlValue::Text(successor));
        }
    }

    /// Both bounds included, as DynamoDB's `BETWEEN`; the pagination condition and the order
    /// apply on top, so a descending or resumed query stays inside the range.
    fn narrow_to_range(&mut self, column: &str, from: &str, to: &str) {
        self.sql += &format!(" AND {column} >= ? AND {column} <= ?");
        self.parameters.push(SqlValue::Text(from.to_owned()));
        self.parameters.push(SqlValue::Text(to.to_owned()));
    }

    /// Exclusive start: rows strictly after (or, descending, before) the previous page's last.
    fn resume_after(
        &mut self,
        query: &Query,
        order: &[&str],
        start: &Item,
    ) -> Result<(), StoreError> {
        let (partition_attribute, _) = query.index.key_attributes();
        if let Some(partition) = start.get(partition_attribute)
            && partition.as_str() != Some(query.partition.as_str())
        {
            return Err(StoreError::Invalid(
                "start_after belongs to another partition".to_owned(),
            ));
        }
        let comparison = if query.ascending { ">" } else { "<" };
        let placeholders = vec!["?"; order.len()].join(", ");
        self.sql += &format!(" AND ({}) {comparison} ({placeholders})", order.join(", "));
        for column in order {
            let value = start.get(*column).and_then(Value::as_str).ok_or_else(|| {
                StoreError::Invalid(format!("start_after lacks the string attribute {column}"))
            })?;
            self.parameters.push(SqlValue::Text(value.to_owned()));
        }
        Ok(())
    }

    fn run(&self, connection: &Connection) -> Result<Vec<Item>, StoreError> {
        let mut statement = connection.prepare_cached(&self.sql).map_err(sql_error)?;
        let bodies = statement
            .query_map(params_from_iter(self.parameters.iter()), |row| {
                row.get::<_, String>(0)
            })
            .map_err(sql_error)?;
        bodies
            .map(|body| parse(&body.map_err(sql_error)?))
            .collect()
    }
}

/// The least string greater than every string that starts with `prefix`, or `None` when
/// there is none. UTF-8's byte order is code point order, so incrementing the last code point
/// (skipping the surrogate gap, carrying past U+10FFFF) gives it, and it is valid UTF-8,
/// which bumping the last byte would not be.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = next_char(last) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn next_char(c: char) -> Option<char> {
    match c {
        '\u{D7FF}' => Some('\u{E000}'),
        char::MAX => None,
        _ => char::from_u32(u32::from(c) + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempDir;
    use serde_json::json;

    fn item(value: Value) -> Item {
        value.as_object().cloned().expect("a JSON object")
    }

    fn open(dir: &TempDir) -> EmbeddedStore {
        EmbeddedStore::open(&dir.path().join("state.sqlite3")).expect("open the store")
    }

    fn sort_keys(page: &Page, attribute: &str) -> Vec<String> {
        page.items
            .iter()
            .map(|item| item[attribute].as_str().expect("a string key").to_owned())
            .collect()
    }

    /// Reads a whole query page by page, checking that every page but the last is full.
    async fn all_pages(store: &EmbeddedStore, query: Query) -> (Vec<Item>, usize) {
        let limit = query.limit;
        let mut items = Vec::new();
        let mut pages = 0;
        let mut start = None;
        loop {
            let page = store
                .query(&query.clone().start_after(start))
                .await
                .expect("query");
            pages += 1;
            assert!(page.items.len() <= limit);
            let done = page.last_key.is_none();
            if !done {
                assert_eq!(page.items.len(), limit, "a page with a last_key is full");
            }
            start = page.last_key;
            items.extend(page.items);
            if done {
                return (items, pages);
            }
            assert!(pages < 100, "pagination does not terminate");
        }
    }

    #[tokio::test]
    async fn expired_items_are_purged_and_the_rest_kept() {
        let dir = TempDir::new("purge");
        let store = open(&dir);
        let now = 1_800_000_000_i64;
        let items = [
            json!({"pk": "LOGIN#a", "sk": "W#1", "expires_at": now - 1}),
            json!({"pk": "LOGIN#b", "sk": "W#1", "expires_at": (now - 10) as f64 + 0.5}),
            json!({"pk": "LOGIN#c", "sk": "W#1", "expires_at": now + 60}),
            json!({"pk": "LOGIN#d", "sk": "W#1", "expires_at": now}),
            json!({"pk": "USER#1", "sk": "PROFILE"}),
            json!({"pk": "ODD#1", "sk": "X", "expires_at": "yesterday"}),
        ];
        for value in items {
            store.put(item(value), Cond::Always).await.expect("put");
        }
        for n in 0..(PURGE_BATCH + 3) {
            let value = json!({"pk": format!("IDEMPOTENCY#{n}"), "sk": "KEY", "expires_at": 5});
            store.put(item(value), Cond::Always).await.expect("put");
        }
        let purged = store.purge_expired(now).await.expect("purge");
        assert_eq!(purged, PURGE_BATCH + 3 + 2);
        for (pk, kept) in [
            ("LOGIN#a", false),
            ("LOGIN#b", false),
            ("LOGIN#c", true),
            ("LOGIN#d", true),
            ("IDEMPOTENCY#0", false),
        ] {
            let sk = if pk.starts_with("IDEMPOTENCY") {
                "KEY"
            } else {
                "W#1"
            };
            let found = store.get(&Key::new(pk, sk)).await.expect("get");
            assert_eq!(found.is_some(), kept, "{pk}");
        }
        assert!(
            store
                .get(&Key::new("USER#1", "PROFILE"))
                .await
                .expect("get")
                .is_some()
        );
        assert!(
            store
                .get(&Key::new("ODD#1", "X"))
                .await
                .expect("get")
                .is_some()
        );
        assert_eq!(store.purge_expired(now).await.expect("purge"), 0);
    }

    #[tokio::test]
    async fn the_purger_runs_in_the_background_until_the_store_is_dropped() {
        let dir = TempDir::new("purger");
        let store = open(&dir);
        let expired = json!({"pk": "CONSUMED#1", "sk": "X", "expires_at": 1});
        store.put(item(expired), Cond::Always).await.expect("put");
        let purger = store.spawn_purger(std::time::Duration::from_millis(20));
        let mut gone = false;
        for _ in 0..200 {
            if store
                .get(&Key::new("CONSUMED#1", "X"))
                .await
                .expect("get")
                .is_none()
            {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(gone, "the expired item was never purged");
        drop(store);
        tokio::time::timeout(std::time::Duration::from_secs(5), purger)
            .await
            .expect("the purger outlived its store")
            .expect("the purger panicked");
    }

    #[tokio::test]
    async fn put_honours_conditions() {
        let dir = TempDir::new("store-put");
        let store = open(&dir);
        let first = item(json!({"pk": "P", "sk": "S", "v": 1}));
        store
            .put(first.clone(), Cond::NotExists)
            .await
            .expect("first put");
        assert_eq!(
            store
                .put(item(json!({"pk": "P", "sk": "S", "v": 2})), Cond::NotExists)
                .await,
            Err(StoreError::ConditionFailed)
        );
        assert_eq!(
            store.get(&Key::new("P", "S")).await.expect("get"),
            Some(first)
        );

        let second = item(json!({"pk": "P", "sk": "S", "v": 2}));
        store
            .put(second.clone(), Cond::eq("v", 1))
            .await
            .expect("conditional replace");
        assert_eq!(
            store.get(&Key::new("P", "S")).await.expect("get"),
            Some(second)
        );
        assert_eq!(
            store
                .put(item(json!({"pk": "P", "sk": "T"})), Cond::Exists)
                .await,
            Err(StoreError::ConditionFailed)
        );
        assert_eq!(store.get(&Key::new("P", "T")).await.expect("get"), None);
    }

    #[tokio::test]
    async fn put_rejects_items_without_string_keys() {
        let dir = TempDir::new("store-invalid");
        let store = open(&dir);
        for bad in [
            json!({"pk": "P"}),
            json!({"pk": "P", "sk": 1}),
            json!({"pk": "", "sk": "S"}),
        ] {
            let result = store.put(item(bad.clone()), Cond::Always).await;
            assert!(
                matches!(result, Err(StoreError::Invalid(_))),
                "{bad} accepted: {result:?}"
            );
        }
        let bad_index = item(json!({"pk": "P", "sk": "S", "gsi1pk": 7, "gsi1sk": "x"}));
        assert!(matches!(
            store.put(bad_index, Cond::Always).await,
            Err(StoreError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn update_creates_changes_and_checks_conditions() {
        let dir = TempDir::new("store-update");
        let store = open(&dir);
        let key = Key::new("PRODUCT#1", "STOCK");

        let created = store
            .update(
                &key,
                vec![Update::add("stock", 5), Update::set("state", "open")],
                Cond::Always,
            )
            .await
            .expect("create by update");
        assert_eq!(
            Value::Object(created),
            json!({"pk": "PRODUCT#1", "sk": "STOCK", "stock": 5, "state": "open"})
        );

        let taken = store
            .update(
                &key,
                vec![Update::add("stock", -3)],
                Cond::AtLeast("stock".into(), 3),
            )
            .await
            .expect("take three");
        assert_eq!(taken["stock"], json!(2));
        assert_eq!(
            store
                .update(
                    &key,
                    vec![Update::add("stock", -3)],
                    Cond::AtLeast("stock".into(), 3)
                )
                .await,
            Err(StoreError::ConditionFailed)
        );
        let stored = store.get(&key).await.expect("get").expect("the item");
        assert_eq!(stored["stock"], json!(2), "a failed update writes nothing");

        let missing = Key::new("PRODUCT#2", "STOCK");
        assert_eq!(
            store
                .update(&missing, vec![Update::add("stock", 1)], Cond::Exists)
                .await,
            Err(StoreError::ConditionFailed)
        );
        assert_eq!(store.get(&missing).await.expect("get"), None);

        assert!(matches!(
            store
                .update(&key, vec![Update::set("sk", "OTHER")], Cond::Always)
                .await,
            Err(StoreError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn update_maintains_the_index_columns() {
        let dir = TempDir::new("store-update-index");
        let store = open(&dir);
        let key = Key::new("ORDER#1", "META");
        store
            .update(
                &key,
                vec![
                    Update::set("gsi1pk", "USER#1"),
                    Update::set("gsi1sk", "ORDER#1"),
                ],
                Cond::Always,
            )
            .await
            .expect("index the order");
        let by_user = Query::partition(Index::Gsi1, "USER#1");
        assert_eq!(store.query(&by_user).await.expect("query").items.len(), 1);

        store
            .update(&key, vec![Update::Remove("gsi1pk".into())], Cond::Exists)
            .await
            .expect("unindex the order");
        assert!(store.query(&by_user).await.expect("query").items.is_empty());
    }

    #[tokio::test]
    async fn delete_is_conditional_and_tolerates_missing_items() {
        let dir = TempDir::new("store-delete");
        let store = open(&dir);
        let key = Key::new("P", "S");
        store
            .put(
                item(json!({"pk": "P", "sk": "S", "state": "open"})),
                Cond::Always,
            )
            .await
            .expect("put");

        assert_eq!(
            store.delete(&key, Cond::eq("state", "closed")).await,
            Err(StoreError::ConditionFailed)
        );
        assert!(store.get(&key).await.expect("get").is_some());
        store
            .delete(&key, Cond::eq("state", "open"))
            .await
            .expect("delete");
        assert_eq!(store.get(&key).await.expect("get"), None);

        store
            .delete(&key, Cond::Always)
            .await
            .expect("deleting nothing is fine");
        assert_eq!(
            store.delete(&key, Cond::Exists).await,
            Err(StoreError::ConditionFailed)
        );
    }

    #[tokio::test]
    async fn a_failing_transaction_writes_nothing_and_names_the_failures() {
        let dir = TempDir::new("store-tx-fail");
        let store = open(&dir);
        store
            .put(
                item(json!({"pk": "P", "sk": "A", "stock": 1})),
                Cond::Always,
            )
            .await
            .expect("put");
        store
            .put(
                item(json!({"pk": "P", "sk": "C", "state": "open"})),
                Cond::Always,
            )
            .await
            .expect("put");

        let touches_c_twice = store
            .transact(vec![
                TxOp::Delete {
                    key: Key::new("P", "C"),
                    cond: Cond::Always,
                },
                TxOp::Check {
                    key: Key::new("P", "C"),
                    cond: Cond::Exists,
                },
            ])
            .await;
        assert!(
            matches!(touches_c_twice, Err(StoreError::Invalid(_))),
            "{touches_c_twice:?}"
        );
        assert!(store.get(&Key::new("P", "C")).await.expect("get").is_some());

        let result = store
            .transact(vec![
                TxOp::Update {
                    key: Key::new("P", "A"),
                    updates: vec![Update::add("stock", -1)],
                    cond: Cond::AtLeast("stock".into(), 1),
                },
                TxOp::Put {
                    item: item(json!({"pk": "P", "sk": "B"})),
                    cond: Cond::Exists,
                },
                TxOp::Delete {
                    key: Key::new("P", "C"),
                    cond: Cond::Always,
                },
                TxOp::Check {
                    key: Key::new("P", "D"),
                    cond: Cond::Exists,
                },
            ])
            .await;
        assert_eq!(
            result,
            Err(StoreError::TransactionCancelled { failed: vec![1, 3] })
        );
        let a = store
            .get(&Key::new("P", "A"))
            .await
            .expect("get")
            .expect("A");
        assert_eq!(a["stock"], json!(1), "the update did not happen");
        assert_eq!(store.get(&Key::new("P", "B")).await.expect("get"), None);
        assert!(
            store.get(&Key::new("P", "C")).await.expect("get").is_some(),
            "the delete did not happen"
        );
    }

    #[tokio::test]
    async fn a_succeeding_transaction_applies_every_operation() {
        let dir = TempDir::new("store-tx-ok");
        let store = open(&dir);
        store
            .put(
                item(json!({"pk": "P", "sk": "A", "stock": 1})),
                Cond::Always,
            )
            .await
            .expect("put");
        store
            .put(item(json!({"pk": "P", "sk": "C"})), Cond::Always)
            .await
            .expect("put");
        store
            .put(
                item(json!({"pk": "P", "sk": "D", "state": "open"})),
                Cond::Always,
            )
            .await
            .expect("put");

        store
            .transact(vec![
                TxOp::Update {
                    key: Key::new("P", "A"),
                    updates: vec![Update::add("stock", -1)],
                    cond: Cond::AtLeast("stock".into(), 1),
                },
                TxOp::Put {
                    item: item(json!({"pk": "P", "sk": "B", "new": true})),
                    cond: Cond::NotExists,
                },
                TxOp::Delete {
                    key: Key::new("P", "C"),
                    cond: Cond::Exists,
                },
                TxOp::Check {
                    key: Key::new("P", "D"),
                    cond: Cond::eq("state", "open"),
                },
                TxOp::Update {
                    key: Key::new("P", "E"),
                    updates: vec![Update::add("n", 1)],
                    cond: Cond::Always,
                },
            ])
            .await
            .expect("the transaction commits");

        let get = |sk: &'static str| {
            let store = store.clone();
            async move { store.get(&Key::new("P", sk)).await.expect("get") }
        };
        assert_eq!(get("A").await.expect("A")["stock"], json!(0));
        assert_eq!(get("B").await.expect("B")["new"], json!(true));
        assert_eq!(get("C").await, None);
        assert_eq!(
            get("E").await.map(Value::Object),
            Some(json!({"pk": "P", "sk": "E", "n": 1}))
        );
        assert!(matches!(
            store.transact(vec![]).await,
            Err(StoreError::Invalid(_))
        ));
    }

    async fn seed_products(store: &EmbeddedStore) {
        for (sk, category) in [
            ("PRODUCT#03", "tools"),
            ("PRODUCT#01", "books"),
            ("PRODUCT#05", "books"),
            ("PRODUCT#02", "tools"),
            ("PRODUCT#04", "books"),
            ("PRICE#01", "books"),
        ] {
            let product = json!({"pk": "SHOP#1", "sk": sk, "gsi1pk": format!("CATEGORY#{category}"), "gsi1sk": "SAME"});
            store.put(item(product), Cond::Always).await.expect("seed");
        }
        // Same sort key on the table in another partition; not in the index (no gsi1sk).
        store
            .put(
                item(json!({"pk": "SHOP#2", "sk": "PRODUCT#01", "gsi1pk": "CATEGORY#books"})),
                Cond::Always,
            )
            .await
            .expect("seed");
    }

    #[tokio::test]
    async fn primary_queries_filter_by_prefix_order_and_paginate() {
        let dir = TempDir::new("store-query-primary");
        let store = open(&dir);
        seed_products(&store).await;

        let products = Query::partition(Index::Primary, "SHOP#1").prefix("PRODUCT#");
        let page = store.query(&products).await.expect("query");
        assert_eq!(
            sort_keys(&page, SK),
            [
                "PRODUCT#01",
                "PRODUCT#02",
                "PRODUCT#03",
                "PRODUCT#04",
                "PRODUCT#05"
            ]
        );
        assert_eq!(page.last_key, None, "a partial page has no last key");

        let newest_first = store
            .query(&products.clone().descending().limit(2))
            .await
            .expect("query");
        assert_eq!(sort_keys(&newest_first, SK), ["PRODUCT#05", "PRODUCT#04"]);
        assert_eq!(
            newest_first.last_key.map(Value::Object),
            Some(json!({"pk": "SHOP#1", "sk": "PRODUCT#04"}))
        );

        let (all, pages) = all_pages(&store, products.clone().limit(2)).await;
        let keys: Vec<&str> = all.iter().filter_map(|item| item[SK].as_str()).collect();
        assert_eq!(
            keys,
            [
                "PRODUCT#01",
                "PRODUCT#02",
                "PRODUCT#03",
                "PRODUCT#04",
                "PRODUCT#05"
            ]
        );
        assert_eq!(pages, 3);

        let (all, pages) = all_pages(&store, products.clone().descending().limit(5)).await;
        assert_eq!(all.len(), 5);
        assert_eq!(
            pages, 1,
            "an exactly full last page needs no further request"
        );

        let whole = store
            .query(&Query::partition(Index::Primary, "SHOP#1"))
            .await
            .expect("query");
        assert_eq!(whole.items.len(), 6);
        assert_eq!(sort_keys(&whole, SK)[0], "PRICE#01");
    }

    #[tokio::test]
    async fn index_queries_are_sparse_and_break_ties_by_primary_key() {
        let dir = TempDir::new("store-query-gsi");
        let store = open(&dir);
        seed_products(&store).await;

        let books = Query::partition(Index::Gsi1, "CATEGORY#books");
        let page = store.query(&books).await.expect("query");
        assert_eq!(
            sort_keys(&page, SK),
            ["PRICE#01", "PRODUCT#01", "PRODUCT#04", "PRODUCT#05"]
        );
        assert!(
            page.items.iter().all(|item| item[PK] == json!("SHOP#1")),
            "SHOP#2's item lacks gsi1sk"
        );

        let (ascending, pages) = all_pages(&store, books.clone().limit(1)).await;
        assert_eq!(pages, 4);
        let keys: Vec<&str> = ascending
            .iter()
            .filter_map(|item| item[SK].as_str())
            .collect();
        assert_eq!(keys, ["PRICE#01", "PRODUCT#01", "PRODUCT#04", "PRODUCT#05"]);

        let (descending, _) = all_pages(&store, books.clone().descending().limit(3)).await;
        let keys: Vec<&str> = descending
            .iter()
            .filter_map(|item| item[SK].as_str())
            .collect();
        assert_eq!(keys, ["PRODUCT#05", "PRODUCT#04", "PRODUCT#01", "PRICE#01"]);

        let first = store.query(&books.clone().limit(1)).await.expect("query");
        assert_eq!(
            first.last_key.map(Value::Object),
            Some(
                json!({"pk": "SHOP#1", "sk": "PRICE#01", "gsi1pk": "CATEGORY#books", "gsi1sk": "SAME"})
            )
        );
        let none = store
            .query(&books.clone().prefix("OTHER"))
            .await
            .expect("query");
        assert!(none.items.is_empty());
    }

    fn primary_keys(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|item| item[PK].as_str().expect("a string key").to_owned())
            .collect()
    }

    #[tokio::test]
    async fn sort_key_ranges_are_inclusive_in_either_order_and_paginate() {
        let dir = TempDir::new("store-query-range");
        let store = open(&dir);
        seed_products(&store).await;

        let middle = Query::partition(Index::Primary, "SHOP#1").between("PRODUCT#02", "PRODUCT#04");
        let page = store.query(&middle).await.expect("query");
        assert_eq!(
            sort_keys(&page, SK),
            ["PRODUCT#02", "PRODUCT#03", "PRODUCT#04"],
            "both bounds are included"
        );
        assert_eq!(page.last_key, None);
        let page = store
            .query(&middle.clone().descending())
            .await
            .expect("query");
        assert_eq!(
            sort_keys(&page, SK),
            ["PRODUCT#04", "PRODUCT#03", "PRODUCT#02"]
        );

        let (all, pages) = all_pages(&store, middle.clone().limit(2)).await;
        assert_eq!(
            all.iter()
                .filter_map(|item| item[SK].as_str())
                .collect::<Vec<_>>(),
            ["PRODUCT#02", "PRODUCT#03", "PRODUCT#04"]
        );
        assert_eq!(pages, 2);
        let (all, pages) = all_pages(&store, middle.clone().descending().limit(1)).await;
        assert_eq!(
            all.iter()
                .filter_map(|item| item[SK].as_str())
                .collect::<Vec<_>>(),
            ["PRODUCT#04", "PRODUCT#03", "PRODUCT#02"]
        );
        assert_eq!(pages, 3);

        // Bounds need not be stored keys; a range may span prefixes; a point is a range.
        let between =
            |from: &str, to: &str| Query::partition(Index::Primary, "SHOP#1").between(from, to);
        let loose = store
            .query(&between("PRODUCT#015", "PRODUCT#035"))
            .await
            .expect("query");
        assert_eq!(sort_keys(&loose, SK), ["PRODUCT#02", "PRODUCT#03"]);
        let spanning = store
            .query(&between("PRICE#", "PRODUCT#01"))
            .await
            .expect("query");
        assert_eq!(sort_keys(&spanning, SK), ["PRICE#01", "PRODUCT#01"]);
        let point = store
            .query(&between("PRODUCT#05", "PRODUCT#05"))
            .await
            .expect("query");
        assert_eq!(sort_keys(&point, SK), ["PRODUCT#05"]);
        let outside = store.query(&between("Q", "Z")).await.expect("query");
        assert!(outside.items.is_empty());

        // On the index, ties on gsi1sk inside the range still page in one stable order.
        for (order, at) in [
            (1, "T#01"),
            (2, "T#02"),
            (3, "T#03"),
            (4, "T#04"),
            (5, "T#05"),
            (7, "T#03"),
        ] {
            let entry = json!({"pk": format!("ORDER#{order}"), "sk": "META", "gsi1pk": "DAY#1", "gsi1sk": at});
            store.put(item(entry), Cond::Always).await.expect("seed");
        }
        let by_time = Query::partition(Index::Gsi1, "DAY#1").between("T#02", "T#04");
        let page = store.query(&by_time).await.expect("query");
        assert_eq!(
            primary_keys(&page.items),
            ["ORDER#2", "ORDER#3", "ORDER#7", "ORDER#4"]
        );
        let (ascending, pages) = all_pages(&store, by_time.clone().limit(1)).await;
        assert_eq!(
            primary_keys(&ascending),
            ["ORDER#2", "ORDER#3", "ORDER#7", "ORDER#4"]
        );
        assert_eq!(pages, 4);
        let (descending, _) = all_pages(&store, by_time.clone().descending().limit(3)).await;
        assert_eq!(
            primary_keys(&descending),
            ["ORDER#4", "ORDER#7", "ORDER#3", "ORDER#2"]
        );

        let both = middle.clone().prefix("PRODUCT#");
        assert!(matches!(
            store.query(&both).await,
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.query(&between("PRODUCT#04", "PRODUCT#02")).await,
            Err(StoreError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn get_many_returns_the_items_that_exist() {
        let dir = TempDir::new("store-get-many");
        let store = open(&dir);
        seed_products(&store).await;

        let keys = [
            Key::new("SHOP#1", "PRODUCT#02"),
            Key::new("SHOP#1", "PRODUCT#99"),
            Key::new("SHOP#2", "PRODUCT#01"),
            Key::new("SHOP#3", "PRODUCT#01"),
            Key::new("SHOP#1", "PRICE#01"),
        ];
        let found = store.get_many(&keys).await.expect("get_many");
        let mut found_keys: Vec<Key> = found.iter().filter_map(Key::of).collect();
        found_keys.sort_by(|a, b| (&a.pk, &a.sk).cmp(&(&b.pk, &b.sk)));
        assert_eq!(
            found_keys,
            [
                Key::new("SHOP#1", "PRICE#01"),
                Key::new("SHOP#1", "PRODUCT#02"),
                Key::new("SHOP#2", "PRODUCT#01"),
            ]
        );
        let whole = found
            .iter()
            .find(|item| item[SK] == json!("PRODUCT#02"))
            .expect("PRODUCT#02");
        assert_eq!(
            Value::Object(whole.clone()),
            json!({"pk": "SHOP#1", "sk": "PRODUCT#02", "gsi1pk": "CATEGORY#tools", "gsi1sk": "SAME"}),
            "whole items come back"
        );

        assert_eq!(store.get_many(&[]).await, Ok(Vec::new()));
        assert_eq!(
            store.get_many(&[Key::new("SHOP#9", "NONE")]).await,
            Ok(Vec::new())
        );
        let twice = [keys[0].clone(), keys[1].clone(), keys[0].clone()];
        assert!(matches!(
            store.get_many(&twice).await,
            Err(StoreError::Invalid(_))
        ));

        for n in 0..100 {
            let entry = json!({"pk": "BULK", "sk": format!("{n:03}"), "n": n});
            store.put(item(entry), Cond::Always).await.expect("seed");
        }
        let hundred: Vec<Key> = (0..100)
            .map(|n| Key::new("BULK", format!("{n:03}")))
            .collect();
        let mut numbers: Vec<i64> = store
            .get_many(&hundred)
            .await
            .expect("100 keys")
            .iter()
            .filter_map(|item| item["n"].as_i64())
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (0..100).collect::<Vec<i64>>());
        let mut too_many = hundred;
        too_many.push(Key::new("BULK", "100"));
        assert!(matches!(
            store.get_many(&too_many).await,
            Err(StoreError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn prefixes_work_for_any_utf8() {
        let dir = TempDir::new("store-query-utf8");
        let store = open(&dir);
        for sk in [
            "کالا#۱",
            "کالا#۲",
            "کالب",
            "کال",
            "a\u{D7FF}x",
            "a\u{E000}",
            "b",
        ] {
            store
                .put(item(json!({"pk": "P", "sk": sk})), Cond::Always)
                .await
                .expect("put");
        }
        let persian = store
            .query(&Query::partition(Index::Primary, "P").prefix("کالا"))
            .await
            .expect("query");
        assert_eq!(sort_keys(&persian, SK), ["کالا#۱", "کالا#۲"]);
        let gap = store
            .query(&Query::partition(Index::Primary, "P").prefix("a\u{D7FF}"))
            .await
            .expect("query");
        assert_eq!(sort_keys(&gap, SK), ["a\u{D7FF}x"]);
    }

    #[test]
    fn prefix_successors_are_the_next_code_point() {
        assert_eq!(prefix_successor("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
        assert_eq!(prefix_successor(""), None);
    }

    #[tokio::test]
    async fn items_survive_reopening() {
        let dir = TempDir::new("store-reopen");
        let path = dir.path().join("nested").join("state.sqlite3");
        {
            let store = EmbeddedStore::open(&path).expect("open");
            store
                .put(
                    item(json!({"pk": "P", "sk": "S", "gsi1pk": "G", "gsi1sk": "1"})),
                    Cond::Always,
                )
                .await
                .expect("put");
        }
        let store = EmbeddedStore::open(&path).expect("reopen");
        assert_eq!(
            store
                .get(&Key::new("P", "S"))
                .await
                .expect("get")
                .map(Value::Object),
            Some(json!({"pk": "P", "sk": "S", "gsi1pk": "G", "gsi1sk": "1"}))
        );
        assert_eq!(
            store
                .query(&Query::partition(Index::Gsi1, "G"))
                .await
                .expect("query")
                .items
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn two_handles_on_one_file_see_each_other() {
        let dir = TempDir::new("store-two-handles");
        let path = dir.path().join("state.sqlite3");
        let server = EmbeddedStore::open(&path).expect("open");
        let admin = EmbeddedStore::open(&path).expect("open again");
        server
            .update(&Key::new("P", "S"), vec![Update::add("n", 1)], Cond::Always)
            .await
            .expect("update");
        admin
            .update(&Key::new("P", "S"), vec![Update::add("n", 1)], Cond::Always)
            .await
            .expect("update");
        assert_eq!(
            server
                .get(&Key::new("P", "S"))
                .await
                .expect("get")
                .expect("item")["n"],
            json!(2)
        );
    }
}
