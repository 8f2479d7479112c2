//! Paying for an order. The request only records the attempt (with a token, never the
//! customer's details) and queues it: the payment step charges through the method's gateway
//! under the attempt's id as the provider's idempotency key, so however often the step runs,
//! the order is charged at most once. Refunds run the same way, keyed by the refund's id.

use chrono::{DateTime, Utc};

use crate::catalogue::stock;
use crate::commit::{Commit, Round, Step, Tx};
use crate::entity::Stored;
use crate::error::{Error, Result};
use crate::events::{EventType, OrderEvent, RefundIssued};
use crate::idempotency::Claim;
use crate::ids::{OrderId, PaymentId, RefundId};
use crate::keys;
use crate::metrics::{self, Charged};
use crate::money::Money;
use crate::orders::changes::{Change, Plan};
use crate::orders::model::{
    AttemptStatus, Order, PaymentAccepted, PaymentAttempt, PaymentCommand, PaymentSummary, Refund,
    RefundStatus, Shipment, ShipmentStatus,
};
use crate::orders::requests::PayRequest;
use crate::orders::states::{Action, Actor};
use crate::orders::{Orders, limits};
use crate::outbox::{self, PAYMENTS_QUEUE, Staged};
use crate::ports::payments::{ChargeRequest, GatewayError, Instrument, Receipt, RefundRequest};
use crate::ports::{Cond, TxOp};
use crate::users::User;

/// Recording a refund's outcome: a duplicate delivery that recorded it first wins.
const SETTLING: Commit = Commit::new("orders.settle_refund", || {
    Error::Unavailable("the refund is being settled concurrently; the step will retry".into())
});

impl Orders {
    /// Starts paying for the customer's own unpaid order: accepted, the payment step does the
    /// rest.
    #[tracing::instrument(target = "bazaar::span", name = "orders.pay", skip_all)]
    pub async fn pay(
        &self,
        user: &User,
        order_id: &OrderId,
        request: PayRequest,
        claim: Option<&Claim>,
        correlation_id: &str,
    ) -> Result<PaymentAccepted> {
        let now = self.ports.clock.now();
        // An order that has had its share of declines is refused before any provider call,
        // so that a card tester learns nothing more from it.
        let current = self.load(order_id).await?;
        if current.user_id != user.id {
            return Err(Error::NotFound("order"));
        }
        if current.declined_attempts >= limits::MAX_DECLINED_ATTEMPTS {
            return Err(limits::too_many_declines());
        }
        let instrument = self.tokenized(&request, now)?;
        let payment_id: PaymentId = self.ports.ids.fresh();
        let (_, accepted) = self
            .change(order_id, |order| {
                check_payable(&order, user, now)?;
                let started = Started {
                    instrument: &instrument,
                    payment_id: &payment_id,
                    correlation_id,
                    now,
                };
                let mut change = self.payment_started(order, started)?;
                let accepted = change.output.clone();
                change.answer(claim, &accepted)?;
                Ok(Plan::apply(change))
            })
            .await?;
        Ok(accepted)
    }

    /// The request's payment details as a token of their method's gateway: the customer's
    /// details go no further than this.
    fn tokenized(&self, request: &PayRequest, now: DateTime<Utc>) -> Result<Instrument> {
        let details = request.details(now)?;
        self.ports
            .payments
            .for_method(details.method())
            .tokenize(&details)
            .map_err(|error| match error {
                GatewayError::Invalid(reason) | GatewayError::Declined(reason) => {
                    Error::invalid("method", &reason)
                }
                other => Error::Unavailable(other.to_string()),
            })
    }

    /// The order with its payment processing: the attempt recorded and its charge command
    /// queued for the payment step.
    fn payment_started(
        &self,
        mut order: Order,
        started: Started<'_>,
    ) -> Result<Change<PaymentAccepted>> {
        let attempt = started.attempt(&order);
        order.processing_payment = Some(started.payment_id.clone());
        order.payment = Some(started.summary(&order.currency));
        let Started {
            payment_id,
            correlation_id,
            now,
            ..
        } = started;
        let accepted = PaymentAccepted {
            order_id: order.id.clone(),
            payment_id: payment_id.clone(),
            status: AttemptStatus::Processing,
        };
        let command = PaymentCommand::Charge {
            order_id: order.id.clone(),
            payment_id: payment_id.clone(),
            correlation_id: correlation_id.to_owned(),
        };
        let mut change = Change::new(order, accepted);
        change.ops.push(TxOp::Put {
            item: attempt.to_item()?,
            cond: Cond::NotExists,
        });
        change.staged.push(Staged::command(
            PAYMENTS_QUEUE,
            payment_id,
            &command,
            now.timestamp(),
        )?);
        Ok(change)
    }

