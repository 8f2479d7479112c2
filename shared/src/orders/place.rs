//! Placing an order: prices and names from the catalogue, every line's stock reserved and
//! the order written in one transaction, so that either all lines are reserved or none is.

use crate::ids::ProductId;
use crate::ids::{AddressId, OrderId};
use chrono::TimeDelta;
use serde_json::{Value, json};

use crate::catalogue::model::Product;
use crate::catalogue::stock;
use crate::commit::{Commit, Round, Step, Tx};
use crate::entity::{self, Stored};
use crate::error::{Error, FieldError, Result};
use crate::events::{EventType, OrderEvent};
use crate::idempotency::Claim;
use crate::keys;
use crate::metrics;
use crate::money::Money;
use crate::orders::model::{HistoryEntry, Order, OrderLine, ShippingAddress};
use crate::orders::requests::{MergedLine, PlaceOrder};
use crate::orders::states::Status;
use crate::orders::{Orders, limits};
use crate::outbox::{self, Staged};
use crate::ports::{Cond, Key, TxOp};
use crate::users::User;

/// Placing: a lost race (stock moved, or another order took the last unpaid-order slot) is
/// planned again from fresh reads; each retry follows someone else's successful
/// reservation, so retries are bounded by the stock that is left.
const PLACING: Commit = Commit::new("orders.place", || {
    Error::conflict("the stock of these products is changing quickly; try again")
});

/// Where in the placing transaction the customer's unpaid-order slot is taken.
const SLOT: usize = 1;

impl Orders {
    #[tracing::instrument(target = "bazaar::span", name = "orders.place", skip_all)]
    pub async fn place(
        &self,
        user: &User,
        request: PlaceOrder,
        claim: Option<&Claim>,
        correlation_id: &str,
    ) -> Result<Order> {
        let (lines, address_id) = request.checked()?;
        limits::check_units_per_line(&lines, self.settings.max_units_per_line)?;
        let shipping_address = self.shipping_address(user, &address_id).await?;
        let ids: Vec<ProductId> = lines.iter().map(|line| line.product_id.clone()).collect();
        let order_id: OrderId = self.ports.ids.fresh();
        let (lines, ids, order_id, address) = (&lines, &ids, &order_id, &shipping_address);
        let order = PLACING
            .run(&self.ports, move |round: Round| async move {
                if round.refused(SLOT) {
                    self.check_slot(user).await?;
                }
                let products = self.products_for(lines, ids).await?;
                check_stock(lines, &products)?;
                let order = self.priced(order_id, user, lines, &products, address.clone())?;
                self.placing_writes(order, lines, &products, claim, correlation_id)
                    .map(Step::from)
            })
            .await?;
        metrics::order_placed(&order.total.currency, order.total.amount);
        Ok(order)
    }

    /// The customer's address `address_id`, copied into the order; not theirs is a 422.
    async fn shipping_address(
        &self,
        user: &User,
        address_id: &AddressId,
    ) -> Result<ShippingAddress> {
        let address = match self.addresses.get(user, address_id).await {
            Ok(address) => address,
            Err(Error::NotFound(_)) => {
                return Err(Error::invalid(
                    "shipping_address_id",
                    "is not one of your addresses",
                ));
            }
            Err(other) => return Err(other),
        };
        Ok(ShippingAddress {
            line1: address.line1,
            line2: address.line2,
            city: address.city,
            state: address.state,
            postal_code: address.postal_code,
            country: address.country,
        })
    }

    /// After the unpaid-order slot was refused: a full counter is the limit; a missing or
    /// freed one means try again.
    async fn check_slot(&self, user: &User) -> Result<()> {
        let max = self.settings.max_pending_orders;
        if limits::slot_may_be_free(self.ports.store.as_ref(), &user.id, max).await? {
            Ok(())
        } else {
            Err(limits::too_many_unpaid(max))
        }
    }

    /// The products of the lines, in line order; unknown or archived ones are a 422 naming
    /// their lines.
    async fn products_for(&self, lines: &[MergedLine], ids: &[ProductId]) -> Result<Vec<Product>> {
        let keys: Vec<Key> = ids.iter().map(keys::product).collect();
        let found = self.ports.store.get_many(&keys).await?;
        let mut products = Vec::with_capacity(lines.len());
        let mut missing = Vec::new();
        for line in lines {
            let product = found
                .iter()
                .find(|item| {
                    item.get("id").and_then(Value::as_str) == Some(line.product_id.as_str())
                })
                .cloned()
                .map(Product::from_item)
                .transpose()?
                .filter(Product::is_active);
            match product {
                Some(product) => products.push(product),
                None => missing.push(FieldError::new(
                    format!("items[{}].product_id", line.index),
                    "no such product",
                )),
            }
        }
        if !missing.is_empty() {
            return Err(Error::Validation(missing));
        }
        Ok(products)
    }

