//! Stock: available = on hand − reserved. Admins set or adjust what is on hand, never below
//! what unpaid orders hold. Each change is a transaction conditional on the product's
//! `stock_version`, so that the transition to zero is seen by exactly one writer: it emits
//! `PRODUCT_OUT_OF_STOCK` once (through the outbox, in the same transaction), and a return
//! above zero records a back-in-stock transition.

use serde_json::json;

use crate::Ports;
use crate::catalogue::model::Product;
use crate::catalogue::products::Products;
use crate::catalogue::requests::{MAX_STOCK, StockChange};
use crate::commit::{Commit, Round, Step, Tx};
use crate::entity;
use crate::error::{Error, Result};
use crate::events::{Event, EventType, ProductOutOfStock};
use crate::ids::ProductId;
use crate::keys;
use crate::outbox::{self, Staged};
use crate::ports::{Cond, TxOp, Update};
use crate::validation;

/// A stock change: a lost race (an order reserved, another admin changed it) is computed
/// again from the product as it is now.
const STOCK_CHANGE: Commit = Commit::new("products.change_stock", || {
    Error::conflict("the stock changed concurrently; try again")
});

/// What a stock change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    None,
    OutOfStock,
    BackInStock,
}

pub fn transition(before: i64, after: i64) -> Transition {
    match (before > 0, after > 0) {
        (true, false) => Transition::OutOfStock,
        (false, true) => Transition::BackInStock,
        _ => Transition::None,
    }
}

/// Sets (`set`) or adjusts (`adjust`) the units on hand of a product.
#[tracing::instrument(target = "bazaar::span", name = "products.change_stock", skip_all)]
pub async fn change(
    products: &Products,
    id: &ProductId,
    change: StockChange,
    correlation_id: &str,
) -> Result<Product> {
    validation::check(&change)?;
    let ports = products.ports();
    if change.set.is_some() == change.adjust.is_some() {
        return Err(Error::invalid(
            "set",
            "give exactly one of `set` and `adjust`",
        ));
    }
    let change = &change;
    STOCK_CHANGE
        .run(ports, move |_: Round| async move {
            let product = products.get(id).await?;
            let available = available_after(&product, change)?;
            stock_write(ports, &product, available, correlation_id).map(Step::from)
        })
        .await?;
    products.get(id).await
}

/// What `change` leaves available, refused when it would go below what unpaid orders hold
/// or above [`MAX_STOCK`] on hand.
fn available_after(product: &Product, change: &StockChange) -> Result<i64> {
    let on_hand = product.available + product.reserved;
    let target = match (change.set, change.adjust) {
        (Some(set), _) => set,
        (_, Some(delta)) => on_hand + delta,
        _ => on_hand,
    };
    if target < product.reserved {
        return Err(Error::conflict(format!(
            "stock cannot go below the {} units reserved by unpaid orders",
            product.reserved
        )));
    }
    if target > MAX_STOCK {
        return Err(Error::invalid(
            "adjust",
            "would put more than 10^9 units on hand",
        ));
    }
    Ok(target - product.reserved)
}

/// The writes of one stock change: the product, and for a transition its record (and, for
/// out-of-stock, its event).
fn stock_write(
    ports: &Ports,
    product: &Product,
    available: i64,
    correlation_id: &str,
) -> Result<Tx<()>> {
    let now = ports.clock.now();
    let mut tx = Tx::new(());
    tx.write(TxOp::Update {
        key: keys::product(&product.id),
        updates: vec![
            Update::set(Product::AVAILABLE, available),
            Update::set(Product::UPDATED_AT, entity::timestamp(now)),
            Update::add(Product::STOCK_VERSION, 1),
        ],
        cond: Cond::eq(Product::STOCK_VERSION, product.stock_version),
    });
    let kind = match transition(product.available, available) {
        Transition::None => return Ok(tx),
        Transition::OutOfStock => {
            let event = out_of_stock(ports, product, correlation_id)?;
            tx.send(Staged::new(outbox::NOTIFICATIONS_QUEUE, event));
            "out_of_stock"
        }
        Transition::BackInStock => "back_in_stock",
    };
    tx.write(transition_record(ports, &product.id, kind, available));
    Ok(tx)
}

