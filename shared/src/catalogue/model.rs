//! Catalogue entities, how they are stored, and what clients see of them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::keys;
use crate::money::Money;
use crate::ports::{Item, store};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub parent_id: Option<String>,
}

impl Category {
    pub fn to_item(&self) -> Result<Item> {
        let mut item = object(serde_json::to_value(self))?;
        let key = keys::category(&self.id);
        item.insert(store::PK.into(), key.pk.into());
        item.insert(store::SK.into(), key.sk.into());
        item.insert(
            store::GSI1PK.into(),
            keys::CATEGORIES_INDEX_PARTITION.into(),
        );
        item.insert(store::GSI1SK.into(), self.slug.clone().into());
        Ok(item)
    }

    pub fn from_item(item: Item) -> Result<Self> {
        from_object(item, "category")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProductStatus {
    Active,
    /// Hidden from the catalogue; kept for orders and history, its SKU stays taken.
    Archived,
}

/// A product as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category_id: Option<String>,
    pub price: Money,
    /// What can still be sold: on hand minus reserved.
    pub available: i64,
    /// Held by unpaid orders.
    pub reserved: i64,
    pub images: Vec<String>,
    /// Bumped by every change to the product's own fields (optimistic concurrency, `If-Match`).
    pub version: u64,
    /// Bumped by every stock change; stock writes are conditional on it.
    pub stock_version: u64,
    pub status: ProductStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The words this product is indexed under, kept so that an update can remove exactly
    /// the entries it wrote.
    #[serde(default)]
    pub indexed_terms: Vec<String>,
}

/// The product as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductView {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category_id: Option<String>,
    pub price: Money,
    /// Available quantity.
    pub stock: i64,
    pub images: Vec<String>,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Product> for ProductView {
    fn from(product: &Product) -> Self {
        Self {
            id: product.id.clone(),
            sku: product.sku.clone(),
            name: product.name.clone(),
            description: product.description.clone(),
            category_id: product.category_id.clone(),
            price: product.price.clone(),
            stock: product.available,
            images: product.images.clone(),
            version: product.version,
            created_at: product.created_at,
            updated_at: product.updated_at,
        }
    }
}

impl Product {
    pub fn to_item(&self) -> Result<Item> {
        let mut item = object(serde_json::to_value(self))?;
        let key = keys::product(&self.id);
        item.insert(store::PK.into(), key.pk.into());
        item.insert(store::SK.into(), key.sk.into());
        Ok(item)
    }

    pub fn from_item(item: Item) -> Result<Self> {
        from_object(item, "product")
    }

    pub fn is_active(&self) -> bool {
        self.status == ProductStatus::Active
    }
}

fn object(value: serde_json::Result<Value>) -> Result<Item> {
    match value {
        Ok(Value::Object(item)) => Ok(item),
        Ok(_) => Err(Error::Internal("entity is not an object".to_owned())),
        Err(error) => Err(Error::Internal(format!(
            "entity does not serialise: {error}"
        ))),
    }
}

fn from_object<T: serde::de::DeserializeOwned>(item: Item, what: &str) -> Result<T> {
    serde_json::from_value(Value::Object(item))
        .map_err(|error| Error::Internal(format!("stored {what} is malformed: {error}")))
}
