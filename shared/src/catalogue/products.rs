//! Products: create (unique SKU), read, update with optimistic concurrency, archive. Every
//! write carries the product's index entries in the same transaction.

use std::collections::HashMap;

use serde_json::json;

use crate::Ports;
use crate::catalogue::categories::Categories;
use crate::catalogue::index;
use crate::catalogue::model::{Product, ProductStatus};
use crate::catalogue::requests::{CreateProduct, UpdateProduct};
use crate::commit::{Commit, Round, Tx};
use crate::entity::{self, Stored};
use crate::error::{Error, FieldError, Result};
use crate::ids::{CategoryId, ProductId};
use crate::keys;
use crate::ports::{Cond, Item, Key, TxOp, Update, store};
use crate::validation;

/// Creating a product: a taken SKU is final.
const CREATE: Commit = Commit::new("products.create", || {
    Error::conflict("the product could not be created; try again")
});

/// An update is conditional on the version the client read: after a race lost, the fresh
/// read shows the client's version is stale, and that is the answer.
const UPDATE: Commit = Commit::new("products.update", || {
    Error::conflict("the product changed meanwhile; try again")
});

/// Archiving: a lost race (an update, a stock change) is computed again.
const ARCHIVE: Commit = Commit::new("products.archive", || {
    Error::conflict("the product changed meanwhile; try again")
});

#[derive(Clone)]
pub struct Products {
    ports: Ports,
    categories: Categories,
}

impl Products {
    pub fn new(ports: Ports) -> Self {
        Self {
            categories: Categories::new(ports.clone()),
            ports,
        }
    }

    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    pub fn categories(&self) -> &Categories {
        &self.categories
    }

    #[tracing::instrument(target = "bazaar::span", name = "products.create", skip_all)]
    pub async fn create(&self, request: CreateProduct) -> Result<Product> {
        validation::check(&request)?;
        let category_id = match request.category_id {
            Some(id) => Some(self.existing_category(&CategoryId::trusted(id)).await?),
            None => None,
        };
        let now = self.ports.clock.now();
        let mut product = Product {
            id: self.ports.ids.fresh(),
            sku: request.sku.unwrap_or_default(),
            name: request.name.unwrap_or_default().trim().to_owned(),
            description: request.description.unwrap_or_default().trim().to_owned(),
            category_id,
            price: request
                .price
                .ok_or_else(|| Error::invalid("price", "is required"))?,
            available: request.stock.unwrap_or(0),
            reserved: 0,
            images: Vec::new(),
            version: 1,
            stock_version: 0,
            status: ProductStatus::Active,
            created_at: now,
            updated_at: now,
            indexed_terms: Vec::new(),
        };
        product.indexed_terms = index::terms(&product);
        let claim = keys::sku_claim(&product.sku);
        let mut claim_item = Item::new();
        claim_item.insert(store::PK.into(), claim.pk.into());
        claim_item.insert(store::SK.into(), claim.sk.into());
        claim_item.insert("product_id".into(), product.id.clone().into());
        let (product, claim_item) = (&product, &claim_item);
        CREATE
            .run(&self.ports, move |_: Round| async move {
                let mut tx = Tx::new(product.clone());
                tx.write(TxOp::Put {
                    item: product.to_item()?,
                    cond: Cond::NotExists,
                });
                let sku = tx.write(TxOp::Put {
                    item: claim_item.clone(),
                    cond: Cond::NotExists,
                });
                tx.write_all(index::changes(None, product));
                let taken = product.sku.clone();
                Ok(tx
                    .final_refusals(move |failed| {
                        failed.contains(&sku).then(|| Error::Conflict {
                            message: format!("a product with SKU {taken} already exists"),
                            fields: vec![FieldError::new("sku", "is already taken")],
                        })
                    })
                    .into())
            })
            .await
    }

    /// The category a request names: only looked up, so an unknown id (well formed or not) is
    /// one 422.
    async fn existing_category(&self, id: &CategoryId) -> Result<CategoryId> {
        match self.categories.get(id).await? {
            Some(category) => Ok(category.id),
            None => Err(Error::invalid("category_id", "no such category")),
        }
    }

    /// The product, whatever its status.
    pub async fn find(&self, id: &ProductId) -> Result<Option<Product>> {
        match self.ports.store.get(&keys::product(id)).await? {
            Some(item) => Product::from_item(item).map(Some),
            None => Ok(None),
        }
    }

    /// An active product; archived ones are gone for clients.
    #[tracing::instrument(target = "bazaar::span", name = "products.get", skip_all)]
    pub async fn get(&self, id: &ProductId) -> Result<Product> {
        self.find(id)
            .await?
            .filter(Product::is_active)
            .ok_or(Error::NotFound("product"))
    }

    /// The product with this SKU (any status).
    pub async fn by_sku(&self, sku: &str) -> Result<Option<Product>> {
        let Some(claim) = self.ports.store.get(&keys::sku_claim(sku)).await? else {
            return Ok(None);
        };
        match claim.get("product_id").and_then(serde_json::Value::as_str) {
            Some(id) => self.find(&ProductId::trusted(id)).await,
            None => Err(Error::Internal(format!(
                "SKU claim without a product: {sku}"
            ))),
        }
    }