    /// The order as it will be stored, priced from the catalogue.
    fn priced(
        &self,
        order_id: &OrderId,
        user: &User,
        lines: &[MergedLine],
        products: &[Product],
        shipping_address: ShippingAddress,
    ) -> Result<Order> {
        let currency = one_currency(lines, products)?;
        let money = |amount| Money {
            amount,
            currency: currency.clone(),
        };
        let items = order_lines(lines, products);
        let subtotal: i64 = items.iter().map(|line| line.line_total.amount).sum();
        let tax = tax_on(subtotal, self.settings.tax_rate_bps);
        let now = self.ports.clock.now();
        let reservation = TimeDelta::from_std(self.settings.reservation)
            .map_err(|error| Error::Internal(format!("reservation time: {error}")))?;
        Ok(Order {
            id: order_id.to_owned(),
            user_id: user.id.clone(),
            status: Status::PendingPayment,
            items,
            currency: currency.clone(),
            subtotal: money(subtotal),
            tax: money(tax),
            total: money(subtotal + tax),
            shipping_address,
            expires_at: Some(now + reservation),
            payment: None,
            processing_payment: None,
            shipment: None,
            created_at: now,
            updated_at: now,
            version: 1,
            holds_unpaid_slot: true,
            declined_attempts: 0,
            trace_parent: crate::trace::current_parent(),
        })
    }

    /// Everything placing writes: the order's own items (the customer's unpaid-order slot at
    /// [`SLOT`]), its answer and event, then per line its reservation (and out-of-stock event).
    fn placing_writes(
        &self,
        order: Order,
        lines: &[MergedLine],
        products: &[Product],
        claim: Option<&Claim>,
        correlation_id: &str,
    ) -> Result<Tx<Order>> {
        let entry = HistoryEntry {
            status: order.status,
            at: order.created_at,
            action: "place order".to_owned(),
        };
        let listed = keys::all_orders_entry(self.ports.shards, &order.id);
        let deadline = order.expires_at.unwrap_or(order.created_at).timestamp();
        let due = keys::expiry(self.ports.shards, deadline, &order.id);
        let mut tx = Tx::new(());
        tx.write(TxOp::Put {
            item: order.to_item()?,
            cond: Cond::NotExists,
        });
        let slot = tx.write(limits::take_unpaid_slot(
            &order.user_id,
            self.settings.max_pending_orders,
        ));
        debug_assert_eq!(slot, SLOT);
        tx.write_all([
            TxOp::Put {
                item: entry.to_item_under(&order)?,
                cond: Cond::NotExists,
            },
            TxOp::Put {
                item: entity::keyed(&listed, json!({"user_id": order.user_id})),
                cond: Cond::NotExists,
            },
            TxOp::Put {
                item: entity::keyed(&due, json!({"order_id": order.id})),
                cond: Cond::NotExists,
            },
        ]);
        tx.answer(claim, &order)?;
        let data = OrderEvent::of(&order);
        let event = self.event(EventType::OrderCreated, &data, correlation_id)?;
        tx.send(Staged::new(outbox::NOTIFICATIONS_QUEUE, event));
        for (line, product) in lines.iter().zip(products) {
            let (reserve, events) =
                stock::reserve(&self.ports, product, line.quantity, correlation_id)?;
            tx.write_all(reserve);
            tx.send_all(events);
        }
        Ok(tx.map(|()| order))
    }
}

/// Refuses (409, naming each short line) unless every line's product has enough available.
fn check_stock(lines: &[MergedLine], products: &[Product]) -> Result<()> {
    let short: Vec<FieldError> = lines
        .iter()
        .zip(products)
        .filter(|(line, product)| product.available < line.quantity)
        .map(|(line, product)| {
            FieldError::new(
                format!("items[{}].quantity", line.index),
                format!(
                    "only {} of {} available",
                    product.available.max(0),
                    product.sku
                ),
            )
        })
        .collect();
    if short.is_empty() {
        return Ok(());
    }
    Err(Error::Conflict {
        message: "not enough stock for every line; nothing was reserved".into(),
        fields: short,
    })
}

/// The one currency of the order (the first line's); a line priced in another is a 422.
fn one_currency(lines: &[MergedLine], products: &[Product]) -> Result<String> {
    let currency = products
        .first()
        .map(|product| product.price.currency.clone())
        .unwrap_or_default();
    let mixed: Vec<FieldError> = lines
        .iter()
        .zip(products)
        .filter(|(_, product)| product.price.currency != currency)
        .map(|(line, _)| {
            FieldError::new(
                format!("items[{}].product_id", line.index),
                format!("is priced in another currency than {currency}; order them separately"),
            )
        })
        .collect();
    if mixed.is_empty() {
        Ok(currency)
    } else {
        Err(Error::Validation(mixed))
    }
}

/// The order's lines at the catalogue's current prices and names.
fn order_lines(lines: &[MergedLine], products: &[Product]) -> Vec<OrderLine> {
    lines
        .iter()
        .zip(products)
        .map(|(line, product)| OrderLine {
            product_id: product.id.clone(),
            sku: product.sku.clone(),
            name: product.name.clone(),
            quantity: line.quantity,
            unit_price: product.price.clone(),
            line_total: Money {
                amount: product.price.amount * line.quantity,
                currency: product.price.currency.clone(),
            },
        })
        .collect()
}

/// Tax on `subtotal` at `bps` basis points, rounded half up to a whole minor unit.
pub fn tax_on(subtotal: i64, bps: u32) -> i64 {
    (i128::from(subtotal) * i128::from(bps) + 5_000).div_euclid(10_000) as i64
}

#[cfg(test)]
mod tests {
    use super::tax_on;

    #[test]
    fn tax_rounds_half_up_to_a_minor_unit() {
        assert_eq!(tax_on(1000, 0), 0);
        assert_eq!(tax_on(1000, 900), 90);
        assert_eq!(tax_on(1005, 1000), 101); // 100.5 → 101
        assert_eq!(tax_on(1004, 1000), 100); // 100.4 → 100
    }
}
