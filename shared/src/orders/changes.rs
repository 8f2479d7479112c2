//! Changing an order: read it, compute the change from what was read, write the order
//! conditional on the version read together with everything the change implies (history
//! entry, stock, refunds, events) in one transaction; when another change won the race,
//! compute again from the new state. Cancel, ship, deliver and refund live here; payment in
//! `payments.rs`.

use serde::Serialize;

use crate::catalogue::stock;
use crate::commit::{Commit, Round, Step, Tx};
use crate::entity::Stored;
use crate::error::{Error, Result};
use crate::events::{EventType, OrderEvent};
use crate::idempotency::Claim;
use crate::ids::OrderId;
use crate::keys;
use crate::metrics;
use crate::money::Money;
use crate::orders::model::{
    HistoryEntry, Order, PaymentCommand, Refund, RefundStatus, RefundView, ShipmentStatus,
};
use crate::orders::requests::{RefundRequest, ShipRequest};
use crate::orders::states::{self, Action, Actor, Status};
use crate::orders::{Orders, actor, limits, visible};
use crate::outbox::{self, PAYMENTS_QUEUE, Staged};
use crate::ports::{Cond, TxOp};
use crate::users::User;
use crate::validation;

/// Every change of an order: a lost race is planned again from the order as it is now.
const CHANGE: Commit = Commit::new("orders.change", || {
    Error::conflict("the order is changing concurrently; try again")
});

/// What a change does, computed from the order as read.
pub(crate) struct Change<T> {
    /// The order after the change (its version and `updated_at` are set on commit).
    pub order: Order,
    /// The action recorded in the history, when the change moves the order.
    pub history: Option<Action>,
    /// Other writes of the same transaction.
    pub ops: Vec<TxOp>,
    /// Messages sent once the transaction commits (written to the outbox within it).
    pub staged: Vec<Staged>,
    /// The idempotency record remembering the answer, when the request has a key.
    pub answer: Option<TxOp>,
    /// What the caller gets besides the order.
    pub output: T,
}

impl<T> Change<T> {
    pub fn new(order: Order, output: T) -> Self {
        Self {
            order,
            history: None,
            ops: Vec::new(),
            staged: Vec::new(),
            answer: None,
            output,
        }
    }

    /// Remembers `body` as the answer to the request holding `claim` (if any), in the
    /// change's transaction.
    pub fn answer(&mut self, claim: Option<&Claim>, body: &impl Serialize) -> Result<()> {
        self.answer = claim.map(|claim| claim.complete(body)).transpose()?;
        Ok(())
    }

    /// The same change, answering `output`.
    pub fn with_output<U>(self, output: U) -> Change<U> {
        Change {
            order: self.order,
            history: self.history,
            ops: self.ops,
            staged: self.staged,
            answer: self.answer,
            output,
        }
    }
}

/// The answer to a plan that found nothing to do.
pub(crate) enum Plan<T> {
    Apply(Box<Change<T>>),
    /// Nothing to change; the order as it is.
    Skip(T),
}

impl<T> Plan<T> {
    pub fn apply(change: Change<T>) -> Self {
        Plan::Apply(Box::new(change))
    }
}

/// Messages about an order continue the order's trace, whichever request caused them (see
/// [`Order::trace_parent`]); an order placed without traces leaves them in the current one.
fn continuing_order_trace(mut staged: Vec<Staged>, order: &Order) -> Vec<Staged> {
    if let Some(parent) = &order.trace_parent {
        for message in &mut staged {
            message.trace_parent = Some(parent.clone());
        }
    }
    staged
}

impl Orders {
    /// Applies the change `plan` computes from the current order, planning again from a
    /// fresh read whenever another change won the race (see [`crate::commit`]).
    pub(crate) async fn change<T>(
        &self,
        order_id: &OrderId,
        plan: impl Fn(Order) -> Result<Plan<T>>,
    ) -> Result<(Order, T)> {
        let plan = &plan;
        CHANGE
            .run(&self.ports, move |_: Round| async move {
                let before = self.load(order_id).await?;
                match plan(before.clone())? {
                    Plan::Apply(change) => self.writes(before.version, *change).map(Step::from),
                    Plan::Skip(output) => Ok(Step::Done((before, output))),
                }
            })
            .await
    }

