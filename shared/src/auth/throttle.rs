//! Throttling of failed logins per account. Attempts are counted per e-mail address in fixed
//! windows; once an account has had [`LoginThrottle::max_failures`] unsuccessful attempts in the
//! current window, further attempts are refused until the window ends, whatever the password.
//! Per-address (IP) throttling is the API gateway's job.

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

    /// Counts an attempt before the password is checked, and refuses it once the account has
    /// had more than [`LoginThrottle::max_failures`] unsuccessful attempts in the current
    /// window. Counting first (one atomic add that returns the new count) means a burst of
    /// concurrent guesses cannot slip past the limit between a check and a count. The counter
    /// expires with its window (DynamoDB TTL); a successful attempt clears it ([`Self::reset`]).
    pub async fn attempt(&self, ports: &Ports, email: &str) -> Result<()> {
        let now = ports.clock.now().timestamp();
        let window = self.window(now);
        let expires_at = (window + 2) * self.window_seconds;
        let counter = ports
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
        let attempts = counter.get("failures").and_then(Value::as_i64).unwrap_or(0);
        if attempts > self.max_failures {
            return Err(Error::Throttled {
                retry_after_secs: self.retry_after(now),
            });
        }
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
