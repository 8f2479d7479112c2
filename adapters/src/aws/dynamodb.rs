//! The state store on DynamoDB: one table (`pk`/`sk`, plus the `gsi1` index), items as JSON.
//!
//! The port's conditions and updates translate directly into condition and update expressions,
//! so DynamoDB itself evaluates them atomically; nothing is read first. Attribute names always
//! go through `#n` placeholders because many of ours (`status`, `name`, `count`) are reserved.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    self as ddb, AttributeValue, CancellationReason, KeysAndAttributes, ReturnValue,
    TransactWriteItem,
};
use bazaar_shared::ports::store::{
    PK, SK, validate_batch_get, validate_query, validate_transaction,
};
use bazaar_shared::ports::{Cond, Index, Item, Key, Page, Query, Store, StoreError, TxOp, Update};

use super::attr::{AttrMap, from_attr_map, to_attr, to_attr_map};

/// The name of the table's one global secondary index.
pub const GSI1_NAME: &str = "gsi1";
/// An attribute no item ever has: removing it is how an update with no changes is expressed.
const NOOP_ATTRIBUTE: &str = "__bazaar_noop";

/// How a batch read asks again for the keys DynamoDB left unprocessed (throttling, the 16 MB
/// response limit): a few times, with a short exponential backoff, as AWS recommends.
const BATCH_GET_RETRY: Retry = Retry {
    attempts: 8,
    first_delay: Duration::from_millis(20),
    max_delay: Duration::from_millis(500),
};

/// A [`Store`] backed by one DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store on `table`, reached with the shared SDK configuration (see [`super::sdk_config`]).
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: Client::new(config),
            table: table.into(),
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            // The domain reads its own writes (e.g. an order just placed); eventually
            // consistent reads could miss them.
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        output.item().map(item_from_attrs).transpose()
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        require_key(&item)?;
        let mut expr = Expr::default();
        let condition = expr.condition(&cond);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_attr_map(&item)))
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .send()
            .await
            .map_err(write_error)?;
        Ok(())
    }

    async fn update(
        &self,
        key: &Key,
        updates: Vec<Update>,
        cond: Cond,
    ) -> Result<Item, StoreError> {
        let mut expr = Expr::default();
        let update = expr.update(&updates);
        let condition = expr.condition(&cond);
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .update_expression(update)
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(write_error)?;
        // ALL_NEW always returns the item, which exists once the update succeeded.
        let attributes = output
            .attributes()
            .ok_or_else(|| StoreError::Unavailable("UpdateItem returned no item".to_owned()))?;
        item_from_attrs(attributes)
    }

    async fn delete(&self, key: &Key, cond: Cond) -> Result<(), StoreError> {
        let mut expr = Expr::default();
        let condition = expr.condition(&cond);
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .send()
            .await
            .map_err(write_error)?;
        Ok(())
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError> {
        validate_transaction(&ops)?;
        let items = ops
            .iter()
            .map(|op| self.transact_item(op))
            .collect::<Result<Vec<_>, _>>()?;
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(transaction_error)?;
        Ok(())
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        validate_query(query)?;
        if query.limit == 0 {
            // DynamoDB rejects Limit=0; a page of nothing is what the caller asked for.
            return Ok(Page::default());
        }
        let mut expr = Expr::default();
        let key_condition = expr.key_condition(query);
        let primary = query.index == Index::Primary;
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name((!primary).then(|| GSI1_NAME.to_owned()))
            .key_condition_expression(key_condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .scan_index_forward(query.ascending)
            .limit(i32::try_from(query.limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(query.start_after.as_ref().map(to_attr_map))
            // Global secondary indexes are only eventually consistent; asking fails.
            .consistent_read(primary)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(Page {
            items: output
                .items()
                .iter()
                .map(item_from_attrs)
                .collect::<Result<_, _>>()?,
            last_key: output
                .last_evaluated_key()
                .map(item_from_attrs)
                .transpose()?,
        })
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        validate_batch_get(keys)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys = keys.iter().map(key_attrs).collect();
        let found = batch_get(keys, BATCH_GET_RETRY, |keys| self.batch_get_once(keys)).await?;
        found.iter().map(item_from_attrs).collect()
    }
}

impl DynamoStore {
    /// One `BatchGetItem` request (strongly consistent, whole items): what it found and the
    /// keys it left unprocessed.
    async fn batch_get_once(&self, keys: Vec<AttrMap>) -> Result<BatchRead, StoreError> {
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(invalid)?;
        let output = self
            .client
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await
            .map_err(sdk_error)?;
        let found = output
            .responses
            .and_then(|mut responses| responses.remove(&self.table))
            .unwrap_or_default();
        let unprocessed = output
            .unprocessed_keys
            .and_then(|mut unprocessed| unprocessed.remove(&self.table))
            .map(|request| request.keys)
            .unwrap_or_default();
        Ok(BatchRead { found, unprocessed })
    }

    /// Translates one transaction operation, each with its own placeholders.
    fn transact_item(&self, op: &TxOp) -> Result<TransactWriteItem, StoreError> {
        let mut expr = Expr::default();
        let item = match op {
            TxOp::Put { item, cond } => {
                let put = ddb::Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(to_attr_map(item)))
                    .set_condition_expression(expr.condition(cond))
                    .set_expression_attribute_names(expr.names())
                    .set_expression_attribute_values(expr.values())
                    .build()
                    .map_err(invalid)?;
                TransactWriteItem::builder().put(put)
            }
            TxOp::Update { key, updates, cond } => {
                let update = expr.update(updates);
                let update = ddb::Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(key)))
                    .update_expression(update)
                    .set_condition_expression(expr.condition(cond))
                    .set_expression_attribute_names(expr.names())
                    .set_expression_attribute_values(expr.values())
                    .build()
                    .map_err(invalid)?;
                TransactWriteItem::builder().update(update)
            }
            TxOp::Delete { key, cond } => {
                let delete = ddb::Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(key)))
                    .set_condition_expression(expr.condition(cond))
                    .set_expression_attribute_names(expr.names())
                    .set_expression_attribute_values(expr.values())
                    .build()
                    .map_err(invalid)?;
                TransactWriteItem::builder().delete(delete)
            }
            TxOp::Check { key, cond } => {
                // A ConditionCheck requires an expression; `Always` becomes a tautology so the
                // operation keeps its position (cancellation reasons are reported by index).
                let condition = expr.condition(cond).unwrap_or_else(|| {
                    let pk = expr.name(PK);
                    format!("attribute_exists({pk}) OR attribute_not_exists({pk})")
                });
                let check = ddb::ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_attrs(key)))
                    .condition_expression(condition)
                    .set_expression_attribute_names(expr.names())
                    .set_expression_attribute_values(expr.values())
                    .build()
                    .map_err(invalid)?;
                TransactWriteItem::builder().condition_check(check)
            }
        };
        Ok(item.build())
    }
}

