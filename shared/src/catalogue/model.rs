//! Catalogue entities, how they are stored, and what clients see of them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::entity::{self, Stored};
use crate::ids::{CategoryId, ProductId};
use crate::keys;
use crate::money::Money;
use crate::ports::Key;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub id: CategoryId,
    pub name: String,
    pub slug: String,
    pub parent_id: Option<CategoryId>,
}

impl Stored for Category {
    const KIND: &'static str = "category";
    type Owner = ();

    fn key(&self, _: &()) -> Key {
        keys::category(&self.id)
    }

    /// Every category is listed in the categories index, by slug.
    fn index_key(&self, _: &()) -> Option<Key> {
        Some(Key::new(
            keys::CATEGORIES_INDEX_PARTITION,
            self.slug.clone(),
        ))
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
    pub id: ProductId,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category_id: Option<CategoryId>,
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
    pub id: ProductId,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category_id: Option<CategoryId>,
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

impl Stored for Product {
    const KIND: &'static str = "product";
    type Owner = ();

    fn key(&self, _: &()) -> Key {
        keys::product(&self.id)
    }
}

entity::attributes!(Product {
    NAME = "name",
    DESCRIPTION = "description",
    CATEGORY_ID = "category_id",
    PRICE = "price",
    AVAILABLE = "available",
    RESERVED = "reserved",
    IMAGES = "images",
    VERSION = "version",
    STOCK_VERSION = "stock_version",
    STATUS = "status",
    UPDATED_AT = "updated_at",
    INDEXED_TERMS = "indexed_terms",
});

impl Product {
    pub fn is_active(&self) -> bool {
        self.status == ProductStatus::Active
    }
}
