//! Throttling of failed logins per account. Failures are counted per e-mail address in fixed
//! windows; once an account has [`LoginThrottle::max_failures`] in the current window, further
//! attempts are refused until the window ends, whatever the password. Counting uses an atomic
//! add, so concurrent guesses cannot slip past the limit. Per-address (IP) throttling is the
//! API gateway's job.

use serde_json::Value;

use crate::Ports;
use crate::error::{Error, Result};
use crate::keys;
use crate::ports::{Cond, Update};

#[derive(Clone, Copy, Debug)]
pub struct LoginThrottle {
    pub max_failures: i64,
    pub window_seconds: i64,
}

impl Default for LoginThrottle {
    /// Five failures per fifteen minutes.
    fn default() -> Self {
        Self {
            max_failures: 5,
            window_seconds: 15 * 60,
        }
    }
}

impl LoginThrottle {
    fn window(&self, now: i64) -> i64 {
        now.div_euclid(self.window_seconds)
    }

    fn retry_after(&self, now: i64) -> u64 {
        let window_end = (self.window(now) + 1) * self.window_seconds;
        (window_end - now).max(1) as u64
    }

    /// Refuses the attempt when the account is locked in the current window.
    pub async fn check(&self, ports: &Ports, email: &str) -> Result<()> {
        let now = ports.clock.now().timestamp();
        let key = keys::login_failures(email, self.window(now));
        let failures = ports
            .store
            .get(&key)
            .await?
            .and_then(|item| item.get("failures").and_then(Value::as_i64))
            .unwrap_or(0);
        if failures >= self.max_failures {
            return Err(Error::Throttled {
                retry_after_secs: self.retry_after(now),
            });
        }
        Ok(())
    }

    /// Counts a failed attempt. The counter expires with its window (DynamoDB TTL).
    pub async fn record_failure(&self, ports: &Ports, email: &str) -> Result<()> {
        let now = ports.clock.now().timestamp();
        let window = self.window(now);
        let expires_at = (window + 2) * self.window_seconds;
        ports
            .store
            .update(
                &keys::login_failures(email, window),
                vec![
                    Update::add("failures", 1),
                    Update::set("expires_at", expires_at),
                ],
                Cond::Always,
            )
            .await?;
        Ok(())
    }

    /// Forgets the failures of the current window after a successful login.
    pub async fn reset(&self, ports: &Ports, email: &str) -> Result<()> {
        let now = ports.clock.now().timestamp();
        ports
            .store
            .delete(&keys::login_failures(email, self.window(now)), Cond::Always)
            .await?;
        Ok(())
    }
}
