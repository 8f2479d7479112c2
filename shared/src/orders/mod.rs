//! Orders, payments and shipping: placing an order reserves its stock, paying goes through
//! the payment step of the pipeline, and admins ship, deliver and refund. Every change is one
//! transaction conditional on the order's version, driven by the table in [`states`].

mod changes;
pub mod expiry;
pub mod invoices;
pub mod limits;
pub mod model;
mod payments;
mod place;
pub mod requests;
pub mod states;

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::Ports;
use crate::entity::Stored;
use crate::error::{Error, Result};
use crate::events::{Event, EventType, Payload};
use crate::ids::OrderId;
use crate::keys;
use crate::pagination::{self, Listing, PageRequest, Spread};
use crate::ports::{Index, Key, Query};
use crate::users::{AddressBook, User};

pub use model::{Order, PaymentCommand, Tracking};
pub use states::{Action, Actor, Status};

/// What an operator may tune.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderSettings {
    /// How long an unpaid order holds its stock.
    pub reservation: Duration,
    /// Tax on the subtotal, in basis points (1000 = 10 %), rounded half up to a minor unit.
    pub tax_rate_bps: u32,
    /// The carrier a paid order's shipment is assigned to.
    pub carrier: String,
    /// How many unpaid orders one customer may hold at once.
    pub max_pending_orders: u32,
    /// How many units of one product one order may reserve.
    pub max_units_per_line: i64,
    /// How many invoice number series there are, each gap-free with its own counter, so that
    /// no single counter takes every paid order (see `invoices`).
    pub invoice_series: u16,
}

impl Default for OrderSettings {
    fn default() -> Self {
        Self {
            reservation: Duration::from_secs(15 * 60),
            tax_rate_bps: 0,
            carrier: "Bazaar Post".to_owned(),
            max_pending_orders: 3,
            max_units_per_line: 10,
            invoice_series: 1,
        }
    }
}

#[derive(Clone)]
pub struct Orders {
    ports: Ports,
    settings: OrderSettings,
    addresses: AddressBook,
}

/// Who is asking, as the state machine sees them.
pub fn actor(user: &User) -> Actor {
    if user.is_admin() {
        Actor::Admin
    } else {
        Actor::Customer
    }
}

impl Orders {
    pub fn new(ports: Ports, settings: OrderSettings) -> Self {
        Self {
            addresses: AddressBook::new(ports.clone()),
            ports,
            settings,
        }
    }

    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    pub fn settings(&self) -> &OrderSettings {
        &self.settings
    }

    /// The order, whoever owns it.
    pub async fn load(&self, order_id: &OrderId) -> Result<Order> {
        let item = self
            .ports
            .store
            .get(&keys::order(order_id))
            .await?
            .ok_or(Error::NotFound("order"))?;
        Order::from_item(item)
    }

    /// The order as `viewer` may see it: their own, or any for an admin. Someone else's order
    /// is a 404, exactly like one that does not exist.
    #[tracing::instrument(target = "bazaar::span", name = "orders.get", skip_all)]
    pub async fn get(&self, viewer: &User, order_id: &OrderId) -> Result<Order> {
        let order = self.load(order_id).await?;
        visible(viewer, &order)?;
        Ok(order.for_viewer(viewer.is_admin()))
    }

    /// A customer's own orders, or every order for an admin; newest first.
    #[tracing::instrument(target = "bazaar::span", name = "orders.list", skip_all)]
    pub async fn list(&self, viewer: &User, page: &PageRequest) -> Result<Listing<Order>> {
        if !viewer.is_admin() {
            let query = page.apply(
                Query::partition(Index::Gsi1, keys::user_orders_partition(&viewer.id)).descending(),
            )?;
            let result = self.ports.store.query(&query).await?;
            let items = result
                .items
                .into_iter()
                .map(|item| Order::from_item(item).map(|order| order.for_viewer(false)))
                .collect::<Result<_>>()?;
            return Ok(Listing {
                items,
                next_cursor: result.last_key.as_ref().map(pagination::encode),
            });
        }
        // Every shard of the admins' index, newest first (ids are ULIDs: `0`..`7` first).
        let spread = Spread {
            index: Index::Primary,
            partitions: self.ports.shards.partitions(keys::ALL_ORDERS_PARTITION),
            bounds: ("0".to_owned(), "8".to_owned()),
            ascending: false,
        };
        let (entries, next_cursor) =
            pagination::spread_page(&*self.ports.store, &spread, page).await?;
        let ids: Vec<OrderId> = entries
            .iter()
            .filter_map(|item| item.get(crate::ports::store::SK).and_then(Value::as_str))
            .map(OrderId::trusted)
            .collect();

        let keys: Vec<Key> = ids.iter().map(keys::order).collect();
        let mut found = Vec::new();
        for chunk in keys.chunks(100) {
            found.extend(self.ports.store.get_many(chunk).await?);
        }
        let mut orders = found
            .into_iter()
            .map(Order::from_item)
            .collect::<Result<Vec<_>>>()?;
        // The store answers in any order; the listing is by id, newest first.
        orders.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(Listing {
            items: orders,
            next_cursor,
        })
    }

    /// The order's status history and shipment.
    #[tracing::instrument(target = "bazaar::span", name = "orders.tracking", skip_all)]
    pub async fn tracking(&self, viewer: &User, order_id: &OrderId) -> Result<Tracking> {
        let order = self.get(viewer, order_id).await?;
        let mut history = Vec::new();
        let mut start_after = None;
        loop {
            let query = Query::partition(Index::Primary, keys::order_partition(order_id))
                .prefix(keys::HISTORY_PREFIX)
                .start_after(start_after);
            let page = self.ports.store.query(&query).await?;
            for item in page.items {
                history.push(model::HistoryEntry::from_item(item)?);
            }
            match page.last_key {
                Some(last) => start_after = Some(last),
                None => break,
            }
        }
        Ok(Tracking {
            order_id: order.id,
            status: order.status,
            history,
            shipment: order.shipment,
        })
    }

    /// An event about an order, carrying what notifications need to describe it.
    fn event<P: Payload + Serialize>(
        &self,
        kind: EventType,
        data: &P,
        correlation_id: &str,
    ) -> Result<Event> {
        Ok(Event::typed(
            kind,
            data,
            correlation_id,
            self.ports.ids.as_ref(),
            self.ports.clock.as_ref(),
        )?)
    }
}

/// Refuses (as "not found") an order the viewer may not see.
pub fn visible(viewer: &User, order: &Order) -> Result<()> {
    if viewer.is_admin() || order.user_id == viewer.id {
        Ok(())
    } else {
        Err(Error::NotFound("order"))
    }
}
