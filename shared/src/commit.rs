//! The optimistic commit every state change goes through: read, plan, write everything the
//! plan implies in one conditional transaction, hand its messages to their queues; when the
//! world moved between the read and the write, plan again from a fresh read.
//!
//! One rule decides what a failed write means, so that every service treats races alike:
//! - a condition refused at a write of the plan means something it read has changed: read
//!   again and plan again (the next plan sees the change, and either succeeds, does nothing,
//!   or refuses with a clear error), unless the plan named the refusal as final (a taken SKU,
//!   a registered e-mail, a full quota: reading again cannot help);
//! - the idempotency record refused means another request took the key over: final;
//! - a transaction that collided with another in flight (DynamoDB's `TransactionConflict`) is
//!   retried as it is planned anew.
//!
//! Retries pause for a short random time that grows with each attempt (bounded "full
//! jitter"), so that writers colliding on one item spread out rather than collide again, and
//! each retry runs in its own `commit.retry` span. After [`ATTEMPTS`] the caller's `busy`
//! error is returned: a conflict that a client may simply retry.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use tracing::Instrument;

use crate::Ports;
use crate::error::{Error, Result};
use crate::idempotency::Claim;
use crate::outbox::{self, Staged};
use crate::ports::{StoreError, TxOp};

/// How many times a plan is tried before the caller is told it is busy. A retry follows a
/// write that succeeded elsewhere, so this bounds how many competing writers one change
/// outlasts (a flash sale's buyers of the same product, for instance).
pub const ATTEMPTS: u32 = 24;

/// The first retry's pause bound; each later one doubles it up to [`MAX_PAUSE_MILLIS`].
const FIRST_PAUSE_MILLIS: u64 = 2;
const MAX_PAUSE_MILLIS: u64 = 64;

/// A change's name (its retry spans carry it) and the error it answers when it keeps losing.
#[derive(Clone, Copy)]
pub struct Commit {
    name: &'static str,
    busy: fn() -> Error,
}

/// What one attempt is given: its number and what was refused in the attempt before it.
#[derive(Clone, Debug, Default)]
pub struct Round {
    number: u32,
    refused: Vec<usize>,
}

impl Round {
    /// 0 for the first attempt.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// Whether the previous attempt's write at `position` was refused.
    pub fn refused(&self, position: usize) -> bool {
        self.refused.contains(&position)
    }
}

/// What a plan decided.
pub enum Step<T> {
    /// Write this, then answer its output.
    Write(Tx<T>),
    /// Nothing to write: answer this now.
    Done(T),
}

impl<T> From<Tx<T>> for Step<T> {
    fn from(tx: Tx<T>) -> Self {
        Step::Write(tx)
    }
}

/// Says which refused writes are final, and as what error; `None` means "read again".
type Refusals = Box<dyn FnOnce(&[usize]) -> Option<Error> + Send>;

/// The writes of one attempt, the messages they cause and the answer once they commit.
pub struct Tx<T> {
    ops: Vec<TxOp>,
    staged: Vec<Staged>,
    /// Where the idempotency record is written, if the request has one.
    answer_at: Option<usize>,
    refusals: Option<Refusals>,
    output: T,
}

impl<T> Tx<T> {
    pub fn new(output: T) -> Self {
        Self {
            ops: Vec::new(),
            staged: Vec::new(),
            answer_at: None,
            refusals: None,
            output,
        }
    }

    /// Adds a write; returns its position (what a refusal names).
    pub fn write(&mut self, op: TxOp) -> usize {
        self.ops.push(op);
        self.ops.len() - 1
    }

    /// Adds writes.
    pub fn write_all(&mut self, ops: impl IntoIterator<Item = TxOp>) {
        self.ops.extend(ops);
    }

    /// Adds a message for a queue: recorded in the outbox by this transaction and sent once it
    /// commits.
    pub fn send(&mut self, message: Staged) {
        self.staged.push(message);
    }

    /// Adds messages.
    pub fn send_all(&mut self, messages: impl IntoIterator<Item = Staged>) {
        self.staged.extend(messages);
    }

    /// Remembers `body` as the answer to the request holding `claim` (when it has one), in
    /// the same transaction as the work, so that "done" and "answered" cannot disagree.
    pub fn answer(&mut self, claim: Option<&Claim>, body: &impl Serialize) -> Result<()> {
        if let Some(claim) = claim {
            self.answered(claim.complete(body)?);
        }
        Ok(())
    }

    /// Adds the write [`Claim::complete`] made.
    pub fn answered(&mut self, completion: TxOp) {
        self.answer_at = Some(self.write(completion));
    }

    /// Names the refusals that reading again cannot mend: `refusals` gets the refused
    /// positions and returns the error to answer, or `None` to read again and retry.
    pub fn final_refusals(
        mut self,
        refusals: impl FnOnce(&[usize]) -> Option<Error> + Send + 'static,
    ) -> Self {
        self.refusals = Some(Box::new(refusals));
        self
    }

    /// The same writes, answering `output`.
    pub fn map<U>(self, output: impl FnOnce(T) -> U) -> Tx<U> {
        Tx {
            ops: self.ops,
            staged: self.staged,
            answer_at: self.answer_at,
            refusals: self.refusals,
            output: output(self.output),
        }
    }