/// What one batch read request returned.
#[derive(Debug, Default)]
struct BatchRead {
    found: Vec<AttrMap>,
    unprocessed: Vec<AttrMap>,
}

/// How many times, and how patiently, to ask again for unprocessed keys.
#[derive(Clone, Copy, Debug)]
struct Retry {
    /// Requests after the first one.
    attempts: u32,
    first_delay: Duration,
    max_delay: Duration,
}

impl Retry {
    /// The wait before retry `attempt` (0 for the first retry): doubling, capped.
    fn delay(&self, attempt: u32) -> Duration {
        self.first_delay
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.max_delay)
    }
}

/// Reads `keys` with `send`, asking again for whatever a request left unprocessed until
/// nothing is left; gives up as unavailable after `retry.attempts` retries. DynamoDB may leave
/// keys unprocessed even when nothing is wrong, so one incomplete answer is no failure.
async fn batch_get<F, Fut>(
    keys: Vec<AttrMap>,
    retry: Retry,
    mut send: F,
) -> Result<Vec<AttrMap>, StoreError>
where
    F: FnMut(Vec<AttrMap>) -> Fut,
    Fut: Future<Output = Result<BatchRead, StoreError>>,
{
    let mut found = Vec::with_capacity(keys.len());
    let mut pending = keys;
    let mut attempt = 0;
    loop {
        let read = send(pending).await?;
        found.extend(read.found);
        if read.unprocessed.is_empty() {
            return Ok(found);
        }
        if attempt == retry.attempts {
            return Err(StoreError::Unavailable(format!(
                "DynamoDB still left {} keys of a batch read unprocessed after {} retries",
                read.unprocessed.len(),
                retry.attempts
            )));
        }
        tokio::time::sleep(retry.delay(attempt)).await;
        attempt += 1;
        pending = read.unprocessed;
    }
}

