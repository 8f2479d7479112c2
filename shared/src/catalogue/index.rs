//! The catalogue's own indexes, kept in the table next to the products so that no read path
//! ever scans: for each listed product, one entry per (scope, order) listing partition, and
//! one entry per word in the search-term partitions. They are written in the same transaction
//! as the product, so a listing never shows a product that is not there (nor misses one that
//! is).

use std::collections::BTreeSet;

use crate::catalogue::model::Product;
use crate::catalogue::text;
use crate::keys;
use crate::ports::{Cond, Item, Key, TxOp, store};

/// How many words of a product are indexed (its name's first, then its description's). With
/// the product and its listing entries this keeps every write inside one transaction.
pub const MAX_TERMS: usize = 40;

/// Listing orders, each its own partition family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// By id: ULIDs sort by creation time.
    Newest,
    /// By price amount (minor units), then id.
    Price,
    /// By normalised name, then id.
    Name,
}

impl Order {
    pub const ALL: [Order; 3] = [Order::Newest, Order::Price, Order::Name];

    fn as_str(self) -> &'static str {
        match self {
            Order::Newest => "NEWEST",
            Order::Price => "PRICE",
            Order::Name => "NAME",
        }
    }
}

/// The scope of a listing: the whole catalogue, or one category.
pub fn scope(category_id: Option<&str>) -> String {
    match category_id {
        Some(id) => format!("CAT#{id}"),
        None => "ALL".to_owned(),
    }
}

pub fn partition(scope: &str, order: Order) -> String {
    keys::listing_partition(scope, order.as_str())
}

/// Ends the name part of a name-order key (below space and every printable character).
const NAME_SEPARATOR: char = '\u{1}';

/// A price as a sort key: zero-padded so that strings sort as numbers.
pub fn price_key(amount: i64) -> String {
    format!("{:019}", amount.max(0))
}

fn sort_key(order: Order, product: &Product) -> String {
    match order {
        Order::Newest => product.id.to_string(),
        Order::Price => format!("{}#{}", price_key(product.price.amount), product.id),
        Order::Name => {
            // The separator sorts below every character a name can hold, so that "tea" comes
            // before "tea cup" as it does in a dictionary.
            let name: String = text::normalise(&product.name).chars().take(100).collect();
            format!("{name}{NAME_SEPARATOR}{}", product.id)
        }
    }
}

/// The listing entries of a product (none when it is archived).
pub fn listing_keys(product: &Product) -> Vec<Key> {
    if !product.is_active() {
        return Vec::new();
    }
    let mut scopes = vec![scope(None)];
    if let Some(category) = &product.category_id {
        scopes.push(scope(Some(category.as_str())));
    }
    scopes
        .iter()
        .flat_map(|scope| {
            Order::ALL.map(|order| Key::new(partition(scope, order), sort_key(order, product)))
        })
        .collect()
}

/// The words a product is found by.
pub fn terms(product: &Product) -> Vec<String> {
    let mut seen = BTreeSet::new();
    text::tokens(&product.name)
        .into_iter()
        .chain(text::tokens(&product.description))
        .filter(|term| seen.insert(term.clone()))
        .take(MAX_TERMS)
        .collect()
}

fn term_keys(product: &Product) -> Vec<Key> {
    if !product.is_active() {
        return Vec::new();
    }
    product
        .indexed_terms
        .iter()
        .map(|term| Key::new(keys::term_partition(term), product.id.clone()))
        .collect()
}

fn entry(key: &Key, product: &Product) -> Item {
    let mut item = Item::new();
    item.insert(store::PK.into(), key.pk.clone().into());
    item.insert(store::SK.into(), key.sk.clone().into());
    item.insert("product_id".into(), product.id.clone().into());
    item
}