    /// What a refusal at `failed` means: an error to answer, or `None` for "plan again".
    fn verdict(&mut self, failed: &[usize]) -> Option<Error> {
        if self.answer_at.is_some_and(|at| failed.contains(&at)) {
            return Some(Error::conflict(
                "this Idempotency-Key was taken over by another request",
            ));
        }
        self.refusals.take().and_then(|refusals| refusals(failed))
    }
}

/// How one attempt ended.
enum Outcome<T> {
    Committed(T),
    Retry {
        refused: Vec<usize>,
        cause: &'static str,
    },
}

impl Commit {
    pub const fn new(name: &'static str, busy: fn() -> Error) -> Self {
        Self { name, busy }
    }

    /// Runs `plan` until its writes commit, it answers without writing, or it fails; see the
    /// module comment for what is retried.
    ///
    /// `plan` makes each attempt's future; it captures what it reads by reference (`move |round|
    /// async move { .. }` over references), so that each future owns only copies of them.
    pub async fn run<T, F, Fut>(&self, ports: &Ports, mut plan: F) -> Result<T>
    where
        F: FnMut(Round) -> Fut,
        Fut: Future<Output = Result<Step<T>>>,
    {
        let mut round = Round::default();
        let mut cause = "";
        while round.number < ATTEMPTS {
            let attempt = async {
                let step = plan(round.clone()).await?;
                self.attempt(ports, step).await
            };
            let outcome = if round.number == 0 {
                attempt.await?
            } else {
                tokio::time::sleep(pause(round.number)).await;
                let span = tracing::info_span!(
                    target: crate::trace::SPAN_TARGET,
                    "commit.retry",
                    commit = self.name,
                    attempt = round.number,
                    cause,
                );
                attempt.instrument(span).await?
            };
            match outcome {
                Outcome::Committed(output) => return Ok(output),
                Outcome::Retry {
                    refused,
                    cause: why,
                } => {
                    round.refused = refused;
                    cause = why;
                }
            }
            round.number += 1;
        }
        tracing::warn!(
            commit = self.name,
            attempts = ATTEMPTS,
            "change gave up after losing every race"
        );
        Err((self.busy)())
    }

    /// Commits writes planned from nothing that could be read again (a new account, a
    /// message): one attempt; a refusal it does not name as final, or a conflict, is `busy`.
    pub async fn write<T>(&self, ports: &Ports, tx: Tx<T>) -> Result<T> {
        match self.attempt(ports, Step::Write(tx)).await? {
            Outcome::Committed(output) => Ok(output),
            Outcome::Retry { .. } => Err((self.busy)()),
        }
    }

    async fn attempt<T>(&self, ports: &Ports, step: Step<T>) -> Result<Outcome<T>> {
        let mut tx = match step {
            Step::Done(output) => return Ok(Outcome::Committed(output)),
            Step::Write(tx) => tx,
        };
        let mut ops = std::mem::take(&mut tx.ops);
        ops.extend(outbox::writes(&tx.staged, ports.shards)?);
        match ports.store.transact(ops).await {
            Ok(()) => {
                outbox::deliver(ports, &tx.staged).await;
                Ok(Outcome::Committed(tx.output))
            }
            Err(StoreError::TransactionCancelled { failed }) => match tx.verdict(&failed) {
                Some(error) => Err(error),
                None => Ok(Outcome::Retry {
                    refused: failed,
                    cause: "refused",
                }),
            },
            Err(StoreError::TransactionConflict) => Ok(Outcome::Retry {
                refused: Vec::new(),
                cause: "conflict",
            }),
            Err(other) => Err(other.into()),
        }
    }
}

/// The pause before retry `number` (1 for the first retry): random, up to a bound that
/// doubles with each retry.
fn pause(number: u32) -> Duration {
    use rand::Rng;
    let bound = FIRST_PAUSE_MILLIS
        .saturating_mul(1 << number.saturating_sub(1).min(16))
        .min(MAX_PAUSE_MILLIS);
    Duration::from_millis(rand::thread_rng().gen_range(1..=bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_and_stay_bounded() {
        for _ in 0..200 {
            assert!(pause(1) <= Duration::from_millis(FIRST_PAUSE_MILLIS));
            assert!(pause(3) <= Duration::from_millis(4 * FIRST_PAUSE_MILLIS));
            let late = pause(ATTEMPTS);
            assert!(late >= Duration::from_millis(1));
            assert!(late <= Duration::from_millis(MAX_PAUSE_MILLIS));
        }
        let spread: std::collections::BTreeSet<Duration> = (0..200).map(|_| pause(8)).collect();
        assert!(
            spread.len() > 10,
            "retries should spread out, got {spread:?}"
        );
    }

    #[test]
    fn a_taken_idempotency_record_is_final_and_other_refusals_retry() {
        let mut tx = Tx::new(());
        tx.write(TxOp::Check {
            key: crate::ports::Key::new("a", "b"),
            cond: crate::ports::Cond::Exists,
        });
        tx.answer_at = Some(0);
        assert!(matches!(tx.verdict(&[0]), Some(Error::Conflict { .. })));
        let mut tx = Tx::new(()).final_refusals(|failed| {
            failed
                .contains(&1)
                .then(|| Error::conflict("a final refusal"))
        });
        assert!(tx.verdict(&[0]).is_none());
        let mut tx = Tx::new(()).final_refusals(|failed| {
            failed
                .contains(&1)
                .then(|| Error::conflict("a final refusal"))
        });
        assert!(matches!(tx.verdict(&[0, 1]), Some(Error::Conflict { .. })));
    }
}