/// Builds condition and update expressions, collecting their name and value placeholders.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    /// The placeholder for an attribute name (one per distinct name).
    fn name(&mut self, attribute: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, name)| *name == attribute) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    /// A fresh placeholder for a value.
    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// The key condition of a query: its partition, narrowed by a sort-key prefix or range.
    fn key_condition(&mut self, query: &Query) -> String {
        let (partition_attr, sort_attr) = query.index.key_attributes();
        let mut condition = format!(
            "{} = {}",
            self.name(partition_attr),
            self.value(AttributeValue::S(query.partition.clone()))
        );
        if let Some(prefix) = &query.sort_prefix {
            let sort = self.name(sort_attr);
            let prefix = self.value(AttributeValue::S(prefix.clone()));
            condition.push_str(&format!(" AND begins_with({sort}, {prefix})"));
        }
        if let Some((from, to)) = &query.sort_between {
            let sort = self.name(sort_attr);
            let from = self.value(AttributeValue::S(from.clone()));
            let to = self.value(AttributeValue::S(to.clone()));
            condition.push_str(&format!(" AND {sort} BETWEEN {from} AND {to}"));
        }
        condition
    }

    /// The condition expression for `cond`; `None` when it always holds.
    fn condition(&mut self, cond: &Cond) -> Option<String> {
        match cond {
            Cond::Always => None,
            Cond::Exists => Some(format!("attribute_exists({})", self.name(PK))),
            Cond::NotExists => Some(format!("attribute_not_exists({})", self.name(PK))),
            Cond::Eq(attribute, value) => Some(self.comparison(attribute, "=", to_attr(value))),
            Cond::AtLeast(attribute, bound) => {
                Some(self.comparison(attribute, ">=", number(*bound)))
            }
            Cond::AtMost(attribute, bound) => {
                Some(self.comparison(attribute, "<=", number(*bound)))
            }
            Cond::All(all) => {
                let parts: Vec<String> = all
                    .iter()
                    .filter_map(|cond| self.condition(cond))
                    .map(|part| format!("({part})"))
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" AND "))
            }
        }
    }

    /// `#a <op> :v`; false when the attribute is missing or of another type, as the port says.
    fn comparison(&mut self, attribute: &str, operator: &str, value: AttributeValue) -> String {
        format!("{} {operator} {}", self.name(attribute), self.value(value))
    }

    /// One update expression with SET, ADD and REMOVE clauses.
    ///
    /// ADD is used for deltas because it treats a missing attribute as 0, which is the port's
    /// semantics (`SET #a = #a + :d` would fail on a missing attribute).
    ///
    /// No changes still need an expression: a transaction's Update requires one (and moto
    /// fails on an UpdateItem without one). Removing [`NOOP_ATTRIBUTE`], which nothing ever
    /// writes, changes nothing yet keeps UpdateItem's semantics: the item is created if missing.
    fn update(&mut self, updates: &[Update]) -> String {
        if updates.is_empty() {
            return format!("REMOVE {}", self.name(NOOP_ATTRIBUTE));
        }
        let (mut set, mut add, mut remove) = (Vec::new(), Vec::new(), Vec::new());
        for update in updates {
            match update {
                Update::Set(attribute, value) => {
                    set.push(format!(
                        "{} = {}",
                        self.name(attribute),
                        self.value(to_attr(value))
                    ));
                }
                Update::Add(attribute, delta) => {
                    add.push(format!(
                        "{} {}",
                        self.name(attribute),
                        self.value(number(*delta))
                    ));
                }
                Update::Remove(attribute) => remove.push(self.name(attribute)),
            }
        }
        let clauses: Vec<String> = [("SET", set), ("ADD", add), ("REMOVE", remove)]
            .into_iter()
            .filter(|(_, parts)| !parts.is_empty())
            .map(|(keyword, parts)| format!("{keyword} {}", parts.join(", ")))
            .collect();
        clauses.join(" ")
    }

    /// The name placeholders, or `None`: DynamoDB rejects an empty map.
    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    /// The value placeholders, or `None`: DynamoDB rejects an empty map.
    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn number(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key_attrs(key: &Key) -> AttrMap {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// Rejects an item without string keys here, with a clearer message than DynamoDB's.
fn require_key(item: &Item) -> Result<(), StoreError> {
    match Key::of(item) {
        Some(_) => Ok(()),
        None => Err(StoreError::Invalid(
            "an item needs string pk and sk attributes".into(),
        )),
    }
}

fn item_from_attrs(attrs: &AttrMap) -> Result<Item, StoreError> {
    from_attr_map(attrs).map_err(StoreError::Unavailable)
}

fn invalid(error: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(error.to_string())
}

/// Maps an SDK error that has no specific meaning for the port. DynamoDB's `ValidationException` means
/// the request itself was wrong (an item too large, two updates of one attribute), which
/// retrying cannot fix, so it becomes `Invalid`; everything else is `Unavailable`.
fn sdk_error<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = DisplayErrorContext(&error).to_string();
    match error.code() {
        Some("ValidationException") => StoreError::Invalid(message),
        _ => StoreError::Unavailable(message),
    }
}

/// Maps a single-item write's error: a failed condition, or a clash with a transaction in
/// progress on the same item (retryable, like a transaction conflict).
fn write_error<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.code() {
        Some("ConditionalCheckFailedException") => StoreError::ConditionFailed,
        Some("TransactionConflictException") => StoreError::TransactionConflict,
        _ => sdk_error(error),
    }
}

/// Maps a cancelled transaction to the positions whose conditions failed, or to a conflict.
fn transaction_error<R>(error: SdkError<TransactWriteItemsError, R>) -> StoreError
where
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            cancellation(cancelled.cancellation_reasons()).unwrap_or_else(|| sdk_error(error))
        }
        _ => sdk_error(error),
    }
}

