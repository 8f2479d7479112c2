//! The order state machine, as a table. The service consults it for every change, the tests
//! walk it (every allowed and every forbidden move), and `docs/order-states.md` holds the
//! diagram rendered from it (a test keeps the two identical).

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::events::EventType;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    PendingPayment,
    PaymentFailed,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
    Refunded,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::PendingPayment,
        Status::PaymentFailed,
        Status::Paid,
        Status::Shipped,
        Status::Delivered,
        Status::Cancelled,
        Status::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::PendingPayment => "pending_payment",
            Status::PaymentFailed => "payment_failed",
            Status::Paid => "paid",
            Status::Shipped => "shipped",
            Status::Delivered => "delivered",
            Status::Cancelled => "cancelled",
            Status::Refunded => "refunded",
        }
    }

    /// Whether the order holds a stock reservation that has not been paid for.
    pub fn is_unpaid(self) -> bool {
        matches!(self, Status::PendingPayment | Status::PaymentFailed)
    }
}

/// What moves an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// The payment step captured the money.
    CapturePayment,
    /// The payment step was declined; the customer may pay again.
    DeclinePayment,
    /// A customer (own order) or an admin cancels; a paid order is refunded.
    Cancel,
    /// The reservation ran out before payment.
    Expire,
    Ship,
    Deliver,
    /// An admin refunds the rest of a delivered order's payment.
    RefundInFull,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::CapturePayment,
        Action::DeclinePayment,
        Action::Cancel,
        Action::Expire,
        Action::Ship,
        Action::Deliver,
        Action::RefundInFull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::CapturePayment => "capture payment",
            Action::DeclinePayment => "payment declined",
            Action::Cancel => "cancel",
            Action::Expire => "reservation expires",
            Action::Ship => "ship",
            Action::Deliver => "deliver",
            Action::RefundInFull => "refund in full",
        }
    }
}

/// Who may take an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// The customer who placed the order.
    Customer,
    Admin,
    /// The pipeline (payment step, expiry schedule).
    System,
}

/// One allowed move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub action: Action,
    pub from: Status,
    pub to: Status,
    pub by: &'static [Actor],
    /// The event the move emits (through the outbox, in the move's transaction).
    pub emits: Option<EventType>,
}

const PEOPLE: &[Actor] = &[Actor::Customer, Actor::Admin];
const SYSTEM: &[Actor] = &[Actor::System];
const ADMIN: &[Actor] = &[Actor::Admin];

const fn rule(
    action: Action,
    from: Status,
    to: Status,
    by: &'static [Actor],
    emits: Option<EventType>,
) -> Rule {
    Rule {
        action,
        from,
        to,
        by,
        emits,
    }
}

use Action as A;
use Status as S;

/// Every allowed move; anything else is a 409 naming the current state.
#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    rule(A::CapturePayment, S::PendingPayment, S::Paid, SYSTEM, Some(EventType::PaymentSuccessful)),
    rule(A::CapturePayment, S::PaymentFailed, S::Paid, SYSTEM, Some(EventType::PaymentSuccessful)),
    rule(A::DeclinePayment, S::PendingPayment, S::PaymentFailed, SYSTEM, Some(EventType::PaymentFailed)),
    rule(A::DeclinePayment, S::PaymentFailed, S::PaymentFailed, SYSTEM, Some(EventType::PaymentFailed)),
    rule(A::Cancel, S::PendingPayment, S::Cancelled, PEOPLE, Some(EventType::OrderCancelled)),
    rule(A::Cancel, S::PaymentFailed, S::Cancelled, PEOPLE, Some(EventType::OrderCancelled)),
    rule(A::Cancel, S::Paid, S::Cancelled, PEOPLE, Some(EventType::OrderCancelled)),
    rule(A::Expire, S::PendingPayment, S::Cancelled, SYSTEM, Some(EventType::OrderCancelled)),
    rule(A::Expire, S::PaymentFailed, S::Cancelled, SYSTEM, Some(EventType::OrderCancelled)),
    rule(A::Ship, S::Paid, S::Shipped, ADMIN, Some(EventType::ShipmentShipped)),
    rule(A::Deliver, S::Shipped, S::Delivered, ADMIN, Some(EventType::ShipmentDelivered)),
    // REFUND_ISSUED follows when the provider confirms the refund.
    rule(A::RefundInFull, S::Delivered, S::Refunded, ADMIN, None),
];

/// The rule for taking `action` in `from`, if the table allows it.
pub fn find(action: Action, from: Status) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|rule| rule.action == action && rule.from == from)
}

/// The rule for taking `action` in `from` as `actor`, or the 409 (or 403) that refuses it.
pub fn check(action: Action, from: Status, actor: Actor) -> Result<&'static Rule> {
    let rule = find(action, from).ok_or_else(|| {
        Error::conflict(format!(
            "cannot {} an order that is {}",
            action.as_str(),
            from.as_str()
        ))
    })?;
    if !rule.by.contains(&actor) {
        return Err(Error::Forbidden(format!(
            "only {} may {} an order",
            describe(rule.by),
            action.as_str()
        )));
    }
    Ok(rule)
}

fn describe(actors: &[Actor]) -> &'static str {
    match actors {
        [Actor::Admin] => "an admin",
        [Actor::System] => "the order pipeline",
        _ => "the customer or an admin",
    }
}

/// The table as a Mermaid state diagram.
pub fn mermaid() -> String {
    let mut out = String::from("stateDiagram-v2\n    [*] --> pending_payment: place order\n");
    for rule in RULES {
        let _ = writeln!(
            out,
            "    {} --> {}: {}",
            rule.from.as_str(),
            rule.to.as_str(),
            rule.action.as_str()
        );
    }
    for terminal in [Status::Cancelled, Status::Refunded] {
        let _ = writeln!(out, "    {} --> [*]", terminal.as_str());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_diagram_is_rendered_from_the_table() {
        let doc = include_str!("../../../docs/order-states.md");
        let diagram = mermaid();
        assert!(
            doc.contains(&diagram),
            "docs/order-states.md is out of date; its diagram must be:\n```mermaid\n{diagram}```"
        );
    }

    #[test]
    fn each_action_has_at_most_one_rule_per_state() {
        for action in Action::ALL {
            for from in Status::ALL {
                let count = RULES
                    .iter()
                    .filter(|rule| rule.action == action && rule.from == from)
                    .count();
                assert!(count <= 1, "{action:?} from {from:?} has {count} rules");
            }
        }
    }

    #[test]
    fn terminal_states_have_no_way_out() {
        for terminal in [Status::Cancelled, Status::Refunded] {
            for action in Action::ALL {
                assert!(
                    find(action, terminal).is_none(),
                    "{action:?} leaves {terminal:?}"
                );
            }
        }
    }

    #[test]
    fn shipped_orders_cannot_be_cancelled_and_customers_cannot_ship() {
        assert!(check(Action::Cancel, Status::Shipped, Actor::Customer).is_err());
        assert!(matches!(
            check(Action::Ship, Status::Paid, Actor::Customer),
            Err(Error::Forbidden(_))
        ));
        assert!(check(Action::Ship, Status::Paid, Actor::Admin).is_ok());
        assert!(check(Action::Cancel, Status::Paid, Actor::Customer).is_ok());
    }
}