    /// The payment step: carries out one command from the payments queue. Safe to run any
    /// number of times for the same command. An error means "retry later" (the message is
    /// redelivered, and dead-lettered after the queue's maximum receives).
    #[tracing::instrument(target = "bazaar::span", name = "orders.process_payment", skip_all)]
    pub async fn process_payment(&self, command: &PaymentCommand) -> Result<()> {
        match command {
            PaymentCommand::Charge {
                order_id,
                payment_id,
                ..
            } => self.charge(order_id, payment_id).await,
            PaymentCommand::Refund {
                order_id,
                refund_id,
                ..
            } => self.execute_refund(order_id, refund_id).await,
        }
    }

    async fn charge(&self, order_id: &OrderId, payment_id: &PaymentId) -> Result<()> {
        let item = self
            .ports
            .store
            .get(&keys::payment_attempt(order_id, payment_id))
            .await?
            .ok_or(Error::NotFound("payment attempt"))?;
        let attempt = PaymentAttempt::from_item(item)?;
        if attempt.status != AttemptStatus::Processing {
            return Ok(());
        }
        let outcome = self.charge_at_provider(&attempt).await?;
        let charged = match &outcome {
            Ok(_) => Charged::Captured,
            Err(failure) if failure.declined => Charged::Declined,
            Err(_) => Charged::Failed,
        };
        let (_, settled_now) = self
            .change(order_id, |order| self.settle(order, &attempt, &outcome))
            .await?;
        if settled_now {
            metrics::payment(attempt.method, charged);
        }
        Ok(())
    }

    /// Charges the attempt through its method's gateway, under the attempt's id as the
    /// provider's idempotency key. A transient failure is an error (the step retries); a
    /// refusal for good is an outcome to record.
    async fn charge_at_provider(
        &self,
        attempt: &PaymentAttempt,
    ) -> Result<std::result::Result<Receipt, Failure>> {
        let request = ChargeRequest {
            idempotency_key: attempt.id.to_string(),
            order_id: attempt.order_id.clone(),
            amount: attempt.amount.clone(),
            token: attempt.token.clone(),
        };
        let gateway = self.ports.payments.for_method(attempt.method);
        match gateway.charge(&request).await {
            Ok(receipt) => Ok(Ok(receipt)),
            Err(error) if error.is_transient() => Err(Error::Unavailable(error.to_string())),
            Err(error) => Ok(Err(Failure::of(&error))),
        }
    }

    /// The change recording the provider's answer on the order and the attempt, once: a
    /// duplicate delivery finds it recorded and skips (answering `false`).
    fn settle(
        &self,
        order: Order,
        attempt: &PaymentAttempt,
        outcome: &std::result::Result<Receipt, Failure>,
    ) -> Result<Plan<bool>> {
        let current = order.payment.as_ref().filter(|p| p.id == attempt.id);
        if current.is_none_or(|p| p.status != AttemptStatus::Processing) {
            return Ok(Plan::Skip(false));
        }
        let ours = order.processing_payment.as_deref() == Some(attempt.id.as_str());
        let correlation_id = &attempt.correlation_id;
        let mut settled = attempt.clone();
        let mut change = match outcome {
            Ok(receipt) if ours && order.status.is_unpaid() => {
                settled.status = AttemptStatus::Succeeded;
                settled.reference = Some(receipt.reference.clone());
                self.captured(order, receipt, correlation_id)?
            }
            Ok(receipt) => {
                settled.status = AttemptStatus::RefundedLate;
                settled.reference = Some(receipt.reference.clone());
                self.paid_too_late(order, ours, receipt, correlation_id)?
            }
            Err(failure) => {
                settled.status = AttemptStatus::Failed;
                settled.failure_reason = Some(failure.detail.clone());
                self.refused(order, ours, failure, correlation_id)?
            }
        };
        change.ops.push(TxOp::Put {
            item: settled.to_item()?,
            cond: Cond::eq(PaymentAttempt::STATUS, "processing"),
        });
        Ok(Plan::apply(change.with_output(true)))
    }