    /// Everything `change` writes: the order conditional on the version it was planned from,
    /// its history entry, the change's own writes and messages, and its answer.
    fn writes<T>(&self, version: u64, change: Change<T>) -> Result<Tx<(Order, T)>> {
        let now = self.ports.clock.now();
        let mut order = change.order;
        order.version = version + 1;
        order.updated_at = now;
        let mut tx = Tx::new(());
        tx.write(TxOp::Put {
            item: order.to_item()?,
            cond: Cond::eq(Order::VERSION, version),
        });
        if let Some(action) = change.history {
            let entry = HistoryEntry {
                status: order.status,
                at: now,
                action: action.as_str().to_owned(),
            };
            tx.write(TxOp::Put {
                item: entry.to_item_under(&order)?,
                cond: Cond::NotExists,
            });
        }
        tx.write_all(change.ops);
        tx.send_all(continuing_order_trace(change.staged, &order));
        if let Some(answer) = change.answer {
            tx.answered(answer);
        }
        Ok(tx.map(|()| (order, change.output)))
    }

    /// Moves `order` by `action` as `actor`: the status, the history entry and the event.
    pub(crate) fn transition<T>(
        &self,
        mut order: Order,
        action: Action,
        by: Actor,
        correlation_id: &str,
        output: T,
    ) -> Result<Change<T>> {
        let rule = states::check(action, order.status, by)?;
        order.status = rule.to;
        let mut change = Change::new(order, output);
        change.history = Some(action);
        if let Some(kind) = rule.emits {
            let event = self.event(kind, &OrderEvent::of(&change.order), correlation_id)?;
            change
                .staged
                .extend(Staged::fan_out(&recipients(kind), &event));
        }
        Ok(change)
    }

    /// Cancels an order: the customer's own before shipping, or any as an admin. An unpaid
    /// order's reservation is released; a paid order's units go back on sale and its payment
    /// is refunded.
    #[tracing::instrument(target = "bazaar::span", name = "orders.cancel", skip_all)]
    pub async fn cancel(
        &self,
        viewer: &User,
        order_id: &OrderId,
        correlation_id: &str,
    ) -> Result<Order> {
        let (order, ()) = self
            .change(order_id, |order| {
                visible(viewer, &order)?;
                self.cancellation(order, Action::Cancel, actor(viewer), correlation_id)
                    .map(Plan::apply)
            })
            .await?;
        metrics::order_cancelled(if viewer.is_admin() {
            metrics::Cancelled::Admin
        } else {
            metrics::Cancelled::Customer
        });
        Ok(order.for_viewer(viewer.is_admin()))
    }

    /// The change that cancels `order` by `action` (cancel, or expiry).
    pub(crate) fn cancellation(
        &self,
        order: Order,
        action: Action,
        by: Actor,
        correlation_id: &str,
    ) -> Result<Change<()>> {
        let was = order.status;
        let expires_at = order.expires_at;
        let mut change = self.transition(order, action, by, correlation_id, ())?;
        change.order.expires_at = None;
        if was.is_unpaid() {
            limits::release_unpaid_slot(&mut change.order, &mut change.ops);
            for line in &change.order.items {
                change
                    .ops
                    .push(stock::release(&line.product_id, line.quantity));
            }
            if let Some(deadline) = expires_at {
                change.ops.push(TxOp::Delete {
                    key: keys::expiry(self.ports.shards, deadline.timestamp(), &change.order.id),
                    cond: Cond::Always,
                });
            }
        } else if was == Status::Paid {
            for line in &change.order.items {
                change
                    .ops
                    .push(stock::restock(&line.product_id, line.quantity));
            }
            let amount = change.order.refundable();
            if amount > 0 {
                let reason = Some("order cancelled".to_owned());
                self.add_refund(&mut change, amount, reason, correlation_id)?;
            }
        }
        Ok(change)
    }

    /// Adds a refund of `amount` of the order's captured payment to `change`: the order
    /// counts it at once (so no later refund can exceed what is left) and the payment step
    /// carries it out at the provider.
    pub(crate) fn add_refund<T>(
        &self,
        change: &mut Change<T>,
        amount: i64,
        reason: Option<String>,
        correlation_id: &str,
    ) -> Result<Refund> {
        let order = &mut change.order;
        let Some(payment) = order.payment.as_mut() else {
            return Err(Error::conflict("the order has no captured payment"));
        };
        let refund = Refund {
            id: self.ports.ids.fresh(),
            order_id: order.id.clone(),
            payment_id: payment.id.clone(),
            method: payment.method,
            amount: Money {
                amount,
                currency: order.currency.clone(),
            },
            status: RefundStatus::Pending,
            reason,
            reference: None,
            created_at: self.ports.clock.now(),
            correlation_id: correlation_id.to_owned(),
        };
        payment.refunded.amount += amount;
        change.ops.push(TxOp::Put {
            item: refund.to_item()?,
            cond: Cond::NotExists,
        });
        let command = PaymentCommand::Refund {
            order_id: order.id.clone(),
            refund_id: refund.id.clone(),
            correlation_id: correlation_id.to_owned(),
        };
        change.staged.push(Staged::command(
            PAYMENTS_QUEUE,
            &refund.id,
            &command,
            refund.created_at.timestamp(),
        )?);
        Ok(refund)
    }

