//! Reservation expiry: an unpaid order holds its stock for a while (15 minutes by default);
//! the `orders-expire` schedule cancels the ones whose time is up and releases their stock.
//! Deadlines are index entries sorted by time, so a run reads exactly the overdue ones.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::ids::OrderId;
use crate::keys;
use crate::metrics;
use crate::orders::Orders;
use crate::orders::changes::Plan;
use crate::orders::states::{Action, Actor};
use crate::ports::{Cond, Index, Key, Query};

/// The most orders one run expires, so that it stays well inside its timeout; the next run
/// (a minute later) takes the rest.
const RUN_LIMIT: usize = 500;

impl Orders {
    /// Cancels every unpaid order whose reservation has run out; returns how many. Reads
    /// every shard of the deadlines (starting with a different one each minute, so that a
    /// run cut short by [`RUN_LIMIT`] does not always leave the same shards for later).
    #[tracing::instrument(target = "bazaar::span", name = "orders.expire_overdue", skip_all)]
    pub async fn expire_overdue(&self, correlation_id: &str) -> Result<usize> {
        let now = self.ports.clock.now().timestamp();
        let partitions = self
            .ports
            .shards
            .partitions_in_turn(keys::EXPIRY_PARTITION, now);
        let mut expired = 0;
        for partition in &partitions {
            expired += self
                .expire_due_in(partition, now, correlation_id, RUN_LIMIT - expired)
                .await?;
            if expired >= RUN_LIMIT {
                break;
            }
        }
        Ok(expired)
    }

    /// Cancels up to `limit` overdue orders whose deadlines are in `partition`.
    async fn expire_due_in(
        &self,
        partition: &str,
        now: i64,
        correlation_id: &str,
        limit: usize,
    ) -> Result<usize> {
        let query = Query::partition(Index::Primary, partition)
            .between(keys::expiry_sort(0, ""), keys::expiry_sort(now, "~"))
            .limit(100);
        let mut start_after = None;
        let mut expired = 0;
        loop {
            let page = self
                .ports
                .store
                .query(&query.clone().start_after(start_after))
                .await?;
            for entry in &page.items {
                let Some(order_id) = entry.get("order_id").and_then(Value::as_str) else {
                    continue;
                };
                let order_id = OrderId::trusted(order_id);
                match self.expire(&order_id, now, correlation_id).await {
                    Ok(Outcome::Expired) => {
                        expired += 1;
                        metrics::order_cancelled(metrics::Cancelled::Expired);
                    }
                    Ok(Outcome::Settled) => {
                        if let Some(key) = Key::of(entry) {
                            self.ports.store.delete(&key, Cond::Always).await?;
                        }
                    }
                    Ok(Outcome::NotDue | Outcome::PaymentInFlight) => {}
                    Err(error) => {
                        tracing::warn!(%error, %order_id, "order not expired; next run retries")
                    }
                }
                if expired >= limit {
                    return Ok(expired);
                }
            }
            match page.last_key {
                Some(last) => start_after = Some(last),
                None => return Ok(expired),
            }
        }
    }

    /// Cancels one overdue order.
    async fn expire(&self, order_id: &OrderId, now: i64, correlation_id: &str) -> Result<Outcome> {
        let result = self
            .change(order_id, |order| {
                if !order.status.is_unpaid() {
                    return Ok(Plan::Skip(Outcome::Settled));
                }
                if order
                    .expires_at
                    .is_none_or(|deadline| deadline.timestamp() > now)
                {
                    return Ok(Plan::Skip(Outcome::NotDue));
                }
                // A payment in flight may already have moved the money: the order waits for
                // the attempt to settle (captured: paid; failed: a later run expires it). The
                // cancel below is conditional on the version read here, and starting a payment
                // bumps the version, so a payment starting meanwhile makes this run read again.
                if order.processing_payment.is_some() {
                    return Ok(Plan::Skip(Outcome::PaymentInFlight));
                }
                let change =
                    self.cancellation(order, Action::Expire, Actor::System, correlation_id)?;
                Ok(Plan::apply(change.with_output(Outcome::Expired)))
            })
            .await;
        match result {
            Ok((_, outcome)) => Ok(outcome),
            Err(Error::NotFound(_)) => Ok(Outcome::Settled),
            Err(other) => Err(other),
        }
    }
}

/// What became of one overdue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Expired,
    /// Paid or cancelled meanwhile (or gone): the entry is stale.
    Settled,
    NotDue,
    /// A payment attempt has not settled yet: the entry stays for a later run.
    PaymentInFlight,
}