    /// Active products by id, in the order asked, skipping ids that are not (or no longer) there.
    pub async fn get_many(&self, ids: &[ProductId]) -> Result<Vec<Product>> {
        let mut found: HashMap<ProductId, Product> = HashMap::new();
        for chunk in ids.chunks(crate::ports::store::MAX_BATCH_GET) {
            let keys: Vec<Key> = chunk.iter().map(keys::product).collect();
            for item in self.ports.store.get_many(&keys).await? {
                let product = Product::from_item(item)?;
                found.insert(product.id.clone(), product);
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| found.remove(id))
            .filter(Product::is_active)
            .collect())
    }

    /// Changes a product's own fields. `if_match` is the version from an `If-Match` header;
    /// without it the body's `version` is required.
    #[tracing::instrument(target = "bazaar::span", name = "products.update", skip_all)]
    pub async fn update(
        &self,
        id: &ProductId,
        request: UpdateProduct,
        if_match: Option<u64>,
    ) -> Result<Product> {
        validation::check(&request)?;
        if request.sku.is_some() {
            return Err(Error::invalid(
                "sku",
                "cannot be changed; create a new product",
            ));
        }
        let expected = if_match.or(request.version).ok_or_else(|| {
            Error::PreconditionRequired(
                "send the version you read, in `version` or as If-Match".to_owned(),
            )
        })?;
        let request = &request;
        UPDATE
            .run(&self.ports, move |_: Round| async move {
                let current = self.get(id).await?;
                if current.version != expected {
                    return Err(stale(if_match.is_some(), current.version));
                }
                let next = self.updated(&current, request).await?;
                let mut tx = Tx::new(());
                tx.write(TxOp::Update {
                    key: keys::product(id),
                    updates: vec![
                        Update::set(Product::NAME, next.name.as_str()),
                        Update::set(Product::DESCRIPTION, next.description.as_str()),
                        Update::set(Product::CATEGORY_ID, json!(next.category_id)),
                        Update::set(Product::PRICE, json!(next.price)),
                        Update::set(Product::INDEXED_TERMS, json!(next.indexed_terms)),
                        Update::set(Product::UPDATED_AT, entity::timestamp(next.updated_at)),
                        Update::add(Product::VERSION, 1),
                    ],
                    cond: Cond::All(vec![
                        Cond::eq(Product::VERSION, expected),
                        Cond::eq(Product::STATUS, json!(ProductStatus::Active)),
                    ]),
                });
                tx.write_all(index::changes(Some(&current), &next));
                Ok(tx.into())
            })
            .await?;
        self.get(id).await
    }

    /// `current` with the request's changes applied (the next version).
    async fn updated(&self, current: &Product, request: &UpdateProduct) -> Result<Product> {
        let mut next = current.clone();
        if let Some(name) = &request.name {
            next.name = name.trim().to_owned();
        }
        if let Some(description) = &request.description {
            next.description = description.trim().to_owned();
        }
        if let Some(category) = &request.category_id {
            next.category_id = match category {
                Some(id) => Some(
                    self.existing_category(&CategoryId::trusted(id.as_str()))
                        .await?,
                ),

                None => None,
            };
        }
        if let Some(price) = &request.price {
            next.price = price.clone();
        }
        next.version += 1;
        next.updated_at = self.ports.clock.now();
        next.indexed_terms = index::terms(&next);
        Ok(next)
    }

    /// Archives a product: it leaves every listing and search, and reads as 404.
    #[tracing::instrument(target = "bazaar::span", name = "products.archive", skip_all)]
    pub async fn archive(&self, id: &ProductId, if_match: Option<u64>) -> Result<()> {
        ARCHIVE
            .run(&self.ports, move |_: Round| async move {
                let current = self.get(id).await?;
                if let Some(expected) = if_match
                    && expected != current.version
                {
                    return Err(stale(true, current.version));
                }
                let mut archived = current.clone();
                archived.status = ProductStatus::Archived;
                let mut tx = Tx::new(());
                tx.write(TxOp::Update {
                    key: keys::product(id),
                    updates: vec![
                        Update::set(Product::STATUS, json!(ProductStatus::Archived)),
                        Update::set(
                            Product::UPDATED_AT,
                            entity::timestamp(self.ports.clock.now()),
                        ),
                        Update::add(Product::VERSION, 1),
                    ],
                    cond: Cond::eq(Product::VERSION, current.version),
                });
                tx.write_all(index::changes(Some(&current), &archived));
                Ok(tx.into())
            })
            .await
    }
}

/// A stale version: 412 for `If-Match`, 409 for a `version` in the body.
fn stale(if_match: bool, current: u64) -> Error {
    let message = format!("the product has changed; its current version is {current}");
    if if_match {
        Error::PreconditionFailed(message)
    } else {
        Error::conflict(message)
    }
}
