//! Listing and search. Every read names a partition: a listing partition of the chosen scope
//! and order (see [`crate::catalogue::index`]), or, for text search, the term partition of one
//! word of the query. Products are then read by key in one batch; filters the key order cannot
//! serve (stock, and price unless sorting by price) are applied to what was read, as DynamoDB's
//! filter expressions would, and a page may come back short with a cursor to go on.

use std::collections::HashSet;

use serde_json::Value;

use crate::catalogue::index::{self, Order};
use crate::catalogue::model::{Product, ProductView};
use crate::catalogue::products::Products;
use crate::catalogue::text;
use crate::error::{Error, Result};
use crate::ids::ProductId;
use crate::keys;
use crate::money::MAX_AMOUNT;
use crate::pagination::{self, Listing, PageRequest};
use crate::ports::{Index, Item, Query};

/// Listing pages one request may read before it answers with what it has and a cursor.
const MAX_PAGES_PER_REQUEST: usize = 5;
/// The most products one search considers: the newest this many containing its rarest word.
pub const MAX_SEARCH_CANDIDATES: usize = 1000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    #[default]
    Newest,
    PriceAsc,
    PriceDesc,
    Name,
}

impl Sort {
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "newest" => Sort::Newest,
            "price_asc" => Sort::PriceAsc,
            "price_desc" => Sort::PriceDesc,
            "name" => Sort::Name,
            _ => return None,
        })
    }

    fn order(self) -> Order {
        match self {
            Sort::Newest => Order::Newest,
            Sort::PriceAsc | Sort::PriceDesc => Order::Price,
            Sort::Name => Order::Name,
        }
    }

    fn ascending(self) -> bool {
        matches!(self, Sort::PriceAsc | Sort::Name)
    }
}

/// What a client asked to list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListRequest {
    /// A category id or slug.
    pub category: Option<String>,
    pub q: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub in_stock: bool,
    pub sort: Sort,
    pub page: PageRequest,
}

impl ListRequest {
    fn check(&self) -> Result<()> {
        for (name, value) in [("min_price", self.min_price), ("max_price", self.max_price)] {
            if value.is_some_and(|amount| !(0..=MAX_AMOUNT).contains(&amount)) {
                return Err(Error::BadRequest(format!(
                    "{name} must be between 0 and {MAX_AMOUNT}"
                )));
            }
        }
        if let (Some(min), Some(max)) = (self.min_price, self.max_price)
            && min > max
        {
            return Err(Error::BadRequest(
                "min_price is greater than max_price".to_owned(),
            ));
        }
        self.page.limit()?;
        Ok(())
    }

    fn admits(&self, product: &Product, category_id: Option<&str>) -> bool {
        let amount = product.price.amount;
        product.is_active()
            && self.min_price.is_none_or(|min| amount >= min)
            && self.max_price.is_none_or(|max| amount <= max)
            && (!self.in_stock || product.available > 0)
            && category_id.is_none_or(|id| product.category_id.as_deref() == Some(id))
    }
}

#[tracing::instrument(target = "bazaar::span", name = "products.list", skip_all)]
pub async fn list(products: &Products, request: &ListRequest) -> Result<Listing<ProductView>> {
    request.check()?;
    let category_id = match &request.category {
        Some(wanted) => match products.categories().resolve(wanted).await? {
            Some(category) => Some(category.id),
            // A category that does not exist has no products.
            None => {
                return Ok(Listing {
                    items: Vec::new(),
                    next_cursor: None,
                });
            }
        },
        None => None,
    };
    match request
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
    {
        Some(q) => search(products, request, q, category_id.as_deref()).await,
        None => browse(products, request, category_id.as_deref()).await,
    }
}

