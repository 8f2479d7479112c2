//! Limits that keep one customer from hoarding stock or testing cards: how many unpaid orders
//! a customer may hold at once, how many units of one product an order may reserve, and how
//! many declined payment attempts an order takes before it takes no more.
//!
//! The unpaid-order limit is a counter item per customer: placing adds one in the order's own
//! transaction, conditional on the counter being below the limit (so concurrent placements
//! cannot overshoot it); the one transaction that moves the order out of "unpaid" (capture,
//! cancel, expiry) takes it back. The order remembers that it holds a slot, so the slot is
//! given back exactly once, and orders placed before the limit existed give nothing back.

use serde_json::Value;

use crate::counter::COUNT;
use crate::error::{Error, FieldError, Result};
use crate::ids::UserId;
use crate::keys;
use crate::orders::model::Order;
use crate::orders::requests::MergedLine;
use crate::ports::{Cond, Store, TxOp, Update};

/// Declined payment attempts after which an order takes no more payment.
pub const MAX_DECLINED_ATTEMPTS: u32 = 3;

/// The 409 for a line asking for more units of one product than an order may reserve.
pub fn check_units_per_line(lines: &[MergedLine], max_units: i64) -> Result<()> {
    let over: Vec<FieldError> = lines
        .iter()
        .filter(|line| line.quantity > max_units)
        .map(|line| {
            FieldError::new(
                format!("items[{}].quantity", line.index),
                format!(
                    "at most {max_units} units of one product per order (lines for the same product are added up)"
                ),
            )
        })
        .collect();
    if over.is_empty() {
        return Ok(());
    }
    Err(Error::Limit {
        message: format!("an order may reserve at most {max_units} units of each product"),
        fields: over,
    })
}

/// The 409 for a customer who already holds `max` unpaid orders.
pub fn too_many_unpaid(max: u32) -> Error {
    Error::limit(format!(
        "you already have {max} unpaid orders, the most allowed; pay for or cancel one first"
    ))
}

/// The 409 for an order that has had its share of declined payments.
pub fn too_many_declines() -> Error {
    Error::limit(format!(
        "this order's payment was declined {MAX_DECLINED_ATTEMPTS} times, the most allowed; it takes no more payment"
    ))
}

/// Whether a placement refused at the unpaid-order slot may be tried again: the customer's
/// first order finds no counter (a conditional add needs the attribute), which is created at
/// zero here; a counter below `max` was freed meanwhile. A full counter is the limit.
pub async fn slot_may_be_free(store: &dyn Store, user_id: &UserId, max: u32) -> Result<bool> {
    let key = keys::unpaid_order_count(user_id);
    let Some(counter) = store.get(&key).await? else {
        crate::counter::create_if_missing(store, &key, None).await?;
        return Ok(true);
    };
    let held = counter.get(COUNT).and_then(Value::as_i64).unwrap_or(0);
    Ok(held < i64::from(max))
}

/// The write that takes one of the customer's unpaid-order slots; the transaction is
/// cancelled at this write when all `max` are taken.
pub fn take_unpaid_slot(user_id: &UserId, max: u32) -> TxOp {
    TxOp::Update {
        key: keys::unpaid_order_count(user_id),
        updates: vec![Update::add(COUNT, 1)],
        cond: Cond::at_most(COUNT, i64::from(max) - 1),
    }
}

/// Gives the order's unpaid-order slot back, once: the write joins the transaction that moves
/// the order out of "unpaid", and the order no longer holds a slot afterwards.
pub fn release_unpaid_slot(order: &mut Order, ops: &mut Vec<TxOp>) {
    if !order.holds_unpaid_slot {
        return;
    }
    order.holds_unpaid_slot = false;
    ops.push(TxOp::Update {
        key: keys::unpaid_order_count(&order.user_id),
        updates: vec![Update::add(COUNT, -1)],
        // Unconditional: a capture or a cancellation must never fail over the counter (the
        // order's own version condition already makes this happen once).
        cond: Cond::Always,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(index: usize, quantity: i64) -> MergedLine {
        MergedLine {
            product_id: crate::ids::ProductId::trusted(format!("p{index}")),
            quantity,
            index,
        }
    }

    #[test]
    fn lines_over_the_limit_are_named() {
        assert!(check_units_per_line(&[line(0, 10), line(1, 1)], 10).is_ok());
        match check_units_per_line(&[line(0, 11), line(1, 1), line(2, 50)], 10) {
            Err(Error::Limit { fields, .. }) => {
                let named: Vec<_> = fields.iter().map(|field| field.field.as_str()).collect();
                assert_eq!(named, ["items[0].quantity", "items[2].quantity"]);
            }
            other => panic!("expected a limit error, got {other:?}"),
        }
    }
}
