//! Counters that a conditional add keeps under a limit (subscriptions per user, unpaid
//! orders, send budgets, proof messages per target). DynamoDB's `ADD` with a condition on the
//! count needs the attribute to exist, so each counter is first created at zero.

use serde_json::Value;

use crate::entity;
use crate::error::Result;
use crate::ports::store::EXPIRES_AT;
use crate::ports::{Cond, Item, Key, Store, StoreError};

/// The counted attribute of every counter.
pub const COUNT: &str = "count";

/// Creates the counter under `key` at zero (expiring at `expires_at`, the table's TTL, when
/// given), unless it exists already; an existing counter is left as it is.
pub async fn create_if_missing(
    store: &dyn Store,
    key: &Key,
    expires_at: Option<i64>,
) -> Result<()> {
    match store.put(at_zero(key, expires_at), Cond::NotExists).await {
        Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(other) => Err(other.into()),
    }
}

fn at_zero(key: &Key, expires_at: Option<i64>) -> Item {
    let mut fields = Item::new();
    fields.insert(COUNT.into(), 0.into());
    if let Some(expires_at) = expires_at {
        fields.insert(EXPIRES_AT.into(), expires_at.into());
    }
    entity::keyed(key, Value::Object(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_new_counter_is_zero_and_expires_when_asked() {
        let key = Key::new("P", "S");
        assert_eq!(
            Value::Object(at_zero(&key, Some(7))),
            json!({"pk": "P", "sk": "S", "count": 0, "expires_at": 7})
        );
        assert_eq!(
            Value::Object(at_zero(&key, None)),
            json!({"pk": "P", "sk": "S", "count": 0})
        );
    }
}