/// Lists a scope in one order, reading the listing partition a page at a time.
async fn browse(
    products: &Products,
    request: &ListRequest,
    category_id: Option<&str>,
) -> Result<Listing<ProductView>> {
    let order = request.sort.order();
    let mut query = Query::partition(
        Index::Primary,
        index::partition(&index::scope(category_id), order),
    );
    if !request.sort.ascending() {
        query = query.descending();
    }
    if order == Order::Price && (request.min_price.is_some() || request.max_price.is_some()) {
        // The price order serves a price range straight from the keys.
        let from = index::price_key(request.min_price.unwrap_or(0));
        let to = format!(
            "{}#~",
            index::price_key(request.max_price.unwrap_or(MAX_AMOUNT))
        );
        query = query.between(from, to);
    }
    let limit = request.page.limit()?;
    let mut query = request.page.apply(query)?;
    let mut items = Vec::new();
    for _ in 0..MAX_PAGES_PER_REQUEST {
        query.limit = limit - items.len();
        let page = products.ports().store.query(&query).await?;
        let ids = product_ids(&page.items);
        items.extend(
            products
                .get_many(&ids)
                .await?
                .iter()
                .filter(|product| request.admits(product, category_id))
                .map(ProductView::from),
        );
        match page.last_key {
            Some(last) if items.len() < limit => query.start_after = Some(last),
            Some(last) => {
                return Ok(Listing {
                    items,
                    next_cursor: Some(pagination::encode(&last)),
                });
            }
            None => {
                return Ok(Listing {
                    items,
                    next_cursor: None,
                });
            }
        }
    }
    Ok(Listing {
        items,
        next_cursor: query.start_after.as_ref().map(pagination::encode),
    })
}

/// Finds the products containing every word of `q`: candidates come from the term partition
/// of the query's longest word (the likeliest to be rare), are read by key, checked against
/// the other words and the filters, sorted, and paged by offset.
async fn search(
    products: &Products,
    request: &ListRequest,
    q: &str,
    category_id: Option<&str>,
) -> Result<Listing<ProductView>> {
    let words = text::tokens(q);
    let Some(driver) = words.iter().max_by_key(|word| word.chars().count()) else {
        return Err(Error::BadRequest(
            "q must contain at least one letter or digit".to_owned(),
        ));
    };
    let offset = match &request.page.cursor {
        Some(cursor) => pagination::decode_offset(cursor)?,
        None => 0,
    };
    let limit = request.page.limit()?;

    let mut ids = Vec::new();
    let mut query = Query::partition(Index::Primary, keys::term_partition(driver))
        .descending()
        .limit(100);
    while ids.len() < MAX_SEARCH_CANDIDATES {
        let page = products.ports().store.query(&query).await?;
        ids.extend(product_ids(&page.items));
        match page.last_key {
            Some(last) => query.start_after = Some(last),
            None => break,
        }
    }
    ids.truncate(MAX_SEARCH_CANDIDATES);

    let mut found: Vec<Product> = products
        .get_many(&ids)
        .await?
        .into_iter()
        .filter(|product| {
            let terms: HashSet<&str> = product.indexed_terms.iter().map(String::as_str).collect();
            words.iter().all(|word| terms.contains(word.as_str()))
                && request.admits(product, category_id)
        })
        .collect();
    sort(&mut found, request.sort);
    // The offset comes from the client's cursor: saturate rather than overflow.
    let end = offset.saturating_add(limit);
    let next_cursor = (found.len() > end).then(|| pagination::encode_offset(end));
    Ok(Listing {
        items: found
            .iter()
            .skip(offset)
            .take(limit)
            .map(ProductView::from)
            .collect(),
        next_cursor,
    })
}

/// The products that index entries (listing or search term) point at, in entry order.
fn product_ids(entries: &[Item]) -> Vec<ProductId> {
    entries
        .iter()
        .filter_map(|entry| {
            entry
                .get("product_id")
                .and_then(Value::as_str)
                .map(ProductId::trusted)
        })
        .collect()
}

fn sort(products: &mut [Product], by: Sort) {
    match by {
        Sort::Newest => products.sort_by(|a, b| b.id.cmp(&a.id)),
        Sort::PriceAsc => {
            products.sort_by(|a, b| (a.price.amount, &a.id).cmp(&(b.price.amount, &b.id)))
        }
        Sort::PriceDesc => {
            products.sort_by(|a, b| (b.price.amount, &b.id).cmp(&(a.price.amount, &a.id)))
        }
        Sort::Name => products.sort_by_cached_key(|p| (text::normalise(&p.name), p.id.clone())),
    }
}