/// The writes that move a product's index entries from `old` to `new`: entries only the old
/// state had are deleted, the new state's entries are written.
pub fn changes(old: Option<&Product>, new: &Product) -> Vec<TxOp> {
    let before: BTreeSet<Key> = old
        .map(|old| {
            listing_keys(old)
                .into_iter()
                .chain(term_keys(old))
                .collect()
        })
        .unwrap_or_default();
    let after: BTreeSet<Key> = listing_keys(new)
        .into_iter()
        .chain(term_keys(new))
        .collect();
    let deletes = before.difference(&after).map(|key| TxOp::Delete {
        key: key.clone(),
        cond: Cond::Always,
    });
    let puts = after.difference(&before).map(|key| TxOp::Put {
        item: entry(key, new),
        cond: Cond::Always,
    });
    deletes.chain(puts).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::model::ProductStatus;
    use crate::ids::{CategoryId, ProductId};
    use crate::money::Money;

    fn product(id: &str, name: &str, amount: i64, category: Option<&str>) -> Product {
        let mut product = Product {
            id: ProductId::trusted(id),
            sku: format!("SKU-{id}"),
            name: name.into(),
            description: "a fine thing".into(),
            category_id: category.map(CategoryId::trusted),
            price: Money {
                amount,
                currency: "USD".into(),
            },
            available: 1,
            reserved: 0,
            images: vec![],
            version: 1,
            stock_version: 0,
            status: ProductStatus::Active,
            created_at: Default::default(),
            updated_at: Default::default(),
            indexed_terms: vec![],
        };
        product.indexed_terms = terms(&product);
        product
    }

    #[test]
    fn a_product_is_listed_in_every_order_of_its_scopes_and_under_its_words() {
        let shoe = product("01A", "Red Shoe", 1999, Some("c1"));
        let ops = changes(None, &shoe);
        let partitions: BTreeSet<String> = ops
            .iter()
            .filter_map(|op| match op {
                TxOp::Put { item, .. } => {
                    item.get("pk").and_then(|v| v.as_str()).map(str::to_owned)
                }
                _ => None,
            })
            .collect();
        for expected in [
            "LIST#ALL#NEWEST",
            "LIST#ALL#PRICE",
            "LIST#ALL#NAME",
            "LIST#CAT#c1#NEWEST",
            "LIST#CAT#c1#PRICE",
            "LIST#CAT#c1#NAME",
            "TERM#red",
            "TERM#shoe",
            "TERM#fine",
            "TERM#thing",
        ] {
            assert!(
                partitions.contains(expected),
                "{expected} missing from {partitions:?}"
            );
        }
        assert!(ops.iter().all(|op| matches!(op, TxOp::Put { .. })));
    }

    #[test]
    fn an_update_moves_only_what_changed_and_archiving_removes_everything() {
        let old = product("01A", "Red Shoe", 1999, Some("c1"));
        let mut cheaper = product("01A", "Red Shoe", 999, Some("c1"));
        cheaper.version = 2;
        let ops = changes(Some(&old), &cheaper);
        // Two price entries move (ALL and the category): two deletes, two puts.
        assert_eq!(
            ops.iter()
                .filter(|op| matches!(op, TxOp::Delete { .. }))
                .count(),
            2
        );
        assert_eq!(
            ops.iter()
                .filter(|op| matches!(op, TxOp::Put { .. }))
                .count(),
            2
        );

        let mut archived = old.clone();
        archived.status = ProductStatus::Archived;
        let ops = changes(Some(&old), &archived);
        assert_eq!(ops.len(), 6 + old.indexed_terms.len());
        assert!(ops.iter().all(|op| matches!(op, TxOp::Delete { .. })));
    }

    #[test]
    fn prices_sort_as_numbers_and_terms_are_bounded() {
        assert!(price_key(999) < price_key(1000));
        let wordy = Product {
            description: (0..200).map(|n| format!("word{n} ")).collect(),
            ..product("01B", "Many Words", 1, None)
        };
        assert_eq!(terms(&wordy).len(), MAX_TERMS);
        assert_eq!(terms(&wordy)[0], "many");
    }
}
