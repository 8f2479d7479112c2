//! Entities as stored items: the entity's own fields as JSON, plus the key attributes that
//! place it in the table (and in the secondary index, when it is listed there).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ports::{Item, Key, store};

/// An entity kept in the table as one item: its serde form, its key attributes (`pk`/`sk`,
/// and `gsi1pk`/`gsi1sk` when it is listed in the index), and any [`Stored::EXTRAS`]. Reading
/// ignores the key attributes.
///
/// Most entities hold everything their key is made of (`Owner = ()`) and are written with
/// [`Stored::to_item`]. The few kept in a partition they do not name (an address in its
/// user's, a history entry in its order's under the version it records) are written with
/// [`Stored::to_item_under`] and their owner. The owner is a parameter, not a
/// `#[serde(skip)]` field carrying its id: such a field would be empty on every entity read
/// back (the item holds the id only inside its key), would join every literal that builds the
/// entity, and would have to be kept in step with the owner by hand; only a write needs the
/// owner, and the compiler asks for it exactly there.
pub trait Stored: Serialize + DeserializeOwned {
    /// What the entity is called in errors.
    const KIND: &'static str;

    /// Attributes stored beside the entity's serialised fields: the values of fields kept out
    /// of its serde form (`#[serde(skip)]`, so that no response shows them), written from
    /// [`Stored::extra`] and given back to [`Stored::restore_extra`].
    const EXTRAS: &'static [&'static str] = &[];

    /// What the key is made of besides the entity itself: `()` for most entities.
    type Owner: ?Sized;

    /// The item's key in the table.
    fn key(&self, owner: &Self::Owner) -> Key;

    /// Where the item is listed in the secondary index (as `gsi1pk`, `gsi1sk`), if it is.
    fn index_key(&self, _owner: &Self::Owner) -> Option<Key> {
        None
    }

    /// The value of one of [`Stored::EXTRAS`]; none leaves the attribute out.
    fn extra(&self, _name: &str) -> Option<Value> {
        None
    }

    /// Takes back one of [`Stored::EXTRAS`] found in the item read.
    fn restore_extra(&mut self, _name: &str, _value: Value) {}

    /// The item storing the entity, kept under `owner`.
    fn to_item_under(&self, owner: &Self::Owner) -> Result<Item> {
        let Value::Object(mut item) = serde_json::to_value(self).map_err(|error| {
            Error::Internal(format!("{} does not serialise: {error}", Self::KIND))
        })?
        else {
            return Err(Error::Internal(format!("{} is not an object", Self::KIND)));
        };
        let key = self.key(owner);
        item.insert(store::PK.into(), key.pk.into());
        item.insert(store::SK.into(), key.sk.into());
        if let Some(index) = self.index_key(owner) {
            item.insert(store::GSI1PK.into(), index.pk.into());
            item.insert(store::GSI1SK.into(), index.sk.into());
        }
        for name in Self::EXTRAS {
            if let Some(value) = self.extra(name) {
                item.insert((*name).to_owned(), value);
            }
        }
        Ok(item)
    }

    /// The item storing the entity.
    fn to_item(&self) -> Result<Item>
    where
        Self: Stored<Owner = ()>,
    {
        self.to_item_under(&())
    }

    /// The entity stored in `item`.
    fn from_item(mut item: Item) -> Result<Self> {
        let extras: Vec<(&str, Value)> = Self::EXTRAS
            .iter()
            .filter_map(|name| item.remove(*name).map(|value| (*name, value)))
            .collect();
        let mut entity: Self = serde_json::from_value(Value::Object(item)).map_err(|error| {
            Error::Internal(format!("stored {} is malformed: {error}", Self::KIND))
        })?;
        for (name, value) in extras {
            entity.restore_extra(name, value);
        }
        Ok(entity)
    }
}

/// A time as stored: what an entity's `DateTime<Utc>` field serialises to (RFC 3339 in UTC,
/// `Z`, with as many fractional digits as it needs), for writes that set one attribute.
/// Reading accepts any RFC 3339 offset, so times stored as `+00:00` still read.
pub fn timestamp(at: DateTime<Utc>) -> Value {
    Value::String(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// Names the attributes of an entity that are written or checked one by one (in `Update`s
/// and `Cond`itions) as associated consts, and lists them in `ATTRIBUTES`, which a test holds
/// against the fields the entity serialises: a misspelt or renamed field fails it.
macro_rules! attributes {
    ($entity:ty { $($(#[$doc:meta])* $name:ident = $attribute:literal,)+ }) => {
        impl $entity {
            $($(#[$doc])* pub const $name: &'static str = $attribute;)+

            /// Every attribute named above.
            pub const ATTRIBUTES: &'static [&'static str] = &[$($attribute),+];
        }
    };
}
pub(crate) use attributes;

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

#[cfg(test)]
mod formats;