    /// The order paid: captured, its slot given back, its reserved units sold, its expiry
    /// dropped and a shipment opened.
    fn captured(
        &self,
        order: Order,
        receipt: &Receipt,
        correlation_id: &str,
    ) -> Result<Change<()>> {
        let deadline = order.expires_at;
        let mut change = self.transition(
            order,
            Action::CapturePayment,
            Actor::System,
            correlation_id,
            (),
        )?;
        limits::release_unpaid_slot(&mut change.order, &mut change.ops);
        let order = &mut change.order;
        order.processing_payment = None;
        order.expires_at = None;
        if let Some(payment) = order.payment.as_mut() {
            payment.status = AttemptStatus::Succeeded;
            payment.reference = Some(receipt.reference.clone());
            payment.captured = Some(receipt.amount.clone());
        }
        order.shipment = Some(Shipment {
            carrier: self.settings.carrier.clone(),
            tracking_number: tracking_number(&self.ports.ids.new_id()),
            status: ShipmentStatus::Pending,
        });
        let sold: Vec<TxOp> = order
            .items
            .iter()
            .map(|line| stock::sell(&line.product_id, line.quantity))
            .collect();
        change.ops.extend(sold);
        if let Some(deadline) = deadline {
            change.ops.push(TxOp::Delete {
                key: keys::expiry(self.ports.shards, deadline.timestamp(), &change.order.id),
                cond: Cond::Always,
            });
        }
        Ok(change)
    }

    /// Captured after the order was cancelled or expired: all of it goes back.
    fn paid_too_late(
        &self,
        mut order: Order,
        ours: bool,
        receipt: &Receipt,
        correlation_id: &str,
    ) -> Result<Change<()>> {
        if ours {
            order.processing_payment = None;
        }
        if let Some(payment) = order.payment.as_mut() {
            payment.status = AttemptStatus::RefundedLate;
            payment.reference = Some(receipt.reference.clone());
            payment.captured = Some(receipt.amount.clone());
        }
        let mut change = Change::new(order, ());
        let reason = Some("paid after the order was cancelled".to_owned());
        self.add_refund(&mut change, receipt.amount.amount, reason, correlation_id)?;
        Ok(change)
    }

    /// The provider refused for good: an unpaid order records the decline (a decline by the
    /// issuer counts toward the limit).
    fn refused(
        &self,
        order: Order,
        ours: bool,
        failure: &Failure,
        correlation_id: &str,
    ) -> Result<Change<()>> {
        let mut change = if ours && order.status.is_unpaid() {
            self.transition(
                order,
                Action::DeclinePayment,
                Actor::System,
                correlation_id,
                (),
            )?
        } else {
            Change::new(order, ())
        };
        let order = &mut change.order;
        if ours {
            order.processing_payment = None;
        }
        if failure.declined {
            order.declined_attempts += 1;
        }
        if let Some(payment) = order.payment.as_mut() {
            payment.status = AttemptStatus::Failed;
            payment.failure_reason = Some(failure.generic().to_owned());
            payment.failure_detail = Some(failure.detail.clone());
        }
        Ok(change)
    }

    async fn execute_refund(&self, order_id: &OrderId, refund_id: &RefundId) -> Result<()> {
        let refund = self.find_refund(order_id, refund_id).await?;
        if refund.status != RefundStatus::Pending {
            return Ok(());
        }
        let mut settled = refund.clone();
        let mut staged = Vec::new();
        match self.refund_at_provider(&refund).await {
            Ok(receipt) => {
                settled.status = RefundStatus::Succeeded;
                settled.reference = Some(receipt.reference);
                let order = self.load(order_id).await?;
                let data = RefundIssued {
                    order: OrderEvent::of(&order),
                    refund_id: refund.id.clone(),
                    amount: refund.amount.clone(),
                };
                let event = self.event(EventType::RefundIssued, &data, &refund.correlation_id)?;
                staged.push(Staged::new(outbox::NOTIFICATIONS_QUEUE, event));
            }
            Err(error) if error.is_transient() => {
                return Err(Error::Unavailable(error.to_string()));
            }
            Err(error) => {
                // Money the provider will not return needs a person; the record says why.
                tracing::error!(%error, %order_id, %refund_id, "refund refused by the provider");
                settled.status = RefundStatus::Failed;
                settled.reason = Some(error.to_string());
            }
        }
        let succeeded = settled.status == RefundStatus::Succeeded;
        let (settled, staged) = (&settled, &staged);
        let settled_now = SETTLING
            .run(&self.ports, move |round: Round| async move {
                // Refused: a duplicate delivery settled it first, and that stands.
                if round.number() > 0
                    && self.find_refund(order_id, refund_id).await?.status != RefundStatus::Pending
                {
                    return Ok(Step::Done(false));
                }
                let mut tx = Tx::new(true);
                tx.write(TxOp::Put {
                    item: settled.to_item()?,
                    cond: Cond::eq(Refund::STATUS, "pending"),
                });
                tx.send_all(staged.clone());
                Ok(tx.into())
            })
            .await?;
        if settled_now {
            metrics::refund(succeeded);
        }
        Ok(())
    }

