//! Counters that a conditional add keeps under a limit (subscriptions per user, unpaid
//! orders, send budgets, proof messages per target). DynamoDB's `ADD` with a condition on the
//! count needs the attribute to exist, so each counter is first created at zero.

use serde_json::{Value, json};

use crate::entity;
use crate::error::Result;
use crate::ports::{Cond, Key, Store, StoreError};

/// Creates the counter under `key` at zero (expiring at `expires_at`, the table's TTL, when
/// given), unless it exists already; an existing counter is left as it is.
pub async fn create_if_missing(
    store: &dyn Store,
    key: &Key,
    expires_at: Option<i64>,
) -> Result<()> {
    let mut fields = json!({"count": 0});
    if let (Some(expires_at), Value::Object(fields)) = (expires_at, &mut fields) {
        fields.insert("expires_at".into(), expires_at.into());
    }
    match store.put(entity::keyed(key, fields), Cond::NotExists).await {
        Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(other) => Err(other.into()),
    }
}