    /// Hands a paid order to the carrier (admin).
    #[tracing::instrument(target = "bazaar::span", name = "orders.ship", skip_all)]
    pub async fn ship(
        &self,
        admin: &User,
        order_id: &OrderId,
        request: ShipRequest,
        correlation_id: &str,
    ) -> Result<Order> {
        validation::check(&request)?;
        let (order, ()) = self
            .change(order_id, |order| {
                let mut change =
                    self.transition(order, Action::Ship, actor(admin), correlation_id, ())?;
                if let Some(shipment) = change.order.shipment.as_mut() {
                    shipment.status = ShipmentStatus::Shipped;
                    if let Some(carrier) = &request.carrier {
                        shipment.carrier = carrier.trim().to_owned();
                    }
                    if let Some(number) = &request.tracking_number {
                        shipment.tracking_number = number.trim().to_owned();
                    }
                }
                Ok(Plan::apply(change))
            })
            .await?;
        Ok(order)
    }

    /// Records the delivery of a shipped order (admin).
    #[tracing::instrument(target = "bazaar::span", name = "orders.deliver", skip_all)]
    pub async fn deliver(
        &self,
        admin: &User,
        order_id: &OrderId,
        correlation_id: &str,
    ) -> Result<Order> {
        let (order, ()) = self
            .change(order_id, |order| {
                let mut change =
                    self.transition(order, Action::Deliver, actor(admin), correlation_id, ())?;
                if let Some(shipment) = change.order.shipment.as_mut() {
                    shipment.status = ShipmentStatus::Delivered;
                }
                Ok(Plan::apply(change))
            })
            .await?;
        Ok(order)
    }

    /// Refunds part or all of a delivered order's payment (admin). Refunding everything left
    /// moves the order to `refunded`.
    #[tracing::instrument(target = "bazaar::span", name = "orders.refund", skip_all)]
    pub async fn refund(
        &self,
        admin: &User,
        order_id: &OrderId,
        request: RefundRequest,
        claim: Option<&Claim>,
        correlation_id: &str,
    ) -> Result<RefundView> {
        validation::check(&request)?;
        if !admin.is_admin() {
            return Err(Error::Forbidden("only admins refund orders".into()));
        }
        let (_, view) = self
            .change(order_id, |order| {
                let amount = refundable_amount(&order, &request)?;
                let reason = request.reason.clone();
                let mut change = self.partial_refund(order, amount, reason, correlation_id)?;
                let view = change.output.clone();
                change.answer(claim, &view)?;
                Ok(Plan::apply(change))
            })
            .await?;
        Ok(view)
    }

    /// Refunds `amount` of a delivered order; everything left moves it to `refunded`.
    fn partial_refund(
        &self,
        order: Order,
        amount: i64,
        reason: Option<String>,
        correlation_id: &str,
    ) -> Result<Change<RefundView>> {
        let mut change = if amount == order.refundable() {
            self.transition(
                order,
                Action::RefundInFull,
                Actor::Admin,
                correlation_id,
                (),
            )?
        } else {
            Change::new(order, ())
        };
        let refund = self.add_refund(&mut change, amount, reason, correlation_id)?;
        Ok(change.with_output(RefundView::from(&refund)))
    }
}

/// How much of `order` the request refunds (all that is left when it names no amount);
/// refused unless the order is delivered and the amount is in its currency, at least 1
/// and at most what is left.
fn refundable_amount(order: &Order, request: &RefundRequest) -> Result<i64> {
    if order.status != Status::Delivered {
        return Err(Error::conflict(format!(
            "only delivered orders are refunded here (cancel a paid order instead); this one is {}",
            order.status.as_str()
        )));
    }
    let left = order.refundable();
    let amount = match &request.amount {
        None => left,
        Some(money) if money.currency != order.currency => {
            return Err(Error::invalid(
                "amount.currency",
                "must be the order's currency",
            ));
        }
        Some(money) if money.amount < 1 => {
            return Err(Error::invalid("amount.amount", "must be at least 1"));
        }
        Some(money) => money.amount,
    };
    if amount > left || left == 0 {
        return Err(Error::conflict(format!(
            "at most {left} (minor units) of this order can still be refunded"
        )));
    }
    Ok(amount)
}

/// The queues an order event goes to: every event to notifications; a successful payment
/// also to the invoice step.
pub(crate) fn recipients(kind: EventType) -> Vec<&'static str> {
    match kind {
        EventType::PaymentSuccessful => vec![outbox::NOTIFICATIONS_QUEUE, outbox::INVOICES_QUEUE],
        _ => vec![outbox::NOTIFICATIONS_QUEUE],
    }
}
