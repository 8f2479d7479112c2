//! Categories: a flat list whose `parent_id`s make a tree. Slugs are unique (a claim item,
//! written in the same transaction as the category).

use serde_json::Value;

use crate::Ports;
use crate::catalogue::model::Category;
use crate::catalogue::requests::{self, CreateCategory};
use crate::entity::Stored;
use crate::error::{Error, FieldError, Result};
use crate::ids::CategoryId;
use crate::keys;
use crate::pagination::{self, Listing, PageRequest};
use crate::ports::{Cond, Index, Item, Query, StoreError, TxOp, store};
use crate::validation;

#[derive(Clone)]
pub struct Categories {
    ports: Ports,
}

impl Categories {
    pub fn new(ports: Ports) -> Self {
        Self { ports }
    }

    #[tracing::instrument(target = "bazaar::span", name = "categories.create", skip_all)]
    pub async fn create(&self, request: CreateCategory) -> Result<Category> {
        validation::check(&request)?;
        let name = request.name.unwrap_or_default().trim().to_owned();
        let slug = match request.slug {
            Some(slug) => slug,
            None => {
                let slug = requests::slug_of(&name);
                if slug.is_empty() {
                    return Err(Error::invalid(
                        "slug",
                        "cannot be made from this name; give one",
                    ));
                }
                slug
            }
        };
        let mut ops = Vec::new();
        // The parent is only looked up: an unknown id, well formed or not, is the same 422.
        let parent_id = request.parent_id.map(CategoryId::trusted);
        if let Some(parent) = &parent_id {
            ops.push(TxOp::Check {
                key: keys::category(parent),
                cond: Cond::Exists,
            });
        }
        let category = Category {
            id: self.ports.ids.fresh(),
            name,
            slug,
            parent_id,
        };
        self.write_new(category, ops).await
    }

    /// Creates a category inside an import or another flow that already holds a valid slug.
    pub async fn ensure_slug(&self, slug: &str, name: &str) -> Result<Category> {
        if let Some(found) = self.by_slug(slug).await? {
            return Ok(found);
        }
        let category = Category {
            id: self.ports.ids.fresh(),
            name: name.to_owned(),
            slug: slug.to_owned(),
            parent_id: None,
        };
        match self.write_new(category, Vec::new()).await {
            Err(Error::Conflict { .. }) => {
                self.by_slug(slug).await?.ok_or(Error::NotFound("category"))
            }
            other => other,
        }
    }

    async fn write_new(&self, category: Category, mut ops: Vec<TxOp>) -> Result<Category> {
        let claim = keys::category_slug_claim(&category.slug);
        let mut claim_item = Item::new();
        claim_item.insert(store::PK.into(), claim.pk.into());
        claim_item.insert(store::SK.into(), claim.sk.into());
        claim_item.insert("category_id".into(), category.id.clone().into());
        let parent_checked = !ops.is_empty();
        ops.push(TxOp::Put {
            item: claim_item,
            cond: Cond::NotExists,
        });
        ops.push(TxOp::Put {
            item: category.to_item()?,
            cond: Cond::NotExists,
        });
        match self.ports.store.transact(ops).await {
            Ok(()) => Ok(category),
            Err(StoreError::TransactionCancelled { failed }) => {
                if parent_checked && failed.contains(&0) {
                    Err(Error::Validation(vec![FieldError::new(
                        "parent_id",
                        "no such category",
                    )]))
                } else {
                    Err(Error::Conflict {
                        message: format!("a category with slug {} already exists", category.slug),
                        fields: vec![FieldError::new("slug", "is already taken")],
                    })
                }
            }
            Err(other) => Err(other.into()),
        }
    }

    #[tracing::instrument(target = "bazaar::span", name = "categories.get", skip_all)]
    pub async fn get(&self, id: &CategoryId) -> Result<Option<Category>> {
        match self.ports.store.get(&keys::category(id)).await? {
            Some(item) => Category::from_item(item).map(Some),
            None => Ok(None),
        }
    }

    pub async fn by_slug(&self, slug: &str) -> Result<Option<Category>> {
        let Some(claim) = self
            .ports
            .store
            .get(&keys::category_slug_claim(slug))
            .await?
        else {
            return Ok(None);
        };
        match claim.get("category_id").and_then(Value::as_str) {
            Some(id) => self.get(&CategoryId::trusted(id)).await,
            None => Err(Error::Internal(format!(
                "slug claim without a category: {slug}"
            ))),
        }
    }

    /// Resolves `category` given as an id or a slug.
    pub async fn resolve(&self, id_or_slug: &str) -> Result<Option<Category>> {
        match self.get(&CategoryId::trusted(id_or_slug)).await? {
            Some(category) => Ok(Some(category)),
            None => self.by_slug(id_or_slug).await,
        }
    }

    /// Every category, by slug, a page at a time.
    #[tracing::instrument(target = "bazaar::span", name = "categories.list", skip_all)]
    pub async fn list(&self, page: &PageRequest) -> Result<Listing<Category>> {
        let query = page.apply(Query::partition(
            Index::Gsi1,
            keys::CATEGORIES_INDEX_PARTITION,
        ))?;
        let found = self.ports.store.query(&query).await?;
        Ok(Listing {
            items: found
                .items
                .into_iter()
                .map(Category::from_item)
                .collect::<Result<_>>()?,
            next_cursor: found.last_key.as_ref().map(pagination::encode),
        })
    }
}