    /// Asks the refund's gateway for the money back, under the refund's id as the provider's
    /// idempotency key.
    async fn refund_at_provider(
        &self,
        refund: &Refund,
    ) -> std::result::Result<Receipt, GatewayError> {
        let request = RefundRequest {
            idempotency_key: refund.id.to_string(),

            order_id: refund.order_id.clone(),
            charge_key: refund.payment_id.to_string(),
            amount: refund.amount.clone(),
        };
        let gateway = self.ports.payments.for_method(refund.method);
        gateway.refund(&request).await
    }

    async fn find_refund(&self, order_id: &OrderId, refund_id: &RefundId) -> Result<Refund> {
        let item = self
            .ports
            .store
            .get(&keys::refund(order_id, refund_id))
            .await?
            .ok_or(Error::NotFound("refund"))?;
        Refund::from_item(item)
    }
}

/// What starting a payment needs besides the order.
struct Started<'a> {
    instrument: &'a Instrument,
    payment_id: &'a PaymentId,
    correlation_id: &'a str,
    now: DateTime<Utc>,
}

impl Started<'_> {
    /// The attempt's own record: what the payment step charges.
    fn attempt(&self, order: &Order) -> PaymentAttempt {
        PaymentAttempt {
            id: self.payment_id.clone(),
            order_id: order.id.clone(),
            method: self.instrument.method,
            token: self.instrument.token.clone(),
            display: self.instrument.display.clone(),
            amount: order.total.clone(),
            status: AttemptStatus::Processing,
            reference: None,
            failure_reason: None,
            created_at: self.now,
            correlation_id: self.correlation_id.to_owned(),
        }
    }

    /// What the order shows of the payment while it processes.
    fn summary(&self, currency: &str) -> PaymentSummary {
        PaymentSummary {
            id: self.payment_id.clone(),
            status: AttemptStatus::Processing,
            method: self.instrument.method,
            display: self.instrument.display.clone(),
            reference: None,
            captured: None,
            refunded: Money {
                amount: 0,
                currency: currency.to_owned(),
            },
            failure_reason: None,
            failure_detail: None,
        }
    }
}

/// Refuses a payment the order cannot take now: not the customer's, not unpaid, out of
/// declines, already processing one, or past its reservation.
fn check_payable(order: &Order, user: &User, now: DateTime<Utc>) -> Result<()> {
    if order.user_id != user.id {
        return Err(Error::NotFound("order"));
    }
    if !order.status.is_unpaid() {
        return Err(Error::conflict(format!(
            "cannot pay an order that is {}",
            order.status.as_str()
        )));
    }
    if order.declined_attempts >= limits::MAX_DECLINED_ATTEMPTS {
        return Err(limits::too_many_declines());
    }
    if order.processing_payment.is_some() {
        return Err(Error::conflict(
            "a payment for this order is already processing",
        ));
    }
    if order.expires_at.is_some_and(|deadline| deadline <= now) {
        return Err(Error::conflict(
            "the order's reservation has expired; it is being cancelled",
        ));
    }
    Ok(())
}

/// Why the provider refused a charge for good.
struct Failure {
    /// The issuer declined (as opposed to refusing the details): counts toward the limit.
    declined: bool,
    /// The provider's own words, for admins.
    detail: String,
}

impl Failure {
    fn of(error: &GatewayError) -> Self {
        Self {
            declined: matches!(error, GatewayError::Declined(_)),
            detail: error.to_string(),
        }
    }

    /// What the customer is told: the same few words whatever the issuer said.
    fn generic(&self) -> &'static str {
        if self.declined {
            "payment declined"
        } else {
            "payment failed"
        }
    }
}

/// A carrier tracking number: `BZ` and twelve characters of a fresh id.
fn tracking_number(id: &str) -> String {
    let tail = &id[id.len().saturating_sub(12)..];
    format!("BZ{}", tail.to_uppercase())
}
