//! Entities as stored items: the entity's own fields as JSON, plus the key attributes that
//! place it in the table (and in the secondary index, when it is listed there).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ports::{Item, Key, store};

/// The item storing `entity` under `key`; `what` names the entity in errors.
pub fn to_item<T: Serialize>(entity: &T, key: Key, what: &str) -> Result<Item> {
    let Value::Object(mut item) = serde_json::to_value(entity)
        .map_err(|error| Error::Internal(format!("{what} does not serialise: {error}")))?
    else {
        return Err(Error::Internal(format!("{what} is not an object")));
    };
    item.insert(store::PK.into(), key.pk.into());
    item.insert(store::SK.into(), key.sk.into());
    Ok(item)
}

/// The same, also placed in the GSI1 partition `partition` at `sort`.
pub fn to_indexed_item<T: Serialize>(
    entity: &T,
    key: Key,
    partition: &str,
    sort: String,
    what: &str,
) -> Result<Item> {
    let mut item = to_item(entity, key, what)?;
    item.insert(store::GSI1PK.into(), partition.into());
    item.insert(store::GSI1SK.into(), sort.into());
    Ok(item)
}

/// A JSON object as an item; anything else is an empty item.
pub fn object(value: Value) -> Item {
    match value {
        Value::Object(map) => map,
        _ => Item::new(),
    }
}

/// An item under `key` holding the fields of `fields` (a JSON object).
pub fn keyed(key: &Key, fields: Value) -> Item {
    let mut item = object(fields);
    item.insert(store::PK.into(), key.pk.clone().into());
    item.insert(store::SK.into(), key.sk.clone().into());
    item
}

/// The entity stored in `item` (key attributes are ignored).
pub fn from_item<T: DeserializeOwned>(item: Item, what: &str) -> Result<T> {
    serde_json::from_value(Value::Object(item))
        .map_err(|error| Error::Internal(format!("stored {what} is malformed: {error}")))
}
