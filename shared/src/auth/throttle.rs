//! Back-off of failed password checks, per account AND client. A client that keeps guessing
//! one account's password waits longer and longer between guesses (a few free tries, then
//! 1 s, 2 s, 4 s ... up to a cap); a client that has not been failing is never held back, so
//! an attacker guessing from one address cannot lock the owner out from another. How many
//! guesses a client may make at all, over every account, is bounded by the per-client rate
//! limit on login (see [`crate::ratelimit`]).
//!
//! Each (account, client) pair has one record: its failures and the earliest time of its next
//! attempt. An attempt is admitted by a conditional update that counts it as a failure in
//! advance and pushes the next allowed time out; a successful check deletes the record. The
//! condition names the failure count read, so concurrent guesses from one client cannot both
//! be admitted on the same count.

use std::net::IpAddr;

use serde_json::Value;

use crate::Ports;
use crate::error::{Error, Result};
use crate::keys;
use crate::ports::store::EXPIRES_AT;
use crate::ports::{Cond, Item, StoreError, Update};
use crate::ratelimit::client_key;

/// The attributes of a pair's record.
const FAILURES: &str = "failures";
const NEXT_ATTEMPT_AT: &str = "next_attempt_at";

#[derive(Clone, Copy, Debug)]
pub struct LoginThrottle {
    /// Failures a client may have on one account before it has to wait.
    pub free_failures: i64,
    /// The wait after the first failure beyond the free ones; it doubles with each further one.
    pub base_delay_seconds: i64,
    /// The longest wait.
    pub max_delay_seconds: i64,
    /// How long a pair's record lives after its last failure (then it starts afresh).
    pub memory_seconds: i64,
}

impl Default for LoginThrottle {
    /// Five free failures, then 1 s, 2 s, 4 s ... at most 15 minutes; forgotten after a day.
    fn default() -> Self {
        Self {
            free_failures: 5,
            base_delay_seconds: 1,
            max_delay_seconds: 15 * 60,
            memory_seconds: 24 * 3600,
        }
    }
}

/// A pair's record as read: its failures and when it may try next (a record past its
/// `expires_at`, which DynamoDB removes lazily, counts as none).
struct Backoff {
    failures: i64,
    next_attempt_at: i64,
}

impl Backoff {
    fn of(item: Option<&Item>, now: i64) -> Option<Self> {
        let item = item?;
        let number = |name: &str| item.get(name).and_then(Value::as_i64).unwrap_or(0);
        (number(EXPIRES_AT) > now).then(|| Self {
            failures: number(FAILURES),
            next_attempt_at: number(NEXT_ATTEMPT_AT),
        })
    }

    /// The writes that record it, remembered for `memory_seconds` after the next attempt.
    fn updates(&self, memory_seconds: i64) -> Vec<Update> {
        vec![
            Update::set(FAILURES, self.failures),
            Update::set(NEXT_ATTEMPT_AT, self.next_attempt_at),
            Update::set(EXPIRES_AT, self.next_attempt_at + memory_seconds),
        ]
    }
}

impl LoginThrottle {
    /// The wait after the `failures`-th failure.
    pub fn delay_after(&self, failures: i64) -> i64 {
        let beyond = failures - self.free_failures;
        if beyond <= 0 {
            return 0;
        }
        let doublings = u32::try_from(beyond - 1).unwrap_or(u32::MAX).min(40);
        self.base_delay_seconds
            .saturating_mul(1_i64 << doublings)
            .min(self.max_delay_seconds)
    }

    /// Admits one password check of `email` by `client`, or refuses it with the seconds
    /// until the client may try again. The check counts as a failure until [`Self::reset`].
    pub async fn attempt(&self, ports: &Ports, email: &str, client: IpAddr) -> Result<()> {
        let key = keys::login_backoff(email, &client_key(client));
        let now = ports.clock.now().timestamp();
        let current = ports.store.get(&key).await?;
        let (failures, cond) = match (Backoff::of(current.as_ref(), now), &current) {
            (Some(backoff), _) if backoff.next_attempt_at > now => {
                return Err(Error::Throttled {
                    retry_after_secs: (backoff.next_attempt_at - now) as u64,
                });
            }
            (Some(backoff), _) => (backoff.failures, Cond::eq(FAILURES, backoff.failures)),
            // Expired: start afresh, unless someone else has meanwhile.
            (None, Some(item)) => {
                let failures = item.get(FAILURES).cloned().unwrap_or(Value::Null);
                (0, Cond::eq(FAILURES, failures))
            }
            (None, None) => (0, Cond::NotExists),
        };
        let failures = failures + 1;
        let admitted = Backoff {
            failures,
            next_attempt_at: now + self.delay_after(failures),
        };
        let updates = admitted.updates(self.memory_seconds);
        match ports.store.update(&key, updates, cond).await {
            Ok(_) => Ok(()),
            // Another check by the same client on the same account got in first.
            Err(StoreError::ConditionFailed) => Err(Error::Throttled {
                retry_after_secs: self.delay_after(failures).max(1) as u64,
            }),
            Err(other) => Err(other.into()),
        }
    }

    /// Forgets the client's failures on the account after a successful check.
    pub async fn reset(&self, ports: &Ports, email: &str, client: IpAddr) -> Result<()> {
        ports
            .store
            .delete(
                &keys::login_backoff(email, &client_key(client)),
                Cond::Always,
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_after_the_free_tries_up_to_the_cap() {
        let throttle = LoginThrottle::default();
        let waits: Vec<i64> = (1..=9).map(|n| throttle.delay_after(n)).collect();
        assert_eq!(waits, [0, 0, 0, 0, 0, 1, 2, 4, 8]);
        assert_eq!(throttle.delay_after(20), 900);
        assert_eq!(throttle.delay_after(i64::MAX), 900);
    }

    #[test]
    fn a_recorded_backoff_reads_back_until_it_is_forgotten() {
        let mut record = Item::new();
        let written = Backoff {
            failures: 6,
            next_attempt_at: 1_001,
        };
        for update in written.updates(100) {
            update.apply(&mut record);
        }
        // Records already stored keep these names.
        let names: Vec<&str> = record.keys().map(String::as_str).collect();
        assert_eq!(names, ["expires_at", "failures", "next_attempt_at"]);
        let read = Backoff::of(Some(&record), 1_100);
        assert_eq!(
            read.map(|backoff| (backoff.failures, backoff.next_attempt_at)),
            Some((6, 1_001))
        );
        assert!(Backoff::of(Some(&record), 1_101).is_none());
    }
}