/// The writes that reserve `quantity` units of `product` for an order, as read at `product`,
/// and the message they cause (its outbox entry is the caller's transaction's business).
///
/// The condition is exact about the transition to zero without serialising buyers on the
/// product's version: when the read shows more than `quantity` available, the write requires
/// at least `quantity + 1` (so it cannot empty the stock); when it shows exactly `quantity`,
/// the write requires exactly that and carries `PRODUCT_OUT_OF_STOCK`. A write whose read was
/// stale fails its condition and is recomputed; none can take stock below zero.
pub fn reserve(
    ports: &Ports,
    product: &Product,
    quantity: i64,
    correlation_id: &str,
) -> Result<(Vec<TxOp>, Vec<Staged>)> {
    let empties = product.available == quantity;
    let cond = if empties {
        Cond::eq(Product::AVAILABLE, quantity)
    } else {
        Cond::at_least(Product::AVAILABLE, quantity + 1)
    };
    let mut ops = vec![TxOp::Update {
        key: keys::product(&product.id),
        updates: vec![
            Update::add(Product::AVAILABLE, -quantity),
            Update::add(Product::RESERVED, quantity),
            // Admin stock changes computed before this one must be recomputed.
            Update::add(Product::STOCK_VERSION, 1),
        ],
        cond,
    }];
    let mut staged = Vec::new();
    if empties {
        let event = out_of_stock(ports, product, correlation_id)?;
        staged.push(Staged::new(outbox::NOTIFICATIONS_QUEUE, event));
        ops.push(transition_record(ports, &product.id, "out_of_stock", 0));
    }
    Ok((ops, staged))
}

/// The `PRODUCT_OUT_OF_STOCK` event of `product`.
fn out_of_stock(ports: &Ports, product: &Product, correlation_id: &str) -> Result<Event> {
    let data = ProductOutOfStock {
        product_id: product.id.clone(),
        sku: product.sku.clone(),
        name: product.name.clone(),
    };
    Ok(Event::typed(
        EventType::ProductOutOfStock,
        &data,
        correlation_id,
        ports.ids.as_ref(),
        ports.clock.as_ref(),
    )?)
}

/// The record of a stock transition, kept in the product's partition.
fn transition_record(ports: &Ports, product_id: &ProductId, kind: &str, available: i64) -> TxOp {
    let key = keys::stock_event(product_id, &ports.ids.fresh());

    let fields = json!({"transition": kind, "available": available, "at": ports.clock.now()});
    TxOp::Put {
        item: entity::keyed(&key, fields),
        cond: Cond::NotExists,
    }
}

/// Units reserved by an unpaid order go back on sale (cancellation, expiry).
pub fn release(product_id: &ProductId, quantity: i64) -> TxOp {
    TxOp::Update {
        key: keys::product(product_id),
        updates: vec![
            Update::add(Product::AVAILABLE, quantity),
            Update::add(Product::RESERVED, -quantity),
            Update::add(Product::STOCK_VERSION, 1),
        ],
        cond: Cond::at_least(Product::RESERVED, quantity),
    }
}

/// Units reserved by an order that was just paid leave the shop.
pub fn sell(product_id: &ProductId, quantity: i64) -> TxOp {
    TxOp::Update {
        key: keys::product(product_id),
        updates: vec![
            Update::add(Product::RESERVED, -quantity),
            Update::add(Product::STOCK_VERSION, 1),
        ],
        cond: Cond::at_least(Product::RESERVED, quantity),
    }
}

/// Units of a paid order that was cancelled before shipping go back on sale.
pub fn restock(product_id: &ProductId, quantity: i64) -> TxOp {
    TxOp::Update {
        key: keys::product(product_id),
        updates: vec![
            Update::add(Product::AVAILABLE, quantity),
            Update::add(Product::STOCK_VERSION, 1),
        ],
        cond: Cond::Exists,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_happen_only_when_crossing_zero() {
        assert_eq!(transition(5, 0), Transition::OutOfStock);
        assert_eq!(transition(0, 3), Transition::BackInStock);
        assert_eq!(transition(5, 2), Transition::None);
        assert_eq!(transition(0, 0), Transition::None);
    }
}