/// Reads cancellation reasons (one per operation, in order; code `None` for those that were
/// fine): failed conditions first, then a conflict, then an invalid operation. `None` for any
/// other cause (throttling, capacity), which the caller reports as unavailability.
fn cancellation(reasons: &[CancellationReason]) -> Option<StoreError> {
    let with_code = |code: &'static str| {
        reasons
            .iter()
            .enumerate()
            .filter(move |(_, reason)| reason.code() == Some(code))
    };
    let failed: Vec<usize> = with_code("ConditionalCheckFailed")
        .map(|(index, _)| index)
        .collect();
    if !failed.is_empty() {
        return Some(StoreError::TransactionCancelled { failed });
    }
    if with_code("TransactionConflict").next().is_some() {
        return Some(StoreError::TransactionConflict);
    }
    with_code("ValidationError").next().map(|(index, reason)| {
        StoreError::Invalid(format!(
            "transaction operation {index}: {}",
            reason.message().unwrap_or("invalid")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn key_item(key: &Key) -> Item {
        Item::from_iter([
            (PK.to_owned(), Value::from(key.pk.clone())),
            (SK.to_owned(), Value::from(key.sk.clone())),
        ])
    }

    #[test]
    fn conditions_translate_with_placeholders() {
        let mut expr = Expr::default();
        let cond = Cond::All(vec![
            Cond::Exists,
            Cond::Always,
            Cond::eq("status", "open"),
            Cond::AtLeast("stock".into(), 2),
            Cond::All(vec![]),
        ]);
        assert_eq!(
            expr.condition(&cond).as_deref(),
            Some("(attribute_exists(#n0)) AND (#n1 = :v0) AND (#n2 >= :v1)")
        );
        assert_eq!(expr.names.get("#n1").map(String::as_str), Some("status"));
        assert_eq!(expr.values.get(":v1"), Some(&AttributeValue::N("2".into())));
        assert_eq!(
            Expr::default().condition(&Cond::All(vec![Cond::Always])),
            None
        );
        assert_eq!(Expr::default().condition(&Cond::Always), None);
    }

    #[test]
    fn updates_group_into_clauses() {
        let mut expr = Expr::default();
        let updates = [
            Update::set("name", json!("x")),
            Update::add("count", -1),
            Update::Remove("tmp".into()),
            Update::set("status", json!(null)),
        ];
        assert_eq!(
            expr.update(&updates),
            "SET #n0 = :v0, #n3 = :v2 ADD #n1 :v1 REMOVE #n2"
        );
        let mut empty = Expr::default();
        assert_eq!(empty.update(&[]), "REMOVE #n0");
        assert_eq!(
            empty.names.get("#n0").map(String::as_str),
            Some(NOOP_ATTRIBUTE)
        );
    }

    #[test]
    fn cancellation_reasons_name_failed_positions() {
        let reason = |code: &str| CancellationReason::builder().code(code).build();
        let reasons = [
            reason("None"),
            reason("ConditionalCheckFailed"),
            reason("TransactionConflict"),
        ];
        assert_eq!(
            cancellation(&reasons),
            Some(StoreError::TransactionCancelled { failed: vec![1] })
        );
        assert_eq!(
            cancellation(&[reason("None"), reason("TransactionConflict")]),
            Some(StoreError::TransactionConflict)
        );
        assert!(matches!(
            cancellation(&[reason("None"), reason("ValidationError")]),
            Some(StoreError::Invalid(message)) if message.starts_with("transaction operation 1")
        ));
        assert_eq!(cancellation(&[reason("ThrottlingError")]), None);
    }

    #[test]
    fn key_conditions_narrow_by_prefix_or_range() {
        let mut expr = Expr::default();
        let query = Query::partition(Index::Gsi1, "DAY#1").between("T#02", "T#04");
        assert_eq!(
            expr.key_condition(&query),
            "#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2"
        );
        assert_eq!(expr.names.get("#n0").map(String::as_str), Some("gsi1pk"));
        assert_eq!(expr.names.get("#n1").map(String::as_str), Some("gsi1sk"));
        assert_eq!(
            expr.values.get(":v1"),
            Some(&AttributeValue::S("T#02".into()))
        );
        assert_eq!(
            expr.values.get(":v2"),
            Some(&AttributeValue::S("T#04".into()))
        );

        let mut expr = Expr::default();
        let query = Query::partition(Index::Primary, "USER#1").prefix("ORDER#");
        assert_eq!(
            expr.key_condition(&query),
            "#n0 = :v0 AND begins_with(#n1, :v1)"
        );
        assert_eq!(expr.names.get("#n1").map(String::as_str), Some("sk"));
        let mut expr = Expr::default();
        assert_eq!(
            expr.key_condition(&Query::partition(Index::Primary, "USER#1")),
            "#n0 = :v0"
        );
    }

    #[test]
    fn batch_retries_back_off_within_bounds() {
        assert_eq!(BATCH_GET_RETRY.delay(0), Duration::from_millis(20));
        assert_eq!(BATCH_GET_RETRY.delay(1), Duration::from_millis(40));
        assert_eq!(BATCH_GET_RETRY.delay(4), Duration::from_millis(320));
        assert_eq!(BATCH_GET_RETRY.delay(5), Duration::from_millis(500));
        assert_eq!(BATCH_GET_RETRY.delay(40), Duration::from_millis(500));
        let total: Duration = (0..BATCH_GET_RETRY.attempts)
            .map(|attempt| BATCH_GET_RETRY.delay(attempt))
            .sum();
        assert!(total < Duration::from_secs(3), "{total:?}");
    }

    const NO_WAIT: Retry = Retry {
        attempts: 3,
        first_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };

    fn attrs(sk: &str) -> AttrMap {
        key_attrs(&Key::new("P", sk))
    }

    /// A fake DynamoDB that answers each request with the first of the keys asked for and
    /// leaves the rest unprocessed, recording what was asked.
    fn one_at_a_time(asked: &mut Vec<usize>, keys: Vec<AttrMap>) -> Result<BatchRead, StoreError> {
        asked.push(keys.len());
        let mut keys = keys.into_iter();
        Ok(BatchRead {
            found: keys.next().into_iter().collect(),
            unprocessed: keys.collect(),
        })
    }

    #[tokio::test]
    async fn batch_reads_ask_again_for_unprocessed_keys() {
        let mut asked = Vec::new();
        let keys = vec![attrs("a"), attrs("b"), attrs("c")];
        let found = batch_get(keys, NO_WAIT, |keys| {
            std::future::ready(one_at_a_time(&mut asked, keys))
        })
        .await;
        assert_eq!(found, Ok(vec![attrs("a"), attrs("b"), attrs("c")]));
        assert_eq!(
            asked,
            [3, 2, 1],
            "only the unprocessed keys are asked again"
        );

        let mut asked = Vec::new();
        let keys: Vec<AttrMap> = ["a", "b", "c", "d", "e"].map(attrs).into();
        let result = batch_get(keys, NO_WAIT, |keys| {
            std::future::ready(one_at_a_time(&mut asked, keys))
        })
        .await;
        assert!(
            matches!(&result, Err(StoreError::Unavailable(message)) if message.contains("1 keys")),
            "{result:?}"
        );
        assert_eq!(asked, [5, 4, 3, 2], "one request and three retries");

        let mut calls = 0;
        let failing = batch_get(vec![attrs("a")], NO_WAIT, |_| {
            calls += 1;
            std::future::ready(Err(StoreError::Unavailable("throttled".into())))
        })
        .await;
        assert_eq!(failing, Err(StoreError::Unavailable("throttled".into())));
        assert_eq!(calls, 1, "a failed request is reported, not retried here");
    }

    /// The adapter against moto's DynamoDB: one server, one table, for all the scenarios.
    mod against_moto {
        use super::*;
        use crate::aws::moto::Moto;
        use crate::aws::provision;

        fn item(value: Value) -> Item {
            value.as_object().cloned().expect("an object")
        }

        #[tokio::test]
        async fn store_semantics_hold_on_moto() {
            let moto = Moto::start();
            let config = moto.config().await;
            provision::create_table(&config, "bazaar")
                .await
                .expect("create table");
            provision::create_table(&config, "bazaar")
                .await
                .expect("create table again");
            table_matches_the_design(&config).await;
            let store = DynamoStore::new(&config, "bazaar");
            conditional_writes(&store).await;
            updates(&store).await;
            transactions(&store).await;
            queries(&store).await;
            range_queries(&store).await;
            batch_reads(&store).await;
            errors(&config, &store).await;
        }

        async fn errors(config: &aws_config::SdkConfig, store: &DynamoStore) {
            let missing_table = DynamoStore::new(config, "no-such-table");
            match missing_table.get(&Key::new("a", "b")).await {
                Err(StoreError::Unavailable(message)) => {
                    assert!(message.contains("ResourceNotFoundException"), "{message}");
                }
                other => panic!("expected Unavailable, got {other:?}"),
            }
            let key = Key::new("EMPTY#1", "X");
            assert_eq!(
                store.update(&key, vec![], Cond::Always).await,
                Ok(key_item(&key))
            );
            assert_eq!(store.get(&key).await, Ok(Some(key_item(&key))));
            let overlapping = vec![Update::add("count", 1), Update::Remove("count".into())];
            let result = store.update(&key, overlapping, Cond::Always).await;
            assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
            let touch = TxOp::Update {
                key: Key::new("EMPTY#2", "X"),
                updates: vec![],
                cond: Cond::NotExists,
            };
            store
                .transact(vec![touch])
                .await
                .expect("an empty update in a transaction");
            assert_eq!(
                store.get(&Key::new("EMPTY#2", "X")).await,
                Ok(Some(key_item(&Key::new("EMPTY#2", "X"))))
            );
        }

        async fn table_matches_the_design(config: &aws_config::SdkConfig) {
            let client = Client::new(config);
            let described = client.describe_table().table_name("bazaar").send().await;
            let table = described.expect("describe").table.expect("a table");
            let keys = |schema: &[ddb::KeySchemaElement]| -> Vec<(String, String)> {
                schema
                    .iter()
                    .map(|key| (key.attribute_name.clone(), key.key_type.as_str().to_owned()))
                    .collect()
            };
            let pair = |hash: &str, range: &str| {
                vec![
                    (hash.to_owned(), "HASH".to_owned()),
                    (range.to_owned(), "RANGE".to_owned()),
                ]
            };
            assert_eq!(keys(table.key_schema()), pair("pk", "sk"));
            let gsi = &table.global_secondary_indexes()[0];
            assert_eq!(gsi.index_name(), Some("gsi1"));
            assert_eq!(keys(gsi.key_schema()), pair("gsi1pk", "gsi1sk"));
            let projection = gsi.projection().and_then(|p| p.projection_type());
            assert_eq!(projection, Some(&ddb::ProjectionType::All));
            let billing = table.billing_mode_summary().and_then(|b| b.billing_mode());
            assert_eq!(billing, Some(&ddb::BillingMode::PayPerRequest));
            let ttl = client
                .describe_time_to_live()
                .table_name("bazaar")
                .send()
                .await;
            let ttl = ttl
                .expect("describe ttl")
                .time_to_live_description
                .expect("ttl");
            assert_eq!(ttl.attribute_name(), Some("expires_at"));
            assert_eq!(
                ttl.time_to_live_status(),
                Some(&ddb::TimeToLiveStatus::Enabled)
            );
        }

        async fn conditional_writes(store: &DynamoStore) {
            let user = item(
                json!({"pk": "USER#1", "sk": "PROFILE", "name": "Ada", "status": "open", "n": 1.5}),
            );
            let key = Key::new("USER#1", "PROFILE");
            store
                .put(user.clone(), Cond::NotExists)
                .await
                .expect("first put");
            assert_eq!(
                store.put(user.clone(), Cond::NotExists).await,
                Err(StoreError::ConditionFailed)
            );
            assert_eq!(store.get(&key).await, Ok(Some(user.clone())));
            store
                .put(user.clone(), Cond::eq("status", "open"))
                .await
                .expect("eq holds");
            assert_eq!(
                store
                    .put(
                        user.clone(),
                        Cond::All(vec![Cond::Exists, Cond::eq("status", "closed")])
                    )
                    .await,
                Err(StoreError::ConditionFailed)
            );
            assert!(matches!(
                store.put(item(json!({"pk": "X"})), Cond::Always).await,
                Err(StoreError::Invalid(_))
            ));
            store.delete(&key, Cond::Exists).await.expect("delete");
            assert_eq!(store.get(&key).await, Ok(None));
            assert_eq!(store.delete(&key, Cond::Always).await, Ok(()));
            assert_eq!(
                store.delete(&key, Cond::Exists).await,
                Err(StoreError::ConditionFailed)
            );
        }

        async fn updates(store: &DynamoStore) {
            let key = Key::new("PRODUCT#1", "STOCK");
            let created = store
                .update(&key, vec![Update::add("count", 5)], Cond::Always)
                .await;
            assert_eq!(
                created,
                Ok(item(json!({"pk": "PRODUCT#1", "sk": "STOCK", "count": 5})))
            );
            let taken = store
                .update(
                    &key,
                    vec![Update::add("count", -2), Update::set("name", "Tea")],
                    Cond::AtLeast("count".into(), 2),
                )
                .await;
            assert_eq!(
                taken,
                Ok(item(
                    json!({"pk": "PRODUCT#1", "sk": "STOCK", "count": 3, "name": "Tea"})
                ))
            );
            let too_many = store
                .update(
                    &key,
                    vec![Update::add("count", -5)],
                    Cond::AtLeast("count".into(), 5),
                )
                .await;
            assert_eq!(too_many, Err(StoreError::ConditionFailed));
            assert_eq!(
                store
                    .update(
                        &key,
                        vec![Update::add("count", 1)],
                        Cond::AtMost("count".into(), 2)
                    )
                    .await,
                Err(StoreError::ConditionFailed)
            );
            let removed = store
                .update(
                    &key,
                    vec![Update::Remove("name".into()), Update::set("price", 2.5)],
                    Cond::Exists,
                )
                .await;
            assert_eq!(
                removed,
                Ok(item(
                    json!({"pk": "PRODUCT#1", "sk": "STOCK", "count": 3, "price": 2.5})
                ))
            );
            assert_eq!(store.get(&key).await.ok().flatten(), removed.ok());
            let missing = Key::new("PRODUCT#404", "STOCK");
            assert_eq!(
                store
                    .update(&missing, vec![Update::add("count", 1)], Cond::Exists)
                    .await,
                Err(StoreError::ConditionFailed)
            );
            assert_eq!(store.get(&missing).await, Ok(None));
        }

        async fn transactions(store: &DynamoStore) {
            let stock = Key::new("PRODUCT#1", "STOCK");
            let failing = vec![
                TxOp::Put {
                    item: item(json!({"pk": "ORDER#1", "sk": "ORDER"})),
                    cond: Cond::NotExists,
                },
                TxOp::Update {
                    key: stock.clone(),
                    updates: vec![Update::add("count", -100)],
                    cond: Cond::AtLeast("count".into(), 100),
                },
                TxOp::Check {
                    key: stock.clone(),
                    cond: Cond::Always,
                },
                TxOp::Check {
                    key: Key::new("PRODUCT#404", "STOCK"),
                    cond: Cond::Exists,
                },
            ];
            // The two checks on one key are rejected before DynamoDB sees them.
            assert!(matches!(
                store.transact(failing.clone()).await,
                Err(StoreError::Invalid(_))
            ));
            let failing: Vec<TxOp> = failing
                .into_iter()
                .enumerate()
                .filter(|(i, _)| *i != 2)
                .map(|(_, op)| op)
                .collect();
            assert_eq!(
                store.transact(failing).await,
                Err(StoreError::TransactionCancelled { failed: vec![1, 2] })
            );
            assert_eq!(
                store.get(&Key::new("ORDER#1", "ORDER")).await,
                Ok(None),
                "nothing written"
            );
            assert_eq!(
                store
                    .get(&stock)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|i| i.get("count").cloned()),
                Some(json!(3))
            );

            store
                .put(item(json!({"pk": "CART#1", "sk": "LINE#1"})), Cond::Always)
                .await
                .expect("cart line");
            let succeeding = vec![
                TxOp::Put {
                    item: item(json!({"pk": "ORDER#1", "sk": "ORDER", "total": 7})),
                    cond: Cond::NotExists,
                },
                TxOp::Update {
                    key: stock.clone(),
                    updates: vec![Update::add("count", -1)],
                    cond: Cond::AtLeast("count".into(), 1),
                },
                TxOp::Delete {
                    key: Key::new("CART#1", "LINE#1"),
                    cond: Cond::Exists,
                },
                TxOp::Check {
                    key: Key::new("USER#1", "PROFILE"),
                    cond: Cond::Always,
                },
            ];
            store.transact(succeeding).await.expect("transaction");
            assert!(
                store
                    .get(&Key::new("ORDER#1", "ORDER"))
                    .await
                    .ok()
                    .flatten()
                    .is_some()
            );
            assert_eq!(store.get(&Key::new("CART#1", "LINE#1")).await, Ok(None));
            assert_eq!(
                store
                    .get(&stock)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|i| i.get("count").cloned()),
                Some(json!(2))
            );
        }

        async fn queries(store: &DynamoStore) {
            for n in 1..=5 {
                let order = item(json!({
                    "pk": "USER#9", "sk": format!("ORDER#{n:02}"),
                    "gsi1pk": "STATUS#open", "gsi1sk": format!("T#{n:02}"), "n": n,
                }));
                store.put(order, Cond::Always).await.expect("put order");
            }
            store
                .put(item(json!({"pk": "USER#9", "sk": "PROFILE", "gsi1pk": "STATUS#other", "gsi1sk": "T#00"})), Cond::Always)
                .await
                .expect("put profile");
            let all = store
                .query(&Query::partition(Index::Primary, "USER#9"))
                .await
                .expect("query");
            assert_eq!(all.items.len(), 6);
            assert_eq!(all.last_key, None);

            let sorts = |page: &Page, attribute: &str| -> Vec<String> {
                page.items
                    .iter()
                    .map(|i| i[attribute].as_str().unwrap_or_default().to_owned())
                    .collect()
            };
            let first = store
                .query(
                    &Query::partition(Index::Primary, "USER#9")
                        .prefix("ORDER#")
                        .descending()
                        .limit(2),
                )
                .await
                .expect("first page");
            assert_eq!(sorts(&first, "sk"), ["ORDER#05", "ORDER#04"]);
            assert_eq!(
                first.last_key,
                Some(item(json!({"pk": "USER#9", "sk": "ORDER#04"})))
            );
            let mut seen = sorts(&first, "sk");
            let mut next = first.last_key;
            while let Some(start) = next.take() {
                let page = store
                    .query(
                        &Query::partition(Index::Primary, "USER#9")
                            .prefix("ORDER#")
                            .descending()
                            .limit(2)
                            .start_after(Some(start)),
                    )
                    .await
                    .expect("next page");
                seen.extend(sorts(&page, "sk"));
                next = page.last_key;
            }
            assert_eq!(
                seen,
                ["ORDER#05", "ORDER#04", "ORDER#03", "ORDER#02", "ORDER#01"]
            );

            let by_status = store
                .query(
                    &Query::partition(Index::Gsi1, "STATUS#open")
                        .prefix("T#")
                        .limit(3),
                )
                .await
                .expect("gsi page");
            assert_eq!(sorts(&by_status, "gsi1sk"), ["T#01", "T#02", "T#03"]);
            let start = by_status.last_key.clone().expect("more pages");
            assert_eq!(start.get("gsi1sk"), Some(&json!("T#03")));
            let rest = store
                .query(
                    &Query::partition(Index::Gsi1, "STATUS#open")
                        .prefix("T#")
                        .limit(3)
                        .start_after(Some(start)),
                )
                .await
                .expect("gsi rest");
            assert_eq!(sorts(&rest, "gsi1sk"), ["T#04", "T#05"]);
            assert_eq!(rest.items[0]["n"], json!(4), "all attributes projected");
            let descending = store
                .query(
                    &Query::partition(Index::Gsi1, "STATUS#open")
                        .descending()
                        .limit(1),
                )
                .await
                .expect("gsi descending");
            assert_eq!(sorts(&descending, "gsi1sk"), ["T#05"]);
            let none = store
                .query(&Query::partition(Index::Gsi1, "STATUS#open").limit(0))
                .await;
            assert_eq!(none, Ok(Page::default()));
            let empty = store
                .query(&Query::partition(Index::Primary, "USER#0"))
                .await;
            assert_eq!(empty, Ok(Page::default()));
        }

        /// Every page of a query, the sort keys of `attribute` in the order read, and the
        /// number of requests.
        async fn read_all(
            store: &DynamoStore,
            query: Query,
            attribute: &str,
        ) -> (Vec<String>, usize) {
            let mut seen = Vec::new();
            let mut query = query;
            let mut pages = 0;
            loop {
                let page = store.query(&query).await.expect("query");
                pages += 1;
                assert!(page.items.len() <= query.limit);
                seen.extend(
                    page.items
                        .iter()
                        .map(|i| i[attribute].as_str().unwrap_or_default().to_owned()),
                );
                match page.last_key {
                    Some(last) => query = query.start_after(Some(last)),
                    None => return (seen, pages),
                }
            }
        }

        async fn range_queries(store: &DynamoStore) {
            for n in 1..=6 {
                let entry = item(json!({
                    "pk": "RANGE#1", "sk": format!("E#{n:02}"),
                    "gsi1pk": "RANGE#by-time", "gsi1sk": format!("T#{:02}", 10 - n),
                }));
                store.put(entry, Cond::Always).await.expect("put entry");
            }
            let middle = Query::partition(Index::Primary, "RANGE#1").between("E#02", "E#05");
            let page = store.query(&middle).await.expect("range");
            let sks: Vec<&str> = page.items.iter().filter_map(|i| i["sk"].as_str()).collect();
            assert_eq!(
                sks,
                ["E#02", "E#03", "E#04", "E#05"],
                "both bounds included"
            );
            let (ascending, pages) = read_all(store, middle.clone().limit(3), "sk").await;
            assert_eq!(ascending, ["E#02", "E#03", "E#04", "E#05"]);
            assert_eq!(pages, 2);
            let (descending, _) = read_all(store, middle.clone().descending().limit(3), "sk").await;
            assert_eq!(descending, ["E#05", "E#04", "E#03", "E#02"]);
            let (loose, _) = read_all(
                store,
                Query::partition(Index::Primary, "RANGE#1").between("E#015", "E#035"),
                "sk",
            )
            .await;
            assert_eq!(loose, ["E#02", "E#03"]);

            // gsi1sk = T#(10 - n): T#05 (n=5) to T#08 (n=2).
            let by_time = Query::partition(Index::Gsi1, "RANGE#by-time").between("T#05", "T#08");
            let (gsi, pages) = read_all(store, by_time.clone().limit(1), "gsi1sk").await;
            assert_eq!(gsi, ["T#05", "T#06", "T#07", "T#08"]);
            assert!(pages >= 4, "{pages}");
            let (gsi, _) = read_all(store, by_time.clone().descending().limit(3), "sk").await;
            assert_eq!(gsi, ["E#02", "E#03", "E#04", "E#05"]);

            let both = middle.clone().prefix("E#");
            assert!(matches!(
                store.query(&both).await,
                Err(StoreError::Invalid(_))
            ));
            let reversed = Query::partition(Index::Primary, "RANGE#1").between("E#05", "E#02");
            assert!(matches!(
                store.query(&reversed).await,
                Err(StoreError::Invalid(_))
            ));
        }

        async fn batch_reads(store: &DynamoStore) {
            for n in 0..100 {
                let entry =
                    item(json!({"pk": "BATCH#1", "sk": format!("{n:03}"), "n": n, "status": "x"}));
                store.put(entry, Cond::Always).await.expect("put");
            }
            let keys = [
                Key::new("BATCH#1", "007"),
                Key::new("BATCH#1", "missing"),
                Key::new("BATCH#2", "007"),
                Key::new("BATCH#1", "042"),
            ];
            let found = store.get_many(&keys).await.expect("get_many");
            let mut numbers: Vec<i64> = found.iter().filter_map(|i| i["n"].as_i64()).collect();
            numbers.sort_unstable();
            assert_eq!(numbers, [7, 42]);
            assert!(found.contains(&item(
                json!({"pk": "BATCH#1", "sk": "007", "n": 7, "status": "x"})
            )));

            let hundred: Vec<Key> = (0..100)
                .map(|n| Key::new("BATCH#1", format!("{n:03}")))
                .collect();
            let found = store.get_many(&hundred).await.expect("100 keys");
            let mut numbers: Vec<i64> = found.iter().filter_map(|i| i["n"].as_i64()).collect();
            numbers.sort_unstable();
            assert_eq!(numbers, (0..100).collect::<Vec<i64>>());
            let mut too_many = hundred;
            too_many.push(Key::new("BATCH#1", "100"));
            assert!(matches!(
                store.get_many(&too_many).await,
                Err(StoreError::Invalid(_))
            ));
            let twice = [keys[0].clone(), keys[0].clone()];
            assert!(matches!(
                store.get_many(&twice).await,
                Err(StoreError::Invalid(_))
            ));
            assert_eq!(store.get_many(&[]).await, Ok(Vec::new()));
        }
    }
}
